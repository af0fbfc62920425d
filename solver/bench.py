"""Benchmark: `python -m solver.bench [--sizes 50,500,5000] [--national]`.

For each size it generates a seeded instance, runs `solve` in a fresh child process (so the
reported peak memory is that run's own: ru_maxrss of the child, which includes the ~150 MB of
Python, numpy, scipy and OR-Tools themselves), then, in the parent, over the very same pairs:
(a) a reference optimum from HiGHS (two LPs: max tonnes; then min cost with tonnes fixed), and
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
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "matched_t": solution.summary.matched_t,
            "cost_cny": solution.summary.transport_cost_cny,
        }
    )


def highs_reference(problem: Problem, pairs: PairSet) -> tuple[float, float, float]:
    """(seconds, tonnes, cost) of the lexicographic LP optimum over the same pairs, by HiGHS."""
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


def run(name: str, n: int, area: tuple[float, float, float, float], seed: int, ref_max_pairs: int) -> Row:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(n, area, seed, queue))
    proc.start()
    got = queue.get()
    proc.join()
    problem = generate(n, area, seed)
    pairs = build_pairs(problem)
    if len(pairs.supply) <= ref_max_pairs:
        ref_s, ref_t, ref_c = highs_reference(problem, pairs)
    else:  # HiGHS takes tens of minutes at national scale: skipped, printed as nan
        ref_s = ref_t = ref_c = float("nan")
    g_t, g_c = greedy_nearest_first(problem, pairs)
    return Row(name, n, got["pairs"], got["pairs_s"], got["solve_s"], got["total_s"], got["peak_rss_mib"],
               got["matched_t"], got["cost_cny"], ref_s, ref_t, ref_c, g_t, g_c)  # fmt: skip


def _print(row: Row) -> None:
    gap = (row.cost_cny - row.ref_cost_cny) / row.ref_cost_cny if row.ref_cost_cny else 0.0
    more = (row.matched_t - row.greedy_matched_t) / row.greedy_matched_t if row.greedy_matched_t else 0.0
    print(
        f"{row.name:<9}{row.lots:>7}{row.pairs:>10}{row.pairs_s:>8.2f}{row.solve_s:>8.2f}{row.total_s:>8.2f}"
        f"{row.peak_rss_mib:>8.0f}{row.matched_t:>14.3f}{row.cost_cny:>15.2f}"
        f"{row.ref_s:>8.2f}{row.ref_s / row.total_s:>7.1f}x{row.matched_t - row.ref_matched_t:>+9.3f}"
        f"{gap:>+11.2e}{row.greedy_matched_t:>14.3f}{more:>+8.1%}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solver.bench")
    parser.add_argument("--sizes", default="50,500,5000", help="lots per side, province-sized area")
    parser.add_argument("--national", action="store_true", help="also 20,000 per side over China")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--ref-max-pairs", type=int, default=1_000_000, help="skip the HiGHS reference above this many pairs"
    )
    args = parser.parse_args(argv)
    print(
        "times in s (pairs = pair generation, solve = engines, total = whole solve() incl. explaining);\n"
        "rss = peak RSS MiB of the child that ran solve() (ru_maxrss, includes interpreter+libraries);\n"
        "ref = HiGHS LP lexicographic reference on the same pairs, ref/ours = time ratio, dT = our tonnes"
        " - ref tonnes, dC = relative cost gap;\ngreedy = nearest-compatible-pair-first, +% = our extra tonnes.",
    )
    print(
        f"{'case':<9}{'lots':>7}{'pairs':>10}{'pairs':>8}{'solve':>8}{'total':>8}{'rss':>8}{'matched_t':>14}"
        f"{'cost_cny':>15}{'ref_s':>8}{'ratio':>8}{'dT':>9}{'dC':>11}{'greedy_t':>14}{'+%':>8}"
    )
    for k, size in enumerate(int(s) for s in args.sizes.split(",") if s):
        _print(run("province", size, PROVINCE, args.seed + k, args.ref_max_pairs))
    if args.national:
        _print(run("national", 20000, CHINA, args.seed + 99, args.ref_max_pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
