"""Filing, correcting, importing and reading solid-waste ledgers.

Hard rules are enforced (no negative figure; "of which from prior-year stock" never above its total; known
material; a month not in the future); the NBS identity
    generated = (utilised − of which prior-year stock) + stored + (disposed − of which prior-year stock) + dumped
is checked loosely: a mismatch is returned as a warning, since enterprises' scales and stock counts rarely
balance to the kilogram.
"""

from __future__ import annotations

import csv
import enum
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from exchange.accounts.models import Role, User
from exchange.audit import service as audit
from exchange.core.db import utcnow
from exchange.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.enterprises.models import Enterprise
from exchange.ledgers.models import (
    FIGURES,
    KG_COLUMNS,
    PRIOR_OF,
    SUMMARY_SUMS,
    ImportError_,
    ImportResult,
    LedgerEnterpriseYear,
    LedgerEntry,
    LedgerFigures,
    LedgerIn,
    LedgerPublic,
    LedgerRegionMonth,
    LedgerRevision,
    LedgerRevisionPublic,
    LedgerSource,
)
from exchange.listings import spreadsheet
from exchange.listings.forms import FieldProblem, parse_number
from exchange.reference.catalogue import load_catalogue
from exchange.settings import Settings

KG_PER_T = 1000
IDENTITY_TOLERANCE = Decimal("0.01")  # 1% of generation (or 1 t, whichever is larger) before we warn


def t_to_kg(t: Decimal) -> int:
    kg = t * KG_PER_T
    if kg != kg.to_integral_value():
        raise Unprocessable("tonnes take at most 3 decimals (whole kilograms)")
    return int(kg)


def kg_to_t(kg: int | None) -> Decimal:
    return (Decimal(kg or 0) / KG_PER_T).quantize(Decimal("0.001"))


def rate(utilised_kg: int, denominator_kg: int) -> float | None:
    """NBS: 综合利用率 = 综合利用量 ÷ (产生量 + 综合利用往年贮存量); None ("no data") when the denominator is 0."""
    return utilised_kg / denominator_kg if denominator_kg > 0 else None


def category_of(material_code: str) -> tuple[str, bool]:
    m = load_catalogue().find(material_code)
    if m is None:
        raise Unprocessable("unknown material code", field="material_code")
    return (m.bulk_category or m.group), m.counts_toward_bulk_target


# ---------------------------------------------------------------- validation


@dataclass
class Checked:
    kg: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def check_figures(figures: LedgerFigures) -> Checked:
    """Convert to kilograms and apply the hard rules (raise) and the identity check (warn)."""
    kg: dict[str, int] = {}
    for name in FIGURES:
        value: Decimal = getattr(figures, f"{name}_t")
        if value < 0:
            raise Unprocessable("must not be negative", field=f"{name}_t")
        try:
            kg[name] = t_to_kg(value)
        except Unprocessable as exc:
            raise Unprocessable(exc.detail, field=f"{name}_t") from None
    for prior, total in PRIOR_OF.items():
        if kg[prior] > kg[total]:
            raise Unprocessable("'of which from prior-year stock' exceeds its total", field=f"{prior}_t")
    warnings: list[str] = []
    balance = (
        kg["utilised_in_house"]
        - kg["utilised_in_house_prior_stock"]
        + kg["sent_for_utilisation"]
        - kg["sent_for_utilisation_prior_stock"]
        + kg["stored"]
        + kg["disposed"]
        - kg["disposed_prior_stock"]
        + kg["dumped"]
    )
    tolerance = max(1000, int(kg["generated"] * IDENTITY_TOLERANCE))
    if abs(balance - kg["generated"]) > tolerance:
        warnings.append(
            "the figures do not balance: generated should equal utilised + stored + disposed + dumped "
            "(each without its prior-year stock)"
        )
    return Checked(kg, warnings)


def check_period(period: str, today: date | None = None) -> None:
    today = today or date.today()
    year, month = int(period[:4]), int(period[5:7])
    if year < 2000 or (year, month) > (today.year, today.month):
        raise Unprocessable("the month must not be in the future (nor before 2000)", field="period")


