"""Matching rounds: create (scope, period, materials, settings) with a preview, queue runs, cancel, review
(pins, forbidden pairs, settings → re-solve), publish (proposals), and read the reports, comparisons, exports
and audit trail. Proposals, agreements and deliveries live in `exchange.rounds.deals`.

The page, the API and the CLI call these functions. Each use case commits once; a queued run is handed to its
backend only after that commit (`jobs.dispatch`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role, User
from exchange.audit.models import AuditEvent
from exchange.audit.service import record
from exchange.core.db import get_for_update, utcnow
from exchange.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.enterprises.models import Enterprise
from exchange.listings.models import Listing, ListingKind, Visibility
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.rounds import jobs
from exchange.rounds.common import (
    can_manage,
    fen_to_cny,
    kg_to_t,
    record_round,
    region_contains,
    t_to_kg,
    transition,
    visible_rounds_clause,
)
from exchange.rounds.models import (
    ROUND_TRANSITIONS,
    RUN_TRANSITIONS,
    Agreement,
    PinIn,
    Preview,
    PreviewMaterial,
    Proposal,
    ProposalState,
    Round,
    RoundAllocation,
    RoundCreate,
    RoundPublic,
    RoundRun,
    RoundSettings,
    RoundState,
    RoundStatus,
    RoundUnmatched,
    RunPublic,
    RunState,
    ScopeKind,
)
from exchange.rounds.solving import ScopeSpec, scope_rows
from exchange.settings import Settings

ACTIVE_STATES = (RoundState.QUEUED, RoundState.RUNNING)


def default_freight_cny_per_t_km() -> float:
    return load_catalogue().transport.road.freight_cny_per_t_km.value


def default_detour_factor() -> float:
    return load_catalogue().transport.circuity_factor.value


def material_name(code: str, locale: str = "zh-CN") -> str:
    m = load_catalogue().find(code)
    if m is None:
        return code
    return m.name_zh if locale == "zh-CN" else m.name_en


# ---------------------------------------------------------------------------------------------- scope checks


def _require_runner(user: User) -> None:
    if user.role is Role.PARK_MANAGER and user.park_id is None:
        raise Forbidden("your account is not linked to a park")
    if user.role is Role.REGULATOR and not user.region_code:
        raise Forbidden("your regulator account has no region")
    if user.role not in (Role.PARK_MANAGER, Role.REGULATOR, Role.ADMIN):
        raise Forbidden("matching rounds are run by park managers, regulators and admins")


def _resolve_scope(session: Session, user: User, data: RoundCreate) -> ScopeSpec:
    """Check the requested scope against what the user may run; returns it with defaults filled in."""
    _require_runner(user)
    cat = load_catalogue()
    unknown = [m for m in data.materials if cat.find(m) is None]
    if unknown:
        raise Unprocessable(f"unknown material code(s): {', '.join(unknown)}", field="materials")
    park_id: int | None = None
    regions: tuple[str, ...] = ()
    if data.scope is ScopeKind.PARK:
        park_id = data.park_id if data.park_id is not None else user.park_id
        if park_id is None:
            raise Unprocessable("choose the park for a park round", field="park_id")
        park = session.get(Park, park_id)
        if park is None:
            raise Unprocessable(f"park {park_id} does not exist", field="park_id")
        if user.role is Role.PARK_MANAGER and park_id != user.park_id:
            raise Forbidden("a park manager runs rounds for their own park only", field="park_id")
        if user.role is Role.REGULATOR and not region_contains(user.region_code or "", park.city_code):
            raise Forbidden("that park is outside your region", field="park_id")
    elif data.scope is ScopeKind.REGIONS:
        from exchange.reference.places import load_divisions

        divisions = load_divisions()
        for code in data.regions:
            d = divisions.find(code)
            if d is None or d.level not in ("province", "city"):
                raise Unprocessable(f"{code} is not a province or city code (GB/T 2260)", field="regions")
            if user.role is Role.REGULATOR and not region_contains(user.region_code or "", code):
                raise Forbidden(f"region {code} is outside your region {user.region_code}", field="regions")
        regions = tuple(sorted(set(data.regions)))
    return ScopeSpec(data.scope, park_id, regions, data.period, tuple(sorted(set(data.materials))))


def preview(session: Session, user: User, data: RoundCreate, locale: str = "zh-CN") -> Preview:
    """Lots and tonnes the round would consider now (unallocated tonnes of open listings in scope)."""
    spec = _resolve_scope(session, user, data)
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"sl": 0, "skg": 0, "dl": 0, "dkg": 0})
    for listing, _ent in scope_rows(session, spec, user):
        left = listing.quantity_kg - listing.allocated_kg
        if left <= 0:
            continue
        row = per[listing.material_code]
        if listing.kind is ListingKind.SUPPLY:
            row["sl"] += 1
            row["skg"] += left
        else:
            row["dl"] += 1
            row["dkg"] += left
    materials = [
        PreviewMaterial(
            material_code=code,
            material_name=material_name(code, locale),
            supply_lots=r["sl"],
            supply_t=kg_to_t(r["skg"]),
            demand_lots=r["dl"],
            demand_t=kg_to_t(r["dkg"]),
        )
        for code, r in sorted(per.items())
    ]
    return Preview(
        supply_lots=sum(r["sl"] for r in per.values()),
        supply_t=kg_to_t(sum(r["skg"] for r in per.values())),
        demand_lots=sum(r["dl"] for r in per.values()),
        demand_t=kg_to_t(sum(r["dkg"] for r in per.values())),
        materials=materials,
    )


def _title(session: Session, spec: ScopeSpec) -> str:
    if spec.kind is ScopeKind.PARK and spec.park_id is not None:
        park = session.get(Park, spec.park_id)
        where = park.name if park else f"park {spec.park_id}"
    elif spec.kind is ScopeKind.REGIONS:
        from exchange.reference.places import load_divisions

        divisions = load_divisions()
        names = [divisions.find(c).name_zh if divisions.find(c) else c for c in spec.regions]  # type: ignore[union-attr]
        where = "、".join(names[:4]) + ("…" if len(names) > 4 else "")
    else:
        where = "all visible listings"
    return f"{spec.period} · {where}"[:200]


# ---------------------------------------------------------------------------------------------- runs


def _settings_snapshot(rnd: Round) -> dict[str, Any]:
    return {
        "freight_cny_per_t_km": rnd.freight_cny_per_t_km,
        "detour_factor": rnd.detour_factor,
        "honour_min_lots": rnd.honour_min_lots,
        "pins": [dict(p) for p in rnd.pins],
        "forbidden": [list(p) for p in rnd.forbidden],
    }


def _new_run(session: Session, settings: Settings, rnd: Round, user: User | None, reason: str) -> RoundRun:
    assert rnd.id is not None
    rnd.runs_count += 1
    run = RoundRun(
        round_id=rnd.id,
        number=rnd.runs_count,
        backend=jobs.backend_for(settings),
        requested_by_id=user.id if user else None,
        reason=reason,
        settings=_settings_snapshot(rnd),
    )
    session.add(run)
    session.flush()
    rnd.current_run_id = run.id
    rnd.updated_at = utcnow()
    rnd.version += 1
    return run


def create_round(session: Session, settings: Settings, user: User, data: RoundCreate) -> Round:
    spec = _resolve_scope(session, user, data)
    rnd = Round(
        title=data.title or _title(session, spec),
        created_by_id=user.id,
        park_id=user.park_id if user.role is Role.PARK_MANAGER else spec.park_id if user.role is Role.ADMIN else None,
        region_code=user.region_code if user.role is Role.REGULATOR else None,
        scope_kind=spec.kind,
        scope_park_id=spec.park_id,
        scope_regions=list(spec.regions),
        period=spec.period,
        materials=list(spec.materials),
        freight_cny_per_t_km=data.freight_cny_per_t_km,
        detour_factor=data.detour_factor,
        honour_min_lots=data.honour_min_lots,
        state=RoundState.QUEUED,
    )
    session.add(rnd)
    session.flush()
    run = _new_run(session, settings, rnd, user, "first run")
    record_round(
        session,
        rnd,
        "round.create",
        actor_id=user.id,
        to_state=rnd.state.value,
        scope=spec.kind.value,
        period=spec.period,
        run=run.number,
    )
    session.commit()
    jobs.dispatch(session.get_bind(), settings, run)  # type: ignore[arg-type]
    session.refresh(rnd)
    return rnd


def list_rounds(session: Session, user: User, limit: int = 100, offset: int = 0) -> list[Round]:
    _require_runner(user)
    stmt = (
        select(Round)
        .where(visible_rounds_clause(user))
        .order_by(col(Round.id).desc())
        .offset(offset)
        .limit(min(max(limit, 1), 500))
    )
    return list(session.exec(stmt))


def get_round(session: Session, user: User, round_id: int, *, manage: bool = False, lock: bool = False) -> Round:
    """404 when the user may not see the round (the same answer as for one that does not exist); 403 when they
    may see but not run it."""
    rnd = session.exec(select(Round).where(Round.id == round_id, visible_rounds_clause(user))).first()
    if rnd is None:
        raise NotFound(f"round {round_id} does not exist")
    if manage and not can_manage(user, rnd):
        raise Forbidden("only the round's park manager, a regulator of its region or an admin can change it")
    if lock:
        rnd = get_for_update(session, Round, round_id, "round")
    return rnd


def start_run(
    session: Session, settings: Settings, user: User, round_id: int, changes: RoundSettings | None = None
) -> RoundRun:
    """A new numbered run: re-solve (in review, maybe with new settings), re-run (after publishing: declined
    pairs excluded, agreements kept fixed) or retry (after a failure or a cancel)."""
    rnd = get_round(session, user, round_id, manage=True, lock=True)
    reason = {
        RoundState.REVIEW: "re-solve",
        RoundState.PUBLISHED: "re-run",
        RoundState.FAILED: "retry",
        RoundState.CANCELLED: "retry",
    }.get(rnd.state)
    before = rnd.state
    rnd.state = transition("round", rnd.id, rnd.state, RoundState.QUEUED, ROUND_TRANSITIONS)
    if changes is not None:
        for name, value in changes.model_dump(exclude_none=True).items():
            setattr(rnd, name, value)
    run = _new_run(session, settings, rnd, user, reason or "re-run")
    record_round(
        session,
        rnd,
        f"round.{(reason or 're-run').replace('-', '')}",
        actor_id=user.id,
        from_state=before.value,
        to_state=rnd.state.value,
        run=run.number,
        settings=_settings_snapshot(rnd),
    )
    session.commit()
    jobs.dispatch(session.get_bind(), settings, run)  # type: ignore[arg-type]
    return run


def cancel(session: Session, settings: Settings, user: User, round_id: int) -> Round:
    """Cancel the queued or running run. A running job notices at its next progress report (or when it tries
    to write its results) and writes nothing."""
    rnd = get_round(session, user, round_id, manage=True, lock=True)
    if rnd.state not in ACTIVE_STATES or rnd.current_run_id is None:
        raise Conflict(f"round {round_id} is {rnd.state.value}; only a queued or running round can be cancelled")
    run = get_for_update(session, RoundRun, rnd.current_run_id, "run")
    before = rnd.state
    now = utcnow()
    run.state = transition("run", run.id, run.state, RunState.CANCELLED, RUN_TRANSITIONS)
    run.finished_at = now
    rnd.state = transition("round", rnd.id, rnd.state, RoundState.CANCELLED, ROUND_TRANSITIONS)
    rnd.updated_at = now
    rnd.version += 1
    record_round(
        session,
        rnd,
        "round.cancel",
        actor_id=user.id,
        from_state=before.value,
        to_state=rnd.state.value,
        run=run.number,
    )
    session.commit()
    if run.backend == "rq":
        jobs.cancel_rq(settings, run.job_id)
    return rnd


# ---------------------------------------------------------------------------------------------- review


def _pair_listings(session: Session, supply_id: int, demand_id: int) -> tuple[Listing, Listing]:
    supply, demand = session.get(Listing, supply_id), session.get(Listing, demand_id)
    if supply is None or supply.kind is not ListingKind.SUPPLY:
        raise Unprocessable(f"listing {supply_id} is not a supply listing", field="supply_listing_id")
    if demand is None or demand.kind is not ListingKind.DEMAND:
        raise Unprocessable(f"listing {demand_id} is not a demand listing", field="demand_listing_id")
    if supply.material_code != demand.material_code:
        raise Unprocessable(
            f"supply listing {supply_id} offers {supply.material_code}; demand listing {demand_id} wants "
            f"{demand.material_code}",
            field="demand_listing_id",
        )
    return supply, demand


def _editable(rnd: Round) -> None:
    if rnd.state in ACTIVE_STATES:
        raise Conflict(f"round {rnd.id} is {rnd.state.value}; wait for the run to finish (or cancel it) first")


def _declined(session: Session, round_id: int, pair: tuple[int, int]) -> bool:
    return (
        session.exec(
            select(Proposal.id).where(
                Proposal.round_id == round_id,
                Proposal.state == ProposalState.DECLINED,
                Proposal.supply_listing_id == pair[0],
                Proposal.demand_listing_id == pair[1],
            )
        ).first()
        is not None
    )


def set_pin(session: Session, user: User, round_id: int, pin: PinIn) -> Round:
    """Force a pair to carry at least these tonnes in the next run (replaces an earlier pin of the pair and
    lifts a forbid of it)."""
    rnd = get_round(session, user, round_id, manage=True, lock=True)
    _editable(rnd)
    _pair_listings(session, pin.supply_listing_id, pin.demand_listing_id)
    pair = (pin.supply_listing_id, pin.demand_listing_id)
    if _declined(session, round_id, pair):
        raise Conflict(f"the pair {pair[0]} → {pair[1]} was declined in this round; it cannot be pinned")
    pins = [p for p in rnd.pins if (p["supply_listing_id"], p["demand_listing_id"]) != pair]
    pins.append({"supply_listing_id": pair[0], "demand_listing_id": pair[1], "quantity_kg": t_to_kg(pin.quantity_t)})
    rnd.pins = pins
    rnd.forbidden = [p for p in rnd.forbidden if tuple(p) != pair]
    _touched(
        session,
        user,
        rnd,
        "round.pin",
        supply_listing_id=pair[0],
        demand_listing_id=pair[1],
        quantity_t=str(pin.quantity_t),
    )
    return rnd


def remove_pin(session: Session, user: User, round_id: int, supply_listing_id: int, demand_listing_id: int) -> Round:
    rnd = get_round(session, user, round_id, manage=True, lock=True)
    _editable(rnd)
    pair = (supply_listing_id, demand_listing_id)
    pins = [p for p in rnd.pins if (p["supply_listing_id"], p["demand_listing_id"]) != pair]
    if len(pins) == len(rnd.pins):
        raise NotFound(f"the pair {pair[0]} → {pair[1]} is not pinned")
    rnd.pins = pins
    _touched(session, user, rnd, "round.unpin", supply_listing_id=pair[0], demand_listing_id=pair[1])
    return rnd


def forbid(session: Session, user: User, round_id: int, supply_listing_id: int, demand_listing_id: int) -> Round:
    """The pair may not carry tonnes in the next runs (lifts a pin of it)."""
    rnd = get_round(session, user, round_id, manage=True, lock=True)
    _editable(rnd)
    _pair_listings(session, supply_listing_id, demand_listing_id)
    pair = [supply_listing_id, demand_listing_id]
    if pair not in [list(p) for p in rnd.forbidden]:
        rnd.forbidden = [*rnd.forbidden, pair]
    rnd.pins = [p for p in rnd.pins if [p["supply_listing_id"], p["demand_listing_id"]] != pair]
    _touched(session, user, rnd, "round.forbid", supply_listing_id=pair[0], demand_listing_id=pair[1])
    return rnd


def allow(session: Session, user: User, round_id: int, supply_listing_id: int, demand_listing_id: int) -> Round:
    rnd = get_round(session, user, round_id, manage=True, lock=True)
    _editable(rnd)
    pair = [supply_listing_id, demand_listing_id]
    remaining = [list(p) for p in rnd.forbidden if list(p) != pair]
    if len(remaining) == len(rnd.forbidden):
        raise NotFound(f"the pair {pair[0]} → {pair[1]} is not forbidden")
    rnd.forbidden = remaining
    _touched(session, user, rnd, "round.allow", supply_listing_id=pair[0], demand_listing_id=pair[1])
    return rnd


def _touched(session: Session, user: User, rnd: Round, action: str, **detail: object) -> None:
    rnd.updated_at = utcnow()
    rnd.version += 1
    record_round(
        session,
        rnd,
        action,
        actor_id=user.id,
        **cast(dict[str, Any], detail),
    )
    session.commit()


# ---------------------------------------------------------------------------------------------- publish


def publish(session: Session, user: User, round_id: int, run_number: int | None = None) -> list[Proposal]:
    """REVIEW → PUBLISHED: each pair of the reviewed run (beyond what agreements already hold) goes to both
    enterprises as a proposal. Open proposals of an earlier publication are kept when the new run proposes the
    same pair and tonnes, and withdrawn otherwise. Returns the new proposals."""
    from exchange.rounds import deals

    rnd = get_round(session, user, round_id, manage=True, lock=True)
    if rnd.state is not RoundState.REVIEW or rnd.current_run_id is None:
        raise Conflict(f"round {round_id} is {rnd.state.value}; only a round in review can be published")
    run = session.get(RoundRun, rnd.current_run_id)
    assert run is not None and run.id is not None and rnd.id is not None
    if run_number is not None and run_number != run.number:
        raise Conflict(f"run {run_number} is not the latest run of round {round_id} (run {run.number} is); reload")
    open_by_pair = {
        (p.supply_listing_id, p.demand_listing_id): p
        for p in session.exec(select(Proposal).where(Proposal.round_id == rnd.id, Proposal.state == ProposalState.OPEN))
    }
    allocations = session.exec(
        select(RoundAllocation).where(RoundAllocation.run_id == run.id).order_by(col(RoundAllocation.id))
    ).all()
    created: list[Proposal] = []
    for a in allocations:
        new_kg = a.quantity_kg - a.agreed_kg
        if new_kg <= 0:
            continue
        pair = (a.supply_listing_id, a.demand_listing_id)
        existing = open_by_pair.pop(pair, None)
        if existing is not None and existing.quantity_kg == new_kg:
            continue
        if existing is not None:
            deals.withdraw(session, existing, user, f"superseded by run {run.number}")
        p = Proposal(
            round_id=rnd.id,
            run_id=run.id,
            supply_listing_id=a.supply_listing_id,
            demand_listing_id=a.demand_listing_id,
            supplier_enterprise_id=a.supplier_enterprise_id,
            consumer_enterprise_id=a.consumer_enterprise_id,
            material_code=a.material_code,
            quantity_kg=new_kg,
            distance_km=a.distance_km,
            cost_fen=round(a.cost_fen * new_kg / a.quantity_kg),
        )
        session.add(p)
        session.flush()
        created.append(p)
        deals.notify_new_proposal(session, p)
        record(
            session,
            actor_id=user.id,
            action="proposal.create",
            entity="proposal",
            entity_id=p.id,
            park_id=rnd.park_id,
            to_state=p.state.value,
            round_id=rnd.id,
            run=run.number,
            quantity_kg=new_kg,
        )
    for stale in open_by_pair.values():
        deals.withdraw(session, stale, user, f"not in run {run.number}")
    now = utcnow()
    before = rnd.state
    rnd.state = transition("round", rnd.id, rnd.state, RoundState.PUBLISHED, ROUND_TRANSITIONS)
    rnd.published_run_id = run.id
    rnd.published_at = rnd.updated_at = now
    rnd.version += 1
    record_round(
        session,
        rnd,
        "round.publish",
        actor_id=user.id,
        from_state=before.value,
        to_state=rnd.state.value,
        run=run.number,
        proposals=len(created),
    )
    session.commit()
    return created


# ---------------------------------------------------------------------------------------------- reading


def queue_position(session: Session, run: RoundRun) -> int | None:
    if run.state is not RunState.QUEUED:
        return None
    ahead = session.exec(
        select(func.count())
        .select_from(RoundRun)
        .where(
            col(RoundRun.state).in_([RunState.QUEUED, RunState.RUNNING]),
            RoundRun.backend == run.backend,
            col(RoundRun.id) < run.id,
        )
    ).one()
    return int(ahead) + 1


def summary_of(run: RoundRun) -> dict[str, Any] | None:
    """The headline figures of a run, in tonnes and CNY (for run lists and comparisons)."""
    r = run.report
    if not r:
        return None
    return {
        "supply_lots": r["supply_lots"],
        "demand_lots": r["demand_lots"],
        "offered_t": kg_to_t(r["offered_kg"]),
        "demanded_t": kg_to_t(r["demanded_kg"]),
        "matched_t": kg_to_t(r["matched_kg"]),
        "agreed_t": kg_to_t(r["agreed_kg"]),
        "utilisation_before": r["utilisation_before"],
        "utilisation_after": r["utilisation_after"],
        "transport_cost_cny": fen_to_cny(r["transport_cost_fen"]),
        "tonne_km": Decimal(str(r["tonne_km"])).quantize(Decimal("0.001")),
        "co2_transport_t": kg_to_t(r["co2_transport_kg"]),
        "co2_avoided_t": kg_to_t(r["co2_avoided_kg"]),
        "status": r["status"],
    }


def run_public(session: Session, run: RoundRun) -> RunPublic:
    assert run.id is not None
    return RunPublic(
        id=run.id,
        round_id=run.round_id,
        number=run.number,
        state=run.state,
        stage=run.stage,
        progress=run.progress,
        reason=run.reason,
        backend=run.backend,
        queue_position=queue_position(session, run),
        queued_at=run.queued_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        heartbeat_at=run.heartbeat_at,
        error=run.error,
        settings=run.settings,
        summary=summary_of(run),
    )


def current_run(session: Session, rnd: Round) -> RoundRun | None:
    return session.get(RoundRun, rnd.current_run_id) if rnd.current_run_id is not None else None


def round_public(session: Session, rnd: Round) -> RoundPublic:
    assert rnd.id is not None
    run = current_run(session, rnd)
    return RoundPublic(
        id=rnd.id,
        title=rnd.title,
        state=rnd.state,
        scope=rnd.scope_kind,
        park_id=rnd.park_id,
        scope_park_id=rnd.scope_park_id,
        region_code=rnd.region_code,
        regions=list(rnd.scope_regions),
        period=rnd.period,
        materials=list(rnd.materials),
        freight_cny_per_t_km=rnd.freight_cny_per_t_km,
        detour_factor=rnd.detour_factor,
        honour_min_lots=rnd.honour_min_lots,
        pins=[
            {
                "supply_listing_id": p["supply_listing_id"],
                "demand_listing_id": p["demand_listing_id"],
                "quantity_t": kg_to_t(p["quantity_kg"]),
            }
            for p in rnd.pins
        ],
        forbidden=[list(p) for p in rnd.forbidden],
        runs_count=rnd.runs_count,
        current_run=run_public(session, run) if run is not None else None,
        published_run_id=rnd.published_run_id,
        created_by_id=rnd.created_by_id,
        created_at=rnd.created_at,
        published_at=rnd.published_at,
        version=rnd.version,
    )


def status(session: Session, rnd: Round) -> RoundStatus:
    assert rnd.id is not None
    run = current_run(session, rnd)
    return RoundStatus(
        round_id=rnd.id,
        round_state=rnd.state,
        run_number=run.number if run else None,
        run_state=run.state if run else None,
        stage=run.stage if run else None,
        progress=1.0 if run is not None and run.state is RunState.SUCCEEDED else (run.progress if run else 0.0),
        queue_position=queue_position(session, run) if run else None,
        error=run.error if run else None,
        done=rnd.state not in ACTIVE_STATES,
    )


def list_runs(session: Session, rnd: Round) -> list[RoundRun]:
    return list(session.exec(select(RoundRun).where(RoundRun.round_id == rnd.id).order_by(col(RoundRun.number))))


def get_run(session: Session, rnd: Round, number: int | None = None) -> RoundRun:
    """A run by number; without a number, the latest run that produced results."""
    stmt = select(RoundRun).where(RoundRun.round_id == rnd.id)
    if number is not None:
        run = session.exec(stmt.where(RoundRun.number == number)).first()
        if run is None:
            raise NotFound(f"round {rnd.id} has no run {number}")
        return run
    run = session.exec(stmt.where(RoundRun.state == RunState.SUCCEEDED).order_by(col(RoundRun.number).desc())).first()
    if run is None:
        raise NotFound(f"round {rnd.id} has no finished run yet")
    return run


# ---------------------------------------------------------------------------------------------- the report


@dataclass
class Names:
    """Enterprise names and points as a viewer may see them: an anonymous listing's enterprise is hidden (and
    its point rounded to about 10 km) from everyone but admins."""

    listings: dict[int, Listing]
    enterprises: dict[int, Enterprise]
    reveal: bool

    def hidden(self, listing_id: int) -> bool:
        lst = self.listings.get(listing_id)
        return not self.reveal and lst is not None and lst.visibility is Visibility.ANONYMOUS

    def name(self, listing_id: int) -> str | None:
        lst = self.listings.get(listing_id)
        if lst is None or self.hidden(listing_id):
            return None
        ent = self.enterprises.get(lst.enterprise_id)
        return ent.name if ent else None

    def point(self, listing_id: int, lat: float, lon: float) -> tuple[float, float]:
        if self.hidden(listing_id):
            return round(lat, 1), round(lon, 1)
        return lat, lon


def _names(session: Session, user: User, listing_ids: set[int]) -> Names:
    listings = (
        {lst.id: lst for lst in session.exec(select(Listing).where(col(Listing.id).in_(listing_ids))) if lst.id}
        if listing_ids
        else {}
    )
    ent_ids = {lst.enterprise_id for lst in listings.values()}
    enterprises = (
        {e.id: e for e in session.exec(select(Enterprise).where(col(Enterprise.id).in_(ent_ids))) if e.id}
        if ent_ids
        else {}
    )
    return Names(listings, enterprises, user.role is Role.ADMIN)


def allocation_rows(
    session: Session, user: User, rnd: Round, run: RoundRun, locale: str = "zh-CN"
) -> list[dict[str, Any]]:
    """The run's pairs with names, tonnes, distance, cost and CO2, plus the proposal state when published."""
    allocations = session.exec(
        select(RoundAllocation)
        .where(RoundAllocation.run_id == run.id)
        .order_by(col(RoundAllocation.supply_listing_id), col(RoundAllocation.demand_listing_id))
    ).all()
    names = _names(
        session, user, {a.supply_listing_id for a in allocations} | {a.demand_listing_id for a in allocations}
    )
    proposals: dict[tuple[int, int], Proposal] = {}
    if run.id == rnd.published_run_id or rnd.published_run_id is not None:
        for prop in session.exec(select(Proposal).where(Proposal.round_id == rnd.id).order_by(col(Proposal.id))):
            proposals[(prop.supply_listing_id, prop.demand_listing_id)] = prop
    co2_per_t_km = load_catalogue().transport.road.co2_kg_per_t_km.value
    rows = []
    for a in allocations:
        p = proposals.get((a.supply_listing_id, a.demand_listing_id))
        rows.append(
            {
                "supply_listing_id": a.supply_listing_id,
                "supplier": names.name(a.supply_listing_id),
                "demand_listing_id": a.demand_listing_id,
                "consumer": names.name(a.demand_listing_id),
                "material_code": a.material_code,
                "material": material_name(a.material_code, locale),
                "quantity_t": kg_to_t(a.quantity_kg),
                "agreed_t": kg_to_t(a.agreed_kg),
                "pinned": a.pinned,
                "distance_km": Decimal(str(a.distance_km)).quantize(Decimal("0.01")),
                "transport_cost_cny": fen_to_cny(a.cost_fen),
                "co2_transport_t": kg_to_t(round(a.quantity_kg / 1000 * a.distance_km * co2_per_t_km)),
                "proposal_id": p.id if p else None,
                "proposal_state": p.state.value if p else None,
            }
        )
    return rows


