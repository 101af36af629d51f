"""Estimators on simulated data with known truth: calibration, direction, censoring."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from amplify_ml.errors import InvalidRequestError, ModelError
from amplify_ml.modeling.estimators import (
    CensoredQuantileRegressor,
    CentredIsotonic,
    FoldWarning,
    TimeCalibratedClassifier,
    censored_quantile,
    censoring_survival,
)
from amplify_ml.modeling.metrics import expected_calibration_error, roc_auc


def _binary(
    n: int = 6000, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(size=n)
    kind = rng.choice(["a", "b", "c"], size=n)
    logit = -2.0 + 1.5 * x1 + 1.0 * (kind == "b") + np.sin(3 * x2)
    p = 1 / (1 + np.exp(-logit))
    y = (rng.uniform(size=n) < p).astype(int)
    cutoff = np.repeat(pd.date_range("2025-01-01", periods=6, freq="MS"), n // 6)
    return pd.DataFrame({"x1": x1, "x2": x2, "kind": kind}), y, p, cutoff


def test_classifier_is_calibrated_and_close_to_the_truth() -> None:
    X, y, p, cutoff = _binary()
    model = TimeCalibratedClassifier(random_state=1).fit(
        X.iloc[:5000], y[:5000], time=cutoff[:5000]
    )
    proba = model.predict_proba(X.iloc[5000:])[:, 1]
    assert proba.shape == (1000,)
    assert roc_auc(y[5000:], proba) > roc_auc(y[5000:], p[5000:]) - 0.04
    assert expected_calibration_error(y[5000:], proba) < 0.05
    assert model.n_train_ + model.n_calibration_ == 5000
    assert model.feature_names_in_ == ["x1", "x2", "kind"]


def test_centred_isotonic_joins_the_blocks_centres() -> None:
    # isotonic blocks: {0, 1} at 0, {2, 3} at 0.5 (pooling 1, 0), {4} at 1
    cal = CentredIsotonic().fit(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 0, 1]))
    assert np.allclose(cal.X_thresholds_, [0.5, 2.5, 4.0])
    assert np.allclose(cal.y_thresholds_, [0.0, 0.5, 1.0])
    got = cal.predict(np.array([-1.0, 0.5, 1.5, 2.5, 3.25, 9.0]))
    assert np.allclose(got, [0.0, 0.0, 0.25, 0.5, 0.75, 1.0])
    # scores the plain isotonic step ties keep their order
    iso = IsotonicRegression(out_of_bounds="clip").fit([0.0, 1.0, 2.0, 3.0, 4.0], [0, 0, 1, 0, 1])
    between = np.array([2.1, 2.4, 2.9])
    assert len(set(iso.predict(between))) == 1 and (np.diff(cal.predict(between)) > 0).all()


def test_the_final_booster_learns_from_every_cutoff() -> None:
    X, y, _, cutoff = _binary(n=2400)
    kw = {"n_estimators": 60, "early_stopping_rounds": 10, "random_state": 3}
    first = TimeCalibratedClassifier(refit=False, **kw).fit(X, y, time=cutoff)
    model = TimeCalibratedClassifier(**kw).fit(X, y, time=cutoff)
    # the same first booster decided the trees and the calibration
    assert model.best_iteration_ == first.best_iteration_
    assert np.array_equal(model.calibrator_.X_thresholds_, first.calibrator_.X_thresholds_)
    assert (first.n_refit_, model.n_refit_) == (0, 2400)
    assert model.booster_.num_trees() == model.best_iteration_
    # the final trees saw the calibration fold too: other scores, same calibration
    assert not np.allclose(model.predict_raw(X), first.predict_raw(X))
    late = cutoff >= np.unique(cutoff)[-2]
    fit_late = roc_auc(y[late], model.predict_raw(X[late]))
    assert fit_late > roc_auc(y[late], first.predict_raw(X[late]))


def test_classifier_follows_the_direction_of_a_feature() -> None:
    X, y, _, cutoff = _binary()
    model = TimeCalibratedClassifier().fit(X, y, time=cutoff)
    base = X.iloc[:200].copy()
    higher = base.assign(x1=base["x1"] + 1.0)
    assert (
        model.predict_proba(higher)[:, 1] >= model.predict_proba(base)[:, 1] - 1e-9
    ).mean() > 0.95


def test_contributions_sum_to_the_raw_score() -> None:
    X, y, _, cutoff = _binary(n=1200)
    model = TimeCalibratedClassifier(n_estimators=50).fit(X, y, time=cutoff)
    contrib = model.contributions(X.iloc[:20])
    raw = model.booster_.predict(
        model._prepare(X.iloc[:20], fitting=False),
        raw_score=True,
        num_iteration=model.best_iteration_,
    )
    assert np.allclose(contrib.sum(axis=1).to_numpy(), raw)
    assert list(contrib.columns) == ["x1", "x2", "kind", "_bias"]


def test_classifier_refuses_bad_input() -> None:
    X, y, _, cutoff = _binary(n=600)
    with pytest.raises(InvalidRequestError, match=r"fit needs time= \(each row's cutoff\)"):
        TimeCalibratedClassifier().fit(X, y)
    with pytest.raises(InvalidRequestError, match=r"at least 2 distinct cutoffs"):
        TimeCalibratedClassifier().fit(X, y, time=[cutoff[0]] * len(y))
    with pytest.raises(ModelError, match=r"the calibration fold \(\d+ rows\) holds only one class"):
        y2 = y.copy()
        y2[cutoff >= np.unique(cutoff)[-2]] = 0  # the last 2 of 6 cutoffs calibrate
        TimeCalibratedClassifier().fit(X, y2, time=cutoff)
    model = TimeCalibratedClassifier(n_estimators=20).fit(X, y, time=cutoff)
    with pytest.raises(
        InvalidRequestError, match=r"X lacks feature columns the model was trained with: x2"
    ):
        model.predict_proba(X.drop(columns=["x2"]))


def test_cutoffs_whose_labels_reach_the_calibration_fold_are_left_out() -> None:
    X, y, _, cutoff = _binary(n=2400)  # 6 monthly cutoffs from 2025-01-01, 400 rows each
    # the last 2 (May, June) calibrate; with a 60-day horizon, March (+60 = April 30) is the
    # last cutoff whose labels end before May 1, so April is in neither fold
    model = TimeCalibratedClassifier(n_estimators=20, purge_days=60).fit(X, y, time=cutoff)
    assert (model.n_train_, model.n_calibration_, model.purge_days_) == (1200, 800, 60.0)
    unpurged = TimeCalibratedClassifier(n_estimators=20).fit(X, y, time=cutoff)
    assert (unpurged.n_train_, unpurged.n_calibration_, unpurged.purge_days_) == (1600, 800, 0.0)
    # a horizon longer than the cutoffs span: nothing can be purged; said, and recorded
    with pytest.warns(
        FoldWarning,
        match=r"no cutoff is 150 days \(the label horizon\) before the first later cutoff "
        r"2025-05-01: the later fold overlaps the training labels",
    ):
        long = TimeCalibratedClassifier(n_estimators=20, purge_days=150).fit(X, y, time=cutoff)
    assert (long.n_train_, long.purge_days_) == (1600, 0.0)


def test_unseen_categories_are_handled_as_missing() -> None:
    X, y, _, cutoff = _binary(n=1200)
    model = TimeCalibratedClassifier(n_estimators=20).fit(X, y, time=cutoff)
    proba = model.predict_proba(X.iloc[:5].assign(kind="zzz"))[:, 1]
    assert np.isfinite(proba).all()


def test_censoring_survival_by_hand() -> None:
    days = np.array([1, 2, 2, 3, 4])
    cens = np.array([False, True, False, True, False])
    times, g = censoring_survival(days, cens)
    # G(t-): 1 at 1; 1 at 2; at 2 one of 4 at risk censored -> 0.75 before 3; at 3 one of 2 -> 0.375
    assert times.tolist() == [1, 2, 3, 4]
    assert g.tolist() == pytest.approx([1.0, 1.0, 0.75, 0.375])


def test_censored_quantile_by_hand() -> None:
    values = np.array([3.0, 1.0, 2.0, 4.0])
    cens = np.array([False, False, True, False])
    # Kaplan-Meier: at 1 one event of 4 at risk -> F = 0.25; 2 censored; at 3 one of 2
    # -> S = 0.75 * 0.5, F = 0.625; at 4 one of 1 -> F = 1
    assert censored_quantile(values, cens, 0.2) == 1.0
    assert censored_quantile(values, cens, 0.5) == 3.0
    assert censored_quantile(values, cens, 0.9) == 4.0
    # the last two censored: F reaches 0.5 at 2 and no further, so 0.6 is unknown
    late = np.array([False, False, True, True])
    assert censored_quantile(np.array([1.0, 2.0, 3.0, 4.0]), late, 0.5) == 2.0
    assert censored_quantile(np.array([1.0, 2.0, 3.0, 4.0]), late, 0.6) == np.inf


def test_interval_is_honest_out_of_fold_and_beyond_where_unknown() -> None:
    rng = np.random.default_rng(11)
    w = _toner_world(rng)  # rng goes on below, for fresh rows of the same world
    n, window, model = w.n, w.window, w.model
    # the bins' P10 and P90 lie about 1.28 sd (0.25 in log-days) either side of the median
    finite = np.isfinite(model.offsets_)
    assert np.abs(model.offsets_[:, 0][finite[:, 0]] + 0.32).max() < 0.12
    assert list(model.boosters_) == [0.5]
    # fresh rows of the same world: P(y < P10) and P(y > P90) near 10 % where observable
    rate2, level2 = rng.uniform(0.5, 3.0, size=n), rng.uniform(20, 100, size=n)
    y2 = (level2 - 10) / rate2 * rng.lognormal(0, 0.25, size=n)
    q = model.predict(pd.DataFrame({"rate": rate2, "level": level2}))
    inside = (level2 - 10) / rate2 < 0.5 * window
    assert 0.05 < (y2 < q[:, 0])[inside].mean() < 0.15
    assert 0.05 < (y2 > q[:, 2])[inside].mean() < 0.15
    # the slowest bin is mostly censored: its P90 is not known, so it is beyond the window
    assert not np.isfinite(model.offsets_[-1, 2])


def test_a_model_fitted_by_the_earlier_version_still_predicts() -> None:
    """Champions registered before the out-of-fold intervals hold one booster a quantile on
    the days scale and no offsets_: they keep predicting as they did."""
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"rate": rng.uniform(0.5, 3, 800), "level": rng.uniform(20, 100, 800)})
    days = np.minimum((X["level"] - 10) / X["rate"], 40.0)
    model = CensoredQuantileRegressor(n_estimators=20).fit(
        X, days, days >= 40, time=np.tile(np.arange(4), 200), window_days=40
    )
    old = CensoredQuantileRegressor(n_estimators=20, log_target=False).fit(
        X, days, days >= 40, time=np.tile(np.arange(4), 200), window_days=40
    )
    del old.offsets_
    old.boosters_ = {q: model.boosters_[0.5] for q in old.quantiles}
    old.best_iterations_ = {q: model.best_iterations_[0.5] for q in old.quantiles}
    q = old.predict(X.head(5))
    raw = np.clip(model.boosters_[0.5].predict(X.head(5)), 0.0, 40.0)  # log-days, as days
    assert np.allclose(q, np.column_stack([raw] * 3))
    assert old.contributions(X.head(5), quantile=0.9).shape == (5, 3)


class _Toner(NamedTuple):
    n: int
    window: float
    rate: np.ndarray
    level: np.ndarray
    X: pd.DataFrame
    days: np.ndarray
    censored: np.ndarray
    model: CensoredQuantileRegressor


def _toner_world(rng: np.random.Generator) -> _Toner:
    """Toner levels falling at a rate (% per day) with log-normal noise, censored at a 60-day
    window over 8 monthly cutoffs, and the regressor fitted on them."""
    n = 4000
    rate = rng.uniform(0.5, 3.0, size=n)
    level = rng.uniform(20, 100, size=n)
    true_days = (level - 10) / rate * rng.lognormal(0, 0.25, size=n)
    window = 60.0
    censored = true_days > window
    days = np.where(censored, window, true_days)
    X = pd.DataFrame({"rate": rate, "level": level})
    cutoff = np.tile(pd.date_range("2025-01-01", periods=8, freq="MS"), n // 8)
    model = CensoredQuantileRegressor(random_state=0).fit(
        X, days, censored, time=cutoff, window_days=window
    )
    return _Toner(n, window, rate, level, X, days, censored, model)


def test_quantiles_are_right_despite_censoring_at_the_window() -> None:
    w = _toner_world(np.random.default_rng(3))
    window, rate, level, X, days, censored, model = (
        w.window,
        w.rate,
        w.level,
        w.X,
        w.days,
        w.censored,
        w.model,
    )
    pred = model.predict_frame(X)
    assert list(pred.columns) == ["p10_days", "p50_days", "p90_days", "beyond_window"]
    assert (pred["p10_days"] <= pred["p50_days"]).all() and (
        pred["p50_days"] <= pred["p90_days"]
    ).all()
    # where the true median is inside the window, it is learnt without bias from censoring
    median = (level - 10) / rate
    inside = median < 0.7 * window
    assert np.median(pred["p50_days"][inside] / median[inside]) == pytest.approx(1.0, abs=0.08)
    # coverage of P10-P90 near 80% among rows whose outcome is observable
    obs = ~censored
    cover = ((days >= pred["p10_days"]) & (days <= pred["p90_days"]))[obs & inside].mean()
    assert 0.7 < cover < 0.9
    assert pred["beyond_window"][median > 2 * window].mean() > 0.9
    assert model.n_censored_at_window_ == censored.sum() and model.n_censored_early_ == 0


def test_quantile_regressor_refuses_nan_days() -> None:
    X = pd.DataFrame({"a": np.arange(50.0)})
    with pytest.raises(InvalidRequestError, match=r"days holds NaN: give censored rows the days"):
        CensoredQuantileRegressor().fit(
            X, [np.nan] * 50, [True] * 50, time=[0] * 50, window_days=30
        )


def _codes(model: TimeCalibratedClassifier | CensoredQuantileRegressor, X: pd.DataFrame):
    """X as the fast path's matrix: categories as their index in categories_, NaN if unseen."""
    cols = []
    for c in model.feature_names_in_:
        if c in model.categories_:
            idx = model.categories_[c].get_indexer(X[c].astype(str)).astype(float)
            cols.append(np.where(idx < 0, np.nan, idx))
        else:
            cols.append(X[c].to_numpy(float))
    return np.column_stack(cols)


