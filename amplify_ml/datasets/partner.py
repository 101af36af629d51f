"""One partner's world: accounts, fleet, dynamics, sales, service, telemetry, as tables.

:func:`simulate_partner` runs every mechanism for one partner from its own seed (so partners
are independent and chunking never changes a result) and returns a :class:`PartnerWorld`
holding the contract tables (main pack and late pack), the vendor-side rows of the partner
(intent signals) and the latent state the oracle needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from amplify_ml.datasets.accounts import Accounts, Partner, accounts_table, build_accounts
from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.catalogue import Catalogue
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import Devices, initial_fleet, make_devices
from amplify_ml.datasets.dynamics import Snapshot
from amplify_ml.datasets.fleet import simulate_fleet
from amplify_ml.datasets.sales import (
    Projects,
    Purchases,
    account_purchases,
    device_purchases,
    intent_table,
    inventory_table,
    opportunities_table,
    sell_through_table,
    tracked_units,
)
from amplify_ml.datasets.service import service_table
from amplify_ml.datasets.telemetry import Readings, add_mess, events, readings, split_late

_STREAMS = (
    "accounts",
    "fleet",
    "sales",
    "dynamics",
    "telemetry",
    "service",
    "intent",
    "mess",
    "tables",
)


@dataclass
class PartnerWorld:
    """Everything generated for one partner."""

    partner: Partner
    acc: Accounts
    dev: Devices
    projects: Projects
    failures: np.ndarray
    changes: np.ndarray
    alerts: np.ndarray
    snapshots: dict[int, Snapshot]
    telemetry: Readings
    """Every reading (main and late packs)."""
    tables: dict[str, pd.DataFrame | pa.Table]
    """The main pack's tables."""
    late_tables: dict[str, pd.DataFrame | pa.Table] = field(default_factory=dict)
    intent: pd.DataFrame | None = None
    install_base_full: pd.DataFrame | None = None
    """install_base with every update applied (main superseded by late)."""
    telemetry_duplicates: int = 0
    late_updates: int = 0
    """install_base rows the late pack changes (retired_on and replaced_by filled in)."""


def snapshot_days(cfg: WorldConfig, cal: Calendar) -> np.ndarray:
    """Union of every oracle's cutoffs."""
    oc = cfg.oracle
    horizons = (
        oc.propensity_horizon_days,
        oc.refresh_horizon_days,
        oc.failure_horizon_days,
        oc.depletion_window_days,
    )
    return np.unique(np.concatenate([cal.cutoffs(h, oc.n_cutoffs) for h in horizons]))


def _merge_snapshots(gens: list, n_dev: int, days: np.ndarray) -> dict[int, Snapshot]:
    out: dict[int, Snapshot] = {}
    for d in days:
        level = np.full((n_dev, 4), np.nan)
        low = np.full((n_dev, 4), -1, dtype=np.int64)
        chg = np.full((n_dev, 4), NEVER, dtype=np.int64)
        wear = np.full((n_dev, 4), np.nan)
        for g in gens:
            s = g.snapshots.get(int(d))
            if s is None:
                continue
            level[s.printer_rows] = s.level
            low[s.printer_rows] = s.low_since
            chg[s.printer_rows] = s.change_day
            wear[s.wear_rows] = s.wear
        out[int(d)] = Snapshot(np.arange(n_dev), level, low, chg, np.arange(n_dev), wear)
    return out


def install_base_table(
    cal: Calendar, partner: Partner, acc: Accounts, dev: Devices, cat: Catalogue
) -> pd.DataFrame:
    from amplify_ml.datapack.contract import CONTRACTS

    retired = dev.retired < cal.n_days
    has_rep = dev.replaced_by >= 0
    rep_id = np.where(has_rep, dev.device_id[np.maximum(dev.replaced_by, 0)], None).astype(object)
    ret = cal.epoch_days(np.minimum(dev.retired, cal.n_days)).astype("datetime64[D]")
    ret[~retired] = np.datetime64("NaT")
    order = np.lexsort((dev.device_id, dev.installed))
    return pd.DataFrame(
        {
            "device_id": dev.device_id[order],
            "partner_id": partner.partner_id,
            "account_id": acc.account_id[dev.account[order]],
            "sku": cat.sku[dev.sku[order]],
            "installed_on": cal.epoch_days(dev.installed[order]).astype("datetime64[D]"),
            "warranty_ends_on": cal.epoch_days(dev.warranty_end[order]).astype("datetime64[D]"),
            "contract": np.asarray(CONTRACTS, dtype=object)[dev.contract[order]],
            "retired_on": ret[order],
            "replaced_by": rep_id[order],
            "_row": order,
        }
    )


