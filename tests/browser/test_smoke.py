from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import browser_login
from tests.factories import PASSWORD


def test_a_person_logs_in_through_the_form_and_sees_their_name(page: Page, live_server: str, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user(email="zhang@example.com", locale="zh-CN")
    browser_login(page, live_server, user.email, PASSWORD)
    assert page.locator("header .account").inner_text().find("Test user") >= 0
    assert page.locator("html").get_attribute("lang") == "zh-CN"


def test_a_wrong_password_shows_the_error_in_chinese(page: Page, live_server: str, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user(email="li@example.com")
    browser_login(page, live_server, user.email, "wrong-password-1")
    assert page.locator(".field-error").inner_text() == "邮箱或密码错误"
