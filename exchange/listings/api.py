"""JSON API for listings: post, read, edit (optimistic concurrency), pause/resume/close, history, attachments,
search with filters and spreadsheet import. Every route calls `exchange.listings.service`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from exchange.core.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from exchange.core.i18n import request_locale
from exchange.core.params import MAX_ID, IdPath, IdQuery, Offset
from exchange.listings import service, spreadsheet
from exchange.listings.models import Attachment as AttachmentRow
from exchange.listings.models import (
    AttachmentPublic,
    ImportMode,
    ImportResult,
    Listing,
    ListingChangePublic,
    ListingCreate,
    ListingKind,
    ListingOwnerView,
    ListingPage,
    ListingPublic,
    ListingStatus,
    ListingUpdate,
)

router = APIRouter(prefix="/api/v1/listings", tags=["listings"])

AnyView = ListingOwnerView | ListingPublic
IfMatch = Annotated[str | None, Header(alias="If-Match", description="the ETag from GET; a stale one answers 412")]


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def _view(request: Request, session: SessionDep, listing: Listing, user: OptionalUser, response: Response) -> AnyView:
    response.headers["ETag"] = service.etag(listing)
    return service.to_view(session, listing, user, locale=_locale(request))


def attachment_public(att: AttachmentRow) -> AttachmentPublic:
    assert att.id is not None
    return AttachmentPublic(
        id=att.id,
        listing_id=att.listing_id,
        filename=att.filename,
        content_type=att.content_type,
        size_bytes=att.size_bytes,
        sha256=att.sha256,
        uploaded_at=att.uploaded_at,
        url=f"/api/v1/listings/attachments/{att.id}",
    )


@router.post("", status_code=201, response_model=AnyView)
def create_listing(
    body: ListingCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> AnyView:
    """Post a supply or demand listing for your approved enterprise. Only `material_code` and `quantity_t` are
    required; the location defaults to your enterprise's (or send `address`, or `lat` and `lon`)."""
    listing = service.create_listing(session, user, body, settings)
    response.headers["Location"] = f"/api/v1/listings/{listing.id}"
    return _view(request, session, listing, user, response)


@router.get("", response_model=ListingPage)
def list_listings(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    kind: ListingKind | None = None,
    material_code: str | None = Query(default=None, max_length=40),
    category: str | None = Query(default=None, max_length=40, description="catalogue group or bulk category"),
    province_code: str | None = Query(default=None, pattern=r"^\d{6}$"),
    city_code: str | None = Query(default=None, pattern=r"^\d{6}$"),
    park_id: IdQuery = None,
    near_lat: float | None = Query(default=None, ge=-90, le=90),
    near_lon: float | None = Query(default=None, ge=-180, le=180),
    radius_km: float | None = Query(default=None, gt=0, le=5000),
    min_quantity_t: Decimal | None = Query(default=None, ge=0, decimal_places=3),
    status: ListingStatus | None = None,
    mine: bool = False,
    sort: str = Query(
        default="-created_at", pattern=r"^[-+]?(created_at|quantity|price|distance)$", description="prefix - for desc"
    ),
    limit: int = Query(default=20, ge=1, le=200),
    offset: Offset = 0,
) -> ListingPage:
    """Listings you may see (anyone may browse public ones), filtered, sorted and paginated."""
    filters = service.ListingFilters(
        kind=kind,
        material_code=material_code or None,
        category=category or None,
        province_code=province_code,
        city_code=city_code,
        park_id=park_id,
        near_lat=near_lat,
        near_lon=near_lon,
        radius_km=radius_km,
        min_quantity_t=min_quantity_t,
        status=status,
        mine=mine,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    result = service.search(session, user, filters)
    items = service.views(session, user, result.rows, _locale(request))
    return ListingPage(total=result.total, limit=limit, offset=offset, items=items)


@router.post("/import", response_model=ImportResult, responses={422: {"description": "rows with errors"}})
async def import_listings(
    file: UploadFile,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    mode: Annotated[ImportMode, Form()] = "all_or_nothing",
) -> ImportResult | JSONResponse:
    """Import a CSV (UTF-8 or GBK) or XLSX ledger of listings. Every row is checked first; with
    `all_or_nothing` a single bad row writes nothing (422 listing every row, column and reason); with
    `valid_rows` the good rows are imported and the bad ones reported."""
    content = await file.read(settings.max_upload_bytes + 1)
    result = spreadsheet.import_listings(session, user, file.filename or "", content, mode, settings)
    if result.errors and result.created == 0:
        return JSONResponse(
            {
                "error": "invalid_rows",
                "detail": spreadsheet.summary(result),
                "field": "file",
                **result.model_dump(mode="json"),
            },
            status_code=422,
        )
    return result


@router.get(
    "/import/template.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the CSV template"}},
)
def import_template_csv() -> Response:
    return spreadsheet.template_response("csv")


