"""Backtest plots that training logs to MLflow, each returned as a ``matplotlib`` Figure.

Every function builds its own :class:`matplotlib.figure.Figure` with an Agg canvas attached,
so nothing here touches pyplot's global state or changes the process-wide backend; call
:func:`save` to write a PNG (it also closes the figure if pyplot happens to manage it).

- :func:`roc_pr`: ROC and precision-recall curves side by side, one line per scorer.
- :func:`calibration`: reliability diagram (equal-mass bins, as in the ECE) with a histogram
  of the predicted probabilities below.
- :func:`lift`: cumulative gains and cumulative lift by decile, one line per scorer.
- :func:`shap_summary`: mean |SHAP| bar chart and a beeswarm-like strip per feature.
- :func:`depletion`: predicted P50 (with the P10-P90 band) against realised days to
  threshold, and the coverage of the P10-P90 interval.
- :func:`metrics_by_cutoff`: one panel per metric, one line per scorer across cutoffs.
- :func:`shipping`: stockouts against toner thrown away, per shipping policy and alpha.

Scorer names decide the line style where several scorers share a plot: a name containing
"oracle" (any case) is drawn as the oracle (dotted, dark grey); the scorer named "model" (any
case), or failing that the first scorer that is not an oracle, is drawn as the model (solid,
thick, ``C0``); every other scorer is a baseline (dashed, ``C1``, ``C2``, ...).

Numbers shown in legends and titles come from :mod:`amplify_ml.modeling.metrics`, so they
match the metrics logged next to the plots. Invalid input raises
:class:`~amplify_ml.errors.InvalidRequestError` naming the function, the argument and the fix.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from sklearn.metrics import precision_recall_curve, roc_curve

from amplify_ml.errors import InvalidRequestError
from amplify_ml.modeling import metrics as M

__all__ = [
    "DEFAULT_DPI",
    "calibration",
    "depletion",
    "lift",
    "metrics_by_cutoff",
    "roc_pr",
    "save",
    "shap_summary",
    "shipping",
]

DEFAULT_DPI = 120
"""Resolution :func:`save` writes at: sharp in the MLflow UI, ~100-300 kB per plot."""

_GREY = (0.62, 0.62, 0.62, 0.8)
_QUANTILE_COLUMNS = ("p10_days", "p50_days", "p90_days")
_AXIS_LABELS = {
    "waste_days_mean": "toner thrown away (mean days left when the cartridge arrives)",
    "stockout_rate": "stockout rate (share of rows)",
    "stockouts": "stockouts (rows)",
    "stockout_days_mean": "mean days without toner per stockout",
}


# -- validation ------------------------------------------------------------------------------


def _fail(where: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"plots.{where}: {message}")


def _vector(
    values: object, name: str, where: str, *, n: int | None = None, finite: bool = True
) -> np.ndarray:
    """``values`` as a 1-D float array of length ``n`` (if given), finite unless told."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"{name} is not numeric ({exc}); pass numbers") from None
    if arr.ndim != 1:
        raise _fail(
            where, f"{name} must be one-dimensional, got shape {arr.shape}; pass one value per row"
        )
    if n is not None and len(arr) != n:
        raise _fail(
            where,
            f"{name} has {len(arr)} values but the labels have {n}; "
            "pass one value per row, in the same order",
        )
    if len(arr) == 0:
        raise _fail(where, f"{name} is empty; pass at least one row")
    if finite and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise _fail(
            where, f"{name} holds {bad} NaN or infinite values; score every row before plotting"
        )
    return arr


def _binary(values: object, name: str, where: str, *, n: int | None = None) -> np.ndarray:
    """``values`` as a 0/1 float array (bools accepted)."""
    arr = _vector(values, name, where, n=n, finite=False)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        shown = ", ".join(str(v) for v in pd.unique(arr[bad])[:5])
        raise _fail(
            where,
            f"{name} must be binary (0/1 or bool); found {int(bad.sum())} other values "
            f"(e.g. {shown}); map it to 0/1 and drop unlabelled rows first",
        )
    return arr


def _scorers(scores: Mapping[str, object], n: int, where: str) -> dict[str, np.ndarray]:
    if not isinstance(scores, Mapping) or not scores:
        raise _fail(
            where,
            "scores must be a non-empty mapping of scorer name to one score per row, "
            'e.g. {"model": p, "baseline_recency": b}',
        )
    return {
        str(name): _vector(values, f"scores[{name!r}]", where, n=n)
        for name, values in scores.items()
    }


