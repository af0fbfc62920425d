"""Spreadsheet import of listings: the CSV or XLSX ledgers enterprises already keep.

Every row goes through the same checks as a listing posted through the API (`ListingCreate`, then
`service.prepare_listing`), and every problem is reported by row (as the spreadsheet numbers it: the header is
row 1), column (as the file names it) and reason. Nothing is written until all rows are checked; the good rows
are then written in one transaction — all of them, or none if one is bad and the mode is `all_or_nothing`.

Cells are data, never formulas: XLSX files are read without evaluating anything (a formula cell arrives as its
text and is refused), and a text cell that starts with =, +, -, @ (what a spreadsheet would run as a formula when
the value is exported again) is refused with a message that says so.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from exchange.accounts.models import User
from exchange.core.errors import DomainError, Unprocessable
from exchange.listings import service
from exchange.listings.forms import (
    FieldProblem,
    parse_date,
    parse_number,
    parse_parameters,
    split_list,
    validation_errors,
)
from exchange.listings.models import (
    ImportMode,
    ImportResult,
    ImportRowError,
    Listing,
    ListingCreate,
)
from exchange.reference.catalogue import load_catalogue
from exchange.settings import Settings

MAX_ROWS = 5000  # a ledger of one enterprise; more is a mistake (or a bulk load, which has its own path)
MAX_XLSX_UNPACKED_BYTES = 100 * 1024 * 1024  # an XLSX is a zip: refuse a "zip bomb" before openpyxl unpacks it
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The csv module refuses a cell over 128 KiB with an error that names no column; a cell is never larger than
# the upload limit, so let it be read and refused by its column's own length check instead.
csv.field_size_limit(max(csv.field_size_limit(), 256 * 1024 * 1024))


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class Column:
    code: str
    label_zh: str
    kind: str  # text, decimal, float, date, list, params, choice
    required: bool = False
    help_en: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("kind", "类型", "choice", help_en="supply or demand (default supply)"),
    Column("material_code", "物料", "text", True, "material code or name from the catalogue, e.g. fly_ash"),
    Column("quantity_t", "数量(吨)", "decimal", True, "tonnes, at most 3 decimals"),
    Column("quantity_basis", "数量口径", "choice", help_en="per_month or one_off (default per_month)"),
    Column("grade", "等级", "text", help_en="supply: its grade code, e.g. II"),
    Column("accepted_grades", "可接受等级", "list", help_en="demand: grade codes separated by ; e.g. I;II"),
    Column("parameters", "检测参数", "params", help_en="measured values, e.g. loi=4.5; moisture=0.8"),
    Column("available_from", "起始日期", "date", help_en="YYYY-MM-DD"),
    Column("available_to", "截止日期", "date", help_en="YYYY-MM-DD"),
    Column("price_cny_per_t", "价格(元/吨)", "decimal", help_en="CNY per tonne; negative: the producer pays"),
    Column("price_note", "价格说明", "text", help_en="private: only your enterprise sees it"),
    Column("address", "地址", "text", help_en="empty: your enterprise's address"),
    Column("lat", "纬度", "float", help_en="decimal degrees (with lon)"),
    Column("lon", "经度", "float", help_en="decimal degrees (with lat)"),
    Column("max_distance_km", "最远运距(公里)", "float", help_en="km"),
    Column("visibility", "可见范围", "choice", help_en="public, park or anonymous (default public)"),
    Column("notes", "备注", "text", help_en="free text"),
)
BY_CODE = {c.code: c for c in COLUMNS}

CHOICES: dict[str, dict[str, str]] = {
    "kind": {"supply": "supply", "供应": "supply", "供给": "supply", "demand": "demand", "需求": "demand"},
    "quantity_basis": {
        "per_month": "per_month",
        "每月": "per_month",
        "月": "per_month",
        "one_off": "one_off",
        "一次性": "one_off",
    },
    "visibility": {
        "public": "public",
        "公开": "public",
        "park": "park",
        "园区": "park",
        "园区内": "park",
        "anonymous": "anonymous",
        "匿名": "anonymous",
    },
}
CHOICE_MESSAGES = {
    "kind": "Enter supply or demand",
    "quantity_basis": "Enter per_month or one_off",
    "visibility": "Enter public, park or anonymous",
}


def _norm_header(text: str) -> str:
    text = text.strip().replace("（", "(").replace("）", ")").replace("*", "").strip()
    return re.sub(r"\s+", "", text).lower()


HEADER_ALIASES: dict[str, str] = {}
for _c in COLUMNS:
    HEADER_ALIASES[_norm_header(_c.code)] = _c.code
    HEADER_ALIASES[_norm_header(_c.label_zh)] = _c.code
HEADER_ALIASES.update(
    {
        _norm_header(k): v
        for k, v in {
            "物料代码": "material_code",
            "物料名称": "material_code",
            "material": "material_code",
            "数量": "quantity_t",
            "数量(t)": "quantity_t",
            "quantity": "quantity_t",
            "价格": "price_cny_per_t",
            "price": "price_cny_per_t",
            "latitude": "lat",
            "longitude": "lon",
            "最远距离(公里)": "max_distance_km",
        }.items()
    }
)


# ---------------------------------------------------------------- reading the file


def human_size(n: int) -> str:
    """1 MB and up in MB, else in KB ("256 KB", "10 MB", "1.5 MB")."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    return f"{max(n / 1024, 1):.3g} KB"


