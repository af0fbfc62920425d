"""Statistical disclosure control for published tables: primary and secondary (complementary) suppression.

Primary rule (threshold + dominance): a cell built from fewer than 3 enterprises, or where one enterprise makes
up more than 85% of the cell's total (of generation or of utilisation), is suppressed.

Secondary rule: a published table has margins (row totals, column totals, the grand total). A suppressed cell
must not be recoverable from them, e.g. as a row total minus the row's other published cells. We treat the
table as a linear system (every row: cells − row total = 0; every column likewise; the margins add up to the
grand total) whose unknowns are the suppressed entries. An entry is exactly recoverable iff its coordinate is
constant on the solution set, i.e. its row in a null-space basis of the unknowns' coefficient matrix is zero.
While any suppressed entry is recoverable, one more entry on one of its lines is suppressed (the smallest
published non-empty one, interior cells before margins). Empty cells (no enterprise) are known zeros: shown
as "no data", never used as a complement since they protect nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass

import numpy as np

MIN_ENTERPRISES = 3
MAX_DOMINANCE_PCT = 85  # integer percent: the comparison stays exact on integer kilograms
TOTAL = "__total__"  # the margin key: (row, TOTAL) is a row total, (TOTAL, col) a column total


class Status(enum.StrEnum):
    PUBLISHED = "published"
    EMPTY = "empty"  # no enterprise: nothing to protect
    PRIMARY = "primary"  # breaks the rule itself
    SECONDARY = "secondary"  # suppressed so that a primary cell cannot be recovered


@dataclass(frozen=True)
class CellStats:
    """What the rule needs to know about one cell: the count of contributors and the largest contribution."""

    n_enterprises: int
    generated_kg: int
    max_generated_kg: int
    utilised_kg: int
    max_utilised_kg: int


def breaks_primary_rule(c: CellStats) -> bool:
    if c.n_enterprises == 0:
        return False
    if c.n_enterprises < MIN_ENTERPRISES:
        return True
    for total, largest in ((c.generated_kg, c.max_generated_kg), (c.utilised_kg, c.max_utilised_kg)):
        if total > 0 and largest * 100 > MAX_DOMINANCE_PCT * total:
            return True
    return False


Key = tuple[Hashable, Hashable]


def _lines(rows: list[Hashable], cols: list[Hashable]) -> list[list[Key]]:
    """Each additive line: its members followed by its total (last)."""
    lines: list[list[Key]] = []
    for r in [*rows, TOTAL]:
        lines.append([*((r, c) for c in cols), (r, TOTAL)])
    for c in [*cols, TOTAL]:
        lines.append([*((r, c) for r in rows), (TOTAL, c)])
    return lines


def recoverable(status: Mapping[Key, Status], rows: list[Hashable], cols: list[Hashable]) -> list[Key]:
    """Suppressed entries whose value follows exactly from the published ones and the additivity of the table."""
    unknown = [k for k, s in status.items() if s in (Status.PRIMARY, Status.SECONDARY)]
    if not unknown:
        return []
    index = {k: i for i, k in enumerate(unknown)}
    eqs: list[np.ndarray] = []
    for line in _lines(rows, cols):
        vec = np.zeros(len(unknown))
        *members, total = line
        for k in members:
            if k in index:
                vec[index[k]] += 1.0
        if total in index:
            vec[index[total]] -= 1.0
        if vec.any():
            eqs.append(vec)
    if not eqs:
        return []
    a = np.vstack(eqs)
    # Null space of A: x is determined up to N z; coordinate k is fixed iff N[k, :] == 0.
    _, sv, vt = np.linalg.svd(a)
    rank = int((sv > 1e-9 * max(1.0, sv.max())).sum())
    null = vt[rank:].T  # shape (n_unknown, n_unknown - rank)
    if null.shape[1] == 0:
        return list(unknown)
    norms = np.abs(null).max(axis=1)
    return [k for k, i in index.items() if norms[i] < 1e-9]


def suppress(
    cells: Mapping[Key, CellStats],
    rows: list[Hashable],
    cols: list[Hashable],
    also_primary: Collection[Key] = (),
) -> dict[Key, Status]:
    """Status of every interior cell and margin of the table rows × cols (with margins keyed by TOTAL).

    `also_primary`: cells that pass the rule themselves but break it for some insider (see
    `exchange.stats.service.exposed_to_insiders`); they are suppressed as primary cells."""
    status: dict[Key, Status] = {}
    keys = [(r, c) for r in [*rows, TOTAL] for c in [*cols, TOTAL]]
    empty = CellStats(0, 0, 0, 0, 0)
    forced = set(also_primary)
    for k in keys:
        s = cells.get(k, empty)
        if s.n_enterprises == 0:
            status[k] = Status.EMPTY
        elif breaks_primary_rule(s) or k in forced:
            status[k] = Status.PRIMARY
        else:
            status[k] = Status.PUBLISHED
    lines = _lines(rows, cols)
    while True:
        exposed = recoverable(status, rows, cols)
        if not exposed:
            return status
        target = exposed[0]
        candidates: list[tuple[int, int, str, Key]] = []
        for line in lines:
            if target not in line:
                continue
            for k in line:
                if status[k] is Status.PUBLISHED:
                    is_margin = int(TOTAL in k)
                    candidates.append((is_margin, cells.get(k, empty).generated_kg, repr(k), k))
        if not candidates:  # determined through a chain of lines: widen to every line touching a suppressed entry
            suppressed = {k for k, st in status.items() if st in (Status.PRIMARY, Status.SECONDARY)}
            for line in lines:
                if suppressed.intersection(line):
                    for k in line:
                        if status[k] is Status.PUBLISHED:
                            candidates.append((int(TOTAL in k), cells.get(k, empty).generated_kg, repr(k), k))
            if not candidates:
                return status
        candidates.sort()
        status[candidates[0][3]] = Status.SECONDARY
