"""The body of a round's background job: listings in scope → solver.Problem → solver.solve → one transaction.

`run_round(engine, run_id)` is what every backend calls (the in-process thread, an RQ job served by `exchange
worker`, tests): it claims the run (QUEUED → RUNNING under a row lock, so two workers never run it twice),
reports stage and progress with a heartbeat, and writes allocations, unmatched lots, the solver's input and output
and the report in ONE transaction at the end, only if the run is still RUNNING then. A crash, a cancel or a
vanished worker therefore leaves nothing half-written; `reap_stale_runs` marks runs whose heartbeat stopped as
failed so they can be retried.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

import solver
from exchange.accounts.models import Role, User
from exchange.core.db import get_for_update, session_scope, utcnow
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.ledgers.models import LedgerEntry
from exchange.listings.models import Listing, ListingKind, ListingStatus
from exchange.reference.catalogue import load_catalogue
from exchange.rounds.common import aware, record_round, region_clause, transition
from exchange.rounds.models import (
    ROUND_TRANSITIONS,
    Agreement,
    AgreementState,
    Proposal,
    ProposalState,
    Round,
    RoundAllocation,
    RoundRun,
    RoundState,
    RoundUnmatched,
    RunStage,
    RunState,
    ScopeKind,
)

log = logging.getLogger(__name__)

# Where each stage sits on the progress bar (0..1).
STAGE_SPAN: dict[str, tuple[float, float]] = {
    "loading": (0.0, 0.1),
    "building_pairs": (0.1, 0.3),
    "solving": (0.3, 0.85),
    "explaining": (0.85, 0.9),
    "writing_results": (0.9, 1.0),
}
PROGRESS_WRITE_INTERVAL_S = 0.5


class RunAborted(Exception):
    """The run was cancelled or taken over (marked failed) while it ran: stop and write nothing."""


# ---------------------------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class ScopeSpec:
    kind: ScopeKind
    park_id: int | None
    regions: tuple[str, ...]
    period: str
    materials: tuple[str, ...]

    @classmethod
    def of(cls, rnd: Round) -> ScopeSpec:
        return cls(rnd.scope_kind, rnd.scope_park_id, tuple(rnd.scope_regions), rnd.period, tuple(rnd.materials))


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a YYYY-MM month."""
    year, month = int(period[:4]), int(period[5:7])
    first = date(year, month, 1)
    after = date(year + (month == 12), month % 12 + 1, 1)
    return first, after - timedelta(days=1)


def scope_query(spec: ScopeSpec, creator: User | None) -> Select[Any]:
    """Open listings of approved enterprises in the round's scope that the creator may see, available in the
    period, of the chosen materials; (Listing, Enterprise) rows ordered by listing id."""
    from exchange.listings.service import visibility_clause

    first, last = period_bounds(spec.period)
    stmt: Any = (
        sa.select(Listing, Enterprise)
        .join(Enterprise, col(Enterprise.id) == col(Listing.enterprise_id))
        .where(
            col(Listing.status) == ListingStatus.OPEN,
            col(Enterprise.status) == EnterpriseStatus.APPROVED,
            sa.or_(col(Listing.available_from).is_(None), col(Listing.available_from) <= last),
            sa.or_(col(Listing.available_to).is_(None), col(Listing.available_to) >= first),
        )
        .order_by(col(Listing.id))
    )
    if creator is not None:
        stmt = stmt.where(visibility_clause(creator))
    if spec.kind is ScopeKind.PARK:
        stmt = stmt.where(col(Listing.park_id) == spec.park_id)
    elif spec.kind is ScopeKind.REGIONS:
        stmt = stmt.where(
            sa.or_(*(region_clause(c, col(Listing.province_code), col(Listing.city_code)) for c in spec.regions))
        )
    elif creator is not None and creator.role is Role.REGULATOR:
        stmt = stmt.where(region_clause(creator.region_code, col(Listing.province_code), col(Listing.city_code)))
    if spec.materials:
        stmt = stmt.where(col(Listing.material_code).in_(spec.materials))
    return stmt


