"""HTML pages for enterprises: register, view, edit, and the directory. The same service as the JSON API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from exchange.accounts.models import Role, User
from exchange.core.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from exchange.core.errors import DomainError, Forbidden
from exchange.core.i18n import request_locale
from exchange.core.web import redirect, render
from exchange.enterprises import service
from exchange.enterprises.models import EnterpriseCreate, EnterpriseStatus, EnterpriseUpdate, MemberCreate
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.reference.places import load_divisions

router = APIRouter(include_in_schema=False)

TEXT_FIELDS = ("name", "uscc", "industry", "address", "contact_name", "contact_phone", "contact_email")
# pydantic error → our own English message (each has a zh-CN translation), so the form speaks the user's language
FIELD_MESSAGES = {
    "name": "Enter the enterprise's name (at most 200 characters)",
    "industry": "Choose an industry from the list",
    "address": "Enter the address (at most 300 characters)",
    "park_id": "This park does not exist",
    "lat": "Latitude must be between -90 and 90",
    "lon": "Longitude must be between -180 and 180",
    "contact_name": "At most 80 characters",
    "contact_phone": "At most 40 characters",
    "contact_email": "At most 254 characters",
}


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def industry_options(locale: str) -> list[tuple[str, str]]:
    return [(i.code, i.name_zh if locale == "zh-CN" else i.name_en) for i in load_catalogue().industries]


def industry_names(locale: str) -> dict[str, str]:
    return dict(industry_options(locale))


def permit_options(locale: str) -> list[tuple[str, str]]:
    return [(m.code, m.name_zh if locale == "zh-CN" else m.name_en) for m in load_catalogue().materials if m.hazardous]


def park_options(session: Session, locale: str) -> list[tuple[str, str]]:
    from exchange.parks.service import list_parks

    divs = load_divisions()
    out: list[tuple[str, str]] = []
    for p in list_parks(session):
        city = divs.find(p.city_code)
        city_name = (city.name_zh if locale == "zh-CN" else city.name_en) if city else p.city_code
        name = p.name if locale == "zh-CN" or not p.name_en else p.name_en
        out.append((str(p.id), f"{name} · {city_name}"))
    return out


def place_name(code: str | None, locale: str) -> str:
    if not code:
        return ""
    d = load_divisions().find(code)
    if d is None:
        return code
    return d.name_zh if locale == "zh-CN" else d.name_en


def form_errors(exc: Exception, form: dict[str, Any]) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else "__all__"
            if name == "uscc":
                message = service.uscc_problem(str(form.get("uscc") or "")) or "Invalid value"
            else:
                message = FIELD_MESSAGES.get(name, "Invalid value")
            out.setdefault(name, message)
        return out
    if isinstance(exc, DomainError):
        return {exc.field or "__all__": exc.detail}
    return {"__all__": str(exc)}


async def read_form(request: Request) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(the form as typed, for re-display; the values for the schema; errors found while parsing numbers)."""
    raw = await request.form()
    form: dict[str, Any] = {k: v.strip() for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}
    form["permits"] = [v for v in raw.getlist("permits") if isinstance(v, str)]
    data: dict[str, Any] = {k: form.get(k, "") for k in TEXT_FIELDS}
    data["uscc"] = "".join(str(data["uscc"]).split()).upper()
    for optional in ("contact_name", "contact_phone", "contact_email"):
        data[optional] = data[optional] or None
    data["permits"] = form["permits"]
    errors: dict[str, str] = {}
    park = form.get("park_id") or ""
    if park:
        if park.isdigit():
            data["park_id"] = int(park)
        else:
            errors["park_id"] = "This park does not exist"
    else:
        data["park_id"] = None
    for name in ("lat", "lon"):
        text = (form.get(name) or "").replace(",", ".")
        if not text:
            data[name] = None
            continue
        try:
            data[name] = float(text)
        except ValueError:
            errors[name] = "Enter a number"
    return form, data, errors


def _form_page(
    request: Request,
    session: Session,
    form: dict[str, Any],
    errors: dict[str, str],
    *,
    status: int = 200,
    enterprise: Any = None,
) -> Response:
    locale = _locale(request)
    return render(
        request,
        "enterprises/form.html",
        status_code=status,
        form=form,
        errors=errors,
        enterprise=enterprise,
        industries=industry_options(locale),
        parks=park_options(session, locale),
        permits=permit_options(locale),
    )


def _login_first(path: str) -> Response:
    return redirect(f"/login?next={quote(path)}")


