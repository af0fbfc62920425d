"""Matching rounds: a round (scope + settings), its numbered runs (one background job each), the run's
allocations, and what comes out of a published run: proposals, agreements, deliveries and notifications.

Quantities are integer kilograms, money integer fen; the API speaks tonnes and CNY. Every state column has an
explicit transition table below; `service.transition` refuses anything else with 409.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from exchange.core.db import enum_type, utcnow
from exchange.core.params import PERIOD_PATTERN, IdField

# ---------------------------------------------------------------------------------------------- states


class RoundState(enum.StrEnum):
    QUEUED = "queued"  # a run waits for a worker
    RUNNING = "running"
    REVIEW = "review"  # solved; the manager reviews before anything goes out
    PUBLISHED = "published"  # proposals went to the enterprises
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStage(enum.StrEnum):
    QUEUED = "queued"
    BUILDING_PAIRS = "building_pairs"
    SOLVING = "solving"
    WRITING_RESULTS = "writing_results"
    DONE = "done"


class ScopeKind(enum.StrEnum):
    PARK = "park"  # listings in one park
    REGIONS = "regions"  # listings in a list of provinces and cities
    VISIBLE = "visible"  # every open listing the round's creator may see (a regulator: within the region)


class ProposalState(enum.StrEnum):
    OPEN = "open"  # awaiting answers (one side may already have accepted)
    ACCEPTED = "accepted"  # both accepted: an agreement exists
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"  # superseded by a later published run of the round


class Answer(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"


class AgreementState(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"  # everything delivered
    CANCELLED = "cancelled"  # the undelivered rest released on both listings


class DeliveryState(enum.StrEnum):
    RECORDED = "recorded"
    CONFIRMED = "confirmed"  # by the other party


ROUND_TRANSITIONS: dict[RoundState, frozenset[RoundState]] = {
    RoundState.QUEUED: frozenset({RoundState.RUNNING, RoundState.CANCELLED, RoundState.FAILED}),
    RoundState.RUNNING: frozenset({RoundState.REVIEW, RoundState.FAILED, RoundState.CANCELLED}),
    RoundState.REVIEW: frozenset({RoundState.QUEUED, RoundState.PUBLISHED}),
    RoundState.PUBLISHED: frozenset({RoundState.QUEUED}),
    RoundState.FAILED: frozenset({RoundState.QUEUED}),
    RoundState.CANCELLED: frozenset({RoundState.QUEUED}),
}
RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED, RunState.FAILED}),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}
PROPOSAL_TRANSITIONS: dict[ProposalState, frozenset[ProposalState]] = {
    ProposalState.OPEN: frozenset({ProposalState.ACCEPTED, ProposalState.DECLINED, ProposalState.WITHDRAWN}),
    ProposalState.ACCEPTED: frozenset(),
    ProposalState.DECLINED: frozenset(),
    ProposalState.WITHDRAWN: frozenset(),
}
AGREEMENT_TRANSITIONS: dict[AgreementState, frozenset[AgreementState]] = {
    AgreementState.ACTIVE: frozenset({AgreementState.COMPLETED, AgreementState.CANCELLED}),
    AgreementState.COMPLETED: frozenset(),
    AgreementState.CANCELLED: frozenset(),
}
DELIVERY_TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    DeliveryState.RECORDED: frozenset({DeliveryState.CONFIRMED}),
    DeliveryState.CONFIRMED: frozenset(),
}


# ---------------------------------------------------------------------------------------------- tables


class Round(SQLModel, table=True):
    __tablename__ = "matching_round"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    # Who runs it: a park's managers (park_id) or a region's regulators (region_code); admins run any.
    park_id: int | None = Field(default=None, foreign_key="park.id", index=True)
    region_code: str | None = Field(default=None, max_length=6)
    scope_kind: ScopeKind = Field(sa_type=enum_type(ScopeKind))
    scope_park_id: int | None = Field(default=None, foreign_key="park.id")
    scope_regions: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    period: str = Field(max_length=7)  # YYYY-MM
    materials: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # [] = every material
    freight_cny_per_t_km: float = 0.35
    detour_factor: float = 1.3
    honour_min_lots: bool = True
    # Review: [{"supply_listing_id", "demand_listing_id", "quantity_kg"}] and [[supply_listing_id, demand_listing_id]]
    pins: list[dict[str, int]] = Field(default_factory=list, sa_type=sa.JSON)
    forbidden: list[list[int]] = Field(default_factory=list, sa_type=sa.JSON)
    state: RoundState = Field(default=RoundState.QUEUED, sa_type=enum_type(RoundState), index=True)
    runs_count: int = 0
    current_run_id: int | None = None  # the latest run (no FK: run → round already points the other way)
    published_run_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    version: int = 1


class RoundRun(SQLModel, table=True):
    """One solve of a round, numbered 1, 2, … within it; also the background job's record (state, stage,
    progress, heartbeat). Stores the solver's input and output (the JSON contract) so any run can be
    re-solved offline with `exchange solve` and compared."""

    __tablename__ = "round_run"
    __table_args__ = (sa.UniqueConstraint("round_id", "number", name="uq_round_run_number"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="matching_round.id", index=True)
    number: int
    state: RunState = Field(default=RunState.QUEUED, sa_type=enum_type(RunState), index=True)
    stage: RunStage = Field(default=RunStage.QUEUED, sa_type=enum_type(RunStage))
    progress: float = 0.0  # 0..1
    backend: str = Field(default="thread", max_length=10)  # thread | rq
    job_id: str | None = Field(default=None, max_length=80)
    worker: str | None = Field(default=None, max_length=120)
    requested_by_id: int | None = Field(default=None, foreign_key="user.id")
    reason: str = Field(default="first run", max_length=40)  # first run | re-solve | re-run | retry
    queued_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, max_length=2000)
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    problem: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # solver input (contract JSON)
    solution: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # solver output (contract JSON)
    report: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class RoundAllocation(SQLModel, table=True):
    """A pair of listings and the tonnes a run sends along it (`agreed_kg` of them fixed by agreements)."""

    __tablename__ = "round_allocation"
    __table_args__ = (sa.CheckConstraint("quantity_kg > 0", name="quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="round_run.id", index=True)
    round_id: int = Field(foreign_key="matching_round.id", index=True)
    supply_listing_id: int = Field(foreign_key="listing.id")
    demand_listing_id: int = Field(foreign_key="listing.id")
    supplier_enterprise_id: int = Field(foreign_key="enterprise.id")
    consumer_enterprise_id: int = Field(foreign_key="enterprise.id")
    material_code: str = Field(max_length=40)
    quantity_kg: int = Field(sa_type=sa.BigInteger)
    agreed_kg: int = Field(default=0, sa_type=sa.BigInteger)
    pinned: bool = False
    distance_km: float
    cost_fen: int = Field(sa_type=sa.BigInteger)


class RoundUnmatched(SQLModel, table=True):
    """A supply lot (or its rest) a run left unmatched, with the solver's reason."""

    __tablename__ = "round_unmatched"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="round_run.id", index=True)
    supply_listing_id: int = Field(foreign_key="listing.id")
    quantity_kg: int = Field(sa_type=sa.BigInteger)
    reason: str = Field(max_length=60)
    detail: str = Field(default="", max_length=1000)
    nearest_demand_listing_id: int | None = None
    nearest_distance_km: float | None = None


