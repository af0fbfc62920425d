"""The fast variant of `scripts/reliability/concurrent_accepts.py` (100 runs of 50 accepts per database): 2 runs
of 10 concurrent accepts over HTTP against a real `exchange serve` on a scratch SQLite file, through the
script's own `main`, so its checks and its figures stay working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.reliability import concurrent_accepts


def test_the_concurrent_accepts_script_passes_and_writes_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    code = concurrent_accepts.main(["--runs", "2", "--accepts", "10", "--databases", "sqlite", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed

    [figures] = json.loads(out.read_text())
    assert figures["database"] == "sqlite" and figures["journal_mode"] == "wal"
    assert figures["worker_processes"] == 1
    assert (figures["runs"], figures["accepts_per_run"], figures["expected_accepted_per_run"]) == (2, 10, 10)
    # 10 × 7 t fit in 100 t: every accept succeeds, the supply holds 70 t.
    assert (figures["accepted"], figures["refused"]) == (20, 0)
    assert figures["statuses"] == {"200": 20}
    assert figures["max_allocated_t"] == 70
    assert (figures["violations"], figures["server_errors"], figures["lost_answers"]) == (0, 0, 0)
    assert figures["failures"] == [] and figures["server_log_errors"] == {}
    assert sum(figures["connections_per_worker"]) == 20  # every client was connected when released
    assert len(figures["run_s"]) == 2 and all(s > 0 for s in figures["run_s"])
    assert 0 < figures["median_run_s"] <= figures["p95_run_s"]
    for label in ("accepted / refused", "max allocated / supply", "violations", "5xx", "time per run"):
        assert label in printed


def test_refused_accepts_are_checked_too() -> None:
    """With more proposals than fit, the refusals are 409s with a message, named by the check that refused."""
    figures = concurrent_accepts.campaign("sqlite", runs=1, accepts=16)
    assert figures.ok, figures.failures
    assert (figures.accepted, figures.refused, figures.refused_with_message) == (14, 2, 2)
    assert figures.max_allocated_t == 98
    assert sum(figures.refusals.values()) == 2 and set(figures.refusals) <= {"listing check", "database CHECK"}


def test_more_concurrent_accepts_than_threads_do_not_stall() -> None:
    """50 accepts at once, more than the server's 40 threads: before the in-flight limit (exchange/core/inflight.py)
    every thread could wait for SQLite's write lock held by a request that needed a thread to finish, and 40 of
    the 50 ended as 500/503 after the 30 s timeouts."""
    figures = concurrent_accepts.campaign("sqlite", runs=1, accepts=50)
    assert figures.ok, figures.failures
    assert (figures.accepted, figures.refused, figures.server_errors) == (14, 36, 0)
    assert figures.median_run_s < 15, "the accepts queued behind a lock until a timeout"
