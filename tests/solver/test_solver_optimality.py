"""Random small instances against a brute-force LP over all S x D pairs (scipy linprog, HiGHS).

The reference shares nothing with the solver: compatibility and distances are recomputed here
with geopy, every S x D pair is a column, and the lexicographic objective is two LPs.
"""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import great_circle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from solver import Accept, DemandLot, MaterialRule, Params, Problem, Status, SupplyLot, solve
from solver.validate import violations

MATERIALS = ("fly_ash", "slag", "waste_oil")
GRADES = ("I", "II", "III")


@st.composite
def instances(draw: st.DrawFn) -> Problem:
    n_s = draw(st.integers(1, 6))
    n_d = draw(st.integers(1, 6))
    coord = st.tuples(st.floats(37.5, 38.5), st.floats(113.5, 114.5))
    limit = st.one_of(st.none(), st.floats(20, 120))
    tonnes = st.integers(0, 2000).map(lambda x: x / 10)  # 0.1 t steps: exact in kg
    supplies = []
    for i in range(n_s):
        lat, lon = draw(coord)
        supplies.append(
            SupplyLot(
                f"s{i}",
                draw(st.sampled_from(MATERIALS)),
                draw(tonnes),
                lat,
                lon,
                draw(st.one_of(st.none(), st.sampled_from(GRADES))),
                draw(limit),
            )
        )
    demands = []
    for j in range(n_d):
        lat, lon = draw(coord)
        mats = draw(st.lists(st.sampled_from(MATERIALS), min_size=1, max_size=3, unique=True))
        accepts = tuple(
            Accept(m, draw(st.one_of(st.none(), st.lists(st.sampled_from(GRADES), min_size=1, unique=True).map(tuple))))
            for m in mats
        )
        permits = ("waste_oil",) if draw(st.booleans()) else ()
        demands.append(DemandLot(f"d{j}", draw(tonnes), lat, lon, accepts, draw(limit), permits))
    materials = {
        "fly_ash": MaterialRule(draw(limit)),
        "slag": MaterialRule(None),
        "waste_oil": MaterialRule(draw(limit), hazardous=True),
    }
    pairs = [(s.id, d.id) for s in supplies for d in demands]
    forbidden = tuple(p for p in pairs if draw(st.integers(0, 9)) == 0)
    params = Params(draw(st.floats(0.1, 1.0)), draw(st.floats(1.0, 1.6)))
    return Problem(tuple(supplies), tuple(demands), materials, params, forbidden)


def allowed(p: Problem, s: SupplyLot, d: DemandLot) -> float | None:
    """Road km if the pair may carry tonnes, else None (independent of solver.pairs)."""
    if (s.id, d.id) in p.forbidden:
        return None
    rule = (p.materials or {}).get(s.material, MaterialRule())
    if not any(a.material == s.material and (a.grades is None or s.grade in a.grades) for a in d.accepts):
        return None
    if rule.hazardous and s.material not in d.permits:
        return None
    km = great_circle((s.lat, s.lon), (d.lat, d.lon)).km * p.params.detour_factor
    limits = [x for x in (s.max_distance_km, d.max_distance_km, rule.max_distance_km) if x is not None]
    return km if all(km <= x for x in limits) else None


def reference(p: Problem, extra_t: dict[str, float] | None = None) -> tuple[float, float]:
    """(max tonnes, min cost at max tonnes) by two LPs over every S x D pair."""
    n_s, n_d = len(p.supplies), len(p.demands)
    cols = [(i, j, allowed(p, s, d)) for i, s in enumerate(p.supplies) for j, d in enumerate(p.demands)]
    cost = np.array([km * p.params.freight_cny_per_t_km if km is not None else 0.0 for *_, km in cols])
    upper = [None if km is not None else 0.0 for *_, km in cols]
    a = np.zeros((n_s + n_d, len(cols)))
    for k, (i, j, _) in enumerate(cols):
        a[i, k] = 1
        a[n_s + j, k] = 1
    extra = extra_t or {}
    b = [s.quantity_t for s in p.supplies] + [d.quantity_t + extra.get(d.id, 0.0) for d in p.demands]
    bounds = [(0, u) for u in upper]
    first = linprog(-np.ones(len(cols)), A_ub=a, b_ub=b, bounds=bounds, method="highs")
    tonnes = -first.fun
    a2 = np.vstack([a, -np.ones(len(cols))])
    second = linprog(cost, A_ub=a2, b_ub=[*b, -(tonnes - 1e-7)], bounds=bounds, method="highs")
    return tonnes, second.fun


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_matches_brute_force_lp_and_obeys_rules(p: Problem) -> None:
    sol = solve(p)
    assert sol.status is Status.OPTIMAL
    assert violations(p, sol) == []
    assert all(a.quantity_t > 0 for a in sol.allocations)
    tonnes, cost = reference(p)
    assert sol.summary is not None
    assert sol.summary.matched_t == pytest.approx(tonnes, abs=1e-3)
    assert sol.summary.transport_cost_cny == pytest.approx(cost, rel=1e-4, abs=1e-3)


@settings(max_examples=25, deadline=None)
@given(instances())
def test_marginal_value_is_the_lp_derivative(p: Problem) -> None:
    sol = solve(p)
    base, _ = reference(p)
    for d in p.demands:
        more, _ = reference(p, {d.id: 0.001})  # one more kilogram of capacity
        assert sol.demand_marginal_value[d.id] == pytest.approx((more - base) / 0.001, abs=1e-3)


@st.composite
def lot_instances(draw: st.DrawFn) -> Problem:
    p = draw(instances())
    lots = tuple(
        SupplyLot(s.id, s.material, s.quantity_t, s.lat, s.lon, s.grade, s.max_distance_km,
                  float(draw(st.sampled_from([0, 0, 30, 80]))))
        for s in p.supplies
    )  # fmt: skip
    return Problem(lots, p.demands, p.materials, p.params, p.forbidden)


def brute_force_min_lot(p: Problem) -> float:
    """Max tonnes with lots by enumerating which pairs are open and solving the LP for each."""
    from itertools import product

    cols = [(s, d) for s in p.supplies for d in p.demands if allowed(p, s, d) is not None]
    best = 0.0
    for open_ in product((False, True), repeat=len(cols)):
        if len(cols) > 10:
            break
        lo = [s.min_lot_t if o else 0.0 for (s, _), o in zip(cols, open_, strict=True)]
        hi = [None if o else 0.0 for o in open_]
        n_s = len(p.supplies)
        a = np.zeros((n_s + len(p.demands), len(cols)))
        for k, (s, d) in enumerate(cols):
            a[p.supplies.index(s), k] = 1
            a[n_s + p.demands.index(d), k] = 1
        b = [s.quantity_t for s in p.supplies] + [d.quantity_t for d in p.demands]
        if not cols:
            break
        r = linprog(-np.ones(len(cols)), A_ub=a, b_ub=b, bounds=list(zip(lo, hi, strict=True)), method="highs")
        if r.status == 0:
            best = max(best, -r.fun)
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(lot_instances())
def test_min_lot_matches_enumeration(p: Problem) -> None:
    n_cols = sum(allowed(p, s, d) is not None for s in p.supplies for d in p.demands)
    if n_cols > 10:
        return
    sol = solve(p)
    assert violations(p, sol) == []
    assert sol.summary is not None
    assert sol.summary.matched_t == pytest.approx(brute_force_min_lot(p), abs=1e-3)