@router.get("/enterprises/new", response_class=HTMLResponse)
def register_form(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first("/enterprises/new")
    if user.enterprise_id is not None:
        return redirect(f"/enterprises/{user.enterprise_id}")
    errors = {} if user.role is Role.ENTERPRISE else {"__all__": "only enterprise accounts register an enterprise"}
    return _form_page(request, session, {"permits": []}, errors)


@router.get("/enterprises/register")
def register_alias() -> Response:
    """Sign-up sends new people here."""
    return redirect("/enterprises/new")


@router.post("/enterprises/new", response_class=HTMLResponse)
async def register(request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Response:
    form, data, errors = await read_form(request)
    if not errors:
        try:
            ent = service.register(session, user, EnterpriseCreate.model_validate(data), settings)
        except (ValidationError, DomainError) as exc:
            session.rollback()
            status = exc.status if isinstance(exc, DomainError) else 422
            return _form_page(request, session, form, form_errors(exc, form), status=status)
        return redirect(f"/enterprises/{ent.id}?registered=1")
    return _form_page(request, session, form, errors, status=422)


@router.get("/my/enterprise")
def my_enterprise(user: CurrentUser) -> Response:
    return redirect(f"/enterprises/{user.enterprise_id}" if user.enterprise_id else "/enterprises/new")


@router.get("/enterprises/pending")
def pending_alias() -> Response:
    return redirect("/admin/approvals")


@router.get("/enterprises", response_class=HTMLResponse)
def directory(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    q: str = "",
    industry: str = "",
    park_id: str = "",
    page: int = 1,
) -> Response:
    locale = _locale(request)
    per_page = 50
    page = max(1, page)
    filters = service.EnterpriseFilters(
        status=EnterpriseStatus.APPROVED,
        park_id=int(park_id) if park_id.isdigit() else None,
        industry=industry or None,
        q=q[:200] or None,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    total, rows = service.list_enterprises(session, user, filters)
    return render(
        request,
        "enterprises/list.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // per_page)),
        form={"q": q, "industry": industry, "park_id": park_id},
        industries=industry_options(locale),
        industry_names=industry_names(locale),
        parks=park_options(session, locale),
        park_names={pid: p.name for pid, p in service.parks_by_id(session).items()},
        place_name=lambda code: place_name(code, locale),
    )


def _detail(
    request: Request, session: Session, user: User | None, enterprise_id: int, status_code: int = 200, **extra: Any
) -> Response:
    locale = _locale(request)
    ent = service.get_visible(session, user, enterprise_id)
    view = service.to_view(user, ent)
    park: Park | None = session.get(Park, ent.park_id) if ent.park_id is not None else None
    show_private = service.sees_private(user, ent)
    return render(
        request,
        "enterprises/detail.html",
        status_code=status_code,
        ent=view,
        park=park,
        private=show_private,
        member=service.is_member(user, ent),
        can_review=service.can_review(user, ent) and ent.status is EnterpriseStatus.PENDING,
        can_edit=user is not None and (user.role is Role.ADMIN or service.is_member(user, ent)),
        reason=service.last_review_reason(session, enterprise_id)
        if show_private and ent.status is EnterpriseStatus.REJECTED
        else None,
        members=service.members(session, enterprise_id) if show_private else [],
        industry=industry_names(locale).get(ent.industry, ent.industry),
        permit_names=dict(permit_options(locale)),
        place_name=lambda code: place_name(code, locale),
        registered=request.query_params.get("registered") == "1",
        member_added=request.query_params.get("member_added") == "1",
        **{"member_form": {}, "member_errors": {}, **extra},
    )


@router.get("/enterprises/{enterprise_id}", response_class=HTMLResponse)
def detail(request: Request, enterprise_id: int, session: SessionDep, user: OptionalUser) -> Response:
    return _detail(request, session, user, enterprise_id)


@router.get("/enterprises/{enterprise_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser) -> Response:
    ent = service.get_visible(session, user, enterprise_id)
    if not (user.role is Role.ADMIN or service.is_member(user, ent)):
        raise Forbidden("only the enterprise's members and admins can change it")
    form: dict[str, Any] = ent.model_dump()
    form["permits"] = list(ent.permits or [])
    form["park_id"] = "" if ent.park_id is None else str(ent.park_id)
    return _form_page(request, session, form, {}, enterprise=ent)


@router.post("/enterprises/{enterprise_id}/edit", response_class=HTMLResponse)
async def edit(
    request: Request, enterprise_id: int, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    ent = service.get_visible(session, user, enterprise_id)
    form, data, errors = await read_form(request)
    if errors:
        return _form_page(request, session, form, errors, status=422, enterprise=ent)
    # Only the fields the form sent (a disabled or missing input changes nothing).
    changes = {k: v for k, v in data.items() if k in form and (k not in ("lat", "lon") or v is not None)}
    if user.role is not Role.ADMIN:
        for name in service.ADMIN_ONLY_FIELDS:
            changes.pop(name, None)
    # Coordinates are sent only when they were changed by hand; otherwise a new address is geocoded again.
    if changes.get("lat") == ent.lat and changes.get("lon") == ent.lon:
        changes.pop("lat"), changes.pop("lon")
    if changes.get("address") == ent.address:
        changes.pop("address")
    try:
        service.update(session, user, enterprise_id, EnterpriseUpdate.model_validate(changes), settings)
    except (ValidationError, DomainError) as exc:
        session.rollback()
        status = exc.status if isinstance(exc, DomainError) else 422
        return _form_page(request, session, form, form_errors(exc, form), status=status, enterprise=ent)
    return redirect(f"/enterprises/{enterprise_id}")


MEMBER_MESSAGES = {
    "email": "Enter a valid email address",
    "display_name": "Enter the colleague's name (at most 120 characters)",
    "password": "The initial password needs at least 10 characters",
}


@router.post("/enterprises/{enterprise_id}/members", response_class=HTMLResponse)
async def add_member(request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """A member (or an admin) adds a colleague's account to the enterprise; errors show next to the fields."""
    raw = await request.form()
    form = {k: str(raw.get(k) or "").strip() for k in ("email", "display_name")}
    password = str(raw.get("password") or "")
    try:
        service.add_member(session, user, enterprise_id, MemberCreate(**form, password=password))
    except ValidationError as exc:
        errors = {str(e["loc"][0]): MEMBER_MESSAGES.get(str(e["loc"][0]), "Invalid value") for e in exc.errors()}
        return _detail(request, session, user, enterprise_id, 422, member_form=form, member_errors=errors)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise  # nothing was written; the error page names the refusal
        session.rollback()
        errors = {exc.field or "password": exc.detail}
        return _detail(request, session, user, enterprise_id, exc.status, member_form=form, member_errors=errors)
    return redirect(f"/enterprises/{enterprise_id}?member_added=1")
