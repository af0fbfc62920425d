"""API fuzzing: schemathesis generates requests for every operation of the app's own OpenAPI schema, in process.

Each operation gets its own freshly populated exchange (`fuzz_world`) and a bounded number of generated cases,
valid ones and deliberately invalid ones. Every case is sent by a caller drawn from every role (and anonymously)
with a bearer token, and ids in the path are often swapped for ids that exist, so the cases reach the services
instead of stopping at 404. What must hold for every response:

- no server error (5xx, or an exception escaping the app);
- the response conforms to the schema: body against the documented schema of its status code, content type
  and documented headers. (Undocumented status codes such as 401/403/404 are not counted as failures: FastAPI
  documents only 200 and 422 unless a route says more.)

`EXCHANGE_FUZZ_EXAMPLES` sets the cases per operation (default 12, about a minute and a half; `make
reliability` runs more). The figure (operations × cases, failures) is printed at the end of the run and, with
`EXCHANGE_FUZZ_REPORT=path.json`, written as JSON.
"""

from __future__ import annotations

import json
import os
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from exchange.settings import Settings
from tests.reliability.conftest import FuzzWorld

EXAMPLES = int(os.environ.get("EXCHANGE_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]
# Shared with the session summary in conftest.py: cases tried and failures found, per operation.
TRIED: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
FAILED: dict[str, list[str]] = {}


def _operations() -> list[tuple[str, str]]:
    """Every (METHOD, path) in the schema, read from an app that needs no database (so a new route is fuzzed
    without touching this file)."""
    from exchange.app import create_app

    schema = create_app(Settings(database_url="sqlite://", secret_key="collect")).openapi()
    return [(method.upper(), path) for path, ops in schema["paths"].items() for method in ops]


OPERATIONS = _operations()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings without the per-client rate limit (every case comes from one address)."""
    return settings.model_copy(update={"rate_limit_per_minute": 0})


@pytest.fixture
def fuzz_app(app: FastAPI) -> Iterator[FastAPI]:
    yield app
    # schemathesis keeps each app's lifespan (and so the app) alive for the process; let this one go.
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


def _strategy(operation: Any) -> Any:
    """Valid requests and deliberately invalid ones (wrong types, out-of-range values, missing fields)."""
    return st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))


def _send(case: Any, world: FuzzWorld, data: st.DataObject) -> tuple[str, Any]:
    caller = data.draw(st.sampled_from(sorted(world.callers)), label="caller")
    for name in list(case.path_parameters or {}):
        known = world.ids.get(name)
        if known and data.draw(st.booleans(), label=f"known {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known), label=name)
    return caller, case.call(headers=world.callers[caller])


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_survives_fuzzing(method: str, path: str, fuzz_app: FastAPI, fuzz_world: FuzzWorld) -> None:
    # The schema straight from the app (a JSON round trip, as a client would read it), not over a request: one
    # less request to wait on, and the cases still go through the app in process.
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(fuzz_app.openapi())))
    schema.app = fuzz_app
    schema.location = "/openapi.json"
    operation = schema[path][method]
    label = f"{method} {path}"
    failures: list[tuple[str, str]] = []  # (kind, the full report)

    @seed(int(os.environ.get("EXCHANGE_FUZZ_SEED", "20250601")))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation), data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        TRIED[label] += 1
        try:
            caller, response = _send(case, fuzz_world, data)
        except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a server error
            report = f"{case.method} {case.formatted_path}\n{''.join(traceback.format_exception(exc))}"
            failures.append((f"exception {type(exc).__name__}: {exc}"[:200], report))
            return
        STATUSES[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:
            kinds = ", ".join(f"{f.code} {f.title}" for f in exc.exceptions)
            failures.append((f"{response.status_code} {kinds}", f"as {caller}: {exc}"))

    fuzz()
    if failures:
        FAILED[label] = [kind for kind, _ in failures]
    kinds = Counter(kind for kind, _ in failures)
    firsts = {kind: report for kind, report in reversed(failures)}
    assert not failures, f"{len(failures)} failing case(s) for {label}: {dict(kinds)}\n" + "\n".join(
        f"--- {kind}:\n{report}" for kind, report in firsts.items()
    )


def pytest_fuzz_figures() -> dict[str, Any]:
    """The figures for docs/reliability.md (read by the session summary in conftest.py)."""
    return {
        "operations": len(TRIED),
        "operations_in_schema": len(OPERATIONS),
        "cases": sum(TRIED.values()),
        "examples_per_operation": EXAMPLES,
        "failing_operations": sorted(FAILED),
        "failing_cases": sum(len(v) for v in FAILED.values()),
        "statuses": dict(sorted(STATUSES.items())),
    }


def write_report(path: str | Path) -> None:
    Path(path).write_text(json.dumps(pytest_fuzz_figures(), indent=2) + "\n")
