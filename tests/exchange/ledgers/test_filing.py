"""Filing ledgers three ways (form, CSV/XLSX import, API), hard rules, loose identity, history and scope."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlmodel import Session, func, select

from exchange.accounts.models import Role
from exchange.ledgers.models import LedgerEntry, LedgerRevision
from exchange.settings import Settings
from tests.factories import login

BALANCED = {
    "material_code": "fly_ash",
    "period": "2025-01",
    "generated_t": "100.5",
    "utilised_in_house_t": "20",
    "sent_for_utilisation_t": "40",
    "sent_for_utilisation_prior_stock_t": "10",
    "stored_t": "50.5",
}


@pytest.fixture
def member(make_enterprise: Any, make_user: Any) -> Any:
    ent = make_enterprise(province_code="130000", city_code="130400")
    return make_user(Role.ENTERPRISE, enterprise=ent)


def test_the_api_files_and_a_correction_keeps_history(
    client: TestClient, member: Any, token_for: Any, session: Session
) -> None:
    h = token_for(member)
    r = client.put("/api/v1/ledgers", json=BALANCED, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generated_t"] == "100.500" and body["utilised_t"] == "60.000" and body["warnings"] == []
    assert body["utilisation_rate"] == pytest.approx(60 / 110.5)
    r2 = client.put("/api/v1/ledgers", json={**BALANCED, "stored_t": "40.5", "disposed_t": "10"}, headers=h)
    assert r2.json()["version"] == 2 and r2.json()["id"] == body["id"]
    hist = client.get(f"/api/v1/ledgers/{body['id']}/history", headers=h).json()
    assert [v["version"] for v in hist] == [2, 1]
    assert hist[1]["stored_t"] == "50.500" and hist[1]["superseded_at"] is not None
    assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == 1
    assert session.exec(select(func.count()).select_from(LedgerRevision)).one() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stored_t": "-1"}, "stored_t"),
        ({"sent_for_utilisation_prior_stock_t": "41"}, "sent_for_utilisation_prior_stock_t"),
        ({"generated_t": "1.0001"}, "generated_t"),
        ({"material_code": "unobtainium"}, "material_code"),
        ({"period": "2025-13"}, "period"),
        ({"period": "2999-01"}, "period"),
    ],
)
def test_hard_rules_are_refused_naming_the_field(
    client: TestClient, member: Any, token_for: Any, change: dict[str, str], field: str
) -> None:
    r = client.put("/api/v1/ledgers", json={**BALANCED, **change}, headers=token_for(member))
    assert r.status_code == 422
    body = r.json()
    assert body.get("field") == field or field in body["detail"]


def test_an_unbalanced_ledger_is_accepted_with_a_warning(client: TestClient, member: Any, token_for: Any) -> None:
    r = client.put("/api/v1/ledgers", json={**BALANCED, "stored_t": "0"}, headers=token_for(member))
    assert r.status_code == 200 and r.json()["warnings"]


def test_nothing_generated_means_no_rate(client: TestClient, member: Any, token_for: Any) -> None:
    r = client.put("/api/v1/ledgers", json={"material_code": "fly_ash", "period": "2025-02"}, headers=token_for(member))
    assert r.status_code == 200 and r.json()["utilisation_rate"] is None


def test_only_members_file_and_only_their_own(
    client: TestClient, member: Any, make_enterprise: Any, make_user: Any, token_for: Any
) -> None:
    regulator = token_for(make_user(Role.REGULATOR, region_code="130000"))
    assert client.put("/api/v1/ledgers", json=BALANCED, headers=regulator).status_code == 403
    entry = client.put("/api/v1/ledgers", json=BALANCED, headers=token_for(member)).json()
    other = make_user(Role.ENTERPRISE, enterprise=make_enterprise())
    assert client.get(f"/api/v1/ledgers/{entry['id']}", headers=token_for(other)).status_code == 404
    assert client.get(f"/api/v1/ledgers/{entry['id']}", headers=regulator).status_code == 200
    shandong = token_for(make_user(Role.REGULATOR, region_code="370000"))
    assert client.get(f"/api/v1/ledgers/{entry['id']}", headers=shandong).status_code == 404
    assert client.get("/api/v1/ledgers", headers=shandong).json() == []


def _csv(*rows: str) -> bytes:
    return ("material_code,period,generated_t,sent_for_utilisation_t,stored_t\n" + "\n".join(rows) + "\n").encode()


def test_a_csv_import_is_all_or_nothing_with_row_and_column_errors(
    client: TestClient, member: Any, token_for: Any, session: Session
) -> None:
    h = token_for(member)
    bad = _csv("fly_ash,2025-01,100,60,40", "fly_ash,2025-02,abc,0,0", "steel_slag,2025-01,-10,0,0")
    r = client.post("/api/v1/ledgers/import", files={"file": ("l.csv", bad, "text/csv")}, headers=h)
    assert r.status_code == 422
    errors = {(e["row"], e["column"]) for e in r.json()["errors"]}
    assert (3, "generated_t") in errors
    assert any(row == 4 for row, _ in errors)  # the third data row is row 4 in a spreadsheet
    assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == 0
    good = _csv("fly_ash,2025-01,100,60,40", "fly_ash,2025-02,80,80,0")
    r = client.post("/api/v1/ledgers/import", files={"file": ("l.csv", good, "text/csv")}, headers=h)
    assert r.status_code == 200 and r.json()["created"] == 2


def test_an_xlsx_import_files_the_rows(client: TestClient, member: Any, token_for: Any) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["material_code", "period", "generated_t", "utilised_in_house_t", "stored_t"])
    ws.append(["fgd_gypsum", "2025-03", 12.5, 10, 2.5])
    buf = io.BytesIO()
    wb.save(buf)
    h = token_for(member)
    r = client.post("/api/v1/ledgers/import", files={"file": ("l.xlsx", buf.getvalue())}, headers=h)
    assert r.status_code == 200, r.text
    rows = client.get("/api/v1/ledgers", headers=h).json()
    assert [(x["material_code"], x["generated_t"], x["utilised_t"]) for x in rows] == [
        ("fgd_gypsum", "12.500", "10.000")
    ]


def test_an_unknown_column_is_named(client: TestClient, member: Any, token_for: Any) -> None:
    data = b"material_code,period,generated_t,colour\nfly_ash,2025-01,1,red\n"
    r = client.post("/api/v1/ledgers/import", files={"file": ("l.csv", data)}, headers=token_for(member))
    assert r.status_code == 422 and r.json()["errors"][0] == {"row": 1, "column": "colour", "message": "unknown column"}


def test_the_form_files_and_shows_errors_in_chinese(client: TestClient, member: Any, session: Session) -> None:
    member.locale = "zh-CN"
    session.add(member)
    session.commit()
    token = login(client, member)
    form = {**BALANCED, "csrf_token": token, "stored_t": "-3"}
    r = client.post("/ledgers/new", data=form)
    assert r.status_code == 422
    assert "请填写吨数" in r.text and 'value="-3"' in r.text  # the error next to the field, the input kept
    r = client.post("/ledgers/new", data={**BALANCED, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    detail = client.get(r.headers["location"])
    assert detail.status_code == 200 and "100.500" in detail.text
    again = client.get("/ledgers/new?material_code=fly_ash&period=2025-01")
    assert 'value="100.500"' in again.text  # a correction starts from the filed figures


def test_the_import_page_lists_the_errors(client: TestClient, member: Any) -> None:
    token = login(client, member)
    bad = _csv("fly_ash,2025-01,100,-5,40")
    r = client.post("/ledgers/import", data={"csrf_token": token}, files={"file": ("l.csv", bad, "text/csv")})
    assert r.status_code == 422 and 'id="import-errors"' in r.text


def test_the_import_page_refuses_a_file_over_the_limit_next_to_the_field(
    client: TestClient, settings: Settings, member: Any
) -> None:
    settings.max_upload_bytes = 1024
    token = login(client, member)
    big = _csv(*["fly_ash,2025-01,100,50,50"] * 200)
    r = client.post("/ledgers/import", data={"csrf_token": token}, files={"file": ("l.csv", big, "text/csv")})
    assert r.status_code == 413 and "1 KB" in r.text and 'id="import-errors"' not in r.text
