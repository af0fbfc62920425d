"""A deterministic demo dataset for one industrial region, and large synthetic instances for benchmarks.

The region is the Beijing–Tianjin–Hebei–Shandong–Shanxi steel and coal-power belt. Every enterprise
and park is fictional and says so in its name; cities, coordinates and scale are real-world plausible.
Scaling factors (fly ash per MW, slag per tonne of steel, ...) live in ``data/demo/factors.toml``
with their sources or estimate notes. The same seed always gives the same dataset.
"""

from __future__ import annotations

import functools
import random
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from exchange.reference.catalogue import load_catalogue
from exchange.reference.places import Division, load_divisions, locate, locate_many
from exchange.reference.uscc import make_uscc

FACTORS_PATH = Path(__file__).resolve().parents[2] / "data" / "demo" / "factors.toml"
TONNE = Decimal("0.001")
YUAN = Decimal("1")
YEAR = 2025
PERIODS = tuple(f"{YEAR}-{m:02d}" for m in range(1, 13))
# Monthly load factors: winter heating and summer air-conditioning peaks in north China (estimate).
POWER_SEASON = (1.15, 1.05, 0.95, 0.85, 0.88, 0.98, 1.1, 1.12, 0.95, 0.88, 0.97, 1.12)
STEEL_SEASON = (0.95, 0.85, 1.02, 1.03, 1.05, 1.02, 1.0, 1.0, 1.03, 1.0, 1.02, 1.03)
BUILD_SEASON = (0.6, 0.45, 1.0, 1.15, 1.2, 1.15, 1.05, 1.05, 1.15, 1.15, 1.05, 0.95)

# Share of the offered surplus that reaches the exchange rather than standing contracts (estimate):
# ground slag is almost all sold under long-term contracts with cement and concrete groups.
EXCHANGE_SHARE = {"ggbs": 0.25}

DEMO_PASSWORDS = {
    "admin": "demo-admin-2026",
    "park_manager": "demo-park-2026",
    "regulator": "demo-regulator-2026",
    "enterprise": "demo-enterprise-2026",
}


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Park:
    key: str
    name_zh: str
    name_en: str
    city_code: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Enterprise:
    key: str
    name: str  # Chinese, ends with （演示）
    name_en: str  # ends with (demo)
    uscc: str
    industry: str
    address: str
    park_key: str | None
    lat: float
    lon: float
    province_code: str
    city_code: str
    county_code: str | None
    contact_name: str
    contact_phone: str
    annual_capacity: float
    capacity_unit: str  # "MW", "Mt crude steel/yr", "Mt cement/yr", ...
    capacity_note: str
    permits: tuple[str, ...] = ()  # material codes a licensed hazardous-waste receiver may take


@dataclass(frozen=True)
class Listing:
    key: str
    enterprise_key: str
    kind: str  # "supply" | "demand"
    material: str
    grade: str | None
    accepted_grades: tuple[str, ...]  # demands only; empty = any grade
    quantity_t: Decimal
    quantity_basis: str  # "per_month" | "one_off"
    price_cny_per_t: Decimal | None  # negative = the producer pays
    max_distance_km: int | None
    visibility: str  # "public" | "park" | "anonymous"
    permits_required: bool


@dataclass(frozen=True)
class LedgerRow:
    enterprise_key: str
    material: str
    period: str  # YYYY-MM
    generated_t: Decimal
    utilised_in_house_t: Decimal
    utilised_in_house_prior_stock_t: Decimal
    sent_for_utilisation_t: Decimal
    sent_for_utilisation_prior_stock_t: Decimal
    disposed_t: Decimal
    disposed_prior_stock_t: Decimal
    stored_t: Decimal
    dumped_t: Decimal

    @property
    def utilised_t(self) -> Decimal:
        return self.utilised_in_house_t + self.sent_for_utilisation_t

    @property
    def utilised_prior_stock_t(self) -> Decimal:
        return self.utilised_in_house_prior_stock_t + self.sent_for_utilisation_prior_stock_t

    def identity_holds(self) -> bool:
        """NBS identity: generated = (utilised − prior) + stored + (disposed − prior) + dumped."""
        return self.generated_t == (
            (self.utilised_t - self.utilised_prior_stock_t)
            + self.stored_t
            + (self.disposed_t - self.disposed_prior_stock_t)
            + self.dumped_t
        )


@dataclass(frozen=True)
class Account:
    username: str
    email: str
    display_name: str
    role: str  # "admin" | "park_manager" | "regulator" | "enterprise"
    password: str
    park_key: str | None = None
    region_code: str | None = None
    enterprise_key: str | None = None


