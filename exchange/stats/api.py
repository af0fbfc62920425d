"""Statistics API: the dashboard's figures for regulators and park managers (within their jurisdiction), the
public disclosure-controlled table, boundaries for the maps, and CSV/XLSX exports of every table."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from exchange.core.deps import CurrentUser, SessionDep
from exchange.stats import export, service
from exchange.stats.service import PERIOD_RE

router = APIRouter(prefix="/api/v1", tags=["statistics"])

Format = Literal["json", "csv", "xlsx"]


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


def rows_response(rows: list[dict[str, Any]], name: str, fmt: Format, meta: dict[str, Any] | None = None) -> Response:
    if fmt == "csv":
        return Response(
            export.to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            export.to_xlsx(rows, sheet=name),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return JSONResponse(export.jsonable({**(meta or {}), "rows": rows}))


@router.get("/stats/dashboard")
def dashboard(
    session: SessionDep,
    user: CurrentUser,
    period_from: str | None = Query(default=None, pattern=PERIOD_RE),
    period_to: str | None = Query(default=None, pattern=PERIOD_RE),
    region: str | None = Query(
        default=None, pattern=r"^\d{6}$", description="a province or city inside your jurisdiction"
    ),
    park_id: int | None = None,
) -> JSONResponse:
    """Every dashboard figure in one call: KPI cards (generated, utilised, NBS rate, bulk rate vs the 57% target,
    projected rate if open proposals are delivered, CO2 avoided, exchange deliveries) and the tables behind the
    charts. Tonnes are decimal strings; rates are fractions (0.57) or null when nothing was generated ("no data")."""
    scope, period = _scope_period(session, user, period_from, period_to, region, park_id)
    d = service.dashboard(session, scope, period)
    return JSONResponse(export.jsonable({"scope": _scope_json(scope, period), "kpis": d.kpis, "tables": d.tables}))


@router.get("/stats/tables/{name}")
def stats_table(
    name: str,
    session: SessionDep,
    user: CurrentUser,
    period_from: str | None = Query(default=None, pattern=PERIOD_RE),
    period_to: str | None = Query(default=None, pattern=PERIOD_RE),
    region: str | None = Query(default=None, pattern=r"^\d{6}$"),
    park_id: int | None = None,
    format: Format = "json",
) -> Response:
    """One table (materials, categories, trend_month, trend_year, regions, laggards_city, laggards_park,
    laggards_enterprise, stranded, flows) as JSON, CSV or XLSX."""
    scope, period = _scope_period(session, user, period_from, period_to, region, park_id)
    rows = service.table(session, scope, period, name)
    return rows_response(rows, name, format, {"scope": _scope_json(scope, period), "table": name})


@router.get("/stats/boundaries")
def boundaries(level: Literal["province", "city"] = "province", province_code: str | None = None) -> JSONResponse:
    """Simplified administrative boundaries (GeoJSON, properties adcode/name/name_en) for the choropleth maps."""
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


@router.get("/public/stats")
def public_stats(
    session: SessionDep, year: int | None = Query(default=None, ge=2000, le=2100), format: Format = "json"
) -> Response:
    """Public (no login): bulk industrial solid waste by province and material, with national and provincial
    totals. Cells from fewer than 3 enterprises or where one enterprise exceeds 85% are suppressed
    (status "primary"), and further cells where needed so that none can be recovered from the totals
    (status "secondary"); suppressed cells carry no figures."""
    from exchange.reference.places import load_divisions

    table = service.public_table(session, service.public_period(session, year))
    divs = load_divisions()
    names = {p: (d.name_zh if (d := divs.get(p)) else p) for p in table.provinces}
    rows = public_rows(table, names)
    meta = {"period_from": table.period.start, "period_to": table.period.end, "target_rate": service.target_rate()}
    return rows_response(rows, "public-stats", format, meta)
