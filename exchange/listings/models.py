"""Supply and demand listings, their change history and attached test reports.

Quantities are stored as integer kilograms (exact on SQLite and PostgreSQL, sums never drift);
prices as integer fen (0.01 CNY) per tonne. The API speaks tonnes and CNY as Decimals.
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
from exchange.core.params import MAX_ID


class ListingKind(enum.StrEnum):
    SUPPLY = "supply"
    DEMAND = "demand"


class QuantityBasis(enum.StrEnum):
    PER_MONTH = "per_month"
    ONE_OFF = "one_off"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PARK = "park"  # members of the same park, its manager, regulators and admins
    ANONYMOUS = "anonymous"  # enterprise name and price hidden until a match is agreed


class ListingStatus(enum.StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


class Listing(SQLModel, table=True):
    __table_args__ = (
        sa.CheckConstraint("quantity_kg > 0", name="quantity_positive"),
        sa.CheckConstraint("allocated_kg >= 0 AND allocated_kg <= quantity_kg", name="allocated_within_quantity"),
        sa.Index("ix_listing_search", "status", "kind", "material_code"),
        # "within R km of a point" narrows by a latitude/longitude bounding box first.
        sa.Index("ix_listing_lat_lon", "lat", "lon"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    kind: ListingKind = Field(sa_type=enum_type(ListingKind))
    material_code: str = Field(max_length=40, index=True)
    grade: str | None = Field(default=None, max_length=20)  # supply: its grade
    accepted_grades: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # demand: [] = any
    parameters: dict[str, float] = Field(default_factory=dict, sa_type=sa.JSON)  # measured, e.g. loi_pct
    quantity_kg: int = Field(sa_type=sa.BigInteger)
    quantity_basis: QuantityBasis = Field(default=QuantityBasis.PER_MONTH, sa_type=enum_type(QuantityBasis))
    # Reserved by agreements (matching rounds); the CHECK keeps it within the quantity.
    allocated_kg: int = Field(default=0, sa_type=sa.BigInteger)
    available_from: date | None = None
    available_to: date | None = None
    price_fen_per_t: int | None = Field(default=None, sa_type=sa.BigInteger)  # negative: producer pays
    price_note: str | None = Field(default=None, max_length=500)  # private
    lat: float
    lon: float
    address: str | None = Field(default=None, max_length=300)
    province_code: str | None = Field(default=None, max_length=6, index=True)
    city_code: str | None = Field(default=None, max_length=6, index=True)
    county_code: str | None = Field(default=None, max_length=6)
    park_id: int | None = Field(default=None, foreign_key="park.id", index=True)
    max_distance_km: float | None = None
    notes: str | None = Field(default=None, max_length=2000)
    visibility: Visibility = Field(default=Visibility.PUBLIC, sa_type=enum_type(Visibility))
    status: ListingStatus = Field(default=ListingStatus.OPEN, sa_type=enum_type(ListingStatus), index=True)
    version: int = Field(default=1)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ListingChange(SQLModel, table=True):
    """Every change of a listing: who, when, before and after (the changed fields only)."""

    id: int | None = Field(default=None, primary_key=True)
    listing_id: int = Field(foreign_key="listing.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow)
    action: str = Field(max_length=20)  # created, updated, paused, resumed, closed, imported
    before: dict[str, object] = Field(default_factory=dict, sa_type=sa.JSON)
    after: dict[str, object] = Field(default_factory=dict, sa_type=sa.JSON)


class Attachment(SQLModel, table=True):
    """A test report (PDF or image) attached to a listing; the bytes live under the upload directory."""

    id: int | None = Field(default=None, primary_key=True)
    listing_id: int = Field(foreign_key="listing.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=80)
    size_bytes: int
    sha256: str = Field(max_length=64)
    uploaded_by_id: int | None = Field(default=None, foreign_key="user.id")
    uploaded_at: datetime = Field(default_factory=utcnow)


# --- API schemas -------------------------------------------------------------------------------

MAX_QUANTITY_T = Decimal("100000000")  # 100 Mt: far above any single site's output; catches unit mistakes
MAX_PRICE_CNY_PER_T = Decimal("1000000")


class ListingFields(BaseModel):
    """The optional refinements shared by create and update."""

    model_config = ConfigDict(extra="forbid")

    grade: str | None = PField(default=None, max_length=20)
    accepted_grades: list[str] | None = None
    parameters: dict[str, float] | None = None
    quantity_basis: QuantityBasis | None = None
    available_from: date | None = None
    available_to: date | None = None
    price_cny_per_t: Decimal | None = PField(
        default=None, ge=-MAX_PRICE_CNY_PER_T, le=MAX_PRICE_CNY_PER_T, max_digits=12, decimal_places=2
    )
    price_note: str | None = PField(default=None, max_length=500)
    address: str | None = PField(default=None, max_length=300)
    lat: float | None = PField(default=None, ge=-90, le=90)
    lon: float | None = PField(default=None, ge=-180, le=180)
    max_distance_km: float | None = PField(default=None, gt=0, le=5000)
    notes: str | None = PField(default=None, max_length=2000)
    visibility: Visibility | None = None

    @model_validator(mode="after")
    def _window_and_point(self) -> Any:
        if self.available_from and self.available_to and self.available_to < self.available_from:
            raise ValueError("the availability window ends before it starts")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class ListingCreate(ListingFields):
    """Only material and quantity are required; the location defaults to the enterprise's."""

    kind: ListingKind = ListingKind.SUPPLY
    material_code: str = PField(min_length=1, max_length=40, examples=["fly_ash"])
    quantity_t: Decimal = PField(gt=0, le=MAX_QUANTITY_T, max_digits=13, decimal_places=3, examples=["1200"])


