"""Concurrent accepts on one supply listing: no tonne lost or allocated twice (issue 7), run after run.

    .venv/bin/python scripts/reliability/concurrent_accepts.py [--runs 100] [--accepts 50]
        [--databases sqlite,postgresql] [--pg-workers 2] [--json FILE]

Each database is a scratch one (an SQLite file in WAL mode; a PostgreSQL schema of its own in the database of
--pg-url, dropped afterwards) holding a small park: a producer, ten consumers (each a member with an API token)
and a solved round. The app is served as in production, `exchange serve` on a free loopback port: one worker
process on SQLite (the default server), --pg-workers processes on PostgreSQL (several processes, each with its
own connection pool, answering the same clients). The rate limit is switched off for it (the 50 clients are one
address).

Each run:

1. sets up, directly in the database with the app's models, a new 100 t supply listing and --accepts proposals
   of 7 t on it (each with a demand listing of its own), which together exceed it; the supplier has accepted
   every proposal, so each consumer's accept is the deciding one;
2. opens one HTTP connection per proposal (a thread each), then releases all the threads at once with a barrier:
   each sends `POST /api/v1/proposals/{id}/accept` with its consumer's token;
3. checks: every request got an answer, 200 or 409, no 5xx; a 200 says the proposal is accepted with an
   agreement; a 409 is a `conflict` with a sentence; exactly the proposals that fit were accepted (100 t // 7 t =
   14, the others refused); in the database allocated ≤ quantity on the supply, allocated = agreements × 7 t,
   the agreements are exactly the accepted proposals, each accepted proposal's demand listing holds its 7 t, and
   every refused proposal is still open, its consumer's answer not recorded, its demand listing untouched; the
   database's integrity check (SQLite quick_check and foreign_key_check; PostgreSQL constraints validated).

Prints a table per database; `--json FILE` writes the figures; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.reliability.common import (  # noqa: E402
    BIN,
    DEFAULT_PG_URL,
    REPO_ROOT,
    as_dict,
    check_integrity,
    free_port,
    log,
    no_thread_worker,
    scratch_database,
    sqlite_file,
)

PERIOD = "2025-06"
SUPPLY_T = 100
EACH_T = 7
CONSUMERS = 10
HANDAN = (36.60, 114.50)
REQUEST_TIMEOUT_S = 120.0


@dataclass
class Figures:
    database: str
    server: str = ""
    worker_processes: int = 0
    journal_mode: str | None = None  # SQLite only
    runs: int = 0
    accepts_per_run: int = 0
    supply_t: int = SUPPLY_T
    each_t: int = EACH_T
    expected_accepted_per_run: int = 0
    accepted: int = 0
    refused: int = 0
    refused_with_message: int = 0
    refusals: dict[str, int] = field(default_factory=dict)  # which check refused: the listing's or the CHECK's
    # Of all the runs' client connections, how many each worker process held (sorted, largest first).
    connections_per_worker: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0  # 5xx
    committed_despite_5xx: int = 0  # accepts answered 5xx whose agreement was nonetheless made (consistently)
    server_log_errors: dict[str, int] = field(default_factory=dict)  # the server's logged errors, by first line
    lost_answers: int = 0  # no HTTP answer at all (timeout, connection error)
    max_allocated_t: float = 0.0
    violations: int = 0  # runs with at least one failed check
    interrupted: bool = False  # stopped (SIGINT, SIGTERM) before all its runs
    failures: list[str] = field(default_factory=list)
    run_s: list[float] = field(default_factory=list)  # barrier released → last answer, per run
    median_run_s: float = 0.0
    p95_run_s: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.violations == 0
            and self.server_errors == 0
            and self.lost_answers == 0
            and self.runs > 0
            and not self.interrupted
        )

    def finish(self) -> None:
        if self.run_s:
            ordered = sorted(self.run_s)
            self.median_run_s = round(statistics.median(ordered), 3)
            self.p95_run_s = round(ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))], 3)

    def table(self) -> str:
        rows = [
            ("database", f"{self.database} ({self.server}, {self.worker_processes} worker process(es))"),
            ("runs", f"{self.runs}{' (interrupted)' if self.interrupted else ''}"),
            (
                "accepts per run",
                f"{self.accepts_per_run} × {self.each_t} t on one {self.supply_t} t supply "
                f"({self.expected_accepted_per_run} fit)",
            ),
            (
                "accepted / refused",
                f"{self.accepted} / {self.refused} (409 with a message: {self.refused_with_message}"
                + "".join(f"; {k} {v}" for k, v in sorted(self.refusals.items()))
                + ")",
            ),
            ("connections per process", " / ".join(map(str, self.connections_per_worker)) or "-"),
            ("max allocated / supply", f"{self.max_allocated_t:g} t / {self.supply_t} t"),
            ("violations", str(self.violations)),
            ("5xx", f"{self.server_errors} (committed nonetheless: {self.committed_despite_5xx})"),
            ("lost answers", str(self.lost_answers)),
            ("time per run", f"median {self.median_run_s:.3f} s, p95 {self.p95_run_s:.3f} s"),
        ]
        if self.journal_mode:
            rows.insert(1, ("SQLite journal mode", self.journal_mode))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


# ---------------------------------------------------------------------------------------------- the world


@dataclass
class World:
    round_id: int
    run_id: int
    producer_id: int
    consumers: list[tuple[int, dict[str, str]]]  # enterprise id, Authorization header of its member's token


@dataclass
class Contest:
    supply_id: int
    proposals: list[tuple[int, int, dict[str, str]]]  # proposal id, its demand listing id, the consumer's headers


def _uscc(n: int) -> str:
    from exchange.reference.uscc import check_character

    first17 = f"91130400MB{n:07d}"[:17]
    return first17 + check_character(first17)


def build_world(engine: Engine, url: str) -> World:
    """A park with its manager, a producer and ten consumers (approved, each with a member holding an API token),
    and a round over the park, solved (the proposals below belong to it, as published ones would)."""
    from exchange.accounts.models import Role, User
    from exchange.accounts.service import create_api_token, hash_password
    from exchange.core.db import session_scope
    from exchange.enterprises.models import Enterprise, EnterpriseStatus
    from exchange.parks.models import Park
    from exchange.rounds import service, solving
    from exchange.rounds.models import RoundCreate, ScopeKind
    from exchange.settings import Settings

    password = hash_password("concurrent-accepts-42")
    with session_scope(engine) as session:
        park = Park(name="并发园区", province_code="130000", city_code="130400", lat=HANDAN[0], lon=HANDAN[1])
        session.add(park)
        session.flush()
        assert park.id is not None

        def member(n: int, name: str, industry: str, lat: float, lon: float) -> tuple[Enterprise, User]:
            ent = Enterprise(
                name=name,
                uscc=_uscc(n),
                industry=industry,
                address="河北省邯郸市",
                park_id=park.id,
                lat=lat,
                lon=lon,
                province_code="130000",
                city_code="130400",
                status=EnterpriseStatus.APPROVED,
                contact_name="Contact",
                contact_phone="0310-0000000",
            )
            session.add(ent)
            session.flush()
            user = User(
                email=f"member{n}@example.com",
                display_name=name,
                password_hash=password,
                role=Role.ENTERPRISE,
                enterprise_id=ent.id,
                locale="en",
            )
            session.add(user)
            session.flush()
            return ent, user

        producer, _ = member(1, "邯郸热电", "coal_power", *HANDAN)
        consumers = []
        for i in range(CONSUMERS):
            ent, user = member(2 + i, f"建材{i + 1}", "cement", HANDAN[0] + 0.01 * (i + 1), HANDAN[1] + 0.01)
            _, raw = create_api_token(session, user, "concurrent accepts")
            assert ent.id is not None
            consumers.append((ent.id, {"Authorization": f"Bearer {raw}"}))
        manager = User(
            email="manager@example.com",
            display_name="Manager",
            password_hash=password,
            role=Role.PARK_MANAGER,
            park_id=park.id,
            locale="en",
        )
        session.add(manager)
        session.commit()
        inline = Settings(database_url=url, redis_url=None, secret_key="reliability")
        with no_thread_worker():
            rnd = service.create_round(
                session, inline, manager, RoundCreate(scope=ScopeKind.PARK, park_id=park.id, period=PERIOD)
            )
        assert rnd.id is not None and rnd.current_run_id is not None and producer.id is not None
        world = World(rnd.id, rnd.current_run_id, producer.id, consumers)
    solving.run_pending(engine)
    return world


def new_contest(engine: Engine, world: World, accepts: int) -> Contest:
    """A fresh 100 t supply listing and `accepts` proposals of 7 t on it, each with a demand listing of its own
    (10 t, so the demand side never refuses); the supplier has accepted them all: each consumer's accept
    decides."""
    from exchange.core.db import session_scope, utcnow
    from exchange.enterprises.models import Enterprise
    from exchange.listings.models import Listing, ListingKind, Visibility
    from exchange.rounds.models import Answer, Proposal

    with session_scope(engine) as session:

        def listing(ent: Enterprise, kind: ListingKind, quantity_t: int) -> Listing:
            assert ent.id is not None
            made = Listing(
                enterprise_id=ent.id,
                kind=kind,
                material_code="fly_ash",
                quantity_kg=quantity_t * 1000,
                lat=ent.lat,
                lon=ent.lon,
                province_code=ent.province_code,
                city_code=ent.city_code,
                park_id=ent.park_id,
                max_distance_km=150,
                visibility=Visibility.PUBLIC,
            )
            session.add(made)
            return made

        producer = session.get(Enterprise, world.producer_id)
        assert producer is not None
        supply = listing(producer, ListingKind.SUPPLY, SUPPLY_T)
        demands = []
        for i in range(accepts):
            consumer = session.get(Enterprise, world.consumers[i % len(world.consumers)][0])
            assert consumer is not None
            demands.append(listing(consumer, ListingKind.DEMAND, 10))
        session.flush()
        assert supply.id is not None
        now = utcnow()
        proposals = []
        for demand in demands:
            assert demand.id is not None
            p = Proposal(
                round_id=world.round_id,
                run_id=world.run_id,
                supply_listing_id=supply.id,
                demand_listing_id=demand.id,
                supplier_enterprise_id=world.producer_id,
                consumer_enterprise_id=demand.enterprise_id,
                material_code="fly_ash",
                quantity_kg=EACH_T * 1000,
                distance_km=8.0,
                cost_fen=2000,
                supplier_answer=Answer.ACCEPTED,
                supplier_answered_at=now,
            )
            session.add(p)
            proposals.append(p)
        session.commit()
        assert supply.id is not None
        return Contest(
            supply.id,
            [
                (p.id, d.id, world.consumers[i % len(world.consumers)][1])
                for i, (p, d) in enumerate(zip(proposals, demands, strict=True))
                if p.id is not None and d.id is not None
            ],
        )


# ---------------------------------------------------------------------------------------------- the server


class Server:
    """`exchange serve` in a session of its own on a free loopback port."""

    def __init__(self, url: str, workers: int, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        env = {
            **os.environ,
            "EXCHANGE_DATABASE_URL": url,
            "EXCHANGE_RATE_LIMIT_PER_MINUTE": "0",  # the clients are one address sending at once
            "EXCHANGE_UPLOAD_DIR": str(workdir / "uploads"),
        }
        env.pop("EXCHANGE_REDIS_URL", None)
        command = [str(BIN / "exchange"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--quiet"]
        if workers > 1:
            command += ["--workers", str(workers)]
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.workers = workers

    def wait_ready(self, timeout_s: float = 120) -> int:
        """Until /healthz answers and, with several workers, every worker process is up; the number of them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}): {self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    processes = self.worker_processes()
                    if processes >= self.workers:
                        # Each worker imports the app by itself; let the last ones finish too.
                        for _ in range(4 * self.workers):
                            httpx.get(f"{self.base}/healthz", timeout=10)
                        return processes
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the app did not answer /healthz within {timeout_s:g} s: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The processes answering requests: uvicorn's own with one worker, its children with several."""
        if self.workers <= 1:
            return [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return []
        # With several workers uvicorn also runs a resource tracker next to them (multiprocessing spawn).
        return [int(pid) for pid in pids if b"multiprocessing.resource_tracker" not in _cmdline(pid)]

    def worker_processes(self) -> int:
        return len(self.worker_pids())

    def connections(self) -> dict[int, int]:
        """Open client connections held by each worker process (Linux /proc): which processes the clients of a
        run are talking to."""
        established = set()
        for table in ("tcp", "tcp6"):
            with suppress(OSError):
                for line in Path(f"/proc/{self.process.pid}/net/{table}").read_text().splitlines()[1:]:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == self.port and cols[3] == "01":
                        established.add(cols[9])
        held: dict[int, int] = {}
        for pid in self.worker_pids():
            count = 0
            with suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with suppress(OSError):
                        target = os.readlink(fd)
                        count += target.startswith("socket:[") and target[8:-1] in established
            held[pid] = count
        return held

    def logged_errors(self) -> dict[str, int]:
        """The errors the server logged (a traceback's last line, a database fault), counted by their text."""
        found: Counter[str] = Counter()
        with suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if re.match(r"(\w+\.)*\w+(Error|Exception): |database fault", line):
                    found[re.sub(r" \(Background on this error at: [^)]*\)", "", line)[:200]] += 1
        return dict(found.most_common(10))

    def log_tail(self) -> str:
        with suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def _cmdline(pid: str) -> bytes:
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


# ---------------------------------------------------------------------------------------------- one run


@dataclass
class Answered:
    proposal_id: int
    status: int | None  # None: no HTTP answer
    body: Any = None
    error: str | None = None


def fire(base: str, contest: Contest, before_release: Callable[[], None] | None = None) -> tuple[list[Answered], float]:
    """One thread per proposal, each with its connection already open, released together by a barrier; the
    answers and the time from the release to the last answer. `before_release` runs once every connection is
    open, just before the release."""
    n = len(contest.proposals)
    barrier = threading.Barrier(n + 1, action=before_release)
    answers: list[Answered | None] = [None] * n
    finished: list[float] = [0.0] * n

    def worker(i: int) -> None:
        pid, _, headers = contest.proposals[i]
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
                http.get("/healthz")  # opens the connection (kept alive) before the start
                barrier.wait(timeout=60)
                r = http.post(f"/api/v1/proposals/{pid}/accept")
            try:
                body: Any = r.json()
            except ValueError:
                body = r.text[:500]
            answers[i] = Answered(pid, r.status_code, body)
        except Exception as exc:  # noqa: BLE001 - a lost answer, counted and reported
            answers[i] = Answered(pid, None, error=f"{type(exc).__name__}: {exc}")
            with suppress(threading.BrokenBarrierError):
                barrier.abort()
        finished[i] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    with suppress(threading.BrokenBarrierError):  # a connection that failed to open: its thread reports it
        barrier.wait(timeout=60)
    released = time.perf_counter()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S + 30)
    done = [
        a if a is not None else Answered(contest.proposals[i][0], None, error="no answer")
        for i, a in enumerate(answers)
    ]
    return done, max(finished) - released


def refusal_kind(detail: str) -> str:
    """Which check refused: the accept's own (it read the listing under its lock) or the database's CHECK."""
    if re.search(r"has only [\d.]+ t left unallocated; this proposal needs", detail):
        return "listing check"
    if "could not be accepted: a listing no longer has" in detail:
        return "database CHECK"
    return "other"


def check_run(engine: Engine, contest: Contest, answers: list[Answered], figures: Figures) -> list[str]:
    """Every check of one run; returns the violations (empty: the run is clean). A 5xx is counted apart (and
    fails the campaign too); what it left behind must still be consistent: its proposal either accepted with an
    agreement and the tonnes reserved, or untouched."""
    problems: list[str] = []
    expected = min(len(contest.proposals), SUPPLY_T // EACH_T)
    each_kg = EACH_T * 1000
    accepted: set[int] = set()
    refused: set[int] = set()
    errored: dict[int, int] = {}
    for a in answers:
        figures.statuses[str(a.status)] = figures.statuses.get(str(a.status), 0) + 1
        body = a.body if isinstance(a.body, dict) else {}
        if a.status is None:
            figures.lost_answers += 1
            problems.append(f"proposal {a.proposal_id}: no answer ({a.error})")
        elif a.status == 200:
            accepted.add(a.proposal_id)
            if body.get("id") != a.proposal_id or body.get("state") != "accepted" or not body.get("agreement_id"):
                problems.append(f"proposal {a.proposal_id}: 200 without an accepted state and agreement: {a.body}")
        elif a.status == 409:
            refused.add(a.proposal_id)
            detail = body.get("detail")
            if body.get("error") == "conflict" and isinstance(detail, str) and detail.strip():
                figures.refused_with_message += 1
                kind = refusal_kind(detail)
                figures.refusals[kind] = figures.refusals.get(kind, 0) + 1
            else:
                problems.append(f"proposal {a.proposal_id}: 409 without a message: {a.body}")
        elif a.status >= 500:
            figures.server_errors += 1
            errored[a.proposal_id] = a.status
        else:
            problems.append(f"proposal {a.proposal_id}: unexpected {a.status} {a.body}")
    figures.accepted += len(accepted)
    figures.refused += len(refused)
    if errored:
        by_status = Counter(errored.values())
        first = next(a for a in answers if a.proposal_id in errored)
        figures.failures.append(
            f"run {figures.runs + 1}: {len(errored)} × 5xx ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items()))
            + f"), e.g. {first.status} {str(first.body)[:200]}"
        )
    elif len(accepted) != expected:
        problems.append(f"{len(accepted)} accepted and {len(refused)} refused; {expected} fit")

    ids = [pid for pid, _, _ in contest.proposals]
    demand_ids = [d for _, d, _ in contest.proposals]
    with engine.connect() as conn:
        allocated, quantity = conn.execute(
            sa.text("SELECT allocated_kg, quantity_kg FROM listing WHERE id = :id"), {"id": contest.supply_id}
        ).one()
        agreements = {
            int(pid): int(kg)
            for pid, kg in conn.execute(
                sa.text("SELECT proposal_id, quantity_kg FROM agreement WHERE supply_listing_id = :id"),
                {"id": contest.supply_id},
            )
        }
        in_list: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
        proposals = {
            int(pid): (str(state), answer)
            for pid, state, answer in conn.execute(
                sa.text("SELECT id, state, consumer_answer FROM proposal WHERE id IN :ids").bindparams(in_list),
                {"ids": ids},
            )
        }
        demand_allocated = {
            int(lid): int(kg)
            for lid, kg in conn.execute(
                sa.text("SELECT id, allocated_kg FROM listing WHERE id IN :ids").bindparams(in_list),
                {"ids": demand_ids},
            )
        }
    figures.max_allocated_t = max(figures.max_allocated_t, allocated / 1000)
    if allocated > quantity:
        problems.append(f"supply {contest.supply_id}: allocated {allocated} kg > quantity {quantity} kg")
    if len(agreements) * each_kg != allocated or sum(agreements.values()) != allocated:
        problems.append(f"supply {contest.supply_id}: {len(agreements)} agreements × {EACH_T} t ≠ {allocated} kg")
    if refused and quantity - allocated >= each_kg:
        # Allocations only grow here: a refusal while the tonnes were there is an allocation that was lost.
        problems.append(f"{len(refused)} refused with {(quantity - allocated) / 1000:g} t still unallocated")
    for pid, demand_id, _ in contest.proposals:
        state, answer = proposals.get(pid, ("missing", None))
        reserved = demand_allocated.get(demand_id)
        done = state == "accepted" and answer == "accepted" and pid in agreements and reserved == each_kg
        untouched = state == "open" and answer is None and pid not in agreements and reserved == 0
        if pid in accepted and not done:
            problems.append(f"proposal {pid} answered 200 but is {state} ({answer}), its demand holds {reserved} kg")
        elif pid in refused and not untouched:
            problems.append(f"proposal {pid} refused but is {state} ({answer}), its demand holds {reserved} kg")
        elif pid in errored:
            if done:
                figures.committed_despite_5xx += 1
            elif not untouched:
                problems.append(f"proposal {pid} answered {errored[pid]} and left {state} ({answer}), {reserved} kg")
    integrity = check_integrity(engine, full=False)
    problems.extend(f"integrity: {p}" for p in integrity.problems)
    return problems


# ---------------------------------------------------------------------------------------------- campaign


def campaign(database: str, *, runs: int, accepts: int, pg_url: str = DEFAULT_PG_URL, pg_workers: int = 2) -> Figures:
    from exchange.core.db import make_engine

    workers = pg_workers if database == "postgresql" else 1
    figures = Figures(
        database=database,
        server=f"exchange serve --workers {workers}" if workers > 1 else "exchange serve",
        accepts_per_run=accepts,
        expected_accepted_per_run=min(accepts, SUPPLY_T // EACH_T),
    )
    started = time.perf_counter()
    with scratch_database(database, pg_url, tag="rel_accepts") as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)  # the app's own engine: BEGIN IMMEDIATE on SQLite, for the setup
        observer = make_engine(url, autocommit=True)  # for the checks: holds no lock, no old snapshot
        server = None
        try:
            world = build_world(engine, url)
            if sqlite_file(url) is not None:
                with observer.connect() as conn:
                    figures.journal_mode = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
            server = Server(url, workers, Path(tmp))
            figures.worker_processes = server.wait_ready()
            log(f"{database}: {figures.server} on {server.base}, {figures.worker_processes} worker process(es)")
            held: Counter[int] = Counter()

            def count_connections() -> None:
                with suppress(Exception):  # the figure is informative; a failure must not break the barrier
                    held.update(server.connections())

            try:
                for n in range(1, runs + 1):
                    contest = new_contest(engine, world, accepts)
                    answers, took = fire(server.base, contest, count_connections)
                    figures.connections_per_worker = sorted(held.values(), reverse=True)
                    figures.run_s.append(round(took, 4))
                    problems = check_run(observer, contest, answers, figures)
                    figures.runs = n
                    if problems:
                        figures.violations += 1
                        figures.failures.extend(f"run {n}: {p}" for p in problems[:10])
                    if n % 10 == 0 or n == runs:
                        log(
                            f"  {n}/{runs}: accepted {figures.accepted}, refused {figures.refused}, "
                            f"violations {figures.violations}, 5xx {figures.server_errors}"
                        )
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop, clean up, report the runs done
                figures.interrupted = True
                log(f"  interrupted after {figures.runs} run(s)")
            final = check_integrity(observer, full=True)
            if not final.ok:
                figures.violations += 1
                figures.failures.extend(f"final integrity: {p}" for p in final.problems)
        finally:
            if server is not None:
                server.stop()
                figures.server_log_errors = server.logged_errors()
                if server.process.returncode not in (0, -signal.SIGTERM):
                    figures.failures.append(f"server exited {server.process.returncode}: {server.log_tail()}")
            engine.dispose()
            observer.dispose()
    figures.finish()
    figures.seconds = round(time.perf_counter() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="runs per database (default 100)")
    parser.add_argument("--accepts", type=int, default=50, help="concurrent accepts per run (default 50)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a database where a scratch schema may be made")
    parser.add_argument("--pg-workers", type=int, default=2, help="server worker processes on PostgreSQL")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.accepts < 1:
        parser.error("--runs and --accepts must be at least 1")

    results: list[Figures] = []
    with sigterm_interrupts():
        for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
            figures = campaign(
                database, runs=args.runs, accepts=args.accepts, pg_url=args.pg_url, pg_workers=args.pg_workers
            )
            log(f"concurrent accepts on one supply, {database} ({figures.seconds:g} s):")
            log(figures.table())
            for failure in figures.failures[:20]:
                log(f"  FAILED {failure}")
            for line, count in figures.server_log_errors.items():
                log(f"  server log: {count} × {line}")
            results.append(figures)
            if args.json:  # after each database: a campaign stopped later keeps the figures so far
                Path(args.json).write_text(json.dumps([as_dict(f) for f in results], indent=2, ensure_ascii=False))
            if figures.interrupted:
                break
    return 0 if results and all(f.ok for f in results) else 1


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the campaign as Ctrl-C does: the server is stopped, the scratch database removed, and the
    runs done so far are reported (otherwise the server would be left running on a deleted database)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