# ---------------------------------------------------------------- scope


def _require_member(user: User) -> int:
    if user.role is not Role.ENTERPRISE or user.enterprise_id is None:
        raise Forbidden("only members of an enterprise file its ledgers")
    return user.enterprise_id


def scope_filter(user: User) -> list[Any]:
    """WHERE clauses limiting ledger rows to what the user may read."""
    if user.role is Role.ADMIN:
        return []
    if user.role is Role.ENTERPRISE:
        if user.enterprise_id is None:
            raise Forbidden("your account is not linked to an enterprise")
        return [col(LedgerEntry.enterprise_id) == user.enterprise_id]
    if user.role is Role.PARK_MANAGER:
        if user.park_id is None:
            raise Forbidden("your account is not linked to a park")
        return [col(LedgerEntry.park_id) == user.park_id]
    if user.role is Role.REGULATOR:
        code = user.region_code or ""
        if len(code) != 6:
            raise Forbidden("your account has no region")
        if code.endswith("0000"):
            return [col(LedgerEntry.province_code) == code]
        return [col(LedgerEntry.city_code) == code]
    raise Forbidden("you may not read ledgers")


# ---------------------------------------------------------------- filing


def _apply(entry: LedgerEntry, kg: Mapping[str, int]) -> None:
    for name in FIGURES:
        setattr(entry, f"{name}_kg", kg[name])


def _new_entry(enterprise: Enterprise, material_code: str, period: str) -> LedgerEntry:
    category, bulk = category_of(material_code)
    assert enterprise.id is not None
    return LedgerEntry(
        enterprise_id=enterprise.id,
        material_code=material_code,
        period=period,
        year=int(period[:4]),
        category=category,
        counts_toward_bulk_target=bulk,
        province_code=enterprise.province_code,
        city_code=enterprise.city_code,
        park_id=enterprise.park_id,
        industry=enterprise.industry,
    )


def _revise(session: Session, entry: LedgerEntry, by: User) -> None:
    """Keep the superseded figures as a revision row, then bump the version."""
    assert entry.id is not None
    session.add(
        LedgerRevision(
            entry_id=entry.id,
            version=entry.version,
            **{c: getattr(entry, c) for c in KG_COLUMNS},
            source=entry.source,
            note=entry.note,
            filed_by_id=entry.filed_by_id,
            filed_at=entry.filed_at,
            superseded_by_id=by.id,
        )
    )
    entry.version += 1


class Outcome(enum.StrEnum):
    CREATED = "created"
    CORRECTED = "corrected"
    UNCHANGED = "unchanged"


# ---------------------------------------------------------------- summaries (see models.py)


def entry_kg(entry: LedgerEntry) -> dict[str, int]:
    return {n: getattr(entry, f"{n}_kg") for n in FIGURES}


def summary_sums(kg: Mapping[str, int]) -> dict[str, int]:
    """One ledger row's contribution to the summaries (must match `_summary_select`)."""
    return {
        "generated_kg": kg["generated"],
        "utilised_kg": kg["utilised_in_house"] + kg["sent_for_utilisation"],
        "prior_utilised_kg": kg["utilised_in_house_prior_stock"] + kg["sent_for_utilisation_prior_stock"],
        "disposed_kg": kg["disposed"] - kg["disposed_prior_stock"],
        "stored_kg": kg["stored"],
        "dumped_kg": kg["dumped"],
        "entries": 1,
    }


REGION_MONTH_KEYS = (
    "period",
    "province_code",
    "city_code",
    "park_id",
    "material_code",
    "category",
    "counts_toward_bulk_target",
)
ENTERPRISE_YEAR_KEYS = (
    "year",
    "enterprise_id",
    "material_code",
    "category",
    "counts_toward_bulk_target",
    "province_code",
    "city_code",
    "park_id",
)