def scope_rows(session: Session, spec: ScopeSpec, creator: User | None) -> list[tuple[Listing, Enterprise]]:
    return [(row[0], row[1]) for row in session.execute(scope_query(spec, creator))]


def min_lot_kg(listing: Listing) -> int:
    """A supply's minimum lot, when listings carry one (`min_lot_kg`); 0 otherwise."""
    return int(getattr(listing, "min_lot_kg", None) or 0)


# ---------------------------------------------------------------------------------------------- problem


@dataclass
class Built:
    """A solver problem plus what maps it back to the database."""

    problem: solver.Problem
    listings: dict[int, Listing]
    enterprises: dict[int, Enterprise]
    agreed_kg: dict[tuple[int, int], int]  # (supply listing, demand listing) → kg fixed by this round's agreements
    manager_pins: set[tuple[int, int]]
    declined: list[tuple[int, int]]
    offered_kg: dict[int, int] = field(default_factory=dict)  # listing → kg put into the problem


def supply_id(listing_id: int) -> str:
    return f"S{listing_id}"


def demand_id(listing_id: int) -> str:
    return f"D{listing_id}"


def listing_of(solver_id: str) -> int:
    return int(solver_id[1:])


def build_problem(session: Session, rnd: Round, settings: dict[str, Any]) -> Built:
    """The round's problem at this moment: lots are what is left unallocated on each listing plus what this
    round's own agreements hold (those agreements become pins, so accepted pairs stay fixed); declined pairs
    and the manager's forbidden pairs are forbidden; the manager's pins are pinned."""
    assert rnd.id is not None
    creator = session.get(User, rnd.created_by_id) if rnd.created_by_id is not None else None
    rows = scope_rows(session, ScopeSpec.of(rnd), creator)
    agreements = session.exec(
        select(Agreement).where(
            Agreement.round_id == rnd.id,
            col(Agreement.state).in_([AgreementState.ACTIVE, AgreementState.COMPLETED]),
        )
    ).all()
    own_kg: dict[int, int] = defaultdict(int)
    agreed: dict[tuple[int, int], int] = defaultdict(int)
    for a in agreements:
        own_kg[a.supply_listing_id] += a.quantity_kg
        own_kg[a.demand_listing_id] += a.quantity_kg
        agreed[(a.supply_listing_id, a.demand_listing_id)] += a.quantity_kg

    cat = load_catalogue()
    honour = bool(settings.get("honour_min_lots", True))
    supplies: list[solver.SupplyLot] = []
    demands: list[solver.DemandLot] = []
    listings: dict[int, Listing] = {}
    enterprises: dict[int, Enterprise] = {}
    offered: dict[int, int] = {}
    materials: dict[str, solver.MaterialRule] = {}
    for listing, ent in rows:
        assert listing.id is not None and ent.id is not None
        lot_kg = listing.quantity_kg - listing.allocated_kg + own_kg.get(listing.id, 0)
        if lot_kg <= 0:
            continue
        m = cat.find(listing.material_code)
        materials[listing.material_code] = solver.MaterialRule(hazardous=bool(m and m.hazardous))
        listings[listing.id] = listing
        enterprises[ent.id] = ent
        offered[listing.id] = lot_kg
        if listing.kind is ListingKind.SUPPLY:
            supplies.append(
                solver.SupplyLot(
                    id=supply_id(listing.id),
                    material=listing.material_code,
                    quantity_t=lot_kg / 1000,
                    lat=listing.lat,
                    lon=listing.lon,
                    grade=listing.grade or None,
                    max_distance_km=listing.max_distance_km,
                    min_lot_t=min_lot_kg(listing) / 1000 if honour else 0.0,
                )
            )
        else:
            grades = tuple(listing.accepted_grades) or None
            demands.append(
                solver.DemandLot(
                    id=demand_id(listing.id),
                    quantity_t=lot_kg / 1000,
                    lat=listing.lat,
                    lon=listing.lon,
                    accepts=(solver.Accept(listing.material_code, grades),),
                    max_distance_km=listing.max_distance_km,
                    permits=tuple(ent.permits or ()),
                )
            )
    supply_ids = {listing_of(s.id) for s in supplies}
    demand_ids = {listing_of(d.id) for d in demands}

    def in_problem(pair: tuple[int, int]) -> bool:
        return pair[0] in supply_ids and pair[1] in demand_ids

    declined = sorted(
        {
            (p.supply_listing_id, p.demand_listing_id)
            for p in session.exec(
                select(Proposal).where(Proposal.round_id == rnd.id, Proposal.state == ProposalState.DECLINED)
            )
        }
    )
    manager_forbidden = {(int(s), int(d)) for s, d in settings.get("forbidden", [])}
    # An accepted agreement outranks a later "forbid" of the same pair: it stays fixed.
    forbidden_pairs = sorted((manager_forbidden | set(declined)) - set(agreed))
    pins: dict[tuple[int, int], int] = {pair: kg for pair, kg in agreed.items() if in_problem(pair)}
    manager_pins: set[tuple[int, int]] = set()
    for pin in settings.get("pins", []):
        pair = (int(pin["supply_listing_id"]), int(pin["demand_listing_id"]))
        if not in_problem(pair) or pair in manager_forbidden or pair in declined:
            continue
        manager_pins.add(pair)
        pins[pair] = max(pins.get(pair, 0), int(pin["quantity_kg"]))
    problem = solver.Problem(
        supplies=tuple(supplies),
        demands=tuple(demands),
        materials=materials,
        params=solver.Params(
            freight_cny_per_t_km=float(settings["freight_cny_per_t_km"]),
            detour_factor=float(settings["detour_factor"]),
        ),
        forbidden=tuple((supply_id(s), demand_id(d)) for s, d in forbidden_pairs if in_problem((s, d))),
        pinned=tuple(solver.Pin(supply_id(s), demand_id(d), kg / 1000) for (s, d), kg in sorted(pins.items())),
    )
    return Built(problem, listings, enterprises, dict(agreed), manager_pins, declined, offered)


