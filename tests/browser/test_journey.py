"""The whole journey on the demo data, in real headless Chromium: the demo park's manager previews and starts a
round (run by the app's own in-process worker while the page polls), reviews the report and publishes it; a
member of each of the two enterprises of one proposal accepts it on "My proposals"; the producer records a
delivery on the agreement page and the consumer confirms it; and the statistics page moves: the tonnes
delivered through the exchange it shows are higher than before the round. No page logs a console error."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session, col, select

from exchange.accounts.models import Role, User
from exchange.demo.generate import DEMO_PASSWORDS
from exchange.demo.load import load_demo
from exchange.demo.logins import DEMO_DOMAIN
from exchange.enterprises.models import Enterprise
from exchange.rounds.manager_pages import fmt_t
from exchange.rounds.models import Agreement, Delivery, DeliveryState, Proposal, RoundCreate, ScopeKind
from exchange.rounds.service import preview
from tests.browser.conftest import browser_login
from tests.browser.test_deals import Person
from tests.factories import PASSWORD

MANAGER = "park.fengfeng@demo.example"  # the demo's manager of 峰峰工业园区（演示）
# The demo park has one steel-slag supplier and two cement plants wanting it (one of them has the demo's
# "consumer" login): a round over steel slag gives proposals whatever the month, as the demo lots are monthly.
PERIOD, MATERIAL = "2025-06", "steel_slag"
STATS = "/stats?period_from=2025-01&period_to=2025-12"
DELIVERED = "1000.5"  # tonnes of the one delivery


@pytest.fixture
def person(browser: Browser, live_server: str) -> Iterator[Callable[[str, str], Person]]:
    """Log someone in, in a browser context of their own, with their console errors captured."""
    contexts = []

    def make(email: str, password: str) -> Person:
        context = browser.new_context(locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        who = Person(page)
        page.on("console", who.on_console)
        page.on("pageerror", lambda e: who.errors.append(f"pageerror: {e}"))
        browser_login(page, live_server, email, password)
        expect(page.locator("form[action='/logout']")).to_have_count(1)  # logged in
        return who

    yield make
    for context in contexts:
        context.close()


def _delivered_through_the_exchange(page: Page, base: str) -> tuple[str, Decimal]:
    """The KPI card as shown ("1,000 t") and the exact figure of the KPI table (folded), on the statistics page."""
    page.goto(base + STATS)
    card = page.locator("#kpis .kpi", has=page.locator("span", has_text=re.compile("^经平台交付量$")))
    expect(card).to_have_count(1)
    cell = page.locator("#kpi-table tr", has=page.locator("th", has_text=re.compile(r"^经交易平台交付量（吨）$")))
    return card.locator("strong").inner_text(), Decimal((cell.locator("td").text_content() or "").strip())


def test_the_demo_park_runs_a_round_its_enterprises_deliver_and_the_statistics_move(
    session: Session,
    live_server: str,
    person: Callable[[str, str], Person],
    make_user: Any,
) -> None:
    report = load_demo(session, if_empty=True)
    assert report.skipped is None and report.enterprises > 0
    manager_user = session.exec(select(User).where(User.email == MANAGER)).one()

    # 0. the park manager reads the exchange's contribution before the round: nothing delivered yet
    manager = person(MANAGER, DEMO_PASSWORDS["park_manager"])
    mp = manager.page
    before_card, before = _delivered_through_the_exchange(mp, live_server)
    assert (before_card, before) == ("0 t", Decimal(0))

    # 1. Rounds → New round: the park scope, the month, steel slag; the preview shows what the service counts
    mp.click("a[href='/rounds']")
    mp.wait_for_url("**/rounds")
    mp.click("#new-round")
    mp.wait_for_selector("#round-form")
    mp.check("input[name='scope'][value='park']")
    expect(mp.locator("[data-scope-part='regions']")).to_be_hidden()
    expect(mp.locator("#f-park_id")).to_have_value(str(manager_user.park_id))
    mp.fill("#f-period", PERIOD)
    mp.select_option("#f-materials", [MATERIAL])
    mp.click("#round-preview")
    expected = preview(session, manager_user, RoundCreate(scope=ScopeKind.PARK, period=PERIOD, materials=[MATERIAL]))
    [m] = expected.materials
    assert m.supply_lots >= 1 and m.demand_lots >= 1
    expect(mp.locator("#preview-table tbody tr")).to_have_count(1)
    expect(mp.locator(f"#preview-table tr[data-material='{MATERIAL}'] td")).to_have_text(
        ["钢渣", str(m.supply_lots), fmt_t(m.supply_t), str(m.demand_lots), fmt_t(m.demand_t)]
    )

    # 2. start: the in-process worker runs it while the page polls, then the report; publish
    mp.click("#round-start")
    mp.wait_for_url(re.compile(r"/rounds/\d+"))
    round_id = int(re.search(r"/rounds/(\d+)", mp.url).group(1))  # type: ignore[union-attr]
    mp.wait_for_selector("#round-progress[data-done='true'][data-stage='done']", timeout=30_000)
    rows = mp.locator("#report-table tbody tr")
    expect(rows.first).to_be_visible()
    n_pairs = rows.count()
    mp.click("#round-publish")
    mp.wait_for_selector("#round-head [data-state='published']")
    expect(mp.locator("#round-done")).to_be_visible()
    proposals = session.exec(select(Proposal).where(Proposal.round_id == round_id).order_by(col(Proposal.id))).all()
    assert len(proposals) == n_pairs >= 1
    for p in proposals:  # each published proposal is a pair of the report, with its tonnes
        pair = mp.locator(f"#report-table tr[data-supply='{p.supply_listing_id}'][data-demand='{p.demand_listing_id}']")
        expect(pair.locator("td.num").first).to_have_text(fmt_t(Decimal(p.quantity_kg) / 1000))
        expect(pair).to_contain_text("钢渣")

    # 3. one proposal and a member of each of its two enterprises: the demo's own login where the demo has one
    #    (the cement plant's "consumer"), else a member account made for the test (the steelworks has none)
    def demo_login(enterprise_id: int) -> User | None:
        return session.exec(
            select(User).where(User.enterprise_id == enterprise_id, col(User.email).endswith(DEMO_DOMAIN))
        ).first()

    proposal = next(
        p for p in proposals if demo_login(p.consumer_enterprise_id) or demo_login(p.supplier_enterprise_id)
    )

    def member_of(enterprise_id: int) -> Person:
        demo = demo_login(enterprise_id)
        if demo is not None:
            return person(demo.email, DEMO_PASSWORDS["enterprise"])
        user = make_user(Role.ENTERPRISE, enterprise=session.get(Enterprise, enterprise_id), locale="zh-CN")
        return person(user.email, PASSWORD)

    producer, consumer = member_of(proposal.supplier_enterprise_id), member_of(proposal.consumer_enterprise_id)
    tonnes = fmt_t(Decimal(proposal.quantity_kg) / 1000)
    for who, side in ((producer, "您供应"), (consumer, "您接收")):
        who.page.click("a[href='/my/proposals']")
        who.page.wait_for_url("**/my/proposals")
        row = who.page.locator(f"#proposal-{proposal.id}")
        expect(row).to_contain_text(side)
        expect(row).to_contain_text("钢渣")
        expect(row.locator("td.num").first).to_have_text(tonnes)
    producer.page.click(f"#accept-{proposal.id}")
    producer.page.wait_for_url("**/my/proposals?done=accepted*")
    consumer.page.click(f"#accept-{proposal.id}")
    consumer.page.wait_for_url(re.compile(r"/agreements/\d+\?done=agreed$"))
    agreement = session.exec(select(Agreement).where(Agreement.proposal_id == proposal.id)).one()
    assert consumer.page.url.endswith(f"/agreements/{agreement.id}?done=agreed")
    expect(consumer.page.locator("#agreement-state")).to_have_text("执行中")

    # 4. the producer records a delivery on the agreement page; the consumer confirms it
    pp = producer.page
    pp.goto(f"{live_server}/agreements/{agreement.id}")
    expect(pp.locator("#agreement-remaining")).to_have_text(tonnes)
    pp.fill("#f-delivered_on", f"{PERIOD}-10")
    pp.fill("#f-quantity_t", DELIVERED)
    pp.fill("#f-waybill_no", "WB-DEMO-0001")
    pp.click("#record-delivery")
    pp.wait_for_url(f"**/agreements/{agreement.id}?done=delivery*")
    [delivery] = session.exec(select(Delivery).where(Delivery.agreement_id == agreement.id)).all()
    expect(pp.locator("#agreement-delivered")).to_have_text(fmt_t(Decimal(DELIVERED)))
    cp = consumer.page
    cp.goto(f"{live_server}/agreements/{agreement.id}")
    cp.click(f"#confirm-{delivery.id}")
    cp.wait_for_url(f"**/agreements/{agreement.id}?done=confirmed*")
    expect(cp.locator(f"#delivery-{delivery.id}-state")).to_have_text("已确认")
    session.refresh(delivery)
    assert delivery.state is DeliveryState.CONFIRMED
    pp.click("#nav-notifications")  # the producer hears of the confirmation, in tonnes as the pages write them
    expect(pp.locator("#notifications tr.unread").first).to_contain_text(
        f"对方企业已确认协议 {agreement.id} 下 {fmt_t(Decimal(DELIVERED))} 吨的交付"  # 1,000.5
    )

    # 5. the statistics page moves: the delivered tonnes now count
    after_card, after = _delivered_through_the_exchange(mp, live_server)
    assert after == before + Decimal(DELIVERED)
    assert after_card == f"{after:,.0f} t" and after_card != before_card

    for who in (manager, producer, consumer):
        assert not who.errors, who.errors
        assert not who.refused, who.refused