REASON_TEXT = {
    "no_demand_for_material": "No consumer in scope takes this material",
    "no_demand_for_grade": "No consumer in scope accepts this grade",
    "no_permitted_receiver": "No consumer in scope holds a permit for this hazardous waste",
    "no_compatible_demand_within_range": "No compatible consumer within range",
    "all_pairs_forbidden": "Every possible pair is forbidden or was declined",
    "below_minimum_lot": "The rest is below the minimum lot",
    "demand_filled_by_other_supply": "Consumers in range were filled by other supplies",
}


def unmatched_rows(session: Session, user: User, run: RoundRun, locale: str = "zh-CN") -> list[dict[str, Any]]:
    rows = session.exec(
        select(RoundUnmatched).where(RoundUnmatched.run_id == run.id).order_by(col(RoundUnmatched.supply_listing_id))
    ).all()
    ids = {u.supply_listing_id for u in rows} | {
        u.nearest_demand_listing_id for u in rows if u.nearest_demand_listing_id
    }
    names = _names(session, user, ids)
    out = []
    for u in rows:
        lst = names.listings.get(u.supply_listing_id)
        out.append(
            {
                "supply_listing_id": u.supply_listing_id,
                "supplier": names.name(u.supply_listing_id),
                "material_code": lst.material_code if lst else None,
                "material": material_name(lst.material_code, locale) if lst else None,
                "quantity_t": kg_to_t(u.quantity_kg),
                "reason": u.reason,
                "reason_text": REASON_TEXT.get(u.reason, u.reason),
                "detail": u.detail,
                "nearest_demand_listing_id": u.nearest_demand_listing_id,
                "nearest_distance_km": u.nearest_distance_km,
            }
        )
    return out


