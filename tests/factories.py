"""Test data builders: users per role, parks, enterprises, and logged-in clients."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from exchange.accounts import service as accounts
from exchange.accounts.models import Role, User
from exchange.core.deps import CSRF_COOKIE
from exchange.enterprises.models import Enterprise, EnterpriseStatus
from exchange.parks.models import Park

PASSWORD = "correct-horse-42"
_seq = itertools.count(1)


def valid_uscc(n: int) -> str:
    """A syntactically valid unified social credit code (GB 32100-2015 check character)."""
    from exchange.reference.uscc import check_character

    first17 = f"91130400MA{n:07d}"[:17]
    return first17 + check_character(first17)


@pytest.fixture
def make_park(session: Session) -> Callable[..., Park]:
    def make(
        name: str | None = None,
        city_code: str = "130400",
        province_code: str = "130000",
        lat: float = 36.6,
        lon: float = 114.5,
    ) -> Park:
        park = Park(
            name=name or f"Test park {next(_seq)}",
            province_code=province_code,
            city_code=city_code,
            lat=lat,
            lon=lon,
        )
        session.add(park)
        session.commit()
        return park

    return make


@pytest.fixture
def make_enterprise(session: Session) -> Callable[..., Enterprise]:
    def make(
        name: str | None = None,
        *,
        status: EnterpriseStatus = EnterpriseStatus.APPROVED,
        park: Park | None = None,
        industry: str = "coal_power",
        lat: float = 36.6,
        lon: float = 114.5,
        province_code: str = "130000",
        city_code: str = "130400",
        **extra: Any,
    ) -> Enterprise:
        n = next(_seq)
        ent = Enterprise(
            name=name or f"Test enterprise {n}",
            uscc=valid_uscc(n),
            industry=industry,
            address="河北省邯郸市",
            park_id=park.id if park else None,
            lat=lat,
            lon=lon,
            province_code=province_code,
            city_code=city_code,
            status=status,
            contact_name="Contact",
            contact_phone="0310-0000000",
            **extra,
        )
        session.add(ent)
        session.commit()
        return ent

    return make


@pytest.fixture
def make_user(session: Session) -> Callable[..., User]:
    def make(
        role: Role = Role.ENTERPRISE,
        *,
        enterprise: Enterprise | None = None,
        park: Park | None = None,
        region_code: str | None = None,
        email: str | None = None,
        locale: str = "en",
    ) -> User:
        user = User(
            email=email or f"user{next(_seq)}@example.com",
            display_name="Test user",
            password_hash=accounts.hash_password(PASSWORD),
            role=role,
            enterprise_id=enterprise.id if enterprise else None,
            park_id=park.id if park else None,
            region_code=region_code,
            locale=locale,
        )
        session.add(user)
        session.commit()
        return user

    return make


@pytest.fixture
def token_for(session: Session) -> Callable[[User], dict[str, str]]:
    """Authorization headers for a user's fresh API token."""

    def make(user: User) -> dict[str, str]:
        _, raw = accounts.create_api_token(session, user, "test")
        return {"Authorization": f"Bearer {raw}"}

    return make


def login(client: TestClient, user: User, password: str = PASSWORD) -> str:
    """Log a TestClient in through the JSON API (cookie session); returns the CSRF token for form posts."""
    response = client.post("/api/v1/auth/login", json={"email": user.email, "password": password})
    assert response.status_code == 200, response.text
    token = client.cookies.get(CSRF_COOKIE)
    assert token
    return token


def csrf(client: TestClient) -> str:
    """The CSRF token for an anonymous client (fetches a page first to get the cookie)."""
    if not client.cookies.get(CSRF_COOKIE):
        client.get("/login")
    token = client.cookies.get(CSRF_COOKIE)
    assert token
    return token


__all__ = [
    "make_park",
    "make_enterprise",
    "make_user",
    "token_for",
    "login",
    "csrf",
    "PASSWORD",
    "valid_uscc",
]
