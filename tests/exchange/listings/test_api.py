"""The listings JSON API: posting, validation, visibility, private fields, concurrent edits, history, search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role
from exchange.enterprises.models import EnterpriseStatus
from exchange.listings.models import Listing, ListingChange
from tests.exchange.listings.conftest import HANDAN, JINAN, SHIJIAZHUANG, World

Post = Callable[..., dict[str, Any]]


def test_a_minimal_listing_needs_only_material_and_quantity(client: TestClient, world: World, session: Session) -> None:
    r = client.post(
        "/api/v1/listings", json={"material_code": "fly_ash", "quantity_t": "1200.5"}, headers=world.owner.headers
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/api/v1/listings/{body['id']}"
    assert r.headers["ETag"] == f'"listing-{body["id"]}-v1"'
    assert body["kind"] == "supply" and body["status"] == "open" and body["visibility"] == "public"
    assert body["quantity_t"] == "1200.500" and body["material_name"] == "Fly ash"
    # the location defaults to the enterprise's, with its division codes
    assert (body["lat"], body["lon"]) == HANDAN and body["province_code"] == "130000"
    row = session.get(Listing, body["id"])
    assert row is not None and row.quantity_kg == 1_200_500 and row.park_id == world.park.id


def test_an_address_is_geocoded_offline(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/listings",
        json={"material_code": "steel_slag", "quantity_t": "50", "address": "山东省济南市历城区"},
        headers=world.owner.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["province_code"] == "370000" and body["city_code"] == "370100"
    assert abs(body["lat"] - 36.7) < 0.5 and abs(body["lon"] - 117.1) < 0.5


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"quantity_t": "100"}, "material_code", "Field required"),
        ({"material_code": "fly_ash"}, "quantity_t", "Field required"),
        ({"material_code": "fly_ash", "quantity_t": "0"}, "quantity_t", "greater than 0"),
        ({"material_code": "fly_ash", "quantity_t": "1.0001"}, "quantity_t", "decimal"),
        ({"material_code": "unobtainium", "quantity_t": "1"}, "material_code", "Unknown material"),
        ({"material_code": "fly_ash", "quantity_t": "1", "grade": "Z"}, "grade", "no such grade"),
        ({"material_code": "fly_ash", "quantity_t": "1", "lat": 36.0}, "", "both latitude and longitude"),
        ({"material_code": "fly_ash", "quantity_t": "1", "lat": 95, "lon": 114}, "lat", "less than or equal"),
        ({"material_code": "fly_ash", "quantity_t": "1", "address": "火星奥林匹斯山"}, "address", "could not find"),
        (
            {"material_code": "fly_ash", "quantity_t": "1", "available_from": "2025-05-01", "available_to": "2025-01"},
            "available_to",
            "date",
        ),
        ({"material_code": "fly_ash", "quantity_t": "1", "colour": "grey"}, "colour", "Extra inputs"),
        (
            {"material_code": "fly_ash", "quantity_t": "1", "kind": "demand", "grade": "II"},
            "grade",
            "grades it accepts",
        ),
        (
            {"material_code": "waste_mineral_oil", "quantity_t": "1", "kind": "demand"},
            "material_code",
            "permit",
        ),
    ],
)
def test_bad_input_answers_422_naming_the_field(
    client: TestClient, world: World, body: dict[str, Any], field: str, words: str
) -> None:
    r = client.post("/api/v1/listings", json=body, headers=world.owner.headers)
    assert r.status_code == 422, r.text
    data = r.json()
    assert words in data["detail"]
    if "errors" in data:
        assert field in [e["field"] for e in data["errors"]]
    else:
        assert data["field"] == field


def test_only_members_of_an_approved_enterprise_post(
    client: TestClient, make_enterprise: Any, make_user: Any, token_for: Any
) -> None:
    pending = make_user(Role.ENTERPRISE, enterprise=make_enterprise(status=EnterpriseStatus.PENDING))
    regulator = make_user(Role.REGULATOR, region_code="130000")
    body = {"material_code": "fly_ash", "quantity_t": "1"}
    assert client.post("/api/v1/listings", json=body).status_code == 401
    for user in (pending, regulator):
        r = client.post("/api/v1/listings", json=body, headers=token_for(user))
        assert r.status_code == 403, r.text


def test_visibility_public_park_and_anonymous(
    client: TestClient, world: World, post: Post, make_user: Any, token_for: Any
) -> None:
    public = post(world.owner, price_cny_per_t="35.5")
    park_only = post(world.owner, visibility="park")
    anonymous = post(world.owner, visibility="anonymous", price_cny_per_t="-20", address="河北省邯郸市峰峰矿区")
    manager = make_user(Role.PARK_MANAGER, park=world.park)
    far_regulator = make_user(Role.REGULATOR, region_code="370000")

    def seen(headers: dict[str, str] | None) -> set[int]:
        r = client.get("/api/v1/listings", params={"limit": 200}, headers=headers or {})
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    ids = {public["id"], park_only["id"], anonymous["id"]}
    assert seen(None) == {public["id"], anonymous["id"]}
    assert seen(world.outsider.headers) == {public["id"], anonymous["id"]}
    assert seen(world.neighbour.headers) == ids
    assert seen(token_for(manager)) == ids
    assert seen(token_for(far_regulator)) == {public["id"], anonymous["id"]}
    # a park-only id is a 404 for outsiders, exactly like an id that does not exist
    assert client.get(f"/api/v1/listings/{park_only['id']}").status_code == 404
    assert client.get(f"/api/v1/listings/{park_only['id']}", headers=world.outsider.headers).status_code == 404
    assert client.get("/api/v1/listings/999999").status_code == 404

    # anonymous: enterprise name, id, price and exact point hidden from everyone but the owner
    for headers in (None, world.neighbour.headers, world.outsider.headers):
        view = client.get(f"/api/v1/listings/{anonymous['id']}", headers=headers or {}).json()
        assert view["identity_hidden"] is True
        assert view["enterprise_name"] is None and view["enterprise_id"] is None
        assert view["price_cny_per_t"] is None and view["address"] is None
        assert "price_note" not in view and "contact_phone" not in view
    own = client.get(f"/api/v1/listings/{anonymous['id']}", headers=world.owner.headers).json()
    assert own["enterprise_name"] == "邯郸热电" and own["price_cny_per_t"] == "-20.00"
    # a public listing shows name and price to all, private fields to nobody but the owner
    pub = client.get(f"/api/v1/listings/{public['id']}").json()
    assert pub["enterprise_name"] == "邯郸热电" and pub["price_cny_per_t"] == "35.50"


def test_sorting_by_price_does_not_reveal_hidden_prices(client: TestClient, world: World, post: Post) -> None:
    cheap_hidden = post(world.owner, visibility="anonymous", price_cny_per_t="1")
    dear = post(world.owner, price_cny_per_t="100")
    cheaper = post(world.owner, price_cny_per_t="50")
    items = client.get("/api/v1/listings", params={"sort": "price"}).json()["items"]
    assert [i["id"] for i in items] == [cheaper["id"], dear["id"], cheap_hidden["id"]]


def test_private_fields_only_for_the_owner(client: TestClient, world: World, post: Post) -> None:
    listing = post(world.owner, price_note="negotiable above 500 t", price_cny_per_t="30")
    own = client.get(f"/api/v1/listings/{listing['id']}", headers=world.owner.headers).json()
    assert own["price_note"] == "negotiable above 500 t" and own["contact_phone"] == "0310-0000000"
    for headers in (world.neighbour.headers, world.outsider.headers, {}):
        other = client.get(f"/api/v1/listings/{listing['id']}", headers=headers).json()
        assert "price_note" not in other and "contact_name" not in other and "created_by_id" not in other
    # listings of others never carry private fields in search results either
    items = client.get("/api/v1/listings", headers=world.outsider.headers).json()["items"]
    assert items and all("price_note" not in i for i in items)


def test_an_edit_with_a_stale_etag_answers_412_and_a_stale_version_409(
    client: TestClient, world: World, post: Post, session: Session
) -> None:
    listing = post(world.owner)
    url = f"/api/v1/listings/{listing['id']}"
    etag = client.get(url, headers=world.owner.headers).headers["ETag"]
    first = client.patch(url, json={"quantity_t": "150"}, headers={**world.owner.headers, "If-Match": etag})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2 and first.headers["ETag"] != etag
    stale = client.patch(url, json={"quantity_t": "90"}, headers={**world.owner.headers, "If-Match": etag})
    assert stale.status_code == 412 and "changed since you read it" in stale.json()["detail"]
    lost = client.patch(url, json={"quantity_t": "90", "version": 1}, headers=world.owner.headers)
    assert lost.status_code == 409 and "version 1" in lost.json()["detail"]
    no_version = client.patch(url, json={"quantity_t": "90"}, headers=world.owner.headers)
    assert no_version.status_code == 422
    row = session.get(Listing, listing["id"])
    assert row is not None and row.quantity_kg == 150_000 and row.version == 2
    # only its own enterprise edits it
    other = client.patch(url, json={"quantity_t": "1", "version": 2}, headers=world.neighbour.headers)
    assert other.status_code == 403


def test_pause_resume_close_and_history_says_who_when_before_after(
    client: TestClient, world: World, post: Post
) -> None:
    listing = post(world.owner, price_cny_per_t="10")
    url = f"/api/v1/listings/{listing['id']}"
    h = world.owner.headers
    edit = {"version": 1, "price_cny_per_t": "12.5", "notes": "dry"}
    assert client.patch(url, json=edit, headers=h).status_code == 200
    assert client.post(f"{url}/pause", headers=h).json()["status"] == "paused"
    # a paused listing disappears from the public search, stays visible to its owner
    assert listing["id"] not in [i["id"] for i in client.get("/api/v1/listings").json()["items"]]
    assert client.get(url).status_code == 404
    assert client.get(url, headers=h).json()["status"] == "paused"
    assert client.post(f"{url}/pause", headers=h).status_code == 409
    assert client.post(f"{url}/resume", json={"version": 3}, headers=h).json()["status"] == "open"
    assert client.post(f"{url}/close", json={"version": 1}, headers=h).status_code == 409
    assert client.post(f"{url}/close", headers=h).json()["status"] == "closed"
    assert client.patch(url, json={"version": 5, "notes": "x"}, headers=h).status_code == 409

    history = client.get(f"{url}/history", headers=h).json()
    assert [c["action"] for c in history] == ["created", "updated", "paused", "resumed", "closed"]
    updated = history[1]
    assert updated["user_id"] == world.owner.user.id and updated["user_name"] == "Test user" and updated["at"]
    assert updated["before"] == {"price_cny_per_t": "10.00", "notes": None}
    assert updated["after"] == {"price_cny_per_t": "12.50", "notes": "dry"}
    assert history[2]["before"] == {"status": "open"} and history[2]["after"] == {"status": "paused"}
    # history is the owner's: others get 403 (or 404 when they cannot see the listing at all)
    assert client.get(f"{url}/history", headers=world.neighbour.headers).status_code in (403, 404)


def test_attachments_are_checked_by_content(client: TestClient, world: World, post: Post) -> None:
    listing = post(world.owner)
    url = f"/api/v1/listings/{listing['id']}/attachments"
    pdf = b"%PDF-1.4\n%test report\n"
    r = client.post(url, files=[("files", ("报告.pdf", pdf, "application/pdf"))], headers=world.owner.headers)
    assert r.status_code == 201, r.text
    att = r.json()[0]
    assert att["content_type"] == "application/pdf" and att["filename"] == "报告.pdf"
    assert client.get(att["url"]).content == pdf
    fake = client.post(
        url, files=[("files", ("x.pdf", b"MZ\x90 not a pdf", "application/pdf"))], headers=world.owner.headers
    )
    assert fake.status_code == 422 and "PDF, PNG or JPEG" in fake.json()["detail"]
    assert client.post(url, files=[("files", ("a.pdf", pdf))], headers=world.outsider.headers).status_code == 403


def test_search_filters(client: TestClient, world: World, post: Post) -> None:
    ash = post(world.owner, quantity_t="500")
    slag = post(world.owner, material_code="steel_slag", quantity_t="80")
    demand = post(world.outsider, kind="demand", quantity_t="300")
    plastics = post(world.outsider, material_code="waste_plastics", quantity_t="20")

    def ids(**params: Any) -> list[int]:
        r = client.get("/api/v1/listings", params={"sort": "created_at", **params})
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids(kind="demand") == [demand["id"]]
    assert ids(material_code="fly_ash") == [ash["id"], demand["id"]]
    assert ids(category="renewable_resource") == [plastics["id"]]
    assert ids(category="smelting_slag") == [slag["id"]]
    assert ids(province_code="370000") == [demand["id"], plastics["id"]]
    assert ids(city_code="130400") == [ash["id"], slag["id"]]
    assert ids(park_id=world.park.id) == [ash["id"], slag["id"]]
    assert ids(min_quantity_t="300") == [ash["id"], demand["id"]]
    assert ids(status="open", kind="supply", material_code="fly_ash") == [ash["id"]]
    r = client.get("/api/v1/listings", params={"category": "moon_rock"})
    assert r.status_code == 422 and r.json()["field"] == "category"


def test_within_radius_of_a_point_with_distances(client: TestClient, world: World, post: Post) -> None:
    near = post(world.owner)
    mid = post(world.owner, lat=SHIJIAZHUANG[0], lon=SHIJIAZHUANG[1])
    far = post(world.outsider, lat=JINAN[0], lon=JINAN[1])
    params: dict[str, Any] = {"near_lat": HANDAN[0], "near_lon": HANDAN[1], "sort": "distance"}
    body = client.get("/api/v1/listings", params={**params, "radius_km": 200}).json()
    assert [i["id"] for i in body["items"]] == [near["id"], mid["id"]] and body["total"] == 2
    assert body["items"][0]["distance_km"] == 0.0 and 150 < body["items"][1]["distance_km"] < 170
    everything = client.get("/api/v1/listings", params={**params, "sort": "-distance"}).json()["items"]
    assert [i["id"] for i in everything] == [far["id"], mid["id"], near["id"]]
    assert client.get("/api/v1/listings", params={"radius_km": 10}).status_code == 422
    assert client.get("/api/v1/listings", params={"sort": "distance"}).status_code == 422


def test_pagination_and_sorting(client: TestClient, world: World, post: Post, session: Session) -> None:
    made = [post(world.owner, quantity_t=str(q)) for q in (5, 50, 20, 40, 10)]
    page1 = client.get("/api/v1/listings", params={"sort": "-quantity", "limit": 2}).json()
    page2 = client.get("/api/v1/listings", params={"sort": "-quantity", "limit": 2, "offset": 2}).json()
    page3 = client.get("/api/v1/listings", params={"sort": "-quantity", "limit": 2, "offset": 4}).json()
    assert page1["total"] == 5 and page1["limit"] == 2 and page2["offset"] == 2
    quantities = [i["quantity_t"] for p in (page1, page2, page3) for i in p["items"]]
    assert quantities == ["50.000", "40.000", "20.000", "10.000", "5.000"]
    newest_first = client.get("/api/v1/listings").json()["items"]
    assert [i["id"] for i in newest_first] == [m["id"] for m in reversed(made)]
    assert client.get("/api/v1/listings", params={"sort": "colour"}).status_code == 422
    assert client.get("/api/v1/listings", params={"limit": 0}).status_code == 422
    # every write left a change record, so the history is complete
    assert len(session.exec(select(ListingChange)).all()) == 5
