"""Proposals → agreements → deliveries, and the in-app notifications that go with them.

No tonne is ever allocated twice: when the second side accepts, both listings are locked (SELECT … FOR UPDATE
on PostgreSQL; SQLite's BEGIN IMMEDIATE holds the whole database) in id order, their unallocated tonnes are
checked, and `allocated_kg` is raised (by an SQL increment) in the same transaction as the agreement is created.
The listing's CHECK (allocated_kg <= quantity_kg) backs this up in the database itself: a violation is a 409,
never a write.
"""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role, User
from exchange.audit.service import record
from exchange.core.db import get_for_update, utcnow
from exchange.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.core.i18n import translate
from exchange.enterprises.models import Enterprise
from exchange.listings.models import Listing, ListingStatus, Visibility
from exchange.reference.catalogue import load_catalogue
from exchange.rounds.common import can_manage, fen_to_cny, is_staff, kg_to_t, t_to_kg, transition
from exchange.rounds.models import (
    AGREEMENT_TRANSITIONS,
    DELIVERY_TRANSITIONS,
    PROPOSAL_TRANSITIONS,
    Agreement,
    AgreementPublic,
    AgreementState,
    Answer,
    Delivery,
    DeliveryCreate,
    DeliveryPublic,
    DeliveryState,
    Notification,
    NotificationPublic,
    Proposal,
    ProposalPublic,
    ProposalState,
    Round,
)

Side = Literal["supplier", "consumer"]


def _material_name(code: str, locale: str) -> str:
    m = load_catalogue().find(code)
    return code if m is None else (m.name_zh if locale == "zh-CN" else m.name_en)


def _round_park(session: Session, round_id: int) -> int | None:
    rnd = session.get(Round, round_id)
    return rnd.park_id if rnd else None


# ---------------------------------------------------------------------------------------------- notifications


def notify(session: Session, enterprise_id: int, kind: str, message: str, link: str | None, **params: Any) -> None:
    """Queue an in-app notice for an enterprise's members (commits with the change it announces)."""
    session.add(Notification(enterprise_id=enterprise_id, kind=kind, message=message, params=params, link=link))


def notify_new_proposal(session: Session, p: Proposal) -> None:
    params = {"quantity_t": str(kg_to_t(p.quantity_kg)), "material": p.material_code, "round": p.round_id}
    for ent in (p.supplier_enterprise_id, p.consumer_enterprise_id):
        notify(
            session,
            ent,
            "proposal.new",
            "New proposal: {quantity_t} t of {material} (round {round})",
            "/my/proposals",
            **params,
        )


def notifications(session: Session, user: User, *, unread_only: bool = False, limit: int = 50) -> list[Notification]:
    if user.enterprise_id is None:
        return []
    stmt = (
        select(Notification)
        .where(Notification.enterprise_id == user.enterprise_id)
        .order_by(col(Notification.id).desc())
        .limit(limit)
    )
    if unread_only:
        stmt = stmt.where(col(Notification.read_at).is_(None))
    return list(session.exec(stmt))


def unread_count(session: Session, user: User) -> int:
    if user.enterprise_id is None:
        return 0
    return int(
        session.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.enterprise_id == user.enterprise_id, col(Notification.read_at).is_(None))
        ).one()
    )


def mark_read(session: Session, user: User) -> int:
    if user.enterprise_id is None:
        return 0
    table: Any = Notification.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa.update(table)
        .where(table.c.enterprise_id == user.enterprise_id, table.c.read_at.is_(None))
        .values(read_at=utcnow())
    )
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def tonnes_text(value: Decimal | str) -> str:
    """Tonnes as the pages show them: "80.000" → "80", "1234.500" → "1,234.5" (exact, trailing zeros dropped)."""
    return f"{Decimal(value):,.3f}".rstrip("0").rstrip(".")


def notification_public(n: Notification, locale: str) -> NotificationPublic:
    assert n.id is not None
    params = dict(n.params)
    if "material" in params:
        params["material"] = _material_name(str(params["material"]), locale)
    if "quantity_t" in params:  # stored exactly ("80.000"); shown like the pages show tonnes
        with contextlib.suppress(ArithmeticError):
            params["quantity_t"] = tonnes_text(str(params["quantity_t"]))
    try:
        text = translate(locale, n.message, **params)
    except (KeyError, IndexError, ValueError):
        text = n.message
    return NotificationPublic(
        id=n.id, kind=n.kind, message=text, link=n.link, created_at=n.created_at, read=n.read_at is not None
    )


