"""Append-only audit trail: who did what, when (UTC), from which state to which."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from exchange.core.db import utcnow


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    action: str = Field(max_length=60)  # e.g. listing.update, proposal.accept, auth.denied
    entity: str = Field(max_length=40)
    entity_id: int | None = Field(default=None, index=True)
    park_id: int | None = Field(default=None, index=True)  # lets a park manager read the park's trail
    from_state: str | None = Field(default=None, max_length=24)
    to_state: str | None = Field(default=None, max_length=24)
    detail: dict[str, object] = Field(default_factory=dict, sa_type=sa.JSON)
