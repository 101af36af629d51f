"""Backtests on time splits: train on earlier cutoffs, evaluate on later ones.

Evaluation cutoffs are the latest month starts whose labels are complete (cutoff + horizon
on or before the end of the data); training cutoffs are earlier, and every training label
ends on or before the first evaluation cutoff, so nothing the model learns from happened
after a cutoff it is judged on. A counted number of training cutoffs keeps only those after
the first day the packs cover: at an earlier one nothing is known yet (it has no rows, or
rows with an empty history), and the report would claim cutoffs the model never learnt from
(a partner with 13 months of transactions has fewer training cutoffs than the spec asks for,
and the backtest says so). The model, each baseline of its spec and, on synthetic data,
the oracle (the world's true probabilities) are scored on the same rows; metrics come
overall and per evaluation cutoff, in a long table (``scope``, ``scorer``, ``metric``,
``value``).

    bt = backtest("refresh_due", lake, oracle="world/oracle")
    bt.table()          # scorer x metric, overall
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amplify_ml.errors import InvalidRequestError, ModelError
from amplify_ml.features import FeatureBuilder, FeatureSetMeta, FeatureWarning
from amplify_ml.features.cutoffs import expand_cutoffs, monthly
from amplify_ml.features.spec import load_spec, spec_path
from amplify_ml.lake import Lake
from amplify_ml.modeling import metrics as M
from amplify_ml.modeling.baselines import make_baseline, straight_line_days, trigger_ship_day
from amplify_ml.modeling.estimators import (
    CensoredQuantileRegressor,
    FoldWarning,
    TimeCalibratedClassifier,
)
from amplify_ml.modeling.spec import ModelSpec, load_model_spec
from amplify_ml.modeling.units import combine_by, to_units

MODEL = "model"
ORACLE = "oracle"
SHAP_SAMPLE = 2000


@dataclass(frozen=True)
class Split:
    """Training and evaluation cutoffs, and what they were planned from."""

    train: list[date]
    evaluate: list[date]
    horizon_days: int
    data_end: date
    data_start: date | None = None
    before_data: list[date] = field(default_factory=list)
    """Counted training cutoffs left out: on or before ``data_start``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": [c.isoformat() for c in self.train],
            "evaluate": [c.isoformat() for c in self.evaluate],
            "horizon_days": self.horizon_days,
            "data_end": self.data_end.isoformat(),
            "data_start": self.data_start.isoformat() if self.data_start else None,
            "before_data": [c.isoformat() for c in self.before_data],
        }


def _month_start(d: date) -> date:
    return d.replace(day=1)


def data_end(lake: Lake) -> date:
    """The last day the lake's packs cover (the latest ``period_end``)."""
    packs = lake.packs()
    if not len(packs) or "period_end" not in packs:
        raise InvalidRequestError(
            f"the lake at {lake.root} holds no packs: ingest packs first (amplify ingest)"
        )
    return max(date.fromisoformat(str(p)) for p in packs["period_end"].dropna())


def data_start(lake: Lake) -> date | None:
    """The first day the lake's packs cover (the earliest ``period_start``), if recorded."""
    packs = lake.packs()
    if not len(packs) or "period_start" not in packs:
        return None
    days = [date.fromisoformat(str(p)) for p in packs["period_start"].dropna()]
    return min(days) if days else None