# ---------------------------------------------------------------------------------------------- proposals


def side_of(user: User, p: Proposal | Agreement) -> Side | None:
    if user.enterprise_id is None:
        return None
    if user.enterprise_id == p.supplier_enterprise_id:
        return "supplier"
    if user.enterprise_id == p.consumer_enterprise_id:
        return "consumer"
    return None


def _may_read_deal(session: Session, user: User, round_id: int, party: Side | None) -> bool:
    if party is not None:
        return True
    if is_staff(user):
        rnd = session.get(Round, round_id)
        return rnd is not None and can_manage(user, rnd)
    return False


def get_proposal(session: Session, user: User, proposal_id: int) -> Proposal:
    p = session.get(Proposal, proposal_id)
    if p is None or not _may_read_deal(session, user, p.round_id, side_of(user, p)):
        raise NotFound(f"proposal {proposal_id} does not exist")
    return p


def my_proposals(session: Session, user: User, state: ProposalState | None = None, limit: int = 200) -> list[Proposal]:
    if user.role is not Role.ENTERPRISE or user.enterprise_id is None:
        raise Forbidden("proposals are answered by members of the enterprises concerned")
    stmt = (
        select(Proposal)
        .where(
            sa.or_(
                col(Proposal.supplier_enterprise_id) == user.enterprise_id,
                col(Proposal.consumer_enterprise_id) == user.enterprise_id,
            )
        )
        .order_by(sa.case((col(Proposal.state) == ProposalState.OPEN, 0), else_=1), col(Proposal.id).desc())
        .limit(limit)
    )
    if state is not None:
        stmt = stmt.where(Proposal.state == state)
    return list(session.exec(stmt))


def round_proposals(session: Session, round_id: int) -> list[Proposal]:
    return list(session.exec(select(Proposal).where(Proposal.round_id == round_id).order_by(col(Proposal.id))))


def withdraw(session: Session, p: Proposal, user: User | None, why: str) -> None:
    """OPEN → WITHDRAWN when a later published run of the round replaces the proposal."""
    before = p.state
    p.state = transition("proposal", p.id, p.state, ProposalState.WITHDRAWN, PROPOSAL_TRANSITIONS)
    p.closed_at = utcnow()
    p.version += 1
    for ent in (p.supplier_enterprise_id, p.consumer_enterprise_id):
        notify(
            session,
            ent,
            "proposal.withdrawn",
            "Proposal {id} was withdrawn: the round was re-run",
            "/my/proposals",
            id=p.id,
        )
    record(
        session,
        actor_id=user.id if user else None,
        action="proposal.withdraw",
        entity="proposal",
        entity_id=p.id,
        park_id=_round_park(session, p.round_id),
        from_state=before.value,
        to_state=p.state.value,
        round_id=p.round_id,
        why=why,
    )


