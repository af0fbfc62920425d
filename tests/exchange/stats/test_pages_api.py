"""Pages, exports and jurisdiction: what each viewer may see."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from exchange.accounts.models import Role
from tests.exchange.stats.conftest import World
from tests.factories import login


def test_a_regulator_of_one_province_cannot_read_another(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    shandong = token_for(make_user(Role.REGULATOR, region_code="370000"))
    for path in ("/api/v1/stats/dashboard", "/api/v1/stats/tables/materials"):
        for region in ("130000", "130400"):
            r = client.get(path, params={"region": region}, headers=shandong)
            assert r.status_code == 403, r.text
    r = client.get("/api/v1/stats/dashboard", params={"park_id": world.park.id}, headers=shandong)
    assert r.status_code == 403
    own = client.get(
        "/api/v1/stats/dashboard", params={"period_from": "2025-01", "period_to": "2025-12"}, headers=shandong
    )
    assert own.json()["kpis"]["generated_t"] == "1000.000"  # Jinan only; nothing of Hebei's 360 t
    names = {r["name"] for r in own.json()["tables"]["laggards_enterprise"]}
    assert not names & {"Handan power", "Handan steel", "Tangshan power"}


def test_a_city_regulator_may_not_widen_to_the_province(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    handan = token_for(make_user(Role.REGULATOR, region_code="130400"))
    assert client.get("/api/v1/stats/dashboard", params={"region": "130000"}, headers=handan).status_code == 403
    d = client.get("/api/v1/stats/dashboard", params={"period_from": "2025-01", "period_to": "2025-12"}, headers=handan)
    assert d.json()["kpis"]["generated_t"] == "300.000"


def test_a_province_regulator_may_narrow_to_a_city(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    hebei = token_for(make_user(Role.REGULATOR, region_code="130000"))
    r = client.get(
        "/api/v1/stats/dashboard",
        params={"region": "130200", "period_from": "2025-01", "period_to": "2025-12"},
        headers=hebei,
    )
    assert r.json()["kpis"]["generated_t"] == "60.000"


def test_enterprises_and_strangers_get_no_dashboard(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    member = token_for(make_user(Role.ENTERPRISE, enterprise=world.e1))
    assert client.get("/api/v1/stats/dashboard", headers=member).status_code == 403
    assert client.get("/api/v1/stats/dashboard").status_code == 401


def test_exports_carry_the_same_figures(client: TestClient, world: World, make_user: Any, token_for: Any) -> None:
    hebei = token_for(make_user(Role.REGULATOR, region_code="130000"))
    params = {"period_from": "2025-01", "period_to": "2025-12"}
    csv_text = client.get("/api/v1/stats/tables/materials", params={**params, "format": "csv"}, headers=hebei).text
    assert csv_text.startswith("\ufeff"), "a BOM, so that Excel reads the Chinese names as UTF-8"
    lines = csv_text.removeprefix("\ufeff").strip().splitlines()
    assert lines[0].startswith("material_code,")
    assert any(line.startswith("steel_slag,") and ",200.000,150.000," in line for line in lines)
    x = client.get("/api/v1/stats/tables/trend_month", params={**params, "format": "xlsx"}, headers=hebei)
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    march = next(r for r in rows[1:] if r[0] == "2025-03")
    assert march[header.index("utilisation_rate")] is None  # "no data" stays empty, not 0
    assert client.get("/api/v1/stats/tables/nope", headers=hebei).status_code == 404


def test_the_dashboard_page_shows_kpis_tables_and_the_formula(client: TestClient, world: World, make_user: Any) -> None:
    login(client, make_user(Role.REGULATOR, region_code="130000", locale="zh-CN"))
    page = client.get("/stats?period_from=2025-01&period_to=2025-12")
    assert page.status_code == 200
    html = page.text
    assert 'id="chart-map"' in html and 'id="stats-data"' in html and "<script>" not in html
    assert "58.3%" in html  # bulk rate 210 / 360
    for kpi in ("generated", "utilised", "rate", "bulk-rate", "delivered", "projected", "co2", "enterprises"):
        assert f'id="kpi-{kpi}"' in html  # every card addressable (the browser tests read them by id)
    assert '<strong id="kpi-generated">360 t</strong>' in html
    assert "综合利用率 = 综合利用量 ÷ (产生量 + 综合利用往年贮存量) × 100%" in html
    assert "无数据" in html  # March has no generation


def test_boundaries_are_served_for_the_map(client: TestClient) -> None:
    geo = client.get("/api/v1/stats/boundaries", params={"level": "city", "province_code": "130000"}).json()
    codes = {f["properties"]["adcode"] for f in geo["features"]}
    assert "130400" in {str(c) for c in codes}
