"""Posting, editing, finding and reading supply and demand listings.

One set of functions behind the pages, the JSON API and the spreadsheet import. Who may see a listing is decided
in one place, `visibility_clause(user)` (SQL) and `get_visible(...)` (one row), so that guessing an id never shows a
listing the user could not find by browsing: such ids answer 404, exactly like ids that do not exist.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from exchange.accounts.models import Role, User
from exchange.audit import service as audit
from exchange.core.db import get_for_update, utcnow
from exchange.core.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.listings.models import (
    Attachment,
    ListingChange,
    ListingChangePublic,
    ListingCreate,
    ListingKind,
    ListingOwnerView,
    ListingPublic,
    ListingStatus,
    ListingUpdate,
    QuantityBasis,
    Visibility,
)
from exchange.listings.models import Listing as Listing
from exchange.reference.catalogue import Material, load_catalogue
from exchange.settings import Settings

KG_PER_T = 1000
FEN_PER_CNY = 100
EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius
KM_PER_DEG_LAT = math.pi * EARTH_RADIUS_KM / 180
ANONYMOUS_ROUNDING_DEG = 1  # decimals kept of an anonymous listing's point for outsiders: 0.1° ≈ 11 km
MAX_ATTACHMENTS = 20
MAX_POINT_CANDIDATES = 50_000
SORT_KEYS = ("created_at", "quantity", "price", "distance")

# Fields a change record and `snapshot` speak about, in API units.
TRACKED_FIELDS = (
    "kind",
    "material_code",
    "grade",
    "accepted_grades",
    "parameters",
    "quantity_t",
    "quantity_basis",
    "available_from",
    "available_to",
    "price_cny_per_t",
    "price_note",
    "lat",
    "lon",
    "address",
    "province_code",
    "city_code",
    "county_code",
    "max_distance_km",
    "notes",
    "visibility",
    "status",
)
PRIVATE_FIELDS = frozenset({"price_cny_per_t", "price_note"})


# ---------------------------------------------------------------- units


def t_to_kg(t: Decimal, field: str = "quantity_t") -> int:
    kg = t * KG_PER_T
    if kg != kg.to_integral_value():
        raise Unprocessable("Tonnes take at most 3 decimals", field=field)
    return int(kg)


def kg_to_t(kg: int) -> Decimal:
    return (Decimal(kg) / KG_PER_T).quantize(Decimal("0.001"))


def cny_to_fen(cny: Decimal) -> int:
    fen = cny * FEN_PER_CNY
    if fen != fen.to_integral_value():
        raise Unprocessable("Prices take at most 2 decimals", field="price_cny_per_t")
    return int(fen)


def fen_to_cny(fen: int | None) -> Decimal | None:
    return None if fen is None else (Decimal(fen) / FEN_PER_CNY).quantize(Decimal("0.01"))


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of the IUGG mean radius (error below 0.5 % against the ellipsoid)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float] | None:
    """(min_lat, max_lat, min_lon, max_lon) containing every point within the radius; None when it spans all
    longitudes (near a pole, or a radius beyond a quarter of the globe) so only latitude narrows."""
    dlat = radius_km / KM_PER_DEG_LAT
    min_lat, max_lat = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    cos_lat = min(math.cos(math.radians(min_lat)), math.cos(math.radians(max_lat)))
    if cos_lat <= 1e-6 or radius_km / (KM_PER_DEG_LAT * cos_lat) >= 180:
        return min_lat, max_lat, -180.0, 180.0
    dlon = radius_km / (KM_PER_DEG_LAT * cos_lat)
    return min_lat, max_lat, lon - dlon, lon + dlon


# ---------------------------------------------------------------- who may post and see


def poster_enterprise(session: Session, user: User) -> Enterprise:
    """The approved enterprise the user posts for (the enterprises engineer's `ensure_can_post` decides)."""
    try:
        from exchange.enterprises.service import ensure_can_post
    except ImportError:  # pragma: no cover - until exchange.enterprises.service lands
        if user.role is not Role.ENTERPRISE or user.enterprise_id is None:
            raise Forbidden("only members of an enterprise can post listings") from None
        ent = session.get(Enterprise, user.enterprise_id)
        if ent is None or ent.status is not EnterpriseStatus.APPROVED:
            raise Forbidden("your enterprise must be approved before it can post listings") from None
        return ent
    enterprise: Enterprise = ensure_can_post(session, user)
    return enterprise


def viewer_has_agreement(session: Session, user: User | None, listing: Listing) -> bool:
    """True when the viewer's enterprise has agreed a match on this listing: an anonymous listing then shows its
    enterprise and price to that partner. Hook for the matching rounds (no agreements table yet)."""
    return False


def identity_hidden(session: Session, user: User | None, listing: Any) -> bool:
    """An anonymous listing hides its enterprise, price, address and exact point from everyone but its own
    enterprise, admins and agreed partners. `listing` is a Listing or a row with its `enterprise_id` and
    `visibility`."""
    return (
        listing.visibility is Visibility.ANONYMOUS
        and not _privileged(user, listing)
        and not viewer_has_agreement(session, user, listing)
    )


def _privileged(user: User | None, listing: Any) -> bool:
    """Owner enterprise's members and admins see everything, private fields included."""
    if user is None:
        return False
    if user.role is Role.ADMIN:
        return True
    return user.enterprise_id is not None and user.enterprise_id == listing.enterprise_id


def _region_clause(code: str | None) -> ColumnElement[bool]:
    if not code or len(code) != 6:
        return sa.false()
    if code.endswith("0000"):
        return col(Listing.province_code) == code
    return col(Listing.city_code) == code


def visibility_clause(user: User | None) -> ColumnElement[bool]:
    """WHERE clause: the listings this user may see.

    Public and anonymous listings: everyone, while open (staff see every status). Park-only listings: members of
    enterprises in the same park, that park's manager, regulators of its region, admins. Owners see all of theirs.
    """
    listed = col(Listing.visibility).in_([Visibility.PUBLIC, Visibility.ANONYMOUS])
    is_open = col(Listing.status) == ListingStatus.OPEN
    park_only = col(Listing.visibility) == Visibility.PARK
    if user is None:
        return sa.and_(listed, is_open)
    if user.role is Role.ADMIN:
        return sa.true()
    if user.role is Role.PARK_MANAGER:
        same_park = col(Listing.park_id) == user.park_id if user.park_id is not None else sa.false()
        return sa.or_(listed, sa.and_(park_only, same_park))
    if user.role is Role.REGULATOR:
        return sa.or_(listed, sa.and_(park_only, _region_clause(user.region_code)))
    if user.enterprise_id is None:
        return sa.and_(listed, is_open)
    own_park = sa.select(col(Enterprise.park_id)).where(col(Enterprise.id) == user.enterprise_id).scalar_subquery()
    same_park = sa.and_(park_only, col(Listing.park_id).is_not(None), col(Listing.park_id) == own_park)
    own = col(Listing.enterprise_id) == user.enterprise_id
    return sa.or_(own, sa.and_(is_open, sa.or_(listed, same_park)))


def visible_listings_query(user: User | None) -> SelectOfScalar[Listing]:
    """SELECT of the listings the user may see; add your own filters (other domains reuse this)."""
    return select(Listing).where(visibility_clause(user))


def get_visible(session: Session, user: User | None, listing_id: int) -> Listing:
    """The listing if the user may see it; 404 otherwise (the same answer as for an id that does not exist)."""
    listing = session.exec(visible_listings_query(user).where(Listing.id == listing_id)).first()
    if listing is None:
        other = session.get(Listing, listing_id)
        if other is not None and viewer_has_agreement(session, user, other):
            return other
        raise NotFound(f"listing {listing_id} does not exist")
    return listing


def get_owned(
    session: Session, user: User, listing_id: int, *, for_update: bool = False, allow_admin: bool = False
) -> Listing:
    """The listing for a change by its enterprise's members (admins too when `allow_admin`, for moderation):
    404 if the user may not see it, 403 if they may see but not change it. Locked when `for_update`."""
    listing = get_visible(session, user, listing_id)
    if not (can_edit(user, listing) or allow_admin and user.role is Role.ADMIN):
        raise Forbidden("only members of the enterprise that posted this listing can change it")
    if for_update:
        listing = get_for_update(session, Listing, listing_id, "listing")
    return listing


def can_edit(user: User | None, listing: Listing) -> bool:
    return user is not None and user.enterprise_id is not None and user.enterprise_id == listing.enterprise_id


# ---------------------------------------------------------------- views


def _material(code: str) -> Material | None:
    return load_catalogue().find(code)


def material_name(code: str, locale: str) -> str:
    m = _material(code)
    if m is None:
        return code
    return m.name_zh if locale == "zh-CN" else m.name_en


def to_view(
    session: Session,
    listing: Listing,
    user: User | None,
    *,
    enterprise: Enterprise | None = None,
    distance_km: float | None = None,
    locale: str = "zh-CN",
) -> ListingPublic:
    """The listing as this viewer may see it: `ListingOwnerView` for the owner and admins, else `ListingPublic`
    with an anonymous listing's enterprise, price, address and exact point withheld."""
    assert listing.id is not None
    privileged = _privileged(user, listing)
    if enterprise is None or enterprise.id != listing.enterprise_id:
        enterprise = session.get(Enterprise, listing.enterprise_id)
    hidden = identity_hidden(session, user, listing)
    lat, lon = listing.lat, listing.lon
    if hidden:
        lat, lon = round(lat, ANONYMOUS_ROUNDING_DEG), round(lon, ANONYMOUS_ROUNDING_DEG)
    data: dict[str, Any] = {
        "id": listing.id,
        "kind": listing.kind,
        "material_code": listing.material_code,
        "material_name": material_name(listing.material_code, locale),
        "grade": listing.grade,
        "accepted_grades": list(listing.accepted_grades or []),
        "parameters": dict(listing.parameters or {}),
        "quantity_t": kg_to_t(listing.quantity_kg),
        "available_t": kg_to_t(listing.quantity_kg - listing.allocated_kg),
        "quantity_basis": listing.quantity_basis,
        "available_from": listing.available_from,
        "available_to": listing.available_to,
        "price_cny_per_t": None if hidden else fen_to_cny(listing.price_fen_per_t),
        "lat": lat,
        "lon": lon,
        "address": None if hidden else listing.address,
        "province_code": listing.province_code,
        "city_code": listing.city_code,
        "county_code": None if hidden else listing.county_code,
        "park_id": listing.park_id,
        "max_distance_km": listing.max_distance_km,
        "notes": listing.notes,
        "visibility": listing.visibility,
        "status": listing.status,
        "version": listing.version,
        "enterprise_id": None if hidden else listing.enterprise_id,
        "enterprise_name": None if hidden or enterprise is None else enterprise.name,
        "identity_hidden": hidden,
        "created_at": listing.created_at,
        "updated_at": listing.updated_at,
        "distance_km": None if distance_km is None else round(distance_km, 1),
    }
    if not privileged:
        return ListingPublic(**data)
    return ListingOwnerView(
        **data,
        price_note=listing.price_note,
        contact_name=enterprise.contact_name if enterprise else None,
        contact_phone=enterprise.contact_phone if enterprise else None,
        contact_email=enterprise.contact_email if enterprise else None,
        created_by_id=listing.created_by_id,
    )


def etag(listing: Listing) -> str:
    return f'"listing-{listing.id}-v{listing.version}"'


def snapshot(listing: Listing) -> dict[str, Any]:
    """The tracked fields in API units, JSON-ready (for change records and as the base of an update)."""
    out: dict[str, Any] = {}
    for name in TRACKED_FIELDS:
        if name == "quantity_t":
            out[name] = str(kg_to_t(listing.quantity_kg))
        elif name == "price_cny_per_t":
            price = fen_to_cny(listing.price_fen_per_t)
            out[name] = None if price is None else str(price)
        else:
            value = getattr(listing, name)
            if isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, (list, dict)):
                value = type(value)(value)
            elif hasattr(value, "value"):
                value = value.value
            out[name] = value
    return out


