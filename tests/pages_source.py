"""A PageSource over small hand-made frames with the library's columns, for the page tests.

Leads are ranked by the library's own ``merge_offers``, the ship plan is the library's
``ship_plan`` of a hand-made depletion score table, and the fleet frame has
``scoring.fleet.COLUMNS``; so the pages see what the real source will give them, in a few
milliseconds. Two partners (P001 with more rows, P002 with distinct ids) and three keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from fastapi import FastAPI

from amplify_ml.errors import AmplifyError, NotFoundError
from amplify_ml.scoring import fleet as fleet_mod
from amplify_ml.scoring.leads import COLUMNS as LEAD_COLUMNS
from amplify_ml.scoring.leads import merge_offers
from amplify_ml.scoring.supplies import ship_plan
from amplify_ml.serving.pages import mount_static, router

AS_OF = date(2026, 9, 30)
KEYS = {
    "key-p001-secret": ("k_p001", "partner", "P001"),
    "key-p002-secret": ("k_p002", "partner", "P002"),
    "key-ops-secret": ("k_ops", "operations", None),
}
ACCOUNTS = {
    "P001": ["A-c67348f3", "A-d3308daa", "A-dc458b22", "A-bb7dd8d1", "A-b8ad173c", "A-e1740865"],
    "P002": ["A-d0cd3f77", "A-ef8f315f", "A-bb3bd3e1"],
}
CATEGORIES = ["pc", "printer", "supplies", "service", "accessory"]
REASONS = [
    "buys PCs every 107 days on average in the last 730 days",
    "bought 4 different PC products in the last 730 days",
    "online interest in printers over the last 4 weeks (intensity 5)",
    "last bought supplies 237 days ago",
    "spent 2,368 on PCs in the last 730 days",
    "at 93.2% of the age at which the account retires such devices",
    "installed 7.7 years ago",
    "family: Elite Mini 800 G9",
]
FAILURE_REASONS = [
    "battery health falling 2.3 points a month in the last 60 days",
    "17 device events in the last 30 days",
    "5 warning events in the last 30 days",
    "last repaired 1.1 years ago",
    "last error event 6 days ago",
]


@dataclass
class Caller:
    """A key's holder, as the API's key store would return it."""

    key_id: str
    role: str
    partner_id: str | None


def lead_offers(partner: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` offers of a partner's accounts (propensity and refresh), unranked."""
    rng = np.random.default_rng(seed)
    accounts = ACCOUNTS[partner]
    rows = []
    for i in range(n):
        refresh = i % 3 == 2
        p = round(float(rng.uniform(0.05, 0.95)), 6)
        rows.append(
            {
                "partner_id": partner,
                "account_id": accounts[i % len(accounts)],
                "offer": "refresh" if refresh else "propensity",
                "category": "pc" if refresh else CATEGORIES[i % len(CATEGORIES)],
                "device_id": f"D-{partner.lower()}{i:05x}" if refresh else None,
                "recommended_sku": f"{3 + i % 5}E{850 + i}D",
                "probability": p,
                "expected_value": round(p * float(rng.uniform(80, 1800)), 4),
                "reason_1": REASONS[i % len(REASONS)],
                "reason_2": REASONS[(i + 3) % len(REASONS)],
                "reason_3": None if i % 4 == 3 else REASONS[(i + 5) % len(REASONS)],
                "vendor_age_rule": bool(i % 2) if refresh else None,
                "model_version": "1",
            }
        )
    return pd.DataFrame(rows)


