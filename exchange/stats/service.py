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
from exchange.core.params import PERIOD_PATTERN
from exchange.enterprises.models import Enterprise
from exchange.ledgers.models import LedgerEnterpriseYear, LedgerEntry, LedgerRegionMonth
from exchange.listings.models import Listing
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.stats import disclosure
from exchange.stats.cache import FigureCache
from exchange.stats.disclosure import TOTAL, CellStats, Status, breaks_primary_rule

L: Any = LedgerEntry.__table__  # type: ignore[attr-defined]
RM: Any = LedgerRegionMonth.__table__  # type: ignore[attr-defined]  # month × city × park × material sums
EY: Any = LedgerEnterpriseYear.__table__  # type: ignore[attr-defined]  # enterprise × year × material sums
LT: Any = Listing.__table__  # type: ignore[attr-defined]
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


def own_scope(session: Session, user: User) -> Scope:
    """The viewer's jurisdiction: the nation (admin), their province or city (regulator), their park."""
    if user.role is Role.ADMIN:
        return Scope("national")
    if user.role is Role.REGULATOR:
        if not user.region_code:
            raise Forbidden("your regulator account has no region")
        return region_scope(user.region_code)
    if user.role is Role.PARK_MANAGER:
        if user.park_id is None:
            raise Forbidden("your account is not linked to a park")
        park = session.get(Park, user.park_id)
        return Scope("park", park.city_code if park else None, user.park_id)
    raise Forbidden("statistics are for regulators, park managers and admins; see /public/stats")


def scope_for(session: Session, user: User, region: str | None = None, park_id: int | None = None) -> Scope:
    """The viewer's jurisdiction, optionally narrowed to a region or park inside it (403 outside it)."""
    base = own_scope(session, user)
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


PERIOD_RE = PERIOD_PATTERN


@dataclass(frozen=True)
class Period:
    start: str  # YYYY-MM, inclusive
    end: str  # YYYY-MM, inclusive

    def clauses(self, table: Any) -> list[Any]:
        return [table.c.period >= self.start, table.c.period <= self.end]

    @property
    def whole_years(self) -> bool:
        return self.start.endswith("-01") and self.end.endswith("-12")

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
    latest = session.execute(sa.select(sa.func.max(RM.c.period)).where(*scope.clauses(RM))).scalar_one()
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

    @property
    def denominator_kg(self) -> int:
        return self.generated_kg + self.prior_utilised_kg

    @property
    def not_utilised_kg(self) -> int:
        return self.stored_kg + self.disposed_kg + self.dumped_kg

    @property
    def rate(self) -> float | None:
        return rate(self.utilised_kg, self.denominator_kg)

    def as_row(self) -> dict[str, Any]:
        return {
            "generated_t": tonnes(self.generated_kg),
            "utilised_t": tonnes(self.utilised_kg),
            "prior_stock_utilised_t": tonnes(self.prior_utilised_kg),
            "not_utilised_t": tonnes(self.not_utilised_kg),
            "utilisation_rate": None if self.rate is None else round(self.rate, 4),
        }


def _sums(t: Any) -> tuple[Any, ...]:
    return tuple(
        sa.func.coalesce(sa.func.sum(t.c[c]), 0)
        for c in ("generated_kg", "utilised_kg", "prior_utilised_kg", "disposed_kg", "stored_kg", "dumped_kg")
    )


def _figures(row: Sequence[Any]) -> Figures:
    return Figures(*(int(v or 0) for v in row))


def hazardous_codes() -> list[str]:
    return [m.code for m in load_catalogue().materials if m.hazardous]