def problem_to_json(problem: solver.Problem) -> dict[str, Any]:
    """The solver's JSON input contract (what `exchange solve` reads), so a run can be re-solved offline."""
    return {
        "supplies": [
            {
                "id": s.id,
                "material": s.material,
                "quantity_t": s.quantity_t,
                "lat": s.lat,
                "lon": s.lon,
                "grade": s.grade,
                "max_distance_km": s.max_distance_km,
                "min_lot_t": s.min_lot_t,
            }
            for s in problem.supplies
        ],
        "demands": [
            {
                "id": d.id,
                "quantity_t": d.quantity_t,
                "lat": d.lat,
                "lon": d.lon,
                "accepts": [
                    {"material": a.material, "grades": list(a.grades) if a.grades is not None else None}
                    for a in d.accepts
                ],
                "max_distance_km": d.max_distance_km,
                "permits": list(d.permits),
            }
            for d in problem.demands
        ],
        "materials": {
            code: {"max_distance_km": rule.max_distance_km, "hazardous": rule.hazardous}
            for code, rule in sorted((problem.materials or {}).items())
        },
        "params": {
            "freight_cny_per_t_km": problem.params.freight_cny_per_t_km,
            "detour_factor": problem.params.detour_factor,
        },
        "forbidden": [list(p) for p in problem.forbidden],
        "pinned": [{"supply": p.supply, "demand": p.demand, "quantity_t": p.quantity_t} for p in problem.pinned],
    }


_SOLVER_ID = re.compile(r"\b([SD])(\d+)\b")


def readable(text: str) -> str:
    """Solver ids (S12, D34) as listing references people can look up."""
    return _SOLVER_ID.sub(lambda m: f"{'supply' if m.group(1) == 'S' else 'demand'} listing {m.group(2)}", text)


# ---------------------------------------------------------------------------------------------- report


