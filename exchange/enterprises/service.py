"""Registering enterprises, reading them as the viewer may, and approving or rejecting them.

An enterprise registers itself (pending) and may post listings only once an admin, or the manager of the park it
names, approves it. Who may see what is decided here: members, admins and the park's manager read the private view
(contacts); everyone else reads the public view of approved enterprises only, and any other id answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role, User
from exchange.audit import service as audit
from exchange.core.db import get_for_update, utcnow
from exchange.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.enterprises.models import (
    Enterprise,
    EnterpriseCreate,
    EnterprisePrivate,
    EnterprisePublic,
    EnterpriseStatus,
    EnterpriseUpdate,
    MemberCreate,
)
from exchange.parks.models import Park
from exchange.reference.catalogue import load_catalogue
from exchange.reference.uscc import CHARSET, check_character
from exchange.settings import Settings

MAX_PAGE = 500
ADMIN_ONLY_FIELDS = frozenset({"uscc", "park_id", "permits"})


# ---------------------------------------------------------------- validation


def uscc_problem(code: str) -> str | None:
    """What is wrong with a unified social credit code (GB 32100-2015), or None when it is well-formed.

    The messages are fixed English sentences (each has a zh-CN translation) so a form can show them translated.
    """
    if not code:
        return "Enter the unified social credit code"
    if len(code) != 18:
        return "The unified social credit code must have exactly 18 characters"
    if any(c not in CHARSET for c in code):
        return "The code may only contain digits and capital letters other than I, O, S, V and Z"
    if not code[2:8].isdigit():
        return "Characters 3 to 8 must be the 6-digit administrative division code"
    if check_character(code[:17]) != code[17]:
        return "The last character (the check character) does not match the first 17: check the code for a typo"
    return None


def normalise_uscc(code: str) -> str:
    """Upper case without spaces; raises Unprocessable(field="uscc") naming the problem."""
    code = "".join(code.split()).upper()
    problem = uscc_problem(code)
    if problem is not None:
        raise Unprocessable(problem, field="uscc")
    return code


def check_industry(code: str) -> str:
    code = code.strip()
    if load_catalogue().industry(code) is None:
        raise Unprocessable("Choose an industry from the list", field="industry")
    return code


def check_permits(codes: list[str]) -> list[str]:
    """Permits name hazardous materials of the catalogue (a licence to receive them)."""
    cat = load_catalogue()
    out: list[str] = []
    for code in dict.fromkeys(c.strip() for c in codes if c and c.strip()):
        material = cat.find(code)
        if material is None or not material.hazardous:
            raise Unprocessable("Permits name hazardous materials from the catalogue", field="permits")
        out.append(code)
    return out


def _park(session: Session, park_id: int | None) -> Park | None:
    if park_id is None:
        return None
    park = session.get(Park, park_id)
    if park is None:
        raise Unprocessable("This park does not exist", field="park_id")
    return park


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float
    province_code: str | None
    city_code: str | None
    county_code: str | None


def locate_enterprise(
    address: str, lat: float | None, lon: float | None, park: Park | None, settings: Settings | None
) -> Point:
    """Coordinates and division codes: the given point, else the park's, else the address geocoded (offline table,
    or the configured geocoder first). Uses the listings' `resolve_location` so both geocode the same way."""
    from exchange.listings.service import resolve_location

    if (lat is None) != (lon is None):
        raise Unprocessable("Give both latitude and longitude, or neither", field="lat" if lat is None else "lon")
    # resolve_location falls back to an enterprise's own place; a blank stand-in makes it geocode the address.
    blank = Enterprise(name="", uscc="", industry="", address="", lat=0.0, lon=0.0)
    if lat is None and park is not None:
        lat, lon = park.lat, park.lon
    if lat is not None and lon is not None:
        where = resolve_location(blank, address, lat, lon, settings)
    else:
        try:
            where = resolve_location(blank, address, None, None, settings)
        except Unprocessable:
            raise Unprocessable(
                "We could not place this address: name its province, city or county, choose a park, "
                "or enter coordinates",
                field="address",
            ) from None
    return Point(where.lat, where.lon, where.province_code, where.city_code, where.county_code)


# ---------------------------------------------------------------- who may see and do what


def is_member(user: User | None, enterprise: Enterprise) -> bool:
    return user is not None and user.enterprise_id is not None and user.enterprise_id == enterprise.id


