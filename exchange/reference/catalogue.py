"""The material catalogue: what the exchange trades, with grades from national standards.

The data lives in ``data/catalogue/*.toml`` so that it can be reviewed and versioned as plain text;
this module turns it into frozen dataclasses and refuses a file that breaks the catalogue's rules
(unknown source ids, numbers without a source or an estimate flag, grades out of order).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CATALOGUE_DIR = DATA_DIR / "catalogue"

Group = Literal["bulk_solid_waste", "renewable_resource", "hazardous_waste", "other_solid_waste"]
GROUPS: tuple[str, ...] = ("bulk_solid_waste", "renewable_resource", "hazardous_waste", "other_solid_waste")
BULK_CATEGORIES: tuple[str, ...] = (
    "tailings",
    "coal_gangue",
    "fly_ash",
    "furnace_slag",
    "smelting_slag",
    "byproduct_gypsum",
    "red_mud",
)
OPERATORS: tuple[str, ...] = ("<=", ">=", "<", ">", "=")


class CatalogueError(ValueError):
    """The catalogue files break one of the catalogue's rules."""


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str
    year: int
    verified: bool


@dataclass(frozen=True)
class Sourced:
    """A number with where it came from: a source id, or an estimate with its basis."""

    value: float
    source: str | None = None
    estimate: bool = False
    basis: str = ""
    low: float | None = None
    high: float | None = None
    note: str = ""

    @property
    def provenance(self) -> str:
        return f"estimate: {self.basis}" if self.estimate else f"source: {self.source}"


@dataclass(frozen=True)
class Parameter:
    code: str
    name_zh: str
    name_en: str
    unit: str


@dataclass(frozen=True)
class Limit:
    parameter: str
    operator: str
    value: float
    unit: str
    source: str | None = None
    estimate: bool = False
    basis: str = ""
    note: str = ""

    def admits(self, measured: float) -> bool:
        match self.operator:
            case "<=":
                return measured <= self.value
            case ">=":
                return measured >= self.value
            case "<":
                return measured < self.value
            case ">":
                return measured > self.value
            case _:
                return measured == self.value


@dataclass(frozen=True)
class Grade:
    code: str
    name_zh: str
    name_en: str
    rank: int  # 1 = best
    limits: tuple[Limit, ...] = ()
    standard: str = ""

    def admits(self, measurements: Mapping[str, float]) -> bool:
        """True when every limit whose parameter was measured is met (unmeasured ones are not judged)."""
        return all(lim.admits(measurements[lim.parameter]) for lim in self.limits if lim.parameter in measurements)


@dataclass(frozen=True)
class Route:
    industry: str
    use_zh: str
    use_en: str


@dataclass(frozen=True)
class Industry:
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Material:
    code: str
    official_code: str
    official_code_source: str
    name_zh: str
    name_en: str
    group: str
    bulk_category: str | None
    counts_toward_bulk_target: bool
    hazardous: bool
    unit: str
    standard: str
    grades: tuple[Grade, ...]
    parameters: tuple[Parameter, ...]
    routes: tuple[Route, ...]
    transport_range_km: Sourced
    co2_avoided_t_per_t: Sourced
    price_cny_per_t: Sourced
    consuming_industries: tuple[str, ...]
    producing_industries: tuple[str, ...]
    note: str = ""

    def grade(self, code: str) -> Grade | None:
        return next((g for g in self.grades if g.code == code), None)

    def grade_at_least(self, code: str) -> tuple[str, ...]:
        """Codes of the grades as good as or better than ``code`` (what a demand for it accepts)."""
        target = self.grade(code)
        if target is None:
            raise KeyError(f"{self.code} has no grade {code!r}")
        return tuple(g.code for g in self.grades if g.rank <= target.rank)


@dataclass(frozen=True)
class TransportMode:
    co2_kg_per_t_km: Sourced
    freight_cny_per_t_km: Sourced


@dataclass(frozen=True)
class TransportFactors:
    road: TransportMode
    rail: TransportMode
    water: TransportMode
    circuity_factor: Sourced

    def mode(self, name: str) -> TransportMode:
        return {"road": self.road, "rail": self.rail, "water": self.water}[name]


