"""The enterprises' pages for a published round: both sides accept on /my/proposals and an agreement is made,
a decline keeps its reason, a 409 reads as a message on the page (not an error page), deliveries are recorded
with their field errors next to the fields and confirmed by the other side, agreements can be cancelled, and
notifications show in the nav until they are marked read. Someone else's proposal or agreement is a 404."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import User
from exchange.listings.models import Listing
from exchange.rounds.models import (
    Agreement,
    AgreementState,
    Delivery,
    DeliveryState,
    Notification,
    Proposal,
    ProposalState,
)
from tests.exchange.rounds.conftest import PERIOD, Member, RoundWorld, new_round
from tests.factories import login


class Browser:
    """A signed-in TestClient of its own (one per person: each keeps its own cookies)."""

    def __init__(self, app: FastAPI, user: User) -> None:
        self.client = TestClient(app)
        self.token = login(self.client, user)

    def get(self, url: str) -> Any:
        return self.client.get(url)

    def post(self, url: str, **data: str) -> Any:
        return self.client.post(url, data={"csrf_token": self.token, **data}, follow_redirects=False)


@pytest.fixture
def browser_for(app: FastAPI, session: Session) -> Iterator[Any]:
    """A signed-in browser for a person, who reads the pages in Chinese (the default locale)."""
    opened: list[Browser] = []

    def make(member: Member | User) -> Browser:
        user = member.user if isinstance(member, Member) else member
        user.locale = "zh-CN"
        session.add(user)
        session.commit()
        b = Browser(app, user)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.client.close()


@pytest.fixture
def publish(client: TestClient, world: RoundWorld, make_listing: Any, drain: Any) -> Any:
    """Post a supply of the producer and a demand of a consumer, run and publish a round: the proposal's id."""

    def run(
        material: str = "fly_ash",
        supply_t: float = 120,
        demand_t: float = 80,
        consumer: Member | None = None,
        **listing: Any,
    ) -> int:
        make_listing(world.producer, "supply", material, supply_t, **listing)
        make_listing(consumer or world.consumer, "demand", material, demand_t)
        rnd = new_round(client, world.manager_headers)
        drain()
        r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=world.manager_headers)
        assert r.status_code == 200 and r.json()["proposals_created"] == 1, r.text
        [p] = client.get("/api/v1/proposals", headers=world.producer.headers).json()
        return int(p["id"])

    return run


def _agreed(browser_for: Any, world: RoundWorld, proposal_id: int) -> tuple[Browser, Browser, int]:
    producer, consumer = browser_for(world.producer), browser_for(world.consumer)
    assert producer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    r = consumer.post(f"/my/proposals/{proposal_id}/accept")
    assert r.status_code == 303
    m = re.match(r"/agreements/(\d+)\?done=agreed", r.headers["location"])
    assert m, r.headers["location"]
    return producer, consumer, int(m.group(1))


def _field_error(html: str, field: str) -> str:
    m = re.search(rf'<p class="field-error"[^>]*data-field="{field}">([^<]*)</p>', html)
    assert m, f"no error next to {field}"
    return m.group(1)


# ---------------------------------------------------------------------------------------------- proposals


