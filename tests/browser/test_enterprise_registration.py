"""A newcomer signs up, registers the enterprise through the form (a mistyped USCC is refused next to the
field, in Chinese), and an admin approves it from the queue."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page
from sqlmodel import Session, select

from exchange.accounts.models import Role, User
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from tests.browser.conftest import browser_login
from tests.factories import PASSWORD, valid_uscc


def test_sign_up_register_the_enterprise_and_an_admin_approves_it(
    page: Page, live_server: str, session: Session, make_user: Any, make_park: Any
) -> None:
    park = make_park("峰峰工业园区")
    admin = make_user(Role.ADMIN, email="admin@example.com", locale="zh-CN")
    good = valid_uscc(424242)
    typo = good[:17] + ("1" if good[17] != "1" else "2")

    page.goto(f"{live_server}/signup")
    page.fill("#f-email", "wang@example.com")
    page.fill("#f-display_name", "王伟")
    page.fill("#f-password", "longpassword42")
    page.click("form[action='/signup'] button[type=submit]")
    page.wait_for_url(f"{live_server}/enterprises/new")

    page.fill("#f-name", "峰峰新材料有限公司")
    page.fill("#f-uscc", typo)
    page.select_option("#f-industry", "bricks")
    page.select_option("#f-park_id", str(park.id))
    page.fill("#f-address", "河北省邯郸市峰峰矿区开发路8号")
    page.fill("#f-contact_phone", "13900002222")
    page.click("#enterprise-form button[type=submit]")
    error = page.locator(".field-error[data-field='uscc']")
    assert "校验码" in error.inner_text()
    assert page.input_value("#f-name") == "峰峰新材料有限公司"  # nothing typed is lost

    page.fill("#f-uscc", good)
    page.click("#enterprise-form button[type=submit]")
    page.wait_for_selector("#registered-note")
    assert page.locator("#enterprise-status").inner_text() == "待审核"
    user = session.exec(select(User).where(User.email == "wang@example.com")).one()
    ent = session.get(Enterprise, user.enterprise_id)
    assert ent is not None and ent.status is EnterpriseStatus.PENDING and ent.park_id == park.id

    page.click("header form[action='/logout'] button")
    browser_login(page, live_server, admin.email, PASSWORD)
    page.goto(f"{live_server}/admin/approvals")
    card = page.locator(f"#pending-{ent.id}")
    assert "峰峰新材料有限公司" in card.inner_text()
    card.locator("button.approve").click()
    page.wait_for_selector("#review-done")
    assert page.locator(f"#pending-{ent.id}").count() == 0
    session.refresh(ent)
    assert ent.status is EnterpriseStatus.APPROVED and ent.approved_by_id == admin.id
    page.goto(f"{live_server}/enterprises/{ent.id}")
    assert page.locator("#enterprise-status").inner_text() == "已通过"
