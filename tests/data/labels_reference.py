"""Independent reference labels: recomputed from pack files with pandas, per DATAPACK.md.

Nothing here imports the generator. A partner's tables are the union of its packs (main and
late): telemetry rows are concatenated, install_base rows are superseded by key by the pack
made later. Cutoffs are dates; a row is dated on or before a cutoff when its date (UTC for
timestamps) is <= the cutoff, and labels use rows dated in (cutoff, cutoff + horizon].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

THRESHOLD_PCT = 10.0


def _read(pack: Path, table: str) -> pd.DataFrame | None:
    manifest = json.loads((pack / "manifest.json").read_text())
    entry = manifest["tables"].get(table)
    if entry is None:
        return None
    return pq.read_table(pack / entry["file"]).to_pandas(date_as_object=False)


def partner_packs(packs_dir: Path, partner_id: str) -> list[Path]:
    """The partner's packs (source == partner_id), oldest first by created_at."""
    found = []
    for pack in packs_dir.iterdir():
        m = pack / "manifest.json"
        if m.exists():
            manifest = json.loads(m.read_text())
            if manifest["source"] == partner_id:
                found.append((manifest["created_at"], pack))
    return [p for _, p in sorted(found)]


def partner_tables(packs_dir: Path, partner_id: str) -> dict[str, pd.DataFrame]:
    """The partner's tables over all its packs (later packs supersede install_base by key)."""
    out: dict[str, pd.DataFrame] = {}
    for pack in partner_packs(packs_dir, partner_id):
        for table in ("accounts", "sell_through", "install_base", "telemetry", "service_events"):
            df = _read(pack, table)
            if df is None:
                continue
            if table in out:
                df = pd.concat([out[table], df], ignore_index=True)
            if table == "install_base":
                df = df.drop_duplicates(["partner_id", "device_id"], keep="last")
            out[table] = df
    return out


def _day(values: pd.Series) -> pd.Series:
    """Calendar date (UTC) of dates or timestamps, as datetime64 at midnight."""
    s = pd.to_datetime(values)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.dt.normalize()


def propensity_labels(
    tables: dict[str, pd.DataFrame], products: pd.DataFrame, rows: pd.DataFrame
) -> np.ndarray:
    """1 if the account bought (quantity > 0) a SKU of the category in (cutoff, cutoff + horizon]."""
    st = tables["sell_through"]
    st = st[st["quantity"] > 0].merge(products[["sku", "category"]], on="sku", how="inner")
    st = st.assign(day=_day(st["sold_on"]))[["account_id", "category", "day"]]
    q = rows[["account_id", "category", "cutoff", "horizon_days"]].copy()
    q["_i"] = np.arange(len(q))
    q["lo"] = _day(q["cutoff"])
    q["hi"] = q["lo"] + pd.to_timedelta(q["horizon_days"], unit="D")
    m = q.merge(st, on=["account_id", "category"], how="inner")
    hit = m[(m["day"] > m["lo"]) & (m["day"] <= m["hi"])]["_i"].unique()
    out = np.zeros(len(q), dtype=np.int64)
    out[hit] = 1
    return out


def refresh_labels(tables: dict[str, pd.DataFrame], rows: pd.DataFrame) -> np.ndarray:
    """1 if the device's retired_on lies in (cutoff, cutoff + horizon]."""
    ib = tables["install_base"][["device_id", "retired_on"]]
    q = rows[["device_id", "cutoff", "horizon_days"]].merge(ib, on="device_id", how="left")
    lo = _day(q["cutoff"])
    hi = lo + pd.to_timedelta(q["horizon_days"], unit="D")
    ret = _day(q["retired_on"])
    return ((ret > lo) & (ret <= hi)).fillna(False).to_numpy().astype(np.int64)


def failure_labels(tables: dict[str, pd.DataFrame], rows: pd.DataFrame) -> np.ndarray:
    """1 if a repair or part_replacement ticket of the device opened in (cutoff, cutoff + horizon]."""
    se = tables["service_events"]
    se = se[se["kind"].isin(["repair", "part_replacement"]) & se["device_id"].notna()]
    se = se.assign(day=_day(se["opened_at"]))[["device_id", "day"]]
    q = rows[["device_id", "cutoff", "horizon_days"]].copy()
    q["_i"] = np.arange(len(q))
    q["lo"] = _day(q["cutoff"])
    q["hi"] = q["lo"] + pd.to_timedelta(q["horizon_days"], unit="D")
    m = q.merge(se, on="device_id", how="inner")
    hit = m[(m["day"] > m["lo"]) & (m["day"] <= m["hi"])]["_i"].unique()
    out = np.zeros(len(q), dtype=np.int64)
    out[hit] = 1
    return out


def depletion_labels(tables: dict[str, pd.DataFrame], rows: pd.DataFrame) -> pd.Series:
    """Days from the cutoff to the first supply reading <= 10 % dated in the window (NA if none)."""
    tel = tables["telemetry"]
    tel = tel[tel["metric"].str.startswith("supply_level_pct.") & (tel["value"] <= THRESHOLD_PCT)]
    tel = tel.assign(color=tel["metric"].str.split(".").str[1], day=_day(tel["observed_at"]))
    q = rows[["device_id", "color", "cutoff", "horizon_days"]].copy()
    q["_i"] = np.arange(len(q))
    q["lo"] = _day(q["cutoff"])
    q["hi"] = q["lo"] + pd.to_timedelta(q["horizon_days"], unit="D")
    m = q.merge(tel[["device_id", "color", "day"]], on=["device_id", "color"], how="inner")
    m = m[(m["day"] > m["lo"]) & (m["day"] <= m["hi"])]
    first = m.groupby("_i")["day"].min()
    lo = q.set_index("_i")["lo"]
    days = (first - lo.loc[first.index]).dt.days
    out = pd.Series(pd.NA, index=range(len(q)), dtype="Int64")
    out.loc[days.index] = days.to_numpy()
    return out


# ---- entity sets ---------------------------------------------------------------------------
def alive_devices(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> set[str]:
    """Devices installed on or before the cutoff and not retired on or before it."""
    ib = tables["install_base"]
    inst = _day(ib["installed_on"])
    ret = _day(ib["retired_on"])
    ok = (inst <= cutoff) & (ret.isna() | (ret > cutoff))
    return set(ib.loc[ok, "device_id"])


def propensity_entities(
    tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, categories: list[str]
) -> set[tuple[str, str]]:
    acc = tables["accounts"]
    ids = acc.loc[_day(acc["first_seen"]) <= cutoff, "account_id"]
    return {(a, k) for a in ids for k in categories}


def failure_entities(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> set[str]:
    ib = tables["install_base"]
    managed = set(ib.loc[ib["contract"].isin(["mps", "daas"]), "device_id"])
    return alive_devices(tables, cutoff) & managed


def depletion_entities(
    tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp
) -> set[tuple[str, str]]:
    """(device, colour) with a supply reading on or before the cutoff whose latest is above 10 %."""
    tel = tables["telemetry"]
    tel = tel[tel["metric"].str.startswith("supply_level_pct.")]
    tel = tel[_day(tel["observed_at"]) <= cutoff]
    last = tel.sort_values("observed_at", kind="stable").groupby(["device_id", "metric"]).tail(1)
    last = last[last["value"] > THRESHOLD_PCT]
    alive = alive_devices(tables, cutoff)
    return {
        (d, m.split(".")[1])
        for d, m in zip(last["device_id"], last["metric"], strict=True)
        if d in alive
    }
