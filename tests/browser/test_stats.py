"""The regulator's dashboard draws the choropleth map (from our own GeoJSON) and the trend with the target line."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from exchange.accounts.models import Role
from tests.browser.conftest import browser_login
from tests.exchange.stats.conftest import world  # noqa: F401  (the fixed dataset fixture)
from tests.factories import PASSWORD


def test_the_dashboard_draws_the_map_and_the_target_line(
    page: Page,
    live_server: str,
    make_user: Any,
    world: Any,  # noqa: F811
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    user = make_user(Role.REGULATOR, region_code="130000", locale="zh-CN", email="reg@example.com")
    browser_login(page, live_server, user.email, PASSWORD)
    page.goto(f"{live_server}/stats?period_from=2025-01&period_to=2025-12")
    page.wait_for_selector("#chart-map[data-rendered='true']")
    page.wait_for_selector("#chart-trend[data-rendered='true']")
    assert page.locator("#chart-map canvas").count() == 1
    map_option = page.evaluate(
        "() => { const o = echarts.getInstanceByDom(document.getElementById('chart-map')).getOption();"
        " return {type: o.series[0].type, data: o.series[0].data.map(d => [d.name, d.value])}; }"
    )
    assert map_option["type"] == "map"
    coloured = {code: v for code, v in map_option["data"] if v is not None}
    assert coloured == {"130200": 0, "130400": 67.7}  # Tangshan 0/50, Handan 210/310; other cities uncoloured
    assert len(map_option["data"]) > 2  # every city of Hebei is drawn from the shipped boundaries
    target = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('chart-trend')).getOption()"
        ".series[0].markLine.data[0].yAxis"
    )
    assert target == 57
    assert page.locator("#chart-trend").get_attribute("data-target-line") == "57"
    assert page.locator("#kpi-bulk-rate").inner_text() == "58.3%"
    assert not errors, errors
