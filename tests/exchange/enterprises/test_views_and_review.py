"""Who sees which view of an enterprise, who changes it, and who approves or rejects it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role
from exchange.audit.models import AuditEvent
from exchange.enterprises.models import EnterpriseStatus
from tests.exchange.enterprises.conftest import registration
from tests.factories import login


def test_contacts_only_for_members_reviewers_and_admins(
    client: TestClient, make_user, make_enterprise, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    park, other_park = make_park(), make_park()
    ent = make_enterprise(park=park)
    url = f"/api/v1/enterprises/{ent.id}"
    private = {
        "member": make_user(enterprise=ent),
        "admin": make_user(Role.ADMIN),
        "own park manager": make_user(Role.PARK_MANAGER, park=park),
    }
    public = {
        "another enterprise": make_user(enterprise=make_enterprise()),
        "other park manager": make_user(Role.PARK_MANAGER, park=other_park),
        "regulator": make_user(Role.REGULATOR, region_code="130000"),
    }
    for who, user in private.items():
        body = client.get(url, headers=token_for(user)).json()
        assert body["contact_phone"] == "0310-0000000", who
    for who, user in public.items():
        body = client.get(url, headers=token_for(user)).json()
        assert body["name"] == ent.name and "contact_phone" not in body, who
    assert "contact_phone" not in client.get(url).json()


def test_a_pending_enterprise_is_hidden_from_everyone_but_members_and_reviewers(
    client: TestClient, make_user, make_enterprise, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    park = make_park()
    ent = make_enterprise(status=EnterpriseStatus.PENDING, park=park)
    url = f"/api/v1/enterprises/{ent.id}"
    assert client.get(url).status_code == 404
    assert client.get(url, headers=token_for(make_user(Role.PARK_MANAGER, park=make_park()))).status_code == 404
    assert client.get(url, headers=token_for(make_user(Role.PARK_MANAGER, park=park))).status_code == 200
    assert client.get(url, headers=token_for(make_user(enterprise=ent))).status_code == 200
    listed = client.get("/api/v1/enterprises").json()
    assert ent.id not in [e["id"] for e in listed["items"]]
    admin_list = client.get("/api/v1/enterprises?status=pending", headers=token_for(make_user(Role.ADMIN))).json()
    assert [e["id"] for e in admin_list["items"]] == [ent.id] and admin_list["total"] == 1


def test_the_list_filters_and_pages(client: TestClient, make_enterprise, make_park) -> None:  # type: ignore[no-untyped-def]
    park = make_park()
    a = make_enterprise("甲钢铁", park=park, industry="steel_bf_bof")
    make_enterprise("乙水泥", industry="cement")
    make_enterprise("丙水泥", industry="cement", park=park)
    body = client.get(f"/api/v1/enterprises?park_id={park.id}&industry=steel_bf_bof").json()
    assert [e["id"] for e in body["items"]] == [a.id]
    body = client.get("/api/v1/enterprises?industry=cement&limit=1").json()
    assert body["total"] == 2 and len(body["items"]) == 1
    assert client.get("/api/v1/enterprises?q=钢铁").json()["total"] == 1
    assert client.get(f"/api/v1/enterprises?q={a.uscc}").json()["items"][0]["id"] == a.id
    assert client.get("/api/v1/enterprises?limit=0").status_code == 422


def test_members_change_their_enterprise_but_not_its_uscc_or_park(
    client: TestClient, session: Session, make_user, make_enterprise, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    ent = make_enterprise()
    member = token_for(make_user(enterprise=ent))
    url = f"/api/v1/enterprises/{ent.id}"
    r = client.patch(
        url, json={"contact_phone": "0310-1234567", "address": "山西省大同市云冈区新华路3号"}, headers=member
    )
    assert r.status_code == 200, r.text
    assert r.json()["contact_phone"] == "0310-1234567"
    assert r.json()["city_code"] == "140200"  # re-placed from the new address
    r = client.patch(url, json={"park_id": make_park().id}, headers=member)
    assert (r.status_code, r.json()["field"]) == (403, "park_id")
    outsider = token_for(make_user(enterprise=make_enterprise()))
    assert client.patch(url, json={"name": "x"}, headers=outsider).status_code == 403
    admin = token_for(make_user(Role.ADMIN))
    r = client.patch(url, json={"permits": ["waste_mineral_oil"]}, headers=admin)
    assert r.status_code == 200 and r.json()["permits"] == ["waste_mineral_oil"]
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "enterprise.update")).all()[-1]
    assert event.detail["fields"] == ["permits"]


def test_a_park_manager_approves_only_their_own_parks_enterprises(
    client: TestClient, session: Session, make_user, make_enterprise, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    park = make_park()
    ent = make_enterprise(status=EnterpriseStatus.PENDING, park=park)
    other_manager = token_for(make_user(Role.PARK_MANAGER, park=make_park()))
    assert client.post(f"/api/v1/enterprises/{ent.id}/approve", headers=other_manager).status_code == 404
    member = token_for(make_user(enterprise=ent))
    assert client.post(f"/api/v1/enterprises/{ent.id}/approve", headers=member).status_code == 403
    manager = make_user(Role.PARK_MANAGER, park=park)
    r = client.post(f"/api/v1/enterprises/{ent.id}/approve", headers=token_for(manager))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    session.refresh(ent)
    assert ent.approved_by_id == manager.id and ent.approved_at is not None
    r = client.post(f"/api/v1/enterprises/{ent.id}/reject", headers=token_for(manager))
    assert r.status_code == 409  # no longer pending
    events = session.exec(select(AuditEvent).where(AuditEvent.entity == "enterprise")).all()
    assert [(e.action, e.from_state, e.to_state, e.park_id) for e in events] == [
        ("enterprise.approve", "pending", "approved", park.id)
    ]


def test_an_enterprise_outside_parks_is_approved_by_admins_only(
    client: TestClient, make_user, make_enterprise, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    ent = make_enterprise(status=EnterpriseStatus.PENDING)
    manager = token_for(make_user(Role.PARK_MANAGER, park=make_park()))
    assert client.post(f"/api/v1/enterprises/{ent.id}/approve", headers=manager).status_code == 404
    admin = token_for(make_user(Role.ADMIN))
    assert client.post(f"/api/v1/enterprises/{ent.id}/approve", headers=admin).json()["status"] == "approved"


def test_a_rejected_enterprise_sees_why_and_goes_back_to_review_when_corrected(
    client: TestClient, session: Session, make_user, make_enterprise, token_for
) -> None:  # type: ignore[no-untyped-def]
    ent = make_enterprise(status=EnterpriseStatus.PENDING)
    admin = token_for(make_user(Role.ADMIN))
    r = client.post(f"/api/v1/enterprises/{ent.id}/reject", json={"reason": "营业执照名称不符"}, headers=admin)
    assert r.json()["status"] == "rejected"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "enterprise.reject")).one()
    assert event.detail == {"reason": "营业执照名称不符"}
    member = make_user(enterprise=ent)
    csrf = login(client, member)
    page = client.get(f"/enterprises/{ent.id}")
    assert "营业执照名称不符" in page.text
    r = client.post(
        f"/enterprises/{ent.id}/edit",
        data={"csrf_token": csrf, "name": "更正后的名称", "industry": ent.industry, "address": ent.address},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    session.refresh(ent)
    assert (ent.name, ent.status, ent.contact_phone) == ("更正后的名称", EnterpriseStatus.PENDING, "0310-0000000")


def test_registration_through_the_form_shows_field_errors_then_registers(
    client: TestClient, session: Session, make_user
) -> None:  # type: ignore[no-untyped-def]
    user = make_user(locale="zh-CN")
    csrf = login(client, user)
    assert client.get("/enterprises/new").status_code == 200
    form = {k: str(v) for k, v in registration().items()} | {"csrf_token": csrf, "park_id": "", "lat": "", "lon": ""}
    bad = form | {"uscc": form["uscc"][:17] + ("1" if form["uscc"][17] != "1" else "2")}
    r = client.post("/enterprises/new", data=bad)
    assert r.status_code == 422
    assert 'data-field="uscc"' in r.text and "校验码" in r.text
    assert 'value="峰峰第9发电厂"' in r.text  # what was typed is kept
    r = client.post("/enterprises/new", data=form | {"lat": "north"})
    assert r.status_code == 422 and 'data-field="lat"' in r.text
    r = client.post("/enterprises/new", data=form, follow_redirects=False)
    assert r.status_code == 303
    session.refresh(user)
    assert r.headers["location"] == f"/enterprises/{user.enterprise_id}?registered=1"
    page = client.get(r.headers["location"])
    assert "待审核" in page.text and "13900001111" in page.text
    assert (
        client.get("/enterprises/new", follow_redirects=False).headers["location"]
        == f"/enterprises/{user.enterprise_id}"
    )
