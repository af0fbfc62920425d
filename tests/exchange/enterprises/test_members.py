"""A member adds a colleague to the enterprise (API and page): the colleague logs in as a member of it at once."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import User
from exchange.audit.models import AuditEvent
from exchange.enterprises.models import Enterprise
from tests.factories import PASSWORD, csrf, login


def _colleague(email: str = "colleague@a.example") -> dict[str, str]:
    return {"email": email, "display_name": "Li Na", "password": PASSWORD}


def test_a_member_adds_a_colleague_who_then_acts_for_the_enterprise(
    client: TestClient,
    session: Session,
    make_user: Callable[..., User],
    make_enterprise: Callable[..., Enterprise],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    ent = make_enterprise()
    member = make_user(enterprise=ent)
    r = client.post(f"/api/v1/enterprises/{ent.id}/members", json=_colleague(), headers=token_for(member))
    assert r.status_code == 201, r.text
    assert r.json()["enterprise_id"] == ent.id and r.json()["email"] == "colleague@a.example"
    assert "password" not in r.text and "hash" not in r.text

    listed = client.get(f"/api/v1/enterprises/{ent.id}/members", headers=token_for(member)).json()
    assert {m["email"] for m in listed} == {member.email, "colleague@a.example"}

    colleague = session.exec(select(User).where(User.email == "colleague@a.example")).one()
    login(client, colleague)
    private = client.get(f"/api/v1/enterprises/{ent.id}").json()
    assert "contact_name" in private  # the members' view
    [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "enterprise.member_add")).all()
    assert event.actor_id == member.id and PASSWORD not in str(event.detail)


def test_outsiders_cannot_add_members_and_bad_input_is_refused_clearly(
    client: TestClient,
    session: Session,
    make_user: Callable[..., User],
    make_enterprise: Callable[..., Enterprise],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    ent, other = make_enterprise(), make_enterprise()
    member, outsider = make_user(enterprise=ent), make_user(enterprise=other)
    url = f"/api/v1/enterprises/{ent.id}/members"
    r = client.post(url, json=_colleague(), headers=token_for(outsider))
    assert r.status_code == 403 and "members and admins" in r.json()["detail"]
    assert client.get(url, headers=token_for(outsider)).status_code == 403

    weak = client.post(url, json={**_colleague(), "password": "aaaaaaaaaa"}, headers=token_for(member))
    assert weak.status_code == 422 and weak.json()["field"] == "password"
    taken = client.post(url, json=_colleague(outsider.email), headers=token_for(member))
    assert taken.status_code == 409 and taken.json()["field"] == "email"
    bad = client.post(url, json={**_colleague(), "email": "not-an-email"}, headers=token_for(member))
    assert bad.status_code == 422
    assert session.exec(select(User).where(User.enterprise_id == ent.id)).all() == [member]


def test_the_page_form_adds_a_colleague_and_shows_field_errors(
    client: TestClient,
    session: Session,
    make_user: Callable[..., User],
    make_enterprise: Callable[..., Enterprise],
) -> None:
    ent = make_enterprise()
    member = make_user(enterprise=ent)
    login(client, member)
    page = client.get(f"/enterprises/{ent.id}")
    assert 'id="member-form"' in page.text

    token = csrf(client)
    r = client.post(f"/enterprises/{ent.id}/members", data={**_colleague(), "password": "short", "csrf_token": token})
    assert r.status_code == 422 and 'data-field="password"' in r.text and "Li Na" in r.text
    r = client.post(
        f"/enterprises/{ent.id}/members", data={**_colleague(), "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/enterprises/{ent.id}?member_added=1"
    shown = client.get(r.headers["location"])
    assert 'id="member-added"' in shown.text and "colleague@a.example" in shown.text


def test_the_page_refuses_an_outsider(
    client: TestClient, make_user: Callable[..., User], make_enterprise: Callable[..., Enterprise]
) -> None:
    ent, other = make_enterprise(), make_enterprise()
    login(client, make_user(enterprise=other))
    r = client.post(f"/enterprises/{ent.id}/members", data={**_colleague(), "csrf_token": csrf(client)})
    assert r.status_code == 403
