"""The enterprises' pages: my proposals (accept, decline), agreements, deliveries, notifications."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