def build_report(session: Session, rnd: Round, built: Built, solution: solver.Solution) -> dict[str, Any]:
    """Figures of the round report (integer kg and fen, rates as floats) from the solution."""
    cat = load_catalogue()
    summary = solution.summary
    road_co2_kg_per_t_km = cat.transport.road.co2_kg_per_t_km.value
    per_material: dict[str, dict[str, int]] = defaultdict(
        lambda: {"offered_kg": 0, "demanded_kg": 0, "matched_kg": 0, "supply_lots": 0, "demand_lots": 0}
    )
    for listing_id, kg in built.offered_kg.items():
        listing = built.listings[listing_id]
        row = per_material[listing.material_code]
        if listing.kind is ListingKind.SUPPLY:
            row["offered_kg"] += kg
            row["supply_lots"] += 1
        else:
            row["demanded_kg"] += kg
            row["demand_lots"] += 1
    matched_kg = 0
    for a in solution.allocations:
        kg = round(a.quantity_t * 1000)
        matched_kg += kg
        per_material[built.listings[listing_of(a.supply)].material_code]["matched_kg"] += kg
    co2_avoided_kg = 0
    materials = []
    for code in sorted(per_material):
        row = per_material[code]
        m = cat.find(code)
        avoided = round(row["matched_kg"] * m.co2_avoided_t_per_t.value) if m else 0
        co2_avoided_kg += avoided
        materials.append({"material_code": code, **row, "co2_avoided_kg": avoided})
    offered_kg = sum(r["offered_kg"] for r in per_material.values())
    demanded_kg = sum(r["demanded_kg"] for r in per_material.values())
    agreed_kg = sum(built.agreed_kg.values())
    tonne_km = summary.tonne_km if summary else 0.0
    unmatched: dict[str, int] = defaultdict(int)
    for u in solution.unmatched:
        unmatched[u.reason] += round(u.quantity_t * 1000)
    return {
        "status": solution.status.value,
        "message": readable(solution.message),
        "supply_lots": len(built.problem.supplies),
        "demand_lots": len(built.problem.demands),
        "offered_kg": offered_kg,
        "demanded_kg": demanded_kg,
        "matched_kg": matched_kg,
        "agreed_kg": agreed_kg,
        "new_kg": matched_kg - agreed_kg,
        "utilisation_before": agreed_kg / offered_kg if offered_kg else None,
        "utilisation_after": matched_kg / offered_kg if offered_kg else None,
        "ledger": ledger_rates(session, rnd, built, matched_kg - agreed_kg),
        "transport_cost_fen": round((summary.transport_cost_cny if summary else 0.0) * 100),
        "tonne_km": round(tonne_km, 3),
        "co2_transport_kg": round(tonne_km * road_co2_kg_per_t_km),
        "co2_avoided_kg": co2_avoided_kg,
        "road_co2_kg_per_t_km": road_co2_kg_per_t_km,
        "materials": materials,
        "unmatched_by_reason": dict(sorted(unmatched.items())),
        "pairs_considered": summary.pairs_considered if summary else 0,
        "solve_seconds": round(summary.solve_seconds, 3) if summary else 0.0,
        "declined_pairs": [list(p) for p in built.declined],
        "pins": len(built.problem.pinned),
        "forbidden": len(built.problem.forbidden),
    }


def ledger_rates(session: Session, rnd: Round, built: Built, new_kg: int) -> dict[str, Any] | None:
    """The comprehensive utilisation rate (NBS definition) of the supplying enterprises for the round's month
    and materials, as filed in their ledgers, before and after adding the newly matched tonnes."""
    suppliers = sorted({lst.enterprise_id for lst in built.listings.values() if lst.kind is ListingKind.SUPPLY})
    codes = sorted({lst.material_code for lst in built.listings.values() if lst.kind is ListingKind.SUPPLY})
    if not suppliers:
        return None
    le: Any = LedgerEntry
    stmt = sa.select(
        sa.func.coalesce(sa.func.sum(le.generated_kg), 0),
        sa.func.coalesce(sa.func.sum(le.utilised_in_house_kg + le.sent_for_utilisation_kg), 0),
        sa.func.coalesce(sa.func.sum(le.utilised_in_house_prior_stock_kg + le.sent_for_utilisation_prior_stock_kg), 0),
    ).where(le.enterprise_id.in_(suppliers), le.material_code.in_(codes), le.period == rnd.period)
    generated, utilised, prior = (int(v) for v in session.execute(stmt).one())
    denominator = generated + prior
    if denominator <= 0:
        return None
    return {
        "period": rnd.period,
        "generated_kg": generated,
        "utilised_kg": utilised,
        "denominator_kg": denominator,
        "rate_before": utilised / denominator,
        "rate_after": (utilised + new_kg) / denominator,
    }


