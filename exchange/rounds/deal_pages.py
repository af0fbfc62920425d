"""The enterprises' pages: my proposals (accept, decline), agreements, deliveries, notifications.

Thin: every page calls `exchange.rounds.deals`, the same functions as the JSON API. A refusal the person can act
on (a 409 such as "not enough tonnes left", a field error in the delivery form) is shown on the page itself,
never as an error page; someone else's proposal or agreement stays a 404 from the service.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from exchange.accounts.models import Role, User
from exchange.core.deps import CurrentUser, OptionalUser, SessionDep
from exchange.core.errors import Conflict, Forbidden, Unprocessable
from exchange.core.i18n import request_locale, translate
from exchange.core.web import redirect, render, templates
from exchange.listings.models import Listing
from exchange.rounds import deals
from exchange.rounds.common import can_manage, is_staff
from exchange.rounds.models import (
    Agreement,
    AgreementPublic,
    AgreementState,
    Delivery,
    DeliveryCreate,
    ProposalPublic,
    ProposalState,
    Round,
)

router = APIRouter(include_in_schema=False)

REASON_MAX = 500
PROPOSAL_STATES = {"open": "Awaiting answers", "accepted": "Agreed", "declined": "Declined", "withdrawn": "Withdrawn"}
AGREEMENT_STATES = {"active": "Active", "completed": "Completed", "cancelled": "Cancelled"}
DELIVERY_STATES = {"recorded": "Awaiting confirmation", "confirmed": "Confirmed"}
ANSWERS = {"accepted": "Accepted", "declined": "Declined"}
ROLES = {"supplier": "You supply", "consumer": "You take", "staff": "Manager view"}
NOTICES = {
    "accepted": "You accepted the proposal. The other enterprise's answer is awaited.",
    "declined": "You declined the proposal.",
    "agreed": "Both enterprises accepted: the agreement is made and the tonnes are reserved.",
    "delivery": "The delivery is recorded. The other enterprise is asked to confirm it.",
    "confirmed": "The delivery is confirmed.",
    "cancelled": "The agreement is cancelled; the undelivered tonnes are released.",
    "read": "All notifications are marked read.",
}
DELIVERY_FIELDS = ("delivered_on", "quantity_t", "waybill_no", "vehicle_no", "manifest_no", "note")
# DeliveryCreate's length limits, with the message each gets on the form
FIELD_LIMITS = {
    "waybill_no": (60, "At most 60 characters"),
    "vehicle_no": (20, "At most 20 characters"),
    "manifest_no": (40, "At most 40 characters"),
    "note": (500, "At most 500 characters"),
}
DATE_TEXT = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


# ---------------------------------------------------------------------------------------------- helpers


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def tonnes(value: Decimal | None) -> str:
    """Decimal("80.500") → "80.5"; exact, thousands separated."""
    if value is None:
        return ""
    text = f"{value:,.3f}"
    return text.rstrip("0").rstrip(".")


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def _page(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return render(
        request,
        template,
        status_code=status_code,
        tonnes=tonnes,
        money=money,
        when=when,
        proposal_states=PROPOSAL_STATES,
        agreement_states=AGREEMENT_STATES,
        delivery_states=DELIVERY_STATES,
        answers=ANSWERS,
        roles=ROLES,
        **ctx,
    )


def _login_first(request: Request) -> Response:
    return redirect(f"/login?next={quote(request.url.path)}")


def _member(user: User) -> User:
    """Proposals, agreements and notifications belong to an enterprise: staff follow rounds on their own pages."""
    if user.role is not Role.ENTERPRISE or user.enterprise_id is None:
        raise Forbidden("these pages are for members of an enterprise; managers follow rounds on the round pages")
    return user


_readers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _reader(engine: Engine) -> Engine:
    """Where the nav's count is read. SQLite: a pool-less engine whose SELECTs take no lock, because the app's
    engine begins every transaction IMMEDIATE and the page's own session may still hold that write lock while
    the page renders. PostgreSQL: the app's engine (a SELECT never waits for other transactions)."""
    if engine.dialect.name != "sqlite":
        return engine
    if engine not in _readers:
        _readers[engine] = sa.create_engine(
            engine.url, poolclass=NullPool, connect_args={"check_same_thread": False, "timeout": 5}
        )
    return _readers[engine]


