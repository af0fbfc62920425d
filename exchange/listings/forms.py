"""Turning what people type (web forms, spreadsheet cells) into listing fields, and validation errors into our own
messages: English source strings with zh-CN translations in frontend/locales/zh-CN/listings.json, so a field
error reads in the user's language (pydantic's own messages would always be English)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from exchange.core.errors import DomainError


class FieldProblem(Exception):
    """A value that cannot be read; `field` is the form field or spreadsheet column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


FIELD_MESSAGES: dict[str, str] = {
    "kind": "Choose supply or demand",
    "material_code": "Choose a material",
    "quantity_t": "Enter tonnes: a number above 0 with at most 3 decimals",
    "quantity_basis": "Choose per month or one-off",
    "grade": "At most 20 characters",
    "accepted_grades": "List grade codes separated by commas",
    "parameters": "Write parameters as code=value; code=value",
    "price_cny_per_t": "Enter a price in CNY per tonne with at most 2 decimals",
    "price_note": "At most 500 characters",
    "address": "At most 300 characters",
    "lat": "Latitude must be between -90 and 90",
    "lon": "Longitude must be between -180 and 180",
    "max_distance_km": "Enter a distance above 0 and at most 5000 km",
    "notes": "At most 2000 characters",
    "visibility": "Choose public, park only or anonymous",
    "available_from": "Enter a date as YYYY-MM-DD",
    "available_to": "Enter a date as YYYY-MM-DD",
    "version": "Reload the page and try again",
}
# ListingFields' model validator messages → (field, our message)
MODEL_MESSAGES: dict[str, tuple[str, str]] = {
    "the availability window ends before it starts": ("available_to", "The availability window ends before it starts"),
    "give both latitude and longitude, or neither": ("lat", "Give both latitude and longitude, or neither"),
}


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """[(field, message)] in our own words, one per problem."""
    out: list[tuple[str, str]] = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        if field and e["type"] == "extra_forbidden":
            out.append((field, "Unknown field"))
        elif field:
            out.append((field, FIELD_MESSAGES.get(field, "Invalid value")))
        else:
            text = str((e.get("ctx") or {}).get("error", e["msg"]))
            out.append(MODEL_MESSAGES.get(text, ("__all__", "Invalid value")))
    return out


def form_errors(exc: Exception) -> dict[str, str]:
    """{field: message} for a web form (the first problem of each field)."""
    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for field, message in validation_errors(exc):
            out.setdefault(field, message)
        return out
    if isinstance(exc, FieldProblem):
        return {exc.field: exc.message}
    if isinstance(exc, DomainError):
        return {exc.field or "__all__": exc.detail}
    return {"__all__": str(exc)}


# ---------------------------------------------------------------- reading typed text

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
DATE_TEXT = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def parse_number(field: str, text: str) -> Decimal:
    """A plain decimal number ("1,200.5" and full-width commas allowed); never an expression."""
    cleaned = text.strip().replace(",", "").replace("，", "")
    if cleaned.startswith(("=", "@")):
        raise FieldProblem(field, "Formulas are not accepted: enter the value itself")
    if not NUMBER.match(cleaned):
        raise FieldProblem(field, "Not a number")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise FieldProblem(field, "Not a number") from None


def parse_date(field: str, text: str) -> date:
    m = DATE_TEXT.match(text.strip())
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
    raise FieldProblem(field, "Enter a date as YYYY-MM-DD")


def split_list(text: str) -> list[str]:
    """Grade codes separated by commas, semicolons, 、 or spaces."""
    return [p.strip() for p in re.split(r"[;,，；、\s]+", text) if p.strip()]


def parse_parameters(field: str, text: str) -> dict[str, float]:
    """ "loi=4.5; moisture=0.8" (or with colons, Chinese punctuation) → {"loi": 4.5, "moisture": 0.8}."""
    out: dict[str, float] = {}
    for part in re.split(r"[;；,，]+", text):
        if not part.strip():
            continue
        key, sep, raw = part.partition("=") if "=" in part else part.partition(":")
        if not sep or not key.strip():
            raise FieldProblem(field, "Write parameters as code=value; code=value")
        try:
            out[key.strip()] = float(parse_number(field, raw))
        except FieldProblem:
            raise FieldProblem(field, "Write parameters as code=value; code=value") from None
    return out


FORM_FIELDS = (
    "kind",
    "material_code",
    "quantity_t",
    "quantity_basis",
    "grade",
    "accepted_grades",
    "parameters",
    "available_from",
    "available_to",
    "price_cny_per_t",
    "price_note",
    "address",
    "lat",
    "lon",
    "max_distance_km",
    "visibility",
    "notes",
)
DECIMAL_FIELDS = frozenset({"quantity_t", "price_cny_per_t"})
FLOAT_FIELDS = frozenset({"lat", "lon", "max_distance_km"})
DATE_FIELDS = frozenset({"available_from", "available_to"})


def parse_listing_form(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A posted listing form → (values for ListingCreate/ListingUpdate, {field: error}). Empty fields are None."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in FORM_FIELDS:
        raw = form.get(name)
        text = raw.strip() if isinstance(raw, str) else ""
        try:
            if not text:
                values[name] = [] if name == "accepted_grades" else {} if name == "parameters" else None
            elif name in DECIMAL_FIELDS:
                values[name] = parse_number(name, text)
            elif name in FLOAT_FIELDS:
                values[name] = float(parse_number(name, text))
            elif name in DATE_FIELDS:
                values[name] = parse_date(name, text)
            elif name == "accepted_grades":
                values[name] = split_list(text)
            elif name == "parameters":
                values[name] = parse_parameters(name, text)
            else:
                values[name] = text
        except FieldProblem as p:
            errors[p.field] = p.message
    return values, errors


def form_text(name: str, value: Any) -> str:
    """A stored value as the form shows it (the inverse of parse_listing_form)."""
    if value is None:
        return ""
    if name == "accepted_grades":
        return ", ".join(value)
    if name == "parameters":
        return "; ".join(f"{k}={v:g}" for k, v in value.items())
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)
