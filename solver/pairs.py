"""Candidate (supply, demand) pairs: which consumers could take a lot, and how far away they are.

Testing every S×D pair is quadratic (4×10^8 pairs for a national round), so demands are grouped
by what they can take and put in a k-d tree of 3-D unit vectors; each supply asks its group's
tree for everything within the chord that corresponds to its tightest distance limit, and only
those survivors get an exact great-circle distance.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from solver.model import EARTH_RADIUS_KM, Problem

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

# The k-d tree query is inflated by this relative margin so that rounding in the chord formula can
# never drop a pair that the exact distance test would keep; the exact test decides.
_CHORD_MARGIN = 1e-9


def unit_vectors(lat_deg: FloatArray, lon_deg: FloatArray) -> FloatArray:
    lat = np.radians(lat_deg)
    lon = np.radians(lon_deg)
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))


def great_circle_km(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Vectorised copy of geopy.distance.great_circle (same formula, same radius)."""
    p1, l1 = np.radians(lat1), np.radians(lon1)
    p2, l2 = np.radians(lat2), np.radians(lon2)
    sin1, cos1 = np.sin(p1), np.cos(p1)
    sin2, cos2 = np.sin(p2), np.cos(p2)
    dl = l2 - l1
    cos_dl, sin_dl = np.cos(dl), np.sin(dl)
    y = np.sqrt((cos2 * sin_dl) ** 2 + (cos1 * sin2 - sin1 * cos2 * cos_dl) ** 2)
    x = sin1 * sin2 + cos1 * cos2 * cos_dl
    return np.asarray(EARTH_RADIUS_KM * np.arctan2(y, x), dtype=np.float64)


def chord_for_road_km(road_km: FloatArray, detour_factor: float) -> FloatArray:
    """Unit-sphere chord length of the great circle that a road-km limit allows."""
    angle = np.minimum(np.asarray(road_km, dtype=np.float64) / detour_factor / EARTH_RADIUS_KM, math.pi)
    return np.asarray(2.0 * np.sin(angle / 2.0) * (1 + _CHORD_MARGIN) + 1e-12, dtype=np.float64)


@dataclass(frozen=True)
class CompatGroup:
    """Supplies that share material and grade, and the demands that may receive them."""

    material: str
    grade: str | None
    supplies: IntArray
    demands: IntArray  # accept material and grade, and hold the permit if it is hazardous
    accepts_material: bool  # some demand accepts the material at all
    accepts_grade: bool  # some demand accepts the material in this grade
    hazardous: bool
    material_limit_km: float
    tree: cKDTree | None


@dataclass(frozen=True)
class PairSet:
    """Candidate pairs sorted by (supply, demand), with road distance in km."""

    supply: IntArray
    demand: IntArray
    road_km: FloatArray
    groups: tuple[CompatGroup, ...]
    supply_limit_km: FloatArray  # min(supply limit, material limit); inf when none applies
    demand_limit_km: FloatArray

    def __len__(self) -> int:
        return int(self.supply.size)


def _limit(value: float | None) -> float:
    return math.inf if value is None else float(value)


def build_pairs(problem: Problem) -> PairSet:
    supplies, demands = problem.supplies, problem.demands
    detour = problem.params.detour_factor
    materials = problem.materials or {}
    n_d = len(demands)
    d_lat = np.array([d.lat for d in demands], dtype=np.float64)
    d_lon = np.array([d.lon for d in demands], dtype=np.float64)
    s_lat = np.array([s.lat for s in supplies], dtype=np.float64)
    s_lon = np.array([s.lon for s in supplies], dtype=np.float64)
    d_limit = np.array([_limit(d.max_distance_km) for d in demands], dtype=np.float64)
    d_xyz = unit_vectors(d_lat, d_lon) if n_d else np.zeros((0, 3))
    s_xyz = unit_vectors(s_lat, s_lon) if supplies else np.zeros((0, 3))
    s_limit = np.full(len(supplies), math.inf)

    # Which demands accept which (material, grade): one pass over the accepts lists.
    any_grade: dict[str, list[int]] = {}
    by_grade: dict[tuple[str, str], list[int]] = {}
    for j, d in enumerate(demands):
        for a in d.accepts:
            if a.grades is None:
                any_grade.setdefault(a.material, []).append(j)
            else:
                for g in a.grades:
                    by_grade.setdefault((a.material, g), []).append(j)
    permit_sets = [frozenset(d.permits) for d in demands]

    keys: dict[tuple[str, str | None], list[int]] = {}
    for i, s in enumerate(supplies):
        keys.setdefault((s.material, s.grade), []).append(i)

    groups: list[CompatGroup] = []
    chunks_s: list[IntArray] = []
    chunks_d: list[IntArray] = []
    chunks_km: list[FloatArray] = []
    for (material, grade), members in sorted(keys.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        rule = materials.get(material)
        hazardous = bool(rule and rule.hazardous)
        material_limit = _limit(rule.max_distance_km if rule else None)
        accepting = set(any_grade.get(material, ()))
        accepts_material = bool(accepting) or any(m == material for (m, _g) in by_grade)
        if grade is not None:
            accepting.update(by_grade.get((material, grade), ()))
        accepts_grade = bool(accepting)
        if hazardous:
            accepting = {j for j in accepting if material in permit_sets[j]}
        cand = np.array(sorted(accepting), dtype=np.int64)
        s_idx = np.array(members, dtype=np.int64)
        s_limit[s_idx] = [min(_limit(supplies[i].max_distance_km), material_limit) for i in members]
        tree = cKDTree(d_xyz[cand]) if cand.size else None
        groups.append(
            CompatGroup(material, grade, s_idx, cand, accepts_material, accepts_grade, hazardous, material_limit, tree)
        )
        # Demands listing 0 t stay in: they carry nothing, but their marginal value is real.
        if tree is None:
            continue
        live = s_idx[[supplies[i].quantity_t > 0 for i in members]]
        if live.size == 0:
            continue
        query_km = np.minimum(s_limit[live], float(d_limit[cand].max()))
        hits = tree.query_ball_point(
            s_xyz[live], r=chord_for_road_km(query_km, detour), workers=-1, return_sorted=False
        )
        counts = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits))
        total = int(counts.sum())
        if total == 0:
            continue
        si = np.repeat(live, counts)
        dj = cand[np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=total)]
        road = great_circle_km(s_lat[si], s_lon[si], d_lat[dj], d_lon[dj]) * detour
        keep = (road <= s_limit[si]) & (road <= d_limit[dj])
        chunks_s.append(si[keep])
        chunks_d.append(dj[keep])
        chunks_km.append(road[keep])

    if chunks_s:
        si = np.concatenate(chunks_s)
        dj = np.concatenate(chunks_d)
        road = np.concatenate(chunks_km)
    else:
        si = np.zeros(0, dtype=np.int64)
        dj = np.zeros(0, dtype=np.int64)
        road = np.zeros(0, dtype=np.float64)
    if problem.forbidden and si.size:
        s_pos = {s.id: i for i, s in enumerate(supplies)}
        d_pos = {d.id: j for j, d in enumerate(demands)}
        banned = np.array([s_pos[a] * n_d + d_pos[b] for a, b in problem.forbidden], dtype=np.int64)
        keep = ~np.isin(si * n_d + dj, banned)
        si, dj, road = si[keep], dj[keep], road[keep]
    order = np.lexsort((dj, si))
    return PairSet(si[order], dj[order], road[order], tuple(groups), s_limit, d_limit)