def can_review(user: User | None, enterprise: Enterprise) -> bool:
    """Admins review every enterprise; a park manager those that named their park."""
    if user is None:
        return False
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.PARK_MANAGER and user.park_id is not None and user.park_id == enterprise.park_id


def sees_private(user: User | None, enterprise: Enterprise) -> bool:
    return is_member(user, enterprise) or can_review(user, enterprise)


def visibility_clause(user: User | None) -> ColumnElement[bool]:
    """WHERE clause: approved enterprises for everyone; the rest for their members and reviewers."""
    approved = col(Enterprise.status) == EnterpriseStatus.APPROVED
    if user is None:
        return approved
    if user.role is Role.ADMIN:
        return sa.true()
    clauses: list[ColumnElement[bool]] = [approved]
    if user.enterprise_id is not None:
        clauses.append(col(Enterprise.id) == user.enterprise_id)
    if user.role is Role.PARK_MANAGER and user.park_id is not None:
        clauses.append(col(Enterprise.park_id) == user.park_id)
    return sa.or_(*clauses)


def get_visible(session: Session, user: User | None, enterprise_id: int) -> Enterprise:
    """The enterprise if this user may see it; 404 otherwise (the same as for an id that does not exist)."""
    ent = session.exec(select(Enterprise).where(Enterprise.id == enterprise_id, visibility_clause(user))).first()
    if ent is None:
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    return ent


def to_view(user: User | None, enterprise: Enterprise) -> EnterprisePublic:
    """`EnterprisePrivate` (with contacts) for members and reviewers, `EnterprisePublic` for everyone else."""
    data: dict[str, Any] = enterprise.model_dump()
    data["permits"] = list(enterprise.permits or [])
    if sees_private(user, enterprise):
        return EnterprisePrivate.model_validate(data)
    return EnterprisePublic.model_validate(data)


def ensure_can_post(session: Session, user: User) -> Enterprise:
    """The approved enterprise a user posts listings for (`exchange.listings.service.poster_enterprise` asks)."""
    if user.role is not Role.ENTERPRISE or user.enterprise_id is None:
        raise Forbidden("only members of an enterprise can post listings")
    ent = session.get(Enterprise, user.enterprise_id)
    if ent is None or ent.status is not EnterpriseStatus.APPROVED:
        raise Forbidden("your enterprise must be approved before it can post listings")
    return ent


# ---------------------------------------------------------------- reading


@dataclass
class EnterpriseFilters:
    status: EnterpriseStatus | None = None
    park_id: int | None = None
    industry: str | None = None
    city_code: str | None = None
    q: str | None = None  # part of the name or the exact USCC
    limit: int = 50
    offset: int = 0


def list_enterprises(
    session: Session, user: User | None, f: EnterpriseFilters | None = None
) -> tuple[int, list[Enterprise]]:
    """(total, one page) of the enterprises this user may see, by name."""
    f = f or EnterpriseFilters()
    where: list[ColumnElement[bool]] = [visibility_clause(user)]
    if f.status is not None:
        where.append(col(Enterprise.status) == f.status)
    if f.park_id is not None:
        where.append(col(Enterprise.park_id) == f.park_id)
    if f.industry:
        where.append(col(Enterprise.industry) == f.industry)
    if f.city_code:
        where.append(col(Enterprise.city_code) == f.city_code)
    if f.q and f.q.strip():
        text = f.q.strip()
        where.append(sa.or_(col(Enterprise.name).contains(text, autoescape=True), col(Enterprise.uscc) == text.upper()))
    total = int(session.exec(select(func.count()).select_from(Enterprise).where(*where)).one())
    limit = max(1, min(f.limit, MAX_PAGE))
    stmt = select(Enterprise).where(*where).order_by(col(Enterprise.name), col(Enterprise.id))
    return total, list(session.exec(stmt.limit(limit).offset(max(0, f.offset))))


def review_queue(session: Session, user: User) -> list[Enterprise]:
    """Pending enterprises this user may approve, oldest first: all for admins, their park's for a manager."""
    if user.role is Role.ADMIN:
        scope: ColumnElement[bool] = sa.true()
    elif user.role is Role.PARK_MANAGER and user.park_id is not None:
        scope = col(Enterprise.park_id) == user.park_id
    else:
        raise Forbidden("only admins and park managers review enterprises")
    stmt = select(Enterprise).where(col(Enterprise.status) == EnterpriseStatus.PENDING, scope)
    return list(session.exec(stmt.order_by(col(Enterprise.created_at), col(Enterprise.id))))


