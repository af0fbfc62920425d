"""Optimal allocation of industrial by-product lots to consumers (pure library; no platform imports).

    solution = solver.solve(Problem(supplies=lots, demands=wants))

Most tonnes first, then least freight; see `solver.core` for how rounds split into components.
"""

from solver.contract import problem_from_json, solution_to_json
from solver.core import solve
from solver.model import (
    Accept,
    Allocation,
    ContractError,
    DemandLot,
    MaterialRule,
    Params,
    Pin,
    Problem,
    Solution,
    Status,
    Summary,
    SupplyLot,
    Unmatched,
)

__all__ = [
    "Accept",
    "Allocation",
    "ContractError",
    "DemandLot",
    "MaterialRule",
    "Params",
    "Pin",
    "Problem",
    "Solution",
    "Status",
    "Summary",
    "SupplyLot",
    "Unmatched",
    "problem_from_json",
    "solution_to_json",
    "solve",
]
