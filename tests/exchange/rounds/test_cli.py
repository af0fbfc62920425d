"""`exchange round`: the manager's round from the shell, through the same services as the page and the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, select

from exchange import cli
from exchange.rounds import jobs, solving
from exchange.rounds.models import Proposal
from exchange.settings import Settings
from tests.exchange.rounds.conftest import PERIOD, RoundWorld


@pytest.fixture
def run_inline(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The run happens inside create_round's dispatch (the in-process backend, without its thread)."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(jobs, "ensure_thread_worker", lambda engine, s: solving.run_pending(engine))


def test_a_manager_runs_and_publishes_a_round_from_the_shell(
    run_inline: None,
    world: RoundWorld,
    make_listing: Callable[..., Any],
    session: Session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 100)
    make_listing(world.consumer, "demand", "fly_ash", 60)
    code = cli.main(["round", "--as", world.manager.email, "--period", PERIOD, "--publish"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["state"] == "succeeded" and result["proposals"] == 1
    assert result["summary"]["matched_t"] == "60.000" and result["summary"]["offered_t"] == "100.000"
    [proposal] = session.exec(select(Proposal)).all()
    assert proposal.quantity_kg == 60_000


def test_the_command_refuses_unknown_accounts_bad_periods_and_the_wrong_roles(
    run_inline: None, world: RoundWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["round", "--as", "nobody@example.cn", "--period", PERIOD]) == 2
    assert "no account nobody@example.cn" in capsys.readouterr().err
    assert cli.main(["round", "--as", world.manager.email, "--period", "2025-13"]) == 2
    assert "period" in capsys.readouterr().err
    assert cli.main(["round", "--as", world.producer.user.email, "--period", PERIOD]) == 2
    assert "error:" in capsys.readouterr().err
