"""Service tickets (``service_events``) of devices under a contract.

- a component failure opens a ``repair`` or ``part_replacement`` ticket (component named)
  during the day of the failure; closed after a Gamma-distributed number of hours; the SLA
  is 24 h (daas), 48 h (mps) or 72 h (care pack);
- a preventive visit of a managed printer opens a ``preventive`` ticket;
- a supply alert of a managed printer opens a ``supplies_delivery`` ticket, closed when the
  cartridge is delivered (``delay`` days later);
- a contract device installed or retired during the period gets an ``install`` or
  ``deinstall`` ticket;
- ``incident`` tickets (user problems, not failures) arrive at random, some without device.

Tickets whose closing time would fall after the pack was made are still open
(``closed_at`` and ``sla_met`` empty).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import SUPPLY_COLORS
from amplify_ml.datasets.accounts import Accounts, Partner
from amplify_ml.datasets.arrays import pseudonyms
from amplify_ml.datasets.calendar import Calendar
from amplify_ml.datasets.catalogue import PRINTER, Catalogue
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import CARE_PACK, DAAS, MPS, NONE, Devices

KINDS = (
    "incident",
    "repair",
    "part_replacement",
    "preventive",
    "supplies_delivery",
    "install",
    "deinstall",
)
_INCIDENT_PRINTER = ("paper jam", "network", "driver", "scan to folder", "print quality")
_INCIDENT_PC = ("login", "docking", "wifi", "software update", "peripherals")
_SLA_HOURS = {NONE: 96.0, CARE_PACK: 72.0, MPS: 48.0, DAAS: 24.0}


def service_table(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    partner: Partner,
    dev: Devices,
    failures: np.ndarray,
    preventive: np.ndarray,
    alerts: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Every ticket of one partner, ordered by opening time."""
    fc = cfg.failures
    n_days = cal.n_days
    comp_names = np.asarray([fc.printer_components, fc.pc_components], dtype=object)
    dev_rows: list[np.ndarray] = []
    day: list[np.ndarray] = []
    open_s: list[np.ndarray] = []
    dur_h: list[np.ndarray] = []
    kind: list[np.ndarray] = []
    comp: list[np.ndarray] = []

    def add(
        d: np.ndarray,
        dd: np.ndarray,
        secs: np.ndarray,
        hours: np.ndarray,
        k: np.ndarray | int,
        c: np.ndarray,
    ) -> None:
        dev_rows.append(d.astype(np.int64))
        day.append(dd.astype(np.int64))
        open_s.append(secs.astype(np.int64))
        dur_h.append(hours.astype(np.float64))
        kind.append(np.broadcast_to(np.asarray(k, dtype=np.int64), d.shape).copy())
        comp.append(np.asarray(c, dtype=object))

    f = failures[(failures[:, 2] >= 0) & (failures[:, 2] < dev.retired[failures[:, 0]])]
    n = len(f)
    k = np.where(
        rng.random(n) < fc.part_replacement_share,
        KINDS.index("part_replacement"),
        KINDS.index("repair"),
    )
    add(
        f[:, 0],
        f[:, 2],
        rng.integers(7 * 3600, 19 * 3600, n),
        rng.gamma(2.0, 14.0, n),
        k,
        comp_names[dev.category[f[:, 0]], f[:, 1]],
    )

    p = preventive[(preventive[:, 1] >= 0) & (preventive[:, 1] < dev.retired[preventive[:, 0]])]
    add(
        p[:, 0],
        p[:, 1],
        rng.integers(8 * 3600, 15 * 3600, len(p)),
        rng.uniform(1.0, 3.0, len(p)),
        KINDS.index("preventive"),
        np.full(len(p), "maintenance kit", dtype=object),
    )

    a = alerts[(dev.contract[alerts[:, 0]] == MPS) & (alerts[:, 2] < dev.retired[alerts[:, 0]])]
    ink = np.asarray([cat.families[fm].ink for fm in dev.family[a[:, 0]]], dtype=bool)
    what = (
        np.where(ink, "ink cartridge ", "toner cartridge ").astype(object)
        + np.asarray(SUPPLY_COLORS, dtype=object)[a[:, 1]]
    )
    secs = rng.integers(8 * 3600, 23 * 3600, len(a))
    add(
        a[:, 0],
        a[:, 2],
        secs,
        dev.delay[a[:, 0]] * 24.0 - rng.uniform(1.0, 8.0, len(a)),
        KINDS.index("supplies_delivery"),
        what,
    )

    contract = dev.contract != NONE
    ins = np.flatnonzero(contract & (dev.installed >= 0) & (dev.installed < n_days))
    add(
        ins,
        dev.installed[ins],
        rng.integers(9 * 3600, 12 * 3600, len(ins)),
        rng.uniform(2.0, 4.0, len(ins)),
        KINDS.index("install"),
        np.full(len(ins), None, dtype=object),
    )
    out = np.flatnonzero(contract & (dev.retired >= 0) & (dev.retired < n_days))
    add(
        out,
        dev.retired[out],
        rng.integers(9 * 3600, 12 * 3600, len(out)),
        rng.uniform(1.0, 3.0, len(out)),
        KINDS.index("deinstall"),
        np.full(len(out), None, dtype=object),
    )

    # incidents: per contract device, Poisson over its days in service
    start = np.maximum(dev.installed, 0)
    end = np.minimum(dev.retired, n_days)
    years = np.where(contract, np.maximum(end - start, 0), 0) / 365.25
    cnt = rng.poisson(fc.incident_rate_per_device_year * years)
    i = np.repeat(np.arange(len(dev)), cnt)
    d_inc = start[i] + np.floor(rng.random(len(i)) * np.maximum(end[i] - start[i], 1)).astype(
        np.int64
    )
    texts = np.where(
        dev.category[i] == PRINTER,
        np.asarray(_INCIDENT_PRINTER, dtype=object)[rng.integers(0, 5, len(i))],
        np.asarray(_INCIDENT_PC, dtype=object)[rng.integers(0, 5, len(i))],
    )
    texts = np.where(rng.random(len(i)) < 0.3, None, texts)
    add(
        i,
        d_inc,
        rng.integers(7 * 3600, 20 * 3600, len(i)),
        rng.gamma(1.5, 8.0, len(i)),
        KINDS.index("incident"),
        texts,
    )

    d_ = np.concatenate(dev_rows)
    dd = np.concatenate(day)
    secs = np.concatenate(open_s)
    hours = np.concatenate(dur_h)
    kk = np.concatenate(kind)
    cc = np.concatenate(comp)
    no_device = (kk == KINDS.index("incident")) & (rng.random(len(kk)) < 0.25)
    opened = cal.epoch_us(dd, secs)
    closed = opened + (hours * 3600e6).astype(np.int64)
    created_us = int(pd.Timestamp(cal.created_at).value // 1000)
    still_open = closed > created_us
    sla_hours = np.asarray([_SLA_HOURS[c] for c in (NONE, CARE_PACK, MPS, DAAS)])
    sla = hours <= sla_hours[dev.contract[d_]]
    order = np.lexsort((kk, d_, opened))
    m = len(order)
    dev_id = np.where(no_device, None, dev.device_id[d_]).astype(object)
    return pd.DataFrame(
        {
            "ticket_id": pseudonyms(rng, m, "T-", 10),
            "partner_id": partner.partner_id,
            "account_id": acc.account_id[dev.account[d_[order]]],
            "device_id": dev_id[order],
            "opened_at": opened[order].astype("datetime64[us]"),
            "closed_at": np.where(
                still_open, np.datetime64("NaT"), closed.astype("datetime64[us]")
            )[order],
            "kind": np.asarray(KINDS, dtype=object)[kk[order]],
            "component": cc[order],
            "sla_met": pd.array(np.where(still_open, None, sla)[order], dtype="boolean"),
        }
    )
