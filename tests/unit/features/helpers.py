"""A few rows per table, in lake form, and a way to run one feature function over them."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from amplify_ml.datapack.contract import TABLES
from amplify_ml.features.cutoffs import as_cutoffs, epoch_day
from amplify_ml.features.engine import DuckDBEngine
from amplify_ml.features.graph import REGISTRY, Resolver, drop_day_grid, register_cutoffs
from amplify_ml.features.inputs import Inputs, known_views

P = "P1"
INGESTED = pd.Timestamp("2020-01-01T00:00:00Z")
_ids = itertools.count(1)

DEFAULTS: dict[str, dict[str, Any]] = {
    "partners": dict(
        partner_id=P,
        name="Partner One",
        track="power",
        data_sharing=True,
        country="DE",
        joined_on=date(2015, 1, 1),
    ),
    "products": dict(
        category="printer",
        family="Fam",
        list_price=100.0,
        currency="EUR",
        launched_on=date(2015, 1, 1),
        page_yield=None,
        color=None,
        extends_warranty_months=None,
    ),
    "accounts": dict(
        partner_id=P,
        industry="Retail",
        employee_band="10-49",
        country="DE",
        first_seen=date(2020, 1, 1),
    ),
    "sell_through": dict(partner_id=P, currency="EUR", channel="field"),
    "install_base": dict(
        partner_id=P, warranty_ends_on=None, contract="mps", retired_on=None, replaced_by=None
    ),
    "telemetry": dict(partner_id=P),
    "device_events": dict(partner_id=P, severity="warning"),
    "service_events": dict(
        partner_id=P, device_id=None, closed_at=None, component=None, sla_met=None
    ),
    "opportunities": dict(
        partner_id=P, closed_on=None, amount=1000.0, deal_registered=False, presales_support=False
    ),
    "intent_signals": dict(partner_id=P),
}
AUTO_ID = {
    "sell_through": "line_id",
    "service_events": "ticket_id",
    "opportunities": "opportunity_id",
}

PRODUCTS = [
    dict(sku="PR-1", category="printer", family="Laser 1"),
    dict(sku="PC-1", category="pc", family="Book 1"),
    dict(sku="TN-1-K", category="supplies", family="Laser 1", page_yield=3000, color="black"),
    dict(sku="TN-1-K-XL", category="supplies", family="Laser 1", page_yield=6000, color="black"),
    dict(sku="WR-1", category="warranty", family="Laser 1", extends_warranty_months=12),
    dict(sku="SV-1", category="service", family="Onsite"),
    dict(sku="AC-1", category="accessory", family="Dock"),
]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def table(name: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``rows`` of table ``name`` with every contract column (defaults for the rest)."""
    cols = list(TABLES[name].column_names)
    if name in ("telemetry", "device_events"):
        cols.append("partner_id")
    out = []
    for r in rows:
        full = {**DEFAULTS.get(name, {}), **r}
        if name in AUTO_ID and AUTO_ID[name] not in full:
            full[AUTO_ID[name]] = f"X-{next(_ids)}"
        for col in TABLES[name].columns:
            v = full.get(col.name)
            if isinstance(v, str) and col.type == "date":
                full[col.name] = date.fromisoformat(v)
            elif isinstance(v, str) and col.type == "timestamp":
                full[col.name] = ts(v)
        if isinstance(full.get("_ingested_at"), str):
            full["_ingested_at"] = ts(full["_ingested_at"])
        full.setdefault("_ingested_at", INGESTED)
        out.append(full)
    df = pd.DataFrame(out, columns=[*cols, "_ingested_at"])
    return df


def base_tables() -> dict[str, pd.DataFrame]:
    """The vendor tables every lake has: one partner and a small catalogue."""
    return {"partners": table("partners", [{}]), "products": table("products", PRODUCTS)}


def run(
    name: str,
    tables: Mapping[str, pd.DataFrame],
    cutoffs: Sequence[str | date],
    *,
    extra: Mapping[str, pd.DataFrame] | None = None,
    settings_of: Mapping[str, Mapping[str, Any]] | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Run feature function ``name`` over ``tables`` at ``cutoffs`` on DuckDB; rows sorted.

    ``settings_of``: the settings of the other functions it reads (e.g. its spine)."""
    tabs = {**base_tables(), **tables}
    inputs = Inputs.from_frames(tabs)
    engine = DuckDBEngine(memory_limit="1GB", threads=1)
    cs = as_cutoffs(list(cutoffs))
    cut = None
    try:
        views = known_views(inputs.register(engine), None)
        cut = register_cutoffs(engine, "cutoffs", cs)  # with its day grid, as a FeatureBuilder
        ex = {k: engine.register_frame(k, v) for k, v in (extra or {}).items()}
        sett = {**(settings_of or {}), name: settings}
        r = Resolver(views, cut, tuple(epoch_day(c) for c in cs), sett, extra=ex)
        out = engine.to_arrow(r.get(name)).to_pandas()
    finally:
        if cut is not None:
            drop_day_grid(cut)
        engine.close()
        inputs.close()
    keys = ("partner_id", "account_id", "device_id", "category", "color", "component")
    keys = [c for c in keys if c in out]
    keys = [*keys, "cutoff"] if "cutoff" in out else keys
    out = out.sort_values(keys).reset_index(drop=True)
    if "cutoff" in out:
        out["cutoff"] = out["cutoff"].astype(str)
    return out


def row(df: pd.DataFrame, **where: Any) -> dict[str, Any]:
    """The one row of ``df`` matching ``where``, as a dict."""
    m = pd.Series(True, index=df.index)
    for k, v in where.items():
        m &= df[k] == v
    hits = df[m]
    assert len(hits) == 1, f"{len(hits)} rows match {where}"
    return hits.iloc[0].to_dict()


def fn(name: str):
    return REGISTRY[name]
