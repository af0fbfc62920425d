"""The JSON contract (`exchange solve INPUT.json`): parse strictly, write deterministically.

Parsing checks JSON types here and leaves the domain rules (ranges, duplicates, catalogue) to
`model.check_problem`, so code-built and file-built problems fail the same way.  Output is
rounded once, at this boundary: tonnes to 3 decimals (1 kg), km and CNY to 2, rates to 6.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from solver.model import (
    Accept,
    ContractError,
    DemandLot,
    MaterialRule,
    Params,
    Pin,
    Problem,
    Solution,
    SupplyLot,
    check_problem,
)

_MISSING = object()


def _get(obj: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
    if key not in obj or obj[key] is None:
        if default is _MISSING:
            raise ContractError(f"{path}.{key}" if path else key, "is required")
        return default
    return obj[key]


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(path, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ContractError(path, f"must be a list, got {type(value).__name__}")
    return value


def _opt_list(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """An optional list: absent or null is empty; anything else must be a list (`"permits": ""` is an error,
    not "no permits")."""
    value = obj.get(key)
    return [] if value is None else _list(value, path)


def _num(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ContractError(path, f"must be a finite number, got {value!r}")
    return float(value)


def _opt_num(obj: Mapping[str, Any], key: str, path: str) -> float | None:
    value = obj.get(key)
    return None if value is None else _num(value, f"{path}.{key}")


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ContractError(path, f"must be a non-empty string, got {value!r}")
    return value


def _supply(raw: Any, p: str) -> SupplyLot:
    o = _obj(raw, p)
    grade = o.get("grade")
    return SupplyLot(
        id=_str(_get(o, "id", p), f"{p}.id"),
        material=_str(_get(o, "material", p), f"{p}.material"),
        quantity_t=_num(_get(o, "quantity_t", p), f"{p}.quantity_t"),
        lat=_num(_get(o, "lat", p), f"{p}.lat"),
        lon=_num(_get(o, "lon", p), f"{p}.lon"),
        grade=None if grade is None else _str(grade, f"{p}.grade"),
        max_distance_km=_opt_num(o, "max_distance_km", p),
        min_lot_t=0.0 if o.get("min_lot_t") is None else _num(o["min_lot_t"], f"{p}.min_lot_t"),
    )


def _accept(raw: Any, p: str) -> Accept:
    o = _obj(raw, p)
    grades = o.get("grades")
    return Accept(
        material=_str(_get(o, "material", p), f"{p}.material"),
        grades=None
        if grades is None
        else tuple(_str(g, f"{p}.grades[{k}]") for k, g in enumerate(_list(grades, f"{p}.grades"))),
    )


def _demand(raw: Any, p: str) -> DemandLot:
    o = _obj(raw, p)
    accepts = _list(_get(o, "accepts", p), f"{p}.accepts")
    permits = _opt_list(o, "permits", f"{p}.permits")
    return DemandLot(
        id=_str(_get(o, "id", p), f"{p}.id"),
        quantity_t=_num(_get(o, "quantity_t", p), f"{p}.quantity_t"),
        lat=_num(_get(o, "lat", p), f"{p}.lat"),
        lon=_num(_get(o, "lon", p), f"{p}.lon"),
        accepts=tuple(_accept(a, f"{p}.accepts[{k}]") for k, a in enumerate(accepts)),
        max_distance_km=_opt_num(o, "max_distance_km", p),
        permits=tuple(_str(m, f"{p}.permits[{k}]") for k, m in enumerate(permits)),
    )


def problem_from_json(obj: Any) -> Problem:
    """Build a Problem from parsed JSON; raises ContractError(field_path, message)."""
    root = _obj(obj, "(root)")
    supplies = _list(_get(root, "supplies", ""), "supplies")
    demands = _list(_get(root, "demands", ""), "demands")
    materials: dict[str, MaterialRule] | None = None
    if root.get("materials") is not None:
        materials = {}
        for code, raw in _obj(root["materials"], "materials").items():
            p = f"materials.{code}"
            rule = _obj(raw, p)
            hazardous = rule.get("hazardous", False)
            if not isinstance(hazardous, bool):
                raise ContractError(f"{p}.hazardous", f"must be true or false, got {hazardous!r}")
            materials[_str(code, "materials")] = MaterialRule(_opt_num(rule, "max_distance_km", p), hazardous)
    params = Params()
    if root.get("params") is not None:
        po = _obj(root["params"], "params")
        params = Params(
            freight_cny_per_t_km=_num(
                po.get("freight_cny_per_t_km", params.freight_cny_per_t_km), "params.freight_cny_per_t_km"
            ),
            detour_factor=_num(po.get("detour_factor", params.detour_factor), "params.detour_factor"),
        )
    forbidden: list[tuple[str, str]] = []
    for k, raw in enumerate(_opt_list(root, "forbidden", "forbidden")):
        pair = _list(raw, f"forbidden[{k}]")
        if len(pair) != 2:
            raise ContractError(f"forbidden[{k}]", "must be a [supply_id, demand_id] pair")
        forbidden.append((_str(pair[0], f"forbidden[{k}][0]"), _str(pair[1], f"forbidden[{k}][1]")))
    pinned: list[Pin] = []
    for k, raw in enumerate(_opt_list(root, "pinned", "pinned")):
        p = f"pinned[{k}]"
        o = _obj(raw, p)
        pinned.append(
            Pin(
                supply=_str(_get(o, "supply", p), f"{p}.supply"),
                demand=_str(_get(o, "demand", p), f"{p}.demand"),
                quantity_t=_num(_get(o, "quantity_t", p), f"{p}.quantity_t"),
            )
        )
    problem = Problem(
        supplies=tuple(_supply(s, f"supplies[{i}]") for i, s in enumerate(supplies)),
        demands=tuple(_demand(d, f"demands[{i}]") for i, d in enumerate(demands)),
        materials=materials,
        params=params,
        forbidden=tuple(forbidden),
        pinned=tuple(pinned),
    )
    check_problem(problem)
    return problem


def _r(value: float, digits: int) -> float:
    # round() then +0.0 turns -0.0 into 0.0 so identical plans print identically.
    return round(value, digits) + 0.0


def solution_to_json(solution: Solution, *, timing: bool = True) -> dict[str, Any]:
    """Plain JSON-able dict; with ``timing=False`` solve_seconds is 0.0 so output is byte-stable."""
    out: dict[str, Any] = {"status": solution.status.value}
    if solution.error_field is not None or solution.message:
        out["error"] = {"field": solution.error_field, "message": solution.message}
    out["allocations"] = [
        {
            "supply": a.supply,
            "demand": a.demand,
            "quantity_t": _r(a.quantity_t, 3),
            "distance_km": _r(a.distance_km, 2),
            "cost_cny": _r(a.cost_cny, 2),
        }
        for a in sorted(solution.allocations, key=lambda a: (a.supply, a.demand))
    ]
    if solution.summary is not None:
        s = solution.summary
        out["summary"] = {
            "supply_t": _r(s.supply_t, 3),
            "demand_t": _r(s.demand_t, 3),
            "matched_t": _r(s.matched_t, 3),
            "utilisation": _r(s.utilisation, 6),
            "transport_cost_cny": _r(s.transport_cost_cny, 2),
            "tonne_km": _r(s.tonne_km, 3),
            "pairs_considered": s.pairs_considered,
            "solve_seconds": _r(s.solve_seconds, 3) if timing else 0.0,
        }
    unmatched = []
    for u in sorted(solution.unmatched, key=lambda u: u.supply):
        row: dict[str, Any] = {
            "supply": u.supply,
            "quantity_t": _r(u.quantity_t, 3),
            "reason": u.reason,
            "detail": u.detail,
        }
        if u.nearest_demand is not None:
            row["nearest_demand"] = u.nearest_demand
            row["nearest_distance_km"] = _r(u.nearest_distance_km or 0.0, 2)
        unmatched.append(row)
    out["unmatched"] = unmatched
    out["demand_marginal_value"] = {k: _r(v, 6) for k, v in sorted(solution.demand_marginal_value.items())}
    return out
