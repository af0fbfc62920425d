"""Prints the authorization matrix's figures at the end of a run (docs/reliability.md quotes them)."""

from __future__ import annotations

import sys

import pytest

from exchange.rounds import jobs


@pytest.fixture(autouse=True)
def no_round_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued runs stay queued: the world solves its rounds itself, and a probe that queues a run (a new round,
    a re-run) must not leave a solver thread running into the next test's database."""
    monkeypatch.setattr(jobs, "ensure_thread_worker", lambda engine, settings: None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    module = sys.modules.get("tests.exchange.security.test_authz_matrix")
    figures = getattr(module, "MATRIX_FIGURES", None)
    if not figures or not figures["probes"]:
        return
    terminalreporter.write_line(
        "authorization matrix: {routes} routes, {probes} probes x 7 actors = {checks} checks, "
        "{unexpected_allows} unexpected allows, {leaks} leaks of A's private data".format(**figures)
    )
