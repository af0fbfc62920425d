"""The listing pages: post with the minimum, field errors in Chinese, edit with a stale version, pause and close,
history, private fields, the search page with its filters and map points."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.listings.models import Listing, ListingChange, ListingStatus
from tests.exchange.listings.conftest import World
from tests.factories import login


def _listing_id(location: str) -> int:
    match = re.match(r"/listings/(\d+)\?done=", location)
    assert match, location
    return int(match.group(1))


def test_a_listing_takes_material_and_quantity_only(client: TestClient, world: World, session: Session) -> None:
    token = login(client, world.owner.user)
    r = client.post(
        "/listings/new",
        data={"csrf_token": token, "kind": "supply", "material_code": "fly_ash", "quantity_t": "120.5"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    listing = session.get(Listing, _listing_id(r.headers["location"]))
    assert listing is not None
    assert listing.quantity_kg == 120_500
    assert listing.enterprise_id == world.owner.enterprise.id
    assert (listing.lat, listing.lon) == (world.owner.enterprise.lat, world.owner.enterprise.lon)

    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "120.5" in page.text


def test_bad_fields_are_refused_next_to_the_field_and_nothing_is_written(
    client: TestClient, world: World, session: Session
) -> None:
    token = login(client, world.owner.user)
    before = len(session.exec(select(Listing)).all())
    r = client.post(
        "/listings/new",
        data={"csrf_token": token, "kind": "supply", "material_code": "fly_ash", "quantity_t": "-3", "lat": "95"},
    )
    assert r.status_code == 422
    assert 'data-field="quantity_t"' in r.text or "data-field='quantity_t'" in r.text
    assert 'data-field="lat"' in r.text or "data-field='lat'" in r.text
    assert "-3" in r.text  # what the person typed stays in the form
    assert len(session.exec(select(Listing)).all()) == before


def test_a_form_post_without_the_csrf_token_is_refused(client: TestClient, world: World, session: Session) -> None:
    login(client, world.owner.user)
    r = client.post("/listings/new", data={"kind": "supply", "material_code": "fly_ash", "quantity_t": "1"})
    assert r.status_code == 403
    assert session.exec(select(Listing)).first() is None


def test_edit_pause_close_and_the_history_keeps_before_and_after(
    client: TestClient, world: World, session: Session, post: Callable[..., dict[str, Any]]
) -> None:
    listing = post(world.owner, quantity_t="100")
    token = login(client, world.owner.user)
    form = client.get(f"/listings/{listing['id']}/edit")
    assert form.status_code == 200 and 'name="version"' in form.text

    r = client.post(
        f"/listings/{listing['id']}/edit",
        data={
            "csrf_token": token,
            "version": str(listing["version"]),
            "kind": "supply",
            "material_code": "fly_ash",
            "quantity_t": "80",
            "quantity_basis": "per_month",
            "visibility": "public",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text

    stale = client.post(
        f"/listings/{listing['id']}/edit",
        data={
            "csrf_token": token,
            "version": str(listing["version"]),
            "kind": "supply",
            "material_code": "fly_ash",
            "quantity_t": "70",
            "quantity_basis": "per_month",
            "visibility": "public",
        },
    )
    assert stale.status_code == 409 and 'id="stale-edit"' in stale.text

    version = session.get(Listing, listing["id"]).version  # type: ignore[union-attr]
    paused = client.post(
        f"/listings/{listing['id']}/pause", data={"csrf_token": token, "version": str(version)}, follow_redirects=False
    )
    assert paused.status_code == 303
    session.expire_all()
    assert session.get(Listing, listing["id"]).status is ListingStatus.PAUSED  # type: ignore[union-attr]

    history = client.get(f"/listings/{listing['id']}/history")
    assert history.status_code == 200
    changes = session.exec(select(ListingChange).where(ListingChange.listing_id == listing["id"])).all()
    assert len(changes) >= 3  # created, edited, paused
    edited = [(c.before, c.after) for c in changes if c.action == "updated"]
    assert edited == [({"quantity_t": "100.000"}, {"quantity_t": "80.000"})]
    assert [c.action for c in changes if c.action == "paused"] == ["paused"]


def test_others_see_the_public_part_only_and_cannot_edit(
    client: TestClient, world: World, post: Callable[..., dict[str, Any]]
) -> None:
    listing = post(world.owner, price_cny_per_t="-12", price_note="合同价另议-内部")
    login(client, world.owner.user)
    own = client.get(f"/listings/{listing['id']}")
    assert "合同价另议-内部" in own.text

    client.cookies.clear()
    login(client, world.outsider.user)
    other = client.get(f"/listings/{listing['id']}")
    assert other.status_code == 200
    assert "合同价另议-内部" not in other.text
    assert client.get(f"/listings/{listing['id']}/edit").status_code in (403, 404)


def test_the_search_page_filters_and_carries_map_points(
    client: TestClient, world: World, post: Callable[..., dict[str, Any]]
) -> None:
    post(world.owner, material_code="fly_ash", quantity_t="500")
    post(world.outsider, material_code="steel_slag", quantity_t="40")
    r = client.get("/listings", params={"material_code": "fly_ash"})
    assert r.status_code == 200
    points = json.loads(re.search(r'id="listings-map-data">(.*?)</script>', r.text, re.S).group(1))  # type: ignore[union-attr]
    assert len(points) == 1 and points[0]["quantity_t"] in (500, 500.0, "500", "500.000")

    near = client.get("/listings", params={"near": "36.6, 114.5", "radius_km": "50"})
    assert near.status_code == 200
    assert near.text.count("data-listing-id=") == 1

    bad = client.get("/listings", params={"radius_km": "many"})
    assert bad.status_code == 422 and "radius_km" in bad.text


def _map_points(page: str) -> dict[int, dict[str, Any]]:
    found = re.search(r'id="listings-map-data">(.*?)</script>', page, re.S)
    assert found is not None
    return {p["id"]: p for p in json.loads(found.group(1))}


def test_the_map_shows_every_match_beyond_the_page_and_hides_where_anonymous_listings_are(
    client: TestClient, world: World, post: Callable[..., dict[str, Any]]
) -> None:
    public = [post(world.owner, quantity_t=str(10 + k), lat=36.6123, lon=114.5123) for k in range(22)]
    anonymous = post(world.owner, quantity_t="7", visibility="anonymous", lat=36.6789, lon=114.4567)
    post(world.owner, material_code="steel_slag", lat=36.6, lon=114.5)  # another material: not on this map

    seen_by_outsider = client.get("/listings", params={"material_code": "fly_ash"})
    assert seen_by_outsider.text.count("data-listing-id=") == 20  # one page of the table...
    points = _map_points(seen_by_outsider.text)
    assert set(points) == {x["id"] for x in [*public, anonymous]}  # ...every match on the map
    assert points[public[0]["id"]] == {
        "id": public[0]["id"],
        "lat": 36.6123,
        "lon": 114.5123,
        "kind": "supply",
        "material": points[public[0]["id"]]["material"],
        "quantity_t": points[public[0]["id"]]["quantity_t"],
        "approximate": False,
    }
    assert float(points[public[0]["id"]]["quantity_t"]) == 10
    hidden = points[anonymous["id"]]
    assert (hidden["lat"], hidden["lon"], hidden["approximate"]) == (36.7, 114.5, True)

    login(client, world.owner.user)  # the owner sees its own anonymous listing where it is
    own = _map_points(client.get("/listings", params={"material_code": "fly_ash"}).text)[anonymous["id"]]
    assert (own["lat"], own["lon"], own["approximate"]) == (36.6789, 114.4567, False)

    near = _map_points(client.get("/listings", params={"near": "36.61, 114.51", "radius_km": "5"}).text)
    assert anonymous["id"] not in near and public[0]["id"] in near  # 8 km away: outside the radius
