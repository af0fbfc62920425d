"""JSON API for matching rounds, proposals, agreements, deliveries and notifications (thin: parse, call the
service, return the public schema)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from exchange.core.deps import CurrentUser, SessionDep, SettingsDep
from exchange.core.i18n import request_locale
from exchange.core.params import IdField, IdPath, IdQuery, IdQueryRequired, Offset
from exchange.rounds import deals, export, jobs, service
from exchange.rounds.models import (
    AgreementPublic,
    AnswerIn,
    CancelIn,
    DeliveryCreate,
    DeliveryPublic,
    NotificationPublic,
    PairIn,
    PinIn,
    Preview,
    ProposalPublic,
    ProposalState,
    RoundCreate,
    RoundPublic,
    RoundSettings,
    RoundStatus,
    RunPublic,
)
from exchange.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["matching rounds"])


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _kick(request: Request, session: Session, settings: Settings) -> None:
    """End the request's transaction first (on SQLite it holds the write lock), then reap vanished workers'
    runs and make sure queued runs have a worker."""
    session.commit()
    jobs.kick(_engine(request), settings)


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


class PublishIn(BaseModel):
    run: IdField | None = None  # the run number reviewed; refused with 409 if a later run exists


class PublishOut(BaseModel):
    round: RoundPublic
    proposals_created: int


# ---------------------------------------------------------------------------------------------- rounds


@router.post("/rounds/preview", response_model=Preview)
def preview_round(body: RoundCreate, request: Request, session: SessionDep, user: CurrentUser) -> Preview:
    """Lots and tonnes in scope right now (nothing is created)."""
    return service.preview(session, user, body, _locale(request))


@router.post("/rounds", status_code=202, response_model=RoundPublic)
def create_round(body: RoundCreate, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> RoundPublic:
    """Create a round and queue its first run; poll `GET /rounds/{id}/status` for progress."""
    rnd = service.create_round(session, settings, user, body)
    return service.round_public(session, rnd)


@router.get("/rounds", response_model=list[RoundPublic])
def list_rounds(
    session: SessionDep, user: CurrentUser, limit: int = Query(100, ge=1, le=500), offset: Offset = 0
) -> list[RoundPublic]:
    return [service.round_public(session, r) for r in service.list_rounds(session, user, limit, offset)]


@router.get("/rounds/{round_id}", response_model=RoundPublic)
def get_round(
    round_id: IdPath, request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> RoundPublic:
    _kick(request, session, settings)
    rnd = service.get_round(session, user, round_id)
    return service.round_public(session, rnd)


@router.get("/rounds/{round_id}/status", response_model=RoundStatus)
def round_status(
    round_id: IdPath, request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> RoundStatus:
    """Stage and progress of the round's current run (queued, building_pairs, solving, writing_results, done)."""
    _kick(request, session, settings)
    rnd = service.get_round(session, user, round_id)
    return service.status(session, rnd)