@dataclass(frozen=True)
class DemoDataset:
    seed: int
    parks: tuple[Park, ...]
    enterprises: tuple[Enterprise, ...]
    listings: tuple[Listing, ...]
    ledgers: tuple[LedgerRow, ...]
    accounts: tuple[Account, ...]

    def enterprise(self, key: str) -> Enterprise:
        return next(e for e in self.enterprises if e.key == key)


# ---------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=1)
def load_factors() -> dict[str, Any]:
    with open(FACTORS_PATH, "rb") as f:
        return tomllib.load(f)


def _f(section: str, name: str) -> float:
    return float(load_factors()[section][name]["value"])


def _t(x: float) -> Decimal:
    return Decimal(repr(max(x, 0.0))).quantize(TONNE, rounding=ROUND_HALF_UP)


# (industry, count, [(province_code, city_code, weight)]) — cities chosen for where the industry really is.
PLAN: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("coal_power", 36, ("130400", "130100", "130200", "130500", "130700", "120100", "140600", "140200", "140400",
                        "140700", "141100", "140300", "370800", "370300", "371300", "371500", "371600", "370900")),
    ("steel_bf_bof", 24, ("130200", "130200", "130200", "130400", "130400", "130500", "130900", "120100",
                          "371100", "370100", "371300", "140400", "141000", "140100", "140800")),
    ("steel_eaf", 10, ("130100", "130600", "120100", "370100", "370600", "370700", "140100", "131000")),
    ("cement", 36, ("130100", "130200", "130400", "130500", "130600", "130700", "130800", "370100", "370900",
                    "370300", "371300", "370800", "140100", "140400", "140500", "141000", "140700", "120100")),
    ("concrete", 46, ("110100", "110100", "120100", "120100", "130100", "130600", "131000", "130200", "370100",
                      "370200", "370700", "140100", "130400", "371300")),
    ("plasterboard", 10, ("130400", "130200", "120100", "370300", "370800", "140100", "130600")),
    ("bricks", 18, ("130400", "130500", "130900", "140600", "140200", "140300", "371300", "370800")),
    ("road_construction", 14, ("130200", "130400", "130100", "120100", "370100", "140100", "131000", "130900")),
    ("mining", 16, ("140600", "140200", "140300", "140500", "141100", "130800", "130200", "370800")),
    ("nonferrous_smelting", 8, ("371600", "371500", "141100", "140800", "370600", "370100")),
    ("chemical", 5, ("370300", "370500", "130900", "120100")),
    ("battery_recycling", 7, ("120100", "130600", "370300", "140100", "131000")),
    ("scrap_processing", 24, ("130200", "130100", "120100", "370100", "370700", "140100", "130600", "371300")),
    ("hazardous_waste_treatment", 6, ("130200", "130400", "120100", "370300", "140100")),
    ("paper", 5, ("130600", "370800", "370300", "120100")),
    ("plastics_recycling", 5, ("130600", "131000", "370700", "120100")),
    ("tyre_recycling", 3, ("130900", "370500", "140700")),
    ("other", 18, ("110100", "120100", "130100", "370100", "370200", "140100", "130600")),
)  # fmt: skip

INDUSTRY_NOUN = {
    "coal_power": ("发电厂", "Power Plant"),
    "steel_bf_bof": ("钢铁厂", "Iron and Steel Works"),
    "steel_eaf": ("电炉钢厂", "EAF Steel Mill"),
    "cement": ("水泥厂", "Cement Plant"),
    "concrete": ("混凝土搅拌站", "Concrete Plant"),
    "plasterboard": ("石膏板厂", "Plasterboard Plant"),
    "bricks": ("新型墙材厂", "Brick Works"),
    "road_construction": ("路桥工程项目部", "Road Project Office"),
    "mining": ("矿业公司", "Mining Company"),
    "nonferrous_smelting": ("冶炼厂", "Smelter"),
    "chemical": ("化工厂", "Chemical Works"),
    "battery_recycling": ("电池回收利用公司", "Battery Recycling Co."),
    "scrap_processing": ("废钢加工中心", "Scrap Processing Centre"),
    "hazardous_waste_treatment": ("危废处置中心", "Hazardous Waste Treatment Centre"),
    "paper": ("纸业公司", "Paper Mill"),
    "plastics_recycling": ("再生塑料公司", "Plastics Recycling Co."),
    "tyre_recycling": ("轮胎再生公司", "Tyre Recycling Co."),
    "other": ("运输物流公司", "Logistics Co."),
}

