"""Telemetry readings and device event codes, with the real-world mess.

Only devices that ``report`` (most devices under mps or daas, a few under a care pack)
send telemetry and event codes. Readings:

- *periodic* readings every ``interval`` days (2-4) at night (00:30-06:00 UTC); each reports
  the state at the end of the previous day: ``page_count`` (cumulative) and
  ``supply_level_pct.<color>`` for printers, ``battery_health_pct``, ``disk_health_pct`` and
  ``battery_cycle_count`` (charge cycles since the battery was new) for PCs. Periodic readings are lost during outages (gaps of days to weeks);
- *supply alerts*: the day a colour's end-of-day level first reaches 10 % the printer sends
  that level at once (07:00-22:00 UTC). Alerts are never lost, so the first reading at or
  below 10 % after a cutoff is the alert of the first crossing after it.

Supply levels are reported as ``ceil(level)`` at or below 10 % and in the family's step
above it (1, 10 or 25 points: older families report coarse levels), so a reading is <= 10
exactly when the true level is. Battery health is ``100 - 45 wear^1.5`` and disk health
``100 - 40 wear^2.5`` (plus noise): both fall faster as a failure nears.

Mess: a share of readings is repeated exactly (same key, same value), a share is moved out
of order, and for partners with a late pack part of the last three weeks' readings is
split off into the late pack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from amplify_ml.datapack.contract import SUPPLY_COLORS
from amplify_ml.datasets.calendar import Calendar
from amplify_ml.datasets.catalogue import PC, PRINTER, Catalogue
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import Devices
from amplify_ml.datasets.dynamics import Generation

METRICS = (
    "page_count",
    *(f"supply_level_pct.{c}" for c in SUPPLY_COLORS),
    "battery_health_pct",
    "disk_health_pct",
    "battery_cycle_count",
)
PAGE_COUNT, BATTERY, DISK, CYCLES = 0, 5, 6, 7
SUPPLY0 = 1
_NIGHT = (1800, 21600)
_DAY = (25200, 79200)


@dataclass
class Readings:
    """Telemetry rows as arrays: device index, observed_at (us), metric index, value."""

    device: np.ndarray
    time_us: np.ndarray
    metric: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.device)

    def take(self, idx: np.ndarray) -> Readings:
        return Readings(self.device[idx], self.time_us[idx], self.metric[idx], self.value[idx])

    @staticmethod
    def concat(parts: list[Readings]) -> Readings:
        if not parts:
            return Readings(
                np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0)
            )
        return Readings(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("device", "time_us", "metric", "value")
            )
        )

    def to_arrow(self, device_ids: np.ndarray) -> pa.Table:
        return pa.table(
            {
                "device_id": pa.DictionaryArray.from_arrays(
                    pa.array(self.device.astype(np.int32)), pa.array(device_ids.astype(str))
                ).cast(pa.string()),
                "observed_at": pa.array(self.time_us, type=pa.timestamp("us", tz="UTC")),
                "metric": pa.DictionaryArray.from_arrays(
                    pa.array(self.metric.astype(np.int32)), pa.array(list(METRICS))
                ).cast(pa.string()),
                "value": pa.array(self.value.astype(np.float64)),
            }
        )


def quantize(level: np.ndarray, step: np.ndarray, threshold: float) -> np.ndarray:
    """Reported supply level: whole percent at or below the threshold, ``step`` above it."""
    fine = np.ceil(level - 1e-9)
    coarse = np.ceil(level / step - 1e-9) * step
    return np.clip(np.where(level <= threshold, fine, np.maximum(coarse, threshold + 1)), 0, 100)


def _periodic_days(
    cfg: WorldConfig, cal: Calendar, dev: Devices, rows: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(device, day) of the periodic readings of ``rows`` that are not lost in an outage."""
    te = cfg.telemetry
    start = np.maximum(dev.installed[rows], 0)
    end = np.minimum(dev.retired[rows], cal.n_days)  # exclusive
    iv = dev.interval[rows]
    first = start + (dev.phase[rows] - start) % iv
    count = np.maximum(0, (end - first + iv - 1) // iv)
    r = np.repeat(np.arange(len(rows)), count)
    k = np.arange(len(r)) - np.repeat(np.cumsum(count) - count, count)
    day = first[r] + k * iv[r]
    # outages
    years = np.maximum(end - start, 0) / 365.25
    n_out = rng.poisson(te.outages_per_year * years)
    o = np.repeat(np.arange(len(rows)), n_out)
    o_start = start[o] + np.floor(rng.random(len(o)) * np.maximum(end[o] - start[o], 1)).astype(
        np.int64
    )
    o_end = o_start + rng.geometric(1.0 / te.outage_days_mean, len(o))
    if len(o):
        big = np.int64(1 << 32)
        keys = o * big + o_start
        order = np.argsort(keys)
        keys, o_end_s = keys[order], o_end[order]
        pos = np.searchsorted(keys, r * big + day, side="right") - 1
        same = (pos >= 0) & ((keys[np.maximum(pos, 0)] // big) == r)
        lost = same & (day < o_end_s[np.maximum(pos, 0)])
        r, day = r[~lost], day[~lost]
    return rows[r], day


def readings(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    dev: Devices,
    gen: Generation,
    rng: np.random.Generator,
) -> Readings:
    """Every clean reading of the reporting devices of one generation."""
    fc = cfg.failures
    thr = cfg.usage.threshold_pct
    parts: list[Readings] = []
    # ---- printers ----
    rp = gen.report_printer_rows
    if len(rp):
        pos_pages = np.searchsorted(gen.printer_rows, rp)
        cum = np.cumsum(gen.pages[pos_pages], axis=1, dtype=np.float64)
        d_, day = _periodic_days(cfg, cal, dev, rp, rng)
        hp = np.searchsorted(rp, d_)
        t = day - 1 - gen.d0
        ok = t >= 0
        tt = np.maximum(t, 0)
        before_install = (day - 1) < dev.installed[d_]
        pages = np.where(ok & ~before_install, cum[hp, tt], 0.0)
        time = cal.epoch_us(day, rng.integers(*_NIGHT, len(day)))
        parts.append(
            Readings(
                d_, time, np.full(len(d_), PAGE_COUNT, np.int8), np.floor(dev.page0[d_] + pages)
            )
        )
        step = cat.family_step[dev.family[d_]]
        for c in range(len(SUPPLY_COLORS)):
            has = dev.rho[d_, c] > 0
            lv = np.where(ok & ~before_install, gen.level_hist[hp, c, tt], dev.init_level[d_, c])
            parts.append(
                Readings(
                    d_[has],
                    time[has],
                    np.full(int(has.sum()), SUPPLY0 + c, np.int8),
                    quantize(lv[has], step[has], thr),
                )
            )
        # alerts (never lost)
        al = gen.alerts
        al = al[np.isin(al[:, 0], rp) & (al[:, 2] < dev.retired[al[:, 0]])]
        if len(al):
            ha = np.searchsorted(rp, al[:, 0])
            lv = gen.level_hist[ha, al[:, 1], al[:, 2] - gen.d0]
            parts.append(
                Readings(
                    al[:, 0],
                    cal.epoch_us(al[:, 2], rng.integers(*_DAY, len(al))),
                    (SUPPLY0 + al[:, 1]).astype(np.int8),
                    quantize(lv, np.ones(len(al)), thr),
                )
            )
    # ---- PCs ----
    rc = gen.report_pc_rows
    if len(rc):
        d_, day = _periodic_days(cfg, cal, dev, rc, rng)
        hc = np.searchsorted(rc, d_)
        t = day - 1 - gen.d0
        ok = (t >= 0) & ((day - 1) >= dev.installed[d_])
        tt = np.maximum(t, 0)
        wb = np.where(ok, gen.health_hist[hc, 0, tt], dev.init_wear[d_, 0])
        wd = np.where(ok, gen.health_hist[hc, 1, tt], dev.init_wear[d_, 1])
        cyc = np.where(ok, gen.health_hist[hc, 2, tt], gen.health_hist[hc, 2, 0])
        time = cal.epoch_us(day, rng.integers(*_NIGHT, len(day)))
        bat = np.clip(
            100 - fc.battery_health_drop * wb**1.5 + rng.normal(0, 1.0, len(day)), 0, 100
        ).round(1)
        dsk = np.clip(
            100 - fc.disk_health_drop * wd**2.5 + rng.normal(0, 0.8, len(day)), 0, 100
        ).round(1)
        parts.append(Readings(d_, time, np.full(len(d_), BATTERY, np.int8), bat))
        parts.append(Readings(d_, time, np.full(len(d_), DISK, np.int8), dsk))
        parts.append(Readings(d_, time, np.full(len(d_), CYCLES, np.int8), np.floor(cyc)))
    return Readings.concat(parts)


def add_mess(
    cfg: WorldConfig, r: Readings, rng: np.random.Generator, *, duplicates: bool
) -> tuple[Readings, int]:
    """Sort by device and time, add exact duplicates, move a share of rows out of order.

    Returns the readings and the number of surplus duplicate rows."""
    te = cfg.telemetry
    order = np.lexsort((r.metric, r.time_us, r.device))
    r = r.take(order)
    n_dup = 0
    if duplicates and len(r):
        dup = np.flatnonzero(rng.random(len(r)) < te.duplicate_share)
        n_dup = len(dup)
        # a duplicate arrives right after its original or somewhat later
        idx = np.concatenate([np.arange(len(r)), dup])
        pos = np.concatenate(
            [np.arange(len(r), dtype=np.float64), dup + rng.uniform(0.5, 50.0, len(dup))]
        )
        r = r.take(idx[np.argsort(pos, kind="stable")])
    if len(r):
        moved = np.flatnonzero(rng.random(len(r)) < te.out_of_order_share)
        pos = np.arange(len(r), dtype=np.float64)
        pos[moved] += rng.uniform(-2000.0, 2000.0, len(moved))
        r = r.take(np.argsort(pos, kind="stable"))
    return r, n_dup


def split_late(
    cfg: WorldConfig, cal: Calendar, r: Readings, rng: np.random.Generator
) -> tuple[Readings, Readings]:
    """Move a share of the readings of the last weeks of the period to a late pack.

    Rows whose key occurs more than once (duplicates) stay in the main pack."""
    te = cfg.telemetry
    cutoff_us = cal.epoch_us(np.asarray([cal.n_days - te.late_window_days]))[0]
    key = np.stack([r.device, r.time_us, r.metric.astype(np.int64)], axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    single = cnt[inv.ravel()] == 1
    late = (r.time_us >= cutoff_us) & single & (rng.random(len(r)) < te.late_share)
    return r.take(np.flatnonzero(~late)), r.take(np.flatnonzero(late))


_CODE_TAILS = ("A2.D3", "B1.E4", "C7.F2", "0A.1B", "E5.C0")


def component_codes(cfg: WorldConfig) -> np.ndarray:
    """Event codes: (category, component, variant) -> code like ``13.A2.D3``."""
    fc = cfg.failures
    out = np.empty((2, 4, len(_CODE_TAILS)), dtype=object)
    for c, prefixes in ((PRINTER, fc.printer_code_prefix), (PC, fc.pc_code_prefix)):
        for j, p in enumerate(prefixes):
            for v, tail in enumerate(_CODE_TAILS):
                out[c, j, v] = f"{p}.{tail}"
    return out


def events(
    cfg: WorldConfig, cal: Calendar, dev: Devices, gen: Generation, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """device_events rows of one generation: warning bursts, failure errors, supply alerts."""
    codes = component_codes(cfg)
    w = gen.warnings
    w = w[dev.reporting[w[:, 0]] & (w[:, 2] < dev.retired[w[:, 0]])]
    reps = w[:, 3]
    e = np.repeat(np.arange(len(w)), reps)
    k = np.arange(len(e)) - np.repeat(np.cumsum(reps) - reps, reps)
    burst_start = rng.integers(6 * 3600, 20 * 3600, len(w))
    secs = burst_start[e] + k * rng.integers(20, 900, len(e)) + k
    d_ = w[e, 0]
    variant = rng.integers(0, 4, len(w))[e]
    code = codes[dev.category[d_], w[e, 1], variant]
    sev = np.where(w[e, 4] == 1, "error", "warning").astype(object)
    day = w[e, 2]
    f = gen.failures
    f = f[dev.reporting[f[:, 0]] & (f[:, 2] < dev.retired[f[:, 0]]) & (f[:, 2] >= 0)]
    f_secs = rng.integers(6 * 3600, 7 * 3600, len(f))
    a = gen.alerts
    a = a[dev.reporting[a[:, 0]] & (a[:, 2] < dev.retired[a[:, 0]])]
    return {
        "device": np.concatenate([d_, f[:, 0], a[:, 0]]),
        "day": np.concatenate([day, f[:, 2], a[:, 2]]),
        "secs": np.concatenate([secs, f_secs, rng.integers(*_DAY, len(a))]),
        "code": np.concatenate(
            [
                code,
                codes[dev.category[f[:, 0]], f[:, 1], 4],
                np.asarray([f"10.00.0{c}" for c in range(4)], dtype=object)[a[:, 1]],
            ]
        ),
        "severity": np.concatenate(
            [sev, np.full(len(f), "error", dtype=object), np.full(len(a), "info", dtype=object)]
        ),
    }