def answer(session: Session, user: User, proposal_id: int, *, accept: bool, reason: str | None = None) -> Proposal:
    """Record one side's answer. A decline closes the proposal; the second accept creates the agreement and
    reserves the tonnes on both listings, or refuses with 409 when either listing no longer has them."""
    p = get_for_update(session, Proposal, proposal_id, "proposal")
    side = side_of(user, p)
    if side is None:
        if _may_read_deal(session, user, p.round_id, None):
            raise Forbidden("only the two enterprises concerned can answer a proposal")
        raise NotFound(f"proposal {proposal_id} does not exist")
    if user.role is not Role.ENTERPRISE:
        raise Forbidden("only the two enterprises concerned can answer a proposal")
    if p.state is not ProposalState.OPEN:
        raise Conflict(f"proposal {proposal_id} is {p.state.value}; it can no longer be answered")
    previous = getattr(p, f"{side}_answer")
    if previous is not None:
        raise Conflict(f"your enterprise already {previous.value} proposal {proposal_id}")
    now = utcnow()
    setattr(p, f"{side}_answer", Answer.ACCEPTED if accept else Answer.DECLINED)
    setattr(p, f"{side}_answered_at", now)
    setattr(p, f"{side}_answered_by_id", user.id)
    setattr(p, f"{side}_reason", (reason or "").strip() or None)
    p.version += 1
    other = p.consumer_enterprise_id if side == "supplier" else p.supplier_enterprise_id
    park_id = _round_park(session, p.round_id)
    # Worded now: once a flush fails (the listing's CHECK), the proposal's attributes cannot be read until rollback.
    refusal = _not_enough_left(p)
    before = p.state
    agreement: Agreement | None = None
    if not accept:
        p.state = transition("proposal", p.id, p.state, ProposalState.DECLINED, PROPOSAL_TRANSITIONS)
        p.closed_at = now
        notify(
            session,
            other,
            "proposal.declined",
            "Proposal {id} was declined by the other enterprise",
            "/my/proposals",
            id=p.id,
        )
    elif p.supplier_answer is Answer.ACCEPTED and p.consumer_answer is Answer.ACCEPTED:
        try:
            agreement = _make_agreement(session, p)
        except Conflict:
            session.rollback()  # the answer is not recorded either; release the locks at once
            raise
        except IntegrityError:
            session.rollback()  # the listing's CHECK refused the reservation (flushed with the agreement)
            raise refusal from None
        p.state = transition("proposal", p.id, p.state, ProposalState.ACCEPTED, PROPOSAL_TRANSITIONS)
        p.closed_at = now
        for ent in (p.supplier_enterprise_id, p.consumer_enterprise_id):
            notify(
                session,
                ent,
                "agreement.new",
                "Agreement {id}: both enterprises accepted {quantity_t} t",
                f"/agreements/{agreement.id}",
                id=agreement.id,
                quantity_t=str(kg_to_t(agreement.quantity_kg)),
            )
    else:
        notify(
            session,
            other,
            "proposal.accepted_by_other",
            "The other enterprise accepted proposal {id}; your answer is awaited",
            "/my/proposals",
            id=p.id,
        )
    record(
        session,
        actor_id=user.id,
        action="proposal.accept" if accept else "proposal.decline",
        entity="proposal",
        entity_id=p.id,
        park_id=park_id,
        from_state=before.value,
        to_state=p.state.value,
        round_id=p.round_id,
        side=side,
        reason=(reason or "")[:200] or None,
    )
    if agreement is not None:
        record(
            session,
            actor_id=user.id,
            action="agreement.create",
            entity="agreement",
            entity_id=agreement.id,
            park_id=park_id,
            to_state=agreement.state.value,
            round_id=p.round_id,
            proposal_id=p.id,
            quantity_kg=agreement.quantity_kg,
        )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise refusal from None
    return p


def _not_enough_left(p: Proposal) -> Conflict:
    return Conflict(
        f"proposal {p.id} could not be accepted: a listing no longer has {kg_to_t(p.quantity_kg)} t left "
        "unallocated (another agreement reserved them first)"
    )


def _make_agreement(session: Session, p: Proposal) -> Agreement:
    # Lock both listings in id order (the same order for every transaction, so two accepts never deadlock).
    locked = {
        lid: get_for_update(session, Listing, lid, "listing")
        for lid in sorted((p.supply_listing_id, p.demand_listing_id))
    }
    for lid, kind in ((p.supply_listing_id, "supply"), (p.demand_listing_id, "demand")):
        listing = locked[lid]
        if listing.status is not ListingStatus.OPEN:
            raise Conflict(f"the {kind} listing {lid} is {listing.status.value}; the proposal cannot be accepted")
        left = listing.quantity_kg - listing.allocated_kg
        if left < p.quantity_kg:
            raise Conflict(
                f"the {kind} listing {lid} has only {kg_to_t(left)} t left unallocated; this proposal needs "
                f"{kg_to_t(p.quantity_kg)} t"
            )
    now = utcnow()
    for listing in locked.values():
        # An increment in SQL (allocated_kg = allocated_kg + :kg), not a value computed here: should a writer
        # ever skip the lock, it still cannot overwrite another reservation, and the CHECK refuses the excess.
        listing.allocated_kg = col(Listing.allocated_kg) + p.quantity_kg  # type: ignore[assignment]
        listing.version += 1
        listing.updated_at = now
    m = load_catalogue().find(p.material_code)
    assert p.id is not None
    agreement = Agreement(
        round_id=p.round_id,
        proposal_id=p.id,
        supply_listing_id=p.supply_listing_id,
        demand_listing_id=p.demand_listing_id,
        supplier_enterprise_id=p.supplier_enterprise_id,
        consumer_enterprise_id=p.consumer_enterprise_id,
        material_code=p.material_code,
        hazardous=bool(m and m.hazardous),
        quantity_kg=p.quantity_kg,
        distance_km=p.distance_km,
    )
    session.add(agreement)
    session.flush()
    return agreement


