"""Devices: the install base, each device's latent traits, and the refresh hazard.

A device is a printer or a PC at one account. Its observable columns are the contract's
(sku, installed_on, warranty_ends_on, contract, retired_on, replaced_by); its latent traits
drive usage, toner, wear and retirement:

- ``volume``: pages on a full-weight day (printers) or a usage factor (PCs); ``overuse``
  is volume over the family's typical volume; daily pages ~ Gamma(k * w_d, volume / k);
- ``rho[color]``: toner used per page in percent of a cartridge
  (100 * coverage / 5% / rated yield); ``thr``/``habit_b``/``delay``: when the cartridge
  is changed (see :mod:`amplify_ml.datasets.dynamics`); ``supplied``: the account buys
  this printer's supplies through the partner (unmanaged printers);
- ``fragility[component]``, ``prev_period``/``prev_phase`` (preventive visits, managed
  printers), ``init_wear`` and ``init_level`` (state at the period start);
- ``reporting`` (sends telemetry), ``interval``/``phase`` (periodic readings);
- ``retire_e``: the Exp(1) draw that the cumulative refresh hazard must reach;
- ``warranty_day``: the day the account decides to buy an extension (or never).

The initial install base is drawn alive at the period start with ages from the stationary
age distribution of the refresh hazard (density proportional to the survival function).
Devices retired in the two years before the period (predecessors of today's devices) are
kept in ``install_base`` with ``replaced_by`` set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, gammaincinv

from amplify_ml.datapack.contract import CONTRACTS
from amplify_ml.datasets.accounts import Accounts
from amplify_ml.datasets.arrays import ArrayFrame, pseudonyms
from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.catalogue import (
    N_COLORS,
    PC,
    PRINTER,
    WARRANTY_MONTHS,
    Catalogue,
    pick_family,
)
from amplify_ml.datasets.config import WorldConfig

NONE, CARE_PACK, MPS, DAAS = (CONTRACTS.index(c) for c in ("none", "care_pack", "mps", "daas"))
YEAR = 365.25


@dataclass
class Devices(ArrayFrame):
    """Devices of one partner (module docstring)."""

    device_id: np.ndarray
    account: np.ndarray
    category: np.ndarray
    family: np.ndarray
    sku: np.ndarray
    installed: np.ndarray
    warranty_end: np.ndarray
    contract: np.ndarray
    retired: np.ndarray
    replaced_by: np.ndarray
    gen: np.ndarray
    volume: np.ndarray
    shape_k: np.ndarray
    overuse: np.ndarray
    reporting: np.ndarray
    color: np.ndarray
    rho: np.ndarray
    thr: np.ndarray
    habit_b: np.ndarray
    delay: np.ndarray
    supplied: np.ndarray
    interval: np.ndarray
    phase: np.ndarray
    page0: np.ndarray
    fragility: np.ndarray
    prev_period: np.ndarray
    prev_phase: np.ndarray
    init_level: np.ndarray
    init_wear: np.ndarray
    retire_e: np.ndarray
    warranty_day: np.ndarray
    warranty_k: np.ndarray

    @property
    def failure_model(self) -> np.ndarray:
        """Devices whose component wear and failures are simulated (any contract)."""
        return self.contract != NONE

    @property
    def managed_supplies(self) -> np.ndarray:
        """Printers whose supplies come with the contract (mps)."""
        return (self.category == PRINTER) & (self.contract == MPS)


def mean_weight(cal: Calendar) -> float:
    return float(cal.w(np.arange(cal.n_days)).mean())


def wear_increment(cfg: WorldConfig, cal: Calendar, dev: Devices) -> np.ndarray:
    """Wear per unit of page weight of each component: (n, 4), in units of the component's life."""
    fc = cfg.failures
    life = np.where(
        dev.category[:, None] == PRINTER,
        np.asarray(fc.printer_life_years)[None, :],
        np.asarray(fc.pc_life_years)[None, :],
    )
    return (
        dev.overuse[:, None] ** fc.usage_exponent * dev.fragility / (life * YEAR * mean_weight(cal))
    )


