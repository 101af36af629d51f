"""Dirty mode: known defects injected into a clean world, with their exact counts.

Every injected row breaks exactly one rule, so the expected counts are exact; the clean rows
break none. The rule codes are the validator's:

``email_in_text``   an e-mail address in ``accounts.industry``;
``phone_in_text``   a phone number (five formats) in ``accounts.industry`` or
                    ``service_events.component``;
``consent``         ``intent_signals`` rows of the partner without consent in the vendor pack
                    (and, in clean and dirty mode, that partner's main pack refused whole);
``key_conflict``    telemetry rows sharing a key with another value (page counts and PC health
                    only, so depletion labels are untouched); every row of a conflicting key
                    counts (original and copy);
``duplicate``       surplus exact-duplicate telemetry rows (the clean world's included);
``below_min``       negative ``inventory.units_on_hand``;
``future_date``     extra ``sell_through`` lines sold after the pack was made;
``unknown_sku``     extra ``sell_through`` lines with a SKU not in ``products``;
``manifest_sha256`` one late pack whose manifest holds a wrong sha256 for its telemetry file.

The oracle always describes the clean world: defects are injected after it is computed, and
no injected row changes a realised label (extra lines fall outside every window or have no
category; text edits leave kinds and dates alone).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from amplify_ml.datasets.arrays import pseudonyms
from amplify_ml.datasets.calendar import Calendar
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.telemetry import METRICS

EMAILS = (
    "jane.doe@example.com",
    "m.mueller@example.org",
    "pierre.martin@example.net",
    "j.smith@example.co.uk",
    "anna.kowalska@example.com",
    "l.rossi@example.it",
)
PHONES = ("+49 30 1234567", "(555) 123-4567", "555-123-4567", "+1-202-555-0143", "0049 89 12345678")


@dataclass(frozen=True)
class Defect:
    """One expected defect: pack folder, table, column, rule code and rows (None: whole pack)."""

    pack: str
    table: str | None
    column: str | None
    rule: str
    rows: int | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def assign(
    cfg: WorldConfig, consenting: list[str], rng: np.random.Generator
) -> dict[str, list[str]]:
    """Which partner packs receive which row-level defects (spread over up to three partners)."""
    picks = list(rng.permutation(consenting))
    a, b, c = (picks + picks + picks)[:3]
    return (
        {
            a: ["email_in_text", "phone_in_text", "key_conflict"],
            b: ["below_min", "future_date", "phone_in_text"],
            c: ["unknown_sku", "key_conflict"],
        }
        if len(set((a, b, c))) == 3
        else {
            a: [
                "email_in_text",
                "phone_in_text",
                "key_conflict",
                "below_min",
                "future_date",
                "unknown_sku",
            ]
        }
    )


def inject_partner(
    cfg: WorldConfig,
    cal: Calendar,
    pack: str,
    tables: dict[str, pd.DataFrame | pa.Table],
    rules: list[str],
    rng: np.random.Generator,
) -> list[Defect]:
    """Inject ``rules`` into one partner's main-pack tables (in place); returns the defects."""
    dc = cfg.dirty
    out: list[Defect] = []
    acc = tables["accounts"] = tables["accounts"].copy()
    used_accounts: set[int] = set()

    def pick_accounts(n: int) -> np.ndarray:
        free = np.asarray([i for i in range(len(acc)) if i not in used_accounts])
        sel = rng.choice(free, size=min(n, len(free)), replace=False)
        used_accounts.update(int(i) for i in sel)
        return np.sort(sel)

    if "email_in_text" in rules:
        sel = pick_accounts(dc.email_rows)
        mails = np.asarray(EMAILS, dtype=object)[np.arange(len(sel)) % len(EMAILS)]
        acc.loc[sel, "industry"] = acc.loc[sel, "industry"].to_numpy() + ", contact " + mails
        out.append(Defect(pack, "accounts", "industry", "email_in_text", len(sel)))
    if "phone_in_text" in rules:
        n_acc = dc.phone_rows // 2
        sel = pick_accounts(n_acc)
        phones = np.asarray(PHONES, dtype=object)[np.arange(len(sel)) % len(PHONES)]
        acc.loc[sel, "industry"] = acc.loc[sel, "industry"].to_numpy() + ", call " + phones
        out.append(Defect(pack, "accounts", "industry", "phone_in_text", len(sel)))
        se = tables["service_events"] = tables["service_events"].copy()
        cand = np.flatnonzero(se["component"].notna().to_numpy())
        sel = np.sort(rng.choice(cand, size=min(dc.phone_rows - n_acc, len(cand)), replace=False))
        phones = np.asarray(PHONES, dtype=object)[(np.arange(len(sel)) + 2) % len(PHONES)]
        se.loc[sel, "component"] = se.loc[sel, "component"].to_numpy() + ", ask for " + phones
        out.append(Defect(pack, "service_events", "component", "phone_in_text", len(sel)))
    if "key_conflict" in rules:
        tel: pa.Table = tables["telemetry"]
        metric = tel.column("metric").to_numpy()
        ok_metric = np.isin(metric, [METRICS[0], METRICS[5], METRICS[6]])
        keys = pd.DataFrame(
            {
                "d": tel.column("device_id").to_numpy(),
                "t": tel.column("observed_at").cast(pa.int64()).to_numpy(),
                "m": metric,
            }
        )
        single = ~keys.duplicated(keep=False).to_numpy()
        cand = np.flatnonzero(ok_metric & single)
        sel = np.sort(rng.choice(cand, size=min(dc.key_conflicts, len(cand)), replace=False))
        copy = tel.take(pa.array(sel))
        val = copy.column("value").to_numpy()
        is_pc = np.asarray(copy.column("metric").to_numpy() == METRICS[0])
        new_val = np.where(is_pc, val + 17.0, np.where(val >= 50.0, val - 3.0, val + 3.0))
        copy = copy.set_column(3, "value", pa.array(new_val))
        pos = rng.integers(0, tel.num_rows, len(sel))
        order = np.argsort(np.concatenate([np.arange(tel.num_rows), pos + 0.5]), kind="stable")
        tables["telemetry"] = pa.concat_tables([tel, copy]).take(pa.array(order))
        out.append(Defect(pack, "telemetry", None, "key_conflict", 2 * len(sel)))
    if "below_min" in rules:
        inv = tables["inventory"] = tables["inventory"].copy()
        sel = np.sort(rng.choice(len(inv), size=min(dc.below_min_rows, len(inv)), replace=False))
        inv.loc[sel, "units_on_hand"] = -rng.integers(1, 6, len(sel))
        out.append(Defect(pack, "inventory", "units_on_hand", "below_min", len(sel)))
    st = tables["sell_through"]
    extra = []
    taken = set(st["line_id"])
    if "future_date" in rules:
        src = (
            st[st["quantity"] > 0]
            .sample(n=dc.future_date_rows, random_state=rng.integers(1 << 31), replace=True)
            .copy()
        )
        created = cal.created_day
        src["sold_on"] = cal.epoch_days(created + rng.integers(1, 60, len(src))).astype(
            "datetime64[D]"
        )
        src["line_id"] = pseudonyms(rng, len(src), "L-", 10, taken)
        taken.update(src["line_id"])
        extra.append(src)
        out.append(Defect(pack, "sell_through", "sold_on", "future_date", len(src)))
    if "unknown_sku" in rules:
        src = (
            st[st["quantity"] > 0]
            .sample(n=dc.unknown_sku_rows, random_state=rng.integers(1 << 31), replace=True)
            .copy()
        )
        # catalogue SKUs never start with "ZZ"
        src["sku"] = np.asarray(
            [f"ZZ{int(x):04d}Q" for x in rng.integers(0, 10000, len(src))], dtype=object
        )
        src["line_id"] = pseudonyms(rng, len(src), "L-", 10, taken)
        extra.append(src)
        out.append(Defect(pack, "sell_through", "sku", "unknown_sku", len(src)))
    if extra:
        tables["sell_through"] = pd.concat([st, *extra], ignore_index=True)
    return out


def consent_rows(cfg: WorldConfig, intent: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Rows of the partner without consent that leak into the vendor's intent_signals."""
    n = min(cfg.dirty.consent_rows, len(intent))
    return intent.iloc[np.sort(rng.choice(len(intent), size=n, replace=False))].reset_index(
        drop=True
    )


def tamper_manifest(pack_dir: Path, table: str) -> None:
    """Replace the sha256 of ``table`` in the pack's manifest by a wrong one."""
    path = pack_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["tables"][table]["sha256"] = hashlib.sha256(b"tampered:" + table.encode()).hexdigest()
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def duplicate_rows(tel: pa.Table) -> int:
    """Rows minus distinct rows of a telemetry table."""
    if tel.num_rows == 0:
        return 0
    df = pd.DataFrame(
        {
            "d": tel.column("device_id").to_numpy(),
            "t": pc.cast(tel.column("observed_at"), pa.int64()).to_numpy(),
            "m": tel.column("metric").to_numpy(),
            "v": tel.column("value").to_numpy(),
        }
    )
    return int(df.duplicated().sum())