def plan_split(
    spec: ModelSpec,
    end: date,
    *,
    horizon_days: int,
    train: int | Sequence[str | date] | None = None,
    evaluate: int | Sequence[str | date] | None = None,
    start: date | None = None,
) -> Split:
    """The cutoffs of a backtest (see the module docstring); explicit lists are checked.

    ``start``: the first day of data; counted training cutoffs on or before it are left out
    (``Split.before_data``), and counted evaluation cutoffs must fall after it."""
    h = timedelta(days=horizon_days)
    ev = evaluate if evaluate is not None else spec.cutoffs.evaluate
    tr = train if train is not None else spec.cutoffs.train
    if isinstance(ev, int):
        last = _month_start(end - h)
        if last + h > end:  # pragma: no cover - month start is never after end - h
            last = _month_start(last - timedelta(days=1))
        ev_cut = monthly(_shift(last, -(ev - 1)), last)
    else:
        ev_cut = expand_cutoffs(ev)
    if not ev_cut:
        raise InvalidRequestError("no evaluation cutoffs")
    if isinstance(ev, int) and start is not None and ev_cut[0] <= start:
        raise InvalidRequestError(
            f"the data run from {start} to {end}: the {ev} evaluation cutoff(s) with complete "
            f"labels (horizon {horizon_days} days) begin at {ev_cut[0]}, before any data; give "
            "fewer --eval-cutoffs or a shorter --horizon-days, or ingest a longer history"
        )
    late = [c for c in ev_cut if c + h > end]
    if late:
        raise InvalidRequestError(
            f"evaluation cutoff(s) {', '.join(map(str, late))} + horizon {horizon_days} days end "
            f"after the data ({end}): their labels are incomplete; choose earlier cutoffs"
        )
    before: list[date] = []
    if isinstance(tr, int):
        last_train = _month_start(ev_cut[0] - h)
        tr_cut = monthly(_shift(last_train, -(tr - 1)), last_train)
        if start is not None:
            before = [c for c in tr_cut if c <= start]
            tr_cut = [c for c in tr_cut if c > start]
    else:
        tr_cut = expand_cutoffs(tr)
    leaking = [c for c in tr_cut if c + h > ev_cut[0]]
    if leaking:
        raise InvalidRequestError(
            f"training cutoff(s) {', '.join(map(str, leaking))}: their labels (horizon "
            f"{horizon_days} days) reach past the first evaluation cutoff {ev_cut[0]}; "
            "train on earlier cutoffs so that nothing learnt happened after an evaluated one"
        )
    if len(tr_cut) < 2 and before:
        raise InvalidRequestError(
            f"the data run from {start} to {end}: {len(tr_cut)} of the {tr} monthly "
            f"training cutoffs fall after {start} with labels (horizon {horizon_days} "
            f"days) ending by the first evaluation cutoff {ev_cut[0]}; at least 2 are "
            "needed: give fewer --eval-cutoffs or a shorter --horizon-days, or ingest "
            "a longer history"
        )
    if len(tr_cut) < 2:
        raise InvalidRequestError(
            "at least 2 training cutoffs are needed (the later ones calibrate the model)"
        )
    return Split(
        train=tr_cut,
        evaluate=ev_cut,
        horizon_days=horizon_days,
        data_end=end,
        data_start=start,
        before_data=before,
    )


def _split_notes(split: Split) -> list[str]:
    if not split.before_data:
        return []
    b = split.before_data
    return [
        f"{len(b)} training cutoff(s) ({b[0]}..{b[-1]}) fall on or before the first day of data "
        f"({split.data_start}) and were left out: trained on {len(split.train)} cutoff(s) from "
        f"{split.train[0]}"
    ]


