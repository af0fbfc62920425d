"""Typed FastAPI dependencies: the database session, the current user, role guards, CSRF."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from exchange.accounts import service as accounts
from exchange.accounts.models import Role, User
from exchange.core.errors import Forbidden, Unauthorized
from exchange.settings import Settings

SESSION_COOKIE = "exchange_session"
CSRF_COOKIE = "exchange_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Dependencies that neither block nor touch the database are `async def`: FastAPI runs a plain `def` dependency on
# the thread pool, a hop (and a GIL hand-over) per dependency per request, measurable under load.
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


log = logging.getLogger(__name__)


def get_session(request: Request) -> Iterator[Session]:
    """The request's session; also on request.state.db so a template helper can read through it instead of
    opening a second transaction (on SQLite every transaction begins IMMEDIATE: a second one would wait for the
    first's write lock until the busy timeout)."""
    session = Session(request.app.state.engine, expire_on_commit=False)
    request.state.db = session
    try:
        yield session
    finally:
        try:
            session.close()
        except DBAPIError:
            # The connection died under the request (a database restart): the answer has been sent or the
            # error handled already; SQLAlchemy discards the connection, and this must not become a 500.
            log.warning("closing a session whose connection was lost", exc_info=True)


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


async def csrf_protect(request: Request) -> None:
    """Double-submit check on every state-changing request that rides on the browser's cookies.

    Requests authenticated by a bearer token carry no ambient credentials and are exempt. JSON API calls
    without a session cookie are exempt too (a cross-site page cannot send JSON without a CORS preflight).
    """
    if request.method in SAFE_METHODS or _bearer(request) is not None:
        return
    is_form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
    if not is_form and SESSION_COOKIE not in request.cookies:
        return
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get("x-csrf-token")
    if sent is None and is_form:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise Forbidden("the form's security token is missing or stale; reload the page and try again")


def current_user_optional(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    raw = _bearer(request)
    if raw is not None:
        user = accounts.resolve_api_token(session, raw)
        if user is None:
            raise Unauthorized("the API token is unknown or revoked")
        request.state.user = user
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    user = accounts.resolve_session(session, cookie, settings) if cookie else None
    request.state.user = user
    return user


async def current_user(user: Annotated[User | None, Depends(current_user_optional)]) -> User:
    if user is None:
        raise Unauthorized("log in first (or send an API token as 'Authorization: Bearer ...')")
    return user


OptionalUser = Annotated[User | None, Depends(current_user_optional)]
CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: Role):  # noqa: ANN201 - returns a FastAPI dependency
    async def guard(user: CurrentUser) -> User:
        if user.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this needs one of the roles: {allowed}")
        return user

    return guard


AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
ManagerOrAdmin = Annotated[User, Depends(require_roles(Role.PARK_MANAGER, Role.ADMIN))]


async def require_enterprise_member(user: Annotated[User, Depends(require_roles(Role.ENTERPRISE))]) -> User:
    """An enterprise account that belongs to an enterprise: a fresh sign-up has the role but no enterprise yet."""
    if user.enterprise_id is None:
        raise Forbidden("your account is not linked to an enterprise yet; register your enterprise first")
    return user


EnterpriseMember = Annotated[User, Depends(require_enterprise_member)]
