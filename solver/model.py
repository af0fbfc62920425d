"""Plain, frozen data the solver reads and writes.

The platform builds these from listings (or `contract.problem_from_json` builds them from
the JSON contract); nothing here knows about HTTP or databases.  Tonnes are floats in the
API because that is what callers have; the engines work in integer kilograms internally.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

# Mean Earth radius used by geopy.distance.great_circle (IUGG mean radius, km).
EARTH_RADIUS_KM = 6371.009


class ContractError(ValueError):
    """Malformed input, carrying the path of the offending field (e.g. ``supplies[3].quantity_t``)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field_path = field_path
        self.message = message


class Status(enum.Enum):
    OPTIMAL = "optimal"
    # Only the min-lot MIP can stop at its time limit with a proven-feasible, unproven-optimal plan.
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    INVALID = "invalid"


@dataclass(frozen=True)
class Accept:
    """A material a consumer takes; ``grades=None`` means any grade."""

    material: str
    grades: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SupplyLot:
    id: str
    material: str
    quantity_t: float
    lat: float
    lon: float
    grade: str | None = None
    max_distance_km: float | None = None
    min_lot_t: float = 0.0


@dataclass(frozen=True)
class DemandLot:
    id: str
    quantity_t: float
    lat: float
    lon: float
    accepts: tuple[Accept, ...]
    max_distance_km: float | None = None
    permits: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaterialRule:
    max_distance_km: float | None = None
    hazardous: bool = False


@dataclass(frozen=True)
class Params:
    freight_cny_per_t_km: float = 0.35
    detour_factor: float = 1.3


@dataclass(frozen=True)
class Pin:
    """A pair that must carry at least ``quantity_t`` (an agreement already made in an earlier round)."""

    supply: str
    demand: str
    quantity_t: float


@dataclass(frozen=True)
class Problem:
    supplies: tuple[SupplyLot, ...]
    demands: tuple[DemandLot, ...]
    # None: no material catalogue given, so any material code is allowed and none is hazardous.
    materials: Mapping[str, MaterialRule] | None = None
    params: Params = field(default_factory=Params)
    forbidden: tuple[tuple[str, str], ...] = ()
    pinned: tuple[Pin, ...] = ()


@dataclass(frozen=True)
class Allocation:
    supply: str
    demand: str
    quantity_t: float
    distance_km: float
    cost_cny: float


@dataclass(frozen=True)
class Unmatched:
    supply: str
    quantity_t: float
    reason: str
    detail: str
    nearest_demand: str | None = None
    nearest_distance_km: float | None = None


@dataclass(frozen=True)
class Summary:
    supply_t: float
    demand_t: float
    matched_t: float
    utilisation: float
    transport_cost_cny: float
    tonne_km: float
    pairs_considered: int
    solve_seconds: float


@dataclass(frozen=True)
class Solution:
    status: Status
    allocations: tuple[Allocation, ...] = ()
    unmatched: tuple[Unmatched, ...] = ()
    summary: Summary | None = None
    demand_marginal_value: Mapping[str, float] = field(default_factory=dict)
    # For INVALID / INFEASIBLE: which field is at fault and why.
    error_field: str | None = None
    message: str = ""