def _grouped(
    session: Session,
    scope: Scope,
    period: Period | None,
    keys: Sequence[str],
    *,
    bulk_only: bool = False,
    general_only: bool = False,
) -> list[tuple[tuple[Any, ...], Figures]]:
    """One GROUP BY over the month × city × park × material summary (None: every month on file).

    `general_only` leaves hazardous wastes out: the NBS rate is that of general industrial solid waste."""
    where = [*scope.clauses(RM)]
    if period is not None:
        where += period.clauses(RM)
    if bulk_only:
        where.append(RM.c.counts_toward_bulk_target.is_(True))
    if general_only:
        where.append(RM.c.material_code.not_in(hazardous_codes()))
    key_cols = [RM.c[k] for k in keys]
    stmt = sa.select(*key_cols, *_sums(RM)).where(*where)
    if key_cols:
        stmt = stmt.group_by(*key_cols)
    n = len(keys)
    return [(tuple(r[:n]), _figures(r[n:])) for r in session.execute(stmt)]


def totals(
    session: Session, scope: Scope, period: Period, *, bulk_only: bool = False, general_only: bool = True
) -> Figures:
    """General industrial solid waste (hazardous wastes excluded), or its bulk part."""
    rows = _grouped(session, scope, period, [], bulk_only=bulk_only, general_only=general_only)
    return rows[0][1] if rows else Figures()


def _material_names(code: str) -> dict[str, Any]:
    m = load_catalogue().find(code)
    return {
        "material_code": code,
        "material_zh": m.name_zh if m else code,
        "material_en": m.name_en if m else code,
        "bulk": bool(m and m.counts_toward_bulk_target),
        "hazardous": bool(m and m.hazardous),
    }


def by_material(session: Session, scope: Scope, period: Period) -> list[dict[str, Any]]:
    rows = _grouped(session, scope, period, ["material_code"])
    out = [{**_material_names(code), **f.as_row()} for (code,), f in rows]
    return sorted(out, key=lambda r: (-r["generated_t"], r["material_code"]))


def by_category(session: Session, scope: Scope, period: Period) -> list[dict[str, Any]]:
    rows = _grouped(session, scope, period, ["category", "counts_toward_bulk_target"])
    out = [{"category": c, "bulk": bool(b), **f.as_row()} for (c, b), f in rows]
    return sorted(out, key=lambda r: (not r["bulk"], -r["generated_t"], r["category"]))


def trend(
    session: Session, scope: Scope, period: Period, granularity: Literal["month", "year"], *, bulk_only: bool = True
) -> list[dict[str, Any]]:
    """The rate by month within the period, or by year over every year on file."""
    if granularity == "month":
        rows = _grouped(session, scope, period, ["period"], bulk_only=bulk_only)
    else:
        rows = _grouped(session, scope, None, ["year"], bulk_only=bulk_only)
    target = target_rate()
    out = [{"period": str(k), **f.as_row(), "target_rate": target} for (k,), f in rows]
    return sorted(out, key=lambda r: r["period"])


def by_region(session: Session, scope: Scope, period: Period, *, bulk_only: bool = True) -> list[dict[str, Any]]:
    """For the choropleth: provinces (national scope) or cities (within a province, city or park)."""
    from exchange.reference.places import load_divisions

    key = "province_code" if scope.map_level == "province" else "city_code"
    divs = load_divisions()
    out = []
    for (code,), f in _grouped(session, scope, period, [key], bulk_only=bulk_only):
        if not code:
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


# ---------------------------------------------------------------- per-enterprise figures


@dataclass(frozen=True)
class EnterpriseSource:
    """Where per-enterprise sums come from: the enterprise × year summary for whole calendar years (the default
    and the public page), else the ledger rows themselves (any months, slower at national scale)."""

    table: Any
    where: list[Any]
    generated: Any
    utilised: Any
    prior: Any

    def col(self, name: str) -> Any:
        if self.table is L and name in ("province_code", "city_code"):
            return sa.func.coalesce(L.c[name], "")
        if self.table is L and name == "park_id":
            return sa.func.coalesce(L.c.park_id, 0)
        return self.table.c[name]


def enterprise_source(period: Period) -> EnterpriseSource:
    if period.whole_years:
        return EnterpriseSource(
            EY,
            [EY.c.year >= int(period.start[:4]), EY.c.year <= int(period.end[:4])],
            EY.c.generated_kg,
            EY.c.utilised_kg,
            EY.c.prior_utilised_kg,
        )
    return EnterpriseSource(L, period.clauses(L), L.c.generated_kg, UTILISED, PRIOR_UTILISED)