def simulate_partner(
    cfg: WorldConfig, cal: Calendar, cat: Catalogue, partner: Partner, seed: np.random.SeedSequence
) -> PartnerWorld:
    """Generate one partner's world from its own seed."""
    rng = {
        name: np.random.default_rng(s)
        for name, s in zip(_STREAMS, seed.spawn(len(_STREAMS)), strict=True)
    }
    acc = build_accounts(cfg, cal, partner, rng["accounts"])
    initial = initial_fleet(cfg, cal, cat, acc, rng["fleet"])
    if len(initial):
        earliest = np.full(len(acc), NEVER)
        np.minimum.at(earliest, initial.account, initial.installed)
        acc.first_seen = np.minimum(acc.first_seen, earliest)
        acc.churn_day = np.maximum(acc.churn_day, acc.first_seen + 1)

    buys, projects = account_purchases(cfg, cal, cat, acc, initial, rng["sales"])
    units = tracked_units(cfg, cal, cat, buys, rng["sales"])
    bought = make_devices(
        cfg, cal, cat, acc, rng["fleet"], gen=0, taken_ids=set(initial.device_id), **units
    )
    dev = Devices.concat([initial, bought])

    snaps_at = snapshot_days(cfg, cal)
    dev, gens = simulate_fleet(cfg, cal, cat, acc, dev, snaps_at, rng["dynamics"])
    failures = np.concatenate([g.failures for g in gens]) if gens else np.zeros((0, 3), np.int64)
    changes = np.concatenate([g.changes for g in gens]) if gens else np.zeros((0, 3), np.int64)
    alerts = np.concatenate([g.alerts for g in gens]) if gens else np.zeros((0, 3), np.int64)
    preventive = (
        np.concatenate([g.preventive for g in gens]) if gens else np.zeros((0, 2), np.int64)
    )

    # telemetry and events, generation by generation (then the big matrices are dropped)
    tel_parts: list[Readings] = []
    ev_parts: list[dict[str, np.ndarray]] = []
    for g in gens:
        tel_parts.append(readings(cfg, cal, cat, dev, g, rng["telemetry"]))
        ev_parts.append(events(cfg, cal, dev, g, rng["telemetry"]))
    snapshots = _merge_snapshots(gens, len(dev), snaps_at)
    del gens

    all_buys = Purchases.concat(
        [buys, device_purchases(cfg, cal, cat, acc, dev, changes, rng["sales"])]
    )
    tel, n_dup = add_mess(
        cfg, Readings.concat(tel_parts), rng["mess"], duplicates=partner.data_sharing
    )
    main_tel, late_tel = (
        split_late(cfg, cal, tel, rng["mess"]) if partner.late_pack else (tel, Readings.concat([]))
    )

    ev = {k: np.concatenate([p[k] for p in ev_parts]) for k in ev_parts[0]} if ev_parts else None
    device_events = _events_table(cal, dev, ev)

    ib_full = install_base_table(cal, partner, acc, dev, cat)
    tables: dict[str, pd.DataFrame | pa.Table] = {
        "accounts": accounts_table(acc, partner, cal),
        "sell_through": sell_through_table(cfg, cal, cat, acc, partner, all_buys, rng["tables"]),
        "install_base": ib_full.drop(columns="_row"),
        "telemetry": main_tel.to_arrow(dev.device_id),
        "device_events": device_events,
        "service_events": service_table(
            cfg, cal, cat, acc, partner, dev, failures, preventive, alerts, rng["service"]
        ),
        "opportunities": opportunities_table(cfg, cal, cat, acc, partner, projects, rng["tables"]),
        "inventory": inventory_table(cfg, cal, cat, partner, all_buys, rng["tables"]),
    }
    late: dict[str, pd.DataFrame | pa.Table] = {}
    late_updates = 0
    if partner.late_pack:
        te = cfg.telemetry
        rows = ib_full["_row"].to_numpy()
        recent = (dev.retired[rows] >= cal.n_days - te.late_retired_window_days) & (
            dev.retired[rows] < cal.n_days
        )
        hide = recent & (rng["mess"].random(len(rows)) < te.late_retired_share)
        main_ib = ib_full.drop(columns="_row").copy()
        main_ib.loc[hide, "retired_on"] = np.datetime64("NaT")
        main_ib.loc[hide, "replaced_by"] = None
        tables["install_base"] = main_ib
        # the late pack carries the updated rows, plus the (unchanged) rows of the devices
        # whose late readings it holds, so that it is consistent on its own
        with_late = np.isin(rows, np.unique(late_tel.device))
        late = {
            "install_base": ib_full.loc[hide | with_late]
            .drop(columns="_row")
            .reset_index(drop=True),
            "telemetry": late_tel.to_arrow(dev.device_id),
        }
        late_updates = int(hide.sum())
    return PartnerWorld(
        partner=partner,
        acc=acc,
        dev=dev,
        projects=projects,
        failures=failures,
        changes=changes,
        alerts=alerts,
        snapshots=snapshots,
        telemetry=tel,
        tables=tables,
        late_tables=late,
        intent=intent_table(cfg, cal, cat, acc, partner, projects, rng["intent"]),
        install_base_full=ib_full.drop(columns="_row"),
        telemetry_duplicates=n_dup,
        late_updates=late_updates,
    )


def _events_table(cal: Calendar, dev: Devices, ev: dict[str, np.ndarray] | None) -> pd.DataFrame:
    if ev is None or len(ev["device"]) == 0:
        return pd.DataFrame(
            {
                "device_id": pd.Series([], dtype=object),
                "occurred_at": pd.Series([], dtype="datetime64[us]"),
                "code": pd.Series([], dtype=object),
                "severity": pd.Series([], dtype=object),
            }
        )
    t = cal.epoch_us(ev["day"], ev["secs"])
    df = pd.DataFrame({"d": ev["device"], "t": t, "code": ev["code"], "severity": ev["severity"]})
    df = df.drop_duplicates(["d", "t", "code"]).sort_values(["t", "d"], kind="stable")
    return pd.DataFrame(
        {
            "device_id": dev.device_id[df["d"].to_numpy()],
            "occurred_at": df["t"].to_numpy().astype("datetime64[us]"),
            "code": df["code"].to_numpy(),
            "severity": df["severity"].to_numpy(),
        }
    )
