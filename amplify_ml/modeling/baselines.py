"""Baselines: the rules and simple models each model must beat, on the same cutoffs.

Binary baselines return probabilities: a rule's score (age, error count, 0/1 of a rule) is
mapped to the hit rate it had on the training cutoffs (isotonic, monotone in the score), so
that calibration metrics mean the same for the baseline as for the model and the ranking
is the rule's own.

- propensity_to_buy: ``recency_frequency``: per category, a logistic regression on the days
  since the account last bought in it and how often it bought there (90 and 365 days).
- refresh_due: ``vendor_rule_5y`` and ``vendor_rule_7y`` (installed more than 5 / 7 years
  ago), ``age`` (the older, the likelier).
- device_failure: ``errors_30d``: error events of the device in the last 30 days.
- consumable_depletion: ``straight_line``: days until the level reaches the threshold, going
  on at the slope since the last cartridge change (30 days); ``trigger_12d_5pct`` is the
  common shipping trigger: ship when 12 days are left on that line or the level is under 5%.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from amplify_ml.errors import InvalidRequestError, ModelError

YEAR_DAYS = 365.25


def _col(df: pd.DataFrame, name: str, baseline: str) -> np.ndarray:
    if name not in df.columns:
        raise InvalidRequestError(
            f"baseline {baseline} needs the feature {name}, which the training set lacks; "
            "build it with the model's feature set"
        )
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


class RuleBaseline:
    """A score from one rule, turned into a probability by its hit rate on training rows."""

    def __init__(self, name: str, rule: Callable[[pd.DataFrame], np.ndarray], doc: str) -> None:
        self.name = name
        self.rule = rule
        self.doc = doc

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> RuleBaseline:
        s = self.rule(X)
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        self.calibrator_.fit(s, np.asarray(y, dtype=float))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.clip(self.calibrator_.predict(self.rule(X)), 0.0, 1.0)


class RecencyFrequencyBaseline:
    """Per category, logistic regression on recency and frequency of purchases there."""

    name = "recency_frequency"
    doc = "logistic regression per category on days since last purchase and purchases in 90/365 d"
    FEATURES = ("days_since_last_purchase_cat", "st_cat_lines_count_90d", "st_cat_lines_count_365d")

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        rec = _col(X, self.FEATURES[0], self.name)
        never = ~np.isfinite(rec)
        rec = np.where(never, 3650.0, rec)
        f90 = np.nan_to_num(_col(X, self.FEATURES[1], self.name))
        f365 = np.nan_to_num(_col(X, self.FEATURES[2], self.name))
        return np.column_stack([np.log1p(rec), never, np.log1p(f90), np.log1p(f365)])

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> RecencyFrequencyBaseline:
        if "category" not in X.columns:
            raise InvalidRequestError("recency_frequency needs the category key column")
        y = np.asarray(y, dtype=float)
        Z = self._design(X)
        cats = X["category"].astype(str).to_numpy()
        self.models_: dict[str, Any] = {}
        self.prior_ = float(y.mean())
        for c in np.unique(cats):
            m = cats == c
            if len(np.unique(y[m])) < 2:
                self.models_[c] = float(y[m].mean())
                continue
            self.models_[c] = LogisticRegression(C=1.0, max_iter=1000).fit(Z[m], y[m])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        Z = self._design(X)
        cats = X["category"].astype(str).to_numpy()
        out = np.full(len(X), self.prior_)
        for c, model in self.models_.items():
            m = cats == c
            if not m.any():
                continue
            out[m] = model if isinstance(model, float) else model.predict_proba(Z[m])[:, 1]
        return out


def _age_days(X: pd.DataFrame, name: str) -> np.ndarray:
    return np.nan_to_num(_col(X, "device_age_days", name), nan=0.0)


def _errors_30d(X: pd.DataFrame) -> np.ndarray:
    return np.nan_to_num(_col(X, "dev_events_error_count_30d", "errors_30d"))


@dataclass(frozen=True)
class DaysBaseline:
    """A point prediction of days to the threshold (depletion)."""

    name: str
    doc: str

    def fit(self, X: pd.DataFrame, days: np.ndarray, censored: np.ndarray) -> DaysBaseline:
        return self

    def predict_days(
        self, X: pd.DataFrame, *, threshold_pct: float, window_days: float
    ) -> np.ndarray:
        return straight_line_days(X, threshold_pct=threshold_pct, window_days=window_days)


def straight_line_days(
    X: pd.DataFrame, *, threshold_pct: float, window_days: float, slope_window: int = 30
) -> np.ndarray:
    """Days until the level reaches ``threshold_pct`` at the slope since the last change;
    the window (never within it) when the level is not falling or unknown."""
    level = _col(X, "supply_level_last", "straight_line")
    slope = _col(X, f"supply_level_slope_{slope_window}d", "straight_line")
    falling = np.isfinite(slope) & (slope < 0) & np.isfinite(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = np.where(falling, (level - threshold_pct) / -slope, window_days)
    return np.clip(days, 0.0, window_days)


def trigger_ship_day(
    X: pd.DataFrame,
    *,
    threshold_pct: float,
    window_days: float,
    days_left: float = 12.0,
    level_pct: float = 5.0,
) -> np.ndarray:
    """The day (after the cutoff) the trigger "``days_left`` days left or under
    ``level_pct``%" fires on the straight line; the window when it never does."""
    level = _col(X, "supply_level_last", "trigger_12d_5pct")
    slope = _col(X, "supply_level_slope_30d", "trigger_12d_5pct")
    line = straight_line_days(X, threshold_pct=threshold_pct, window_days=window_days)
    by_days = np.where(line < window_days, np.maximum(line - days_left, 0.0), window_days)
    falling = np.isfinite(slope) & (slope < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_level = np.where(falling, np.maximum((level - level_pct) / -slope, 0.0), window_days)
    by_level = np.where(np.isfinite(level) & (level < level_pct), 0.0, by_level)
    return np.clip(np.minimum(by_days, by_level), 0.0, window_days)


def _rule(name: str, fn: Callable[[pd.DataFrame], np.ndarray], doc: str) -> Callable[[], Any]:
    return lambda: RuleBaseline(name, fn, doc)


BASELINES: dict[str, dict[str, Callable[[], Any]]] = {
    "propensity_to_buy": {"recency_frequency": RecencyFrequencyBaseline},
    "refresh_due": {
        "vendor_rule_5y": _rule(
            "vendor_rule_5y",
            lambda X: (_age_days(X, "vendor_rule_5y") > 5 * YEAR_DAYS).astype(float),
            "the vendor's rule: installed more than 5 years ago",
        ),
        "vendor_rule_7y": _rule(
            "vendor_rule_7y",
            lambda X: (_age_days(X, "vendor_rule_7y") > 7 * YEAR_DAYS).astype(float),
            "the vendor's rule: installed more than 7 years ago",
        ),
        "age": _rule("age", lambda X: _age_days(X, "age"), "device age as the score"),
    },
    "device_failure": {
        "errors_30d": _rule(
            "errors_30d", _errors_30d, "error events of the device in the last 30 days"
        ),
    },
    "consumable_depletion": {
        "straight_line": lambda: DaysBaseline(
            "straight_line", "straight line at the 30-day slope since the last cartridge change"
        ),
        "trigger_12d_5pct": lambda: DaysBaseline(
            "trigger_12d_5pct", "ship when 12 days are left on the straight line or under 5%"
        ),
    },
}


def make_baseline(model: str, name: str) -> Any:
    """A fresh, unfitted baseline of ``model`` by name."""
    try:
        return BASELINES[model][name]()
    except KeyError:
        raise ModelError(
            f"no baseline {name!r} for {model}; known: {', '.join(sorted(BASELINES.get(model, {})))}"
        ) from None
