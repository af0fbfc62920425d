"""The monthly general industrial solid-waste ledger (一般工业固体废物管理台账), one row per enterprise, material
and month, with the fields of the National Bureau of Statistics' definition so the utilisation rate is right.

Figures are integer kilograms. The row is denormalised on purpose: the material's category and bulk flag and
the enterprise's province, city, park and industry are copied onto it when it is filed, so that every dashboard
aggregation is one GROUP BY over composite indexes on this table, without joins. Corrections overwrite the
current row and keep the superseded figures as a `LedgerRevision`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from exchange.core.db import enum_type, utcnow
from exchange.core.params import PERIOD_PATTERN

# The figures of a ledger row, in the order of the ledger form (and of the CSV/XLSX import columns).
FIGURES: tuple[str, ...] = (
    "generated",
    "utilised_in_house",
    "utilised_in_house_prior_stock",
    "sent_for_utilisation",
    "sent_for_utilisation_prior_stock",
    "disposed",
    "disposed_prior_stock",
    "stored",
    "dumped",
)
KG_COLUMNS: tuple[str, ...] = tuple(f"{f}_kg" for f in FIGURES)
# "of which from prior-year stock" figure → the total it is part of
PRIOR_OF: dict[str, str] = {
    "utilised_in_house_prior_stock": "utilised_in_house",
    "sent_for_utilisation_prior_stock": "sent_for_utilisation",
    "disposed_prior_stock": "disposed",
}


class LedgerSource(enum.StrEnum):
    FORM = "form"
    IMPORT = "import"
    API = "api"
    DEMO = "demo"


def _kg() -> int:
    return Field(default=0, sa_type=sa.BigInteger)


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        sa.UniqueConstraint(
            "enterprise_id", "material_code", "period", name="uq_ledger_entry_enterprise_material_period"
        ),
        *(sa.CheckConstraint(f"{c} >= 0", name=f"{c}_not_negative") for c in KG_COLUMNS),
        sa.CheckConstraint("utilised_in_house_prior_stock_kg <= utilised_in_house_kg", name="in_house_prior_le_total"),
        sa.CheckConstraint(
            "sent_for_utilisation_prior_stock_kg <= sent_for_utilisation_kg", name="sent_prior_le_total"
        ),
        sa.CheckConstraint("disposed_prior_stock_kg <= disposed_kg", name="disposed_prior_le_total"),
        # Composite indexes for the dashboard's GROUP BYs: filter on period (and region), group by the rest.
        sa.Index("ix_ledger_entry_period_material", "period", "material_code", "province_code"),
        sa.Index("ix_ledger_entry_province_period", "province_code", "period", "city_code", "material_code"),
        sa.Index("ix_ledger_entry_city_period", "city_code", "period", "material_code"),
        sa.Index("ix_ledger_entry_park_period", "park_id", "period", "material_code"),
        sa.Index("ix_ledger_entry_enterprise_period", "enterprise_id", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id")
    material_code: str = Field(max_length=40)
    period: str = Field(max_length=7)  # YYYY-MM
    year: int
    # Denormalised from the catalogue and the enterprise at filing time (kept as filed: history stays put).
    category: str = Field(max_length=40)  # the bulk category (fly_ash, smelting_slag, ...) or the material group
    counts_toward_bulk_target: bool = False
    province_code: str | None = Field(default=None, max_length=6)
    city_code: str | None = Field(default=None, max_length=6)
    park_id: int | None = Field(default=None, foreign_key="park.id")
    industry: str = Field(default="other", max_length=40)
    generated_kg: int = _kg()
    utilised_in_house_kg: int = _kg()
    utilised_in_house_prior_stock_kg: int = _kg()
    sent_for_utilisation_kg: int = _kg()
    sent_for_utilisation_prior_stock_kg: int = _kg()
    disposed_kg: int = _kg()
    disposed_prior_stock_kg: int = _kg()
    stored_kg: int = _kg()
    dumped_kg: int = _kg()
    version: int = 1
    source: LedgerSource = Field(default=LedgerSource.FORM, sa_type=enum_type(LedgerSource))
    note: str | None = Field(default=None, max_length=500)
    filed_by_id: int | None = Field(default=None, foreign_key="user.id")
    filed_at: datetime = Field(default_factory=utcnow)


class LedgerRevision(SQLModel, table=True):
    """A superseded version of a ledger row: written when a correction replaces it (history is append-only)."""

    __tablename__ = "ledger_revision"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="ledger_entry.id", index=True)
    version: int
    generated_kg: int = _kg()
    utilised_in_house_kg: int = _kg()
    utilised_in_house_prior_stock_kg: int = _kg()
    sent_for_utilisation_kg: int = _kg()
    sent_for_utilisation_prior_stock_kg: int = _kg()
    disposed_kg: int = _kg()
    disposed_prior_stock_kg: int = _kg()
    stored_kg: int = _kg()
    dumped_kg: int = _kg()
    source: LedgerSource = Field(sa_type=enum_type(LedgerSource))
    note: str | None = Field(default=None, max_length=500)
    filed_by_id: int | None = Field(default=None, foreign_key="user.id")
    filed_at: datetime
    superseded_by_id: int | None = Field(default=None, foreign_key="user.id")
    superseded_at: datetime = Field(default_factory=utcnow)


# --- summaries for the statistics ----------------------------------------------------------------
# Two pre-aggregated tables keep every dashboard query small at national scale (50,000 enterprises × 24
# months ≈ 1.5 million ledger rows): the service adds each filing's or correction's difference to them in the
# same transaction, and `refresh_summaries` rebuilds them from the ledger rows after a bulk load. Missing
# region/park keys are stored as '' / 0 so the keys can be unique (NULLs are never equal) and upserted.

SUMMARY_SUMS: tuple[str, ...] = (
    "generated_kg",
    "utilised_kg",  # in-house + sent out for utilisation, each including its prior-year-stock part
    "prior_utilised_kg",  # of which from prior-year stock: added to the rate's denominator (NBS)
    "disposed_kg",  # net of its prior-year-stock part
    "stored_kg",
    "dumped_kg",
    "entries",  # ledger rows summed
)


def _sum() -> int:
    return Field(default=0, sa_type=sa.BigInteger)


class LedgerRegionMonth(SQLModel, table=True):
    """Ledger figures summed per month, city, park and material: every region-level dashboard figure."""

    __tablename__ = "ledger_region_month"
    __table_args__ = (
        sa.UniqueConstraint(
            "period",
            "province_code",
            "city_code",
            "park_id",
            "material_code",
            "category",
            "counts_toward_bulk_target",
            name="uq_ledger_region_month_key",
        ),
        sa.Index("ix_ledger_region_month_province", "province_code", "period"),
        sa.Index("ix_ledger_region_month_city", "city_code", "period"),
        sa.Index("ix_ledger_region_month_park", "park_id", "period"),
        sa.Index("ix_ledger_region_month_year", "year", "counts_toward_bulk_target"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7)
    year: int
    province_code: str = Field(default="", max_length=6)
    city_code: str = Field(default="", max_length=6)
    park_id: int = 0  # 0: not in a park (no foreign key: 0 is not a park)
    material_code: str = Field(max_length=40)
    category: str = Field(max_length=40)
    counts_toward_bulk_target: bool = False
    generated_kg: int = _sum()
    utilised_kg: int = _sum()
    prior_utilised_kg: int = _sum()
    disposed_kg: int = _sum()
    stored_kg: int = _sum()
    dumped_kg: int = _sum()
    entries: int = _sum()


class LedgerEnterpriseYear(SQLModel, table=True):
    """Ledger figures summed per enterprise, year and material: laggard enterprises, enterprise counts and the
    disclosure rule's per-enterprise shares, for periods made of whole calendar years."""

    __tablename__ = "ledger_enterprise_year"
    __table_args__ = (
        sa.UniqueConstraint(
            "year",
            "enterprise_id",
            "material_code",
            "category",
            "counts_toward_bulk_target",
            "province_code",
            "city_code",
            "park_id",
            name="uq_ledger_enterprise_year_key",
        ),
        sa.Index("ix_ledger_enterprise_year_province", "province_code", "year"),
        sa.Index("ix_ledger_enterprise_year_city", "city_code", "year"),
        sa.Index("ix_ledger_enterprise_year_park", "park_id", "year"),
    )

    id: int | None = Field(default=None, primary_key=True)
    year: int
    enterprise_id: int = Field(foreign_key="enterprise.id")
    province_code: str = Field(default="", max_length=6)
    city_code: str = Field(default="", max_length=6)
    park_id: int = 0
    material_code: str = Field(max_length=40)
    category: str = Field(max_length=40)
    counts_toward_bulk_target: bool = False
    generated_kg: int = _sum()
    utilised_kg: int = _sum()
    prior_utilised_kg: int = _sum()
    disposed_kg: int = _sum()
    stored_kg: int = _sum()
    dumped_kg: int = _sum()
    entries: int = _sum()


