"""Every refused request (401, 403, 429) goes to the audit trail, in a short transaction of its own.

The refused request's own transaction is rolled back, so the event cannot ride on it. The event names the
method, the path (never the query string), the status, the actor when known and the client address — never
a password, token, cookie or price.

The per-client rate limiter can refuse thousands of requests a second from one address; writing one row for
each would turn a flood into a write storm. So its refusals are folded: the first refusal from a client in a
minute is written at once, and the ones after it within that minute are counted into the next event written
for that client (`detail.folded`), see `DenialFolder`.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from exchange.audit import service as audit

log = logging.getLogger(__name__)

DENIED_STATUSES = frozenset({401, 403, 429})


def record_denied(
    engine: Engine,
    *,
    method: str,
    path: str,
    status: int,
    actor_id: int | None,
    client: str | None,
    reason: str,
    credential: str | None = None,
    folded: int = 0,
) -> None:
    """Write one `auth.denied` event; a failure to write is logged, never turned into a 500."""
    detail: dict[str, object] = {"method": method, "path": path[:200], "status": status, "reason": reason}
    if client:
        detail["client"] = client
    if credential:
        detail["credential"] = credential  # "bearer" or "session": which kind was presented, never its value
    if folded:
        detail["folded"] = folded
    try:
        with Session(engine) as session:
            event = audit.record(session, actor_id=actor_id, action="auth.denied", entity="request")
            event.detail = detail
            session.commit()
    except SQLAlchemyError:
        log.warning("could not write auth.denied for %s %s (%s)", method, path, status, exc_info=True)


class DenialFolder:
    """Decides which rate-limit refusals are written: one per client per window, carrying the count since."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._state: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def admit(self, client: str, now: float | None = None) -> int | None:
        """None: fold this refusal (count it). An int: write an event now, with that many folded refusals."""
        now = time.monotonic() if now is None else now
        with self._lock:
            started, folded = self._state.get(client, (float("-inf"), 0))
            if now - started < self.window_s:
                self._state[client] = (started, folded + 1)
                return None
            self._state[client] = (now, 0)
            if len(self._state) > 10_000:
                for key in [k for k, (t, _) in self._state.items() if now - t >= self.window_s]:
                    del self._state[key]
            return folded
