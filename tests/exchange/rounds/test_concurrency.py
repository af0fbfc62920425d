"""No tonne is allocated twice, under real concurrency.

Twenty open proposals of 7 t each sit on one 100 t supply listing (overlapping rounds can publish that much:
publishing reserves nothing, agreeing does). Twenty HTTP clients, each in its own thread with its own
connection, send the deciding accept at the same moment to a live server (uvicorn, its thread pool, one database
session per request). Exactly the 14 accepts that fit succeed, the other 6 get 409 saying how much is left, and
the listing never holds more than it offers. Run it on PostgreSQL as well (see tests/conftest.py):
row locks (SELECT … FOR UPDATE) serialise the accepts there, SQLite's BEGIN IMMEDIATE does it here.

Behind the locks, the database's own CHECK (allocated_kg <= quantity_kg) and an SQL increment refuse an
over-allocation even when the listing locks are switched off.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from exchange.core.db import get_for_update
from exchange.listings.models import Listing
from exchange.rounds import deals
from exchange.rounds.models import Agreement, Answer, Proposal, ProposalState
from exchange.settings import Settings
from tests.exchange.rounds.conftest import Member, RoundWorld, new_round

PROPOSALS = 20
SUPPLY_T = 100
EACH_T = 7
FEASIBLE = SUPPLY_T // EACH_T  # 14


@dataclass
class Contest:
    supply: Listing
    proposals: list[tuple[int, Member]]  # proposal id and the consumer whose accept decides it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The app on a real loopback port (its own thread pool of 40 answers requests in parallel)."""
    from exchange.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def contest(client: Any, world: RoundWorld, make_listing: Any, drain: Any, session: Session) -> Contest:
    """20 open proposals of 7 t on one 100 t supply listing; the supplier has accepted them all."""
    supply = make_listing(world.producer, "supply", "fly_ash", SUPPLY_T)
    rnd = new_round(client, world.manager_headers)
    drain()
    proposals: list[tuple[int, Member]] = []
    for i in range(PROPOSALS):
        consumer = world.consumer if i % 2 else world.consumer2
        demand = make_listing(consumer, "demand", "fly_ash", 10)
        p = Proposal(
            round_id=rnd["id"],
            run_id=rnd["current_run"]["id"],
            supply_listing_id=supply.id,
            demand_listing_id=demand.id,
            supplier_enterprise_id=world.producer.enterprise.id,
            consumer_enterprise_id=consumer.enterprise.id,
            material_code="fly_ash",
            quantity_kg=EACH_T * 1000,
            distance_km=8.0,
            cost_fen=2000,
            supplier_answer=Answer.ACCEPTED,
        )
        session.add(p)
        session.commit()
        assert p.id is not None
        proposals.append((p.id, consumer))
    return Contest(supply, proposals)


def fire_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below with the others
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    errors = [r for r in results if not isinstance(r, httpx.Response)]
    assert not errors, errors
    return [r for r in results if isinstance(r, httpx.Response)]


def accept_call(base_url: str, proposal_id: int, member: Member) -> Callable[[], httpx.Response]:
    def call() -> httpx.Response:
        with httpx.Client(base_url=base_url, headers=member.headers, timeout=60) as http:  # its own connection
            return http.post(f"/api/v1/proposals/{proposal_id}/accept")

    return call


def check_outcome(session: Session, contest: Contest, responses: list[httpx.Response]) -> None:
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 409]
    assert len(ok) == FEASIBLE and len(refused) == PROPOSALS - FEASIBLE, [(r.status_code, r.text) for r in responses]
    assert all(r.json()["state"] == "accepted" and r.json()["agreement_id"] for r in ok)
    for r in refused:
        body = r.json()
        assert body["error"] == "conflict"
        assert "t left unallocated" in body["detail"] and f"{EACH_T}.000 t" in body["detail"], body["detail"]

    session.refresh(contest.supply)
    assert contest.supply.allocated_kg == FEASIBLE * EACH_T * 1000 <= contest.supply.quantity_kg
    agreements = session.exec(select(Agreement)).all()
    assert len(agreements) == FEASIBLE
    assert sum(a.quantity_kg for a in agreements) == contest.supply.allocated_kg
    accepted_ids = {r.json()["id"] for r in ok}
    assert {a.proposal_id for a in agreements} == accepted_ids
    # A refused accept records nothing: the proposal stays open, awaiting the consumer.
    still_open = session.exec(select(Proposal).where(Proposal.state == ProposalState.OPEN)).all()
    assert {p.id for p in still_open} == {pid for pid, _ in contest.proposals} - accepted_ids
    assert all(p.consumer_answer is None for p in still_open)
    for a in agreements:
        demand = session.get(Listing, a.demand_listing_id, populate_existing=True)
        assert demand is not None and demand.allocated_kg == a.quantity_kg


def test_the_database_refuses_an_allocation_beyond_the_quantity(engine: Engine, contest: Contest) -> None:
    checks = {c["name"]: c["sqltext"] for c in sa.inspect(engine).get_check_constraints("listing")}
    assert "ck_listing_allocated_within_quantity" in checks
    assert "allocated_kg <= quantity_kg" in str(checks["ck_listing_allocated_within_quantity"])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE listing SET allocated_kg = quantity_kg + 1 WHERE id = :id"), {"id": contest.supply.id}
        )


def test_concurrent_accepts_never_allocate_a_tonne_twice(server: str, contest: Contest, session: Session) -> None:
    responses = fire_at_once([accept_call(server, pid, member) for pid, member in contest.proposals])
    check_outcome(session, contest, responses)


def test_without_listing_locks_the_database_still_refuses_over_allocation(
    server: str, contest: Contest, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Take the row locks on listings away: on PostgreSQL the accepts now read stale remaining tonnes and all pass
    the Python check, and it is the SQL increment against the CHECK that refuses the ones that do not fit."""

    def no_listing_lock(session_: Session, model: Any, ident: int, what: str | None = None) -> Any:
        if model is Listing:
            return session_.get(Listing, ident, populate_existing=True)
        return get_for_update(session_, model, ident, what)

    monkeypatch.setattr(deals, "get_for_update", no_listing_lock)
    responses = fire_at_once([accept_call(server, pid, member) for pid, member in contest.proposals])
    check_outcome(session, contest, responses)


def test_repeated_accepts_of_one_proposal_make_one_agreement(server: str, contest: Contest, session: Session) -> None:
    """The consumer double-clicks ten times at once: one accept is recorded, nine get 409."""
    pid, consumer = contest.proposals[0]
    responses = fire_at_once([accept_call(server, pid, consumer) for _ in range(10)])
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    for r in responses:
        if r.status_code == 409:
            assert f"proposal {pid} is accepted" in r.json()["detail"], r.text
    assert len(session.exec(select(Agreement).where(Agreement.proposal_id == pid)).all()) == 1
    session.refresh(contest.supply)
    assert contest.supply.allocated_kg == EACH_T * 1000
