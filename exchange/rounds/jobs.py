"""Where a round's runs execute.

- Default: a worker thread inside the app process (nothing else to start). It is started when a run is
  queued (and when a round page or status is read, so queued runs survive a restart), runs every queued
  `thread` run oldest first, and exits when the queue is empty. The database is the queue: claiming a run is a
  row-locked QUEUED → RUNNING change, so several app processes may each have a thread without running a
  run twice.
- With `EXCHANGE_REDIS_URL` set: each run is enqueued on the RQ queue `EXCHANGE_QUEUE_NAME`, served by
  `exchange worker` on any number of machines (each job opens its own database connections).

Either way the job body is `solving.run_round`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.engine import Engine

from exchange.core.db import make_engine, session_scope
from exchange.rounds import solving
from exchange.rounds.models import RoundRun
from exchange.settings import Settings, get_settings

log = logging.getLogger(__name__)

RQ_JOB_TIMEOUT_S = 6 * 3600


def backend_for(settings: Settings) -> str:
    return "rq" if settings.redis_url else "thread"


def dispatch(engine: Engine, settings: Settings, run: RoundRun) -> None:
    """Hand a committed QUEUED run to its backend. A queue that cannot be reached fails the run (retryable)."""
    assert run.id is not None
    if run.backend == "rq":
        try:
            job_id = enqueue_rq(settings, run.id)
        except Exception as exc:  # noqa: BLE001 - Redis down, wrong URL: the run fails visibly, never hangs
            log.exception("could not enqueue run %s", run.id)
            _fail_queued(engine, run.id, f"the job queue is unreachable ({type(exc).__name__}); retry later")
            return
        with session_scope(engine) as session:
            row = session.get(RoundRun, run.id)
            if row is not None:
                row.job_id = job_id
                session.commit()
        return
    ensure_thread_worker(engine, settings)


def _fail_queued(engine: Engine, run_id: int, error: str) -> None:
    solving._fail(engine, run_id, error)


# ---------------------------------------------------------------------------------------------- in-process


class ThreadWorker:
    """One per database engine and process; see the module docstring."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    def ensure(self) -> None:
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self.idle.clear()
            self.thread = threading.Thread(target=self._loop, name="round-worker", daemon=True)
            self.thread.start()

    def _next(self) -> int | None:
        with session_scope(self.engine) as session:
            nxt = next(iter(solving.queued_runs(session, "thread")), None)
            return nxt.id if nxt is not None else None

    def _loop(self) -> None:
        heartbeat_s = max(1.0, self.settings.job_heartbeat_timeout_s / 4)
        while True:
            try:
                solving.reap_stale_runs(self.engine, self.settings.job_heartbeat_timeout_s)
                with self.lock:
                    run_id = self._next()
                    if run_id is None:
                        # Decided under the lock: `ensure` after a new commit either sees us alive (and we
                        # will find the run on the next pass) or starts a new thread.
                        self.thread = None
                        self.idle.set()
                        return
                solving.run_round(self.engine, run_id, heartbeat_s=heartbeat_s)
            except Exception:  # noqa: BLE001 - keep serving the queue; the run records its own failure
                log.exception("round worker loop error")
                with self.lock:
                    self.thread = None
                    self.idle.set()
                return

    def wait_idle(self, timeout_s: float) -> bool:
        return self.idle.wait(timeout_s)


_thread_workers: dict[str, ThreadWorker] = {}
_registry_lock = threading.Lock()


def thread_worker(engine: Engine, settings: Settings) -> ThreadWorker:
    key = str(engine.url)
    with _registry_lock:
        worker = _thread_workers.get(key)
        if worker is None or worker.engine is not engine:
            worker = _thread_workers[key] = ThreadWorker(engine, settings)
        return worker


def ensure_thread_worker(engine: Engine, settings: Settings) -> None:
    thread_worker(engine, settings).ensure()