PARKS: tuple[tuple[str, str, str, str], ...] = (
    ("caofeidian", "130200", "曹妃甸循环经济示范区", "Caofeidian Circular Economy Zone"),
    ("fengfeng", "130400", "峰峰工业园区", "Fengfeng Industrial Park"),
    ("wuan", "130400", "武安钢铁产业园", "Wu'an Steel Industry Park"),
    ("luquan", "130100", "鹿泉建材产业园", "Luquan Building Materials Park"),
    ("binhai", "120100", "滨海新区临港产业园", "Binhai Lingang Industrial Park"),
    ("zibo", "370300", "淄博循环经济产业园", "Zibo Circular Economy Park"),
    ("binzhou", "371600", "滨州铝业产业园", "Binzhou Aluminium Park"),
    ("rizhao", "371100", "日照精品钢基地", "Rizhao Steel Base"),
    ("shuozhou", "140600", "朔州固废综合利用园区", "Shuozhou Solid-Waste Utilisation Park"),
    ("changzhi", "140400", "长治煤电化工园区", "Changzhi Coal-Power-Chemical Park"),
    ("laiwu", "370100", "莱芜钢铁产业园", "Laiwu Steel Park"),
    ("xingtai", "130500", "邢台经济开发区", "Xingtai Economic Development Zone"),
)

STREETS = ("建设", "工业", "钢城", "电厂", "新华", "和平", "胜利", "开发", "滨河", "复兴", "光明", "环城")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "强", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚")


def _cities() -> dict[str, Division]:
    return {d.code: d for d in load_divisions().cities()}


def _point_in_city(
    rng: random.Random, city: Division, near: tuple[float, float] | None, km: float
) -> tuple[float, float, Division | None]:
    """A point inside the city's shipped boundary, near a county centroid or a park; and that county."""
    divs = load_divisions()
    counties = divs.counties(city.code)
    for _ in range(200):
        county = rng.choice(counties) if counties and near is None else None
        lat0, lon0 = near if near is not None else ((county.lat, county.lon) if county else (city.lat, city.lon))
        lat = lat0 + rng.uniform(-km, km) / 111.0
        lon = lon0 + rng.uniform(-km, km) / 85.0
        if locate(lat, lon)[1] == city.code:
            return round(lat, 5), round(lon, 5), county
        km *= 0.9
    return city.lat, city.lon, None


def _seasonal(industry: str) -> tuple[float, ...]:
    if industry == "coal_power":
        return POWER_SEASON
    if industry in ("steel_bf_bof", "steel_eaf"):
        return STEEL_SEASON
    if industry in ("cement", "concrete", "plasterboard", "bricks", "road_construction"):
        return BUILD_SEASON
    return (1.0,) * 12


# ---------------------------------------------------------------- production model


@dataclass(frozen=True)
class _Flow:
    material: str
    grade: str | None
    annual_t: float
    utilisation: float  # share of generation utilised (in-house + sent out)
    in_house_share: float  # of the utilised part


def _capacity(rng: random.Random, industry: str) -> tuple[float, str, str]:
    match industry:
        case "coal_power":
            mw = rng.choice((600, 660, 1200, 1320, 1320, 2000, 2640, 1200, 700, 350))
            return mw, "MW", f"{mw} MW coal units (demo)"
        case "steel_bf_bof":
            mt = round(rng.uniform(2.0, 12.0), 1)
            return mt, "Mt crude steel/yr", f"{mt} Mt/yr BF-BOF (demo)"
        case "steel_eaf":
            mt = round(rng.uniform(0.5, 2.0), 1)
            return mt, "Mt crude steel/yr", f"{mt} Mt/yr EAF (demo)"
        case "cement":
            mt = round(rng.uniform(1.0, 4.0), 1)
            return mt, "Mt cement/yr", f"{mt} Mt/yr cement grinding (demo)"
        case "concrete":
            mm3 = round(rng.uniform(0.2, 0.8), 2)
            return mm3, "million m3/yr", f"{mm3} million m³/yr ready-mix (demo)"
        case "plasterboard":
            mm2 = rng.choice((30, 30, 50, 60))
            return mm2, "million m2/yr", f"{mm2} million m²/yr board (demo)"
        case "bricks":
            mb = rng.choice((60, 100, 150))
            return mb, "million bricks/yr", f"{mb} million bricks/yr (demo)"
        case "road_construction":
            km = rng.choice((20, 35, 50, 80))
            return km, "km of road", f"{km} km expressway/trunk road section (demo)"
        case "mining":
            mt = round(rng.uniform(1.0, 8.0), 1)
            return mt, "Mt ore or coal/yr", f"{mt} Mt/yr (demo)"
        case "nonferrous_smelting":
            mt = round(rng.uniform(0.5, 4.0), 1)
            return mt, "Mt product/yr", f"{mt} Mt/yr alumina or metal (demo)"
        case "scrap_processing":
            kt = rng.choice((150, 200, 300, 400, 600))  # MIIT scrap-processing conditions ask ≥ 150 kt/yr
            return kt, "kt/yr", f"{kt} kt/yr scrap processed (demo)"
        case _:
            kt = rng.choice((10, 20, 30, 50, 80))
            return kt, "kt/yr", f"{kt} kt/yr (demo)"


