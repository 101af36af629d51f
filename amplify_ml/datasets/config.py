"""Every knob of the synthetic world, as frozen dataclasses.

:class:`WorldConfig` groups the knobs by concern (calendar, population, fleet, usage,
failures, refresh, sales, telemetry, mess, oracle). :data:`SCALES` maps the scale names the
CLI accepts to configs that differ only in the population size. Tune a world with
:func:`dataclasses.replace`, e.g.
``replace(SCALES["tiny"], population=replace(SCALES["tiny"].population, n_partners=3))``.

Rates are per day unless the name says otherwise; days are calendar days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any


@dataclass(frozen=True)
class CalendarConfig:
    """The world's fixed calendar: the main packs' period and when packs were made."""

    period_start: date = date(2023, 10, 1)
    period_end: date = date(2026, 9, 30)
    created_at: datetime = datetime(2026, 10, 1, 6, 0, 0, tzinfo=UTC)
    late_created_at: datetime = datetime(2026, 10, 20, 6, 0, 0, tzinfo=UTC)
    max_device_age_years: float = 10.0
    """Devices alive at the period start were installed at most this long before it."""
    retired_history_years: float = 2.0
    """Devices retired up to this long before the period start are still in install_base."""
    project_warmup_days: int = 150
    """Buying projects start this many days before the period so some are under way at its start."""


@dataclass(frozen=True)
class PopulationConfig:
    """How many partners and accounts, and what they look like."""

    n_partners: int = 5
    accounts_per_partner: float = 25.0
    accounts_sigma: float = 0.5
    """Log-normal spread of partner sizes (accounts per partner)."""
    partner_countries: tuple[str, ...] = (
        "DE",
        "FR",
        "GB",
        "NL",
        "US",
        "ES",
        "IT",
        "SE",
        "PL",
        "AT",
        "CH",
        "BE",
    )
    partner_country_weights: tuple[float, ...] = (
        0.2,
        0.12,
        0.12,
        0.07,
        0.16,
        0.07,
        0.07,
        0.04,
        0.04,
        0.04,
        0.04,
        0.03,
    )
    track_probs: tuple[float, float, float] = (0.5, 0.35, 0.15)
    """synergy, power, power_services."""
    late_pack_share: float = 0.2
    """Share of consenting partners that also send a late pack (at least one partner)."""
    band_probs: tuple[float, ...] = (0.42, 0.3, 0.18, 0.07, 0.03)
    band_employees: tuple[tuple[int, int], ...] = (
        (2, 9),
        (10, 49),
        (50, 249),
        (250, 999),
        (1000, 5000),
    )
    foreign_account_share: float = 0.12
    """Accounts in another country than their partner."""
    first_seen_in_period_share: float = 0.15
    first_seen_max_years_before: float = 10.0
    zero_device_share: float = 0.2
    """Accounts with no device in the install base (they still buy)."""
    devices_per_employee: float = 0.4
    devices_employee_exponent: float = 0.75
    printer_share_beta: tuple[float, float] = (3.0, 6.0)
    churn_per_year_median: float = 0.025
    churn_sigma: float = 0.7


@dataclass(frozen=True)
class FleetConfig:
    """Contracts, warranties, tracking and the initial install base."""

    mps_share_beta: tuple[float, float] = (0.9, 0.7)
    """Per account, the share of its printers under managed print (mps)."""
    daas_share_beta: tuple[float, float] = (0.8, 1.0)
    """Per account, the share of its PCs under device as a service (daas)."""
    care_pack_share: float = 0.22
    """Share of the remaining devices under a care pack."""
    contract_inherit: float = 0.9
    """A replacement device keeps its predecessor's contract with this probability."""
    tracked_share: float = 0.75
    """Share of purchased printer and PC units that become install_base devices."""
    install_delay_max_days: int = 10
    replace_prob_beta: tuple[float, float] = (6.0, 2.0)
    """Per account, the probability a retired device is replaced through the partner."""
    family_recency_years: float = 3.0
    """New devices pick recent families: weight exp(-years since launch / this)."""
    family_sale_years: float = 8.0
    """A family is sold for this many years after launch."""
    history_replaced_share: float = 0.7
    """Share of devices installed in the history window that replaced an older device."""


