"""Spreadsheet import: encodings, XLSX, formula injection, all-or-nothing and valid-rows, size limit, header checks."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlmodel import Session, func, select

from exchange.listings.models import Listing, ListingChange
from exchange.settings import Settings
from tests.exchange.listings.conftest import World
from tests.factories import csrf

URL = "/api/v1/listings/import"
GOOD_CSV = (
    "类型,物料,数量(吨),等级,价格(元/吨),地址,备注\n"
    "供应,粉煤灰,1200.5,II,-20,河北省邯郸市峰峰矿区,干灰\n"
    "demand,fly_ash,300,,,山东省济南市,\n"
)


def upload(client: TestClient, world: World, name: str, content: bytes, mode: str = "all_or_nothing") -> Any:
    return client.post(URL, files={"file": (name, content)}, data={"mode": mode}, headers=world.owner.headers)


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Listing)).one())


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_gbk_csv_with_chinese_headers_imports(client: TestClient, world: World, session: Session) -> None:
    r = upload(client, world, "台账.csv", GOOD_CSV.encode("gbk"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2 and body["errors"] == [] and len(body["ids"]) == 2
    supply = session.get(Listing, body["ids"][0])
    demand = session.get(Listing, body["ids"][1])
    assert supply is not None and demand is not None
    assert supply.quantity_kg == 1_200_500 and supply.grade == "II" and supply.price_fen_per_t == -2000
    assert supply.county_code == "130406" and supply.notes == "干灰"  # 峰峰矿区, geocoded offline
    assert demand.kind.value == "demand" and demand.province_code == "370000"
    changes = session.exec(select(ListingChange).where(ListingChange.listing_id == supply.id)).all()
    assert [c.action for c in changes] == ["imported"] and changes[0].user_id == world.owner.user.id


def test_utf8_with_bom_and_semicolons_imports(client: TestClient, world: World, session: Session) -> None:
    text = "\ufeffmaterial_code;quantity_t;kind\nsteel_slag;80;supply\n"
    r = upload(client, world, "ledger.csv", text.encode("utf-8"))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1 and count(session) == 1


def test_xlsx_imports_with_numbers_and_dates(client: TestClient, world: World, session: Session) -> None:
    from datetime import datetime

    content = xlsx(
        [
            ["material_code", "quantity_t", "available_from", "available_to", "lat", "lon", "parameters"],
            ["fly_ash", 250.25, datetime(2025, 3, 1), "2025/6/30", 38.04, 114.51, "loi=4.5; moisture=0.8"],
        ]
    )
    r = upload(client, world, "ledger.xlsx", content)
    assert r.status_code == 200, r.text
    row = session.get(Listing, r.json()["ids"][0])
    assert row is not None and row.quantity_kg == 250_250
    assert str(row.available_from) == "2025-03-01" and str(row.available_to) == "2025-06-30"
    assert row.city_code == "130100" and row.parameters == {"loi": 4.5, "moisture": 0.8}


def test_formulas_are_refused_never_evaluated(client: TestClient, world: World, session: Session) -> None:
    csv_text = (
        "material_code,quantity_t,notes,price_cny_per_t\n"
        'fly_ash,10,"=HYPERLINK(""http://evil.example"",""click"")",5\n'
        "fly_ash,10,@SUM(A1:A2),5\n"
        "fly_ash,=2+3,ok,5\n"
        "fly_ash,10,+cmd|' /C calc'!A0,-12.5\n"
    )
    r = upload(client, world, "x.csv", csv_text.encode())
    assert r.status_code == 422, r.text
    errors = {(e["row"], e["column"]): e["message"] for e in r.json()["errors"]}
    assert set(errors) == {(2, "notes"), (3, "notes"), (4, "quantity_t"), (5, "notes")}
    assert all("Formulas are not accepted" in m for m in errors.values())
    # a negative price is a number, not a formula: row 5 is refused for its notes only
    content = xlsx([["material_code", "quantity_t", "notes"], ["fly_ash", "=1000*2", "ok"], ["fly_ash", 5, "fine"]])
    r = upload(client, world, "x.xlsx", content)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"row": 2, "column": "quantity_t", "message": "Formulas are not accepted: enter the value itself"}
    ]
    assert count(session) == 0


def test_one_bad_row_writes_nothing_and_every_problem_is_named(
    client: TestClient, world: World, session: Session
) -> None:
    csv_text = (
        "material_code,quantity_t,grade,lat,lon,available_from,visibility\n"
        "fly_ash,100,II,,,,\n"
        "unobtainium,5,,,,,\n"
        "fly_ash,-3,,,,,\n"
        "fly_ash,1.23456,,,,,\n"
        "fly_ash,7,Z,,,,\n"
        "fly_ash,7,,36.6,,,\n"
        "fly_ash,7,,,,2025-02-30,\n"
        "fly_ash,7,,,,,everyone\n"
        ",7,,,,,\n"
        "fly_ash,ten,,,,,\n"
    )
    r = upload(client, world, "bad.csv", csv_text.encode())
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["created"] == 0 and body["ids"] == [] and body["field"] == "file"
    assert body["detail"] == (
        "Nothing was imported: 9 problems in the file "
        "(first: row 3, column material_code: Unknown material: choose one from the catalogue)"
    )
    got = [(e["row"], e["column"], e["message"]) for e in body["errors"]]
    assert got == [
        (3, "material_code", "Unknown material: choose one from the catalogue"),
        (4, "quantity_t", "Enter tonnes: a number above 0 with at most 3 decimals"),
        (5, "quantity_t", "Enter tonnes: a number above 0 with at most 3 decimals"),
        (6, "grade", "This material has no such grade"),
        (7, "lat", "Give both latitude and longitude, or neither"),
        (8, "available_from", "Enter a date as YYYY-MM-DD"),
        (9, "visibility", "Enter public, park or anonymous"),
        (10, "material_code", "Required value"),
        (11, "quantity_t", "Not a number"),
    ]
    assert count(session) == 0
    assert session.exec(select(func.count()).select_from(ListingChange)).one() == 0


def test_valid_rows_mode_imports_the_good_rows_and_reports_the_bad(
    client: TestClient, world: World, session: Session
) -> None:
    csv_text = "material_code,quantity_t\nfly_ash,100\nfly_ash,abc\nsteel_slag,20\n"
    r = upload(client, world, "mixed.csv", csv_text.encode(), mode="valid_rows")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2 and body["errors"] == [{"row": 3, "column": "quantity_t", "message": "Not a number"}]
    assert count(session) == 2
    assert {session.get(Listing, i).material_code for i in body["ids"]} == {"fly_ash", "steel_slag"}  # type: ignore[union-attr]


def test_unknown_and_missing_columns_are_reported_and_block_both_modes(
    client: TestClient, world: World, session: Session
) -> None:
    r = upload(client, world, "h.csv", b"material,colour,notes\nfly_ash,grey,x\n", mode="valid_rows")
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"row": 1, "column": "colour", "message": "Unknown column"},
        {"row": 1, "column": "quantity_t", "message": "Required column is missing"},
    ]
    assert count(session) == 0


def test_file_level_problems_answer_clearly(client: TestClient, world: World, settings: Settings) -> None:
    too_big = b"material_code,quantity_t\n" + b"fly_ash,1\n" * (settings.max_upload_bytes // 10 + 1)
    r = upload(client, world, "big.csv", too_big)
    assert r.status_code == 413 and "larger than 10 MB" in r.json()["detail"]
    for name, content, words in [
        ("a.pdf", b"%PDF-1.4", "Upload a .csv or .xlsx"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "Old .xls"),
        ("broken.xlsx", b"PK\x03\x04 broken", "not a readable XLSX"),
        ("empty.csv", b"", "empty"),
        ("latin.csv", b"material_code,quantity_t\nfly_ash,1\n" + b"\x81\x20\xff\n", "neither UTF-8 nor GBK"),
        ("headers.csv", b"material_code,quantity_t\n", "no data rows"),
    ]:
        r = upload(client, world, name, content)
        assert r.status_code == 422, (name, r.text)
        assert words in r.json()["detail"], (name, r.json())
    anonymous = client.post(
        URL, files={"file": ("x.csv", b"material_code,quantity_t\nfly_ash,1\n")}, headers={"X-CSRF-Token": csrf(client)}
    )
    assert anonymous.status_code == 401


def test_the_templates_download_and_import_as_they_are(client: TestClient, world: World, session: Session) -> None:
    r = client.get(f"{URL}/template.csv")
    assert (
        r.status_code == 200
        and r.content.startswith(b"\xef\xbb\xbf")
        and "attachment" in r.headers["content-disposition"]
    )
    assert upload(client, world, "template.csv", r.content).json()["created"] == 2
    x = client.get(f"{URL}/template.xlsx")
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(x.content))
    assert wb.worksheets[0]["A1"].value == "kind" and len(wb.worksheets) == 2
    assert upload(client, world, "template.xlsx", x.content).json()["created"] == 2
    assert count(session) == 4