class ListingUpdate(ListingFields):
    """Send only the fields to change, plus the `version` you last read (or an If-Match header)."""

    version: int | None = PField(default=None, ge=1, le=MAX_ID)
    material_code: str | None = PField(default=None, min_length=1, max_length=40)
    quantity_t: Decimal | None = PField(default=None, gt=0, le=MAX_QUANTITY_T, max_digits=13, decimal_places=3)


class ListingPublic(BaseModel):
    """What anyone allowed to see the listing gets. For an anonymous listing, the enterprise and the price are
    None (and the point is rounded to about 10 km) for everyone but the owner, admins and agreed partners."""

    id: int
    kind: ListingKind
    material_code: str
    material_name: str
    grade: str | None
    accepted_grades: list[str]
    parameters: dict[str, float]
    quantity_t: Decimal
    available_t: Decimal
    quantity_basis: QuantityBasis
    available_from: date | None
    available_to: date | None
    price_cny_per_t: Decimal | None
    lat: float
    lon: float
    address: str | None
    province_code: str | None
    city_code: str | None
    county_code: str | None
    park_id: int | None
    max_distance_km: float | None
    notes: str | None
    visibility: Visibility
    status: ListingStatus
    version: int
    enterprise_id: int | None
    enterprise_name: str | None
    identity_hidden: bool
    created_at: datetime
    updated_at: datetime
    distance_km: float | None = None


class ListingOwnerView(ListingPublic):
    """For the owner enterprise's members and admins: private fields too."""

    price_note: str | None
    contact_name: str | None
    contact_phone: str | None
    contact_email: str | None
    created_by_id: int | None


class ListingPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ListingOwnerView | ListingPublic]


class ListingChangePublic(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    user_name: str | None
    action: str
    before: dict[str, Any]
    after: dict[str, Any]


class AttachmentPublic(BaseModel):
    id: int
    listing_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    url: str


ImportMode = Literal["all_or_nothing", "valid_rows"]


class ImportRowError(BaseModel):
    row: int  # as a spreadsheet shows it: the header is row 1
    column: str | None
    message: str


class ImportResult(BaseModel):
    created: int
    errors: list[ImportRowError] = PField(default_factory=list)
    ids: list[int] = PField(default_factory=list)