@dataclass(frozen=True)
class UsageConfig:
    """Pages, toner and PC usage."""

    weekday_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 0.95, 0.15, 0.05)
    month_weights: tuple[float, ...] = (
        0.95,
        1.0,
        1.05,
        1.0,
        1.0,
        0.98,
        0.88,
        0.75,
        1.02,
        1.05,
        1.05,
        0.85,
    )
    holiday_weight: float = 0.35
    """Weight of 24 December to 1 January."""
    print_intensity_sigma: float = 0.4
    device_volume_sigma: float = 0.45
    gamma_shape_range: tuple[float, float] = (1.5, 4.0)
    """Shape k of daily pages ~ Gamma(k * w_d, theta) on a full-weight day."""
    coverage_black_median: float = 0.05
    coverage_color_median: float = 0.03
    coverage_sigma: float = 0.3
    device_coverage_sigma: float = 0.1
    high_yield_share: float = 0.4
    early_changer_share: float = 0.3
    near_empty_threshold_max: float = 5.0
    """Near-empty changers change the cartridge at a level drawn in [0, this)."""
    early_threshold_range: tuple[float, float] = (12.0, 30.0)
    """Early changers without telemetry change at a level in this range."""
    delivery_delay_range: tuple[int, int] = (1, 6)
    supplies_loyalty_beta: tuple[float, float] = (2.0, 2.0)
    """Per account, the share of its unmanaged printers whose supplies it buys through the partner."""
    initial_level_range: tuple[float, float] = (15.0, 100.0)
    pc_usage_sigma: float = 0.35
    threshold_pct: float = 10.0
    """The depletion threshold of the consumable_depletion model."""


@dataclass(frozen=True)
class FailureConfig:
    """Component wear, failures, warnings and preventive maintenance."""

    printer_components: tuple[str, ...] = ("fuser", "drum", "roller", "formatter")
    pc_components: tuple[str, ...] = ("battery", "disk", "display", "board")
    printer_life_years: tuple[float, ...] = (3.2, 2.8, 3.5, 7.0)
    pc_life_years: tuple[float, ...] = (3.0, 4.5, 7.0, 7.0)
    printer_code_prefix: tuple[str, ...] = ("50", "31", "13", "49")
    pc_code_prefix: tuple[str, ...] = ("61", "72", "83", "94")
    weibull_shape: float = 3.0
    """Cumulative hazard of a component is wear ** shape (wear in units of its life)."""
    fragility_sigma: float = 0.35
    usage_exponent: float = 1.0
    """Wear grows with (device volume / family typical volume) ** this."""
    replaced_wear: float = 0.02
    preventive_period_range: tuple[int, int] = (150, 210)
    preventive_components: tuple[str, ...] = ("fuser", "roller")
    preventive_keep: float = 0.15
    """Wear kept by a preventive visit on the serviced components."""
    warning_rate: float = 0.3
    """Warning bursts a day of a component at wear 1 (scaled by wear ** warning_power)."""
    warning_power: float = 2.5
    burst_size_mean: float = 1.6
    error_wear: float = 0.85
    """Above this wear, a burst is of severity error with probability 1/2."""
    part_replacement_share: float = 0.65
    incident_rate_per_device_year: float = 0.25
    cycles_per_day: float = 0.8
    """Battery charge cycles per full-weight day at usage 1 (``battery_cycle_count``)."""
    battery_health_drop: float = 45.0
    disk_health_drop: float = 40.0


@dataclass(frozen=True)
class RefreshConfig:
    """Device retirement (refresh)."""

    weibull_shape: float = 6.0
    printer_life_years: tuple[float, float] = (7.0, 1.4)
    """Mean and sd of an account's characteristic printer life (its refresh policy)."""
    pc_life_years: tuple[float, float] = (5.8, 1.1)
    life_clip_years: tuple[float, float] = (3.5, 11.0)
    policy_sigma: float = 0.35
    warranty_factor: float = 0.4
    """Hazard x (1 + this) after the warranty has ended."""
    overuse_exponent: float = 1.0
    repair_coefficient: float = 0.4
    """Hazard x exp(this * repairs in the last 365 days)."""
    budget_month_factor: float = 0.8
    """Hazard x (1 + this) in the account's budget month."""


