"""Translations: English source strings, looked up in frontend/locales/<locale>.json.

A plain JSON catalogue keyed by the English text needs no extraction or compile step, so every developer
can add a string and its translation in one edit; tests check that every string used in templates has a
zh-CN translation. Each domain keeps its own file, frontend/locales/<locale>/<domain>.json, merged with
frontend/locales/<locale>.json at load.
"""

from __future__ import annotations

import json
from functools import lru_cache

from fastapi import Request

from exchange.settings import REPO_ROOT

LOCALES = ("zh-CN", "en")
LOCALE_DIR = REPO_ROOT / "frontend" / "locales"
LANG_COOKIE = "exchange_lang"


@lru_cache
def catalogue(locale: str) -> dict[str, str]:
    data: dict[str, str] = {}
    paths = [LOCALE_DIR / f"{locale}.json", *sorted((LOCALE_DIR / locale).glob("*.json"))]
    for path in paths:
        if path.exists():
            data.update(json.loads(path.read_text(encoding="utf-8")))
    return data


def translate(locale: str, message: str, **values: object) -> str:
    text = catalogue(locale).get(message, message) if locale != "en" else message
    return text.format(**values) if values else text


def request_locale(request: Request, default: str = "zh-CN") -> str:
    """User preference, then the language cookie, then Accept-Language, then the default (zh-CN)."""
    user = getattr(request.state, "user", None)
    if user is not None and user.locale in LOCALES:
        return str(user.locale)
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LOCALES:
        return str(cookie)
    accept = request.headers.get("accept-language", "").lower()
    if accept.startswith("en"):
        return "en"
    if accept.startswith("zh"):
        return "zh-CN"
    return default
