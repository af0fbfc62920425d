"""`Idempotency-Key` for POST requests under /api/: a retried create or accept is never applied twice.

A pure ASGI middleware, so every POST route gets it without touching the route:

- The key is scoped to the credential that sent it (SHA-256 of the bearer token or the session cookie): two
  clients never share a key space, and the raw credential is never stored. Requests without a credential
  (sign-up, login) and routes whose response carries a secret (login, API token creation) are left alone.
- The request's fingerprint is SHA-256 over method, path, query string and body.
- First request: an `in_flight` row is committed *before* the handler runs, so a concurrent duplicate finds it
  and gets 409 (with Retry-After) instead of running the handler a second time. The unique constraint on
  (scope, key) makes the claim atomic on both databases.
- When the handler finishes, the response (status, headers without Set-Cookie, body) is stored and only then
  sent; a retry with the same key and payload gets the stored response again, marked `Idempotent-Replayed: true`.
- The same key with a different payload: 422. A 5xx, an exception, or a transient refusal (401, 403, 409, 429)
  deletes the row, so the client may simply retry.
- Rows expire after 24 hours. An `in_flight` row older than 5 minutes is taken to be abandoned (its process
  died) and may be claimed again — the one window in which a retry can repeat work, documented in
  docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.core.db import utcnow
from exchange.idempotency.models import IdempotencyRecord, IdempotencyState

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
RECORD_TTL = timedelta(hours=24)
IN_FLIGHT_ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
# Outcomes a client may legitimately retry with the same key: they are not stored.
TRANSIENT_STATUSES = frozenset({401, 403, 408, 409, 425, 429})
# Responses that carry a credential must never be written to the table.
EXCLUDED_PREFIXES = ("/api/v1/auth/", "/api/v1/me/tokens")
SESSION_COOKIE = "exchange_session"  # same name as exchange.core.deps.SESSION_COOKIE (kept import-free)


@dataclass(frozen=True)
class Claim:
    outcome: str  # "claimed" | "done" | "in_flight" | "mismatch"
    record_id: int | None = None
    status_code: int | None = None
    headers: list[list[str]] | None = None
    body: bytes | None = None


def credential_scope(headers: Headers, cookies: dict[str, str]) -> str | None:
    """SHA-256 of the request's credential, or None for an anonymous request."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return hashlib.sha256(b"bearer:" + auth[7:].strip().encode()).hexdigest()
    session = cookies.get(SESSION_COOKIE)
    if session:
        return hashlib.sha256(b"session:" + session.encode()).hexdigest()
    return None


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in key)


def _parse_cookies(headers: Headers) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for raw in headers.getlist("cookie"):
        for chunk in raw.split(";"):
            name, sep, value = chunk.strip().partition("=")
            if sep:
                cookies[name] = value
    return cookies


class IdempotencyStore:
    """The database side: claim a key, finish it, forget it. Every call is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, scope: str, key: str, fp: str) -> Claim:
        for _ in range(5):
            now = utcnow()
            with Session(self.engine, expire_on_commit=False) as session:
                if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
                    session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < now - RECORD_TTL))
                existing = session.exec(
                    select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
                ).first()
                if existing is not None:
                    expired = now - existing.created_at > RECORD_TTL
                    abandoned = (
                        existing.state is IdempotencyState.IN_FLIGHT
                        and now - existing.created_at > IN_FLIGHT_ABANDONED_AFTER
                    )
                    if expired or abandoned:
                        session.delete(existing)
                        session.flush()
                        existing = None
                if existing is not None:
                    session.commit()
                    if existing.fingerprint != fp:
                        return Claim("mismatch")
                    if existing.state is IdempotencyState.IN_FLIGHT:
                        return Claim("in_flight")
                    return Claim(
                        "done",
                        status_code=existing.status_code,
                        headers=existing.response_headers,
                        body=existing.response_body or b"",
                    )
                record = IdempotencyRecord(scope=scope, key=key, fingerprint=fp, created_at=now)
                session.add(record)
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue  # a concurrent request claimed it first: read its row
                return Claim("claimed", record_id=record.id)
        return Claim("in_flight")

    def finish(self, record_id: int, status_code: int, headers: list[list[str]], body: bytes) -> None:
        with Session(self.engine) as session:
            record = session.get(IdempotencyRecord, record_id)
            if record is None:
                return
            record.state = IdempotencyState.DONE
            record.status_code = status_code
            record.response_headers = headers
            record.response_body = body
            record.completed_at = utcnow()
            session.add(record)
            session.commit()

    def forget(self, record_id: int) -> None:
        with Session(self.engine) as session:
            session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.id) == record_id))
            session.commit()


def _json_response(
    status: int, code: str, detail: str, extra_headers: tuple[tuple[bytes, bytes], ...] = ()
) -> list[Message]:
    body = json.dumps({"error": code, "detail": detail, "field": "Idempotency-Key"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.store = IdempotencyStore(engine)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        path: str = scope["path"]
        if key is None or path.startswith(EXCLUDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        client_scope = credential_scope(headers, _parse_cookies(headers))
        if client_scope is None:
            await self.app(scope, receive, send)
            return
        if not valid_key(key):
            for message in _json_response(
                400, "bad_request", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
            ):
                await send(message)
            return

        body, disconnected = await _read_body(receive)
        if disconnected:
            return
        fp = fingerprint("POST", path, scope.get("query_string", b""), body)
        claim = await run_in_threadpool(self.store.claim, client_scope, key, fp)
        if claim.outcome == "mismatch":
            for message in _json_response(
                422, "unprocessable", "this Idempotency-Key was already used with a different request"
            ):
                await send(message)
            return
        if claim.outcome == "in_flight":
            for message in _json_response(
                409,
                "conflict",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                ((b"retry-after", b"1"),),
            ):
                await send(message)
            return
        if claim.outcome == "done":
            assert claim.status_code is not None
            replay_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in claim.headers or []]
            replay_headers.append((REPLAYED_HEADER.encode(), b"true"))
            await send({"type": "http.response.start", "status": claim.status_code, "headers": replay_headers})
            await send({"type": "http.response.body", "body": claim.body or b""})
            return

        assert claim.record_id is not None
        await self._run_first(scope, receive, send, body, claim.record_id)

    async def _run_first(self, scope: Scope, receive: Receive, send: Send, body: bytes, record_id: int) -> None:
        """Run the handler once, buffer its response, store it, then send it."""
        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await _forget_quietly(self.store, record_id)
            raise
        if start is None:
            await _forget_quietly(self.store, record_id)
            return
        status: int = start["status"]
        raw_headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        response_body = b"".join(chunks)
        if status >= 500 or status in TRANSIENT_STATUSES:
            await _forget_quietly(self.store, record_id)
        else:
            stored = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in raw_headers if k.lower() != b"set-cookie"]
            try:
                await run_in_threadpool(self.store.finish, record_id, status, stored, response_body)
            except Exception:  # the work is done; failing to remember it must not hide the answer
                log.exception("could not store the response for idempotency record %s", record_id)
        await send({**start, "headers": raw_headers})
        await send({"type": "http.response.body", "body": response_body})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), False


async def _forget_quietly(store: IdempotencyStore, record_id: int) -> None:
    try:
        await run_in_threadpool(store.forget, record_id)
    except Exception:
        log.exception("could not release idempotency record %s", record_id)
