"""Utilisation statistics for regulators, park managers and the public.

Every figure is one SQL GROUP BY over the denormalised ``ledger_entry`` table (region codes, park, material
category and bulk flag are columns of the row, with composite indexes), so nothing is aggregated in Python
except the handful of result rows. The rate follows the National Bureau of Statistics' definition:

    综合利用率 = 综合利用量 ÷ (产生量 + 综合利用往年贮存量) × 100%
    utilisation rate = utilised ÷ (generated + prior-years' stock utilised this year)

where "utilised" is in-house utilisation plus what was sent out for utilisation (each including its prior-year
stock part). A period or region with nothing generated and no prior stock utilised has no rate ("no data").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session

from exchange.accounts.models import Role, User
from exchange.core.errors import Forbidden, NotFound, Unprocessable
from exchange.enterprises.models import Enterprise
from exchange.ledgers.models import LedgerEntry
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.stats import disclosure
from exchange.stats.disclosure import TOTAL, CellStats, Status

L: Any = LedgerEntry.__table__  # type: ignore[attr-defined]
UTILISED = L.c.utilised_in_house_kg + L.c.sent_for_utilisation_kg
PRIOR_UTILISED = L.c.utilised_in_house_prior_stock_kg + L.c.sent_for_utilisation_prior_stock_kg


def target_rate() -> float:
    return load_catalogue().target_bulk_utilisation.value


def rate(utilised_kg: int, denominator_kg: int) -> float | None:
    return utilised_kg / denominator_kg if denominator_kg > 0 else None


def tonnes(kg: int | None) -> Decimal:
    return (Decimal(int(kg or 0)) / 1000).quantize(Decimal("0.001"))


# ---------------------------------------------------------------- scope and filters


@dataclass(frozen=True)
class Scope:
    """The region a viewer may see: national (admin), a province, a city, or a park."""

    level: Literal["national", "province", "city", "park"]
    code: str | None = None  # region code, or the park id as text
    park_id: int | None = None

    def clauses(self, table: Any) -> list[Any]:
        if self.level == "province":
            return [table.c.province_code == self.code]
        if self.level == "city":
            return [table.c.city_code == self.code]
        if self.level == "park":
            return [table.c.park_id == self.park_id]
        return []

    @property
    def map_level(self) -> Literal["province", "city"]:
        return "province" if self.level == "national" else "city"

    @property
    def map_province(self) -> str | None:
        if self.level == "national" or self.code is None:
            return None
        return self.code[:2] + "0000"


def region_scope(code: str) -> Scope:
    if len(code) != 6 or not code.isdigit():
        raise Unprocessable("a region is a 6-digit GB/T 2260 code", field="region")
    return Scope("province", code) if code.endswith("0000") else Scope("city", code)


def _within(inner: Scope, outer: Scope) -> bool:
    if outer.level == "national":
        return True
    if outer.level == "province":
        return inner.level in ("province", "city", "park") and (inner.code or "")[:2] == (outer.code or "")[:2]
    if outer.level == "city":
        return inner.level in ("city", "park") and inner.code == outer.code
    return inner.level == "park" and inner.park_id == outer.park_id


def scope_for(session: Session, user: User, region: str | None = None, park_id: int | None = None) -> Scope:
    """The viewer's jurisdiction, optionally narrowed to a region or park inside it (403 outside it)."""
    if user.role is Role.ADMIN:
        base = Scope("national")
    elif user.role is Role.REGULATOR:
        if not user.region_code:
            raise Forbidden("your regulator account has no region")
        base = region_scope(user.region_code)
    elif user.role is Role.PARK_MANAGER:
        if user.park_id is None:
            raise Forbidden("your account is not linked to a park")
        park = session.get(Park, user.park_id)
        base = Scope("park", park.city_code if park else None, user.park_id)
    else:
        raise Forbidden("statistics are for regulators, park managers and admins; see /public/stats")
    wanted = base
    if park_id is not None:
        park = session.get(Park, park_id)
        if park is None:
            raise NotFound(f"park {park_id} does not exist")
        wanted = Scope("park", park.city_code, park_id)
        if base.level == "province" and park.province_code != base.code:
            raise Forbidden("that park is outside your region")
    elif region:
        wanted = region_scope(region)
    if not _within(wanted, base):
        raise Forbidden("that region is outside your jurisdiction")
    return wanted


