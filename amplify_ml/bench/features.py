"""Benchmark: the four training sets over 12 monthly cutoffs, against plain pandas.

The baseline in the same run, on the same lake, is a straightforward pandas implementation
of the same feature sets (:class:`PandasFeatures`, below): load the tables, then for each
cutoff filter the rows and group them. Its output must equal ours (floats to a relative
1e-9); the benchmark fails otherwise. Each side runs in its own process for its own peak
memory. At medium scale the baseline is expected to run out of memory and is not run.

Timing: ``seconds`` (and the speed-up) is the build, from opening the lake to the last
training set, on both sides: the library imports before it (Ibis and DuckDB for us, pandas
for the baseline) and the Parquet writes for the comparison after each set are timed apart
(``import_seconds``, ``write_seconds``); ``process_seconds`` is the child process's whole run
and ``speedup_vs_pandas_whole_process`` its ratio.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amplify_ml.bench import measure, write_result
from amplify_ml.datapack.contract import (
    CHANNELS,
    CONTRACTS,
    DEVICE_CATEGORIES,
    PRODUCT_CATEGORIES,
    SEVERITIES,
)

MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")
CUTOFFS = ("2025-05-01", "2026-04-01")
"""12 monthly cutoffs whose longest label window (180 days) ends inside the synthetic period."""
REPAIRS = ("repair", "part_replacement")
HEALTH = {"battery": "battery_health_pct", "disk": "disk_health_pct"}
DAY_US = 86_400_000_000


# -- the pandas baseline ----------------------------------------------------------------------


def _seconds(s: pd.Series) -> pd.Series:
    """UTC timestamps as seconds since the epoch (float)."""
    v = (
        s.dt.tz_convert("UTC").dt.tz_localize(None)
        if isinstance(s.dtype, pd.DatetimeTZDtype)
        else s
    )
    return v.astype("datetime64[us]").astype("int64") / 1e6


def _weekday_sums(profile: np.ndarray) -> np.ndarray:
    """``[e, n]``: the weights in ``profile`` (Monday first) of the n days up to a day e."""
    return np.array([[profile[(e - np.arange(n)) % 7].sum() for n in range(7)] for e in range(7)])


def _days(s: pd.Series) -> pd.Series:
    """Dates or UTC timestamps as day numbers (nullable Int64)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or str(s.dtype).startswith("datetime64"):
        v = (
            s.dt.tz_convert("UTC").dt.tz_localize(None)
            if isinstance(s.dtype, pd.DatetimeTZDtype)
            else s
        )
        us = v.astype("datetime64[us]").astype("int64")
        out = pd.Series(np.floor_divide(us, DAY_US), index=s.index).astype("Int64")
        return out.mask(s.isna())
    d = pd.to_datetime(s)
    return _days(d)


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "blank"


