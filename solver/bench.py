"""Benchmark: `python -m solver.bench [--sizes 50,500,5000] [--national]`.

For each size it generates a seeded instance, runs `solve` in a fresh child process (so the
reported peak memory is that run's own: VmHWM of the child, which includes the ~150 MB of
Python, numpy, scipy and OR-Tools themselves), then, in the parent, over the very same pairs:
(a) a reference optimum from HiGHS (two LPs: max tonnes; then min cost with tonnes fixed): the whole LP as a
general LP solver takes it up to a million pairs (`highs_whole_lp`, the time reference), and above that, where
the whole LP does not finish in 30 minutes, the same LP per connected component by column generation, which is
exact too (`highs_reference`), and
(b) a greedy "nearest compatible pair first" baseline, the way a broker works a phone list.

Instances imitate listings on an exchange: lots cluster in industrial parks; each material has
its own haul range (gypsum and gangue go short distances, GGBS far) and grades; consumers take
one to three materials, some only the better grades, many state their own radius; one hazardous
material (spent catalyst) may only go to the few consumers holding a permit.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solver.core import solve
from solver.model import Accept, DemandLot, MaterialRule, Params, Problem, SupplyLot
from solver.pairs import PairSet, build_pairs

# (code, share of supply, haul range km, grades best-first, hazardous).  Ranges are the usual
# economic road radii: gangue and gypsum are cheap and bulky, GGBS is worth hauling further;
# hazardous waste mostly stays within a province.
_MATERIALS: list[tuple[str, float, float, tuple[str, ...], bool]] = [
    ("fly_ash", 0.32, 150.0, ("I", "II", "III"), False),
    ("ggbs", 0.18, 250.0, ("S105", "S95", "S75"), False),
    ("fgd_gypsum", 0.16, 100.0, ("A", "B"), False),
    ("steel_slag", 0.14, 120.0, ("1", "2"), False),
    ("coal_gangue", 0.15, 60.0, (), False),
    ("spent_catalyst", 0.05, 300.0, (), True),
]
PROVINCE = (34.0, 40.0, 110.0, 118.0)  # lat min/max, lon min/max: about 6 deg x 8 deg (Hebei/Shanxi)
CHINA = (21.0, 46.0, 98.0, 124.0)  # the settled east and centre, where the industry is


@dataclass(frozen=True)
class Row:
    name: str
    lots: int
    pairs: int
    pairs_s: float
    solve_s: float
    total_s: float
    peak_rss_mib: float
    matched_t: float
    cost_cny: float
    ref_kind: str  # "LP": HiGHS on the whole LP; "CG": by components and column generation
    ref_s: float
    ref_matched_t: float
    ref_cost_cny: float
    greedy_matched_t: float
    greedy_cost_cny: float


def generate(n: int, area: tuple[float, float, float, float], seed: int) -> Problem:
    """A seeded, listing-like instance with n supply and n demand lots."""
    rng = np.random.default_rng(seed)
    lat0, lat1, lon0, lon1 = area
    n_parks = max(4, n // 25)
    park_lat = rng.uniform(lat0, lat1, n_parks)
    park_lon = rng.uniform(lon0, lon1, n_parks)
    park_weight = rng.pareto(1.5, n_parks) + 1  # a few big parks, many small ones
    park_weight /= park_weight.sum()

    def place(k: int) -> tuple[np.ndarray, np.ndarray]:
        park = rng.choice(n_parks, size=k, p=park_weight)
        km = np.abs(rng.normal(0, 12, k))  # within ~12 km of the park centre
        bearing = rng.uniform(0, 2 * np.pi, k)
        lat = np.clip(park_lat[park] + km * np.cos(bearing) / 111.2, -89.9, 89.9)
        lon = park_lon[park] + km * np.sin(bearing) / (111.2 * np.cos(np.radians(lat)))
        return lat, lon

    shares = np.array([m[1] for m in _MATERIALS])
    s_lat, s_lon = place(n)
    s_mat = rng.choice(len(_MATERIALS), size=n, p=shares / shares.sum())
    s_qty = np.round(rng.lognormal(np.log(1500), 0.9, n), 1)
    supplies = []
    for i in range(n):
        code, _, _, grades, _ = _MATERIALS[s_mat[i]]
        grade = str(rng.choice(grades, p=_grade_mix(len(grades)))) if grades else None
        own = float(rng.choice([0, 80, 120, 200])) if rng.random() < 0.25 else None
        supplies.append(SupplyLot(f"s{i}", code, float(s_qty[i]), float(s_lat[i]), float(s_lon[i]), grade, own or None))
    d_lat, d_lon = place(n)
    d_qty = np.round(rng.lognormal(np.log(1400), 0.9, n), 1)
    demands = []
    for j in range(n):
        k = int(rng.choice([1, 2, 3], p=[0.55, 0.35, 0.10]))
        picks = rng.choice(len(_MATERIALS), size=k, replace=False, p=shares / shares.sum())
        accepts = []
        permits: tuple[str, ...] = ()
        for m in sorted(picks):
            code, _, _, grades, hazardous = _MATERIALS[m]
            if hazardous:
                if rng.random() > 0.3:  # most would take it but only some hold the permit
                    continue
                permits = (code,)
            if grades and rng.random() < 0.5:  # half the consumers want only the better grades
                accepts.append(Accept(code, tuple(grades[: int(rng.integers(1, len(grades)))])))
            else:
                accepts.append(Accept(code))
        radius = float(rng.choice([60, 100, 150, 250])) if rng.random() < 0.6 else None
        demands.append(
            DemandLot(
                f"d{j}",
                float(d_qty[j]),
                float(d_lat[j]),
                float(d_lon[j]),
                tuple(accepts),
                radius,
                permits,
            )
        )
    materials = {code: MaterialRule(rng_km, haz) for code, _, rng_km, _, haz in _MATERIALS}
    return Problem(tuple(supplies), tuple(demands), materials, Params(0.35, 1.3))


def _grade_mix(k: int) -> np.ndarray:
    weights = np.array([0.3, 0.45, 0.25][:k]) if k else np.zeros(0)
    return weights / weights.sum()


def _child(n: int, area: tuple[float, float, float, float], seed: int, queue: Any) -> None:
    problem = generate(n, area, seed)
    marks: dict[str, float] = {}

    def progress(stage: str, fraction: float) -> None:
        marks.setdefault(f"{stage}:{fraction}", time.perf_counter())

    start = time.perf_counter()
    solution = solve(problem, progress)
    end = time.perf_counter()
    assert solution.summary is not None
    queue.put(
        {
            "pairs": solution.summary.pairs_considered,
            "pairs_s": marks["solving:0.0"] - start,
            "solve_s": marks["explaining:0.0"] - marks["solving:0.0"],
            "total_s": end - start,
            "peak_rss_mib": _peak_rss_mib(),
            "matched_t": solution.summary.matched_t,
            "cost_cny": solution.summary.transport_cost_cny,
        }
    )


# Each component's LP starts from each lot's few cheapest pairs (k=2..5 measured about the same; 10 and more
# only made the restricted LPs bigger and slower) and grows by pricing until no pair outside it could help.
_SEED_PAIRS_PER_LOT = 3
# A pair outside the restricted LP enters when its reduced cost is below minus this: HiGHS's own dual
# feasibility tolerance, so the final LP is optimal over all the pairs by the same test HiGHS itself applies.
_PRICING_TOL = 1e-7


def _peak_rss_mib() -> float:
    """This process's own peak resident memory. Not ru_maxrss: Linux carries that over from the parent's
    memory at fork through exec, so a child spawned after a big case reported the parent's peak (915 MiB for
    the national case after the 5,000-lot reference, 466 MiB on its own). VmHWM starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def highs_whole_lp(problem: Problem, pairs: PairSet) -> tuple[float, float, float]:
    """(seconds, tonnes, cost) of the lexicographic LP optimum over the same pairs: HiGHS given the whole
    transportation LP as it stands, every pair a column (the time reference: what a general LP solver takes)."""
    import highspy
    from scipy.sparse import csc_matrix

    n_s, n_d, n_p = len(problem.supplies), len(problem.demands), len(pairs)
    cost = pairs.road_km * problem.params.freight_cny_per_t_km
    rows = np.concatenate((pairs.supply, pairs.demand + n_s))
    cols = np.concatenate((np.arange(n_p), np.arange(n_p)))
    a = csc_matrix((np.ones(2 * n_p), (rows, cols)), shape=(n_s + n_d, n_p))
    upper = np.array([s.quantity_t for s in problem.supplies] + [d.quantity_t for d in problem.demands])
    start = time.perf_counter()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    # Interior point with crossover: a vertex optimum like simplex, but 2-10x faster here.
    h.setOptionValue("solver", "ipm")
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_p, n_s + n_d
    lp.col_cost_ = -np.ones(n_p)
    lp.col_lower_, lp.col_upper_ = np.zeros(n_p), np.full(n_p, highspy.kHighsInf)
    lp.row_lower_, lp.row_upper_ = np.full(n_s + n_d, -highspy.kHighsInf), upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    h.passModel(lp)
    h.run()
    tonnes = -h.getInfo().objective_function_value
    # Stage 2: fix the tonnes (to the kilogram) and minimise freight.
    h.addRow(tonnes - 1e-6, highspy.kHighsInf, n_p, np.arange(n_p, dtype=np.int32), np.ones(n_p))
    h.changeColsCost(n_p, np.arange(n_p, dtype=np.int32), cost)
    h.run()
    x = np.asarray(h.getSolution().col_value)
    return time.perf_counter() - start, tonnes, float(x @ cost)


