"""JSON API for solid-waste ledgers: enterprises file their own; regulators and park managers read within scope."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from exchange.core.deps import CurrentUser, EnterpriseMember, SessionDep, SettingsDep
from exchange.core.params import PERIOD_PATTERN, IdPath, IdQuery, Offset
from exchange.ledgers import service
from exchange.ledgers.models import ImportResult, LedgerIn, LedgerPublic, LedgerRevisionPublic, LedgerSource

router = APIRouter(prefix="/api/v1/ledgers", tags=["ledgers"])

PERIOD = PERIOD_PATTERN


@router.get("", response_model=list[LedgerPublic])
def list_ledgers(
    session: SessionDep,
    user: CurrentUser,
    period_from: str | None = Query(default=None, pattern=PERIOD),
    period_to: str | None = Query(default=None, pattern=PERIOD),
    material_code: str | None = None,
    enterprise_id: IdQuery = None,
    limit: int = Query(default=500, ge=1, le=5000),
    offset: Offset = 0,
) -> list[LedgerPublic]:
    """Ledger rows you may read: your enterprise's, or those in your park or region."""
    rows = service.list_entries(
        session,
        user,
        period_from=period_from,
        period_to=period_to,
        material_code=material_code,
        enterprise_id=enterprise_id,
        limit=limit,
        offset=offset,
    )
    return [service.to_public(r) for r in rows]


@router.put("", response_model=LedgerPublic)
def file_ledger(body: LedgerIn, session: SessionDep, user: EnterpriseMember) -> LedgerPublic:
    """File or correct the month's ledger for one material (a correction keeps the old figures as history).

    Hard rules answer 422 naming the field; an unbalanced NBS identity is accepted with a warning."""
    entry, warnings = service.file_ledger(session, user, body, source=LedgerSource.API)
    return service.to_public(entry, warnings)


@router.get("/prefill")
def prefill(
    session: SessionDep,
    user: EnterpriseMember,
    material_code: str,
    period: str = Query(pattern=PERIOD),
) -> dict[str, str | Decimal]:
    """Tonnes delivered through exchange agreements in the month: the pre-filled 'sent for utilisation'."""
    assert user.enterprise_id is not None
    kg = service.delivered_kg(session, user.enterprise_id, material_code, period)
    return {"material_code": material_code, "period": period, "sent_for_utilisation_t": service.kg_to_t(kg)}


@router.get(
    "/import-template.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the CSV template"}},
)
def import_template() -> Response:
    return Response(
        service.import_template_csv(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="ledger-template.csv"'},
    )


@router.post("/import", response_model=ImportResult, responses={422: {"description": "row/column errors"}})
async def import_ledgers(
    file: UploadFile, session: SessionDep, settings: SettingsDep, user: EnterpriseMember
) -> ImportResult | JSONResponse:
    """Import a CSV (UTF-8, GBK or UTF-16) or XLSX ledger (columns as in the template): all rows or none."""
    content = await file.read(settings.max_upload_bytes + 1)
    try:
        return service.import_ledgers(session, user, file.filename or "", content, settings)
    except service.ImportRejected as exc:
        return JSONResponse(
            {
                "error": exc.code,
                "detail": exc.detail,
                "field": "file",
                "errors": [e.model_dump() for e in exc.errors],
            },
            status_code=422,
        )


@router.get("/{entry_id}", response_model=LedgerPublic)
def get_ledger(entry_id: IdPath, session: SessionDep, user: CurrentUser) -> LedgerPublic:
    return service.to_public(service.get_entry(session, user, entry_id))


@router.get("/{entry_id}/history", response_model=list[LedgerRevisionPublic])
def ledger_history(entry_id: IdPath, session: SessionDep, user: CurrentUser) -> list[LedgerRevisionPublic]:
    """Every version, newest first."""
    return service.history(session, user, entry_id)