def _check_number(path: str, value: float, *, positive: bool = False, allow_zero: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ContractError(path, f"must be a finite number, got {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise ContractError(path, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _check_text(path: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ContractError(path, f"must be a non-empty string, got {value!r}")


def check_problem(problem: Problem) -> None:
    """Raise ContractError for the first rule the problem breaks.

    Shared by the JSON contract and `solve`, so a Problem built in code is held to the same
    rules as one read from a file, with the same field paths.
    """
    materials = problem.materials
    seen: set[str] = set()
    for i, s in enumerate(problem.supplies):
        p = f"supplies[{i}]"
        _check_text(f"{p}.id", s.id)
        if s.id in seen:
            raise ContractError(f"{p}.id", f"duplicate supply id {s.id!r}")
        seen.add(s.id)
        _check_text(f"{p}.material", s.material)
        if materials is not None and s.material not in materials:
            raise ContractError(f"{p}.material", f"material {s.material!r} is not in 'materials'")
        _check_number(f"{p}.quantity_t", s.quantity_t, positive=True)
        _check_number(f"{p}.lat", s.lat)
        if not -90 <= s.lat <= 90:
            raise ContractError(f"{p}.lat", f"latitude must be within [-90, 90], got {s.lat}")
        _check_number(f"{p}.lon", s.lon)
        if not -180 <= s.lon <= 180:
            raise ContractError(f"{p}.lon", f"longitude must be within [-180, 180], got {s.lon}")
        if s.grade is not None:
            _check_text(f"{p}.grade", s.grade)
        if s.max_distance_km is not None:
            _check_number(f"{p}.max_distance_km", s.max_distance_km, positive=True)
        _check_number(f"{p}.min_lot_t", s.min_lot_t, positive=True)
    seen_d: set[str] = set()
    for i, d in enumerate(problem.demands):
        p = f"demands[{i}]"
        _check_text(f"{p}.id", d.id)
        if d.id in seen_d:
            raise ContractError(f"{p}.id", f"duplicate demand id {d.id!r}")
        seen_d.add(d.id)
        _check_number(f"{p}.quantity_t", d.quantity_t, positive=True)
        _check_number(f"{p}.lat", d.lat)
        if not -90 <= d.lat <= 90:
            raise ContractError(f"{p}.lat", f"latitude must be within [-90, 90], got {d.lat}")
        _check_number(f"{p}.lon", d.lon)
        if not -180 <= d.lon <= 180:
            raise ContractError(f"{p}.lon", f"longitude must be within [-180, 180], got {d.lon}")
        if d.max_distance_km is not None:
            _check_number(f"{p}.max_distance_km", d.max_distance_km, positive=True)
        for j, a in enumerate(d.accepts):
            ap = f"{p}.accepts[{j}]"
            _check_text(f"{ap}.material", a.material)
            if materials is not None and a.material not in materials:
                raise ContractError(f"{ap}.material", f"material {a.material!r} is not in 'materials'")
            if a.grades is not None:
                for k, g in enumerate(a.grades):
                    _check_text(f"{ap}.grades[{k}]", g)
        for j, m in enumerate(d.permits):
            _check_text(f"{p}.permits[{j}]", m)
    if materials is not None:
        for code, rule in materials.items():
            _check_text("materials", code)
            if rule.max_distance_km is not None:
                _check_number(f"materials.{code}.max_distance_km", rule.max_distance_km, positive=True)
    _check_number("params.freight_cny_per_t_km", problem.params.freight_cny_per_t_km, positive=True)
    _check_number("params.detour_factor", problem.params.detour_factor, positive=True, allow_zero=False)
    for i, (sid, did) in enumerate(problem.forbidden):
        if sid not in seen:
            raise ContractError(f"forbidden[{i}][0]", f"unknown supply id {sid!r}")
        if did not in seen_d:
            raise ContractError(f"forbidden[{i}][1]", f"unknown demand id {did!r}")
    seen_pins: set[tuple[str, str]] = set()
    for i, pin in enumerate(problem.pinned):
        if pin.supply not in seen:
            raise ContractError(f"pinned[{i}].supply", f"unknown supply id {pin.supply!r}")
        if pin.demand not in seen_d:
            raise ContractError(f"pinned[{i}].demand", f"unknown demand id {pin.demand!r}")
        if (pin.supply, pin.demand) in seen_pins:
            raise ContractError(f"pinned[{i}]", f"pair ({pin.supply}, {pin.demand}) is pinned twice")
        seen_pins.add((pin.supply, pin.demand))
        _check_number(f"pinned[{i}].quantity_t", pin.quantity_t, positive=True)
