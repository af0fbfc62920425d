"""What the app and the CLI answer when the database itself fails, instead of a 500 or a traceback.

- unreachable, restarting, or a connection cut mid-request: 503 with Retry-After (the pool reconnects by itself:
  `pool_pre_ping`, so service resumes without anyone stepping in);
- read-only (SQLite file or mount, a PostgreSQL standby): 503, saying so;
- disk full (SQLite `SQLITE_FULL`, PostgreSQL `disk_full`): 507 Insufficient Storage, saying so.

Either way the transaction rolled back, so nothing is half-written. Other database errors (an IntegrityError, a
programming error) are not faults of the database and stay 500s that someone must look at.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# SQLite primary result codes (https://www.sqlite.org/rescode.html) and PostgreSQL SQLSTATEs (Appendix A).
SQLITE_BUSY, SQLITE_READONLY, SQLITE_FULL = 5, 8, 13
PG_DISK_FULL, PG_READ_ONLY_TRANSACTION = "53100", "25006"


@dataclass(frozen=True)
class DatabaseFault:
    status: int
    code: str
    detail: str
    retry_after_s: int | None = None

    def body(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else {}


UNAVAILABLE = DatabaseFault(503, "service_unavailable", "the database is unavailable; please retry shortly", 5)
BUSY = DatabaseFault(503, "service_unavailable", "the database is busy; please retry shortly", 5)
READ_ONLY = DatabaseFault(
    503,
    "database_read_only",
    "the database is read-only at the moment, so nothing was saved (reading still works); "
    "an operator must make it writable again",
    60,
)
FULL = DatabaseFault(
    507,
    "storage_full",
    "the database's disk is full, so nothing was saved; an operator must free space, then retry",
)


def classify(exc: BaseException) -> DatabaseFault | None:
    """The fault behind a database exception, or None when it is not a failure of the database itself."""
    if isinstance(exc, PoolTimeout):  # every pooled connection stayed busy for the pool's timeout
        return BUSY
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    message = str(orig).lower()
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    primary = sqlite_code & 0xFF if isinstance(sqlite_code, int) else None
    diag = getattr(orig, "diag", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(diag, "sqlstate", None)
    if primary == SQLITE_FULL or sqlstate == PG_DISK_FULL or "database or disk is full" in message:
        return FULL
    if primary == SQLITE_READONLY or sqlstate == PG_READ_ONLY_TRANSACTION or "readonly database" in message:
        return READ_ONLY
    if primary == SQLITE_BUSY or "database is locked" in message:
        return BUSY
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return UNAVAILABLE
    return None


async def send_fault(fault: DatabaseFault, send: Send) -> None:
    body = json.dumps(fault.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in fault.headers().items()]
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DatabaseFaultMiddleware:
    """Answers database faults raised by the middlewares inside it (the idempotency keys use the database
    before and after the route): exception handlers only cover the routes, so those would be bare 500s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except (DBAPIError, PoolTimeout) as exc:
            fault = classify(exc)
            if fault is None or started:
                raise
            log.warning("database fault (%s) on %s %s: %s", fault.code, scope.get("method"), scope.get("path"), exc)
            await send_fault(fault, send)
