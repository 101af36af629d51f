"""The vendor's catalogue: device families and the ``products`` table.

The catalogue is the same for every seed: printer and PC families with launch dates,
typical volumes and warranty lengths; per printer family one standard and one high-yield
cartridge per colour (with ``page_yield``); per device family three extended-warranty SKUs
(12, 24, 36 months); and service and accessory SKUs. SKU codes are derived from a hash of
the product's name, so they are stable and never look like personal data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import PRODUCT_CATEGORIES, SUPPLY_COLORS

CATEGORY_INDEX = {c: i for i, c in enumerate(PRODUCT_CATEGORIES)}
PRINTER, PC, SUPPLIES, WARRANTY, SERVICE, ACCESSORY = range(6)
N_COLORS = len(SUPPLY_COLORS)


@dataclass(frozen=True)
class Family:
    """A device family.

    ``typical`` is the typical pages on a full-weight day (printers) or 1.0 (PCs);
    ``coarse_step`` the step in which the family reports supply levels (1 = whole percent);
    ``yield_scale`` scales the cartridge yields of the family.
    """

    name: str
    category: int
    launched: date
    price: float
    warranty_months: int
    color: bool = False
    typical: float = 1.0
    coarse_step: int = 1
    yield_scale: float = 1.0
    ink: bool = False


_P = PRINTER
_C = PC
FAMILIES: tuple[Family, ...] = (
    # printers: name, category, launched, price, warranty, color, typical pages/day, step, yield
    Family("LaserJet P2055", _P, date(2009, 3, 1), 329.0, 12, False, 25.0, 25, 0.8),
    Family("Color LaserJet CP2025", _P, date(2009, 6, 1), 449.0, 12, True, 18.0, 25, 0.7),
    Family("LaserJet Enterprise 600 M602", _P, date(2012, 2, 1), 1099.0, 12, False, 110.0, 10, 2.5),
    Family("LaserJet Pro M402", _P, date(2016, 4, 1), 289.0, 12, False, 35.0, 10, 1.0),
    Family("Color LaserJet Enterprise M553", _P, date(2015, 9, 1), 899.0, 12, True, 75.0, 10, 2.0),
    Family("OfficeJet Pro 8720", _P, date(2016, 5, 1), 249.0, 12, True, 12.0, 10, 0.5, True),
    Family("PageWide Pro 477", _P, date(2015, 10, 1), 549.0, 12, True, 45.0, 10, 1.5, True),
    Family("LaserJet Enterprise M607", _P, date(2017, 11, 1), 1299.0, 12, False, 150.0, 1, 2.8),
    Family("LaserJet Pro M404", _P, date(2019, 3, 1), 279.0, 12, False, 35.0, 1, 1.0),
    Family("Color LaserJet Pro M454", _P, date(2019, 3, 1), 429.0, 12, True, 30.0, 1, 1.0),
    Family("LaserJet Enterprise M507", _P, date(2019, 6, 1), 799.0, 12, False, 110.0, 1, 2.2),
    Family("Color LaserJet Enterprise M555", _P, date(2019, 8, 1), 1149.0, 12, True, 90.0, 1, 2.0),
    Family("LaserJet Enterprise MFP M634", _P, date(2020, 9, 1), 2099.0, 12, False, 140.0, 1, 2.6),
    Family("LaserJet Pro 4001", _P, date(2021, 11, 1), 329.0, 12, False, 40.0, 1, 1.1),
    Family("Color LaserJet Pro 4201", _P, date(2021, 11, 1), 479.0, 12, True, 35.0, 1, 1.0),
    Family("OfficeJet Pro 9130", _P, date(2023, 3, 1), 299.0, 12, True, 15.0, 1, 0.6, True),
    Family("Color LaserJet Enterprise 5700", _P, date(2023, 6, 1), 1299.0, 12, True, 95.0, 1, 2.1),
    Family("LaserJet Pro 3001", _P, date(2024, 2, 1), 249.0, 12, False, 30.0, 1, 0.9),
    # PCs
    Family("EliteBook 840 G1", _C, date(2013, 11, 1), 1299.0, 36),
    Family("ProBook 450 G1", _C, date(2013, 9, 1), 749.0, 12),
    Family("EliteDesk 800 G1", _C, date(2013, 6, 1), 899.0, 36),
    Family("EliteBook 820 G2", _C, date(2015, 1, 1), 1249.0, 36),
    Family("EliteDesk 800 G2", _C, date(2015, 10, 1), 899.0, 36),
    Family("EliteBook 840 G3", _C, date(2016, 1, 1), 1299.0, 36),
    Family("ProDesk 400 G4", _C, date(2017, 3, 1), 649.0, 12),
    Family("ProBook 450 G5", _C, date(2017, 11, 1), 799.0, 12),
    Family("ZBook Studio G5", _C, date(2018, 10, 1), 2199.0, 36),
    Family("EliteBook 840 G6", _C, date(2019, 5, 1), 1399.0, 36),
    Family("EliteDesk 800 G6", _C, date(2020, 5, 1), 949.0, 36),
    Family("ProDesk 400 G7", _C, date(2020, 9, 1), 679.0, 12),
    Family("ProBook 450 G8", _C, date(2021, 1, 1), 849.0, 12),
    Family("ZBook Firefly 14 G8", _C, date(2021, 4, 1), 1899.0, 36),
    Family("EliteBook 840 G9", _C, date(2022, 3, 1), 1499.0, 36),
    Family("Elite Mini 800 G9", _C, date(2022, 4, 1), 999.0, 36),
    Family("Elite Dragonfly G3", _C, date(2022, 4, 1), 2099.0, 36),
    Family("ProBook 450 G10", _C, date(2023, 3, 1), 899.0, 12),
    Family("EliteBook 840 G11", _C, date(2024, 3, 1), 1549.0, 36),
    Family("ProBook 460 G11", _C, date(2024, 4, 1), 949.0, 12),
)

SERVICES: tuple[tuple[str, str, float], ...] = (
    ("Installation Services", "Printer installation and setup", 149.0),
    ("Installation Services", "PC imaging and deployment", 89.0),
    ("Repair Services", "Onsite repair next business day", 199.0),
    ("Repair Services", "Onsite repair 4 hours", 349.0),
    ("Managed Print Services", "Fleet assessment", 990.0),
    ("Managed Print Services", "Print security configuration", 590.0),
    ("Device as a Service", "Device lifecycle management", 790.0),
    ("Recycling Services", "Device recycling and data wipe", 59.0),
)
ACCESSORIES: tuple[tuple[str, float], ...] = (
    ("USB-C Dock G5", 229.0),
    ("Thunderbolt Dock G4", 289.0),
    ("Wireless Keyboard and Mouse 650", 49.0),
    ("E24 G5 Monitor", 219.0),
    ("E27 G5 Monitor", 309.0),
    ("Paper Tray 550-sheet", 199.0),
    ("Business Backpack", 69.0),
    ("USB-C Travel Adapter", 39.0),
)

_STD_YIELD_MONO = 3000.0
_STD_YIELD_COLOR = (2400.0, 2100.0, 2100.0, 2100.0)
_HIGH_FACTOR = (3.0, 2.4, 2.4, 2.4)
_COLOR_NAMES = SUPPLY_COLORS


def _code(kind: str, key: str) -> str:
    """A stable product number from a hash: letters and digits, never phone-like."""
    h = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    digits = "0123456789"
    if kind == "device":
        return (
            digits[1 + h[0] % 9]
            + letters[h[1] % 24]
            + "".join(digits[b % 10] for b in h[2:5])
            + letters[h[5] % 24]
        )
    if kind == "supply":
        return "W" + "".join(digits[b % 10] for b in h[0:4]) + letters[h[4] % 3]
    if kind == "warranty":
        return (
            "U"
            + letters[h[0] % 24]
            + "".join(digits[b % 10] for b in h[1:3])
            + letters[h[3] % 24]
            + "E"
        )
    if kind == "service":
        return (
            "H"
            + letters[h[0] % 24]
            + digits[h[1] % 10]
            + letters[h[2] % 24]
            + digits[h[3] % 10]
            + "E"
        )
    return (
        digits[1 + h[0] % 9] + letters[h[1] % 24] + "".join(digits[b % 10] for b in h[2:5]) + "AA"
    )


@dataclass(frozen=True)
class Catalogue:
    """Families and products, with index arrays the simulation uses.

    ``device_skus[f]`` are the product indices of family ``f``'s device SKUs;
    ``supply_sku[f, color, high]`` the cartridge for a printer family (-1 if none) and
    ``supply_yield`` its rated pages; ``warranty_sku[f, k]`` the extension of
    ``WARRANTY_MONTHS[k]`` months.
    """

    families: tuple[Family, ...]
    products: pd.DataFrame
    category: np.ndarray
    price: np.ndarray
    family_of: np.ndarray
    device_skus: tuple[np.ndarray, ...]
    supply_sku: np.ndarray
    supply_yield: np.ndarray
    warranty_sku: np.ndarray
    service_skus: np.ndarray
    accessory_skus: np.ndarray
    family_category: np.ndarray
    family_launch: np.ndarray
    """Launch dates as days since 1970-01-01."""
    family_color: np.ndarray
    family_typical: np.ndarray
    family_step: np.ndarray
    family_warranty_months: np.ndarray

    @property
    def sku(self) -> np.ndarray:
        return self.products["sku"].to_numpy()

    def families_of(self, category: int) -> np.ndarray:
        return np.flatnonzero(self.family_category == category)


WARRANTY_MONTHS = (12, 24, 36)


def build_catalogue() -> Catalogue:
    """The catalogue (deterministic)."""
    rows: list[dict[str, object]] = []
    fam_of: list[int] = []
    device_skus: list[list[int]] = [[] for _ in FAMILIES]
    supply_sku = -np.ones((len(FAMILIES), N_COLORS, 2), dtype=np.int64)
    supply_yield = np.zeros((len(FAMILIES), N_COLORS, 2))
    warranty_sku = -np.ones((len(FAMILIES), len(WARRANTY_MONTHS)), dtype=np.int64)
    seen: set[str] = set()

    def add(kind: str, key: str, **values: object) -> int:
        sku = _code(kind, key)
        salt = 0
        while sku in seen:
            salt += 1
            sku = _code(kind, f"{key}#{salt}")
        seen.add(sku)
        rows.append({"sku": sku, **values})
        return len(rows) - 1

    for f, fam in enumerate(FAMILIES):
        cat = PRODUCT_CATEGORIES[fam.category]
        variants = ("dn", "dw") if fam.category == PRINTER else ("base", "plus")
        for v, variant in enumerate(variants):
            i = add(
                "device",
                f"{fam.name}/{variant}",
                category=cat,
                family=fam.name,
                list_price=round(fam.price * (1.0 + 0.18 * v), 2),
                launched_on=fam.launched,
            )
            device_skus[f].append(i)
            fam_of.append(f)
        if fam.category == PRINTER:
            colors = range(N_COLORS) if fam.color else range(1)
            for c in colors:
                base = _STD_YIELD_MONO if not fam.color else _STD_YIELD_COLOR[c]
                if fam.ink:
                    base *= 0.45
                for high in (0, 1):
                    pages = int(
                        round(base * fam.yield_scale * (_HIGH_FACTOR[c] if high else 1.0), -1)
                    )
                    price = round(0.028 * pages * (0.8 if high else 1.0) + 25.0, 2)
                    i = add(
                        "supply",
                        f"{fam.name}/{_COLOR_NAMES[c]}/{high}",
                        category="supplies",
                        family=fam.name,
                        list_price=price,
                        launched_on=fam.launched,
                        page_yield=pages,
                        color=_COLOR_NAMES[c],
                    )
                    supply_sku[f, c, high] = i
                    supply_yield[f, c, high] = pages
                    fam_of.append(f)
        for k, months in enumerate(WARRANTY_MONTHS):
            i = add(
                "warranty",
                f"{fam.name}/{months}",
                category="warranty",
                family=fam.name,
                list_price=round(fam.price * (0.06 + 0.045 * months / 12), 2),
                launched_on=fam.launched,
                extends_warranty_months=months,
            )
            warranty_sku[f, k] = i
            fam_of.append(f)
    service_skus = []
    for family, name, price in SERVICES:
        service_skus.append(
            add(
                "service",
                name,
                category="service",
                family=family,
                list_price=price,
                launched_on=date(2015, 1, 1),
            )
        )
        fam_of.append(-1)
    accessory_skus = []
    for a, (name, price) in enumerate(ACCESSORIES):
        for v in range(2 if a < 2 else 1):
            accessory_skus.append(
                add(
                    "accessory",
                    f"{name}/{v}",
                    category="accessory",
                    family=name,
                    list_price=round(price * (1 + 0.1 * v), 2),
                    launched_on=date(2019 + a % 4, 1, 1),
                )
            )
            fam_of.append(-1)

    products = pd.DataFrame(rows)
    products["currency"] = "USD"
    for col in ("page_yield", "extends_warranty_months"):
        products[col] = products.get(col, pd.Series(dtype="float")).astype("Int64")
    if "color" not in products:
        products["color"] = None
    products = products[
        [
            "sku",
            "category",
            "family",
            "list_price",
            "currency",
            "launched_on",
            "page_yield",
            "color",
            "extends_warranty_months",
        ]
    ]
    epoch = date(1970, 1, 1)
    return Catalogue(
        families=FAMILIES,
        products=products,
        category=products["category"].map(CATEGORY_INDEX).to_numpy(np.int64),
        price=products["list_price"].to_numpy(np.float64),
        family_of=np.asarray(fam_of, dtype=np.int64),
        device_skus=tuple(np.asarray(s, dtype=np.int64) for s in device_skus),
        supply_sku=supply_sku,
        supply_yield=supply_yield,
        warranty_sku=warranty_sku,
        service_skus=np.asarray(service_skus, dtype=np.int64),
        accessory_skus=np.asarray(accessory_skus, dtype=np.int64),
        family_category=np.asarray([f.category for f in FAMILIES], dtype=np.int64),
        family_launch=np.asarray([(f.launched - epoch).days for f in FAMILIES], dtype=np.int64),
        family_color=np.asarray([f.color for f in FAMILIES], dtype=bool),
        family_typical=np.asarray([f.typical for f in FAMILIES], dtype=np.float64),
        family_step=np.asarray([f.coarse_step for f in FAMILIES], dtype=np.int64),
        family_warranty_months=np.asarray([f.warranty_months for f in FAMILIES], dtype=np.int64),
    )


def pick_family(
    cat: Catalogue,
    category: np.ndarray,
    install_epoch: np.ndarray,
    rng: np.random.Generator,
    *,
    recency_years: float,
    sale_years: float,
) -> np.ndarray:
    """A family for each device: launched before its install date, recent ones preferred.

    Families are on sale for ``sale_years`` after launch; when none is on sale (very old
    install dates), the oldest family of the category is used.
    """
    out = np.empty(len(category), dtype=np.int64)
    for c in (PRINTER, PC):
        rows = np.flatnonzero(category == c)
        if len(rows) == 0:
            continue
        fams = cat.families_of(c)
        launch = cat.family_launch[fams]
        age = (install_epoch[rows, None] - launch[None, :]) / 365.25
        weight = np.where(
            (age >= 0) & (age <= sale_years), np.exp(-np.clip(age, 0, None) / recency_years), 0.0
        )
        none = weight.sum(axis=1) == 0
        weight[none, np.argmin(launch)] = 1.0
        cum = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
        u = rng.random(len(rows))[:, None]
        out[rows] = fams[np.minimum((u > cum).sum(axis=1), len(fams) - 1)]
    return out
