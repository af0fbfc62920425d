"""Kill a matching round's worker (SIGKILL) at random moments; check that nothing is half-written, that the
database is intact, and that a re-run gives the clean result.

    .venv/bin/python scripts/reliability/kill_worker.py [--iterations 200] [--databases sqlite,postgresql]
                                                        [--worker rq|fork] [--seed 1] [--json FILE]

Each database is a scratch one (an SQLite file; a PostgreSQL schema of its own, dropped afterwards) holding the
generated demo region (826 listings). Each iteration:

1. creates a round over the whole region (3 times in 4: ~360 supply lots, ~470 demand lots, ~380 allocations)
   or over one random park, and hands it to a worker:
   - `rq` (default): a real `exchange worker` process, started beforehand and idle on a queue of its own, as in
     production (a cold start spends seconds importing, so random kills would mostly land in the imports);
     the worker and the work-horse it forked for the job are SIGKILLed together, as when the machine dies;
   - `fork`: a child of this process running `solving.run_round`, the job body (the fast test uses it);
2. SIGKILLs the worker after a random delay: every other iteration uniformly between 0 and 1.25 times the
   clean job's duration for that instance (kills land before the claim, while building pairs, solving, writing
   the results, and after the end); the others aim at the one transaction that writes the results: from when
   the run reports that stage, uniformly between 0 and 1.25 times the longest clean write;
3. checks integrity (SQLite integrity_check — quick_check between the full ones — and foreign_key_check;
   PostgreSQL: every constraint validated; 0 ≤ allocated ≤ quantity on listings), and that no run is partial:
   every run has either succeeded with exactly the allocations and unmatched lots of its stored solution, or has
   none at all, and the round's state agrees with its current run;
4. recovers as the system would: a run left RUNNING is reaped (`reap_stale_runs`, its heartbeat timeout taken
   as elapsed) and the round retried; a run left QUEUED is run; the result must equal the clean reference run's
   (the same allocations and unmatched lots, kilogram for kilogram).

Prints the figures per database; exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.reliability.common import (  # noqa: E402
    BIN,
    DEFAULT_PG_URL,
    DEFAULT_REDIS_URL,
    REPO_ROOT,
    as_dict,
    check_integrity,
    load_demo_region,
    log,
    no_thread_worker,
    scratch_database,
)

PERIOD = "2025-06"
WHOLE_REGION = "region"
PHASES = ("before the claim", "building pairs", "solving", "writing results", "after the end")
Signature = tuple[frozenset[tuple[int, int, int]], frozenset[tuple[int, int, str]]]


@dataclass
class Figures:
    database: str
    worker: str
    iterations: int = 0
    aimed_at_the_write: int = 0  # kills timed from the start of the results' write, the others from the dispatch
    killed_at: dict[str, int] = field(default_factory=dict)
    lost_jobs: int = 0  # rq: the worker had taken the job off the queue but had not claimed the run yet
    reaped: int = 0
    partial_runs: int = 0
    integrity_failures: int = 0
    identical_results: int = 0
    different_results: int = 0
    failures: list[str] = field(default_factory=list)
    full_integrity_checks: int = 0
    slowest_integrity_check_s: float = 0.0
    clean_job_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.failures or self.partial_runs or self.integrity_failures or self.different_results)

    def summary(self) -> str:
        kills = ", ".join(f"{phase} {self.killed_at.get(phase, 0)}" for phase in PHASES)
        lost = f" (RQ job lost with the worker: {self.lost_jobs})" if self.worker == "rq" else ""
        return (
            f"kill-a-worker on {self.database} ({self.worker} worker): {self.iterations} SIGKILLs in "
            f"{self.seconds:.0f} s ({self.aimed_at_the_write} timed from the start of the results' write)\n"
            f"  killed at: {kills}{lost}\n"
            f"  partial runs: {self.partial_runs}; integrity failures: {self.integrity_failures} "
            f"({self.full_integrity_checks} full checks, slowest {self.slowest_integrity_check_s:.2f} s); "
            f"reaped: {self.reaped}\n"
            f"  results equal to the clean reference after recovery: {self.identical_results}/{self.iterations}"
            f" (different: {self.different_results}); other failures: {len(self.failures)}"
        )


# ---------------------------------------------------------------------------------------------- rounds


def create_round(engine: Engine, settings: Any, scope: str | int) -> tuple[int, int]:
    """A round created by the admin, dispatched to `settings`' backend; (round id, run id)."""
    from sqlmodel import select

    from exchange.accounts.models import Role, User
    from exchange.core.db import session_scope
    from exchange.rounds import service
    from exchange.rounds.models import RoundCreate, ScopeKind

    if scope == WHOLE_REGION:
        data = RoundCreate(scope=ScopeKind.VISIBLE, period=PERIOD)
    else:
        data = RoundCreate(scope=ScopeKind.PARK, park_id=int(scope), period=PERIOD)
    with session_scope(engine) as session:
        admin = session.exec(select(User).where(User.role == Role.ADMIN)).first()
        assert admin is not None, "the demo region has an admin"
        rnd = service.create_round(session, settings, admin, data)
        session.commit()
        assert rnd.id is not None and rnd.current_run_id is not None
        return rnd.id, rnd.current_run_id


