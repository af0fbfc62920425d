"""Idempotency-Key on POST /api/...: replay, payload mismatch, in-flight duplicates, failures released."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from exchange.accounts.models import Role, User
from exchange.idempotency.models import IdempotencyRecord, IdempotencyState
from tests.factories import login


class Probe:
    """Test-only routes added to the real app: they count executions and can be held open."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False


@pytest.fixture
def probe(app: FastAPI) -> Probe:
    p = Probe()

    @app.post("/api/test/things", status_code=201)
    async def create_thing(request: Request) -> dict[str, object]:
        body = await request.json()
        with p.lock:
            p.calls += 1
            n = p.calls
        p.entered.set()
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(p.release.wait, 10)
        if p.fail_next:
            p.fail_next = False
            raise RuntimeError("boom")
        return {"id": n, "echo": body}

    return p


@pytest.fixture
def admin_headers(make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]]) -> dict[str, str]:
    return token_for(make_user(Role.ADMIN))


@pytest.fixture
def quiet_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def records(session: Session) -> list[IdempotencyRecord]:
    return list(session.exec(select(IdempotencyRecord)))


def test_same_key_and_payload_replays_the_first_response(
    client: TestClient, probe: Probe, admin_headers: dict[str, str], session: Session
) -> None:
    h = {**admin_headers, "Idempotency-Key": "k-1"}
    first = client.post("/api/test/things", json={"a": 1}, headers=h)
    again = client.post("/api/test/things", json={"a": 1}, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"id": 1, "echo": {"a": 1}}
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert probe.calls == 1
    [rec] = records(session)
    assert rec.state is IdempotencyState.DONE and rec.status_code == 201
    assert len(rec.scope) == 64 and admin_headers["Authorization"][7:] not in rec.scope  # a hash, not the token


def test_same_key_with_another_payload_is_422_and_runs_nothing(
    client: TestClient, probe: Probe, admin_headers: dict[str, str]
) -> None:
    h = {**admin_headers, "Idempotency-Key": "k-2"}
    assert client.post("/api/test/things", json={"a": 1}, headers=h).status_code == 201
    r = client.post("/api/test/things", json={"a": 2}, headers=h)
    assert r.status_code == 422
    assert r.json()["field"] == "Idempotency-Key" and "different request" in r.json()["detail"]
    r = client.post("/api/test/things?x=1", json={"a": 1}, headers=h)  # the query string is part of the request
    assert r.status_code == 422
    assert probe.calls == 1


def test_keys_are_scoped_to_the_credential(
    client: TestClient,
    probe: Probe,
    make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    one, two = token_for(make_user(Role.ADMIN)), token_for(make_user(Role.ADMIN))
    r1 = client.post("/api/test/things", json={"a": 1}, headers={**one, "Idempotency-Key": "shared"})
    r2 = client.post("/api/test/things", json={"a": 1}, headers={**two, "Idempotency-Key": "shared"})
    assert (r1.json()["id"], r2.json()["id"]) == (1, 2)
    assert "idempotent-replayed" not in r2.headers


def test_a_duplicate_while_the_first_is_in_flight_gets_409(
    client: TestClient, probe: Probe, admin_headers: dict[str, str], session: Session
) -> None:
    h = {**admin_headers, "Idempotency-Key": "slow"}
    probe.release.clear()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/api/test/things", json={"a": 1}, headers=h)
        assert probe.entered.wait(10)
        [rec] = records(session)
        assert rec.state is IdempotencyState.IN_FLIGHT  # committed before the handler ran
        dup = client.post("/api/test/things", json={"a": 1}, headers=h)
        assert dup.status_code == 409 and dup.headers["retry-after"] == "1"
        probe.release.set()
        assert first.result().status_code == 201
    replay = client.post("/api/test/things", json={"a": 1}, headers=h)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert probe.calls == 1


def test_many_concurrent_duplicates_run_the_handler_once(
    client: TestClient, probe: Probe, admin_headers: dict[str, str]
) -> None:
    h = {**admin_headers, "Idempotency-Key": "stampede"}
    start = threading.Barrier(16)

    def post() -> int:
        start.wait()
        return client.post("/api/test/things", json={"a": 1}, headers=h).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: post(), range(16)))
    assert probe.calls == 1
    assert set(codes) <= {201, 409} and codes.count(201) >= 1


def test_a_server_error_releases_the_key_so_the_client_can_retry(
    quiet_client: TestClient, probe: Probe, admin_headers: dict[str, str], session: Session
) -> None:
    h = {**admin_headers, "Idempotency-Key": "flaky"}
    probe.fail_next = True
    assert quiet_client.post("/api/test/things", json={"a": 1}, headers=h).status_code == 500
    assert records(session) == []
    r = quiet_client.post("/api/test/things", json={"a": 1}, headers=h)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert probe.calls == 2


def test_a_malformed_key_is_refused_and_requests_without_a_key_are_untouched(
    client: TestClient, probe: Probe, admin_headers: dict[str, str], session: Session
) -> None:
    r = client.post("/api/test/things", json={}, headers={**admin_headers, "Idempotency-Key": "x" * 256})
    assert r.status_code == 400 and r.json()["field"] == "Idempotency-Key"
    assert probe.calls == 0
    client.post("/api/test/things", json={}, headers=admin_headers)
    client.post("/api/test/things", json={}, headers=admin_headers)
    assert probe.calls == 2 and records(session) == []


def test_a_real_create_route_is_not_doubled(
    client: TestClient, admin_headers: dict[str, str], session: Session
) -> None:
    body = {"email": "reg@example.com", "display_name": "Reg", "password": "regulator-pass-1", "role": "regulator"}
    body["region_code"] = "130000"
    h = {**admin_headers, "Idempotency-Key": "create-reg"}
    first = client.post("/api/v1/users", json=body, headers=h)
    again = client.post("/api/v1/users", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert session.exec(select(func.count()).select_from(User).where(User.email == "reg@example.com")).one() == 1
    # Without the key the service's own rule answers: the account already exists.
    assert client.post("/api/v1/users", json=body, headers=admin_headers).status_code == 409


def test_cookie_sessions_are_a_scope_too_and_cookies_are_never_stored(
    client: TestClient, probe: Probe, make_user: Callable[..., User], session: Session
) -> None:
    token = login(client, make_user(Role.ENTERPRISE))
    h = {"X-CSRF-Token": token, "Idempotency-Key": "cookie-k"}
    first = client.post("/api/test/things", json={"a": 1}, headers=h)
    again = client.post("/api/test/things", json={"a": 1}, headers=h)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    [rec] = records(session)
    assert all(name.lower() != "set-cookie" for name, _ in rec.response_headers)


def test_login_and_token_creation_are_never_recorded(
    client: TestClient, make_user: Callable[..., User], admin_headers: dict[str, str], session: Session
) -> None:
    h = {**admin_headers, "Idempotency-Key": "tok"}
    a = client.post("/api/v1/me/tokens", json={"name": "x"}, headers=h)
    b = client.post("/api/v1/me/tokens", json={"name": "x"}, headers=h)
    assert a.status_code == b.status_code == 201 and a.json()["token"] != b.json()["token"]
    assert records(session) == []
