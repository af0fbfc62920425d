"""HTML pages for ledgers: the list, the filing form (pre-filled from deliveries), history and the import."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from exchange.accounts.models import Role
from exchange.core.deps import CurrentUser, EnterpriseMember, SessionDep
from exchange.core.errors import DomainError
from exchange.core.i18n import request_locale
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


@router.get("/ledgers", response_class=HTMLResponse)
def ledger_list(request: Request, session: SessionDep, user: CurrentUser, period_from: str | None = None) -> Response:
    entries = service.list_entries(session, user, period_from=period_from or None, limit=300)
    names = dict(material_options(request_locale(request, request.app.state.settings.default_locale)))
    rows = [service.to_public(e) for e in entries]
    return render(
        request,
        "ledgers/list.html",
        rows=rows,
        names=names,
        can_file=user.role is Role.ENTERPRISE,
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
        **extra,
    )


@router.get("/ledgers/new", response_class=HTMLResponse)
def ledger_form(
    request: Request, session: SessionDep, user: EnterpriseMember, material_code: str = "", period: str = ""
) -> Response:
    form: dict[str, Any] = {"material_code": material_code, "period": period}
    prefilled = False
    existing = None
    if material_code and len(period) == 7:
        existing = service.find_entry(session, user, material_code, period)
        if existing is not None:
            pub = service.to_public(existing)
            form.update({f"{f}_t": getattr(pub, f"{f}_t") for f in FIGURES}, note=pub.note)
        else:
            assert user.enterprise_id is not None
            kg = service.delivered_kg(session, user.enterprise_id, material_code, period)
            if kg:
                form["sent_for_utilisation_t"] = service.kg_to_t(kg)
                prefilled = True
    return _form_page(request, form, {}, prefilled=prefilled, existing=existing)


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
        return _form_page(request, form, _errors(exc), status=422, prefilled=False, existing=None)
    if warnings:
        return redirect(f"/ledgers/{entry.id}?warn=identity")
    return redirect(f"/ledgers/{entry.id}")


@router.get("/ledgers/import", response_class=HTMLResponse)
def import_form(request: Request, user: EnterpriseMember) -> Response:
    return render(request, "ledgers/import.html", errors=[], result=None)


@router.post("/ledgers/import", response_class=HTMLResponse)
async def import_submit(request: Request, session: SessionDep, user: EnterpriseMember) -> Response:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(
            request, "ledgers/import.html", status_code=422, errors=[], result=None, file_error="Choose a file"
        )
    content = await upload.read()
    try:
        result = service.import_ledgers(session, user, upload.filename, content)
    except service.ImportRejected as exc:
        return render(request, "ledgers/import.html", status_code=422, errors=exc.errors, result=None)
    except DomainError as exc:
        if exc.status != 422:
            raise
        return render(request, "ledgers/import.html", status_code=422, errors=[], result=None, file_error=exc.detail)
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