@dataclass(frozen=True)
class SalesConfig:
    """Purchases, projects, opportunities, intent signals and inventory."""

    size_exponent: float = 0.45
    """Rates scale with (employees / 20) ** this."""
    affinity_sigma: float = 0.7
    affinity_common: float = 0.4
    baseline_rate: tuple[float, ...] = (0.0005, 0.0008, 0.0030, 0.0004, 0.0008, 0.0016)
    """Ad-hoc purchases a day per category (printer, pc, supplies, warranty, service, accessory)."""
    project_rate: tuple[float, ...] = (0.0009, 0.0012, 0.0, 0.0, 0.0008, 0.0005)
    """Buying projects started a day per category."""
    project_lead_weeks: tuple[int, int] = (3, 12)
    budget_boost_range: tuple[float, float] = (0.5, 2.5)
    quarter_end_boost: float = 0.4
    quarter_end_days: int = 14
    win_logit: tuple[float, float] = (0.9, 0.7)
    deal_registered_share: float = 0.5
    presales_share: float = 0.3
    deal_registered_logit: float = 0.8
    presales_logit: float = 0.5
    opportunity_logit: tuple[float, float] = (-1.2, 0.7)
    """p(opportunity) = sigmoid(a + b * (log10(employees) - 1.5))."""
    project_units_share: float = 0.01
    """A printer or PC project buys 1 + Poisson(this x the account's typical fleet size) units."""
    no_device_affinity: float = -3.0
    """Accounts without devices have this printer and PC affinity (they buy other things)."""
    warranty_buyer_beta: tuple[float, float] = (1.2, 2.5)
    warranty_window_days: int = 90
    warranty_months: tuple[int, ...] = (12, 24, 36)
    return_prob: tuple[float, ...] = (0.015, 0.015, 0.02, 0.01, 0.005, 0.04)
    return_delay_days: tuple[int, int] = (3, 30)
    discount_range: tuple[float, float] = (0.0, 0.25)
    visibility_beta: tuple[float, float] = (6.0, 2.0)
    """Per account, the probability a project is visible as intent signals."""
    intent_base: float = 2.0
    intent_ramp: float = 8.0
    intent_ramp_weeks: int = 8
    """Intent intensity ~ Poisson(base + ramp x min(weeks since start / this, 1) ^ 1.5)."""
    opportunity_within_days: int = 21
    """A project's opportunity is created within this many days of its start."""
    intent_family_share: float = 0.6
    intent_security_share: float = 0.3
    intent_noise_per_week: float = 0.05
    inventory_skus: int = 40


@dataclass(frozen=True)
class TelemetryConfig:
    """Which devices report, how often, and the mess in the readings."""

    never_report_share: float = 0.05
    care_pack_report_share: float = 0.15
    interval_days: tuple[int, ...] = (2, 2, 2, 3)
    outages_per_year: float = 0.6
    outage_days_mean: float = 12.0
    duplicate_share: float = 0.002
    out_of_order_share: float = 0.01
    late_window_days: int = 21
    """Late packs hold readings observed in the last this-many days of the period..."""
    late_share: float = 0.3
    """...of which this share arrived late."""
    late_retired_window_days: int = 45
    """Late packs update install_base rows of devices retired in the last this-many days."""
    late_retired_share: float = 0.5


@dataclass(frozen=True)
class OracleConfig:
    """Cutoffs and horizons of the oracle files."""

    n_cutoffs: int = 12
    propensity_horizon_days: int = 90
    refresh_horizon_days: int = 180
    failure_horizon_days: int = 30
    depletion_window_days: int = 180
    depletion_max_days: int = 1460
    """Expected days and quantiles are computed up to this many days (None beyond)."""


@dataclass(frozen=True)
class DirtyConfig:
    """How many defects dirty mode injects (rows)."""

    email_rows: int = 4
    phone_rows: int = 10
    consent_rows: int = 12
    key_conflicts: int = 8
    below_min_rows: int = 5
    future_date_rows: int = 4
    unknown_sku_rows: int = 6


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the synthetic world."""

    name: str = "tiny"
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    failures: FailureConfig = field(default_factory=FailureConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)
    sales: SalesConfig = field(default_factory=SalesConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    dirty: DirtyConfig = field(default_factory=DirtyConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (dates as ISO strings)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _scale(name: str, n_partners: int, accounts_per_partner: float) -> WorldConfig:
    return WorldConfig(
        name=name,
        population=replace(
            PopulationConfig(), n_partners=n_partners, accounts_per_partner=accounts_per_partner
        ),
    )


SCALES: dict[str, WorldConfig] = {
    # 5 partners, ~100 accounts, ~1.5-2.5k devices, ~0.8M telemetry rows: ~5 s.
    "tiny": _scale("tiny", 5, 20.0),
    # 30 partners, ~1.6k accounts, ~26k devices, ~10M telemetry rows: ~30 s, 0.5 GB.
    "small": _scale("small", 30, 55.0),
    # 200 partners, ~16k accounts, ~290k devices, ~112M telemetry rows: partner by partner,
    # ~6 min, peak memory ~0.8 GB, ~0.75 GB on disk.
    "medium": _scale("medium", 200, 83.0),
    # 4x medium (~1.1M devices, ~450M telemetry rows): documented, never run in tests.
    "large": _scale("large", 800, 83.0),
}
