"""Every refused request is in the audit trail (without secrets), and the trail cannot be rewritten."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from exchange.accounts.models import Role, User
from exchange.app import create_app
from exchange.audit.models import AuditEvent
from exchange.core.denied import DenialFolder
from exchange.settings import Settings
from tests.factories import PASSWORD, login


def denied(session: Session) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == "auth.denied").order_by(col(AuditEvent.id))
    return list(session.exec(stmt))


def test_a_bad_token_is_recorded_without_the_token(client: TestClient, session: Session) -> None:
    secret = "exk_this-is-not-a-real-token-but-must-never-be-logged"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    [event] = denied(session)
    assert event.actor_id is None
    assert event.detail["status"] == 401 and event.detail["path"] == "/api/v1/me"
    assert event.detail["method"] == "GET" and event.detail["credential"] == "bearer"
    assert secret not in json.dumps(event.detail)
    assert event.at.tzinfo is not None and event.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_a_wrong_role_is_recorded_with_the_actor(
    client: TestClient, session: Session, make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]]
) -> None:
    user = make_user(Role.ENTERPRISE)
    body = {"email": "x@example.com", "display_name": "X", "password": "pass-word-123", "role": "admin"}
    r = client.post("/api/v1/users", json=body, headers=token_for(user))
    assert r.status_code == 403
    [event] = denied(session)
    assert event.actor_id == user.id and event.detail["status"] == 403 and event.detail["reason"] == "forbidden"
    assert "pass-word-123" not in json.dumps(event.detail)


def test_a_failed_login_is_recorded_without_the_password(
    client: TestClient, session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user()
    client.post("/api/v1/auth/login", json={"email": user.email, "password": "Wrong-password-77"})
    [event] = denied(session)
    assert event.detail["path"] == "/api/v1/auth/login" and event.detail["status"] == 401
    everything = json.dumps([e.detail for e in session.exec(select(AuditEvent))])
    assert "Wrong-password-77" not in everything and PASSWORD not in everything


def test_a_missing_csrf_token_is_recorded(client: TestClient, session: Session, make_user: Callable[..., User]) -> None:
    login(client, make_user())
    assert client.post("/api/v1/me/tokens", json={"name": "x"}).status_code == 403
    [event] = denied(session)
    assert event.detail["credential"] == "session" and event.detail["status"] == 403


def test_rate_limited_requests_are_recorded_folded_per_minute(settings: Settings, session: Session) -> None:
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 2}))
    with TestClient(app) as client:
        codes = [client.get("/healthz").status_code for _ in range(6)]
    assert codes == [200, 200, 429, 429, 429, 429]
    [event] = denied(session)  # the first refusal is written; the next three are counted into the next event
    assert event.detail["status"] == 429 and event.detail["reason"] == "rate_limit" and event.detail["client"]


def test_the_folder_writes_one_event_per_client_per_window_with_the_count() -> None:
    folder = DenialFolder(window_s=60)
    assert folder.admit("a", now=0) == 0
    assert [folder.admit("a", now=t) for t in (1, 2, 3)] == [None, None, None]
    assert folder.admit("b", now=3) == 0
    assert folder.admit("a", now=61) == 3  # the next event carries the three folded refusals


def test_the_audit_trail_refuses_update_and_delete(session: Session, make_user: Callable[..., User]) -> None:
    user = make_user()
    event = AuditEvent(actor_id=user.id, action="test.event", entity="user", entity_id=user.id)
    session.add(event)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        session.connection().exec_driver_sql("UPDATE auditevent SET action = 'forged'")
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.connection().exec_driver_sql("DELETE FROM auditevent")
    session.rollback()
    session.refresh(event)
    assert event.action == "test.event"