def enterprise_count(session: Session, scope: Scope, period: Period) -> int:
    src = enterprise_source(period)
    stmt = sa.select(sa.func.count(sa.distinct(src.col("enterprise_id")))).where(*src.where, *scope.clauses(src.table))
    return int(session.execute(stmt).scalar_one())


def _per_enterprise_bulk(session: Session, scope: Scope, period: Period) -> list[tuple[int, Figures]]:
    src = enterprise_source(period)
    eid = src.col("enterprise_id")
    stmt = (
        sa.select(
            eid,
            sa.func.coalesce(sa.func.sum(src.generated), 0),
            sa.func.coalesce(sa.func.sum(src.utilised), 0),
            sa.func.coalesce(sa.func.sum(src.prior), 0),
        )
        .where(*src.where, *scope.clauses(src.table), src.col("counts_toward_bulk_target").is_(True))
        .group_by(eid)
    )
    return [(int(e), Figures(int(g), int(u), int(p))) for e, g, u, p in session.execute(stmt)]


def laggards(
    session: Session, scope: Scope, period: Period, level: Literal["city", "park", "enterprise"], limit: int = 20
) -> list[dict[str, Any]]:
    """Bulk solid waste: who is furthest below the target (lowest rate first), with the tonnes short of it."""
    rows: list[tuple[Any, Figures]]
    if level == "enterprise":
        rows = _per_enterprise_bulk(session, scope, period)
    else:
        key = {"city": "city_code", "park": "park_id"}[level]
        rows = [(k, f) for (k,), f in _grouped(session, scope, period, [key], bulk_only=True) if k]
    target = target_rate()
    below = [(k, f) for k, f in rows if f.rate is not None and f.rate < target]
    below.sort(key=lambda kf: (kf[1].rate, -kf[1].denominator_kg, str(kf[0])))
    below = below[:limit]
    names = _names(session, level, [k for k, _ in below])
    return [
        {
            "level": level,
            "key": str(k),
            "name": names.get(k, str(k)),
            **f.as_row(),
            "shortfall_t": tonnes(max(0, round(target * f.denominator_kg) - f.utilised_kg)),
        }
        for k, f in below
    ]


def _names(session: Session, level: str, keys: list[Any]) -> dict[Any, str]:
    if not keys:
        return {}
    if level == "enterprise":
        ent: Any = Enterprise
        return {i: n for i, n in session.execute(sa.select(ent.id, ent.name).where(ent.id.in_(keys)))}
    if level == "park":
        park: Any = Park
        return {i: n for i, n in session.execute(sa.select(park.id, park.name).where(park.id.in_(keys)))}
    from exchange.reference.places import load_divisions

    divs = load_divisions()
    out: dict[Any, str] = {}
    for k in keys:
        d = divs.get(k)
        out[k] = d.name_zh if d else str(k)
    return out


