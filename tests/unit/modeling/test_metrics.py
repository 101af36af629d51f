"""Metrics on a few rows whose values are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amplify_ml.errors import InvalidRequestError
from amplify_ml.modeling import metrics as m

Y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
P = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


def test_roc_auc_by_hand() -> None:
    # positives at ranks (by score) 1, 3, 10 of 10; pairs (pos, neg) ordered right:
    # 0.9 beats 7 negatives, 0.7 beats 6, 0.05 beats 0 -> 13 of 3 * 7 = 21
    assert m.roc_auc(Y, P) == pytest.approx(13 / 21)


def test_pr_auc_by_hand() -> None:
    # precision at each positive: 1/1, 2/3, 3/10 -> mean
    assert m.pr_auc(Y, P) == pytest.approx((1 + 2 / 3 + 3 / 10) / 3)


def test_lift_and_budget() -> None:
    # top decile = the single highest score (0.9), a positive; base rate 0.3
    assert m.lift_at(Y, P, 0.1) == pytest.approx(1 / 0.3)
    # top 30% = 0.9, 0.8, 0.7 -> 2 hits of 3; recall 2 of 3 positives
    assert m.precision_recall_at(Y, P, 0.3) == pytest.approx((2 / 3, 2 / 3))
    # a budget smaller than one row still alerts on one
    assert m.precision_recall_at(Y, P, 0.001) == pytest.approx((1.0, 1 / 3))


def test_brier_and_ece_by_hand() -> None:
    assert m.brier([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)
    # two equal-mass bins: {0.1, 0.2} with 0 positives -> |0 - 0.15|; {0.6, 0.8} with 2 -> |1 - 0.7|
    assert m.expected_calibration_error(
        [0, 0, 1, 1], [0.1, 0.2, 0.6, 0.8], n_bins=2
    ) == pytest.approx(0.5 * 0.15 + 0.5 * 0.3)
    # perfectly calibrated bins
    assert m.expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], n_bins=1) == 0.0


def test_ece_by_chance_is_the_ece_of_a_calibrated_model_on_this_many_rows() -> None:
    # one bin of n fair coins: E|mean - 0.5| = sqrt(2 / pi) * 0.5 / sqrt(n) (normal limit)
    n = 400
    assert m.ece_by_chance(np.full(n, 0.5), n_bins=1, draws=4000) == pytest.approx(
        np.sqrt(2 / np.pi) * 0.5 / np.sqrt(n), rel=0.05
    )
    # labels drawn from p: the ECE they score averages to the chance figure, which shrinks
    # as 1 / sqrt(rows), and a biased model scores far above it
    rng = np.random.default_rng(3)
    p = rng.beta(1, 8, size=2_000)
    chance = m.ece_by_chance(p)
    eces = [m.expected_calibration_error(rng.random(p.size) < p, p) for _ in range(300)]
    assert np.mean(eces) == pytest.approx(chance, rel=0.1)
    assert m.ece_by_chance(np.tile(p, 16)) == pytest.approx(chance / 4, rel=0.15)
    assert m.expected_calibration_error(rng.random(p.size) < p, p * 1.5) > 3 * chance
    # rare events: far below the normal approximation's 0.8 * sqrt(sum p (1 - p)) / n
    rare = np.full(100, 0.001)
    assert m.ece_by_chance(rare, n_bins=1, draws=20_000) == pytest.approx(
        2 * 0.1 * np.exp(-0.1) / 100, rel=0.05
    )
    assert m.ece_by_chance(rare, draws=50) == m.ece_by_chance(rare, draws=50)  # seeded
    assert np.isnan(m.ece_by_chance([]))


def test_expected_roc_auc_worked_by_hand() -> None:
    # rows A (score 0.9, p_true 0.8) and B (0.1, 0.2): positive A, negative B weighs
    # 0.8 x 0.8 and ranks right; positive B, negative A weighs 0.2 x 0.2 and ranks wrong;
    # a row against itself (0.8 x 0.2 twice) is a tie and counts one half
    assert m.expected_roc_auc([0.8, 0.2], [0.9, 0.1]) == pytest.approx(0.64 + 0.5 * 0.32)
    # certain outcomes: the plain ROC AUC
    y = np.array([1, 0, 1, 0, 0]), np.array([0.7, 0.2, 0.4, 0.5, 0.1])
    assert m.expected_roc_auc(y[0], y[1]) == pytest.approx(m.roc_auc(*y))
    assert math.isnan(m.expected_roc_auc([0.0, 0.0], [0.3, 0.4]))


def test_expected_roc_auc_is_the_mean_over_outcome_draws() -> None:
    rng = np.random.default_rng(3)
    q = rng.beta(0.5, 3.0, 3000)
    p = q + rng.normal(0, 0.1, len(q))  # a model that knows q up to noise
    draws = [m.roc_auc(rng.random(len(q)) < q, p) for _ in range(200)]
    assert np.std(draws) > 0.005  # one draw is a noisy yardstick ...
    assert m.expected_roc_auc(q, p) == pytest.approx(np.mean(draws), abs=0.002)  # ... not this


def test_skill_ratio() -> None:
    assert m.skill_ratio(0.8, 0.9) == pytest.approx(0.75)
    assert math.isnan(m.skill_ratio(0.8, 0.5))


def test_single_class_and_bad_input() -> None:
    assert math.isnan(m.roc_auc([0, 0], [0.1, 0.2]))
    assert math.isnan(m.pr_auc([0, 0], [0.1, 0.2]))
    with pytest.raises(
        InvalidRequestError, match=r"labels \(\(2,\)\) and scores \(\(3,\)\) differ"
    ):
        m.roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InvalidRequestError, match=r"scores hold NaN"):
        m.brier([0, 1], [0.1, float("nan")])


def test_binary_report_keys() -> None:
    r = m.binary_report(Y, P)
    assert r["base_rate"] == pytest.approx(0.3) and r["positives"] == 3
    assert set(r) == {
        "n",
        "positives",
        "base_rate",
        "roc_auc",
        "pr_auc",
        "lift_top_decile",
        "brier",
        "ece",
        "ece_by_chance",
        "mean_score",
    }


def test_mae_and_coverage_with_censoring() -> None:
    days = [10, 20, 30, 180]
    cens = [False, False, False, True]
    assert m.mae_observed(days, cens, [12, 20, 25, 50]) == pytest.approx((2 + 0 + 5) / 3)
    # intervals: [5,15] hit; [21,30] miss; [25,35] hit; censored at 180 with high 200 -> unknown
    assert m.interval_coverage(days, cens, [5, 21, 25, 100], [15, 30, 35, 200]) == pytest.approx(
        2 / 3
    )
    # a censored row past the interval's end is a known miss
    assert m.interval_coverage(days, cens, [5, 21, 25, 100], [15, 30, 35, 150]) == pytest.approx(
        2 / 4
    )


def test_shipping_simulation_by_hand() -> None:
    # threshold reached on day 3 and 20; third row censored in a 60-day window
    t, c = [3, 20, np.nan], [False, False, True]
    out = m.shipping_outcome(t, c, ship_day=[0, 10, 40], window_days=60, lead_time_days=5)
    # row 1 arrives day 5 > 3: stockout of 2 days; row 2 arrives day 15: 5 days wasted;
    # row 3 arrives day 45: at least 15 days wasted (window end)
    assert (out.stockouts, out.stockout_days_mean) == (1, 2.0)
    assert out.waste_days_mean == pytest.approx((5 + 15) / 2)
    assert out.stockout_rate == pytest.approx(1 / 3)


def test_quantile_interpolation() -> None:
    q = {0.1: [10.0], 0.5: [20.0], 0.9: [40.0]}
    assert m.quantile_from_levels(q, 0.3)[0] == pytest.approx(15.0)
    assert m.quantile_from_levels(q, 0.7)[0] == pytest.approx(30.0)
    assert m.quantile_from_levels(q, 0.05)[0] == pytest.approx(8.75)
    assert m.quantile_from_levels({0.1: [1.0], 0.5: [20.0]}, 0.0)[0] == 0.0


# -- intervals ------------------------------------------------------------------------------


def test_weighted_auc_equals_the_auc_of_the_repeated_rows() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.2, 0.3])
    auc = m.weighted_roc_auc(y, p)
    # by hand: positives 0.4, 0.8, 0.2 against negatives 0.1, 0.4, 0.3:
    # 0.4 beats 0.1 and 0.3 and ties 0.4 (2.5); 0.8 beats all (3); 0.2 beats 0.1 (1): 6.5 / 9
    assert auc(np.ones(6)) == pytest.approx(6.5 / 9) == pytest.approx(m.roc_auc(y, p))
    w = np.array([2.0, 0.0, 1.0, 3.0, 1.0, 0.0])
    rows = np.repeat(np.arange(6), w.astype(int))
    assert auc(w) == pytest.approx(m.roc_auc(y[rows], p[rows]))
    assert math.isnan(auc(np.array([1.0, 0, 1, 0, 0, 1])))  # no positive drawn


def test_cluster_bootstrap_draws_whole_clusters_and_is_repeatable() -> None:
    clusters = np.repeat(["a", "b", "c", "d"], [1, 2, 3, 4])
    seen: list[np.ndarray] = []

    def stat(w: np.ndarray) -> float:
        for c in "abcd":  # a cluster's rows are drawn together, as often as the cluster
            assert len(set(w[clusters == c])) == 1
        assert sum(w[clusters == c][0] for c in "abcd") == 4  # 4 clusters drawn
        seen.append(w)
        return float((w * np.arange(10)).sum() / w.sum())

    lo, hi = m.cluster_bootstrap(stat, clusters, n_resamples=50, seed=3)
    assert len(seen) == 50 and lo <= hi
    assert m.cluster_bootstrap(stat, clusters, n_resamples=50, seed=3) == (lo, hi)
    # a statistic that does not vary has a zero-width interval; one cluster gives none
    assert m.cluster_bootstrap(lambda w: 1.0, clusters) == (1.0, 1.0)
    assert all(math.isnan(v) for v in m.cluster_bootstrap(lambda w: 1.0, ["a", "a"]))


def test_cluster_bootstrap_interval_of_a_mean_matches_its_standard_error() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    lo, hi = m.cluster_bootstrap(
        lambda w: float((w * x).sum() / w.sum()), np.arange(2000), n_resamples=400
    )
    se = x.std() / np.sqrt(len(x))
    assert lo < x.mean() < hi
    assert (hi - lo) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.15)
    with pytest.raises(InvalidRequestError, match="level must be between 0 and 1"):
        m.cluster_bootstrap(lambda w: 0.0, [1, 2], level=1.5)
