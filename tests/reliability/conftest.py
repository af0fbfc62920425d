"""A populated exchange for the fuzzers: every kind of object exists, so generated requests that name ids have
something to hit, and callers of every role to send them.

The world is built through the API (as a user would), with matching rounds run synchronously in the test's
thread: the in-process worker thread is not started, so a fuzzer's created rounds stay queued and nothing runs
behind its back.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from exchange.accounts.models import Role, User
from exchange.enterprises.models import EnterpriseStatus
from exchange.models import load_all_models
from exchange.rounds import jobs, solving
from exchange.settings import Settings
from exchange.stats import service as stats_service

PERIOD = "2025-06"
HANDAN = (36.60, 114.50)
# The smallest file the attachment check accepts as a PDF (it looks at the content, not the name).
TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class FuzzWorld:
    """Ids of everything in the world (per path-parameter name) and the callers' Authorization headers."""

    callers: dict[str, dict[str, str]]
    ids: dict[str, list[Any]] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def add(self, name: str, *values: Any) -> None:
        for v in values:
            if v is not None and v not in self.ids.setdefault(name, []):
                self.ids[name].append(v)


def _ok(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201, 202)), response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


@pytest.fixture
def no_round_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued runs wait for `solving.run_pending` instead of starting the in-process worker thread."""
    monkeypatch.setattr(jobs, "ensure_thread_worker", lambda engine, settings: None)


@dataclass
class Snapshot:
    """Every row of every table, and the uploaded files: the world, restorable into an empty database."""

    rows: dict[str, list[dict[str, Any]]]
    uploads: Path


def take_snapshot(engine: Engine, upload_dir: Path, into: Path) -> Snapshot:
    metadata = load_all_models().metadata
    with engine.connect() as conn:
        rows = {t.name: [dict(r) for r in conn.execute(t.select()).mappings()] for t in metadata.sorted_tables}
    if upload_dir.exists():
        shutil.copytree(upload_dir, into)
    else:
        into.mkdir(parents=True)
    return Snapshot(rows, into)


def restore_snapshot(engine: Engine, upload_dir: Path, snapshot: Snapshot) -> None:
    """Into the test's freshly migrated (empty) database; on PostgreSQL the id sequences are moved past the rows."""
    metadata = load_all_models().metadata
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            rows = snapshot.rows[table.name]
            if not rows:
                continue
            conn.execute(table.insert(), rows)
            if conn.dialect.name == "postgresql" and "id" in table.c:
                conn.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), :n)"),
                    {"n": max(int(r["id"]) for r in rows)},
                )
    shutil.copytree(snapshot.uploads, upload_dir, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def world_cache() -> dict[str, Any]:
    """The world built by the module's first test, for the next ones to restore (building it takes seconds)."""
    return {}


@pytest.fixture
def fuzz_world(
    world_cache: dict[str, Any],
    app: FastAPI,
    engine: Engine,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    no_round_thread: None,
    make_park: Callable[..., Any],
    make_enterprise: Callable[..., Any],
    make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> FuzzWorld:
    """The world in this test's own database: built once per module, then restored from its snapshot."""
    if "world" in world_cache:
        restore_snapshot(engine, settings.upload_dir, world_cache["snapshot"])
        world: FuzzWorld = world_cache["world"]
        return world
    world = build_world(app, engine, make_park, make_enterprise, make_user, token_for)
    into = tmp_path_factory.mktemp("world") / "uploads"
    world_cache["snapshot"] = take_snapshot(engine, settings.upload_dir, into)
    world_cache["world"] = world
    return world


def build_world(
    app: FastAPI,
    engine: Engine,
    make_park: Callable[..., Any],
    make_enterprise: Callable[..., Any],
    make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> FuzzWorld:
    """A park with its manager, a regulator, an admin, a producer and a consumer with listings, a published
    round whose proposal both sides accepted (an agreement with one delivery), a second round in review, a
    ledger row and an attachment; plus an enterprise pending approval and a member without an enterprise."""
    park = make_park(lat=HANDAN[0], lon=HANDAN[1])
    other_park = make_park(lat=39.0, lon=118.5, city_code="130200")
    producer_ent = make_enterprise("邯郸热电", park=park, industry="coal_power")
    consumer_ent = make_enterprise("邯郸水泥", park=park, lat=36.65, lon=114.55, industry="cement")
    pending_ent = make_enterprise("待审企业", park=park, status=EnterpriseStatus.PENDING)
    users = {
        "producer": make_user(Role.ENTERPRISE, enterprise=producer_ent),
        "consumer": make_user(Role.ENTERPRISE, enterprise=consumer_ent),
        "pending_member": make_user(Role.ENTERPRISE, enterprise=pending_ent),
        "newcomer": make_user(Role.ENTERPRISE),
        "manager": make_user(Role.PARK_MANAGER, park=park),
        "other_manager": make_user(Role.PARK_MANAGER, park=other_park),
        "regulator": make_user(Role.REGULATOR, region_code="130000"),
        "admin": make_user(Role.ADMIN),
    }
    callers = {name: token_for(user) for name, user in users.items()}
    world = FuzzWorld(callers={**callers, "anonymous": {}}, users=users)
    world.add("park_id", park.id, other_park.id)
    world.add("enterprise_id", producer_ent.id, consumer_ent.id, pending_ent.id)
    world.add("user_id", *(u.id for u in users.values()))
    token_for(users["producer"])  # a spare token the fuzzer may revoke without locking the producer out

    with TestClient(app) as client:
        producer, consumer, manager = callers["producer"], callers["consumer"], callers["manager"]

        def listing(headers: dict[str, str], **body: Any) -> int:
            created = _ok(client.post("/api/v1/listings", json=body, headers=headers), 201)
            return int(created["id"])

        supply = listing(producer, kind="supply", material_code="fly_ash", quantity_t="120", grade="II")
        demand = listing(consumer, kind="demand", material_code="fly_ash", quantity_t="80", max_distance_km=150)
        gypsum = listing(producer, kind="supply", material_code="fgd_gypsum", quantity_t="50")
        slag_demand = listing(consumer, kind="demand", material_code="fgd_gypsum", quantity_t="30")
        world.add("listing_id", supply, demand, gypsum, slag_demand)
        world.add("supply_listing_id", supply, gypsum)
        world.add("demand_listing_id", demand, slag_demand)

        files = {"files": ("report.pdf", TINY_PDF, "application/pdf")}
        [attachment] = _ok(client.post(f"/api/v1/listings/{supply}/attachments", files=files, headers=producer), 201)
        world.add("attachment_id", attachment["id"])

        # Round 1: published, accepted by both sides, one delivery recorded.
        rnd = _ok(client.post("/api/v1/rounds", json={"scope": "park", "period": PERIOD}, headers=manager), 202)
        solving.run_pending(engine)
        _ok(client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=manager))
        proposals = _ok_list(client.get(f"/api/v1/rounds/{rnd['id']}/proposals", headers=manager))
        agreement_id = None
        for p in proposals:
            world.add("proposal_id", p["id"])
            _ok(client.post(f"/api/v1/proposals/{p['id']}/accept", headers=producer))
            answered = _ok(client.post(f"/api/v1/proposals/{p['id']}/accept", headers=consumer))
            agreement_id = agreement_id or answered.get("agreement_id")
        assert agreement_id is not None, "the world's round made no agreement"
        world.add("agreement_id", agreement_id)
        delivery = {"delivered_on": f"{PERIOD}-10", "quantity_t": "10", "waybill_no": "WB-1"}
        made = _ok(client.post(f"/api/v1/agreements/{agreement_id}/deliveries", json=delivery, headers=producer))
        world.add("delivery_id", made["id"])

        # Round 2: solved and left in review (pins, forbids, publish and re-runs act on it).
        review = _ok(client.post("/api/v1/rounds", json={"scope": "park", "period": PERIOD}, headers=manager), 202)
        solving.run_pending(engine)
        world.add("round_id", rnd["id"], review["id"])
        world.add("number", 1, 2)

        ledger = {"material_code": "fly_ash", "period": PERIOD, "generated_t": "500", "sent_for_utilisation_t": "10"}
        entry = _ok(client.put("/api/v1/ledgers", json=ledger, headers=producer))
        world.add("entry_id", entry["id"])

    world.add("name", *stats_service.TABLES)
    world.add("token_id", *_token_ids(engine))
    return world


def _ok_list(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _token_ids(engine: Engine) -> list[int]:
    from sqlmodel import Session, select

    from exchange.accounts.models import ApiToken

    with Session(engine) as s:
        return [t for t in s.exec(select(ApiToken.id)).all() if t is not None]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fuzzing figures (API: operations × cases, failures; imports: cases per target, server errors, writes),
    for those that ran in this session."""
    import os
    import sys

    imports = sys.modules.get("tests.reliability.test_import_fuzz")
    if imports is not None and imports.TRIED:
        terminalreporter.write_line(imports.summary_line())
    module = sys.modules.get("tests.reliability.test_api_fuzz")
    if module is None or not module.TRIED:
        return
    figures = module.pytest_fuzz_figures()
    terminalreporter.write_line(
        f"API fuzzing: {figures['operations']} operations × up to {figures['examples_per_operation']} cases = "
        f"{figures['cases']} cases; {figures['failing_cases']} failing in {len(figures['failing_operations'])} "
        f"operation(s); statuses {figures['statuses']}"
    )
    report = os.environ.get("EXCHANGE_FUZZ_REPORT")
    if report:
        module.write_report(report)
