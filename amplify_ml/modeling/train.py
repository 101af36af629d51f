"""Training: backtest, log everything to MLflow, register, promote through the gate.

    result = train("refresh_due", lake, workspace=".amplify", oracle="world")
    result.promoted, result.version, result.backtest.table()

A run logs the model spec, the feature-set spec, the feature list, the data fingerprint
(pack ids, manifest hashes, cutoffs), metrics overall and per evaluation cutoff for the
model, each baseline and the oracle, plots, the model (a pyfunc returning probabilities or
quantiles, with signature and input example) and the model card. The version is registered
as ``amplify.<model>``; the alias ``champion`` moves only when the gate passes: at least as
good as the champion on the same evaluation rows, calibrated, trained on enough positives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from amplify_ml.errors import ModelError
from amplify_ml.features import FeatureBuilder
from amplify_ml.lake import Lake
from amplify_ml.modeling import metrics as M
from amplify_ml.modeling import plots
from amplify_ml.modeling.backtest import (
    INTERVAL_RESAMPLES,
    MODEL,
    ORACLE,
    Backtest,
    FinalFit,
    backtest,
    fit_final,
)
from amplify_ml.modeling.registry import (
    AmplifyPyfunc,
    GateDecision,
    champion_version,
    configure_tracking,
    experiment_id,
    gate_decision,
    pip_requirements,
    registered_name,
    set_champion,
)
from amplify_ml.modeling.spec import ModelSpec, load_model_spec

BINARY_PANELS = ["roc_auc", "pr_auc", "lift_top_decile", "ece"]
BACKTEST_MODEL = "backtest_model"
"""The run's second model when the served version is a refit: the one the metrics judge."""
BACKTEST_MODEL_TAG = "amplify.backtest_model_uri"
DAYS_PANELS = ["mae_days", "coverage_p10_p90"]


@dataclass
class TrainResult:
    """What :func:`train` did."""

    model: str
    run_id: str
    version: str | None
    promoted: bool
    gate: GateDecision
    backtest: Backtest
    card: str
    card_path: Path | None = None
    champion_metric: float | None = None
    notes: list[str] = field(default_factory=list)
    final: FinalFit | None = None
    """The version served, refit on every cutoff with complete labels (None: the backtest's
    model is the one served)."""

    @property
    def served(self) -> Any:
        """The estimator registered as the version: the refit, or the backtest's model."""
        return self.final.estimator if self.final is not None else self.backtest.estimator

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "run_id": self.run_id,
            "version": self.version,
            "promoted": self.promoted,
            "gate": self.gate.reasons,
            "metrics": {k: v for k, v in self.backtest.overall().items() if np.isfinite(v)},
            "split": self.backtest.split.to_dict(),
            "served": self.final.to_dict() if self.final is not None else "backtest model",
            "card": str(self.card_path) if self.card_path else None,
        }


def _fingerprint(bt: Backtest) -> dict[str, Any]:
    fp = dict(bt.meta.fingerprint)
    fp["cutoffs"] = bt.split.to_dict()
    fp["feature_set_sha256"] = bt.meta.spec.get("sha256")
    fp["model_spec_sha256"] = bt.spec.sha256
    return fp


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _metric_key(name: str) -> str:
    return name.replace("@", "_at_")


def _metrics_for_mlflow(bt: Backtest) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in bt.metrics.itertuples(index=False):
        if not np.isfinite(r.value):
            continue
        key = f"{r.scorer}.{r.metric}" if r.scope == "all" else f"{r.scorer}.{r.metric}.{r.scope}"
        out[_metric_key(key)] = float(r.value)
    out["train.rows"] = float(len(bt.train))
    out["train.positives"] = float(bt.n_positives_train())
    out["evaluate.rows"] = float(len(bt.evaluate))
    return out