def _counter(tel: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A cumulative counter's readings in time order, with ``delta`` (the increment since the
    device's previous reading; the reading itself after a reset) and ``gap`` (days since it)."""
    pc = tel[tel["metric"] == metric].sort_values(["partner_id", "device_id", "observed_at"])
    g = pc.groupby(["partner_id", "device_id"], sort=False)
    prev = g["value"].shift()
    return pc.assign(
        delta=np.where(
            prev.isna(),
            np.nan,
            np.where(pc["value"] >= prev, pc["value"] - prev, pc["value"]),
        ),
        gap=(pc["day"] - g["day"].shift()).astype("float64"),
    )


def _ols(g: pd.DataFrame) -> float:
    n = len(g)
    if n < 2:
        return np.nan
    x, y = g["x"].to_numpy(float), g["y"].to_numpy(float)
    den = n * (x * x).sum() - x.sum() ** 2
    return (n * (x * y).sum() - x.sum() * y.sum()) / den if den > 0 else np.nan


class PandasFeatures:
    """The four feature sets in plain pandas: one filter-and-group pass per cutoff."""

    def __init__(self, lake_root: str) -> None:
        from amplify_ml.lake import Lake

        lake = Lake(lake_root)
        self.tables: dict[str, pd.DataFrame] = {}
        for t in lake.tables():
            files = [str(f) for f in lake.files(t)]
            self.tables[t] = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        self._prepare()

    # -- shared preparation (whole history, once) ------------------------------------------------
    def _prepare(self) -> None:
        T = self.tables
        p = T["products"].copy()
        p["day"] = _days(p["launched_on"])
        self.products = p
        a = T["accounts"].copy()
        a["first_day"] = _days(a["first_seen"])
        a = a.merge(
            T["partners"][["partner_id", "track"]].rename(columns={"track": "partner_track"}),
            on="partner_id",
            how="left",
        )
        self.accounts = a
        st = T["sell_through"].merge(p[["sku", "category"]], on="sku")
        st["day"] = _days(st["sold_on"])
        self.st = st
        if "install_base" in T:
            ib = T["install_base"].merge(
                p[["sku", "category", "family", "list_price"]].rename(
                    columns={"category": "device_category"}
                ),
                on="sku",
                how="left",
            )
            for c, src in (
                ("inst", "installed_on"),
                ("ret", "retired_on"),
                ("wend", "warranty_ends_on"),
            ):
                ib[c] = _days(ib[src])
            # out of service: retired, or replaced (the replacement's installation day)
            rep = ib[["partner_id", "device_id", "inst"]].rename(
                columns={"device_id": "replaced_by", "inst": "rep_inst"}
            )
            ib = ib.merge(rep, on=["partner_id", "replaced_by"], how="left")
            ib["ret"] = ib["ret"].fillna(ib["rep_inst"])
            self.ib = ib
        if "telemetry" in T:
            tel = T["telemetry"]
            tel = tel.assign(day=_days(tel["observed_at"]))
            pc = _counter(tel, "page_count")
            self.cycles = _counter(tel, "battery_cycle_count")
            # the days an increment counts: those whose middle falls since the reading before
            mid = np.floor(_seconds(pc["observed_at"]) / 86400.0 - 0.5)
            span = mid - mid.groupby([pc["partner_id"], pc["device_id"]]).shift()
            pc = pc.assign(span=span.fillna(pc["gap"]), wd_end=(mid + 3) % 7)
            self.pages = pc
            # the fleet's increments and the days they cover, per reading day
            inc = pc[pc["delta"].notna()]
            self.fleet_days = inc.groupby("day")[["delta", "gap"]].sum()
            sup = tel[tel["metric"].str.startswith("supply_level_pct.")].copy()
            sup["color"] = sup["metric"].str.slice(len("supply_level_pct."))
            sup = sup.sort_values(["partner_id", "device_id", "color", "observed_at"])
            sup["prev"] = sup.groupby(["partner_id", "device_id", "color"], sort=False)[
                "value"
            ].shift()
            self.supply = sup
            ch = sup[sup["prev"].notna() & (sup["value"] - sup["prev"] >= 30.0)]
            steps = sup[
                sup["prev"].notna()
                & ((sup["value"] < sup["prev"]) | (sup["value"] - sup["prev"] >= 30.0))
            ]
            steps = steps.merge(
                pc[["partner_id", "device_id", "observed_at", "value", "delta"]].rename(
                    columns={"value": "page_value", "delta": "page_delta"}
                ),
                on=["partner_id", "device_id", "observed_at"],
                how="left",
            )
            self.steps = steps
            # each colour's first reading when full, as a change (a jump up from nothing)
            first = sup[sup["prev"].isna() & (sup["value"] >= 100.0)]
            first = first.merge(
                pc[["partner_id", "device_id", "observed_at", "value", "delta"]].rename(
                    columns={"value": "page_value", "delta": "page_delta"}
                ),
                on=["partner_id", "device_id", "observed_at"],
                how="left",
            ).assign(prev=0.0)
            self.steps_first_full = pd.concat([steps, first[steps.columns]], ignore_index=True)
            ch = ch.merge(
                pc[["partner_id", "device_id", "observed_at", "value"]].rename(
                    columns={"value": "page_value"}
                ),
                on=["partner_id", "device_id", "observed_at"],
                how="left",
            )
            self.changes = ch
            self.health = tel[tel["metric"].isin(list(HEALTH.values()))]
        if "device_events" in T:
            ev = T["device_events"].copy()
            ev["day"] = _days(ev["occurred_at"])
            ev["prefix"] = ev["code"].str.split(".", n=1).str[0]
            self.events = ev
        if "service_events" in T:
            se = T["service_events"].copy()
            se["day"] = _days(se["opened_at"])
            se["closed"] = _days(se["closed_at"])
            self.tickets = se
        if "intent_signals" in T:
            it = T["intent_signals"].copy()
            it["end_day"] = _days(it["week_of"]) + 6
            fam = (
                p[p["category"].isin(DEVICE_CATEGORIES)][["family", "category"]]
                .drop_duplicates()
                .rename(columns={"family": "topic", "category": "family_category"})
            )
            it = it.merge(fam, on="topic", how="left")
            it["category"] = np.where(
                it["topic"].isin(PRODUCT_CATEGORIES), it["topic"], it["family_category"]
            )
            self.intent = it
            # weekly intent per account and category, with the start of the run of
            # consecutive weeks each week belongs to and the run's intensity up to it
            AC = ["partner_id", "account_id", "category"]
            w = it[it["category"].notna() & (it["intensity"] > 0)]
            w = w.groupby([*AC, "end_day"], as_index=False)["intensity"].sum()
            w = w.sort_values([*AC, "end_day"]).reset_index(drop=True)
            gap = w.groupby(AC)["end_day"].diff()
            run = (gap.isna() | (gap > 7)).cumsum()
            w["run_start"] = w.groupby(run)["end_day"].transform("min")
            w["run_total"] = w.groupby(run)["intensity"].cumsum()
            self.intent_runs = w
        if "opportunities" in T:
            o = T["opportunities"].copy()
            o["created"] = _days(o["created_on"])
            o["closed"] = _days(o["closed_on"])
            self.opps = o

    # -- entities --------------------------------------------------------------------------------
    def _alive(self, c: int, contracts: Sequence[str] | None = None) -> pd.DataFrame:
        ib = self.ib
        d = ib[(ib["inst"] <= c) & (ib["ret"].isna() | (ib["ret"] > c))]
        if contracts:
            d = d[d["contract"].isin(list(contracts))]
        return d

    def _repairs_ahead(self, c: int, horizon: int) -> pd.DataFrame:
        """Repair and part-replacement tickets of a device opened in ``(c, c + horizon]``."""
        t = self.tickets
        return t[
            t["kind"].isin(REPAIRS)
            & t["device_id"].notna()
            & (t["day"] > c)
            & (t["day"] <= c + horizon)
        ]

    # -- account-side builders (one cutoff) ------------------------------------------------------
    def account_side(
        self, c: int, s: dict[str, dict[str, Any]], names: set[str]
    ) -> dict[str, pd.DataFrame]:
        A, AC = ["partner_id", "account_id"], ["partner_id", "account_id", "category"]
        out: dict[str, pd.DataFrame] = {}
        st = self.st[self.st["day"] <= c]
        if "ib_composition" in names and hasattr(self, "ib"):
            out["ib_composition"] = self.ib_composition(c, s["ib_composition"])
        if "ib_cat_age" in names and hasattr(self, "ib"):
            out["ib_cat_age"] = self.ib_cat_age(c, s["ib_cat_age"])
        if "ib_warranty_extension" in names and hasattr(self, "ib"):
            out["ib_warranty_extension"] = self.ib_warranty_extension(c, s["ib_warranty_extension"])
        if "st_device_units" in names:
            d = st[st["category"].isin(DEVICE_CATEGORIES)]
            cols = {}
            for w in s["st_device_units"]["windows"]:
                for cat in DEVICE_CATEGORIES:
                    x = d[(d["day"] > c - w) & (d["category"] == cat)]
                    cols[f"st_{cat}_units_sum_{w}d"] = x.groupby(A)["quantity"].sum()
            idx = d[d["day"] > c - max(s["st_device_units"]["windows"])].groupby(A).size().index
            out["st_device_units"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        if "product_category" in names:
            cats = sorted(self.products[self.products["day"] <= c]["category"].unique())
            out["product_category"] = pd.DataFrame({"category": cats, "product_category": cats})
        if "account_profile" not in names:
            return out
        a = self.accounts[self.accounts["first_day"] <= c]
        out["account_profile"] = a[A].assign(
            industry=a["industry"],
            employee_band=a["employee_band"],
            country=a["country"],
            partner_track=a["partner_track"],
            account_tenure_days=(c - a["first_day"]).astype("int64"),
        )

        def sums(keys: list[str], prefix: str, windows: Sequence[int], money: bool) -> pd.DataFrame:
            parts = []
            for w in windows:
                x = st[st["day"] > c - w]
                g = x.groupby(keys)
                cols = {
                    f"{prefix}_revenue_sum_{w}d": g["net_amount"].sum(),
                    f"{prefix}_units_sum_{w}d": g["quantity"].sum(),
                    f"{prefix}_lines_count_{w}d": g.size(),
                    f"{prefix}_skus_distinct_{w}d": g["sku"].nunique(),
                    f"{prefix}_returns_count_{w}d": g["quantity"].apply(
                        lambda q: int((q < 0).sum())
                    ),
                }
                if not money:
                    del cols[f"{prefix}_revenue_sum_{w}d"]
                parts.append(pd.DataFrame(cols))
            return pd.concat(parts, axis=1).reset_index()

        cs = s["st_cat_window_sums"]
        out["st_cat_window_sums"] = sums(AC, "st_cat", cs["windows"], cs.get("money", True))
        w = s["st_window_sums"]["windows"]
        sw = sums(A, "st", w, s["st_window_sums"].get("money", True))
        top = max(w)
        buys = st[(st["day"] > c - top) & (st["quantity"] > 0)]
        cats = buys.groupby(A)["category"].nunique().rename(f"st_categories_distinct_{top}d")
        out["st_window_sums"] = sw.merge(cats.reset_index(), on=A, how="left")
        b = st[st["quantity"] > 0]
        if "st_cat_rhythm" in names:
            w, h = s["st_cat_rhythm"].get("window", 730), s["st_cat_rhythm"].get("horizon", 90)
            x = b[b["day"] > c - w]
            g = x.groupby(AC)["day"]
            first, last, n = g.min(), g.max(), g.nunique()
            interval = ((last - first).astype("float64") / (n - 1)).where(n >= 2)
            ly = x[(x["day"] > c - 365) & (x["day"] <= c - 365 + h)]
            out["st_cat_rhythm"] = pd.DataFrame(
                {
                    f"st_cat_purchase_interval_mean_days_{w}d": interval,
                    f"st_cat_overdue_ratio_{w}d": (c - last).astype("float64") / interval,
                    f"st_cat_buys_count_last_year_next_{h}d": ly.groupby(AC)
                    .size()
                    .reindex(interval.index),
                }
            ).reset_index()
        out["days_since_last_purchase_cat"] = (
            (c - b.groupby(AC)["day"].max()).rename("days_since_last_purchase_cat").reset_index()
        )
        out["days_since_last_purchase"] = (
            (c - b.groupby(A)["day"].max()).rename("days_since_last_purchase").reset_index()
        )
        win = s["st_channel_share"]["window"]
        x = st[st["day"] > c - win]
        n = x.groupby(A).size()
        share = pd.DataFrame(
            {
                f"st_channel_{ch}_share_{win}d": x[x["channel"] == ch]
                .groupby(A)
                .size()
                .reindex(n.index, fill_value=0)
                / n
                for ch in CHANNELS
            }
        )
        out["st_channel_share"] = share.reset_index()
        if hasattr(self, "intent"):
            it = self.intent[self.intent["end_day"] <= c]
            weeks = s["intent_cat_sums"]["weeks"]
            ic = it[it["category"].notna()]
            out["intent_cat_sums"] = pd.concat(
                {
                    f"intent_cat_intensity_sum_{n_}w": ic[ic["end_day"] > c - 7 * n_]
                    .groupby(AC)["intensity"]
                    .sum()
                    for n_ in weeks
                },
                axis=1,
            ).reset_index()
            if "intent_cat_run" in names:
                r = self.intent_runs
                last = r[r["end_day"] <= c].groupby(AC).tail(1)
                out["intent_cat_run"] = last[AC].assign(
                    intent_cat_days_since_signal=c - last["end_day"],
                    intent_cat_run_weeks=(last["end_day"] - last["run_start"]) // 7 + 1,
                    intent_cat_run_intensity_last=last["intensity"],
                    intent_cat_run_intensity_total=last["run_total"],
                )
            weeks = s["intent_sums"]["weeks"]
            cols = {}
            for n_ in weeks:
                x = it[it["end_day"] > c - 7 * n_]
                cols[f"intent_intensity_sum_{n_}w"] = x.groupby(A)["intensity"].sum()
                cols[f"intent_security_intensity_sum_{n_}w"] = (
                    x[x["topic"] == "security"].groupby(A)["intensity"].sum()
                )
            x = it[it["end_day"] > c - 7 * max(weeks)]
            cols[f"intent_topics_distinct_{max(weeks)}w"] = (
                x[x["intensity"] > 0].groupby(A)["topic"].nunique()
            )
            out["intent_sums"] = pd.concat(cols, axis=1).reset_index()
        if hasattr(self, "opps"):
            o = self.opps[self.opps["created"] <= c]
            is_open = o["closed"].isna() | (o["closed"] > c)
            money = s["opportunity_counts"].get("money", True)
            cols = {"opp_open_count": o[is_open].groupby(A).size()}
            if money:
                cols["opp_open_amount_sum"] = o[is_open].groupby(A)["amount"].sum()
            for w in s["opportunity_counts"]["windows"]:
                cr = o[o["created"] > c - w]
                cl = o[~is_open & (o["closed"] > c - w)]
                cols[f"opp_created_count_{w}d"] = cr.groupby(A).size()
                cols[f"opp_registered_count_{w}d"] = cr[cr["deal_registered"]].groupby(A).size()
                cols[f"opp_won_count_{w}d"] = cl[cl["stage"] == "won"].groupby(A).size()
                cols[f"opp_lost_count_{w}d"] = cl[cl["stage"] == "lost"].groupby(A).size()
                if money:
                    cols[f"opp_won_amount_sum_{w}d"] = (
                        cl[cl["stage"] == "won"].groupby(A)["amount"].sum()
                    )
            idx = o.groupby(A).size().index
            df = pd.concat({k: v.reindex(idx) for k, v in cols.items()}, axis=1)
            df["days_since_last_opportunity"] = c - o.groupby(A)["created"].max()
            out["opportunity_counts"] = df.reset_index()
        if hasattr(self, "tickets"):
            t = self.tickets[self.tickets["day"] <= c]
            op = t[t["closed"].isna() | (t["closed"] > c)]
            cols = {"svc_open_count": op.groupby(A).size()}
            for w in s["svc_account_counts"]["windows"]:
                x = t[t["day"] > c - w]
                cols[f"svc_tickets_count_{w}d"] = x.groupby(A).size()
                cols[f"svc_incident_count_{w}d"] = x[x["kind"] == "incident"].groupby(A).size()
                cols[f"svc_repair_count_{w}d"] = x[x["kind"].isin(REPAIRS)].groupby(A).size()
            recent = t[t["day"] > c - max(s["svc_account_counts"]["windows"])]
            idx = pd.concat([op, recent]).groupby(A).size().index
            out["svc_account_counts"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        return out

    def ib_composition(self, c: int, s: dict[str, Any]) -> pd.DataFrame:
        A = ["partner_id", "account_id"]
        ib = self.ib[self.ib["inst"] <= c]
        alive = ib[ib["ret"].isna() | (ib["ret"] > c)]
        age = (c - alive["inst"]).astype("float64")
        cols = {
            "ib_devices_count": alive.groupby(A).size(),
            **{
                f"ib_{cat}_count": alive[alive["device_category"] == cat].groupby(A).size()
                for cat in DEVICE_CATEGORIES
            },
            "ib_device_age_mean_days": age.groupby([alive[k] for k in A]).mean(),
            "ib_device_age_max_days": age.groupby([alive[k] for k in A]).max(),
        }
        for w in s["warranty_windows"]:
            x = alive[(alive["wend"] > c) & (alive["wend"] <= c + w)]
            cols[f"ib_warranty_ending_count_next_{w}d"] = x.groupby(A).size()
        for k in CONTRACTS:
            cols[f"ib_contract_{k}_count"] = alive[alive["contract"] == k].groupby(A).size()
        rw = s["retired_window"]
        r = ib[ib["ret"].notna() & (ib["ret"] <= c) & (ib["ret"] > c - rw)]
        cols[f"ib_retired_count_{rw}d"] = r.groupby(A).size()
        idx = ib.groupby(A).size().index
        return pd.concat({k: v.reindex(idx) for k, v in cols.items()}, axis=1).reset_index()

    def ib_cat_age(self, c: int, s: dict[str, Any]) -> pd.DataFrame:
        A = ["partner_id", "account_id"]
        years = s.get("older_than_years", (4, 5, 6))
        ib = self.ib[self.ib["inst"] <= c]
        idx = ib.groupby(A).size().index
        alive = ib[ib["ret"].isna() | (ib["ret"] > c)]
        age = (c - alive["inst"]).astype("float64")
        parts = []
        for cat in DEVICE_CATEGORIES:
            x = alive[alive["device_category"] == cat]
            a = age[x.index]
            by = [x[k] for k in A]
            cols = {
                "ib_cat_devices_count": x.groupby(A).size(),
                "ib_cat_device_age_mean_days": a.groupby(by).mean(),
                "ib_cat_device_age_max_days": a.groupby(by).max(),
                **{
                    f"ib_cat_devices_over_{n}y_count": x[a > 365.25 * n].groupby(A).size()
                    for n in years
                },
            }
            df = pd.concat({k: v.reindex(idx) for k, v in cols.items()}, axis=1)
            for k in cols:
                if k.endswith("_count"):
                    df[k] = df[k].fillna(0).astype("int64")
            parts.append(df.reset_index().assign(category=cat))
        return pd.concat(parts, ignore_index=True)

    def ib_warranty_extension(self, c: int, s: dict[str, Any]) -> pd.DataFrame:
        A = ["partner_id", "account_id"]
        win, h, lb = s.get("window", 90), s.get("horizon", 90), s.get("lookback", 730)
        ib = self.ib[self.ib["inst"] <= c]
        idx = ib.groupby(A).size().index
        st = self.st
        lines = st[(st["category"] == "warranty") & (st["quantity"] > 0) & (st["day"] <= c)]
        lines = lines[["partner_id", "account_id", "sku", "day"]].merge(
            self.products[["sku", "family"]], on="sku"
        )
        d = ib[ib["wend"].notna()]
        m = d[[*A, "device_id", "family", "wend"]].merge(lines, on=[*A, "family"])
        m = m[(m["day"] >= m["wend"] - win) & (m["day"] < m["wend"])]
        hit = pd.MultiIndex.from_frame(m[["partner_id", "device_id"]])
        extended = pd.MultiIndex.from_frame(d[["partner_id", "device_id"]]).isin(hit)
        lo = np.maximum(d["wend"] - win, c + 1)
        hi = np.minimum(d["wend"] - 1, c + h)
        alive = d["ret"].isna() | (d["ret"] > c)
        due = d[alive & ~extended & (hi >= lo)]
        overlap = ((hi - lo + 1).astype("float64") / win)[due.index]
        ended = (
            (d["wend"] <= c) & (d["wend"] > c - lb) & (d["ret"].isna() | (d["ret"] >= d["wend"]))
        )
        cols = {
            f"ib_warranty_due_count_next_{h}d": due.groupby(A).size(),
            f"ib_warranty_due_overlap_sum_next_{h}d": overlap.groupby([due[k] for k in A]).sum(),
            f"ib_warranty_ended_count_{lb}d": d[ended].groupby(A).size(),
            f"ib_warranty_extended_count_{lb}d": d[ended & extended].groupby(A).size(),
        }
        df = pd.concat({k: v.reindex(idx) for k, v in cols.items()}, axis=1).fillna(0)
        n, e = df[f"ib_warranty_ended_count_{lb}d"], df[f"ib_warranty_extended_count_{lb}d"]
        df[f"ib_warranty_extended_rate_{lb}d"] = (e / n).where(n > 0)
        return df.reset_index().assign(category="warranty")

    # -- device-side builders (one cutoff) ---------------------------------------------------------
    def device_side(
        self, c: int, s: dict[str, dict[str, Any]], names: set[str]
    ) -> dict[str, pd.DataFrame]:
        D = ["partner_id", "device_id"]
        out: dict[str, pd.DataFrame] = {}
        if "device_profile" in names:
            fam = self.products[
                self.products["category"].isin(DEVICE_CATEGORIES) & (self.products["day"] <= c)
            ]
            fam = fam.groupby("family")["day"].min().rename("family_launched").reset_index()
            d = self._alive(c).merge(fam, on="family", how="left")
            pred = self.ib[self.ib["replaced_by"].notna() & (self.ib["ret"] <= c)]
            has = set(zip(pred["partner_id"], pred["replaced_by"], strict=True))
            out["device_profile"] = pd.DataFrame(
                {
                    "partner_id": d["partner_id"],
                    "device_id": d["device_id"],
                    "contract": d["contract"],
                    "family": d["family"],
                    "device_category": d["device_category"],
                    "device_list_price": d["list_price"],
                    "device_age_days": c - d["inst"],
                    "days_to_warranty_end": d["wend"] - c,
                    "is_under_warranty": (d["wend"].notna() & (d["wend"] > c)).astype(bool),
                    "is_replacement": [
                        (p, i) in has for p, i in zip(d["partner_id"], d["device_id"], strict=True)
                    ],
                    "family_age_days": c - d["family_launched"],
                }
            )
        if "ib_retired_age" in names:
            ib = self.ib
            r = ib[ib["ret"].notna() & (ib["ret"] <= c) & ib["device_category"].notna()]
            k = ["partner_id", "account_id", "device_category"]
            g = (
                (r["ret"] - r["inst"])
                .astype("float64")
                .groupby([r[x] for x in k])
                .agg(["mean", "size"])
                .reset_index()
            )
            d = self._alive(c).merge(g, on=k)
            age = (c - d["inst"]).astype("float64")
            out["ib_retired_age"] = pd.DataFrame(
                {
                    "partner_id": d["partner_id"],
                    "device_id": d["device_id"],
                    "ib_retired_age_mean_days": d["mean"],
                    "ib_retired_devices_count": d["size"].astype("int64"),
                    "device_age_vs_retired_age": (age / d["mean"]).where(d["mean"] > 0),
                }
            )
        if "telemetry_pages" in names or "telemetry_pages_vs_family" in names:
            pg = self.pages[(self.pages["day"] <= c) & self.pages["delta"].notna()]
            ws = s.get("telemetry_pages", {}).get("windows", (7, 30, 90))
            cols = {}
            for w in ws:
                x = pg[pg["day"] > c - w]
                g = x.groupby(D)
                cols[f"telemetry_pages_sum_{w}d"] = g["delta"].sum()
                gap = g["gap"].sum()
                cols[f"telemetry_pages_per_day_mean_{w}d"] = (
                    cols[f"telemetry_pages_sum_{w}d"] / gap
                ).where(gap > 0)
            idx = (
                self.pages[(self.pages["day"] <= c) & (self.pages["day"] > c - max(ws))]
                .groupby(D)
                .size()
                .index
            )
            df = pd.concat({k: v.reindex(idx) for k, v in cols.items()}, axis=1)
            short, long = sorted(ws)[-2], max(ws)
            lg = df[f"telemetry_pages_per_day_mean_{long}d"]
            df[f"telemetry_pages_trend_{short}d_vs_{long}d"] = (
                df[f"telemetry_pages_per_day_mean_{short}d"] / lg
            ).where(lg > 0)
            out["telemetry_pages"] = df.reset_index()
            if "telemetry_pages_vs_family" in names:
                w = s["telemetry_pages_vs_family"]["window"]
                rel = self.use_vs_family(self.pages, c, w)
                out["telemetry_pages_vs_family"] = rel.rename(
                    f"telemetry_pages_vs_family_{w}d"
                ).reset_index()
        if "telemetry_health" in names:
            ws = s["telemetry_health"]["windows"]
            h = self.health[(self.health["day"] <= c) & (self.health["day"] > c - max(ws))]
            h = h.assign(x=(h["day"] - c).astype("float64"), y=h["value"])
            cols = {}
            for name, metric in HEALTH.items():
                m = h[h["metric"] == metric].sort_values("observed_at")
                cols[f"telemetry_{name}_health_last"] = m.groupby(D)["value"].last()
            for name, metric in HEALTH.items():
                m = h[h["metric"] == metric]
                for w in ws:
                    x = m[m["day"] > c - w]
                    cols[f"telemetry_{name}_health_slope_{w}d"] = x.groupby(D)[["x", "y"]].apply(
                        _ols
                    )
            idx = h.groupby(D).size().index
            out["telemetry_health"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        if "device_event_counts" in names:
            se = s["device_event_counts"]
            ws, prefixes = se["windows"], se.get("code_prefixes", ())
            ev = self.events[(self.events["day"] <= c) & (self.events["day"] > c - max(ws))]
            cols = {}
            for w in ws:
                x = ev[ev["day"] > c - w]
                cols[f"dev_events_count_{w}d"] = x.groupby(D).size()
                for sev in SEVERITIES:
                    cols[f"dev_events_{sev}_count_{w}d"] = x[x["severity"] == sev].groupby(D).size()
                for p in prefixes:
                    cols[f"dev_events_prefix_{_slug(p)}_count_{w}d"] = (
                        x[x["prefix"] == p].groupby(D).size()
                    )
                if prefixes:
                    cols[f"dev_events_prefix_other_count_{w}d"] = (
                        x[~x["prefix"].isin(list(prefixes))].groupby(D).size()
                    )
            idx = ev.groupby(D).size().index
            out["device_event_counts"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        if "device_event_bursts" in names:
            ws = s["device_event_bursts"]["windows"]
            ev = self.events[self.events["day"] <= c]
            daily = ev.groupby([*D, "day"]).size().rename("n").reset_index()
            cols = {}
            for w in ws:
                x = daily[daily["day"] > c - w]
                cols[f"dev_events_daily_count_max_{w}d"] = x.groupby(D)["n"].max()
            err = ev[ev["severity"] == "error"]
            cols["days_since_last_error_event"] = c - err.groupby(D)["day"].max()
            idx = (
                daily[daily["day"] > c - max(ws)]
                .groupby(D)
                .size()
                .index.union(err.groupby(D).size().index)
            )
            out["device_event_bursts"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        if "svc_device_counts" in names:
            sd = s["svc_device_counts"]
            t = self.tickets[self.tickets["device_id"].notna() & (self.tickets["day"] <= c)]
            cw = sd.get("component_window", 365)
            top = max(*sd["windows"], cw)
            recent = t[t["day"] > c - top]
            cols = {}
            for w in sd["windows"]:
                x = recent[recent["day"] > c - w]
                for k in sd["kinds"]:
                    cols[f"svc_dev_{_slug(k)}_count_{w}d"] = x[x["kind"] == k].groupby(D).size()
            x = recent[recent["day"] > c - cw]
            for comp in sd.get("components", ()):
                cols[f"svc_dev_component_{_slug(comp)}_count_{cw}d"] = (
                    x[x["component"] == comp].groupby(D).size()
                )
            rep = t[t["kind"].isin(REPAIRS)]
            cols["days_since_last_repair"] = c - rep.groupby(D)["day"].max()
            idx = recent.groupby(D).size().index.union(rep.groupby(D).size().index)
            out["svc_device_counts"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        if "svc_device_recency" in names:
            t = self.tickets[self.tickets["device_id"].notna() & (self.tickets["day"] <= c)]
            cols = {
                f"days_since_last_{_slug(k)}": c - t[t["kind"] == k].groupby(D)["day"].max()
                for k in s["svc_device_recency"]["kinds"]
            }
            idx = t[t["kind"].isin(list(s["svc_device_recency"]["kinds"]))].groupby(D).size().index
            out["svc_device_recency"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        if "component_repairs" in names:
            sc = s["component_repairs"]
            comps, lookback = sc["components"], sc.get("lookback", 365)
            t = self.tickets
            rep = t[
                t["device_id"].notna()
                & t["kind"].isin(REPAIRS)
                & t["component"].isin(list(comps))
                & (t["day"] <= c)
            ]
            last = rep.groupby([*D, "component"])["day"].max().rename("repaired").reset_index()
            ev = self.events[(self.events["day"] <= c) & (self.events["day"] > c - lookback)]
            part = dict(zip(sc["code_prefixes"], comps, strict=True))
            ev = ev.assign(component=ev["prefix"].map(part)).dropna(subset=["component"])
            ev = ev.merge(last, on=[*D, "component"], how="left")
            ev = ev[ev["repaired"].isna() | (ev["day"] > ev["repaired"])]
            cols = {}
            for comp in comps:
                cols[f"dev_events_{_slug(comp)}_count_since_repair_{lookback}d"] = (
                    ev[ev["component"] == comp].groupby(D).size()
                )
            for comp in comps:
                cols[f"days_since_{_slug(comp)}_repair"] = (
                    c - last[last["component"] == comp].set_index(D)["repaired"]
                )
            idx = ev.groupby(D).size().index.union(last.groupby(D).size().index)
            out["component_repairs"] = pd.concat(
                {k: v.reindex(idx) for k, v in cols.items()}, axis=1
            ).reset_index()
        return out

    def use_vs_family(self, readings: pd.DataFrame, c: int, w: int) -> pd.Series:
        """A counter's mean daily increment over the ``w`` days to ``c`` per device, relative
        to the mean of its family's devices (``_usage_vs_family``)."""
        D = ["partner_id", "device_id"]
        x = readings[(readings["day"] <= c) & (readings["day"] > c - w) & readings["delta"].notna()]
        g = x.groupby(D)[["delta", "gap"]].sum()
        g = g[g["gap"] > 0]
        g["rate"] = g["delta"] / g["gap"]
        g = g.reset_index().merge(self.ib[[*D, "family"]], on=D)
        g = g[g["family"].notna()]
        g["fam"] = g.groupby("family")["rate"].transform("mean")
        return (g["rate"] / g["fam"]).where(g["fam"] > 0).set_axis(pd.MultiIndex.from_frame(g[D]))

    def component_state(self, c: int, sc: dict[str, Any], spine: pd.DataFrame) -> pd.DataFrame:
        """The row's own component's columns (``component_state``), one row per spine row."""
        K = ["partner_id", "device_id", "component"]
        comps, lookback = sc["components"], sc.get("lookback", 365)
        ws = sc.get("windows", (7, 30, 90))
        t = self.tickets
        rep = t[
            t["device_id"].notna()
            & t["kind"].isin(REPAIRS)
            & t["component"].notna()
            & (t["day"] <= c)
        ]
        last = rep.groupby(K)["day"].max().rename("repaired")
        cols: dict[str, pd.Series] = {"days_since_comp_repair": c - last}
        recent = rep[rep["day"] > c - lookback]
        cols[f"comp_repairs_count_{lookback}d"] = recent.groupby(K).size()
        ev = self.events[(self.events["day"] <= c) & (self.events["day"] > c - max(*ws, lookback))]
        part = dict(zip(sc["code_prefixes"], comps, strict=True))
        ev = ev.assign(component=ev["prefix"].map(part)).dropna(subset=["component"])
        for w in ws:
            cols[f"comp_events_count_{w}d"] = ev[ev["day"] > c - w].groupby(K).size()
        ev = ev.merge(last.reset_index(), on=K, how="left")
        fresh = ev[
            (ev["day"] > c - lookback) & (ev["repaired"].isna() | (ev["day"] > ev["repaired"]))
        ]
        cols[f"comp_events_count_since_repair_{lookback}d"] = fresh.groupby(K).size()
        hw = sc.get("health_window", 60)
        h = self.health[(self.health["day"] <= c) & (self.health["day"] > c - hw)]
        h = h.assign(
            component=h["metric"].str[: -len("_health_pct")],
            x=(h["day"] - c).astype("float64"),
            y=h["value"],
        ).sort_values("observed_at")
        cols["comp_health_last"] = h.groupby(K)["value"].last()
        cols[f"comp_health_slope_{hw}d"] = h.groupby(K)[["x", "y"]].apply(_ols)
        out = spine[K].assign(component_name=spine["component"])
        for name, v in cols.items():
            out = out.merge(v.rename(name).reset_index(), on=K, how="left")
        inst = self.ib.drop_duplicates(["partner_id", "device_id"]).set_index(
            ["partner_id", "device_id"]
        )["inst"]
        dev_age = c - inst.reindex(pd.MultiIndex.from_frame(out[["partner_id", "device_id"]]))
        out["comp_age_days"] = out["days_since_comp_repair"].fillna(
            pd.Series(dev_age.to_numpy(), index=out.index)
        )
        uw = sc.get("use_window", 90)
        pg = self.pages[
            (self.pages["day"] <= c) & (self.pages["day"] > c - uw) & self.pages["delta"].notna()
        ]
        g = pg.groupby(["partner_id", "device_id"])[["delta", "gap"]].sum()
        rate = (g["delta"] / g["gap"]).where(g["gap"] > 0).rename("_rate").reset_index()
        out = out.merge(rate, on=["partner_id", "device_id"], how="left")
        out["comp_use_pages_est"] = out["comp_age_days"] * out.pop("_rate")
        if sc.get("wear_exponent") is not None:
            a, k = float(sc["wear_exponent"]), float(sc.get("failure_shape", 3.0))
            hz = int(sc["horizon"])
            health_day = h[h["value"].notna()].groupby(K)["day"].max().rename("_health_day")
            age = out["comp_age_days"].astype("float64").clip(lower=1.0)
            seen = age.clip(lower=90.0)
            lo = (age - lookback).clip(lower=0.0)
            n = out[f"comp_events_count_since_repair_{lookback}d"].fillna(0).astype("float64")
            wear = ((n + 0.5) * (a + 1) / (seen ** (a + 1) - lo ** (a + 1))) ** (1 / a) * age
            hd = out[K].merge(health_day.reset_index(), on=K, how="left")["_health_day"]
            fresh = (c - hd.to_numpy()) < out["comp_age_days"].to_numpy()
            health = out["comp_health_last"].astype("float64").where(fresh)
            for part, e in zip(
                sc.get("health_components", ()), sc.get("health_exponents", ()), strict=True
            ):
                told = (out["component_name"] == part) & health.notna()
                worn = ((100.0 - health).clip(lower=0.0) / 100.0) ** (1 / float(e))
                wear = wear.where(~told, worn)
            out["comp_warning_rate"] = n / seen.clip(upper=float(lookback))
            out["comp_wear_index"] = wear
            out[f"comp_hazard_index_next_{hz}d"] = wear**k * ((1.0 + hz / seen) ** k - 1.0)
        if sc.get("usage_wear"):
            k, hz = float(sc.get("failure_shape", 3.0)), int(sc["horizon"])
            counters = pd.concat([self.pages[self.cycles.columns], self.cycles])
            rel = self.use_vs_family(counters, c, uw).rename("comp_use_rel").reset_index()
            out = out.merge(rel, on=["partner_id", "device_id"], how="left")
            age = out["comp_age_days"].astype("float64").clip(lower=1.0)
            seen = age.clip(lower=90.0)
            w = out["comp_use_rel"] * age / 365.25
            out["comp_use_wear_index"] = w
            out[f"comp_use_hazard_index_next_{hz}d"] = w**k * ((1.0 + hz / seen) ** k - 1.0)
        if sc.get("season"):
            hz = int(sc["horizon"])
            factor = self.fleet_season(c, hz)
            out[f"fleet_use_next_{hz}d_vs_year"] = factor
            out[f"comp_hazard_index_season_next_{hz}d"] = (
                out[f"comp_hazard_index_next_{hz}d"] * factor
            )
        return out

    def fleet_season(self, c: int, horizon: int) -> float:
        """The fleet's pages a device-day in the ``horizon`` days after ``c - 365`` over those
        of the year to ``c`` (``_fleet_season``); NaN without a year of readings."""
        f = self.fleet_days
        year = f[(f.index > c - 365) & (f.index <= c)]
        nxt = year[year.index <= c - 365 + horizon]
        if (
            len(year) == 0
            or c - year.index.min() < 300  # devices.SEASON_MIN_DAYS
            or nxt["gap"].sum() <= 0
            or year["delta"].sum() <= 0
        ):
            return np.nan
        return float(
            (nxt["delta"].sum() / nxt["gap"].sum()) / (year["delta"].sum() / year["gap"].sum())
        )

    # -- supplies (one cutoff) -------------------------------------------------------------------
    def supply_latest(self, c: int) -> pd.DataFrame:
        s = self.supply[self.supply["day"] <= c]
        return s.groupby(["partner_id", "device_id", "color"], sort=False).tail(1)

    def supply_side(self, c: int, s: dict[str, dict[str, Any]]) -> dict[str, pd.DataFrame]:
        DC = ["partner_id", "device_id", "color"]
        last = self.supply_latest(c)[[*DC, "value"]].rename(columns={"value": "supply_level_last"})
        ch = self.changes[(self.changes["day"] <= c) & (self.changes["day"] > c - 180)]
        ch = ch.sort_values("observed_at").groupby(DC).tail(1)[[*DC, "day", "page_value"]]
        ch = ch.rename(columns={"day": "change_day", "page_value": "change_pages"})
        base = last.merge(ch, on=DC, how="left")
        ws = s["supply_level"]["windows"]
        r = self.supply[(self.supply["day"] <= c) & (self.supply["day"] > c - max(ws))]
        r = r.merge(base[[*DC, "change_day"]], on=DC)
        r = r[r["change_day"].isna() | (r["day"] >= r["change_day"])]
        r = r.assign(x=(r["day"] - c).astype("float64"), y=r["value"])
        for w in ws:
            x = r[r["day"] > c - w]
            sl = x.groupby(DC)[["x", "y"]].apply(_ols).rename(f"supply_level_slope_{w}d")
            base = base.merge(sl.reset_index(), on=DC, how="left")
        pl = self.pages[self.pages["day"] <= c].groupby(["partner_id", "device_id"]).tail(1)
        base = base.merge(
            pl[["partner_id", "device_id", "value"]].rename(columns={"value": "page_last"}),
            on=["partner_id", "device_id"],
            how="left",
        )
        pages = base["page_last"] - base["change_pages"]
        out = base[[*DC, "supply_level_last"]].copy()
        out["days_since_supply_change"] = c - base["change_day"]
        out["pages_since_supply_change"] = pages.where(pages >= 0)
        for w in ws:
            out[f"supply_level_slope_{w}d"] = base[f"supply_level_slope_{w}d"]
        slope = base[f"supply_level_slope_{max(ws)}d"]
        out[f"supply_days_to_empty_linear_{max(ws)}d"] = (base["supply_level_last"] / -slope).where(
            slope < 0
        )
        res = {"supply_level": out}
        if "supply_usage" in s:
            res["supply_usage"] = self.supply_usage(c, s["supply_usage"])
        y = self.family_yields(c).rename(columns={"page_yield": "supply_page_yield_mean"})
        res["supply_yield"] = self.ib[["partner_id", "device_id", "family"]].merge(y, on="family")[
            [*DC, "supply_page_yield_mean"]
        ]
        return res

    def family_yields(self, c: int) -> pd.DataFrame:
        """Per family and colour, the mean rated page yield of the cartridges launched by c."""
        sup = self.products[
            (self.products["category"] == "supplies")
            & self.products["color"].notna()
            & (self.products["day"] <= c)
        ]
        return sup.groupby(["family", "color"])["page_yield"].mean().reset_index()

    def supply_usage(self, c: int, s: dict[str, Any]) -> pd.DataFrame:
        DC = ["partner_id", "device_id", "color"]
        short, long = sorted(s.get("windows", (30, 90)))
        thr = s.get("threshold_pct", 10.0)
        steps = self.steps_first_full if s.get("first_full_as_change", False) else self.steps
        st = steps[(steps["day"] <= c) & (steps["day"] > c - 180)]
        jump = st["value"] - st["prev"] >= 30.0
        since = st[jump].groupby(DC)["observed_at"].max().rename("since").reset_index()
        st = st.merge(since, on=DC, how="left")
        pts = st[
            st["page_value"].notna() & (st["since"].isna() | (st["observed_at"] >= st["since"]))
        ]
        pts = pts.sort_values("observed_at")
        g = pts.groupby(DC)
        first, last = g.head(1).set_index(DC), g.tail(1).set_index(DC)
        df = pd.DataFrame({"v0": first["value"], "p0": first["page_value"]}).join(
            pd.DataFrame({"v1": last["value"], "p1": last["page_value"], "d1": last["page_delta"]})
        )
        df = df.reset_index()
        pl = self.pages[self.pages["day"] <= c].groupby(["partner_id", "device_id"]).tail(1)
        df = df.merge(
            pl[["partner_id", "device_id", "value"]].rename(columns={"value": "now"}),
            on=["partner_id", "device_id"],
            how="left",
        )
        pg = self.pages[
            (self.pages["day"] <= c) & (self.pages["day"] > c - long) & self.pages["delta"].notna()
        ]
        ps = pg[pg["day"] > c - short]
        season = (ps["delta"].sum() / ps["gap"].sum()) / (pg["delta"].sum() / pg["gap"].sum())
        r = ps.groupby(["partner_id", "device_id"])[["delta", "gap"]].sum()
        rl = pg.groupby(["partner_id", "device_id"])[["delta", "gap"]].sum()
        r = r.reindex(rl.index)
        r["per_day"] = (r["delta"] / r["gap"]).where(r["gap"] > 0)
        r["per_day_long"] = (season * rl["delta"] / rl["gap"]).where(rl["gap"] > 0)
        fleet_long = pg["delta"].sum() / pg["gap"].sum()
        r["vs_fleet"] = (rl["delta"] / rl["gap"] / fleet_long).where(
            (rl["gap"] > 0) & (fleet_long > 0)
        )
        df = df.merge(
            r[["per_day", "per_day_long", "vs_fleet"]].reset_index(),
            on=["partner_id", "device_id"],
            how="left",
        )
        at_cutoff = s.get("at_cutoff", False)
        if at_cutoff:
            # days from the latest counter reading in the long window to the end of the day c
            seen = self.pages[(self.pages["day"] <= c) & (self.pages["day"] > c - long)]
            last = seen.groupby(["partner_id", "device_id"])["observed_at"].max()
            last = last[last.index.isin(rl.index)]  # devices with a pace over the window
            u = _seconds(last) / 86400.0
            stale = pd.DataFrame(
                {"stale": c + 1.0 - u, "stale_days": c - np.floor(u - 0.5)}
            ).reset_index()
            df = df.merge(stale, on=["partner_id", "device_id"], how="left")
        share_days = s.get("share_days")
        panel, profile, sums = None, None, None
        if s.get("fleet_panel", False):
            # the same devices throughout the share's history: read within 28 days of its
            # first reading and of the cutoff
            ph = self.pages[
                (self.pages["day"] <= c)
                & (self.pages["day"] > c - share_days - 7)
                & self.pages["delta"].notna()
            ]
            span = ph.groupby(["partner_id", "device_id"])["day"].agg(["min", "max"])
            keep = span[(span["min"] <= ph["day"].min() + 28) & (span["max"] > c - 28)].index
            panel = ph.set_index(["partner_id", "device_id"]).loc[lambda x: x.index.isin(keep)]
            recent = panel[panel["day"] > c - long]
            fleet_long = recent["delta"].sum() / recent["gap"].sum()
        if share_days is not None:
            h = self.pages[
                (self.pages["day"] <= c)
                & (self.pages["day"] > c - share_days)
                & self.pages["delta"].notna()
            ]
            if panel is not None:
                # each reading's days at the panel's pages a device-day over the 7 days to its
                # day; a reading without any panel reading in those days left out
                days = panel.groupby("day")[["delta", "gap"]].sum()
                f = days.reindex(range(c - share_days - 6, c + 1), fill_value=0.0)
                f = f.rolling(7, min_periods=1).sum()
                f_rate = (f["delta"] / f["gap"]).where(f["gap"] > 0)
                h = h.assign(fleet=h["gap"] * f_rate.reindex(h["day"]).to_numpy())
                h = h[h["fleet"].notna()]
                hs = h.groupby(["partner_id", "device_id"])[["delta", "fleet"]].sum()
                share = (hs["delta"] / hs["fleet"]).where(hs["fleet"] > 0)
                if s.get("weekday_profile", False):
                    profile = self.weekday_profile(c)
                    sums = _weekday_sums(profile)
                if s.get("share_by_weekday", False):
                    # each day a reading counts at its day of the week's weight
                    span = h["span"].astype(int)
                    days = 7.0 * (span // 7) + sums[h["wd_end"].astype(int), span % 7]
                    hs = h.assign(fleet=days * f_rate.reindex(h["day"]).to_numpy())
                    hs = hs.groupby(["partner_id", "device_id"])[["delta", "fleet"]].sum()
                    share = (hs["delta"] / hs["fleet"]).where(hs["fleet"] > 0)
            elif s.get("share_by_day", False):
                # each reading's days at the fleet's pages a device-day over the 7 days to its day
                f = self.fleet_days.reindex(range(c - share_days - 6, c + 1), fill_value=0.0)
                f = f.rolling(7, min_periods=1).sum()
                f_rate = (f["delta"] / f["gap"]).where(f["gap"] > 0, 0.0)
                h = h.assign(fleet=h["gap"] * f_rate.reindex(h["day"]).to_numpy())
                hs = h.groupby(["partner_id", "device_id"])[["delta", "fleet"]].sum()
                share = (hs["delta"] / hs["fleet"]).where(hs["fleet"] > 0)
            else:
                hs = h.groupby(["partner_id", "device_id"])[["delta", "gap"]].sum()
                hs = hs[hs["gap"] > 0]
                f_rate = hs["delta"].sum() / hs["gap"].sum()
                share = hs["delta"] / hs["gap"] / f_rate if f_rate > 0 else hs["delta"] * np.nan
            df = df.drop(columns="vs_fleet").merge(
                share.rename("vs_fleet").reset_index(), on=["partner_id", "device_id"], how="left"
            )
        df = df.merge(self.previous_cartridge(c, since, thr, steps), on=DC, how="left")
        used, pages = df["v0"] - df["v1"], df["p1"] - df["p0"]
        per_page = (used / pages).where((pages > 0) & (used > 0))
        rate = per_page
        w = s.get("prev_weight_pct", 0.0)
        if w > 0:
            prev = ((100.0 - thr) / df["cycle_pages"]).where(df["cycle_pages"] > 0)
            pooled = (used + w) / (pages + w / prev)
            rate = pooled.where((pages >= 0) & (used >= 0) & prev.notna(), per_page)
        if s.get("rate_by_fit", False):
            fit = self.use_per_page_fit(c, steps)
            df = df.merge(fit, on=DC, how="left")
            rate = df["fit"].fillna(rate)
        prior = s.get("account_prior", False) and hasattr(self, "ib")
        if prior:
            df = df.merge(self.account_prior(c, fit, share), on=DC, how="left")
            rate = rate.fillna(df["a_rate"])
        level = df["v1"]
        if s.get("step_midpoint", False):
            # the level below the step reading: half the smaller of one display step (the
            # smallest fall seen above the threshold) and the use of the pages in between
            fell = st[(st["prev"] > st["value"]) & (st["value"] > thr)]
            shown = (fell["prev"] - fell["value"]).groupby([fell[k] for k in DC]).min()
            df = df.merge(shown.rename("shown").reset_index(), on=DC, how="left")
            within = rate * df["d1"]
            lag = np.where(
                df["d1"].isna(),
                df["shown"].fillna(0.0),
                np.where(df["shown"].isna() | (within < df["shown"]), within, df["shown"]),
            )
            level = df["v1"] - pd.Series(lag, index=df.index).fillna(0.0) / 2.0
        since_pages = (df["now"] - df["p1"]).where(df["now"] - df["p1"] >= 0)
        left = level - rate * since_pages - thr
        to_go = left.clip(lower=0.0) / rate
        gap_pages = 0.0
        if at_cutoff:
            gap_days = df["stale"]
            if profile is not None:
                # each day the latest reading has not counted at its day of the week's weight
                n = df["stale_days"]
                part = pd.Series(sums[(c + 3) % 7, (n % 7).fillna(0).astype(int)], index=n.index)
                gap_days = 7.0 * (n // 7) + part.where(n.notna())
            gap_pages = (df["per_day_long"] * gap_days).fillna(0.0)
        if at_cutoff:
            to_go = (to_go - gap_pages).where(to_go > gap_pages, to_go * 0.0)
        out = df[DC].copy()
        out["supply_pct_per_kpage_mean_180d"] = 1000.0 * per_page
        out["pages_since_supply_level_fell"] = since_pages
        out["supply_pages_to_threshold_est"] = to_go
        out[f"supply_days_to_threshold_est_{short}d"] = (to_go / df["per_day"]).where(
            df["per_day"] > 0
        )
        out[f"supply_days_to_threshold_est_{long}d_seasonal"] = (to_go / df["per_day_long"]).where(
            df["per_day_long"] > 0
        )
        printed = df["now"] - df["start_pages"]
        by_prev = (df["cycle_pages"] - printed - gap_pages).clip(lower=0.0).where(printed >= 0)
        out["supply_pages_per_cartridge_prev"] = df["cycle_pages"]
        out["supply_pages_to_threshold_by_prev"] = by_prev
        out[f"supply_days_to_threshold_by_prev_{short}d"] = (by_prev / df["per_day"]).where(
            df["per_day"] > 0
        )
        out[f"supply_days_to_threshold_by_prev_{long}d_seasonal"] = (
            by_prev / df["per_day_long"]
        ).where(df["per_day_long"] > 0)
        if "fit" in df:
            out["supply_pct_per_kpage_fit_180d"] = 1000.0 * df["fit"]
        if at_cutoff:
            out["days_since_page_reading"] = df["stale"]
        if s.get("account_prior", False):
            out["supply_pct_per_kpage_account"] = 1000.0 * df["a_rate"] if prior else np.nan
            out["telemetry_pages_vs_fleet_account"] = df["a_share"] if prior else np.nan
        if s.get("calendar", False):
            need = to_go.fillna(by_prev) if s.get("prev_fallback", False) else to_go
            share_now = df["vs_fleet"].fillna(df["a_share"]) if prior else df["vs_fleet"]
            out[f"telemetry_pages_vs_fleet_{share_days or long}d"] = df["vs_fleet"]
            out["supply_days_to_threshold_est_calendar"] = self.days_by_calendar(
                c,
                (need / share_now).to_numpy(float),
                fleet_long,
                self.pages if panel is None else panel,
                profile,
            )
        return out

    def account_prior(self, c: int, fit: pd.DataFrame, share: pd.Series) -> pd.DataFrame:
        """Per device colour, the account's use per page in rated-yield terms over the
        device's yield (the fleet's where the account has none) and the account's share over
        its families' times the device's family's (``a_rate``, ``a_share``)."""
        D, A = ["partner_id", "device_id"], ["partner_id", "account_id"]
        y = self.family_yields(c)
        dev = self.ib[[*A, "device_id", "family"]]
        f = fit[fit["fit"] > 0].merge(dev, on=D).merge(y, on=["family", "color"])
        f["lc"] = np.log(f["fit"] * f["page_yield"])
        cov = f.groupby([*A, "color"])["lc"].mean().reset_index()
        fleet = f.groupby("color")["lc"].mean().rename("lc_fleet").reset_index()
        sh = share[share > 0].rename("vs").reset_index().merge(dev, on=D)
        sh["ls"] = np.log(sh["vs"])
        fam = sh.groupby("family")["ls"].mean().rename("lf").reset_index()
        sh = sh.merge(fam, on="family")
        pace = (sh["ls"] - sh["lf"]).groupby([sh["partner_id"], sh["account_id"]]).mean()
        t = dev.merge(y.rename(columns={"page_yield": "own"}), on="family")
        t = t.merge(cov, on=[*A, "color"], how="left").merge(fleet, on="color", how="left")
        t = t.merge(pace.rename("la").reset_index(), on=A, how="left")
        t = t.merge(fam, on="family", how="left")
        lc = t["lc"].fillna(t["lc_fleet"])
        t["a_rate"] = (np.exp(lc) / t["own"]).where(t["own"] > 0)
        t["a_share"] = np.exp(t["la"].fillna(0.0) + t["lf"].fillna(0.0))
        return t[[*D, "color", "a_rate", "a_share"]]

    @staticmethod
    def use_per_page_fit(c: int, steps: pd.DataFrame) -> pd.DataFrame:
        """Minus the least-squares slope of the level over the page counter through the level
        steps (with a counter, above 0) of the last 180 days, one intercept per cartridge."""
        DC = ["partner_id", "device_id", "color"]
        st = steps[steps["day"] <= c].sort_values("observed_at")
        st = st.assign(
            cart=(st["value"] - st["prev"] >= 30.0)
            .astype(int)
            .groupby([st[k] for k in DC])
            .cumsum()
        )
        st = st[(st["day"] > c - 180) & st["page_value"].notna() & (st["value"] > 0)]
        x, y = st["page_value"].astype(float), st["value"].astype(float)
        g = st.assign(x=x, y=y).groupby([*DC, "cart"])
        per = pd.DataFrame({"n": g.size(), "mx": g["x"].mean(), "my": g["y"].mean()})
        st = st.assign(x=x, y=y).join(per, on=[*DC, "cart"])
        st = st[st["n"] >= 2]
        st = st.assign(
            cxy=(st["x"] - st["mx"]) * (st["y"] - st["my"]), cxx=(st["x"] - st["mx"]) ** 2
        )
        f = st.groupby(DC)[["cxy", "cxx"]].sum()
        fit = (-f["cxy"] / f["cxx"]).where((f["cxx"] > 0) & (f["cxy"] < 0))
        return fit.rename("fit").reset_index()

    @staticmethod
    def days_by_calendar(
        c: int,
        need: np.ndarray,
        fleet_long: float,
        pages: pd.DataFrame,
        profile: np.ndarray | None = None,
    ) -> np.ndarray:
        """Days until the ``pages`` a device-day in the 52 weeks after the cutoff's date a
        year earlier (weeks without readings at ``fleet_long``) add up to ``need``: linearly
        within a week, or day by day at each day of the week's weight in ``profile``."""
        pg = pages[
            pages["delta"].notna() & (pages["day"] > c - 365) & (pages["day"] <= c - 365 + 7 * 52)
        ]
        week = (pg["day"] - (c - 365) - 1) // 7 + 1
        g = pg.groupby(week)[["delta", "gap"]].sum().reindex(range(1, 53))
        rate = (g["delta"] / g["gap"]).where(g["gap"] > 0).fillna(fleet_long).to_numpy(float)
        width, centre, pages_per = 7.0, 0.0, 7.0 * rate
        if profile is not None:
            days = np.arange(1, 7 * 52 + 1)
            width, centre = 1.0, 0.5
            pages_per = np.repeat(rate, 7) * profile[(c + days + 3) % 7]
        hi = np.cumsum(pages_per)
        lo = hi - pages_per
        out = np.full(len(need), 365.0)
        for i, n in enumerate(need):
            if not np.isfinite(n):
                out[i] = np.nan
            elif n <= 0:
                out[i] = 0.0
            else:
                k = np.flatnonzero((n > lo) & (n <= hi))
                if len(k):
                    w = k[0]
                    out[i] = width * w + width * (n - lo[w]) / (hi[w] - lo[w]) + centre
        return out

    def weekday_profile(self, c: int) -> np.ndarray:
        """The fleet's pages on each day of the week (Monday first) over the mean day's, from
        the counter increments of the 364 days to c over the device's mean pages a day over
        them: increments over k + 1 days to a day less those over k days to the day before;
        flat when a day has none."""
        r = self.pages[self.pages["delta"].notna()].rename(columns={"wd_end": "wd"})
        r = r[(r["span"] >= 1) & (r["span"] <= 7) & (r["day"] <= c) & (r["day"] > c - 364)]
        d = r.groupby(["partner_id", "device_id", "span", "wd"])["delta"].agg(["sum", "size"])
        d["days"] = d["size"] * d.index.get_level_values("span")
        dev = d.groupby(level=["partner_id", "device_id"])[["sum", "days"]].sum()
        d = d.join((dev["sum"] / dev["days"]).rename("v"), on=["partner_id", "device_id"])
        d = d[d["v"] > 0]
        d["y"] = d["sum"] / d["v"]
        m = d.groupby(["span", "wd"])[["y", "size"]].sum()
        m["y"] = m["y"] / m["size"]
        est, wt = np.zeros(7), np.zeros(7)
        for (k, b), row in m.iterrows():
            if k == 1:
                e, n = row["y"], row["size"]
            elif (k - 1, (b + 6) % 7) in m.index:
                lo = m.loc[(k - 1, (b + 6) % 7)]
                e, n = row["y"] - lo["y"], min(row["size"], lo["size"])
            else:
                continue
            est[int(b)] += e * n
            wt[int(b)] += n
        if (wt == 0).any():
            return np.ones(7)
        beta = est / wt
        top = beta.max()
        if not top > 0:
            return np.ones(7)
        beta = np.maximum(beta, 0.01 * top)
        return 7.0 * beta / beta.sum()

    def previous_cartridge(
        self, c: int, since: pd.DataFrame, thr: float, steps: pd.DataFrame
    ) -> pd.DataFrame:
        """Pages the cartridge replaced by the current one printed from its change to the
        threshold (the counter interpolated in time at the crossing), and the counter at the
        current change."""
        DC = ["partner_id", "device_id", "color"]
        st = steps
        chg = st[st["value"] - st["prev"] >= 30.0].sort_values("observed_at")
        g = chg.groupby(DC, sort=False)
        chg = chg.assign(p_obs=g["observed_at"].shift(), p_pages=g["page_value"].shift())
        chg = chg.merge(since, on=DC)
        chg = chg[(chg["observed_at"] == chg["since"]) & chg["p_pages"].notna()]
        chg = chg[_days(chg["p_obs"]) > c - 180]
        cross = st[(st["value"] <= thr) & (st["prev"] > thr)][[*DC, "observed_at"]]
        x = chg[[*DC, "observed_at", "p_obs", "p_pages", "page_value"]].merge(
            cross.rename(columns={"observed_at": "a_obs"}), on=DC
        )
        x = x[(x["a_obs"] > x["p_obs"]) & (x["a_obs"] < x["observed_at"])]
        x = x.sort_values("a_obs").groupby(DC, sort=False).head(1)
        x = x.assign(a_day=_days(x["a_obs"]))
        pg = self.pages[["partner_id", "device_id", "observed_at", "day", "value"]].rename(
            columns={"observed_at": "r_obs", "day": "r_day", "value": "r_val"}
        )
        k = x.merge(pg, on=["partner_id", "device_id"])
        k = k[
            (k["r_day"] >= k["a_day"] - 7)
            & (k["r_day"] <= k["a_day"] + 7)
            & (k["r_obs"] <= k["observed_at"])
        ]
        k = k.assign(t=_seconds(k["r_obs"]), a_t=_seconds(k["a_obs"]))
        b = k[k["r_obs"] <= k["a_obs"]].sort_values("r_obs").groupby(DC).tail(1)
        f = k[k["r_obs"] > k["a_obs"]].sort_values("r_obs").groupby(DC).head(1)
        b = b.set_index(DC)[["t", "r_val", "a_t"]]
        f = f.set_index(DC)[["t", "r_val"]]
        at = x.set_index(DC)[["p_pages", "page_value"]].join(b).join(f.add_suffix("_f"))
        frac = (at["a_t"] - at["t"]) / (at["t_f"] - at["t"])
        plain = at["r_val_f"].isna() | (at["r_val_f"] < at["r_val"]) | (at["t_f"] <= at["t"])
        pages_at = np.where(plain, at["r_val"], at["r_val"] + frac * (at["r_val_f"] - at["r_val"]))
        cycle = pd.Series(pages_at, index=at.index) - at["p_pages"]
        return pd.DataFrame(
            {"cycle_pages": cycle.where(cycle > 0), "start_pages": at["page_value"]}
        ).reset_index()

    # -- assembly ----------------------------------------------------------------------------------
    def training_set(self, model: str, cutoffs: Sequence[date]) -> pd.DataFrame:
        from amplify_ml.features.cutoffs import epoch_day
        from amplify_ml.features.graph import REGISTRY
        from amplify_ml.features.spec import load_spec, resolve_horizon

        spec = load_spec(model)
        horizon = spec.horizon_days
        s = {b.name: resolve_horizon(dict(b.settings), horizon) for b in spec.builders}
        names = {b.name for b in spec.builders}
        frames = []
        for cd in cutoffs:
            c = epoch_day(cd)
            if model == "propensity_to_buy":
                keys = ["partner_id", "account_id", "category"]
                a = self.accounts[self.accounts["first_day"] <= c][["partner_id", "account_id"]]
                cats = pd.DataFrame(
                    {
                        "category": sorted(
                            self.products[self.products["day"] <= c]["category"].unique()
                        )
                    }
                )
                spine = a.merge(cats, how="cross")
                parts = self.account_side(c, s, names)
                buys = self.st[
                    (self.st["quantity"] > 0)
                    & (self.st["day"] > c)
                    & (self.st["day"] <= c + horizon)
                ]
                hit = buys[keys].drop_duplicates().assign(label=1)
            elif spec.entity == "device_component_spine":
                keys = ["partner_id", "account_id", "device_id", "component"]
                es = spec.entity_settings
                alive = self._alive(c, es.get("contracts"))
                rows = [
                    alive[alive["device_category"] == cat].assign(component=comp)
                    for comp, cat in zip(es["components"], es["categories"], strict=True)
                ]
                if es.get("other"):
                    rows.append(alive.assign(component=es["other"]))
                spine = pd.concat(rows, ignore_index=True)[keys]
                parts = {**self.account_side(c, s, names), **self.device_side(c, s, names)}
                if "component_state" in names:
                    parts["component_state"] = self.component_state(c, s["component_state"], spine)
                r = self._repairs_ahead(c, horizon)[["partner_id", "device_id", "component"]]
                own = spine[["partner_id", "device_id", "component"]].assign(_own=True)
                r = r.merge(own, on=["partner_id", "device_id", "component"], how="left")
                other = spec.label_settings.get("other", "")
                r["component"] = r["component"].where(r["_own"].notna(), other or None)
                r = r.dropna(subset=["component"])
                hit = r[["partner_id", "device_id", "component"]].drop_duplicates()
                hit = hit.assign(label=1)
            elif model in ("refresh_due", "device_failure"):
                keys = ["partner_id", "account_id", "device_id"]
                spine = self._alive(c, spec.entity_settings.get("contracts"))[keys]
                parts = {**self.account_side(c, s, names), **self.device_side(c, s, names)}
                if model == "refresh_due":
                    r = self.ib[(self.ib["ret"] > c) & (self.ib["ret"] <= c + horizon)]
                else:
                    r = self._repairs_ahead(c, horizon)
                hit = r[["partner_id", "device_id"]].drop_duplicates().assign(label=1)
            else:
                keys = ["partner_id", "account_id", "device_id", "color"]
                thr = spec.label_settings.get("threshold_pct", 10.0)
                last = self.supply_latest(c)
                last = last[last["value"] > thr][["partner_id", "device_id", "color"]]
                spine = last.merge(
                    self._alive(c)[["partner_id", "account_id", "device_id"]],
                    on=["partner_id", "device_id"],
                )[keys]
                parts = {**self.supply_side(c, s), **self.device_side(c, s, names)}
                low = self.supply[
                    (self.supply["value"] <= thr)
                    & (self.supply["day"] > c)
                    & (self.supply["day"] <= c + horizon)
                ]
                first = (
                    low.groupby(["partner_id", "device_id", "color"])["day"]
                    .min()
                    .rename("label")
                    .reset_index()
                )
                hit = first.assign(label=(first["label"] - c).astype("float64"))
            out = spine.copy()
            for b in spec.builders:
                if b.name in parts:
                    on = list(REGISTRY[b.name].keys)
                    out = out.merge(parts[b.name], on=on, how="left")
            lab_on = (
                ["partner_id", "device_id", "color"]
                if model == "consumable_depletion"
                else (keys if model == "propensity_to_buy" else ["partner_id", "device_id"])
            )
            if "component" in keys:
                lab_on = ["partner_id", "device_id", "component"]
            out = out.merge(hit, on=lab_on, how="left")
            if model == "consumable_depletion":
                out["censored"] = out["label"].isna()
            else:
                out["label"] = out["label"].fillna(0).astype("int64")
            out.insert(len(keys), "cutoff", pd.Timestamp(cd))
            frames.append(out)
        return pd.concat(frames, ignore_index=True)


# -- the benchmark -------------------------------------------------------------------------------


def _ours(
    lake_root: str,
    cutoffs: list[str],
    memory_limit: str,
    out_dir: str,
    write: bool = True,
    engine: str = "duckdb",
) -> dict[str, Any]:
    """Our four training sets; written to ``out_dir`` (as ``<engine>-<model>.parquet``) only
    when something will compare them.

    ``build_seconds`` runs from opening the lake to the last training set: the imports before
    it and the writes for the comparison are timed apart (the baseline's likewise). On Spark
    (``engine="spark"``: a local[2] session), so is starting the session (``session_seconds``)."""
    import warnings

    t0 = time.perf_counter()
    import ibis.backends.duckdb  # noqa: F401 - Ibis loads its backend at the first connection

    from amplify_ml.features import FeatureBuilder
    from amplify_ml.lake import Lake

    imports = time.perf_counter() - t0
    warnings.simplefilter("ignore")
    rows = {}
    seconds = {}
    writes = 0.0
    extra: dict[str, Any] = {}
    session = None
    if engine == "spark":
        from amplify_ml.features import spark_session

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        t0 = time.perf_counter()
        session = spark_session("local[2]", shuffle_partitions=2)
        session.sparkContext.setLogLevel("ERROR")
        extra["session_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    with FeatureBuilder(
        Lake(lake_root), memory_limit=memory_limit, engine=engine, spark=session
    ) as fb:
        for m in MODELS:
            t = time.perf_counter()
            df, _ = fb.training_set(m, cutoffs=cutoffs)
            seconds[m] = round(time.perf_counter() - t, 2)
            rows[m] = len(df)
            if write:
                t = time.perf_counter()
                df.to_parquet(Path(out_dir) / f"{engine}-{m}.parquet")
                writes += time.perf_counter() - t
            del df
    build = round(time.perf_counter() - t0 - writes, 2)
    if session is not None:
        session.stop()
    return {
        "rows": rows,
        "seconds_per_model": seconds,
        "build_seconds": build,
        "import_seconds": round(imports, 2),
        "write_seconds": round(writes, 2),
        **extra,
    }


def _baseline(lake_root: str, cutoffs: list[str], out_dir: str) -> dict[str, Any]:
    """The pandas baseline's four training sets, written to ``out_dir``; timed as
    :func:`_ours` (``load_seconds``, reading the lake into pandas, is part of the build)."""
    t0 = time.perf_counter()
    from amplify_ml.features.cutoffs import as_cutoffs

    imports = time.perf_counter() - t0  # pandas and numpy came with this module
    t0 = time.perf_counter()
    pf = PandasFeatures(lake_root)
    load = round(time.perf_counter() - t0, 2)
    rows, seconds = {}, {}
    writes = 0.0
    for m in MODELS:
        t = time.perf_counter()
        df = pf.training_set(m, as_cutoffs(cutoffs))
        seconds[m] = round(time.perf_counter() - t, 2)
        rows[m] = len(df)
        t = time.perf_counter()
        df.to_parquet(Path(out_dir) / f"pandas-{m}.parquet")
        writes += time.perf_counter() - t
    return {
        "rows": rows,
        "seconds_per_model": seconds,
        "load_seconds": load,
        "build_seconds": round(time.perf_counter() - t0 - writes, 2),
        "import_seconds": round(imports, 2),
        "write_seconds": round(writes, 2),
    }


def compare(ours: pd.DataFrame, baseline: pd.DataFrame, keys: list[str]) -> None:
    """Raise AssertionError unless the two training sets hold the same values."""
    missing = set(ours.columns) ^ set(baseline.columns)
    assert not missing, f"columns differ: {sorted(missing)}"
    b = baseline[list(ours.columns)].sort_values([*keys, "cutoff"]).reset_index(drop=True)
    a = ours.reset_index(drop=True)
    assert len(a) == len(b), f"rows differ: {len(a)} vs {len(b)}"
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            xv = pd.to_numeric(x, errors="coerce").to_numpy(float)
            yv = pd.to_numeric(y, errors="coerce").to_numpy(float)
            ok = np.isclose(xv, yv, rtol=1e-9, atol=1e-9, equal_nan=True)
            if "_count" in c or "_sum" in c or "_distinct" in c:  # zero-filled on our side
                ok |= np.isnan(yv) & (xv == 0)
            assert ok.all(), f"column {c}: {int((~ok).sum())} values differ"
        elif x.dtype.kind in "iub":
            yv = y.fillna(0 if x.dtype.kind != "b" else False).astype(x.dtype)
            assert (x.to_numpy() == yv.to_numpy()).all(), f"column {c} differs"
        else:
            xs = x.astype("object").where(x.notna(), None)
            ys = y.astype("object").where(y.notna(), None)
            assert (xs.astype(str) == ys.astype(str)).all(), f"column {c} differs"


def run(
    scale: str,
    workspace: Path,
    *,
    seed: int = 7,
    memory_limit: str = "3GB",
    baseline: bool | None = None,
    repeat: int = 1,
    spark: bool = False,
) -> dict[str, Any]:
    """Build the four training sets at 12 monthly cutoffs on the world at ``scale``, time them
    against the pandas baseline (skipped at medium and large: it runs out of memory), check
    equal output, print the figures and write them to ``<workspace>/bench/features-<scale>.json``.

    With ``spark``, the same four on Spark (local[2], after the others: a JVM beside them would
    slow them down), checked equal to DuckDB's. Peak memory there is the Python driver's; the
    JVM's is its own (``spark.driver.memory``)."""
    from amplify_ml.bench import world_lake
    from amplify_ml.features.cutoffs import monthly

    base = workspace / "bench"
    lake_root = world_lake(base, scale, seed, memory_limit)[1].root
    cutoffs = [c.isoformat() for c in monthly(*CUTOFFS)]
    telemetry_rows = _rows(lake_root, "telemetry")
    load_before = os.getloadavg()
    out_dir = base / f"features-out-{scale}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    run_baseline = baseline if baseline is not None else scale in ("tiny", "small")
    ours = _best(
        repeat, _ours, str(lake_root), cutoffs, memory_limit, str(out_dir), run_baseline or spark
    )
    result: dict[str, Any] = {
        "benchmark": "features",
        "scale": scale,
        "cutoffs": cutoffs,
        "telemetry_rows": telemetry_rows,
        "cpus": os.cpu_count(),
        "memory_limit": memory_limit,
        "repeat": repeat,
        "ours": {
            **ours["result"],
            "seconds": ours["result"]["build_seconds"],
            "process_seconds": round(ours["seconds"], 2),
            "peak_mib": round(ours["peak_mib"]),
        },
    }
    if run_baseline:
        bl = _best(repeat, _baseline, str(lake_root), cutoffs, str(out_dir))
        result["pandas"] = {
            **bl["result"],
            "seconds": bl["result"]["build_seconds"],
            "process_seconds": round(bl["seconds"], 2),
            "peak_mib": round(bl["peak_mib"]),
        }
        _compare_all(out_dir, "pandas")
        result["equal_output"] = True
        result["speedup_vs_pandas"] = round(
            result["pandas"]["seconds"] / result["ours"]["seconds"], 1
        )
        result["speedup_vs_pandas_whole_process"] = round(bl["seconds"] / ours["seconds"], 1)
        result["memory_ratio_vs_pandas"] = round(ours["peak_mib"] / bl["peak_mib"], 2)
    elif baseline is False:
        result["pandas"] = {"skipped": "not run: --no-baseline"}
    else:
        result["pandas"] = {
            "skipped": f"not run at this scale: expected to run out of memory (it holds all "
            f"{telemetry_rows:,} telemetry rows in pandas, several copies of them)"
        }
    if spark:
        result["spark"] = _spark_side(
            repeat, str(lake_root), cutoffs, memory_limit, out_dir, result["ours"]["seconds"]
        )
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    shutil.rmtree(out_dir, ignore_errors=True)
    path = write_result(base / f"features-{scale}.json", result)
    o = result["ours"]
    print(
        f"features {scale}: 4 training sets x {len(cutoffs)} cutoffs in {o['seconds']} s, "
        f"peak {o['peak_mib']} MiB ({', '.join(f'{k} {v} s' for k, v in o['seconds_per_model'].items())})"
    )
    if run_baseline:
        b = result["pandas"]
        print(
            f"pandas baseline: {b['seconds']} s, peak {b['peak_mib']} MiB; output equal; "
            f"{result['speedup_vs_pandas']}x faster, {result['memory_ratio_vs_pandas']}x the memory "
            f"(whole processes with imports and writes: {o['process_seconds']} s vs "
            f"{b['process_seconds']} s, {result['speedup_vs_pandas_whole_process']}x)"
        )
    else:
        print("pandas baseline: " + result["pandas"]["skipped"])
    if spark:
        sp = result["spark"]
        print(
            f"Spark local[2]: {sp['seconds']} s after {sp['session_seconds']} s to start; "
            f"output equal to DuckDB's; {sp['slowdown_vs_duckdb']}x DuckDB's time "
            f"({', '.join(f'{k} {v} s' for k, v in sp['seconds_per_model'].items())})"
        )
    print(f"figures in {path}")
    return result


def _spark_side(
    repeat: int,
    lake_root: str,
    cutoffs: list[str],
    memory_limit: str,
    out_dir: Path,
    duck_seconds: float,
) -> dict[str, Any]:
    """The four training sets on Spark, their figures, and their output checked against
    DuckDB's (written before to ``out_dir``), as the parity tests check it."""
    sp = _best(repeat, _ours, lake_root, cutoffs, memory_limit, str(out_dir), True, "spark")
    _compare_all(out_dir, "spark")
    return {
        **sp["result"],
        "seconds": sp["result"]["build_seconds"],
        "process_seconds": round(sp["seconds"], 2),
        "driver_peak_mib": round(sp["peak_mib"]),
        "equal_output": True,
        "slowdown_vs_duckdb": round(sp["result"]["build_seconds"] / duck_seconds, 1),
    }


def _compare_all(out_dir: Path, other: str) -> None:
    """Raise AssertionError unless each model's training set from ``other`` (``pandas`` or
    ``spark``) in ``out_dir`` holds the same values as DuckDB's."""
    from amplify_ml.features.graph import REGISTRY
    from amplify_ml.features.spec import load_spec

    for m in MODELS:
        compare(
            pd.read_parquet(out_dir / f"duckdb-{m}.parquet"),
            pd.read_parquet(out_dir / f"{other}-{m}.parquet"),
            list(REGISTRY[load_spec(m).entity].keys),
        )


def _best(repeat: int, target: Any, *args: Any) -> dict[str, Any]:
    """The fastest of ``repeat`` runs (wall time is noisy on a shared machine), with the
    highest peak memory of them all and every run's seconds."""
    runs = [measure(target, *args) for _ in range(max(1, repeat))]
    best = dict(min(runs, key=lambda r: r["result"]["build_seconds"]))
    best["peak_mib"] = max(r["peak_mib"] for r in runs)
    if len(runs) > 1:
        best["result"] = {
            **best["result"],
            "runs_build_seconds": [r["result"]["build_seconds"] for r in runs],
        }
    return best


def _rows(lake_root: Path, table: str) -> int:
    import pyarrow.parquet as pq

    from amplify_ml.lake import Lake

    return sum(pq.read_metadata(f).num_rows for f in Lake(lake_root).files(table))


def _ingest(world: Path, lake_root: Path, memory_limit: str) -> None:
    from amplify_ml.datapack.ingest import ingest_pack
    from amplify_ml.errors import ConsentError
    from amplify_ml.lake import Lake

    lake = Lake(lake_root)
    packs = sorted((world / "packs").iterdir(), key=lambda p: (p.name != "vendor", p.name))
    for p in packs:
        try:
            ingest_pack(p, lake, memory_limit=memory_limit)
        except ConsentError:
            continue
