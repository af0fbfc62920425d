"""Security headers and the CSRF cookie on every response, as a plain ASGI middleware.

Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the rest of the app in a
task of its own and streams the response through a memory channel, per request and per such middleware; with
two of them that was about a tenth of the app's CPU under load."""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.core.deps import CSRF_COOKIE

# Swagger UI needs an inline bootstrap script; every other page runs with script-src 'self' only.
CSP_PAGES = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
CSP_DOCS = CSP_PAGES.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})


class SecurityHeaders:
    """Gives each request its CSRF token (`request.state.csrf_token`, from the cookie or new) and a cleared
    `request.state.user`; sets the cookie when new, and CSP, nosniff, frame and referrer headers unless the
    response set its own."""

    def __init__(self, app: ASGIApp, *, cookie_secure: bool) -> None:
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = HTTPConnection(scope).cookies.get(CSRF_COOKIE)
        fresh = token is None
        state = scope.setdefault("state", {})
        state["csrf_token"] = token or secrets.token_urlsafe(32)
        state["user"] = None
        csp = CSP_DOCS if scope["path"] in DOCS_PATHS else CSP_PAGES

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if fresh:
                    cookie = Response()
                    cookie.set_cookie(
                        CSRF_COOKIE, state["csrf_token"], httponly=True, samesite="lax", secure=self.cookie_secure
                    )
                    headers.append("set-cookie", cookie.headers["set-cookie"])
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)
