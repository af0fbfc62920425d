"""create_app(): routers, templates, static files, security headers, error handlers."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from http import HTTPStatus
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import exchange
from exchange.core.db import get_engine
from exchange.core.dbfaults import DatabaseFaultMiddleware, classify
from exchange.core.denied import DENIED_STATUSES, record_denied
from exchange.core.deps import SESSION_COOKIE, csrf_protect
from exchange.core.errors import DomainError, ErrorBody
from exchange.core.headers import SecurityHeaders
from exchange.core.idempotency import IdempotencyMiddleware
from exchange.core.inflight import InFlightLimit
from exchange.core.ratelimit import RateLimitMiddleware
from exchange.settings import REPO_ROOT, Settings, get_settings
from exchange.stats.cache import FigureCache

log = logging.getLogger(__name__)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def domain_routers() -> list[APIRouter]:
    """Every domain package may provide `api.router` (JSON) and `pages.router` (HTML); include them all."""
    routers: list[APIRouter] = []
    for pkg in sorted(pkgutil.iter_modules(exchange.__path__), key=lambda m: m.name):
        if not pkg.ispkg:
            continue
        for part in ("api", "pages"):
            name = f"exchange.{pkg.name}.{part}"
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue
                raise
            routers.append(module.router)
    return routers


def document_errors(app: FastAPI) -> None:
    """Describe the error body the handlers below really send (`ErrorBody`) in the OpenAPI schema: for every
    operation's 4xx answers, replacing FastAPI's own 422 shape, which this app never sends."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    content = {"application/json": {"schema": ref}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for code, response in responses.items():
                    if code.startswith("4"):
                        response["content"] = content
                responses.setdefault("4XX", {"description": "an error (see `detail`)", "content": content})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Industrial solid-waste and renewable-resource exchange",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        description="Listings, optimal matching rounds and utilisation statistics. "
        "Authenticate machine clients with `Authorization: Bearer <token>` (create a token on your account page).",
    )
    document_errors(app)
    app.state.settings = settings
    app.state.engine = get_engine(settings.database_url)
    app.state.stats_cache = FigureCache(settings.stats_cache_seconds)

    # Innermost (added first): sees the rendered response of every POST /api/ route, after the rate limit.
    app.add_middleware(IdempotencyMiddleware, engine=app.state.engine)
    # Around it: a database fault inside the idempotency middleware answers 503/507, not a bare 500.
    app.add_middleware(DatabaseFaultMiddleware)

    # Around those: the per-client budget (429), then the security headers and CSRF cookie on every answer.
    app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute, engine=app.state.engine)
    app.add_middleware(SecurityHeaders, cookie_secure=settings.cookie_secure)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        body: dict[str, object] = {"error": exc.code, "detail": exc.detail}
        if exc.field:
            body["field"] = exc.field
        if exc.status in DENIED_STATUSES:
            user = getattr(request.state, "user", None)
            has_bearer = request.headers.get("authorization", "")[:7].lower() == "bearer "
            await run_in_threadpool(
                record_denied,
                app.state.engine,
                method=request.method,
                path=request.url.path,
                status=exc.status,
                actor_id=getattr(user, "id", None),
                client=request.client.host if request.client else None,
                reason=exc.code,
                credential="bearer" if has_bearer else "session" if SESSION_COOKIE in request.cookies else None,
            )
        if wants_json(request):
            return JSONResponse(body, status_code=exc.status)
        from exchange.core.web import render

        return render(request, "error.html", status_code=exc.status, error=exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return JSONResponse({"error": "invalid_input", "detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Starlette's own errors (a body that is not JSON, an unknown path, a wrong method) in the API's shape."""
        if not wants_json(request):
            return await http_exception_handler(request, exc)
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DBAPIError)
    async def database_fault(request: Request, exc: DBAPIError | PoolTimeout) -> Response:
        """Unreachable, restarting, read-only or full database: a clear 503/507 (see core/dbfaults.py)."""
        fault = classify(exc)
        if fault is None:
            raise exc
        log.warning("database fault (%s): %s", fault.code, exc)
        return JSONResponse(fault.body(), status_code=fault.status, headers=fault.headers())

    static_dir = REPO_ROOT / "frontend" / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Exchange API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with app.state.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    for router in domain_routers():
        app.include_router(router, dependencies=[Depends(csrf_protect)])
    # Outermost (added last): requests beyond the limit wait here, before they take a thread or a connection.
    app.add_middleware(InFlightLimit)
    return app


def serving_app() -> FastAPI:
    """The app as `exchange serve` runs it in each worker: `create_app` plus the start-up in core/runtime.py
    (reference data loaded, templates compiled, the start-up heap frozen out of the garbage collector)."""
    from exchange.core.runtime import serving_lifespan

    app = create_app()
    app.router.lifespan_context = serving_lifespan
    return app
