"""Deliveries recorded on the exchange pre-fill the ledger's "sent out for utilisation" figure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from exchange.accounts.models import Role, User
from exchange.enterprises.models import Enterprise
from exchange.ledgers import service
from tests.exchange.stats.deals import agreement
from tests.factories import login


@dataclass
class Deals:
    supplier: Enterprise
    consumer: Enterprise
    supplier_user: User
    consumer_user: User


@pytest.fixture
def deals(session: Session, make_enterprise: Any, make_user: Any) -> Deals:
    supplier = make_enterprise("Handan power", industry="coal_power")
    consumer = make_enterprise("Handan cement", industry="cement")
    # fly ash: 20 t + 7.5 t in April (pre-filled), 3 t on 1 May (another month)
    agreement(session, supplier, consumer, "fly_ash", 50, [(date(2025, 4, 1), 20), (date(2025, 4, 30), 7.5)])
    agreement(session, supplier, consumer, "fly_ash", 10, [(date(2025, 5, 1), 3)])
    agreement(session, supplier, consumer, "fgd_gypsum", 10, [(date(2025, 4, 15), 4)])  # another material
    agreement(session, consumer, supplier, "fly_ash", 10, [(date(2025, 4, 15), 9)])  # the other way round
    return Deals(
        supplier,
        consumer,
        make_user(Role.ENTERPRISE, enterprise=supplier),
        make_user(Role.ENTERPRISE, enterprise=consumer),
    )


def test_the_supplier_month_and_material_are_summed(session: Session, deals: Deals) -> None:
    assert deals.supplier.id is not None and deals.consumer.id is not None
    assert service.delivered_kg(session, deals.supplier.id, "fly_ash", "2025-04") == 27_500
    assert service.delivered_kg(session, deals.supplier.id, "fly_ash", "2025-05") == 3_000
    assert service.delivered_kg(session, deals.supplier.id, "fgd_gypsum", "2025-04") == 4_000
    assert service.delivered_kg(session, deals.supplier.id, "fly_ash", "2025-03") == 0
    # what an enterprise received is not what it sent out
    assert service.delivered_kg(session, deals.consumer.id, "fly_ash", "2025-04") == 9_000
    assert service.delivered_kg(session, deals.consumer.id, "fgd_gypsum", "2025-04") == 0


def test_the_api_gives_the_prefill_in_tonnes(client: TestClient, deals: Deals, token_for: Any) -> None:
    r = client.get(
        "/api/v1/ledgers/prefill",
        params={"material_code": "fly_ash", "period": "2025-04"},
        headers=token_for(deals.supplier_user),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"material_code": "fly_ash", "period": "2025-04", "sent_for_utilisation_t": "27.500"}
    bad = client.get(
        "/api/v1/ledgers/prefill",
        params={"material_code": "fly_ash", "period": "2025-13"},
        headers=token_for(deals.supplier_user),
    )
    assert bad.status_code == 422


def test_the_form_starts_from_the_deliveries_then_from_what_was_filed(client: TestClient, deals: Deals) -> None:
    token = login(client, deals.supplier_user)
    page = client.get("/ledgers/new", params={"material_code": "fly_ash", "period": "2025-04"})
    assert page.status_code == 200
    assert 'id="prefill-note"' in page.text
    assert 'name="sent_for_utilisation_t"' in page.text and 'value="27.500"' in page.text
    form = {
        "csrf_token": token,
        "material_code": "fly_ash",
        "period": "2025-04",
        "generated_t": "40",
        "sent_for_utilisation_t": "27.5",
        "stored_t": "12.5",
    }
    assert client.post("/ledgers/new", data=form, follow_redirects=False).status_code == 303
    # the month is filed: the form loads the filed figures and shows the deliveries beside them
    form["sent_for_utilisation_t"] = "30"
    form["stored_t"] = "10"
    assert client.post("/ledgers/new", data=form, follow_redirects=False).status_code == 303
    again = client.get("/ledgers/new", params={"material_code": "fly_ash", "period": "2025-04"})
    assert 'id="existing-note"' in again.text and 'id="prefill-note"' not in again.text
    assert 'id="delivered-note"' in again.text and "27.500" in again.text
    assert 'value="30.000"' in again.text


def test_a_month_without_deliveries_is_not_prefilled(client: TestClient, deals: Deals) -> None:
    login(client, deals.supplier_user)
    page = client.get("/ledgers/new", params={"material_code": "fly_ash", "period": "2025-03"})
    assert page.status_code == 200
    assert 'id="prefill-note"' not in page.text and 'id="delivered-note"' not in page.text