def _shift(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


@dataclass
class Backtest:
    """What a backtest produced: the fitted estimator and baselines, the evaluation rows with
    every scorer's output, and the metrics."""

    spec: ModelSpec
    split: Split
    meta: FeatureSetMeta
    estimator: Any
    baselines: dict[str, Any]
    features: list[str]
    keys: list[str]
    train: pd.DataFrame
    evaluate: pd.DataFrame
    scores: dict[str, np.ndarray]
    metrics: pd.DataFrame
    shap: pd.DataFrame | None = None
    shap_features: pd.DataFrame | None = None
    shipping: pd.DataFrame | None = None
    partners: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    rows: pd.DataFrame | None = None
    """Models whose rows combine into units (``settings.combine_by``): the evaluation rows as
    built, with their own probability (``p_row``); ``evaluate`` and ``scores`` are the units',
    ``train`` the rows the model learnt from."""

    @property
    def model(self) -> str:
        return self.spec.name

    def overall(self, scorer: str = MODEL) -> dict[str, float]:
        m = self.metrics[(self.metrics.scope == "all") & (self.metrics.scorer == scorer)]
        return dict(zip(m.metric, m.value, strict=True))

    def table(self, scope: str = "all") -> pd.DataFrame:
        """Scorers as rows, metrics as columns (overall by default, or one cutoff)."""
        m = self.metrics[self.metrics.scope == scope]
        t = m.pivot(index="scorer", columns="metric", values="value")
        order = [s for s in [MODEL, *self.baselines, ORACLE] if s in t.index]
        return t.loc[order]

    def built_parts(self) -> list[pd.DataFrame]:
        """The training rows and the evaluation rows as the feature set built them (the rows
        of a model whose rows combine into units, not the units), with the same columns."""
        ev = self.evaluate if self.rows is None else self.rows
        return [self.train, ev[list(self.train.columns)]]

    def built_rows(self) -> pd.DataFrame:
        """:meth:`built_parts` in one frame."""
        return pd.concat(self.built_parts(), ignore_index=True)

    def n_positives_train(self) -> int:
        return n_positives(self.train, self.spec.task)


def n_positives(frame: pd.DataFrame, task: str) -> int:
    """The rows a model learns the event from: positives (binary), or events seen (days)."""
    if task == "binary":
        return int(frame["label"].sum())
    return int((~frame["censored"].astype(bool)).sum())


def _oracle_frame(oracle: str | Path, model: str) -> pd.DataFrame | None:
    p = Path(oracle)
    for cand in (p / f"{model}.parquet", p / "oracle" / f"{model}.parquet"):
        if cand.is_file():
            o = pd.read_parquet(cand)
            o["cutoff"] = pd.to_datetime(o["cutoff"]).astype("datetime64[ns]")
            return o
    raise InvalidRequestError(
        f"no oracle for {model} in {p}: give a synthetic world's folder or its oracle/ folder"
    )


def build_sets(
    spec: ModelSpec,
    lake: Lake,
    split: Split,
    *,
    engine: str = "duckdb",
    memory_limit: str | None = None,
    builder: FeatureBuilder | None = None,
) -> tuple[pd.DataFrame, FeatureSetMeta]:
    """The training set over the training and evaluation cutoffs, in one build."""
    fs = (
        load_spec(spec.name, path=spec_path(spec.name, spec.feature_set_version))
        if spec.feature_set_version
        else load_spec(spec.name)
    )
    threshold = spec.settings.get("threshold_pct")
    cutoffs = sorted({*split.train, *split.evaluate})
    kwargs: dict[str, Any] = {"cutoffs": cutoffs, "horizon_days": split.horizon_days, "spec": fs}
    if threshold is not None:
        kwargs["threshold_pct"] = float(threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)  # kept in meta.notes
        if builder is not None:
            return builder.training_set(spec.name, **kwargs)
        with FeatureBuilder(lake, engine=engine, memory_limit=memory_limit) as fb:  # type: ignore[arg-type]
            return fb.training_set(spec.name, **kwargs)


def backtest(
    model: str | ModelSpec,
    lake: Lake,
    *,
    train_cutoffs: int | Sequence[str | date] | None = None,
    eval_cutoffs: int | Sequence[str | date] | None = None,
    horizon_days: int | None = None,
    oracle: str | Path | None = None,
    engine: str = "duckdb",
    memory_limit: str | None = None,
    builder: FeatureBuilder | None = None,
) -> Backtest:
    """Build, fit on the training cutoffs, score the evaluation cutoffs, compare.

    ``oracle``: a synthetic world's folder (or its ``oracle/``) for the oracle's metrics and
    the skill ratio. ``builder``: a :class:`FeatureBuilder` to reuse (several models).
    """
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    h = int(horizon_days or spec.horizon_days or load_spec(spec.name).horizon_days)
    split = plan_split(
        spec,
        data_end(lake),
        horizon_days=h,
        train=train_cutoffs,
        evaluate=eval_cutoffs,
        start=data_start(lake),
    )
    df, meta = build_sets(
        spec, lake, split, engine=engine, memory_limit=memory_limit, builder=builder
    )
    keys = list(meta.keys)
    feats = list(meta.features)
    cut = df["cutoff"].dt.date
    train = df[cut.isin(split.train)].reset_index(drop=True)
    ev = df[cut.isin(split.evaluate)].reset_index(drop=True)
    del df, cut  # the two parts are copies: the whole set is not kept through the fit
    for name, part, cs in (("training", train, split.train), ("evaluation", ev, split.evaluate)):
        if part.empty:
            raise ModelError(
                f"{spec.name}: no {name} rows at cutoffs {cs[0]}..{cs[-1]}; the lake has no "
                "entities alive then (check the packs' periods, or give other cutoffs)"
            )
    o = _oracle_frame(oracle, spec.name) if oracle is not None else None
    if spec.task == "binary":
        return _binary(spec, split, meta, train, ev, keys, feats, o)
    return _days(spec, split, meta, train, ev, keys, feats, o)


# -- the model to serve ----------------------------------------------------------------------


def final_cutoffs(split: Split) -> list[date]:
    """Every cutoff whose labels are complete, from the first training one: the training
    cutoffs, the month starts between them and the evaluation ones, and the evaluation ones.
    The backtest's model cannot learn from the latest of them (they judge it)."""
    last = split.train[-1]
    between = [c for c in monthly(last, split.evaluate[-1]) if c > last]
    return sorted({*split.train, *between, *split.evaluate})


@dataclass(frozen=True)
class FinalFit:
    """The model to serve: the backtest's spec fitted again on :func:`final_cutoffs`, so that
    it has learnt from the latest complete outcomes too (the backtest's model has not seen
    the last ``horizon + evaluation`` months). It has no held-out figure of its own: the
    backtest's metrics are those of the same spec one evaluation period earlier."""

    estimator: Any
    cutoffs: list[date]
    horizon_days: int
    rows: int
    positives: int
    notes: list[str] = field(default_factory=list)

    @property
    def label_end(self) -> date:
        """The last day whose outcomes the model learnt from."""
        return self.cutoffs[-1] + timedelta(days=self.horizon_days)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "label_end": self.label_end.isoformat(),
            "rows": self.rows,
            "positives": self.positives,
        }