def _agreement_of(session: Session, proposal_id: int) -> Agreement | None:
    return session.exec(select(Agreement).where(Agreement.proposal_id == proposal_id)).first()


def _identity(
    session: Session, user: User, listing_id: int, enterprise_id: int, revealed: bool
) -> tuple[int | None, str | None]:
    """A counterpart behind an anonymous listing stays hidden until both sides have agreed."""
    listing = session.get(Listing, listing_id)
    own = user.enterprise_id == enterprise_id
    if (
        not (own or revealed or user.role is Role.ADMIN)
        and listing is not None
        and listing.visibility is Visibility.ANONYMOUS
    ):
        return None, None
    ent = session.get(Enterprise, enterprise_id)
    return enterprise_id, ent.name if ent else None


def proposal_public(session: Session, user: User, p: Proposal, locale: str = "zh-CN") -> ProposalPublic:
    assert p.id is not None
    side = side_of(user, p)
    agreement = _agreement_of(session, p.id) if p.state is ProposalState.ACCEPTED else None
    revealed = agreement is not None
    sup_id, sup_name = _identity(session, user, p.supply_listing_id, p.supplier_enterprise_id, revealed)
    con_id, con_name = _identity(session, user, p.demand_listing_id, p.consumer_enterprise_id, revealed)
    return ProposalPublic(
        id=p.id,
        round_id=p.round_id,
        run_id=p.run_id,
        state=p.state,
        role=side or "staff",
        supply_listing_id=p.supply_listing_id,
        demand_listing_id=p.demand_listing_id,
        supplier_enterprise_id=sup_id,
        supplier_name=sup_name,
        consumer_enterprise_id=con_id,
        consumer_name=con_name,
        material_code=p.material_code,
        material_name=_material_name(p.material_code, locale),
        quantity_t=kg_to_t(p.quantity_kg),
        distance_km=p.distance_km,
        transport_cost_cny=fen_to_cny(p.cost_fen),
        supplier_answer=p.supplier_answer,
        supplier_reason=p.supplier_reason,
        consumer_answer=p.consumer_answer,
        consumer_reason=p.consumer_reason,
        your_answer=getattr(p, f"{side}_answer") if side else None,
        agreement_id=agreement.id if agreement else None,
        created_at=p.created_at,
        closed_at=p.closed_at,
    )


# ---------------------------------------------------------------------------------------------- agreements


def get_agreement(session: Session, user: User, agreement_id: int, *, lock: bool = False) -> Agreement:
    a = session.get(Agreement, agreement_id)
    if a is None or not _may_read_deal(session, user, a.round_id, side_of(user, a)):
        raise NotFound(f"agreement {agreement_id} does not exist")
    if lock:
        a = get_for_update(session, Agreement, agreement_id, "agreement")
    return a


def my_agreements(session: Session, user: User, limit: int = 200) -> list[Agreement]:
    if user.enterprise_id is None:
        return []
    stmt = (
        select(Agreement)
        .where(
            sa.or_(
                col(Agreement.supplier_enterprise_id) == user.enterprise_id,
                col(Agreement.consumer_enterprise_id) == user.enterprise_id,
            )
        )
        .order_by(sa.case((col(Agreement.state) == AgreementState.ACTIVE, 0), else_=1), col(Agreement.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def round_agreements(session: Session, round_id: int) -> list[Agreement]:
    return list(session.exec(select(Agreement).where(Agreement.round_id == round_id).order_by(col(Agreement.id))))


def deliveries(session: Session, agreement_id: int) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery)
            .where(Delivery.agreement_id == agreement_id)
            .order_by(col(Delivery.delivered_on), col(Delivery.id))
        )
    )


