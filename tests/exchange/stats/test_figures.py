"""The dashboard's numbers against hand-computed expectations on the fixed dataset (see conftest)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from exchange.accounts.models import Role
from exchange.reference.catalogue import load_catalogue
from tests.exchange.stats.conftest import World

HEBEI_2025 = {"period_from": "2025-01", "period_to": "2025-12"}


def dashboard(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = client.get("/api/v1/stats/dashboard", params={**HEBEI_2025, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def hebei(make_user: Any, token_for: Any) -> dict[str, str]:
    return token_for(make_user(Role.REGULATOR, region_code="130000"))  # type: ignore[no-any-return]


def test_province_kpis_follow_the_nbs_definition(client: TestClient, world: World, hebei: dict[str, str]) -> None:
    d = dashboard(client, hebei)
    k = d["kpis"]
    assert k["generated_t"] == "360.000"  # 100 + 0 + 200 + 50 + 10
    assert k["utilised_t"] == "220.000"  # 60 + 150 + 0 + 10
    assert k["utilisation_rate"] == pytest.approx(220 / 370)  # denominator adds the 10 t of prior-year stock
    assert k["bulk_generated_t"] == "350.000"  # waste plastics do not count toward the bulk target
    assert k["bulk_utilisation_rate"] == pytest.approx(210 / 360)
    assert k["target_rate"] == 0.57
    assert k["enterprises"] == 3
    cat = load_catalogue()
    expected_co2 = (
        60 * cat.get("fly_ash").co2_avoided_t_per_t.value
        + 150 * cat.get("steel_slag").co2_avoided_t_per_t.value
        + 10 * cat.get("waste_plastics").co2_avoided_t_per_t.value
    )
    assert float(k["co2_avoided_t"]) == pytest.approx(expected_co2, abs=0.001)


def test_rates_by_material_and_category(client: TestClient, world: World, hebei: dict[str, str]) -> None:
    t = dashboard(client, hebei)["tables"]
    mats = {r["material_code"]: r for r in t["materials"]}
    assert mats["fly_ash"]["utilisation_rate"] == pytest.approx(round(60 / 160, 4))
    assert mats["steel_slag"]["utilisation_rate"] == 0.75
    assert mats["waste_plastics"]["utilisation_rate"] == 1.0
    assert mats["fly_ash"]["not_utilised_t"] == "100.000"
    cats = {r["category"]: r for r in t["categories"]}
    assert cats["smelting_slag"]["bulk"] is True and cats["renewable_resource"]["bulk"] is False


def test_monthly_trend_shows_no_data_for_a_month_without_generation(
    client: TestClient, world: World, hebei: dict[str, str]
) -> None:
    trend = {r["period"]: r for r in dashboard(client, hebei)["tables"]["trend_month"]}
    assert trend["2025-01"]["utilisation_rate"] == pytest.approx(round(210 / 310, 4))
    assert trend["2025-02"]["utilisation_rate"] == 0.0  # generated and nothing utilised: a real 0%
    assert trend["2025-03"]["utilisation_rate"] is None  # nothing generated: no data, not 0% nor an error
    assert all(r["target_rate"] == 0.57 for r in trend.values())


def test_yearly_trend_spans_every_year_on_file(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    shandong = token_for(make_user(Role.REGULATOR, region_code="370000"))
    years = {r["period"]: r for r in dashboard(client, shandong)["tables"]["trend_year"]}
    assert years["2024"]["utilisation_rate"] == 0.5 and years["2025"]["utilisation_rate"] == 1.0


def test_laggards_are_ordered_by_rate_with_the_shortfall_to_the_target(
    client: TestClient, world: World, hebei: dict[str, str]
) -> None:
    t = dashboard(client, hebei)["tables"]
    assert [r["key"] for r in t["laggards_city"]] == ["130200"]  # Handan is at 210/310, above the target
    ents = t["laggards_enterprise"]
    assert [r["name"] for r in ents] == ["Tangshan power", "Handan power"]
    assert ents[0]["shortfall_t"] == "28.500"  # 0.57 × 50 t
    assert ents[1]["shortfall_t"] == "2.700"  # 0.57 × 110 t − 60 t


def test_the_map_colours_the_cities_of_the_province(client: TestClient, world: World, hebei: dict[str, str]) -> None:
    d = dashboard(client, hebei)
    assert d["scope"]["map_level"] == "city" and d["scope"]["map_province"] == "130000"
    regions = {r["region_code"]: r for r in d["tables"]["regions"]}
    assert set(regions) == {"130200", "130400"}
    assert regions["130400"]["utilisation_rate"] == pytest.approx(round(210 / 310, 4))


def test_stranded_materials_list_what_was_not_utilised(client: TestClient, world: World, hebei: dict[str, str]) -> None:
    stranded = dashboard(client, hebei)["tables"]["stranded"]
    assert [(r["material_code"], r["not_utilised_t"]) for r in stranded] == [
        ("fly_ash", "100.000"),
        ("steel_slag", "50.000"),
    ]


def test_an_empty_period_has_no_rate(client: TestClient, world: World, hebei: dict[str, str]) -> None:
    k = dashboard(client, hebei, period_from="2023-01", period_to="2023-12")["kpis"]
    assert k["generated_t"] == "0.000" and k["utilisation_rate"] is None and k["bulk_utilisation_rate"] is None


def test_the_park_manager_sees_the_park_only(client: TestClient, world: World, make_user: Any, token_for: Any) -> None:
    manager = token_for(make_user(Role.PARK_MANAGER, park=world.park))
    d = dashboard(client, manager)
    assert d["kpis"]["generated_t"] == "100.000" and d["kpis"]["enterprises"] == 1
    assert d["scope"]["level"] == "park"
