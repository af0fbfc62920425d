"""A small park world for matching rounds: a park with its manager, a regulator, an admin, two producers and
two consumers (each with a member and an API token), and a listing factory.

Rounds are run synchronously by default: the in-process worker thread is not started (`drain()` runs the queue
in the test's own thread), so tests stay deterministic. `tests/exchange/rounds/test_jobs.py` exercises the real
thread and a real RQ worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from exchange.accounts.models import Role, User
from exchange.enterprises.models import Enterprise
from exchange.listings.models import Listing, ListingKind, Visibility
from exchange.parks.models import Park
from exchange.rounds import jobs, solving

HANDAN = (36.60, 114.50)
PERIOD = "2025-06"


@dataclass
class Member:
    enterprise: Enterprise
    user: User
    headers: dict[str, str]


@dataclass
class RoundWorld:
    park: Park
    manager: User
    manager_headers: dict[str, str]
    regulator: User
    regulator_headers: dict[str, str]
    admin: User
    admin_headers: dict[str, str]
    producer: Member
    producer2: Member
    consumer: Member
    consumer2: Member
    other_manager_headers: dict[str, str]


@pytest.fixture(autouse=True)
def no_background_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued runs wait for `drain()` instead of a background thread (opt out with the `real_thread` fixture)."""
    monkeypatch.setattr(jobs, "ensure_thread_worker", lambda engine, settings: None)


@pytest.fixture
def drain(engine: Engine) -> Callable[[], list[int]]:
    """Run every queued run now, in this thread; returns the run ids."""
    return lambda: solving.run_pending(engine)


@pytest.fixture
def world(make_park: Any, make_enterprise: Any, make_user: Any, token_for: Any) -> RoundWorld:
    park = make_park(lat=HANDAN[0], lon=HANDAN[1])
    other_park = make_park(lat=39.0, lon=118.5, city_code="130200")

    def member(name: str, lat: float, lon: float, **extra: Any) -> Member:
        ent = make_enterprise(name, park=park, lat=lat, lon=lon, **extra)
        user = make_user(Role.ENTERPRISE, enterprise=ent)
        return Member(ent, user, token_for(user))

    manager = make_user(Role.PARK_MANAGER, park=park)
    regulator = make_user(Role.REGULATOR, region_code="130000")
    admin = make_user(Role.ADMIN)
    other_manager = make_user(Role.PARK_MANAGER, park=other_park)
    return RoundWorld(
        park=park,
        manager=manager,
        manager_headers=token_for(manager),
        regulator=regulator,
        regulator_headers=token_for(regulator),
        admin=admin,
        admin_headers=token_for(admin),
        producer=member("邯郸热电", 36.60, 114.50, industry="coal_power"),
        producer2=member("峰峰电厂", 36.42, 114.20, industry="coal_power"),
        consumer=member("邯郸水泥", 36.65, 114.55, industry="cement"),
        consumer2=member("武安建材", 36.70, 114.20, industry="cement", permits=["waste_mineral_oil"]),
        other_manager_headers=token_for(other_manager),
    )


@pytest.fixture
def make_listing(session: Session) -> Callable[..., Listing]:
    def make(
        owner: Member | Enterprise,
        kind: str = "supply",
        material: str = "fly_ash",
        quantity_t: float = 100,
        *,
        grade: str | None = None,
        accepted_grades: list[str] | None = None,
        max_distance_km: float | None = 150,
        visibility: Visibility = Visibility.PUBLIC,
        lat: float | None = None,
        lon: float | None = None,
        available_from: date | None = None,
        available_to: date | None = None,
    ) -> Listing:
        ent = owner.enterprise if isinstance(owner, Member) else owner
        listing = Listing(
            enterprise_id=ent.id,
            kind=ListingKind(kind),
            material_code=material,
            grade=grade,
            accepted_grades=accepted_grades or [],
            quantity_kg=round(quantity_t * 1000),
            lat=lat if lat is not None else ent.lat,
            lon=lon if lon is not None else ent.lon,
            province_code=ent.province_code,
            city_code=ent.city_code,
            park_id=ent.park_id,
            max_distance_km=max_distance_km,
            visibility=visibility,
            available_from=available_from,
            available_to=available_to,
        )
        session.add(listing)
        session.commit()
        return listing

    return make


@pytest.fixture
def api(client: TestClient) -> Iterator[TestClient]:
    yield client


def new_round(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"scope": "park", "period": PERIOD, **body}
    r = client.post("/api/v1/rounds", json=payload, headers=headers)
    assert r.status_code == 202, r.text
    return dict(r.json())
