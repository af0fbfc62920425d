"""Enterprises in and out of one park, with members and API tokens, and a helper to post listings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from exchange.accounts.models import Role, User
from exchange.enterprises.models import Enterprise
from exchange.parks.models import Park

HANDAN = (36.6, 114.5)
SHIJIAZHUANG = (38.04, 114.51)  # about 160 km north of Handan
JINAN = (36.65, 117.0)  # about 225 km east of Handan


@dataclass
class Member:
    enterprise: Enterprise
    user: User
    headers: dict[str, str]


@dataclass
class World:
    park: Park
    owner: Member  # in the park
    neighbour: Member  # another enterprise in the same park
    outsider: Member  # an enterprise elsewhere, in no park


@pytest.fixture
def world(make_park: Any, make_enterprise: Any, make_user: Any, token_for: Any) -> World:
    park = make_park(lat=HANDAN[0], lon=HANDAN[1])

    def member(name: str, park: Park | None, lat: float, lon: float, province: str, city: str) -> Member:
        ent = make_enterprise(name, park=park, lat=lat, lon=lon, province_code=province, city_code=city)
        user = make_user(Role.ENTERPRISE, enterprise=ent)
        return Member(ent, user, token_for(user))

    return World(
        park=park,
        owner=member("邯郸热电", park, *HANDAN, "130000", "130400"),
        neighbour=member("邯郸建材", park, 36.62, 114.52, "130000", "130400"),
        outsider=member("济南水泥", None, *JINAN, "370000", "370100"),
    )


@pytest.fixture
def post(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Post a listing through the API as `member`; returns the JSON body (asserting 201)."""

    def make(member: Member, **fields: Any) -> dict[str, Any]:
        body = {"material_code": "fly_ash", "quantity_t": "100", **fields}
        r = client.post("/api/v1/listings", json=body, headers=member.headers)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    return make
