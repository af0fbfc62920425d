"""An enterprise member posts a listing through the form (a bad quantity is refused next to the field first)
and finds it on the search page, filtered by material, with its point on the map."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from exchange.accounts.models import Role
from tests.browser.conftest import browser_login
from tests.factories import PASSWORD


def test_post_a_listing_and_find_it_in_search(
    page: Page, live_server: str, make_user: Any, make_enterprise: Any, make_park: Any
) -> None:
    park = make_park("峰峰工业园区", lat=36.42, lon=114.2)
    enterprise = make_enterprise("峰峰热电有限公司", park=park, lat=36.42, lon=114.2)
    user = make_user(Role.ENTERPRISE, enterprise=enterprise, email="power@example.com", locale="zh-CN")
    browser_login(page, live_server, user.email, PASSWORD)

    page.goto(f"{live_server}/listings/new")
    page.select_option("#f-material_code", "fly_ash")
    page.fill("#f-quantity_t", "-5")
    page.click("#listing-submit")
    expect(page.locator(".field-error[data-field='quantity_t']")).to_be_visible()

    page.fill("#f-quantity_t", "1234.5")
    page.click("#listing-submit")
    page.wait_for_url("**/listings/*?done=posted")
    expect(page.locator("main")).to_contain_text("1,234.5")

    page.goto(f"{live_server}/listings")
    page.select_option("#f-material_code", "fly_ash")
    page.click("#listing-filters button[type=submit]")
    page.wait_for_url("**material_code=fly_ash**")
    rows = page.locator("#listing-results tbody tr[data-listing-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("峰峰热电有限公司")
    # The map is drawn from the vendored ECharts into a canvas (no tiles, nothing from the internet).
    expect(page.locator("#listings-map canvas").first).to_be_attached(timeout=10_000)
