"""The demo loader fills a fresh database quickly, exactly (tonnes → kg) and only once."""

from __future__ import annotations

import time
from functools import lru_cache

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from exchange.accounts.models import Role, User
from exchange.demo.generate import DemoDataset, generate_demo
from exchange.demo.load import load_demo
from exchange.demo.logins import demo_logins, format_logins
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.ledgers.models import LedgerEntry
from exchange.listings.models import Listing, Visibility
from exchange.parks.models import Park


@lru_cache(maxsize=1)
def _demo() -> DemoDataset:
    return generate_demo(2026)


def _count(session: Session, model: type) -> int:  # type: ignore[type-arg]
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_the_demo_loads_fast_and_every_demo_login_logs_in(session: Session, client: TestClient) -> None:
    ds = _demo()
    started = time.perf_counter()
    report = load_demo(session, if_empty=True, dataset=ds)
    assert time.perf_counter() - started < 10
    assert report.skipped is None
    assert (report.parks, report.enterprises, report.listings, report.ledger_rows, report.accounts) == (
        len(ds.parks),
        len(ds.enterprises),
        len(ds.listings),
        len(ds.ledgers),
        len(ds.accounts),
    )
    assert _count(session, Park) == len(ds.parks)
    assert _count(session, Listing) == len(ds.listings)
    assert _count(session, LedgerEntry) == len(ds.ledgers)
    statuses = set(session.exec(select(Enterprise.status)))
    assert statuses == {EnterpriseStatus.APPROVED}
    logins = demo_logins(session)
    assert {x.role for x in logins} == {r.value for r in Role}
    assert len(logins) == len(ds.accounts)
    for x in logins:
        client.cookies.clear()
        r = client.post("/api/v1/auth/login", json={"email": x.email, "password": x.password})
        assert r.status_code == 200, (x.email, r.text)
        assert r.json()["role"] == x.role
    by_email = {u.email: u for u in session.exec(select(User))}
    producer = by_email["producer@demo.example"]
    ent = session.get(Enterprise, producer.enterprise_id)
    assert ent is not None and ent.industry == "coal_power" and ent.city_code == "130400"
    manager = by_email["park.fengfeng@demo.example"]
    park = session.get(Park, manager.park_id)
    assert park is not None and park.name == "峰峰工业园区（演示）" and park.province_code == "130000"
    assert by_email["regulator.handan@demo.example"].region_code == "130400"
    text = format_logins(logins)
    assert "admin@demo.example" in text and "demo-admin-2026" in text and "峰峰工业园区（演示）" in text


def test_listings_keep_the_generator_quantities_exactly_in_kg_and_loading_again_adds_nothing(
    session: Session,
) -> None:
    ds = _demo()
    load_demo(session, dataset=ds)
    stored = sorted(session.exec(select(Listing.quantity_kg)))
    assert stored == sorted(int(x.quantity_t * 1000) for x in ds.listings)
    total_t = sum(x.quantity_t for x in ds.listings)
    assert int(session.exec(select(func.sum(Listing.quantity_kg))).one()) == int(total_t * 1000)
    # "park only" needs a park: such listings of enterprises outside parks are public
    orphans = session.exec(
        select(Listing).where(Listing.visibility == Visibility.PARK, Listing.park_id.is_(None))  # type: ignore[union-attr]
    ).all()
    assert orphans == []

    counts = [_count(session, m) for m in (Park, Enterprise, Listing, LedgerEntry, User)]
    again = load_demo(session, if_empty=True, dataset=ds)
    assert again.skipped is not None and "already" in str(again)
    forced = load_demo(session, if_empty=False, dataset=ds)
    assert forced.skipped is not None
    assert [_count(session, m) for m in (Park, Enterprise, Listing, LedgerEntry, User)] == counts