def highs_reference(problem: Problem, pairs: PairSet) -> tuple[float, float, float]:
    """(seconds, tonnes, cost) of the lexicographic LP optimum over the same pairs, by HiGHS.

    The LP is the plain transportation LP over every pair (stage 1: max tonnes; stage 2: tonnes fixed,
    min freight), written here without the solver's code. Two exact shortcuts make it finish nationally:
    it splits into the connected components of the supply-demand graph (no pair, hence no constraint,
    joins two of them, so both stages decompose; fixing each component's tonnes is fixing the total), and
    each component is solved by column generation: HiGHS solves it over a subset of the pairs, and every
    other pair is priced with the duals; pairs with a negative reduced cost join and it is solved again,
    until none is left. The last LP's duals then prove it optimal over all the pairs, not just the subset.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_s, n_d, n_p = len(problem.supplies), len(problem.demands), len(pairs)
    supply_t = np.array([s.quantity_t for s in problem.supplies], dtype=np.float64)
    demand_t = np.array([d.quantity_t for d in problem.demands], dtype=np.float64)
    cost = pairs.road_km * problem.params.freight_cny_per_t_km
    start = time.perf_counter()
    if n_p == 0:
        return time.perf_counter() - start, 0.0, 0.0
    lots = n_s + n_d  # supplies are nodes 0..n_s-1, demands n_s..
    graph = coo_matrix((np.ones(n_p), (pairs.supply, n_s + pairs.demand)), shape=(lots, lots))
    _, component = connected_components(graph, directed=False)
    pair_component = component[pairs.supply]
    by_component = np.argsort(pair_component, kind="stable")
    cuts = np.flatnonzero(np.diff(pair_component[by_component])) + 1
    tonnes = cost_cny = 0.0
    for members in np.split(by_component, cuts):
        supplies, s_local = np.unique(pairs.supply[members], return_inverse=True)
        demands, d_local = np.unique(pairs.demand[members], return_inverse=True)
        t, c = _component_reference(supply_t[supplies], demand_t[demands], s_local, d_local, cost[members])
        tonnes += t
        cost_cny += c
    return time.perf_counter() - start, tonnes, cost_cny


def _component_reference(
    supply_t: np.ndarray, demand_t: np.ndarray, supply: np.ndarray, demand: np.ndarray, cost: np.ndarray
) -> tuple[float, float]:
    """(tonnes, cost) of one component's two-stage LP; supply/demand index its own lots, cost is CNY/t."""
    import highspy

    inf = highspy.kHighsInf
    n_s, n_d, n_p = supply_t.size, demand_t.size, supply.size
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    # Method, by measurement (2-core machine, shared and loaded, so rough): the whole LP by interior point
    # with crossover took 102 s at 5,000 lots (682k pairs) and did not finish in 30 min nationally (1.38M
    # pairs); by simplex, stage 1 alone did not finish in 600 s at 5,000 lots. With column generation the
    # LPs HiGHS sees have 40k-150k pairs, and each round only adds columns at zero, so the previous basis
    # stays primal feasible: primal simplex carries on from it (national: 88 s with 5 seed pairs per lot,
    # 57 s with 3), where dual simplex took 218 s (5 seed pairs), and interior point, which starts afresh
    # each round, about 3x as long as primal simplex at 5,000 lots.
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("simplex_strategy", 4)  # primal
    # Columns 0..n_s-1 are out_t[i], what supply i ships (0..supply_t[i]); row i says its pairs carry
    # exactly out_t[i], row n_s+j caps demand j. Total tonnes is then a sum over n_s columns, so stage 2's
    # "tonnes fixed" row stays short instead of touching every pair.
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_s, n_s + n_d
    lp.col_cost_ = -np.ones(n_s)  # stage 1: max tonnes
    lp.col_lower_, lp.col_upper_ = np.zeros(n_s), supply_t
    lp.row_lower_ = np.concatenate((np.zeros(n_s), np.full(n_d, -inf)))
    lp.row_upper_ = np.concatenate((np.zeros(n_s), demand_t))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(n_s + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.arange(n_s, dtype=np.int32)
    lp.a_matrix_.value_ = -np.ones(n_s)
    h.passModel(lp)
    in_lp = np.zeros(n_p, dtype=bool)
    lp_pairs: list[np.ndarray] = []  # the pairs of columns n_s.., in order

    def add(new: np.ndarray, pair_cost: np.ndarray) -> None:
        m = new.size
        index = np.empty(2 * m, dtype=np.int32)
        index[0::2], index[1::2] = supply[new], n_s + demand[new]
        starts = np.arange(0, 2 * m, 2, dtype=np.int32)
        h.addCols(m, pair_cost[new], np.zeros(m), np.full(m, inf), 2 * m, starts, index, np.ones(2 * m))
        in_lp[new] = True
        lp_pairs.append(new)

    def solve_over_all_pairs(pair_cost: np.ndarray) -> None:
        while True:
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"HiGHS: {h.modelStatusToString(h.getModelStatus())}")
            dual = np.asarray(h.getSolution().row_dual)
            reduced = pair_cost - dual[supply] - dual[n_s + demand]
            entering = np.flatnonzero(~in_lp & (reduced < -_PRICING_TOL))
            if entering.size == 0:
                return
            # Each lot's most negative pair (the cheaper one on a tie): at most one per lot and round.
            best = np.lexsort((cost[entering], reduced[entering]))
            add(np.union1d(_first_per(supply, entering[best]), _first_per(demand, entering[best])), pair_cost)

    no_cost = np.zeros(n_p)
    add(np.flatnonzero(_cheapest(supply, cost) | _cheapest(demand, cost)), no_cost)
    solve_over_all_pairs(no_cost)
    tonnes = -h.getInfo().objective_function_value
    # Stage 2: fix the tonnes (to the kilogram) and minimise freight.
    h.addRow(tonnes - 1e-6, inf, n_s, np.arange(n_s, dtype=np.int32), np.ones(n_s))
    columns = n_s + int(in_lp.sum())
    stage2_cost = np.concatenate([np.zeros(n_s)] + [cost[p] for p in lp_pairs])
    h.changeColsCost(columns, np.arange(columns, dtype=np.int32), stage2_cost)
    solve_over_all_pairs(cost)
    flow_t = np.asarray(h.getSolution().col_value)[n_s:]
    return tonnes, float(flow_t @ cost[np.concatenate(lp_pairs)])