# ---------------------------------------------------------------- validation


@dataclass
class Location:
    lat: float
    lon: float
    address: str | None
    province_code: str | None
    city_code: str | None
    county_code: str | None


def _locate_codes(lat: float, lon: float) -> tuple[str | None, str | None, str | None]:
    try:
        from exchange.geo import service as geo
    except ImportError:  # pragma: no cover - until exchange.geo lands
        from exchange.reference.places import locate

        province, city = locate(lat, lon)
        return province, city, None
    found: Any = geo.locate(lat, lon)
    if found is None:
        return None, None, None
    if isinstance(found, tuple):
        padded = (*found, None, None, None)
        return padded[0], padded[1], padded[2]
    return (
        getattr(found, "province_code", None),
        getattr(found, "city_code", None),
        getattr(found, "county_code", None),
    )


def _geocode(text: str, settings: Settings | None) -> Location | None:
    try:
        from exchange.geo import service as geo
    except ImportError:  # pragma: no cover - until exchange.geo lands
        from exchange.reference.places import geocode_offline

        hit = geocode_offline(text)
        if hit is None:
            return None
        return Location(hit.lat, hit.lon, text, hit.province_code, hit.city_code, hit.county_code)
    point: Any = geo.geocode(text, settings)
    if point is None:
        return None
    return Location(point.lat, point.lon, text, point.province_code, point.city_code, point.county_code)


