"""Device dynamics, day by day: pages, toner, cartridge changes, wear, failures, warnings.

One call of :func:`simulate` runs one *generation* of devices (those alive at the period
start plus those bought during it; later, their replacements) through the period with a
loop over days, vectorised over devices. Everything that happens to a device is recorded
as event arrays; the state at the oracle cutoffs (end of day) is kept as snapshots.

Toner (printers, every colour the family has):

- daily pages ``~ Gamma(k * w_d, volume / k)``: the sum over any set of days is again
  Gamma with shape ``k * sum(w_d)``, which makes the depletion oracle exact;
- the level falls by ``pages * rho[color]`` (floored at 0). The first day the end-of-day
  level is <= 10 % the device raises a supply alert (an extra telemetry reading, always
  sent) and, for managed printers, a ``supplies_delivery`` ticket;
- the cartridge is changed (level back to 100 at the start of the change day) either
  ``delay`` days after the alert (``habit_b``: early changers with telemetry or mps) or the
  day after the level first reaches the device's threshold ``thr`` (near empty: below 5 %;
  early changers without telemetry: 12-30 %). Managed printers are never changed before the
  delivery arrives (``alert + delay``). Unmanaged printers' changes are supplies purchases.

Wear (devices under any contract; four components each):

- ``wear += inc * w_d`` every active day (``inc`` from usage, fragility and the component's
  life), so wear is a deterministic function of the latent state and the calendar;
- the component fails during day d with probability ``1 - exp(-(W_d^k - W_{d-1}^k))``
  (Weibull in wear); a failure replaces the component (wear back to 0.02);
- managed printers get a preventive visit every ``prev_period`` days that resets the wear
  of the fuser and roller to 15 %;
- warning bursts arrive as Poisson(``0.3 * wear^2.5``) a day (only devices that report),
  severity error with probability 1/2 above wear 0.85.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.catalogue import N_COLORS, PC, PRINTER
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import MPS, Devices, wear_increment


@dataclass
class Snapshot:
    """Device state at the end of a cutoff day (rows are device indices)."""

    printer_rows: np.ndarray
    level: np.ndarray
    low_since: np.ndarray
    change_day: np.ndarray
    wear_rows: np.ndarray
    wear: np.ndarray


@dataclass
class Generation:
    """What happened to one generation of devices (all device indices are global)."""

    rows: np.ndarray
    d0: int
    printer_rows: np.ndarray
    pages: np.ndarray
    """(n_printers, n_days - d0) float32 daily pages."""
    report_printer_rows: np.ndarray
    level_hist: np.ndarray
    """(n_reporting_printers, 4, n_days - d0) float32 end-of-day supply levels."""
    report_pc_rows: np.ndarray
    health_hist: np.ndarray
    """(n_reporting_pcs, 3, n_days - d0) float32 wear of battery and disk and battery charge
    cycles at the end of each day."""
    alerts: np.ndarray
    """(n, 3) device, color, day."""
    changes: np.ndarray
    """(n, 3) device, color, day."""
    failures: np.ndarray
    """(n, 3) device, component, day."""
    preventive: np.ndarray
    """(n, 2) device, day."""
    warnings: np.ndarray
    """(n, 5) device, component, day, events, error."""
    snapshots: dict[int, Snapshot] = field(default_factory=dict)


def _stack(parts: list[np.ndarray], width: int) -> np.ndarray:
    if not parts:
        return np.zeros((0, width), dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


def simulate(
    cfg: WorldConfig,
    cal: Calendar,
    dev: Devices,
    rows: np.ndarray,
    snapshot_days: np.ndarray,
    rng: np.random.Generator,
) -> Generation:
    """Run devices ``rows`` from their installation (or the period start) to the period end."""
    fc = cfg.failures
    n_days = cal.n_days
    inst = dev.installed[rows]
    d0 = int(max(0, inst.min())) if len(rows) else n_days
    span = n_days - d0
    days = np.arange(d0, n_days)
    w = cal.w(days)
    thr10 = cfg.usage.threshold_pct

    # ---- printers ------------------------------------------------------------------
    pr = rows[dev.category[rows] == PRINTER]
    p_inst = dev.installed[pr]
    k = dev.shape_k[pr]
    theta = dev.volume[pr] / k
    active_pd = p_inst[:, None] <= days[None, :]
    pages = np.where(
        active_pd, rng.gamma(np.maximum(k[:, None] * w[None, :], 1e-12), theta[:, None]), 0.0
    ).astype(np.float32)
    rho = dev.rho[pr]
    cmask = rho > 0
    level = dev.init_level[pr].copy()
    low_since = np.full((len(pr), N_COLORS), -1, dtype=np.int64)
    change_day = np.full((len(pr), N_COLORS), NEVER, dtype=np.int64)
    thr = dev.thr[pr][:, None]
    habit_b = dev.habit_b[pr][:, None]
    delay = dev.delay[pr][:, None]
    mps = (dev.contract[pr] == MPS)[:, None]
    rep_p = np.flatnonzero(dev.reporting[pr])
    level_hist = np.zeros((len(rep_p), N_COLORS, span), dtype=np.float32)
    alerts: list[np.ndarray] = []
    changes: list[np.ndarray] = []

    # ---- wear ------------------------------------------------------------------------
    fm = rows[dev.failure_model[rows]]
    f_inst = dev.installed[fm]
    wear = dev.init_wear[fm].copy()
    inc = wear_increment(cfg, cal, dev.take(fm)) if len(fm) else np.zeros((0, 4))
    kappa = fc.weibull_shape
    prev_period = dev.prev_period[fm]
    prev_phase = dev.prev_phase[fm]
    comp_names = fc.printer_components
    prev_cols = np.asarray([comp_names.index(c) for c in fc.preventive_components])
    f_printer = dev.category[fm] == PRINTER
    f_report = dev.reporting[fm]
    rep_pc = np.flatnonzero(f_report & (dev.category[fm] == PC))
    health_hist = np.zeros((len(rep_pc), 3, span), dtype=np.float32)
    # battery charge cycles since the battery was new: usage x weight (reset by a replacement)
    use = np.where(dev.category[fm] == PC, dev.volume[fm], 0.0) * fc.cycles_per_day
    cycles = np.where(inc[:, 0] > 0, use * wear[:, 0] / np.maximum(inc[:, 0], 1e-12), 0.0)
    failures: list[np.ndarray] = []
    preventive: list[np.ndarray] = []
    warnings: list[np.ndarray] = []
    snaps: dict[int, Snapshot] = {}
    snap_set = set(int(s) for s in snapshot_days)

    for t, d in enumerate(days):
        # toner
        if len(pr):
            act = (p_inst <= d)[:, None]
            chg = change_day == d
            if chg.any():
                i, j = np.nonzero(chg)
                changes.append(np.column_stack([pr[i], j, np.full(len(i), d)]))
                level[chg] = 100.0
                low_since[chg] = -1
                change_day[chg] = NEVER
            level -= pages[:, t, None] * rho
            np.maximum(level, 0.0, out=level)
            low = act & cmask & (level <= thr10) & (low_since < 0)
            if low.any():
                i, j = np.nonzero(low)
                alerts.append(np.column_stack([pr[i], j, np.full(len(i), d)]))
                low_since[low] = d
                change_day[low & habit_b] = (d + delay + np.zeros_like(change_day))[low & habit_b]
            need = act & cmask & (level <= thr) & (change_day == NEVER) & ~habit_b
            if need.any():
                when = np.where(mps, np.maximum(d + 1, low_since + delay), d + 1)
                change_day[need] = when[need]
            if len(rep_p):
                level_hist[:, :, t] = level[rep_p]
        # wear
        if len(fm):
            fact = f_inst <= d
            pv = (
                fact
                & (prev_period > 0)
                & (f_inst < d)
                & ((d - prev_phase) % np.maximum(prev_period, 1) == 0)
            )
            if pv.any():
                i = np.flatnonzero(pv & f_printer)
                wear[np.ix_(i, prev_cols)] *= fc.preventive_keep
                preventive.append(np.column_stack([fm[i], np.full(len(i), d)]))
            h0 = wear**kappa
            wear += inc * (w[t] * fact)[:, None]
            cycles += use * w[t] * fact
            q = -np.expm1(-(wear**kappa - h0))
            lam = fc.warning_rate * wear**fc.warning_power * (fact & f_report)[:, None]
            nb = rng.poisson(lam)
            if nb.any():
                i, j = np.nonzero(nb)
                err = (wear[i, j] > fc.error_wear) & (rng.random(len(i)) < 0.5)
                warnings.append(np.column_stack([fm[i], j, np.full(len(i), d), nb[i, j], err]))
            fail = rng.random(wear.shape) < q
            if fail.any():
                i, j = np.nonzero(fail)
                failures.append(np.column_stack([fm[i], j, np.full(len(i), d)]))
                wear[fail] = fc.replaced_wear
                cycles[i[(j == 0) & ~f_printer[i]]] = 0.0
            if len(rep_pc):
                health_hist[:, 0, t] = wear[rep_pc, 0]
                health_hist[:, 1, t] = wear[rep_pc, 1]
                health_hist[:, 2, t] = cycles[rep_pc]
        if d in snap_set:
            snaps[int(d)] = Snapshot(
                printer_rows=pr,
                level=level.copy(),
                low_since=low_since.copy(),
                change_day=change_day.copy(),
                wear_rows=fm,
                wear=wear.copy(),
            )
    return Generation(
        rows=rows,
        d0=d0,
        printer_rows=pr,
        pages=pages,
        report_printer_rows=pr[rep_p],
        level_hist=level_hist,
        report_pc_rows=fm[rep_pc],
        health_hist=health_hist,
        alerts=_stack(alerts, 3),
        changes=_stack(changes, 3),
        failures=_stack(failures, 3),
        preventive=_stack(preventive, 2),
        warnings=_stack(warnings, 5),
        snapshots=snaps,
    )
