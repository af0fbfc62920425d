"""Benchmark of the dashboard queries at national scale: ``python -m exchange.stats.bench [--scale 0.1]``.

Loads the demo generator's synthetic stream (default 50,000 enterprises × 24 months) into a fresh SQLite file
and into a PostgreSQL schema of its own in database ``test`` on 127.0.0.1:5432 (dropped afterwards), then times
the dashboard's queries (national and one province) and the public page's protected table. Each time is also
printed as a ratio to a plain ``SELECT count(*)`` over the ledger table measured in the same run, so figures
from different machines compare.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from exchange.core.db import make_engine
from exchange.core.migrate import upgrade
from exchange.demo.generate import LedgerRow, SyntheticEnterprise, generate_synthetic
from exchange.ledgers.models import FIGURES
from exchange.reference.catalogue import load_catalogue
from exchange.stats import service

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LEDGER_COLUMNS = [
    "enterprise_id",
    "material_code",
    "period",
    "year",
    "category",
    "counts_toward_bulk_target",
    "province_code",
    "city_code",
    "park_id",
    "industry",
    "version",
    "source",
    "filed_at",
] + [f"{f}_kg" for f in FIGURES]


def _kg(t: Any) -> int:
    return int(t * 1000)


def stream(n_enterprises: int, months: int, seed: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """('enterprise', row) and ('ledger', row) tuples in table column order; enterprise ids are 1..n."""
    cat = load_catalogue()
    cats = {m.code: (m.bulk_category or m.group, m.counts_toward_bulk_target) for m in cat.materials}
    ids: dict[str, tuple[int, str, str, str]] = {}
    for item in generate_synthetic(n_enterprises, months, seed):
        if isinstance(item, SyntheticEnterprise):
            eid = len(ids) + 1
            ids[item.key] = (eid, item.province_code, item.city_code, item.industry)
            yield (
                "enterprise",
                (eid, f"synthetic {item.key}", item.uscc, item.industry, "synthetic", item.lat, item.lon,
                 item.province_code, item.city_code, "approved", "[]"),
            )  # fmt: skip
        else:
            assert isinstance(item, LedgerRow)
            eid, prov, city, industry = ids[item.enterprise_key]
            category, bulk = cats[item.material]
            yield (
                "ledger",
                (eid, item.material, item.period, int(item.period[:4]), category, bulk, prov, city, None, industry,
                 1, "demo", "2026-01-01T00:00:00+00:00", *(_kg(getattr(item, f"{f}_t")) for f in FIGURES)),
            )  # fmt: skip


ENTERPRISE_COLUMNS = [
    "id",
    "name",
    "uscc",
    "industry",
    "address",
    "lat",
    "lon",
    "province_code",
    "city_code",
    "status",
    "permits",
]  # the NOT NULL ones plus regions


def load(engine: sa.Engine, n: int, months: int, seed: int) -> int:
    """Bulk load: COPY on PostgreSQL, executemany in large batches on SQLite. Returns the ledger row count."""
    rows = 0
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur: Any = raw.cursor()
            ent_copy = f"COPY enterprise ({', '.join(ENTERPRISE_COLUMNS)}, created_at) FROM STDIN"
            led_copy = f"COPY ledger_entry ({', '.join(LEDGER_COLUMNS)}) FROM STDIN"
            ents: list[tuple[Any, ...]] = []
            leds: list[tuple[Any, ...]] = []

            def flush() -> None:  # enterprises first: the ledger rows' foreign key is checked as they arrive
                with cur.copy(ent_copy) as copy:
                    for rec in ents:
                        copy.write_row(rec)
                with cur.copy(led_copy) as copy:
                    for rec in leds:
                        copy.write_row(rec)
                ents.clear()
                leds.clear()

            for kind, rec in stream(n, months, seed):
                if kind == "enterprise":
                    ents.append((*rec, "2026-01-01T00:00:00+00:00"))
                else:
                    leds.append(rec)
                    rows += 1
                    if len(leds) >= 100_000:
                        flush()
            flush()
            raw.commit()
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
        return rows
    marks = ", ".join("?" * (len(ENTERPRISE_COLUMNS) + 1))
    ent_sql = f"INSERT INTO enterprise ({', '.join(ENTERPRISE_COLUMNS)}, created_at) VALUES ({marks})"
    led_sql = f"INSERT INTO ledger_entry ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join('?' * len(LEDGER_COLUMNS))})"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.execute("BEGIN")
        ents, leds = [], []
        for kind, rec in stream(n, months, seed):
            if kind == "enterprise":
                ents.append((*rec, "2026-01-01 00:00:00"))
            else:
                leds.append(tuple(int(v) if isinstance(v, bool) else v for v in rec))
                rows += 1
                if len(leds) >= 50_000:
                    cur.executemany(ent_sql, ents)
                    cur.executemany(led_sql, leds)
                    ents.clear()
                    leds.clear()
        cur.executemany(ent_sql, ents)
        cur.executemany(led_sql, leds)
        cur.execute("COMMIT")
        cur.execute("ANALYZE")
    finally:
        raw.close()
    return rows


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Median wall time in milliseconds (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def queries(session: Session, period: service.Period) -> list[tuple[str, Callable[[], Any]]]:
    out: list[tuple[str, Callable[[], Any]]] = []
    for label, scope in (
        ("national", service.Scope("national")),
        ("province 370000", service.Scope("province", "370000")),
    ):

        def bind(fn: Callable[..., Any], *args: Any, s: service.Scope = scope, **kw: Any) -> Callable[[], Any]:
            return lambda: fn(session, s, period, *args, **kw)

        out += [
            (f"{label}: totals (all)", bind(service.totals)),
            (f"{label}: totals (bulk)", bind(service.totals, bulk_only=True)),
            (f"{label}: by material", bind(service.by_material)),
            (f"{label}: by category", bind(service.by_category)),
            (f"{label}: trend by month", bind(service.trend, "month")),
            (f"{label}: trend by year", bind(service.trend, "year")),
            (f"{label}: map by region", bind(service.by_region)),
            (f"{label}: laggard cities", bind(service.laggards, "city")),
            (f"{label}: laggard enterprises", bind(service.laggards, "enterprise")),
            (f"{label}: stranded materials", bind(service.stranded)),
            (f"{label}: whole dashboard (all queries)", bind(service.dashboard)),
        ]
    out.append(("public: protected province × material table", lambda: service.public_table(session, period)))
    return out


def run(engine: sa.Engine, label: str, n: int, months: int, seed: int) -> None:
    upgrade(str(engine.url.render_as_string(hide_password=False)))
    t0 = time.perf_counter()
    rows = load(engine, n, months, seed)
    load_s = time.perf_counter() - t0
    print(f"\n== {label}: {n:,} enterprises × {months} months = {rows:,} ledger rows (loaded in {load_s:.1f} s)")
    with Session(engine) as session:
        ref = timed(lambda: session.execute(sa.text("SELECT count(*) FROM ledger_entry")).scalar_one())
        latest = session.execute(sa.text("SELECT max(period) FROM ledger_entry")).scalar_one()
        period = service.Period(latest[:4] + "-01", latest[:4] + "-12")
        print(f"reference SELECT count(*) over ledger_entry: {ref:8.1f} ms   (period {period.start}..{period.end})")
        print(f"{'query':52} {'ms':>9} {'× count(*)':>11}")
        for name, fn in queries(session, period):
            ms = timed(fn)
            print(f"{name:52} {ms:9.1f} {ms / ref:11.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 50,000 enterprises (e.g. 0.1)")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    n = max(10, int(50_000 * args.scale))
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}", autocommit=True)
            try:
                run(engine, "SQLite", n, args.months, args.seed)
            finally:
                engine.dispose()
    if not args.skip_postgres:
        schema = f"bench_stats_{int(time.time())}"
        admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
        engine = make_engine(url, autocommit=True)
        try:
            run(engine, "PostgreSQL", n, args.months, args.seed)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()


if __name__ == "__main__":
    main()
