"""The JSON contract through `cli.main`: errors name the field, output is byte-stable."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from solver.cli import main

EXAMPLE: dict[str, Any] = {
    "supplies": [
        {"id": "s1", "material": "fly_ash", "quantity_t": 1200.0, "lat": 38.04, "lon": 114.51,
         "grade": "II", "max_distance_km": 200, "min_lot_t": 0},
        {"id": "s7", "material": "fly_ash", "quantity_t": 300.0, "lat": 30.0, "lon": 120.0, "grade": "I"},
    ],
    "demands": [
        {"id": "d1", "quantity_t": 800.0, "lat": 37.9, "lon": 114.9,
         "accepts": [{"material": "fly_ash", "grades": ["I", "II"]}, {"material": "ggbs"}],
         "max_distance_km": 150, "permits": []},
        {"id": "d2", "quantity_t": 100.0, "lat": 38.2, "lon": 114.3, "accepts": [{"material": "fly_ash"}]},
    ],
    "materials": {"fly_ash": {"max_distance_km": 300, "hazardous": False}, "ggbs": {}},
    "params": {"freight_cny_per_t_km": 0.35, "detour_factor": 1.3},
}  # fmt: skip


def _run(tmp_path: Path, payload: Any, *extra: str) -> tuple[int, str]:
    src = tmp_path / "in.json"
    src.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    out = tmp_path / "out.json"
    code = main([str(src), "-o", str(out), *extra])
    return code, out.read_text() if out.exists() else ""


def test_example_solves_and_checks(tmp_path: Path) -> None:
    code, text = _run(tmp_path, EXAMPLE, "--check")
    assert code == 0
    out = json.loads(text)
    assert out["status"] == "optimal"
    assert {(a["supply"], a["demand"], a["quantity_t"]) for a in out["allocations"]} == {
        ("s1", "d1", 800.0),
        ("s1", "d2", 100.0),
    }
    reasons = {u["supply"]: u for u in out["unmatched"]}
    assert reasons["s1"]["reason"] == "demand_filled_by_other_supply"
    assert reasons["s7"]["reason"] == "no_compatible_demand_within_range"
    assert reasons["s7"]["nearest_demand"] in {"d1", "d2"} and reasons["s7"]["nearest_distance_km"] > 300
    s = out["summary"]
    assert s["matched_t"] == 900.0 and s["utilisation"] == pytest.approx(900 / 1500, abs=1e-6)
    assert set(out["demand_marginal_value"]) == {"d1", "d2"}


def test_stdout_when_no_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps(EXAMPLE))
    assert main([str(src)]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["matched_t"] == 900.0


def test_output_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    _, first = _run(tmp_path, EXAMPLE, "--deterministic")
    _, second = _run(tmp_path, EXAMPLE, "--deterministic")
    assert first == second and '"solve_seconds": 0.0' in first


def _broken(path: str, value: Any) -> dict[str, Any]:
    """EXAMPLE with one field replaced (or deleted, for value=...)."""
    obj = copy.deepcopy(EXAMPLE)
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node: Any = obj
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("supplies.1.quantity_t", ..., "supplies[1].quantity_t"),
        ("supplies.0.quantity_t", -1.0, "supplies[0].quantity_t"),
        ("supplies.0.quantity_t", "12", "supplies[0].quantity_t"),
        ("supplies.0.quantity_t", math.inf, "supplies[0].quantity_t"),
        ("supplies.0.lat", 91.0, "supplies[0].lat"),
        ("demands.1.lon", -181.0, "demands[1].lon"),
        ("demands.1.id", "d1", "demands[1].id"),
        ("supplies.1.id", "s1", "supplies[1].id"),
        ("supplies.0.material", "ggbs2", "supplies[0].material"),
        ("demands.0.accepts.1.material", "slag", "demands[0].accepts[1].material"),
        ("demands.0.accepts.1.material", "", "demands[0].accepts[1].material"),
        ("demands.0.accepts", ..., "demands[0].accepts"),
        ("demands.0.accepts.0.grades", "I", "demands[0].accepts[0].grades"),
        ("demands.0.max_distance_km", -5, "demands[0].max_distance_km"),
        ("supplies.0.min_lot_t", -1, "supplies[0].min_lot_t"),
        ("materials.fly_ash.hazardous", "no", "materials.fly_ash.hazardous"),
        ("params.detour_factor", 0, "params.detour_factor"),
        ("supplies", {}, "supplies"),
    ],
)
def test_malformed_input_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, value: Any, field: str
) -> None:
    code, _ = _run(tmp_path, _broken(path, value))
    assert code == 2
    assert field in capsys.readouterr().err


def test_nan_literal_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(EXAMPLE).replace('"quantity_t": 800.0', '"quantity_t": NaN')
    code, _ = _run(tmp_path, text)
    assert code == 2 and "demands[0].quantity_t" in capsys.readouterr().err


def test_unreadable_json_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(tmp_path, "{not json")
    assert code == 2 and "cannot read" in capsys.readouterr().err


def test_forbidden_and_pinned_round_trip(tmp_path: Path) -> None:
    obj = copy.deepcopy(EXAMPLE)
    obj["forbidden"] = [["s1", "d2"]]
    obj["pinned"] = [{"supply": "s1", "demand": "d1", "quantity_t": 50.0}]
    code, text = _run(tmp_path, obj, "--check")
    assert code == 0
    assert [(a["supply"], a["demand"]) for a in json.loads(text)["allocations"]] == [("s1", "d1")]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"forbidden": [["s1"]]}, "forbidden[0]"),
        ({"forbidden": [["s1", "nope"]]}, "forbidden[0][1]"),
        ({"pinned": [{"supply": "s1", "demand": "d1"}]}, "pinned[0].quantity_t"),
        ({"pinned": [{"supply": "s7", "demand": "d1", "quantity_t": 1}]}, "pinned[0]"),
        ({"pinned": [{"supply": "s1", "demand": "d1", "quantity_t": 900}]}, "pinned[0].quantity_t"),
    ],
)
def test_bad_extensions_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: dict[str, Any], field: str
) -> None:
    code, _ = _run(tmp_path, {**EXAMPLE, **extra})
    assert code == 2
    assert field in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["demands"][0].update(permits=""), "demands[0].permits"),
        (lambda p: p["demands"][0].update(permits=0), "demands[0].permits"),
        (lambda p: p["supplies"][0].update(min_lot_t=False), "supplies[0].min_lot_t"),
        (lambda p: p.update(forbidden=0), "forbidden"),
        (lambda p: p.update(pinned=""), "pinned"),
    ],
)
def test_the_contract_refuses_a_wrong_typed_optional_field_instead_of_reading_it_as_absent(
    change: Any, field: str
) -> None:
    """The library's own parser, not only the command: `"permits": ""` is a mistake, not "no permits"."""
    from solver.contract import ContractError, problem_from_json

    payload = copy.deepcopy(EXAMPLE)
    change(payload)
    with pytest.raises(ContractError) as err:
        problem_from_json(payload)
    assert err.value.field_path == field


def test_absent_or_null_optional_fields_take_their_defaults() -> None:
    from solver.contract import problem_from_json

    payload = copy.deepcopy(EXAMPLE)
    payload["demands"][0]["permits"] = None
    payload["supplies"][0]["min_lot_t"] = None
    payload["forbidden"] = None
    problem = problem_from_json(payload)
    assert problem.demands[0].permits == () and problem.supplies[0].min_lot_t == 0.0
