"""JSON API for industrial parks: list and read (public), create (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from exchange.core.deps import AdminUser, SessionDep
from exchange.core.params import IdPath
from exchange.parks import service
from exchange.parks.models import ParkCreate, ParkPublic

router = APIRouter(prefix="/api/v1/parks", tags=["parks"])


@router.get("", response_model=list[ParkPublic])
def list_parks(
    session: SessionDep,
    city_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    province_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> list[ParkPublic]:
    return [service.to_public(p) for p in service.list_parks(session, city_code=city_code, province_code=province_code)]


@router.get("/{park_id}", response_model=ParkPublic)
def get_park(park_id: IdPath, session: SessionDep) -> ParkPublic:
    return service.to_public(service.get_park(session, park_id))


@router.post("", status_code=201, response_model=ParkPublic)
def create_park(body: ParkCreate, response: Response, session: SessionDep, admin: AdminUser) -> ParkPublic:
    """A park in a city (6-digit GB/T 2260 city code); without `lat`/`lon` it sits at the city's centroid."""
    park = service.create_park(session, admin, body)
    response.headers["Location"] = f"/api/v1/parks/{park.id}"
    return service.to_public(park)