def _insert_for(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def add_to_summaries(session: Session, entry: LedgerEntry, delta: Mapping[str, int]) -> None:
    """Add one filing's difference to both summaries (an atomic `col = col + delta` upsert per table)."""
    if not any(delta.values()):
        return
    keys: dict[str, Any] = {
        "period": entry.period,
        "year": entry.year,
        "enterprise_id": entry.enterprise_id,
        "province_code": entry.province_code or "",
        "city_code": entry.city_code or "",
        "park_id": entry.park_id or 0,
        "material_code": entry.material_code,
        "category": entry.category,
        "counts_toward_bulk_target": entry.counts_toward_bulk_target,
    }
    for model, key_names in ((LedgerRegionMonth, REGION_MONTH_KEYS), (LedgerEnterpriseYear, ENTERPRISE_YEAR_KEYS)):
        table: Any = getattr(model, "__table__")  # noqa: B009  (SQLModel tables: mypy cannot see it)
        values = {k: keys[k] for k in key_names} | {"year": entry.year} | dict(delta)
        stmt = _insert_for(session, table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key_names), set_={c: table.c[c] + stmt.excluded[c] for c in delta}
        )
        session.execute(stmt)


def _summary_select(key_names: Sequence[str], where: list[Any]) -> Any:
    led: Any = LedgerEntry.__table__  # type: ignore[attr-defined]
    key_expr = {
        "period": led.c.period,
        "year": led.c.year,
        "enterprise_id": led.c.enterprise_id,
        "province_code": sa.func.coalesce(led.c.province_code, ""),
        "city_code": sa.func.coalesce(led.c.city_code, ""),
        "park_id": sa.func.coalesce(led.c.park_id, 0),
        "material_code": led.c.material_code,
        "category": led.c.category,
        "counts_toward_bulk_target": led.c.counts_toward_bulk_target,
    }
    keys = [key_expr[k].label(k) for k in key_names]
    sums = [
        sa.func.sum(led.c.generated_kg).label("generated_kg"),
        sa.func.sum(led.c.utilised_in_house_kg + led.c.sent_for_utilisation_kg).label("utilised_kg"),
        sa.func.sum(led.c.utilised_in_house_prior_stock_kg + led.c.sent_for_utilisation_prior_stock_kg).label(
            "prior_utilised_kg"
        ),
        sa.func.sum(led.c.disposed_kg - led.c.disposed_prior_stock_kg).label("disposed_kg"),
        sa.func.sum(led.c.stored_kg).label("stored_kg"),
        sa.func.sum(led.c.dumped_kg).label("dumped_kg"),
        sa.func.count().label("entries"),
    ]
    return sa.select(*keys, *sums).where(*where).group_by(*(key_expr[k] for k in key_names))


def refresh_summaries(session: Session, years: Iterable[int] | None = None) -> None:
    """Rebuild both summaries from the ledger rows (all years, or the given ones): after a bulk load."""
    led: Any = LedgerEntry.__table__  # type: ignore[attr-defined]
    wanted = sorted(set(years)) if years is not None else None
    for model, key_names in (
        (LedgerRegionMonth, ("year", *REGION_MONTH_KEYS)),
        (LedgerEnterpriseYear, ENTERPRISE_YEAR_KEYS),
    ):
        table: Any = getattr(model, "__table__")  # noqa: B009  (SQLModel tables: mypy cannot see it)
        delete = sa.delete(table)
        where: list[Any] = []
        if wanted is not None:
            delete = delete.where(table.c.year.in_(wanted))
            where.append(led.c.year.in_(wanted))
        session.execute(delete)
        select_ = _summary_select(key_names, where)
        session.execute(sa.insert(table).from_select([*key_names, *SUMMARY_SUMS], select_))