def test_matrix_fast_path_equals_the_frame_path() -> None:
    X, y, _, cutoff = _binary(n=1200)
    model = TimeCalibratedClassifier(n_estimators=40).fit(X, y, time=cutoff)
    rows = X.iloc[:30].copy()
    rows.loc[rows.index[:3], "kind"] = "zzz"  # unseen: missing on both paths
    rows.loc[rows.index[3:6], "x2"] = np.nan
    fast = model.predict_proba_matrix(_codes(model, rows))
    assert fast.shape == (30,)
    assert np.allclose(fast, model.predict_proba(rows)[:, 1], rtol=0, atol=1e-12)
    with pytest.raises(InvalidRequestError, match=r"must have shape \(rows, 3\).*got \(2, 2\)"):
        model.predict_proba_matrix(np.zeros((2, 2)))

    rng = np.random.default_rng(5)
    Xq = pd.DataFrame({"rate": rng.uniform(0.5, 3, 800), "level": rng.uniform(20, 100, 800)})
    days = np.minimum((Xq["level"] - 10) / Xq["rate"], 40.0)
    reg = CensoredQuantileRegressor(n_estimators=30).fit(
        Xq, days, days >= 40, time=np.tile(np.arange(4), 200), window_days=40
    )
    q = reg.predict_matrix(_codes(reg, Xq.head(50)))
    frame = reg.predict_frame(Xq.head(50))
    assert np.allclose(q, frame[reg.quantile_columns].to_numpy(), rtol=0, atol=1e-12)
    assert (reg.beyond_window(q) == frame["beyond_window"].to_numpy()).all()


