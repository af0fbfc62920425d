"""JSON routes for sign-up, login, the current user, API tokens and staff accounts."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from exchange.accounts import service
from exchange.accounts.models import (
    LoginIn,
    SignupIn,
    StaffCreate,
    TokenCreate,
    TokenCreated,
    User,
    UserPublic,
    UserStatus,
)
from exchange.core.deps import CSRF_COOKIE, SESSION_COOKIE, AdminUser, CurrentUser, SessionDep, SettingsDep
from exchange.core.params import IdPath

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def set_login_cookies(response: Response, raw_session: str, secure: bool) -> None:
    """Session cookie HttpOnly + SameSite=Lax; the CSRF token is rotated at login."""
    import secrets

    response.set_cookie(SESSION_COOKIE, raw_session, httponly=True, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), httponly=True, samesite="lax", secure=secure)


def to_public(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.post("/auth/signup", status_code=201, response_model=UserPublic)
def signup(body: SignupIn, session: SessionDep) -> UserPublic:
    return to_public(service.signup(session, body))


@router.post("/auth/login", response_model=UserPublic)
def login(body: LoginIn, session: SessionDep, settings: SettingsDep, response: Response) -> UserPublic:
    user = service.authenticate(session, body.email, body.password)
    set_login_cookies(response, service.start_session(session, user), settings.cookie_secure)
    return to_public(user)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, session: SessionDep) -> Response:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        service.end_session(session, raw)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return to_public(user)


@router.post("/me/tokens", status_code=201, response_model=TokenCreated)
def create_token(body: TokenCreate, user: CurrentUser, session: SessionDep) -> TokenCreated:
    token, raw = service.create_api_token(session, user, body.name)
    assert token.id is not None
    return TokenCreated(id=token.id, name=token.name, token=raw)


@router.delete("/me/tokens/{token_id}", status_code=204)
def revoke_token(token_id: IdPath, user: CurrentUser, session: SessionDep) -> Response:
    service.revoke_api_token(session, user, token_id)
    return Response(status_code=204)


@router.post("/users", status_code=201, response_model=UserPublic)
def create_staff(body: StaffCreate, admin: AdminUser, session: SessionDep) -> UserPublic:
    return to_public(service.create_staff(session, admin, body))


@router.post("/users/{user_id}/disable", response_model=UserPublic)
def disable_user(user_id: IdPath, admin: AdminUser, session: SessionDep) -> UserPublic:
    return to_public(service.set_status(session, admin, user_id, UserStatus.DISABLED))


@router.post("/users/{user_id}/enable", response_model=UserPublic)
def enable_user(user_id: IdPath, admin: AdminUser, session: SessionDep) -> UserPublic:
    return to_public(service.set_status(session, admin, user_id, UserStatus.ACTIVE))
