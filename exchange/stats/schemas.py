"""Public schemas of the statistics API: what provincial systems pull (documented in the OpenAPI page).

Tonnes are decimal strings with three decimals (whole kilograms); rates are fractions (0.57 = 57%) or null
when nothing was generated and no prior-year stock was utilised ("no data", never 0%).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

Rate = Field(description="utilised ÷ (generated + prior-year stock utilised); null: no data")


class ScopeOut(BaseModel):
    level: Literal["national", "province", "city", "park"]
    code: str | None = Field(description="GB/T 2260 region code (for a park: its city)")
    park_id: int | None
    map_level: Literal["province", "city"] = Field(description="what the choropleth colours")
    map_province: str | None
    period_from: str = Field(examples=["2025-01"])
    period_to: str = Field(examples=["2025-12"])


class FigureRow(BaseModel):
    generated_t: Decimal
    utilised_t: Decimal = Field(description="in-house + sent out for utilisation, incl. prior-year stock")
    prior_stock_utilised_t: Decimal = Field(description="of which from prior-year stock (added to the denominator)")
    not_utilised_t: Decimal = Field(description="stored + disposed + dumped (net of prior-year stock)")
    utilisation_rate: float | None = Rate


class MaterialRow(FigureRow):
    material_code: str
    material_zh: str
    material_en: str
    bulk: bool = Field(description="counts toward the bulk industrial solid-waste target")
    hazardous: bool = Field(description="a hazardous waste: listed, but outside the general rate")


class CategoryRow(FigureRow):
    category: str
    bulk: bool


class TrendRow(FigureRow):
    period: str = Field(description="YYYY-MM (monthly trend) or YYYY (yearly trend)")
    target_rate: float


class RegionRow(FigureRow):
    region_code: str
    name_zh: str
    name_en: str


class LaggardRow(FigureRow):
    level: Literal["city", "park", "enterprise"]
    key: str = Field(description="city code, park id or enterprise id")
    name: str
    shortfall_t: Decimal = Field(description="tonnes more to utilise to reach the target")


class StrandedRow(BaseModel):
    material_code: str
    material_zh: str
    material_en: str
    bulk: bool
    hazardous: bool
    not_utilised_t: Decimal
    generated_t: Decimal
    utilisation_rate: float | None = Rate
    open_supply_unallocated_t: Decimal = Field(description="open supply listings not yet allocated on the exchange")


class FlowRow(BaseModel):
    source: str = Field(description="producing industry code")
    target: str = Field(description="consuming industry code")
    source_zh: str
    source_en: str
    target_zh: str
    target_en: str
    tonnes: Decimal


class ContextRow(BaseModel):
    """A surrounding region's bulk rate. Outside the viewer's jurisdiction it carries figures only if it passes
    the disclosure rule (status "published"); otherwise status "primary" and null figures."""

    level: Literal["national", "province", "city", "park"]
    region_code: str
    name_zh: str
    name_en: str
    inside_jurisdiction: bool
    status: Literal["published", "primary"]
    generated_t: Decimal | None
    utilised_t: Decimal | None
    utilisation_rate: float | None


class Kpis(BaseModel):
    """General industrial solid waste (hazardous wastes excluded, as in the NBS rate) and its bulk part."""

    generated_t: Decimal
    utilised_t: Decimal
    utilisation_rate: float | None = Rate
    bulk_generated_t: Decimal
    bulk_utilised_t: Decimal
    bulk_utilisation_rate: float | None = Field(description="bulk industrial solid waste only: the 57% target")
    target_rate: float = Field(examples=[0.57])
    projected_bulk_rate: float | None = Field(
        description="bulk rate if every open proposal and the undelivered rest of every active agreement is delivered"
    )
    co2_avoided_t: Decimal
    enterprises: int = Field(description="enterprises with a ledger in scope and period")
    available: bool = Field(description="whether matching rounds are installed (else the exchange figures are 0)")
    delivered_t: Decimal = Field(description="delivered through exchange agreements in the period")
    delivered_bulk_t: Decimal
    open_proposals_t: Decimal
    open_proposals_bulk_t: Decimal
    agreed_undelivered_t: Decimal
    agreed_undelivered_bulk_t: Decimal


class DashboardTables(BaseModel):
    materials: list[MaterialRow]
    categories: list[CategoryRow]
    trend_month: list[TrendRow]
    trend_year: list[TrendRow]
    regions: list[RegionRow]
    laggards_city: list[LaggardRow]
    laggards_park: list[LaggardRow]
    laggards_enterprise: list[LaggardRow]
    stranded: list[StrandedRow]
    flows: list[FlowRow]
    context: list[ContextRow]


class DashboardOut(BaseModel):
    scope: ScopeOut
    kpis: Kpis
    tables: DashboardTables


class TableOut(BaseModel):
    scope: ScopeOut
    table: str
    rows: list[dict[str, object]] = Field(description="rows shaped as the same table in /stats/dashboard")


class PublicRow(BaseModel):
    province_code: str = Field(description="'' for the national row; 000000: enterprises without a province")
    province: str
    material_code: str = Field(description="'' for all bulk materials together")
    status: Literal["published", "empty", "primary", "secondary"] = Field(
        description="primary: fewer than 3 enterprises or one above 85%; secondary: withheld so that a primary "
        "cell cannot be worked out from the totals; empty: no enterprise"
    )
    generated_t: Decimal | None
    utilised_t: Decimal | None
    utilisation_rate: float | None


class PublicOut(BaseModel):
    period_from: str
    period_to: str
    target_rate: float
    rows: list[PublicRow]