def _plots(bt: Backtest, folder: Path) -> list[Path]:
    out: list[Path] = []
    name = bt.model
    long = bt.metrics[bt.metrics.scope != "all"].rename(columns={"scope": "cutoff"})
    try:
        if bt.spec.task == "binary":
            y = bt.evaluate["label"].to_numpy()
            ok = np.ones(len(y), dtype=bool)
            if ORACLE in bt.scores:
                ok = np.isfinite(bt.scores[ORACLE])
            scores = {k: v[ok] for k, v in bt.scores.items()}
            if len(np.unique(y[ok])) == 2:
                out.append(plots.save(plots.roc_pr(y[ok], scores, title=name), folder / "roc_pr"))
                out.append(plots.save(plots.lift(y[ok], scores, title=name), folder / "lift"))
            out.append(
                plots.save(
                    plots.calibration(y, bt.scores[MODEL], title=name), folder / "calibration"
                )
            )
            panels = [m for m in BINARY_PANELS if m in set(long.metric)]
        else:
            ev = bt.evaluate
            base = {k: v for k, v in bt.scores.items() if k not in (MODEL, ORACLE)}
            out.append(
                plots.save(
                    plots.depletion(
                        ev["label"].to_numpy(float),
                        ev["censored"].to_numpy(bool),
                        ev[["p10_days", "p50_days", "p90_days"]],
                        base or None,
                        title=name,
                    ),
                    folder / "depletion",
                )
            )
            if bt.shipping is not None and len(bt.shipping):
                out.append(plots.save(plots.shipping(bt.shipping, title=name), folder / "shipping"))
            panels = [m for m in DAYS_PANELS if m in set(long.metric)]
        if len(long) and panels:
            out.append(
                plots.save(
                    plots.metrics_by_cutoff(long, metrics=panels, title=name),
                    folder / "metrics_by_cutoff",
                )
            )
        if bt.shap is not None and bt.shap_features is not None and len(bt.shap):
            out.append(
                plots.save(
                    plots.shap_summary(bt.shap, bt.shap_features, title=name),
                    folder / "shap_summary",
                )
            )
    except Exception as exc:  # a plot must never lose a trained model; say which one failed
        warnings.warn(f"{name}: a plot could not be drawn: {exc}", stacklevel=2)
    return out


def top_reasons(bt: Backtest, n: int = 25) -> pd.DataFrame | None:
    """The ``n`` highest-scored evaluation rows (soonest to the threshold for depletion) of
    the latest evaluation cutoff, with their three reasons in plain sentences."""
    from amplify_ml.modeling.reasons import reasons_frame

    ev = bt.evaluate
    if ev.empty:
        return None
    last = ev[ev["cutoff"] == ev["cutoff"].max()]
    if bt.spec.task == "binary":
        score = pd.Series(bt.scores[MODEL], index=ev.index).loc[last.index]
        rows = last.loc[score.sort_values(ascending=False, kind="stable").index[:n]]
        direction, col = "up", "probability"
        values = score.loc[rows.index]
        if bt.rows is not None:  # units of parts: the reasons of each one's likeliest part
            on = [*bt.keys, "cutoff"]
            best = bt.rows.sort_values("p_row", ascending=False, kind="stable")
            best = best.drop_duplicates(on)
            parts = rows[on].merge(best, on=on, how="left")
            parts.index = rows.index
            rows = parts
        contrib = bt.estimator.contributions(rows[bt.features])
    else:
        rows = last.sort_values("p50_days", kind="stable").head(n)
        direction, col = "down", "p50_days"
        values = rows["p50_days"]
        contrib = bt.estimator.contributions(rows[bt.features], quantile=0.5)
    keys = list(bt.meta.keys) if bt.rows is not None else bt.keys
    why = reasons_frame(contrib, rows[bt.features], keys=rows[keys], direction=direction)
    out = rows[[*keys, "cutoff"]].copy()
    out[col] = values.to_numpy()
    for c in [c for c in why.columns if c.startswith("reason_")]:
        out[c] = why[c].to_numpy()
    return out.reset_index(drop=True)