def _frame(table: object, name: str, where: str, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise _fail(where, f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise _fail(
            where,
            f"{name} lacks column(s) {missing}; it has {list(map(str, table.columns))[:12]}",
        )
    if table.empty:
        raise _fail(where, f"{name} is empty; pass at least one row")
    return table


def _numeric_column(table: pd.DataFrame, column: str, name: str, where: str) -> np.ndarray:
    try:
        return table[column].astype("float64").to_numpy()
    except (TypeError, ValueError):
        raise _fail(
            where, f"{name}[{column!r}] is not numeric (dtype {table[column].dtype}); pass numbers"
        ) from None


# -- drawing helpers -------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A figure with an Agg canvas, independent of pyplot."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Line style per scorer: model solid and thick, baselines dashed, oracle dotted."""
    oracles = {n for n in names if "oracle" in n.lower()}
    model = next((n for n in names if n.lower() == "model"), None)
    if model is None:
        model = next((n for n in names if n not in oracles), None)
    styles: dict[str, dict[str, Any]] = {}
    k = 0
    for n in names:
        if n == model:
            styles[n] = {"color": "C0", "linestyle": "-", "linewidth": 2.2, "zorder": 3}
        elif n in oracles:
            styles[n] = {"color": "0.25", "linestyle": ":", "linewidth": 1.8, "zorder": 2}
        else:
            styles[n] = {"color": f"C{1 + k % 9}", "linestyle": "--", "linewidth": 1.4}
            k += 1
    return styles


def _finish(fig: Figure, title: str | None, subtitle: str) -> None:
    fig.suptitle(f"{title} — {subtitle}" if title else subtitle, fontsize=11)


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


# -- binary classifiers ----------------------------------------------------------------------


def roc_pr(y: object, scores: Mapping[str, object], *, title: str | None = None) -> Figure:
    """ROC (left) and precision-recall (right) curves, one line per scorer.

    ``y``: n binary labels (0/1 or bool) with both classes present. ``scores``: scorer name
    -> n finite scores (any monotone score; higher means more likely positive), e.g. the
    model, each baseline and the oracle. The legends give ROC AUC and PR AUC (average
    precision) as :func:`metrics.roc_auc` / :func:`metrics.pr_auc` compute them, to 3
    decimals; the PR panel has a line at the base rate (a random scorer's precision).
    """
    y_arr = _binary(y, "y", "roc_pr")
    positives = int(y_arr.sum())
    if positives in (0, len(y_arr)):
        raise _fail(
            "roc_pr",
            f"y has only one class ({positives} positives of {len(y_arr)} rows); ROC and PR "
            "curves need both; evaluate on a window or cutoff with positives and negatives",
        )
    arrays = _scorers(scores, len(y_arr), "roc_pr")
    styles = _styles(list(arrays))
    base_rate = positives / len(y_arr)

    fig = _figure(11.5, 5.2)
    ax_roc, ax_pr = fig.subplots(1, 2)
    ax_roc.plot([0, 1], [0, 1], color="0.7", linewidth=1, label="chance (AUC 0.500)")
    for name, p in arrays.items():
        fpr, tpr, _ = roc_curve(y_arr, p)
        ax_roc.plot(fpr, tpr, label=f"{name} (AUC {M.roc_auc(y_arr, p):.3f})", **styles[name])
        precision, recall, _ = precision_recall_curve(y_arr, p)
        ax_pr.plot(
            recall,
            precision,
            drawstyle="steps-post",
            label=f"{name} (PR AUC {M.pr_auc(y_arr, p):.3f})",
            **styles[name],
        )
    ax_pr.axhline(
        base_rate, color="0.6", linewidth=1, linestyle="-.", label=f"base rate {base_rate:.3f}"
    )
    ax_roc.set(
        title="ROC",
        xlabel="false positive rate",
        ylabel="true positive rate (recall)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax_roc.set_aspect("equal")
    ax_pr.set(title="Precision-recall", xlabel="recall", ylabel="precision", xlim=(0, 1))
    ax_pr.set_ylim(0, 1.01)
    ax_roc.legend(loc="lower right", fontsize="small")
    ax_pr.legend(loc="upper right", fontsize="small")
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
    _finish(fig, title, f"{len(y_arr):,} rows, {positives:,} positives ({base_rate:.1%})")
    return fig


def calibration(y: object, p: object, n_bins: int = 10, *, title: str | None = None) -> Figure:
    """Reliability diagram with the ECE in the title, and a histogram of ``p`` below.

    ``y``: n binary labels; ``p``: n probabilities in [0, 1]. The points are the mean
    predicted probability vs the observed positive rate in ``n_bins`` equal-mass bins (the
    bins :func:`metrics.expected_calibration_error` uses), with +-1 binomial standard error;
    the histogram below counts rows in ``n_bins`` equal-width bins of ``p``.
    """
    y_arr = _binary(y, "y", "calibration")
    p_arr = _vector(p, "p", "calibration", n=len(y_arr))
    if (p_arr < 0).any() or (p_arr > 1).any():
        raise _fail(
            "calibration",
            f"p must be probabilities in [0, 1]; got range [{p_arr.min():.3g}, "
            f"{p_arr.max():.3g}]; pass predict_proba output, not raw scores",
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise _fail("calibration", f"n_bins must be a positive integer, got {n_bins!r}")

    order = np.argsort(p_arr, kind="stable")
    bins = [b for b in np.array_split(order, min(int(n_bins), len(order))) if len(b)]
    mean_p = np.array([p_arr[b].mean() for b in bins])
    observed = np.array([y_arr[b].mean() for b in bins])
    stderr = np.array(
        [math.sqrt(o * (1 - o) / len(b)) for o, b in zip(observed, bins, strict=True)]
    )
    ece = M.expected_calibration_error(y_arr, p_arr, int(n_bins))

    fig = _figure(6.2, 7.0)
    ax, ax_hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], color="0.7", linewidth=1, label="perfectly calibrated")
    ax.errorbar(
        mean_p,
        observed,
        yerr=stderr,
        marker="o",
        color="C0",
        capsize=2,
        label=f"model ({len(bins)} equal-mass bins, ±1 s.e.)",
    )
    ax.set(
        title=f"Reliability — ECE {ece:.3f}",
        ylabel="observed positive rate",
        xlim=(0, 1),
        ylim=(-0.02, 1.02),
    )
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    ax_hist.hist(p_arr, bins=np.linspace(0, 1, int(n_bins) + 1), color="C0", alpha=0.7)
    ax_hist.set(xlabel="predicted probability", ylabel="rows")
    ax_hist.grid(alpha=0.3)
    _finish(fig, title, f"calibration on {len(y_arr):,} rows")
    return fig


def lift(y: object, scores: Mapping[str, object], *, title: str | None = None) -> Figure:
    """Cumulative gains (left) and cumulative lift (right) at each decile, one line per scorer.

    ``y``: n binary labels with at least one positive; ``scores``: scorer name -> n finite
    scores. At decile k the top k/10 of rows by score are targeted (as
    :func:`metrics.precision_recall_at` and :func:`metrics.lift_at` do): gains is the share of
    all positives among them, lift their positive rate over the base rate. The legends give
    the top-decile values.
    """
    y_arr = _binary(y, "y", "lift")
    if y_arr.sum() == 0:
        raise _fail(
            "lift",
            f"y has no positives in {len(y_arr)} rows; gains and lift are undefined; "
            "evaluate on a window or cutoff with positives",
        )
    arrays = _scorers(scores, len(y_arr), "lift")
    styles = _styles(list(arrays))
    fractions = np.arange(1, 11) / 10
    pct = fractions * 100

    fig = _figure(11.5, 5.0)
    ax_gain, ax_lift = fig.subplots(1, 2)
    ax_gain.plot([0, 100], [0, 100], color="0.7", linewidth=1, label="random")
    ax_lift.axhline(1.0, color="0.7", linewidth=1, label="random (lift 1)")
    for name, p in arrays.items():
        gains = np.array([M.precision_recall_at(y_arr, p, f)[1] for f in fractions])
        lifts = np.array([M.lift_at(y_arr, p, f) for f in fractions])
        ax_gain.plot(
            [0, *pct],
            [0, *(gains * 100)],
            marker="o",
            markersize=3.5,
            label=f"{name} (top 10%: {gains[0]:.1%} of positives)",
            **styles[name],
        )
        ax_lift.plot(
            pct,
            lifts,
            marker="o",
            markersize=3.5,
            label=f"{name} (lift@10% {lifts[0]:.2f})",
            **styles[name],
        )
    ax_gain.set(
        title="Cumulative gains",
        xlabel="rows targeted, top % by score",
        ylabel="% of positives captured",
        xlim=(0, 100),
        ylim=(0, 101),
    )
    ax_lift.set(
        title="Cumulative lift",
        xlabel="rows targeted, top % by score",
        ylabel="positive rate / base rate",
        xlim=(5, 105),
    )
    ax_lift.set_ylim(bottom=0)
    for ax in (ax_gain, ax_lift):
        ax.set_xticks(np.arange(0, 101, 10))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is ax_gain else "upper right", fontsize="small")
    _finish(fig, title, f"{len(y_arr):,} rows, base rate {y_arr.mean():.1%}")
    return fig


# -- explanations ----------------------------------------------------------------------------


def _swarm_offsets(x: np.ndarray, rng: np.random.Generator, width: float = 0.4) -> np.ndarray:
    """Vertical jitter proportional to the local density of ``x`` (a cheap beeswarm)."""
    finite = np.isfinite(x)
    jitter = rng.uniform(-1.0, 1.0, len(x))
    if finite.sum() < 2 or np.ptp(x[finite]) == 0:
        return jitter * width
    counts, edges = np.histogram(x[finite], bins=min(50, max(5, int(finite.sum() ** 0.5))))
    which = np.clip(np.searchsorted(edges, np.nan_to_num(x), side="right") - 1, 0, len(counts) - 1)
    return jitter * width * counts[which] / counts.max()


def _value_colors(column: pd.Series, cmap: Any) -> np.ndarray:
    """RGBA per row: colormap of the value's rank for numeric columns, grey otherwise/missing."""
    colors = np.tile(np.array(_GREY), (len(column), 1))
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.astype("float64")
        ranks = values.rank(pct=True, method="average").to_numpy()
        known = np.isfinite(values.to_numpy()) & np.isfinite(ranks)
        if known.any():
            lo, hi = np.nanmin(ranks[known]), np.nanmax(ranks[known])
            scaled = (ranks[known] - lo) / (hi - lo) if hi > lo else np.full(known.sum(), 0.5)
            colors[known] = cmap(scaled)
    return colors


def shap_summary(
    contributions: pd.DataFrame,
    features: pd.DataFrame,
    top: int = 20,
    *,
    title: str | None = None,
    max_points: int = 1000,
    seed: int = 0,
) -> Figure:
    """Top ``top`` features by mean |SHAP|: a bar chart and a beeswarm-like strip per feature.

    ``contributions``: n rows x features SHAP values (as the estimators' ``contributions``
    return, a ``_bias`` column is ignored); ``features``: the n rows the contributions explain,
    holding at least the same feature columns, in the same row order. In the strip each point
    is one row, coloured by the rank of its feature value (blue low, red high); non-numeric
    (categorical, text) columns and missing values are grey. At most ``max_points`` rows
    (a fixed random sample, ``seed``) are drawn in the strip; the bars use every row.
    The figure has three axes: bars, strip, colour bar.
    """
    where = "shap_summary"
    _frame(contributions, "contributions", where, [])
    _frame(features, "features", where, [])
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise _fail(where, f"top must be a positive integer, got {top!r}")
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise _fail(where, f"max_points must be a positive integer, got {max_points!r}")
    if len(contributions) != len(features):
        raise _fail(
            where,
            f"contributions has {len(contributions)} rows but features has {len(features)}; "
            "pass the feature rows the contributions were computed on",
        )
    shap = contributions.drop(columns="_bias", errors="ignore")
    if shap.shape[1] == 0:
        raise _fail(where, "contributions has no feature columns besides _bias")
    if not (shap.columns.is_unique and features.columns.is_unique):
        raise _fail(where, "column names must be unique in contributions and features")
    missing = [c for c in shap.columns if c not in features.columns]
    if missing:
        raise _fail(
            where,
            f"features lacks column(s) {missing[:10]} that contributions explains; "
            "pass the same feature frame the model scored",
        )
    non_numeric = [c for c in shap.columns if not pd.api.types.is_numeric_dtype(shap[c].dtype)]
    if non_numeric:
        raise _fail(
            where,
            f"contributions column(s) {non_numeric[:10]} are not numeric; pass SHAP values "
            "(e.g. the estimator's contributions(X))",
        )

    importance = shap.abs().mean().sort_values(ascending=False, kind="stable").head(int(top))
    names = [str(c) for c in importance.index]
    ypos = np.arange(len(names))[::-1]

    rng = np.random.default_rng(seed)
    n = len(shap)
    rows = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else None
    cmap = colormaps["coolwarm"]

    fig = _figure(12.0, max(3.5, 0.32 * len(names) + 1.8))
    ax_bar, ax_swarm = fig.subplots(1, 2, sharey=True, width_ratios=[1.0, 1.7])
    ax_bar.barh(ypos, importance.to_numpy(), color="C0", alpha=0.85)
    ax_bar.set_yticks(ypos, names, fontsize="small")
    ax_bar.set(
        title=f"Mean |SHAP| (top {len(names)} of {shap.shape[1]} features)",
        xlabel="mean |SHAP value| (model output units)",
    )
    ax_bar.grid(axis="x", alpha=0.3)
    for name, y0 in zip(importance.index, ypos, strict=True):
        values = shap[name].astype("float64")
        column = features[name]
        if rows is not None:
            values, column = values.iloc[rows], column.iloc[rows]
        x = values.to_numpy()
        ax_swarm.scatter(
            x,
            y0 + _swarm_offsets(x, rng),
            c=_value_colors(column, cmap),
            s=6,
            linewidths=0,
            rasterized=True,
        )
    ax_swarm.axvline(0, color="0.5", linewidth=0.8)
    shown = f"{min(n, max_points):,} of {n:,} rows"
    ax_swarm.set(
        title=f"SHAP value per row ({shown})",
        xlabel="SHAP value (impact on model output); grey: non-numeric or missing value",
    )
    ax_swarm.grid(axis="x", alpha=0.3)
    ax_swarm.tick_params(axis="y", left=False)
    colorbar = fig.colorbar(
        ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=ax_swarm, ticks=[0, 1], shrink=0.8
    )
    colorbar.ax.set_yticklabels(["low", "high"])
    colorbar.set_label("feature value (rank)")
    _finish(fig, title, "feature contributions (SHAP)")
    return fig


# -- depletion -------------------------------------------------------------------------------


def depletion(
    days: object,
    censored: object,
    quantiles: pd.DataFrame,
    baseline_days: Mapping[str, object] | None = None,
    *,
    title: str | None = None,
    max_points: int = 2000,
    seed: int = 0,
) -> Figure:
    """Predicted days to threshold against realised days, and P10-P90 interval coverage.

    ``days``: n realised days to threshold (for censored rows: days observed without reaching
    it; NaN allowed there); ``censored``: n flags (bool or 0/1), true where the threshold was
    not seen; ``quantiles``: n rows (same order) with columns ``p10_days``, ``p50_days``,
    ``p90_days`` (as ``CensoredQuantileRegressor.predict_frame`` returns); ``baseline_days``:
    optional name -> n predicted days (e.g. the straight-line extrapolation; NaN/inf where it
    has no prediction).

    Left: predicted P50 (bars P10-P90) vs realised days on observed rows, with the baselines
    as further series; MAE (:func:`metrics.mae_observed`) in the legend. Right: observed rows
    sorted by P50, the P10-P90 band and the realised days; the title gives the coverage
    (:func:`metrics.interval_coverage`, which counts censored rows where their outcome is
    known). At most ``max_points`` observed rows (a fixed random sample) are drawn; the
    metrics use every row.
    """
    where = "depletion"
    d = _vector(days, "days", where, finite=False)
    n = len(d)
    c = _binary(censored, "censored", where, n=n).astype(bool)
    _frame(quantiles, "quantiles", where, _QUANTILE_COLUMNS)
    if len(quantiles) != n:
        raise _fail(
            where,
            f"quantiles has {len(quantiles)} rows but days has {n}; "
            "pass the predictions for the same rows, in the same order",
        )
    p10, p50, p90 = (_numeric_column(quantiles, q, "quantiles", where) for q in _QUANTILE_COLUMNS)
    for name, q in zip(_QUANTILE_COLUMNS, (p10, p50, p90), strict=True):
        if not np.isfinite(q).all():
            raise _fail(
                where, f"quantiles[{name!r}] holds NaN or infinite values; predict every row"
            )
    if ((p10 > p50 + 1e-9) | (p50 > p90 + 1e-9)).any():
        raise _fail(where, "quantiles are not ordered p10 <= p50 <= p90 on every row; sort them")
    if ((~c) & ~np.isfinite(d)).any():
        raise _fail(
            where,
            "days is NaN or infinite on rows not marked censored; "
            "give the realised days or mark the row censored",
        )
    baselines: dict[str, np.ndarray] = {}
    if baseline_days is not None:
        if not isinstance(baseline_days, Mapping):
            raise _fail(where, "baseline_days must be a mapping of name to predicted days, or None")
        baselines = {
            str(k): _vector(v, f"baseline_days[{k!r}]", where, n=n, finite=False)
            for k, v in baseline_days.items()
        }
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise _fail(where, f"max_points must be a positive integer, got {max_points!r}")

    observed = ~c
    coverage = M.interval_coverage(d, c, p10, p90)
    mae = M.mae_observed(d, c, p50)
    idx = np.flatnonzero(observed)
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_points, replace=False))

    fig = _figure(12.0, 5.4)
    ax_scatter, ax_band = fig.subplots(1, 2)
    if len(idx) == 0:
        for ax in (ax_scatter, ax_band):
            _no_data(ax, f"no observed events (all {n:,} rows censored)")
    else:
        x = d[idx]
        ax_scatter.errorbar(
            x,
            p50[idx],
            yerr=[p50[idx] - p10[idx], p90[idx] - p50[idx]],
            fmt="o",
            markersize=3,
            elinewidth=0.6,
            alpha=0.55,
            color="C0",
            label=f"model P50, bars P10-P90 (MAE {mae:.1f} d)",
        )
        markers = ["x", "+", "s", "^", "v", "D"]
        for k, (name, b) in enumerate(baselines.items()):
            has = np.isfinite(b)
            mae_b = M.mae_observed(d[has], c[has], b[has])
            gap = "" if has[observed].all() else f", {int((~has & observed).sum())} rows unscored"
            shown = idx[has[idx]]
            ax_scatter.scatter(
                d[shown],
                b[shown],
                marker=markers[k % len(markers)],
                s=14,
                alpha=0.6,
                color=f"C{1 + k % 9}",
                label=f"{name} (MAE {mae_b:.1f} d{gap})",
            )
        hi = float(np.nanmax([x.max(), p90[idx].max()]))
        ax_scatter.plot([0, hi], [0, hi], color="0.6", linewidth=1, label="perfect")
        ax_scatter.legend(loc="upper left", fontsize="small")

        order = idx[np.argsort(p50[idx], kind="stable")]
        rank = np.arange(len(order))
        inside = (d[order] >= p10[order]) & (d[order] <= p90[order])
        ax_band.fill_between(
            rank, p10[order], p90[order], color="C0", alpha=0.2, step="mid", label="P10-P90"
        )
        ax_band.plot(rank, p50[order], color="C0", linewidth=1.5, label="P50")
        ax_band.scatter(rank[inside], d[order][inside], s=8, color="0.2", label="realised, inside")
        ax_band.scatter(
            rank[~inside], d[order][~inside], s=8, color="C3", label="realised, outside"
        )
        ax_band.legend(loc="upper left", fontsize="small")
    ax_scatter.set(
        title="Predicted vs realised (observed rows)",
        xlabel="realised days to threshold",
        ylabel="predicted days",
    )
    ax_band.set(
        title=f"P10-P90 coverage {coverage:.1%} (nominal 80%)",
        xlabel="observed rows, sorted by predicted P50",
        ylabel="days to threshold",
    )
    for ax in (ax_scatter, ax_band):
        ax.grid(alpha=0.3)
    _finish(fig, title, f"{n:,} rows, {int(observed.sum()):,} observed, {int(c.sum()):,} censored")
    return fig