def flows(session: Session, user: User, run: RoundRun) -> list[dict[str, Any]]:
    """Lines for the map: producer → consumer points (from the solver input the run used), tonnes, material."""
    if not run.problem:
        return []
    points: dict[str, tuple[float, float]] = {
        lot["id"]: (lot["lat"], lot["lon"]) for lot in [*run.problem["supplies"], *run.problem["demands"]]
    }
    allocations = session.exec(select(RoundAllocation).where(RoundAllocation.run_id == run.id)).all()
    names = _names(
        session, user, {a.supply_listing_id for a in allocations} | {a.demand_listing_id for a in allocations}
    )
    out = []
    for a in allocations:
        s_lat, s_lon = names.point(a.supply_listing_id, *points.get(f"S{a.supply_listing_id}", (0.0, 0.0)))
        d_lat, d_lon = names.point(a.demand_listing_id, *points.get(f"D{a.demand_listing_id}", (0.0, 0.0)))
        out.append(
            {
                "from": [s_lon, s_lat],
                "to": [d_lon, d_lat],
                "tonnes": float(kg_to_t(a.quantity_kg)),
                "material_code": a.material_code,
                "supplier": names.name(a.supply_listing_id) or f"#{a.supply_listing_id}",
                "consumer": names.name(a.demand_listing_id) or f"#{a.demand_listing_id}",
            }
        )
    return out


