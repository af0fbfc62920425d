"""The transport engine: a lexicographic max-flow / min-cost flow on integer kilograms.

Supplies and demands are nodes with integer-kg supply; each candidate pair is an arc.
OR-Tools' `solve_max_flow_with_min_cost` first finds the maximum flow and then the cheapest
flow of that value, which is exactly the objective (tonnes first, then CNY) without a big-M.
Integral capacities give an integral optimum, so kilograms lose nothing against the real-valued
LP; only the unit costs are rounded, and their scale is chosen as large as int64 allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.graph.python import min_cost_flow
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

# OR-Tools' cost-scaling multiplies unit costs by (nodes + 1) and accumulates flow × cost in int64;
# keep both products below 2^60 so neither can overflow.
_INT64_BUDGET = float(2**60)
# Beyond a micro-CNY per tonne, finer costs only slow the cost-scaling phases down.
_MAX_COST_SCALE = 1e6


class FlowError(RuntimeError):
    pass


@dataclass(frozen=True)
class FlowResult:
    flow_kg: IntArray  # per pair
    demand_marginal: FloatArray  # per demand: d(max tonnes)/d(capacity), 0 or 1
    cost_scale: float  # integer cost units per CNY/t


def cost_scale_for(total_kg: int, max_cost_per_t: float, num_nodes: int) -> float:
    """Largest unit-cost scale that keeps OR-Tools' int64 arithmetic safe."""
    if max_cost_per_t <= 0:
        return 1.0
    by_total = _INT64_BUDGET / (max(total_kg, 1) * max_cost_per_t)
    by_nodes = _INT64_BUDGET / ((num_nodes + 1) * max_cost_per_t)
    return min(_MAX_COST_SCALE, by_total, by_nodes)


def solve_flow(
    supply_kg: IntArray,
    demand_kg: IntArray,
    pair_supply: IntArray,
    pair_demand: IntArray,
    cost_cny_per_t: FloatArray,
) -> FlowResult:
    n_s, n_d = supply_kg.size, demand_kg.size
    n_pairs = pair_supply.size
    if n_pairs == 0:
        return FlowResult(np.zeros(0, dtype=np.int64), np.zeros(n_d), 1.0)
    total_kg = int(min(supply_kg.sum(), demand_kg.sum()))
    scale = cost_scale_for(total_kg, float(cost_cny_per_t.max()), n_s + n_d)
    unit_cost = np.rint(cost_cny_per_t * scale).astype(np.int64)
    # An arc is bounded by its supply only: a demand-side bound would look saturated in the
    # residual graph and hide the marginal value of extra demand capacity.
    capacity = supply_kg[pair_supply].astype(np.int64)

    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        pair_supply.astype(np.int32), (pair_demand + n_s).astype(np.int32), capacity, unit_cost
    )
    nodes = np.arange(n_s + n_d, dtype=np.int32)
    mcf.set_nodes_supplies(nodes, np.concatenate((supply_kg, -demand_kg)).astype(np.int64))
    status = mcf.solve_max_flow_with_min_cost()
    if status != mcf.OPTIMAL:
        raise FlowError(f"min-cost flow returned status {status}")
    flow = np.asarray(mcf.flows(np.arange(n_pairs, dtype=np.int32)), dtype=np.int64)
    marginal = demand_marginal_values(supply_kg, pair_supply, pair_demand, flow, capacity, n_d)
    return FlowResult(flow, marginal, scale)


def demand_marginal_values(
    supply_kg: IntArray,
    pair_supply: IntArray,
    pair_demand: IntArray,
    flow_kg: IntArray,
    capacity_kg: IntArray,
    n_demands: int,
) -> FloatArray:
    """1 for demands whose extra capacity would be filled, else 0 (min-cut side of the max flow).

    A demand takes more only if an augmenting path reaches it: from a supply with tonnes left,
    forward along any unsaturated pair, backward along any pair that carries flow. So the answer
    is a breadth-first search in the residual graph from a virtual root joined to every supply
    with tonnes left; at a maximum flow every demand it reaches is already full.
    """
    n_s = supply_kg.size
    root = n_s + n_demands
    out_kg = np.bincount(pair_supply, weights=flow_kg, minlength=n_s)
    leftover = np.flatnonzero(supply_kg - out_kg > 0)
    if leftover.size == 0:
        return np.zeros(n_demands)
    fwd = flow_kg < capacity_kg
    back = flow_kg > 0
    tails = np.concatenate((pair_supply[fwd], pair_demand[back] + n_s, np.full(leftover.size, root)))
    heads = np.concatenate((pair_demand[fwd] + n_s, pair_supply[back], leftover))
    graph = csr_matrix((np.ones(tails.size, dtype=np.int8), (tails, heads)), shape=(root + 1, root + 1))
    reached = breadth_first_order(graph, root, directed=True, return_predecessors=False)
    marginal = np.zeros(n_demands)
    hit = reached[reached >= n_s]
    hit = hit[hit < root] - n_s
    marginal[hit] = 1.0
    return marginal