def retry_round(engine: Engine, settings: Any, round_id: int) -> int:
    from sqlmodel import select

    from exchange.accounts.models import Role, User
    from exchange.core.db import session_scope
    from exchange.rounds import service

    with session_scope(engine) as session:
        admin = session.exec(select(User).where(User.role == Role.ADMIN)).first()
        assert admin is not None
        run = service.start_run(session, settings, admin, round_id)
        session.commit()
        assert run.id is not None
        return run.id


def run_state(engine: Engine, run_id: int) -> tuple[str, str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT state, stage, job_id FROM round_run WHERE id = :id"), {"id": run_id}).one()
    return str(row[0]), str(row[1]), row[2]


def phase_of(state: str, stage: str) -> str:
    if state == "queued":
        return "before the claim"
    if state == "succeeded":
        return "after the end"
    if state == "running":
        return {"writing_results": "writing results", "solving": "solving"}.get(stage, "building pairs")
    return f"{state} (unexpected)"


def signature(conn: Connection, run_id: int) -> Signature:
    """What a run decided: its allocations (supply, demand, kg) and unmatched lots (supply, kg, reason)."""
    allocations = conn.execute(
        sa.text("SELECT supply_listing_id, demand_listing_id, quantity_kg FROM round_allocation WHERE run_id = :r"),
        {"r": run_id},
    )
    unmatched = conn.execute(
        sa.text("SELECT supply_listing_id, quantity_kg, reason FROM round_unmatched WHERE run_id = :r"),
        {"r": run_id},
    )
    return (
        frozenset((int(s), int(d), int(kg)) for s, d, kg in allocations),
        frozenset((int(s), int(kg), str(reason)) for s, kg, reason in unmatched),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def partial_runs(engine: Engine, round_id: int) -> list[str]:
    """Runs of the round that are neither complete (succeeded, with exactly the rows of their stored solution)
    nor empty (any other state, without a single row); plus, over the whole database, any unfinished run that
    has rows, and a round whose state disagrees with its current run."""
    problems: list[str] = []
    expected_round_state = {"queued": "queued", "running": "running", "succeeded": "review", "failed": "failed"}
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT r.id, r.state, r.solution, r.report, "
                "(SELECT count(*) FROM round_allocation a WHERE a.run_id = r.id), "
                "(SELECT count(*) FROM round_unmatched u WHERE u.run_id = r.id) "
                "FROM round_run r WHERE r.round_id = :rid ORDER BY r.id"
            ),
            {"rid": round_id},
        ).all()
        for run_id, state, raw_solution, raw_report, n_alloc, n_unmatched in runs:
            solution, report = _json(raw_solution), _json(raw_report)  # SQL NULL or JSON null alike
            if state == "succeeded":
                stored = solution or {}
                want = (len(stored.get("allocations", [])), len(stored.get("unmatched", [])))
                if report is None or (n_alloc, n_unmatched) != want:
                    problems.append(f"run {run_id} succeeded with {n_alloc}+{n_unmatched} rows, solution says {want}")
            elif n_alloc or n_unmatched or solution is not None or report is not None:
                problems.append(f"run {run_id} is {state} but has {n_alloc} allocations, {n_unmatched} unmatched")
        current = conn.execute(
            sa.text(
                "SELECT m.state, r.state FROM matching_round m JOIN round_run r ON r.id = m.current_run_id "
                "WHERE m.id = :rid"
            ),
            {"rid": round_id},
        ).one()
        if expected_round_state.get(str(current[1])) != str(current[0]):
            problems.append(f"round {round_id} is {current[0]} while its current run is {current[1]}")
        stray = conn.execute(
            sa.text(
                "SELECT count(*) FROM round_run r WHERE r.state <> 'succeeded' AND ("
                "EXISTS (SELECT 1 FROM round_allocation a WHERE a.run_id = r.id) OR "
                "EXISTS (SELECT 1 FROM round_unmatched u WHERE u.run_id = r.id))"
            )
        ).scalar_one()
        if stray:
            problems.append(f"{stray} unfinished run(s) in the database have result rows")
    return problems


