"""`exchange create-admin`: the first admin from the shell, under the same rules as every other account."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange import cli
from exchange.accounts.models import Role, User
from exchange.audit.models import AuditEvent
from exchange.settings import Settings


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)


def test_an_admin_made_in_the_shell_can_log_in_and_is_audited(
    client: TestClient, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["create-admin", " Root@Example.CN ", "correct-horse-42"]) == 0
    assert "admin root@example.cn created" in capsys.readouterr().out
    admin = session.exec(select(User).where(User.email == "root@example.cn")).one()
    assert admin.role is Role.ADMIN and admin.password_hash != "correct-horse-42"
    r = client.post("/api/v1/auth/login", json={"email": "root@example.cn", "password": "correct-horse-42"})
    assert r.status_code == 200, r.text
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "user.create_admin")).all()
    assert [e.entity_id for e in events] == [admin.id]


def test_a_taken_email_or_a_weak_password_is_refused_with_the_reason(
    session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["create-admin", "root@example.cn", "correct-horse-42"]) == 0
    capsys.readouterr()
    assert cli.main(["create-admin", "ROOT@example.cn", "another-horse-43"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["create-admin", "second@example.cn", "short"]) == 2
    assert "password" in capsys.readouterr().err.lower()
    assert len(session.exec(select(User).where(User.role == Role.ADMIN)).all()) == 1
