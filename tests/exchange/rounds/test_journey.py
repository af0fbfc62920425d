"""The whole journey through the API: a manager runs a round, reviews and publishes it, both enterprises
accept, an agreement reserves the tonnes on both listings, deliveries reduce what remains and reach the
ledgers' pre-fill and the statistics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.listings.models import Listing
from exchange.rounds.models import Agreement, Notification, RoundAllocation
from tests.exchange.rounds.conftest import PERIOD, RoundWorld, new_round


def test_a_round_runs_in_the_background_and_reports(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any
) -> None:
    s = make_listing(world.producer, "supply", "fly_ash", 120, grade="II")
    d = make_listing(world.consumer, "demand", "fly_ash", 80, accepted_grades=["I", "II"])
    make_listing(world.producer2, "supply", "fgd_gypsum", 50)  # nobody takes gypsum

    rnd = new_round(client, world.manager_headers)
    assert rnd["state"] == "queued" and rnd["current_run"]["number"] == 1
    status = client.get(f"/api/v1/rounds/{rnd['id']}/status", headers=world.manager_headers).json()
    assert status["round_state"] == "queued" and status["stage"] == "queued" and status["queue_position"] == 1
    assert status["done"] is False

    assert len(drain()) == 1
    status = client.get(f"/api/v1/rounds/{rnd['id']}/status", headers=world.manager_headers).json()
    assert status == {
        "round_id": rnd["id"],
        "round_state": "review",
        "run_number": 1,
        "run_state": "succeeded",
        "stage": "done",
        "progress": 1.0,
        "queue_position": None,
        "error": None,
        "done": True,
    }
    report = client.get(f"/api/v1/rounds/{rnd['id']}/report", headers=world.manager_headers).json()
    summary = report["summary"]
    assert summary["offered_t"] == "170.000" and summary["matched_t"] == "80.000"
    assert summary["utilisation_before"] == 0 and summary["utilisation_after"] == pytest.approx(80 / 170)
    assert Decimal(summary["tonne_km"]) > 0 and Decimal(summary["transport_cost_cny"]) > 0
    assert Decimal(summary["co2_transport_t"]) > 0 and Decimal(summary["co2_avoided_t"]) == Decimal("40.000")
    by_material = {m["material_code"]: m for m in report["materials"]}
    assert by_material["fly_ash"]["offered_t"] == "120.000" and by_material["fly_ash"]["matched_t"] == "80.000"
    assert by_material["fgd_gypsum"]["matched_t"] == "0.000"
    [pair] = report["allocations"]
    assert (pair["supply_listing_id"], pair["demand_listing_id"], pair["quantity_t"]) == (s.id, d.id, "80.000")
    assert pair["supplier"] == "邯郸热电" and pair["consumer"] == "邯郸水泥"
    reasons = {u["supply_listing_id"]: u["reason"] for u in report["unmatched"]}
    assert reasons[s.id] == "demand_filled_by_other_supply"
    assert reasons[max(reasons)] == "no_demand_for_material"
    [flow] = report["flows"]
    assert flow["from"] == [114.5, 36.6] and flow["tonnes"] == 80.0


def test_publish_accept_deliver(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any, session: Session
) -> None:
    s = make_listing(world.producer, "supply", "fly_ash", 120)
    d = make_listing(world.consumer, "demand", "fly_ash", 80)
    rnd = new_round(client, world.manager_headers)
    drain()
    r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=world.manager_headers)
    assert r.status_code == 200, r.text
    assert r.json()["proposals_created"] == 1 and r.json()["round"]["state"] == "published"

    # both enterprises see it, and got a notification
    [mine] = client.get("/api/v1/proposals", headers=world.producer.headers).json()
    assert mine["role"] == "supplier" and mine["quantity_t"] == "80.000" and mine["state"] == "open"
    notes = client.get("/api/v1/notifications", headers=world.consumer.headers).json()
    assert notes and notes[0]["link"] == "/my/proposals" and "80 t of" in notes[0]["message"]
    assert client.get("/api/v1/proposals", headers=world.producer2.headers).json() == []
    assert client.get(f"/api/v1/proposals/{mine['id']}", headers=world.producer2.headers).status_code == 404

    r = client.post(f"/api/v1/proposals/{mine['id']}/accept", headers=world.producer.headers)
    assert r.status_code == 200 and r.json()["state"] == "open" and r.json()["your_answer"] == "accepted"
    again = client.post(f"/api/v1/proposals/{mine['id']}/accept", headers=world.producer.headers)
    assert again.status_code == 409 and "already accepted" in again.json()["detail"]
    r = client.post(f"/api/v1/proposals/{mine['id']}/accept", json={"reason": "ok"}, headers=world.consumer.headers)
    assert r.status_code == 200 and r.json()["state"] == "accepted" and r.json()["agreement_id"]
    agreement_id = r.json()["agreement_id"]
    for listing in (s, d):
        session.refresh(listing)
        assert listing.allocated_kg == 80_000
    late = client.post(f"/api/v1/proposals/{mine['id']}/decline", headers=world.consumer.headers)
    assert late.status_code == 409 and "accepted" in late.json()["detail"]

    # deliveries
    url = f"/api/v1/agreements/{agreement_id}/deliveries"
    ok = {"delivered_on": f"{PERIOD}-10", "quantity_t": "30", "waybill_no": "WB-1"}
    r = client.post(url, json=ok, headers=world.producer.headers)
    assert r.status_code == 201, r.text
    delivery_id = r.json()["id"]
    too_much = client.post(url, json={**ok, "quantity_t": "50.001"}, headers=world.producer.headers)
    assert too_much.status_code == 409 and "only 50.000 t remain" in too_much.json()["detail"]
    no_paper = client.post(
        url, json={"delivered_on": f"{PERIOD}-11", "quantity_t": "1"}, headers=world.producer.headers
    )
    assert no_paper.status_code == 422 and no_paper.json()["field"] == "waybill_no"
    outsider = client.post(url, json=ok, headers=world.producer2.headers)
    assert outsider.status_code == 404
    # the recorder cannot confirm its own delivery; the other side can, once
    assert client.post(f"/api/v1/deliveries/{delivery_id}/confirm", headers=world.producer.headers).status_code == 403
    assert client.post(f"/api/v1/deliveries/{delivery_id}/confirm", headers=world.consumer.headers).status_code == 200
    assert client.post(f"/api/v1/deliveries/{delivery_id}/confirm", headers=world.consumer.headers).status_code == 409

    r = client.post(
        url, json={**ok, "quantity_t": "50", "delivered_on": f"{PERIOD}-20"}, headers=world.consumer.headers
    )
    assert r.status_code == 201
    agreement = client.get(f"/api/v1/agreements/{agreement_id}", headers=world.consumer.headers).json()
    assert agreement["state"] == "completed" and agreement["remaining_t"] == "0.000"
    assert [x["quantity_t"] for x in agreement["deliveries"]] == ["30.000", "50.000"]
    after = client.post(url, json={**ok, "quantity_t": "1"}, headers=world.producer.headers)
    assert after.status_code == 409 and "completed" in after.json()["detail"]

    # delivered tonnes pre-fill the producer's ledger for the month
    from exchange.ledgers.service import delivered_kg

    assert delivered_kg(session, world.producer.enterprise.id, "fly_ash", PERIOD) == 80_000
    assert session.exec(select(Agreement)).one().delivered_kg == 80_000
    assert session.exec(select(Notification)).all()


def test_a_declined_pair_is_excluded_when_the_round_is_re_run_and_agreements_stay_fixed(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any, session: Session
) -> None:
    s1 = make_listing(world.producer, "supply", "fly_ash", 100)
    s2 = make_listing(world.producer2, "supply", "fly_ash", 100)
    d1 = make_listing(world.consumer, "demand", "fly_ash", 60)
    d2 = make_listing(world.consumer2, "demand", "fly_ash", 60)
    rnd = new_round(client, world.manager_headers)
    drain()
    client.post(f"/api/v1/rounds/{rnd['id']}/publish", headers=world.manager_headers)
    proposals = client.get(f"/api/v1/rounds/{rnd['id']}/proposals", headers=world.manager_headers).json()
    assert sum(Decimal(p["quantity_t"]) for p in proposals) == Decimal(120)
    first, *rest = sorted(proposals, key=lambda p: p["id"])
    # the first pair is agreed; every other pair is declined by its consumer
    sup = {world.producer.enterprise.id: world.producer, world.producer2.enterprise.id: world.producer2}
    con = {world.consumer.enterprise.id: world.consumer, world.consumer2.enterprise.id: world.consumer2}
    client.post(f"/api/v1/proposals/{first['id']}/accept", headers=sup[first["supplier_enterprise_id"]].headers)
    client.post(f"/api/v1/proposals/{first['id']}/accept", headers=con[first["consumer_enterprise_id"]].headers)
    for p in rest:
        r = client.post(
            f"/api/v1/proposals/{p['id']}/decline",
            json={"reason": "too far"},
            headers=con[p["consumer_enterprise_id"]].headers,
        )
        assert r.status_code == 200 and r.json()["consumer_reason"] == "too far"

    r = client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=world.manager_headers)
    assert r.status_code == 202 and r.json()["number"] == 2 and r.json()["reason"] == "re-run"
    drain()
    run2 = client.get(f"/api/v1/rounds/{rnd['id']}/runs/2", headers=world.manager_headers).json()
    assert run2["state"] == "succeeded"
    declined = {(p["supply_listing_id"], p["demand_listing_id"]) for p in rest}
    agreed_pair = (first["supply_listing_id"], first["demand_listing_id"])
    allocations = session.exec(select(RoundAllocation).where(RoundAllocation.run_id == run2["id"])).all()
    pairs = {(a.supply_listing_id, a.demand_listing_id): a for a in allocations}
    assert not declined & set(pairs), "a declined pair came back"
    assert pairs[agreed_pair].agreed_kg == pairs[agreed_pair].quantity_kg >= round(Decimal(first["quantity_t"]) * 1000)
    assert run2["settings"]["declined_pairs"] == sorted([list(p) for p in declined])

    compare = client.get(f"/api/v1/rounds/{rnd['id']}/compare?a=1&b=2", headers=world.manager_headers).json()
    assert compare["a"]["number"] == 1 and compare["b"]["number"] == 2
    assert {(c["supply_listing_id"], c["demand_listing_id"]) for c in compare["changes"]} >= declined
    assert {s1.id, s2.id, d1.id, d2.id} >= {p[0] for p in pairs} | {p[1] for p in pairs}

    # publishing run 2 keeps the agreement and proposes only pairs beyond it
    r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 2}, headers=world.manager_headers)
    assert r.status_code == 200
    after = client.get(f"/api/v1/rounds/{rnd['id']}/proposals", headers=world.manager_headers).json()
    open_pairs = {(p["supply_listing_id"], p["demand_listing_id"]) for p in after if p["state"] == "open"}
    assert not open_pairs & declined
    assert len(session.exec(select(Agreement)).all()) == 1
    for listing in (s1, s2, d1, d2):
        session.refresh(listing)
    assert sum(x.allocated_kg for x in (s1, s2)) == round(Decimal(first["quantity_t"]) * 1000)


def test_listing_totals_never_change_through_a_round(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any, session: Session
) -> None:
    s = make_listing(world.producer, "supply", "fly_ash", 10)
    make_listing(world.consumer, "demand", "fly_ash", 10)
    rnd = new_round(client, world.manager_headers)
    drain()
    client.post(f"/api/v1/rounds/{rnd['id']}/publish", headers=world.manager_headers)
    session.refresh(s)
    assert (s.quantity_kg, s.allocated_kg) == (10_000, 0)  # publishing reserves nothing; agreeing does
    assert session.get(Listing, s.id) is not None
