"""Reading user accounts for admins. Creating and disabling them is `exchange.accounts.service`'s job."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role, User, UserStatus
from exchange.core.errors import Forbidden

MAX_PAGE = 500


@dataclass
class UserFilters:
    role: Role | None = None
    status: UserStatus | None = None
    q: str | None = None  # part of the email or the name
    limit: int = 100
    offset: int = 0


def list_users(session: Session, by: User, f: UserFilters | None = None) -> tuple[int, list[User]]:
    """(total, one page) of accounts, newest first."""
    if by.role is not Role.ADMIN:
        raise Forbidden("only an admin can list user accounts")
    f = f or UserFilters()
    where: list[ColumnElement[bool]] = []
    if f.role is not None:
        where.append(col(User.role) == f.role)
    if f.status is not None:
        where.append(col(User.status) == f.status)
    if f.q and f.q.strip():
        text = f.q.strip()
        where.append(
            sa.or_(
                col(User.email).contains(text.lower(), autoescape=True),
                col(User.display_name).contains(text, autoescape=True),
            )
        )
    total = int(session.exec(select(func.count()).select_from(User).where(*where)).one())
    stmt = select(User).where(*where).order_by(col(User.id).desc())
    limit = max(1, min(f.limit, MAX_PAGE))
    return total, list(session.exec(stmt.limit(limit).offset(max(0, f.offset))))
