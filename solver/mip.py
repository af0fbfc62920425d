"""The minimum-lot engine: the same lexicographic objective as `flow`, as a CP-SAT model.

A minimum lot ("either nothing or at least 30 t") makes the problem non-convex, so it needs a
MIP; it is only used for the connected components that contain such a supply.  Variables are
integer kilograms, so CP-SAT's integer arithmetic is exact on tonnes.  One search worker and a
deterministic time limit keep the answer byte-for-byte repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

from solver.flow import cost_scale_for

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MipResult:
    flow_kg: IntArray
    demand_marginal: FloatArray
    proven_optimal: bool
    feasible: bool


def _build(
    supply_kg: IntArray,
    demand_kg: IntArray,
    pair_supply: IntArray,
    pair_demand: IntArray,
    min_lot_kg: IntArray,
    lower_kg: IntArray,
) -> tuple[cp_model.CpModel, list[cp_model.IntVar]]:
    model = cp_model.CpModel()
    xs: list[cp_model.IntVar] = []
    for k in range(pair_supply.size):
        s, d = int(pair_supply[k]), int(pair_demand[k])
        cap = int(min(supply_kg[s], demand_kg[d]))
        lot = int(min_lot_kg[s])
        low = int(lower_kg[k])
        if lot > 0 and low == 0:
            # Semi-continuous: 0 or [lot, cap]; a domain says it without a helper boolean.
            domain = cp_model.Domain.from_intervals([[0, 0], [lot, cap]] if lot <= cap else [[0, 0]])
            xs.append(model.new_int_var_from_domain(domain, f"x{k}"))
        else:
            xs.append(model.new_int_var(max(low, lot), max(cap, low, lot), f"x{k}"))
    by_supply: dict[int, list[cp_model.IntVar]] = {}
    by_demand: dict[int, list[cp_model.IntVar]] = {}
    for k, x in enumerate(xs):
        by_supply.setdefault(int(pair_supply[k]), []).append(x)
        by_demand.setdefault(int(pair_demand[k]), []).append(x)
    for s, vs in by_supply.items():
        model.add(sum(vs) <= int(supply_kg[s]))
    for d, vs in by_demand.items():
        model.add(sum(vs) <= int(demand_kg[d]))
    return model, xs


def _solver(time_limit_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    # Deterministic time, not wall time, so a rerun stops at the same point.
    solver.parameters.max_deterministic_time = time_limit_s
    return solver


def _max_tonnes(model: cp_model.CpModel, xs: list[cp_model.IntVar], time_limit_s: float) -> tuple[int, bool]:
    model.maximize(sum(xs))
    solver = _solver(time_limit_s)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return -1, False
    return int(solver.objective_value), status == cp_model.OPTIMAL


def solve_min_lot(
    supply_kg: IntArray,
    demand_kg: IntArray,
    pair_supply: IntArray,
    pair_demand: IntArray,
    cost_cny_per_t: FloatArray,
    min_lot_kg: IntArray,
    lower_kg: IntArray,
    time_limit_s: float = 30.0,
) -> MipResult:
    n_d = demand_kg.size
    empty = MipResult(np.zeros(pair_supply.size, dtype=np.int64), np.zeros(n_d), True, True)
    if pair_supply.size == 0:
        return empty
    model, xs = _build(supply_kg, demand_kg, pair_supply, pair_demand, min_lot_kg, lower_kg)
    best_kg, proven = _max_tonnes(model, xs, time_limit_s)
    if best_kg < 0:
        return MipResult(empty.flow_kg, empty.demand_marginal, True, False)

    model.add(sum(xs) == best_kg)
    scale = cost_scale_for(best_kg, float(cost_cny_per_t.max()), 1)
    unit_cost = np.rint(cost_cny_per_t * scale).astype(np.int64)
    model.minimize(sum(int(c) * x for c, x in zip(unit_cost, xs, strict=True)))
    solver = _solver(time_limit_s)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return MipResult(empty.flow_kg, empty.demand_marginal, False, False)
    proven = proven and status == cp_model.OPTIMAL
    flow = np.array([solver.value(x) for x in xs], dtype=np.int64)

    # Exact marginal value: with lots, one more tonne at a consumer can unlock a whole lot (or
    # nothing), so there is no residual-graph shortcut; re-solve the tonnes stage per demand.
    marginal = np.zeros(n_d)
    for d in np.unique(pair_demand):
        bumped = demand_kg.copy()
        bumped[d] += 1000
        m2, xs2 = _build(supply_kg, bumped, pair_supply, pair_demand, min_lot_kg, lower_kg)
        for x, v in zip(xs2, flow, strict=True):
            m2.add_hint(x, int(v))
        more_kg, _ = _max_tonnes(m2, xs2, time_limit_s)
        marginal[d] = max(0, more_kg - best_kg) / 1000.0
    return MipResult(flow, marginal, proven, True)
