"""Restart PostgreSQL under traffic: requests during the outage must fail cleanly (503 with a clear message,
promptly) and service must come back by itself.

    .venv/bin/python scripts/reliability/pg_restart.py [--cluster "15 main"] [--clients 4] [--json FILE]

The app is served as in production (`exchange serve`, a uvicorn process on a free loopback port) on a scratch
PostgreSQL schema holding the demo region. Client threads send a mix of requests in a loop — the health check,
anonymous and authenticated listing searches, listing posts (half with an Idempotency-Key) — each with a 15 s
timeout. After a few seconds of traffic `pg_ctlcluster --skip-systemctl-redirect VERSION NAME restart` runs
(a fast shutdown: PostgreSQL cuts every open connection, then starts again); traffic goes on for a while after.

Checks: no 500 and no other unexpected status; every failure is a 503 with `service_unavailable` and a
sentence; no request took longer than 10 s and none timed out or lost its connection; once PostgreSQL is back,
requests succeed again without anyone stepping in (every request sent from 2 s after the first success on is
a success). Exits 1 otherwise.

Other people's tests may use the same PostgreSQL: the restart takes a second or two; run this once in a while.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.reliability.common import (  # noqa: E402
    BIN,
    DEFAULT_PG_URL,
    REPO_ROOT,
    free_port,
    load_demo_region,
    log,
    scratch_database,
)

REQUEST_TIMEOUT_S = 15.0
SLOW_S = 10.0
RECOVERED_AFTER_S = 2.0


@dataclass
class Outcome:
    started: float
    finished: float
    label: str
    status: int | None  # None: no HTTP answer (timeout, connection error)
    error: str | None = None
    detail: str | None = None


@dataclass
class Figures:
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    during_outage: dict[str, int] = field(default_factory=dict)
    restart_s: float = 0.0
    first_failure_after_restart_s: float | None = None
    last_failure_after_restart_s: float | None = None
    recovered_after_restart_end_s: float | None = None
    slowest_s: float = 0.0
    slowest_failure_s: float = 0.0
    messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        outage = ", ".join(f"{k}: {v}" for k, v in sorted(self.during_outage.items())) or "none"
        return (
            f"PostgreSQL restart under traffic: {self.requests} requests ({statuses})\n"
            f"  restart took {self.restart_s:.1f} s; failures from {self._s(self.first_failure_after_restart_s)} "
            f"to {self._s(self.last_failure_after_restart_s)} after it began ({outage}); "
            f"serving again {self._s(self.recovered_after_restart_end_s)} after it ended\n"
            f"  slowest request {self.slowest_s:.2f} s, slowest failure {self.slowest_failure_s:.2f} s; "
            f"messages: {' | '.join(self.messages) or '-'}\n"
            f"  problems: {len(self.problems)}"
        )

    @staticmethod
    def _s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"


def prepare(url: str) -> dict[str, str]:
    """The demo region plus an API token for one of its enterprise members; returns its headers."""
    from sqlmodel import col, select

    from exchange.accounts.models import Role, User
    from exchange.accounts.service import create_api_token
    from exchange.core.db import make_engine, session_scope

    log(load_demo_region(url))
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            user = session.exec(
                select(User).where(User.role == Role.ENTERPRISE, col(User.enterprise_id).is_not(None))
            ).first()
            assert user is not None
            _, raw = create_api_token(session, user, "reliability")
            session.commit()
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {raw}"}


def serve(url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": url,
        "EXCHANGE_RATE_LIMIT_PER_MINUTE": "0",  # the clients are one address sending as fast as they can
        "EXCHANGE_UPLOAD_DIR": str(log_path.parent / "uploads"),
    }
    env.pop("EXCHANGE_REDIS_URL", None)
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "exchange"), "serve", "--host", "127.0.0.1", "--port", str(port), "--quiet"],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(base: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not answer /healthz within {timeout_s:g} s")


class Traffic:
    """Client threads, each sending the mix in a loop until stopped."""

    def __init__(self, base: str, headers: dict[str, str], clients: int) -> None:
        self.base = base
        self.headers = headers
        self.clients = clients
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.keys = itertools.count(1)
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(clients)]

    def _requests(self, i: int) -> list[tuple[str, str, str, dict[str, Any]]]:
        listing = {"kind": "supply", "material_code": "fly_ash", "quantity_t": str(10 + i)}
        return [
            ("health", "GET", "/healthz", {}),
            ("search", "GET", "/api/v1/listings?material_code=fly_ash", {}),
            ("search (token)", "GET", "/api/v1/listings?kind=demand", {"headers": self.headers}),
            ("post listing", "POST", "/api/v1/listings", {"json": listing, "headers": self.headers}),
            ("post listing (idempotency key)", "POST", "/api/v1/listings", {"json": listing, "headers": self.headers}),
        ]

    def _loop(self, i: int) -> None:
        with httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT_S) as client:
            for label, method, path, kwargs in itertools.cycle(self._requests(i)):
                if self.stop.is_set():
                    return
                if "idempotency" in label:
                    kwargs = {**kwargs, "headers": {**kwargs["headers"], "Idempotency-Key": f"k-{next(self.keys)}"}}
                started = time.monotonic()
                try:
                    response = client.request(method, path, **kwargs)
                    body = (
                        response.json()
                        if response.headers.get("content-type", "").startswith("application/json")
                        else {}
                    )
                    error = body.get("error") if isinstance(body, dict) else None
                    detail = body.get("detail") if isinstance(body, dict) else None
                    outcome = Outcome(started, time.monotonic(), label, response.status_code, error, detail)
                except httpx.HTTPError as exc:
                    outcome = Outcome(started, time.monotonic(), label, None, type(exc).__name__, str(exc)[:200])
                with self.lock:
                    self.outcomes.append(outcome)

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(REQUEST_TIMEOUT_S + 5)


def restart_postgresql(cluster: str) -> tuple[float, float]:
    version, name = cluster.split()
    began = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
        check=True,
        capture_output=True,
        text=True,
    )
    return began, time.monotonic()


def analyse(outcomes: list[Outcome], began: float, ended: float) -> Figures:
    figures = Figures(requests=len(outcomes), restart_s=ended - began)
    ok = {200, 201}
    figures.statuses = dict(Counter(str(o.status or o.error) for o in outcomes))
    failures = [o for o in outcomes if o.status not in ok]
    after = [o for o in failures if o.finished >= began]
    if after:
        figures.first_failure_after_restart_s = min(o.started for o in after) - began
        figures.last_failure_after_restart_s = max(o.finished for o in after) - began
        figures.during_outage = dict(Counter(str(o.status or o.error) for o in after))
    figures.slowest_s = max((o.finished - o.started for o in outcomes), default=0.0)
    figures.slowest_failure_s = max((o.finished - o.started for o in failures), default=0.0)
    figures.messages = sorted({f"{o.status} {o.error}: {o.detail}" for o in failures if o.status is not None})

    before = [o for o in failures if o.finished < began]
    if before:
        figures.problems.append(f"{len(before)} failure(s) before the restart: {before[0]}")
    if not after:
        figures.problems.append("no request failed during the restart: the outage was not observed")
    for o in failures:
        if o.status is None:
            figures.problems.append(f"{o.label}: no answer ({o.error}: {o.detail})")
        elif o.status != 503 or o.error != "service_unavailable" or not o.detail:
            figures.problems.append(f"{o.label}: {o.status} {o.error}: {o.detail}")
    slow = [o for o in outcomes if o.finished - o.started > SLOW_S]
    if slow:
        figures.problems.append(f"{len(slow)} request(s) took more than {SLOW_S:g} s")
    successes_after = sorted(o.finished for o in outcomes if o.status in ok and o.started >= ended)
    if not successes_after:
        figures.problems.append("no request succeeded after PostgreSQL was back")
        return figures
    figures.recovered_after_restart_end_s = successes_after[0] - ended
    settled = successes_after[0] + RECOVERED_AFTER_S
    late = [o for o in failures if o.started >= settled]
    if late:
        figures.problems.append(f"{len(late)} failure(s) more than {RECOVERED_AFTER_S:g} s after recovery")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", default="15 main", help="pg_ctlcluster's VERSION NAME (see pg_lsclusters)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a database where a scratch schema may be made")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--before-s", type=float, default=5.0, help="traffic before the restart")
    parser.add_argument("--after-s", type=float, default=10.0, help="traffic after the restart")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--dry-run", action="store_true", help="the traffic without the restart (a rehearsal)")
    args = parser.parse_args(argv)

    import tempfile

    with scratch_database("postgresql", args.pg_url, tag="rel_restart") as url, tempfile.TemporaryDirectory() as tmp:
        headers = prepare(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(url, port, Path(tmp) / "server.log")
        try:
            wait_healthy(base)
            log(f"serving on {base}; {args.clients} clients")
            with Traffic(base, headers, args.clients) as traffic:
                time.sleep(args.before_s)
                log("restarting PostgreSQL" if not args.dry_run else "(dry run: not restarting PostgreSQL)")
                began = ended = time.monotonic()
                if not args.dry_run:
                    began, ended = restart_postgresql(args.cluster)
                log(f"PostgreSQL restarted in {ended - began:.1f} s")
                time.sleep(args.after_s)
            figures = analyse(traffic.outcomes, began, ended)
            log(figures.summary())
            if not figures.ok:  # the server's own account of what went wrong
                text = (Path(tmp) / "server.log").read_text(encoding="utf-8", errors="replace")
                for block in text.split("Traceback (most recent call last):")[1:4]:
                    log("  server traceback:" + block[-1500:])
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        # The scratch schema is dropped on the way out: PostgreSQL must be up again for that too.
    for problem in figures.problems[:20]:
        log(f"  PROBLEM {problem}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures.__dict__, indent=2, ensure_ascii=False, default=str))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
