"""HTML pages for ledgers: the list, the filing form (pre-filled from deliveries), history and the import."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from exchange.accounts.models import Role
from exchange.core.deps import CurrentUser, EnterpriseMember, SessionDep, SettingsDep
from exchange.core.errors import DomainError
from exchange.core.i18n import request_locale
from exchange.core.params import PERIOD_PATTERN
from exchange.core.web import redirect, render
from exchange.ledgers import service
from exchange.ledgers.models import FIGURES, LedgerIn, LedgerSource
from exchange.reference.catalogue import load_catalogue

router = APIRouter(include_in_schema=False)

FIGURE_LABELS: dict[str, str] = {
    "generated": "Generated (t)",
    "utilised_in_house": "Utilised in-house (t)",
    "utilised_in_house_prior_stock": "of which from prior-year stock (t)",
    "sent_for_utilisation": "Sent out for utilisation (t)",
    "sent_for_utilisation_prior_stock": "of which from prior-year stock (t)",
    "disposed": "Disposed (t)",
    "disposed_prior_stock": "of which from prior-year stock (t)",
    "stored": "Stored (t)",
    "dumped": "Dumped or discarded (t)",
}
# pydantic error → our own English message (each has a zh-CN translation), so the form speaks the user's language
FIELD_MESSAGES = {
    "period": "Enter the month as YYYY-MM",
    "material_code": "Choose a material",
    "note": "At most 500 characters",
}
TONNES_MESSAGE = "Enter tonnes: a number of at least 0 with at most 3 decimals"


def material_options(locale: str) -> list[tuple[str, str]]:
    cat = load_catalogue()
    return [(m.code, m.name_zh if locale == "zh-CN" else m.name_en) for m in cat.materials]


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else "__all__"
            out.setdefault(name, FIELD_MESSAGES.get(name, TONNES_MESSAGE if name.endswith("_t") else "Invalid value"))
        return out
    if isinstance(exc, DomainError):
        return {exc.field or "__all__": exc.detail}
    return {"__all__": str(exc)}


def _period_or_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if re.match(PERIOD_PATTERN, value) else None


PAGE_SIZE = 100


@router.get("/ledgers", response_class=HTMLResponse)
def ledger_list(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    period_from: str | None = None,
    period_to: str | None = None,
    material_code: str | None = None,
    page: int = Query(default=1, ge=1, le=10_000),
) -> Response:
    """The ledgers the user may read: an enterprise's own, or every enterprise's in the park or region."""
    filters = {
        "period_from": _period_or_none(period_from),
        "period_to": _period_or_none(period_to),
        "material_code": (material_code or "").strip() or None,
    }
    entries = service.list_entries(
        session,
        user,
        period_from=filters["period_from"],
        period_to=filters["period_to"],
        material_code=filters["material_code"],
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
    )
    has_next = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    locale = request_locale(request, request.app.state.settings.default_locale)
    materials = material_options(locale)
    show_enterprise = user.role is not Role.ENTERPRISE
    enterprises = service.enterprise_names(session, {e.enterprise_id for e in entries}) if show_enterprise else {}
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "ledgers/list.html",
        rows=[service.to_public(e) for e in entries],
        names=dict(materials),
        materials=materials,
        form={k: v or "" for k, v in filters.items()},
        enterprises=enterprises,
        show_enterprise=show_enterprise,
        can_file=user.role is Role.ENTERPRISE,
        page=page,
        prev_url=f"/ledgers?{query}&page={page - 1}" if page > 1 else None,
        next_url=f"/ledgers?{query}&page={page + 1}" if has_next else None,
    )


def _form_page(
    request: Request, form: dict[str, Any], errors: dict[str, str], status: int = 200, **extra: Any
) -> Response:
    locale = request_locale(request, request.app.state.settings.default_locale)
    return render(
        request,
        "ledgers/form.html",
        status_code=status,
        form=form,
        errors=errors,
        figures=[(f"{f}_t", FIGURE_LABELS[f], f.endswith("_prior_stock")) for f in FIGURES],
        materials=material_options(locale),
        loaded=bool(
            load_catalogue().find(str(form.get("material_code") or "")) and _period_or_none(form.get("period"))
        ),
        **extra,
    )


@router.get("/ledgers/new", response_class=HTMLResponse)
def ledger_form(
    request: Request, session: SessionDep, user: EnterpriseMember, material_code: str = "", period: str = ""
) -> Response:
    """A new month starts with 'sent out for utilisation' pre-filled from the exchange's deliveries; a month
    already filed starts from its current figures (saving is a correction), with the deliveries shown beside."""
    form: dict[str, Any] = {"material_code": material_code, "period": period}
    prefilled = False
    existing = None
    delivered_t = None
    errors: dict[str, str] = {}
    if material_code and load_catalogue().find(material_code) is None:
        errors["material_code"] = "Choose a material"
    elif period and not _period_or_none(period):
        errors["period"] = "Enter the month as YYYY-MM"
    elif material_code and period:
        assert user.enterprise_id is not None
        kg = service.delivered_kg(session, user.enterprise_id, material_code, period)
        delivered_t = service.kg_to_t(kg) if kg else None
        existing = service.find_entry(session, user, material_code, period)
        if existing is not None:
            pub = service.to_public(existing)
            form.update({f"{f}_t": getattr(pub, f"{f}_t") for f in FIGURES}, note=pub.note)
        elif kg:
            form["sent_for_utilisation_t"] = delivered_t
            prefilled = True
    status = 422 if errors else 200
    return _form_page(request, form, errors, status, prefilled=prefilled, existing=existing, delivered_t=delivered_t)


@router.post("/ledgers/new", response_class=HTMLResponse)
async def ledger_submit(request: Request, session: SessionDep, user: EnterpriseMember) -> Response:
    raw = dict(await request.form())
    form = {k: v for k, v in raw.items() if k != "csrf_token" and isinstance(v, str)}
    data = {k: (v.strip() or ("0" if k.endswith("_t") else None)) for k, v in form.items()}
    try:
        body = LedgerIn.model_validate(data)
        entry, warnings = service.file_ledger(session, user, body, source=LedgerSource.FORM)
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status not in (422,):
            raise
        return _form_page(request, form, _errors(exc), status=422, prefilled=False, existing=None, delivered_t=None)
    if warnings:
        return redirect(f"/ledgers/{entry.id}?warn=identity")
    return redirect(f"/ledgers/{entry.id}")


@router.get("/ledgers/import", response_class=HTMLResponse)
def import_form(request: Request, user: EnterpriseMember) -> Response:
    return render(request, "ledgers/import.html", errors=[], result=None)


@router.post("/ledgers/import", response_class=HTMLResponse)
async def import_submit(
    request: Request, session: SessionDep, settings: SettingsDep, user: EnterpriseMember
) -> Response:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(
            request, "ledgers/import.html", status_code=422, errors=[], result=None, file_error="Choose a file"
        )
    content = await upload.read(settings.max_upload_bytes + 1)  # one byte more than allowed is enough to refuse
    try:
        result = service.import_ledgers(session, user, upload.filename, content, settings)
    except service.ImportRejected as exc:
        return render(request, "ledgers/import.html", status_code=422, errors=exc.errors, result=None)
    except DomainError as exc:
        if exc.status not in (413, 415, 422):
            raise
        return render(
            request, "ledgers/import.html", status_code=exc.status, errors=[], result=None, file_error=exc.detail
        )
    return render(request, "ledgers/import.html", errors=[], result=result)


@router.get("/ledgers/{entry_id}", response_class=HTMLResponse)
def ledger_detail(request: Request, entry_id: int, session: SessionDep, user: CurrentUser, warn: str = "") -> Response:
    entry = service.get_entry(session, user, entry_id)
    return render(
        request,
        "ledgers/detail.html",
        entry=service.to_public(entry),
        versions=service.history(session, user, entry_id),
        figures=[(f"{f}_t", FIGURE_LABELS[f]) for f in FIGURES],
        warn=warn == "identity",
        can_file=user.role is Role.ENTERPRISE,
    )
