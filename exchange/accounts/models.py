"""People, their roles and their credentials (web sessions and API tokens)."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, EmailStr
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from exchange.core.db import enum_type, utcnow
from exchange.core.params import IdField


class Role(enum.StrEnum):
    ENTERPRISE = "enterprise"  # acts for one enterprise
    PARK_MANAGER = "park_manager"  # for one park
    REGULATOR = "regulator"  # for a region: a province or city code (GB/T 2260)
    ADMIN = "admin"


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=255)
    role: Role = Field(sa_type=enum_type(Role))
    enterprise_id: int | None = Field(default=None, foreign_key="enterprise.id", index=True)
    park_id: int | None = Field(default=None, foreign_key="park.id", index=True)
    region_code: str | None = Field(default=None, max_length=6)
    locale: str = Field(default="zh-CN", max_length=8)
    status: UserStatus = Field(default=UserStatus.ACTIVE, sa_type=enum_type(UserStatus))
    created_at: datetime = Field(default_factory=utcnow)
    password_changed_at: datetime = Field(default_factory=utcnow)


class WebSession(SQLModel, table=True):
    """Server-side session: the cookie holds a random token; only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """Per-user bearer token for machine clients; shown once, stored as SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=80)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


# --- API schemas -------------------------------------------------------------------------------


class SignupIn(BaseModel):
    email: EmailStr
    display_name: str = PField(min_length=1, max_length=120)
    password: str = PField(min_length=10, max_length=200)
    locale: str = "zh-CN"


class LoginIn(BaseModel):
    email: str
    password: str


class UserPublic(BaseModel):
    id: int
    email: str
    display_name: str
    role: Role
    enterprise_id: int | None
    park_id: int | None
    region_code: str | None
    locale: str
    status: UserStatus


class TokenCreate(BaseModel):
    name: str = PField(min_length=1, max_length=80)


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str  # shown once


class StaffCreate(BaseModel):
    """Admin creates park managers, regulators and other admins."""

    email: EmailStr
    display_name: str = PField(min_length=1, max_length=120)
    password: str = PField(min_length=10, max_length=200)
    role: Role
    park_id: IdField | None = None
    region_code: str | None = PField(default=None, pattern=r"^\d{6}$")
