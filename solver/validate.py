"""An independent check that a Solution obeys the rules of its Problem.

Deliberately shares no code with the engines or `pairs` (distances come from geopy itself), so a
bug in the fast path cannot hide by being repeated here.  Used by the tests and by `--check`.
"""

from __future__ import annotations

import math
from collections import defaultdict

from geopy.distance import great_circle

from solver.model import ContractError, Problem, Solution, Status

# Tolerances: 1 kg on tonnes, a millimetre-scale slack on km for float noise at a limit.
_T_TOL = 1e-3
_KM_TOL = 1e-6


# The engines count kilograms in int64 and multiply them by costs: a lot of more than a billion tonnes (about a
# quarter of China's yearly industrial solid waste) is a typing mistake, and far past it the arithmetic overflows.
MAX_TONNES = 1e9


def check_limits(problem: Problem) -> None:
    """Raise ContractError, naming the field, for tonnes too large to be a real lot (the contract's parser accepts
    any finite number; see MAX_TONNES)."""

    def check(path: str, value: float) -> None:
        if value > MAX_TONNES:
            raise ContractError(path, f"must be at most {MAX_TONNES:.0f} t (a billion tonnes), got {value:g}")

    for i, s in enumerate(problem.supplies):
        check(f"supplies[{i}].quantity_t", s.quantity_t)
        check(f"supplies[{i}].min_lot_t", s.min_lot_t)
    for i, d in enumerate(problem.demands):
        check(f"demands[{i}].quantity_t", d.quantity_t)
    for i, pin in enumerate(problem.pinned):
        check(f"pinned[{i}].quantity_t", pin.quantity_t)


def violations(problem: Problem, solution: Solution) -> list[str]:
    """Every rule the solution breaks, as readable strings; empty means valid."""
    if solution.status not in (Status.OPTIMAL, Status.FEASIBLE):
        return []
    found: list[str] = []
    supplies = {s.id: s for s in problem.supplies}
    demands = {d.id: d for d in problem.demands}
    materials = problem.materials or {}
    forbidden = set(problem.forbidden)
    out_t: dict[str, float] = defaultdict(float)
    in_t: dict[str, float] = defaultdict(float)
    carried: dict[tuple[str, str], float] = defaultdict(float)
    freight = problem.params.freight_cny_per_t_km
    for a in solution.allocations:
        tag = f"allocation {a.supply}->{a.demand}"
        s, d = supplies.get(a.supply), demands.get(a.demand)
        if s is None or d is None:
            found.append(f"{tag}: unknown lot")
            continue
        if not a.quantity_t > 0:
            found.append(f"{tag}: quantity {a.quantity_t} is not positive")
        out_t[s.id] += a.quantity_t
        in_t[d.id] += a.quantity_t
        carried[(s.id, d.id)] += a.quantity_t
        if (s.id, d.id) in forbidden:
            found.append(f"{tag}: pair is forbidden")
        accepts = [acc for acc in d.accepts if acc.material == s.material]
        if not accepts:
            found.append(f"{tag}: {d.id} does not accept {s.material}")
        elif not any(acc.grades is None or s.grade in acc.grades for acc in accepts):
            found.append(f"{tag}: {d.id} does not accept grade {s.grade}")
        rule = materials.get(s.material)
        if rule is not None and rule.hazardous and s.material not in d.permits:
            found.append(f"{tag}: {d.id} has no permit for hazardous {s.material}")
        road_km = great_circle((s.lat, s.lon), (d.lat, d.lon)).km * problem.params.detour_factor
        if not math.isclose(a.distance_km, road_km, rel_tol=1e-9, abs_tol=1e-6):
            found.append(f"{tag}: distance {a.distance_km} km, expected {road_km}")
        limits = [s.max_distance_km, d.max_distance_km, rule.max_distance_km if rule else None]
        for limit in limits:
            if limit is not None and road_km > limit * (1 + 1e-12) + _KM_TOL:
                found.append(f"{tag}: {road_km:.3f} km exceeds limit {limit} km")
        if not math.isclose(a.cost_cny, a.quantity_t * road_km * freight, rel_tol=1e-9, abs_tol=1e-6):
            found.append(f"{tag}: cost {a.cost_cny} does not equal tonnes x km x freight")
        if s.min_lot_t > 0 and a.quantity_t < s.min_lot_t - _T_TOL:
            found.append(f"{tag}: {a.quantity_t} t is below the minimum lot {s.min_lot_t} t")
    for sid, t in out_t.items():
        if t > supplies[sid].quantity_t + _T_TOL:
            found.append(f"supply {sid}: allocated {t} t of {supplies[sid].quantity_t} t")
    for did, t in in_t.items():
        if t > demands[did].quantity_t + _T_TOL:
            found.append(f"demand {did}: received {t} t of {demands[did].quantity_t} t")
    for pin in problem.pinned:
        if carried[(pin.supply, pin.demand)] < pin.quantity_t - _T_TOL:
            found.append(f"pin {pin.supply}->{pin.demand}: carries less than {pin.quantity_t} t")
    for u in solution.unmatched:
        left = supplies[u.supply].quantity_t - out_t[u.supply]
        if abs(u.quantity_t - left) > _T_TOL:
            found.append(f"unmatched {u.supply}: reports {u.quantity_t} t, {left} t are left")
    reported = {u.supply for u in solution.unmatched}
    for s in problem.supplies:
        if s.quantity_t - out_t[s.id] > _T_TOL and s.id not in reported:
            found.append(f"supply {s.id}: has tonnes left but no unmatched reason")
    if solution.summary is not None:
        total = sum(out_t.values())
        if abs(solution.summary.matched_t - total) > _T_TOL:
            found.append(f"summary: matched_t {solution.summary.matched_t} != {total}")
    return found