PERIOD_RE = r"^\d{4}-(0[1-9]|1[0-2])$"


@dataclass(frozen=True)
class Period:
    start: str  # YYYY-MM, inclusive
    end: str  # YYYY-MM, inclusive

    def clauses(self) -> list[Any]:
        return [L.c.period >= self.start, L.c.period <= self.end]

    @property
    def first_day(self) -> date:
        return date(int(self.start[:4]), int(self.start[5:7]), 1)

    @property
    def day_after(self) -> date:
        y, m = int(self.end[:4]), int(self.end[5:7])
        return date(y + (m == 12), m % 12 + 1, 1)


def period_for(session: Session, scope: Scope, start: str | None, end: str | None) -> Period:
    """The requested months; by default the latest calendar year with ledgers in scope."""
    if start and end:
        if start > end:
            raise Unprocessable("the period starts after it ends", field="period_from")
        return Period(start, end)
    latest = session.execute(sa.select(sa.func.max(L.c.period)).where(*scope.clauses(L))).scalar_one()
    year = (latest or f"{date.today().year}-01")[:4]
    return Period(start or f"{year}-01", end or f"{year}-12")


# ---------------------------------------------------------------- figures


@dataclass
class Figures:
    generated_kg: int = 0
    utilised_kg: int = 0
    prior_utilised_kg: int = 0
    disposed_kg: int = 0
    stored_kg: int = 0
    dumped_kg: int = 0
    n_enterprises: int = 0

    @property
    def denominator_kg(self) -> int:
        return self.generated_kg + self.prior_utilised_kg

    @property
    def rate(self) -> float | None:
        return rate(self.utilised_kg, self.denominator_kg)

    def as_row(self) -> dict[str, Any]:
        return {
            "generated_t": tonnes(self.generated_kg),
            "utilised_t": tonnes(self.utilised_kg),
            "prior_stock_utilised_t": tonnes(self.prior_utilised_kg),
            "not_utilised_t": tonnes(self.stored_kg + self.disposed_kg + self.dumped_kg),
            "utilisation_rate": None if self.rate is None else round(self.rate, 4),
            "enterprises": self.n_enterprises,
        }


SUMS = (
    sa.func.coalesce(sa.func.sum(L.c.generated_kg), 0),
    sa.func.coalesce(sa.func.sum(UTILISED), 0),
    sa.func.coalesce(sa.func.sum(PRIOR_UTILISED), 0),
    sa.func.coalesce(sa.func.sum(L.c.disposed_kg - L.c.disposed_prior_stock_kg), 0),
    sa.func.coalesce(sa.func.sum(L.c.stored_kg), 0),
    sa.func.coalesce(sa.func.sum(L.c.dumped_kg), 0),
    sa.func.count(sa.distinct(L.c.enterprise_id)),
)


def _figures(row: Sequence[Any]) -> Figures:
    return Figures(*(int(v or 0) for v in row))


def _grouped(
    session: Session, scope: Scope, period: Period, keys: Sequence[Any], *, bulk_only: bool = False
) -> list[tuple[tuple[Any, ...], Figures]]:
    where = [*scope.clauses(L), *period.clauses()]
    if bulk_only:
        where.append(L.c.counts_toward_bulk_target.is_(True))
    stmt = sa.select(*keys, *SUMS).where(*where)
    if keys:
        stmt = stmt.group_by(*keys)
    n = len(keys)
    return [(tuple(r[:n]), _figures(r[n:])) for r in session.execute(stmt)]


def totals(session: Session, scope: Scope, period: Period, *, bulk_only: bool = False) -> Figures:
    rows = _grouped(session, scope, period, [], bulk_only=bulk_only)
    return rows[0][1] if rows else Figures()


def by_material(session: Session, scope: Scope, period: Period) -> list[dict[str, Any]]:
    cat = load_catalogue()
    out = []
    for (code,), f in _grouped(session, scope, period, [L.c.material_code]):
        m = cat.find(code)
        out.append(
            {
                "material_code": code,
                "material_zh": m.name_zh if m else code,
                "material_en": m.name_en if m else code,
                "bulk": bool(m and m.counts_toward_bulk_target),
                **f.as_row(),
            }
        )
    return sorted(out, key=lambda r: -r["generated_t"])


