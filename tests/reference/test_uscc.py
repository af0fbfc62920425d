from __future__ import annotations

import random

import pytest

from exchange.reference.uscc import check_character, is_valid_uscc, make_uscc

# Published on the companies' own sites and in their annual reports.
REAL_CODES = ("91440300708461136T", "91330100716105852F", "914403001922038216")


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_published_codes_validate(code: str) -> None:
    assert is_valid_uscc(code)
    assert check_character(code[:17]) == code[17]


def test_a_changed_character_is_caught() -> None:
    code = REAL_CODES[0]
    assert not is_valid_uscc(code[:5] + ("1" if code[5] != "1" else "2") + code[6:])
    assert not is_valid_uscc(code[:-1])
    assert not is_valid_uscc(code[:-1] + "I")  # I is outside the character set


def test_generated_codes_validate_and_carry_the_division() -> None:
    rng = random.Random(7)
    for _ in range(200):
        code = make_uscc(rng, "130406")
        assert is_valid_uscc(code) and code[2:8] == "130406"