def test_predictions_equal_lightgbms_own_reading_of_the_frame_for_every_column_type() -> None:
    """predict_proba builds the float matrix itself (one copy per column); LightGBM's own
    conversion of the prepared frame (categories, nullable ints, booleans, strings) and the
    calibrator's own predict must give exactly the same probabilities."""
    rng = np.random.default_rng(3)
    n = 1500
    X = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "count": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "flag": rng.uniform(size=n) < 0.3,
            "kind": pd.array(rng.choice(["a", "b", "c"], n), dtype="str"),
            "obj": pd.Series(rng.choice(["u", "v"], n), dtype=object),
            "small": rng.integers(0, 3, n).astype("int32"),
        }
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X["x1"] + (X["kind"] == "b"))))).astype(int)
    cutoff = np.repeat(pd.date_range("2025-01-01", periods=5, freq="MS"), n // 5)
    model = TimeCalibratedClassifier(n_estimators=40).fit(X, y, time=cutoff)
    rows = X.iloc[:200].copy()
    rows.loc[rows.index[:5], "kind"] = "unseen"
    rows.loc[rows.index[5:10], "kind"] = None
    rows.loc[rows.index[10:15], "count"] = pd.NA
    rows.loc[rows.index[15:20], "x1"] = np.nan
    rows = rows[list(reversed(rows.columns))].assign(extra="ignored")  # order and extras
    own = model.booster_.predict(
        model._prepare(rows, fitting=False), num_iteration=model.best_iteration_
    )
    assert np.array_equal(model.predict_raw(rows), own)
    expected = np.clip(model.calibrator_.predict(own), 0.0, 1.0)
    assert np.allclose(model.predict_proba(rows)[:, 1], expected, rtol=0, atol=1e-15)
    M = model._matrix(rows)
    assert M.flags["F_CONTIGUOUS"] and M.shape == (200, 6)
    assert np.isnan(M[:10, model.feature_names_in_.index("kind")]).all()
    with pytest.raises(InvalidRequestError, match=r"lacks feature columns.*small"):
        model.predict_proba(rows.drop(columns="small"))


def test_parameters_the_estimator_sets_itself_are_refused_not_overwritten() -> None:
    """A seed or objective in [estimator.params] would be silently replaced: it is an error
    that names it and says where the seed goes; random_state is what changes the trees."""
    X, y, _, cutoff = _binary(n=1200)
    for bad in ({"seed": 3}, {"objective": "cross_entropy", "random_state": 1}):
        with pytest.raises(InvalidRequestError, match=r"cannot be set here.*random_state"):
            TimeCalibratedClassifier(params=bad, n_estimators=10).fit(X, y, time=cutoff)
    with pytest.raises(InvalidRequestError, match=r"params: alpha cannot be set here"):
        CensoredQuantileRegressor(params={"alpha": 0.9}, n_estimators=5).fit(
            X[["x1", "x2"]],
            np.full(len(X), 10.0),
            np.zeros(len(X), bool),
            time=cutoff,
            window_days=40,
        )
    kw = {"params": {"feature_fraction": 0.5}, "n_estimators": 30}
    a = TimeCalibratedClassifier(random_state=1, **kw).fit(X, y, time=cutoff).predict_raw(X)
    b = TimeCalibratedClassifier(random_state=2, **kw).fit(X, y, time=cutoff).predict_raw(X)
    assert not np.allclose(a, b)  # the seed reaches LightGBM (feature sampling differs)


def test_the_median_starts_from_an_offset_feature_and_learns_where_it_is_wrong() -> None:
    rng = np.random.default_rng(11)
    n, window = 4000, 200.0
    rate, level = rng.uniform(0.5, 3.0, n), rng.uniform(20, 100, n)
    est = (level - 10) / rate
    # the estimate is 30 % early on cartridges above 60 %, and missing on a tenth of the rows
    median = est * np.where(level > 60, 1.3, 1.0)
    true = median * rng.lognormal(0, 0.1, n)
    X = pd.DataFrame(
        {"rate": rate, "level": level, "est": np.where(rng.random(n) < 0.1, np.nan, est)}
    )
    censored = true > window
    days = np.where(censored, window, true)
    cutoff = np.tile(pd.date_range("2025-01-01", periods=8, freq="MS"), n // 8)
    fit = dict(time=cutoff, window_days=window)
    opts = dict(n_estimators=20, params={"learning_rate": 0.2}, random_state=0)
    model = CensoredQuantileRegressor(offset_feature="est", **opts).fit(X, days, censored, **fit)
    plain = CensoredQuantileRegressor(**opts).fit(X, days, censored, **fit)
    inside = (median < 0.7 * window) & X["est"].notna().to_numpy()

    def error(m: CensoredQuantileRegressor) -> np.ndarray:
        return np.abs(np.log(m.predict_frame(X)["p50_days"].to_numpy() / median))

    # from the estimate, 20 trees learn its 30 % and come twice as close as from scratch
    assert np.median(error(model)[inside]) < 0.6 * np.median(error(plain)[inside])
    full = inside & (level > 60)
    assert np.median(model.predict_frame(X)["p50_days"][full] / median[full]) == pytest.approx(
        1.0, abs=0.02
    )
    # rows without the estimate start from the median target and still get a median
    assert np.isfinite(model.predict_frame(X[X["est"].isna()])["p50_days"]).all()
    # the fast path adds the same start; the contributions (in days, the feature's own
    # start counted in its column) still add up to the log of the median
    rows = X[inside].head(20)
    assert np.allclose(model.predict_matrix(_codes(model, rows)), model.predict(rows), atol=1e-12)
    c = model.contributions(rows)
    p50 = model.predict_frame(rows)["p50_days"].to_numpy()
    assert np.allclose(c.sum(axis=1) / p50, np.log(p50))
    assert (c["est"].abs() > c["rate"].abs()).mean() > 0.5
    with pytest.raises(InvalidRequestError, match=r"offset_feature 'nope' must be one of the"):
        CensoredQuantileRegressor(offset_feature="nope").fit(X, days, censored, **fit)


def test_a_folds_matrix_is_the_whole_matrix_at_those_rows_for_every_column_type() -> None:
    """Fitting builds each fold's matrix from the frame (rows only, column by column, no
    whole-frame copy); it must hold exactly what the whole frame's matrix holds there, on
    the small-frame path (one block) and the large-frame one (a column at a time)."""
    rng = np.random.default_rng(8)
    n = 70_000  # above the block path's limit
    X = pd.DataFrame(
        {
            "x1": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "count": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), "Int64"),
            "flag": rng.uniform(size=n) < 0.3,
            "kind": pd.array(rng.choice(["a", "b", "c", None], n), dtype="str"),
            "obj": pd.Series(rng.choice(["u", "v"], n), dtype=object),
            "small": rng.integers(0, 3, n).astype("int32"),
            "big": rng.integers(0, 10**9, n),
        }
    )
    model = TimeCalibratedClassifier()
    model._learn_columns(X)
    whole = model._matrix(X)
    rows = rng.random(n) < 0.4
    part = model._matrix(X, rows)
    assert part.flags["F_CONTIGUOUS"] and part.shape == (int(rows.sum()), 7)
    assert np.array_equal(part, whole[rows], equal_nan=True)
    head = X.head(500)  # the one-block path
    assert np.array_equal(model._matrix(head), whole[:500], equal_nan=True)

    # a nullable integer offset with missing values starts from the fallback there
    t = np.tile(pd.date_range("2025-01-01", periods=8, freq="MS"), n // 8 + 1)[:n]
    offset = X["count"].astype("Float64") * 10 + 5
    days = np.clip(offset.fillna(30).to_numpy(dtype=float) * rng.lognormal(0, 0.2, n), 1, 60)
    Xo = pd.DataFrame({"x1": X["x1"], "est": pd.array(offset.round(), dtype="Int64")})
    reg = CensoredQuantileRegressor(n_estimators=10, offset_feature="est").fit(
        Xo, days, days >= 60, time=t, window_days=60
    )
    p = reg.predict(Xo.head(200))
    assert np.isfinite(p).all() and (np.diff(p, axis=1) >= 0).all()