def _produces(rng: random.Random, industry: str, cap: float, key: str) -> list[_Flow]:
    f = _f
    flows: list[_Flow] = []
    match industry:
        case "coal_power":
            fly = cap * f("coal_power", "fly_ash_t_per_mw_year")
            flows.append(
                _Flow(
                    "fly_ash",
                    rng.choice(("I", "II", "II", "III")),
                    fly,
                    f("coal_power", "fly_ash_utilisation"),
                    0.0,
                )
            )
            flows.append(
                _Flow(
                    "fgd_gypsum",
                    rng.choice(("1", "2", "2", "3")),
                    cap * f("coal_power", "fgd_gypsum_t_per_mw_year"),
                    f("coal_power", "fgd_gypsum_utilisation"),
                    0.0,
                )
            )
            flows.append(_Flow("furnace_slag", None, fly * f("coal_power", "furnace_slag_per_fly_ash"), 0.8, 0.1))
            flows.append(_Flow("spent_scr_catalyst", None, cap * f("coal_power", "scr_catalyst_t_per_mw_year"), 0, 0))
            flows.append(_Flow("waste_mineral_oil", None, cap * f("coal_power", "waste_oil_t_per_mw_year"), 0, 0))
        case "steel_bf_bof":
            steel = cap * 1e6
            flows.append(
                _Flow(
                    "ggbs",
                    rng.choice(("S95", "S95", "S105", "S75")),
                    steel * f("steel_bf_bof", "bf_slag_t_per_t_steel"),
                    f("steel_bf_bof", "bf_slag_utilisation"),
                    0.3,
                )
            )
            flows.append(
                _Flow(
                    "steel_slag",
                    rng.choice(("road", "road", "powder_2")),
                    steel * f("steel_bf_bof", "steel_slag_t_per_t_steel"),
                    f("steel_bf_bof", "steel_slag_utilisation"),
                    0.4,
                )
            )
            flows.append(_Flow("waste_mineral_oil", None, cap * 150, 0, 0))
        case "steel_eaf":
            flows.append(
                _Flow(
                    "steel_slag",
                    "road",
                    cap * 1e6 * f("steel_eaf", "steel_slag_t_per_t_steel"),
                    f("steel_bf_bof", "steel_slag_utilisation"),
                    0.2,
                )
            )
        case "mining":
            is_coal = int(key[-3:]) % 2 == 0
            flows.append(
                _Flow(
                    "coal_gangue" if is_coal else "tailings",
                    None,
                    cap * 1e6 * (0.15 if is_coal else 0.6),
                    0.7 if is_coal else 0.3,
                    0.6,
                )
            )
        case "nonferrous_smelting":
            is_alumina = int(key[-3:]) % 2 == 0
            flows.append(
                _Flow(
                    "red_mud" if is_alumina else "nonferrous_slag",
                    None,
                    cap * 1e6 * (1.2 if is_alumina else 0.4),
                    0.1 if is_alumina else 0.6,
                    0.1,
                )
            )
        case "chemical":
            flows.append(_Flow("titanium_gypsum", None, cap * 1e3 * 6.0, 0.3, 0.0))
            flows.append(_Flow("contaminated_packaging", None, cap * 1e3 * 0.01, 0, 0))
        case "scrap_processing":
            flows.append(_Flow("scrap_steel", rng.choice(("heavy", "medium", "mixed")), cap * 1e3, 1.0, 0.0))
        case "other":
            kind = int(key[-3:]) % 5
            mat = ("battery_lfp", "battery_ncm", "waste_paper", "waste_tyres", "waste_plastics")[kind]
            flows.append(_Flow(mat, "recycling" if kind < 2 else None, cap * 1e3 * (0.05 if kind < 2 else 0.3), 1, 0))
            flows.append(_Flow("waste_mineral_oil", None, 20.0, 0, 0))
            if kind == 0:
                flows.append(_Flow("battery_lead_acid", None, 600.0, 1, 0))
        case _:
            pass
    return flows


