"""HTML pages: home, login, sign-up, logout, language, account (API tokens, password)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from exchange.accounts import service
from exchange.accounts.api import set_login_cookies
from exchange.accounts.models import SignupIn
from exchange.core.deps import SESSION_COOKIE, CurrentUser, OptionalUser, SessionDep, SettingsDep
from exchange.core.errors import DomainError
from exchange.core.i18n import LANG_COOKIE, LOCALES
from exchange.core.web import field_errors, redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: OptionalUser) -> Response:
    return render(request, "home.html")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, user: OptionalUser, next: str = "/") -> Response:
    return render(request, "accounts/login.html", next=next, errors={}, form={})


def _safe_next(target: str) -> str:
    """Only local paths: never redirect a fresh login to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        user = service.authenticate(session, email, password)
    except DomainError as exc:
        return render(
            request,
            "accounts/login.html",
            status_code=exc.status,
            next=next,
            errors={"__all__": exc.detail},
            form={"email": email},
        )
    response = redirect(_safe_next(next))
    set_login_cookies(response, service.start_session(session, user), settings.cookie_secure)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        service.end_session(session, raw)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_form(request: Request, user: OptionalUser) -> Response:
    return render(request, "accounts/signup.html", errors={}, form={})


@router.post("/signup", response_class=HTMLResponse)
def signup(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    locale: Annotated[str, Form()] = "zh-CN",
) -> Response:
    form = {"email": email, "display_name": display_name, "locale": locale}
    try:
        data = SignupIn(email=email, display_name=display_name, password=password, locale=locale)
        user = service.signup(session, data)
    except (ValidationError, DomainError) as exc:
        status = exc.status if isinstance(exc, DomainError) else 422
        return render(request, "accounts/signup.html", status_code=status, errors=field_errors(exc), form=form)
    response = redirect("/enterprises/register")
    set_login_cookies(response, service.start_session(session, user), settings.cookie_secure)
    return response


@router.post("/lang")
def set_language(
    request: Request, user: OptionalUser, session: SessionDep, locale: Annotated[str, Form()] = "zh-CN"
) -> Response:
    locale = locale if locale in LOCALES else "zh-CN"
    if user is not None:
        user.locale = locale
        session.add(user)
        session.commit()
    response = redirect(_safe_next(request.headers.get("referer", "/").split(str(request.base_url).rstrip("/"))[-1]))
    response.set_cookie(LANG_COOKIE, locale, samesite="lax", max_age=365 * 24 * 3600)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    tokens = service.list_api_tokens(session, user)
    return render(request, "accounts/account.html", tokens=tokens, new_token=None, errors={})


@router.post("/account/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, user: CurrentUser, session: SessionDep, name: Annotated[str, Form()] = ""
) -> Response:
    errors: dict[str, str] = {}
    raw = None
    if not name.strip():
        errors["name"] = "Give the token a name"
    else:
        _, raw = service.create_api_token(session, user, name.strip()[:80])
    tokens = service.list_api_tokens(session, user)
    return render(
        request,
        "accounts/account.html",
        status_code=422 if errors else 200,
        tokens=tokens,
        new_token=raw,
        errors=errors,
    )


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(token_id: int, user: CurrentUser, session: SessionDep) -> Response:
    service.revoke_api_token(session, user, token_id)
    return redirect("/account")


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    old_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.change_password(session, user, old_password, new_password)
    except DomainError as exc:
        tokens = service.list_api_tokens(session, user)
        return render(
            request,
            "accounts/account.html",
            status_code=exc.status,
            tokens=tokens,
            new_token=None,
            errors=field_errors(exc),
        )
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response
