from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from exchange.demo.generate import (
    LedgerRow,
    SyntheticEnterprise,
    generate_demo,
    generate_synthetic,
    load_factors,
)
from exchange.reference.catalogue import load_catalogue
from exchange.reference.places import load_divisions, locate_many
from exchange.reference.uscc import is_valid_uscc


@pytest.fixture(scope="module")
def demo():  # type: ignore[no-untyped-def]
    return generate_demo()


def test_same_seed_same_data_other_seed_other_data(demo) -> None:  # type: ignore[no-untyped-def]
    assert generate_demo() == demo
    assert generate_demo(seed=1).enterprises != demo.enterprises


def test_names_say_demo_and_keys_and_usccs_are_unique(demo) -> None:  # type: ignore[no-untyped-def]
    assert 250 <= len(demo.enterprises) <= 400
    assert len({e.key for e in demo.enterprises}) == len(demo.enterprises)
    assert len({e.uscc for e in demo.enterprises}) == len(demo.enterprises)
    for e in demo.enterprises:
        assert e.name.endswith("（演示）") and e.name_en.endswith("(demo)")
        assert is_valid_uscc(e.uscc)
    for p in demo.parks:
        assert p.name_zh.endswith("（演示）") and p.name_en.endswith("(demo)")


def test_every_enterprise_is_inside_its_city_boundary(demo) -> None:  # type: ignore[no-untyped-def]
    located = locate_many([e.lat for e in demo.enterprises], [e.lon for e in demo.enterprises])
    outside = [e.key for e, loc in zip(demo.enterprises, located, strict=True) if loc != (e.province_code, e.city_code)]
    assert outside == []
    divs = load_divisions()
    for e in demo.enterprises:
        if e.county_code:
            assert divs.get(e.county_code).province_code == e.province_code
        assert divs.get(e.city_code).name_zh in e.address


def test_references_resolve(demo) -> None:  # type: ignore[no-untyped-def]
    cat = load_catalogue()
    keys = {e.key for e in demo.enterprises}
    parks = {p.key for p in demo.parks}
    assert all(e.park_key in parks for e in demo.enterprises if e.park_key)
    assert all(cat.industry(e.industry) for e in demo.enterprises)
    for listing in demo.listings:
        m = cat.get(listing.material)
        assert listing.enterprise_key in keys
        assert listing.kind in ("supply", "demand")
        assert listing.quantity_t > 0 and listing.quantity_t == listing.quantity_t.quantize(Decimal("0.001"))
        if listing.grade is not None:
            assert m.grade(listing.grade) is not None
        assert all(m.grade(g) is not None for g in listing.accepted_grades)
        assert listing.permits_required == m.hazardous
    for a in demo.accounts:
        assert a.enterprise_key is None or a.enterprise_key in keys
        assert a.park_key is None or a.park_key in parks
    assert {a.role for a in demo.accounts} == {"admin", "park_manager", "regulator", "enterprise"}
    assert {a.region_code for a in demo.accounts if a.role == "regulator"} >= {"130000"}


def test_hazardous_demand_only_from_licensed_receivers(demo) -> None:  # type: ignore[no-untyped-def]
    by_key = {e.key: e for e in demo.enterprises}
    for listing in demo.listings:
        if listing.kind == "demand" and listing.permits_required:
            assert listing.material in by_key[listing.enterprise_key].permits


def test_ledgers_satisfy_the_nbs_identity(demo) -> None:  # type: ignore[no-untyped-def]
    assert demo.ledgers
    for row in demo.ledgers:
        assert row.identity_holds()
        fields = [v for k, v in vars(row).items() if k.endswith("_t")]
        assert all(isinstance(v, Decimal) and v >= 0 for v in fields)
        assert row.utilised_prior_stock_t <= row.utilised_t and row.disposed_prior_stock_t <= row.disposed_t
    per = defaultdict(set)
    for row in demo.ledgers:
        per[(row.enterprise_key, row.material)].add(row.period)
    assert all(len(p) == 12 for p in per.values())


def _f(section: str, name: str) -> float:
    f: dict[str, Any] = load_factors()
    return float(f[section][name]["value"])


def test_capacities_stay_within_the_regions_statistics(demo) -> None:  # type: ignore[no-untyped-def]
    cap = defaultdict(float)
    for e in demo.enterprises:
        cap[e.industry] += e.annual_capacity
    bounds = load_factors()["region"]["bounds"]
    assert cap["coal_power"] / 1000 <= bounds["coal_power_gw"]["value"]
    assert cap["steel_bf_bof"] + cap["steel_eaf"] <= bounds["crude_steel_mt"]["value"]
    assert cap["cement"] <= bounds["cement_mt"]["value"]


def test_supply_and_demand_are_plausible_against_the_factors(demo) -> None:  # type: ignore[no-untyped-def]
    cap = {e.key: e for e in demo.enterprises}
    fly = defaultdict(Decimal)
    for row in demo.ledgers:
        if row.material == "fly_ash":
            fly[row.enterprise_key] += row.generated_t
    for key, tonnes in fly.items():
        per_mw = float(tonnes) / cap[key].annual_capacity
        assert 250 <= per_mw <= 450, (key, per_mw)  # the literature range in factors.toml
    supply = defaultdict(Decimal)
    demand = defaultdict(Decimal)
    for listing in demo.listings:
        monthly = listing.quantity_t if listing.quantity_basis == "per_month" else listing.quantity_t / 12
        (supply if listing.kind == "supply" else demand)[listing.material] += monthly
    for material in ("fly_ash", "ggbs", "fgd_gypsum", "steel_slag", "scrap_steel", "coal_gangue"):
        ratio = demand[material] / supply[material]
        assert Decimal("0.5") <= ratio <= Decimal("2"), (material, ratio)
    # Bulk waste utilisation in the demo ledgers sits near the national picture (57% target, 2019 ≈ 55%).
    bulk = {m.code for m in load_catalogue().bulk_materials()}
    gen = sum(r.generated_t for r in demo.ledgers if r.material in bulk)
    used = sum(r.utilised_t for r in demo.ledgers if r.material in bulk)
    prior = sum(r.utilised_prior_stock_t for r in demo.ledgers if r.material in bulk)
    rate = used / (gen + prior)
    assert Decimal("0.45") <= rate <= Decimal("0.95"), rate


def test_demands_are_constrained_enough_to_need_an_optimiser(demo) -> None:  # type: ignore[no-untyped-def]
    demands = [x for x in demo.listings if x.kind == "demand"]
    assert all(d.max_distance_km for d in demands)
    assert sum(1 for d in demands if d.accepted_grades) >= len(demands) // 5


def test_synthetic_stream_is_deterministic_and_well_formed() -> None:
    rows = list(itertools.islice(generate_synthetic(300, 24, seed=5), 5000))
    assert rows == list(itertools.islice(generate_synthetic(300, 24, seed=5), 5000))
    ents = [r for r in rows if isinstance(r, SyntheticEnterprise)]
    ledgers = [r for r in rows if isinstance(r, LedgerRow)]
    assert ents and ledgers
    assert all(is_valid_uscc(e.uscc) for e in ents)
    assert all(r.identity_holds() for r in ledgers)
    assert {r.period for r in ledgers} <= {f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(24)}