def by_category(session: Session, scope: Scope, period: Period) -> list[dict[str, Any]]:
    rows = _grouped(session, scope, period, [L.c.category, L.c.counts_toward_bulk_target])
    out = [{"category": c, "bulk": bool(b), **f.as_row()} for (c, b), f in rows]
    return sorted(out, key=lambda r: (not r["bulk"], -r["generated_t"]))


def trend(
    session: Session, scope: Scope, period: Period, granularity: Literal["month", "year"], *, bulk_only: bool = True
) -> list[dict[str, Any]]:
    """The rate by month within the period, or by year over every year on file."""
    if granularity == "month":
        rows = _grouped(session, scope, period, [L.c.period], bulk_only=bulk_only)
    else:
        everything = Period("0000-01", "9999-12")
        rows = _grouped(session, scope, everything, [L.c.year], bulk_only=bulk_only)
    target = target_rate()
    out = [{"period": str(k), **f.as_row(), "target_rate": target} for (k,), f in rows]
    return sorted(out, key=lambda r: r["period"])


def by_region(session: Session, scope: Scope, period: Period, *, bulk_only: bool = True) -> list[dict[str, Any]]:
    """For the choropleth: provinces (national scope) or cities (within a province, city or park)."""
    from exchange.reference.places import load_divisions

    key = L.c.province_code if scope.map_level == "province" else L.c.city_code
    divs = load_divisions()
    out = []
    for (code,), f in _grouped(session, scope, period, [key], bulk_only=bulk_only):
        if code is None:
            continue
        d = divs.get(code)
        out.append(
            {
                "region_code": code,
                "name_zh": d.name_zh if d else code,
                "name_en": d.name_en if d else code,
                **f.as_row(),
            }
        )
    return sorted(out, key=lambda r: r["region_code"])


def laggards(
    session: Session, scope: Scope, period: Period, level: Literal["city", "park", "enterprise"], limit: int = 20
) -> list[dict[str, Any]]:
    """Bulk solid waste: who is furthest below the target (lowest rate first), with the tonnes short of it."""
    key = {"city": L.c.city_code, "park": L.c.park_id, "enterprise": L.c.enterprise_id}[level]
    rows = [(k, f) for (k,), f in _grouped(session, scope, period, [key], bulk_only=True) if k is not None]
    target = target_rate()
    rows = [(k, f) for k, f in rows if f.rate is not None and f.rate < target]
    rows.sort(key=lambda kf: (kf[1].rate, -kf[1].denominator_kg))
    rows = rows[:limit]
    names = _names(session, level, [k for k, _ in rows])
    return [
        {
            "level": level,
            "key": str(k),
            "name": names.get(k, str(k)),
            **f.as_row(),
            "shortfall_t": tonnes(max(0, round(target * f.denominator_kg) - f.utilised_kg)),
        }
        for k, f in rows
    ]


def _names(session: Session, level: str, keys: list[Any]) -> dict[Any, str]:
    if not keys:
        return {}
    if level == "enterprise":
        ent: Any = Enterprise
        return dict(session.execute(sa.select(ent.id, ent.name).where(ent.id.in_(keys))).tuples().all())
    if level == "park":
        park: Any = Park
        return dict(session.execute(sa.select(park.id, park.name).where(park.id.in_(keys))).tuples().all())
    from exchange.reference.places import load_divisions

    divs = load_divisions()
    out: dict[Any, str] = {}
    for k in keys:
        d = divs.get(k)
        out[k] = d.name_zh if d else str(k)
    return out


