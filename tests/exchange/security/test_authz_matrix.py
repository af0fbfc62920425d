"""The authorization matrix: every route of the app × six actors, against the policy declared in policy.py.

Routes come from the application itself, so a new route is covered (and fails until its policy is declared).
Path parameters name objects owned by enterprise A, so each outsider's request is an IDOR attempt; every
outsider's response is also searched for A's private values (price notes, ledger notes, contact details).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from exchange.app import create_app
from exchange.core.deps import CSRF_COOKIE
from exchange.settings import Settings
from tests.exchange.security.policy import PATH_PARAMS, POLICY, Rule
from tests.exchange.security.world import ANON, OUTSIDERS, ROLES, SECRET, SECRET_PRICE, World, build_world

PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
CSRF = "matrix-csrf-token"


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, included routers flattened; HEAD where GET exists and mounts left out."""
    try:  # FastAPI >= 0.160 keeps included routers as nodes; this flattens them
        from fastapi.routing import iter_route_contexts

        routes: Iterable[object] = iter_route_contexts(app.routes)
    except ImportError:  # pragma: no cover - older FastAPI lists every route in app.routes
        routes = app.routes
    found: set[tuple[str, str]] = set()
    for route in routes:
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None)
        if not methods or not path:
            continue  # a mount (/static): files, not an endpoint
        for method in methods:
            if method == "HEAD" and "GET" in methods:
                continue
            found.add((method, path))
    return sorted(found, key=lambda mp: (mp[1], mp[0]))


def _cases() -> list[tuple[str, int]]:
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    cases: list[tuple[str, int]] = []
    for method, path in app_routes(app):
        key = f"{method} {path}"
        declared = POLICY.get(key)
        rules = declared if isinstance(declared, list) else [declared]
        cases.extend((key, i) for i in range(len(rules)))
    return cases


CASES = _cases()


def rule_for(key: str, index: int) -> Rule | None:
    declared = POLICY.get(key)
    if isinstance(declared, list):
        return declared[index]
    return declared


@dataclass
class Outcome:
    role: str
    status: int
    location: str
    body: str

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 400 and not self.to_login

    @property
    def to_login(self) -> bool:
        """Sent to log in: the pages' way of saying 401 (after a password change it is a success instead)."""
        return self.role == ANON and 300 <= self.status < 400 and self.location.split("?")[0].endswith("/login")

    @property
    def denied(self) -> bool:
        return self.status in (401, 403, 404) or self.to_login

    def leaks(self) -> bool:
        return SECRET in self.body or str(SECRET_PRICE) in self.body


def fill(pattern: str, rule: Rule, world: World) -> tuple[str, dict[str, str]]:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        filler = rule.path.get(name) or PATH_PARAMS.get(name)
        if filler is None:
            pytest.fail(
                f"path parameter {{{name}}} of {pattern} has no filler: add one to PATH_PARAMS in "
                "tests/exchange/security/policy.py (an id of an object owned by enterprise A)"
            )
        return str(filler(world))

    return PARAM.sub(value, pattern), {k: str(f(world)) for k, f in rule.query.items()}


def call(app: FastAPI, method: str, url: str, params: dict[str, str], rule: Rule, world: World, role: str) -> Outcome:
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    client.cookies.set(CSRF_COOKIE, CSRF)  # CSRF is tested on its own; here it must not mask authorization
    kwargs = dict(rule.request(world, role)) if rule.request else {}
    kwargs["params"] = {**params, **kwargs.get("params", {})}
    headers = {**world.headers[role], "X-CSRF-Token": CSRF, **kwargs.pop("headers", {})}
    response: httpx.Response = client.request(method, url, headers=headers, **kwargs)
    body = response.text if "zip" not in response.headers.get("content-type", "") else ""
    return Outcome(role, response.status_code, response.headers.get("location", ""), body)


MATRIX_FIGURES = {"routes": 0, "probes": 0, "checks": 0, "unexpected_allows": 0, "leaks": 0}
_routes_seen: set[str] = set()


@pytest.mark.parametrize(("key", "index"), CASES, ids=[f"{k} [{i}]" if i else k for k, i in CASES])
def test_route_answers_each_actor_as_declared(
    key: str, index: int, app: FastAPI, session: Session, settings: Settings
) -> None:
    rule = rule_for(key, index)
    if rule is None:
        pytest.fail(
            f"{key} has no declared access policy. Add a line for it to POLICY in "
            "tests/exchange/security/policy.py saying which actors may call it (and, for a write, the request "
            "body a permitted actor sends)."
        )
    world = build_world(session, settings)
    method, pattern = key.split(" ", 1)
    url, params = fill(pattern, rule, world)
    problems: list[str] = []
    outcomes = [call(app, method, url, params, rule, world, role) for role in ROLES]
    MATRIX_FIGURES["probes"] += 1
    _routes_seen.add(key)
    MATRIX_FIGURES["routes"] = len(_routes_seen)
    for o in outcomes:
        MATRIX_FIGURES["checks"] += 1
        if o.status >= 500:
            problems.append(f"{o.role}: server error {o.status}")
        elif o.role in rule.allow:
            if o.denied:
                problems.append(f"{o.role} is allowed but got {o.status} {o.location}".rstrip())
        elif not o.denied:
            MATRIX_FIGURES["unexpected_allows"] += 1
            problems.append(f"{o.role} must be denied (401/403/404) but got {o.status}: {o.body[:200]}")
        if o.role in OUTSIDERS and o.leaks():
            MATRIX_FIGURES["leaks"] += 1
            problems.append(f"{o.role} was shown enterprise A's private data: {o.body[:300]}")
    if rule.allow and not any(o.succeeded for o in outcomes if o.role in rule.allow):
        got = ", ".join(f"{o.role}={o.status}" for o in outcomes)
        problems.append(f"no permitted actor succeeded ({got}): the probe's request in policy.py needs fixing")
    assert not problems, f"{key} (policy [{index}] {rule.why})\n  " + "\n  ".join(problems)


def test_every_declared_policy_names_a_real_route(app: FastAPI) -> None:
    routes = {f"{m} {p}" for m, p in app_routes(app)}
    stale = sorted(set(POLICY) - routes)
    assert not stale, f"policy.py declares routes the app does not have (renamed or removed?): {stale}"


def test_the_matrix_covers_every_route_and_actor(app: FastAPI) -> None:
    routes = app_routes(app)
    assert len(routes) >= 40, routes  # the router walk must not silently find nothing
    assert {f"{m} {p}" for m, p in routes} <= {k for k, _ in CASES}
    assert len(ROLES) == 7  # issue 7's six actors and a freshly signed-up account
