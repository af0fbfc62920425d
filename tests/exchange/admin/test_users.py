"""Admins list accounts, create staff accounts and disable people."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role, User, UserStatus
from tests.factories import PASSWORD, login


def test_the_user_list_is_for_admins_only(client: TestClient, make_user, make_enterprise, token_for) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(Role.ADMIN, email="boss@example.com")
    member = make_user(enterprise=make_enterprise(), email="member@example.com")
    r = client.get("/api/v1/users?role=enterprise", headers=token_for(admin))
    assert r.status_code == 200
    assert [u["email"] for u in r.json()["items"]] == ["member@example.com"]
    assert client.get("/api/v1/users?q=BOSS", headers=token_for(admin)).json()["total"] == 1
    assert client.get("/api/v1/users", headers=token_for(member)).status_code == 403
    login(client, admin)
    page = client.get("/admin/users")
    assert page.status_code == 200 and 'data-user="member@example.com"' in page.text


def test_an_admin_creates_a_park_manager_through_the_form(
    client: TestClient, session: Session, make_user, make_park
) -> None:  # type: ignore[no-untyped-def]
    park = make_park()
    csrf = login(client, make_user(Role.ADMIN))
    assert client.get("/admin/users/new").status_code == 200
    form = {
        "csrf_token": csrf,
        "email": "manager@example.com",
        "display_name": "园区管理员",
        "password": "short",
        "role": "park_manager",
        "park_id": str(park.id),
        "region_code": "",
    }
    r = client.post("/admin/users/new", data=form)
    assert r.status_code == 422 and 'data-field="password"' in r.text
    r = client.post("/admin/users/new", data=form | {"password": PASSWORD, "park_id": ""})
    assert r.status_code == 422 and 'data-field="park_id"' in r.text
    r = client.post("/admin/users/new", data=form | {"password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    created = session.exec(select(User).where(User.email == "manager@example.com")).one()
    assert (created.role, created.park_id, created.region_code) == (Role.PARK_MANAGER, park.id, None)
    r = client.post("/admin/users/new", data=form | {"password": PASSWORD})
    assert r.status_code == 409 and 'data-field="email"' in r.text
    r = client.post(
        "/admin/users/new",
        data=form | {"email": "reg@example.com", "password": PASSWORD, "role": "regulator", "region_code": "130400"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    regulator = session.exec(select(User).where(User.email == "reg@example.com")).one()
    assert (regulator.role, regulator.region_code, regulator.park_id) == (Role.REGULATOR, "130400", None)
    r = client.post("/admin/users/new", data=form | {"email": "x@example.com", "role": "enterprise"})
    assert r.status_code == 422 and 'data-field="role"' in r.text


def test_a_disabled_user_can_no_longer_log_in_and_is_enabled_again(
    client: TestClient, session: Session, make_user, make_enterprise
) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(Role.ADMIN)
    member = make_user(enterprise=make_enterprise())
    csrf = login(client, admin)
    r = client.post(f"/admin/users/{member.id}/disable", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    session.refresh(member)
    assert member.status is UserStatus.DISABLED
    r = client.post(f"/admin/users/{admin.id}/disable", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 409
    client.post(f"/admin/users/{member.id}/enable", data={"csrf_token": csrf}, follow_redirects=False)
    session.refresh(member)
    assert member.status is UserStatus.ACTIVE