@pass_context
def unread_notifications(ctx: Context) -> int:
    """The nav's unread count (a Jinja global, so every page extending base.html shows it).

    Counted once per request on a short session of its own (the page's session is not reachable from a
    template); a failing count (the database just went away while an error page renders) shows as 0 rather
    than breaking the page."""
    user, request = ctx.get("user"), ctx.get("request")
    if user is None or request is None or getattr(user, "enterprise_id", None) is None:
        return 0
    cached = getattr(request.state, "unread_notifications", None)
    if isinstance(cached, int):
        return cached
    try:
        with Session(_reader(request.app.state.engine)) as session:
            count = deals.unread_count(session, user)
    except SQLAlchemyError:
        return 0
    request.state.unread_notifications = count
    return count


templates.env.globals["unread_notifications"] = unread_notifications


# ---------------------------------------------------------------------------------------------- proposals


@dataclass(frozen=True)
class ProposalRow:
    p: ProposalPublic
    their_price: Decimal | None  # CNY/t


def _their_price(session: Session, view: ProposalPublic) -> Decimal | None:
    """The other side's listed price (CNY/t), withheld while its identity is (an anonymous listing before both
    sides have agreed: proposal_public then hides the enterprise, so the price stays hidden too)."""
    if view.role == "supplier":
        listing_id, shown = view.demand_listing_id, view.consumer_enterprise_id is not None
    else:
        listing_id, shown = view.supply_listing_id, view.supplier_enterprise_id is not None
    listing = session.get(Listing, listing_id)
    if not shown or listing is None or listing.price_fen_per_t is None:
        return None
    return (Decimal(listing.price_fen_per_t) / 100).quantize(Decimal("0.01"))