def _fmt(v: float, metric: str) -> str:
    if not np.isfinite(v):
        return "-"
    if metric in ("n", "positives", "observed", "rows"):
        return f"{v:,.0f}"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:,.1f}"


def metrics_markdown(bt: Backtest, columns: Sequence[str] | None = None) -> str:
    t = bt.table()
    cols = [c for c in (columns or t.columns) if c in t.columns]
    lines = ["| scorer | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for scorer, row in t[cols].iterrows():
        lines.append(f"| {scorer} | " + " | ".join(_fmt(row[c], c) for c in cols) + " |")
    return "\n".join(lines)


_INTERVALS = (
    ("roc_auc", "ROC AUC"),
    ("skill_ratio", "skill ratio"),
    ("mae_days", "MAE"),
    ("mae_ratio_vs_oracle", "MAE ratio to the oracle"),
)


def interval_line(bt: Backtest) -> str | None:
    """The model's headline metrics with their 95 % intervals from resampling whole accounts
    or devices of the evaluation rows (None when the backtest has none)."""
    o = bt.overall()
    parts = []
    for name, label in _INTERVALS:
        lo, hi = o.get(f"{name}_ci_low", float("nan")), o.get(f"{name}_ci_high", float("nan"))
        if np.isfinite(lo) and np.isfinite(hi) and name in o:
            unit = " days" if name == "mae_days" else ""
            parts.append(f"{label} {o[name]:.3f}{unit} ({lo:.3f}-{hi:.3f})")
    if not parts:
        return None
    unit = "devices" if "device_id" in bt.keys else "accounts"
    return (
        f"95 % intervals from {INTERVAL_RESAMPLES} resamples of whole {unit} of the evaluation "
        f"rows: {'; '.join(parts)}. They show how far a figure moves on another draw of the same "
        "population, not under a change of it."
    )


def card_columns(bt: Backtest) -> list[str]:
    if bt.spec.task == "binary":
        cols = ["roc_auc", "pr_auc", "lift_top_decile", "brier", "ece", "skill_ratio"]
        cols += ["skill_ratio_expected"]
        cols += sorted(
            c for c in set(bt.metrics.metric) if c.startswith(("precision_at", "recall_at"))
        )
        return cols
    return ["mae_days", "mae_ratio_vs_oracle", "coverage_p10_p90", "beyond_window_rate"]


def _builders_line(builders: list[dict[str, Any]]) -> str:
    """The feature set's builders with their settings, e.g. ``supply_level (windows 7, 30)``."""

    def value(v: Any) -> str:
        return ", ".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v)

    out = []
    for b in builders:
        opts = [
            k if v is True else f"{k} {value(v)}"
            for k, v in b.items()
            if k != "name" and v is not False
        ]
        out.append(f"`{b['name']}`" + (f" ({'; '.join(opts)})" if opts else ""))
    return ", ".join(out) or "-"


def _served_line(bt: Backtest, final: FinalFit | None) -> str:
    if final is None:
        return "- Served: the model evaluated below (trained on the training cutoffs only)."
    c = final.cutoffs
    what = "positives" if bt.spec.task == "binary" else "events seen"
    return (
        f"- Served: the same spec fitted again on every cutoff with complete labels, {c[0]} .. "
        f"{c[-1]} ({len(c)}): {final.rows:,} rows, {final.positives:,} {what}, outcomes up to "
        f"{final.label_end}. It has learnt from the evaluation cutoffs, so it has no held-out "
        "figure of its own: the metrics below are those of the backtest's model, the same spec "
        "one evaluation period earlier, which the run keeps as `backtest_model`."
    )


