from __future__ import annotations

from typing import Any

from tests.factories import valid_uscc


def registration(n: int = 900001, **over: Any) -> dict[str, Any]:
    """A valid registration body: a coal power plant in Handan (the address names the city and county)."""
    body: dict[str, Any] = {
        "name": "峰峰第9发电厂",
        "uscc": valid_uscc(n),
        "industry": "coal_power",
        "address": "河北省邯郸市峰峰矿区建设路1号",
        "contact_name": "王伟",
        "contact_phone": "13900001111",
    }
    body.update(over)
    return body
