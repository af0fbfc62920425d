"""Industrial parks: the unit a park manager runs matching rounds for."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from exchange.core.db import utcnow


class Park(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    name_en: str | None = Field(default=None, max_length=200)
    province_code: str = Field(max_length=6, index=True)
    city_code: str = Field(max_length=6, index=True)
    lat: float
    lon: float
    created_at: datetime = Field(default_factory=utcnow)


class ParkCreate(BaseModel):
    name: str = PField(min_length=1, max_length=200)
    name_en: str | None = None
    city_code: str = PField(pattern=r"^\d{6}$")
    lat: float | None = PField(default=None, ge=-90, le=90)
    lon: float | None = PField(default=None, ge=-180, le=180)


class ParkPublic(BaseModel):
    id: int
    name: str
    name_en: str | None
    province_code: str
    city_code: str
    lat: float
    lon: float
