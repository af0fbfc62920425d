"""A small fixed dataset whose figures are computed by hand in the tests.

Hebei (130000): Handan (130400) e1 coal power in park P1, e2 steelworks; Tangshan (130200) e3.
Shandong (370000): Jinan (370100) e4.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

import pytest
from sqlmodel import Session

from exchange.demo.generate import LedgerRow
from exchange.enterprises.models import Enterprise
from exchange.ledgers.models import FIGURES
from exchange.ledgers.service import import_demo_ledgers
from exchange.parks.models import Park


def row(key: str, material: str, period: str, **t: str) -> LedgerRow:
    z = D("0")
    names = [f"{f}_t" for f in FIGURES]
    return LedgerRow(key, material, period, *(D(t[n]) if n in t else z for n in names))


@dataclass
class World:
    park: Park
    e1: Enterprise
    e2: Enterprise
    e3: Enterprise
    e4: Enterprise


@pytest.fixture
def world(session: Session, make_park: Any, make_enterprise: Any) -> World:
    park = make_park(city_code="130400", province_code="130000")
    e1 = make_enterprise("Handan power", park=park, industry="coal_power", province_code="130000", city_code="130400")
    e2 = make_enterprise("Handan steel", industry="steel_bf_bof", province_code="130000", city_code="130400")
    e3 = make_enterprise("Tangshan power", industry="coal_power", province_code="130000", city_code="130200")
    e4 = make_enterprise("Jinan power", industry="coal_power", province_code="370000", city_code="370100")
    rows = [
        # rate 60 / (100 + 10): 10 t of the 40 sent out came from prior-year stock
        row("e1", "fly_ash", "2025-01", generated_t="100", utilised_in_house_t="20", sent_for_utilisation_t="40",
            sent_for_utilisation_prior_stock_t="10", stored_t="50"),
        row("e1", "fly_ash", "2025-03"),  # filed, nothing generated: "no data", not 0%
        row("e2", "steel_slag", "2025-01", generated_t="200", sent_for_utilisation_t="150", stored_t="50"),
        row("e3", "fly_ash", "2025-02", generated_t="50", stored_t="50"),
        row("e3", "waste_plastics", "2025-02", generated_t="10", sent_for_utilisation_t="10"),
        row("e4", "fly_ash", "2025-01", generated_t="1000", sent_for_utilisation_t="1000"),
        row("e4", "fly_ash", "2024-06", generated_t="800", sent_for_utilisation_t="400", stored_t="400"),
    ]  # fmt: skip
    ids = {"e1": e1.id, "e2": e2.id, "e3": e3.id, "e4": e4.id}
    import_demo_ledgers(session, rows, ids)  # type: ignore[arg-type]
    return World(park, e1, e2, e3, e4)
