"""JSON API for admins: the list of user accounts (creating and disabling them lives in the accounts API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from exchange.accounts.api import to_public
from exchange.accounts.models import Role, UserPublic, UserStatus
from exchange.admin import service
from exchange.core.deps import AdminUser, SessionDep
from exchange.core.params import Offset

router = APIRouter(prefix="/api/v1/users", tags=["accounts"])


class UserPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[UserPublic]


@router.get("", response_model=UserPage)
def list_users(
    session: SessionDep,
    admin: AdminUser,
    role: Role | None = None,
    status: UserStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the email or the name")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> UserPage:
    total, rows = service.list_users(session, admin, service.UserFilters(role, status, q, limit, offset))
    return UserPage(total=total, limit=limit, offset=offset, items=[to_public(u) for u in rows])