def geocode_place(text: str, settings: Settings | None) -> Location | None:
    """A place name or address → its point and division codes (online geocoder if configured, else offline)."""
    text = text.strip()
    return _geocode(text, settings) if text else None


def resolve_location(
    enterprise: Enterprise, address: str | None, lat: float | None, lon: float | None, settings: Settings | None
) -> Location:
    """A point with its division codes: given coordinates, else a geocoded address, else the enterprise's own."""
    address = (address or "").strip() or None
    if lat is not None and lon is not None:
        if not (-90 <= lat <= 90):
            raise Unprocessable("Latitude must be between -90 and 90", field="lat")
        if not (-180 <= lon <= 180):
            raise Unprocessable("Longitude must be between -180 and 180", field="lon")
        province, city, county = _locate_codes(lat, lon)
        return Location(lat, lon, address, province, city, county)
    if address is not None and address != enterprise.address:
        found = _geocode(address, settings)
        if found is None:
            raise Unprocessable("We could not find this address; check it or enter coordinates", field="address")
        return found
    return Location(
        enterprise.lat,
        enterprise.lon,
        address or enterprise.address,
        enterprise.province_code,
        enterprise.city_code,
        enterprise.county_code,
    )


def check_refinements(enterprise: Enterprise, d: Mapping[str, Any]) -> tuple[Material, dict[str, Any]]:
    """Catalogue rules for a listing's material, grades and parameters; returns the storage values."""
    material = _material(str(d.get("material_code") or ""))
    if material is None:
        raise Unprocessable("Unknown material: choose one from the catalogue", field="material_code")
    kind = ListingKind(d.get("kind") or ListingKind.SUPPLY)
    grade = (d.get("grade") or "").strip() or None
    accepted = list(dict.fromkeys(g.strip() for g in d.get("accepted_grades") or [] if g and g.strip()))
    params: dict[str, float] = dict(d.get("parameters") or {})
    if grade is not None:
        if kind is ListingKind.DEMAND:
            raise Unprocessable("A demand lists the grades it accepts instead of one grade", field="grade")
        if material.grade(grade) is None:
            raise Unprocessable("This material has no such grade", field="grade")
    if accepted:
        if kind is ListingKind.SUPPLY:
            raise Unprocessable("Only a demand lists accepted grades", field="accepted_grades")
        if any(material.grade(g) is None for g in accepted):
            raise Unprocessable("This material has no such grade", field="accepted_grades")
    known = {p.code for p in material.parameters}
    for code, value in params.items():
        if code not in known:
            raise Unprocessable("This material has no such parameter", field="parameters")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Unprocessable("Parameters must be numbers", field="parameters")
    if grade is not None and params:
        g = material.grade(grade)
        if g is not None and not g.admits(params):
            raise Unprocessable("The measured parameters do not meet this grade's limits", field="parameters")
    if kind is ListingKind.DEMAND and material.hazardous and material.code not in (enterprise.permits or []):
        raise Unprocessable("Your enterprise holds no permit to receive this hazardous waste", field="material_code")
    visibility = Visibility(d.get("visibility") or Visibility.PUBLIC)
    if visibility is Visibility.PARK and enterprise.park_id is None:
        raise Unprocessable("Your enterprise is not in a park: choose public or anonymous", field="visibility")
    start, end = d.get("available_from"), d.get("available_to")
    if start and end and end < start:
        raise Unprocessable("The availability window ends before it starts", field="available_to")
    price = d.get("price_cny_per_t")
    return material, {
        "kind": kind,
        "material_code": material.code,
        "grade": grade,
        "accepted_grades": accepted,
        "parameters": {k: float(v) for k, v in params.items()},
        "quantity_kg": t_to_kg(Decimal(d["quantity_t"])),
        "quantity_basis": QuantityBasis(d.get("quantity_basis") or QuantityBasis.PER_MONTH),
        "available_from": start,
        "available_to": end,
        "price_fen_per_t": None if price is None else cny_to_fen(Decimal(price)),
        "price_note": (d.get("price_note") or "").strip() or None,
        "max_distance_km": d.get("max_distance_km"),
        "notes": (d.get("notes") or "").strip() or None,
        "visibility": visibility,
        "park_id": enterprise.park_id,
    }


