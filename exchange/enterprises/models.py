"""Enterprises: the producers and consumers of materials, pending until approved."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, EmailStr
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from exchange.core.db import enum_type, utcnow
from exchange.core.params import IdField


class EnterpriseStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Enterprise(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    uscc: str = Field(max_length=18, unique=True, index=True)  # unified social credit code, GB 32100-2015
    industry: str = Field(max_length=40, index=True)  # industry code from the catalogue
    address: str = Field(max_length=300)
    park_id: int | None = Field(default=None, foreign_key="park.id", index=True)
    lat: float
    lon: float
    province_code: str | None = Field(default=None, max_length=6, index=True)
    city_code: str | None = Field(default=None, max_length=6, index=True)
    county_code: str | None = Field(default=None, max_length=6)
    status: EnterpriseStatus = Field(default=EnterpriseStatus.PENDING, sa_type=enum_type(EnterpriseStatus))
    # Material codes this enterprise is licensed to receive (hazardous waste operating licence).
    permits: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # Private: visible to the enterprise's members, admins and (for approval) its park manager.
    contact_name: str | None = Field(default=None, max_length=80)
    contact_phone: str | None = Field(default=None, max_length=40)
    contact_email: str | None = Field(default=None, max_length=254)
    created_at: datetime = Field(default_factory=utcnow)
    approved_at: datetime | None = None
    approved_by_id: int | None = None  # a user id; no FK (user.enterprise_id already points the other way)


class EnterpriseCreate(BaseModel):
    name: str = PField(min_length=1, max_length=200)
    uscc: str = PField(min_length=18, max_length=18)
    industry: str = PField(min_length=1, max_length=40)
    address: str = PField(min_length=1, max_length=300)
    park_id: IdField | None = None
    lat: float | None = PField(default=None, ge=-90, le=90)
    lon: float | None = PField(default=None, ge=-180, le=180)
    permits: list[str] = PField(default_factory=list)
    contact_name: str | None = PField(default=None, max_length=80)
    contact_phone: str | None = PField(default=None, max_length=40)
    contact_email: str | None = PField(default=None, max_length=254)


class EnterprisePublic(BaseModel):
    id: int
    name: str
    uscc: str
    industry: str
    address: str
    park_id: int | None
    lat: float
    lon: float
    province_code: str | None
    city_code: str | None
    county_code: str | None
    status: EnterpriseStatus
    permits: list[str]


class EnterprisePrivate(EnterprisePublic):
    contact_name: str | None
    contact_phone: str | None
    contact_email: str | None


class EnterpriseUpdate(BaseModel):
    """A partial change. Members change the descriptive and contact fields; the USCC, park and permits are
    checked at approval, so only admins change them afterwards."""

    name: str | None = PField(default=None, min_length=1, max_length=200)
    uscc: str | None = PField(default=None, min_length=18, max_length=18)
    industry: str | None = PField(default=None, min_length=1, max_length=40)
    address: str | None = PField(default=None, min_length=1, max_length=300)
    park_id: IdField | None = None
    lat: float | None = PField(default=None, ge=-90, le=90)
    lon: float | None = PField(default=None, ge=-180, le=180)
    permits: list[str] | None = None
    contact_name: str | None = PField(default=None, max_length=80)
    contact_phone: str | None = PField(default=None, max_length=40)
    contact_email: str | None = PField(default=None, max_length=254)


class ReviewIn(BaseModel):
    reason: str | None = PField(default=None, max_length=500)


class EnterprisePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[EnterprisePrivate | EnterprisePublic]


class MemberCreate(BaseModel):
    """A colleague's account, created by a member of the enterprise (or an admin); they change the password."""

    email: EmailStr
    display_name: str = PField(min_length=1, max_length=120)
    password: str = PField(min_length=10, max_length=200, description="an initial password, to be changed")