def lead_table(offers: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Offers ranked as the library ranks them, with the scores' date."""
    out = merge_offers([offers], top)
    out["as_of"] = AS_OF
    return out[LEAD_COLUMNS]


def fleet_devices() -> pd.DataFrame:
    """Devices under contract of both partners with failure probabilities (all different)."""
    rng = np.random.default_rng(5)
    rows = []
    families = ["ProDesk 400 G4", "LaserJet Enterprise M607", "EliteBook 840 G6"]
    parts = ["battery", "formatter", "disk", None]
    for partner, n in (("P001", 9), ("P002", 5)):
        accounts = ACCOUNTS[partner]
        for i in range(n):
            rows.append(
                {
                    "partner_id": partner,
                    "account_id": accounts[i % len(accounts)],
                    "device_id": f"D-{partner.lower()}f{i:04x}",
                    "family": families[i % len(families)],
                    "contract": "mps" if i % 3 == 1 else "daas",
                    "probability": round(float(rng.uniform(0.01, 0.6)), 6),
                    "likely_component": parts[i % len(parts)],
                    "component_share": 0.9 if parts[i % len(parts)] else np.nan,
                    "component_probability": 0.05 if parts[i % len(parts)] else np.nan,
                    "component_probabilities": (
                        json.dumps({parts[i % len(parts)]: 0.05}) if parts[i % len(parts)] else None
                    ),
                    "reason_1": FAILURE_REASONS[i % len(FAILURE_REASONS)],
                    "reason_2": FAILURE_REASONS[(i + 2) % len(FAILURE_REASONS)],
                    "reason_3": FAILURE_REASONS[(i + 4) % len(FAILURE_REASONS)],
                    "model_version": "1",
                    "as_of": AS_OF,
                }
            )
    return pd.DataFrame(rows)


def depletion_scores() -> pd.DataFrame:
    """A depletion score table: colours due now, soon and later, of both partners."""
    rows = []
    p10 = [1.5, 3.0, 9.0, 12.5, 14.0, 30.0, 60.0, 2.0, 11.0, 90.0]
    for i, lo in enumerate(p10):
        partner = "P001" if i < 7 else "P002"
        accounts = ACCOUNTS[partner]
        rows.append(
            {
                "partner_id": partner,
                "account_id": accounts[i % len(accounts)],
                "device_id": f"D-{partner.lower()}s{i:04x}",
                "color": ["black", "cyan", "magenta", "yellow"][i % 4],
                "as_of": pd.Timestamp(AS_OF),
                "p10_days": lo,
                "p50_days": lo * 1.4,
                "p90_days": 180.0 if i % 2 else lo * 2.0,
                "beyond_window": bool(i % 2),
                "model_version": "1",
            }
        )
    return pd.DataFrame(rows)


@dataclass
class FramePageSource:
    """The pages' PageSource over fixed frames; records audits; can be told to fail."""

    offers: pd.DataFrame = field(
        default_factory=lambda: pd.concat(
            [lead_offers("P001", 30, 1), lead_offers("P002", 8, 2)], ignore_index=True
        )
    )
    devices: pd.DataFrame = field(default_factory=fleet_devices)
    depletion: pd.DataFrame = field(default_factory=depletion_scores)
    partner_ids: list[str] = field(default_factory=lambda: ["P001", "P002"])
    keys: dict[str, tuple[str, str, str | None]] = field(default_factory=lambda: dict(KEYS))
    fail: dict[str, AmplifyError] = field(default_factory=dict)
    """method name -> the error it raises (caller, partners, leads, fleet, supplies)"""
    audits: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    calls: list[tuple[str, str | None, dict[str, object]]] = field(default_factory=list)

    def caller(self, key: str) -> Caller | None:
        if "caller" in self.fail:
            raise self.fail["caller"]
        held = self.keys.get(key)
        return Caller(*held) if held else None

    def partners(self) -> list[str]:
        if "partners" in self.fail:
            raise self.fail["partners"]
        return list(self.partner_ids)

    def _check(self, method: str, partner_id: str | None, **kwargs: object) -> None:
        self.calls.append((method, partner_id, kwargs))
        if method in self.fail:
            raise self.fail[method]
        if partner_id is not None and partner_id not in self.partners():
            raise NotFoundError(f"no partner {partner_id} in the lake")

    def leads(self, partner_id: str, *, category: str | None, top: int) -> pd.DataFrame:
        self._check("leads", partner_id, category=category, top=top)
        own = self.offers[self.offers["partner_id"] == partner_id]
        if category is not None:
            own = own[own["category"] == category]
        return lead_table(own, top)

    def fleet(self, partner_id: str | None, *, top: int) -> pd.DataFrame:
        self._check("fleet", partner_id, top=top)
        d = self.devices
        if partner_id is not None:
            d = d[d["partner_id"] == partner_id]
        d = d.sort_values(
            ["probability", "partner_id", "device_id"], ascending=[False, True, True]
        ).head(top)
        d = d.reset_index(drop=True)
        d.insert(0, "rank", np.arange(1, len(d) + 1))
        return d[fleet_mod.COLUMNS]

    def supplies(self, partner_id: str | None) -> pd.DataFrame:
        self._check("supplies", partner_id)
        return ship_plan(self.depletion, partners=[partner_id] if partner_id else None)

    def audit(self, caller: Caller, route: str, partner_id: str | None, status: int) -> None:
        self.audits.append((caller.key_id, route, partner_id, status))


def page_app(source: FramePageSource) -> FastAPI:
    """A small app with the pages and their static files over ``source``."""
    app = FastAPI()
    app.include_router(router)
    mount_static(app)
    app.state.pages = source
    return app