def prepare_listing(enterprise: Enterprise, user: User, data: ListingCreate, settings: Settings | None) -> Listing:
    """A validated, unsaved listing (raises Unprocessable naming the field)."""
    _, values = check_refinements(enterprise, data.model_dump())
    where = resolve_location(enterprise, data.address, data.lat, data.lon, settings)
    assert enterprise.id is not None
    now = utcnow()
    return Listing(
        enterprise_id=enterprise.id,
        created_by_id=user.id,
        lat=where.lat,
        lon=where.lon,
        address=where.address,
        province_code=where.province_code,
        city_code=where.city_code,
        county_code=where.county_code,
        created_at=now,
        updated_at=now,
        **values,
    )


# ---------------------------------------------------------------- writing


def _record(
    session: Session, listing: Listing, user: User, action: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert listing.id is not None
    session.add(ListingChange(listing_id=listing.id, user_id=user.id, action=action, before=before, after=after))
    # The audit trail names the changed fields only: never prices (nor their notes).
    audit.record(
        session,
        actor_id=user.id,
        action=f"listing.{action}",
        entity="listing",
        entity_id=listing.id,
        park_id=listing.park_id,
        from_state=before.get("status") if "status" in before else None,
        to_state=after.get("status") if "status" in after else None,
        fields=sorted(set(before) | set(after)),
        version=listing.version,
        kind=listing.kind.value,
        material=listing.material_code,
    )


def insert_listing(session: Session, listing: Listing, user: User, action: str = "created") -> Listing:
    """Add a prepared listing and its first change record; the caller commits (the import adds many at once)."""
    session.add(listing)
    session.flush()
    after = {k: v for k, v in snapshot(listing).items() if v not in (None, [], {})}
    _record(session, listing, user, action, {}, after)
    return listing


def create_listing(
    session: Session,
    user: User,
    data: ListingCreate,
    settings: Settings | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
    *,
    action: str = "created",
) -> Listing:
    """Post a listing for the user's approved enterprise (with any test reports), in one transaction."""
    enterprise = poster_enterprise(session, user)
    listing = prepare_listing(enterprise, user, data, settings)
    checked = [check_upload(name, content, settings) for name, content in attachments]
    insert_listing(session, listing, user, action)
    for upload in checked:
        _store_attachment(session, listing, user, upload, settings)
    session.commit()
    return listing


def _check_version(listing: Listing, version: int | None, if_match: str | None) -> None:
    if if_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
        if "*" not in tags and etag(listing) not in tags:
            raise PreconditionFailed(
                f"listing {listing.id} has changed since you read it (now version {listing.version}); "
                "reload it and apply your change again",
                field="version",
            )
    if version is not None and version != listing.version:
        raise Conflict(
            f"listing {listing.id} was changed by someone else (you edited version {version}, it is now version "
            f"{listing.version}); reload it and apply your change again",
            field="version",
        )
    if if_match is None and version is None:
        raise Unprocessable(
            "send the version you last read (field 'version') or an If-Match header with its ETag", field="version"
        )


def update_listing(
    session: Session,
    user: User,
    listing_id: int,
    data: ListingUpdate,
    settings: Settings | None = None,
    *,
    if_match: str | None = None,
) -> Listing:
    """Change some fields of an open or paused listing; a stale version answers 409 (412 for If-Match)."""
    listing = get_owned(session, user, listing_id, for_update=True)
    _check_version(listing, data.version, if_match)
    if listing.status is ListingStatus.CLOSED:
        raise Conflict("a closed listing cannot be edited", field="status")
    enterprise = session.get(Enterprise, listing.enterprise_id)
    assert enterprise is not None
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for key in ("material_code", "quantity_t", "kind"):
        if key in changes and changes[key] is None:
            raise Unprocessable("This field is required", field=key)
    before = snapshot(listing)
    draft = {**before, **changes}
    if "material_code" in changes and changes["material_code"] != before["material_code"] and "grade" not in changes:
        draft["grade"] = None  # a grade belongs to its material
        draft["accepted_grades"] = [] if "accepted_grades" not in changes else draft["accepted_grades"]
        draft["parameters"] = {} if "parameters" not in changes else draft["parameters"]
    _, values = check_refinements(enterprise, draft)
    if values["quantity_kg"] < listing.allocated_kg:
        raise Unprocessable("The quantity cannot be less than what is already allocated", field="quantity_t")
    if {"address", "lat", "lon"} & set(changes):
        where = resolve_location(enterprise, draft.get("address"), changes.get("lat"), changes.get("lon"), settings)
        values.update(
            lat=where.lat,
            lon=where.lon,
            address=where.address,
            province_code=where.province_code,
            city_code=where.city_code,
            county_code=where.county_code,
        )
    values.pop("park_id")
    for key, value in values.items():
        setattr(listing, key, value)
    after_all = snapshot(listing)
    changed = [k for k in TRACKED_FIELDS if after_all[k] != before[k]]
    if not changed:
        session.rollback()
        return listing
    listing.version += 1
    listing.updated_at = utcnow()
    session.add(listing)
    _record(session, listing, user, "updated", {k: before[k] for k in changed}, {k: after_all[k] for k in changed})
    session.commit()
    return listing


TRANSITIONS: dict[str, tuple[frozenset[ListingStatus], ListingStatus]] = {
    "pause": (frozenset({ListingStatus.OPEN}), ListingStatus.PAUSED),
    "resume": (frozenset({ListingStatus.PAUSED}), ListingStatus.OPEN),
    "close": (frozenset({ListingStatus.OPEN, ListingStatus.PAUSED}), ListingStatus.CLOSED),
}
PAST = {"pause": "paused", "resume": "resumed", "close": "closed"}


def change_status(
    session: Session,
    user: User,
    listing_id: int,
    action: str,
    *,
    version: int | None = None,
    if_match: str | None = None,
) -> Listing:
    """Pause, resume or close a listing (closing is final). A version, if sent, must be current."""
    if action not in TRANSITIONS:
        raise NotFound(f"no such action {action!r}")
    allowed, target = TRANSITIONS[action]
    listing = get_owned(session, user, listing_id, for_update=True, allow_admin=action != "resume")
    if version is not None or if_match is not None:
        _check_version(listing, version, if_match)
    if listing.status not in allowed:
        raise Conflict(f"listing {listing_id} is {listing.status.value}; it cannot be {PAST[action]}", field="status")
    before = {"status": listing.status.value}
    listing.status = target
    listing.version += 1
    listing.updated_at = utcnow()
    session.add(listing)
    _record(session, listing, user, PAST[action], before, {"status": target.value})
    session.commit()
    return listing


def history(session: Session, user: User, listing_id: int) -> list[ListingChangePublic]:
    """Every change, oldest first: for the owner enterprise's members and admins."""
    listing = get_visible(session, user, listing_id)
    if not _privileged(user, listing):
        raise Forbidden("only the enterprise that posted this listing sees its history")
    rows = session.exec(
        select(ListingChange, User.display_name)
        .join(User, col(User.id) == col(ListingChange.user_id), isouter=True)
        .where(ListingChange.listing_id == listing_id)
        .order_by(col(ListingChange.id))
    ).all()
    return [
        ListingChangePublic(
            id=c.id or 0, at=c.at, user_id=c.user_id, user_name=name, action=c.action, before=c.before, after=c.after
        )
        for c, name in rows
    ]


# ---------------------------------------------------------------- search


@dataclass
class ListingFilters:
    kind: ListingKind | None = None
    material_code: str | None = None
    category: str | None = None
    province_code: str | None = None
    city_code: str | None = None
    park_id: int | None = None
    near_lat: float | None = None
    near_lon: float | None = None
    radius_km: float | None = None
    min_quantity_t: Decimal | None = None
    status: ListingStatus | None = None
    mine: bool = False
    sort: str = "-created_at"
    limit: int = 20
    offset: int = 0


@dataclass
class SearchResult:
    total: int
    rows: list[tuple[Listing, float | None]]


def category_materials(category: str) -> list[str]:
    cat = load_catalogue()
    codes = [m.code for m in cat.materials if category in (m.group, m.bulk_category)]
    if not codes:
        raise Unprocessable("Unknown category", field="category")
    return codes


def _where(user: User | None, f: ListingFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [visibility_clause(user)]
    if f.mine:
        if user is None or user.enterprise_id is None:
            raise Forbidden("only members of an enterprise have listings of their own")
        clauses.append(col(Listing.enterprise_id) == user.enterprise_id)
    if f.kind is not None:
        clauses.append(col(Listing.kind) == f.kind)
    if f.material_code:
        clauses.append(col(Listing.material_code) == f.material_code)
    if f.category:
        clauses.append(col(Listing.material_code).in_(category_materials(f.category)))
    if f.province_code:
        clauses.append(col(Listing.province_code) == f.province_code)
    if f.city_code:
        clauses.append(col(Listing.city_code) == f.city_code)
    if f.park_id is not None:
        clauses.append(col(Listing.park_id) == f.park_id)
    if f.min_quantity_t is not None:
        clauses.append(col(Listing.quantity_kg) >= t_to_kg(f.min_quantity_t, "min_quantity_t"))
    if f.status is not None:
        clauses.append(col(Listing.status) == f.status)
    return clauses


def _order(user: User | None, key: str, descending: bool) -> list[Any]:
    if key == "quantity":
        expr: Any = col(Listing.quantity_kg)
    elif key == "price":
        expr = col(Listing.price_fen_per_t)
        if user is None or user.role is not Role.ADMIN:
            # Sorting must not reveal hidden prices: anonymous listings of others sort as "no price".
            own = col(Listing.enterprise_id) == (user.enterprise_id if user and user.enterprise_id else -1)
            hidden = sa.and_(col(Listing.visibility) == Visibility.ANONYMOUS, sa.not_(own))
            expr = sa.case((hidden, sa.null()), else_=expr)
    else:
        expr = col(Listing.created_at)
    first = sa.desc(expr) if descending else sa.asc(expr)
    return [first.nulls_last(), sa.desc(col(Listing.id)) if descending else sa.asc(col(Listing.id))]


def search(session: Session, user: User | None, f: ListingFilters) -> SearchResult:
    """Listings the user may see, filtered, sorted and paginated (total counts all matches).

    Within R km: an indexed bounding box in SQL, then the exact great-circle distance in Python over the box's
    (id, lat, lon) tuples, so the total and the page are exact and the sort by distance is global.
    """
    total, rows = _search(session, user, f, (Listing,))
    return SearchResult(total, [(row[0], d) for row, d in rows])


def _search(
    session: Session, user: User | None, f: ListingFilters, load: tuple[Any, ...], count: bool = True
) -> tuple[int, list[tuple[Any, float | None]]]:
    """`search` loading `load` (the Listing entity, or a few of its columns with `Listing.id` first) per match;
    without `count`, the total is not counted (returned as -1) where that would take a query of its own."""
    descending = f.sort.startswith("-")
    key = f.sort.lstrip("-+")
    if key not in SORT_KEYS:
        raise Unprocessable("Sort by created_at, quantity, price or distance", field="sort")
    has_point = f.near_lat is not None and f.near_lon is not None
    if (f.near_lat is None) != (f.near_lon is None):
        raise Unprocessable("give both latitude and longitude of the point", field="near_lat")
    if f.radius_km is not None and not has_point:
        raise Unprocessable("A radius needs a point (near_lat, near_lon)", field="radius_km")
    if key == "distance" and not has_point:
        raise Unprocessable("Sorting by distance needs a point (near_lat, near_lon)", field="sort")
    clauses = _where(user, f)
    if not has_point:
        total = session.exec(select(sa.func.count()).select_from(Listing).where(*clauses)).one() if count else -1
        stmt = sa.select(*load).where(*clauses).order_by(*_order(user, key, descending)).limit(f.limit)
        return int(total), [(row, None) for row in session.execute(stmt.offset(f.offset))]
    assert f.near_lat is not None and f.near_lon is not None
    if f.radius_km is not None:
        box = bounding_box(f.near_lat, f.near_lon, f.radius_km)
        assert box is not None
        min_lat, max_lat, min_lon, max_lon = box
        clauses += [col(Listing.lat).between(min_lat, max_lat)]
        if max_lon - min_lon < 360:
            if min_lon < -180 or max_lon > 180:  # across the antimeridian: two ranges
                lo, hi = (min_lon + 360, max_lon) if min_lon < -180 else (min_lon, max_lon - 360)
                clauses.append(sa.or_(col(Listing.lon) >= lo, col(Listing.lon) <= hi))
            else:
                clauses.append(col(Listing.lon).between(min_lon, max_lon))
    order = _order(user, "created_at" if key == "distance" else key, descending)
    points = session.exec(
        select(Listing.id, Listing.lat, Listing.lon).where(*clauses).order_by(*order).limit(MAX_POINT_CANDIDATES)
    ).all()
    found: list[tuple[int, float]] = []
    for listing_id, lat, lon in points:
        d = great_circle_km(f.near_lat, f.near_lon, lat, lon)
        if f.radius_km is None or d <= f.radius_km:
            found.append((int(listing_id or 0), d))
    if key == "distance":
        found.sort(key=lambda p: (-p[1], -p[0]) if descending else (p[1], p[0]))
    page = found[f.offset : f.offset + f.limit]
    wanted = sa.select(*load).where(col(Listing.id).in_([i for i, _ in page]))
    by_id = {(row[0] if len(load) == 1 else row).id: row for row in session.execute(wanted)}
    return len(found), [(by_id[i], d) for i, d in page if i in by_id]


@dataclass(frozen=True)
class MapPoint:
    """A match on the browse map: where it is (approximately, for an anonymous listing of another enterprise)."""

    id: int
    kind: ListingKind
    material_code: str
    available_t: Decimal
    lat: float
    lon: float
    approximate: bool


MAP_COLUMNS = (
    Listing.id,
    Listing.enterprise_id,
    Listing.visibility,
    Listing.kind,
    Listing.material_code,
    Listing.quantity_kg,
    Listing.allocated_kg,
    Listing.lat,
    Listing.lon,
)


def map_points(session: Session, user: User | None, f: ListingFilters) -> list[MapPoint]:
    """The first `f.limit` matches of a search as map points: a few columns each, not whole listings and their
    views (the browse page asks for up to 500 on every visit), hidden by the same rule as `to_view`."""
    _, rows = _search(session, user, f, MAP_COLUMNS, count=False)
    out = []
    for row, _d in rows:
        hidden = identity_hidden(session, user, row)
        lat, lon = row.lat, row.lon
        if hidden:
            lat, lon = round(lat, ANONYMOUS_ROUNDING_DEG), round(lon, ANONYMOUS_ROUNDING_DEG)
        available_t = kg_to_t(row.quantity_kg - row.allocated_kg)
        out.append(MapPoint(row.id, row.kind, row.material_code, available_t, lat, lon, hidden))
    return out


def enterprises_by_id(session: Session, ids: Iterable[int]) -> dict[int, Enterprise]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.exec(select(Enterprise).where(col(Enterprise.id).in_(wanted))).all()
    return {e.id: e for e in rows if e.id is not None}


def views(
    session: Session, user: User | None, rows: Sequence[tuple[Listing, float | None]], locale: str = "zh-CN"
) -> list[ListingPublic]:
    ents = enterprises_by_id(session, (row.enterprise_id for row, _ in rows))
    return [
        to_view(session, row, user, enterprise=ents.get(row.enterprise_id), distance_km=d, locale=locale)
        for row, d in rows
    ]


# ---------------------------------------------------------------- attachments

SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)


@dataclass
class Upload:
    filename: str
    content: bytes
    content_type: str
    sha256: str


def _clean_filename(name: str, ext: str) -> str:
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[\x00-\x1f\x7f\"<>|:*?/]", "_", base).strip(" .") or f"report{ext}"
    return base[-200:]


def check_upload(filename: str, content: bytes, settings: Settings | None) -> Upload:
    """A test report must be a PDF, PNG or JPEG by its content (the name is not trusted) and within the limit."""
    limit = settings.max_upload_bytes if settings else 10 * 1024 * 1024
    if not content:
        raise Unprocessable("The file is empty", field="attachments")
    if len(content) > limit:
        raise Unprocessable("The file is too large", field="attachments")
    for magic, content_type, ext in SIGNATURES:
        if content.startswith(magic):
            return Upload(_clean_filename(filename, ext), content, content_type, hashlib.sha256(content).hexdigest())
    raise Unprocessable("Only PDF, PNG or JPEG test reports can be attached", field="attachments")


def upload_path(settings: Settings | None, sha256: str) -> Path:
    root = settings.upload_dir if settings else Path("var/uploads")
    return Path(root) / "listings" / sha256[:2] / sha256


def _store_attachment(
    session: Session, listing: Listing, user: User, upload: Upload, settings: Settings | None
) -> Attachment:
    """Write the bytes (content-addressed, so a rolled-back row leaves at worst an unreferenced file) and the row."""
    path = upload_path(settings, upload.sha256)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(upload.content)
        os.replace(tmp, path)
    assert listing.id is not None
    att = Attachment(
        listing_id=listing.id,
        filename=upload.filename,
        content_type=upload.content_type,
        size_bytes=len(upload.content),
        sha256=upload.sha256,
        uploaded_by_id=user.id,
    )
    session.add(att)
    return att


def add_attachments(
    session: Session, user: User, listing_id: int, files: Sequence[tuple[str, bytes]], settings: Settings | None
) -> list[Attachment]:
    if not files:
        raise Unprocessable("Choose a file", field="attachments")
    checked = [check_upload(name, content, settings) for name, content in files]
    listing = get_owned(session, user, listing_id, for_update=True)
    if listing.status is ListingStatus.CLOSED:
        raise Conflict("a closed listing cannot be changed", field="status")
    count = session.exec(
        select(sa.func.count()).select_from(Attachment).where(Attachment.listing_id == listing_id)
    ).one()
    if int(count) + len(checked) > MAX_ATTACHMENTS:
        raise Unprocessable("A listing can have at most 20 attachments", field="attachments")
    stored = [_store_attachment(session, listing, user, u, settings) for u in checked]
    session.flush()
    session.add(
        ListingChange(
            listing_id=listing_id,
            user_id=user.id,
            action="attached",
            after={"attachments": [a.filename for a in stored]},
        )
    )
    audit.record(
        session,
        actor_id=user.id,
        action="listing.attached",
        entity="listing",
        entity_id=listing_id,
        park_id=listing.park_id,
        files=len(stored),
    )
    session.commit()
    return stored


def list_attachments(session: Session, user: User | None, listing_id: int) -> list[Attachment]:
    get_visible(session, user, listing_id)
    stmt = select(Attachment).where(Attachment.listing_id == listing_id).order_by(col(Attachment.id))
    return list(session.exec(stmt))


def get_attachment(
    session: Session, user: User | None, attachment_id: int, settings: Settings | None
) -> tuple[Attachment, Path]:
    """The attachment and its file, if the user may see its listing (404 otherwise)."""
    att = session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound(f"attachment {attachment_id} does not exist")
    try:
        get_visible(session, user, att.listing_id)
    except NotFound:
        raise NotFound(f"attachment {attachment_id} does not exist") from None
    path = upload_path(settings, att.sha256)
    if not path.is_file():
        raise NotFound(f"the file of attachment {attachment_id} is missing")
    return att, path
