from __future__ import annotations

from sqlmodel import Session, func, select

from exchange.demo.generate import LedgerRow
from exchange.ledgers.models import LedgerEntry, LedgerSource
from exchange.ledgers.service import import_demo_ledgers


def _row(key: str, material: str, period: str, gen: str, sent: str, stored: str) -> LedgerRow:
    from decimal import Decimal as D

    z = D("0")
    return LedgerRow(key, material, period, D(gen), z, z, D(sent), z, z, z, D(stored), z)


def test_demo_rows_are_bulk_inserted_with_the_enterprise_copied_onto_them(
    session: Session, make_park, make_enterprise
) -> None:  # type: ignore[no-untyped-def]
    park = make_park()
    ent = make_enterprise(park=park, industry="coal_power", province_code="130000", city_code="130400")
    rows = [_row("e1", "fly_ash", f"2025-{m:02d}", "100.5", "60.25", "40.25") for m in range(1, 4)]
    assert import_demo_ledgers(session, rows, {"e1": ent.id}) == 3
    assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == 3
    first = session.exec(select(LedgerEntry).where(LedgerEntry.period == "2025-01")).one()
    assert (first.generated_kg, first.sent_for_utilisation_kg, first.stored_kg) == (100_500, 60_250, 40_250)
    assert (first.province_code, first.city_code, first.park_id, first.industry) == (
        "130000",
        "130400",
        park.id,
        "coal_power",
    )
    assert first.category == "fly_ash" and first.counts_toward_bulk_target and first.source is LedgerSource.DEMO
