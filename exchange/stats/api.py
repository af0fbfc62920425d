"""Statistics API: the dashboard's figures for regulators and park managers (within their jurisdiction), the
public disclosure-controlled table, boundaries for the maps, and CSV/XLSX exports of every table."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from exchange.core.deps import CurrentUser, SessionDep
from exchange.stats import export, service
from exchange.stats.cache import FigureCacheDep
from exchange.stats.schemas import DashboardOut, PublicOut, TableOut
from exchange.stats.service import PERIOD_RE

router = APIRouter(prefix="/api/v1", tags=["statistics"])

Format = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}, XLSX: {}},
        "description": "JSON by default; a CSV or XLSX download with format=csv|xlsx (same columns as the rows)",
    },
    401: {"description": "not logged in"},
    403: {"description": "the region or park is outside your jurisdiction, or your role has no statistics"},
}
PeriodFrom = Query(default=None, pattern=PERIOD_RE, description="first month, YYYY-MM (default: January)")
PeriodTo = Query(default=None, pattern=PERIOD_RE, description="last month, YYYY-MM (default: that year's December)")
Region = Query(default=None, pattern=r"^\d{6}$", description="a province or city code inside your jurisdiction")
ParkId = Query(default=None, description="a park inside your jurisdiction")


def _scope_period(
    session: Any, user: Any, period_from: str | None, period_to: str | None, region: str | None, park_id: int | None
) -> tuple[service.Scope, service.Period]:
    scope = service.scope_for(session, user, region=region, park_id=park_id)
    return scope, service.period_for(session, scope, period_from, period_to)


def _scope_json(scope: service.Scope, period: service.Period) -> dict[str, Any]:
    return {
        "level": scope.level,
        "code": scope.code,
        "park_id": scope.park_id,
        "map_level": scope.map_level,
        "map_province": scope.map_province,
        "period_from": period.start,
        "period_to": period.end,
    }


def rows_response(rows: list[dict[str, Any]], name: str, fmt: Format, meta: dict[str, Any] | None = None) -> Any:
    """A CSV/XLSX download, or the JSON body as a dict (validated against the route's response model)."""
    if fmt == "csv":
        return Response(
            export.to_csv(rows).encode("utf-8-sig"),  # the BOM makes Excel read UTF-8 (Chinese names) correctly
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            export.to_xlsx(rows, sheet=name),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return {**(meta or {}), "rows": rows}


@router.get(
    "/stats/dashboard",
    response_model=DashboardOut,
    responses={k: v for k, v in FILE_RESPONSES.items() if k != 200},
)
def dashboard(
    session: SessionDep,
    user: CurrentUser,
    cache: FigureCacheDep,
    period_from: str | None = PeriodFrom,
    period_to: str | None = PeriodTo,
    region: str | None = Region,
    park_id: int | None = ParkId,
) -> Any:
    """Every dashboard figure in one call, for regulators (their province or city), park managers (their park)
    and admins (national): KPI cards (generated, utilised, the NBS utilisation rate, the bulk rate against the
    57% target, the projected rate if pending exchange tonnes are delivered, CO2 avoided, exchange deliveries)
    and the tables behind the charts. `context` gives the surrounding regions' rates; those outside your
    jurisdiction follow the public disclosure rule.

    Rate = utilised ÷ (generated + prior-year stock utilised) (NBS, 综合利用率)."""
    scope, period = _scope_period(session, user, period_from, period_to, region, park_id)
    d = service.dashboard(session, scope, period, own=service.own_scope(session, user), cache=cache)
    return {"scope": _scope_json(scope, period), "kpis": d.kpis, "tables": d.tables}


@router.get("/stats/tables/{name}", response_model=TableOut, responses=FILE_RESPONSES)
def stats_table(
    name: Annotated[str, Path(description="one of: " + ", ".join(service.TABLES))],
    session: SessionDep,
    user: CurrentUser,
    period_from: str | None = PeriodFrom,
    period_to: str | None = PeriodTo,
    region: str | None = Region,
    park_id: int | None = ParkId,
    format: Format = Query(default="json", description="json, csv or xlsx"),
) -> Any:
    """One dashboard table as JSON, CSV or XLSX: kpis (the KPI cards as one row), materials, categories,
    trend_month, trend_year, regions, laggards_city, laggards_park, laggards_enterprise, stranded, flows, context."""
    scope, period = _scope_period(session, user, period_from, period_to, region, park_id)
    rows = service.table(session, scope, period, name, own=service.own_scope(session, user))
    return rows_response(rows, name, format, {"scope": _scope_json(scope, period), "table": name})


@router.get("/stats/boundaries")
def boundaries(
    level: Literal["province", "city"] = "province",
    province_code: str | None = Query(default=None, pattern=r"^\d{2}0000$"),
) -> JSONResponse:
    """Simplified administrative boundaries (GeoJSON, properties adcode/name/name_en) for the choropleth maps:
    every province, or the cities of one province. Shipped in data/places; no map tiles."""
    from exchange.reference.places import boundaries_geojson

    return JSONResponse(boundaries_geojson(level, province_code), headers={"Cache-Control": "public, max-age=86400"})


def public_rows(table: service.PublicTable, names: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in [service.TOTAL, *table.provinces]:
        for m in [service.TOTAL, *table.materials]:
            c = table.cells.get((p, m), {"status": "empty"})
            rows.append(
                {
                    "province_code": "" if p == service.TOTAL else p,
                    "province": names.get(p, p) if p != service.TOTAL else "全国 (national)",
                    "material_code": "" if m == service.TOTAL else m,
                    "status": c["status"],
                    "generated_t": c.get("generated_t"),
                    "utilised_t": c.get("utilised_t"),
                    "utilisation_rate": c.get("utilisation_rate"),
                }
            )
    return rows


def province_names(codes: list[str]) -> dict[str, str]:
    from exchange.reference.places import load_divisions

    divs = load_divisions()
    names = {p: (d.name_zh if (d := divs.get(p)) else p) for p in codes}
    if service.NO_PROVINCE in names:
        names[service.NO_PROVINCE] = "未注明地区 (no province given)"
    return names


@router.get("/public/stats", response_model=PublicOut, responses={200: FILE_RESPONSES[200]})
def public_stats(
    session: SessionDep,
    cache: FigureCacheDep,
    year: int | None = Query(default=None, ge=2000, le=2100, description="default: the latest year on file"),
    format: Format = Query(default="json", description="json, csv or xlsx"),
) -> Any:
    """Public (no login): bulk industrial solid waste by province and material for a calendar year, with
    national and provincial totals. A cell from fewer than 3 enterprises or where one enterprise makes up more
    than 85% of the generation or of the utilisation is suppressed (status "primary"), and further cells where
    needed so that none can be worked out from the totals (status "secondary"); suppressed cells carry no
    figures."""
    table = service.public_table(session, service.public_period(session, year), cache=cache)
    rows = public_rows(table, province_names(table.provinces))
    meta = {"period_from": table.period.start, "period_to": table.period.end, "target_rate": service.target_rate()}
    return rows_response(rows, "public-stats", format, meta)
