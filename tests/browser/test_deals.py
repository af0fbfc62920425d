"""The enterprises' side of a published matching round, in real headless Chromium: the supplier sees the unread
count in the nav, accepts one proposal and declines another with a reason; the consumer (a second browser
context) accepts too and the agreement shows on both sides' "My agreements"; a delivery is recorded (an
over-delivery is refused next to the field first) and confirmed by the other side; the notifications page lists
what happened and the count drops once read; a member of an unrelated enterprise gets a 404 page with nothing
of the agreement on it. No page logs a console error (a CSP violation would)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from sqlmodel import Session, select

from exchange.rounds.models import Agreement, Delivery, Proposal, ProposalState
from tests.browser.conftest import browser_login
from tests.exchange.rounds.conftest import (  # noqa: F401  (fixtures)
    PERIOD,
    Member,
    RoundWorld,
    drain,
    make_listing,
    new_round,
    no_background_thread,
    world,
)
from tests.factories import PASSWORD

EXPECTED_STATUS = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})\b")


@dataclass
class Person:
    """One member in a browser context of their own, with every console error and page error it saw."""

    page: Page
    errors: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # the 4xx statuses Chromium logged for a navigation

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        m = EXPECTED_STATUS.match(message.text)
        if m:
            self.refused.append(int(m.group(1)))
        else:
            self.errors.append(f"{message.location.get('url')}: {message.text}")


@pytest.fixture
def person_for(browser: Browser, live_server: str, session: Session) -> Iterator[Callable[[Member], Person]]:
    """Log a member in, in a browser context of their own (their own cookies), reading Chinese."""
    contexts = []

    def make(member: Member) -> Person:
        member.user.locale = "zh-CN"
        session.add(member.user)
        session.commit()
        context = browser.new_context(locale="zh-CN")
        contexts.append(context)
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        person = Person(pg)
        pg.on("console", person.on_console)
        pg.on("pageerror", lambda e: person.errors.append(f"pageerror: {e}"))
        browser_login(pg, live_server, member.user.email, PASSWORD)
        expect(pg.locator("a[href='/my/proposals']")).to_be_visible()  # logged in
        return person

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def published(
    client: TestClient,
    world: RoundWorld,  # noqa: F811
    make_listing: Any,  # noqa: F811
    drain: Any,  # noqa: F811
) -> tuple[int, int]:
    """A round over the park: the producer's fly ash to the consumer, its gypsum to consumer2; run, published."""
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    make_listing(world.producer, "supply", "fgd_gypsum", 50)
    make_listing(world.consumer2, "demand", "fgd_gypsum", 40)
    rnd = new_round(client, world.manager_headers)
    assert drain()
    r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=world.manager_headers)
    assert r.status_code == 200 and r.json()["proposals_created"] == 2, r.text
    by_material = {
        p["material_code"]: p["id"] for p in client.get("/api/v1/proposals", headers=world.producer.headers).json()
    }
    return int(by_material["fly_ash"]), int(by_material["fgd_gypsum"])


def _unread(page: Page) -> str:
    return page.locator("#nav-notifications #unread-count").inner_text()


