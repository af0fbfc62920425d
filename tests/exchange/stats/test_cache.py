"""The statistics cache: each scope, period and jurisdiction computed once per lifetime, never served to a viewer
of another scope, recomputed when the lifetime is over; off when the lifetime is 0."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session

from exchange.accounts.models import Role
from exchange.settings import Settings
from exchange.stats.cache import FigureCache
from tests.exchange.stats.conftest import World, row

YEAR = {"period_from": "2025-01", "period_to": "2025-12"}


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_figures_are_computed_once_per_lifetime_and_per_key() -> None:
    clock, calls = Clock(), []
    cache = FigureCache(30, timer=clock)

    def compute(key: str) -> str:
        calls.append(key)
        return f"figures of {key} #{len(calls)}"

    assert cache.get("a", lambda: compute("a")) == "figures of a #1"
    assert cache.get("a", lambda: compute("a")) == "figures of a #1"
    assert cache.get("b", lambda: compute("b")) == "figures of b #2"
    clock.now_s = 29.9
    assert cache.get("a", lambda: compute("a")) == "figures of a #1"
    clock.now_s = 30.1
    assert cache.get("a", lambda: compute("a")) == "figures of a #3"
    assert calls == ["a", "b", "a"]


def test_a_lifetime_of_zero_computes_every_time() -> None:
    cache, calls = FigureCache(0), []
    for _ in range(3):
        cache.get("a", lambda: calls.append(1) or len(calls))
    assert len(calls) == 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"stats_cache_seconds": 60})


def _statements(client: TestClient) -> list[str]:
    seen: list[str] = []
    event.listen(client.app.state.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))  # type: ignore[attr-defined]
    return seen


def test_the_dashboard_is_reused_within_its_lifetime_and_only_for_the_same_jurisdiction(
    client: TestClient, world: World, make_user: Any, token_for: Any, session: Session
) -> None:
    handan = token_for(make_user(Role.REGULATOR, region_code="130400"))
    shandong = token_for(make_user(Role.REGULATOR, region_code="370000"))
    first = client.get("/api/v1/stats/dashboard", params=YEAR, headers=handan)
    assert first.json()["kpis"]["generated_t"] == "300.000"

    statements = _statements(client)
    again = client.get("/api/v1/stats/dashboard", params=YEAR, headers=handan)
    assert again.json() == first.json()
    reused = len(statements)
    statements.clear()
    other = client.get("/api/v1/stats/dashboard", params=YEAR, headers=shandong)
    assert other.json()["kpis"]["generated_t"] == "1000.000"  # its own figures, not Handan's stored ones
    assert reused < len(statements) / 2  # the stored dashboard skipped the aggregate queries

    from exchange.ledgers.service import import_demo_ledgers

    import_demo_ledgers(session, [row("e2", "steel_slag", "2025-02", generated_t="5")], {"e2": world.e2.id})
    stored = client.get("/api/v1/stats/dashboard", params=YEAR, headers=handan)
    assert stored.json()["kpis"]["generated_t"] == "300.000"  # within the lifetime: the stored figures
    client.app.state.stats_cache.clear()  # type: ignore[attr-defined]
    fresh = client.get("/api/v1/stats/dashboard", params=YEAR, headers=handan)
    assert fresh.json()["kpis"]["generated_t"] == "305.000"


def test_the_public_table_is_reused_by_the_api_and_the_page(client: TestClient, world: World) -> None:
    statements = _statements(client)
    api = client.get("/api/v1/public/stats", params={"year": 2025})
    assert api.status_code == 200
    computed = len(statements)
    statements.clear()
    assert client.get("/api/v1/public/stats", params={"year": 2025}).json() == api.json()
    assert client.get("/public/stats", params={"year": 2025}).status_code == 200
    assert computed >= 4 and len(statements) == 0  # the table's aggregates ran once, for the first request