def _upsert(
    session: Session, enterprise: Enterprise, data: LedgerIn, kg: Mapping[str, int], by: User, source: LedgerSource
) -> tuple[LedgerEntry, Outcome]:
    stmt = (
        select(LedgerEntry)
        .where(
            LedgerEntry.enterprise_id == enterprise.id,
            LedgerEntry.material_code == data.material_code,
            LedgerEntry.period == data.period,
        )
        .with_for_update()
    )
    entry = session.exec(stmt).first()
    if entry is None:
        entry = _new_entry(enterprise, data.material_code, data.period)
        outcome = Outcome.CREATED
    else:
        if all(getattr(entry, f"{n}_kg") == kg[n] for n in FIGURES) and entry.note == data.note:
            return entry, Outcome.UNCHANGED  # nothing changed: no revision, no new version
        _revise(session, entry, by)
        outcome = Outcome.CORRECTED
    before = summary_sums(entry_kg(entry)) if outcome is Outcome.CORRECTED else dict.fromkeys(SUMMARY_SUMS, 0)
    after = summary_sums(kg)
    delta = {k: after[k] - before[k] for k in SUMMARY_SUMS}
    delta["entries"] = int(outcome is Outcome.CREATED)
    _apply(entry, kg)
    add_to_summaries(session, entry, delta)
    entry.source = source
    entry.note = data.note
    entry.filed_by_id = by.id
    entry.filed_at = utcnow()
    session.add(entry)
    return entry, outcome


