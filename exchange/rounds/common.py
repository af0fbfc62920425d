"""Small helpers shared by the rounds modules: units, state transitions, who may see and run a round."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from exchange.accounts.models import Role, User
from exchange.audit.service import record
from exchange.core.errors import Conflict
from exchange.parks.models import Park
from exchange.rounds.models import Round

S = TypeVar("S", bound=enum.Enum)
KG_PER_T = 1000


def kg_to_t(kg: int | None) -> Decimal:
    return (Decimal(int(kg or 0)) / KG_PER_T).quantize(Decimal("0.001"))


def t_to_kg(tonnes: Decimal | float | int) -> int:
    return int((Decimal(str(tonnes)) * KG_PER_T).to_integral_value(ROUND_HALF_UP))


def fen_to_cny(fen: int | None) -> Decimal:
    return (Decimal(int(fen or 0)) / 100).quantize(Decimal("0.01"))


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive (they were stored as UTC): make them comparable with utcnow()."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def transition(what: str, ident: int | None, current: S, target: S, table: dict[S, frozenset[S]]) -> S:
    """Refuse an illegal state change with 409 (never apply it silently); returns the target state."""
    if target not in table.get(current, frozenset()):
        raise Conflict(f"{what} {ident} is {current.value}; it cannot become {target.value}")
    return target


# ---------------------------------------------------------------------------------------------- regions


def region_contains(outer: str, inner: str) -> bool:
    """GB/T 2260: a province 130000 contains 13xxxx; a city 130400 contains 1304xx."""
    if len(outer) != 6 or len(inner) != 6:
        return False
    if outer.endswith("0000"):
        return inner[:2] == outer[:2]
    if outer.endswith("00"):
        return inner[:4] == outer[:4]
    return inner == outer


def region_clause(code: str | None, province_col: Any, city_col: Any) -> ColumnElement[bool]:
    """Rows whose province/city columns fall within a region code (false for no code)."""
    if not code or len(code) != 6:
        return sa.false()
    if code.endswith("0000"):
        return province_col == code
    return city_col == code


# ---------------------------------------------------------------------------------------------- access


def can_manage(user: User, rnd: Round) -> bool:
    """Run, cancel, review, publish: the round's park managers, regulators of its region, admins."""
    if user.role is Role.ADMIN:
        return True
    if user.role is Role.PARK_MANAGER:
        return user.park_id is not None and rnd.park_id == user.park_id
    if user.role is Role.REGULATOR:
        return bool(user.region_code and rnd.region_code and region_contains(user.region_code, rnd.region_code))
    return False


def visible_rounds_clause(user: User) -> ColumnElement[bool]:
    """Rounds a staff user may read: those they may manage, and (regulators) park rounds inside their region."""
    if user.role is Role.ADMIN:
        return sa.true()
    if user.role is Role.PARK_MANAGER:
        if user.park_id is None:
            return sa.false()
        return col(Round.park_id) == user.park_id
    if user.role is Role.REGULATOR and user.region_code:
        code = user.region_code
        prefix = code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
        own = sa.func.substr(col(Round.region_code), 1, len(prefix)) == prefix
        parks = select(col(Park.id)).where(region_clause(code, col(Park.province_code), col(Park.city_code)))
        return sa.or_(own, col(Round.park_id).in_(parks))
    return sa.false()


def is_staff(user: User | None) -> bool:
    return user is not None and user.role in (Role.PARK_MANAGER, Role.REGULATOR, Role.ADMIN)


def record_round(
    session: Session,
    rnd: Round,
    action: str,
    *,
    actor_id: int | None,
    from_state: str | None = None,
    to_state: str | None = None,
    **detail: Any,
) -> None:
    """An audit event about a round, findable by the round and its park (the trail the manager reads)."""
    record(
        session,
        actor_id=actor_id,
        action=action,
        entity="round",
        entity_id=rnd.id,
        park_id=rnd.park_id,
        from_state=from_state,
        to_state=to_state,
        round_id=rnd.id,
        **detail,
    )