def fit_final(
    bt: Backtest,
    lake: Lake,
    *,
    engine: str = "duckdb",
    memory_limit: str | None = None,
    builder: FeatureBuilder | None = None,
) -> FinalFit:
    """Fit ``bt``'s spec on every cutoff with complete labels (:func:`final_cutoffs`): the
    backtest's training and evaluation rows, and the cutoffs between them built now. The
    estimator is made, calibrated and early-stopped exactly as in the backtest."""
    split = bt.split
    cutoffs = final_cutoffs(split)
    done = {*split.train, *split.evaluate}
    parts = bt.built_parts()
    gap = [c for c in cutoffs if c not in done]
    if gap:
        df, _ = build_sets(
            bt.spec,
            lake,
            dataclasses.replace(split, train=gap, evaluate=[]),
            engine=engine,
            memory_limit=memory_limit,
            builder=builder,
        )
        parts.append(df[list(bt.train.columns)])
        del df
    # one concatenation (the backtest's rows are copied once); the estimator then builds
    # each fold's matrix from it without copying it again
    frame = pd.concat(parts, ignore_index=True)
    del parts
    notes: list[str] = []
    if bt.spec.task == "binary":
        est = _fit_classifier(bt.spec, split, frame, bt.features, notes)
    else:
        est = _fit_days(bt.spec, split, frame, bt.features, notes)
    return FinalFit(
        estimator=est,
        cutoffs=cutoffs,
        horizon_days=split.horizon_days,
        rows=len(frame),
        positives=n_positives(frame, bt.spec.task),
        notes=notes,
    )


# -- binary ---------------------------------------------------------------------------------