def _cheapest(lot: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Mask of each lot's _SEED_PAIRS_PER_LOT cheapest pairs."""
    order = np.lexsort((cost, lot))
    sorted_lot = lot[order]
    rank = np.arange(lot.size) - np.searchsorted(sorted_lot, sorted_lot, side="left")
    mask = np.zeros(lot.size, dtype=bool)
    mask[order[rank < _SEED_PAIRS_PER_LOT]] = True
    return mask


def _first_per(lot: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """The first pair of each lot in `ranked` (pair indices, best first)."""
    _, first = np.unique(lot[ranked], return_index=True)
    return ranked[first]


def greedy_nearest_first(problem: Problem, pairs: PairSet) -> tuple[float, float]:
    """(tonnes, cost) when every pair is filled as far as it goes, nearest pair first."""
    left_s = np.array([s.quantity_t for s in problem.supplies])
    left_d = np.array([d.quantity_t for d in problem.demands])
    tonnes = cost = 0.0
    freight = problem.params.freight_cny_per_t_km
    for k in np.argsort(pairs.road_km, kind="stable"):
        i, j = pairs.supply[k], pairs.demand[k]
        q = min(left_s[i], left_d[j])
        if q > 0:
            left_s[i] -= q
            left_d[j] -= q
            tonnes += q
            cost += q * pairs.road_km[k] * freight
    return tonnes, cost


def run(name: str, n: int, area: tuple[float, float, float, float], seed: int, whole_lp_max_pairs: int) -> Row:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(n, area, seed, queue))
    proc.start()
    got = queue.get()
    proc.join()
    problem = generate(n, area, seed)
    pairs = build_pairs(problem)
    if len(pairs.supply) <= whole_lp_max_pairs:
        kind, (ref_s, ref_t, ref_c) = "LP", highs_whole_lp(problem, pairs)
    else:  # the whole LP did not finish in 30 min nationally: the exact decomposed reference instead
        kind, (ref_s, ref_t, ref_c) = "CG", highs_reference(problem, pairs)
    g_t, g_c = greedy_nearest_first(problem, pairs)
    return Row(name, n, got["pairs"], got["pairs_s"], got["solve_s"], got["total_s"], got["peak_rss_mib"],
               got["matched_t"], got["cost_cny"], kind, ref_s, ref_t, ref_c, g_t, g_c)  # fmt: skip


def _print(row: Row) -> None:
    gap = (row.cost_cny - row.ref_cost_cny) / row.ref_cost_cny if row.ref_cost_cny else 0.0
    more = (row.matched_t - row.greedy_matched_t) / row.greedy_matched_t if row.greedy_matched_t else 0.0
    print(
        f"{row.name:<9}{row.lots:>7}{row.pairs:>10}{row.pairs_s:>8.2f}{row.solve_s:>8.2f}{row.total_s:>8.2f}"
        f"{row.peak_rss_mib:>8.0f}{row.matched_t:>14.3f}{row.cost_cny:>15.2f}"
        f"{row.ref_kind:>4}{row.ref_s:>8.2f}{row.ref_s / row.total_s:>7.1f}x{row.matched_t - row.ref_matched_t:>+9.3f}"
        f"{gap:>+11.2e}{row.greedy_matched_t:>14.3f}{more:>+8.1%}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solver.bench")
    parser.add_argument("--sizes", default="50,500,5000", help="lots per side, province-sized area")
    parser.add_argument("--national", action="store_true", help="also 20,000 per side over China")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--whole-lp-max-pairs",
        type=int,
        default=1_000_000,
        help="the reference is HiGHS on the whole LP up to this many pairs, above it the exact decomposed one",
    )
    args = parser.parse_args(argv)
    print(
        "times in s (pairs = pair generation, solve = engines, total = whole solve() incl. explaining);\n"
        "rss = peak RSS MiB of the child that ran solve() (VmHWM, includes interpreter+libraries);\n"
        "ref = HiGHS LP lexicographic reference on the same pairs (LP: the whole LP, as a general LP solver"
        " takes it; CG: split into components, solved by column generation, exact too), ref/ours = time ratio,"
        "\ndT = our tonnes - ref tonnes, dC = relative cost gap; greedy = nearest-compatible-pair-first,"
        " +% = our extra tonnes.",
    )
    print(
        f"{'case':<9}{'lots':>7}{'pairs':>10}{'pairs':>8}{'solve':>8}{'total':>8}{'rss':>8}{'matched_t':>14}"
        f"{'cost_cny':>15}{'ref':>4}{'ref_s':>8}{'ratio':>8}{'dT':>9}{'dC':>11}{'greedy_t':>14}{'+%':>8}"
    )
    for k, size in enumerate(int(s) for s in args.sizes.split(",") if s):
        _print(run("province", size, PROVINCE, args.seed + k, args.whole_lp_max_pairs))
    if args.national:
        _print(run("national", 20000, CHINA, args.seed + 99, args.whole_lp_max_pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