# --- API schemas -------------------------------------------------------------------------------

Tonnes = PField(default=Decimal("0"), ge=0, max_digits=15, decimal_places=3)


class LedgerFigures(BaseModel):
    """The ledger's figures in tonnes (up to 3 decimals, i.e. whole kilograms)."""

    generated_t: Decimal = Tonnes
    utilised_in_house_t: Decimal = Tonnes
    utilised_in_house_prior_stock_t: Decimal = Tonnes
    sent_for_utilisation_t: Decimal = Tonnes
    sent_for_utilisation_prior_stock_t: Decimal = Tonnes
    disposed_t: Decimal = Tonnes
    disposed_prior_stock_t: Decimal = Tonnes
    stored_t: Decimal = Tonnes
    dumped_t: Decimal = Tonnes


class LedgerIn(LedgerFigures):
    material_code: str = PField(min_length=1, max_length=40)
    period: str = PField(pattern=PERIOD_PATTERN, examples=["2025-03"])
    note: str | None = PField(default=None, max_length=500)


class LedgerPublic(LedgerFigures):
    id: int
    enterprise_id: int
    material_code: str
    period: str
    category: str
    counts_toward_bulk_target: bool
    utilised_t: Decimal
    utilisation_rate: float | None  # None: nothing generated and no prior stock utilised ("no data")
    version: int
    source: LedgerSource
    note: str | None
    filed_at: datetime
    warnings: list[str] = PField(default_factory=list)


class LedgerRevisionPublic(LedgerFigures):
    version: int
    source: LedgerSource
    note: str | None
    filed_at: datetime
    superseded_at: datetime | None


class ImportError_(BaseModel):
    row: int  # 1-based, counting the header as row 1 (as a spreadsheet shows it)
    column: str | None
    message: str


class ImportResult(BaseModel):
    created: int
    updated: int  # corrections: the previous figures are kept as a revision
    unchanged: int = 0  # rows identical to what was already filed (no new version)
    warnings: list[ImportError_] = PField(default_factory=list)