def _flush_or_conflict(session: Session) -> None:
    """Two first filings of the same month racing: the unique constraint stops the second one."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "a ledger for this material and month was filed at the same moment; reload it and correct it"
        ) from None


def file_ledger(
    session: Session, by: User, data: LedgerIn, source: LedgerSource = LedgerSource.FORM
) -> tuple[LedgerEntry, list[str]]:
    """File or correct one month's ledger for one material (the user's own enterprise only)."""
    enterprise_id = _require_member(by)
    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    category_of(data.material_code)
    check_period(data.period)
    checked = check_figures(data)
    entry, outcome = _upsert(session, enterprise, data, checked.kg, by, source)
    if outcome is Outcome.UNCHANGED:
        return entry, checked.warnings
    _flush_or_conflict(session)
    audit.record(
        session,
        actor_id=by.id,
        action="ledger.filed" if outcome is Outcome.CREATED else "ledger.corrected",
        entity="ledger_entry",
        entity_id=entry.id,
        park_id=enterprise.park_id,
        material=data.material_code,
        period=data.period,
        version=entry.version,
    )
    session.commit()
    return entry, checked.warnings


def get_entry(session: Session, user: User, entry_id: int) -> LedgerEntry:
    stmt = select(LedgerEntry).where(LedgerEntry.id == entry_id, *scope_filter(user))
    entry = session.exec(stmt).first()
    if entry is None:
        raise NotFound(f"ledger {entry_id} does not exist or is outside your scope")
    return entry


def find_entry(session: Session, user: User, material_code: str, period: str) -> LedgerEntry | None:
    enterprise_id = _require_member(user)
    stmt = select(LedgerEntry).where(
        LedgerEntry.enterprise_id == enterprise_id,
        LedgerEntry.material_code == material_code,
        LedgerEntry.period == period,
    )
    return session.exec(stmt).first()


def list_entries(
    session: Session,
    user: User,
    *,
    period_from: str | None = None,
    period_to: str | None = None,
    material_code: str | None = None,
    enterprise_id: int | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(*scope_filter(user))
    if period_from:
        stmt = stmt.where(LedgerEntry.period >= period_from)
    if period_to:
        stmt = stmt.where(LedgerEntry.period <= period_to)
    if material_code:
        stmt = stmt.where(LedgerEntry.material_code == material_code)
    if enterprise_id is not None:
        stmt = stmt.where(LedgerEntry.enterprise_id == enterprise_id)
    stmt = stmt.order_by(col(LedgerEntry.period).desc(), col(LedgerEntry.material_code)).limit(limit).offset(offset)
    return list(session.exec(stmt))


def enterprise_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.exec(select(Enterprise.id, Enterprise.name).where(col(Enterprise.id).in_(wanted))).all()
    return {i: n for i, n in rows if i is not None}


def history(session: Session, user: User, entry_id: int) -> list[LedgerRevisionPublic]:
    """All versions of a ledger row, newest first (the current one has no superseded_at)."""
    entry = get_entry(session, user, entry_id)
    revs = session.exec(
        select(LedgerRevision).where(LedgerRevision.entry_id == entry_id).order_by(col(LedgerRevision.version).desc())
    ).all()
    current = LedgerRevisionPublic(
        version=entry.version,
        source=entry.source,
        note=entry.note,
        filed_at=entry.filed_at,
        superseded_at=None,
        **{f"{n}_t": kg_to_t(getattr(entry, f"{n}_kg")) for n in FIGURES},
    )
    return [current] + [
        LedgerRevisionPublic(
            version=r.version,
            source=r.source,
            note=r.note,
            filed_at=r.filed_at,
            superseded_at=r.superseded_at,
            **{f"{n}_t": kg_to_t(getattr(r, f"{n}_kg")) for n in FIGURES},
        )
        for r in revs
    ]


def to_public(entry: LedgerEntry, warnings: Sequence[str] = ()) -> LedgerPublic:
    assert entry.id is not None
    utilised = entry.utilised_in_house_kg + entry.sent_for_utilisation_kg
    prior = entry.utilised_in_house_prior_stock_kg + entry.sent_for_utilisation_prior_stock_kg
    return LedgerPublic(
        id=entry.id,
        enterprise_id=entry.enterprise_id,
        material_code=entry.material_code,
        period=entry.period,
        category=entry.category,
        counts_toward_bulk_target=entry.counts_toward_bulk_target,
        utilised_t=kg_to_t(utilised),
        utilisation_rate=rate(utilised, entry.generated_kg + prior),
        version=entry.version,
        source=entry.source,
        note=entry.note,
        filed_at=entry.filed_at,
        warnings=list(warnings),
        **{f"{n}_t": kg_to_t(getattr(entry, f"{n}_kg")) for n in FIGURES},
    )


# ---------------------------------------------------------------- deliveries pre-fill


def delivered_kg(session: Session, enterprise_id: int, material_code: str, period: str) -> int:
    """Tonnes this enterprise delivered through exchange agreements in the month (pre-fills 'sent for utilisation')."""
    try:
        from exchange.rounds.models import Agreement, Delivery
    except ImportError:  # the matching rounds are not installed
        return 0
    year, month = int(period[:4]), int(period[5:7])
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    agreement: Any = Agreement
    delivery: Any = Delivery
    stmt = (
        sa.select(sa.func.coalesce(sa.func.sum(delivery.quantity_kg), 0))
        .select_from(delivery)
        .join(agreement, agreement.id == delivery.agreement_id)
        .where(
            agreement.supplier_enterprise_id == enterprise_id,
            agreement.material_code == material_code,
            delivery.delivered_on >= start,
            delivery.delivered_on < end,
        )
    )
    return int(session.execute(stmt).scalar_one())


# ---------------------------------------------------------------- import (CSV / XLSX), all or nothing

IMPORT_COLUMNS: tuple[str, ...] = ("material_code", "period", *(f"{n}_t" for n in FIGURES), "note")
REQUIRED_COLUMNS = ("material_code", "period", "generated_t")
TEXT_FORMULA = "Formulas are not accepted: the cell starts with =, +, - or @; enter the value as text"


def _read_rows(filename: str, content: bytes, settings: Settings | None) -> list[list[Any]]:
    """The first sheet (or the CSV) as lists of cells, header first, read as the listings import reads it: CSV in
    UTF-8 (with or without BOM), UTF-16 or GBK; XLSX without evaluating anything (a formula arrives as its text
    and is refused); the upload limit, zip bombs and old .xls files refused with a reason."""
    spreadsheet.check_size(content, settings)
    return spreadsheet.read_rows(filename, content)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _figure_cell(column: str, value: Any) -> Decimal:
    """Tonnes: empty is 0; a number, or text holding a plain decimal number ("1,200.5"); never a formula."""
    if _blank(value):
        return Decimal("0")
    if isinstance(value, str):
        return parse_number(column, value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise FieldProblem(column, "not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldProblem(column, "not a number")
        return Decimal(repr(value))
    return Decimal(value)


def _text_cell(column: str, value: Any) -> str | None:
    """Material, month and note: text (a month may be a date cell); a formula's text is refused."""
    if _blank(value):
        return None
    if isinstance(value, str):
        if value.startswith(spreadsheet.FORMULA_STARTS) or value.strip().startswith(spreadsheet.FORMULA_STARTS):
            raise FieldProblem(column, TEXT_FORMULA)
        return value.strip()
    if column == "period" and isinstance(value, date):
        return value.strftime("%Y-%m")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise FieldProblem(column, "Invalid value")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _import_header(cells: Sequence[Any]) -> tuple[dict[int, str], list[ImportError_]]:
    """{cell index: column} and the header's problems (unknown, doubled or missing columns)."""
    index: dict[int, str] = {}
    errors: list[ImportError_] = []
    for i, raw in enumerate(cells):
        if _blank(raw):
            continue
        name = str(raw).strip()
        if name not in IMPORT_COLUMNS:
            errors.append(ImportError_(row=1, column=name, message="unknown column"))
        elif name in index.values():
            errors.append(ImportError_(row=1, column=name, message="this column appears twice"))
        else:
            index[i] = name
    for c in REQUIRED_COLUMNS:
        if c not in index.values():
            errors.append(ImportError_(row=1, column=c, message="required column is missing"))
    return index, errors


