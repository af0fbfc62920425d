"""A regulator sees their own region only, on the pages as through the API; figures of the regions around it are
shown only when what they add cannot identify an enterprise outside the viewer's jurisdiction."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role
from exchange.ledgers.models import LedgerEntry
from tests.exchange.stats.conftest import World
from tests.factories import login

YEAR_2025 = {"period_from": "2025-01", "period_to": "2025-12"}
HEBEI_NAMES = ("Handan power", "Handan steel", "Tangshan power")


@pytest.fixture
def shandong_client(client: TestClient, world: World, make_user: Any) -> TestClient:
    login(client, make_user(Role.REGULATOR, region_code="370000"))
    return client


@pytest.mark.parametrize("query", [{"region": "130000"}, {"region": "130400"}, {"region": "110000"}, "park"])
def test_the_dashboard_page_refuses_another_province(
    shandong_client: TestClient, world: World, query: dict[str, str] | str
) -> None:
    params = {"park_id": str(world.park.id)} if query == "park" else query
    r = shandong_client.get("/stats", params={**YEAR_2025, **params})  # type: ignore[dict-item]
    assert r.status_code == 403
    assert "360" not in r.text and not any(n in r.text for n in HEBEI_NAMES)


def test_the_dashboard_page_shows_the_own_province_only(shandong_client: TestClient) -> None:
    r = shandong_client.get("/stats", params=YEAR_2025)
    assert r.status_code == 200
    assert "1,000 t" in r.text  # Jinan's generation
    assert not any(n in r.text for n in HEBEI_NAMES)
    assert 'data-map-province="370000"' in r.text


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
@pytest.mark.parametrize("table", ["kpis", "materials", "laggards_enterprise", "regions", "flows"])
def test_exports_of_another_province_are_refused(
    client: TestClient, world: World, make_user: Any, token_for: Any, table: str, fmt: str
) -> None:
    shandong = token_for(make_user(Role.REGULATOR, region_code="370000"))
    r = client.get(
        f"/api/v1/stats/tables/{table}", params={**YEAR_2025, "region": "130000", "format": fmt}, headers=shandong
    )
    assert r.status_code == 403


def test_ledgers_of_another_province_are_neither_listed_nor_shown(
    shandong_client: TestClient, session: Session, world: World
) -> None:
    listed = shandong_client.get("/ledgers")
    assert listed.status_code == 200
    assert "Jinan power" in listed.text and not any(n in listed.text for n in HEBEI_NAMES)
    hebei_entry = session.exec(select(LedgerEntry).where(LedgerEntry.enterprise_id == world.e2.id)).first()
    assert hebei_entry is not None
    assert shandong_client.get(f"/ledgers/{hebei_entry.id}").status_code == 404
    assert shandong_client.get(f"/api/v1/ledgers/{hebei_entry.id}/history").status_code == 404
    rows = shandong_client.get("/api/v1/ledgers", params={"enterprise_id": world.e2.id}).json()
    assert rows == []


def test_a_city_regulator_sees_the_province_only_when_it_hides_no_enterprise(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    """Handan's regulator knows Handan (e1, e2). Hebei minus Handan is Tangshan's single enterprise, and China
    minus Handan is two enterprises: both are withheld, on the API and on the page."""
    handan = make_user(Role.REGULATOR, region_code="130400")
    ctx = client.get("/api/v1/stats/dashboard", params=YEAR_2025, headers=token_for(handan)).json()["tables"]
    rows = {r["level"]: r for r in ctx["context"]}
    assert set(rows) == {"province", "national"}
    for r in rows.values():
        assert not r["inside_jurisdiction"] and r["status"] == "primary"
        assert r["generated_t"] is None and r["utilised_t"] is None and r["utilisation_rate"] is None
    login(client, handan)
    page = client.get("/stats", params=YEAR_2025)
    assert 'id="context-note"' in page.text and 'data-status="primary"' in page.text
    assert "350.000" not in page.text  # Hebei's bulk generation
    assert "Tangshan power" not in page.text


def test_a_province_regulator_narrowing_to_a_city_sees_the_province_as_is(
    client: TestClient, world: World, make_user: Any, token_for: Any
) -> None:
    hebei = token_for(make_user(Role.REGULATOR, region_code="130000"))
    d = client.get("/api/v1/stats/dashboard", params={**YEAR_2025, "region": "130200"}, headers=hebei).json()
    rows = {r["level"]: r for r in d["tables"]["context"]}
    assert rows["province"]["inside_jurisdiction"] and rows["province"]["status"] == "published"
    assert rows["province"]["generated_t"] == "350.000"
    # China minus Hebei is Jinan alone: withheld
    assert not rows["national"]["inside_jurisdiction"] and rows["national"]["status"] == "primary"