def _proposals_page(request: Request, session: Session, user: User, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    loc = _locale(request)
    views = [deals.proposal_public(session, user, p, loc) for p in deals.my_proposals(session, user)]
    rows = [ProposalRow(v, _their_price(session, v)) for v in views]
    open_rows = [r for r in rows if r.p.state is ProposalState.OPEN]
    closed_rows = [r for r in rows if r.p.state is not ProposalState.OPEN]
    return _page(request, "rounds/proposals.html", status_code, open_rows=open_rows, closed_rows=closed_rows, **ctx)


@router.get("/my/proposals", response_class=HTMLResponse)
def proposals(request: Request, session: SessionDep, user: OptionalUser, done: str = "") -> Response:
    if user is None:
        return _login_first(request)
    return _proposals_page(request, session, user, notice=NOTICES.get(done))


def _answer_refused(session: Session, user: User, proposal_id: int) -> str:
    """Why an answer was refused, in words the page can translate (the service's detail has the figures)."""
    p = deals.get_proposal(session, user, proposal_id)
    if p.state is not ProposalState.OPEN:
        return {
            ProposalState.ACCEPTED: "This proposal is already agreed by both enterprises.",
            ProposalState.DECLINED: "This proposal was declined and can no longer be answered.",
            ProposalState.WITHDRAWN: "This proposal was withdrawn: the round was re-run.",
        }[p.state]
    side = deals.side_of(user, p)
    if side is not None and getattr(p, f"{side}_answer") is not None:
        return "Your enterprise has already answered this proposal."
    return "The proposal cannot be accepted: a listing no longer has enough tonnes left unallocated."


def _answer(request: Request, session: Session, user: User, proposal_id: int, *, accept: bool, reason: str) -> Response:
    if len(reason) > REASON_MAX:
        return _proposals_page(
            request,
            session,
            user,
            422,
            error_for=proposal_id,
            reason_error="At most 500 characters",
            reason_text=reason,
        )
    try:
        p = deals.answer(session, user, proposal_id, accept=accept, reason=reason)
    except Conflict as exc:
        session.rollback()
        message = _answer_refused(session, user, proposal_id)
        return _proposals_page(
            request, session, user, 409, error_for=proposal_id, error=message, error_detail=exc.detail
        )
    if p.state is ProposalState.ACCEPTED:
        agreement = deals.proposal_public(session, user, p).agreement_id
        return redirect(f"/agreements/{agreement}?done=agreed")
    return redirect(f"/my/proposals?done={'accepted' if accept else 'declined'}#proposal-{proposal_id}")


@router.post("/my/proposals/{proposal_id:int}/accept", response_class=HTMLResponse)
def accept(request: Request, proposal_id: int, session: SessionDep, user: CurrentUser) -> Response:
    return _answer(request, session, user, proposal_id, accept=True, reason="")


@router.post("/my/proposals/{proposal_id:int}/decline", response_class=HTMLResponse)
def decline(
    request: Request,
    proposal_id: int,
    session: SessionDep,
    user: CurrentUser,
    reason: Annotated[str, Form()] = "",
) -> Response:
    return _answer(request, session, user, proposal_id, accept=False, reason=reason.strip())


# ---------------------------------------------------------------------------------------------- agreements


@router.get("/my/agreements", response_class=HTMLResponse)
def agreements(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    _member(user)
    loc = _locale(request)
    views = [deals.agreement_public(session, a, loc, with_deliveries=False) for a in deals.my_agreements(session, user)]
    return _page(request, "rounds/agreements.html", agreements=views)


def _may_cancel(session: Session, user: User, a: Agreement) -> bool:
    if a.state is not AgreementState.ACTIVE:
        return False
    if user.role is Role.ENTERPRISE and deals.side_of(user, a) is not None:
        return True
    rnd = session.get(Round, a.round_id)
    return is_staff(user) and rnd is not None and can_manage(user, rnd)


def _agreement_page(
    request: Request,
    session: Session,
    user: User,
    agreement_id: int,
    status_code: int = 200,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    **ctx: Any,
) -> HTMLResponse:
    a = deals.get_agreement(session, user, agreement_id)
    view: AgreementPublic = deals.agreement_public(session, a, _locale(request))
    side = deals.side_of(user, a) if user.role is Role.ENTERPRISE else None
    party = side is not None
    if form is None:
        form = {"delivered_on": date.today().isoformat(), "quantity_t": tonnes(view.remaining_t).replace(",", "")}
    return _page(
        request,
        "rounds/agreements_detail.html",
        status_code,
        a=view,
        side=side,
        can_record=party and a.state is AgreementState.ACTIVE,
        can_confirm=party,
        can_cancel=_may_cancel(session, user, a),
        my_enterprise_id=user.enterprise_id,
        form=form,
        errors=errors or {},
        today=date.today().isoformat(),
        **ctx,
    )


@router.get("/agreements/{agreement_id:int}", response_class=HTMLResponse)
def agreement(request: Request, agreement_id: int, session: SessionDep, user: OptionalUser, done: str = "") -> Response:
    if user is None:
        return _login_first(request)
    return _agreement_page(request, session, user, agreement_id, notice=NOTICES.get(done))


def _tonnes_typed(text: str) -> Decimal | None:
    """ "1,200.5" → Decimal("1200.5"); None unless a finite number above 0 with at most 3 decimals."""
    try:
        value = Decimal(text.replace(",", "").replace("，", ""))
        if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.001")):
            return None
    except InvalidOperation:  # not a number, or too many digits to quantize
        return None
    return value


def _parse_delivery(form: dict[str, str]) -> DeliveryCreate | dict[str, str]:
    """The delivery form → DeliveryCreate, or {field: message} in our own (translated) words."""
    errors: dict[str, str] = {}
    on: date | None = None
    m = DATE_TEXT.match(form["delivered_on"])
    if m:
        try:
            on = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            on = None
    if on is None:
        errors["delivered_on"] = "Enter a date as YYYY-MM-DD"
    quantity = _tonnes_typed(form["quantity_t"])
    if quantity is None:
        errors["quantity_t"] = "Enter tonnes: a number above 0 with at most 3 decimals"
    for name, (limit, message) in FIELD_LIMITS.items():
        if len(form[name]) > limit:
            errors[name] = message
    if errors:
        return errors
    try:
        return DeliveryCreate.model_validate({**form, "delivered_on": on, "quantity_t": quantity})
    except ValidationError as exc:
        out = {str(e["loc"][0]): "Invalid value" for e in exc.errors() if e["loc"]} or {"__all__": "Invalid value"}
        if "quantity_t" in out:  # above DeliveryCreate's ceiling
            out["quantity_t"] = "Enter tonnes: a number above 0 with at most 3 decimals"
        return out


@router.post("/agreements/{agreement_id:int}/deliveries", response_class=HTMLResponse)
def record_delivery(
    request: Request,
    agreement_id: int,
    session: SessionDep,
    user: CurrentUser,
    delivered_on: Annotated[str, Form()] = "",
    quantity_t: Annotated[str, Form()] = "",
    waybill_no: Annotated[str, Form()] = "",
    vehicle_no: Annotated[str, Form()] = "",
    manifest_no: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    values = (delivered_on, quantity_t, waybill_no, vehicle_no, manifest_no, note)
    form = {name: value.strip() for name, value in zip(DELIVERY_FIELDS, values, strict=True)}
    parsed = _parse_delivery(form)
    if isinstance(parsed, dict):
        deals.get_agreement(session, user, agreement_id)  # an outsider gets the 404, not the field errors
        return _agreement_page(request, session, user, agreement_id, 422, form=form, errors=parsed)
    try:
        deals.record_delivery(session, user, agreement_id, parsed)
    except (Unprocessable, Conflict) as exc:
        session.rollback()
        errors = {exc.field or "__all__": exc.detail}
        if exc.field == "quantity_t":  # the service's text carries figures; say it with the page's own
            remaining = deals.agreement_public(session, deals.get_agreement(session, user, agreement_id))
            left = tonnes(remaining.remaining_t)
            errors["quantity_t"] = translate(
                _locale(request), "Only {remaining} t remain on this agreement", remaining=left
            )
        elif isinstance(exc, Conflict):
            errors["__all__"] = "Deliveries are recorded on active agreements only."
        return _agreement_page(request, session, user, agreement_id, exc.status, form=form, errors=errors)
    return redirect(f"/agreements/{agreement_id}?done=delivery#deliveries")


@router.post("/deliveries/{delivery_id:int}/confirm", response_class=HTMLResponse)
def confirm_delivery(request: Request, delivery_id: int, session: SessionDep, user: CurrentUser) -> Response:
    try:
        d = deals.confirm_delivery(session, user, delivery_id)
    except Conflict as exc:
        session.rollback()
        known = session.get(Delivery, delivery_id)
        assert known is not None  # confirm_delivery raised NotFound otherwise
        return _agreement_page(
            request,
            session,
            user,
            known.agreement_id,
            409,
            action_error="This delivery is already confirmed.",
            error_detail=exc.detail,
        )
    return redirect(f"/agreements/{d.agreement_id}?done=confirmed#deliveries")


@router.post("/agreements/{agreement_id:int}/cancel", response_class=HTMLResponse)
def cancel_agreement(
    request: Request,
    agreement_id: int,
    session: SessionDep,
    user: CurrentUser,
    reason: Annotated[str, Form()] = "",
) -> Response:
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        deals.get_agreement(session, user, agreement_id)
        return _agreement_page(
            request, session, user, agreement_id, 422, cancel_error="At most 500 characters", cancel_reason=reason
        )
    try:
        deals.cancel_agreement(session, user, agreement_id, reason)
    except Conflict as exc:
        session.rollback()
        return _agreement_page(
            request,
            session,
            user,
            agreement_id,
            409,
            action_error="Only an active agreement can be cancelled.",
            error_detail=exc.detail,
        )
    return redirect(f"/agreements/{agreement_id}?done=cancelled")


# ---------------------------------------------------------------------------------------------- notifications


@router.get("/notifications", response_class=HTMLResponse)
def notifications(request: Request, session: SessionDep, user: OptionalUser, done: str = "") -> Response:
    if user is None:
        return _login_first(request)
    _member(user)
    loc = _locale(request)
    items = [deals.notification_public(n, loc) for n in deals.notifications(session, user, limit=100)]
    return _page(request, "rounds/notifications.html", items=items, notice=NOTICES.get(done))


@router.post("/notifications/read", response_class=HTMLResponse)
def read_all(session: SessionDep, user: CurrentUser) -> Response:
    _member(user)
    deals.mark_read(session, user)
    return redirect("/notifications?done=read")
