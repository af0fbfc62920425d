"""A round's table as CSV or XLSX, safe to open in a spreadsheet.

Enterprise names and free text come from users: a cell starting with = + - @ (or a tab / carriage return) would
run as a formula in Excel, LibreOffice or WPS (CSV injection, OWASP). Such text cells get a leading apostrophe;
numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

COLUMNS: tuple[tuple[str, str], ...] = (
    ("supply_listing_id", "supply_listing_id"),
    ("supplier", "supplier"),
    ("demand_listing_id", "demand_listing_id"),
    ("consumer", "consumer"),
    ("material_code", "material_code"),
    ("material", "material"),
    ("quantity_t", "quantity_t"),
    ("agreed_t", "agreed_t"),
    ("pinned", "pinned"),
    ("distance_km", "distance_km"),
    ("transport_cost_cny", "transport_cost_cny"),
    ("co2_transport_t", "co2_transport_t"),
    ("proposal_state", "proposal_state"),
)


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would evaluate becomes literal text; everything else is left as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def jsonable(value: Any) -> Any:
    """Decimals as strings (exact tonnes and CNY, as the rest of the API speaks them), recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return neutralise(value)


def table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = [title for _key, title in COLUMNS]
    return header, [[_cell(r.get(key)) for key, _title in COLUMNS] for r in rows]


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    header, body = table(rows)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for r in body:
        w.writerow(r)
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8 (Chinese names) correctly


def to_xlsx(rows: Sequence[dict[str, Any]], sheet: str = "round") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    header, body = table(rows)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    ws.append(header)
    for r in body:
        cells = []
        for v in r:
            if isinstance(v, Decimal):
                v = float(v)  # 3-decimal tonnes and 2-decimal CNY round-trip exactly as displayed
            cell = WriteOnlyCell(ws, value=v)
            if isinstance(v, str):
                cell.data_type = "s"  # never a formula, whatever the text
            cells.append(cell)
        ws.append(cells)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
