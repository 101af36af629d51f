"""The vendor's ``market`` table: units and revenue per country, category and month.

Independent of the partners' rows: a country's size times a category's base volume, times the
calendar month's weight, a mild trend per category (PCs up, printers down) and a little noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import PRODUCT_CATEGORIES
from amplify_ml.datasets.accounts import NEIGHBOURS, Partner
from amplify_ml.datasets.calendar import Calendar
from amplify_ml.datasets.config import WorldConfig

_COUNTRY_SIZE = {
    "US": 30.0,
    "DE": 8.0,
    "GB": 6.5,
    "FR": 6.0,
    "IT": 5.0,
    "ES": 4.5,
    "PL": 3.0,
    "NL": 2.5,
    "CA": 3.5,
    "MX": 4.0,
    "SE": 1.5,
    "BE": 1.4,
    "AT": 1.2,
    "CH": 1.3,
    "CZ": 1.0,
    "PT": 1.0,
    "DK": 0.8,
    "NO": 0.8,
    "FI": 0.7,
    "IE": 0.7,
    "HU": 0.8,
    "SK": 0.5,
    "SI": 0.3,
    "LU": 0.1,
    "LI": 0.02,
}
_BASE_UNITS = (9000.0, 25000.0, 60000.0, 7000.0, 4000.0, 30000.0)
_AVG_PRICE = (420.0, 980.0, 95.0, 120.0, 300.0, 80.0)
_TREND = (-0.03, 0.04, -0.02, 0.01, 0.05, 0.02)


def market_table(
    cfg: WorldConfig, cal: Calendar, partners: list[Partner], rng: np.random.Generator
) -> pd.DataFrame:
    countries = sorted(
        {p.country for p in partners} | {n for p in partners for n in NEIGHBOURS.get(p.country, ())}
    )
    months = cal.month_starts()
    years = months / 365.25
    season = np.asarray(cfg.usage.month_weights)[cal.month_of(months) - 1]
    rows = []
    for c in countries:
        size = _COUNTRY_SIZE.get(c, 0.5)
        for k, cat in enumerate(PRODUCT_CATEGORIES):
            units = (
                size
                * _BASE_UNITS[k]
                * season
                * np.exp(_TREND[k] * years)
                * rng.lognormal(0.0, 0.05, len(months))
            )
            units = np.round(units).astype(np.int64)
            revenue = np.round(units * _AVG_PRICE[k] * rng.uniform(0.95, 1.05, len(months)), 2)
            rows.append(
                pd.DataFrame(
                    {
                        "country": c,
                        "category": cat,
                        "month": cal.epoch_days(months).astype("datetime64[D]"),
                        "units": units,
                        "revenue": revenue,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)