def delivery_public(d: Delivery) -> DeliveryPublic:
    assert d.id is not None
    return DeliveryPublic(
        id=d.id,
        agreement_id=d.agreement_id,
        quantity_t=kg_to_t(d.quantity_kg),
        delivered_on=d.delivered_on,
        waybill_no=d.waybill_no,
        vehicle_no=d.vehicle_no,
        manifest_no=d.manifest_no,
        note=d.note,
        state=d.state,
        recorded_by=d.recorded_by,
        recorded_by_enterprise_id=d.recorded_by_enterprise_id,
        confirmed_at=d.confirmed_at,
        created_at=d.created_at,
    )


def agreement_public(
    session: Session, a: Agreement, locale: str = "zh-CN", *, with_deliveries: bool = True
) -> AgreementPublic:
    assert a.id is not None
    sup, con = session.get(Enterprise, a.supplier_enterprise_id), session.get(Enterprise, a.consumer_enterprise_id)
    return AgreementPublic(
        id=a.id,
        round_id=a.round_id,
        proposal_id=a.proposal_id,
        state=a.state,
        supply_listing_id=a.supply_listing_id,
        demand_listing_id=a.demand_listing_id,
        supplier_enterprise_id=a.supplier_enterprise_id,
        supplier_name=sup.name if sup else None,
        consumer_enterprise_id=a.consumer_enterprise_id,
        consumer_name=con.name if con else None,
        material_code=a.material_code,
        material_name=_material_name(a.material_code, locale),
        hazardous=a.hazardous,
        quantity_t=kg_to_t(a.quantity_kg),
        delivered_t=kg_to_t(a.delivered_kg),
        remaining_t=kg_to_t(a.quantity_kg - a.delivered_kg),
        distance_km=a.distance_km,
        created_at=a.created_at,
        completed_at=a.completed_at,
        cancelled_at=a.cancelled_at,
        cancel_reason=a.cancel_reason,
        deliveries=[delivery_public(d) for d in deliveries(session, a.id)] if with_deliveries else [],
    )


def record_delivery(session: Session, user: User, agreement_id: int, data: DeliveryCreate) -> Delivery:
    """A delivery against an active agreement; it reduces what remains and completes the agreement when
    everything is delivered. Hazardous waste needs its transfer-manifest number."""
    a = get_agreement(session, user, agreement_id, lock=True)
    side = side_of(user, a)
    if side is None or user.role is not Role.ENTERPRISE:
        raise Forbidden("deliveries are recorded by the two enterprises of the agreement")
    if a.state is not AgreementState.ACTIVE:
        raise Conflict(
            f"agreement {agreement_id} is {a.state.value}; deliveries are recorded on active agreements only"
        )
    waybill = (data.waybill_no or "").strip() or None
    vehicle = (data.vehicle_no or "").strip() or None
    manifest = (data.manifest_no or "").strip() or None
    if waybill is None and vehicle is None:
        raise Unprocessable("give the waybill number or the vehicle number", field="waybill_no")
    if a.hazardous and manifest is None:
        raise Unprocessable(
            "a hazardous-waste delivery needs its transfer manifest number (危险废物转移联单)", field="manifest_no"
        )
    if data.delivered_on > date.today():
        raise Unprocessable("the delivery date is in the future", field="delivered_on")
    kg = t_to_kg(data.quantity_t)
    remaining = a.quantity_kg - a.delivered_kg
    if kg > remaining:
        raise Conflict(
            f"only {kg_to_t(remaining)} t remain on agreement {agreement_id}; {kg_to_t(kg)} t is more",
            field="quantity_t",
        )
    now = utcnow()
    d = Delivery(
        agreement_id=agreement_id,
        quantity_kg=kg,
        delivered_on=data.delivered_on,
        waybill_no=waybill,
        vehicle_no=vehicle,
        manifest_no=manifest,
        note=(data.note or "").strip() or None,
        recorded_by=user.id,
        recorded_by_enterprise_id=user.enterprise_id,
    )
    session.add(d)
    a.delivered_kg += kg
    a.version += 1
    before = a.state
    if a.delivered_kg == a.quantity_kg:
        a.state = transition("agreement", a.id, a.state, AgreementState.COMPLETED, AGREEMENT_TRANSITIONS)
        a.completed_at = now
    session.flush()
    other = a.consumer_enterprise_id if side == "supplier" else a.supplier_enterprise_id
    notify(
        session,
        other,
        "delivery.new",
        "Delivery of {quantity_t} t recorded on agreement {id}; please confirm",
        f"/agreements/{a.id}",
        id=a.id,
        quantity_t=str(kg_to_t(kg)),
    )
    park_id = _round_park(session, a.round_id)
    record(
        session,
        actor_id=user.id,
        action="delivery.record",
        entity="delivery",
        entity_id=d.id,
        park_id=park_id,
        to_state=d.state.value,
        round_id=a.round_id,
        agreement_id=a.id,
        quantity_kg=kg,
    )
    if a.state is not before:
        record(
            session,
            actor_id=user.id,
            action="agreement.complete",
            entity="agreement",
            entity_id=a.id,
            park_id=park_id,
            from_state=before.value,
            to_state=a.state.value,
            round_id=a.round_id,
        )
    session.commit()
    return d