def refresh_hazard(
    cfg: WorldConfig,
    cal: Calendar,
    acc: Accounts,
    dev: Devices,
    rows: np.ndarray,
    days: np.ndarray,
    repairs: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Daily retirement hazard of devices ``rows`` on ``days``: shape (len(rows), len(days))
    (or elementwise when ``days`` is 2-D with one row per device).

    ``(k/L)(age/L)^(k-1)/365.25 x exp(policy) x overuse^b x (1 + f [warranty over])
    x exp(r * repairs in the last 365 days) x (1 + m [budget month])``, with ``L`` the
    account's characteristic life of the category. Zero before installation.
    """
    rf = cfg.refresh
    a = dev.account[rows]
    life = np.where(dev.category[rows] == PRINTER, acc.life_printer[a], acc.life_pc[a])[:, None]
    days = np.asarray(days)
    d = days if days.ndim == 2 else days[None, :]
    age = np.clip((d - dev.installed[rows][:, None]) / YEAR, 0.0, None)
    k = rf.weibull_shape
    h = (k / life) * (age / life) ** (k - 1) / YEAR
    h = h * (np.exp(acc.policy[a]) * dev.overuse[rows] ** rf.overuse_exponent)[:, None]
    h = h * (1.0 + rf.warranty_factor * (d > dev.warranty_end[rows][:, None]))
    h = h * (1.0 + rf.budget_month_factor * (cal.month_of(d) == acc.budget_month[a][:, None]))
    if not np.isscalar(repairs) or repairs != 0.0:
        h = h * np.exp(rf.repair_coefficient * np.asarray(repairs))
    return np.where(d >= dev.installed[rows][:, None], h, 0.0)


def _static_multiplier(
    cfg: WorldConfig, acc: Accounts, account: np.ndarray, overuse: np.ndarray
) -> np.ndarray:
    rf = cfg.refresh
    return (
        np.exp(acc.policy[account])
        * overuse**rf.overuse_exponent
        * (1.0 + rf.warranty_factor)
        * (1.0 + rf.budget_month_factor / 12.0)
    )


def make_devices(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    rng: np.random.Generator,
    *,
    account: np.ndarray,
    category: np.ndarray,
    installed: np.ndarray,
    family: np.ndarray | None = None,
    sku: np.ndarray | None = None,
    contract: np.ndarray | None = None,
    overuse: np.ndarray | None = None,
    gen: int = 0,
    taken_ids: set[str] | None = None,
) -> Devices:
    """New devices with all latent traits drawn; family, sku, contract and overuse (volume
    over the family's typical volume) when not given."""
    n = len(account)
    fl, us, fc, te = cfg.fleet, cfg.usage, cfg.failures, cfg.telemetry
    account = np.asarray(account, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    installed = np.asarray(installed, dtype=np.int64)
    if family is None:
        family = pick_family(
            cat,
            category,
            cal.epoch_days(installed).astype(np.int64),
            rng,
            recency_years=fl.family_recency_years,
            sale_years=fl.family_sale_years,
        )
    if sku is None:
        sku = np.asarray(
            [cat.device_skus[f][rng.integers(len(cat.device_skus[f]))] for f in family],
            dtype=np.int64,
        )
    if contract is None:
        contract = draw_contract(cfg, acc, account, category, rng)
    is_printer = category == PRINTER
    typical = cat.family_typical[family]
    if overuse is None:
        noise = rng.lognormal(-0.5 * us.device_volume_sigma**2, us.device_volume_sigma, n)
        pc_use = rng.lognormal(-0.5 * us.pc_usage_sigma**2, us.pc_usage_sigma, n)
        overuse = np.where(is_printer, acc.print_intensity[account] * noise, pc_use)
    overuse = np.asarray(overuse, dtype=np.float64)
    volume = np.where(is_printer, typical * overuse, overuse)
    shape_k = rng.uniform(*us.gamma_shape_range, n)

    color = is_printer & cat.family_color[family]
    high = acc.high_yield[account].astype(np.int64)
    yields = cat.supply_yield[family, :, :][np.arange(n), :, high]  # (n, 4)
    dev_cov = acc.coverage[account] * rng.lognormal(0.0, us.device_coverage_sigma, (n, N_COLORS))
    active = np.zeros((n, N_COLORS), dtype=bool)
    active[:, 0] = is_printer
    active[:, 1:] = color[:, None]
    rho = np.where(
        active & (yields > 0), 100.0 * (dev_cov / 0.05) / np.where(yields > 0, yields, 1.0), 0.0
    )

    u_rep = rng.random(n)
    reporting = np.where(
        (contract == MPS) | (contract == DAAS),
        u_rep >= te.never_report_share,
        (contract == CARE_PACK) & (u_rep < te.care_pack_report_share),
    )
    early = acc.early_changer[account]
    habit_b = is_printer & early & (reporting | (contract == MPS))
    near = rng.uniform(0.0, us.near_empty_threshold_max, n)
    far = rng.uniform(*us.early_threshold_range, n)
    thr = np.where(early & ~habit_b, far, near)
    delay = rng.integers(us.delivery_delay_range[0], us.delivery_delay_range[1] + 1, n)
    supplied = is_printer & (contract != MPS) & (rng.random(n) < acc.loyalty[account])
    interval = np.asarray(te.interval_days)[rng.integers(0, len(te.interval_days), n)]
    phase = rng.integers(0, 1_000_000, n) % interval

    pre = installed < 0
    weighted_age = cal.weight_sum(np.minimum(installed, -1), np.full(n, -1))
    page0 = np.where(
        is_printer,
        np.where(pre, volume * weighted_age * rng.uniform(0.8, 1.2, n), rng.integers(5, 60, n)),
        0.0,
    ).round()

    fragility = rng.lognormal(-0.5 * fc.fragility_sigma**2, fc.fragility_sigma, (n, 4))
    prev_period = np.where(
        is_printer & (contract == MPS), rng.integers(*fc.preventive_period_range, n), 0
    )
    prev_phase = rng.integers(0, 1_000_000, n) % np.maximum(prev_period, 1)
    init_level = (
        np.where(pre[:, None], rng.uniform(*us.initial_level_range, (n, N_COLORS)), 100.0) * active
    )

    warranty_end = installed + np.round(cat.family_warranty_months[family] * 30.44).astype(np.int64)
    buys = rng.random(n) < acc.warranty_buyer[account]
    wday = warranty_end - rng.integers(1, cfg.sales.warranty_window_days + 1, n)
    warranty_day = np.where(buys, wday, NEVER)
    warranty_k = rng.integers(0, len(WARRANTY_MONTHS), n)

    dev = Devices(
        device_id=pseudonyms(rng, n, "D-", 10, taken_ids),
        account=account,
        category=category,
        family=np.asarray(family, dtype=np.int64),
        sku=np.asarray(sku, dtype=np.int64),
        installed=installed,
        warranty_end=warranty_end,
        contract=np.asarray(contract, dtype=np.int64),
        retired=np.full(n, NEVER, dtype=np.int64),
        replaced_by=np.full(n, -1, dtype=np.int64),
        gen=np.full(n, gen, dtype=np.int64),
        volume=volume,
        shape_k=shape_k,
        overuse=overuse,
        reporting=reporting,
        color=color,
        rho=rho,
        thr=thr,
        habit_b=habit_b,
        delay=delay.astype(np.int64),
        supplied=supplied,
        interval=interval.astype(np.int64),
        phase=phase.astype(np.int64),
        page0=page0,
        fragility=fragility,
        prev_period=prev_period.astype(np.int64),
        prev_phase=prev_phase.astype(np.int64),
        init_level=init_level,
        init_wear=np.zeros((n, 4)),
        retire_e=rng.exponential(1.0, n),
        warranty_day=warranty_day.astype(np.int64),
        warranty_k=warranty_k.astype(np.int64),
    )
    # component wear at the period start: the stationary renewal distribution of the
    # component's age (density ~ exp(-wear^k)), truncated at the wear the device has had
    fm = dev.failure_model & pre
    if fm.any():
        kappa = fc.weibull_shape
        inc = wear_increment(cfg, cal, dev.take(np.flatnonzero(fm)))
        wmax = inc * weighted_age[fm][:, None]
        top = gammainc(1.0 / kappa, wmax**kappa)
        u = rng.random(wmax.shape)
        wear = gammaincinv(1.0 / kappa, np.clip(u * top, 1e-300, None)) ** (1.0 / kappa)
        dev.init_wear[fm] = np.minimum(wear, wmax)
    return dev


def draw_contract(
    cfg: WorldConfig,
    acc: Accounts,
    account: np.ndarray,
    category: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """mps for printers / daas for PCs with the account's share, else care pack or none."""
    u = rng.random(len(account))
    v = rng.random(len(account))
    managed_share = np.where(category == PRINTER, acc.mps_share[account], acc.daas_share[account])
    managed = np.where(category == PRINTER, MPS, DAAS)
    return np.where(
        u < managed_share, managed, np.where(v < cfg.fleet.care_pack_share, CARE_PACK, NONE)
    ).astype(np.int64)


def initial_fleet(
    cfg: WorldConfig, cal: Calendar, cat: Catalogue, acc: Accounts, rng: np.random.Generator
) -> Devices:
    """Devices alive at the period start, plus their predecessors retired in the history window.

    Ages follow the stationary age distribution of the refresh hazard: candidate ages are
    uniform over the maximum age and accepted with the device's survival probability.
    Accounts first seen during the period have no device yet.
    """
    rf = cfg.refresh
    n_dev = np.where(acc.first_seen < 0, acc.n_devices, 0)
    account = np.repeat(np.arange(len(acc)), n_dev)
    n_pr = np.where(acc.first_seen < 0, acc.n_printers, 0)
    # the first n_printers devices of each account are printers
    offset = np.arange(len(account)) - np.repeat(np.cumsum(n_dev) - n_dev, n_dev)
    category = np.where(offset < np.repeat(n_pr, n_dev), PRINTER, PC).astype(np.int64)
    n = len(account)
    max_age = cfg.calendar.max_device_age_years * YEAR
    age = np.zeros(n)
    family = np.zeros(n, dtype=np.int64)
    overuse = np.zeros(n)
    todo = np.arange(n)
    life = np.where(category == PRINTER, acc.life_printer[account], acc.life_pc[account])
    for _ in range(200):
        if len(todo) == 0:
            break
        cand = rng.uniform(1.0, max_age, len(todo))
        fam = pick_family(
            cat,
            category[todo],
            cal.epoch_days(-np.round(cand).astype(np.int64)).astype(np.int64),
            rng,
            recency_years=cfg.fleet.family_recency_years,
            sale_years=cfg.fleet.family_sale_years,
        )
        vol = np.where(
            category[todo] == PRINTER,
            acc.print_intensity[account[todo]]
            * rng.lognormal(
                -0.5 * cfg.usage.device_volume_sigma**2, cfg.usage.device_volume_sigma, len(todo)
            ),
            rng.lognormal(-0.5 * cfg.usage.pc_usage_sigma**2, cfg.usage.pc_usage_sigma, len(todo)),
        )
        mult = _static_multiplier(cfg, acc, account[todo], vol)
        surv = np.exp(-mult * (cand / YEAR / life[todo]) ** rf.weibull_shape)
        ok = rng.random(len(todo)) < surv
        age[todo[ok]] = cand[ok]
        family[todo[ok]] = fam[ok]
        overuse[todo[ok]] = vol[ok]
        todo = todo[~ok]
    installed = -np.maximum(np.round(age).astype(np.int64), 1)
    dev = make_devices(
        cfg,
        cal,
        cat,
        acc,
        rng,
        account=account,
        category=category,
        installed=installed,
        family=family,
        overuse=overuse,
    )
    # predecessors: devices installed in the history window often replaced an older one
    hist = cfg.calendar.retired_history_years * YEAR
    cand = np.flatnonzero(
        (dev.installed >= -hist)
        & (rng.random(n) < cfg.fleet.history_replaced_share * acc.p_replace[dev.account])
    )
    if len(cand) == 0:
        return dev
    a = dev.account[cand]
    life_c = np.where(dev.category[cand] == PRINTER, acc.life_printer[a], acc.life_pc[a])
    mult = _static_multiplier(cfg, acc, a, np.ones(len(cand)))
    lifetime = life_c * YEAR * (rng.exponential(1.0, len(cand)) / mult) ** (1.0 / rf.weibull_shape)
    lifetime = np.maximum(lifetime, 0.5 * YEAR)
    pred = make_devices(
        cfg,
        cal,
        cat,
        acc,
        rng,
        account=a,
        category=dev.category[cand],
        installed=dev.installed[cand] - np.round(lifetime).astype(np.int64),
        contract=dev.contract[cand],
        gen=-1,
        taken_ids=set(dev.device_id),
    )
    pred.retired = dev.installed[cand].copy()
    pred.replaced_by = cand.astype(np.int64)  # index into dev; shifted after concatenation
    pred.replaced_by = pred.replaced_by + len(pred)
    return Devices.concat([pred, dev])
