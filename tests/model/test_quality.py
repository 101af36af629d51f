"""Each model against its baselines on held-out cutoffs of the small synthetic world, and the
directions a reader expects (more recent purchases raise propensity, older devices raise
refresh risk, a steeper toner slope shortens days to empty, a warning burst raises failure
risk). The quality targets (skill ratio, ECE, MAE vs the oracle) are reported on the issue,
not asserted here: they describe one synthetic world, not a contract."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("small_world")]

BINARY = ["propensity_to_buy", "refresh_due", "device_failure"]


def _honest_split(bt) -> None:
    last_label = bt.split.train[-1] + timedelta(days=bt.split.horizon_days)
    assert last_label <= bt.split.evaluate[0]
    assert set(bt.train["cutoff"].dt.date) == set(bt.split.train)
    assert set(bt.evaluate["cutoff"].dt.date) == set(bt.split.evaluate)
    assert bt.split.evaluate[-1] + timedelta(days=bt.split.horizon_days) <= bt.split.data_end


@pytest.mark.parametrize("model", BINARY)
def test_binary_model_beats_each_baseline_on_held_out_cutoffs(small_backtests, model: str) -> None:
    bt = small_backtests[model]
    _honest_split(bt)
    t = bt.table()
    assert list(bt.baselines) == list(bt.spec.baselines)
    for b in bt.baselines:
        assert t.loc["model", "roc_auc"] > t.loc[b, "roc_auc"] + 0.005, (b, t["roc_auc"])
        assert t.loc["model", "pr_auc"] > t.loc[b, "pr_auc"], (b, t["pr_auc"])
        assert t.loc["model", "brier"] < t.loc[b, "brier"], (b, t["brier"])
    per = bt.metrics[(bt.metrics.scope != "all") & (bt.metrics.metric == "roc_auc")]
    per = per.pivot(index="scope", columns="scorer", values="value")
    assert len(per) == len(bt.split.evaluate)
    for b in bt.baselines:
        assert (per["model"] > per[b]).all(), per
    # calibrated on cutoffs whose outcomes the booster never saw (purged by the horizon)
    est, h = bt.estimator, timedelta(days=bt.split.horizon_days)
    first_calibration = sorted(bt.split.train)[
        -round(est.calibration_fraction * len(bt.split.train))
    ]
    assert est.purge_days_ == bt.split.horizon_days
    assert est.n_train_ == sum(c + h <= first_calibration for c in bt.train["cutoff"].dt.date)
    assert est.n_refit_ == len(bt.train)  # then the final trees learn from every cutoff
    # the oracle bounds what can be learnt: nobody beats it on the same rows
    assert t.loc["oracle", "roc_auc"] > t.loc["model", "roc_auc"]
    assert 0.5 < t.loc["model", "skill_ratio"] < 1.0
    # intervals from resampling whole accounts/devices hold the figure they surround
    for metric in ("roc_auc", "skill_ratio"):
        lo, hi = t.loc["model", f"{metric}_ci_low"], t.loc["model", f"{metric}_ci_high"]
        assert lo < t.loc["model", metric] < hi and hi - lo < 0.2, (metric, lo, hi)


def test_failure_alerts_catch_more_repairs_than_error_counts(small_backtests) -> None:
    bt = small_backtests["device_failure"]
    t = bt.table()
    for budget in ("0.01", "0.05"):
        assert t.loc["model", f"recall_at_{budget}"] > t.loc["errors_30d", f"recall_at_{budget}"]


def test_depletion_beats_the_straight_line_and_its_interval_covers(small_backtests) -> None:
    bt = small_backtests["consumable_depletion"]
    _honest_split(bt)
    t = bt.table()
    assert t.loc["model", "mae_days"] < t.loc["straight_line", "mae_days"]
    for metric in ("mae_days", "mae_ratio_vs_oracle"):
        lo, hi = t.loc["model", f"{metric}_ci_low"], t.loc["model", f"{metric}_ci_high"]
        assert lo < t.loc["model", metric] < hi, (metric, lo, hi)
    assert abs(t.loc["model", "coverage_p10_p90"] - 0.8) <= bt.spec.gate.max_coverage_gap
    s = bt.shipping[bt.shipping.scope == "all"].set_index(["policy"])
    model = bt.shipping[(bt.shipping.scope == "all") & (bt.shipping.policy == "model")]
    # shipping on the model's cautious quantile runs out of toner less often than either rule
    cautious = model.loc[model["alpha"].idxmin()]
    for rule in ("straight_line", "trigger_12d_5pct"):
        assert cautious["stockout_rate"] < s.loc[rule, "stockout_rate"]


# -- directions ---------------------------------------------------------------------------------


def _mean_binary(bt, frame: pd.DataFrame) -> float:
    return float(bt.estimator.predict_proba(frame[bt.features])[:, 1].mean())


def test_more_recent_purchases_raise_propensity(small_backtests) -> None:
    """One more purchase in the category two weeks ago, counted in every window that holds
    it, raises the probability of buying there again (on average and for most accounts).
    The purchase is the account's too: its own counts and recency move with the category's
    (a category purchase the account did not make is no world the model learnt from)."""
    bt = small_backtests["propensity_to_buy"]
    rows = bt.evaluate.copy()
    more = rows.copy()
    days = 14.0
    for c in ("days_since_last_purchase_cat", "days_since_last_purchase"):
        more[c] = np.fmin(more[c], days)
    counts = ("lines_count_", "units_sum_", "buys_count_")
    for c in bt.features:
        if c.startswith(tuple(f"st_{k}" for k in counts) + tuple(f"st_cat_{k}" for k in counts)):
            if c.endswith("d") and "_last_year_" not in c:
                more[c] = more[c] + 1
        elif c.startswith("st_cat_overdue_ratio_"):
            w = c.rsplit("_", 1)[1]
            more[c] = (
                more["days_since_last_purchase_cat"]
                / more[f"st_cat_purchase_interval_mean_days_{w}"]
            )
    before = bt.estimator.predict_proba(rows[bt.features])[:, 1]
    after = bt.estimator.predict_proba(more[bt.features])[:, 1]
    assert after.mean() > before.mean() * 1.1
    assert (after >= before - 1e-12).mean() > 0.6


def test_older_devices_raise_refresh_risk(small_backtests) -> None:
    bt = small_backtests["refresh_due"]
    rows = bt.evaluate.copy()
    older = rows.copy()
    for c in ("device_age_days", "family_age_days"):
        if c in older:
            older[c] = older[c] + 3 * 365
    assert _mean_binary(bt, older) > _mean_binary(bt, rows) * 1.2


def test_a_warning_burst_raises_failure_risk(small_backtests) -> None:
    """Twelve more warnings in the last week, counted in every window that holds the week."""
    bt = small_backtests["device_failure"]
    # a model of component rows (feature set v3): the warnings are the row's component's too
    rows = (bt.rows if bt.rows is not None else bt.evaluate).copy()
    burst = rows.copy()
    for c in bt.features:
        counts = c.startswith(("dev_events_count_", "dev_events_warning_count_", "comp_events_"))
        if counts and c.endswith(("_7d", "_30d", "_90d")):
            burst[c] = burst[c] + 12
        elif c.startswith("dev_events_daily_count_max_"):
            burst[c] = np.maximum(burst[c], 4)
    before = bt.estimator.predict_proba(rows[bt.features])[:, 1]
    after = bt.estimator.predict_proba(burst[bt.features])[:, 1]
    assert after.mean() > before.mean() * 1.1
    assert (after >= before - 1e-12).mean() > 0.7


def test_a_steeper_toner_slope_shortens_days_to_threshold(small_backtests) -> None:
    bt = small_backtests["consumable_depletion"]
    rows = bt.evaluate[bt.evaluate["supply_level_slope_30d"] < 0].copy()
    steep = rows.copy()
    for c in bt.features:
        if c.startswith("supply_level_slope_"):
            steep[c] = steep[c] * 2
        elif c.startswith("supply_days_to_"):
            steep[c] = steep[c] / 2
    base = bt.estimator.predict_frame(rows[bt.features])["p50_days"]
    faster = bt.estimator.predict_frame(steep[bt.features])["p50_days"]
    assert faster.mean() < base.mean() * 0.9
    assert (faster <= base + 1e-9).mean() > 0.8


def test_reasons_are_deterministic_and_name_real_features(small_backtests) -> None:
    from amplify_ml.modeling.reasons import reasons

    bt = small_backtests["refresh_due"]
    sample = bt.evaluate.head(300)
    contrib = bt.estimator.contributions(sample[bt.features])
    first = reasons(contrib, sample[bt.features], keys=sample[bt.keys])
    again = reasons(contrib.copy(), sample[bt.features].copy(), keys=sample[bt.keys])
    assert first == again
    named = {r.feature for row in first for r in row}
    assert named and named <= set(bt.features)
    assert all(1 <= len(row) <= 3 for row in first if row)
    assert all(r.contribution > 0 and r.text and "nan" not in r.text for row in first for r in row)
    assert np.isfinite([r.contribution for row in first for r in row]).all()