@dataclass(frozen=True)
class UtilisationRateDefinition:
    formula_zh: str
    formula_en: str
    identity_zh: str
    identity_en: str
    source: str


@dataclass(frozen=True)
class Catalogue:
    version: str
    materials: tuple[Material, ...]
    industries: tuple[Industry, ...]
    transport: TransportFactors
    target_bulk_utilisation: Sourced
    sub_targets: Mapping[str, Sourced]
    utilisation_rate_definition: UtilisationRateDefinition
    sources: Mapping[str, Source]
    _by_code: Mapping[str, Material] = field(repr=False, compare=False, default_factory=dict)

    def get(self, code: str) -> Material:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"no material {code!r} in catalogue {self.version}") from None

    def find(self, code: str) -> Material | None:
        return self._by_code.get(code)

    def industry(self, code: str) -> Industry | None:
        return next((i for i in self.industries if i.code == code), None)

    def by_group(self, group: str) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if m.group == group)

    def bulk_materials(self) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if m.counts_toward_bulk_target)


# ---------------------------------------------------------------- loading


def _sourced(raw: Mapping[str, Any], sources: Mapping[str, Source], where: str) -> Sourced:
    if not isinstance(raw, Mapping) or "value" not in raw:
        raise CatalogueError(f"{where}: expected a table with a value, got {raw!r}")
    src = raw.get("source")
    estimate = bool(raw.get("estimate", False))
    if src is None and not estimate:
        raise CatalogueError(f"{where}: number without source or estimate flag")
    if src is not None and src not in sources:
        raise CatalogueError(f"{where}: unknown source {src!r}")
    if estimate and not raw.get("basis"):
        raise CatalogueError(f"{where}: estimate without a basis")
    return Sourced(
        value=float(raw["value"]),
        source=src,
        estimate=estimate,
        basis=str(raw.get("basis", "")),
        low=float(raw["low"]) if "low" in raw else None,
        high=float(raw["high"]) if "high" in raw else None,
        note=str(raw.get("note", "")),
    )


def _material(raw: Mapping[str, Any], sources: Mapping[str, Source]) -> Material:
    code = raw["code"]
    params = tuple(Parameter(p["code"], p["name_zh"], p["name_en"], p["unit"]) for p in raw.get("parameters", []))
    units = {p.code: p.unit for p in params}
    grades: list[Grade] = []
    for g in raw.get("grades", []):
        limits: list[Limit] = []
        for lim in g.get("limits", []):
            where = f"{code}.{g['code']}.{lim.get('parameter')}"
            if lim["parameter"] not in units:
                raise CatalogueError(f"{where}: limit on an undeclared parameter")
            if lim["op"] not in OPERATORS:
                raise CatalogueError(f"{where}: unknown operator {lim['op']!r}")
            s = _sourced(lim, sources, where)
            limits.append(
                Limit(
                    parameter=lim["parameter"],
                    operator=lim["op"],
                    value=s.value,
                    unit=units[lim["parameter"]],
                    source=s.source,
                    estimate=s.estimate,
                    basis=s.basis,
                    note=s.note,
                )
            )
        grades.append(
            Grade(
                code=str(g["code"]),
                name_zh=g["name_zh"],
                name_en=g["name_en"],
                rank=int(g["rank"]),
                limits=tuple(limits),
                standard=g.get("standard", raw.get("standard", "")),
            )
        )
    ranks = [g.rank for g in grades]
    if ranks != list(range(1, len(grades) + 1)):
        raise CatalogueError(f"{code}: grades must be listed best first with ranks 1..n, got {ranks}")
    if raw["group"] not in GROUPS:
        raise CatalogueError(f"{code}: unknown group {raw['group']!r}")
    bulk = raw.get("bulk_category")
    if bulk is not None and bulk not in BULK_CATEGORIES:
        raise CatalogueError(f"{code}: unknown bulk category {bulk!r}")
    if raw["counts_toward_bulk_target"] != (bulk is not None):
        raise CatalogueError(f"{code}: counts_toward_bulk_target must hold exactly when bulk_category is set")
    if raw["official_code_source"] not in sources:
        raise CatalogueError(f"{code}: unknown official_code_source")
    return Material(
        code=code,
        official_code=raw["official_code"],
        official_code_source=raw["official_code_source"],
        name_zh=raw["name_zh"],
        name_en=raw["name_en"],
        group=raw["group"],
        bulk_category=bulk,
        counts_toward_bulk_target=bool(raw["counts_toward_bulk_target"]),
        hazardous=bool(raw["hazardous"]),
        unit=raw["unit"],
        standard=raw.get("standard", ""),
        grades=tuple(grades),
        parameters=params,
        routes=tuple(Route(r["industry"], r["use_zh"], r["use_en"]) for r in raw.get("routes", [])),
        transport_range_km=_sourced(raw["transport_range_km"], sources, f"{code}.transport_range_km"),
        co2_avoided_t_per_t=_sourced(raw["co2_avoided_t_per_t"], sources, f"{code}.co2_avoided_t_per_t"),
        price_cny_per_t=_sourced(raw["price_cny_per_t"], sources, f"{code}.price_cny_per_t"),
        consuming_industries=tuple(raw.get("consuming_industries", [])),
        producing_industries=tuple(raw.get("producing_industries", [])),
        note=raw.get("note", ""),
    )