def material_rows(run: RoundRun, locale: str = "zh-CN") -> list[dict[str, Any]]:
    if not run.report:
        return []
    return [
        {
            "material_code": m["material_code"],
            "material": material_name(m["material_code"], locale),
            "supply_lots": m["supply_lots"],
            "offered_t": kg_to_t(m["offered_kg"]),
            "demand_lots": m["demand_lots"],
            "demanded_t": kg_to_t(m["demanded_kg"]),
            "matched_t": kg_to_t(m["matched_kg"]),
            "matched_share": m["matched_kg"] / m["offered_kg"] if m["offered_kg"] else None,
            "co2_avoided_t": kg_to_t(m["co2_avoided_kg"]),
        }
        for m in run.report["materials"]
    ]


def report(session: Session, user: User, rnd: Round, run: RoundRun, locale: str = "zh-CN") -> dict[str, Any]:
    """Everything the report page and GET /rounds/{id}/report show."""
    r = run.report or {}
    ledger = r.get("ledger")
    return {
        "round_id": rnd.id,
        "run": run.number,
        "summary": summary_of(run),
        "ledger": (
            {
                "period": ledger["period"],
                "generated_t": kg_to_t(ledger["generated_kg"]),
                "utilised_t": kg_to_t(ledger["utilised_kg"]),
                "rate_before": ledger["rate_before"],
                "rate_after": ledger["rate_after"],
            }
            if ledger
            else None
        ),
        "unmatched_by_reason": {k: kg_to_t(v) for k, v in r.get("unmatched_by_reason", {}).items()},
        "materials": material_rows(run, locale),
        "allocations": allocation_rows(session, user, rnd, run, locale),
        "unmatched": unmatched_rows(session, user, run, locale),
        "flows": flows(session, user, run),
        "factors": {"road_co2_kg_per_t_km": r.get("road_co2_kg_per_t_km")},
    }


