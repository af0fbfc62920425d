"""Property tests through the database: for random ledgers, no figure the statistics publish breaks the disclosure
rule (fewer than 3 enterprises, or one above 85%), whoever looks at it.

The expectations are computed here, in plain Python from the generated ledgers, independently of the SQL:
- the public table: every published cell passes the rule, and still passes it after taking away any
  jurisdiction a regulator or park manager knows (a province, a city, a park); its figures are the true sums;
  no suppressed cell can be worked out exactly from the published cells and totals;
- the dashboard's surrounding regions: for every viewer, each published region outside their jurisdiction adds to
  what they already know (their jurisdiction, then the last published region) only a part that passes the rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from exchange.demo.generate import LedgerRow
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.ledgers.service import import_demo_ledgers
from exchange.parks.models import Park
from exchange.stats import service
from exchange.stats.disclosure import TOTAL, Status
from exchange.stats.service import Period, Scope
from tests.exchange.stats.test_disclosure import exactly_recoverable
from tests.factories import valid_uscc

YEAR = Period("2025-01", "2025-12")
# (province, city, park): two parks, five cities in three provinces
LOCATIONS = [
    ("130000", "130400", "A"),
    ("130000", "130400", None),
    ("130000", "130200", None),
    ("370000", "370100", "B"),
    ("370000", "370100", None),
    ("370000", "370200", None),
    ("410000", "410100", None),
]
MATERIALS = ["fly_ash", "steel_slag", "coal_gangue", "waste_plastics"]  # waste plastics: not bulk
BULK = {"fly_ash", "steel_slag", "coal_gangue"}

contribution = st.tuples(
    st.sampled_from(MATERIALS),
    st.sampled_from(["2025-01", "2025-02", "2025-03"]),
    st.one_of(st.just(0), st.integers(1, 50), st.integers(1, 5_000)),  # generated, kg
    st.integers(0, 100),  # percent of it utilised
    st.integers(0, 100),  # percent of the utilised part taken from prior-year stock
)
enterprise = st.tuples(st.integers(0, len(LOCATIONS) - 1), st.lists(contribution, min_size=1, max_size=3))
datasets = st.lists(enterprise, min_size=0, max_size=16)


@dataclass
class Firm:
    province: str
    city: str
    park: str | None
    bulk: dict[str, tuple[int, int, int]]  # material → (generated, utilised incl. prior stock, prior stock) kg


def kg_t(kg: int) -> Decimal:
    return Decimal(kg) / 1000


def passes(members: Iterable[tuple[int, int]]) -> bool:
    """The rule, on (generated, utilised) per enterprise; nothing to protect passes."""
    contributors = [(g, u) for g, u in members if g > 0 or u > 0]
    if not contributors:
        return True
    if len(contributors) < 3:
        return False
    for i in (0, 1):
        total = sum(c[i] for c in contributors)
        if total > 0 and max(c[i] for c in contributors) * 100 > 85 * total:
            return False
    return True


def sums(firm: Firm, material: str) -> tuple[int, int, int]:
    """The firm's bulk figures for one material, or for all bulk materials (TOTAL)."""
    if material != TOTAL:
        return firm.bulk.get(material, (0, 0, 0))
    values = list(firm.bulk.values())
    return (sum(v[0] for v in values), sum(v[1] for v in values), sum(v[2] for v in values))


def load(session: Session, parks: dict[str, Park], data: list[Any]) -> list[Firm]:
    for table in ("ledger_enterprise_year", "ledger_region_month", "ledger_revision", "ledger_entry", "enterprise"):
        session.execute(sa.text(f"DELETE FROM {table}"))
    session.commit()
    firms: list[Firm] = []
    rows: list[LedgerRow] = []
    ids: dict[str, int] = {}
    for i, (where, contributions) in enumerate(data):
        province, city, park = LOCATIONS[where]
        ent = Enterprise(
            name=f"firm {i}",
            uscc=valid_uscc(900_000 + i),
            industry="coal_power",
            address="-",
            park_id=parks[park].id if park else None,
            lat=36.6,
            lon=114.5,
            province_code=province,
            city_code=city,
            status=EnterpriseStatus.APPROVED,
            contact_name="-",
            contact_phone="-",
        )
        session.add(ent)
        session.flush()
        assert ent.id is not None
        ids[f"e{i}"] = ent.id
        firm = Firm(province, city, park, {})
        seen: set[tuple[str, str]] = set()
        for material, period, g, util_pct, prior_pct in contributions:
            if (material, period) in seen:
                continue
            seen.add((material, period))
            u = g * util_pct // 100
            p = u * prior_pct // 100
            z = Decimal(0)
            rows.append(LedgerRow(f"e{i}", material, period, kg_t(g), z, z, kg_t(u), kg_t(p), z, z, kg_t(g - u), z))
            if material in BULK:
                old = firm.bulk.get(material, (0, 0, 0))
                firm.bulk[material] = (old[0] + g, old[1] + u, old[2] + p)
        firms.append(firm)
    session.commit()
    import_demo_ledgers(session, rows, ids)
    return firms


@pytest.fixture
def parks(make_park: Any) -> dict[str, Park]:
    return {
        "A": make_park(city_code="130400", province_code="130000"),
        "B": make_park(city_code="370100", province_code="370000"),
    }


