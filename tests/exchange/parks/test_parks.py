"""Parks: public list and detail, created by admins in a known city."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role
from exchange.audit.models import AuditEvent
from exchange.enterprises.models import EnterpriseStatus
from tests.factories import login


def test_parks_are_public(client: TestClient, make_park, make_enterprise) -> None:  # type: ignore[no-untyped-def]
    park = make_park("峰峰工业园区")
    make_enterprise("园区企业", park=park)
    make_enterprise("待审企业", park=park, status=EnterpriseStatus.PENDING)
    assert [p["name"] for p in client.get("/api/v1/parks").json()] == ["峰峰工业园区"]
    assert client.get(f"/api/v1/parks/{park.id}").json()["city_code"] == "130400"
    assert client.get("/api/v1/parks?city_code=140200").json() == []
    assert client.get("/api/v1/parks/999").status_code == 404
    page = client.get(f"/parks/{park.id}")
    assert "园区企业" in page.text and "待审企业" not in page.text
    assert "峰峰工业园区" in client.get("/parks").text


def test_an_admin_creates_a_park_at_the_city_centre_by_default(
    client: TestClient, session: Session, make_user, token_for
) -> None:  # type: ignore[no-untyped-def]
    admin = token_for(make_user(Role.ADMIN))
    r = client.post("/api/v1/parks", json={"name": "大同循环经济园", "city_code": "140200"}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["province_code"] == "140000" and 39 < body["lat"] < 41 and 112 < body["lon"] < 115
    r = client.post("/api/v1/parks", json={"name": "大同循环经济园", "city_code": "140200"}, headers=admin)
    assert (r.status_code, r.json()["field"]) == (409, "name")
    r = client.post("/api/v1/parks", json={"name": "某园", "city_code": "140000"}, headers=admin)
    assert (r.status_code, r.json()["field"]) == (422, "city_code")
    r = client.post("/api/v1/parks", json={"name": "某园", "city_code": "140200", "lat": 40.0}, headers=admin)
    assert r.status_code == 422
    member = token_for(make_user())
    assert client.post("/api/v1/parks", json={"name": "x", "city_code": "140200"}, headers=member).status_code == 403
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "park.create")).one().entity_id == body["id"]


def test_the_park_form_is_for_admins_and_shows_field_errors(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, make_user(Role.ADMIN))
    assert 'id="park-form"' in client.get("/parks").text
    r = client.post("/parks", data={"csrf_token": csrf, "name": "新园区", "city_code": "", "lat": "", "lon": ""})
    assert r.status_code == 422 and 'data-field="city_code"' in r.text
    r = client.post(
        "/parks",
        data={"csrf_token": csrf, "name": "新园区", "city_code": "130400", "lat": "36,5", "lon": "114.2"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get(r.headers["location"]).status_code == 200
