"""JSON API for enterprises: register, read (public or private view), list, change, approve and reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from exchange.accounts.api import to_public
from exchange.accounts.models import UserPublic
from exchange.core.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from exchange.core.errors import Forbidden
from exchange.core.params import IdPath, IdQuery, Offset
from exchange.enterprises import service
from exchange.enterprises.models import (
    EnterpriseCreate,
    EnterprisePage,
    EnterprisePrivate,
    EnterprisePublic,
    EnterpriseStatus,
    EnterpriseUpdate,
    MemberCreate,
    ReviewIn,
)

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises"])

AnyView = EnterprisePrivate | EnterprisePublic


@router.post("", status_code=201, response_model=EnterprisePrivate)
def register(
    body: EnterpriseCreate, response: Response, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> EnterprisePublic:
    """Register your enterprise (you become its first member). It stays `pending` until an admin or the manager
    of the park you name approves it. Without `lat`/`lon` it is placed at the park, else at the address
    (geocoded from the province/city/county it names)."""
    ent = service.register(session, user, body, settings)
    response.headers["Location"] = f"/api/v1/enterprises/{ent.id}"
    return service.to_view(user, ent)


@router.get("", response_model=EnterprisePage)
def list_enterprises(
    session: SessionDep,
    user: OptionalUser,
    status: EnterpriseStatus | None = None,
    park_id: IdQuery = None,
    industry: str | None = None,
    city_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the name, or the exact USCC")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> EnterprisePage:
    """Approved enterprises for everyone; your own and (for reviewers) pending ones too."""
    filters = service.EnterpriseFilters(status, park_id, industry, city_code, q, limit, offset)
    total, rows = service.list_enterprises(session, user, filters)
    return EnterprisePage(total=total, limit=limit, offset=offset, items=[service.to_view(user, e) for e in rows])


@router.get("/{enterprise_id}", response_model=AnyView)
def get_enterprise(enterprise_id: IdPath, session: SessionDep, user: OptionalUser) -> EnterprisePublic:
    """The private view (contacts) for its members, admins and its park's manager; the public view otherwise."""
    return service.to_view(user, service.get_visible(session, user, enterprise_id))


@router.patch("/{enterprise_id}", response_model=AnyView)
def update_enterprise(
    enterprise_id: IdPath, body: EnterpriseUpdate, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> EnterprisePublic:
    """Members change name, industry, address, coordinates and contacts; admins also the USCC, park and permits."""
    return service.to_view(user, service.update(session, user, enterprise_id, body, settings))


@router.post("/{enterprise_id}/approve", response_model=AnyView)
def approve(enterprise_id: IdPath, session: SessionDep, user: CurrentUser) -> EnterprisePublic:
    return service.to_view(user, service.approve(session, user, enterprise_id))


@router.post("/{enterprise_id}/reject", response_model=AnyView)
def reject(
    enterprise_id: IdPath, session: SessionDep, user: CurrentUser, body: Annotated[ReviewIn | None, Body()] = None
) -> EnterprisePublic:
    return service.to_view(user, service.reject(session, user, enterprise_id, body.reason if body else None))


@router.get("/{enterprise_id}/members", response_model=list[UserPublic])
def list_members(enterprise_id: IdPath, session: SessionDep, user: CurrentUser) -> list[UserPublic]:
    """The enterprise's accounts: for its members, admins and its park's manager."""
    ent = service.get_visible(session, user, enterprise_id)
    if not service.sees_private(user, ent):
        raise Forbidden("only the enterprise's members, its park's manager and admins see its members")
    return [to_public(u) for u in service.members(session, enterprise_id)]


@router.post("/{enterprise_id}/members", status_code=201, response_model=UserPublic)
def add_member(enterprise_id: IdPath, body: MemberCreate, session: SessionDep, user: CurrentUser) -> UserPublic:
    """Add a colleague: an account for the enterprise with an initial password they then change."""
    return to_public(service.add_member(session, user, enterprise_id, body))
