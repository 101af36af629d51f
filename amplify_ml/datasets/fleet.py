"""The fleet over the period: generations of devices, retirements and replacements.

Generation 0 is the install base alive at the period start plus the devices bought during
the period (projects and ad-hoc purchases). After a generation's day loop
(:func:`amplify_ml.datasets.dynamics.simulate`), each device's retirement day is drawn from
the refresh hazard (:func:`amplify_ml.datasets.devices.refresh_hazard`, with the device's
own repairs of the last 365 days): the first day the cumulative hazard from the period start
(or installation) reaches the device's Exp(1) draw. A retired device is replaced through the
partner with the account's ``p_replace`` (unless the account has churned): the replacement
(next generation) is installed on the retirement day, keeps the contract with probability
0.9 and is bought that day (a sell_through line). Generations repeat until no device retires.
"""

from __future__ import annotations

import numpy as np

from amplify_ml.datasets.accounts import Accounts
from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.catalogue import Catalogue
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import Devices, draw_contract, make_devices, refresh_hazard
from amplify_ml.datasets.dynamics import Generation, simulate

_CHUNK = 2000


def repairs_matrix(failures: np.ndarray, rows: np.ndarray, d0: int, n_days: int) -> np.ndarray:
    """Failures of devices ``rows`` in the 365 days before each day ``d0..n_days-1``."""
    span = n_days - d0
    pos = {int(r): i for i, r in enumerate(rows)}
    counts = np.zeros((len(rows), span + 1))
    if len(failures):
        keep = np.isin(failures[:, 0], rows)
        f = failures[keep]
        idx = np.fromiter((pos[int(r)] for r in f[:, 0]), dtype=np.int64, count=len(f))
        np.add.at(counts, (idx, f[:, 2] - d0 + 1), 1.0)
    before = np.cumsum(counts, axis=1)[:, :span]  # failures on days < d
    lagged = np.zeros_like(before)
    lagged[:, 365:] = before[:, :-365] if span > 365 else lagged[:, 365:]
    return before - lagged


def retire(
    cfg: WorldConfig,
    cal: Calendar,
    acc: Accounts,
    dev: Devices,
    rows: np.ndarray,
    failures: np.ndarray,
    d0: int,
) -> np.ndarray:
    """Retirement day of devices ``rows`` (NEVER if they outlive the period)."""
    n_days = cal.n_days
    days = np.arange(d0, n_days)
    out = np.full(len(rows), NEVER, dtype=np.int64)
    for s in range(0, len(rows), _CHUNK):
        r = rows[s : s + _CHUNK]
        rep = repairs_matrix(failures, r, d0, n_days)
        h = refresh_hazard(cfg, cal, acc, dev, r, days, repairs=rep)
        cum = np.cumsum(h, axis=1)
        hit = cum >= dev.retire_e[r][:, None]
        out[s : s + _CHUNK] = np.where(hit.any(axis=1), d0 + hit.argmax(axis=1), NEVER)
    return out


def simulate_fleet(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    dev: Devices,
    snapshot_days: np.ndarray,
    rng: np.random.Generator,
) -> tuple[Devices, list[Generation]]:
    """Run every generation; returns all devices (with retirements and replacements)."""
    gens: list[Generation] = []
    todo = np.flatnonzero(dev.retired >= NEVER)  # predecessors retired before the period are done
    gen = 0
    while len(todo):
        g = simulate(cfg, cal, dev, todo, snapshot_days, rng)
        gens.append(g)
        dev.retired[todo] = retire(cfg, cal, acc, dev, todo, g.failures, g.d0)
        out = todo[dev.retired[todo] < cal.n_days]
        a = dev.account[out]
        keep = (acc.churn_day[a] > dev.retired[out]) & (rng.random(len(out)) < acc.p_replace[a])
        old = out[keep]
        if len(old) == 0:
            break
        inherit = rng.random(len(old)) < cfg.fleet.contract_inherit
        contract = np.where(
            inherit,
            dev.contract[old],
            draw_contract(cfg, acc, dev.account[old], dev.category[old], rng),
        )
        gen += 1
        new = make_devices(
            cfg,
            cal,
            cat,
            acc,
            rng,
            account=dev.account[old],
            category=dev.category[old],
            installed=dev.retired[old],
            contract=contract,
            gen=gen,
            taken_ids=set(dev.device_id),
        )
        dev.replaced_by[old] = len(dev) + np.arange(len(new))
        dev = Devices.concat([dev, new])
        todo = np.arange(len(dev) - len(new), len(dev))
    return dev, gens
