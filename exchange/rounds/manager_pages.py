"""The park manager's round pages: list, new round with preview, progress, report, review, publish, audit."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
