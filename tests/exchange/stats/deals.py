"""Exchange deals written straight into the tables (round → run → listings → proposal → agreement → deliveries),
so the statistics and the ledger pre-fill can be tested against hand-computed tonnes without running a solver."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlmodel import Session

from exchange.enterprises.models import Enterprise
from exchange.listings.models import Listing, ListingKind
from exchange.rounds.models import (
    Agreement,
    AgreementState,
    Delivery,
    Proposal,
    ProposalState,
    Round,
    RoundRun,
    ScopeKind,
)


def _kg(t: float) -> int:
    return round(t * 1000)


def _listing(session: Session, ent: Enterprise, kind: ListingKind, material: str, quantity_t: float) -> Listing:
    listing = Listing(
        enterprise_id=ent.id,
        kind=kind,
        material_code=material,
        quantity_kg=_kg(quantity_t),
        lat=ent.lat,
        lon=ent.lon,
        province_code=ent.province_code,
        city_code=ent.city_code,
        park_id=ent.park_id,
    )
    session.add(listing)
    session.flush()
    return listing


def proposal(
    session: Session,
    supplier: Enterprise,
    consumer: Enterprise,
    material: str,
    quantity_t: float,
    state: ProposalState = ProposalState.OPEN,
) -> Proposal:
    """A proposal from a run of a fresh round (its own listings), in the given state."""
    rnd = Round(title="test round", scope_kind=ScopeKind.VISIBLE, period="2025-01")
    session.add(rnd)
    session.flush()
    run = RoundRun(round_id=rnd.id, number=1)
    session.add(run)
    session.flush()
    supply = _listing(session, supplier, ListingKind.SUPPLY, material, quantity_t)
    demand = _listing(session, consumer, ListingKind.DEMAND, material, quantity_t)
    p = Proposal(
        round_id=rnd.id,
        run_id=run.id,
        supply_listing_id=supply.id,
        demand_listing_id=demand.id,
        supplier_enterprise_id=supplier.id,
        consumer_enterprise_id=consumer.id,
        material_code=material,
        quantity_kg=_kg(quantity_t),
        distance_km=10.0,
        cost_fen=0,
        state=state,
    )
    session.add(p)
    session.commit()
    return p


def agreement(
    session: Session,
    supplier: Enterprise,
    consumer: Enterprise,
    material: str,
    quantity_t: float,
    deliveries: Sequence[tuple[date, float]] = (),
    state: AgreementState = AgreementState.ACTIVE,
) -> Agreement:
    """An agreement (from an accepted proposal) with its deliveries recorded."""
    p = proposal(session, supplier, consumer, material, quantity_t, ProposalState.ACCEPTED)
    a = Agreement(
        round_id=p.round_id,
        proposal_id=p.id,
        supply_listing_id=p.supply_listing_id,
        demand_listing_id=p.demand_listing_id,
        supplier_enterprise_id=supplier.id,
        consumer_enterprise_id=consumer.id,
        material_code=material,
        quantity_kg=p.quantity_kg,
        delivered_kg=sum(_kg(t) for _, t in deliveries),
        state=state,
    )
    session.add(a)
    session.flush()
    for day, t in deliveries:
        session.add(Delivery(agreement_id=a.id, quantity_kg=_kg(t), delivered_on=day, vehicle_no="冀D12345"))
    session.commit()
    return a