def _demands(rng: random.Random, industry: str, cap: float, key: str) -> list[tuple[str, tuple[str, ...], float]]:
    """(material, accepted grades, annual tonnes wanted) for a consumer."""
    f = _f
    cat = load_catalogue()
    out: list[tuple[str, tuple[str, ...], float]] = []
    match industry:
        case "cement":
            t = cap * 1e6
            out.append(("fly_ash", (), t * f("cement", "fly_ash_t_per_t")))
            out.append(("ggbs", cat.get("ggbs").grade_at_least("S75"), t * f("cement", "ggbs_t_per_t")))
            # Natural gypsum still covers most retarder demand; the exchange sees part of the rest (estimate).
            out.append(
                ("fgd_gypsum", cat.get("fgd_gypsum").grade_at_least("2"), t * f("cement", "gypsum_t_per_t") * 0.4)
            )
            if rng.random() < 0.2:
                out.append(("titanium_gypsum", (), t * f("cement", "gypsum_t_per_t") * 0.2))
            out.append(("steel_slag", (), t * f("cement", "steel_slag_t_per_t")))
            if rng.random() < 0.4:
                out.append(("nonferrous_slag", (), t * f("cement", "nonferrous_slag_t_per_t")))
            if rng.random() < 0.2:
                out.append(("red_mud", (), t * f("cement", "red_mud_t_per_t")))
        case "concrete":
            m3 = cap * 1e6
            best = rng.random() < 0.4  # high-strength mixes ask for grade I fly ash and S95+
            out.append(("fly_ash", ("I",) if best else ("I", "II"), m3 * f("concrete", "fly_ash_t_per_m3")))
            out.append(("ggbs", ("S105", "S95"), m3 * f("concrete", "ggbs_t_per_m3")))
        case "plasterboard":
            gypsum = cap * 1e6 * f("plasterboard", "gypsum_t_per_m2") * 0.6  # part sourced from own power plant
            out.append(("fgd_gypsum", ("1",) if rng.random() < 0.6 else ("1", "2"), gypsum))
        case "bricks":
            raw = cap * f("bricks", "raw_t_per_million_bricks")
            out.append(("fly_ash", (), raw * 0.3))
            out.append(("coal_gangue", (), raw * 0.3))
            out.append(("furnace_slag", (), raw * 0.1))
            out.append(("tailings", (), raw * 0.1))
        case "road_construction":
            out.append(("steel_slag", ("powder_1", "powder_2", "road"), cap * 6000))
            out.append(("fly_ash", (), cap * 1500))
            out.append(("furnace_slag", (), cap * 800))
        case "steel_eaf":
            scrap = cap * 1e6 * f("steel_eaf", "scrap_t_per_t_steel") * 0.5  # half under term contracts
            out.append(("scrap_steel", ("heavy", "medium"), scrap))
        case "steel_bf_bof":
            # BF-BOF works cover most of their scrap from home scrap and contracts (estimate: 30% on the exchange).
            out.append(("scrap_steel", (), cap * 1e6 * f("steel_bf_bof", "scrap_t_per_t_steel") * 0.3))
        case "battery_recycling":
            out.append(("battery_lfp", (), cap * 1e3 * 0.5))
            out.append(("battery_ncm", (), cap * 1e3 * 0.5))
        case "nonferrous_smelting" if int(key[-3:]) % 3 == 1:
            out.append(("battery_lead_acid", (), 20000.0))
        case "hazardous_waste_treatment":
            for m in ("waste_mineral_oil", "spent_scr_catalyst", "contaminated_packaging"):
                out.append((m, (), cap * 1e3 * 0.05))
        case "paper":
            out.append(("waste_paper", (), cap * 1e3 * 1.2))
        case "plastics_recycling":
            out.append(("waste_plastics", (), cap * 1e3))
        case "tyre_recycling":
            out.append(("waste_tyres", (), cap * 1e3))
        case _:
            pass
    return out


# ---------------------------------------------------------------- ledgers


