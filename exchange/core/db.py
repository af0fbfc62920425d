"""Engine, sessions and transaction helpers for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from exchange.core.errors import NotFound

T = TypeVar("T", bound=SQLModel)

_engines: dict[str, Engine] = {}


def utcnow() -> datetime:
    """Aware UTC timestamp (SQLModel stores it as UTC on SQLite and as timestamptz on PostgreSQL)."""
    return datetime.now(UTC)


def enum_type(enum_cls: type[enum.Enum]) -> sa.Enum:
    """Enums stored as short strings with a CHECK, never as native PostgreSQL enum types (easy migrations)."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "sqlite"


def make_engine(url: str, *, autocommit: bool = False) -> Engine:
    """The engine for a database URL.

    `autocommit=True` is for tests and inspection tools: every statement commits by itself and no session ever
    holds SQLite's write lock between statements (an open BEGIN IMMEDIATE would block the app under test).
    """
    if url.startswith("sqlite"):
        # Pools sized above the requests let in at once (core/inflight.py) times the two connections one may hold.
        in_memory = sa.engine.make_url(url).database in (None, "", ":memory:")
        pool = {} if in_memory else {"pool_size": 20, "max_overflow": 20}
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        _configure_sqlite(engine, begin_immediate=not autocommit)
        return engine
    if autocommit:
        return sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)


def _configure_sqlite(engine: Engine, *, begin_immediate: bool = True) -> None:
    """Foreign keys on, WAL journal, and every transaction begins IMMEDIATE.

    BEGIN IMMEDIATE takes the write lock at the start, so two writers never deadlock on a lock upgrade
    (SQLITE_BUSY mid-transaction); readers are not blocked in WAL mode. synchronous=NORMAL in WAL mode is
    durable against application crashes; a power loss may lose the last transactions but never corrupts.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if ":memory:" not in str(engine.url):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    if begin_immediate:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(url: str) -> Engine:
    """One engine per URL per process."""
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for the CLI and workers; services commit themselves, this only closes (and rolls back)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


def get_or_404(session: Session, model: type[T], ident: int, what: str | None = None) -> T:
    obj = session.get(model, ident)
    if obj is None:
        raise NotFound(f"{what or model.__name__.lower()} {ident} does not exist")
    return obj


def get_for_update(session: Session, model: type[T], ident: int, what: str | None = None) -> T:
    """Load a row and lock it for the rest of the transaction.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite: the transaction already holds the database write lock
    (BEGIN IMMEDIATE), which is stronger than a row lock.
    """
    pk = sa.inspect(model).primary_key[0]
    stmt = select(model).where(pk == ident).with_for_update().execution_options(populate_existing=True)
    obj = session.exec(stmt).first()
    if obj is None:
        raise NotFound(f"{what or model.__name__.lower()} {ident} does not exist")
    return obj