def test_both_sides_accept_on_the_page_and_an_agreement_reserves_the_tonnes(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    proposal_id = publish()
    producer, consumer = browser_for(world.producer), browser_for(world.consumer)

    page = producer.get("/my/proposals")
    assert page.status_code == 200
    row = page.text[page.text.index(f'id="proposal-{proposal_id}"') :]
    assert "粉煤灰" in row and "80" in row and "邯郸水泥" in row and "您供应" in row
    assert f'action="/my/proposals/{proposal_id}/accept"' in row and "待答复" in row

    r = producer.post(f"/my/proposals/{proposal_id}/accept")
    assert r.status_code == 303 and r.headers["location"].startswith("/my/proposals?done=accepted")
    page = producer.get(r.headers["location"])
    assert 'id="notice"' in page.text and "等待对方企业答复" in page.text
    assert f'action="/my/proposals/{proposal_id}/accept"' not in page.text  # answered: no second button

    r = consumer.post(f"/my/proposals/{proposal_id}/accept")
    assert r.status_code == 303
    agreement = session.exec(select(Agreement).where(Agreement.proposal_id == proposal_id)).one()
    assert r.headers["location"] == f"/agreements/{agreement.id}?done=agreed"
    page = consumer.get(r.headers["location"])
    assert page.status_code == 200 and "协议已达成" in page.text
    assert re.search(r'id="agreement-remaining">80<', page.text)
    for listing in session.exec(select(Listing)).all():
        assert listing.allocated_kg == 80_000
    listed = consumer.get("/my/agreements")
    assert f'href="/agreements/{agreement.id}"' in listed.text and "邯郸热电" in listed.text
    closed = producer.get("/my/proposals")
    assert f'id="agreement-link-{proposal_id}"' in closed.text and 'id="no-open-proposals"' in closed.text


def test_a_decline_keeps_its_reason_and_a_late_answer_is_a_message_on_the_page(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    proposal_id = publish()
    producer, consumer = browser_for(world.producer), browser_for(world.consumer)

    too_long = consumer.post(f"/my/proposals/{proposal_id}/decline", reason="理" * 501)
    assert too_long.status_code == 422 and _field_error(too_long.text, "reason") == "最多 500 个字符"
    r = consumer.post(f"/my/proposals/{proposal_id}/decline", reason="  品质不符合要求 ")
    assert r.status_code == 303 and r.headers["location"].startswith("/my/proposals?done=declined")
    p = session.get(Proposal, proposal_id)
    assert p is not None and p.state is ProposalState.DECLINED and p.consumer_reason == "品质不符合要求"

    page = producer.get("/my/proposals")
    assert "品质不符合要求" in page.text and 'id="no-open-proposals"' in page.text
    late = producer.post(f"/my/proposals/{proposal_id}/accept")
    assert late.status_code == 409
    assert 'id="answer-error"' in late.text and "该方案已被拒绝" in late.text
    assert "error-page" not in late.text and "我的撮合方案" in late.text  # the list itself, with the message


def test_not_enough_tonnes_left_is_a_clear_409_and_nothing_is_reserved(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    proposal_id = publish()
    producer, consumer = browser_for(world.producer), browser_for(world.consumer)
    assert producer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    supply = session.exec(select(Listing).where(Listing.enterprise_id == world.producer.enterprise.id)).one()
    supply.allocated_kg = 100_000  # meanwhile another agreement took 100 of the 120 t
    session.add(supply)
    session.commit()

    r = consumer.post(f"/my/proposals/{proposal_id}/accept")
    assert r.status_code == 409
    assert "未分配吨数已不足" in r.text and "20.000 t left unallocated" in r.text
    assert f'id="proposal-{proposal_id}" class="has-error"' in r.text
    p = session.get(Proposal, proposal_id)
    assert p is not None and p.state is ProposalState.OPEN and p.consumer_answer is None
    session.refresh(supply)
    assert supply.allocated_kg == 100_000
    again = consumer.post(f"/my/proposals/{proposal_id}/accept")  # the answer was not recorded: same message
    assert again.status_code == 409 and "未分配吨数已不足" in again.text


def test_an_anonymous_counterpart_and_its_price_stay_hidden_until_both_agree(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    from exchange.listings.models import Visibility

    proposal_id = publish(visibility=Visibility.ANONYMOUS)
    supply = session.exec(select(Listing).where(Listing.enterprise_id == world.producer.enterprise.id)).one()
    supply.price_fen_per_t = 1234_00
    session.add(supply)
    session.commit()
    producer, consumer = browser_for(world.producer), browser_for(world.consumer)

    page = consumer.get("/my/proposals")
    row = page.text[page.text.index(f'id="proposal-{proposal_id}"') :]
    assert "邯郸热电" not in row and "1,234.00" not in row
    assert "双方达成协议前匿名" in row and "达成协议后可见" in row
    assert producer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    assert consumer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    page = consumer.get("/my/proposals")
    row = page.text[page.text.index(f'id="proposal-{proposal_id}"') :]
    assert "邯郸热电" in row and "1,234.00" in row


# ---------------------------------------------------------------------------------------------- deliveries


def test_a_delivery_is_recorded_and_the_other_side_confirms_it(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    producer, consumer, agreement_id = _agreed(browser_for, world, publish())
    page = producer.get(f"/agreements/{agreement_id}")
    assert 'id="delivery-form"' in page.text and 'id="no-deliveries"' in page.text
    assert 'name="manifest_no"' not in page.text  # fly ash is not hazardous

    r = producer.post(
        f"/agreements/{agreement_id}/deliveries",
        delivered_on=f"{PERIOD}-10",
        quantity_t="30",
        waybill_no="WB-001",
        vehicle_no="冀D12345",
        note="第一车",
    )
    assert r.status_code == 303, r.text
    [d] = session.exec(select(Delivery)).all()
    assert (d.quantity_kg, d.delivered_on, d.waybill_no) == (30_000, date(2025, 6, 10), "WB-001")
    assert (d.vehicle_no, d.note) == ("冀D12345", "第一车")
    page = producer.get(r.headers["location"])
    assert re.search(r'id="agreement-remaining">50<', page.text) and "交付已登记" in page.text
    assert f'id="confirm-{d.id}"' not in page.text  # the recorder does not confirm its own delivery

    theirs = consumer.get(f"/agreements/{agreement_id}")
    assert f'id="confirm-{d.id}"' in theirs.text and "待确认" in theirs.text
    r = consumer.post(f"/deliveries/{d.id}/confirm")
    assert r.status_code == 303
    session.refresh(d)
    assert d.state is DeliveryState.CONFIRMED
    # the recording enterprise hears of the confirmation (the confirmer does not); tonnes read as on the pages
    confirmed = session.exec(select(Notification).where(Notification.kind == "delivery.confirmed")).all()
    assert [(n.enterprise_id, n.link) for n in confirmed] == [
        (world.producer.enterprise.id, f"/agreements/{agreement_id}")
    ]
    assert f"对方企业已确认协议 {agreement_id} 下 30 吨的交付" in producer.get("/notifications").text
    theirs = consumer.get("/notifications").text
    assert f"协议 {agreement_id} 登记了 30 吨的交付" in theirs and "30.000" not in theirs
    again = consumer.post(f"/deliveries/{d.id}/confirm")
    assert again.status_code == 409 and 'id="action-error"' in again.text and "该交付已确认过" in again.text

    r = consumer.post(
        f"/agreements/{agreement_id}/deliveries", delivered_on=f"{PERIOD}-20", quantity_t="50", vehicle_no="冀D7"
    )
    assert r.status_code == 303
    done = consumer.get(f"/agreements/{agreement_id}")
    assert 'data-state="completed"' in done.text and 'id="delivery-form"' not in done.text
    assert 'id="cancel-form"' not in done.text


def test_delivery_field_errors_stand_next_to_their_fields_and_nothing_is_written(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    producer, _, agreement_id = _agreed(browser_for, world, publish())
    url = f"/agreements/{agreement_id}/deliveries"

    r = producer.post(url, delivered_on="2025-13-40", quantity_t="abc", waybill_no="WB-9", note="保留我")
    assert r.status_code == 422
    assert _field_error(r.text, "delivered_on") == "请按 YYYY-MM-DD 格式输入日期"
    assert _field_error(r.text, "quantity_t").startswith("请输入吨数")
    assert 'value="WB-9"' in r.text and "保留我" in r.text  # what was typed stays

    r = producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="1.0001", waybill_no="WB-9")
    assert r.status_code == 422 and _field_error(r.text, "quantity_t").startswith("请输入吨数")
    r = producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="5")
    assert r.status_code == 422 and _field_error(r.text, "waybill_no") == "请填写运单号或车牌号"
    r = producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="5", vehicle_no="冀D" + "1" * 30)
    assert r.status_code == 422 and _field_error(r.text, "vehicle_no") == "最多 20 个字符"
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    r = producer.post(url, delivered_on=tomorrow, quantity_t="5", waybill_no="WB-9")
    assert r.status_code == 422 and _field_error(r.text, "delivered_on") == "交付日期不能晚于今天"
    r = producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="80.001", waybill_no="WB-9")
    assert r.status_code == 409 and _field_error(r.text, "quantity_t") == "本协议仅剩 80 吨"
    assert session.exec(select(Delivery)).first() is None


def test_a_hazardous_delivery_needs_its_transfer_manifest_number(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    proposal_id = publish("waste_mineral_oil", 10, 8, consumer=world.consumer2)
    producer, consumer = browser_for(world.producer), browser_for(world.consumer2)
    assert producer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    assert consumer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    agreement = session.exec(select(Agreement)).one()
    assert agreement.hazardous
    url = f"/agreements/{agreement.id}/deliveries"
    page = producer.get(f"/agreements/{agreement.id}")
    assert 'name="manifest_no"' in page.text and "危险废物" in page.text

    r = producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="2", waybill_no="WB-1")
    assert r.status_code == 422 and "转移联单编号" in _field_error(r.text, "manifest_no")
    r = producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="2", waybill_no="WB-1", manifest_no="1301-2025-0001")
    assert r.status_code == 303
    assert session.exec(select(Delivery)).one().manifest_no == "1301-2025-0001"


def test_an_agreement_is_cancelled_with_its_reason_and_the_rest_is_released(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    producer, consumer, agreement_id = _agreed(browser_for, world, publish())
    url = f"/agreements/{agreement_id}/deliveries"
    assert producer.post(url, delivered_on=f"{PERIOD}-10", quantity_t="30", waybill_no="W").status_code == 303
    r = consumer.post(f"/agreements/{agreement_id}/cancel", reason="停产检修")
    assert r.status_code == 303
    a = session.get(Agreement, agreement_id)
    assert a is not None and a.state is AgreementState.CANCELLED and a.cancel_reason == "停产检修"
    for listing in session.exec(select(Listing)).all():
        assert listing.allocated_kg == 30_000  # the delivered 30 t stay counted, the other 50 t are released
    page = producer.get(f"/agreements/{agreement_id}")
    assert "停产检修" in page.text and 'id="cancel-form"' not in page.text and 'id="delivery-form"' not in page.text
    again = producer.post(f"/agreements/{agreement_id}/cancel", reason="")
    assert again.status_code == 409 and "只能取消执行中的协议" in again.text


# ---------------------------------------------------------------------------------------------- who may


def test_another_enterprise_gets_404_and_staff_and_strangers_are_kept_out(
    world: RoundWorld, publish: Any, browser_for: Any, client: TestClient, session: Session
) -> None:
    proposal_id = publish()
    outsider = browser_for(world.producer2)
    for action in ("accept", "decline"):
        assert outsider.post(f"/my/proposals/{proposal_id}/{action}").status_code == 404
    assert proposal_id not in [int(x) for x in re.findall(r'id="proposal-(\d+)"', outsider.get("/my/proposals").text)]

    _, consumer, agreement_id = _agreed(browser_for, world, proposal_id)
    delivery = {"delivered_on": f"{PERIOD}-10", "quantity_t": "1", "waybill_no": "W"}
    assert outsider.get(f"/agreements/{agreement_id}").status_code == 404
    assert outsider.post(f"/agreements/{agreement_id}/deliveries", **delivery).status_code == 404
    bad_form = {**delivery, "quantity_t": "abc"}  # field errors do not leak someone else's agreement either
    assert outsider.post(f"/agreements/{agreement_id}/deliveries", **bad_form).status_code == 404
    assert outsider.post(f"/agreements/{agreement_id}/cancel", reason="x").status_code == 404
    assert "邯郸热电" not in outsider.get("/my/agreements").text
    assert consumer.post(f"/agreements/{agreement_id}/deliveries", **delivery).status_code == 303
    [d] = session.exec(select(Delivery)).all()
    assert outsider.post(f"/deliveries/{d.id}/confirm").status_code == 404
    session.refresh(d)
    assert d.state is DeliveryState.RECORDED

    manager = browser_for(world.manager)
    assert manager.get("/my/proposals").status_code == 403
    assert manager.get("/notifications").status_code == 403
    assert manager.post(f"/my/proposals/{proposal_id}/accept").status_code in (403, 409)
    anonymous = client.get("/my/proposals", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert client.get(f"/agreements/{agreement_id}", follow_redirects=False).status_code == 303


def test_a_form_post_without_the_csrf_token_is_refused(
    world: RoundWorld, publish: Any, browser_for: Any, session: Session
) -> None:
    proposal_id = publish()
    producer = browser_for(world.producer)
    r = producer.client.post(f"/my/proposals/{proposal_id}/accept", follow_redirects=False)
    assert r.status_code == 403
    p = session.get(Proposal, proposal_id)
    assert p is not None and p.supplier_answer is None


# ---------------------------------------------------------------------------------------------- notifications


def test_notifications_show_in_the_nav_until_marked_read(world: RoundWorld, publish: Any, browser_for: Any) -> None:
    proposal_id = publish()
    consumer = browser_for(world.consumer)
    home = consumer.get("/my/agreements")
    assert re.search(r'id="unread-count">1<', home.text)

    page = consumer.get("/notifications")
    assert page.status_code == 200 and "新的撮合方案：粉煤灰 80 吨" in page.text and "80.000" not in page.text
    assert 'href="/my/proposals"' in page.text and 'id="mark-all-read"' in page.text

    producer = browser_for(world.producer)
    assert producer.post(f"/my/proposals/{proposal_id}/accept").status_code == 303
    assert re.search(r'id="unread-count">2<', consumer.get("/my/proposals").text)
    r = consumer.post("/notifications/read")
    assert r.status_code == 303 and r.headers["location"] == "/notifications?done=read"
    page = consumer.get(r.headers["location"])
    assert 'id="unread-count"' not in page.text and 'id="mark-all-read"' not in page.text
    assert "对方企业已接受方案" in page.text
