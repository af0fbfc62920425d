"""Writing and reading the audit trail. Never record passwords, tokens or prices here."""

from __future__ import annotations

from sqlmodel import Session, col, select

from exchange.audit.models import AuditEvent


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: int | None = None,
    park_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    **detail: object,
) -> AuditEvent:
    """Add an event to the caller's transaction (it commits with the change it describes)."""
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        entity=entity,
        entity_id=entity_id,
        park_id=park_id,
        from_state=from_state,
        to_state=to_state,
        detail=detail,
    )
    session.add(event)
    return event


def events(
    session: Session, *, park_id: int | None = None, entity: str | None = None, limit: int = 200
) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if park_id is not None:
        stmt = stmt.where(AuditEvent.park_id == park_id)
    if entity is not None:
        stmt = stmt.where(AuditEvent.entity == entity)
    return list(session.exec(stmt))