def _fit(est: Any, notes: list[str], *args: Any, **kwargs: Any) -> Any:
    """``est.fit(*args, **kwargs)``, its :class:`FoldWarning` kept in ``notes``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FoldWarning)
        est.fit(*args, **kwargs)
    for w in caught:
        if issubclass(w.category, FoldWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return est


def _fit_classifier(
    spec: ModelSpec, split: Split, train: pd.DataFrame, feats: list[str], notes: list[str]
) -> Any:
    # calibrated on cutoffs whose outcomes the booster never saw: purged by the horizon
    opts = {"purge_days": float(split.horizon_days), **spec.estimator.options}
    est = TimeCalibratedClassifier(params=dict(spec.estimator.params), **opts)
    return _fit(est, notes, train[feats], train["label"].to_numpy(), time=train["cutoff"])


def _fit_days(
    spec: ModelSpec, split: Split, train: pd.DataFrame, feats: list[str], notes: list[str]
) -> Any:
    # early-stopped on cutoffs whose outcomes the trees never saw: purged by the window
    window = float(split.horizon_days)
    opts = {"purge_days": window, **spec.estimator.options}
    if "quantiles" in opts:
        opts["quantiles"] = tuple(float(q) for q in opts["quantiles"])
    est = CensoredQuantileRegressor(params=dict(spec.estimator.params), **opts)
    cens = train["censored"].astype(bool).to_numpy()
    days = np.where(cens, window, train["label"].to_numpy(dtype=float))
    return _fit(est, notes, train[feats], days, cens, time=train["cutoff"], window_days=window)


def _attach_oracle(
    ev: pd.DataFrame, o: pd.DataFrame | None, keys: list[str], cols: list[str]
) -> pd.DataFrame | None:
    if o is None:
        return None
    on = [k for k in [*keys, "cutoff"] if k in o.columns]
    m = ev[on].merge(o[[*on, *cols]], on=on, how="left", validate="one_to_one")
    return m[cols]


INTERVAL_RESAMPLES = 200
"""Resamples of whole accounts or devices behind each metric's 95 % interval."""
_SUBKEYS = ("category", "color")
"""Key columns that split one account or device into rows (drawn together when resampling)."""


