"""The state machines of rounds, proposals, agreements and deliveries, through the API: every illegal transition
is refused with 409 and a message that says what state the thing is in and what is allowed, and the refusal
changes nothing (no state, no reserved tonnes, no audit event)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from exchange.audit.models import AuditEvent
from exchange.core.errors import Conflict
from exchange.listings.models import Listing
from exchange.rounds import solving
from exchange.rounds.common import transition
from exchange.rounds.models import (
    AGREEMENT_TRANSITIONS,
    DELIVERY_TRANSITIONS,
    PROPOSAL_TRANSITIONS,
    ROUND_TRANSITIONS,
    RUN_TRANSITIONS,
    Agreement,
    Proposal,
)
from tests.exchange.rounds.conftest import PERIOD, Member, RoundWorld, new_round


@dataclass
class Published:
    round_id: int
    proposal_id: int
    supply: Listing
    demand: Listing


def conflict(response: Any, *fragments: str) -> str:
    """Assert a 409 whose message contains every fragment; returns the message."""
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "conflict"
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return str(body["detail"])


def audit_count(session: Session) -> int:
    return len(session.exec(select(AuditEvent)).all())


def accept(client: TestClient, proposal_id: int, member: Member) -> Any:
    return client.post(f"/api/v1/proposals/{proposal_id}/accept", headers=member.headers)


def decline(client: TestClient, proposal_id: int, member: Member) -> Any:
    return client.post(f"/api/v1/proposals/{proposal_id}/decline", headers=member.headers)


def deliver(client: TestClient, agreement_id: int, member: Member, quantity_t: str, day: int = 10) -> Any:
    body = {"delivered_on": f"{PERIOD}-{day:02d}", "quantity_t": quantity_t, "waybill_no": f"WB-{day}"}
    return client.post(f"/api/v1/agreements/{agreement_id}/deliveries", json=body, headers=member.headers)


@pytest.fixture
def published(client: TestClient, world: RoundWorld, make_listing: Any, drain: Any) -> Published:
    """A published round with one open proposal: 80 t of fly ash from the producer to the consumer."""
    s = make_listing(world.producer, "supply", "fly_ash", 120)
    d = make_listing(world.consumer, "demand", "fly_ash", 80)
    rnd = new_round(client, world.manager_headers)
    drain()
    r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=world.manager_headers)
    assert r.status_code == 200, r.text
    [p] = client.get(f"/api/v1/rounds/{rnd['id']}/proposals", headers=world.manager_headers).json()
    return Published(rnd["id"], p["id"], s, d)


def agree(client: TestClient, world: RoundWorld, published: Published) -> int:
    assert accept(client, published.proposal_id, world.producer).status_code == 200
    r = accept(client, published.proposal_id, world.consumer)
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    return int(r.json()["agreement_id"])


# ---------------------------------------------------------------------------------------------- the tables


TABLES: list[tuple[str, dict[Any, frozenset[Any]]]] = [
    ("round", ROUND_TRANSITIONS),
    ("run", RUN_TRANSITIONS),
    ("proposal", PROPOSAL_TRANSITIONS),
    ("agreement", AGREEMENT_TRANSITIONS),
    ("delivery", DELIVERY_TRANSITIONS),
]


@pytest.mark.parametrize(("what", "table"), TABLES, ids=[t[0] for t in TABLES])
def test_every_change_outside_the_transition_table_is_refused(what: str, table: dict[Any, frozenset[Any]]) -> None:
    states: list[enum.Enum] = list(type(next(iter(table))))
    assert set(table) == set(states), f"every {what} state has a row in the table"
    for current in states:
        for target in states:
            if target in table[current]:
                assert transition(what, 7, current, target, table) is target
            else:
                with pytest.raises(Conflict) as refused:
                    transition(what, 7, current, target, table)
                assert refused.value.detail == f"{what} 7 is {current.value}; it cannot become {target.value}"


# ---------------------------------------------------------------------------------------------- rounds


def test_an_unfinished_round_cannot_be_published(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any, engine: Engine, session: Session
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    rnd = new_round(client, world.manager_headers)
    url = f"/api/v1/rounds/{rnd['id']}/publish"
    before = audit_count(session)
    conflict(client.post(url, headers=world.manager_headers), "is queued", "only a round in review can be published")
    # while it runs, and while it is queued, its pairs cannot be edited either
    pair = {"supply_listing_id": 1, "demand_listing_id": 2}
    r = client.put(f"/api/v1/rounds/{rnd['id']}/forbidden", json=pair, headers=world.manager_headers)
    conflict(r, "is queued", "wait for the run to finish")
    assert solving._claim(engine, rnd["current_run"]["id"], "test:1:worker") is not None
    conflict(client.post(url, headers=world.manager_headers), "is running", "only a round in review")
    r = client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=world.manager_headers)
    conflict(r, "is running", "cannot become queued")
    assert audit_count(session) == before + 1  # only the worker's claim was recorded
    assert session.exec(select(Proposal)).all() == []


def test_a_failed_or_cancelled_round_cannot_be_published_and_a_reviewed_one_cannot_be_cancelled(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    h = world.manager_headers
    rnd = new_round(client, h)
    assert client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=h).status_code == 200
    conflict(client.post(f"/api/v1/rounds/{rnd['id']}/publish", headers=h), "is cancelled", "only a round in review")
    conflict(client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=h), "is cancelled", "only a queued or running")

    assert client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=h).status_code == 202
    drain()
    conflict(client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=h), "is review", "only a queued or running")
    r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=h)
    conflict(r, "run 1 is not the latest run", "run 2 is")
    assert client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 2}, headers=h).status_code == 200
    conflict(client.post(f"/api/v1/rounds/{rnd['id']}/publish", headers=h), "is published", "only a round in review")


# ---------------------------------------------------------------------------------------------- proposals


def test_a_proposal_cannot_be_answered_twice(
    client: TestClient, world: RoundWorld, published: Published, session: Session
) -> None:
    pid = published.proposal_id
    assert accept(client, pid, world.producer).status_code == 200
    before = audit_count(session)
    conflict(accept(client, pid, world.producer), f"your enterprise already accepted proposal {pid}")
    conflict(decline(client, pid, world.producer), f"your enterprise already accepted proposal {pid}")
    assert audit_count(session) == before

    assert decline(client, pid, world.consumer).status_code == 200
    conflict(accept(client, pid, world.consumer), f"proposal {pid} is declined", "can no longer be answered")
    conflict(decline(client, pid, world.consumer), f"proposal {pid} is declined")
    p = session.get(Proposal, pid, populate_existing=True)
    assert p is not None and p.state.value == "declined" and p.consumer_answer is not None
    assert p.consumer_answer.value == "declined"


def test_an_accepted_proposal_cannot_be_answered_again(
    client: TestClient, world: RoundWorld, published: Published, session: Session
) -> None:
    agree(client, world, published)
    for member in (world.producer, world.consumer):
        conflict(accept(client, published.proposal_id, member), "is accepted", "can no longer be answered")
        conflict(decline(client, published.proposal_id, member), "is accepted")
    session.refresh(published.supply)
    assert published.supply.allocated_kg == 80_000  # reserved once
    assert len(session.exec(select(Agreement)).all()) == 1


def test_a_withdrawn_proposal_cannot_be_accepted(
    client: TestClient, world: RoundWorld, published: Published, drain: Any, session: Session
) -> None:
    h = world.manager_headers
    pid = published.proposal_id
    assert accept(client, pid, world.producer).status_code == 200
    # The manager forbids the pair and re-runs: publishing run 2 withdraws the open proposal.
    pair = {"supply_listing_id": published.supply.id, "demand_listing_id": published.demand.id}
    assert client.put(f"/api/v1/rounds/{published.round_id}/forbidden", json=pair, headers=h).status_code == 200
    assert client.post(f"/api/v1/rounds/{published.round_id}/runs", headers=h).status_code == 202
    drain()
    assert client.post(f"/api/v1/rounds/{published.round_id}/publish", json={"run": 2}, headers=h).status_code == 200
    assert client.get(f"/api/v1/proposals/{pid}", headers=world.consumer.headers).json()["state"] == "withdrawn"

    conflict(accept(client, pid, world.consumer), f"proposal {pid} is withdrawn", "can no longer be answered")
    conflict(decline(client, pid, world.consumer), f"proposal {pid} is withdrawn")
    session.refresh(published.supply)
    session.refresh(published.demand)
    assert (published.supply.allocated_kg, published.demand.allocated_kg) == (0, 0)
    assert session.exec(select(Agreement)).all() == []


# ---------------------------------------------------------------------------------------------- agreements


def test_no_delivery_on_a_cancelled_agreement_and_no_second_cancel(
    client: TestClient, world: RoundWorld, published: Published, session: Session
) -> None:
    agreement_id = agree(client, world, published)
    assert deliver(client, agreement_id, world.producer, "30").status_code == 201
    r = client.post(
        f"/api/v1/agreements/{agreement_id}/cancel", json={"reason": "kiln down"}, headers=world.consumer.headers
    )
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    for listing in (published.supply, published.demand):
        session.refresh(listing)
        assert listing.allocated_kg == 30_000  # the undelivered 50 t are released; delivered tonnes stay counted

    before = audit_count(session)
    conflict(
        deliver(client, agreement_id, world.producer, "1", day=11),
        f"agreement {agreement_id} is cancelled",
        "deliveries are recorded on active agreements only",
    )
    again = client.post(f"/api/v1/agreements/{agreement_id}/cancel", headers=world.producer.headers)
    conflict(again, f"agreement {agreement_id} is cancelled", "only an active agreement can be cancelled")
    assert audit_count(session) == before
    for listing in (published.supply, published.demand):
        session.refresh(listing)
        assert listing.allocated_kg == 30_000  # the refused second cancel released nothing more


def test_delivering_more_than_remains_is_refused_and_a_completed_agreement_takes_no_more(
    client: TestClient, world: RoundWorld, published: Published
) -> None:
    agreement_id = agree(client, world, published)
    assert deliver(client, agreement_id, world.producer, "79.5").status_code == 201
    r = deliver(client, agreement_id, world.consumer, "0.501", day=11)
    conflict(r, f"only 0.500 t remain on agreement {agreement_id}", "0.501 t is more")
    assert r.json()["field"] == "quantity_t"
    assert deliver(client, agreement_id, world.consumer, "0.5", day=12).status_code == 201
    agreement = client.get(f"/api/v1/agreements/{agreement_id}", headers=world.producer.headers).json()
    assert agreement["state"] == "completed" and agreement["remaining_t"] == "0.000"
    conflict(deliver(client, agreement_id, world.producer, "0.001", day=13), "is completed", "active agreements only")
    r = client.post(f"/api/v1/agreements/{agreement_id}/cancel", headers=world.manager_headers)
    conflict(r, "is completed", "only an active agreement can be cancelled")


def test_a_delivery_is_confirmed_once(client: TestClient, world: RoundWorld, published: Published) -> None:
    agreement_id = agree(client, world, published)
    delivery_id = deliver(client, agreement_id, world.producer, "10").json()["id"]
    assert client.post(f"/api/v1/deliveries/{delivery_id}/confirm", headers=world.consumer.headers).status_code == 200
    r = client.post(f"/api/v1/deliveries/{delivery_id}/confirm", headers=world.consumer.headers)
    conflict(r, f"delivery {delivery_id} is confirmed", "cannot become confirmed")
