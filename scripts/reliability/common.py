"""Shared pieces of the fault-injection scripts: scratch databases (an SQLite file, or a PostgreSQL schema of its
own that is dropped afterwards), the demo region as the instance, and the integrity checks run after every fault.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's bin/: `exchange`, `uvicorn`
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def scratch_database(kind: str, pg_url: str = DEFAULT_PG_URL, tag: str = "rel") -> Iterator[str]:
    """A migrated, empty database: an SQLite file in a temporary directory, or a PostgreSQL schema of its own in
    the database of `pg_url` (created here, dropped afterwards). Yields its URL."""
    from exchange.core.migrate import upgrade

    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"{tag}-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'exchange.db'}"
            upgrade(url)
            yield url
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r} (sqlite or postgresql)")
    schema = f"{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # No pool: a connection kept from the CREATE would be dead after a PostgreSQL restart, failing the DROP.
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options={quote(f'-csearch_path={schema}')}"
        upgrade(url)
        yield url
    finally:
        from exchange.core import db as core_db

        for key in [k for k in core_db._engines if schema in k]:
            core_db._engines.pop(key).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def load_demo_region(url: str, seed: int = 2026) -> str:
    """The generated demo region (12 parks, 291 enterprises, 826 listings): the instance the rounds run over."""
    from exchange.core.db import make_engine, session_scope
    from exchange.demo.load import load_demo

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            report = load_demo(session, seed=seed)
    finally:
        engine.dispose()
    return str(report)


def sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    if path.startswith("file:"):
        path = path.removeprefix("file:").split("?", 1)[0]
    return Path(path)


@dataclass
class IntegrityReport:
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_integrity(engine: Engine, *, full: bool = True) -> IntegrityReport:
    """The database as a whole: the engine's own check (SQLite `integrity_check` — `quick_check` when not `full` —
    and `foreign_key_check`; PostgreSQL: every constraint validated), and the business invariants the schema
    states as CHECK constraints, re-checked by query: 0 ≤ allocated ≤ quantity on listings, deliveries within
    agreements."""
    started = time.perf_counter()
    report = IntegrityReport()
    path = sqlite_file(str(engine.url))
    if path is not None:
        lite = sqlite3.connect(path)
        try:
            pragma = "integrity_check" if full else "quick_check"
            rows = [r[0] for r in lite.execute(f"PRAGMA {pragma}")]
            if rows != ["ok"]:
                report.problems.append(f"PRAGMA {pragma}: {'; '.join(map(str, rows[:5]))}")
            fk = lite.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                report.problems.append(f"{len(fk)} foreign-key violation(s), first {fk[0]}")
        finally:
            lite.close()
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            unvalidated = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = current_schema() AND NOT c.convalidated"
            ).scalar_one()
            if unvalidated:
                report.problems.append(f"{unvalidated} constraint(s) not validated")
        over = conn.exec_driver_sql(
            "SELECT count(*) FROM listing WHERE allocated_kg < 0 OR allocated_kg > quantity_kg"
        ).scalar_one()
        if over:
            report.problems.append(f"{over} listing(s) with allocated outside 0..quantity")
        delivered = conn.exec_driver_sql(
            "SELECT count(*) FROM agreement WHERE delivered_kg < 0 OR delivered_kg > quantity_kg"
        ).scalar_one()
        if delivered:
            report.problems.append(f"{delivered} agreement(s) delivered outside 0..quantity")
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def no_thread_worker() -> Iterator[None]:
    """Runs queued for the in-process backend wait for the script (`solving.run_pending`) instead of a
    background thread."""
    from exchange.rounds import jobs

    real = jobs.ensure_thread_worker
    jobs.ensure_thread_worker = lambda engine, settings: None
    try:
        yield
    finally:
        jobs.ensure_thread_worker = real


def as_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data: dict[str, Any] = asdict(obj)
    return data
