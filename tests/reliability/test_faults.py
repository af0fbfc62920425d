"""Fault injection, the fast variants (the long ones are `make reliability`, see docs/reliability.md).

- A round's worker is SIGKILLed at random points (5 times, a forked worker): no partial round, the database
  intact, and after recovery (reap, retry) the same result as a clean run.
- The database is unreachable (a PostgreSQL URL with nobody listening): every request answers 503 with a clear
  message and Retry-After, quickly, whether it fails in a route or in the idempotency middleware; never a 500.
- SQLite read-only and SQLite full: a write answers 503 (read-only) or 507 (full) with a message saying so, the
  CLI exits non-zero with the same sentence, reads keep working, nothing is corrupted and earlier data is intact.
- SQLite runs in WAL mode with synchronous=NORMAL on every connection.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from exchange.accounts.models import Role
from exchange.app import create_app
from exchange.core import db as core_db
from exchange.settings import Settings
from scripts.reliability import kill_worker

PG_URL = os.environ.get("EXCHANGE_TEST_DATABASE_URL")
sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="an SQLite file fault")
NOTES = "灰渣" * 1000  # 2,000 characters: a listing that takes room


# ---------------------------------------------------------------------------------------------- helpers


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def sqlite_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def integrity(path: Path) -> tuple[str, int]:
    """PRAGMA integrity_check and the number of foreign-key violations, on a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        fk_violations = len(conn.execute("PRAGMA foreign_key_check").fetchall())
    finally:
        conn.close()
    return str(check), fk_violations


def listing_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM listing").fetchone()[0])
    finally:
        conn.close()


def listing_body(n: int) -> dict[str, Any]:
    return {"kind": "supply", "material_code": "fly_ash", "quantity_t": str(100 + n), "notes": NOTES}


@pytest.fixture
def member_headers(make_enterprise: Any, make_user: Any, token_for: Any) -> dict[str, str]:
    """An approved enterprise's member with an API token (a client that can post listings)."""
    user = make_user(Role.ENTERPRISE, enterprise=make_enterprise("邯郸热电"))
    headers: dict[str, str] = token_for(user)
    return headers


@pytest.fixture
def app_on(settings: Settings) -> Iterator[Callable[[str], FastAPI]]:
    """The app on another URL for the same data (read-only, unreachable); its engine is disposed afterwards."""
    urls: list[str] = []

    def make(url: str) -> FastAPI:
        urls.append(url)
        return create_app(settings.model_copy(update={"database_url": url}))

    yield make
    for url in urls:
        engine = core_db._engines.pop(url, None)
        if engine is not None:
            engine.dispose()