# -- summaries across cutoffs and policies ---------------------------------------------------


def _cutoff_label(value: object) -> str:
    if isinstance(value, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
    return str(value)


def metrics_by_cutoff(
    table: pd.DataFrame, metrics: Sequence[str] | None = None, *, title: str | None = None
) -> Figure:
    """One panel per metric: its value at each evaluation cutoff, one line per scorer.

    ``table`` is long-form with columns ``cutoff`` (dates or any sortable label), ``scorer``
    (model, baselines, oracle), ``metric`` (e.g. ``roc_auc``) and ``value`` (NaN shows as a
    gap), at most one row per (cutoff, scorer, metric). A backtest's table with ``scope``
    instead of ``cutoff`` works as is: its ``"all"`` rows are left out and the other scopes
    are the cutoffs. ``metrics`` picks the panels, in that order (metrics absent from the
    table are skipped); by default every metric present, in the order they first appear.
    Cutoffs are sorted; the scorer legend is shared, at the right.
    """
    where = "metrics_by_cutoff"
    if isinstance(table, pd.DataFrame) and "cutoff" not in table.columns and "scope" in table:
        table = table[table["scope"].astype(str) != "all"].rename(columns={"scope": "cutoff"})
    _frame(table, "table", where, ["cutoff", "scorer", "metric", "value"])
    if metrics is not None:
        if isinstance(metrics, str):
            metrics = [metrics]
        present = set(table["metric"])
        wanted = [m for m in metrics if m in present]
        if not wanted:
            raise _fail(
                where,
                f"none of the metrics {list(metrics)} is in the table; it has "
                f"{sorted(map(str, present))[:20]}",
            )
        table = table[table["metric"].isin(wanted)]
    values = _numeric_column(table, "value", "table", where)
    if table[["cutoff", "scorer", "metric"]].isna().any().any():
        raise _fail(where, "table has missing cutoff, scorer or metric labels; drop those rows")
    dup = table.duplicated(["cutoff", "scorer", "metric"])
    if dup.any():
        first = table.loc[dup, ["cutoff", "scorer", "metric"]].iloc[0].tolist()
        raise _fail(
            where,
            f"table has {int(dup.sum())} repeated (cutoff, scorer, metric) rows, e.g. {first}; "
            "aggregate to one value each first",
        )
    data = table.assign(value=values)
    metric_names = wanted if metrics is not None else list(pd.unique(data["metric"]))
    scorers = [str(s) for s in pd.unique(data["scorer"])]
    try:
        cutoffs = sorted(pd.unique(data["cutoff"]))
    except TypeError:
        cutoffs = list(pd.unique(data["cutoff"]))
    cutoff_index = pd.Index(cutoffs)
    styles = _styles(scorers)

    ncols = min(3, len(metric_names))
    nrows = math.ceil(len(metric_names) / ncols)
    fig = _figure(4.6 * ncols + 1.6, 3.6 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(metric_names) :]:
        fig.delaxes(ax)
    handles: dict[str, Any] = {}
    for ax, metric in zip(axes[: len(metric_names)], metric_names, strict=True):
        sub = data[data["metric"] == metric]
        for scorer in scorers:
            rows = sub[sub["scorer"].astype(str) == scorer]
            if rows.empty:
                continue
            xs = cutoff_index.get_indexer(rows["cutoff"])
            order = np.argsort(xs, kind="stable")
            (line,) = ax.plot(
                xs[order],
                rows["value"].to_numpy()[order],
                marker="o",
                markersize=4,
                label=scorer,
                **styles[scorer],
            )
            handles.setdefault(scorer, line)
        ax.set_xticks(
            range(len(cutoffs)),
            [_cutoff_label(c) for c in cutoffs],
            rotation=30 if len(cutoffs) > 3 else 0,
            ha="right" if len(cutoffs) > 3 else "center",
            fontsize="small",
        )
        ax.set(title=str(metric), xlabel="cutoff", ylabel=str(metric))
        ax.grid(alpha=0.3)
    fig.legend(
        [handles[s] for s in scorers if s in handles],
        [s for s in scorers if s in handles],
        loc="outside right upper",
        fontsize="small",
        title="scorer",
    )
    _finish(fig, title, f"metrics at {len(cutoffs)} cutoff(s)")
    return fig


def shipping(
    outcomes: pd.DataFrame,
    *,
    x: str = "waste_days_mean",
    y: str = "stockout_rate",
    scope: str | None = "all",
    title: str | None = None,
) -> Figure:
    """Stockouts against toner thrown away, per shipping policy (lower-left is better).

    ``outcomes`` has one row per (policy, alpha) with columns ``policy`` (name), ``alpha``
    (the predicted-quantile level the policy ships at; NaN/None for baselines without one)
    and the two plotted columns, by default ``waste_days_mean`` (x) and ``stockout_rate`` (y)
    as in :meth:`metrics.ShippingOutcome.to_dict` (``stockouts`` or ``stockout_days_mean``
    work as ``y`` too). When it also has a ``scope`` column (a backtest's shipping table:
    ``"all"`` and one scope per cutoff), only the rows of ``scope`` are drawn (``None`` keeps
    every row). Policies with alphas are trade-off curves, sorted by alpha and annotated
    with it (the model solid, an oracle dotted); rows without alpha are labelled points.
    """
    where = "shipping"
    if isinstance(outcomes, pd.DataFrame) and scope is not None and "scope" in outcomes:
        chosen = outcomes[outcomes["scope"].astype(str) == str(scope)]
        if chosen.empty and not outcomes.empty:
            raise _fail(
                where,
                f"outcomes has no rows with scope {scope!r}; it has scopes "
                f"{sorted(map(str, pd.unique(outcomes['scope'])))[:12]}; pass one of them",
            )
        outcomes = chosen
    _frame(outcomes, "outcomes", where, ["policy", "alpha", x, y])
    xs = _numeric_column(outcomes, x, "outcomes", where)
    ys = _numeric_column(outcomes, y, "outcomes", where)
    alphas = _numeric_column(outcomes, "alpha", "outcomes", where)
    if outcomes["policy"].isna().any():
        raise _fail(where, "outcomes has rows without a policy name; name every policy")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise _fail(where, f"outcomes[{x!r}] or outcomes[{y!r}] holds NaN or infinite values")
    data = pd.DataFrame(
        {"policy": outcomes["policy"].astype(str).to_numpy(), "alpha": alphas, "x": xs, "y": ys}
    )
    dup = data.duplicated(["policy", "alpha"])
    if dup.any():
        first = data.loc[dup, ["policy", "alpha"]].iloc[0].tolist()
        raise _fail(
            where,
            f"outcomes has {int(dup.sum())} repeated (policy, alpha) rows, e.g. {first}; "
            "keep one scope or aggregate over cutoffs first (one row per policy and alpha)",
        )

    fig = _figure(8.0, 6.0)
    ax = fig.subplots()
    curves = data[data["alpha"].notna()]
    points = data[data["alpha"].isna()]
    curve_styles = _styles(list(pd.unique(curves["policy"])))
    for policy, group in curves.groupby("policy", sort=False):
        group = group.sort_values("alpha")
        a_lo, a_hi = group["alpha"].min(), group["alpha"].max()
        span = f"α {a_lo:g}" if a_lo == a_hi else f"α {a_lo:g}-{a_hi:g}"
        style = curve_styles[str(policy)]
        ax.plot(group["x"], group["y"], marker="o", label=f"{policy} ({span})", **style)
        for _, row in group.iterrows():
            ax.annotate(
                f"α={row['alpha']:g}",
                (row["x"], row["y"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize="x-small",
                color=style["color"],
            )
    color = len(curve_styles)
    markers = ["s", "D", "^", "v", "P", "X", "h"]
    for k, row in enumerate(points.itertuples(index=False)):
        is_oracle = "oracle" in row.policy.lower()
        ax.scatter(
            row.x,
            row.y,
            marker="*" if is_oracle else markers[k % len(markers)],
            s=150 if is_oracle else 60,
            color="0.2" if is_oracle else f"C{(color + k) % 10}",
            zorder=3,
            label=row.policy,
        )
    ax.set(
        title="Shipping trade-off (lower-left is better)",
        xlabel=_AXIS_LABELS.get(x, x),
        ylabel=_AXIS_LABELS.get(y, y),
    )
    if y == "stockout_rate":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    _finish(fig, title, f"{data['policy'].nunique()} policies")
    return fig


# -- output ----------------------------------------------------------------------------------


def save(fig: Figure, path: str | Path, *, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``fig`` as a PNG at ``path`` (``.png`` added when there is no suffix; parent
    folders created) and close it; returns the path written."""
    if not isinstance(fig, Figure):
        raise _fail("save", f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    out = Path(path)
    if out.suffix == "":
        out = out.with_suffix(".png")
    elif out.suffix.lower() != ".png":
        raise _fail("save", f"writes PNG only; got a {out.suffix!r} path {out}; use a .png name")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # a pyplot-managed figure would otherwise stay open
        pyplot.close(fig)
    return out