# ---------------------------------------------------------------------------------------------- workers


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


class RqWorker:
    """`exchange worker --queue Q` as an operator starts it, idle until a job arrives on its own queue."""

    def __init__(self, url: str, redis_url: str, queue: str, log_path: Path) -> None:
        self.queue = queue
        self.redis_url = redis_url
        env = {**os.environ, "EXCHANGE_DATABASE_URL": url, "EXCHANGE_REDIS_URL": redis_url}
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(BIN / "exchange"), "worker", "--queue", queue],
            env=env,
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, redis: Any, timeout_s: float = 180) -> None:
        from rq import Queue, Worker

        deadline = time.monotonic() + timeout_s
        while not Worker.all(connection=redis, queue=Queue(self.queue, connection=redis)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker was not ready after {timeout_s:g} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """As when its machine dies: the worker is frozen (so it cannot fork a work-horse meanwhile), then it and
        every process below it get SIGKILL at once."""
        pid = self.proc.pid
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        children = descendants(pid)
        for victim in (*children, pid):
            with suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while not all(gone(c) for c in children):
            if time.monotonic() > deadline:
                raise RuntimeError(f"work-horses {children} survived SIGKILL")
            time.sleep(0.01)
        self.log.close()


class ForkedWorker:
    """A child of this process running the job body on its own connections."""

    def __init__(self, url: str, run_id: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 0
            try:
                from exchange.core.db import make_engine
                from exchange.rounds import solving

                solving.run_round(make_engine(url), run_id, heartbeat_s=5)
            except BaseException:  # noqa: BLE001 - the child reports by its exit code only
                code = 1
            finally:
                os._exit(code)
        self.pid = pid

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)

    def wait(self) -> None:
        os.waitpid(self.pid, 0)


# ---------------------------------------------------------------------------------------------- the campaign


@dataclass
class Reference:
    signature: Signature
    in_process_s: float


class Campaign:
    def __init__(self, url: str, database: str, worker: str, redis_url: str, rng: random.Random, workdir: Path) -> None:
        from exchange.core.db import make_engine
        from exchange.settings import Settings

        self.url = url
        self.worker = worker
        self.rng = rng
        self.workdir = workdir
        self.engine = make_engine(url)  # for the services and the in-process runs
        # For watching and checking: without BEGIN IMMEDIATE, a read on SQLite never takes (or waits for) the
        # write lock, so watching a run neither slows the worker nor waits for its write to finish.
        self.observer = make_engine(url, autocommit=True)
        self.figures = Figures(database=database, worker=worker)
        self.inline = Settings(database_url=url, redis_url=None, secret_key="reliability")
        self.tag = f"reliability-{os.getpid()}-{rng.randrange(16**6):06x}"
        self.redis_url = redis_url
        self.redis: Any = None
        if worker == "rq":
            from redis import Redis

            self.redis = Redis.from_url(redis_url)
            if int(self.redis.connection_pool.connection_kwargs.get("db", 0)) == 0:
                raise SystemExit("give the script a Redis database of its own (not 0): it empties it")
            self.redis.flushdb()  # job ids are run ids: a previous campaign's jobs must not linger
        self.references: dict[str | int, Reference] = {}
        self.overhead_s = 0.0
        self.write_s = 0.0
        with self.observer.connect() as conn:
            self.parks = [int(p) for p in conn.execute(sa.text("SELECT id FROM park ORDER BY id")).scalars()]
        self.warm: list[RqWorker] = []  # started ahead, each on a queue of its own
        self.queue_seq = 0
        self.current_queue = ""  # the queue of the worker that has the current job

    # -- references and timing

    def reference(self, scope: str | int) -> Reference:
        """The clean result for an instance, from a run in this process with nothing killed."""
        if scope not in self.references:
            from exchange.rounds import solving

            _, run_id = create_round(self.engine, self.inline, scope)
            started = time.perf_counter()
            state = solving.run_round(self.engine, run_id)
            took = time.perf_counter() - started
            if state.value != "succeeded":
                raise RuntimeError(f"the clean reference run for {scope} ended {state.value}")
            with self.observer.connect() as conn:
                self.references[scope] = Reference(signature(conn, run_id), took)
        return self.references[scope]

    def calibrate(self, jobs: int = 3) -> None:
        """Clean jobs through the real worker: how long the worker's part takes beyond the job body itself
        (dequeue, fork, connections), so the kill delays can span a whole job. The slowest of a few counts: this
        machine's load varies, and kills after the end are harmless where kills cut short are not."""
        ref = self.reference(WHOLE_REGION)
        slowest_s = 0.0
        for _ in range(jobs):
            _, run_id, started, worker = self.dispatch(WHOLE_REGION)
            writing = self.wait_for_write(run_id)
            deadline = time.monotonic() + 300
            while (state := run_state(self.observer, run_id)[0]) not in ("succeeded", "failed"):
                if time.monotonic() > deadline:
                    raise RuntimeError("a clean calibration job did not finish in 300 s")
                time.sleep(0.005)
            slowest_s = max(slowest_s, time.monotonic() - started)
            self.write_s = max(self.write_s, time.monotonic() - writing)
            worker.kill()
            self.forget_queue()
            if state != "succeeded":
                raise RuntimeError(f"a clean calibration job ended {state}")
            with self.observer.connect() as conn:
                if signature(conn, run_id) != ref.signature:
                    raise RuntimeError("a clean worker run differs from the in-process reference run")
        self.overhead_s = max(0.0, slowest_s - ref.in_process_s)
        self.figures.clean_job_s[str(WHOLE_REGION)] = round(slowest_s, 3)
        self.figures.clean_job_s["writing results"] = round(self.write_s, 3)
        log(
            f"  clean job through the {self.worker} worker: {slowest_s:.2f} s (job body {ref.in_process_s:.2f} s, "
            f"writing the results {self.write_s:.2f} s)"
        )

    def wait_for_write(self, run_id: int, timeout_s: float = 300) -> float:
        """Poll the run (every 5 ms) until it reports writing its results, or has ended; returns when."""
        deadline = time.monotonic() + timeout_s
        while True:
            state, stage, _ = run_state(self.observer, run_id)
            if stage == "writing_results" or state in ("succeeded", "failed"):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} did not reach the write in {timeout_s:g} s")
            time.sleep(0.005)

    def run_inline(self, scope: str | int, run_id: int) -> None:
        """Run a queued run here; its duration raises the instance's job-body estimate when slower (load)."""
        from exchange.rounds import solving

        started = time.perf_counter()
        solving.run_round(self.engine, run_id)
        ref = self.references[scope]
        ref.in_process_s = max(ref.in_process_s, time.perf_counter() - started)

    # -- workers

    def warm_up(self, ahead: int = 2) -> None:
        """Keep `ahead` workers starting or idle: one takes several seconds to start on a busy machine, longer
        than an iteration's checks and recovery."""
        while self.worker == "rq" and len(self.warm) < ahead:
            self.queue_seq += 1
            queue = f"{self.tag}-{self.queue_seq}"
            self.warm.append(RqWorker(self.url, self.redis_url, queue, self.workdir / "workers.log"))

    def dispatch(self, scope: str | int) -> tuple[int, int, float, Any]:
        """Create the round and hand it to a worker; (round id, run id, when, the worker)."""
        if self.worker == "fork":
            round_id, run_id = create_round(self.engine, self.inline, scope)
            started = time.monotonic()
            return round_id, run_id, started, ForkedWorker(self.url, run_id)
        self.warm_up()
        worker = self.warm.pop(0)
        worker.wait_ready(self.redis)
        self.current_queue = worker.queue
        settings = self.inline.model_copy(update={"redis_url": self.redis_url, "queue_name": worker.queue})
        round_id, run_id = create_round(self.engine, settings, scope)
        return round_id, run_id, time.monotonic(), worker

    def job_lost(self, job_id: str | None) -> bool:
        from rq import Queue

        return job_id not in Queue(self.current_queue, connection=self.redis).get_job_ids()

    def forget_queue(self) -> None:
        if self.redis is None:
            return
        from rq import Queue

        Queue(self.current_queue, connection=self.redis).delete(delete_jobs=True)

    def cleanup(self) -> None:
        for worker in self.warm:
            worker.kill()
        self.warm = []
        if self.redis is not None:
            self.redis.flushdb()
        self.engine.dispose()
        self.observer.dispose()

    # -- one iteration

    def iteration(self, n: int, full_check: bool) -> None:
        from exchange.rounds import solving

        figures = self.figures
        in_the_write = n % 2 == 0
        if in_the_write:
            scope: str | int = WHOLE_REGION
        else:
            scope = WHOLE_REGION if self.rng.random() < 0.75 else self.rng.choice(self.parks)
        ref = self.reference(scope)
        round_id, run_id, started, worker = self.dispatch(scope)
        if in_the_write:
            # Aimed at the one transaction that writes the results: from when the run says so, a random delay
            # up to 1.25 times the longest write seen.
            self.wait_for_write(run_id)
            started = time.monotonic()
            delay_s = self.rng.uniform(0, 1.25 * self.write_s)
        else:
            delay_s = self.rng.uniform(0, 1.25 * (self.overhead_s + ref.in_process_s))
        time.sleep(max(0.0, started + delay_s - time.monotonic()))
        worker.kill()
        figures.aimed_at_the_write += in_the_write
        self.warm_up()  # the next ones start while this iteration checks and recovers

        state, stage, job_id = run_state(self.observer, run_id)
        phase = phase_of(state, stage)
        figures.killed_at[phase] = figures.killed_at.get(phase, 0) + 1
        aim = "write + " if in_the_write else ""
        where = f"iteration {n} ({scope}, killed {phase} at {aim}{delay_s:.2f} s)"

        self.check(round_id, where, full_check)

        # Recovery, as the system does it.
        final_run = run_id
        if state == "queued":
            if self.worker == "rq" and self.job_lost(job_id):
                figures.lost_jobs += 1
            self.forget_queue()
            self.run_inline(scope, run_id)
        elif state == "running":
            reaped = solving.reap_stale_runs(self.engine, 0.0)
            if reaped != [run_id]:
                figures.failures.append(f"{where}: the reaper took {reaped}, expected [{run_id}]")
            figures.reaped += 1
            self.forget_queue()
            final_run = retry_round(self.engine, self.inline, round_id)
            self.run_inline(scope, final_run)
        elif state != "succeeded":
            figures.failures.append(f"{where}: the killed run ended {state}")
            return
        self.forget_queue()
        if run_state(self.observer, final_run)[0] != "succeeded":
            figures.failures.append(f"{where}: recovery ended {run_state(self.observer, final_run)[0]}")
            return
        with self.observer.connect() as conn:
            same = signature(conn, final_run) == ref.signature
        figures.identical_results += same
        figures.different_results += not same
        if not same:
            figures.failures.append(f"{where}: the result after recovery differs from the clean reference")
        self.check(round_id, f"{where}, after recovery", full_check=False)

    def check(self, round_id: int, where: str, full_check: bool) -> None:
        integrity = check_integrity(self.observer, full=full_check)
        self.figures.full_integrity_checks += full_check
        self.figures.slowest_integrity_check_s = max(self.figures.slowest_integrity_check_s, integrity.seconds)
        if not integrity.ok:
            self.figures.integrity_failures += 1
            self.figures.failures.append(f"{where}: integrity: {'; '.join(integrity.problems)}")
        partial = partial_runs(self.observer, round_id)
        if partial:
            self.figures.partial_runs += len(partial)
            self.figures.failures.append(f"{where}: partial: {'; '.join(partial)}")

    def run(self, iterations: int, full_check_every: int) -> Figures:
        started = time.perf_counter()
        self.calibrate(jobs=3 if self.worker == "rq" else 1)
        for n in range(1, iterations + 1):
            self.iteration(n, full_check=(n % full_check_every == 0 or n == iterations))
            self.figures.iterations = n
            if n % 10 == 0 or n == iterations:
                killed = ", ".join(f"{k} {v}" for k, v in Counter(self.figures.killed_at).most_common())
                log(f"  {n}/{iterations}: {killed}; failures {len(self.figures.failures)}")
        self.figures.seconds = time.perf_counter() - started
        return self.figures


