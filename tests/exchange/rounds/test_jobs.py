"""The rounds job machinery on both backends.

- In-process (the default, no Redis): the real worker thread takes a round from queued to review.
- RQ (`EXCHANGE_REDIS_URL` set): the app only enqueues; a separate `exchange worker --burst` process (or RQ's
  SimpleWorker in this process, when the test must steer the solver) runs the round.
- Cancel while queued and while running; a run whose worker vanished is reaped (marked failed) and retried with
  the same result; a crash anywhere in the job leaves no allocations, unmatched lots or proposals behind.

Redis tests use database 14 of 127.0.0.1:6379 (flushed before and after each test) and a queue name of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import solver
from exchange.audit.models import AuditEvent
from exchange.core.db import session_scope, utcnow
from exchange.rounds import jobs, solving
from exchange.rounds.models import Proposal, Round, RoundAllocation, RoundRun, RoundUnmatched, RunState
from exchange.settings import Settings
from tests.exchange.rounds.conftest import RoundWorld, new_round

REDIS_DB = 14
EXCHANGE_BIN = Path(sys.executable).with_name("exchange")
# Captured at import, before the package's autouse fixture replaces it for every test.
REAL_ENSURE_THREAD_WORKER = jobs.ensure_thread_worker


# ---------------------------------------------------------------------------------------------- helpers


def wait_until(predicate: Callable[[], Any], timeout_s: float = 60.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def status_of(client: TestClient, headers: dict[str, str], round_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/rounds/{round_id}/status", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_done(client: TestClient, headers: dict[str, str], round_id: int, timeout_s: float = 60.0) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: (s := status_of(client, headers, round_id))["done"] and s,
            timeout_s,
            f"round {round_id} to finish",
        )
    )


def run_row(engine: Engine, round_id: int, number: int) -> RoundRun:
    with session_scope(engine) as s:
        run = s.exec(select(RoundRun).where(RoundRun.round_id == round_id, RoundRun.number == number)).one()
        return run


def written(session: Session, run_id: int) -> tuple[int, int]:
    """Allocations and unmatched lots a run left in the database."""
    allocations = session.exec(select(RoundAllocation).where(RoundAllocation.run_id == run_id)).all()
    unmatched = session.exec(select(RoundUnmatched).where(RoundUnmatched.run_id == run_id)).all()
    return len(allocations), len(unmatched)


def allocation_set(session: Session, run_id: int) -> set[tuple[int, int, int]]:
    rows = session.exec(select(RoundAllocation).where(RoundAllocation.run_id == run_id)).all()
    return {(a.supply_listing_id, a.demand_listing_id, a.quantity_kg) for a in rows}


def age_heartbeat(engine: Engine, run_id: int, seconds: float) -> None:
    """What a worker that died `seconds` ago leaves behind: a RUNNING run whose heartbeat stopped."""
    table: Any = RoundRun.__table__  # type: ignore[attr-defined]
    past = utcnow() - timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == run_id).values(heartbeat_at=past, started_at=past))


class GatedSolver:
    """Stands in for `solver.solve`: blocks until released (reporting progress like the real solver, unless told
    not to, as a hung worker would), then solves for real."""

    def __init__(self, *, report_progress: bool = True) -> None:
        self.real = solver.solve
        self.report_progress = report_progress
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, problem: solver.Problem, progress: Any = None, **kwargs: Any) -> solver.Solution:
        self.started.set()
        deadline = time.monotonic() + 60
        while not self.release.wait(0.02):
            if self.report_progress and progress is not None:
                progress("solving", 0.5)  # raises RunAborted once the run is cancelled or reaped
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released the solver")
        return self.real(problem, progress=progress if self.report_progress else None, **kwargs)


@pytest.fixture
def fly_ash(world: RoundWorld, make_listing: Any) -> tuple[Any, Any]:
    """120 t of fly ash next door to a cement works that wants 80 t: every successful run sends 80 t."""
    s = make_listing(world.producer, "supply", "fly_ash", 120)
    d = make_listing(world.consumer, "demand", "fly_ash", 80)
    return s, d


@pytest.fixture
def real_thread(monkeypatch: pytest.MonkeyPatch, engine: Engine, settings: Settings) -> Iterator[None]:
    """The real in-process worker thread (the package's conftest switches it off for determinism)."""
    monkeypatch.setattr(jobs, "ensure_thread_worker", REAL_ENSURE_THREAD_WORKER)
    yield
    assert jobs.thread_worker(engine, settings).wait_idle(60), "the round worker thread did not finish"


@pytest.fixture
def rq_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a Redis queue; RQ jobs run in this process (SimpleWorker) read them via `get_settings`."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    conn = Redis.from_url(url)
    try:
        conn.flushdb()
    except RedisConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    rq = settings.model_copy(update={"redis_url": url, "queue_name": f"test-rounds-{uuid.uuid4().hex[:8]}"})
    monkeypatch.setattr(jobs, "get_settings", lambda: rq)
    yield rq
    conn.flushdb()
    conn.close()


@pytest.fixture
def rq_client(rq_settings: Settings) -> Iterator[TestClient]:
    from exchange.app import create_app

    with TestClient(create_app(rq_settings)) as c:
        yield c


def rq_job(settings: Settings, job_id: str) -> Any:
    from rq.job import Job

    return Job.fetch(job_id, connection=jobs._redis(settings))


def run_worker_process(settings: Settings, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """`exchange worker` as an operator starts it, on the test's database and queue."""
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": settings.database_url,
        "EXCHANGE_REDIS_URL": str(settings.redis_url),
        "EXCHANGE_QUEUE_NAME": settings.queue_name,
    }
    return subprocess.run(
        [str(EXCHANGE_BIN), "worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


# ---------------------------------------------------------------------------------------------- in-process


def test_the_in_process_worker_takes_rounds_from_queued_to_review_without_redis(
    real_thread: None, client: TestClient, world: RoundWorld, fly_ash: Any, session: Session, settings: Settings
) -> None:
    assert settings.redis_url is None and jobs.backend_for(settings) == "thread"
    s, d = fly_ash
    ids = [new_round(client, world.manager_headers)["id"] for _ in range(3)]  # several rounds queue up
    for round_id in ids:
        status = wait_done(client, world.manager_headers, round_id)
        assert (status["round_state"], status["run_state"], status["stage"]) == ("review", "succeeded", "done")
        run = client.get(f"/api/v1/rounds/{round_id}/runs/1", headers=world.manager_headers).json()
        assert run["backend"] == "thread" and run["started_at"] and run["finished_at"]
        assert allocation_set(session, run["id"]) == {(s.id, d.id, 80_000)}
    assert len({run_row(client.app.state.engine, i, 1).worker for i in ids}) >= 1  # type: ignore[attr-defined]


def test_cancel_while_queued_in_process(
    client: TestClient, world: RoundWorld, fly_ash: Any, drain: Any, session: Session
) -> None:
    rnd = new_round(client, world.manager_headers)
    r = client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=world.manager_headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert drain() == []  # the worker finds nothing to run
    status = status_of(client, world.manager_headers, rnd["id"])
    assert (status["round_state"], status["run_state"], status["done"]) == ("cancelled", "cancelled", True)
    assert written(session, rnd["current_run"]["id"]) == (0, 0)
    again = client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=world.manager_headers)
    assert again.status_code == 409 and "only a queued or running round can be cancelled" in again.json()["detail"]


def test_cancel_while_running_in_process_writes_nothing_and_the_round_can_be_retried(
    real_thread: None,
    client: TestClient,
    world: RoundWorld,
    fly_ash: Any,
    session: Session,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = GatedSolver()
    monkeypatch.setattr(solving.solver, "solve", gate)
    rnd = new_round(client, world.manager_headers)
    assert gate.started.wait(30), "the worker thread never started solving"
    status = status_of(client, world.manager_headers, rnd["id"])
    assert (status["round_state"], status["run_state"]) == ("running", "running")

    r = client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=world.manager_headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert jobs.thread_worker(engine, settings).wait_idle(30)  # the job noticed at its next progress report
    gate.release.set()
    run1 = run_row(engine, rnd["id"], 1)
    assert run1.state is RunState.CANCELLED and run1.problem is None and run1.solution is None
    assert written(session, run1.id or 0) == (0, 0)

    monkeypatch.setattr(solving.solver, "solve", gate.real)
    r = client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=world.manager_headers)
    assert r.status_code == 202 and r.json()["reason"] == "retry" and r.json()["number"] == 2
    assert wait_done(client, world.manager_headers, rnd["id"])["round_state"] == "review"
    s, d = fly_ash
    assert allocation_set(session, r.json()["id"]) == {(s.id, d.id, 80_000)}


# ---------------------------------------------------------------------------------------------- vanished workers


def test_a_run_whose_worker_vanished_is_reaped_and_a_retry_gives_the_same_result(
    client: TestClient,
    world: RoundWorld,
    fly_ash: Any,
    drain: Any,
    session: Session,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A control round over the same listings, run normally: the result the retry must reproduce.
    control = new_round(client, world.manager_headers)
    drain()
    expected = allocation_set(session, control["current_run"]["id"])
    assert expected

    # The worker claims the run, then hangs without a heartbeat (a machine that lost power looks the same).
    gate = GatedSolver(report_progress=False)
    monkeypatch.setattr(solving.solver, "solve", gate)
    rnd = new_round(client, world.manager_headers)
    run_id = rnd["current_run"]["id"]
    outcome: list[RunState] = []
    ghost = threading.Thread(target=lambda: outcome.append(solving.run_round(engine, run_id, heartbeat_s=3600)))
    ghost.start()
    assert gate.started.wait(30)
    assert solving.reap_stale_runs(engine, settings.job_heartbeat_timeout_s) == []  # still fresh: left alone
    age_heartbeat(engine, run_id, settings.job_heartbeat_timeout_s + 5)

    status = status_of(client, world.manager_headers, rnd["id"])  # reading the round reaps it
    assert (status["round_state"], status["run_state"], status["done"]) == ("failed", "failed", True)
    assert "stopped responding" in status["error"] and "retry" in status["error"]
    events = session.exec(
        select(AuditEvent).where(AuditEvent.action == "round.run.fail", AuditEvent.entity_id == rnd["id"])
    ).all()
    assert len(events) == 1

    # The hung worker wakes up: it finds its run taken over and writes nothing.
    gate.release.set()
    ghost.join(30)
    assert outcome == [RunState.FAILED]
    assert written(session, run_id) == (0, 0)
    with pytest.raises(solving.RunAborted):
        solving.Progress(engine, run_id).beat()

    monkeypatch.setattr(solving.solver, "solve", gate.real)
    r = client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=world.manager_headers)
    assert r.status_code == 202 and r.json()["reason"] == "retry"
    drain()
    assert status_of(client, world.manager_headers, rnd["id"])["round_state"] == "review"
    assert allocation_set(session, r.json()["id"]) == expected


def test_a_late_write_of_a_reaped_run_is_refused(
    client: TestClient, world: RoundWorld, fly_ash: Any, session: Session, engine: Engine
) -> None:
    """The last guard: results are written only if the run is still RUNNING inside the writing transaction."""
    rnd = new_round(client, world.manager_headers)
    run_id = rnd["current_run"]["id"]
    assert solving._claim(engine, run_id, "ghost:1:round-worker") is not None
    run_settings = run_row(engine, rnd["id"], 1).settings
    with session_scope(engine) as s:
        round_row = s.get(Round, rnd["id"])
        assert round_row is not None
        built = solving.build_problem(s, round_row, run_settings)
        s.commit()
    solution = solver.solve(built.problem)
    age_heartbeat(engine, run_id, 10)
    assert solving.reap_stale_runs(engine, 5) == [run_id]
    with pytest.raises(solving.RunAborted):
        solving._write_results(engine, run_id, built, solution)
    assert written(session, run_id) == (0, 0)
    assert run_row(engine, rnd["id"], 1).state is RunState.FAILED


def test_the_reaper_thread_marks_stale_runs_failed_and_leaves_queued_and_live_runs(
    client: TestClient, world: RoundWorld, fly_ash: Any, engine: Engine, settings: Settings
) -> None:
    stale, live, queued = (new_round(client, world.manager_headers) for _ in range(3))
    for rnd in (stale, live):
        assert solving._claim(engine, rnd["current_run"]["id"], "worker:1:x") is not None
    age_heartbeat(engine, stale["current_run"]["id"], 60)
    with jobs.Reaper(settings.database_url, timeout_s=30, interval_s=0.05):
        wait_until(lambda: run_row(engine, stale["id"], 1).state is RunState.FAILED, 10, "the reaper")
        time.sleep(0.2)
    assert run_row(engine, live["id"], 1).state is RunState.RUNNING
    assert run_row(engine, queued["id"], 1).state is RunState.QUEUED


# ---------------------------------------------------------------------------------------------- crashes


def test_a_solver_crash_fails_the_run_visibly_and_leaves_nothing(
    client: TestClient,
    world: RoundWorld,
    fly_ash: Any,
    drain: Any,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(problem: solver.Problem, progress: Any = None, **kwargs: Any) -> solver.Solution:
        if progress is not None:
            progress("solving", 0.4)
        raise RuntimeError("the solver exploded")

    monkeypatch.setattr(solving.solver, "solve", explode)
    rnd = new_round(client, world.manager_headers)
    drain()
    status = status_of(client, world.manager_headers, rnd["id"])
    assert (status["round_state"], status["run_state"]) == ("failed", "failed")
    assert status["error"] == "RuntimeError: the solver exploded"
    assert written(session, rnd["current_run"]["id"]) == (0, 0)
    r = client.post(f"/api/v1/rounds/{rnd['id']}/publish", headers=world.manager_headers)
    assert r.status_code == 409 and "only a round in review can be published" in r.json()["detail"]
    assert session.exec(select(Proposal)).all() == []


def test_a_crash_while_writing_results_rolls_the_whole_write_back(
    client: TestClient,
    world: RoundWorld,
    fly_ash: Any,
    drain: Any,
    session: Session,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crash comes after the allocations and unmatched lots were flushed to the database, just before the
    commit: none of them survive, and the retry writes the full result once."""
    flushed: list[int] = []
    real_finish = solving.finish_review

    def crash(session_: Session, rnd: Round, run: RoundRun) -> None:
        flushed.append(len(session_.exec(select(RoundAllocation).where(RoundAllocation.run_id == run.id)).all()))
        raise OSError("disk full")

    monkeypatch.setattr(solving, "finish_review", crash)
    rnd = new_round(client, world.manager_headers)
    drain()
    assert flushed == [1]  # the rows were there inside the transaction
    run1 = run_row(engine, rnd["id"], 1)
    assert run1.state is RunState.FAILED and run1.error == "OSError: disk full"
    assert (run1.problem, run1.solution, run1.report) == (None, None, None)
    assert written(session, run1.id or 0) == (0, 0)
    assert status_of(client, world.manager_headers, rnd["id"])["round_state"] == "failed"

    monkeypatch.setattr(solving, "finish_review", real_finish)
    r = client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=world.manager_headers)
    assert r.status_code == 202
    drain()
    s, d = fly_ash
    assert allocation_set(session, r.json()["id"]) == {(s.id, d.id, 80_000)}
    assert len(session.exec(select(RoundAllocation)).all()) == 1  # the failed attempt left no rows behind


def test_an_unreachable_queue_fails_the_run_instead_of_leaving_it_queued(
    settings: Settings, world: RoundWorld, fly_ash: Any
) -> None:
    from exchange.app import create_app

    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken)) as c:
        rnd = new_round(c, world.manager_headers)
        status = status_of(c, world.manager_headers, rnd["id"])
    assert (status["round_state"], status["run_state"]) == ("failed", "failed")
    assert "the job queue is unreachable" in status["error"]


# ---------------------------------------------------------------------------------------------- RQ


def test_with_redis_the_app_only_enqueues_and_a_separate_worker_process_runs_the_round(
    rq_settings: Settings, rq_client: TestClient, world: RoundWorld, fly_ash: Any, session: Session
) -> None:
    from rq import Queue

    rnd = new_round(rq_client, world.manager_headers)
    run = rnd["current_run"]
    assert run["backend"] == "rq"
    job_id = run_row(rq_client.app.state.engine, rnd["id"], 1).job_id  # type: ignore[attr-defined]
    assert job_id == f"exchange-round-run-{run['id']}"
    queue = Queue(rq_settings.queue_name, connection=jobs._redis(rq_settings))
    assert queue.job_ids == [job_id]
    time.sleep(0.3)
    assert status_of(rq_client, world.manager_headers, rnd["id"])["round_state"] == "queued"  # nobody ran it

    done = run_worker_process(rq_settings, "--burst")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Serving matching rounds from the queue '{rq_settings.queue_name}'" in done.stdout

    status = status_of(rq_client, world.manager_headers, rnd["id"])
    assert (status["round_state"], status["run_state"], status["stage"]) == ("review", "succeeded", "done")
    s, d = fly_ash
    assert allocation_set(session, run["id"]) == {(s.id, d.id, 80_000)}
    row = run_row(rq_client.app.state.engine, rnd["id"], 1)  # type: ignore[attr-defined]
    assert row.worker and row.worker != solving.worker_name()  # another process ran it
    job = rq_job(rq_settings, job_id)
    assert job.get_status() == "finished" and job.return_value() == "succeeded"
    assert queue.count == 0


def test_the_worker_command_reaps_stale_runs_when_it_starts(
    rq_settings: Settings, rq_client: TestClient, world: RoundWorld, fly_ash: Any
) -> None:
    engine = rq_client.app.state.engine  # type: ignore[attr-defined]
    rnd = new_round(rq_client, world.manager_headers)
    rq_job(rq_settings, run_row(engine, rnd["id"], 1).job_id or "").cancel()  # lost with its machine
    assert solving._claim(engine, rnd["current_run"]["id"], "gone:1:MainThread") is not None
    age_heartbeat(engine, rnd["current_run"]["id"], rq_settings.job_heartbeat_timeout_s + 5)
    assert jobs.work(rq_settings, burst=True, simple=True) is False  # no job to run; the stale run was reaped
    run = run_row(engine, rnd["id"], 1)
    assert run.state is RunState.FAILED and "gone:1:MainThread" in (run.error or "")


def test_with_redis_cancel_while_queued_drops_the_job(
    rq_settings: Settings, rq_client: TestClient, world: RoundWorld, fly_ash: Any, session: Session
) -> None:
    engine = rq_client.app.state.engine  # type: ignore[attr-defined]
    rnd = new_round(rq_client, world.manager_headers)
    job_id = run_row(engine, rnd["id"], 1).job_id or ""
    r = rq_client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=world.manager_headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert rq_job(rq_settings, job_id).get_status() == "canceled"
    assert jobs.work(rq_settings, burst=True, simple=True) is False
    assert run_row(engine, rnd["id"], 1).state is RunState.CANCELLED
    assert written(session, rnd["current_run"]["id"]) == (0, 0)

    # A job that escaped the cancel (say Redis was briefly unreachable) finds its run cancelled and does nothing.
    assert jobs.rq_run(rnd["current_run"]["id"]) == "cancelled"
    assert written(session, rnd["current_run"]["id"]) == (0, 0)

    r = rq_client.post(f"/api/v1/rounds/{rnd['id']}/runs", headers=world.manager_headers)
    assert r.status_code == 202 and r.json()["backend"] == "rq"
    assert jobs.work(rq_settings, burst=True, simple=True) is True
    assert status_of(rq_client, world.manager_headers, rnd["id"])["round_state"] == "review"


def test_with_redis_cancel_while_running_stops_the_job_and_writes_nothing(
    rq_settings: Settings,
    rq_client: TestClient,
    world: RoundWorld,
    fly_ash: Any,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = GatedSolver()
    monkeypatch.setattr(solving.solver, "solve", gate)
    rnd = new_round(rq_client, world.manager_headers)
    cancelled: list[int] = []

    def manager() -> None:
        if gate.started.wait(30):
            r = rq_client.post(f"/api/v1/rounds/{rnd['id']}/cancel", headers=world.manager_headers)
            cancelled.append(r.status_code)

    helper = threading.Thread(target=manager)
    helper.start()
    try:
        # RQ's worker must run in the main thread (it installs signal handlers); the manager cancels meanwhile.
        assert jobs.work(rq_settings, burst=True, simple=True) is True
    finally:
        gate.release.set()
        helper.join(30)
    assert cancelled == [200]
    engine = rq_client.app.state.engine  # type: ignore[attr-defined]
    run = run_row(engine, rnd["id"], 1)
    assert run.state is RunState.CANCELLED and run.solution is None
    assert written(session, rnd["current_run"]["id"]) == (0, 0)
    assert status_of(rq_client, world.manager_headers, rnd["id"])["round_state"] == "cancelled"


# ---------------------------------------------------------------------------------------------- the command


def test_the_worker_command_needs_a_redis_url(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from exchange import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    assert cli.main(["worker", "--burst"]) == 2
    assert "EXCHANGE_REDIS_URL is not set" in capsys.readouterr().err