def test_enterprises_answer_proposals_and_deliver_an_agreement(
    live_server: str,
    session: Session,
    world: RoundWorld,  # noqa: F811
    published: tuple[int, int],
    person_for: Callable[[Member], Person],
) -> None:
    ash, gypsum = published

    # 1. the supplier: two new proposals in the nav, accepts the fly ash, declines the gypsum with a reason
    supplier = person_for(world.producer)
    sp = supplier.page
    expect(sp.locator("#unread-count")).to_have_text("2")
    sp.click("a[href='/my/proposals']")
    sp.wait_for_url("**/my/proposals")
    expect(sp.locator("h1")).to_have_text("我的撮合方案")
    ash_row, gypsum_row = sp.locator(f"#proposal-{ash}"), sp.locator(f"#proposal-{gypsum}")
    expect(ash_row).to_contain_text("粉煤灰")
    expect(ash_row).to_contain_text("邯郸水泥")
    expect(ash_row).to_contain_text("您供应")
    expect(ash_row.locator("td.num").first).to_have_text("80")
    expect(gypsum_row).to_contain_text("武安建材")
    expect(gypsum_row.locator("td.num").first).to_have_text("40")

    sp.click(f"#accept-{ash}")
    sp.wait_for_url("**/my/proposals?done=accepted*")
    expect(sp.locator("#notice")).to_have_text("您已接受该方案，正在等待对方企业答复。")
    expect(ash_row).to_contain_text("您已答复，正在等待对方企业答复。")
    expect(sp.locator(f"#accept-{ash}")).to_have_count(0)

    expect(sp.locator(f"#decline-form-{gypsum}")).to_be_hidden()  # folded in its <details> until asked for
    gypsum_row.locator("details.decline summary").click()
    reason = sp.locator(f"#f-reason-{gypsum}")
    expect(reason).to_be_visible()
    expect(sp.locator(f"label[for='f-reason-{gypsum}']")).to_have_text("理由（可选）")
    assert reason.get_attribute("required") is None  # the page says optional: the browser must not insist
    expect(reason).to_have_attribute("maxlength", "500")
    reason.fill("  石膏含水率偏高，暂不需要 ")
    sp.click(f"#decline-{gypsum}")
    sp.wait_for_url("**/my/proposals?done=declined*")
    expect(sp.locator("#notice")).to_have_text("您已拒绝该方案。")
    expect(sp.locator(f"#proposal-{ash}-state")).to_have_text("待答复")  # open until the consumer answers
    expect(sp.locator(f"#proposal-{gypsum}-state")).to_have_text("已拒绝")
    expect(sp.locator(f"#proposal-{gypsum}")).to_contain_text("“石膏含水率偏高，暂不需要”")
    declined = session.get(Proposal, gypsum)
    assert declined is not None and declined.state is ProposalState.DECLINED
    assert declined.supplier_reason == "石膏含水率偏高，暂不需要"

    # 2. the consumer, in a second context: accepts the same proposal, and the agreement is made
    consumer = person_for(world.consumer)
    cp = consumer.page
    expect(cp.locator("#unread-count")).to_have_text("2")  # the new proposal; the supplier accepted it
    cp.click("a[href='/my/proposals']")
    expect(cp.locator(f"#proposal-{ash}")).to_contain_text("您接收")
    expect(cp.locator(f"#proposal-{ash}")).to_contain_text("邯郸热电")
    expect(cp.locator(f"#proposal-{gypsum}")).to_have_count(0)  # not the consumer's proposal
    cp.click(f"#accept-{ash}")
    cp.wait_for_url(re.compile(r"/agreements/\d+\?done=agreed$"))
    agreement_id = int(re.search(r"/agreements/(\d+)", cp.url).group(1))  # type: ignore[union-attr]
    agreement = session.exec(select(Agreement).where(Agreement.proposal_id == ash)).one()
    assert agreement.id == agreement_id
    expect(cp.locator("#notice")).to_have_text("双方企业均已接受：协议已达成，相应吨数已锁定。")
    expect(cp.locator("#agreement-state")).to_have_text("执行中")
    expect(cp.locator("#agreement-remaining")).to_have_text("80")

    for who, name in ((consumer, "邯郸热电"), (supplier, "邯郸水泥")):
        who.page.click("a[href='/my/agreements']")
        who.page.wait_for_url("**/my/agreements")
        row = who.page.locator(f"#agreement-{agreement_id}")
        expect(row).to_contain_text(name)
        expect(row.locator("td.num")).to_have_text(["80", "0", "80"])
        expect(who.page.locator("#agreements tbody tr")).to_have_count(1)

    # 3. the supplier records a delivery: more than agreed is refused next to the field, then 30 t go in
    sp.click(f"#agreement-{agreement_id} a[href='/agreements/{agreement_id}']")
    sp.wait_for_url(f"**/agreements/{agreement_id}")
    expect(sp.locator("#no-deliveries")).to_be_visible()
    expect(sp.locator("#f-quantity_t")).to_have_value("80")  # the form offers what remains
    sp.fill("#f-delivered_on", f"{PERIOD}-10")
    sp.fill("#f-quantity_t", "100")
    sp.fill("#f-waybill_no", "WB-2025-0610")
    sp.fill("#f-vehicle_no", "冀D12345")
    sp.click("#record-delivery")
    error = sp.locator(".field-error[data-field='quantity_t']")
    expect(error).to_have_text("本协议仅剩 80 吨")
    expect(sp.locator("#f-quantity_t ~ .field-error")).to_have_count(1)  # beside its own field
    expect(sp.locator("#f-waybill_no")).to_have_value("WB-2025-0610")  # what was typed stays
    expect(sp.locator("#f-delivered_on")).to_have_value(f"{PERIOD}-10")
    expect(sp.locator("#no-deliveries")).to_be_visible()
    assert session.exec(select(Delivery)).first() is None

    sp.fill("#f-quantity_t", "30")
    sp.click("#record-delivery")
    sp.wait_for_url(f"**/agreements/{agreement_id}?done=delivery*")
    expect(sp.locator("#notice")).to_have_text("交付已登记，已请对方企业确认。")
    [delivery] = session.exec(select(Delivery)).all()
    assert (delivery.quantity_kg, delivery.waybill_no, delivery.vehicle_no) == (30_000, "WB-2025-0610", "冀D12345")
    expect(sp.locator("#agreement-delivered")).to_have_text("30")
    expect(sp.locator("#agreement-remaining")).to_have_text("50")
    expect(sp.locator(f"#delivery-{delivery.id}-state")).to_have_text("待确认")
    expect(sp.locator(f"#confirm-{delivery.id}")).to_have_count(0)  # the recorder does not confirm its own

    # the consumer follows the notification to the agreement and confirms the receipt
    cp.reload()
    expect(cp.locator("#unread-count")).to_have_text("4")
    cp.click("#nav-notifications")
    cp.wait_for_url("**/notifications")
    delivered = cp.locator("#notifications tr.unread", has_text=f"协议 {agreement_id} 登记了 30")
    expect(delivered).to_have_count(1)
    delivered.locator(f"a[href='/agreements/{agreement_id}']").click()
    cp.wait_for_url(f"**/agreements/{agreement_id}")
    expect(cp.locator("#agreement-remaining")).to_have_text("50")
    expect(cp.locator(f"#delivery-{delivery.id}")).to_contain_text("WB-2025-0610")
    cp.click(f"#confirm-{delivery.id}")
    cp.wait_for_url(f"**/agreements/{agreement_id}?done=confirmed*")
    expect(cp.locator("#notice")).to_have_text("交付已确认。")
    expect(cp.locator(f"#delivery-{delivery.id}-state")).to_have_text("已确认")
    expect(cp.locator(f"#confirm-{delivery.id}")).to_have_count(0)
    expect(cp.locator("#agreement-remaining")).to_have_text("50")
    sp.reload()
    expect(sp.locator(f"#delivery-{delivery.id}-state")).to_have_text("已确认")
    cp.click("a[href='/my/agreements']")
    expect(cp.locator(f"#agreement-{agreement_id} td.num")).to_have_text(["80", "30", "50"])

    # 4. the notifications page lists what happened; reading them empties the count
    cp.click("#nav-notifications")
    cp.wait_for_url("**/notifications")
    messages = cp.locator("#notifications tbody tr td:nth-child(2)")
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_contain_text(f"协议 {agreement_id} 登记了 30")
    expect(messages.nth(1)).to_contain_text(f"协议 {agreement_id}：双方企业均已接受 80")
    expect(messages.nth(2)).to_contain_text(f"对方企业已接受方案 {ash}，等待您的答复")
    expect(messages.nth(3)).to_contain_text("新的撮合方案：粉煤灰 80")
    expect(cp.locator("#unread-count")).to_have_text("4")  # looking is not reading
    cp.click("#mark-all-read")
    cp.wait_for_url("**/notifications?done=read")
    expect(cp.locator("#notice")).to_have_text("所有通知均已标为已读。")
    expect(cp.locator("#unread-count")).to_have_count(0)
    expect(cp.locator("#nav-notifications")).to_have_text("通知")
    expect(cp.locator("#notifications tr.unread")).to_have_count(0)
    expect(cp.locator("#notifications tr.read")).to_have_count(4)
    expect(cp.locator("#mark-all-read")).to_have_count(0)

    sp.click("#nav-notifications")  # the supplier's own: two new proposals, the agreement, the confirmation
    expect(sp.locator("#unread-count")).to_have_text("4")
    expect(sp.locator("#notifications tr.unread")).to_have_count(4)
    expect(sp.locator("#notifications")).to_contain_text(f"协议 {agreement_id}：双方企业均已接受 80 吨")
    expect(sp.locator("#notifications tr.unread").first).to_contain_text(
        f"对方企业已确认协议 {agreement_id} 下 30 吨的交付"
    )
    sp.click("#mark-all-read")
    expect(sp.locator("#unread-count")).to_have_count(0)

    # 5. a member of an unrelated enterprise: a 404 page, nothing of the agreement on it
    outsider = person_for(world.producer2)
    op = outsider.page
    response = op.goto(f"{live_server}/agreements/{agreement_id}")
    assert response is not None and response.status == 404
    expect(op.locator(".error-page h1")).to_contain_text("404")
    html = op.content()
    for secret in ("邯郸热电", "邯郸水泥", "WB-2025-0610", "冀D12345", "粉煤灰", "石膏含水率"):
        assert secret not in html, secret
    assert "80" not in op.locator("main").inner_text()
    assert op.locator("#delivery-form, #confirm-form, #cancel-form, #agreement").count() == 0
    op.click("a[href='/my/agreements']")
    expect(op.locator("#no-agreements")).to_be_visible()
    op.click("a[href='/my/proposals']")
    expect(op.locator("#no-open-proposals")).to_be_visible()
    expect(op.locator(f"#proposal-{ash}")).to_have_count(0)

    # no console errors; the only refusals Chromium logged are the over-delivery (409) and the outsider's 404
    for who in (supplier, consumer, outsider):
        assert not who.errors, who.errors
    assert (supplier.refused, consumer.refused, outsider.refused) == ([409], [], [404])
