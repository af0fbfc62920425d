"""`solve`: pairs → engines per connected component → allocations, reasons and summary.

Splitting a national round: lots only interact through candidate pairs, so the connected
components of the pair graph (materials that never meet, regions out of each other's reach) are
independent problems.  Components without a minimum lot share one min-cost flow (cost scaling is
near-linear, so one call is faster than many small ones); components with a minimum lot each get
their own CP-SAT model, so the MIP never sees more than it must.  To run a round on several
machines or cores, build the pairs once (`pairs.build_pairs`), take
`scipy.sparse.csgraph.connected_components` of the pair graph, hand each worker a `Problem`
restricted to one bundle of components, and concatenate the solutions: the objective is a sum
over components, so the concatenation is optimal.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from solver.explain import explain_unmatched
from solver.flow import solve_flow
from solver.mip import solve_min_lot
from solver.model import (
    Allocation,
    ContractError,
    Problem,
    Solution,
    Status,
    Summary,
    check_problem,
)
from solver.pairs import PairSet, build_pairs

Progress = Callable[[str, float], None]


def _kg(tonnes: float) -> int:
    return round(tonnes * 1000)


def _pin_lower_bounds(problem: Problem, pairs: PairSet, supply_kg: np.ndarray, demand_kg: np.ndarray) -> np.ndarray:
    """Lower bound in kg per pair from the pins; raises ContractError naming the pin at fault."""
    lower = np.zeros(len(pairs), dtype=np.int64)
    if not problem.pinned:
        return lower
    n_d = len(problem.demands)
    s_pos = {s.id: i for i, s in enumerate(problem.supplies)}
    d_pos = {d.id: j for j, d in enumerate(problem.demands)}
    keys = pairs.supply * n_d + pairs.demand
    pinned_out = np.zeros(len(problem.supplies), dtype=np.int64)
    pinned_in = np.zeros(n_d, dtype=np.int64)
    for k, pin in enumerate(problem.pinned):
        i, j = s_pos[pin.supply], d_pos[pin.demand]
        row = int(np.searchsorted(keys, i * n_d + j))
        if row >= keys.size or keys[row] != i * n_d + j:
            raise ContractError(
                f"pinned[{k}]",
                f"pair ({pin.supply}, {pin.demand}) may not carry tonnes "
                "(incompatible material, grade or permit, out of range, or forbidden)",
            )
        lower[row] = _kg(pin.quantity_t)
        pinned_out[i] += lower[row]
        pinned_in[j] += lower[row]
        if pinned_out[i] > supply_kg[i]:
            raise ContractError(
                f"pinned[{k}].quantity_t",
                f"pins on supply {pin.supply} total {pinned_out[i] / 1000:g} t, more than its "
                f"{problem.supplies[i].quantity_t:g} t",
            )
        if pinned_in[j] > demand_kg[j]:
            raise ContractError(
                f"pinned[{k}].quantity_t",
                f"pins on demand {pin.demand} total {pinned_in[j] / 1000:g} t, more than its "
                f"{problem.demands[j].quantity_t:g} t",
            )
    return lower


def solve(problem: Problem, progress: Progress | None = None, *, mip_time_limit_s: float = 30.0) -> Solution:
    """Allocate tonnes: most tonnes first, then least freight cost among those plans.

    ``progress(stage, fraction)`` is called with stages "building_pairs", "solving" and
    "explaining"; ``mip_time_limit_s`` is CP-SAT's deterministic-time budget per stage.
    """
    started = time.perf_counter()

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    try:
        check_problem(problem)
    except ContractError as err:
        return Solution(Status.INVALID, error_field=err.field_path, message=err.message)
    n_s, n_d = len(problem.supplies), len(problem.demands)
    supply_kg = np.array([_kg(s.quantity_t) for s in problem.supplies], dtype=np.int64)
    demand_kg = np.array([_kg(d.quantity_t) for d in problem.demands], dtype=np.int64)
    lot_kg = np.array([_kg(s.min_lot_t) for s in problem.supplies], dtype=np.int64)

    report("building_pairs", 0.0)
    pairs = build_pairs(problem)
    report("building_pairs", 1.0)
    try:
        lower = _pin_lower_bounds(problem, pairs, supply_kg, demand_kg)
    except ContractError as err:
        return Solution(Status.INVALID, error_field=err.field_path, message=err.message)

    report("solving", 0.0)
    cost_per_t = pairs.road_km * problem.params.freight_cny_per_t_km
    flow_kg = np.zeros(len(pairs), dtype=np.int64)
    marginal = np.zeros(n_d)
    status = Status.OPTIMAL
    message = ""
    if len(pairs):
        graph = coo_matrix(
            (np.ones(len(pairs), dtype=np.int8), (pairs.supply, pairs.demand + n_s)),
            shape=(n_s + n_d, n_s + n_d),
        )
        _, label = connected_components(graph, directed=False)
        pair_label = label[pairs.supply]
        lot_labels = np.unique(pair_label[lot_kg[pairs.supply] > 0])
        in_mip = np.isin(pair_label, lot_labels)

        rows = np.flatnonzero(~in_mip)
        if rows.size:
            # Pins are lower bounds: ship them first, then optimise what is left of each lot.
            out = np.bincount(pairs.supply[rows], weights=lower[rows], minlength=n_s).astype(np.int64)
            inn = np.bincount(pairs.demand[rows], weights=lower[rows], minlength=n_d).astype(np.int64)
            res = solve_flow(supply_kg - out, demand_kg - inn, pairs.supply[rows], pairs.demand[rows], cost_per_t[rows])
            flow_kg[rows] = res.flow_kg + lower[rows]
            flow_demands = np.unique(pairs.demand[rows])
            marginal[flow_demands] = res.demand_marginal[flow_demands]
        for n, comp in enumerate(lot_labels):
            report("solving", (n + 0.5) / (len(lot_labels) + 1))
            rows = np.flatnonzero(pair_label == comp)
            s_idx, s_loc = np.unique(pairs.supply[rows], return_inverse=True)
            d_idx, d_loc = np.unique(pairs.demand[rows], return_inverse=True)
            mres = solve_min_lot(
                supply_kg[s_idx],
                demand_kg[d_idx],
                s_loc.astype(np.int64),
                d_loc.astype(np.int64),
                cost_per_t[rows],
                lot_kg[s_idx],
                lower[rows],
                mip_time_limit_s,
            )
            if not mres.feasible:
                first = problem.supplies[int(s_idx[0])].id
                return Solution(
                    Status.INFEASIBLE,
                    error_field="pinned",
                    message=f"pins and minimum lots cannot all hold in the component of supply {first}",
                )
            if not mres.proven_optimal:
                status = Status.FEASIBLE
                message = "minimum-lot model stopped at its time limit; plan is feasible, not proven optimal"
            flow_kg[rows] = mres.flow_kg
            marginal[d_idx] = mres.demand_marginal
    report("solving", 1.0)

    report("explaining", 0.0)
    unmatched = explain_unmatched(problem, pairs, flow_kg, supply_kg, demand_kg)
    used = np.flatnonzero(flow_kg > 0)
    freight = problem.params.freight_cny_per_t_km
    allocations = tuple(
        Allocation(
            supply=problem.supplies[int(pairs.supply[r])].id,
            demand=problem.demands[int(pairs.demand[r])].id,
            quantity_t=int(flow_kg[r]) / 1000,
            distance_km=float(pairs.road_km[r]),
            cost_cny=int(flow_kg[r]) / 1000 * float(pairs.road_km[r]) * freight,
        )
        for r in used
    )
    supply_t = int(supply_kg.sum()) / 1000
    matched_t = int(flow_kg.sum()) / 1000
    tonne_km = float(np.dot(flow_kg[used] / 1000, pairs.road_km[used]))
    summary = Summary(
        supply_t=supply_t,
        demand_t=int(demand_kg.sum()) / 1000,
        matched_t=matched_t,
        utilisation=matched_t / supply_t if supply_t > 0 else 0.0,
        transport_cost_cny=tonne_km * freight,
        tonne_km=tonne_km,
        pairs_considered=len(pairs),
        solve_seconds=time.perf_counter() - started,
    )
    report("explaining", 1.0)
    return Solution(
        status,
        allocations=allocations,
        unmatched=tuple(unmatched),
        summary=summary,
        demand_marginal_value={d.id: float(marginal[j]) for j, d in enumerate(problem.demands)},
        message=message,
    )
