"""Small builders shared by the solver tests."""

from __future__ import annotations

from solver import Accept, DemandLot, MaterialRule, Params, Pin, Problem, SupplyLot

# A consumer ~0.1 degrees east is ~8.8 km great-circle at 38 N; detour 1.0 keeps the numbers plain.
PLAIN = Params(freight_cny_per_t_km=1.0, detour_factor=1.0)


def supply(sid: str, qty: float, lon: float = 114.0, material: str = "fly_ash", **kw: object) -> SupplyLot:
    return SupplyLot(sid, material, qty, 38.0, lon, **kw)  # type: ignore[arg-type]


def demand(
    did: str, qty: float, lon: float = 114.0, accepts: tuple[Accept, ...] = (Accept("fly_ash"),), **kw: object
) -> DemandLot:
    return DemandLot(did, qty, 38.0, lon, accepts, **kw)  # type: ignore[arg-type]


def problem(
    supplies: list[SupplyLot],
    demands: list[DemandLot],
    materials: dict[str, MaterialRule] | None = None,
    forbidden: tuple[tuple[str, str], ...] = (),
    pinned: tuple[Pin, ...] = (),
) -> Problem:
    return Problem(tuple(supplies), tuple(demands), materials, PLAIN, forbidden, pinned)
