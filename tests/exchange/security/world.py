"""A small world for the authorization matrix: enterprise A owns things, everyone else tries to reach them.

Six actors, as issue 7 names them: anonymous, a member of A, a member of B, the manager of another park, a
regulator of another province, and an admin. A's private data carries `SECRET` markers (a price note, a
ledger note, contact details, an address) so that any response to an outsider can be searched for a leak.

Matching rounds happen on A's side too: A's park manager (not an actor) runs rounds in A's park, and a partner
enterprise D in the same park (not an actor either) wants A's fly ash. The main round is published: A is the
supplier of an open proposal and of an agreement, on which D recorded a delivery that A has to confirm. Its
title and the delivery's note carry the marker: nobody outside A's park (but admins) may see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, TypedDict

from sqlmodel import Session, select

from exchange.accounts import service as accounts
from exchange.accounts.models import Role, User
from exchange.core.db import get_engine
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.ledgers import service as ledgers
from exchange.ledgers.models import LedgerIn, LedgerSource
from exchange.listings import service as listings
from exchange.listings.models import ListingCreate, ListingKind, Visibility
from exchange.parks.models import Park
from exchange.rounds import deals, solving
from exchange.rounds import service as rounds
from exchange.rounds.models import Agreement, DeliveryCreate, PinIn, RoundCreate
from exchange.settings import Settings
from tests.factories import PASSWORD, valid_uscc

ANON, NEWCOMER, MEMBER_A, MEMBER_B, MANAGER_OTHER, REGULATOR_OTHER, ADMIN = (
    "anonymous",
    "newcomer",
    "member_a",
    "member_b",
    "manager_other_park",
    "regulator_other_province",
    "admin",
)
# Outsiders ask first: a wrongly allowed write by them is reported, and the owners' own writes (which may
# change state, e.g. pause a listing) come after every denial has been checked. The newcomer (signed up, no
# enterprise yet) is the cheapest identity an attacker can get, so it is an actor too.
ROLES: tuple[str, ...] = (ANON, NEWCOMER, MEMBER_B, MANAGER_OTHER, REGULATOR_OTHER, MEMBER_A, ADMIN)
OUTSIDERS = frozenset({ANON, NEWCOMER, MEMBER_B, MANAGER_OTHER, REGULATOR_OTHER})

SECRET = "SECRET-A"  # every private value of A contains this; an outsider's response never may
SECRET_PRICE = Decimal("4321.09")  # the price of A's anonymous listing (hidden from outsiders)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@cache
def password_hash() -> str:
    """Argon2 is slow on purpose; the matrix builds a world per route, so hash the one password once."""
    return accounts.hash_password(PASSWORD)


@dataclass
class World:
    park_a: int
    park_b: int
    park_other: int
    enterprise_a: int
    enterprise_b: int
    uscc_a: str
    enterprise_pending: int  # registered in A's park, awaiting review by an admin or A's park manager
    listing_a: int  # park-only: nobody outside A's park (but admins) may see it
    listing_a_anonymous: int  # public but anonymous: outsiders see it without price, address or enterprise
    listing_a_paused: int  # paused: outsiders may not see it, only its owner resumes it
    listing_a_version: int
    listing_a_anonymous_version: int
    listing_b: int
    attachment_a: int
    ledger_a: int
    ledger_b: int
    token_a: int  # a second API token of A's member (the one in `headers` stays valid)
    victim: int  # another member of A, for the admin's disable/enable routes
    round_a: int  # published, in A's park: proposals, an agreement, a pinned and a forbidden pair
    round_a_review: int  # solved, awaiting review (to publish)
    round_a_queued: int  # queued, never run (to cancel)
    proposal_a: int  # open: A supplies, D consumes; nobody has answered yet
    agreement_a: int  # active: A supplies, D consumes
    delivery_a: int  # recorded by D on the agreement: A confirms it
    pin: tuple[int, int]  # (supply, demand) pinned in round_a
    forbidden: tuple[int, int]  # (supply, demand) forbidden in round_a
    users: dict[str, User] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    period: str = ""

    def __getitem__(self, name: str) -> object:
        return getattr(self, name)


def _park(session: Session, name: str, province: str, city: str, lat: float, lon: float) -> Park:
    park = Park(name=name, province_code=province, city_code=city, lat=lat, lon=lon)
    session.add(park)
    session.commit()
    return park


def _enterprise(session: Session, n: int, name: str, park: Park, secret: bool) -> Enterprise:
    ent = Enterprise(
        name=name,
        uscc=valid_uscc(900_000 + n),
        industry="coal_power",
        address="河北省邯郸市" if secret else "河南省郑州市",
        park_id=park.id,
        lat=park.lat,
        lon=park.lon,
        province_code=park.province_code,
        city_code=park.city_code,
        status=EnterpriseStatus.APPROVED,
        contact_name=f"{SECRET}-contact" if secret else "B contact",
        contact_phone=f"{SECRET}-phone" if secret else "0371-0000000",
        contact_email="secret-a@example.com" if secret else "b@example.com",
    )
    session.add(ent)
    session.commit()
    return ent


def _user(session: Session, email: str, role: Role, **links: Any) -> User:
    user = User(email=email, display_name=email.split("@")[0], password_hash=password_hash(), role=role, **links)
    session.add(user)
    session.commit()
    return user


def last_full_month(today: date | None = None) -> str:
    today = today or date.today()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}-{month:02d}"


def build_world(session: Session, settings: Settings) -> World:
    park_a = _park(session, "Park A", "130000", "130400", 36.60, 114.50)  # Handan, Hebei
    park_b = _park(session, "Park B", "130000", "130400", 36.70, 114.40)
    park_other = _park(session, "Park C", "130000", "130400", 36.50, 114.60)
    ent_a = _enterprise(session, 1, "Enterprise A", park_a, secret=True)
    ent_b = _enterprise(session, 2, "Enterprise B", park_b, secret=False)
    ent_pending = _enterprise(session, 3, f"Enterprise P {SECRET}-pending", park_a, secret=True)
    ent_pending.status = EnterpriseStatus.PENDING
    session.add(ent_pending)
    session.commit()
    _user(session, "p@example.com", Role.ENTERPRISE, enterprise_id=ent_pending.id)
    users = {
        NEWCOMER: _user(session, "newcomer@example.com", Role.ENTERPRISE),
        MEMBER_A: _user(session, "a@example.com", Role.ENTERPRISE, enterprise_id=ent_a.id),
        MEMBER_B: _user(session, "b@example.com", Role.ENTERPRISE, enterprise_id=ent_b.id),
        MANAGER_OTHER: _user(session, "manager-c@example.com", Role.PARK_MANAGER, park_id=park_other.id),
        REGULATOR_OTHER: _user(session, "regulator-henan@example.com", Role.REGULATOR, region_code="410000"),
        ADMIN: _user(session, "admin@example.com", Role.ADMIN),
    }
    victim = _user(session, "a2@example.com", Role.ENTERPRISE, enterprise_id=ent_a.id)
    headers: dict[str, dict[str, str]] = {ANON: {}}
    for role, user in users.items():
        _, raw = accounts.create_api_token(session, user, "matrix")
        headers[role] = {"Authorization": f"Bearer {raw}"}
    second, _ = accounts.create_api_token(session, users[MEMBER_A], "second")

    a = users[MEMBER_A]
    listing_a = listings.create_listing(
        session,
        a,
        ListingCreate(
            material_code="fly_ash",
            quantity_t=Decimal("1200"),
            price_cny_per_t=Decimal("35.50"),
            price_note=f"{SECRET}-price-note",
            visibility=Visibility.PARK,
        ),
        settings,
    )
    listing_anon = listings.create_listing(
        session,
        a,
        ListingCreate(
            material_code="fly_ash",
            quantity_t=Decimal("800"),
            price_cny_per_t=SECRET_PRICE,
            price_note=f"{SECRET}-anonymous-note",
            address=f"{SECRET}-street 1",
            lat=36.61,
            lon=114.51,
            visibility=Visibility.ANONYMOUS,
        ),
        settings,
    )
    listing_paused = listings.create_listing(
        session, a, ListingCreate(material_code="steel_slag", quantity_t=Decimal("10")), settings
    )
    listings.change_status(session, a, listing_paused.id or 0, "pause")
    listing_b = listings.create_listing(
        session, users[MEMBER_B], ListingCreate(material_code="fly_ash", quantity_t=Decimal("100")), settings
    )
    [attachment] = listings.add_attachments(session, a, listing_a.id or 0, [("report.pdf", PDF)], settings)
    period = last_full_month()
    figures: dict[str, Any] = {
        "generated_t": Decimal("100"),
        "utilised_in_house_t": Decimal("60"),
        "stored_t": Decimal("40"),
    }
    ledger_a, _ = ledgers.file_ledger(
        session,
        a,
        LedgerIn(material_code="fly_ash", period=period, note=f"{SECRET}-ledger-note", **figures),
        source=LedgerSource.API,
    )
    ledger_b, _ = ledgers.file_ledger(
        session, users[MEMBER_B], LedgerIn(material_code="fly_ash", period=period, **figures), LedgerSource.API
    )

    rnd = _rounds(session, settings, park_a, a, (listing_a.id or 0, listing_anon.id or 0), period)
    for current in (listing_a, listing_anon):
        session.refresh(current)  # agreements reserve tonnes on them: their versions moved on

    def ident(obj: object) -> int:
        value = getattr(obj, "id", None)
        assert isinstance(value, int)
        return value

    return World(
        park_a=ident(park_a),
        park_b=ident(park_b),
        park_other=ident(park_other),
        enterprise_a=ident(ent_a),
        enterprise_b=ident(ent_b),
        uscc_a=ent_a.uscc,
        enterprise_pending=ident(ent_pending),
        listing_a=ident(listing_a),
        listing_a_anonymous=ident(listing_anon),
        listing_a_paused=ident(listing_paused),
        listing_a_version=listing_a.version,
        listing_a_anonymous_version=listing_anon.version,
        listing_b=ident(listing_b),
        attachment_a=ident(attachment),
        ledger_a=ident(ledger_a),
        ledger_b=ident(ledger_b),
        token_a=ident(second),
        victim=ident(victim),
        **rnd,
        users=users,
        headers=headers,
        period=period,
    )


class RoundIds(TypedDict):
    round_a: int
    round_a_review: int
    round_a_queued: int
    proposal_a: int
    agreement_a: int
    delivery_a: int
    pin: tuple[int, int]
    forbidden: tuple[int, int]


def _rounds(
    session: Session, settings: Settings, park: Park, a: User, supplies: tuple[int, int], period: str
) -> RoundIds:
    """A's park manager runs three rounds in A's park; the first is published and dealt on (see the docstring).

    Runs are solved here, in this thread (the matrix's conftest keeps the app from starting its worker)."""
    partner = _enterprise(session, 4, "Enterprise D", park, secret=False)
    partner.lat, partner.lon = 36.65, 114.55  # a few km away, so transport has a cost
    session.add(partner)
    session.commit()
    d = _user(session, "d@example.com", Role.ENTERPRISE, enterprise_id=partner.id)
    manager = _user(session, "manager-a@example.com", Role.PARK_MANAGER, park_id=park.id)
    demands = [
        listings.create_listing(
            session, d, ListingCreate(kind=ListingKind.DEMAND, material_code="fly_ash", quantity_t=Decimal(t)), settings
        ).id
        or 0
        for t in ("100", "50")
    ]

    def new_round(title: str) -> int:
        data = RoundCreate(period=period, title=f"{SECRET}-{title}")
        return rounds.create_round(session, settings, manager, data).id or 0

    main, review = new_round("round"), new_round("round in review")
    solving.run_pending(get_engine(settings.database_url))
    proposals = rounds.publish(session, manager, main, 1)
    assert len(proposals) >= 2, "the world's round must propose at least two pairs of A's fly ash"
    agreed, open_ = proposals[0].id or 0, proposals[1].id or 0
    deals.answer(session, a, agreed, accept=True)
    deals.answer(session, d, agreed, accept=True)
    agreement = session.exec(select(Agreement).where(Agreement.proposal_id == agreed)).one()
    delivery = deals.record_delivery(
        session,
        d,
        agreement.id or 0,
        DeliveryCreate(delivered_on=date.today(), quantity_t=Decimal("1"), waybill_no="WB-1", note=f"{SECRET}-note"),
    )
    pin, forbidden = (supplies[0], demands[0]), (supplies[1], demands[1])
    pin_in = PinIn(supply_listing_id=pin[0], demand_listing_id=pin[1], quantity_t=Decimal(1))
    rounds.set_pin(session, manager, main, pin_in)
    rounds.forbid(session, manager, main, *forbidden)
    return RoundIds(
        round_a=main,
        round_a_review=review,
        round_a_queued=new_round("queued round"),
        proposal_a=open_,
        agreement_a=agreement.id or 0,
        delivery_a=delivery.id or 0,
        pin=pin,
        forbidden=forbidden,
    )
