"""Tables as JSON-safe rows, CSV and XLSX: every chart's table view and download use these.

Enterprise and park names come from users: a text cell starting with = + - @ (or a tab / carriage return) would
run as a formula in Excel, LibreOffice or WPS (CSV injection, OWASP). In the downloads such text gets a leading
apostrophe, and XLSX text cells are written as strings, never formulas; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """Decimals as strings (exact tonnes, as the rest of the API speaks them); containers recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would evaluate becomes literal text; everything else is left as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return neutralise(v)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    cols = columns_of(rows)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    return out.getvalue()


def _xlsx_cell(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)  # spreadsheets hold binary floats; 3-decimal tonnes round-trip exactly as displayed
    return _cell(v)


def to_xlsx(rows: Sequence[dict[str, Any]], sheet: str = "data") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    cols = columns_of(rows)
    ws.append(cols)
    for r in rows:
        cells = []
        for c in cols:
            cell = WriteOnlyCell(ws, value=_xlsx_cell(r.get(c)))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text
            cells.append(cell)
        ws.append(cells)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