def campaign(
    database: str,
    *,
    iterations: int,
    worker: str = "rq",
    seed: int = 1,
    pg_url: str = DEFAULT_PG_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    full_check_every: int = 10,
    url: str | None = None,
) -> Figures:
    """One database — a scratch one, or the migrated empty one at `url` — with the demo region loaded,
    `iterations` kills, the figures."""
    rng = random.Random(f"{seed}-{database}")
    scratch = nullcontext(url) if url else scratch_database(database, pg_url, tag="rel_kill")
    with scratch as url, tempfile.TemporaryDirectory() as tmp:
        assert url is not None
        log(f"{database}: {load_demo_region(url)}")
        with no_thread_worker():
            run = Campaign(url, database, worker, redis_url, rng, Path(tmp))
            try:
                return run.run(iterations, full_check_every)
            finally:
                run.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200, help="kills per database (default 200)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--worker", choices=("rq", "fork"), default="rq")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a database where a scratch schema may be made")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="a Redis database for this script alone")
    parser.add_argument("--full-check-every", type=int, default=10, help="full integrity_check every N kills")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    results = []
    for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
        figures = campaign(
            database,
            iterations=args.iterations,
            worker=args.worker,
            seed=args.seed,
            pg_url=args.pg_url,
            redis_url=args.redis_url,
            full_check_every=args.full_check_every,
        )
        log(figures.summary())
        for failure in figures.failures[:20]:
            log(f"  FAILED {failure}")
        results.append(figures)
    if args.json:
        Path(args.json).write_text(json.dumps([as_dict(f) for f in results], indent=2, ensure_ascii=False))
    return 0 if all(f.ok for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
