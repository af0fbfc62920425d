"""The bench's HiGHS reference (per component, by column generation) equals the whole LP solved at once.

Its shortcuts must change no optimum, or the bench would compare the solver with a wrong figure.
The whole LP here is the textbook one: a column per pair, max tonnes, then min cost at those tonnes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, vstack

from solver import bench
from solver.model import Problem
from solver.pairs import PairSet, build_pairs


def whole_lp(problem: Problem, pairs: PairSet) -> tuple[float, float]:
    n_s, n_d, n_p = len(problem.supplies), len(problem.demands), len(pairs)
    rows = np.concatenate((pairs.supply, n_s + pairs.demand))
    a = coo_matrix((np.ones(2 * n_p), (rows, np.tile(np.arange(n_p), 2))), shape=(n_s + n_d, n_p)).tocsr()
    cap_t = np.array([s.quantity_t for s in problem.supplies] + [d.quantity_t for d in problem.demands])
    most = linprog(-np.ones(n_p), A_ub=a, b_ub=cap_t, bounds=(0, None), method="highs")
    assert most.status == 0
    tonnes = -most.fun
    cost = pairs.road_km * problem.params.freight_cny_per_t_km
    a2 = vstack([a, -np.ones((1, n_p))])
    cheapest = linprog(cost, A_ub=a2, b_ub=np.append(cap_t, -(tonnes - 1e-6)), bounds=(0, None), method="highs")
    assert cheapest.status == 0
    return tonnes, float(cheapest.fun)


def assert_same_optimum(
    reference: Callable[[Problem, PairSet], tuple[float, float, float]], n: int, seed: int, cost_rel: float
) -> None:
    """`reference` on a generated instance reaches the textbook LP's tonnes and cost."""
    problem = bench.generate(n, bench.PROVINCE, seed)
    pairs = build_pairs(problem)
    _, tonnes, cost = reference(problem, pairs)
    want_t, want_cost = whole_lp(problem, pairs)
    assert tonnes == pytest.approx(want_t, abs=1e-6)
    assert cost == pytest.approx(want_cost, rel=cost_rel)


@pytest.mark.parametrize("seed_pairs", [1, bench._SEED_PAIRS_PER_LOT])
@pytest.mark.parametrize(("n", "seed"), [(60, 3), (120, 3), (200, 1)])
def test_reference_equals_the_whole_lp(n: int, seed: int, seed_pairs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # One seed pair per lot makes column generation work for its optimum over many rounds.
    monkeypatch.setattr(bench, "_SEED_PAIRS_PER_LOT", seed_pairs)
    assert_same_optimum(bench.highs_reference, n, seed, cost_rel=1e-9)


def test_reference_with_no_pairs() -> None:
    problem = bench.generate(4, bench.PROVINCE, 0)
    empty = build_pairs(Problem((), problem.demands, problem.materials, problem.params))
    assert bench.highs_reference(problem, empty)[1:] == (0.0, 0.0)


@pytest.mark.parametrize(("n", "seed"), [(60, 3), (200, 1)])
def test_the_whole_lp_time_reference_has_the_same_optimum(n: int, seed: int) -> None:
    """The bench times HiGHS on the whole LP where it finishes; it must reach the same optimum too."""
    assert_same_optimum(bench.highs_whole_lp, n, seed, cost_rel=1e-7)
