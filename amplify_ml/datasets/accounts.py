"""Partners and their accounts (customer companies), with the accounts' latent traits.

Observable columns follow the contract (industry, employee band, country, first_seen). The
latent traits drive every other mechanism and are never written to a pack:

- ``employees`` (size within the band) scales purchase and project rates;
- ``affinity[k]`` per product category (log-rate offset, with a common factor);
- ``print_intensity`` (pages per printer) and ``coverage[color]`` (toner per page);
- ``budget_month`` and ``budget_boost`` (seasonality), ``churn_day`` (a latent churn
  hazard: from that day on the account buys nothing through the partner);
- ``life_printer``/``life_pc`` and ``policy`` (refresh policy), ``p_replace`` (a retired
  device is replaced through the partner), ``mps_share``/``daas_share`` (managed services),
  ``warranty_buyer`` (buys extensions), ``visibility`` (its buying projects show up as
  intent signals), ``win_logit`` (conversion of projects), ``p_opportunity``,
  ``high_yield``/``early_changer`` (cartridge habits), ``loyalty`` (share of its unmanaged
  printers whose supplies it buys through the partner), ``discount``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import EMPLOYEE_BANDS, TRACKS
from amplify_ml.datasets.arrays import ArrayFrame, pseudonyms, sigmoid
from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.config import WorldConfig

INDUSTRIES = (
    "Retail",
    "Healthcare",
    "Education",
    "Manufacturing",
    "Legal services",
    "Financial services",
    "Public sector",
    "Hospitality",
    "Logistics",
    "Construction",
    "Professional services",
    "IT services",
    "Real estate",
    "Media",
    "Non-profit",
)
INDUSTRY_WEIGHTS = (10, 9, 7, 11, 5, 6, 6, 5, 6, 6, 10, 7, 4, 3, 3)
NEIGHBOURS = {
    "DE": ("AT", "CH", "NL", "PL", "DK"),
    "FR": ("BE", "CH", "LU", "ES"),
    "GB": ("IE", "NL"),
    "NL": ("BE", "DE", "LU"),
    "US": ("CA", "MX"),
    "ES": ("PT", "FR"),
    "IT": ("CH", "AT", "SI"),
    "SE": ("NO", "DK", "FI"),
    "PL": ("CZ", "DE", "SK"),
    "AT": ("DE", "CZ", "HU"),
    "CH": ("DE", "FR", "IT", "LI"),
    "BE": ("NL", "FR", "LU"),
}
CURRENCY = {
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "AT": "EUR",
    "BE": "EUR",
    "GB": "GBP",
    "US": "USD",
    "SE": "SEK",
    "PL": "PLN",
    "CH": "CHF",
}
FX_PER_USD = {"EUR": 0.92, "GBP": 0.79, "USD": 1.0, "SEK": 10.4, "PLN": 3.95, "CHF": 0.88}
_NAME_A = (
    "Nordlicht",
    "Blue Harbor",
    "Alpen",
    "Kestrel",
    "Meridian",
    "Silverline",
    "Bright Path",
    "Oakridge",
    "Rhein",
    "Atlas",
    "Lumen",
    "Pioneer",
    "Crescent",
    "Summit",
    "Delta",
    "Vega",
    "Granite",
    "Tidewater",
    "Northstar",
    "Helix",
    "Orion",
    "Cedar",
    "Falcon",
    "Aurora",
)
_NAME_B = (
    "IT",
    "Systems",
    "Office Solutions",
    "Digital",
    "Print and Copy",
    "Technologies",
    "Business Machines",
    "Networks",
    "Computing",
    "Workplace",
)
_SUFFIX = {
    "DE": "GmbH",
    "AT": "GmbH",
    "CH": "AG",
    "FR": "SAS",
    "BE": "SA",
    "GB": "Ltd",
    "NL": "B.V.",
    "US": "Inc.",
    "ES": "S.L.",
    "IT": "S.r.l.",
    "SE": "AB",
    "PL": "Sp. z o.o.",
}


@dataclass(frozen=True)
class Partner:
    """One partner of the program (a row of the vendor's ``partners`` table)."""

    index: int
    partner_id: str
    name: str
    track: str
    data_sharing: bool
    country: str
    joined_on: date
    late_pack: bool

    @property
    def currency(self) -> str:
        return CURRENCY[self.country]


def build_partners(cfg: WorldConfig, cal: Calendar, rng: np.random.Generator) -> list[Partner]:
    """The partners: exactly one without consent (never the first), a few with a late pack."""
    pop = cfg.population
    n = pop.n_partners
    w = np.asarray(pop.partner_country_weights)
    countries = rng.choice(np.asarray(pop.partner_countries), size=n, p=w / w.sum())
    tracks = rng.choice(np.asarray(TRACKS), size=n, p=np.asarray(pop.track_probs))
    joined = rng.integers(cal.day(date(2012, 1, 1)), cal.day(date(2023, 6, 30)), n)
    no_consent = int(rng.integers(1, n)) if n > 1 else 0
    consenting = [i for i in range(n) if i != no_consent]
    n_late = max(1, round(pop.late_pack_share * len(consenting))) if consenting else 0
    late = (
        set(rng.choice(np.asarray(consenting), size=n_late, replace=False).tolist())
        if n_late
        else set()
    )
    names: set[str] = set()
    out = []
    for i in range(n):
        while True:
            name = f"{_NAME_A[rng.integers(len(_NAME_A))]} {_NAME_B[rng.integers(len(_NAME_B))]} {_SUFFIX[str(countries[i])]}"
            if name not in names:
                names.add(name)
                break
        out.append(
            Partner(
                index=i,
                partner_id=f"P{i + 1:03d}",
                name=name,
                track=str(tracks[i]),
                data_sharing=i != no_consent,
                country=str(countries[i]),
                joined_on=cal.date(int(joined[i])),
                late_pack=i in late,
            )
        )
    return out


def partners_table(partners: list[Partner]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": [p.partner_id for p in partners],
            "name": [p.name for p in partners],
            "track": [p.track for p in partners],
            "data_sharing": [p.data_sharing for p in partners],
            "country": [p.country for p in partners],
            "joined_on": [p.joined_on for p in partners],
        }
    )


