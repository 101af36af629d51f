"""Backtest plots: figure structure, numbers in legends and titles, PNG output, bad input."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from amplify_ml.errors import InvalidRequestError
from amplify_ml.modeling import metrics as m
from amplify_ml.modeling import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N = 200


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    y = (rng.random(N) < 0.25).astype(int)
    model = np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(0, 0.15, N), 0.01, 0.99)
    baseline = rng.random(N) * 0.6 + 0.2 * y
    oracle = y + rng.normal(0, 0.1, N)
    return y, {"model": model, "baseline_recency": baseline, "oracle": oracle}


@pytest.fixture(scope="module")
def depletion_data() -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    true = rng.gamma(4, 8, N)
    censored = true > 60
    days = np.where(censored, 60.0, true)
    p50 = true * np.exp(rng.normal(0, 0.25, N))
    quantiles = pd.DataFrame({"p10_days": p50 * 0.7, "p50_days": p50, "p90_days": p50 * 1.35})
    straight = true * np.exp(rng.normal(0, 0.4, N))
    return days, censored, quantiles, {"straight_line": straight}


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def _visible_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


# -- classifiers -----------------------------------------------------------------------------


def test_roc_pr_legends_carry_the_metrics(binary) -> None:
    y, scores = binary
    fig = plots.roc_pr(y, scores, title="propensity")
    assert isinstance(fig, Figure)
    ax_roc, ax_pr = fig.axes
    roc_texts, pr_texts = _legend_texts(ax_roc), _legend_texts(ax_pr)
    for name, p in scores.items():
        assert f"{name} (AUC {m.roc_auc(y, p):.3f})" in roc_texts
        assert f"{name} (PR AUC {m.pr_auc(y, p):.3f})" in pr_texts
    assert f"base rate {y.mean():.3f}" in pr_texts
    assert ax_roc.get_title() == "ROC"
    assert fig.get_suptitle().startswith("propensity")
    # one line per scorer plus chance diagonal / base-rate line
    assert len(ax_roc.get_lines()) == len(scores) + 1
    assert len(ax_pr.get_lines()) == len(scores) + 1


def test_roc_pr_styles_model_baseline_oracle(binary) -> None:
    y, scores = binary
    fig = plots.roc_pr(y, {"baseline": scores["baseline_recency"], **scores})
    lines = {line.get_label().split(" (")[0]: line for line in fig.axes[0].get_lines()}
    assert lines["model"].get_linestyle() == "-"
    assert lines["baseline"].get_linestyle() == "--"
    assert lines["oracle"].get_linestyle() == ":"


def test_calibration_reliability_and_histogram(binary) -> None:
    y, scores = binary
    fig = plots.calibration(y, scores["model"], n_bins=8)
    ax, ax_hist = fig.axes
    ece = m.expected_calibration_error(y, scores["model"], 8)
    assert ax.get_title() == f"Reliability — ECE {ece:.3f}"
    assert any("8 equal-mass bins" in t for t in _legend_texts(ax))
    assert sum(p.get_height() for p in ax_hist.patches) == N
    assert ax_hist.get_xlabel() == "predicted probability"


def test_lift_deciles_match_metrics(binary) -> None:
    y, scores = binary
    fig = plots.lift(y, scores)
    ax_gain, ax_lift = fig.axes
    for name, p in scores.items():
        assert f"{name} (lift@10% {m.lift_at(y, p, 0.1):.2f})" in _legend_texts(ax_lift)
        recall = m.precision_recall_at(y, p, 0.1)[1]
        assert f"{name} (top 10%: {recall:.1%} of positives)" in _legend_texts(ax_gain)
    model_line = next(line for line in ax_lift.get_lines() if line.get_label().startswith("model"))
    np.testing.assert_allclose(
        model_line.get_ydata(),
        [m.lift_at(y, scores["model"], k / 10) for k in range(1, 11)],
    )
    assert model_line.get_ydata()[-1] == pytest.approx(1.0)


# -- explanations ----------------------------------------------------------------------------


def _shap_frames(n: int = 150) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    features = pd.DataFrame(
        {
            "pages": rng.normal(size=n),
            "age_months": rng.integers(0, 60, n).astype(float),
            "segment": pd.Categorical(rng.choice(["smb", "ent"], n)),
            "region": rng.choice(["north", "south"], n),
            "tiny": rng.normal(size=n),
        }
    )
    features.loc[:9, "pages"] = np.nan
    contributions = pd.DataFrame(
        {
            "pages": features["pages"].fillna(0) * 0.8,
            "age_months": features["age_months"] * 0.01 - 0.3,
            "segment": rng.normal(0, 0.4, n),
            "region": rng.normal(0, 0.1, n),
            "tiny": rng.normal(0, 0.001, n),
            "_bias": -2.0,
        }
    )
    return contributions, features


def test_shap_summary_top_features_and_colours() -> None:
    contributions, features = _shap_frames()
    fig = plots.shap_summary(contributions, features, top=3)
    ax_bar, ax_swarm, ax_colorbar = fig.axes
    ticks = sorted(ax_bar.get_yticklabels(), key=lambda t: -t.get_position()[1])
    labels = [t.get_text() for t in ticks]
    expected = (
        contributions.drop(columns="_bias").abs().mean().sort_values(ascending=False).index[:3]
    )
    # the largest feature is the top tick
    assert labels == list(expected)
    assert "_bias" not in labels
    assert "top 3 of 5 features" in ax_bar.get_title()
    widths = sorted((p.get_width() for p in ax_bar.patches), reverse=True)
    assert widths[0] == pytest.approx(contributions["pages"].abs().mean())
    assert len(ax_swarm.collections) == 3
    # categorical feature: every point grey; numeric: coloured except missing values
    by_feature = dict(zip(expected, ax_swarm.collections, strict=True))
    assert list(expected) == ["pages", "segment", "age_months"]
    colours = by_feature["segment"].get_facecolors()
    assert np.allclose(colours[:, :3], 0.62)
    ages = by_feature["age_months"].get_facecolors()
    assert not np.isclose(ages[:, :3], 0.62).all(axis=1).any()
    pages = by_feature["pages"].get_facecolors()
    grey = np.isclose(pages[:, :3], 0.62).all(axis=1)
    assert grey.sum() == 10
    assert ax_colorbar.get_ylabel() == "feature value (rank)"


def test_shap_summary_subsamples_points() -> None:
    contributions, features = _shap_frames(300)
    fig = plots.shap_summary(contributions, features, max_points=50)
    ax_bar, ax_swarm, _ = fig.axes
    assert len(ax_bar.patches) == 5
    assert all(len(c.get_offsets()) == 50 for c in ax_swarm.collections)
    assert "50 of 300 rows" in ax_swarm.get_title()


# -- depletion -------------------------------------------------------------------------------


def test_depletion_metrics_in_legend_and_title(depletion_data) -> None:
    days, censored, quantiles, baselines = depletion_data
    fig = plots.depletion(days, censored, quantiles, baselines)
    ax_scatter, ax_band = fig.axes
    coverage = m.interval_coverage(days, censored, quantiles.p10_days, quantiles.p90_days)
    assert ax_band.get_title() == f"P10-P90 coverage {coverage:.1%} (nominal 80%)"
    mae = m.mae_observed(days, censored, quantiles.p50_days)
    mae_line = m.mae_observed(days, censored, baselines["straight_line"])
    texts = _legend_texts(ax_scatter)
    assert f"model P50, bars P10-P90 (MAE {mae:.1f} d)" in texts
    assert f"straight_line (MAE {mae_line:.1f} d)" in texts
    observed = int((~censored).sum())
    assert f"{observed:,} observed" in fig.get_suptitle()
    # the realised days plotted on the band panel are the observed rows only
    assert sum(len(c.get_offsets()) for c in ax_band.collections[1:]) == observed


def test_depletion_without_baseline_or_observed_rows(depletion_data) -> None:
    days, _, quantiles, _ = depletion_data
    fig = plots.depletion(days, np.ones(N, dtype=bool), quantiles)
    ax_scatter, ax_band = fig.axes
    assert ax_scatter.get_legend() is None
    assert any("no observed events" in t.get_text() for t in ax_scatter.texts)
    assert "coverage" in ax_band.get_title()


# -- summaries -------------------------------------------------------------------------------


def _cutoff_table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for cutoff in pd.date_range("2024-01-01", periods=4, freq="MS"):
        for scorer, level in [("model", 0.75), ("baseline_recency", 0.65), ("oracle", 0.9)]:
            auc = level + rng.normal(0, 0.02)
            rows.append({"cutoff": cutoff, "scorer": scorer, "metric": "roc_auc", "value": auc})
            rows.append(
                {"cutoff": cutoff, "scorer": scorer, "metric": "pr_auc", "value": level / 2}
            )
    return pd.DataFrame(rows)


def test_metrics_by_cutoff_one_panel_per_metric() -> None:
    table = _cutoff_table()
    fig = plots.metrics_by_cutoff(table)
    assert [ax.get_title() for ax in fig.axes] == ["roc_auc", "pr_auc"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "model",
        "baseline_recency",
        "oracle",
    ]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
        "2024-04-01",
    ]
    model = next(line for line in ax.get_lines() if line.get_label() == "model")
    expected = table.query("metric == 'roc_auc' and scorer == 'model'").sort_values("cutoff")
    np.testing.assert_allclose(model.get_ydata(), expected["value"])


def test_metrics_by_cutoff_grid_for_many_metrics() -> None:
    table = pd.DataFrame(
        [
            {"cutoff": c, "scorer": "model", "metric": f"metric_{k}", "value": k + c}
            for c in (2, 1)
            for k in range(4)
        ]
    )
    fig = plots.metrics_by_cutoff(table)
    assert len(fig.axes) == 4  # 2 x 3 grid with the two unused panels removed
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [1, 2])  # sorted by cutoff


def test_metrics_by_cutoff_reads_a_backtest_table_and_picks_metrics() -> None:
    table = _cutoff_table()
    # a backtest's long table: ``scope`` is "all" or a cutoff date as text
    scoped = pd.concat(
        [
            table.assign(scope=table["cutoff"].dt.strftime("%Y-%m-%d")).drop(columns="cutoff"),
            pd.DataFrame(
                [{"scope": "all", "scorer": "model", "metric": "ship_rate", "value": 0.1}]
            ),
        ]
    )
    fig = plots.metrics_by_cutoff(scoped)
    assert [ax.get_title() for ax in fig.axes] == ["roc_auc", "pr_auc"]  # "all" rows left out
    assert len(fig.axes[0].get_xticklabels()) == 4
    fig = plots.metrics_by_cutoff(scoped, metrics=["pr_auc", "brier"])
    assert [ax.get_title() for ax in fig.axes] == ["pr_auc"]
    with pytest.raises(InvalidRequestError, match=r"none of the metrics \['brier'\]"):
        plots.metrics_by_cutoff(scoped, metrics=["brier"])


def _shipping_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policy": ["model", "model", "model", "straight_line", "oracle"],
            "alpha": [0.3, 0.1, 0.5, np.nan, np.nan],
            "stockout_rate": [0.07, 0.02, 0.15, 0.12, 0.0],
            "waste_days_mean": [7.0, 12.0, 4.0, 8.0, 0.0],
            "stockouts": [7, 2, 15, 12, 0],
        }
    )


def test_shipping_curve_and_baseline_points() -> None:
    fig = plots.shipping(_shipping_table())
    (ax,) = fig.axes
    assert _legend_texts(ax) == ["model (α 0.1-0.5)", "straight_line", "oracle"]
    (curve,) = ax.get_lines()
    np.testing.assert_allclose(curve.get_xdata(), [12.0, 7.0, 4.0])  # sorted by alpha
    assert sorted(t.get_text() for t in ax.texts) == ["α=0.1", "α=0.3", "α=0.5"]
    assert "stockout rate" in ax.get_ylabel()
    assert "thrown away" in ax.get_xlabel()
    fig = plots.shipping(_shipping_table(), y="stockouts")
    assert fig.axes[0].get_ylabel() == "stockouts (rows)"


def test_shipping_keeps_one_scope_of_a_backtest_table() -> None:
    base = _shipping_table()
    oracle_curve = pd.DataFrame(
        {
            "policy": ["oracle", "oracle"],
            "alpha": [0.1, 0.5],
            "stockout_rate": [0.0, 0.01],
            "waste_days_mean": [3.0, 1.0],
            "stockouts": [0, 1],
        }
    )
    table = pd.concat([base.iloc[:4], oracle_curve])
    table = pd.concat([table.assign(scope="all"), table.assign(scope="2024-03-01")])
    table["alpha"] = table["alpha"].astype(object).where(table["alpha"].notna(), None)
    fig = plots.shipping(table)
    ax = fig.axes[0]
    curves = {line.get_label(): line for line in ax.get_lines()}
    assert set(curves) == {"model (α 0.1-0.5)", "oracle (α 0.1-0.5)"}
    assert curves["model (α 0.1-0.5)"].get_linestyle() == "-"
    assert curves["oracle (α 0.1-0.5)"].get_linestyle() == ":"
    assert "straight_line" in _legend_texts(ax)
    with pytest.raises(InvalidRequestError, match=r"no rows with scope '2025-01-01'"):
        plots.shipping(table, scope="2025-01-01")
    with pytest.raises(InvalidRequestError, match=r"repeated \(policy, alpha\).*keep one scope"):
        plots.shipping(table, scope=None)


# -- output ----------------------------------------------------------------------------------


def test_save_writes_png(tmp_path, binary) -> None:
    y, scores = binary
    out = plots.save(plots.roc_pr(y, scores), tmp_path / "nested" / "roc_pr")
    assert out == tmp_path / "nested" / "roc_pr.png"
    data = out.read_bytes()
    assert len(data) > 1000
    assert data.startswith(PNG_SIGNATURE)
    with pytest.raises(InvalidRequestError, match=r"PNG only.*\.jpg"):
        plots.save(plots.calibration(y, scores["model"]), tmp_path / "c.jpg")


def test_save_closes_pyplot_figures(tmp_path) -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    plots.save(fig, tmp_path / "pyplot.png")
    assert fig.number not in plt.get_fignums()
    assert (tmp_path / "pyplot.png").read_bytes().startswith(PNG_SIGNATURE)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda y, s: plots.roc_pr(y[:-1], s), r"roc_pr: scores\['model'\] has 200 values .* 199"),
        (lambda y, s: plots.roc_pr([], {}), r"roc_pr: y is empty"),
        (lambda y, s: plots.roc_pr(np.zeros(N), s), r"only one class"),
        (
            lambda y, s: plots.roc_pr(y * 2, s),
            r"binary \(0/1 or bool\); found \d+ other values \(e\.g\. 2\.0\)",
        ),
        (lambda y, s: plots.roc_pr(y, {}), r"non-empty mapping"),
        (lambda y, s: plots.lift(y, {"m": np.full(N, np.nan)}), r"200 NaN or infinite"),
        (lambda y, s: plots.lift(np.zeros(N), s), r"lift: y has no positives"),
        (lambda y, s: plots.calibration(y, s["oracle"]), r"probabilities in \[0, 1\]"),
        (lambda y, s: plots.calibration(y, s["model"], n_bins=0), r"n_bins must be a positive"),
        (lambda y, s: plots.calibration(y, s["model"][:, None]), r"one-dimensional"),
    ],
)
def test_bad_binary_input(binary, call, message) -> None:
    y, scores = binary
    with pytest.raises(InvalidRequestError, match=message):
        call(y, scores)


def test_bad_shap_input() -> None:
    contributions, features = _shap_frames()
    with pytest.raises(InvalidRequestError, match=r"150 rows but features has 149"):
        plots.shap_summary(contributions, features.iloc[1:])
    with pytest.raises(InvalidRequestError, match=r"features lacks column\(s\) \['tiny'\]"):
        plots.shap_summary(contributions, features.drop(columns="tiny"))
    with pytest.raises(InvalidRequestError, match=r"no feature columns besides _bias"):
        plots.shap_summary(contributions[["_bias"]], features)
    with pytest.raises(InvalidRequestError, match=r"top must be a positive integer"):
        plots.shap_summary(contributions, features, top=0)
    with pytest.raises(InvalidRequestError, match=r"contributions must be a pandas DataFrame"):
        plots.shap_summary(contributions.to_numpy(), features)


def test_bad_depletion_input(depletion_data) -> None:
    days, censored, quantiles, baselines = depletion_data
    with pytest.raises(InvalidRequestError, match=r"quantiles lacks column\(s\) \['p90_days'\]"):
        plots.depletion(days, censored, quantiles.drop(columns="p90_days"))
    with pytest.raises(InvalidRequestError, match=r"quantiles has 199 rows but days has 200"):
        plots.depletion(days, censored, quantiles.iloc[1:])
    with pytest.raises(InvalidRequestError, match=r"censored has 199 values"):
        plots.depletion(days, censored[1:], quantiles)
    with pytest.raises(InvalidRequestError, match=r"not ordered p10 <= p50 <= p90"):
        plots.depletion(
            days,
            censored,
            quantiles.rename(columns={"p10_days": "p90_days", "p90_days": "p10_days"}),
        )
    bad_days = days.copy()
    bad_days[np.flatnonzero(~censored)[0]] = np.nan
    with pytest.raises(InvalidRequestError, match=r"NaN or infinite on rows not marked censored"):
        plots.depletion(bad_days, censored, quantiles)
    with pytest.raises(InvalidRequestError, match=r"baseline_days\['straight_line'\] has 10"):
        plots.depletion(
            days, censored, quantiles, {"straight_line": baselines["straight_line"][:10]}
        )


def test_bad_summary_tables() -> None:
    table = _cutoff_table()
    with pytest.raises(InvalidRequestError, match=r"table lacks column\(s\) \['value'\]"):
        plots.metrics_by_cutoff(table.drop(columns="value"))
    with pytest.raises(InvalidRequestError, match=r"table is empty"):
        plots.metrics_by_cutoff(table.iloc[:0])
    with pytest.raises(InvalidRequestError, match=r"repeated \(cutoff, scorer, metric\)"):
        plots.metrics_by_cutoff(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(InvalidRequestError, match=r"table\['value'\] is not numeric"):
        plots.metrics_by_cutoff(table.assign(value="high"))
    outcomes = _shipping_table()
    with pytest.raises(InvalidRequestError, match=r"repeated \(policy, alpha\).*aggregate"):
        plots.shipping(pd.concat([outcomes, outcomes.iloc[:1]]))
    with pytest.raises(InvalidRequestError, match=r"outcomes lacks column\(s\) \['alpha'\]"):
        plots.shipping(outcomes.drop(columns="alpha"))
    with pytest.raises(InvalidRequestError, match=r"lacks column\(s\) \['wasted_days'\]"):
        plots.shipping(outcomes, x="wasted_days")


def test_error_message_names_function_and_fix() -> None:
    with pytest.raises(InvalidRequestError) as info:
        plots.lift([0, 1, 1], {"model": [0.1, 0.2]})
    text = str(info.value)
    assert re.search(r"^plots\.lift: scores\['model'\] has 2 values but the labels have 3", text)
    assert "pass one value per row" in text
    assert info.value.http_status == 422
