"""The exchange's contribution on the dashboard: tonnes delivered through agreements, the projected bulk rate if
open proposals and the undelivered rest of active agreements are delivered, and the industry → industry flows
behind the Sankey diagram. Hand-computed on the fixed dataset (see conftest) plus a few deals."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from exchange.accounts.models import Role
from exchange.rounds.models import AgreementState, ProposalState
from tests.exchange.stats.conftest import World
from tests.exchange.stats.deals import agreement, proposal

YEAR_2025 = {"period_from": "2025-01", "period_to": "2025-12"}


@pytest.fixture
def deals(session: Session, world: World, make_enterprise: Any) -> None:
    cement = make_enterprise("Handan cement", industry="cement", province_code="130000", city_code="130400")
    # Hebei suppliers: 20 t of fly ash delivered in 2025 (and 5 t in 2024, outside the period); 5 t still to come
    agreement(session, world.e1, cement, "fly_ash", 30, [(date(2025, 1, 15), 20), (date(2024, 12, 20), 5)])
    # steel slag to the same cement plant: fully delivered, 12 t
    agreement(session, world.e2, cement, "steel_slag", 12, [(date(2025, 3, 1), 12)], AgreementState.COMPLETED)
    # waste plastics (not bulk) from a coal plant to the steelworks: 2 t delivered, 3 t to come
    agreement(session, world.e3, world.e2, "waste_plastics", 5, [(date(2025, 2, 1), 2)])
    # a cancelled agreement's undelivered rest is not coming
    agreement(session, world.e3, cement, "fly_ash", 50, [], AgreementState.CANCELLED)
    proposal(session, world.e3, cement, "fly_ash", 40)  # open: counts toward the projection
    proposal(session, world.e1, cement, "fly_ash", 100, ProposalState.DECLINED)  # declined: does not
    # Shandong: nothing of it may appear in Hebei's figures
    agreement(session, world.e4, cement, "fly_ash", 500, [(date(2025, 1, 10), 400)])
    proposal(session, world.e4, cement, "fly_ash", 300)


def test_deliveries_and_what_is_still_to_come(client: TestClient, deals: None, make_user: Any, token_for: Any) -> None:
    hebei = token_for(make_user(Role.REGULATOR, region_code="130000"))
    k = client.get("/api/v1/stats/dashboard", params=YEAR_2025, headers=hebei).json()["kpis"]
    assert k["available"] is True
    assert k["delivered_t"] == "34.000"  # 20 + 12 + 2 (the 5 t of December 2024 are outside the period)
    assert k["delivered_bulk_t"] == "32.000"
    assert k["open_proposals_t"] == "40.000" and k["open_proposals_bulk_t"] == "40.000"
    assert k["agreed_undelivered_t"] == "8.000"  # 5 t of fly ash + 3 t of plastics
    assert k["agreed_undelivered_bulk_t"] == "5.000"
    # bulk: 210 t utilised of 350 t generated + 10 t prior stock; 45 t more if everything pending arrives
    assert k["bulk_utilisation_rate"] == pytest.approx(210 / 360)
    assert k["projected_bulk_rate"] == pytest.approx((210 + 40 + 5) / 360)


def test_the_sankey_links_producing_to_consuming_industries(
    client: TestClient, deals: None, make_user: Any, token_for: Any
) -> None:
    hebei = token_for(make_user(Role.REGULATOR, region_code="130000"))
    flows = client.get("/api/v1/stats/dashboard", params=YEAR_2025, headers=hebei).json()["tables"]["flows"]
    assert [(f["source"], f["target"], f["tonnes"]) for f in flows] == [
        ("coal_power", "cement", "20.000"),
        ("steel_bf_bof", "cement", "12.000"),
        ("coal_power", "steel_bf_bof", "2.000"),
    ]
    shandong = token_for(make_user(Role.REGULATOR, region_code="370000"))
    other = client.get("/api/v1/stats/dashboard", params=YEAR_2025, headers=shandong).json()
    assert [(f["source"], f["tonnes"]) for f in other["tables"]["flows"]] == [("coal_power", "400.000")]
    assert other["kpis"]["delivered_t"] == "400.000" and other["kpis"]["open_proposals_t"] == "300.000"


def test_the_park_manager_sees_the_park_s_suppliers_only(
    client: TestClient, world: World, deals: None, make_user: Any, token_for: Any
) -> None:
    manager = token_for(make_user(Role.PARK_MANAGER, park=world.park))
    k = client.get("/api/v1/stats/dashboard", params=YEAR_2025, headers=manager).json()["kpis"]
    assert k["delivered_t"] == "20.000" and k["agreed_undelivered_t"] == "5.000" and k["open_proposals_t"] == "0.000"
    # e1 alone: 60 t utilised of 100 t + 10 t prior stock; 5 t still to come
    assert k["projected_bulk_rate"] == pytest.approx(65 / 110)


def test_without_deals_the_projection_is_the_rate(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    hebei = token_for(make_user(Role.REGULATOR, region_code="130000"))
    d = client.get("/api/v1/stats/dashboard", params=YEAR_2025, headers=hebei).json()
    assert d["kpis"]["delivered_t"] == "0.000" and d["tables"]["flows"] == []
    assert d["kpis"]["projected_bulk_rate"] == pytest.approx(d["kpis"]["bulk_utilisation_rate"])


def test_the_dashboard_page_draws_the_flows_table(client: TestClient, deals: None, make_user: Any) -> None:
    from tests.factories import login

    login(client, make_user(Role.REGULATOR, region_code="130000"))
    html = client.get("/stats", params=YEAR_2025).text
    assert 'id="chart-flows"' in html and "20.000" in html
