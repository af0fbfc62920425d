"""Unified social credit code (统一社会信用代码), GB 32100-2015.

18 characters: registration authority (1), entity type (1), division code GB/T 2260 (6),
organisation code GB 11714 (9, its own check digit last) and a check character (1).
"""

from __future__ import annotations

import random

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(CHARSET)}

# GB 11714-1997 organisation code: 8 body characters (digits or letters A–Z valued 10–35), check digit.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def check_character(first17: str) -> str:
    """The 18th character for the first 17: 31 − (Σ value × weight mod 31), with 31 written as '0'."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17.upper(), WEIGHTS, strict=True))
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the GB 32100 character set") from None
    return CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    if len(code) != 18 or any(c not in _VALUE for c in code):
        return False
    return check_character(code[:17]) == code[17]


def _org_check(body8: str) -> str:
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def make_uscc(rng: random.Random, division_code: str, authority: str = "9", entity_type: str = "1") -> str:
    """A well-formed, fictional code for a company registered by market regulation (9) as an enterprise (1)."""
    body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    first17 = f"{authority}{entity_type}{division_code}{body}{_org_check(body)}"
    return first17 + check_character(first17)
