from __future__ import annotations

import tomllib

from exchange.demo.generate import FACTORS_PATH
from exchange.reference.catalogue import read_raw
from tests.reference.test_catalogue import _walk


def test_every_demo_factor_has_a_source_or_an_estimate_flag() -> None:
    with open(FACTORS_PATH, "rb") as f:
        raw = tomllib.load(f)
    unsourced: list[str] = []
    _walk(raw, "factors", None, unsourced)
    assert unsourced == []
    _, sources = read_raw()
    for section in raw.values():
        for v in section.values() if isinstance(section, dict) else ():
            if isinstance(v, dict) and "source" in v:
                assert v["source"] in sources