def parse_catalogue(raw: Mapping[str, Any], raw_sources: Mapping[str, Any]) -> Catalogue:
    sources = {
        sid: Source(sid, s["title"], s["publisher"], int(s["year"]), bool(s.get("verified", False)))
        for sid, s in raw_sources.items()
    }
    industries = tuple(Industry(i["code"], i["name_zh"], i["name_en"]) for i in raw["industries"])
    industry_codes = {i.code for i in industries}
    if len(industry_codes) != len(industries):
        raise CatalogueError("industry codes are not unique")
    materials = tuple(_material(m, sources) for m in raw["materials"])
    by_code = {m.code: m for m in materials}
    if len(by_code) != len(materials):
        raise CatalogueError("material codes are not unique")
    for m in materials:
        used = set(m.consuming_industries) | set(m.producing_industries) | {r.industry for r in m.routes}
        if unknown := used - industry_codes:
            raise CatalogueError(f"{m.code}: unknown industries {sorted(unknown)}")
    t = raw["transport"]

    def mode(name: str) -> TransportMode:
        return TransportMode(
            co2_kg_per_t_km=_sourced(t[name]["co2_kg_per_t_km"], sources, f"transport.{name}.co2"),
            freight_cny_per_t_km=_sourced(t[name]["freight_cny_per_t_km"], sources, f"transport.{name}.freight"),
        )

    transport = TransportFactors(
        road=mode("road"),
        rail=mode("rail"),
        water=mode("water"),
        circuity_factor=_sourced(t["circuity_factor"], sources, "transport.circuity_factor"),
    )
    target = raw["target_bulk_utilisation"]
    d = raw["utilisation_rate_definition"]
    return Catalogue(
        version=raw["meta"]["version"],
        materials=materials,
        industries=industries,
        transport=transport,
        target_bulk_utilisation=_sourced(target, sources, "target_bulk_utilisation"),
        sub_targets={k: _sourced(v, sources, f"sub_targets.{k}") for k, v in target.get("sub_targets", {}).items()},
        utilisation_rate_definition=UtilisationRateDefinition(
            d["formula_zh"], d["formula_en"], d["identity_zh"], d["identity_en"], d["source"]
        ),
        sources=sources,
        _by_code=by_code,
    )


def read_raw(directory: Path = CATALOGUE_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    with open(directory / "catalogue.toml", "rb") as f:
        raw = tomllib.load(f)
    with open(directory / "sources.toml", "rb") as f:
        raw_sources = tomllib.load(f)
    return raw, raw_sources


@functools.lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    return parse_catalogue(*read_raw())
