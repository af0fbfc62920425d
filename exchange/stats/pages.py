"""The statistics dashboard (/stats: regulators, park managers, admins) and the public page (/public/stats)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import select

from exchange.core.deps import CurrentUser, SessionDep
from exchange.core.errors import Unprocessable
from exchange.core.i18n import request_locale
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.reference.places import load_divisions
from exchange.stats import export, service
from exchange.stats.api import _scope_json, province_names, public_rows
from exchange.stats.cache import FigureCacheDep

router = APIRouter(include_in_schema=False)


def _names(locale: str) -> dict[str, dict[str, str]]:
    cat = load_catalogue()
    zh = locale == "zh-CN"
    return {
        "materials": {m.code: (m.name_zh if zh else m.name_en) for m in cat.materials},
        "industries": {i.code: (i.name_zh if zh else i.name_en) for i in cat.industries},
    }


def _none_if_blank(v: str | None) -> str | None:
    return v.strip() or None if v else None


@router.get("/stats", response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cache: FigureCacheDep,
    period_from: str | None = Query(default=None),
    period_to: str | None = Query(default=None),
    region: str | None = Query(default=None),
    park_id: str | None = Query(default=None),
) -> Response:
    pf, pt, rg = _none_if_blank(period_from), _none_if_blank(period_to), _none_if_blank(region)
    pk = int(park_id) if park_id and park_id.strip().isdigit() else None
    pf = pf if pf and re.fullmatch(service.PERIOD_RE, pf) else None
    pt = pt if pt and re.fullmatch(service.PERIOD_RE, pt) else None
    if rg and not re.fullmatch(r"\d{6}", rg):
        raise Unprocessable("a region is a 6-digit GB/T 2260 code", field="region")
    own = service.own_scope(session, user)
    scope = service.scope_for(session, user, region=rg, park_id=pk)
    period = service.period_for(session, scope, pf, pt)
    d = service.dashboard(session, scope, period, own=own, cache=cache)
    locale = request_locale(request, request.app.state.settings.default_locale)
    params = {"period_from": period.start, "period_to": period.end}
    if rg:
        params["region"] = rg
    if pk is not None:
        params["park_id"] = str(pk)
    parks_q = select(Park)
    if scope.level == "province":
        parks_q = parks_q.where(Park.province_code == scope.code)
    elif scope.level in ("city", "park"):
        parks_q = parks_q.where(Park.city_code == scope.code)
    parks = session.exec(parks_q.order_by(Park.name)).all() if own.level != "park" else []
    data = {"scope": _scope_json(scope, period), "kpis": d.kpis, "tables": d.tables, "names": _names(locale)}
    return render_page(
        request,
        "stats/dashboard.html",
        d=d,
        scope=scope,
        period=period,
        query=urlencode(params),
        data_json=json.dumps(export.jsonable(data), ensure_ascii=False).replace("</", "<\\/"),
        names=_names(locale),
        parks=parks,
        region=rg or "",
        park_id=pk,
        scope_name=_scope_name(session, scope),
        regions=_region_options(own),
        own=own,
    )


def _region_options(own: service.Scope) -> list[tuple[str, str]]:
    """The regions a viewer may narrow to: provinces (national), the cities of their province."""
    divs = load_divisions()
    if own.level == "national":
        return [(d.code, d.name_zh) for d in divs.provinces()]
    if own.level == "province" and own.code:
        return [(own.code, _division_name(own.code))] + [(d.code, d.name_zh) for d in divs.cities(own.code)]
    return []


def _division_name(code: str) -> str:
    d = load_divisions().get(code)
    return d.name_zh if d else code


def _scope_name(session: Any, scope: service.Scope) -> str:
    if scope.level == "national":
        return "全国"
    if scope.level == "park":
        park = session.get(Park, scope.park_id)
        return park.name if park else str(scope.park_id)
    d = load_divisions().get(scope.code or "")
    return d.name_zh if d else str(scope.code)


def render_page(request: Request, template: str, **ctx: Any) -> Response:
    """Both pages write the formula out, with the bulk materials and the sources from the catalogue."""
    from exchange.core.web import render

    cat = load_catalogue()
    definition = cat.utilisation_rate_definition
    return render(
        request,
        template,
        target=service.target_rate(),
        definition=definition,
        bulk_materials=cat.bulk_materials(),
        rate_source=cat.sources.get(definition.source),
        target_source=cat.sources.get(cat.target_bulk_utilisation.source or ""),
        **ctx,
    )


@router.get("/public/stats", response_class=HTMLResponse)
def public_page(
    request: Request, session: SessionDep, cache: FigureCacheDep, year: str | None = Query(default=None)
) -> Response:
    y = int(year) if year and year.isdigit() and 2000 <= int(year) <= 2100 else None
    table = service.public_table(session, service.public_period(session, y), cache=cache)
    names = province_names(table.provinces)
    locale = request_locale(request, request.app.state.settings.default_locale)
    rows = public_rows(table, names)
    data = {
        "map": [
            {"region_code": p, "name_zh": names[p], **table.cells.get((p, service.TOTAL), {"status": "empty"})}
            for p in table.provinces
        ],
        "target_rate": service.target_rate(),
    }
    return render_page(
        request,
        "stats/public.html",
        table=table,
        rows=rows,
        province_names=names,
        names=_names(locale),
        total=service.TOTAL,
        year=table.period.start[:4],
        data_json=json.dumps(export.jsonable(data), ensure_ascii=False).replace("</", "<\\/"),
    )
