"""Evaluation metrics: pure functions of labels and scores, hand-checked in the tests.

Binary: ROC AUC, PR AUC (average precision), top-decile lift, Brier score, expected
calibration error, precision and recall at an alert budget, and the skill ratio against an
oracle. Depletion (days to threshold, with censoring): MAE on observed events, interval
coverage that counts censored rows only where their outcome is known, and a shipping
simulation that counts stockouts and toner thrown away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from amplify_ml.errors import InvalidRequestError


def _arrays(y: object, p: object) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=float)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.shape != p_arr.shape:
        raise InvalidRequestError(
            f"labels ({y_arr.shape}) and scores ({p_arr.shape}) differ in length"
        )
    if np.isnan(p_arr).any():
        raise InvalidRequestError("scores hold NaN; score every row before evaluating")
    return y_arr, p_arr


def roc_auc(y: object, p: object) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y_arr, p_arr = _arrays(y, p)
    if len(np.unique(y_arr)) < 2:
        return float("nan")
    return float(roc_auc_score(y_arr, p_arr))


def pr_auc(y: object, p: object) -> float:
    """Average precision (area under the precision-recall curve); NaN without positives."""
    y_arr, p_arr = _arrays(y, p)
    if y_arr.sum() == 0:
        return float("nan")
    return float(average_precision_score(y_arr, p_arr))


def brier(y: object, p: object) -> float:
    """Mean squared error of probabilities."""
    y_arr, p_arr = _arrays(y, p)
    return float(np.mean((p_arr - y_arr) ** 2))


def expected_calibration_error(y: object, p: object, n_bins: int = 10) -> float:
    """ECE with equal-mass bins: mean |observed rate - mean probability|, weighted by bin size."""
    y_arr, p_arr = _arrays(y, p)
    if len(y_arr) == 0:
        return float("nan")
    order = np.argsort(p_arr, kind="stable")
    bins = np.array_split(order, min(n_bins, len(order)))
    total = len(y_arr)
    return float(
        sum(len(b) / total * abs(y_arr[b].mean() - p_arr[b].mean()) for b in bins if len(b))
    )


def ece_by_chance(p: object, n_bins: int = 10, draws: int = 100, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these probabilities scores by chance alone on
    this many rows: the mean ECE (same equal-mass bins) over ``draws`` label sets drawn as
    Bernoulli(p). On a few thousand rows it is 0.01-0.03, as large as a calibration error worth
    refusing, so the gate judges the ECE beyond it. Monte Carlo rather than the normal
    approximation, which overstates it in bins of rare events. Rows are taken as independent;
    repeated accounts or devices make the real chance part larger, so this is a floor."""
    p_arr = np.asarray(p, dtype=float)
    if len(p_arr) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    order = np.argsort(p_arr, kind="stable")
    total = 0.0
    chunk = max(1, 2_000_000 // draws)
    for b in np.array_split(order, min(n_bins, len(order))):
        pb = p_arr[b]
        hits = np.zeros(draws)
        for start in range(0, len(pb), chunk):
            part = pb[start : start + chunk]
            hits += (rng.random((draws, len(part))) < part).sum(axis=1)
        total += len(pb) / len(p_arr) * float(np.mean(np.abs(hits / len(pb) - pb.mean())))
    return total


def _top(p: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the top ``fraction`` of scores (at least one), ties broken by position."""
    k = max(1, int(np.ceil(fraction * len(p))))
    return np.argsort(-p, kind="stable")[:k]


def lift_at(y: object, p: object, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` of scores over the overall positive rate."""
    y_arr, p_arr = _arrays(y, p)
    base = y_arr.mean() if len(y_arr) else 0.0
    if base == 0:
        return float("nan")
    return float(y_arr[_top(p_arr, fraction)].mean() / base)


def precision_recall_at(y: object, p: object, fraction: float) -> tuple[float, float]:
    """Precision and recall when alerting on the top ``fraction`` of scores (an alert budget)."""
    y_arr, p_arr = _arrays(y, p)
    top = _top(p_arr, fraction)
    hits = y_arr[top].sum()
    positives = y_arr.sum()
    return float(hits / len(top)), float(hits / positives) if positives else float("nan")


def expected_roc_auc(p_true: object, p: object) -> float:
    """ROC AUC of ``p`` expected over the outcomes the true probabilities ``p_true`` give: each
    row counts as a positive with weight ``p_true`` and as a negative with ``1 - p_true``
    (every pair of rows weighed by the chance that the first is the positive one). Free of
    the draw of the outcomes, it tells a real gain from luck on the evaluation rows; NaN
    without rows or when every ``p_true`` is 0 or 1 alike."""
    q_arr, p_arr = _arrays(p_true, p)
    q_arr = np.clip(q_arr, 0.0, 1.0)
    if len(q_arr) == 0 or q_arr.sum() == 0 or (1 - q_arr).sum() == 0:
        return float("nan")
    y = np.r_[np.ones(len(q_arr)), np.zeros(len(q_arr))]
    return float(roc_auc_score(y, np.r_[p_arr, p_arr], sample_weight=np.r_[q_arr, 1 - q_arr]))


def skill_ratio(auc: float, auc_oracle: float) -> float:
    """(AUC - 0.5) / (AUC_oracle - 0.5): the share of the oracle's skill a model reaches."""
    if not np.isfinite(auc) or not np.isfinite(auc_oracle) or auc_oracle <= 0.5:
        return float("nan")
    return float((auc - 0.5) / (auc_oracle - 0.5))


def binary_report(y: object, p: object) -> dict[str, float]:
    """The binary metrics at once."""
    y_arr, p_arr = _arrays(y, p)
    return {
        "n": float(len(y_arr)),
        "positives": float(y_arr.sum()),
        "base_rate": float(y_arr.mean()) if len(y_arr) else float("nan"),
        "roc_auc": roc_auc(y_arr, p_arr),
        "pr_auc": pr_auc(y_arr, p_arr),
        "lift_top_decile": lift_at(y_arr, p_arr, 0.1),
        "brier": brier(y_arr, p_arr),
        "ece": expected_calibration_error(y_arr, p_arr),
        "ece_by_chance": ece_by_chance(p_arr),
        "mean_score": float(p_arr.mean()) if len(p_arr) else float("nan"),
    }


# -- depletion: days to threshold with censoring ---------------------------------------------


def mae_observed(days: object, censored: object, predicted: object) -> float:
    """Mean absolute error in days over rows whose event was observed (not censored)."""
    d = np.asarray(days, dtype=float)
    c = np.asarray(censored, dtype=bool)
    q = np.asarray(predicted, dtype=float)
    observed = ~c & np.isfinite(d)
    if not observed.any():
        return float("nan")
    return float(np.mean(np.abs(d[observed] - q[observed])))


def interval_coverage(days: object, censored: object, low: object, high: object) -> float:
    """Share of rows whose outcome lies in [low, high].

    A censored row (the event not seen by day ``days``) counts only where its outcome is
    already known: it is a miss if ``days`` lies beyond ``high`` (the event came later than
    the interval allows); if ``days`` is inside the interval its outcome is unknown and the
    row is left out.
    """
    d = np.asarray(days, dtype=float)
    c = np.asarray(censored, dtype=bool)
    lo = np.asarray(low, dtype=float)
    hi = np.asarray(high, dtype=float)
    inside = ~c & (d >= lo) & (d <= hi)
    known = ~c | (d > hi)
    if not known.any():
        return float("nan")
    return float(inside[known].sum() / known.sum())


@dataclass(frozen=True)
class ShippingOutcome:
    """What a shipping rule did over a set of device-colors, planned at one cutoff."""

    rows: int
    stockouts: int
    stockout_rate: float
    stockout_days_mean: float
    """Mean days without toner per stockout (threshold reached before the cartridge arrived)."""
    waste_days_mean: float
    """Mean days of toner left in the old cartridge when the new one arrives (thrown away
    when the customer swaps on delivery), over rows that did not stock out; for rows whose
    threshold was not seen within the window it is a lower bound (window - arrival)."""

    def to_dict(self) -> dict[str, float]:
        return {
            "rows": self.rows,
            "stockouts": self.stockouts,
            "stockout_rate": self.stockout_rate,
            "stockout_days_mean": self.stockout_days_mean,
            "waste_days_mean": self.waste_days_mean,
        }


def shipping_outcome(
    days_to_threshold: object,
    censored: object,
    ship_day: object,
    *,
    window_days: float,
    lead_time_days: float = 5,
) -> ShippingOutcome:
    """Simulate shipping each row's cartridge on ``ship_day`` (days after the cutoff).

    It arrives ``lead_time_days`` later. If the threshold was reached first, that is a
    stockout lasting (arrival - threshold day); otherwise the days between arrival and the
    threshold are toner thrown away. A censored row (threshold not reached within
    ``window_days``) cannot stock out; its waste is counted up to the window end.
    """
    t = np.asarray(days_to_threshold, dtype=float)
    c = np.asarray(censored, dtype=bool)
    arrival = np.maximum(np.asarray(ship_day, dtype=float), 0.0) + lead_time_days
    if not (len(t) == len(c) == len(arrival)):
        raise InvalidRequestError("days, censored flags and ship days differ in length")
    t_eff = np.where(c | ~np.isfinite(t), window_days, t)
    stockout = ~c & np.isfinite(t) & (t < arrival)
    waste = np.maximum(t_eff - arrival, 0.0)[~stockout]
    short = (arrival - t)[stockout]
    return ShippingOutcome(
        rows=len(t),
        stockouts=int(stockout.sum()),
        stockout_rate=float(stockout.mean()) if len(t) else float("nan"),
        stockout_days_mean=float(short.mean()) if len(short) else 0.0,
        waste_days_mean=float(waste.mean()) if len(waste) else 0.0,
    )


def quantile_from_levels(quantiles: Mapping[float, object], alpha: float) -> np.ndarray:
    """The ``alpha`` quantile interpolated from predicted quantiles (e.g. P10, P50, P90).

    Linear between the given levels, and extrapolated linearly beyond the outer ones
    (never below 0 days).
    """
    levels = sorted(quantiles)
    values = np.vstack([np.asarray(quantiles[q], dtype=float) for q in levels])
    if alpha <= levels[0]:
        lo, hi = 0, 1
    elif alpha >= levels[-1]:
        lo, hi = len(levels) - 2, len(levels) - 1
    else:
        hi = next(i for i, q in enumerate(levels) if q >= alpha)
        lo = hi - 1
    w = (alpha - levels[lo]) / (levels[hi] - levels[lo])
    return np.maximum(values[lo] + w * (values[hi] - values[lo]), 0.0)


def cluster_bootstrap(
    stat: Callable[[np.ndarray], float],
    clusters: object,
    *,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of a statistic over resamples of whole clusters.

    ``stat`` takes, per row, how many times the resample drew it (0, 1, 2, ...: a weight);
    ``clusters`` gives each row's cluster (an account or a device: its rows at several
    cutoffs, categories or colours are not independent, so they are drawn together). Each
    resample draws as many clusters as there are, with replacement. The interval says how
    much the metric would move on another draw of the same population; it does not cover a
    change of the population. NaN when there are fewer than 2 clusters or every resample
    gives a non-finite value."""
    if not 0 < level < 1:
        raise InvalidRequestError(f"level must be between 0 and 1, got {level}")
    if n_resamples < 1:
        raise InvalidRequestError(f"n_resamples must be at least 1, got {n_resamples}")
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1 if len(codes) else 0
    if k < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        drawn = np.bincount(rng.integers(0, k, k), minlength=k)
        values[i] = stat(drawn[codes].astype(float))
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return float(lo), float(hi)


def weighted_roc_auc(y: object, p: object) -> Callable[[np.ndarray], float]:
    """ROC AUC of ``p`` against ``y`` with row weights, as a function of the weights (for
    :func:`cluster_bootstrap`): the rows are sorted once, each call is a few linear passes.
    Ties count one half, as in :func:`roc_auc`; NaN when a class has no weight."""
    y_arr, p_arr = _arrays(y, p)
    order = np.argsort(p_arr, kind="stable")
    ys = y_arr[order] > 0.5
    group = np.unique(p_arr[order], return_inverse=True)[1].ravel()
    n_groups = int(group.max()) + 1 if len(group) else 0

    def auc(weights: np.ndarray) -> float:
        w = np.asarray(weights, dtype=float)[order]
        pos = np.bincount(group, np.where(ys, w, 0.0), minlength=n_groups)
        neg = np.bincount(group, np.where(ys, 0.0, w), minlength=n_groups)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))

    return auc


def compare(model: Mapping[str, float], baseline: Mapping[str, float], key: str) -> float:
    """``model[key] - baseline[key]`` (NaN-safe) for side-by-side tables."""
    a, b = model.get(key, float("nan")), baseline.get(key, float("nan"))
    return float(a - b)
