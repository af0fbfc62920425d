"""A park manager runs a matching round in the browser: the form previews the lots in scope, the round runs in
the app's own background worker while the progress bar polls, the report shows its table and the flow map,
and the manager publishes it."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from exchange.rounds.service import material_name
from tests.browser.conftest import browser_login
from tests.exchange.rounds.conftest import PERIOD, RoundWorld, make_listing, world  # noqa: F401  (fixtures)
from tests.factories import PASSWORD


def test_a_manager_runs_a_round_and_publishes_it(
    page: Page,
    live_server: str,
    world: RoundWorld,  # noqa: F811
    make_listing: Any,  # noqa: F811
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    supply = make_listing(world.producer, "supply", "fly_ash", 120)
    demand = make_listing(world.consumer, "demand", "fly_ash", 80)
    make_listing(world.producer2, "supply", "fgd_gypsum", 50)

    browser_login(page, live_server, world.manager.email, PASSWORD)
    page.goto(f"{live_server}/rounds")
    page.click("#new-round")
    page.wait_for_selector("#round-form")
    expect(page.locator("[data-scope-part='regions']")).to_be_hidden()  # rounds.js shows the chosen scope's part
    page.fill("#f-period", PERIOD)
    page.select_option("#f-materials", ["fly_ash"])
    page.click("#round-preview")
    row = page.locator("#preview-table tr[data-material='fly_ash'] td")
    expect(row).to_have_text([material_name("fly_ash", "en"), "1", "120", "1", "80"])  # the manager reads English
    expect(page.locator("#preview-table tr[data-material='fgd_gypsum']")).to_have_count(0)

    page.click("#round-start")
    page.wait_for_url(re.compile(r"/rounds/\d+"))
    round_id = int(re.search(r"/rounds/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    # the worker thread runs the round; the page polls the status and reloads itself with the report
    page.wait_for_selector("#round-progress[data-done='true'][data-stage='done']", timeout=60_000)
    page.wait_for_selector("#report-table")
    expect(page.locator(f"#report-table tr[data-supply='{supply.id}'][data-demand='{demand.id}']")).to_have_count(1)
    expect(page.locator("#round-bar")).to_have_attribute("style", re.compile(r"width:\s*100%"))
    page.wait_for_selector("#round-map[data-rendered='true']")
    assert page.locator("#round-map canvas").count() >= 1
    lines = page.evaluate(
        "() => { const o = echarts.getInstanceByDom(document.getElementById('round-map')).getOption();"
        " const s = o.series.find(x => x.type === 'lines'); return s.data.map(d => [d.coords, d.tonnes]); }"
    )
    assert lines == [[[[114.5, 36.6], [114.55, 36.65]], 80]]
    expect(page.locator("#export-csv")).to_have_attribute("href", f"/api/v1/rounds/{round_id}/export?format=csv&run=1")

    page.click("#round-publish")
    page.wait_for_selector("#round-head [data-state='published']")
    expect(page.locator("#round-done")).to_be_visible()
    expect(page.locator("#round-publish")).to_have_count(0)
    assert not errors, errors