def stranded(
    session: Session,
    scope: Scope,
    period: Period,
    limit: int = 15,
    materials: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Materials generated but not utilised (stored, disposed, dumped), with open supply still unallocated.

    `materials` (the by_material rows, when the caller has them) saves the second GROUP BY."""
    from exchange.listings.models import ListingKind, ListingStatus

    rows = list(materials) if materials is not None else by_material(session, scope, period)
    stmt = (
        sa.select(LT.c.material_code, sa.func.sum(LT.c.quantity_kg - LT.c.allocated_kg))
        .where(LT.c.kind == ListingKind.SUPPLY, LT.c.status == ListingStatus.OPEN, *scope.clauses(LT))
        .group_by(LT.c.material_code)
    )
    open_supply = {code: int(kg or 0) for code, kg in session.execute(stmt)}
    out = [
        {
            **{k: r[k] for k in ("material_code", "material_zh", "material_en", "bulk", "hazardous")},
            "not_utilised_t": r["not_utilised_t"],
            "generated_t": r["generated_t"],
            "utilisation_rate": r["utilisation_rate"],
            "open_supply_unallocated_t": tonnes(open_supply.get(r["material_code"], 0)),
        }
        for r in rows
        if r["not_utilised_t"] > 0
    ]
    out.sort(key=lambda r: (-r["not_utilised_t"], r["material_code"]))
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


def _rounds() -> Any | None:
    """The matching rounds' models, when that package is installed (the statistics work without it)."""
    try:
        from exchange.rounds import models as rm
    except ImportError:  # pragma: no cover - rounds are part of the platform
        return None
    if not all(hasattr(rm, n) for n in ("Agreement", "Delivery", "Proposal")):  # pragma: no cover
        return None
    return rm


def exchange_contribution(session: Session, scope: Scope, period: Period) -> dict[str, Any]:
    """What the exchange adds: tonnes delivered through agreements in the period (supplier in scope), and the
    tonnes still to come, i.e. open proposals plus what active agreements have not delivered yet."""
    rm = _rounds()
    out = {
        "available": rm is not None,
        "delivered_t": tonnes(0),
        "delivered_bulk_t": tonnes(0),
        "open_proposals_t": tonnes(0),
        "open_proposals_bulk_t": tonnes(0),
        "agreed_undelivered_t": tonnes(0),
        "agreed_undelivered_bulk_t": tonnes(0),
        "_pending_bulk_kg": 0,
    }
    if rm is None:
        return out
    agreement: Any = rm.Agreement.__table__
    delivery: Any = rm.Delivery.__table__
    proposal: Any = rm.Proposal.__table__
    sup = Enterprise.__table__.alias("supplier")  # type: ignore[attr-defined]
    bulk_codes = [m.code for m in load_catalogue().bulk_materials()]

    def both(qty: Any, material: Any) -> tuple[Any, Any]:
        bulk = sa.case((material.in_(bulk_codes), qty), else_=0)
        return sa.func.coalesce(sa.func.sum(qty), 0), sa.func.coalesce(sa.func.sum(bulk), 0)

    delivered = (
        sa.select(*both(delivery.c.quantity_kg, agreement.c.material_code))
        .select_from(delivery.join(agreement, agreement.c.id == delivery.c.agreement_id))
        .join(sup, sup.c.id == agreement.c.supplier_enterprise_id)
        .where(
            delivery.c.delivered_on >= period.first_day,
            delivery.c.delivered_on < period.day_after,
            *scope.clauses(sup),
        )
    )
    open_ = (
        sa.select(*both(proposal.c.quantity_kg, proposal.c.material_code))
        .select_from(proposal.join(sup, sup.c.id == proposal.c.supplier_enterprise_id))
        .where(proposal.c.state == rm.ProposalState.OPEN, *scope.clauses(sup))
    )
    agreed = (
        sa.select(*both(agreement.c.quantity_kg - agreement.c.delivered_kg, agreement.c.material_code))
        .select_from(agreement.join(sup, sup.c.id == agreement.c.supplier_enterprise_id))
        .where(agreement.c.state == rm.AgreementState.ACTIVE, *scope.clauses(sup))
    )
    d_all, d_bulk = (int(v) for v in session.execute(delivered).one())
    o_all, o_bulk = (int(v) for v in session.execute(open_).one())
    a_all, a_bulk = (int(v) for v in session.execute(agreed).one())
    out.update(
        delivered_t=tonnes(d_all),
        delivered_bulk_t=tonnes(d_bulk),
        open_proposals_t=tonnes(o_all),
        open_proposals_bulk_t=tonnes(o_bulk),
        agreed_undelivered_t=tonnes(a_all),
        agreed_undelivered_bulk_t=tonnes(a_bulk),
        _pending_bulk_kg=o_bulk + a_bulk,
    )
    return out


def flows(session: Session, scope: Scope, period: Period) -> list[dict[str, Any]]:
    """Sankey links: producing industry → consuming industry, tonnes delivered through agreements in the period."""
    rm = _rounds()
    if rm is None:
        return []
    agreement: Any = rm.Agreement.__table__
    delivery: Any = rm.Delivery.__table__
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

    def names(code: str) -> tuple[str, str]:
        ind = cat.industry(code)
        return (ind.name_zh, ind.name_en) if ind else (code, code)

    out = []
    for source, target, kg in session.execute(stmt):
        if not kg:
            continue
        (s_zh, s_en), (t_zh, t_en) = names(source), names(target)
        out.append(
            {
                "source": source,
                "target": target,
                "source_zh": s_zh,
                "source_en": s_en,
                "target_zh": t_zh,
                "target_en": t_en,
                "tonnes": tonnes(kg),
            }
        )
    return sorted(out, key=lambda r: (-r["tonnes"], r["source"], r["target"]))


# ---------------------------------------------------------------- figures outside the viewer's jurisdiction


def _outside_stats(session: Session, outer: Scope, inner: Scope, period: Period) -> CellStats:
    """Disclosure statistics of (outer minus inner), bulk only: what publishing the outer figure to someone who
    knows the inner one gives away."""
    src = enterprise_source(period)
    inside = sa.and_(*inner.clauses(src.table)) if inner.level != "national" else sa.true()
    per = (
        sa.select(
            src.col("enterprise_id").label("e"),
            sa.func.sum(src.generated).label("g"),
            sa.func.sum(src.utilised).label("u"),
        )
        .where(
            *src.where,
            *outer.clauses(src.table),
            src.col("counts_toward_bulk_target").is_(True),
            sa.not_(inside),
        )
        .group_by(src.col("enterprise_id"))
        .subquery()
    )
    n, g, max_g, u, max_u = session.execute(
        sa.select(
            _contributors(per.c.g, per.c.u),
            sa.func.sum(per.c.g),
            sa.func.max(per.c.g),
            sa.func.sum(per.c.u),
            sa.func.max(per.c.u),
        )
    ).one()
    return CellStats(int(n or 0), int(g or 0), int(max_g or 0), int(u or 0), int(max_u or 0))


def _chain(scope: Scope) -> list[Scope]:
    """The regions around a scope, innermost first: its city (for a park), its province, the nation."""
    out: list[Scope] = []
    if scope.level == "park" and scope.code:
        out.append(Scope("city", scope.code))
    if scope.level in ("park", "city") and scope.code:
        out.append(Scope("province", scope.code[:2] + "0000"))
    if scope.level != "national":
        out.append(Scope("national"))
    return out


def context_figures(session: Session, viewed: Scope, own: Scope, period: Period) -> list[dict[str, Any]]:
    """The bulk rate of the regions around the viewed scope, for comparison. A region inside the viewer's own
    jurisdiction is shown as is; one outside it is published only if what it adds to the last figure the viewer
    can already see (their jurisdiction, then each published ring) passes the disclosure rule, so that no
    enterprise outside the jurisdiction can be inferred by subtraction."""
    from exchange.reference.places import load_divisions

    divs = load_divisions()
    known = own  # the largest region whose figure the viewer knows exactly
    out: list[dict[str, Any]] = []
    for region in _chain(viewed):
        f = totals(session, region, period, bulk_only=True)
        inside = _within(region, own)
        status = Status.PUBLISHED
        if not inside:
            if known.level == "national" or breaks_primary_rule(_outside_stats(session, region, known, period)):
                status = Status.PRIMARY
            else:
                known = region
        d = divs.find(region.code or "")
        row: dict[str, Any] = {
            "level": region.level,
            "region_code": region.code or "",
            "name_zh": d.name_zh if d else "全国",
            "name_en": d.name_en if d else "China",
            "inside_jurisdiction": inside,
            "status": status.value,
        }
        if status is Status.PUBLISHED:
            row.update(generated_t=tonnes(f.generated_kg), utilised_t=tonnes(f.utilised_kg))
            row["utilisation_rate"] = None if f.rate is None else round(f.rate, 4)
        else:
            row.update(generated_t=None, utilised_t=None, utilisation_rate=None)
        out.append(row)
    return out


# ---------------------------------------------------------------- the dashboard


@dataclass
class Dashboard:
    scope: Scope
    period: Period
    kpis: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def kpis(
    session: Session, scope: Scope, period: Period, materials: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The KPI cards: general industrial solid waste, its bulk part against the target, the projection, CO2
    avoided and the exchange's contribution. `materials` (the by_material rows) saves a GROUP BY."""
    all_f = totals(session, scope, period)
    bulk_f = totals(session, scope, period, bulk_only=True)
    if materials is None:
        materials = by_material(session, scope, period)
    contribution = exchange_contribution(session, scope, period)
    pending_bulk_kg = contribution.pop("_pending_bulk_kg")
    projected = rate(bulk_f.utilised_kg + pending_bulk_kg, bulk_f.denominator_kg) if contribution["available"] else None
    return {
        "generated_t": tonnes(all_f.generated_kg),
        "utilised_t": tonnes(all_f.utilised_kg),
        "utilisation_rate": all_f.rate,
        "bulk_generated_t": tonnes(bulk_f.generated_kg),
        "bulk_utilised_t": tonnes(bulk_f.utilised_kg),
        "bulk_utilisation_rate": bulk_f.rate,
        "target_rate": target_rate(),
        "projected_bulk_rate": projected,
        "co2_avoided_t": co2_avoided_t(materials),
        "enterprises": enterprise_count(session, scope, period),
        **contribution,
    }


def dashboard(
    session: Session, scope: Scope, period: Period, own: Scope | None = None, cache: FigureCache | None = None
) -> Dashboard:
    """Every figure of the dashboard; `own` is the viewer's jurisdiction (defaults to the viewed scope). With a
    `cache`, figures computed within its lifetime for the same scope, period and jurisdiction are reused."""
    if cache is not None:
        own = own or scope
        return cache.get(("dashboard", scope, period, own), lambda: dashboard(session, scope, period, own))
    materials = by_material(session, scope, period)
    tables = {
        "materials": materials,
        "categories": by_category(session, scope, period),
        "trend_month": trend(session, scope, period, "month"),
        "trend_year": trend(session, scope, period, "year"),
        "regions": by_region(session, scope, period),
        "laggards_city": laggards(session, scope, period, "city") if scope.level in ("national", "province") else [],
        "laggards_park": laggards(session, scope, period, "park") if scope.level != "park" else [],
        "laggards_enterprise": laggards(session, scope, period, "enterprise"),
        "stranded": stranded(session, scope, period, materials=materials),
        "flows": flows(session, scope, period),
        "context": context_figures(session, scope, own or scope, period),
    }
    return Dashboard(scope, period, kpis(session, scope, period, materials), tables)


TABLES = (
    "kpis",
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
    "context",
)


def table(session: Session, scope: Scope, period: Period, name: str, own: Scope | None = None) -> list[dict[str, Any]]:
    """One of the dashboard's tables by name (for the API and the CSV/XLSX exports)."""
    match name:
        case "kpis":
            return [kpis(session, scope, period)]
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
        case "context":
            return context_figures(session, scope, own or scope, period)
    raise NotFound(f"no statistics table {name!r}; choose one of {', '.join(TABLES)}")


# ---------------------------------------------------------------- public statistics with disclosure control


def _contributors(generated: Any, utilised: Any) -> Any:
    """Enterprises that put something into a cell: one that filed zeros builds nothing, and counting it would let
    two real contributors pass the threshold of three (each could then work out the other's figure)."""
    return sa.func.coalesce(sa.func.sum(sa.case((sa.or_(generated > 0, utilised > 0), 1), else_=0)), 0)


def _cell_stats(session: Session, period: Period, keys: Sequence[str]) -> dict[tuple[Any, ...], tuple[CellStats, int]]:
    """Per cell (bulk only): contributing enterprises, the largest single enterprise's generation and utilisation, and
    the prior-year stock utilised (for the rate's denominator). Two GROUP BYs in one statement."""
    src = enterprise_source(period)
    key_cols = [src.col(k).label(k) for k in keys]
    inner = (
        sa.select(
            *key_cols,
            src.col("enterprise_id").label("e"),
            sa.func.sum(src.generated).label("g"),
            sa.func.sum(src.utilised).label("u"),
            sa.func.sum(src.prior).label("p"),
        )
        .where(*src.where, src.col("counts_toward_bulk_target").is_(True))
        .group_by(*(src.col(k) for k in keys), src.col("enterprise_id"))
        .subquery()
    )
    outer = sa.select(
        *(inner.c[k] for k in keys),
        _contributors(inner.c.g, inner.c.u),
        sa.func.sum(inner.c.g),
        sa.func.max(inner.c.g),
        sa.func.sum(inner.c.u),
        sa.func.max(inner.c.u),
        sa.func.sum(inner.c.p),
    )
    if keys:
        outer = outer.group_by(*(inner.c[k] for k in keys))
    out: dict[tuple[Any, ...], tuple[CellStats, int]] = {}
    n = len(keys)
    for r in session.execute(outer):
        if not r[n]:
            continue
        stats = CellStats(int(r[n]), int(r[n + 1] or 0), int(r[n + 2] or 0), int(r[n + 3] or 0), int(r[n + 4] or 0))
        out[tuple(r[:n])] = (stats, int(r[n + 5] or 0))
    return out


@dataclass(frozen=True)
class Leaf:
    """The smallest piece every jurisdiction is made of: one province × city × park (0: none) and, for the
    interior cells, one material. Sums over its contributing enterprises, and the largest of them."""

    province_code: str
    city_code: str
    park_id: int
    material_code: str  # TOTAL: all bulk materials together (each enterprise summed over them first)
    stats: CellStats


def _leaves(session: Session, period: Period, by_material: bool) -> list[Leaf]:
    """One GROUP BY per enterprise inside a GROUP BY per leaf (a few thousand rows at national scale)."""
    src = enterprise_source(period)
    names = ["province_code", "city_code", "park_id"] + (["material_code"] if by_material else [])
    inner = (
        sa.select(
            *(src.col(k).label(k) for k in names),
            sa.func.sum(src.generated).label("g"),
            sa.func.sum(src.utilised).label("u"),
        )
        .where(*src.where, src.col("counts_toward_bulk_target").is_(True))
        .group_by(*(src.col(k) for k in names), src.col("enterprise_id"))
        .subquery()
    )
    stmt = sa.select(
        *(inner.c[k] for k in names),
        _contributors(inner.c.g, inner.c.u),
        sa.func.sum(inner.c.g),
        sa.func.max(inner.c.g),
        sa.func.sum(inner.c.u),
        sa.func.max(inner.c.u),
    ).group_by(*(inner.c[k] for k in names))
    out = []
    for r in session.execute(stmt):
        n = int(r[len(names)] or 0)
        if n == 0:
            continue
        province, city, park = str(r[0] or "") or NO_PROVINCE, str(r[1] or ""), int(r[2] or 0)
        material = str(r[3]) if by_material else TOTAL
        g, max_g, u, max_u = (int(v or 0) for v in r[len(names) + 1 :])
        out.append(Leaf(province, city, park, material, CellStats(n, g, max_g, u, max_u)))
    return out


def _sum_stats(leaves: Sequence[Leaf]) -> CellStats:
    return CellStats(
        sum(x.stats.n_enterprises for x in leaves),
        sum(x.stats.generated_kg for x in leaves),
        max((x.stats.max_generated_kg for x in leaves), default=0),
        sum(x.stats.utilised_kg for x in leaves),
        max((x.stats.max_utilised_kg for x in leaves), default=0),
    )


def exposed_to_insiders(leaves: Sequence[Leaf]) -> set[tuple[str, str]]:
    """Public cells that break the rule for someone who knows one jurisdiction's figures exactly.

    A city's regulator sees their city on the dashboard; the public province cell minus that city is the rest of
    the province, and it must pass the rule as much as the cell itself (the dashboard's `context_figures` applies
    the same test). So a cell (province or national × material or all) is exposed when, for some province, city
    or park J that overlaps it without containing it, the enterprises of the cell outside J are fewer than 3 or
    one of them makes up more than 85%."""
    cells: dict[tuple[str, str], list[Leaf]] = {}
    for leaf in leaves:
        cells.setdefault((leaf.province_code, leaf.material_code), []).append(leaf)
        cells.setdefault((TOTAL, leaf.material_code), []).append(leaf)
    exposed: set[tuple[str, str]] = set()
    for key, members in cells.items():
        if _any_insider_breaks(key[0], members):
            exposed.add(key)
    return exposed


def _any_insider_breaks(province: str, members: Sequence[Leaf]) -> bool:
    def jurisdictions(leaf: Leaf) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if province == TOTAL and leaf.province_code != NO_PROVINCE:
            out.append(("province", leaf.province_code))
        if leaf.city_code:
            out.append(("city", leaf.city_code))
        if leaf.park_id:
            out.append(("park", leaf.park_id))
        return out

    inside: dict[tuple[str, Any], list[Leaf]] = {}
    for leaf in members:
        for j in jurisdictions(leaf):
            inside.setdefault(j, []).append(leaf)
    whole = _sum_stats(members)
    by_max_g = sorted(members, key=lambda x: -x.stats.max_generated_kg)
    by_max_u = sorted(members, key=lambda x: -x.stats.max_utilised_kg)
    for in_j in inside.values():
        part = _sum_stats(in_j)
        n = whole.n_enterprises - part.n_enterprises
        if n == 0:
            continue  # J holds the whole cell: its viewer learns nothing outside their jurisdiction
        known = set(in_j)
        max_g = next((x.stats.max_generated_kg for x in by_max_g if x not in known), 0)
        max_u = next((x.stats.max_utilised_kg for x in by_max_u if x not in known), 0)
        rest = CellStats(n, whole.generated_kg - part.generated_kg, max_g, whole.utilised_kg - part.utilised_kg, max_u)
        if breaks_primary_rule(rest):
            return True
    return False


@dataclass
class PublicTable:
    period: Period
    provinces: list[str]
    materials: list[str]
    cells: dict[tuple[str, str], dict[str, Any]]  # (province or TOTAL, material or TOTAL) → published cell


NO_PROVINCE = "000000"  # the public table's row for enterprises registered without a province


def public_table(session: Session, period: Period, cache: FigureCache | None = None) -> PublicTable:
    """Bulk industrial solid waste by province × material with national and provincial totals, protected.
    Enterprises without a province form a row of their own, so the provinces add up to the national row."""
    if cache is not None:
        return cache.get(("public", period), lambda: public_table(session, period))
    interior = _cell_stats(session, period, ["province_code", "material_code"])
    rows_tot = _cell_stats(session, period, ["province_code"])
    cols_tot = _cell_stats(session, period, ["material_code"])
    grand = _cell_stats(session, period, [])
    cells: dict[tuple[Any, Any], tuple[CellStats, int]] = {}
    for (p, m), v in interior.items():
        cells[(p or NO_PROVINCE, m)] = v
    for (p,), v in rows_tot.items():
        cells[(p or NO_PROVINCE, TOTAL)] = v
    for (m,), v in cols_tot.items():
        cells[(TOTAL, m)] = v
    if () in grand:
        cells[(TOTAL, TOTAL)] = grand[()]
    provinces = sorted({p for p, m in cells if p != TOTAL})
    materials = sorted({m for p, m in cells if m != TOTAL})
    exposed = exposed_to_insiders(_leaves(session, period, True) + _leaves(session, period, False))
    status = disclosure.suppress(
        {k: v[0] for k, v in cells.items()}, list(provinces), list(materials), also_primary=exposed
    )
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
        latest = session.execute(sa.select(sa.func.max(RM.c.year))).scalar_one()
        year = int(latest or date.today().year)
    return Period(f"{year}-01", f"{year}-12")
