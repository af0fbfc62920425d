"""Integers that name rows (ids, run numbers) and offsets, as path, query and body parameters.

Ids are `integer` columns (32-bit on PostgreSQL), and SQLite cannot even bind an integer beyond 64 bits (Python
raises OverflowError: a 500). Bounding them where the request is parsed answers 422 naming the parameter, and
shows the range in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ID = 2**31 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
IdQueryRequired = Annotated[int, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
IdField = Annotated[int, Field(ge=1, le=MAX_ID)]

# A month, YYYY-MM, in the years 1900-2099: ledgers and rounds never need more, and a year such as 0000 or 9999
# would only reach `datetime.date` and fail there (a 500) instead of here (a 422 naming the field).
PERIOD_PATTERN = r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"