def _ledger(rng: random.Random, key: str, flow: _Flow, industry: str) -> list[LedgerRow]:
    rows: list[LedgerRow] = []
    season = _seasonal(industry)
    for i, period in enumerate(PERIODS):
        gen = _t(flow.annual_t / 12 * season[i] * rng.uniform(0.92, 1.08))
        util = _t(float(gen) * min(1.0, flow.utilisation * rng.uniform(0.9, 1.1)))
        util = min(util, gen)
        in_house = _t(float(util) * flow.in_house_share)
        sent = util - in_house
        rest = gen - util
        hazardous = load_catalogue().get(flow.material).hazardous
        disposed = rest if hazardous else _t(float(rest) * rng.uniform(0.1, 0.4))
        stored = rest - disposed
        # Some months draw down prior-year stock: more is sent out than this month's generation covers.
        prior_sent = _t(float(gen) * rng.uniform(0.02, 0.1)) if (not hazardous and rng.random() < 0.25) else TONNE * 0
        prior_disposed = _t(float(gen) * 0.02) if (not hazardous and rng.random() < 0.1) else TONNE * 0
        row = LedgerRow(
            enterprise_key=key,
            material=flow.material,
            period=period,
            generated_t=gen,
            utilised_in_house_t=in_house,
            utilised_in_house_prior_stock_t=TONNE * 0,
            sent_for_utilisation_t=sent + prior_sent,
            sent_for_utilisation_prior_stock_t=prior_sent,
            disposed_t=disposed + prior_disposed,
            disposed_prior_stock_t=prior_disposed,
            stored_t=stored,
            dumped_t=TONNE * 0,
        )
        assert row.identity_holds()
        rows.append(row)
    return rows


# ---------------------------------------------------------------- the demo


def _price(rng: random.Random, material: str, grade: str | None, kind: str) -> Decimal | None:
    m = load_catalogue().get(material)
    p = m.price_cny_per_t
    if kind == "demand" and rng.random() < 0.5:
        return None  # many buyers do not publish a price
    g = m.grade(grade) if grade else None
    bonus = 1.0 + (0.15 * (len(m.grades) - g.rank) if g else 0.0)
    lo, hi = (p.low if p.low is not None else p.value), (p.high if p.high is not None else p.value)
    value = (p.value + rng.uniform(lo - p.value, hi - p.value) * 0.5) * (bonus if p.value > 0 else 1.0)
    return Decimal(repr(value)).quantize(YUAN, rounding=ROUND_HALF_UP)


