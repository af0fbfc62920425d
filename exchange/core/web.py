"""Server-rendered pages: the Jinja2 environment and the one render helper every page uses."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from exchange.core.i18n import request_locale, translate
from exchange.settings import REPO_ROOT

_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(Environment):
    """`form.kind` on a dict: Jinja tries the attribute first and falls back to the item after an AttributeError.
    Pages look up dict values in loops (a selected option among 340 cities), and the raised-and-caught error was a
    seventh of the app's CPU under load. Same result, item first, unless the name is one of dict's own."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


templates = Jinja2Templates(
    env=_Environment(loader=FileSystemLoader(str(REPO_ROOT / "frontend" / "templates")), autoescape=select_autoescape())
)

# The locale and CSRF token of the page being rendered, so that imported macros (which do not see the
# template's context) can translate and emit the token too.
_page_locale: ContextVar[str] = ContextVar("page_locale", default="zh-CN")
_page_csrf: ContextVar[str] = ContextVar("page_csrf", default="")


def _translate_global(message: str, **values: object) -> str:
    return translate(_page_locale.get(), message, **values)


templates.env.globals["_"] = _translate_global
templates.env.globals["current_csrf"] = lambda: _page_csrf.get()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the user, locale, `_` (translate) and the CSRF token available to the template."""
    locale = request_locale(request, request.app.state.settings.default_locale)
    csrf_token = getattr(request.state, "csrf_token", "")
    context.update(request=request, user=getattr(request.state, "user", None), locale=locale, csrf_token=csrf_token)
    locale_token, csrf_token_token = _page_locale.set(locale), _page_csrf.set(csrf_token)
    try:
        return templates.TemplateResponse(request, template, context, status_code=status_code)
    finally:
        _page_locale.reset(locale_token)
        _page_csrf.reset(csrf_token_token)


def redirect(url: str) -> RedirectResponse:
    """After a successful form post: 303 See Other, so a reload does not post again."""
    return RedirectResponse(url, status_code=303)


def field_errors(exc: Exception) -> dict[str, str]:
    """Turn a pydantic ValidationError or a DomainError into {field: message} for a form."""
    from pydantic import ValidationError

    from exchange.core.errors import DomainError

    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if p != "body"]
            out.setdefault(".".join(loc) or "__all__", err["msg"])
        return out
    if isinstance(exc, DomainError):
        return {exc.field or "__all__": exc.detail}
    return {"__all__": str(exc)}
