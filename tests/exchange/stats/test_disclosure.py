"""Disclosure control: no published cell breaks the threshold/dominance rule, and no suppressed cell can be
recovered exactly from the published cells and totals (checked independently by exact rational elimination)."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.stats.disclosure import TOTAL, CellStats, Status, breaks_primary_rule, suppress

PROVINCES = ["p1", "p2", "p3", "p4"]
MATERIALS = ["m1", "m2", "m3"]

contribution = st.tuples(
    st.sampled_from(PROVINCES),
    st.sampled_from(MATERIALS),
    st.integers(min_value=1, max_value=10_000),  # generated kg
    st.integers(min_value=0, max_value=10_000),  # utilised kg
)
datasets = st.lists(st.lists(contribution, min_size=1, max_size=4), min_size=1, max_size=25)


def cells_of(enterprises: list[list[tuple[str, str, int, int]]]) -> dict[Any, CellStats]:
    """Each enterprise (a list of (province, material, generated, utilised)) lives in one province."""
    per: dict[Any, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for eid, contributions in enumerate(enterprises):
        province = contributions[0][0]
        for _, m, g, u in contributions:
            for key in ((province, m), (province, TOTAL), (TOTAL, m), (TOTAL, TOTAL)):
                per[key][eid][0] += g
                per[key][eid][1] += u
    return {
        k: CellStats(
            len(v),
            sum(x[0] for x in v.values()),
            max(x[0] for x in v.values()),
            sum(x[1] for x in v.values()),
            max(x[1] for x in v.values()),
        )
        for k, v in per.items()
    }


def exactly_recoverable(
    status: dict[Any, Status], provinces: list[Any] = PROVINCES, materials: list[Any] = MATERIALS
) -> set[Any]:
    """Independent check by Gauss-Jordan elimination over the rationals: which unknowns are pinned down."""
    unknown = [k for k, s in status.items() if s in (Status.PRIMARY, Status.SECONDARY)]
    idx = {k: i for i, k in enumerate(unknown)}
    rows: list[list[Fraction]] = []
    lines = [[(r, c) for c in [*materials, TOTAL]] for r in [*provinces, TOTAL]]
    lines += [[(r, c) for r in [*provinces, TOTAL]] for c in [*materials, TOTAL]]
    for line in lines:
        vec = [Fraction(0)] * len(unknown)
        *members, total = line
        for k in members:
            if k in idx:
                vec[idx[k]] += 1
        if total in idx:
            vec[idx[total]] -= 1
        if any(vec):
            rows.append(vec)
    # reduced row echelon form
    pivots: list[int] = []
    r = 0
    for c in range(len(unknown)):
        p = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if p is None:
            continue
        rows[r], rows[p] = rows[p], rows[r]
        rows[r] = [x / rows[r][c] for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    # an unknown is determined iff some RREF row has a single non-zero entry in its column
    determined = set()
    for row in rows[:r]:
        nz = [i for i, x in enumerate(row) if x != 0]
        if len(nz) == 1:
            determined.add(unknown[nz[0]])
    return determined


@settings(max_examples=150, deadline=None)
@given(datasets)
def test_no_published_cell_breaks_the_rule_and_no_suppressed_cell_is_recoverable(enterprises: Any) -> None:
    cells = cells_of(enterprises)
    status = suppress(cells, PROVINCES, MATERIALS)
    for key, s in status.items():
        stats = cells.get(key)
        if s is Status.PUBLISHED:
            assert stats is not None and stats.n_enterprises >= 3
            assert stats.max_generated_kg * 100 <= 85 * stats.generated_kg
            assert stats.max_utilised_kg * 100 <= 85 * stats.utilised_kg
        if s is Status.PRIMARY:
            assert stats is not None and breaks_primary_rule(stats)
        if s is Status.EMPTY:
            assert stats is None or stats.n_enterprises == 0
    assert not exactly_recoverable(status)


def test_a_lone_suppressed_cell_gets_a_complement_in_its_row_and_column() -> None:
    # p1/m2 has one enterprise; without secondary suppression it would be row total − p1/m1.
    cells = {
        ("p1", "m1"): CellStats(5, 100, 20, 50, 10),
        ("p1", "m2"): CellStats(1, 10, 10, 5, 5),
        ("p2", "m1"): CellStats(4, 80, 30, 40, 10),
        ("p2", "m2"): CellStats(4, 60, 20, 30, 10),
        ("p1", TOTAL): CellStats(6, 110, 20, 55, 10),
        ("p2", TOTAL): CellStats(8, 140, 30, 70, 10),
        (TOTAL, "m1"): CellStats(9, 180, 30, 90, 10),
        (TOTAL, "m2"): CellStats(5, 70, 20, 35, 10),
        (TOTAL, TOTAL): CellStats(14, 250, 30, 125, 10),
    }
    status = suppress(cells, ["p1", "p2"], ["m1", "m2"])
    assert status[("p1", "m2")] is Status.PRIMARY
    assert status[("p1", "m1")] is Status.SECONDARY and status[("p2", "m2")] is Status.SECONDARY
    assert status[("p2", "m1")] is Status.SECONDARY  # the rectangle: no cell follows from the margins
    assert status[(TOTAL, TOTAL)] is Status.PUBLISHED


def test_dominance_suppresses_a_cell_of_many_enterprises() -> None:
    assert breaks_primary_rule(CellStats(10, 1000, 860, 0, 0))
    assert not breaks_primary_rule(CellStats(10, 1000, 850, 0, 0))
    assert breaks_primary_rule(CellStats(10, 1000, 100, 100, 90))  # dominant in utilisation
    assert breaks_primary_rule(CellStats(2, 1000, 500, 0, 0))