def model_card(
    bt: Backtest,
    gate: GateDecision | None,
    *,
    version: str | None = None,
    run_id: str | None = None,
    final: FinalFit | None = None,
) -> str:
    """The model card (Markdown): what, data, metrics vs baselines, calibration, limits, and
    which model is served (``final``: the refit on every complete cutoff)."""
    s, sp, meta = bt.spec, bt.split, bt.meta
    packs = meta.fingerprint.get("packs", [])
    per_cut = bt.metrics[(bt.metrics.scope != "all") & (bt.metrics.metric == s.gate.metric)]
    pc = per_cut.pivot(index="scope", columns="scorer", values="value")
    lines = [
        f"# Model card: {s.name}",
        "",
        f"{s.description}.",
        "",
        f"- Task: {s.task}; horizon {sp.horizon_days} days; feature set "
        f"`{meta.spec.get('file')}` ({len(bt.features)} features).",
        f"- Builders: {_builders_line(meta.spec.get('builders', []))}.",
        f"- Trained {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        + (f", MLflow run `{run_id}`" if run_id else "")
        + (f", registered `{registered_name(s.name)}` version {version}" if version else "")
        + ".",
        "",
        "## Data",
        "",
        f"- {len(packs)} pack(s), data to {sp.data_end}; partners: "
        f"{', '.join(sorted({str(p['source']) for p in packs})) or '-'}.",
        f"- Training cutoffs {sp.train[0]} .. {sp.train[-1]} ({len(sp.train)}, monthly): "
        f"{len(bt.train):,} rows, {bt.n_positives_train():,} positives"
        + (" (events seen)" if s.task != "binary" else "")
        + ". The later ones calibrate (binary) or early-stop the model"
        + (
            f"; the cutoffs whose labels ({getattr(bt.estimator, 'purge_days_', 0):g} days) reach "
            "them are left out of the model fitted before them."
            if getattr(bt.estimator, "purge_days_", 0)
            else "."
        ),
        f"- Evaluation cutoffs {', '.join(str(c) for c in sp.evaluate)}: {len(bt.evaluate):,} "
        "rows; every training label ends on or before the first of them.",
        _served_line(bt, final),
        "",
        "## Metrics on the evaluation cutoffs",
        "",
        metrics_markdown(bt, card_columns(bt)),
        "",
    ]
    if (line := interval_line(bt)) is not None:
        lines += [line, ""]
    if s.baselines:
        lines += (
            ["Baselines:"]
            + [f"- `{b}`: {getattr(obj, 'doc', '')}" for b, obj in bt.baselines.items()]
            + [""]
        )
    if ORACLE in bt.scores:
        lines += [
            "The oracle is the synthetic world's true probability (or days); the skill ratio is "
            "(AUC - 0.5) / (AUC of the oracle - 0.5) on the same rows; skill_ratio_expected is "
            "the same with the AUCs expected over the outcomes (each row a positive with weight "
            "the oracle's probability, a negative with the rest), free of the luck of the draw.",
            "",
        ]
    if len(pc):
        lines += [f"### {s.gate.metric} per evaluation cutoff", ""]
        cols = [c for c in [MODEL, *bt.baselines, ORACLE] if c in pc.columns]
        lines += ["| cutoff | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for cut, row in pc[cols].iterrows():
            lines.append(
                f"| {cut} | " + " | ".join(_fmt(row[c], s.gate.metric) for c in cols) + " |"
            )
        lines.append("")
    if s.task == "binary":
        o = bt.overall()
        lines += [
            "## Calibration",
            "",
            "Centred isotonic, fitted on the latest training cutoffs by trees that learnt from "
            "the earlier ones; the final trees (as many) learn from all of them. On the "
            f"evaluation cutoffs: ECE {o.get('ece', float('nan')):.4f} (a perfectly calibrated "
            f"model would score {o.get('ece_by_chance', float('nan')):.4f} by chance on as many "
            f"rows), mean "
            f"predicted {o.get('mean_score', float('nan')):.4f} against a base rate of "
            f"{o.get('base_rate', float('nan')):.4f}.",
            "",
        ]
    if bt.shipping is not None and len(bt.shipping):
        sh = bt.shipping[bt.shipping.scope == "all"]
        lines += [
            "## Shipping simulation",
            "",
            f"Lead time {s.settings.get('lead_time_days', 5)} days; the model ships when "
            "P(threshold before delivery) exceeds alpha.",
            "",
            "| policy | alpha | stockout rate | mean days short | toner days thrown away |",
            "|---|---|---|---|---|",
        ]
        for r in sh.itertuples(index=False):
            a = "-" if r.alpha is None or not np.isfinite(r.alpha) else f"{r.alpha:g}"
            lines.append(
                f"| {r.policy} | {a} | {r.stockout_rate:.3f} | {r.stockout_days_mean:.1f} | "
                f"{r.waste_days_mean:.1f} |"
            )
        lines.append("")
    if bt.partners is not None and len(bt.partners):
        n_eval = int(bt.partners["evaluated"].sum())
        lines += [
            "## Partners",
            "",
            f"One pooled model serves every partner. {n_eval} of {len(bt.partners)} partners have "
            "enough evaluation data to be measured on their own (see partners.csv in the run); "
            "the others are served by the pooled model without a separate figure.",
            "",
        ]
    if gate is not None:
        lines += ["## Promotion gate", "", f"{'Promoted' if gate.promote else 'Not promoted'}:"]
        lines += [f"- {r}" for r in gate.reasons] + [""]
    limits = [
        "Trained and evaluated on the partners' shared data only; a partner whose data "
        "differs a lot from the pool is served by the pooled model.",
        "Metrics are from a backtest on the cutoffs above; a change in the market or in "
        "how partners record data shows up only in later evaluations.",
    ]
    if s.task != "binary":
        limits.append(
            f"Quantiles beyond the {sp.horizon_days}-day window cannot be learnt: they are "
            "capped at the window and flagged (beyond_window)."
        )
    for sk in meta.builders_skipped:
        limits.append(f"Builder {sk['builder']} was skipped: {sk['reason']}.")
    limits += bt.notes
    lines += ["## Known limits", ""] + [f"- {x}" for x in limits] + [""]
    return "\n".join(lines)


def _champion_probability(
    bt: Backtest,
    spec: ModelSpec,
    pyf: Any,
    run: Any,
    version: str,
    lake: Lake,
    builder: FeatureBuilder | None,
) -> np.ndarray:
    """The champion's probabilities of the backtest's evaluation units (``bt.evaluate``).

    A champion of the same feature set scores the same rows (the parts of a unit, combined as
    the backtest combines them). One of another feature set (device_failure v2 before v3, a
    row per device vs a row per component) scores its own rows at the evaluation cutoffs,
    combined to its units when it has parts, and is matched on the unit's keys: so a model
    trained per component and one trained per device are compared on the same devices."""
    from amplify_ml.modeling.backtest import build_sets, plan_split
    from amplify_ml.modeling.units import to_units
    from amplify_ml.scoring.score import champion_of_run

    ch = champion_of_run(spec.name, version, pyf, run)
    if ch.feature_set_version == bt.meta.feature_set_version:
        rows = bt.rows if bt.rows is not None else bt.evaluate
        p = pyf.predict(rows)["probability"].to_numpy()
        if bt.rows is not None:
            _, p, _ = to_units(rows, bt.keys, p)
        return np.asarray(p, dtype=float)
    old = dataclasses.replace(spec, feature_set_version=ch.feature_set_version)
    split = plan_split(
        old,
        bt.split.data_end,
        horizon_days=bt.split.horizon_days,
        train=bt.split.train,
        evaluate=bt.split.evaluate,
    )
    df, meta = build_sets(old, lake, split, builder=builder)
    df = df[df["cutoff"].dt.date.isin(split.evaluate)].reset_index(drop=True)
    p = pyf.predict(df[meta.features])["probability"].to_numpy()
    if ch.combine_by:
        df, p, _ = to_units(df, ch.combine_by, p)
    on = [k for k in bt.keys if k in df.columns] + ["cutoff"]
    got = bt.evaluate[on].merge(df[on].assign(_p=p), on=on, how="left", validate="one_to_one")
    if got["_p"].isna().any():
        raise ModelError(
            f"the champion's feature set v{ch.feature_set_version} has no row for "
            f"{int(got['_p'].isna().sum())} evaluation units"
        )
    return got["_p"].to_numpy(dtype=float)


def _champion_metric(
    bt: Backtest,
    spec: ModelSpec,
    notes: list[str],
    lake: Lake | None = None,
    builder: FeatureBuilder | None = None,
) -> tuple[dict[str, float] | None, float | None]:
    """The champion's metrics on the same evaluation rows (re-scored), or its logged ones.

    A champion served as a refit has learnt from the outcomes of its own evaluation cutoffs
    and after: the model re-scored is the one its backtest judged (``backtest_model``), whose
    labels end at ``amplify.train_label_end``, so that neither side has seen the rows."""
    cv = champion_version(spec.name)
    if cv is None:
        return None, None
    client = mlflow.MlflowClient()
    run = client.get_run(cv.run_id) if cv.run_id else None
    tags = run.data.tags if run else {}
    label_end = tags.get("amplify.train_label_end")
    fair = label_end is not None and date.fromisoformat(label_end) <= bt.split.evaluate[0]
    if fair:
        try:
            with _mlflow_logs_quiet():
                judged = tags.get(BACKTEST_MODEL_TAG)
                uri = judged or f"models:/{registered_name(spec.name)}/{cv.version}"
                pyf = mlflow.pyfunc.load_model(uri)
                if spec.task == "binary":
                    y = bt.evaluate["label"].to_numpy()
                    p = _champion_probability(bt, spec, pyf, run, cv.version, lake, builder)
                    rep = M.binary_report(y, p)
                else:
                    ev = bt.evaluate
                    out = pyf.predict(bt.evaluate)
                    rep = {
                        "mae_days": M.mae_observed(
                            ev["label"].to_numpy(float),
                            ev["censored"].to_numpy(bool),
                            out["p50_days"].to_numpy(float),
                        )
                    }
            notes.append(
                f"champion version {cv.version} re-scored on the same evaluation rows"
                + (" (the model its backtest judged, not the refit it serves)" if judged else "")
            )
            return rep, rep.get(spec.gate.metric)
        except Exception as exc:  # a champion that cannot score these rows: use its record
            notes.append(f"champion version {cv.version} could not score these rows ({exc})")
    else:
        notes.append(
            f"champion version {cv.version} learnt from labels up to {label_end}, after the first "
            "evaluation cutoff: compared on its logged metrics instead"
        )
    logged = run.data.metrics if run else {}
    rep = {k.split(".", 1)[1]: v for k, v in logged.items() if k.startswith("model.")}
    return rep, rep.get(spec.gate.metric)


def _gate(bt: Backtest, spec: ModelSpec, champion: dict[str, float] | None) -> GateDecision:
    g = spec.gate
    new = bt.overall()
    decision = gate_decision(
        new,
        champion,
        metric=g.metric,
        higher_is_better=g.higher_is_better,
        tolerance=g.tolerance,
        max_ece=g.max_ece,
        min_positives=g.min_positives,
        positives=bt.n_positives_train(),
    )
    if g.max_coverage_gap is not None and "coverage_p10_p90" in new:
        cov = new["coverage_p10_p90"]
        if not abs(cov - 0.8) <= g.max_coverage_gap:
            decision.promote = False
            decision.reasons.append(
                f"P10-P90 coverage {cov:.3f} is more than {g.max_coverage_gap} away from 0.8"
            )
        else:
            decision.reasons.append(f"P10-P90 coverage {cov:.3f} (nominal 0.8)")
    return decision


def train(
    model: str | ModelSpec,
    lake: Lake,
    *,
    workspace: str | Path,
    train_cutoffs: int | Sequence[str | date] | None = None,
    eval_cutoffs: int | Sequence[str | date] | None = None,
    horizon_days: int | None = None,
    oracle: str | Path | None = None,
    register: bool = True,
    card_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    builder: FeatureBuilder | None = None,
    memory_limit: str | None = None,
    refit: bool = True,
) -> TrainResult:
    """Backtest ``model``, log the run, register the version and promote it if it passes the
    gate. ``card_dir``: where MODEL_CARD.md is written (default: beside the spec).

    ``refit``: the version registered (and served) is the spec fitted again on every cutoff
    with complete labels (:func:`~amplify_ml.modeling.backtest.fit_final`), so that it knows
    the latest outcomes; the backtest's model, which the metrics and the gate judge, is logged
    beside it as ``backtest_model``. ``refit=False`` registers the backtest's model itself."""
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    bt = backtest(
        spec,
        lake,
        train_cutoffs=train_cutoffs,
        eval_cutoffs=eval_cutoffs,
        horizon_days=horizon_days,
        oracle=oracle,
        builder=builder,
        memory_limit=memory_limit,
    )
    final = fit_final(bt, lake, builder=builder, memory_limit=memory_limit) if refit else None
    configure_tracking(workspace, tracking_uri)
    exp = experiment_id(spec.name, workspace)
    notes: list[str] = list(final.notes) if final is not None else []
    champion, champion_value = (
        _champion_metric(bt, spec, notes, lake, builder) if register else (None, None)
    )
    decision = _gate(bt, spec, champion)
    fp = _fingerprint(bt)
    label_end = (bt.split.train[-1] + timedelta(days=bt.split.horizon_days)).isoformat()
    feats = bt.features
    example = bt.evaluate[feats].head(5)
    with mlflow.start_run(
        experiment_id=exp, run_name=f"{spec.name} {bt.split.evaluate[-1]}"
    ) as run:
        run_id = run.info.run_id
        est = bt.estimator
        params: dict[str, Any] = {
            "model": spec.name,
            "task": spec.task,
            "horizon_days": bt.split.horizon_days,
            "feature_set": bt.meta.spec.get("file"),
            "n_features": len(feats),
            "train_cutoffs": f"{bt.split.train[0]}..{bt.split.train[-1]} ({len(bt.split.train)})",
            "eval_cutoffs": ",".join(str(c) for c in bt.split.evaluate),
            "baselines": ",".join(spec.baselines),
        }
        params.update({f"estimator.{k}": v for k, v in spec.estimator.options.items()})
        params.update({f"lgbm.{k}": v for k, v in spec.estimator.params.items()})
        params.update({f"settings.{k}": v for k, v in spec.settings.items()})
        for attr in (
            "best_iteration_",
            "pos_weight_",
            "n_train_",
            "n_calibration_",
            "n_refit_",
            "purge_days_",
        ):
            if hasattr(est, attr):
                params[f"fitted.{attr.rstrip('_')}"] = getattr(est, attr)
            if final is not None and hasattr(final.estimator, attr):
                params[f"served.{attr.rstrip('_')}"] = getattr(final.estimator, attr)
        if final is not None:
            params["served.cutoffs"] = (
                f"{final.cutoffs[0]}..{final.cutoffs[-1]} ({len(final.cutoffs)})"
            )
            params["served.rows"] = final.rows
            params["served.positives"] = final.positives
        if hasattr(est, "best_iterations_"):
            params["fitted.best_iterations"] = json.dumps(
                {str(k): v for k, v in est.best_iterations_.items()}
            )
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.set_tags(
            {
                "amplify.model": spec.name,
                "amplify.model_spec_sha256": spec.sha256,
                "amplify.feature_set_sha256": str(bt.meta.spec.get("sha256")),
                "amplify.data_fingerprint": _digest(fp),
                "amplify.train_label_end": label_end,
                "amplify.served": "refit" if final is not None else "backtest model",
                "amplify.gate": "passed" if decision.promote else "refused",
            }
        )
        if final is not None:
            mlflow.set_tag("amplify.served_label_end", final.label_end.isoformat())
        mlflow.log_metrics(_metrics_for_mlflow(bt))
        mlflow.log_text(spec.path.read_text(), "spec/model.toml")
        mlflow.log_dict(bt.meta.spec, "spec/feature_set.json")
        mlflow.log_dict({"features": feats, "keys": bt.keys}, "features.json")
        mlflow.log_dict(fp, "fingerprint.json")
        mlflow.log_dict({"notes": bt.notes + notes, "gate": decision.reasons}, "notes.json")
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            bt.metrics.to_csv(t / "metrics.csv", index=False)
            files = [t / "metrics.csv"]
            if bt.shipping is not None:
                bt.shipping.to_csv(t / "shipping.csv", index=False)
                files.append(t / "shipping.csv")
            if bt.partners is not None:
                bt.partners.to_csv(t / "partners.csv", index=False)
                files.append(t / "partners.csv")
            top = top_reasons(bt)
            if top is not None:
                top.to_csv(t / "top_reasons.csv", index=False)
                files.append(t / "top_reasons.csv")
            for f in files:
                mlflow.log_artifact(str(f), "backtest")
            for f in _plots(bt, t / "plots"):
                mlflow.log_artifact(str(f), "plots")
        task = "binary" if spec.task == "binary" else "days_quantile"
        served = final.estimator if final is not None else est
        pyfunc = AmplifyPyfunc(served, task)
        with warnings.catch_warnings(), _mlflow_logs_quiet():
            warnings.simplefilter("ignore")
            output = pyfunc.predict(None, example)
            signature = infer_signature(example, output)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc,
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
            )
            if final is not None:
                # what the metrics and the gate judge; a later version's gate re-scores it
                judged = mlflow.pyfunc.log_model(
                    name=BACKTEST_MODEL,
                    python_model=AmplifyPyfunc(est, task),
                    signature=signature,
                    input_example=example,
                    pip_requirements=pip_requirements(),
                )
                mlflow.set_tag(BACKTEST_MODEL_TAG, judged.model_uri)
        version = None
        if register:
            # its "Created version N" lines go straight to stderr; the result says the version
            with warnings.catch_warnings(), _mlflow_logs_quiet(), redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                mv = mlflow.register_model(info.model_uri, registered_name(spec.name))
            version = str(mv.version)
            client = mlflow.MlflowClient()
            client.set_model_version_tag(
                registered_name(spec.name),
                version,
                "gate",
                "passed" if decision.promote else "refused",
            )
            if decision.promote:
                set_champion(spec.name, version)
        card = model_card(
            bt, decision if register else None, version=version, run_id=run_id, final=final
        )
        mlflow.log_text(card, "MODEL_CARD.md")
    card_path = Path(card_dir) / "MODEL_CARD.md" if card_dir else spec.folder / "MODEL_CARD.md"
    try:
        card_path.parent.mkdir(parents=True, exist_ok=True)
        card_path.write_text(card)
    except OSError as exc:
        notes.append(f"model card not written to {card_path}: {exc}; it is in the MLflow run")
        card_path = None  # type: ignore[assignment]
    return TrainResult(
        model=spec.name,
        run_id=run_id,
        version=version,
        promoted=bool(register and decision.promote),
        gate=decision,
        backtest=bt,
        card=card,
        card_path=card_path,
        champion_metric=champion_value,
        notes=notes,
        final=final,
    )


@contextmanager
def _mlflow_logs_quiet() -> Iterator[None]:
    """MLflow's own log lines at errors only, while the model is logged and registered: its
    notes there (the input example's key columns outside the signature, pickling the
    pyfunc, pip's version, "Created version N") are expected and told better by the result."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def train_all(
    models: Sequence[str],
    lake: Lake,
    *,
    workspace: str | Path,
    memory_limit: str | None = None,
    **kwargs: Any,
) -> list[TrainResult]:
    """:func:`train` for several models, sharing one feature build session."""
    if not models:
        raise ModelError("no models to train")
    out = []
    with FeatureBuilder(lake, memory_limit=memory_limit) as fb:
        for m in models:
            out.append(train(m, lake, workspace=workspace, builder=fb, **kwargs))
    return out
