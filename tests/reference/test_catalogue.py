from __future__ import annotations

from typing import Any

import pytest

from exchange.reference.catalogue import BULK_CATEGORIES, load_catalogue, read_raw

EXEMPT_KEYS = {"rank", "year"}  # ordinals, not measurements


def _walk(node: Any, path: str, parent: dict[str, Any] | None, out: list[str]) -> None:
    if isinstance(node, bool):
        return
    if isinstance(node, int | float):
        key = path.rsplit(".", 1)[-1]
        if key in EXEMPT_KEYS:
            return
        if parent is None or not (parent.get("source") or parent.get("estimate") is True):
            out.append(path)
        return
    if isinstance(node, dict):
        for k, v in node.items():
            _walk(v, f"{path}.{k}", node, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, f"{path}[{i}]", parent if not isinstance(v, dict) else None, out)


def test_every_number_in_the_catalogue_has_a_source_or_an_estimate_flag() -> None:
    raw, sources = read_raw()
    unsourced: list[str] = []
    _walk(raw, "catalogue", None, unsourced)
    assert unsourced == []
    cited = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "source" in node:
                cited.add(node["source"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(raw)
    assert cited <= set(sources), cited - set(sources)


def test_material_codes_and_official_codes_are_well_formed() -> None:
    cat = load_catalogue()
    codes = [m.code for m in cat.materials]
    assert len(codes) == len(set(codes))
    for m in cat.materials:
        assert m.code == m.code.lower() and " " not in m.code
        if m.hazardous and m.official_code.startswith("HW"):
            cls, num = m.official_code.split()
            assert num.endswith(cls[2:]) and len(num) == 10
        else:
            assert m.official_code.startswith("SW")
        assert m.unit == "t"


def test_required_materials_are_present() -> None:
    cat = load_catalogue()
    for code in (
        "tailings", "fly_ash", "furnace_slag", "coal_gangue", "ggbs", "steel_slag", "nonferrous_slag",
        "fgd_gypsum", "phosphogypsum", "titanium_gypsum", "red_mud", "scrap_steel", "scrap_copper",
        "scrap_aluminium", "battery_lfp", "battery_ncm", "battery_lead_acid", "waste_plastics", "waste_paper",
        "waste_tyres", "waste_mineral_oil",
    ):  # fmt: skip
        assert cat.find(code) is not None, code
    assert {m.bulk_category for m in cat.bulk_materials()} == set(BULK_CATEGORIES)
    assert all(m.hazardous for m in cat.by_group("hazardous_waste"))
    assert len(cat.by_group("hazardous_waste")) >= 3


def test_grades_are_ordered_best_first_and_limits_tighten() -> None:
    cat = load_catalogue()
    for m in cat.materials:
        assert [g.rank for g in m.grades] == list(range(1, len(m.grades) + 1))
        for better, worse in zip(m.grades, m.grades[1:], strict=False):
            if better.standard != worse.standard:
                continue  # steel slag: powder grades (GB/T 20491) and road slag (GB/T 25824) are different scales
            ops = {(x.parameter, x.operator) for x in better.limits}
            for lim in better.limits:
                if {(lim.parameter, "<="), (lim.parameter, ">=")} <= ops:
                    continue  # a size window (scrap piece mass), not a quality threshold
                twin = [w for w in worse.limits if w.parameter == lim.parameter and w.operator == lim.operator]
                for w in twin:
                    if lim.operator in ("<=", "<"):
                        assert lim.value <= w.value, (m.code, better.code, lim.parameter)
                    elif lim.operator in (">=", ">"):
                        assert lim.value >= w.value, (m.code, better.code, lim.parameter)


def test_fly_ash_grades_follow_gbt_1596() -> None:
    fly = load_catalogue().get("fly_ash")
    assert [g.code for g in fly.grades] == ["I", "II", "III"]
    assert fly.grade("I").admits({"fineness_45um": 10.0, "loi": 4.0})
    assert not fly.grade("I").admits({"fineness_45um": 20.0})
    assert fly.grade("II").admits({"fineness_45um": 20.0})
    assert load_catalogue().get("ggbs").grade_at_least("S95") == ("S105", "S95")


def test_get_raises_and_find_returns_none_for_unknown_codes() -> None:
    cat = load_catalogue()
    with pytest.raises(KeyError):
        cat.get("unobtainium")
    assert cat.find("unobtainium") is None


def test_industries_cover_routes_and_required_codes() -> None:
    cat = load_catalogue()
    codes = {i.code for i in cat.industries}
    assert {
        "coal_power", "steel_bf_bof", "steel_eaf", "cement", "concrete", "plasterboard", "bricks",
        "road_construction", "battery_recycling", "nonferrous_smelting", "chemical", "mining", "paper",
        "plastics_recycling", "other",
    } <= codes  # fmt: skip
    for m in cat.materials:
        assert m.consuming_industries, m.code
        assert {r.industry for r in m.routes} <= codes


def test_transport_factors_and_target_are_sourced_and_sane() -> None:
    cat = load_catalogue()
    t = cat.transport
    assert t.rail.co2_kg_per_t_km.value < t.road.co2_kg_per_t_km.value
    assert t.water.co2_kg_per_t_km.estimate
    assert t.road.co2_kg_per_t_km.source == "li-loo-2024"
    assert cat.target_bulk_utilisation.value == 0.57
    assert cat.target_bulk_utilisation.source
    assert "综合利用量" in cat.utilisation_rate_definition.formula_zh
    assert 1.0 < t.circuity_factor.value < 2.0
