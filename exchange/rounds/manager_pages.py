"""The park manager's round pages: list, new round with preview, progress, report, review, publish, audit.

Thin: every route calls `exchange.rounds.service`, the same functions as the JSON API (`api.py`). A form post
with bad input re-renders its page with the message next to the field; a refused review action (the run is
still going, someone published meanwhile) re-renders the round page with the reason, never a bare error.
The progress bar polls `GET /api/v1/rounds/{id}/status` from frontend/static/js/rounds.js.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from exchange.accounts.models import Role, User
from exchange.core.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from exchange.core.errors import DomainError, Forbidden, Unprocessable
from exchange.core.i18n import request_locale
from exchange.core.web import field_errors, redirect, render
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.reference.places import load_divisions
from exchange.rounds import export, jobs, service
from exchange.rounds.common import can_manage, is_staff, region_contains
from exchange.rounds.models import (
    PERIOD_PATTERN,
    PinIn,
    Preview,
    Round,
    RoundCreate,
    RoundSettings,
    RoundState,
    RunState,
    ScopeKind,
)
from exchange.settings import Settings

router = APIRouter(include_in_schema=False)

ROUND_STATE_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "review": "In review",
    "published": "Published",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
RUN_STATE_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Finished",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
STAGE_LABELS = {
    "queued": "Queued",
    "building_pairs": "Building pairs",
    "solving": "Solving",
    "writing_results": "Writing results",
    "done": "Finished",
}
SCOPE_LABELS = {
    "park": "Park",
    "regions": "Provinces and cities",
    "visible": "All open listings I may see",
}
RUN_REASON_LABELS = {
    "first run": "First run",
    "re-solve": "Re-solve",
    "re-run": "Re-run",
    "retry": "Retry",
}
DONE_MESSAGES = {
    "created": "The round is queued; this page follows its progress.",
    "cancelled": "The run was cancelled; nothing was written.",
    "pinned": "The pair is pinned; re-solve to apply it.",
    "unpinned": "The pin was removed; re-solve to apply it.",
    "forbidden": "The pair is forbidden; re-solve to apply it.",
    "allowed": "The pair is allowed again; re-solve to apply it.",
    "rerun": "A new run is queued.",
    "published": "The round is published: both enterprises of each pair received a proposal.",
}
AUDIT_ACTION_LABELS = {
    "round.create": "Round created",
    "round.cancel": "Run cancelled",
    "round.resolve": "Re-solved",
    "round.rerun": "Re-run",
    "round.retry": "Retried",
    "round.pin": "Pair pinned",
    "round.unpin": "Pin removed",
    "round.forbid": "Pair forbidden",
    "round.allow": "Pair allowed again",
    "round.publish": "Published",
    "round.run.start": "Run started",
    "round.run.succeed": "Run finished",
    "round.run.fail": "Run failed",
    "proposal.create": "Proposal sent",
    "proposal.accept": "Proposal accepted",
    "proposal.decline": "Proposal declined",
    "proposal.withdraw": "Proposal withdrawn",
    "agreement.create": "Agreement made",
    "agreement.complete": "Agreement completed",
    "agreement.cancel": "Agreement cancelled",
    "delivery.record": "Delivery recorded",
    "delivery.confirm": "Delivery confirmed",
}
AUDIT_STATE_LABELS = {
    **ROUND_STATE_LABELS,
    **RUN_STATE_LABELS,
    "open": "Open",
    "accepted": "Accepted",
    "declined": "Declined",
    "withdrawn": "Withdrawn",
    "active": "Active",
    "completed": "Completed",
    "recorded": "Recorded",
    "confirmed": "Confirmed",
}
CHANGE_LABELS = {"added": "Added", "removed": "Removed", "changed": "Tonnes changed"}
SETTINGS_FIELDS: tuple[tuple[str, float, float, bool, str], ...] = (
    # name, low, high, low is exclusive, the message when the number is missing or out of range
    ("freight_cny_per_t_km", 0.0, 100.0, True, "Enter a freight rate above 0 and at most 100 CNY per t·km"),
    ("detour_factor", 1.0, 5.0, False, "Enter a detour factor between 1 and 5"),
)
REGION_CODE = re.compile(r"^\d{6}$")


# ---------------------------------------------------------------------------------------------- helpers


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def _login_first(request: Request) -> Response:
    return redirect(f"/login?next={quote(request.url.path)}")


def _kick(request: Request, session: Session, settings: Settings) -> None:
    """As the API does when a round is read: end our transaction, reap vanished workers' runs and make sure
    queued runs have a worker (after a restart, say)."""
    session.commit()
    jobs.kick(request.app.state.engine, settings)


def fmt_t(value: Decimal | str | None) -> str:
    """Tonnes: 1234.500 → "1,234.5" (exact, trailing zeros dropped)."""
    if value is None or value == "":
        return "—"
    text = f"{Decimal(value):,.3f}"
    return text.rstrip("0").rstrip(".")


def fmt_cny(value: Decimal | str | None) -> str:
    return "—" if value is None else f"{Decimal(value):,.2f}"


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _runner(user: User) -> None:
    """Checked before a form is shown, so nobody fills it in vain (the service checks again on submit)."""
    if not is_staff(user):
        raise Forbidden("matching rounds are run by park managers, regulators and admins")


def _names(locale: str) -> dict[str, Any]:
    zh = locale == "zh-CN"
    divisions = load_divisions()

    def region(code: str | None) -> str:
        d = divisions.find(code) if code else None
        if d is None:
            return code or ""
        return d.name_zh if zh else d.name_en

    def material(code: str) -> str:
        return service.material_name(code, locale)

    return {"region": region, "material": material}


def _scope_text(session: Session, rnd: Round, locale: str) -> str:
    """Where the round looks, in names: the park, the provinces and cities (the kind's label is separate)."""
    if rnd.scope_kind is ScopeKind.PARK and rnd.scope_park_id is not None:
        park = session.get(Park, rnd.scope_park_id)
        return park.name if park else f"#{rnd.scope_park_id}"
    if rnd.scope_kind is ScopeKind.REGIONS:
        region = _names(locale)["region"]
        return "、".join(region(c) for c in rnd.scope_regions)
    return ""


def _common(locale: str) -> dict[str, Any]:
    return {
        "fmt_t": fmt_t,
        "fmt_cny": fmt_cny,
        "pct": pct,
        "round_state_labels": ROUND_STATE_LABELS,
        "run_state_labels": RUN_STATE_LABELS,
        "stage_labels": STAGE_LABELS,
        "scope_labels": SCOPE_LABELS,
        "reason_labels": RUN_REASON_LABELS,
        **_names(locale),
    }


def _page(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return render(request, template, status_code=status_code, **_common(_locale(request)), **ctx)


def _as_json(value: Any) -> str:
    """For a <script type="application/json"> block: never lets a name close the script element."""
    return json.dumps(export.jsonable(value), ensure_ascii=False).replace("</", "<\\/")


# ---------------------------------------------------------------------------------------------- the list


@router.get("/rounds", response_class=HTMLResponse)
def rounds_list(request: Request, session: SessionDep, settings: SettingsDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    rounds = service.list_rounds(session, user, limit=200)
    _kick(request, session, settings)
    locale = _locale(request)
    rows = [
        {
            "public": service.round_public(session, r),
            "scope_text": _scope_text(session, r, locale),
            "manage": can_manage(user, r),
        }
        for r in rounds
    ]
    return _page(request, "rounds/list.html", rows=rows)


# ---------------------------------------------------------------------------------------------- new round


def _parks_for(session: Session, user: User) -> list[tuple[int, str]]:
    """The parks a user may choose for a park round: a manager their own, a regulator those in their region."""
    parks = session.exec(select(Park).order_by(col(Park.name))).all()
    out = []
    for p in parks:
        assert p.id is not None
        if user.role is Role.PARK_MANAGER and p.id != user.park_id:
            continue
        if user.role is Role.REGULATOR and not region_contains(user.region_code or "", p.city_code):
            continue
        out.append((p.id, p.name))
    return out


def _region_groups(user: User, locale: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(province code, province name, [(city code, city name)]) a user may choose; a regulator their region."""
    zh = locale == "zh-CN"
    divisions = load_divisions()
    groups = []
    for prov in divisions.provinces():
        if user.role is Role.REGULATOR and not (
            region_contains(user.region_code or "", prov.code) or region_contains(prov.code, user.region_code or "")
        ):
            continue
        cities = [
            (c.code, c.name_zh if zh else c.name_en)
            for c in divisions.cities(prov.code)
            if user.role is not Role.REGULATOR or region_contains(user.region_code or "", c.code)
        ]
        groups.append((prov.code, prov.name_zh if zh else prov.name_en, cities))
    return groups


def _new_defaults(user: User) -> dict[str, Any]:
    if user.role is Role.REGULATOR:
        scope, regions = ScopeKind.REGIONS.value, [user.region_code] if user.region_code else []
    elif user.role is Role.ADMIN:
        scope, regions = ScopeKind.VISIBLE.value, []
    else:
        scope, regions = ScopeKind.PARK.value, []
    return {
        "title": "",
        "scope": scope,
        "park_id": str(user.park_id or ""),
        "regions": regions,
        "period": f"{date.today():%Y-%m}",
        "materials": [],
        "freight_cny_per_t_km": f"{service.default_freight_cny_per_t_km():g}",
        "detour_factor": f"{service.default_detour_factor():g}",
        "honour_min_lots": True,
    }


def _read_settings(form: FormData | dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The freight rate and the detour factor as numbers, and the minimum-lots checkbox; errors by field."""
    out: dict[str, Any] = {}
    for name, low, high, exclusive, message in SETTINGS_FIELDS:
        text = str(form.get(name) or "").strip().replace("，", ".")
        try:
            value = Decimal(text)
        except InvalidOperation:
            errors[name] = message
            continue
        in_range = value.is_finite() and Decimal(str(low)) <= value <= Decimal(str(high))
        if not in_range or (exclusive and value == Decimal(str(low))):
            errors[name] = message
        else:
            out[name] = float(value)
    out["honour_min_lots"] = form.get("honour_min_lots") not in (None, "", "0", "false", "off")
    return out


def _read_round_form(form: FormData) -> tuple[dict[str, Any], RoundCreate | None, dict[str, str]]:
    """The new-round form → (what to show again, RoundCreate or None, errors by field)."""
    values: dict[str, Any] = {
        "title": str(form.get("title") or "").strip(),
        "scope": str(form.get("scope") or ""),
        "park_id": str(form.get("park_id") or "").strip(),
        "regions": [str(v) for v in form.getlist("regions") if v],
        "period": str(form.get("period") or "").strip(),
        "materials": [str(v) for v in form.getlist("materials") if v],
        "freight_cny_per_t_km": str(form.get("freight_cny_per_t_km") or "").strip(),
        "detour_factor": str(form.get("detour_factor") or "").strip(),
        "honour_min_lots": form.get("honour_min_lots") is not None,
    }
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"period": values["period"], "materials": values["materials"]}
    if values["title"]:
        if len(values["title"]) > 200:
            errors["title"] = "Keep the title under 200 characters"
        data["title"] = values["title"]
    if values["scope"] not in {k.value for k in ScopeKind}:
        errors["scope"] = "Choose where the round looks for listings"
    else:
        data["scope"] = values["scope"]
    if values["scope"] == ScopeKind.PARK.value and values["park_id"]:
        if values["park_id"].isdigit():
            data["park_id"] = int(values["park_id"])
        else:
            errors["park_id"] = "Choose a park from the list"
    if values["scope"] == ScopeKind.REGIONS.value:
        if not values["regions"]:
            errors["regions"] = "Choose at least one province or city for a regional round"
        elif not all(REGION_CODE.fullmatch(c) for c in values["regions"]):
            errors["regions"] = "Choose provinces or cities from the list"
        data["regions"] = values["regions"]
    if not re.fullmatch(PERIOD_PATTERN, values["period"]):
        errors["period"] = "Enter the month as YYYY-MM"
    catalogue = load_catalogue()
    if any(catalogue.find(m) is None for m in values["materials"]):
        errors["materials"] = "Choose materials from the catalogue"
    data.update(_read_settings(form, errors))
    if errors:
        return values, None, errors
    try:
        return values, RoundCreate.model_validate(data), errors
    except ValidationError as exc:
        found = field_errors(exc)
        if "__all__" in found:  # the model-level check is about the regions
            found["regions"] = found.pop("__all__")
        return values, None, found


def _new_page(
    request: Request,
    session: Session,
    user: User,
    form: dict[str, Any],
    errors: dict[str, str],
    preview: Preview | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    catalogue = load_catalogue()
    zh = _locale(request) == "zh-CN"
    return _page(
        request,
        "rounds/new.html",
        status_code=status_code,
        form=form,
        errors=errors,
        preview=preview,
        parks=_parks_for(session, user),
        region_groups=_region_groups(user, _locale(request)),
        materials=[(m.code, m.name_zh if zh else m.name_en) for m in catalogue.materials],
        settings_fields=[name for name, *_ in SETTINGS_FIELDS],
    )


@router.get("/rounds/new", response_class=HTMLResponse)
def new_round_form(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    if user is None:
        return _login_first(request)
    _runner(user)
    return _new_page(request, session, user, _new_defaults(user), {})


def _preview_or_create(
    session: Session, settings: Settings, user: User, data: RoundCreate, action: str, locale: str
) -> Preview | Round:
    if action == "preview":
        return service.preview(session, user, data, locale)
    return service.create_round(session, settings, user, data)


@router.post("/rounds/new", response_class=HTMLResponse)
async def new_round_submit(request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Response:
    """One form, two buttons: "Preview" shows the lots and tonnes in scope; "Start" creates the round."""
    _runner(user)
    form = await request.form()
    action = "preview" if form.get("action") == "preview" else "start"
    values, data, errors = _read_round_form(form)
    if data is None:
        return _new_page(request, session, user, values, errors, status_code=422)
    try:
        outcome = await run_in_threadpool(_preview_or_create, session, settings, user, data, action, _locale(request))
    except (Unprocessable, Forbidden) as exc:
        session.rollback()
        if exc.field is None:
            raise
        return _new_page(request, session, user, values, field_errors(exc), status_code=exc.status)
    if isinstance(outcome, Round):
        return redirect(f"/rounds/{outcome.id}?done=created")
    return _new_page(request, session, user, values, {}, preview=outcome)


# ---------------------------------------------------------------------------------------------- the round


def _map_area(session: Session, user: User, rnd: Round) -> tuple[str, str]:
    """(boundary level, province code) for the flow map: the cities of one province when the round stays in
    one, else every province."""
    province: str | None = None
    if rnd.scope_park_id is not None:
        park = session.get(Park, rnd.scope_park_id)
        province = park.province_code if park else None
    elif rnd.scope_kind is ScopeKind.REGIONS:
        provinces = {c[:2] for c in rnd.scope_regions}
        province = f"{provinces.pop()}0000" if len(provinces) == 1 else None
    elif user.role is Role.REGULATOR and user.region_code:
        province = f"{user.region_code[:2]}0000"
    elif rnd.park_id is not None:
        park = session.get(Park, rnd.park_id)
        province = park.province_code if park else None
    return ("city", province) if province else ("province", "")


def _round_context(
    request: Request, session: Session, user: User, rnd: Round, run_number: int | None
) -> dict[str, Any]:
    locale = _locale(request)
    public = service.round_public(session, rnd)
    runs = [service.run_public(session, r) for r in service.list_runs(session, rnd)]
    finished = [r for r in runs if r.state is RunState.SUCCEEDED]
    shown = None
    report = None
    if finished or run_number is not None:
        shown = service.get_run(session, rnd, run_number)
        if shown.state is RunState.SUCCEEDED:
            report = service.report(session, user, rnd, shown, locale)
    names: dict[int, str] = {}
    for row in report["allocations"] if report else []:
        names.setdefault(row["supply_listing_id"], row["supplier"] or "")
        names.setdefault(row["demand_listing_id"], row["consumer"] or "")
    level, province = _map_area(session, user, rnd)
    manage = can_manage(user, rnd)
    active = rnd.state in service.ACTIVE_STATES
    return {
        "rnd": rnd,
        "public": public,
        "scope_text": _scope_text(session, rnd, locale),
        "status": service.status(session, rnd),
        "runs": runs,
        "finished_runs": finished,
        "shown": shown,
        "report": report,
        "flows_json": _as_json(report["flows"] if report else []),
        "map_level": level,
        "map_province": province,
        "listing_names": names,
        "pinned_pairs": {(p["supply_listing_id"], p["demand_listing_id"]) for p in rnd.pins},
        "forbidden_pairs": {(p[0], p[1]) for p in rnd.forbidden},
        "manage": manage,
        "active": active,
        "editable": manage and not active,
        "can_publish": manage
        and rnd.state is RoundState.REVIEW
        and shown is not None
        and shown.id == rnd.current_run_id,
        "done_messages": DONE_MESSAGES,
    }


def _round_page(
    request: Request,
    session: Session,
    user: User,
    rnd: Round,
    *,
    run_number: int | None = None,
    done: str = "",
    problem: str | None = None,
    settings_form: dict[str, Any] | None = None,
    settings_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = _round_context(request, session, user, rnd, run_number)
    form = settings_form or {
        "freight_cny_per_t_km": f"{rnd.freight_cny_per_t_km:g}",
        "detour_factor": f"{rnd.detour_factor:g}",
        "honour_min_lots": rnd.honour_min_lots,
    }
    return _page(
        request,
        "rounds/detail.html",
        status_code=status_code,
        done=done if done in DONE_MESSAGES else "",
        problem=problem,
        settings_form=form,
        settings_errors=settings_errors or {},
        **ctx,
    )


def _run_number(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise Unprocessable("a run is chosen by its number", field="run")
    return int(text)


@router.get("/rounds/{round_id:int}", response_class=HTMLResponse)
def round_page(
    request: Request,
    round_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: OptionalUser,
    run: str | None = None,
    done: str = "",
) -> Response:
    if user is None:
        return _login_first(request)
    _kick(request, session, settings)
    rnd = service.get_round(session, user, round_id)
    return _round_page(request, session, user, rnd, run_number=_run_number(run), done=done)


async def _act(
    request: Request, session: Session, user: User, round_id: int, action: Callable[[], object], done: str
) -> Response:
    """Run a review action; a refusal (409, 422, a pair that is not pinned) comes back on the round page."""
    service.get_round(session, user, round_id, manage=True)  # 404 / 403 stay what they are
    try:
        await run_in_threadpool(action)
    except DomainError as exc:
        session.rollback()
        if isinstance(exc, Forbidden):
            raise
        rnd = service.get_round(session, user, round_id)
        return _round_page(request, session, user, rnd, problem=exc.detail, status_code=exc.status)
    return redirect(f"/rounds/{round_id}?done={done}")


@router.post("/rounds/{round_id:int}/cancel", response_class=HTMLResponse)
async def cancel_round(
    request: Request, round_id: int, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    return await _act(
        request, session, user, round_id, lambda: service.cancel(session, settings, user, round_id), "cancelled"
    )


def _pair(form: FormData) -> tuple[int, int]:
    s, d = str(form.get("supply_listing_id") or ""), str(form.get("demand_listing_id") or "")
    if not (s.isdigit() and d.isdigit()):
        raise Unprocessable("choose a pair from the table", field="supply_listing_id")
    return int(s), int(d)


@router.post("/rounds/{round_id:int}/pins", response_class=HTMLResponse)
async def pin_pair(request: Request, round_id: int, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    try:
        s, d = _pair(form)
        quantity = str(form.get("quantity_t") or "").strip()
        pin = PinIn.model_validate({"supply_listing_id": s, "demand_listing_id": d, "quantity_t": quantity})
    except (Unprocessable, ValidationError):
        rnd = service.get_round(session, user, round_id, manage=True)
        message = "Enter the tonnes to pin: a number above 0 with at most 3 decimals"
        return _round_page(request, session, user, rnd, problem=message, status_code=422)
    return await _act(request, session, user, round_id, lambda: service.set_pin(session, user, round_id, pin), "pinned")


@router.post("/rounds/{round_id:int}/pins/{supply_listing_id:int}/{demand_listing_id:int}/remove")
async def unpin_pair(
    request: Request,
    round_id: int,
    supply_listing_id: int,
    demand_listing_id: int,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    return await _act(
        request,
        session,
        user,
        round_id,
        lambda: service.remove_pin(session, user, round_id, supply_listing_id, demand_listing_id),
        "unpinned",
    )


@router.post("/rounds/{round_id:int}/forbidden", response_class=HTMLResponse)
async def forbid_pair(request: Request, round_id: int, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    try:
        s, d = _pair(form)
    except Unprocessable as exc:
        rnd = service.get_round(session, user, round_id, manage=True)
        return _round_page(request, session, user, rnd, problem=exc.detail, status_code=422)
    return await _act(
        request, session, user, round_id, lambda: service.forbid(session, user, round_id, s, d), "forbidden"
    )


@router.post("/rounds/{round_id:int}/forbidden/{supply_listing_id:int}/{demand_listing_id:int}/remove")
async def allow_pair(
    request: Request,
    round_id: int,
    supply_listing_id: int,
    demand_listing_id: int,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    return await _act(
        request,
        session,
        user,
        round_id,
        lambda: service.allow(session, user, round_id, supply_listing_id, demand_listing_id),
        "allowed",
    )


@router.post("/rounds/{round_id:int}/runs", response_class=HTMLResponse)
async def start_run(
    request: Request, round_id: int, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    """Change the settings and re-solve (in review), re-run (after publishing) or retry (failed, cancelled)."""
    form = await request.form()
    errors: dict[str, str] = {}
    values = _read_settings(form, errors)
    if errors:
        rnd = service.get_round(session, user, round_id, manage=True)
        shown = {
            "freight_cny_per_t_km": str(form.get("freight_cny_per_t_km") or ""),
            "detour_factor": str(form.get("detour_factor") or ""),
            "honour_min_lots": values["honour_min_lots"],
        }
        return _round_page(request, session, user, rnd, settings_form=shown, settings_errors=errors, status_code=422)
    changes = RoundSettings.model_validate(values)
    return await _act(
        request,
        session,
        user,
        round_id,
        lambda: service.start_run(session, settings, user, round_id, changes),
        "rerun",
    )


@router.post("/rounds/{round_id:int}/publish", response_class=HTMLResponse)
async def publish_round(request: Request, round_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Publishes the run the manager reviewed: if a later run exists, the service refuses with 409."""
    form = await request.form()
    try:
        run_number = _run_number(str(form.get("run") or ""))
    except Unprocessable as exc:
        rnd = service.get_round(session, user, round_id, manage=True)
        return _round_page(request, session, user, rnd, problem=exc.detail, status_code=422)
    return await _act(
        request, session, user, round_id, lambda: service.publish(session, user, round_id, run_number), "published"
    )


# ---------------------------------------------------------------------------------------------- compare, audit


@router.get("/rounds/{round_id:int}/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, round_id: int, session: SessionDep, user: OptionalUser, a: str = "", b: str = ""
) -> Response:
    if user is None:
        return _login_first(request)
    rnd = service.get_round(session, user, round_id)
    run_a, run_b = _run_number(a), _run_number(b)
    if run_a is None or run_b is None:
        raise Unprocessable("choose two runs to compare", field="a")
    comparison = service.compare(session, rnd, run_a, run_b)
    return _page(request, "rounds/compare.html", rnd=rnd, c=comparison, change_labels=CHANGE_LABELS)


@router.get("/rounds/{round_id:int}/audit", response_class=HTMLResponse)
def audit_page(request: Request, round_id: int, session: SessionDep, user: OptionalUser) -> Response:
    """Who did what and when, from which state to which: the round's managers and admins."""
    if user is None:
        return _login_first(request)
    rnd = service.get_round(session, user, round_id, manage=True)
    events = service.audit_trail(session, user, rnd)
    return _page(
        request,
        "rounds/audit.html",
        rnd=rnd,
        events=events,
        actors=service.actor_names(session, events),
        action_labels=AUDIT_ACTION_LABELS,
        state_labels=AUDIT_STATE_LABELS,
    )