def members(session: Session, enterprise_id: int) -> list[User]:
    return list(session.exec(select(User).where(User.enterprise_id == enterprise_id).order_by(col(User.id))))


def add_member(session: Session, by: User, enterprise_id: int, data: MemberCreate) -> User:
    """A colleague joins the enterprise: an active enterprise account tied to it from the start. Only its
    members and admins may add one (a second sign-up could not register the same USCC again)."""
    from exchange.accounts.service import check_new_account, new_account

    ent = get_visible(session, by, enterprise_id)
    if not (by.role is Role.ADMIN or is_member(by, ent)):
        raise Forbidden("only the enterprise's members and admins can add a colleague")
    user = new_account(
        session,
        check_new_account(session, str(data.email), data.password),
        data.display_name.strip(),
        data.password,
        Role.ENTERPRISE,
        enterprise_id=ent.id,
        locale=by.locale,
    )
    audit.record(
        session, actor_id=by.id, action="enterprise.member_add", entity="user", entity_id=user.id, enterprise=ent.id
    )
    session.commit()
    return user


def parks_by_id(session: Session) -> dict[int, Park]:
    return {p.id: p for p in session.exec(select(Park)) if p.id is not None}


# ---------------------------------------------------------------- writing


def _ensure_unique_uscc(session: Session, uscc: str, own_id: int | None = None) -> None:
    other = session.exec(select(Enterprise).where(Enterprise.uscc == uscc)).first()
    if other is not None and other.id != own_id:
        raise Conflict("An enterprise with this unified social credit code is already registered", field="uscc")