@router.post("/rounds/{round_id}/cancel", response_model=RoundPublic)
def cancel_round(round_id: IdPath, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> RoundPublic:
    return service.round_public(session, service.cancel(session, settings, user, round_id))


@router.post("/rounds/{round_id}/runs", status_code=202, response_model=RunPublic)
def start_run(
    round_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    body: RoundSettings | None = Body(default=None),
) -> RunPublic:
    """A new numbered run: re-solve in review (optionally with new settings), re-run after publishing (declined
    pairs excluded, agreements fixed), or retry after a failure or cancel."""
    run = service.start_run(session, settings, user, round_id, body)
    return service.run_public(session, run)


@router.get("/rounds/{round_id}/runs", response_model=list[RunPublic])
def list_runs(round_id: IdPath, session: SessionDep, user: CurrentUser) -> list[RunPublic]:
    rnd = service.get_round(session, user, round_id)
    return [service.run_public(session, r) for r in service.list_runs(session, rnd)]


@router.get("/rounds/{round_id}/runs/{number}", response_model=RunPublic)
def get_run(round_id: IdPath, number: IdPath, session: SessionDep, user: CurrentUser) -> RunPublic:
    rnd = service.get_round(session, user, round_id)
    return service.run_public(session, service.get_run(session, rnd, number))


@router.get("/rounds/{round_id}/runs/{number}/problem")
def run_problem(round_id: IdPath, number: IdPath, session: SessionDep, user: CurrentUser) -> JSONResponse:
    """The solver input this run used (the `exchange solve` contract): re-solve it offline to compare."""
    rnd = service.get_round(session, user, round_id, manage=True)
    return JSONResponse(service.get_run(session, rnd, number).problem or {})


@router.get("/rounds/{round_id}/runs/{number}/solution")
def run_solution(round_id: IdPath, number: IdPath, session: SessionDep, user: CurrentUser) -> JSONResponse:
    rnd = service.get_round(session, user, round_id, manage=True)
    return JSONResponse(service.get_run(session, rnd, number).solution or {})


@router.get("/rounds/{round_id}/report")
def round_report(
    round_id: IdPath, request: Request, session: SessionDep, user: CurrentUser, run: IdQuery = None
) -> JSONResponse:
    """Tonnes matched vs offered per material, utilisation before → after, transport cost, tonne-km, CO2 of
    transport and avoided, the pairs, the unmatched lots with reasons, and the flows for a map."""
    rnd = service.get_round(session, user, round_id)
    r = service.get_run(session, rnd, run)
    return JSONResponse(export.jsonable(service.report(session, user, rnd, r, _locale(request))))


@router.get("/rounds/{round_id}/compare")
def compare_runs(
    round_id: IdPath, a: IdQueryRequired, b: IdQueryRequired, session: SessionDep, user: CurrentUser
) -> JSONResponse:
    rnd = service.get_round(session, user, round_id)
    return JSONResponse(export.jsonable(service.compare(session, rnd, a, b)))


@router.get(
    "/rounds/{round_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
            "description": "the run's pairs as CSV (format=csv) or XLSX (format=xlsx)",
        }
    },
)
def export_round(
    round_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    format: Literal["csv", "xlsx"] = "csv",
    run: IdQuery = None,
) -> Response:
    rnd = service.get_round(session, user, round_id)
    r = service.get_run(session, rnd, run)
    rows = service.allocation_rows(session, user, rnd, r, _locale(request))
    name = f"round-{round_id}-run-{r.number}.{format}"
    if format == "xlsx":
        return Response(
            export.to_xlsx(rows),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(
        export.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.put("/rounds/{round_id}/pins", response_model=RoundPublic)
def pin_pair(round_id: IdPath, body: PinIn, session: SessionDep, user: CurrentUser) -> RoundPublic:
    return service.round_public(session, service.set_pin(session, user, round_id, body))


@router.delete("/rounds/{round_id}/pins/{supply_listing_id}/{demand_listing_id}", response_model=RoundPublic)
def unpin_pair(
    round_id: IdPath, supply_listing_id: IdPath, demand_listing_id: IdPath, session: SessionDep, user: CurrentUser
) -> RoundPublic:
    return service.round_public(
        session, service.remove_pin(session, user, round_id, supply_listing_id, demand_listing_id)
    )


@router.put("/rounds/{round_id}/forbidden", response_model=RoundPublic)
def forbid_pair(round_id: IdPath, body: PairIn, session: SessionDep, user: CurrentUser) -> RoundPublic:
    return service.round_public(
        session, service.forbid(session, user, round_id, body.supply_listing_id, body.demand_listing_id)
    )


@router.delete("/rounds/{round_id}/forbidden/{supply_listing_id}/{demand_listing_id}", response_model=RoundPublic)
def allow_pair(
    round_id: IdPath, supply_listing_id: IdPath, demand_listing_id: IdPath, session: SessionDep, user: CurrentUser
) -> RoundPublic:
    return service.round_public(session, service.allow(session, user, round_id, supply_listing_id, demand_listing_id))


@router.post("/rounds/{round_id}/publish", response_model=PublishOut)
def publish_round(
    round_id: IdPath, session: SessionDep, user: CurrentUser, body: PublishIn | None = Body(default=None)
) -> PublishOut:
    """Send the reviewed run's pairs to both enterprises as proposals."""
    created = service.publish(session, user, round_id, body.run if body else None)
    rnd = service.get_round(session, user, round_id)
    return PublishOut(round=service.round_public(session, rnd), proposals_created=len(created))


@router.get("/rounds/{round_id}/proposals", response_model=list[ProposalPublic])
def round_proposals(round_id: IdPath, request: Request, session: SessionDep, user: CurrentUser) -> list[ProposalPublic]:
    service.get_round(session, user, round_id, manage=True)
    loc = _locale(request)
    return [deals.proposal_public(session, user, p, loc) for p in deals.round_proposals(session, round_id)]


@router.get("/rounds/{round_id}/agreements", response_model=list[AgreementPublic])
def round_agreements(
    round_id: IdPath, request: Request, session: SessionDep, user: CurrentUser
) -> list[AgreementPublic]:
    service.get_round(session, user, round_id, manage=True)
    loc = _locale(request)
    return [deals.agreement_public(session, a, loc) for a in deals.round_agreements(session, round_id)]


@router.get("/rounds/{round_id}/audit")
def round_audit(round_id: IdPath, session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """Who did what and when, from which state to which, for the round and its proposals, agreements and
    deliveries (admins, the park's manager, regulators of the round's region)."""
    rnd = service.get_round(session, user, round_id, manage=True)
    events = service.audit_trail(session, user, rnd)
    names = service.actor_names(session, events)
    return [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "actor_id": e.actor_id,
            "actor": names.get(e.actor_id) if e.actor_id is not None else None,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "detail": e.detail,
        }
        for e in events
    ]


# ---------------------------------------------------------------------------------------------- proposals


@router.get("/proposals", response_model=list[ProposalPublic])
def my_proposals(
    request: Request, session: SessionDep, user: CurrentUser, state: ProposalState | None = None
) -> list[ProposalPublic]:
    """Proposals to your enterprise, open ones first."""
    loc = _locale(request)
    return [deals.proposal_public(session, user, p, loc) for p in deals.my_proposals(session, user, state)]


@router.get("/proposals/{proposal_id}", response_model=ProposalPublic)
def get_proposal(proposal_id: IdPath, request: Request, session: SessionDep, user: CurrentUser) -> ProposalPublic:
    return deals.proposal_public(session, user, deals.get_proposal(session, user, proposal_id), _locale(request))


@router.post("/proposals/{proposal_id}/accept", response_model=ProposalPublic)
def accept_proposal(
    proposal_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    body: AnswerIn | None = Body(default=None),
) -> ProposalPublic:
    """Accept for your side. When both sides have accepted, an agreement reserves the tonnes on both listings —
    or 409 if either listing no longer has them unallocated."""
    p = deals.answer(session, user, proposal_id, accept=True, reason=body.reason if body else None)
    return deals.proposal_public(session, user, p, _locale(request))


@router.post("/proposals/{proposal_id}/decline", response_model=ProposalPublic)
def decline_proposal(
    proposal_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    body: AnswerIn | None = Body(default=None),
) -> ProposalPublic:
    """Decline (optionally with a reason); the pair is excluded when the round is re-run."""
    p = deals.answer(session, user, proposal_id, accept=False, reason=body.reason if body else None)
    return deals.proposal_public(session, user, p, _locale(request))


# ---------------------------------------------------------------------------------------------- agreements


@router.get("/agreements", response_model=list[AgreementPublic])
def my_agreements(request: Request, session: SessionDep, user: CurrentUser) -> list[AgreementPublic]:
    loc = _locale(request)
    return [deals.agreement_public(session, a, loc) for a in deals.my_agreements(session, user)]


@router.get("/agreements/{agreement_id}", response_model=AgreementPublic)
def get_agreement(agreement_id: IdPath, request: Request, session: SessionDep, user: CurrentUser) -> AgreementPublic:
    return deals.agreement_public(session, deals.get_agreement(session, user, agreement_id), _locale(request))


@router.post("/agreements/{agreement_id}/cancel", response_model=AgreementPublic)
def cancel_agreement(
    agreement_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    body: CancelIn | None = Body(default=None),
) -> AgreementPublic:
    a = deals.cancel_agreement(session, user, agreement_id, body.reason if body else None)
    return deals.agreement_public(session, a, _locale(request))


@router.get("/agreements/{agreement_id}/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(agreement_id: IdPath, session: SessionDep, user: CurrentUser) -> list[DeliveryPublic]:
    deals.get_agreement(session, user, agreement_id)
    return [deals.delivery_public(d) for d in deals.deliveries(session, agreement_id)]


@router.post("/agreements/{agreement_id}/deliveries", status_code=201, response_model=DeliveryPublic)
def record_delivery(
    agreement_id: IdPath, body: DeliveryCreate, session: SessionDep, user: CurrentUser
) -> DeliveryPublic:
    """Date, tonnes, waybill or vehicle number, and the transfer-manifest number for hazardous waste."""
    return deals.delivery_public(deals.record_delivery(session, user, agreement_id, body))


@router.post("/deliveries/{delivery_id}/confirm", response_model=DeliveryPublic)
def confirm_delivery(delivery_id: IdPath, session: SessionDep, user: CurrentUser) -> DeliveryPublic:
    return deals.delivery_public(deals.confirm_delivery(session, user, delivery_id))


# ---------------------------------------------------------------------------------------------- notifications


@router.get("/notifications", response_model=list[NotificationPublic])
def list_notifications(
    request: Request, session: SessionDep, user: CurrentUser, unread: bool = False
) -> list[NotificationPublic]:
    loc = _locale(request)
    return [deals.notification_public(n, loc) for n in deals.notifications(session, user, unread_only=unread)]


@router.post("/notifications/read")
def read_notifications(session: SessionDep, user: CurrentUser) -> dict[str, int]:
    return {"marked_read": deals.mark_read(session, user)}