def stranded(session: Session, scope: Scope, period: Period, limit: int = 15) -> list[dict[str, Any]]:
    """Materials generated but not utilised (stored, disposed, dumped), with open supply still unallocated."""
    cat = load_catalogue()
    open_supply: dict[str, int] = {}
    try:
        from exchange.listings.models import Listing, ListingKind, ListingStatus

        lt: Any = Listing.__table__  # type: ignore[attr-defined]
        stmt = (
            sa.select(lt.c.material_code, sa.func.sum(lt.c.quantity_kg - lt.c.allocated_kg))
            .where(lt.c.kind == ListingKind.SUPPLY, lt.c.status == ListingStatus.OPEN, *scope.clauses(lt))
            .group_by(lt.c.material_code)
        )
        open_supply = {code: int(kg or 0) for code, kg in session.execute(stmt)}
    except ImportError:  # pragma: no cover - listings are part of the platform
        pass
    out = []
    for (code,), f in _grouped(session, scope, period, [L.c.material_code]):
        left = f.stored_kg + f.disposed_kg + f.dumped_kg
        if left <= 0:
            continue
        m = cat.find(code)
        out.append(
            {
                "material_code": code,
                "material_zh": m.name_zh if m else code,
                "material_en": m.name_en if m else code,
                "not_utilised_t": tonnes(left),
                "generated_t": tonnes(f.generated_kg),
                "utilisation_rate": None if f.rate is None else round(f.rate, 4),
                "open_supply_unallocated_t": tonnes(open_supply.get(code, 0)),
            }
        )
    out.sort(key=lambda r: -r["not_utilised_t"])
    return out[:limit]


def co2_avoided_t(material_rows: Sequence[dict[str, Any]]) -> Decimal:
    """Utilised tonnes × the catalogue's avoided-CO2 factor per material (sourced or flagged estimates)."""
    cat = load_catalogue()
    total = Decimal(0)
    for r in material_rows:
        m = cat.find(r["material_code"])
        if m is not None:
            total += r["utilised_t"] * Decimal(repr(m.co2_avoided_t_per_t.value))
    return total.quantize(Decimal("0.001"))


# ---------------------------------------------------------------- the exchange's contribution


def _rounds() -> tuple[Any, Any, Any] | None:
    try:
        from exchange.rounds import models as rm
    except ImportError:
        return None
    return getattr(rm, "Agreement", None), getattr(rm, "Delivery", None), getattr(rm, "Proposal", None)


def _ent_scope(scope: Scope, ent: Any) -> list[Any]:
    return scope.clauses(ent)


def exchange_contribution(session: Session, scope: Scope, period: Period) -> dict[str, Any]:
    """Tonnes delivered through agreements (supplier in scope, delivered in the period) and open proposals."""
    models = _rounds()
    delivered_kg = delivered_bulk_kg = open_kg = open_bulk_kg = 0
    available = False
    if models is not None and models[0] is not None and models[1] is not None:
        agreement: Any = models[0].__table__
        delivery: Any = models[1].__table__
        proposal: Any = models[2].__table__ if models[2] is not None else None
        ent = Enterprise.__table__.alias("supplier")  # type: ignore[attr-defined]
        bulk_codes = [m.code for m in load_catalogue().bulk_materials()]
        is_bulk = sa.case((agreement.c.material_code.in_(bulk_codes), delivery.c.quantity_kg), else_=0)
        stmt = (
            sa.select(
                sa.func.coalesce(sa.func.sum(delivery.c.quantity_kg), 0), sa.func.coalesce(sa.func.sum(is_bulk), 0)
            )
            .select_from(delivery.join(agreement, agreement.c.id == delivery.c.agreement_id))
            .join(ent, ent.c.id == agreement.c.supplier_enterprise_id)
            .where(
                delivery.c.delivered_on >= period.first_day,
                delivery.c.delivered_on < period.day_after,
                *_ent_scope(scope, ent),
            )
        )
        delivered_kg, delivered_bulk_kg = (int(v) for v in session.execute(stmt).one())
        available = True
        if proposal is not None and {"quantity_kg", "material_code", "state"} <= set(proposal.c.keys()):
            supplier_col = next(
                (proposal.c[c] for c in ("supplier_enterprise_id", "supply_enterprise_id") if c in proposal.c), None
            )
            if supplier_col is not None:
                pbulk = sa.case((proposal.c.material_code.in_(bulk_codes), proposal.c.quantity_kg), else_=0)
                pstmt = (
                    sa.select(
                        sa.func.coalesce(sa.func.sum(proposal.c.quantity_kg), 0),
                        sa.func.coalesce(sa.func.sum(pbulk), 0),
                    )
                    .select_from(proposal.join(ent, ent.c.id == supplier_col))
                    .where(sa.cast(proposal.c.state, sa.String) == "open", *_ent_scope(scope, ent))
                )
                open_kg, open_bulk_kg = (int(v) for v in session.execute(pstmt).one())
    return {
        "available": available,
        "delivered_t": tonnes(delivered_kg),
        "delivered_bulk_t": tonnes(delivered_bulk_kg),
        "open_proposals_t": tonnes(open_kg),
        "open_proposals_bulk_t": tonnes(open_bulk_kg),
        "_open_bulk_kg": open_bulk_kg,
    }


