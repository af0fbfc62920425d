"""HTML pages for listings: browse and search with a map, post, detail, edit, pause/resume/close, history,
attachments, my listings and the spreadsheet import. Thin: every page calls `exchange.listings.service` (and
`spreadsheet`), the same functions as the JSON API; form input is read by `forms` so errors name their field."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from exchange.accounts.models import Role, User
from exchange.core.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from exchange.core.errors import Conflict, DomainError, Forbidden, NotFound, PreconditionFailed, Unprocessable
from exchange.core.i18n import request_locale
from exchange.core.web import redirect, render
from exchange.listings import forms, service, spreadsheet
from exchange.listings.models import (
    ImportMode,
    Listing,
    ListingCreate,
    ListingKind,
    ListingOwnerView,
    ListingPublic,
    ListingStatus,
    ListingUpdate,
)
from exchange.parks.models import Park
from exchange.reference.catalogue import BULK_CATEGORIES, GROUPS, load_catalogue
from exchange.reference.places import load_divisions
from exchange.settings import Settings

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
MAP_POINTS = 500  # the map shows up to this many matches (the table pages through all of them)

SORTS: tuple[tuple[str, str], ...] = (
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-quantity", "Largest quantity first"),
    ("quantity", "Smallest quantity first"),
    ("price", "Lowest price first"),
    ("-price", "Highest price first"),
    ("distance", "Nearest first"),
)
GROUP_LABELS = {
    "bulk_solid_waste": "Bulk solid waste",
    "renewable_resource": "Renewable resources",
    "hazardous_waste": "Hazardous waste",
    "other_solid_waste": "Other solid waste",
}
BULK_LABELS = {
    "tailings": "Tailings",
    "coal_gangue": "Coal gangue",
    "fly_ash": "Fly ash",
    "furnace_slag": "Furnace slag",
    "smelting_slag": "Smelting slag",
    "byproduct_gypsum": "By-product gypsum",
    "red_mud": "Red mud",
}
KIND_LABELS = {"supply": "Supply", "demand": "Demand"}
STATUS_LABELS = {"open": "Open", "paused": "Paused", "closed": "Closed"}
VISIBILITY_LABELS = {"public": "Public", "park": "Park only", "anonymous": "Anonymous"}
BASIS_LABELS = {"per_month": "t per month", "one_off": "t, one-off"}
ACTION_LABELS = {
    "created": "Posted",
    "imported": "Imported",
    "updated": "Edited",
    "paused": "Paused",
    "resumed": "Resumed",
    "closed": "Closed",
    "attached": "Test report attached",
}
FIELD_LABELS = {
    "kind": "Supply or demand",
    "material_code": "Material",
    "quantity_t": "Quantity (t)",
    "quantity_basis": "Quantity basis",
    "grade": "Grade",
    "accepted_grades": "Accepted grades",
    "parameters": "Measured parameters",
    "available_from": "Available from",
    "available_to": "Available until",
    "price_cny_per_t": "Price (CNY/t)",
    "price_note": "Price note (private)",
    "address": "Address",
    "lat": "Latitude",
    "lon": "Longitude",
    "province_code": "Province",
    "city_code": "City",
    "county_code": "County",
    "max_distance_km": "Farthest distance (km)",
    "notes": "Notes",
    "visibility": "Visibility",
    "status": "Status",
    "attachments": "Test reports",
}
STALE_EDIT = (
    "Someone changed this listing after you opened it, so your changes were not saved. "
    "Reload the listing to see the current version, then apply your changes again."
)
POINT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*[,，\s]\s*([+-]?\d+(?:\.\d+)?)\s*$")


# ---------------------------------------------------------------- shared helpers


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def tonnes(value: Decimal | None) -> str:
    """1234.500 → "1,234.5" (exact: a Decimal, trailing zeros dropped)."""
    if value is None:
        return ""
    text = f"{value:,.3f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _region_namer(locale: str) -> Any:
    divs = load_divisions()

    def name(code: str | None) -> str:
        d = divs.find(code) if code else None
        if d is None:
            return code or ""
        return d.name_zh if locale == "zh-CN" else d.name_en

    return name


def _lookups(session: Session, locale: str) -> dict[str, Any]:
    """Option lists and label helpers every listings template uses."""
    cat = load_catalogue()
    divs = load_divisions()
    zh = locale == "zh-CN"
    parks = session.exec(select(Park).order_by(col(Park.name))).all()
    return {
        "materials": [(m.code, m.name_zh if zh else m.name_en) for m in cat.materials],
        "grades": [
            (m.code, g.code, f"{g.code} · {g.name_zh if zh else g.name_en}") for m in cat.materials for g in m.grades
        ],
        "groups": [(g, GROUP_LABELS[g]) for g in GROUPS],
        "bulk_categories": [(b, BULK_LABELS[b]) for b in BULK_CATEGORIES],
        "provinces": [(d.code, d.name_zh if zh else d.name_en) for d in divs.provinces()],
        "cities": [(d.code, d.name_zh if zh else d.name_en, d.province_code) for d in divs.cities()],
        "parks": [(p.id, p.name if zh or not p.name_en else p.name_en) for p in parks],
        "park_names": {p.id: (p.name if zh or not p.name_en else p.name_en) for p in parks},
        "region": _region_namer(locale),
        "tonnes": tonnes,
        "money": money,
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "visibility_labels": VISIBILITY_LABELS,
        "basis_labels": BASIS_LABELS,
        "field_labels": FIELD_LABELS,
        "action_labels": ACTION_LABELS,
    }


def _page(request: Request, session: Session, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return render(request, template, status_code=status_code, **_lookups(session, _locale(request)), **ctx)


def _login_first(request: Request) -> Response:
    return redirect(f"/login?next={quote(request.url.path)}")


# ---------------------------------------------------------------- browse and search

FILTER_FIELDS = (
    "kind",
    "material_code",
    "category",
    "province_code",
    "city_code",
    "park_id",
    "near",
    "radius_km",
    "min_quantity_t",
    "status",
    "sort",
)
SERVICE_FIELDS = {"near_lat": "near", "near_lon": "near"}


def _filters(
    form: dict[str, str], user: User | None, settings: Settings, page: int, mine: bool = False
) -> tuple[service.ListingFilters, dict[str, str]]:
    """The browse form's text → ListingFilters, or errors by field (never a 422 page for a typo)."""
    errors: dict[str, str] = {}
    f = service.ListingFilters(mine=mine, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    if form["kind"]:
        if form["kind"] in KIND_LABELS:
            f.kind = ListingKind(form["kind"])
        else:
            errors["kind"] = "Choose supply or demand"
    if form["material_code"]:
        if load_catalogue().find(form["material_code"]) is None:
            errors["material_code"] = "Unknown material: choose one from the catalogue"
        f.material_code = form["material_code"]
    f.category = form["category"] or None
    for name in ("province_code", "city_code"):
        if form[name]:
            if re.fullmatch(r"\d{6}", form[name]):
                setattr(f, name, form[name])
            else:
                errors[name] = "Choose a region from the list"
    if form["park_id"]:
        if form["park_id"].isdigit():
            f.park_id = int(form["park_id"])
        else:
            errors["park_id"] = "Choose a park from the list"
    if form["near"]:
        m = POINT.match(form["near"])
        if m and -90 <= float(m.group(1)) <= 90 and -180 <= float(m.group(2)) <= 180:
            f.near_lat, f.near_lon = float(m.group(1)), float(m.group(2))
        else:
            place = service.geocode_place(form["near"], settings)
            if place is None:
                errors["near"] = "We could not find this place; enter a city or county name, or latitude, longitude"
            else:
                f.near_lat, f.near_lon = place.lat, place.lon
    for name, low, high in (("radius_km", 0, 5000), ("min_quantity_t", 0, None)):
        if not form[name]:
            continue
        try:
            value = forms.parse_number(name, form[name])
        except forms.FieldProblem as p:
            errors[name] = p.message
            continue
        if value < low or (name == "radius_km" and value == 0) or (high is not None and value > high):
            errors[name] = "Enter a distance above 0 and at most 5000 km" if high else "Enter a number of at least 0"
        elif name == "radius_km":
            f.radius_km = float(value)
        else:
            f.min_quantity_t = value
    if form["status"]:
        if form["status"] in STATUS_LABELS:
            f.status = ListingStatus(form["status"])
        else:
            errors["status"] = "Choose a status"
    f.sort = form["sort"] or ("distance" if f.near_lat is not None else "-created_at")
    if f.sort not in dict(SORTS):
        errors["sort"] = "Choose a sort order"
    elif f.sort.lstrip("-") == "distance" and f.near_lat is None:
        errors["sort"] = "Sorting by distance needs a place to measure from"
    if f.radius_km is not None and f.near_lat is None and "near" not in errors:
        errors["near"] = "A radius needs a place to measure from"
    return f, errors


def _search_page(
    request: Request,
    session: Session,
    settings: Settings,
    user: User | None,
    template: str,
    *,
    mine: bool = False,
) -> HTMLResponse:
    q = request.query_params
    form = {k: q.get(k, "").strip() for k in FILTER_FIELDS}
    if "status" not in q and not mine:
        form["status"] = "open"
    page_text = q.get("page", "1")
    page = max(1, int(page_text)) if page_text.isdigit() else 1
    filters, errors = _filters(form, user, settings, page, mine=mine)
    total, items, points = 0, [], []
    locale = _locale(request)
    if not errors:
        try:
            result = service.search(session, user, filters)
            if not mine:
                everything = replace(filters, limit=MAP_POINTS, offset=0)
                points = [_point(p, locale) for p in service.map_points(session, user, everything)]
        except Unprocessable as exc:
            errors[SERVICE_FIELDS.get(exc.field or "", exc.field or "__all__")] = exc.detail
        else:
            total, items = result.total, service.views(session, user, result.rows, locale)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    query = {k: v for k, v in form.items() if v}

    def page_url(n: int) -> str:
        return f"{request.url.path}?{urlencode({**query, 'page': n})}"

    return _page(
        request,
        session,
        template,
        status_code=422 if errors else 200,
        form=form,
        errors=errors,
        items=items,
        total=total,
        page=page,
        pages=pages,
        page_url=page_url,
        sorts=SORTS,
        has_point=filters.near_lat is not None,
        map_points=points,
        map_capped=total > MAP_POINTS,
        map_cap=MAP_POINTS,
    )


def _point(p: service.MapPoint, locale: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "lat": p.lat,
        "lon": p.lon,
        "kind": p.kind.value,
        "material": service.material_name(p.material_code, locale),
        "quantity_t": tonnes(p.available_t),
        "approximate": p.approximate,
    }


@router.get("/listings", response_class=HTMLResponse)
def browse(request: Request, session: SessionDep, settings: SettingsDep, user: OptionalUser) -> Response:
    return _search_page(request, session, settings, user, "listings/browse.html")


@router.get("/listings/mine", response_class=HTMLResponse)
def mine(request: Request, session: SessionDep, settings: SettingsDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    if user.enterprise_id is None:
        raise Forbidden("only members of an enterprise have listings of their own")
    return _search_page(request, session, settings, user, "listings/mine.html", mine=True)


@router.get("/my/listings", include_in_schema=False)
def my_listings_alias() -> Response:
    return redirect("/listings/mine")


# ---------------------------------------------------------------- post and edit

FORM_DEFAULTS = {"kind": "supply", "quantity_basis": "per_month", "visibility": "public"}


def _form_page(
    request: Request,
    session: Session,
    user: User,
    form: dict[str, str],
    errors: dict[str, str],
    *,
    listing: Listing | None = None,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    enterprise = service.poster_enterprise(session, user) if listing is None else None
    return _page(
        request,
        session,
        "listings/form.html",
        status_code=status_code,
        form=form,
        errors=errors,
        listing=listing,
        enterprise=enterprise,
        **ctx,
    )


def _text_form(raw: Any) -> dict[str, str]:
    return {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}


@router.get("/listings/new", response_class=HTMLResponse)
def new_form(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    return _form_page(request, session, user, dict(FORM_DEFAULTS), {})


def _create(
    session: Session, user: User, form: dict[str, str], uploads: list[tuple[str, bytes]], settings: Settings
) -> Listing | dict[str, str]:
    values, errors = forms.parse_listing_form(form)
    if errors:
        return errors
    try:
        data = ListingCreate.model_validate({k: v for k, v in values.items() if v not in (None, [], {})})
        return service.create_listing(session, user, data, settings, attachments=uploads)
    except (ValidationError, Unprocessable) as exc:
        session.rollback()
        return forms.form_errors(exc)


@router.post("/listings/new", response_class=HTMLResponse)
async def new_submit(request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Response:
    raw = await request.form()
    form = _text_form(raw)
    uploads = [
        (f.filename or "report", await f.read(settings.max_upload_bytes + 1))
        for f in raw.getlist("attachments")
        if isinstance(f, UploadFile) and f.filename
    ]
    outcome = await run_in_threadpool(_create, session, user, form, uploads, settings)
    if isinstance(outcome, Listing):
        return redirect(f"/listings/{outcome.id}?done=posted")
    return _form_page(request, session, user, form, outcome, status_code=422)


def _edit_form(view: ListingPublic) -> dict[str, str]:
    data = view.model_dump()
    form = {name: forms.form_text(name, data.get(name)) for name in forms.FORM_FIELDS}
    form["version"] = str(view.version)
    return form


@router.get("/listings/{listing_id:int}/edit", response_class=HTMLResponse)
def edit_form(request: Request, listing_id: int, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    listing = service.get_owned(session, user, listing_id)
    if listing.status is ListingStatus.CLOSED:
        raise Conflict("a closed listing cannot be edited", field="status")
    view = service.to_view(session, listing, user, locale=_locale(request))
    return _form_page(request, session, user, _edit_form(view), {}, listing=listing)


def _same(name: str, new: Any, old: Any) -> bool:
    if name in forms.DECIMAL_FIELDS:
        return (None if new is None else Decimal(new)) == (None if old is None else Decimal(old))
    if name in forms.FLOAT_FIELDS:
        return new == old or (new is not None and old is not None and abs(float(new) - float(old)) < 1e-9)
    if name in forms.DATE_FIELDS:
        return (new.isoformat() if new else None) == old
    return bool(new == old)


def _update(
    session: Session, user: User, listing_id: int, form: dict[str, str], settings: Settings
) -> Listing | dict[str, str]:
    """Send only what the form changed, so an untouched address is not geocoded again over a precise point."""
    values, errors = forms.parse_listing_form(form)
    if not form.get("version", "").isdigit():
        errors["version"] = "Reload the page and try again"
    if errors:
        return errors
    current = service.snapshot(service.get_owned(session, user, listing_id))
    session.rollback()
    changes = {k: v for k, v in values.items() if not _same(k, v, current.get(k))}
    if "material_code" in changes:  # the refinements belong to the material: send them as the form has them
        changes.update({k: values[k] for k in ("grade", "accepted_grades", "parameters")})
    if "lat" in changes or "lon" in changes:
        changes["lat"], changes["lon"] = values["lat"], values["lon"]
    try:
        data = ListingUpdate.model_validate({**changes, "version": int(form["version"])})
        return service.update_listing(session, user, listing_id, data, settings)
    except (ValidationError, Unprocessable) as exc:
        session.rollback()
        return forms.form_errors(exc)


@router.post("/listings/{listing_id:int}/edit", response_class=HTMLResponse)
async def edit_submit(
    request: Request, listing_id: int, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    form = _text_form(await request.form())
    try:
        outcome = await run_in_threadpool(_update, session, user, listing_id, form, settings)
    except (Conflict, PreconditionFailed):
        session.rollback()
        listing = service.get_owned(session, user, listing_id)
        closed = listing.status is ListingStatus.CLOSED
        return _form_page(
            request,
            session,
            user,
            form,
            {"__all__": "a closed listing cannot be edited" if closed else STALE_EDIT},
            listing=listing,
            status_code=409,
            stale=not closed,
            current_version=listing.version,
        )
    if isinstance(outcome, Listing):
        return redirect(f"/listings/{listing_id}?done=updated")
    return _form_page(
        request, session, user, form, outcome, listing=service.get_owned(session, user, listing_id), status_code=422
    )


# ---------------------------------------------------------------- the spreadsheet import


@router.get("/listings/import", response_class=HTMLResponse)
def import_form(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    service.poster_enterprise(session, user)
    return _page(
        request, session, "listings/import.html", result=None, mode="all_or_nothing", columns=spreadsheet.COLUMNS
    )


@router.get("/listings/import/template.{fmt}")
def import_template(fmt: str) -> Response:
    return spreadsheet.template_response(fmt)


@router.post("/listings/import", response_class=HTMLResponse)
async def import_submit(request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Response:
    raw = await request.form()
    upload = raw.get("file")
    mode: ImportMode = "valid_rows" if raw.get("mode") == "valid_rows" else "all_or_nothing"
    ctx: dict[str, Any] = {"result": None, "mode": mode, "columns": spreadsheet.COLUMNS}
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, session, "listings/import.html", 422, file_error="Choose a file", **ctx)
    content = await upload.read(settings.max_upload_bytes + 1)
    try:
        result = await run_in_threadpool(
            spreadsheet.import_listings, session, user, upload.filename, content, mode, settings
        )
    except DomainError as exc:
        if exc.status not in (413, 422):
            raise
        return _page(request, session, "listings/import.html", exc.status, file_error=exc.detail, **ctx)
    ctx["result"] = result
    return _page(request, session, "listings/import.html", 422 if result.errors and not result.created else 200, **ctx)


# ---------------------------------------------------------------- one listing


def _detail_page(
    request: Request,
    session: Session,
    user: User | None,
    listing: Listing,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    view = service.to_view(session, listing, user, locale=_locale(request))
    editable = service.can_edit(user, listing)
    moderator = user is not None and user.role is Role.ADMIN
    actions = []
    if editable or moderator:
        for action, (allowed, _) in service.TRANSITIONS.items():
            if listing.status in allowed and (editable or action != "resume"):
                actions.append(action)
    assert listing.id is not None
    return _page(
        request,
        session,
        "listings/detail.html",
        status_code=status_code,
        view=view,
        private=isinstance(view, ListingOwnerView),
        can_edit=editable and listing.status is not ListingStatus.CLOSED,
        actions=actions,
        attachments=service.list_attachments(session, user, listing.id),
        **ctx,
    )


@router.get("/listings/attachments/{attachment_id}")
def attachment(attachment_id: int, session: SessionDep, settings: SettingsDep, user: OptionalUser) -> Response:
    att, path = service.get_attachment(session, user, attachment_id, settings)
    return FileResponse(
        path,
        media_type=att.content_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(att.filename)}"},
    )


@router.get("/listings/{listing_id:int}", response_class=HTMLResponse)
def detail(request: Request, listing_id: int, session: SessionDep, user: OptionalUser, done: str = "") -> Response:
    listing = service.get_visible(session, user, listing_id)
    notices = {
        "posted": "Your listing is posted.",
        "updated": "Your changes are saved.",
        "pause": "The listing is paused: it no longer shows in searches.",
        "resume": "The listing is open again.",
        "close": "The listing is closed.",
        "attached": "The test report is attached.",
    }
    return _detail_page(request, session, user, listing, notice=notices.get(done))


@router.get("/listings/{listing_id:int}/history", response_class=HTMLResponse)
def history(request: Request, listing_id: int, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    changes = service.history(session, user, listing_id)
    view = service.to_view(session, service.get_visible(session, user, listing_id), user, locale=_locale(request))
    return _page(request, session, "listings/history.html", view=view, changes=changes)


@router.post("/listings/{listing_id:int}/attachments", response_class=HTMLResponse)
async def attach(
    request: Request, listing_id: int, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    raw = await request.form()
    uploads = [
        (f.filename or "report", await f.read(settings.max_upload_bytes + 1))
        for f in raw.getlist("attachments")
        if isinstance(f, UploadFile) and f.filename
    ]
    try:
        await run_in_threadpool(service.add_attachments, session, user, listing_id, uploads, settings)
    except (Unprocessable, Conflict) as exc:
        session.rollback()
        listing = service.get_visible(session, user, listing_id)
        return _detail_page(request, session, user, listing, exc.status, attach_error=exc.detail)
    return redirect(f"/listings/{listing_id}?done=attached")


@router.post("/listings/{listing_id:int}/{action}", response_class=HTMLResponse)
def change_status(
    request: Request,
    listing_id: int,
    action: str,
    session: SessionDep,
    user: CurrentUser,
    version: Annotated[str, Form()] = "",
) -> Response:
    """Pause, resume or close; the version the button was rendered with must still be current."""
    if action not in service.TRANSITIONS:
        raise NotFound(f"no such action {action!r}")
    try:
        service.change_status(session, user, listing_id, action, version=int(version) if version.isdigit() else None)
    except Conflict as exc:
        session.rollback()
        listing = service.get_visible(session, user, listing_id)
        stale = exc.field == "version"
        return _detail_page(request, session, user, listing, 409, action_error=STALE_EDIT if stale else exc.detail)
    return redirect(f"/listings/{listing_id}?done={action}")