def _import_row(row_no: int, cells: Sequence[Any], index: dict[int, str]) -> tuple[dict[str, Any], list[ImportError_]]:
    values: dict[str, Any] = {c: None for c in ("material_code", "period", "note")}
    errors: list[ImportError_] = []
    for i, raw in enumerate(cells):
        if i not in index and not _blank(raw):
            errors.append(ImportError_(row=row_no, column=spreadsheet.column_letter(i), message=spreadsheet.NO_HEADER))
    for i, column in index.items():
        raw = cells[i] if i < len(cells) else None
        try:
            values[column] = _figure_cell(column, raw) if column.endswith("_t") else _text_cell(column, raw)
        except FieldProblem as p:
            errors.append(ImportError_(row=row_no, column=column, message=p.message))
    return values, errors


def parse_import(
    filename: str, content: bytes, settings: Settings | None = None
) -> tuple[list[LedgerIn], list[ImportError_]]:
    """Parse every row; return the parsed rows and every error (row and column as the spreadsheet numbers and
    names them, and the reason)."""
    rows = _read_rows(filename, content, settings)
    if not rows or all(_blank(c) for c in rows[0]):
        return [], [ImportError_(row=1, column=None, message="the file has no data rows")]
    index, errors = _import_header(rows[0])
    if errors:
        return [], errors
    data_rows = [(n, r) for n, r in enumerate(rows[1:], start=2) if not all(_blank(c) for c in r)]
    if not data_rows:
        return [], [ImportError_(row=2, column=None, message="the file has no data rows")]
    if len(rows) > spreadsheet.MAX_ROWS + 1:
        message = f"At most {spreadsheet.MAX_ROWS} rows can be imported at once; split the file"
        return [], [ImportError_(row=spreadsheet.MAX_ROWS + 2, column=None, message=message)]
    parsed: list[LedgerIn] = []
    seen: dict[tuple[str, str], int] = {}
    for i, cells in data_rows:
        values, row_errors = _import_row(i, cells, index)
        if row_errors:
            errors.extend(row_errors)
            continue
        try:
            data = LedgerIn.model_validate(values)
            category_of(data.material_code)
            check_period(data.period)
            check_figures(data)
        except ValidationError as exc:
            for e in exc.errors():
                column = str(e["loc"][0]) if e["loc"] else None
                errors.append(ImportError_(row=i, column=column, message=_import_message(column)))
            continue
        except Unprocessable as exc:
            errors.append(ImportError_(row=i, column=exc.field, message=exc.detail))
            continue
        key = (data.material_code, data.period)
        if key in seen:
            errors.append(ImportError_(row=i, column="period", message=f"duplicates row {seen[key]}"))
            continue
        seen[key] = i
        parsed.append(data)
    return parsed, errors


def _import_message(column: str | None) -> str:
    """Our own English messages (translated in frontend/locales/zh-CN/ledgers.json), not pydantic's."""
    if column and column.endswith("_t"):
        return "Enter tonnes: a number of at least 0 with at most 3 decimals"
    if column == "period":
        return "Enter the month as YYYY-MM"
    if column == "material_code":
        return "Choose a material"
    return "Invalid value"