# ---------------------------------------------------------------------------------------------- the job


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[:120]


def _claim(engine: Engine, run_id: int, worker: str) -> tuple[int, dict[str, Any]] | None:
    """QUEUED → RUNNING under row locks (round first, then run: the one lock order used everywhere)."""
    with session_scope(engine) as session:
        run = session.get(RoundRun, run_id)
        if run is None:
            return None
        rnd = get_for_update(session, Round, run.round_id, "round")
        run = get_for_update(session, RoundRun, run_id, "run")
        if run.state is not RunState.QUEUED:
            session.rollback()
            return None
        now = utcnow()
        run.state = transition("run", run.id, run.state, RunState.RUNNING, _run_table())
        run.stage = RunStage.BUILDING_PAIRS
        run.progress = 0.0
        run.started_at = run.heartbeat_at = now
        run.worker = worker
        if rnd.current_run_id == run.id and rnd.state is RoundState.QUEUED:
            rnd.state = transition("round", rnd.id, rnd.state, RoundState.RUNNING, ROUND_TRANSITIONS)
            rnd.updated_at = now
        record_round(
            session,
            rnd,
            "round.run.start",
            actor_id=None,
            from_state=RunState.QUEUED.value,
            to_state=RunState.RUNNING.value,
            run=run.number,
            worker=worker,
        )
        session.commit()
        return rnd.id or 0, dict(run.settings)


def _run_table() -> dict[RunState, frozenset[RunState]]:
    from exchange.rounds.models import RUN_TRANSITIONS

    return RUN_TRANSITIONS


