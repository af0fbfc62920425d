"""Hand-built cases: each rule, each unmatched reason, pins, forbidden pairs, marginal values."""

from __future__ import annotations

import pytest
from geopy.distance import great_circle
from helpers import demand, problem, supply

from solver import Accept, MaterialRule, Params, Pin, Problem, Status, solve
from solver.validate import violations


def _by_pair(solution: object) -> dict[tuple[str, str], float]:
    return {(a.supply, a.demand): a.quantity_t for a in solution.allocations}  # type: ignore[attr-defined]


def _reason(solution: object, sid: str) -> object:
    return next(u for u in solution.unmatched if u.supply == sid)  # type: ignore[attr-defined]


def test_distance_is_geopy_great_circle_times_detour() -> None:
    p = Problem(
        (supply("s1", 10, lon=114.51),),
        (demand("d1", 10, lon=114.9),),
        params=Params(0.35, 1.3),
    )
    sol = solve(p)
    expected = great_circle((38.0, 114.51), (38.0, 114.9)).km * 1.3
    assert sol.allocations[0].distance_km == pytest.approx(expected, rel=1e-12)
    assert sol.allocations[0].cost_cny == pytest.approx(10 * expected * 0.35, rel=1e-12)


def test_tonnes_first_then_cost() -> None:
    # s1 could fill the near d1, but then s2 (which only reaches d1) would be stranded.
    p = problem(
        [supply("s1", 10, lon=114.0), supply("s2", 10, lon=114.05, max_distance_km=6)],
        [demand("d1", 10, lon=114.05), demand("d2", 10, lon=114.5)],
    )
    sol = solve(p)
    assert sol.status is Status.OPTIMAL
    assert _by_pair(sol) == {("s1", "d2"): 10.0, ("s2", "d1"): 10.0}
    assert violations(p, sol) == []


def test_no_demand_for_material() -> None:
    sol = solve(problem([supply("s1", 5, material="slag")], [demand("d1", 5)]))
    assert _reason(sol, "s1").reason == "no_demand_for_material"  # type: ignore[attr-defined]


def test_no_demand_for_grade() -> None:
    p = problem([supply("s1", 5, grade="III")], [demand("d1", 5, accepts=(Accept("fly_ash", ("I", "II")),))])
    assert _reason(solve(p), "s1").reason == "no_demand_for_grade"  # type: ignore[attr-defined]


def test_grade_listed_is_accepted() -> None:
    p = problem([supply("s1", 5, grade="II")], [demand("d1", 5, accepts=(Accept("fly_ash", ("I", "II")),))])
    assert _by_pair(solve(p)) == {("s1", "d1"): 5.0}


def test_hazardous_needs_a_permit() -> None:
    mats = {"fly_ash": MaterialRule(None, hazardous=True)}
    sol = solve(problem([supply("s1", 5)], [demand("d1", 5)], materials=mats))
    assert _reason(sol, "s1").reason == "no_permitted_receiver"  # type: ignore[attr-defined]
    sol = solve(problem([supply("s1", 5)], [demand("d1", 5, permits=("fly_ash",))], materials=mats))
    assert _by_pair(sol) == {("s1", "d1"): 5.0}


def test_out_of_range_names_nearest_demand_and_distance() -> None:
    p = problem(
        [supply("s1", 5, lon=114.0, max_distance_km=50)],
        [demand("d_far", 5, lon=115.5), demand("d_near", 5, lon=114.8)],
    )
    u = _reason(solve(p), "s1")
    assert u.reason == "no_compatible_demand_within_range"  # type: ignore[attr-defined]
    assert u.nearest_demand == "d_near"  # type: ignore[attr-defined]
    km = great_circle((38.0, 114.0), (38.0, 114.8)).km
    assert u.nearest_distance_km == pytest.approx(km, abs=0.01)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("supply_km", "demand_km", "material_km", "carries"),
    [(None, None, None, True), (8.7, None, None, False), (None, 8.7, None, False), (None, None, 8.7, False),
     (8.9, 8.9, 8.9, True)],
)  # fmt: skip
def test_every_distance_limit_applies(
    supply_km: float | None, demand_km: float | None, material_km: float | None, carries: bool
) -> None:
    # The pair is ~8.78 km apart.
    p = problem(
        [supply("s1", 5, lon=114.0, max_distance_km=supply_km)],
        [demand("d1", 5, lon=114.1, max_distance_km=demand_km)],
        materials={"fly_ash": MaterialRule(material_km)},
    )
    assert bool(solve(p).allocations) is carries


def test_filled_by_other_supply_names_the_filler() -> None:
    p = problem(
        [supply("s_near", 10, lon=114.0), supply("s_far", 10, lon=114.3)],
        [demand("d1", 10, lon=114.01)],
    )
    sol = solve(p)
    u = _reason(sol, "s_far")
    assert u.reason == "demand_filled_by_other_supply"  # type: ignore[attr-defined]
    assert u.nearest_demand == "d1" and "s_near" in u.detail  # type: ignore[attr-defined]


def test_forbidden_pair_is_not_used() -> None:
    p = problem(
        [supply("s1", 10, lon=114.0)],
        [demand("d1", 10, lon=114.01), demand("d2", 10, lon=114.2)],
        forbidden=(("s1", "d1"),),
    )
    sol = solve(p)
    assert _by_pair(sol) == {("s1", "d2"): 10.0}
    assert violations(p, sol) == []
    only = problem([supply("s1", 10)], [demand("d1", 10)], forbidden=(("s1", "d1"),))
    assert _reason(solve(only), "s1").reason == "all_pairs_forbidden"  # type: ignore[attr-defined]


