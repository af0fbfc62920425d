"""Why a supply lot kept tonnes: one stable reason code per lot, each pointing at what a person can change.

The checks run from the most fundamental (nobody takes this material) to the most circumstantial
(the consumers in range were filled by others), so the first that applies is the one to act on.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from solver.model import Problem, Unmatched
from solver.pairs import CompatGroup, PairSet, great_circle_km, unit_vectors

IntArray = NDArray[np.int64]

NO_DEMAND_FOR_MATERIAL = "no_demand_for_material"
NO_DEMAND_FOR_GRADE = "no_demand_for_grade"
NO_PERMITTED_RECEIVER = "no_permitted_receiver"
NO_COMPATIBLE_DEMAND_WITHIN_RANGE = "no_compatible_demand_within_range"
ALL_PAIRS_FORBIDDEN = "all_pairs_forbidden"
BELOW_MINIMUM_LOT = "below_minimum_lot"
DEMAND_FILLED_BY_OTHER_SUPPLY = "demand_filled_by_other_supply"
REASON_CODES = (
    NO_DEMAND_FOR_MATERIAL,
    NO_DEMAND_FOR_GRADE,
    NO_PERMITTED_RECEIVER,
    NO_COMPATIBLE_DEMAND_WITHIN_RANGE,
    ALL_PAIRS_FORBIDDEN,
    BELOW_MINIMUM_LOT,
    DEMAND_FILLED_BY_OTHER_SUPPLY,
)


def _t(kg: float) -> str:
    return f"{kg / 1000:.3f} t"


def explain_unmatched(
    problem: Problem, pairs: PairSet, flow_kg: IntArray, supply_kg: IntArray, demand_kg: IntArray
) -> list[Unmatched]:
    supplies, demands = problem.supplies, problem.demands
    n_s = len(supplies)
    out_kg = np.bincount(pairs.supply, weights=flow_kg, minlength=n_s).astype(np.int64)
    in_kg = np.bincount(pairs.demand, weights=flow_kg, minlength=len(demands)).astype(np.int64)
    left_kg = supply_kg - out_kg
    group_of: dict[int, CompatGroup] = {}
    for g in pairs.groups:
        for i in g.supplies:
            group_of[int(i)] = g
    starts = np.searchsorted(pairs.supply, np.arange(n_s + 1))
    carrying = np.flatnonzero(flow_kg > 0)
    by_demand: dict[int, list[int]] = {}
    for r in carrying[np.lexsort((carrying, -flow_kg[carrying]))]:
        by_demand.setdefault(int(pairs.demand[r]), []).append(int(r))
    result: list[Unmatched] = []
    for i in np.flatnonzero(left_kg > 0):
        s = supplies[i]
        g = group_of[int(i)]
        lo, hi = int(starts[i]), int(starts[i + 1])
        left = int(left_kg[i])
        qty = left / 1000
        if not g.accepts_material:
            result.append(Unmatched(s.id, qty, NO_DEMAND_FOR_MATERIAL, f"no consumer accepts material {s.material}"))
        elif not g.accepts_grade:
            result.append(
                Unmatched(
                    s.id,
                    qty,
                    NO_DEMAND_FOR_GRADE,
                    f"consumers take {s.material} but none accepts grade {s.grade or '(no grade given)'}",
                )
            )
        elif g.demands.size == 0:
            result.append(
                Unmatched(
                    s.id,
                    qty,
                    NO_PERMITTED_RECEIVER,
                    f"{s.material} is hazardous and no consumer that takes it holds a permit for it",
                )
            )
        elif hi == lo:
            result.append(_out_of_range_or_forbidden(problem, pairs, g, int(i), qty))
        else:
            partners = pairs.demand[lo:hi]
            room_kg = demand_kg[partners] - in_kg[partners]
            lot_kg = round(s.min_lot_t * 1000)
            nearest = lo + int(np.argmin(pairs.road_km[lo:hi]))
            near_id = demands[pairs.demand[nearest]].id
            near_km = round(float(pairs.road_km[nearest]), 2)
            if lot_kg > 0 and (left < lot_kg or room_kg.max() > 0):
                result.append(
                    Unmatched(
                        s.id,
                        qty,
                        BELOW_MINIMUM_LOT,
                        f"{_t(left)} left and open room at consumers in range is at most "
                        f"{_t(max(0, int(room_kg.max())))}, below the minimum lot of {s.min_lot_t:g} t",
                    )
                )
            else:
                fillers = _fillers(pairs, flow_kg, by_demand, int(pairs.demand[nearest]), problem)
                result.append(
                    Unmatched(
                        s.id,
                        qty,
                        DEMAND_FILLED_BY_OTHER_SUPPLY,
                        f"all {hi - lo} compatible consumers in range are full; the nearest, {near_id} "
                        f"({near_km:.2f} km), receives {fillers}",
                        near_id,
                        near_km,
                    )
                )
    return result


def _fillers(pairs: PairSet, flow_kg: IntArray, by_demand: dict[int, list[int]], demand: int, problem: Problem) -> str:
    """The (up to three) largest deliveries into a demand, for the detail text."""
    rows = by_demand.get(demand, [])[:3]
    if not rows:
        return "nothing (it lists no capacity)"
    names = [f"{problem.supplies[pairs.supply[r]].id} ({_t(flow_kg[r])})" for r in rows]
    return ", ".join(names)


def _out_of_range_or_forbidden(problem: Problem, pairs: PairSet, g: CompatGroup, i: int, qty: float) -> Unmatched:
    s = problem.supplies[i]
    detour = problem.params.detour_factor
    cand = g.demands
    lat = np.array([problem.demands[j].lat for j in cand])
    lon = np.array([problem.demands[j].lon for j in cand])
    road = great_circle_km(np.full(cand.size, s.lat), np.full(cand.size, s.lon), lat, lon) * detour
    limit = np.minimum(pairs.supply_limit_km[i], pairs.demand_limit_km[cand])
    in_range = road <= limit
    open_ = np.array([problem.demands[j].quantity_t > 0 for j in cand], dtype=bool)
    if bool(np.any(in_range)) and not bool(np.any(in_range & open_)):
        return Unmatched(
            s.id,
            qty,
            DEMAND_FILLED_BY_OTHER_SUPPLY,
            "the compatible consumers in range have no capacity listed",
        )
    if bool(np.any(in_range)):
        return Unmatched(
            s.id,
            qty,
            ALL_PAIRS_FORBIDDEN,
            "every compatible consumer in range is on the forbidden list for this lot",
        )
    assert g.tree is not None
    _, k = g.tree.query(unit_vectors(np.array([s.lat]), np.array([s.lon]))[0], k=1)
    j = int(cand[int(k)])
    near_km = round(float(road[int(k)]), 2)
    d = problem.demands[j]
    limits = []
    if s.max_distance_km is not None:
        limits.append(f"the lot's own {s.max_distance_km:g} km")
    if math.isfinite(g.material_limit_km):
        limits.append(f"{s.material}'s {g.material_limit_km:g} km")
    if d.max_distance_km is not None:
        limits.append(f"{d.id}'s {d.max_distance_km:g} km")
    return Unmatched(
        s.id,
        qty,
        NO_COMPATIBLE_DEMAND_WITHIN_RANGE,
        f"nearest compatible consumer {d.id} is {near_km:.2f} km by road, beyond {' and '.join(limits)}",
        d.id,
        near_km,
    )