def compare(session: Session, rnd: Round, a: int, b: int) -> dict[str, Any]:
    """Two runs side by side: headline figures and the pairs added, removed or changed from run a to run b."""
    run_a, run_b = get_run(session, rnd, a), get_run(session, rnd, b)

    def pairs(run: RoundRun) -> dict[tuple[int, int], int]:
        return {
            (x.supply_listing_id, x.demand_listing_id): x.quantity_kg
            for x in session.exec(select(RoundAllocation).where(RoundAllocation.run_id == run.id))
        }

    pa, pb = pairs(run_a), pairs(run_b)
    changes = []
    for pair in sorted(set(pa) | set(pb)):
        ka, kb = pa.get(pair, 0), pb.get(pair, 0)
        if ka != kb:
            changes.append(
                {
                    "supply_listing_id": pair[0],
                    "demand_listing_id": pair[1],
                    "a_t": kg_to_t(ka),
                    "b_t": kg_to_t(kb),
                    "change": "added" if ka == 0 else "removed" if kb == 0 else "changed",
                }
            )
    return {
        "a": {"number": run_a.number, "settings": run_a.settings, "summary": summary_of(run_a)},
        "b": {"number": run_b.number, "settings": run_b.settings, "summary": summary_of(run_b)},
        "pairs_unchanged": sum(1 for p in set(pa) & set(pb) if pa[p] == pb[p]),
        "changes": changes,
    }