def test_pin_forces_a_pair_even_against_cost() -> None:
    p = problem(
        [supply("s1", 10, lon=114.0)],
        [demand("d_near", 10, lon=114.01), demand("d_far", 10, lon=114.2)],
        pinned=(Pin("s1", "d_far", 4.0),),
    )
    sol = solve(p)
    assert _by_pair(sol) == {("s1", "d_far"): 4.0, ("s1", "d_near"): 6.0}
    assert violations(p, sol) == []


def test_pin_on_incompatible_pair_is_invalid() -> None:
    p = problem([supply("s1", 10, grade="III")], [demand("d1", 10, accepts=(Accept("fly_ash", ("I",)),))],
                pinned=(Pin("s1", "d1", 1.0),))  # fmt: skip
    sol = solve(p)
    assert sol.status is Status.INVALID and sol.error_field == "pinned[0]"


def test_pins_exceeding_a_lot_are_invalid() -> None:
    p = problem(
        [supply("s1", 10)],
        [demand("d1", 8), demand("d2", 8)],
        pinned=(Pin("s1", "d1", 6.0), Pin("s1", "d2", 6.0)),
    )
    sol = solve(p)
    assert sol.status is Status.INVALID and sol.error_field == "pinned[1].quantity_t"
    assert "s1" in sol.message


def test_min_lot_all_or_nothing() -> None:
    p = problem([supply("s1", 100, min_lot_t=60)], [demand("d1", 50, lon=114.01), demand("d2", 50, lon=114.02)])
    sol = solve(p)
    assert sol.allocations == ()
    assert _reason(sol, "s1").reason == "below_minimum_lot"  # type: ignore[attr-defined]


def test_min_lot_prefers_feasible_split() -> None:
    # Flow alone would send 40 to the near d1 and 60 to d2; the lot of 50 forbids the 40.
    p = problem(
        [supply("s1", 100, min_lot_t=50)],
        [demand("d1", 40, lon=114.01), demand("d2", 100, lon=114.3)],
    )
    sol = solve(p)
    assert _by_pair(sol) == {("s1", "d2"): 100.0}
    assert violations(p, sol) == []


def test_min_lot_leftover_below_lot() -> None:
    p = problem([supply("s1", 100, min_lot_t=60)], [demand("d1", 70, lon=114.01)])
    sol = solve(p)
    assert _by_pair(sol) == {("s1", "d1"): 70.0}
    u = _reason(sol, "s1")
    assert u.reason == "below_minimum_lot" and u.quantity_t == pytest.approx(30.0)  # type: ignore[attr-defined]


def test_min_lot_and_pin_conflict_is_infeasible() -> None:
    p = problem(
        [supply("s1", 100, min_lot_t=60)],
        [demand("d1", 50), demand("d2", 100)],
        pinned=(Pin("s1", "d1", 10.0), Pin("s1", "d2", 60.0)),
    )
    assert solve(p).status is Status.INFEASIBLE


def test_marginal_value_of_demand_capacity() -> None:
    # s1 has 20 t, d1 10 t (full, could take more), d2 out of s1's range.
    p = problem(
        [supply("s1", 20, lon=114.0, max_distance_km=20), supply("s2", 5, lon=115.0)],
        [demand("d1", 10, lon=114.01), demand("d2", 30, lon=115.01)],
    )
    sol = solve(p)
    assert sol.demand_marginal_value == {"d1": 1.0, "d2": 0.0}


def test_marginal_value_through_a_reroute() -> None:
    # s2 has spare tonnes and reaches only d1; d2 is reached only by s1.  Both demands end full.
    p = problem(
        [supply("s1", 10, lon=114.0), supply("s2", 10, lon=113.9, max_distance_km=10)],
        [demand("d1", 10, lon=113.95), demand("d2", 5, lon=114.05, max_distance_km=10)],
    )
    sol = solve(p)
    assert sol.summary is not None and sol.summary.matched_t == pytest.approx(15.0)
    # Raising either demand lets s2's spare tonnes flow (directly, or by pushing s1 over to d2).
    assert sol.demand_marginal_value == {"d1": 1.0, "d2": 1.0}


def test_marginal_value_with_min_lot_can_exceed_one() -> None:
    p = problem([supply("s1", 20, min_lot_t=20)], [demand("d1", 19.5)])
    sol = solve(p)
    assert sol.allocations == ()
    assert sol.demand_marginal_value["d1"] == pytest.approx(20.0)


def test_progress_reports_stages_in_order() -> None:
    seen: list[tuple[str, float]] = []
    solve(problem([supply("s1", 5)], [demand("d1", 5)]), progress=lambda s, f: seen.append((s, f)))
    stages = [s for s, _ in seen]
    assert stages[0] == "building_pairs" and stages[-1] == "explaining"
    assert "solving" in stages and all(0.0 <= f <= 1.0 for _, f in seen)


def test_invalid_problem_in_code_reports_field() -> None:
    p = problem([supply("s1", -5)], [demand("d1", 5)])
    sol = solve(p)
    assert sol.status is Status.INVALID and sol.error_field == "supplies[0].quantity_t"