def confirm_delivery(session: Session, user: User, delivery_id: int) -> Delivery:
    """RECORDED → CONFIRMED, by the enterprise that did not record it."""
    d0 = session.get(Delivery, delivery_id)
    if d0 is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    a = get_agreement(session, user, d0.agreement_id)
    d = get_for_update(session, Delivery, delivery_id, "delivery")
    side = side_of(user, a)
    if side is None or user.role is not Role.ENTERPRISE:
        raise Forbidden("deliveries are confirmed by the enterprises of the agreement")
    if d.recorded_by_enterprise_id == user.enterprise_id:
        raise Forbidden("the other enterprise confirms a delivery, not the one that recorded it")
    before = d.state
    d.state = transition("delivery", d.id, d.state, DeliveryState.CONFIRMED, DELIVERY_TRANSITIONS)
    d.confirmed_by = user.id
    d.confirmed_at = utcnow()
    notify(  # the recorder: the side that did not confirm
        session,
        a.consumer_enterprise_id if side == "supplier" else a.supplier_enterprise_id,
        "delivery.confirmed",
        "The other enterprise confirmed the delivery of {quantity_t} t on agreement {id}",
        f"/agreements/{a.id}",
        id=a.id,
        quantity_t=str(kg_to_t(d.quantity_kg)),
    )
    record(
        session,
        actor_id=user.id,
        action="delivery.confirm",
        entity="delivery",
        entity_id=d.id,
        park_id=_round_park(session, a.round_id),
        from_state=before.value,
        to_state=d.state.value,
        round_id=a.round_id,
        agreement_id=a.id,
    )
    session.commit()
    return d


def cancel_agreement(session: Session, user: User, agreement_id: int, reason: str | None) -> Agreement:
    """ACTIVE → CANCELLED by either enterprise or the round's manager: the undelivered rest is released on both
    listings (delivered tonnes stay counted)."""
    a = get_agreement(session, user, agreement_id)
    party = side_of(user, a) is not None and user.role is Role.ENTERPRISE
    rnd = session.get(Round, a.round_id)
    if not party and not (is_staff(user) and rnd is not None and can_manage(user, rnd)):
        raise Forbidden("an agreement is cancelled by one of its enterprises or the round's manager")
    a = get_for_update(session, Agreement, agreement_id, "agreement")
    if a.state is not AgreementState.ACTIVE:
        raise Conflict(f"agreement {agreement_id} is {a.state.value}; only an active agreement can be cancelled")
    rest = a.quantity_kg - a.delivered_kg
    now = utcnow()
    for lid in sorted((a.supply_listing_id, a.demand_listing_id)):
        listing = get_for_update(session, Listing, lid, "listing")
        listing.allocated_kg = max(0, listing.allocated_kg - rest)
        listing.version += 1
        listing.updated_at = now
    before = a.state
    a.state = transition("agreement", a.id, a.state, AgreementState.CANCELLED, AGREEMENT_TRANSITIONS)
    a.cancelled_at = now
    a.cancelled_by_id = user.id
    a.cancel_reason = (reason or "").strip()[:500] or None
    a.version += 1
    for ent in (a.supplier_enterprise_id, a.consumer_enterprise_id):
        notify(session, ent, "agreement.cancelled", "Agreement {id} was cancelled", f"/agreements/{a.id}", id=a.id)
    record(
        session,
        actor_id=user.id,
        action="agreement.cancel",
        entity="agreement",
        entity_id=a.id,
        park_id=rnd.park_id if rnd else None,
        from_state=before.value,
        to_state=a.state.value,
        round_id=a.round_id,
        released_kg=rest,
        reason=a.cancel_reason,
    )
    session.commit()
    return a
