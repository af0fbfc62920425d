"""Fixtures that give each test a clean, migrated database: SQLite by default, PostgreSQL when
EXCHANGE_TEST_DATABASE_URL is set (as `.ci/run` does for its second pass).

SQLite: migrations run once into a template file; each test gets its own copy (real file, WAL, several
connections — like production). PostgreSQL: migrations run once into the schema named in the URL; each test
truncates every table afterwards. Both give real commits, so services that commit behave as in production.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from exchange.core import db as core_db
from exchange.core.migrate import upgrade
from exchange.models import load_all_models
from exchange.settings import Settings

PG_URL = os.environ.get("EXCHANGE_TEST_DATABASE_URL")


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (a fresh copy per test)'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


def _truncate_all(engine: Engine) -> None:
    tables = [t.name for t in load_all_models().metadata.sorted_tables]
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        yield PG_URL
        _truncate_all(core_db.get_engine(PG_URL))
        return
    path = tmp_path / "exchange.db"
    shutil.copyfile(migrated_template, path)
    url = f"sqlite:///{path}"
    yield url
    engine = core_db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        upload_dir=tmp_path / "uploads",
        secret_key="test-secret",
        redis_url=None,
        stats_cache_seconds=0,  # tests check that figures move after a write; tests/exchange/stats covers the cache
    )


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return core_db.get_engine(settings.database_url)


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """The test's own session for arranging data and checking results.

    Autocommit: each statement commits at once and the session never holds a lock or an old snapshot while
    the app under test runs (objects loaded earlier still need `session.refresh(obj)` to see the app's changes).
    """
    test_engine = core_db.make_engine(settings.database_url, autocommit=True)
    with Session(test_engine, expire_on_commit=False) as s:
        yield s
    test_engine.dispose()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    from exchange.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


from tests.factories import *  # noqa: E402,F403  (factory fixtures shared by every test package)