def check_size(content: bytes, settings: Settings | None) -> None:
    """Refuse a file over the upload limit (413) or with nothing in it (422)."""
    limit = settings.max_upload_bytes if settings else 10 * 1024 * 1024
    if len(content) > limit:
        raise PayloadTooLarge(f"The file is larger than {human_size(limit)}; split it into smaller files", field="file")
    if not content.strip() or not content.lstrip(b"\xef\xbb\xbf\xff\xfe\x00\r\n\t ").strip():
        raise Unprocessable("The file is empty", field="file")


def decode_csv(content: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), UTF-16 with BOM, else GB18030 (a superset of GBK/GB2312,
    what Excel on Chinese Windows saves as "CSV")."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            raise Unprocessable(
                "The file starts as UTF-16 text but is not; save it as CSV UTF-8", field="file"
            ) from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise Unprocessable("The CSV file is neither UTF-8 nor GBK text; save it as CSV UTF-8", field="file") from None


def _csv_rows(content: bytes) -> list[list[Any]]:
    text = decode_csv(content)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count) if first else ","
    rows: list[list[Any]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            rows.append(list(row))
            if len(rows) > MAX_ROWS + 1:
                break
    except csv.Error:
        raise Unprocessable(
            f"The CSV file cannot be read at line {reader.line_num}; save it again as CSV UTF-8", field="file"
        ) from None
    return rows


def _xlsx_rows(content: bytes) -> list[list[Any]]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except Exception:  # noqa: BLE001 - BadZipFile, and NotImplementedError for a corrupt "version needed" field
        raise Unprocessable("The file is not a readable XLSX workbook", field="file") from None
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise PayloadTooLarge("The workbook is too large when unpacked; split it into smaller files", field="file")
    from openpyxl import load_workbook

    try:
        # data_only=False: a formula arrives as its text ("=A1*2") and is refused; nothing is ever evaluated.
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds of errors on a broken file
        raise Unprocessable("The file is not a readable XLSX workbook", field="file") from None
    try:
        if not wb.worksheets:
            raise Unprocessable("The workbook has no sheet", field="file")
        rows: list[list[Any]] = []
        try:
            for row in wb.worksheets[0].iter_rows(values_only=True):
                rows.append(list(row))
                if len(rows) > MAX_ROWS + 1:
                    break
        except Exception:  # noqa: BLE001 - a cell openpyxl cannot parse (a number stored as "nan", broken XML)
            raise Unprocessable(
                f"Row {len(rows) + 1} of the workbook cannot be read; save the file again as .xlsx", field="file"
            ) from None
    finally:
        wb.close()
    return rows


def read_rows(filename: str, content: bytes) -> list[list[Any]]:
    """The first sheet (or the CSV) as lists of cells, header first; the format is told by content, then name."""
    name = filename.lower().strip()
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise Unprocessable("Old .xls workbooks are not supported; save the file as .xlsx or CSV", field="file")
    if content.startswith(b"PK\x03\x04") or name.endswith((".xlsx", ".xlsm")):
        return _xlsx_rows(content)
    if name.endswith((".csv", ".txt", ".tsv")) or "." not in name:
        return _csv_rows(content)
    raise Unprocessable("Upload a .csv or .xlsx file", field="file")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ---------------------------------------------------------------- cells


def _text(column: str, value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if value.startswith(FORMULA_STARTS) or text.startswith(FORMULA_STARTS):
            raise FieldProblem(
                column, "Formulas are not accepted: the cell starts with =, +, - or @; enter the value as text"
            )
        return text
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise FieldProblem(column, "Formulas are not accepted: enter the value itself")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(column: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise FieldProblem(column, "Not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise FieldProblem(column, "Formulas are not accepted: enter the value itself")
    return parse_number(column, value)


def _date(column: str, value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_date(column, _text(column, value))


def _material_code(column: str, value: Any) -> str:
    text = _text(column, value)
    cat = load_catalogue()
    if cat.find(text) is not None:
        return text
    folded = text.casefold()
    for m in cat.materials:
        if folded in (m.name_zh.casefold(), m.name_en.casefold(), m.code.casefold()):
            return m.code
    return text  # service.check_refinements reports the unknown material


def _cell(col: Column, header: str, value: Any) -> Any:
    if col.code == "material_code":
        return _material_code(header, value)
    if col.kind == "decimal":
        return _number(header, value)
    if col.kind == "float":
        return float(_number(header, value))
    if col.kind == "date":
        return _date(header, value)
    if col.kind == "list":
        return split_list(_text(header, value))
    if col.kind == "params":
        return parse_parameters(header, _text(header, value))
    if col.kind == "choice":
        text = _text(header, value)
        choice = CHOICES[col.code].get(text.lower()) or CHOICES[col.code].get(text)
        if choice is None:
            raise FieldProblem(header, CHOICE_MESSAGES[col.code])
        return choice
    return _text(header, value)


# ---------------------------------------------------------------- checking


@dataclass
class Checked:
    errors: list[ImportRowError]
    listings: list[Listing]
    header_ok: bool


def _header(cells: Sequence[Any]) -> tuple[dict[int, str], dict[str, str], list[ImportRowError]]:
    """{cell index: column code}, {column code: header as written}, and the header's problems."""
    index: dict[int, str] = {}
    names: dict[str, str] = {}
    errors: list[ImportRowError] = []
    for i, raw in enumerate(cells):
        if _blank(raw):
            continue
        written = str(raw).strip()
        code = HEADER_ALIASES.get(_norm_header(written))
        if code is None:
            errors.append(ImportRowError(row=1, column=written, message="Unknown column"))
        elif code in names:
            errors.append(ImportRowError(row=1, column=written, message="This column appears twice"))
        else:
            index[i] = code
            names[code] = written
    for col in COLUMNS:
        if col.required and col.code not in names:
            errors.append(ImportRowError(row=1, column=col.code, message="Required column is missing"))
    return index, names, errors


NO_HEADER = "This column has no header: add it or remove the value"


def column_letter(index: int) -> str:
    """The spreadsheet's name of the column at this 0-based index (A, B, ..., Z, AA, ...)."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1) if index < 18278 else str(index + 1)


def _row_values(
    row_no: int, cells: Sequence[Any], index: dict[int, str], names: dict[str, str]
) -> tuple[dict[str, Any], list[ImportRowError]]:
    values: dict[str, Any] = {}
    errors: list[ImportRowError] = []
    for i, raw in enumerate(cells):
        if i not in index and not _blank(raw):
            errors.append(ImportRowError(row=row_no, column=column_letter(i), message=NO_HEADER))
    for i, code in index.items():
        raw = cells[i] if i < len(cells) else None
        if _blank(raw):
            continue
        try:
            values[code] = _cell(BY_CODE[code], names[code], raw)
        except FieldProblem as p:
            errors.append(ImportRowError(row=row_no, column=p.field, message=p.message))
    for col in COLUMNS:
        if col.required and col.code not in values and not any(e.column == names.get(col.code) for e in errors):
            errors.append(ImportRowError(row=row_no, column=names.get(col.code, col.code), message="Required value"))
    return values, errors


def _validation_errors(row_no: int, exc: ValidationError, names: dict[str, str]) -> list[ImportRowError]:
    return [
        ImportRowError(row=row_no, column=names.get(field, None if field == "__all__" else field), message=message)
        for field, message in validation_errors(exc)
    ]


def check_rows(session: Session, user: User, rows: Sequence[Sequence[Any]], settings: Settings | None) -> Checked:
    """Every row checked as the API checks a new listing; returns the problems and the prepared (unsaved) rows."""
    if not rows or all(_blank(c) for c in rows[0]):
        return Checked([ImportRowError(row=1, column=None, message="The file has no header row")], [], False)
    index, names, errors = _header(rows[0])
    if errors:
        return Checked(errors, [], False)
    data_rows = [(n, r) for n, r in enumerate(rows[1:], start=2) if not all(_blank(c) for c in r)]
    if not data_rows:
        return Checked([ImportRowError(row=2, column=None, message="The file has no data rows")], [], False)
    if len(rows) > MAX_ROWS + 1:
        message = f"At most {MAX_ROWS} rows can be imported at once; split the file"
        return Checked([ImportRowError(row=MAX_ROWS + 2, column=None, message=message)], [], False)
    enterprise = service.poster_enterprise(session, user)
    prepared: list[Listing] = []
    for row_no, cells in data_rows:
        values, row_errors = _row_values(row_no, cells, index, names)
        if row_errors:
            errors.extend(row_errors)
            continue
        try:
            data = ListingCreate.model_validate(values)
            prepared.append(service.prepare_listing(enterprise, user, data, settings))
        except ValidationError as exc:
            errors.extend(_validation_errors(row_no, exc, names))
        except Unprocessable as exc:
            column = names.get(exc.field or "", exc.field) if exc.field else None
            errors.append(ImportRowError(row=row_no, column=column, message=exc.detail))
    return Checked(errors, prepared, True)


def import_listings(
    session: Session, user: User, filename: str, content: bytes, mode: ImportMode, settings: Settings | None
) -> ImportResult:
    """Check the whole file, then write: nothing if any row is bad in `all_or_nothing` mode (or if the header is
    wrong), else the good rows — in one transaction either way."""
    if mode not in ("all_or_nothing", "valid_rows"):
        raise Unprocessable("Choose all_or_nothing or valid_rows", field="mode")
    check_size(content, settings)
    checked = check_rows(session, user, read_rows(filename, content), settings)
    write = checked.header_ok and (not checked.errors or mode == "valid_rows")
    if not write or not checked.listings:
        session.rollback()
        return ImportResult(created=0, errors=checked.errors)
    try:
        for listing in checked.listings:
            service.insert_listing(session, listing, user, "imported")
        session.commit()
    except Exception:
        session.rollback()
        raise
    ids = [listing.id for listing in checked.listings if listing.id is not None]
    return ImportResult(created=len(ids), errors=checked.errors, ids=ids)


def _where(e: ImportRowError) -> str:
    return f"row {e.row}" + (f", column {e.column}" if e.column else "")


def summary(result: ImportResult) -> str:
    """One sentence for the API's `detail` and the page's notice."""
    n = len(result.errors)
    first = f" (first: {_where(result.errors[0])}: {result.errors[0].message})" if result.errors else ""
    if result.created == 0:
        if n == 0:
            return "Nothing was imported: the file has no data rows"
        return f"Nothing was imported: {n} problem{'s' if n != 1 else ''} in the file{first}"
    imported = f"Imported {result.created} listing{'s' if result.created != 1 else ''}"
    if n == 0:
        return imported
    return f"{imported}; {n} problem{'s' if n != 1 else ''} in rows that were skipped{first}"


# ---------------------------------------------------------------- the template

EXAMPLE_ROWS: tuple[dict[str, Any], ...] = (
    {
        "kind": "supply",
        "material_code": "fly_ash",
        "quantity_t": Decimal("1200"),
        "quantity_basis": "per_month",
        "grade": "II",
        "parameters": "loi=4.5; moisture=0.8",
        "price_cny_per_t": Decimal("-20"),
        "address": "河北省邯郸市",
        "max_distance_km": 150,
        "visibility": "public",
        "notes": "干灰,罐车自提",
    },
    {
        "kind": "demand",
        "material_code": "fly_ash",
        "quantity_t": Decimal("500"),
        "quantity_basis": "one_off",
        "accepted_grades": "I;II",
        "available_from": date(2025, 1, 1),
        "available_to": date(2025, 12, 31),
        "visibility": "anonymous",
    },
)


def template_rows() -> list[list[Any]]:
    rows: list[list[Any]] = [[c.code for c in COLUMNS]]
    for example in EXAMPLE_ROWS:
        rows.append([example.get(c.code) for c in COLUMNS])
    return rows


def template_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in template_rows():
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, date) else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel open it as UTF-8


def template_xlsx() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "listings"
    for row in template_rows():
        ws.append([float(v) if isinstance(v, Decimal) else v for v in row])
    for cell in ws[1]:
        cell.number_format = "@"
    help_sheet = wb.create_sheet("help 说明")
    help_sheet.append(["column", "列", "required 必填", "meaning"])
    for c in COLUMNS:
        help_sheet.append([c.code, c.label_zh, "yes 是" if c.required else "", c.help_en])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def template_response(fmt: str) -> Response:
    if fmt == "csv":
        body, media, name = template_csv(), "text/csv; charset=utf-8", "listings-template.csv"
    elif fmt == "xlsx":
        body, media, name = template_xlsx(), XLSX_TYPE, "listings-template.xlsx"
    else:
        raise Unprocessable("The template comes as csv or xlsx", field="format")
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def column_help() -> Iterable[Column]:
    return COLUMNS