@dataclass
class Accounts(ArrayFrame):
    """The accounts of one partner: observable columns and latent traits (module docstring)."""

    account_id: np.ndarray
    band: np.ndarray
    employees: np.ndarray
    country: np.ndarray
    industry: np.ndarray
    first_seen: np.ndarray
    churn_day: np.ndarray
    churn_rate: np.ndarray
    """Daily churn hazard (churn_day = first_seen + ceil(Exp(churn_rate)))."""
    affinity: np.ndarray
    print_intensity: np.ndarray
    coverage: np.ndarray
    budget_month: np.ndarray
    budget_boost: np.ndarray
    life_printer: np.ndarray
    life_pc: np.ndarray
    policy: np.ndarray
    p_replace: np.ndarray
    mps_share: np.ndarray
    daas_share: np.ndarray
    warranty_buyer: np.ndarray
    visibility: np.ndarray
    win_logit: np.ndarray
    p_opportunity: np.ndarray
    high_yield: np.ndarray
    early_changer: np.ndarray
    loyalty: np.ndarray
    discount: np.ndarray
    n_devices: np.ndarray
    n_printers: np.ndarray

    @property
    def size_factor(self) -> np.ndarray:
        return self.employees / 20.0


def build_accounts(
    cfg: WorldConfig, cal: Calendar, partner: Partner, rng: np.random.Generator
) -> Accounts:
    """The accounts of one partner with their latent traits."""
    pop, fl, us, rf, sa = cfg.population, cfg.fleet, cfg.usage, cfg.refresh, cfg.sales
    n = max(
        3,
        round(
            pop.accounts_per_partner
            * rng.lognormal(-0.5 * pop.accounts_sigma**2, pop.accounts_sigma)
        ),
    )
    band = rng.choice(
        len(EMPLOYEE_BANDS), size=n, p=np.asarray(pop.band_probs) / sum(pop.band_probs)
    )
    lo = np.asarray([b[0] for b in pop.band_employees])[band]
    hi = np.asarray([b[1] for b in pop.band_employees])[band]
    employees = (
        np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))).clip(lo, hi).astype(np.float64)
    )

    foreign = rng.random(n) < pop.foreign_account_share
    neigh = NEIGHBOURS.get(partner.country, (partner.country,))
    country = np.where(
        foreign, np.asarray(neigh, dtype=object)[rng.integers(0, len(neigh), n)], partner.country
    )
    iw = np.asarray(INDUSTRY_WEIGHTS, dtype=float)
    industry = np.asarray(INDUSTRIES, dtype=object)[
        rng.choice(len(INDUSTRIES), size=n, p=iw / iw.sum())
    ]

    in_period = rng.random(n) < pop.first_seen_in_period_share
    before = -rng.integers(1, int(pop.first_seen_max_years_before * 365.25), n)
    during = rng.integers(0, cal.n_days - 60, n)
    first_seen = np.where(in_period, during, before).astype(np.int64)

    churn_year = pop.churn_per_year_median * np.exp(pop.churn_sigma * rng.standard_normal(n))
    churn_year = churn_year / np.sqrt(np.maximum(employees / 50.0, 1.0))  # big accounts churn less
    churn_rate = np.maximum(churn_year, 1e-6) / 365.25
    churn_after = rng.exponential(1.0 / churn_rate)
    churn_day = np.where(
        first_seen + churn_after < NEVER / 2, first_seen + np.ceil(churn_after), NEVER
    ).astype(np.int64)

    common = rng.standard_normal(n)
    affinity = (
        sa.affinity_sigma
        * (
            np.sqrt(sa.affinity_common) * common[:, None]
            + np.sqrt(1 - sa.affinity_common) * rng.standard_normal((n, 6))
        )
        - 0.5 * sa.affinity_sigma**2
    )
    print_intensity = rng.lognormal(-0.5 * us.print_intensity_sigma**2, us.print_intensity_sigma, n)
    cov_common = rng.standard_normal(n)
    cov_noise = rng.standard_normal((n, 4))
    coverage = np.empty((n, 4))
    coverage[:, 0] = us.coverage_black_median * np.exp(
        us.coverage_sigma * (0.6 * cov_common + 0.8 * cov_noise[:, 0])
    )
    coverage[:, 1:] = us.coverage_color_median * np.exp(
        us.coverage_sigma * (0.6 * cov_common[:, None] + 0.8 * cov_noise[:, 1:])
    )

    budget_month = rng.integers(1, 13, n)
    budget_boost = rng.uniform(*sa.budget_boost_range, n)
    life_printer = np.clip(rng.normal(*rf.printer_life_years, n), *rf.life_clip_years)
    life_pc = np.clip(rng.normal(*rf.pc_life_years, n), *rf.life_clip_years)
    policy = rng.normal(-0.5 * rf.policy_sigma**2, rf.policy_sigma, n)
    p_replace = rng.beta(*fl.replace_prob_beta, n)
    mps_share = rng.beta(*fl.mps_share_beta, n)
    daas_share = rng.beta(*fl.daas_share_beta, n)
    warranty_buyer = rng.beta(*sa.warranty_buyer_beta, n)
    visibility = rng.beta(*sa.visibility_beta, n)
    win_logit = rng.normal(*sa.win_logit, n)
    a, b = sa.opportunity_logit
    p_opportunity = sigmoid(a + b * (np.log10(employees) - 1.5))
    high_yield = rng.random(n) < us.high_yield_share
    early_changer = rng.random(n) < us.early_changer_share
    loyalty = rng.beta(*us.supplies_loyalty_beta, n)
    discount = rng.uniform(*sa.discount_range, n)

    has_devices = rng.random(n) >= pop.zero_device_share
    mean_dev = pop.devices_per_employee * employees**pop.devices_employee_exponent
    n_devices = np.where(
        has_devices, np.maximum(1, rng.poisson(mean_dev * rng.lognormal(-0.045, 0.3, n))), 0
    )
    affinity[~has_devices, 0:2] = sa.no_device_affinity
    printer_share = rng.beta(*pop.printer_share_beta, n)
    n_printers = rng.binomial(n_devices, printer_share)

    return Accounts(
        account_id=pseudonyms(rng, n, "A-", 8),
        band=band.astype(np.int64),
        employees=employees,
        country=country.astype(object),
        industry=industry,
        first_seen=first_seen,
        churn_day=churn_day,
        churn_rate=churn_rate,
        affinity=affinity,
        print_intensity=print_intensity,
        coverage=coverage,
        budget_month=budget_month.astype(np.int64),
        budget_boost=budget_boost,
        life_printer=life_printer,
        life_pc=life_pc,
        policy=policy,
        p_replace=p_replace,
        mps_share=mps_share,
        daas_share=daas_share,
        warranty_buyer=warranty_buyer,
        visibility=visibility,
        win_logit=win_logit,
        p_opportunity=p_opportunity,
        high_yield=high_yield,
        early_changer=early_changer,
        loyalty=loyalty,
        discount=discount,
        n_devices=n_devices.astype(np.int64),
        n_printers=n_printers.astype(np.int64),
    )


def accounts_table(acc: Accounts, partner: Partner, cal: Calendar) -> pd.DataFrame:
    """The ``accounts`` table (first_seen as a date)."""
    return pd.DataFrame(
        {
            "account_id": acc.account_id,
            "partner_id": partner.partner_id,
            "industry": acc.industry,
            "employee_band": np.asarray(EMPLOYEE_BANDS, dtype=object)[acc.band],
            "country": acc.country,
            "first_seen": cal.epoch_days(acc.first_seen).astype("datetime64[D]"),
        }
    )


def season(
    acc: Accounts, cal: Calendar, days: np.ndarray, *, quarter_boost: float, quarter_days: int
) -> np.ndarray:
    """Purchase seasonality of each account on each day: (n_accounts, len(days)).

    ``1 + budget_boost`` in the account's budget month, ``+ quarter_boost`` in the last
    ``quarter_days`` days of a quarter.
    """
    month = cal.month_of(days)
    qe = cal.quarter_end(days, quarter_days)
    out = 1.0 + acc.budget_boost[:, None] * (month[None, :] == acc.budget_month[:, None])
    return out + quarter_boost * qe[None, :]
