"""HTML pages for industrial parks: the list (with a create form for admins) and one park's enterprises."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from exchange.accounts.models import Role, User
from exchange.core.deps import AdminUser, OptionalUser, SessionDep
from exchange.core.errors import DomainError
from exchange.core.i18n import request_locale
from exchange.core.web import redirect, render
from exchange.enterprises import service as enterprises
from exchange.enterprises.models import EnterpriseStatus
from exchange.enterprises.pages import industry_names, place_name
from exchange.parks import service
from exchange.parks.models import ParkCreate
from exchange.reference.places import load_divisions

router = APIRouter(include_in_schema=False)

FIELD_MESSAGES = {
    "name": "Enter the park's name (at most 200 characters)",
    "city_code": "Choose a city (a 6-digit prefecture-level division code)",
    "lat": "Latitude must be between -90 and 90",
    "lon": "Longitude must be between -180 and 180",
}


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def city_options(locale: str) -> list[tuple[str, str]]:
    divs = load_divisions()
    out: list[tuple[str, str]] = []
    for p in divs.provinces():
        for c in divs.cities(p.code):
            prov = p.name_zh if locale == "zh-CN" else p.name_en
            city = c.name_zh if locale == "zh-CN" else c.name_en
            out.append((c.code, city if city == prov else f"{prov} · {city}"))
    return out


def _list_page(
    request: Request,
    session: Session,
    user: User | None,
    form: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    locale = _locale(request)
    return render(
        request,
        "parks/list.html",
        status_code=status,
        parks=service.list_parks(session),
        counts=service.approved_counts(session),
        place_name=lambda code: place_name(code, locale),
        is_admin=user is not None and user.role is Role.ADMIN,
        cities=city_options(locale),
        form=form,
        errors=errors,
    )


@router.get("/parks", response_class=HTMLResponse)
def parks(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    return _list_page(request, session, user, {}, {})


@router.post("/parks", response_class=HTMLResponse)
def create_park(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    name: Annotated[str, Form()] = "",
    name_en: Annotated[str, Form()] = "",
    city_code: Annotated[str, Form()] = "",
    lat: Annotated[str, Form()] = "",
    lon: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "name_en": name_en, "city_code": city_code, "lat": lat, "lon": lon}
    errors: dict[str, str] = {}
    point: dict[str, float | None] = {}
    for key, text in (("lat", lat), ("lon", lon)):
        try:
            point[key] = float(text.replace(",", ".")) if text.strip() else None
        except ValueError:
            errors[key] = "Enter a number"
    if not errors:
        try:
            data = ParkCreate(name=name, name_en=name_en or None, city_code=city_code, **point)
            park = service.create_park(session, admin, data)
        except ValidationError as exc:
            for e in exc.errors():
                key = str(e["loc"][0]) if e["loc"] else "__all__"
                errors.setdefault(key, FIELD_MESSAGES.get(key, "Invalid value"))
        except DomainError as exc:
            session.rollback()
            errors[exc.field or "__all__"] = exc.detail
            return _list_page(request, session, admin, form, errors, status=exc.status)
        else:
            return redirect(f"/parks/{park.id}")
    return _list_page(request, session, admin, form, errors, status=422)


@router.get("/parks/{park_id}", response_class=HTMLResponse)
def park_detail(request: Request, park_id: int, session: SessionDep, user: OptionalUser) -> Response:
    locale = _locale(request)
    park = service.get_park(session, park_id)
    filters = enterprises.EnterpriseFilters(status=EnterpriseStatus.APPROVED, park_id=park_id, limit=500)
    total, rows = enterprises.list_enterprises(session, user, filters)
    return render(
        request,
        "parks/detail.html",
        park=park,
        rows=rows,
        total=total,
        industry_names=industry_names(locale),
        place_name=lambda code: place_name(code, locale),
    )
