"""Typed domain errors that carry their HTTP status; one handler renders them for the API and the pages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field as PField


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"


class ErrorBody(BaseModel):
    """The body of every error the API answers (4xx, and the 503 of an unreachable database): one shape, so a
    client reads `detail` (and `field`) whatever went wrong. FastAPI's own 422 shape is never sent."""

    error: str = PField(description="a stable code: invalid_input, not_found, forbidden, conflict, ...")
    detail: str = PField(description="what went wrong, in a sentence")
    field: str | None = PField(default=None, description="the field or column at fault, when there is one")
    errors: list[dict[str, Any]] | None = PField(
        default=None, description="every problem (invalid_input: field and message; imports: row, column, message)"
    )
