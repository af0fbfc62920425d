"""One row per (credential, Idempotency-Key): the request's fingerprint and, once finished, its response."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from exchange.core.db import enum_type, utcnow


class IdempotencyState(enum.StrEnum):
    IN_FLIGHT = "in_flight"  # the first request is being handled right now
    DONE = "done"  # its response is stored and is replayed to any retry


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (sa.UniqueConstraint("scope", "key", name="uq_idempotency_record_scope_key"),)

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the credential (bearer token or session cookie): one client's keys never collide with another's,
    # and the raw credential is never stored.
    scope: str = Field(max_length=64)
    key: str = Field(max_length=255)
    # SHA-256 over method, path, query string and body: the same key with another payload is refused (422).
    fingerprint: str = Field(max_length=64)
    state: IdempotencyState = Field(default=IdempotencyState.IN_FLIGHT, sa_type=enum_type(IdempotencyState))
    status_code: int | None = None
    response_headers: list[list[str]] = Field(default_factory=list, sa_type=sa.JSON)
    response_body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    completed_at: datetime | None = None