@router.get(
    "/import/template.xlsx",
    response_class=Response,
    responses={
        200: {
            "content": {spreadsheet.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "the XLSX template",
        }
    },
)
def import_template_xlsx() -> Response:
    return spreadsheet.template_response("xlsx")


@router.get("/attachments/{attachment_id}", response_class=FileResponse)
def download_attachment(
    attachment_id: IdPath, session: SessionDep, settings: SettingsDep, user: OptionalUser
) -> FileResponse:
    """The attached test report, for those who may see its listing."""
    att, path = service.get_attachment(session, user, attachment_id, settings)
    return FileResponse(
        path,
        media_type=att.content_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(att.filename)}"},
    )


@router.get("/{listing_id}", response_model=AnyView)
def get_listing(
    listing_id: IdPath, request: Request, response: Response, session: SessionDep, user: OptionalUser
) -> AnyView:
    """One listing (404 if it does not exist or you may not see it). The ETag goes back in If-Match on PATCH."""
    return _view(request, session, service.get_visible(session, user, listing_id), user, response)


@router.patch("/{listing_id}", response_model=AnyView)
def update_listing(
    listing_id: IdPath,
    body: ListingUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    if_match: IfMatch = None,
) -> AnyView:
    """Change some fields. Send the `version` you read (stale: 409) or `If-Match: <ETag>` (stale: 412)."""
    listing = service.update_listing(session, user, listing_id, body, settings, if_match=if_match)
    return _view(request, session, listing, user, response)


# Declared before /{listing_id}/{action}, which would otherwise take "attachments" as an action.
@router.post("/{listing_id}/attachments", status_code=201, response_model=list[AttachmentPublic])
async def add_attachments(
    listing_id: IdPath, files: list[UploadFile], session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> list[AttachmentPublic]:
    """Attach test reports (PDF, PNG or JPEG, checked by content; each at most the upload limit)."""
    uploads = [(f.filename or "report", await f.read(settings.max_upload_bytes + 1)) for f in files]
    stored = service.add_attachments(session, user, listing_id, uploads, settings)
    return [attachment_public(a) for a in stored]


@router.post("/{listing_id}/{action}", response_model=AnyView)
def change_status(
    listing_id: IdPath,
    action: Literal["pause", "resume", "close"],
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    version: Annotated[int | None, Body(embed=True, ge=1, le=MAX_ID)] = None,
    if_match: IfMatch = None,
) -> AnyView:
    """Pause, resume or close (final). Optionally send `{"version": n}` or If-Match to act only on what you saw."""
    listing = service.change_status(session, user, listing_id, action, version=version, if_match=if_match)
    return _view(request, session, listing, user, response)


@router.get("/{listing_id}/history", response_model=list[ListingChangePublic])
def listing_history(listing_id: IdPath, session: SessionDep, user: CurrentUser) -> list[ListingChangePublic]:
    """Every change (who, when, before and after): for the owner enterprise's members and admins."""
    return service.history(session, user, listing_id)


@router.get("/{listing_id}/attachments", response_model=list[AttachmentPublic])
def list_attachments(listing_id: IdPath, session: SessionDep, user: OptionalUser) -> list[AttachmentPublic]:
    return [attachment_public(a) for a in service.list_attachments(session, user, listing_id)]