def audit_trail(session: Session, user: User, rnd: Round, limit: int = 500) -> list[AuditEvent]:
    """The round's events and those of its proposals, agreements and deliveries (each records its round_id)."""
    entities = ("round", "proposal", "agreement", "delivery")
    stmt = (
        select(AuditEvent).where(col(AuditEvent.entity).in_(entities)).order_by(col(AuditEvent.id).desc()).limit(20_000)
    )
    if rnd.park_id is not None:
        stmt = stmt.where(AuditEvent.park_id == rnd.park_id)
    out = [e for e in session.exec(stmt) if (e.detail or {}).get("round_id") == rnd.id]
    return out[:limit]


def actor_names(session: Session, events: list[AuditEvent]) -> dict[int, str]:
    ids = {e.actor_id for e in events if e.actor_id is not None}
    if not ids:
        return {}
    return {u.id: u.display_name for u in session.exec(select(User).where(col(User.id).in_(ids))) if u.id}


def has_agreement(session: Session, enterprise_id: int | None, listing: Listing) -> bool:
    """True when the enterprise is party to an agreement on this listing (lets an anonymous listing show its
    owner to the partner; for `listings.service.viewer_has_agreement`)."""
    if enterprise_id is None or listing.id is None:
        return False
    stmt = select(Agreement.id).where(
        sa.or_(
            sa.and_(
                col(Agreement.supply_listing_id) == listing.id, col(Agreement.consumer_enterprise_id) == enterprise_id
            ),
            sa.and_(
                col(Agreement.demand_listing_id) == listing.id, col(Agreement.supplier_enterprise_id) == enterprise_id
            ),
        )
    )
    return session.exec(stmt).first() is not None
