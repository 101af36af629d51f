"""Supplies: when each printer colour reaches its threshold, and the day to ship a cartridge.

From the depletion model's predictive distribution (P10/P50/P90 days to the threshold): ship
when the probability that the threshold comes before delivery passes ``alpha``, i.e. on the
``alpha`` quantile of the days minus the lead time. Status: ``ship now`` when that day has
come (or passed), ``soon`` within ``soon_days``, ``ok`` otherwise; a colour whose P90 lies
beyond the model's window is ``ok`` with ``beyond_window`` set (its dates are lower bounds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from amplify_ml.errors import InvalidRequestError
from amplify_ml.modeling.metrics import quantile_from_levels

LEVELS = {0.1: "p10_days", 0.5: "p50_days", 0.9: "p90_days"}
COLUMNS = [
    "partner_id",
    "account_id",
    "device_id",
    "color",
    "as_of",
    "p10_days",
    "p50_days",
    "p90_days",
    "threshold_p50_date",
    "ship_by",
    "days_to_ship",
    "status",
    "beyond_window",
    "model_version",
]


def ship_plan(
    scores: pd.DataFrame,
    *,
    alpha: float = 0.1,
    lead_time_days: float = 5,
    soon_days: int = 7,
    partners: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per device colour: days to the threshold, the ship-by date and a status,
    soonest first. ``scores``: a depletion score table (:func:`amplify_ml.scoring.score`)."""
    if not 0 < alpha < 1:
        raise InvalidRequestError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    if lead_time_days < 0:
        raise InvalidRequestError(f"lead time must be 0 days or more, got {lead_time_days}")
    missing = [c for c in ("as_of", *LEVELS.values()) if c not in scores.columns]
    if missing:
        raise InvalidRequestError(
            f"not a depletion score table: missing {', '.join(missing)}; score "
            "consumable_depletion first (amplify score consumable_depletion)"
        )
    df = scores
    if partners is not None:
        df = df[df["partner_id"].isin(list(partners))]
    df = df.reset_index(drop=True)
    q = quantile_from_levels({lv: df[c].to_numpy(float) for lv, c in LEVELS.items()}, alpha)
    ship_day = np.floor(q - lead_time_days)
    as_of = pd.to_datetime(df["as_of"]).dt.normalize()
    out = pd.DataFrame(
        {k: df[k] for k in ("partner_id", "account_id", "device_id", "color") if k in df}
    )
    out["as_of"] = as_of.dt.date
    for c in LEVELS.values():
        out[c] = df[c].to_numpy(float).round(1)
    out["threshold_p50_date"] = (as_of + pd.to_timedelta(np.ceil(df["p50_days"]), "D")).dt.date
    days_to_ship = np.maximum(ship_day, 0).astype(int)
    out["ship_by"] = (as_of + pd.to_timedelta(days_to_ship, "D")).dt.date
    out["days_to_ship"] = days_to_ship
    beyond = df["beyond_window"].astype(bool).to_numpy() if "beyond_window" in df else False
    status = np.where(ship_day <= 0, "ship now", np.where(ship_day <= soon_days, "soon", "ok"))
    out["status"] = np.where(beyond & (status == "ok"), "ok", status)
    out["beyond_window"] = beyond
    out["model_version"] = df.get("model_version", None)
    order = {"ship now": 0, "soon": 1, "ok": 2}
    out = out.assign(_o=out["status"].map(order)).sort_values(
        ["_o", "days_to_ship", "p50_days", "partner_id", "device_id", "color"], kind="stable"
    )
    return out.drop(columns="_o").reset_index(drop=True)[[c for c in COLUMNS if c in out]]


def status_counts(plan: pd.DataFrame) -> dict[str, int]:
    """How many device colours are in each status."""
    return {s: int((plan["status"] == s).sum()) for s in ("ship now", "soon", "ok")}
