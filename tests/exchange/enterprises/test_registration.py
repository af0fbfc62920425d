"""Registering an enterprise: validation (USCC per GB 32100-2015, industry, park), placement, linking the user."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role, User
from exchange.audit.models import AuditEvent
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.enterprises.service import uscc_problem
from exchange.reference.uscc import check_character
from tests.exchange.enterprises.conftest import registration
from tests.factories import valid_uscc


def _wrong_check(code: str) -> str:
    other = next(c for c in "0123456789" if c != code[17])
    return code[:17] + other


def test_a_new_enterprise_is_pending_and_its_registrant_becomes_a_member(
    client: TestClient, session: Session, make_user, token_for
) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    r = client.post("/api/v1/enterprises", json=registration(), headers=token_for(user))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending"
    assert body["contact_name"] == "王伟"  # the registrant sees the private view
    assert r.headers["Location"] == f"/api/v1/enterprises/{body['id']}"
    session.refresh(user)
    assert user.enterprise_id == body["id"]
    # Placed from the address: Fengfeng mining district (峰峰矿区) of Handan, Hebei
    assert (body["province_code"], body["city_code"], body["county_code"]) == ("130000", "130400", "130406")
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "enterprise.register")).all()
    assert [(e.actor_id, e.entity_id, e.to_state) for e in events] == [(user.id, body["id"], "pending")]


def test_an_enterprise_in_a_park_is_placed_at_the_park_unless_coordinates_are_given(
    client: TestClient, make_user, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    park = make_park(lat=36.42, lon=114.21)
    r = client.post(
        "/api/v1/enterprises",
        json=registration(1, address="某工业园区内", park_id=park.id),
        headers=token_for(make_user()),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["lat"], r.json()["lon"], r.json()["park_id"]) == (36.42, 114.21, park.id)
    assert r.json()["city_code"] == "130400"
    r = client.post(
        "/api/v1/enterprises",
        json=registration(2, park_id=park.id, lat=39.9042, lon=116.4074),
        headers=token_for(make_user()),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["lat"], r.json()["province_code"]) == (39.9042, "110000")


def test_uscc_errors_name_the_problem(client: TestClient, make_user, token_for) -> None:  # type: ignore[no-untyped-def]
    headers = token_for(make_user())
    good = valid_uscc(5)
    cases = {
        _wrong_check(good): "check character",
        good[:10] + "I" + good[11:17] + check_character(good[:17]): "capital letters other than I, O, S, V and Z",
        "91ABCDEF" + good[8:17] + "0": "division code",
    }
    for code, words in cases.items():
        r = client.post("/api/v1/enterprises", json=registration(uscc=code), headers=headers)
        assert r.status_code == 422, (code, r.text)
        assert r.json()["field"] == "uscc"
        assert words in r.json()["detail"]
    r = client.post("/api/v1/enterprises", json=registration(uscc=good[:17]), headers=headers)
    assert r.status_code == 422 and "uscc" in r.json()["detail"]
    # lower case and spaces are forgiven: the code is stored upper case
    assert uscc_problem(good) is None
    r = client.post("/api/v1/enterprises", json=registration(uscc=good.lower()), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["uscc"] == good


def test_a_duplicate_uscc_is_a_conflict_on_the_field(client: TestClient, make_user, make_enterprise, token_for) -> None:  # type: ignore[no-untyped-def]
    existing = make_enterprise()
    r = client.post("/api/v1/enterprises", json=registration(uscc=existing.uscc), headers=token_for(make_user()))
    assert r.status_code == 409
    assert r.json()["field"] == "uscc"


def test_industry_park_and_address_are_checked(client: TestClient, make_user, token_for) -> None:  # type: ignore[no-untyped-def]
    headers = token_for(make_user())
    r = client.post("/api/v1/enterprises", json=registration(industry="bakery"), headers=headers)
    assert (r.status_code, r.json()["field"]) == (422, "industry")
    r = client.post("/api/v1/enterprises", json=registration(park_id=999), headers=headers)
    assert (r.status_code, r.json()["field"]) == (422, "park_id")
    r = client.post("/api/v1/enterprises", json=registration(address="Somewhere nobody knows"), headers=headers)
    assert (r.status_code, r.json()["field"]) == (422, "address")
    r = client.post("/api/v1/enterprises", json=registration(permits=["fly_ash"]), headers=headers)
    assert (r.status_code, r.json()["field"]) == (422, "permits")
    r = client.post("/api/v1/enterprises", json=registration(lat=36.5), headers=headers)
    assert (r.status_code, r.json()["field"]) == (422, "lon")


def test_only_an_enterprise_account_without_an_enterprise_registers(
    client: TestClient, session: Session, make_user, make_enterprise, make_park, token_for
) -> None:  # type: ignore[no-untyped-def]
    member = make_user(enterprise=make_enterprise())
    r = client.post("/api/v1/enterprises", json=registration(), headers=token_for(member))
    assert r.status_code == 409
    manager = make_user(Role.PARK_MANAGER, park=make_park())
    assert client.post("/api/v1/enterprises", json=registration(), headers=token_for(manager)).status_code == 403
    assert client.post("/api/v1/enterprises", json=registration()).status_code == 401
    assert session.exec(select(Enterprise).where(Enterprise.status == EnterpriseStatus.PENDING)).first() is None


def test_a_pending_enterprise_cannot_post_listings_until_approved(client: TestClient, make_user, token_for) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    headers = token_for(user)
    ent = client.post("/api/v1/enterprises", json=registration(), headers=headers).json()
    listing = {"material_code": "fly_ash", "quantity_t": "100"}
    r = client.post("/api/v1/listings", json=listing, headers=headers)
    assert r.status_code == 403
    assert "approved" in r.json()["detail"]
    admin = make_user(Role.ADMIN)
    assert client.post(f"/api/v1/enterprises/{ent['id']}/approve", headers=token_for(admin)).status_code == 200
    r = client.post("/api/v1/listings", json=listing, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["city_code"] == "130400"  # the listing defaults to the enterprise's place


def test_registering_links_the_user_in_the_same_commit(
    client: TestClient, session: Session, make_user, token_for
) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    client.post("/api/v1/enterprises", json=registration(uscc="bad"), headers=token_for(user))
    session.refresh(user)
    assert user.enterprise_id is None
    assert session.exec(select(User).where(User.enterprise_id.is_not(None))).first() is None  # type: ignore[union-attr]
