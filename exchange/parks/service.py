"""Industrial parks: listed for everyone, created by admins."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role, User
from exchange.audit import service as audit
from exchange.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.parks.models import Park, ParkCreate, ParkPublic
from exchange.reference.places import load_divisions


def to_public(park: Park) -> ParkPublic:
    return ParkPublic.model_validate(park, from_attributes=True)


def list_parks(session: Session, *, city_code: str | None = None, province_code: str | None = None) -> list[Park]:
    stmt = select(Park).order_by(col(Park.province_code), col(Park.city_code), col(Park.name))
    if city_code:
        stmt = stmt.where(Park.city_code == city_code)
    if province_code:
        stmt = stmt.where(Park.province_code == province_code)
    return list(session.exec(stmt))


def get_park(session: Session, park_id: int) -> Park:
    park = session.get(Park, park_id)
    if park is None:
        raise NotFound(f"park {park_id} does not exist")
    return park


def approved_counts(session: Session) -> dict[int, int]:
    """Approved enterprises per park id."""
    stmt = (
        select(Enterprise.park_id, func.count())
        .where(col(Enterprise.park_id).is_not(None), Enterprise.status == EnterpriseStatus.APPROVED)
        .group_by(col(Enterprise.park_id))
    )
    return {int(pid): int(n) for pid, n in session.exec(stmt) if pid is not None}


def create_park(session: Session, by: User, data: ParkCreate) -> Park:
    """A park in a city (GB/T 2260 code); without coordinates it sits at the city's centroid."""
    if by.role is not Role.ADMIN:
        raise Forbidden("only an admin can create parks")
    city = load_divisions().find(data.city_code)
    if city is None or city.level != "city":
        raise Unprocessable("Choose a city (a 6-digit prefecture-level division code)", field="city_code")
    if (data.lat is None) != (data.lon is None):
        raise Unprocessable("Give both latitude and longitude, or neither", field="lat" if data.lat is None else "lon")
    name = data.name.strip()
    if not name:
        raise Unprocessable("Enter the park's name", field="name")
    if session.exec(select(Park).where(Park.name == name)).first() is not None:
        raise Conflict("A park with this name already exists", field="name")
    park = Park(
        name=name,
        name_en=(data.name_en or "").strip() or None,
        province_code=city.province_code,
        city_code=city.code,
        lat=data.lat if data.lat is not None else city.lat,
        lon=data.lon if data.lon is not None else city.lon,
    )
    session.add(park)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("A park with this name already exists", field="name") from None
    audit.record(session, actor_id=by.id, action="park.create", entity="park", entity_id=park.id, park_id=park.id)
    session.commit()
    return park