def flows(session: Session, scope: Scope, period: Period) -> list[dict[str, Any]]:
    """Sankey links: producing industry → consuming industry, tonnes delivered through agreements in the period."""
    models = _rounds()
    if models is None or models[0] is None or models[1] is None:
        return []
    agreement, delivery = models[0].__table__, models[1].__table__
    sup = Enterprise.__table__.alias("supplier")  # type: ignore[attr-defined]
    con = Enterprise.__table__.alias("consumer")  # type: ignore[attr-defined]
    stmt = (
        sa.select(sup.c.industry, con.c.industry, sa.func.sum(delivery.c.quantity_kg))
        .select_from(delivery.join(agreement, agreement.c.id == delivery.c.agreement_id))
        .join(sup, sup.c.id == agreement.c.supplier_enterprise_id)
        .join(con, con.c.id == agreement.c.consumer_enterprise_id)
        .where(
            delivery.c.delivered_on >= period.first_day, delivery.c.delivered_on < period.day_after, *scope.clauses(sup)
        )
        .group_by(sup.c.industry, con.c.industry)
    )
    cat = load_catalogue()

    def name(code: str) -> str:
        ind = cat.industry(code)
        return ind.name_zh if ind else code

    return [
        {"source": code_a, "target": code_b, "source_zh": name(code_a), "target_zh": name(code_b), "tonnes": tonnes(kg)}
        for code_a, code_b, kg in session.execute(stmt)
        if kg
    ]


# ---------------------------------------------------------------- the dashboard


@dataclass
class Dashboard:
    scope: Scope
    period: Period
    kpis: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def dashboard(session: Session, scope: Scope, period: Period) -> Dashboard:
    all_f = totals(session, scope, period)
    bulk_f = totals(session, scope, period, bulk_only=True)
    materials = by_material(session, scope, period)
    contribution = exchange_contribution(session, scope, period)
    open_bulk_kg = contribution.pop("_open_bulk_kg")
    projected = rate(bulk_f.utilised_kg + open_bulk_kg, bulk_f.denominator_kg) if contribution["available"] else None
    kpis = {
        "generated_t": tonnes(all_f.generated_kg),
        "utilised_t": tonnes(all_f.utilised_kg),
        "utilisation_rate": all_f.rate,
        "bulk_generated_t": tonnes(bulk_f.generated_kg),
        "bulk_utilised_t": tonnes(bulk_f.utilised_kg),
        "bulk_utilisation_rate": bulk_f.rate,
        "target_rate": target_rate(),
        "projected_bulk_rate": projected,
        "co2_avoided_t": co2_avoided_t(materials),
        "enterprises": all_f.n_enterprises,
        **contribution,
    }
    tables = {
        "materials": materials,
        "categories": by_category(session, scope, period),
        "trend_month": trend(session, scope, period, "month"),
        "trend_year": trend(session, scope, period, "year"),
        "regions": by_region(session, scope, period),
        "laggards_city": laggards(session, scope, period, "city") if scope.level in ("national", "province") else [],
        "laggards_park": laggards(session, scope, period, "park") if scope.level != "park" else [],
        "laggards_enterprise": laggards(session, scope, period, "enterprise"),
        "stranded": stranded(session, scope, period),
        "flows": flows(session, scope, period),
    }
    return Dashboard(scope, period, kpis, tables)


TABLES = (
    "materials",
    "categories",
    "trend_month",
    "trend_year",
    "regions",
    "laggards_city",
    "laggards_park",
    "laggards_enterprise",
    "stranded",
    "flows",
)


def table(session: Session, scope: Scope, period: Period, name: str) -> list[dict[str, Any]]:
    """One of the dashboard's tables by name (for the API and the CSV/XLSX exports)."""
    match name:
        case "materials":
            return by_material(session, scope, period)
        case "categories":
            return by_category(session, scope, period)
        case "trend_month":
            return trend(session, scope, period, "month")
        case "trend_year":
            return trend(session, scope, period, "year")
        case "regions":
            return by_region(session, scope, period)
        case "laggards_city" | "laggards_park" | "laggards_enterprise":
            return laggards(session, scope, period, name.removeprefix("laggards_"))  # type: ignore[arg-type]
        case "stranded":
            return stranded(session, scope, period)
        case "flows":
            return flows(session, scope, period)
    raise NotFound(f"no statistics table {name!r}; choose one of {', '.join(TABLES)}")