class Progress:
    """Writes stage, progress and heartbeat (throttled) with a conditional UPDATE; raises RunAborted when the
    run is no longer RUNNING (cancelled, or failed by the reaper)."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self.last_write = 0.0
        self.last_stage: str | None = None

    def __call__(self, stage: str, fraction: float, *, force: bool = False) -> None:
        lo, hi = STAGE_SPAN.get(stage, (0.0, 1.0))
        overall = lo + (hi - lo) * max(0.0, min(1.0, fraction))
        now = time.monotonic()
        if not force and stage == self.last_stage and now - self.last_write < PROGRESS_WRITE_INTERVAL_S:
            return
        self.last_write, self.last_stage = now, stage
        run_stage = {
            "loading": RunStage.BUILDING_PAIRS,
            "building_pairs": RunStage.BUILDING_PAIRS,
            "solving": RunStage.SOLVING,
            "explaining": RunStage.SOLVING,
            "writing_results": RunStage.WRITING_RESULTS,
        }.get(stage, RunStage.SOLVING)
        self._write(values={"stage": run_stage, "progress": round(overall, 4)})

    def beat(self) -> None:
        self._write(values={})

    def _write(self, values: dict[str, Any]) -> None:
        table: Any = RoundRun.__table__  # type: ignore[attr-defined]
        stmt = (
            sa.update(table)
            .where(table.c.id == self.run_id, table.c.state == RunState.RUNNING.value)
            .values(heartbeat_at=utcnow(), **values)
        )
        with self.engine.begin() as conn:
            updated = conn.execute(stmt).rowcount
        if updated == 0:
            raise RunAborted(f"run {self.run_id} is no longer running")


class Heartbeat:
    """A daemon thread that keeps the heartbeat fresh while the solver works between progress reports.
    (OR-Tools may hold the GIL inside one long call; the timeout should exceed the longest single solve.)"""

    def __init__(self, progress: Progress, interval_s: float) -> None:
        self.progress = progress
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"round-heartbeat-{progress.run_id}", daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                self.progress.beat()
            except RunAborted:
                return
            except Exception:  # noqa: BLE001 - a missed beat is not fatal; the next one may succeed
                log.exception("heartbeat for run %s failed", self.progress.run_id)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def run_round(engine: Engine, run_id: int, *, heartbeat_s: float = 30.0, worker: str | None = None) -> RunState:
    """Run one queued run to its end; returns the run's final state (or its current one if it was not
    QUEUED). Never raises for a failing round: the failure is recorded on the run."""
    worker = worker or worker_name()
    claimed = _claim(engine, run_id, worker)
    if claimed is None:
        with session_scope(engine) as session:
            run = session.get(RoundRun, run_id)
            return run.state if run is not None else RunState.FAILED
    round_id, settings = claimed
    progress = Progress(engine, run_id)
    try:
        with Heartbeat(progress, heartbeat_s):
            progress("loading", 0.0, force=True)
            with session_scope(engine) as session:
                rnd = session.get(Round, round_id)
                assert rnd is not None
                built = build_problem(session, rnd, settings)
                session.commit()  # read-only: end the transaction (SQLite: its lock) before the long solve
            solution = solver.solve(built.problem, progress=progress)
            progress("writing_results", 0.0, force=True)
            _write_results(engine, run_id, built, solution)
    except RunAborted:
        log.info("run %s stopped: it was cancelled or taken over", run_id)
    except Exception as exc:  # noqa: BLE001 - any failure ends the run as failed, with the reason recorded
        log.exception("run %s failed", run_id)
        _fail(engine, run_id, f"{type(exc).__name__}: {exc}")
    with session_scope(engine) as session:
        run = session.get(RoundRun, run_id)
        assert run is not None
        return run.state


def _write_results(engine: Engine, run_id: int, built: Built, solution: solver.Solution) -> None:
    if solution.status in (solver.Status.INVALID, solver.Status.INFEASIBLE):
        where = f"{solution.error_field}: " if solution.error_field else ""
        _fail(
            engine,
            run_id,
            readable(f"the solver refused the problem ({solution.status.value}) — {where}{solution.message}"),
        )
        return
    with session_scope(engine) as session:
        run0 = session.get(RoundRun, run_id)
        assert run0 is not None
        rnd = get_for_update(session, Round, run0.round_id, "round")
        run = get_for_update(session, RoundRun, run_id, "run")
        if run.state is not RunState.RUNNING:
            session.rollback()
            raise RunAborted(f"run {run_id} is {run.state.value}")
        assert rnd.id is not None and run.id is not None
        report = build_report(session, rnd, built, solution)
        for a in solution.allocations:
            s, d = listing_of(a.supply), listing_of(a.demand)
            supply, demand = built.listings[s], built.listings[d]
            session.add(
                RoundAllocation(
                    run_id=run.id,
                    round_id=rnd.id,
                    supply_listing_id=s,
                    demand_listing_id=d,
                    supplier_enterprise_id=supply.enterprise_id,
                    consumer_enterprise_id=demand.enterprise_id,
                    material_code=supply.material_code,
                    quantity_kg=round(a.quantity_t * 1000),
                    agreed_kg=built.agreed_kg.get((s, d), 0),
                    pinned=(s, d) in built.manager_pins,
                    distance_km=round(a.distance_km, 2),
                    cost_fen=round(a.cost_cny * 100),
                )
            )
        for u in solution.unmatched:
            session.add(
                RoundUnmatched(
                    run_id=run.id,
                    supply_listing_id=listing_of(u.supply),
                    quantity_kg=round(u.quantity_t * 1000),
                    reason=u.reason,
                    detail=readable(u.detail)[:1000],
                    nearest_demand_listing_id=listing_of(u.nearest_demand) if u.nearest_demand else None,
                    nearest_distance_km=round(u.nearest_distance_km, 2) if u.nearest_distance_km is not None else None,
                )
            )
        session.flush()
        run.problem = problem_to_json(built.problem)
        run.solution = solver.solution_to_json(solution)
        run.report = report
        settings = dict(run.settings)
        settings["declined_pairs"] = [list(p) for p in built.declined]
        settings["agreements_pinned"] = [[s, d, kg] for (s, d), kg in sorted(built.agreed_kg.items())]
        run.settings = settings
        finish_review(session, rnd, run)
        session.commit()


def finish_review(session: Session, rnd: Round, run: RoundRun) -> None:
    """RUNNING → SUCCEEDED for the run; the round goes to review when this is its current run."""
    now = utcnow()
    run.state = transition("run", run.id, run.state, RunState.SUCCEEDED, _run_table())
    run.stage = RunStage.DONE
    run.progress = 1.0
    run.finished_at = run.heartbeat_at = now
    if rnd.current_run_id == run.id:
        before = rnd.state
        rnd.state = transition("round", rnd.id, rnd.state, RoundState.REVIEW, ROUND_TRANSITIONS)
        rnd.updated_at = now
        rnd.version += 1
    else:
        before = rnd.state
    record_round(
        session,
        rnd,
        "round.run.succeed",
        actor_id=None,
        from_state=before.value,
        to_state=rnd.state.value,
        run=run.number,
        matched_kg=(run.report or {}).get("matched_kg"),
    )


def _fail(engine: Engine, run_id: int, error: str) -> None:
    with session_scope(engine) as session:
        run0 = session.get(RoundRun, run_id)
        if run0 is None:
            return
        rnd = get_for_update(session, Round, run0.round_id, "round")
        run = get_for_update(session, RoundRun, run_id, "run")
        if run.state not in (RunState.RUNNING, RunState.QUEUED):
            return
        mark_failed(session, rnd, run, error)
        session.commit()


def mark_failed(session: Session, rnd: Round, run: RoundRun, error: str, actor_id: int | None = None) -> None:
    now = utcnow()
    run.state = transition("run", run.id, run.state, RunState.FAILED, _run_table())
    run.error = error[:2000]
    run.finished_at = now
    before = rnd.state
    if rnd.current_run_id == run.id and rnd.state in (RoundState.QUEUED, RoundState.RUNNING):
        rnd.state = transition("round", rnd.id, rnd.state, RoundState.FAILED, ROUND_TRANSITIONS)
        rnd.updated_at = now
        rnd.version += 1
    record_round(
        session,
        rnd,
        "round.run.fail",
        actor_id=actor_id,
        from_state=before.value,
        to_state=rnd.state.value,
        run=run.number,
        error=error[:300],
    )


def reap_stale_runs(engine: Engine, timeout_s: float) -> list[int]:
    """Runs whose worker stopped reporting for `timeout_s` are marked failed (the round can then be retried)."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    with session_scope(engine) as session:
        candidates = session.exec(
            select(RoundRun).where(
                RoundRun.state == RunState.RUNNING,
                sa.or_(
                    col(RoundRun.heartbeat_at) < cutoff,
                    sa.and_(col(RoundRun.heartbeat_at).is_(None), col(RoundRun.started_at) < cutoff),
                ),
            )
        ).all()
        stale = [(r.id, r.round_id) for r in candidates if r.id is not None]
    reaped: list[int] = []
    for run_id, round_id in stale:
        with session_scope(engine) as session:
            rnd = get_for_update(session, Round, round_id, "round")
            run = get_for_update(session, RoundRun, run_id, "run")
            beat = aware(run.heartbeat_at or run.started_at)
            if run.state is not RunState.RUNNING or (beat is not None and beat >= cutoff):
                session.rollback()
                continue
            mark_failed(
                session,
                rnd,
                run,
                f"the worker ({run.worker or 'unknown'}) stopped responding: no heartbeat for more than "
                f"{timeout_s:g} s; retry the round",
            )
            session.commit()
            reaped.append(run_id)
    return reaped


def queued_runs(session: Session, backend: str | None = None) -> Sequence[RoundRun]:
    stmt = select(RoundRun).where(RoundRun.state == RunState.QUEUED).order_by(col(RoundRun.id))
    if backend is not None:
        stmt = stmt.where(RoundRun.backend == backend)
    return session.exec(stmt).all()


def run_pending(engine: Engine, backend: str | None = None, *, limit: int | None = None) -> list[int]:
    """Run queued runs one after another, oldest first (the in-process worker's loop body; tests call it to
    drive the queue deterministically). Returns the ids it ran."""
    done: list[int] = []
    while limit is None or len(done) < limit:
        with session_scope(engine) as session:
            nxt = next(iter(queued_runs(session, backend)), None)
            run_id = nxt.id if nxt is not None else None
        if run_id is None:
            break
        run_round(engine, run_id)
        done.append(run_id)
    return done
