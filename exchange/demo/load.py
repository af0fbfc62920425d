"""Load the demo region (`exchange.demo.generate`) into the database: `exchange load-demo [--if-empty]`.

Parks, approved enterprises, their open listings, twelve months of ledgers and one login per role. Rows go in with
bulk INSERTs (one executemany per table) and a single commit, so a load takes seconds and a failure leaves nothing
half-written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role, User, UserStatus
from exchange.accounts.service import hash_password
from exchange.audit import service as audit
from exchange.core.db import utcnow
from exchange.demo.generate import DemoDataset, generate_demo
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.ledgers.service import import_demo_ledgers
from exchange.listings.models import Listing, ListingKind, ListingStatus, QuantityBasis, Visibility
from exchange.listings.service import cny_to_fen, t_to_kg
from exchange.parks.models import Park
from exchange.reference.places import load_divisions


@dataclass
class DemoReport:
    seed: int
    skipped: str | None = None  # why nothing was loaded
    parks: int = 0
    enterprises: int = 0
    listings: int = 0
    ledger_rows: int = 0
    accounts: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.skipped:
            return f"demo not loaded: {self.skipped}"
        return (
            f"demo region loaded (seed {self.seed}) in {self.seconds:.1f} s: {self.parks} parks, "
            f"{self.enterprises} enterprises, {self.listings} listings, {self.ledger_rows} ledger rows, "
            f"{self.accounts} accounts"
        )


def _table(model: type[Any]) -> sa.Table:
    table: sa.Table = model.__table__
    return table


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.insert(_table(model)), rows)


def _ids(session: Session, column: Any, key: Any, values: Iterable[str]) -> dict[str, int]:
    """{natural key: id} for rows just inserted (one SELECT; works alike on SQLite and PostgreSQL)."""
    wanted = list(values)
    stmt = sa.select(key, column).where(key.in_(wanted))
    return {k: int(i) for k, i in session.execute(stmt)}


def load_demo(
    session: Session, seed: int = 2026, if_empty: bool = False, dataset: DemoDataset | None = None
) -> DemoReport:
    """Load the demo dataset for `seed`; `if_empty` loads only into a database without enterprises.

    Never duplicates: if the demo's enterprises are already there, nothing is loaded either way.
    """
    started = time.perf_counter()
    report = DemoReport(seed=seed)
    existing = int(session.exec(select(func.count()).select_from(Enterprise)).one())
    if if_empty and existing:
        report.skipped = f"the database already has {existing} enterprises"
        return report
    ds = dataset or generate_demo(seed)
    if existing:
        usccs = [e.uscc for e in ds.enterprises]
        if session.exec(select(Enterprise.id).where(col(Enterprise.uscc).in_(usccs)).limit(1)).first() is not None:
            report.skipped = "the demo enterprises are already loaded"
            return report
    now = utcnow()

    # Parks
    divisions = load_divisions()
    taken = set(session.exec(select(Park.name).where(col(Park.name).in_([p.name_zh for p in ds.parks]))))
    _insert(
        session,
        Park,
        [
            {
                "name": p.name_zh,
                "name_en": p.name_en,
                "province_code": divisions.get(p.city_code).province_code,
                "city_code": p.city_code,
                "lat": p.lat,
                "lon": p.lon,
                "created_at": now,
            }
            for p in ds.parks
            if p.name_zh not in taken
        ],
    )
    park_by_name = _ids(session, col(Park.id), col(Park.name), [p.name_zh for p in ds.parks])
    park_ids = {p.key: park_by_name[p.name_zh] for p in ds.parks}
    report.parks = len(ds.parks) - len(taken)

    # Enterprises: approved, as if an admin had checked them
    _insert(
        session,
        Enterprise,
        [
            {
                "name": e.name,
                "uscc": e.uscc,
                "industry": e.industry,
                "address": e.address,
                "park_id": park_ids[e.park_key] if e.park_key else None,
                "lat": e.lat,
                "lon": e.lon,
                "province_code": e.province_code,
                "city_code": e.city_code,
                "county_code": e.county_code,
                "status": EnterpriseStatus.APPROVED,
                "permits": list(e.permits),
                "contact_name": e.contact_name,
                "contact_phone": e.contact_phone,
                "contact_email": None,
                "created_at": now,
                "approved_at": now,
                "approved_by_id": None,
            }
            for e in ds.enterprises
        ],
    )
    by_uscc = _ids(session, col(Enterprise.id), col(Enterprise.uscc), [e.uscc for e in ds.enterprises])
    enterprise_ids = {e.key: by_uscc[e.uscc] for e in ds.enterprises}
    report.enterprises = len(ds.enterprises)

    # Accounts: one login per role (the dataset's list); one Argon2 hash per distinct password keeps this fast
    emails = [a.email for a in ds.accounts]
    known = set(session.exec(select(User.email).where(col(User.email).in_(emails))))
    hashes: dict[str, str] = {}
    account_rows: list[dict[str, Any]] = []
    for a in ds.accounts:
        if a.email in known:
            continue
        if a.password not in hashes:
            hashes[a.password] = hash_password(a.password)
        account_rows.append(
            {
                "email": a.email,
                "display_name": a.display_name[:120],
                "password_hash": hashes[a.password],
                "role": Role(a.role),
                "enterprise_id": enterprise_ids[a.enterprise_key] if a.enterprise_key else None,
                "park_id": park_ids[a.park_key] if a.park_key else None,
                "region_code": a.region_code,
                "locale": "zh-CN",
                "status": UserStatus.ACTIVE,
                "created_at": now,
                "password_changed_at": now,
            }
        )
    _insert(session, User, account_rows)
    report.accounts = len(account_rows)
    poster = _ids(session, col(User.id), col(User.email), emails)
    posted_by = {enterprise_ids[a.enterprise_key]: poster[a.email] for a in ds.accounts if a.enterprise_key}

    # Listings: tonnes → integer kg and CNY → fen exactly as the listings service does
    ent_by_key = {e.key: e for e in ds.enterprises}
    listing_rows: list[dict[str, Any]] = []
    for lst in ds.listings:
        e = ent_by_key[lst.enterprise_key]
        ent_id = enterprise_ids[e.key]
        visibility = Visibility(lst.visibility)
        if visibility is Visibility.PARK and e.park_key is None:
            visibility = Visibility.PUBLIC  # "park only" needs a park, as the listings service insists
        listing_rows.append(
            {
                "enterprise_id": ent_id,
                "kind": ListingKind(lst.kind),
                "material_code": lst.material,
                "grade": lst.grade,
                "accepted_grades": list(lst.accepted_grades),
                "parameters": {},
                "quantity_kg": t_to_kg(lst.quantity_t),
                "quantity_basis": QuantityBasis(lst.quantity_basis),
                "allocated_kg": 0,
                "available_from": None,
                "available_to": None,
                "price_fen_per_t": None if lst.price_cny_per_t is None else cny_to_fen(lst.price_cny_per_t),
                "price_note": None,
                "lat": e.lat,
                "lon": e.lon,
                "address": e.address,
                "province_code": e.province_code,
                "city_code": e.city_code,
                "county_code": e.county_code,
                "park_id": park_ids[e.park_key] if e.park_key else None,
                "max_distance_km": float(lst.max_distance_km) if lst.max_distance_km is not None else None,
                "notes": None,
                "visibility": visibility,
                "status": ListingStatus.OPEN,
                "version": 1,
                "created_by_id": posted_by.get(ent_id),
                "created_at": now,
                "updated_at": now,
            }
        )
    _insert(session, Listing, listing_rows)
    report.listings = len(listing_rows)

    audit.record(
        session,
        actor_id=None,
        action="demo.load",
        entity="demo",
        seed=seed,
        parks=report.parks,
        enterprises=report.enterprises,
        listings=report.listings,
        ledger_rows=len(ds.ledgers),
        accounts=report.accounts,
    )
    # Ledgers last: import_demo_ledgers commits the whole load at once.
    report.ledger_rows = import_demo_ledgers(session, ds.ledgers, enterprise_ids)
    report.seconds = time.perf_counter() - started
    return report
