"""The public page: no login, disclosure control applied to every cell, complements where totals would tell."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.exchange.stats.conftest import World


def cells(client: TestClient) -> dict[tuple[str, str], dict[str, object]]:
    r = client.get("/api/v1/public/stats", params={"year": 2025})
    assert r.status_code == 200, r.text
    return {(row["province_code"], row["material_code"]): row for row in r.json()["rows"]}


def test_small_and_dominated_cells_are_suppressed_and_their_complements_too(client: TestClient, world: World) -> None:
    c = cells(client)
    assert c[("130000", "fly_ash")]["status"] == "primary"  # two enterprises
    assert c[("370000", "fly_ash")]["status"] == "primary"  # one enterprise
    assert c[("", "fly_ash")]["status"] == "primary"  # Jinan makes up 1000 of 1150 t: 87% > 85%
    # The grand total (4 enterprises, the largest 74%) passes the rule by itself, but Hebei's regulator knows
    # Hebei: the grand total minus Hebei is Jinan alone. So it is withheld too, and with it everything.
    assert c[("", "")]["status"] == "primary"
    assert {row["status"] for row in c.values()} <= {"primary", "secondary", "empty"}
    for row in c.values():
        if row["status"] != "published":
            assert row["generated_t"] is None and row["utilised_t"] is None and row["utilisation_rate"] is None


def test_the_public_page_needs_no_login_and_shows_dashes_with_a_note(client: TestClient, world: World) -> None:
    page = client.get("/public/stats?year=2025")
    assert page.status_code == 200
    assert 'id="disclosure-note"' in page.text and 'data-status="primary"' in page.text
    assert "1,000" not in page.text  # Jinan's own generation appears nowhere
    assert "综合利用率 = 综合利用量 ÷ (产生量 + 综合利用往年贮存量) × 100%" in page.text
    csv_text = client.get("/api/v1/public/stats?year=2025&format=csv").text
    assert "1000.000" not in csv_text