def _clusters(ev: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Each evaluation row's account or device (its keys less the category or colour)."""
    cols = [k for k in keys if k not in _SUBKEYS and k in ev.columns]
    return ev.groupby(cols, sort=False).ngroup().to_numpy()


def _interval_rows(name: str, stat: Any, clusters: np.ndarray) -> list[tuple[str, str, str, float]]:
    lo, hi = M.cluster_bootstrap(stat, clusters, n_resamples=INTERVAL_RESAMPLES)
    return [("all", MODEL, f"{name}_ci_low", lo), ("all", MODEL, f"{name}_ci_high", hi)]


def _binary_intervals(
    y: np.ndarray, scores: dict[str, np.ndarray], clusters: np.ndarray
) -> list[tuple[str, str, str, float]]:
    """95 % intervals of the model's ROC AUC and, with the oracle, of its skill ratio (the
    model and the oracle scored on the same resample), resampling whole accounts/devices."""
    auc = M.weighted_roc_auc(y, scores[MODEL])
    out = _interval_rows("roc_auc", auc, clusters)
    if ORACLE in scores:
        om = np.isfinite(scores[ORACLE])
        if om.sum() >= 2:
            auc_m = M.weighted_roc_auc(y[om], scores[MODEL][om])
            auc_o = M.weighted_roc_auc(y[om], scores[ORACLE][om])

            def skill(w: np.ndarray) -> float:
                return M.skill_ratio(auc_m(w[om]), auc_o(w[om]))

            out += _interval_rows("skill_ratio", skill, clusters)
    return out


def _days_intervals(
    days: np.ndarray, cens: np.ndarray, point: dict[str, np.ndarray], clusters: np.ndarray
) -> list[tuple[str, str, str, float]]:
    """95 % intervals of the model's MAE in days and, with the oracle, of its ratio to the
    oracle's MAE on the same resample, resampling whole devices."""
    observed = ~cens & np.isfinite(days)

    def mae_of(pred: np.ndarray, rows: np.ndarray) -> Any:
        err = np.where(rows, np.abs(days - pred), 0.0)

        def mae(w: np.ndarray) -> float:
            total = (w * rows).sum()
            return float((w * err).sum() / total) if total > 0 else float("nan")

        return mae

    model_ok = observed & np.isfinite(point[MODEL])
    out = _interval_rows("mae_days", mae_of(point[MODEL], model_ok), clusters)
    if ORACLE in point:
        both = model_ok & np.isfinite(point[ORACLE])
        mae_m, mae_o = mae_of(point[MODEL], both), mae_of(point[ORACLE], both)

        def ratio(w: np.ndarray) -> float:
            o = mae_o(w)
            return mae_m(w) / o if o > 0 else float("nan")

        out += _interval_rows("mae_ratio_vs_oracle", ratio, clusters)
    return out


def _binary_metrics(y: np.ndarray, p: np.ndarray, budgets: Sequence[float]) -> dict[str, float]:
    r = M.binary_report(y, p)
    for b in budgets:
        prec, rec = M.precision_recall_at(y, p, b)
        r[f"precision_at_{b:g}"] = prec
        r[f"recall_at_{b:g}"] = rec
    return r


def _binary(
    spec: ModelSpec,
    split: Split,
    meta: FeatureSetMeta,
    train: pd.DataFrame,
    ev: pd.DataFrame,
    keys: list[str],
    feats: list[str],
    oracle: pd.DataFrame | None,
) -> Backtest:
    notes: list[str] = [*meta.notes, *_split_notes(split)]
    est = _fit_classifier(spec, split, train, feats, notes)
    p = est.predict_proba(ev[feats])[:, 1]
    parts = None
    by = combine_by(spec, keys)
    if by is not None:
        # judged per unit (device): its rows' (components') chances combined, labels any;
        # the baselines learn from and score the units (their features are the unit's)
        parts = ev.assign(p_row=p)
        ev, p, _ = to_units(ev, by, p)
        keys = by
    units = train if by is None else to_units(train, by)[0]
    scores: dict[str, np.ndarray] = {MODEL: p}
    fitted: dict[str, Any] = {}
    ytr = units["label"].to_numpy()
    for name in spec.baselines:
        b = make_baseline(spec.name, name).fit(units, ytr)
        fitted[name] = b
        scores[name] = b.predict_proba(ev)
    y = ev["label"].to_numpy().astype(float)
    mask = np.ones(len(ev), dtype=bool)
    if oracle is not None:
        p_true = _attach_oracle(ev, oracle, keys, ["p_true"])["p_true"].to_numpy(dtype=float)
        missing = ~np.isfinite(p_true)
        if missing.any():
            notes.append(
                f"the oracle has no p_true for {int(missing.sum())} of {len(ev)} evaluation rows; "
                "oracle metrics and skill ratios use the other rows"
            )
        scores[ORACLE] = p_true
    budgets = [float(b) for b in spec.settings.get("alert_budgets", [])]
    rows: list[tuple[str, str, str, float]] = []
    cutoffs = ev["cutoff"].dt.date.astype(str).to_numpy()
    scopes = [("all", np.ones(len(ev), dtype=bool))] + [
        (c, cutoffs == c) for c in sorted(set(cutoffs))
    ]
    for scope, sm in scopes:
        auc_oracle = exp_oracle = float("nan")
        if ORACLE in scores:
            om = sm & np.isfinite(scores[ORACLE])
            q = scores[ORACLE][om]
            auc_oracle = M.roc_auc(y[om], q)
            exp_oracle = M.expected_roc_auc(q, q)
        for name, s in scores.items():
            m = sm & (np.isfinite(scores[ORACLE]) if name == ORACLE else mask)
            rep = _binary_metrics(y[m], s[m], budgets)
            if ORACLE in scores and name != ORACLE:
                om = sm & np.isfinite(scores[ORACLE])
                rep["skill_ratio"] = M.skill_ratio(M.roc_auc(y[om], s[om]), auc_oracle)
                # the same, expected over the outcomes (the oracle's p_true as soft labels)
                rep["skill_ratio_expected"] = M.skill_ratio(
                    M.expected_roc_auc(q, s[om]), exp_oracle
                )
            rows += [(scope, name, k, float(v)) for k, v in rep.items()]
    rows += _binary_intervals(y, scores, _clusters(ev, keys))
    metrics = pd.DataFrame(rows, columns=["scope", "scorer", "metric", "value"])
    partners = _per_partner(spec, ev, y, scores) if "partner_id" in ev else None
    shap, shap_x = _shap_sample(est, ev if parts is None else parts, feats)
    if parts is not None:
        parts_auc = M.roc_auc(parts["label"].to_numpy(), parts["p_row"].to_numpy())
        metrics.loc[len(metrics)] = ["all", MODEL, "row_roc_auc", parts_auc]
    return Backtest(
        spec=spec,
        split=split,
        meta=meta,
        estimator=est,
        baselines=fitted,
        features=feats,
        keys=keys,
        train=train,
        evaluate=ev,
        scores=scores,
        metrics=metrics,
        shap=shap,
        shap_features=shap_x,
        partners=partners,
        notes=notes,
        rows=parts,
    )


def _per_partner(
    spec: ModelSpec, ev: pd.DataFrame, y: np.ndarray, scores: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Per partner: rows, positives, and the model's and baselines' AUC where the partner
    has enough evaluation data on its own; the others are served by the pooled model."""
    min_rows = int(spec.settings.get("partner_min_rows", 200))
    min_pos = int(spec.settings.get("partner_min_positives", 20))
    out = []
    pid = ev["partner_id"].astype(str).to_numpy()
    for p in sorted(set(pid)):
        m = pid == p
        n, pos = int(m.sum()), int(y[m].sum())
        row: dict[str, Any] = {"partner_id": p, "rows": n, "positives": pos}
        enough = n >= min_rows and min_pos <= pos < n
        row["evaluated"] = enough
        for name, s in scores.items():
            if name == ORACLE:
                ok = m & np.isfinite(s)
                row[f"{name}_roc_auc"] = M.roc_auc(y[ok], s[ok]) if enough else float("nan")
            else:
                row[f"{name}_roc_auc"] = M.roc_auc(y[m], s[m]) if enough else float("nan")
        out.append(row)
    return pd.DataFrame(out)


def _shap_sample(est: Any, ev: pd.DataFrame, feats: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sample = ev.sample(n=min(SHAP_SAMPLE, len(ev)), random_state=0) if len(ev) else ev
    return est.contributions(sample[feats]), sample[feats]


# -- days to threshold ------------------------------------------------------------------------


def _days(
    spec: ModelSpec,
    split: Split,
    meta: FeatureSetMeta,
    train: pd.DataFrame,
    ev: pd.DataFrame,
    keys: list[str],
    feats: list[str],
    oracle: pd.DataFrame | None,
) -> Backtest:
    notes: list[str] = [*meta.notes, *_split_notes(split)]
    window = float(split.horizon_days)
    threshold = float(spec.settings.get("threshold_pct", 10.0))
    lead = float(spec.settings.get("lead_time_days", 5))
    alphas = [float(a) for a in spec.settings.get("alphas", [0.1])]
    est = _fit_days(spec, split, train, feats, notes)
    q = est.predict_frame(ev[feats])
    levels = {float(x): q[f"p{round(float(x) * 100):02d}_days"].to_numpy() for x in est.quantiles}
    days = ev["label"].to_numpy(dtype=float)
    cens = ev["censored"].astype(bool).to_numpy()
    line = straight_line_days(ev, threshold_pct=threshold, window_days=window)
    point: dict[str, np.ndarray] = {
        MODEL: levels[0.5] if 0.5 in levels else q.iloc[:, 1].to_numpy()
    }
    scores: dict[str, np.ndarray] = {MODEL: point[MODEL]}
    fitted: dict[str, Any] = {}
    for name in spec.baselines:
        fitted[name] = make_baseline(spec.name, name)
    if "straight_line" in spec.baselines:
        point["straight_line"] = line
        scores["straight_line"] = line
    o_levels: dict[float, np.ndarray] | None = None
    if oracle is not None:
        oc = ["p10_days", "p50_days", "p90_days"]
        om = _attach_oracle(ev, oracle, keys, oc)
        o_levels = {
            0.1: om["p10_days"].to_numpy(float),
            0.5: om["p50_days"].to_numpy(float),
            0.9: om["p90_days"].to_numpy(float),
        }
        point[ORACLE] = o_levels[0.5]
        scores[ORACLE] = o_levels[0.5]
        miss = ~np.isfinite(o_levels[0.5])
        if miss.any():
            notes.append(f"the oracle has no quantiles for {int(miss.sum())} evaluation rows")
    # shipping: ship when P(threshold before delivery) > alpha, i.e. on q_alpha - lead time
    ship_rules: dict[tuple[str, float | None], np.ndarray] = {}
    for a in alphas:
        ship_rules[(MODEL, a)] = M.quantile_from_levels(levels, a) - lead
        if o_levels is not None:
            ship_rules[(ORACLE, a)] = M.quantile_from_levels(o_levels, a) - lead
    if "straight_line" in spec.baselines:
        ship_rules[("straight_line", None)] = line - lead
    if "trigger_12d_5pct" in spec.baselines:
        ship_rules[("trigger_12d_5pct", None)] = trigger_ship_day(
            ev, threshold_pct=threshold, window_days=window
        )
    cutoffs = ev["cutoff"].dt.date.astype(str).to_numpy()
    scopes = [("all", np.ones(len(ev), dtype=bool))] + [
        (c, cutoffs == c) for c in sorted(set(cutoffs))
    ]
    rows: list[tuple[str, str, str, float]] = []
    ship_rows: list[dict[str, Any]] = []
    for scope, sm in scopes:
        mae_oracle = float("nan")
        if ORACLE in point:
            ok = sm & np.isfinite(point[ORACLE])
            mae_oracle = M.mae_observed(days[ok], cens[ok], point[ORACLE][ok])
        for name, pred in point.items():
            ok = sm & np.isfinite(pred)
            rep = {
                "n": float(ok.sum()),
                "observed": float((~cens[ok]).sum()),
                "mae_days": M.mae_observed(days[ok], cens[ok], pred[ok]),
            }
            if name == MODEL:
                lo, hi = levels[min(levels)], levels[max(levels)]
                rep["coverage_p10_p90"] = M.interval_coverage(days[sm], cens[sm], lo[sm], hi[sm])
                rep["beyond_window_rate"] = float(q["beyond_window"].to_numpy()[sm].mean())
            if name == ORACLE and o_levels is not None:
                rep["coverage_p10_p90"] = M.interval_coverage(
                    days[ok], cens[ok], o_levels[0.1][ok], o_levels[0.9][ok]
                )
            if ORACLE in point and name != ORACLE:
                rep["mae_ratio_vs_oracle"] = (
                    rep["mae_days"] / mae_oracle if mae_oracle > 0 else float("nan")
                )
            rows += [(scope, name, k, float(v)) for k, v in rep.items()]
        for (name, a), ship in ship_rules.items():
            ok = sm & np.isfinite(ship)
            out = M.shipping_outcome(
                days[ok], cens[ok], ship[ok], window_days=window, lead_time_days=lead
            )
            ship_rows.append({"scope": scope, "policy": name, "alpha": a, **out.to_dict()})
    rows += _days_intervals(days, cens, point, _clusters(ev, keys))
    metrics = pd.DataFrame(rows, columns=["scope", "scorer", "metric", "value"])
    shipping = pd.DataFrame(ship_rows)
    for a in alphas:
        s = shipping[(shipping.scope == "all") & (shipping.policy == MODEL) & (shipping.alpha == a)]
        for col in ("stockout_rate", "waste_days_mean"):
            metrics.loc[len(metrics)] = [
                "all",
                MODEL,
                f"ship_{col}_alpha_{a:g}",
                float(s[col].iloc[0]),
            ]
    for name in ("straight_line", "trigger_12d_5pct"):
        s = shipping[(shipping.scope == "all") & (shipping.policy == name)]
        if len(s):
            for col in ("stockout_rate", "waste_days_mean"):
                metrics.loc[len(metrics)] = ["all", name, f"ship_{col}", float(s[col].iloc[0])]
    sample = ev.sample(n=min(SHAP_SAMPLE, len(ev)), random_state=0)
    shap = est.contributions(
        sample[feats], quantile=0.5 if 0.5 in est.quantiles else est.quantiles[0]
    )
    ev = ev.copy()
    for c in q.columns:
        ev[c] = q[c].to_numpy()
    return Backtest(
        spec=spec,
        split=split,
        meta=meta,
        estimator=est,
        baselines=fitted,
        features=feats,
        keys=keys,
        train=train,
        evaluate=ev,
        scores=scores,
        metrics=metrics,
        shap=shap,
        shap_features=sample[feats],
        shipping=shipping,
        notes=notes,
    )