def jurisdictions() -> list[tuple[str, str]]:
    out = {("province", p) for p, _, _ in LOCATIONS} | {("city", c) for _, c, _ in LOCATIONS}
    return sorted(out | {("park", k) for _, _, k in LOCATIONS if k})


def in_jurisdiction(firm: Firm, j: tuple[str, str]) -> bool:
    level, code = j
    return {"province": firm.province, "city": firm.city, "park": firm.park}[level] == code


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(datasets)
def test_no_published_public_cell_breaks_the_rule_for_anyone(
    session: Session, parks: dict[str, Park], data: list[Any]
) -> None:
    firms = load(session, parks, data)
    table = service.public_table(session, YEAR)
    status: dict[Any, Status] = {}
    for province in [TOTAL, *table.provinces]:
        for material in [TOTAL, *table.materials]:
            cell = table.cells.get((province, material), {"status": "empty"})
            status[(province, material)] = Status(cell["status"])
            members = [f for f in firms if province in (TOTAL, f.province)]
            figures = [sums(f, material)[:2] for f in members]
            if cell["status"] != "published":
                assert cell.get("generated_t") is None and cell.get("utilised_t") is None
                assert cell.get("utilisation_rate") is None
            if cell["status"] == "empty":
                assert not any(g or u for g, u in figures)
                continue
            if cell["status"] != "published":
                continue
            assert passes(figures), (province, material)
            for j in jurisdictions():
                rest = [sums(f, material)[:2] for f in members if not in_jurisdiction(f, j)]
                assert passes(rest), (province, material, j)
            generated, utilised, prior = (sum(sums(f, material)[i] for f in members) for i in range(3))
            assert cell["generated_t"] == service.tonnes(generated)
            assert cell["utilised_t"] == service.tonnes(utilised)
            expected = service.rate(utilised, generated + prior)
            assert cell["utilisation_rate"] == (None if expected is None else round(expected, 4))
    # every firm with bulk figures sits in a province row of the table
    assert {f.province for f in firms if any(g or u for g, u, _ in f.bulk.values())} <= set(table.provinces)
    assert not exactly_recoverable(status, table.provinces, table.materials)


def viewers() -> list[tuple[Scope, list[Scope]]]:
    """(own jurisdiction, the scopes it may view): provinces narrow to their cities and parks."""
    out: list[tuple[Scope, list[Scope]]] = []
    for province in sorted({p for p, _, _ in LOCATIONS}):
        cities = sorted({c for p, c, _ in LOCATIONS if p == province})
        out.append((Scope("province", province), [Scope("province", province), *(Scope("city", c) for c in cities)]))
    for city in sorted({c for _, c, _ in LOCATIONS}):
        out.append((Scope("city", city), [Scope("city", city)]))
    return out


def members_of(firms: list[Firm], scope: Scope, park_ids: dict[int, str]) -> list[Firm]:
    if scope.level == "national":
        return firms
    if scope.level == "province":
        return [f for f in firms if f.province == scope.code]
    if scope.level == "city":
        return [f for f in firms if f.city == scope.code]
    assert scope.park_id is not None
    return [f for f in firms if f.park == park_ids[scope.park_id]]


@SETTINGS
@given(datasets)
def test_surrounding_regions_reveal_nothing_outside_the_jurisdiction(
    session: Session, parks: dict[str, Park], data: list[Any]
) -> None:
    firms = load(session, parks, data)
    park_ids = {p.id: k for k, p in parks.items() if p.id is not None}
    cases = viewers()
    for key, park in parks.items():
        own = Scope("park", park.city_code, park.id)
        cases.append((own, [own]))
        province = next(p for p, _, k in LOCATIONS if k == key)
        cases[[c[0] for c in cases].index(Scope("province", province))][1].append(own)
    for own, viewed_scopes in cases:
        for viewed in viewed_scopes:
            known = {id(f) for f in members_of(firms, own, park_ids)}
            for row in service.context_figures(session, viewed, own, YEAR):
                region = Scope(row["level"], row["region_code"] or None)
                members = members_of(firms, region, park_ids)
                if row["inside_jurisdiction"]:
                    assert row["status"] == "published"
                    assert {id(f) for f in members} <= known
                    continue
                if row["status"] != "published":
                    assert row["generated_t"] is None and row["utilisation_rate"] is None
                    continue
                rest = [sums(f, TOTAL)[:2] for f in members if id(f) not in known]
                assert passes(rest), (own, viewed, row)
                assert row["generated_t"] == service.tonnes(sum(sums(f, TOTAL)[0] for f in members))
                known = {id(f) for f in members}


def test_the_properties_see_every_kind_of_cell(session: Session, parks: dict[str, Park]) -> None:
    """A fixed example where cells are published, suppressed for insiders and empty, so the properties above are
    not vacuous: three cities of three firms each in Hebei, one firm in Henan."""
    data = [(w, [("fly_ash", "2025-01", 1000 + i, 50, 0)]) for w in (0, 1, 2) for i in range(3)]
    data += [(6, [("steel_slag", "2025-01", 500, 50, 0)])]
    load(session, parks, data)
    table = service.public_table(session, YEAR)
    statuses: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, cell in table.cells.items():
        statuses[cell["status"]].add(key)
    assert ("130000", "fly_ash") in statuses["published"]  # minus any one city: six firms remain
    assert ("410000", "steel_slag") in statuses["primary"]  # one firm
    assert ("130000", "steel_slag") in statuses["empty"]
