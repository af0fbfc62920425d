"""A per-client request budget (sliding one-minute window), answering 429 with Retry-After when spent.

In memory and per process: it stops a single runaway client or script, not a distributed attack (that is the
reverse proxy's job). Login attempts are throttled separately, per account, in the accounts service.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from exchange.core.denied import DenialFolder, record_denied


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> float | None:
        """Record a request; None if allowed, else the seconds until the client may try again."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return 60.0 - (now - hits[0])
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients so memory stays bounded
                for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60.0]:
                    del self._hits[key]
            return None


class RateLimitMiddleware:
    """429 with Retry-After once a client address has spent its budget (static files do not count). The denial
    is audited, folded so that a flood writes a few rows rather than one per request. Plain ASGI: see
    core/headers.py for why not `@app.middleware`."""

    def __init__(self, app: ASGIApp, *, per_minute: int, engine: Engine) -> None:
        self.app = app
        self.limiter = RateLimiter(per_minute)
        self.denials = DenialFolder()
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait_s = self.limiter.check(client)
        if wait_s is None:
            await self.app(scope, receive, send)
            return
        folded = self.denials.admit(client)
        if folded is not None:
            await run_in_threadpool(
                record_denied,
                self.engine,
                method=scope["method"],
                path=scope["path"],
                status=429,
                actor_id=None,
                client=client,
                reason="rate_limit",
                folded=folded,
            )
        response = JSONResponse(
            {"error": "too_many_requests", "detail": "too many requests from this address; slow down"},
            status_code=429,
            headers={"Retry-After": str(int(wait_s) + 1)},
        )
        await response(scope, receive, send)