class Proposal(SQLModel, table=True):
    __table_args__ = (sa.CheckConstraint("quantity_kg > 0", name="quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="matching_round.id", index=True)
    run_id: int = Field(foreign_key="round_run.id")
    supply_listing_id: int = Field(foreign_key="listing.id", index=True)
    demand_listing_id: int = Field(foreign_key="listing.id", index=True)
    supplier_enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    consumer_enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    material_code: str = Field(max_length=40)
    quantity_kg: int = Field(sa_type=sa.BigInteger)
    distance_km: float
    cost_fen: int = Field(sa_type=sa.BigInteger)
    state: ProposalState = Field(default=ProposalState.OPEN, sa_type=enum_type(ProposalState), index=True)
    supplier_answer: Answer | None = Field(default=None, sa_type=enum_type(Answer))
    supplier_answered_at: datetime | None = None
    supplier_answered_by_id: int | None = Field(default=None, foreign_key="user.id")
    supplier_reason: str | None = Field(default=None, max_length=500)
    consumer_answer: Answer | None = Field(default=None, sa_type=enum_type(Answer))
    consumer_answered_at: datetime | None = None
    consumer_answered_by_id: int | None = Field(default=None, foreign_key="user.id")
    consumer_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    version: int = 1


class Agreement(SQLModel, table=True):
    """Both sides accepted a proposal: these tonnes are reserved on both listings (their `allocated_kg`)."""

    __table_args__ = (
        sa.CheckConstraint("quantity_kg > 0", name="quantity_positive"),
        sa.CheckConstraint("delivered_kg >= 0 AND delivered_kg <= quantity_kg", name="delivered_within_quantity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="matching_round.id", index=True)
    proposal_id: int = Field(foreign_key="proposal.id", unique=True)
    supply_listing_id: int = Field(foreign_key="listing.id", index=True)
    demand_listing_id: int = Field(foreign_key="listing.id", index=True)
    supplier_enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    consumer_enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    material_code: str = Field(max_length=40)
    hazardous: bool = False
    quantity_kg: int = Field(sa_type=sa.BigInteger)
    delivered_kg: int = Field(default=0, sa_type=sa.BigInteger)
    distance_km: float = 0.0
    state: AgreementState = Field(default=AgreementState.ACTIVE, sa_type=enum_type(AgreementState), index=True)
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancelled_by_id: int | None = Field(default=None, foreign_key="user.id")
    cancel_reason: str | None = Field(default=None, max_length=500)
    version: int = 1


class Delivery(SQLModel, table=True):
    __table_args__ = (sa.CheckConstraint("quantity_kg > 0", name="quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    quantity_kg: int = Field(sa_type=sa.BigInteger)
    delivered_on: date = Field(index=True)
    waybill_no: str | None = Field(default=None, max_length=60)
    vehicle_no: str | None = Field(default=None, max_length=20)
    manifest_no: str | None = Field(default=None, max_length=40)  # hazardous waste transfer manifest
    note: str | None = Field(default=None, max_length=500)
    state: DeliveryState = Field(default=DeliveryState.RECORDED, sa_type=enum_type(DeliveryState))
    recorded_by: int | None = Field(default=None, foreign_key="user.id")
    recorded_by_enterprise_id: int | None = Field(default=None, foreign_key="enterprise.id")
    confirmed_by: int | None = Field(default=None, foreign_key="user.id")
    confirmed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """In-app notice to an enterprise's members: an English message template (translated when shown) with its
    values, and where to go."""

    __tablename__ = "round_notification"

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    kind: str = Field(max_length=40)
    message: str = Field(max_length=300)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    link: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None


# ---------------------------------------------------------------------------------------------- API schemas


REGION_PATTERN = r"^\d{6}$"
Tonnes = Decimal


class RoundSettings(BaseModel):
    """What the manager may change between runs."""

    model_config = ConfigDict(extra="forbid")

    freight_cny_per_t_km: float | None = PField(default=None, gt=0, le=100)
    detour_factor: float | None = PField(default=None, ge=1, le=5)
    honour_min_lots: bool | None = None


class RoundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: ScopeKind = ScopeKind.PARK
    park_id: IdField | None = None  # scope=park: defaults to the manager's own park
    regions: list[str] = PField(default_factory=list, max_length=100)
    period: str = PField(pattern=PERIOD_PATTERN, examples=["2025-06"])
    materials: list[str] = PField(default_factory=list, max_length=200)
    freight_cny_per_t_km: float = PField(default=0.35, gt=0, le=100)
    detour_factor: float = PField(default=1.3, ge=1, le=5)
    honour_min_lots: bool = True
    title: str | None = PField(default=None, max_length=200)

    @model_validator(mode="after")
    def _regions(self) -> Any:
        import re

        for code in self.regions:
            if not re.fullmatch(REGION_PATTERN, code):
                raise ValueError(f"a region is a 6-digit province or city code, got {code!r}")
        if self.scope is ScopeKind.REGIONS and not self.regions:
            raise ValueError("choose at least one province or city for a regional round")
        return self


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supply_listing_id: IdField
    demand_listing_id: IdField
    quantity_t: Decimal = PField(gt=0, le=Decimal("100000000"), max_digits=13, decimal_places=3)


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supply_listing_id: IdField
    demand_listing_id: IdField


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = PField(default=None, max_length=500)


class DeliveryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivered_on: date
    quantity_t: Decimal = PField(gt=0, le=Decimal("100000000"), max_digits=13, decimal_places=3)
    waybill_no: str | None = PField(default=None, max_length=60)
    vehicle_no: str | None = PField(default=None, max_length=20)
    manifest_no: str | None = PField(default=None, max_length=40)
    note: str | None = PField(default=None, max_length=500)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = PField(default=None, max_length=500)


class PreviewMaterial(BaseModel):
    material_code: str
    material_name: str
    supply_lots: int
    supply_t: Tonnes
    demand_lots: int
    demand_t: Tonnes


class Preview(BaseModel):
    supply_lots: int
    supply_t: Tonnes
    demand_lots: int
    demand_t: Tonnes
    materials: list[PreviewMaterial]


class RunPublic(BaseModel):
    id: int
    round_id: int
    number: int
    state: RunState
    stage: RunStage
    progress: float
    reason: str
    backend: str
    queue_position: int | None = None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    error: str | None
    settings: dict[str, Any]
    summary: dict[str, Any] | None = None


class RoundPublic(BaseModel):
    id: int
    title: str
    state: RoundState
    scope: ScopeKind
    park_id: int | None
    scope_park_id: int | None
    region_code: str | None
    regions: list[str]
    period: str
    materials: list[str]
    freight_cny_per_t_km: float
    detour_factor: float
    honour_min_lots: bool
    pins: list[dict[str, Any]]
    forbidden: list[list[int]]
    runs_count: int
    current_run: RunPublic | None
    published_run_id: int | None
    created_by_id: int | None
    created_at: datetime
    published_at: datetime | None
    version: int


class RoundStatus(BaseModel):
    """The small answer a progress bar polls."""

    round_id: int
    round_state: RoundState
    run_number: int | None
    run_state: RunState | None
    stage: RunStage | None
    progress: float
    queue_position: int | None
    error: str | None
    done: bool


class ProposalPublic(BaseModel):
    id: int
    round_id: int
    run_id: int
    state: ProposalState
    role: Literal["supplier", "consumer", "staff"]
    supply_listing_id: int
    demand_listing_id: int
    supplier_enterprise_id: int | None
    supplier_name: str | None
    consumer_enterprise_id: int | None
    consumer_name: str | None
    material_code: str
    material_name: str
    quantity_t: Tonnes
    distance_km: float
    transport_cost_cny: Decimal
    supplier_answer: Answer | None
    supplier_reason: str | None
    consumer_answer: Answer | None
    consumer_reason: str | None
    your_answer: Answer | None
    agreement_id: int | None
    created_at: datetime
    closed_at: datetime | None


class DeliveryPublic(BaseModel):
    id: int
    agreement_id: int
    quantity_t: Tonnes
    delivered_on: date
    waybill_no: str | None
    vehicle_no: str | None
    manifest_no: str | None
    note: str | None
    state: DeliveryState
    recorded_by: int | None
    recorded_by_enterprise_id: int | None
    confirmed_at: datetime | None
    created_at: datetime


class AgreementPublic(BaseModel):
    id: int
    round_id: int
    proposal_id: int
    state: AgreementState
    supply_listing_id: int
    demand_listing_id: int
    supplier_enterprise_id: int
    supplier_name: str | None
    consumer_enterprise_id: int
    consumer_name: str | None
    material_code: str
    material_name: str
    hazardous: bool
    quantity_t: Tonnes
    delivered_t: Tonnes
    remaining_t: Tonnes
    distance_km: float
    created_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    deliveries: list[DeliveryPublic] = PField(default_factory=list)


class NotificationPublic(BaseModel):
    id: int
    kind: str
    message: str  # in the reader's language
    link: str | None
    created_at: datetime
    read: bool
