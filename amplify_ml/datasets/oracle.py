"""The oracle: true probabilities from the latent state, and realised labels from the tables.

For each model, the cutoffs are the 12 latest first-of-month days ``c`` with
``c + horizon <= period end``. The state at a cutoff is the state at the *end* of day ``c``.
Timestamps count by their UTC date: a row is "dated on or before c" when its date is <= c,
and labels use rows dated in ``(c, c + horizon]``. See ``MECHANISMS.md`` for the exact
definitions; in short:

``propensity_to_buy`` (account x category, 90 days)
    entities: accounts with ``first_seen <= c``, all six categories. Label: a sell_through
    line with quantity > 0 (returns do not count) of a SKU of the category sold in the window.
    ``p_true`` combines, per day of the window, the survival of every purchase source (ad-hoc
    rate, projects under way (their end integrated over the lead time given that they have not
    ended yet, times their win probability), new projects
    through the lead-time distribution and the expected win probability, replacements of the
    account's devices, cartridge changes of its unmanaged printers, warranty extensions), then
    integrates over the account's churn day.
``refresh_due`` (device, 180 days)
    entities: devices installed on or before c and not retired on or before c. Label:
    ``retired_on`` in the window (a replaced device is always retired the day its replacement
    is installed, so "replaced" and "retired" are the same event). ``p_true = 1 - exp(-sum h)``
    with the refresh hazard on each day of the window.
``device_failure`` (device under mps or daas, 30 days)
    entities: alive devices under mps or daas. Label: a repair or part_replacement ticket of the
    device opened in the window. ``p_true`` is exact: wear follows a deterministic path from
    the cutoff (including scheduled preventive visits), and the device must still be in
    service on the day of the failure.
``consumable_depletion`` (device x colour, window 180 days)
    entities: colours of devices that report, with a supply reading dated on or before c whose
    latest such reading is above 10 %. Label: days from c to the first reading dated in the
    window with value <= 10 (null and ``censored`` when there is none). The oracle gives the
    distribution of the first crossing of 10 % (exact: cumulative pages are Gamma), as
    expected days (capped at ``depletion_max_days``), P10/P50/P90 days, and ``p_true`` =
    P(a reading <= 10 in the window), which also accounts for retirement.

Approximations (documented in MECHANISMS.md): the refresh hazard depends on repairs in the
last 365 days; the oracle uses the repairs known at c and averages over the day of the first
failure in the window (exact distribution), ignoring a second failure within the window;
propensity ignores purchases caused by devices installed after c (their first cartridge
change or replacement within 90 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import gammaincc

from amplify_ml.datapack.contract import PRODUCT_CATEGORIES, SUPPLY_COLORS
from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.catalogue import PC, PRINTER, SUPPLIES, WARRANTY, Catalogue
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import DAAS, MPS, refresh_hazard, wear_increment
from amplify_ml.datasets.partner import PartnerWorld
from amplify_ml.datasets.sales import (
    PROJECT_CATEGORIES,
    baseline_rate,
    expected_win,
    lead_cdf,
    project_rate,
)
from amplify_ml.datasets.telemetry import SUPPLY0

MODELS = ("propensity_to_buy", "refresh_due", "consumable_depletion", "device_failure")
_H_MAX = 180


@dataclass
class _CutoffState:
    rows: np.ndarray
    """Alive devices."""
    s_ret: np.ndarray
    """(n, 180) P(still in service at the end of day c+1+t), averaged over the first failure
    in the window (which raises the refresh hazard)."""
    s_ret_known: np.ndarray
    """(n, 180) the same with the repairs known at c only (exact until the next failure)."""
    fm_pos: np.ndarray
    """Positions in ``rows`` of devices with a failure model."""
    d_hazard: np.ndarray
    """(n_fm, 180) total failure hazard of each day along the no-failure wear path."""


@dataclass
class Oracle:
    """Computes the four oracle tables of one partner."""

    cfg: WorldConfig
    cal: Calendar
    cat: Catalogue
    w: PartnerWorld
    _cache: dict[int, _CutoffState] = field(default_factory=dict)
    _uses: dict[int, int] = field(default_factory=dict)
    """Remaining uses of a cached cutoff state (freed at zero) while :meth:`tables` runs."""

    # ---- shared state at a cutoff ----------------------------------------------------
    def state(self, c: int) -> _CutoffState:
        if c in self._cache:
            return self._cache[c]
        cfg, cal, dev, acc = self.cfg, self.cal, self.w.dev, self.w.acc
        rows = np.flatnonzero((dev.installed <= c) & (dev.retired > c))
        days = np.arange(c + 1, c + 1 + _H_MAX)
        fm_pos = np.flatnonzero(dev.failure_model[rows])
        d_hazard = self._wear_path(c, rows[fm_pos], days)
        known = self._known_repairs(c, rows)
        h = refresh_hazard(cfg, cal, acc, dev, rows, days, repairs=known)
        h0 = np.cumsum(h, axis=1)
        s_known = np.exp(-h0)
        s_ret = s_known.copy()
        if len(fm_pos):
            # a failure on day u multiplies the hazard by e^b from day u+1 on: average over
            # the day of the first failure in the window (a second one is ignored)
            eb = np.exp(cfg.refresh.repair_coefficient)
            q = -np.expm1(-d_hazard)
            no_fail = np.cumprod(1.0 - q, axis=1)
            first = q * np.concatenate([np.ones((len(fm_pos), 1)), no_fail[:, :-1]], axis=1)
            hf = h0[fm_pos]
            after = np.exp(-eb * hf) * np.cumsum(first * np.exp((eb - 1.0) * hf), axis=1)
            s_ret[fm_pos] = after + no_fail * np.exp(-hf)
        st = _CutoffState(
            rows=rows,
            s_ret=s_ret.astype(np.float32),
            s_ret_known=s_known.astype(np.float32),
            fm_pos=fm_pos,
            d_hazard=d_hazard.astype(np.float32),
        )
        self._cache[c] = st
        return st

    def _release(self, c: int) -> None:
        if c in self._uses:
            self._uses[c] -= 1
            if self._uses[c] <= 0:
                self._cache.pop(c, None)

    def _wear_path(self, c: int, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Total failure hazard per day along the wear path from the state at c (no failure)."""
        cfg, dev = self.cfg, self.w.dev
        fc = cfg.failures
        out = np.zeros((len(rows), len(days)))
        if len(rows) == 0:
            return out
        wear = self.w.snapshots[c].wear[rows].copy()
        inc = wear_increment(cfg, self.cal, dev.take(rows))
        w = self.cal.w(days)
        kappa = fc.weibull_shape
        period = dev.prev_period[rows]
        phase = dev.prev_phase[rows]
        inst = dev.installed[rows]
        cols = np.asarray([fc.printer_components.index(x) for x in fc.preventive_components])
        for t, d in enumerate(days):
            pv = (period > 0) & (inst < d) & ((d - phase) % np.maximum(period, 1) == 0)
            if pv.any():
                i = np.flatnonzero(pv)
                wear[np.ix_(i, cols)] *= fc.preventive_keep
            h0 = wear**kappa
            wear += inc * w[t]
            out[:, t] = (wear**kappa - h0).sum(axis=1)
        return out

    def _known_repairs(self, c: int, rows: np.ndarray) -> np.ndarray:
        """Failures dated in [d-365, c] for each day d = c+1..c+180 of the window."""
        f = self.w.failures
        out = np.zeros((len(rows), _H_MAX + 1))
        if len(f) == 0 or len(rows) == 0:
            return out[:, :_H_MAX]
        sel = (f[:, 2] <= c) & (f[:, 2] >= c - 364)
        f = f[sel]
        pos = np.searchsorted(rows, f[:, 0])
        ok = (pos < len(rows)) & (rows[np.minimum(pos, len(rows) - 1)] == f[:, 0])
        pos, f = pos[ok], f[ok]
        end = np.minimum(f[:, 2] + 364 - c + 1, _H_MAX)  # counts for t in [0, end)
        np.add.at(out, (pos, np.zeros(len(pos), dtype=np.int64)), 1.0)
        np.add.at(out, (pos, end), -1.0)
        return np.cumsum(out, axis=1)[:, :_H_MAX]

    def _cutoffs(self, horizon: int) -> np.ndarray:
        return self.cal.cutoffs(horizon, self.cfg.oracle.n_cutoffs)

    # ---- refresh ---------------------------------------------------------------------
    def refresh(self) -> pd.DataFrame:
        h = self.cfg.oracle.refresh_horizon_days
        dev = self.w.dev
        out = []
        for c in self._cutoffs(h):
            st = self.state(int(c))
            r = st.rows
            label = (dev.retired[r] > c) & (dev.retired[r] <= c + h)
            out.append(
                self._frame(
                    c, h, device=r, p=1.0 - st.s_ret[:, h - 1], label=label.astype(np.int64)
                )
            )
            self._release(int(c))
        return pd.concat(out, ignore_index=True)

    # ---- failure ---------------------------------------------------------------------
    def failure(self) -> pd.DataFrame:
        h = self.cfg.oracle.failure_horizon_days
        dev = self.w.dev
        fail_dev, fail_day = self._failure_ticket_days()
        out = []
        for c in self._cutoffs(h):
            st = self.state(int(c))
            sel = np.isin(dev.contract[st.rows[st.fm_pos]], (MPS, DAAS))
            pos = st.fm_pos[sel]
            r = st.rows[pos]
            q = -np.expm1(-st.d_hazard[sel, :h])
            surv_f = np.cumprod(1.0 - q, axis=1)
            first = q * np.concatenate([np.ones((len(r), 1)), surv_f[:, :-1]], axis=1)
            p = (first * st.s_ret_known[pos, :h]).sum(axis=1)
            label = _count_in(fail_dev, fail_day, r, c, c + h) > 0
            out.append(self._frame(c, h, device=r, p=p, label=label.astype(np.int64)))
            self._release(int(c))
        return pd.concat(out, ignore_index=True)

    def _failure_ticket_days(self) -> tuple[np.ndarray, np.ndarray]:
        """(device index, day) of every repair or part_replacement ticket."""
        se = self.w.tables["service_events"]
        se = se[se["kind"].isin(["repair", "part_replacement"]) & se["device_id"].notna()]
        idx = pd.Index(self.w.dev.device_id).get_indexer(se["device_id"])
        return idx.astype(np.int64), _days(se["opened_at"], self.cal)

    # ---- depletion -------------------------------------------------------------------
    def depletion(self) -> pd.DataFrame:
        cfg, cal, dev = self.cfg, self.cal, self.w.dev
        oc = cfg.oracle
        h = oc.depletion_window_days
        thr = cfg.usage.threshold_pct
        tel = self.w.telemetry
        supply = (tel.metric >= SUPPLY0) & (tel.metric < SUPPLY0 + len(SUPPLY_COLORS))
        dv, mt = tel.device[supply], tel.metric[supply].astype(np.int64) - SUPPLY0
        day = (tel.time_us[supply] // 86_400_000_000 - cal.start_epoch).astype(np.int64)
        val = tel.value[supply]
        group = dv * 4 + mt
        order = np.lexsort((tel.time_us[supply], group))
        group, day, val, tus = group[order], day[order], val[order], tel.time_us[supply][order]
        groups, gstart = np.unique(group, return_index=True)
        gend = np.append(gstart[1:], len(group))
        grid = np.concatenate([np.arange(1, 366), np.arange(372, oc.depletion_max_days + 1, 7)])
        cw = cal.cum_weight()
        keys = _gkey(group, tus)
        low_idx = np.where(val <= thr, np.arange(len(val)), len(val))
        next_low = np.minimum.accumulate(low_idx[::-1])[::-1] if len(val) else low_idx
        out = []
        for c in self._cutoffs(h):
            c = int(c)
            end_us = cal.epoch_us(np.asarray([c + 1]))[0]
            # the first reading dated after c, and the last dated on or before c, per group
            after = np.searchsorted(keys, _gkey(groups, np.full(len(groups), end_us)), side="left")
            pos = after - 1
            has = pos >= gstart
            latest = val[np.maximum(pos, 0)]
            keep = np.flatnonzero(has & (latest > thr))
            d_, col = groups[keep] // 4, groups[keep] % 4
            alive = (dev.installed[d_] <= c) & (dev.retired[d_] > c)
            d_, col, gk = d_[alive], col[alive], keep[alive]
            level = self.w.snapshots[c].level[d_, col]
            need = (level - thr) / dev.rho[d_, col]
            k = dev.shape_k[d_]
            theta = dev.volume[d_] / k
            wsum = cw[c + grid - cal.lo + 1] - cw[c - cal.lo + 1]
            cdf = gammaincc(k[:, None] * wsum[None, :], (need / theta)[:, None])
            cdf = np.where(level[:, None] <= thr, 1.0, cdf)
            st = self.state(c)
            spos = np.searchsorted(st.rows, d_)
            s_ret = st.s_ret[spos, :h]
            dens = np.diff(np.concatenate([np.zeros((len(d_), 1)), cdf[:, :h]], axis=1), axis=1)
            p = (dens * s_ret).sum(axis=1)
            surv = 1.0 - cdf
            daily = 1.0 + surv[:, :364].sum(axis=1)  # sum of P(T > t) for t = 0..364
            ys = surv[:, 364:]  # P(T > t) at t = 365, 372, ... (trapezoid beyond a year)
            weekly = ((ys[:, :-1] + ys[:, 1:]) / 2 * np.diff(grid[364:])[None, :]).sum(axis=1)
            expected = daily + weekly
            q = {qq: _quantile(cdf, grid, qq) for qq in (0.1, 0.5, 0.9)}
            # realised: first reading dated in (c, c+h] with value <= threshold
            j = next_low[np.minimum(after[gk], len(val) - 1)] if len(val) else np.zeros(0, np.int64)
            jj = np.minimum(j, max(len(val) - 1, 0))
            found = (after[gk] < gend[gk]) & (j < gend[gk]) & (day[jj] <= c + h)
            lab = np.where(found, day[jj] - c, np.nan)
            out.append(
                pd.DataFrame(
                    {
                        "partner_id": self.w.partner.partner_id,
                        "device_id": dev.device_id[d_],
                        "color": np.asarray(SUPPLY_COLORS, dtype=object)[col],
                        "cutoff": cal.date(c),
                        "horizon_days": h,
                        "threshold_pct": thr,
                        "p_true": p,
                        "expected_days": expected,
                        "p10_days": q[0.1],
                        "p50_days": q[0.5],
                        "p90_days": q[0.9],
                        "label": pd.array(np.where(np.isnan(lab), None, lab), dtype="Int64"),
                        "censored": np.isnan(lab),
                    }
                )
            )
            self._release(c)
        return pd.concat(out, ignore_index=True)

    # ---- propensity ------------------------------------------------------------------
    def propensity(self) -> pd.DataFrame:
        cfg, cal, acc, dev = self.cfg, self.cal, self.w.acc, self.w.dev
        h = cfg.oracle.propensity_horizon_days
        n_acc = len(acc)
        F_L = lead_cdf(cfg, h)
        F_long = lead_cdf(cfg, 7 * cfg.sales.project_lead_weeks[1] + h + 1)
        # toeplitz[s, t] = P(lead <= t - s): a project started on day c+1+s has ended by c+1+t
        s_i, t_i = np.meshgrid(np.arange(h), np.arange(h), indexing="ij")
        toeplitz = np.where(t_i >= s_i, F_L[np.clip(t_i - s_i, 0, h)], 0.0)
        e_win = expected_win(cfg, acc)
        pj = self.w.projects
        buy_ent, buy_day = self._purchase_days()
        out = []
        for c in self._cutoffs(h):
            c = int(c)
            days = np.arange(c + 1, c + h + 1)
            st = self.state(c)
            logG = np.zeros((len(PRODUCT_CATEGORIES), n_acc, h + 1))
            for k in range(len(PRODUCT_CATEGORIES)):
                lam = baseline_rate(cfg, cal, acc, k, days)
                logG[k, :, 1:] -= np.cumsum(lam, axis=1)
                if k in PROJECT_CATEGORIES:
                    rho = project_rate(cfg, cal, acc, k, days)
                    logG[k, :, 1:] -= e_win[:, None] * (rho @ toeplitz)
            # projects under way at c: the end is not known, only that it has not come yet
            pend = np.flatnonzero((pj.start <= c) & (pj.purchase_day > c))
            if len(pend):
                elapsed = c - pj.start[pend]
                tt = np.arange(1, h + 1)
                alive = 1.0 - F_long[np.minimum(elapsed, len(F_long) - 1)]
                ended = (
                    F_long[np.minimum(elapsed[:, None] + tt[None, :], len(F_long) - 1)]
                    - (1.0 - alive)[:, None]
                ) / alive[:, None]
                logs = np.log1p(-pj.p_win[pend][:, None] * np.clip(ended, 0.0, 1.0))
                np.add.at(
                    logG,
                    (pj.category[pend], pj.account[pend]),
                    np.concatenate([np.zeros((len(pend), 1)), logs], axis=1),
                )
            # device-driven purchases
            dev_log = self._device_logs(c, st, h)
            for k, (rows, logs) in dev_log.items():
                m = sp.csr_matrix(
                    (np.ones(len(rows)), (dev.account[rows], np.arange(len(rows)))),
                    shape=(n_acc, len(rows)),
                )
                logG[k, :, 1:] += m @ logs
            G = np.exp(logG)
            eta = acc.churn_rate[:, None]
            t = np.arange(1, h + 1)[None, :]
            p_churn_day = np.exp(-eta * (t - 1)) - np.exp(-eta * t)
            p_none = (p_churn_day[None] * G[:, :, :-1]).sum(axis=2) + np.exp(-eta[:, 0] * h)[
                None
            ] * G[:, :, -1]
            p = np.clip(1.0 - p_none, 0.0, 1.0)
            p[:, acc.churn_day <= c] = 0.0
            ents = np.flatnonzero(acc.first_seen <= c)
            for k in range(len(PRODUCT_CATEGORIES)):
                lab = (_count_in(buy_ent, buy_day, ents * 8 + k, c, c + h) > 0).astype(np.int64)
                out.append(
                    pd.DataFrame(
                        {
                            "partner_id": self.w.partner.partner_id,
                            "account_id": acc.account_id[ents],
                            "category": PRODUCT_CATEGORIES[k],
                            "cutoff": cal.date(c),
                            "horizon_days": h,
                            "p_true": p[k, ents],
                            "label": lab,
                        }
                    )
                )
            self._release(c)
        return (
            pd.concat(out, ignore_index=True)
            .sort_values(["cutoff", "account_id", "category"], kind="stable")
            .reset_index(drop=True)
        )

    def _device_logs(
        self, c: int, st: _CutoffState, h: int
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """log P(no purchase caused by the device by day c+t), t = 1..h, per category."""
        cfg, cal, acc, dev = self.cfg, self.cal, self.w.acc, self.w.dev
        rows = st.rows
        s_ret = st.s_ret[:, :h]
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # replacements
        for k in (PRINTER, PC):
            sel = dev.category[rows] == k
            f = acc.p_replace[dev.account[rows[sel]]][:, None] * (1.0 - s_ret[sel])
            out[k] = (rows[sel], np.log1p(-np.clip(f, 0.0, 1.0 - 1e-12)))
        # cartridge changes of supplied, unmanaged printers
        sel = dev.supplied[rows] & (dev.contract[rows] != MPS) & (dev.category[rows] == PRINTER)
        r = rows[sel]
        snap = self.w.snapshots[c]
        level = snap.level[r]
        chg = snap.change_day[r]
        rho = dev.rho[r]
        active = rho > 0
        pending = np.where(active & (chg < NEVER) & (chg > c), chg, NEVER).min(axis=1)
        thr_eff = np.where(dev.habit_b[r], cfg.usage.threshold_pct, dev.thr[r])[:, None]
        delta = np.where(dev.habit_b[r], dev.delay[r], 1)
        free = active & ~((chg < NEVER) & (chg > c))
        need = np.where(free, (level - thr_eff) / np.where(active, rho, 1.0), np.inf).min(axis=1)
        k_ = dev.shape_k[r]
        theta = dev.volume[r] / k_
        cw = cal.cum_weight()
        t = np.arange(1, h + 1)
        m = t[None, :] - delta[:, None]  # pages of days c+1 .. c+t-delta
        wsum = np.where(m >= 1, cw[np.clip(c + m - cal.lo + 1, 0, None)] - cw[c - cal.lo + 1], 0.0)
        with np.errstate(invalid="ignore"):
            p_other = np.where(
                (m >= 1) & np.isfinite(need)[:, None],
                gammaincc(
                    np.maximum(k_[:, None] * wsum, 1e-300),
                    np.maximum(need, 0.0)[:, None] / theta[:, None],
                ),
                0.0,
            )
        p_pend = (c + t[None, :]) >= pending[:, None]
        first = 1.0 - (1.0 - p_other) * (1.0 - p_pend)
        dens = np.diff(np.concatenate([np.zeros((len(r), 1)), first], axis=1), axis=1)
        spos = np.searchsorted(rows, r)
        f = np.cumsum(dens * s_ret[spos], axis=1)
        out[SUPPLIES] = (r, np.log1p(-np.clip(f, 0.0, 1.0 - 1e-12)))
        # warranty extensions
        win = cfg.sales.warranty_window_days
        wd = dev.warranty_day[rows]
        e = dev.warranty_end[rows]
        pi = acc.warranty_buyer[dev.account[rows]]
        decided = wd <= c
        n_before = np.clip(c - (e - win) + 1, 0, win)
        per_day = (pi / win) / np.maximum(1.0 - pi * n_before / win, 1e-12)
        d = c + t[None, :]
        in_win = (d >= (e - win)[:, None]) & (d <= (e - 1)[:, None]) & ~decided[:, None]
        f = np.cumsum(np.where(in_win, per_day[:, None], 0.0) * s_ret, axis=1)
        out[WARRANTY] = (rows, np.log1p(-np.clip(f, 0.0, 1.0 - 1e-12)))
        return out

    def _purchase_days(self) -> tuple[np.ndarray, np.ndarray]:
        """(account * 8 + category, day) of every line with quantity > 0."""
        st = self.w.tables["sell_through"]
        st = st[st["quantity"] > 0]
        prod = pd.Index(self.cat.products["sku"]).get_indexer(st["sku"])
        k = self.cat.category[prod]
        a = pd.Index(self.w.acc.account_id).get_indexer(st["account_id"])
        return a.astype(np.int64) * 8 + k, _days(st["sold_on"], self.cal)

    # ---- helpers ---------------------------------------------------------------------
    def _frame(
        self, c: int, h: int, *, device: np.ndarray, p: np.ndarray, label: np.ndarray
    ) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "partner_id": self.w.partner.partner_id,
                "device_id": self.w.dev.device_id[device],
                "cutoff": self.cal.date(int(c)),
                "horizon_days": h,
                "p_true": np.clip(p, 0.0, 1.0),
                "label": label,
            }
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """The four oracle tables (cutoff states are freed once every model has used them)."""
        oc = self.cfg.oracle
        self._uses = {}
        for h in (
            oc.propensity_horizon_days,
            oc.refresh_horizon_days,
            oc.failure_horizon_days,
            oc.depletion_window_days,
        ):
            for c in self._cutoffs(h):
                self._uses[int(c)] = self._uses.get(int(c), 0) + 1
        return {
            "propensity_to_buy": self.propensity(),
            "refresh_due": self.refresh(),
            "consumable_depletion": self.depletion(),
            "device_failure": self.failure(),
        }


def _gkey(group: np.ndarray, tus: np.ndarray) -> np.ndarray:
    return group.astype(np.int64) * np.int64(1 << 42) + (tus.astype(np.int64) // 1_000_000)


def _days(col: pd.Series, cal: Calendar) -> np.ndarray:
    v = col.to_numpy().astype("datetime64[D]").astype(np.int64)
    return v - cal.start_epoch


def _count_in(
    ev_entity: np.ndarray, ev_day: np.ndarray, entity: np.ndarray, lo: int, hi: int
) -> np.ndarray:
    """For each entity, the number of its events with day in (lo, hi]."""
    big = np.int64(1 << 24)
    keys = np.sort(ev_entity.astype(np.int64) * big + ev_day.astype(np.int64))
    base = entity.astype(np.int64) * big
    return np.searchsorted(keys, base + hi, side="right") - np.searchsorted(
        keys, base + lo, side="right"
    )


def _quantile(cdf: np.ndarray, grid: np.ndarray, q: float) -> np.ndarray:
    """Smallest day t with P(T <= t) >= q (linear between grid points), NaN beyond the grid."""
    hit = cdf >= q
    j = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    out = np.full(len(cdf), np.nan)
    ok = j >= 0
    jj = j[ok]
    t_hi = grid[jj].astype(np.float64)
    prev = np.maximum(jj - 1, 0)
    t_lo = np.where(jj > 0, grid[prev], 0).astype(np.float64)
    c_hi = cdf[ok, jj]
    c_lo = np.where(jj > 0, cdf[ok, prev], 0.0)
    frac = np.where(c_hi > c_lo, (q - c_lo) / np.maximum(c_hi - c_lo, 1e-300), 1.0)
    out[ok] = np.ceil(t_lo + frac * (t_hi - t_lo) - 1e-9)
    out[ok] = np.maximum(out[ok], 1.0)
    return out