class ImportRejected(Unprocessable):
    """The file was refused as a whole; `errors` lists every row/column problem."""

    def __init__(self, errors: list[ImportError_]) -> None:
        first = errors[0]
        where = f"row {first.row}" + (f", column {first.column}" if first.column else "")
        super().__init__(f"{len(errors)} problem(s) in the file, nothing was imported; first: {where}: {first.message}")
        self.errors = errors


def import_ledgers(
    session: Session, by: User, filename: str, content: bytes, settings: Settings | None = None
) -> ImportResult:
    """Import a CSV/XLSX ledger for the user's enterprise: every row is valid or nothing is written."""
    enterprise_id = _require_member(by)
    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    rows, errors = parse_import(filename, content, settings)
    if errors:
        raise ImportRejected(errors)
    created = updated = unchanged = 0
    warnings: list[ImportError_] = []
    for i, data in enumerate(rows, start=2):
        checked = check_figures(data)
        warnings.extend(ImportError_(row=i, column=None, message=w) for w in checked.warnings)
        _, outcome = _upsert(session, enterprise, data, checked.kg, by, LedgerSource.IMPORT)
        created += outcome is Outcome.CREATED
        updated += outcome is Outcome.CORRECTED
        unchanged += outcome is Outcome.UNCHANGED
    _flush_or_conflict(session)
    audit.record(
        session,
        actor_id=by.id,
        action="ledger.imported",
        entity="enterprise",
        entity_id=enterprise_id,
        park_id=enterprise.park_id,
        created=created,
        updated=updated,
    )
    session.commit()
    return ImportResult(created=created, updated=updated, unchanged=unchanged, warnings=warnings)


def import_template_csv() -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(IMPORT_COLUMNS)
    w.writerow(["fly_ash", "2025-01", "1200.5", "300", "0", "850", "50", "20", "0", "80.5", "0", "0", ""])
    return out.getvalue()


# ---------------------------------------------------------------- demo bulk load


def import_demo_ledgers(
    session: Session,
    rows: Iterable[Any],
    enterprise_ids: Mapping[str, int] | None = None,
    *,
    batch_size: int = 5000,
) -> int:
    """Bulk-insert the demo generator's ledger rows (`exchange.demo.generate.LedgerRow`); returns the count.

    `enterprise_ids` maps the generator's `enterprise_key` to database ids (the demo loader knows it). Province,
    city, park and industry are copied from the enterprise rows. One executemany per batch; one commit.
    """
    if enterprise_ids is None:
        raise ValueError("pass enterprise_ids: {enterprise_key: enterprise.id}")
    ids = set(enterprise_ids.values())
    ents = {
        e.id: e for e in session.exec(select(Enterprise).where(col(Enterprise.id).in_(ids))).all() if e.id is not None
    }
    cats: dict[str, tuple[str, bool]] = {}
    table = LedgerEntry.__table__  # type: ignore[attr-defined]
    now = utcnow()
    batch: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        if batch:
            session.execute(sa.insert(table), batch)
            batch.clear()

    years: set[int] = set()
    for r in rows:
        ent = ents[enterprise_ids[r.enterprise_key]]
        years.add(int(r.period[:4]))
        if r.material not in cats:
            cats[r.material] = category_of(r.material)
        category, bulk = cats[r.material]
        rec: dict[str, Any] = {
            "enterprise_id": ent.id,
            "material_code": r.material,
            "period": r.period,
            "year": int(r.period[:4]),
            "category": category,
            "counts_toward_bulk_target": bulk,
            "province_code": ent.province_code,
            "city_code": ent.city_code,
            "park_id": ent.park_id,
            "industry": ent.industry,
            "version": 1,
            "source": LedgerSource.DEMO,
            "note": None,
            "filed_by_id": None,
            "filed_at": now,
        }
        for n in FIGURES:
            rec[f"{n}_kg"] = t_to_kg(getattr(r, f"{n}_t"))
        batch.append(rec)
        count += 1
        if len(batch) >= batch_size:
            flush()
    flush()
    refresh_summaries(session, years)
    session.commit()
    return count