def assert_fault(response: Any, status: int, error: str, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and words in body["detail"], body


# ---------------------------------------------------------------------------------------------- unreachable


def test_an_unreachable_database_answers_503_with_a_clear_message_never_500_and_never_hangs(
    app_on: Callable[[str], FastAPI],
) -> None:
    url = f"postgresql+psycopg://exchange@127.0.0.1:{closed_port()}/exchange?connect_timeout=3"
    bearer = {"Authorization": "Bearer not-checked-the-database-is-down"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/healthz", {}),
        ("GET", "/api/v1/listings", {}),
        ("GET", "/api/v1/listings", {"headers": bearer}),
        ("GET", "/listings", {"headers": {"Accept": "text/html"}}),
        ("POST", "/api/v1/auth/login", {"json": {"email": "a@example.cn", "password": "correct-horse-42"}}),
        ("POST", "/api/v1/listings", {"json": listing_body(1), "headers": bearer}),
        # The idempotency middleware reaches the database before the route: it must answer 503 too.
        ("POST", "/api/v1/listings", {"json": listing_body(1), "headers": {**bearer, "Idempotency-Key": "k-1"}}),
    ]
    with TestClient(app_on(url), raise_server_exceptions=False) as client:
        for method, path, kwargs in requests:
            started = time.monotonic()
            response = client.request(method, path, **kwargs)
            elapsed_s = time.monotonic() - started
            assert_fault(response, 503, "service_unavailable", "the database is unavailable; please retry")
            assert response.headers["Retry-After"] == "5", (method, path)
            assert elapsed_s < 10, f"{method} {path} took {elapsed_s:.1f} s"


# ---------------------------------------------------------------------------------------------- SQLite


@sqlite_only
def test_sqlite_runs_in_wal_mode_with_synchronous_normal(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


@sqlite_only
def test_a_read_only_sqlite_database_refuses_writes_clearly_and_keeps_serving_reads(
    client: TestClient,
    settings: Settings,
    member_headers: dict[str, str],
    app_on: Callable[[str], FastAPI],
) -> None:
    created = [client.post("/api/v1/listings", json=listing_body(n), headers=member_headers) for n in range(3)]
    assert [r.status_code for r in created] == [201, 201, 201]
    path = sqlite_path(settings)

    # The same file opened read-only, as after `chmod a-w` or a read-only remount.
    read_only = app_on(f"sqlite:///file:{path}?mode=ro&uri=true")
    with TestClient(read_only, raise_server_exceptions=False) as ro:
        listed = ro.get("/api/v1/listings", headers=member_headers)
        assert listed.status_code == 200 and listed.json()["total"] == 3
        plain = ro.post("/api/v1/listings", json=listing_body(9), headers=member_headers)
        keyed = ro.post("/api/v1/listings", json=listing_body(9), headers={**member_headers, "Idempotency-Key": "k"})
    for response in (plain, keyed):
        assert_fault(response, 503, "database_read_only", "read-only")
        assert response.headers["Retry-After"] == "60"

    assert integrity(path) == ("ok", 0)
    assert listing_count(path) == 3
    again = client.post("/api/v1/listings", json=listing_body(4), headers=member_headers)
    assert again.status_code == 201, "writable again: the writes work without any repair"


@sqlite_only
def test_a_full_sqlite_disk_refuses_writes_with_507_and_corrupts_nothing(
    app: FastAPI, settings: Settings, member_headers: dict[str, str]
) -> None:
    """`PRAGMA max_page_count` caps the file a few pages above its size: SQLite then fails exactly as on a full
    disk (SQLITE_FULL). (`make reliability` also fills a real tiny filesystem.)"""
    engine: Engine = app.state.engine
    engine.dispose()
    headroom_pages = 16

    def cap(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={pages + headroom_pages}")
        cur.close()

    event.listen(engine, "connect", cap)
    saved = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        for n in range(400):
            response = client.post("/api/v1/listings", json=listing_body(n), headers=member_headers)
            if response.status_code != 201:
                break
            saved += 1
        assert_fault(response, 507, "storage_full", "disk is full")
        keyed = client.post(
            "/api/v1/listings", json=listing_body(0), headers={**member_headers, "Idempotency-Key": "full-1"}
        )
        assert_fault(keyed, 507, "storage_full", "disk is full")
        assert client.get("/api/v1/listings", headers=member_headers).json()["total"] == saved
    assert saved > 0

    path = sqlite_path(settings)
    assert integrity(path) == ("ok", 0)
    assert listing_count(path) == saved, "every answered write is there, the refused one is not"

    # Space freed (the cap lifted): writes work again without any repair.
    event.remove(engine, "connect", cap)
    engine.dispose()
    with TestClient(app) as client:
        assert client.post("/api/v1/listings", json=listing_body(1), headers=member_headers).status_code == 201
    assert listing_count(path) == saved + 1


@sqlite_only
def test_the_cli_exits_non_zero_with_the_reason_when_the_database_is_read_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exchange import cli

    path = sqlite_path(settings)
    read_only = settings.model_copy(update={"database_url": f"sqlite:///file:{path}?mode=ro&uri=true"})
    monkeypatch.setattr(cli, "get_settings", lambda: read_only)
    try:
        code = cli.main(["create-admin", "root@example.cn", "correct-horse-42"])
    finally:
        engine = core_db._engines.pop(read_only.database_url, None)
        if engine is not None:
            engine.dispose()
    assert code != 0
    assert "read-only" in capsys.readouterr().err
    assert integrity(path) == ("ok", 0)


# ---------------------------------------------------------------------------------------------- kill a worker


def test_killing_a_round_worker_at_random_points_leaves_no_partial_round_and_a_retry_gives_the_clean_result(
    database_url: str,
) -> None:
    """The fast variant of `scripts/reliability/kill_worker.py` (200 kills per database, a real `exchange worker`):
    5 kills of a forked worker over the demo region, half of them aimed at the transaction writing the results."""
    figures = kill_worker.campaign(
        "postgresql" if PG_URL else "sqlite", iterations=5, worker="fork", seed=7, url=database_url, full_check_every=5
    )
    assert figures.ok, figures.failures
    assert (figures.iterations, figures.partial_runs, figures.integrity_failures) == (5, 0, 0)
    assert figures.identical_results == 5
    assert sum(figures.killed_at.values()) == 5