def kick(engine: Engine, settings: Settings) -> None:
    """Called when rounds are read: reap runs whose worker vanished, and (in-process mode) make sure a thread
    serves any queued runs, e.g. after the app restarted."""
    solving.reap_stale_runs(engine, settings.job_heartbeat_timeout_s)
    if backend_for(settings) == "thread":
        with session_scope(engine) as session:
            pending = bool(solving.queued_runs(session, "thread"))
        if pending:
            ensure_thread_worker(engine, settings)


# ---------------------------------------------------------------------------------------------- RQ


def _redis(settings: Settings) -> Any:
    from redis import Redis

    assert settings.redis_url
    return Redis.from_url(settings.redis_url)


def enqueue_rq(settings: Settings, run_id: int) -> str:
    from rq import Queue

    queue = Queue(settings.queue_name, connection=_redis(settings))
    job = queue.enqueue(
        "exchange.rounds.jobs.rq_run",
        run_id,
        job_id=f"exchange-round-run-{run_id}",
        job_timeout=RQ_JOB_TIMEOUT_S,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"matching round run {run_id}",
    )
    return str(job.id)


def cancel_rq(settings: Settings, job_id: str | None) -> None:
    """Best effort: drop a queued job from Redis (the run's CANCELLED state already stops it either way)."""
    if not job_id or not settings.redis_url:
        return
    try:
        from rq.job import Job

        Job.fetch(job_id, connection=_redis(settings)).cancel()
    except Exception:  # noqa: BLE001 - the job may have finished or expired; the database state decides
        log.info("could not cancel RQ job %s", job_id)


def rq_run(run_id: int) -> str:
    """The RQ job: run on the worker's own database (its settings), with a fresh engine per job — RQ forks a
    child per job, and connections must not be shared across a fork."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        solving.reap_stale_runs(engine, settings.job_heartbeat_timeout_s)
        state = solving.run_round(engine, run_id, heartbeat_s=max(1.0, settings.job_heartbeat_timeout_s / 4))
        return state.value
    finally:
        engine.dispose()


class Reaper:
    """Marks runs whose worker vanished as failed, every `interval_s`, from a daemon thread of the `exchange
    worker` process: its main thread sits in RQ's blocking dequeue (or waits for a long job), so it cannot do it.

    Each pass opens and disposes its own engine, so no pooled connection is ever shared with the children RQ
    forks for the jobs."""

    def __init__(self, database_url: str, timeout_s: float, interval_s: float) -> None:
        self.database_url = database_url
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="round-reaper", daemon=True)

    def reap_once(self) -> list[int]:
        engine = make_engine(self.database_url)
        try:
            reaped = solving.reap_stale_runs(engine, self.timeout_s)
        finally:
            engine.dispose()
        if reaped:
            log.warning("marked runs %s failed: their workers stopped responding", reaped)
        return reaped

    def _loop(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                self.reap_once()
            except Exception:  # noqa: BLE001 - database briefly unreachable: try again next time
                log.exception("reaping stale runs failed")

    def __enter__(self) -> Reaper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def reap_interval_s(settings: Settings) -> float:
    return max(1.0, settings.job_heartbeat_timeout_s / 4)


def work(settings: Settings, *, burst: bool = False, queue_name: str | None = None, simple: bool = False) -> bool:
    """`exchange worker`: serve the RQ queue until stopped (or, with `burst`, until it is empty); returns whether
    any job ran. Reaps runs of vanished workers when it starts and then every quarter of the heartbeat timeout.

    `simple` runs jobs in this process instead of a forked child per job (RQ's SimpleWorker); it must be called
    from the main thread either way (RQ installs signal handlers)."""
    from rq import Queue, SimpleWorker, Worker

    reaper = Reaper(settings.database_url, settings.job_heartbeat_timeout_s, reap_interval_s(settings))
    reaper.reap_once()
    conn = _redis(settings)
    queue = Queue(queue_name or settings.queue_name, connection=conn)
    worker_cls = SimpleWorker if simple else Worker
    worker = worker_cls([queue], connection=conn)
    with reaper:
        return bool(worker.work(burst=burst, with_scheduler=False))