def generate_demo(seed: int = 2026) -> DemoDataset:
    rng = random.Random(seed)
    cities = _cities()
    divs = load_divisions()
    cat = load_catalogue()
    parks: list[Park] = []
    for key, city_code, zh, en in PARKS:
        lat, lon, _ = _point_in_city(rng, cities[city_code], None, 6.0)
        parks.append(Park(key, f"{zh}（演示）", f"{en} (demo)", city_code, lat, lon))
    parks_by_city: dict[str, list[Park]] = {}
    for p in parks:
        parks_by_city.setdefault(p.city_code, []).append(p)

    enterprises: list[Enterprise] = []
    supply_flows: dict[str, list[_Flow]] = {}
    used_uscc: set[str] = set()
    seq_by_city: dict[tuple[str, str], int] = {}
    n = 0
    for industry, count, city_codes in PLAN:
        for i in range(count):
            n += 1
            key = f"e{n:03d}"
            city = cities[city_codes[i % len(city_codes)]]
            park = None
            if city.code in parks_by_city and rng.random() < 0.6:
                park = rng.choice(parks_by_city[city.code])
            lat, lon, county = _point_in_city(rng, city, (park.lat, park.lon) if park else None, 4.0 if park else 8.0)
            if county is None:
                county = min(
                    divs.counties(city.code) or [city],
                    key=lambda c: (c.lat - lat) ** 2 + (c.lon - lon) ** 2,
                )
            seq = seq_by_city[(city.code, industry)] = seq_by_city.get((city.code, industry), 0) + 1
            noun_zh, noun_en = INDUSTRY_NOUN[industry]
            name_zh = f"{city.short_zh}第{seq}{noun_zh}（演示）"
            name_en = f"{city.name_en} No. {seq} {noun_en} (demo)"
            cap, unit, note = _capacity(rng, industry)
            uscc = make_uscc(rng, county.code if county.level == "county" else city.code)
            while uscc in used_uscc:
                uscc = make_uscc(rng, city.code)
            used_uscc.add(uscc)
            province = divs.get(city.province_code)
            county_name = county.name_zh if county.level == "county" else ""
            prov_prefix = "" if province.name_zh == city.name_zh else province.name_zh
            address = f"{prov_prefix}{city.name_zh}{county_name}{rng.choice(STREETS)}路{rng.randint(1, 999)}号"
            permits: tuple[str, ...] = ()
            if industry == "hazardous_waste_treatment":
                permits = ("waste_mineral_oil", "spent_scr_catalyst", "contaminated_packaging", "electroplating_sludge")
            elif industry == "nonferrous_smelting" and n % 3 == 1:
                permits = ("battery_lead_acid",)
            elif industry == "cement" and rng.random() < 0.15:
                permits = ("msw_incineration_fly_ash",)
            enterprises.append(
                Enterprise(
                    key=key,
                    name=name_zh,
                    name_en=name_en,
                    uscc=uscc,
                    industry=industry,
                    address=address,
                    park_key=park.key if park else None,
                    lat=lat,
                    lon=lon,
                    province_code=city.province_code,
                    city_code=city.code,
                    county_code=county.code if county.level == "county" else None,
                    contact_name=rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
                    contact_phone=f"1390000{rng.randint(0, 9999):04d}",
                    annual_capacity=cap,
                    capacity_unit=unit,
                    capacity_note=note,
                    permits=permits,
                )
            )
            supply_flows[key] = _produces(rng, industry, cap, key)

    listings: list[Listing] = []
    ledgers: list[LedgerRow] = []
    lo_share, hi_share = _f("demand", "offered_share_low"), _f("demand", "offered_share_high")
    for e in enterprises:
        for flow in supply_flows[e.key]:
            ledgers.extend(_ledger(rng, e.key, flow, e.industry))
            m = cat.get(flow.material)
            sent_share = (1 - flow.in_house_share) * flow.utilisation if not m.hazardous else 1.0
            qty = flow.annual_t / 12 * sent_share * rng.uniform(lo_share, hi_share) * EXCHANGE_SHARE.get(m.code, 1.0)
            if qty < 1:
                qty = flow.annual_t  # small hazardous lots are listed as one batch
                basis = "one_off"
            else:
                basis = "per_month"
            listings.append(
                Listing(
                    key=f"L{len(listings) + 1:04d}",
                    enterprise_key=e.key,
                    kind="supply",
                    material=flow.material,
                    grade=flow.grade,
                    accepted_grades=(),
                    quantity_t=_t(max(qty, 0.5)),
                    quantity_basis=basis,
                    price_cny_per_t=_price(rng, flow.material, flow.grade, "supply"),
                    max_distance_km=None,
                    visibility=rng.choice(("public", "public", "public", "park", "anonymous")),
                    permits_required=m.hazardous,
                )
            )
        for material, accepted, annual in _demands(rng, e.industry, e.annual_capacity, e.key):
            m = cat.get(material)
            rng_km = m.transport_range_km
            # Tight ranges: a buyer's own limit sits between the low and typical economic range.
            low_km = rng_km.low if rng_km.low is not None else rng_km.value * 0.5
            max_km = int(rng.uniform(low_km, rng_km.value) // 10 * 10) or 10
            one_off = e.industry == "road_construction"
            qty = annual * rng.uniform(lo_share, hi_share) * (0.5 if one_off else 1 / 12)
            listings.append(
                Listing(
                    key=f"L{len(listings) + 1:04d}",
                    enterprise_key=e.key,
                    kind="demand",
                    material=material,
                    grade=None,
                    accepted_grades=accepted,
                    quantity_t=_t(qty),
                    quantity_basis="one_off" if one_off else "per_month",
                    price_cny_per_t=_price(rng, material, accepted[-1] if accepted else None, "demand"),
                    max_distance_km=max_km,
                    visibility=rng.choice(("public", "public", "park", "anonymous")),
                    permits_required=m.hazardous,
                )
            )
    accounts = _accounts(enterprises, parks)
    return DemoDataset(seed, tuple(parks), tuple(enterprises), tuple(listings), tuple(ledgers), tuple(accounts))


def _accounts(enterprises: list[Enterprise], parks: list[Park]) -> list[Account]:
    pw = DEMO_PASSWORDS

    def first(industry: str, city: str | None = None) -> Enterprise:
        return next(e for e in enterprises if e.industry == industry and (city is None or e.city_code == city))

    power, cement = first("coal_power", "130400"), first("cement", "130400")
    accounts = [
        Account("admin", "admin@demo.example", "平台管理员 Admin (demo)", "admin", pw["admin"]),
        Account(
            "park.fengfeng", "park.fengfeng@demo.example", "峰峰园区管理员 (demo)", "park_manager",
            pw["park_manager"], park_key="fengfeng",
        ),
        Account(
            "park.caofeidian", "park.caofeidian@demo.example", "曹妃甸园区管理员 (demo)", "park_manager",
            pw["park_manager"], park_key="caofeidian",
        ),
        Account(
            "regulator.hebei", "regulator.hebei@demo.example", "河北省监管员 (demo)", "regulator",
            pw["regulator"], region_code="130000",
        ),
        Account(
            "regulator.handan", "regulator.handan@demo.example", "邯郸市监管员 (demo)", "regulator",
            pw["regulator"], region_code="130400",
        ),
        Account(
            "producer", "producer@demo.example", f"{power.contact_name} ({power.name_en})", "enterprise",
            pw["enterprise"], enterprise_key=power.key,
        ),
        Account(
            "consumer", "consumer@demo.example", f"{cement.contact_name} ({cement.name_en})", "enterprise",
            pw["enterprise"], enterprise_key=cement.key,
        ),
    ]  # fmt: skip
    for username, industry in (
        ("steelworks", "steel_bf_bof"),
        ("eaf", "steel_eaf"),
        ("recycler", "battery_recycling"),
        ("hazreceiver", "hazardous_waste_treatment"),
        ("plasterboard", "plasterboard"),
    ):
        e = first(industry)
        accounts.append(
            Account(
                username, f"{username}@demo.example", f"{e.contact_name} ({e.name_en})", "enterprise",
                pw["enterprise"], enterprise_key=e.key,
            )
        )  # fmt: skip
    return accounts


# ---------------------------------------------------------------- synthetic benchmark instances


@dataclass(frozen=True)
class SyntheticEnterprise:
    key: str
    industry: str
    uscc: str
    province_code: str
    city_code: str
    lat: float
    lon: float
    annual_capacity: float


SyntheticRow = SyntheticEnterprise | LedgerRow

_SYNTH_INDUSTRIES = tuple(ind for ind, count, _ in PLAN for _ in range(count))


def generate_synthetic(n_enterprises: int, months: int, seed: int) -> Iterator[SyntheticRow]:
    """Stream enterprises across all of China, each followed by its ledger rows, for benchmarks.

    Memory stays flat: nothing is kept between enterprises. The industry mix follows the demo's;
    locations are city centroids jittered by up to ~10 km and checked in batches against the boundaries.
    """
    rng = random.Random(seed)
    cities = [c for c in load_divisions().cities() if c.province_code[:2] not in ("71", "81", "82")]
    periods = [f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(months)]
    batch = 1000
    for start in range(0, n_enterprises, batch):
        size = min(batch, n_enterprises - start)
        picks = [rng.choice(cities) for _ in range(size)]
        lats = [c.lat + rng.uniform(-0.09, 0.09) for c in picks]
        lons = [c.lon + rng.uniform(-0.11, 0.11) for c in picks]
        located = locate_many(lats, lons)
        for j in range(size):
            city = picks[j]
            lat, lon = (lats[j], lons[j]) if located[j][1] == city.code else (city.lat, city.lon)
            industry = rng.choice(_SYNTH_INDUSTRIES)
            key = f"s{start + j:07d}"
            cap, _, _ = _capacity(rng, industry)
            yield SyntheticEnterprise(
                key, industry, make_uscc(rng, city.code), city.province_code, city.code, round(lat, 5),
                round(lon, 5), cap,
            )  # fmt: skip
            for flow in _produces(rng, industry, cap, key):
                season = _seasonal(industry)
                for k, period in enumerate(periods):
                    gen = _t(flow.annual_t / 12 * season[k % 12] * rng.uniform(0.9, 1.1))
                    util = min(gen, _t(float(gen) * flow.utilisation))
                    in_house = _t(float(util) * flow.in_house_share)
                    rest = gen - util
                    yield LedgerRow(
                        key, flow.material, period, gen, in_house, TONNE * 0, util - in_house, TONNE * 0,
                        TONNE * 0, TONNE * 0, rest, TONNE * 0,
                    )  # fmt: skip


def main() -> None:
    """Print a summary and the demo passwords: ``python -m exchange.demo.generate``."""
    ds = generate_demo()
    print(f"parks {len(ds.parks)}, enterprises {len(ds.enterprises)}, listings {len(ds.listings)}, "
          f"ledger rows {len(ds.ledgers)}, accounts {len(ds.accounts)}")  # fmt: skip
    for a in ds.accounts:
        print(f"  {a.role:13} {a.username:18} {a.password}")


if __name__ == "__main__":
    main()