# ---------------------------------------------------------------- public statistics with disclosure control


def _cell_stats(session: Session, period: Period, keys: Sequence[Any]) -> dict[tuple[Any, ...], tuple[CellStats, int]]:
    """Per cell (bulk only): enterprise count, the largest single enterprise's generation and utilisation, and
    the prior-year stock utilised (for the rate's denominator). Two GROUP BYs in one statement."""
    where = [*period.clauses(), L.c.counts_toward_bulk_target.is_(True)]
    inner = (
        sa.select(
            *keys,
            L.c.enterprise_id,
            sa.func.sum(L.c.generated_kg).label("g"),
            sa.func.sum(UTILISED).label("u"),
            sa.func.sum(PRIOR_UTILISED).label("p"),
        )
        .where(*where)
        .group_by(*keys, L.c.enterprise_id)
        .subquery()
    )
    names = [k.name for k in keys]
    outer = sa.select(
        *(inner.c[n] for n in names),
        sa.func.count(),
        sa.func.sum(inner.c.g),
        sa.func.max(inner.c.g),
        sa.func.sum(inner.c.u),
        sa.func.max(inner.c.u),
        sa.func.sum(inner.c.p),
    )
    if names:
        outer = outer.group_by(*(inner.c[n] for n in names))
    out: dict[tuple[Any, ...], tuple[CellStats, int]] = {}
    n = len(names)
    for r in session.execute(outer):
        if not r[n]:
            continue
        stats = CellStats(int(r[n]), int(r[n + 1] or 0), int(r[n + 2] or 0), int(r[n + 3] or 0), int(r[n + 4] or 0))
        out[tuple(r[:n])] = (stats, int(r[n + 5] or 0))
    return out


@dataclass
class PublicTable:
    period: Period
    provinces: list[str]
    materials: list[str]
    cells: dict[tuple[str, str], dict[str, Any]]  # (province or TOTAL, material or TOTAL) → published cell


def public_table(session: Session, period: Period) -> PublicTable:
    """Bulk industrial solid waste by province × material with national and provincial totals, protected."""
    interior = _cell_stats(session, period, [L.c.province_code, L.c.material_code])
    rows_tot = _cell_stats(session, period, [L.c.province_code])
    cols_tot = _cell_stats(session, period, [L.c.material_code])
    grand = _cell_stats(session, period, [])
    provinces = sorted({p for p, _ in interior if p is not None})
    materials = sorted({m for _, m in interior})
    cells: dict[tuple[Any, Any], tuple[CellStats, int]] = {}
    for (p, m), v in interior.items():
        if p is not None:
            cells[(p, m)] = v
    for (p,), v in rows_tot.items():
        if p is not None:
            cells[(p, TOTAL)] = v
    for (m,), v in cols_tot.items():
        cells[(TOTAL, m)] = v
    if () in grand:
        cells[(TOTAL, TOTAL)] = grand[()]
    status = disclosure.suppress({k: v[0] for k, v in cells.items()}, list(provinces), list(materials))
    published: dict[tuple[str, str], dict[str, Any]] = {}
    for key, st in status.items():
        entry: dict[str, Any] = {"status": st.value}
        if st is Status.PUBLISHED:
            s, prior_kg = cells[key]
            r = rate(s.utilised_kg, s.generated_kg + prior_kg)
            entry.update(
                generated_t=tonnes(s.generated_kg),
                utilised_t=tonnes(s.utilised_kg),
                utilisation_rate=None if r is None else round(r, 4),
            )
        published[(str(key[0]), str(key[1]))] = entry
    return PublicTable(period, provinces, materials, published)


def public_period(session: Session, year: int | None) -> Period:
    if year is None:
        latest = session.execute(sa.select(sa.func.max(L.c.period))).scalar_one()
        year = int((latest or str(date.today().year))[:4])
    return Period(f"{year}-01", f"{year}-12")