def _flush_unique(session: Session) -> None:
    """Flush; a concurrent registration of the same USCC loses here with a 409 rather than a 500."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "An enterprise with this unified social credit code is already registered", field="uscc"
        ) from None


def register(session: Session, user: User, data: EnterpriseCreate, settings: Settings | None = None) -> Enterprise:
    """A new enterprise, pending approval, with the registering user as its first member."""
    if user.role is not Role.ENTERPRISE:
        raise Forbidden("only enterprise accounts register an enterprise")
    if user.enterprise_id is not None:
        raise Conflict("Your account already belongs to an enterprise")
    uscc = normalise_uscc(data.uscc)
    industry = check_industry(data.industry)
    park = _park(session, data.park_id)
    permits = check_permits(data.permits)
    name, address = data.name.strip(), data.address.strip()
    if not name:
        raise Unprocessable("Enter the enterprise's name", field="name")
    if not address:
        raise Unprocessable("Enter the address", field="address")
    _ensure_unique_uscc(session, uscc)
    where = locate_enterprise(address, data.lat, data.lon, park, settings)
    ent = Enterprise(
        name=name,
        uscc=uscc,
        industry=industry,
        address=address,
        park_id=park.id if park else None,
        lat=where.lat,
        lon=where.lon,
        province_code=where.province_code,
        city_code=where.city_code,
        county_code=where.county_code,
        status=EnterpriseStatus.PENDING,
        permits=permits,
        contact_name=(data.contact_name or "").strip() or None,
        contact_phone=(data.contact_phone or "").strip() or None,
        contact_email=(data.contact_email or "").strip() or None,
    )
    session.add(ent)
    _flush_unique(session)
    user.enterprise_id = ent.id
    session.add(user)
    audit.record(
        session,
        actor_id=user.id,
        action="enterprise.register",
        entity="enterprise",
        entity_id=ent.id,
        park_id=ent.park_id,
        to_state=EnterpriseStatus.PENDING.value,
        uscc=uscc,
    )
    session.commit()
    return ent


def update(
    session: Session, user: User, enterprise_id: int, data: EnterpriseUpdate, settings: Settings | None = None
) -> Enterprise:
    """Members and admins change an enterprise. A rejected enterprise that its members correct goes back to the
    review queue (pending)."""
    ent = get_visible(session, user, enterprise_id)
    admin = user.role is Role.ADMIN
    if not (admin or is_member(user, ent)):
        raise Forbidden("only the enterprise's members and admins can change it")
    changes = data.model_dump(exclude_unset=True)
    if not admin and (denied := sorted(ADMIN_ONLY_FIELDS & changes.keys())):
        raise Forbidden("only an admin can change this after registration", field=denied[0])
    for required in ("name", "uscc", "industry", "address"):
        if required in changes and changes[required] is None:
            raise Unprocessable("This field is required", field=required)
    ent = get_for_update(session, Enterprise, enterprise_id, "enterprise")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if getattr(ent, name) != value:
            before[name], after[name] = getattr(ent, name), value
            setattr(ent, name, value)

    if "name" in changes:
        put("name", changes["name"].strip())
    if "uscc" in changes:
        uscc = normalise_uscc(changes["uscc"])
        _ensure_unique_uscc(session, uscc, own_id=ent.id)
        put("uscc", uscc)
    if "industry" in changes:
        put("industry", check_industry(changes["industry"]))
    if "park_id" in changes:
        park = _park(session, changes["park_id"])
        put("park_id", park.id if park else None)
    if "permits" in changes:
        put("permits", check_permits(changes["permits"] or []))
    for contact in ("contact_name", "contact_phone", "contact_email"):
        if contact in changes:
            put(contact, (changes[contact] or "").strip() or None)
    lat, lon = changes.get("lat"), changes.get("lon")
    if "address" in changes or lat is not None or lon is not None:
        address = (changes.get("address") or ent.address).strip()
        park = session.get(Park, ent.park_id) if ent.park_id is not None else None
        where = locate_enterprise(address, lat, lon, park, settings)
        put("address", address)
        for name in ("lat", "lon", "province_code", "city_code", "county_code"):
            put(name, getattr(where, name))
    from_state = ent.status
    if ent.status is EnterpriseStatus.REJECTED and after and not admin:
        ent.status = EnterpriseStatus.PENDING
    if not after and ent.status is from_state:
        return ent
    session.add(ent)
    _flush_unique(session)
    audit.record(
        session,
        actor_id=user.id,
        action="enterprise.update",
        entity="enterprise",
        entity_id=ent.id,
        park_id=ent.park_id,
        from_state=from_state.value if ent.status is not from_state else None,
        to_state=ent.status.value if ent.status is not from_state else None,
        fields=sorted(after),
    )
    session.commit()
    return ent


def _review(session: Session, user: User, enterprise_id: int, to: EnterpriseStatus, reason: str | None) -> Enterprise:
    ent = get_visible(session, user, enterprise_id)
    if not can_review(user, ent):
        raise Forbidden("only an admin or the manager of the enterprise's park can approve or reject it")
    ent = get_for_update(session, Enterprise, enterprise_id, "enterprise")
    if ent.status is not EnterpriseStatus.PENDING:
        raise Conflict(f"enterprise {enterprise_id} is {ent.status.value}, not pending")
    ent.status = to
    if to is EnterpriseStatus.APPROVED:
        ent.approved_at, ent.approved_by_id = utcnow(), user.id
    session.add(ent)
    detail: dict[str, object] = {"reason": reason.strip()} if reason and reason.strip() else {}
    audit.record(
        session,
        actor_id=user.id,
        action="enterprise.approve" if to is EnterpriseStatus.APPROVED else "enterprise.reject",
        entity="enterprise",
        entity_id=ent.id,
        park_id=ent.park_id,
        from_state=EnterpriseStatus.PENDING.value,
        to_state=to.value,
        **detail,
    )
    session.commit()
    return ent


def approve(session: Session, user: User, enterprise_id: int) -> Enterprise:
    return _review(session, user, enterprise_id, EnterpriseStatus.APPROVED, None)


def reject(session: Session, user: User, enterprise_id: int, reason: str | None = None) -> Enterprise:
    return _review(session, user, enterprise_id, EnterpriseStatus.REJECTED, reason)


def last_review_reason(session: Session, enterprise_id: int) -> str | None:
    """Why the enterprise was last rejected (from the audit trail), for its members."""
    from exchange.audit.models import AuditEvent

    stmt = (
        select(AuditEvent)
        .where(AuditEvent.entity == "enterprise", AuditEvent.entity_id == enterprise_id)
        .where(AuditEvent.action == "enterprise.reject")
        .order_by(col(AuditEvent.id).desc())
    )
    event = session.exec(stmt).first()
    reason = event.detail.get("reason") if event is not None else None
    return reason if isinstance(reason, str) else None
