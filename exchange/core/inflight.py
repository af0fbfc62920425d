"""At most N requests inside the app at once, per process; the others wait in the event loop, holding nothing.

Why: route handlers and their dependencies run on a thread pool (40 threads), one hop at a time, and a request's
database transaction stays open between hops. On SQLite every transaction begins IMMEDIATE (the write lock), on
PostgreSQL an accept holds row locks. If more requests are inside than there are threads, every thread can end up
blocked waiting for a lock (or a pooled connection) held by a request that is between hops and needs a thread to
finish: nothing moves until the 30 s timeouts fire (measured: 50 concurrent accepts on SQLite gave 40 × 5xx).
With fewer requests inside than threads and than pooled connections, the holder always finds both.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

# Below the thread pool (40, anyio's default) and the connection pools (core/db.py), with room for the second
# connection the idempotency middleware and the audit of a denied request briefly take.
MAX_IN_FLIGHT = 16


class InFlightLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_IN_FLIGHT) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:  # created inside the running loop
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
