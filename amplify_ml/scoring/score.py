"""Batch scoring with the champion: features as of a date, the registered model, a score table.

    result = score("refresh_due", lake, workspace=".amplify", as_of="2026-09-30")
    result.frame        # keys, as_of, probability (or p10/p50/p90 days), model version

Score tables live in the workspace: ``scores/<model>/as_of=<date>/version=<v>.parquet``,
one file per (model, as-of date, model version), written atomically. The features come from
the same feature-set version the champion was trained with (read from its run), so a newer
spec on disk never feeds an older model. ``engine="spark"`` builds the features on Spark and
scores with MLflow's ``pyfunc.spark_udf``; the embedded path scores in process.
"""

from __future__ import annotations

import ast
import os
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amplify_ml.errors import (
    InvalidRequestError,
    MissingTableError,
    NoChampionError,
    NotFoundError,
)
from amplify_ml.features import FeatureBuilder, FeatureWarning
from amplify_ml.features.cutoffs import to_date
from amplify_ml.features.spec import MODELS, load_spec, spec_path
from amplify_ml.lake import Lake
from amplify_ml.modeling.backtest import data_end
from amplify_ml.modeling.registry import (
    champion_version,
    configure_tracking,
    load_champion,
    registered_name,
)
from amplify_ml.modeling.units import unit_scores

SCORE_COLUMNS = {
    "binary": ["probability"],
    "days_quantile": ["p10_days", "p50_days", "p90_days", "beyond_window"],
}


@dataclass
class Champion:
    """The champion of a model: its pyfunc, version, run and training settings."""

    model: str
    version: str
    run_id: str
    pyfunc: Any
    feature_set_version: int
    task: str
    threshold_pct: float | None
    combine_by: list[str] | None = None
    """Its rows are parts of a unit (device_failure v3: a device's components): the keys of
    the unit its scores combine to (``settings.combine_by`` of its spec)."""
    horizon_days: int | None = None

    def feature_args(self, as_of: date) -> dict[str, Any]:
        """What ``FeatureBuilder.feature_frame`` needs to build this champion's features as of
        a day: its feature-set version, depletion threshold and label horizon (which builders
        with ``horizon = "label"`` follow), as it was trained."""
        args: dict[str, Any] = {
            "as_of": as_of,
            "spec": load_spec(self.model, path=spec_path(self.model, self.feature_set_version)),
        }
        if self.threshold_pct is not None:
            args["threshold_pct"] = float(self.threshold_pct)
        if self.horizon_days is not None:
            args["horizon_days"] = int(self.horizon_days)
        return args

    @property
    def uri(self) -> str:
        return f"models:/{registered_name(self.model)}/{self.version}"

    @property
    def estimator(self) -> Any:
        """The fitted amplify estimator inside the pyfunc (for SHAP reasons)."""
        return self.pyfunc.unwrap_python_model().estimator

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The pyfunc's predictions for a feature frame, in process: the champion's own
        checks apply (every trained feature present, types converted once, unseen categories
        missing); MLflow's signature enforcement, a second conversion of every column, is
        skipped (the frame comes from the model's own feature set)."""
        return self.pyfunc.unwrap_python_model().predict(None, frame)


def champion(model: str, workspace: str | Path) -> Champion:
    """The champion of ``model`` in the workspace's MLflow store (a clear error if none)."""
    if model not in MODELS:
        raise InvalidRequestError(f"unknown model {model!r}: the models are {', '.join(MODELS)}")
    configure_tracking(workspace)
    cv = champion_version(model)
    if cv is None:
        raise NoChampionError(
            f"no champion for {model} in {workspace}: train it first (amplify train {model} "
            f"-w {workspace})"
        )
    pyfunc = load_champion(model)
    return champion_of_run(model, str(cv.version), pyfunc, mlflow.MlflowClient().get_run(cv.run_id))


def champion_of_run(model: str, version: str, pyfunc: Any, run: Any) -> Champion:
    """A :class:`Champion` from a loaded pyfunc and its MLflow run (feature set, task, settings)."""
    fs = str(run.data.params.get("feature_set", f"{model}.v1.toml"))
    try:
        fs_version = int(fs.split(".v")[1].split(".")[0])
    except (IndexError, ValueError):
        fs_version = 1
    task = str(run.data.params.get("task", "binary"))
    raw = run.data.params.get("settings.threshold_pct")
    threshold = float(raw) if raw is not None else None
    by = run.data.params.get("settings.combine_by")
    combine = [str(k) for k in ast.literal_eval(by)] if by else None
    raw = run.data.params.get("horizon_days")
    horizon = int(raw) if raw is not None else None
    return Champion(
        model, version, run.info.run_id, pyfunc, fs_version, task, threshold, combine, horizon
    )


@dataclass
class ScoreResult:
    """A score table and where it was written."""

    model: str
    as_of: date
    version: str
    frame: pd.DataFrame
    path: Path | None
    seconds_features: float
    seconds_predict: float

    @property
    def rows(self) -> int:
        return len(self.frame)


def scores_dir(workspace: str | Path, model: str) -> Path:
    return Path(workspace) / "scores" / model


def score(
    model: str,
    lake: Lake,
    *,
    workspace: str | Path,
    as_of: str | date | None = None,
    partners: Sequence[str] | None = None,
    engine: str = "duckdb",
    spark: Any | None = None,
    builder: FeatureBuilder | None = None,
    write: bool = True,
    memory_limit: str | None = None,
) -> ScoreResult:
    """Score the entities alive at ``as_of`` (default: the end of the lake's data) with the
    champion of ``model`` and write the table to the workspace."""
    import time

    from amplify_ml.features.training import require_tables

    # a lake without the model's tables is the first thing to say, before a missing champion
    require_tables(model, lake.tables() if builder is None else builder.inputs.tables)
    ch = champion(model, workspace)
    day = to_date(as_of, what="as_of") if as_of is not None else data_end(lake)
    kwargs = ch.feature_args(day)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        if builder is not None:
            frame, meta = builder.feature_frame(model, **kwargs)
        else:
            with FeatureBuilder(
                lake,
                engine=engine,
                partners=partners,
                spark=spark,
                memory_limit=memory_limit,  # type: ignore[arg-type]
            ) as fb:
                frame, meta = fb.feature_frame(model, **kwargs)
    t1 = time.perf_counter()
    keys = list(meta.keys)
    if engine == "spark":
        preds = _spark_predict(ch, frame, meta.features, spark)
    else:
        preds = ch.predict(frame[meta.features]) if len(frame) else _empty(ch.task)
    t2 = time.perf_counter()
    if ch.combine_by and ch.task == "binary":
        out = _units(ch.combine_by, keys, frame, preds["probability"].to_numpy())
        out.insert(len(ch.combine_by), "as_of", pd.Timestamp(day))
    else:
        out = frame[keys].copy()
        out.insert(len(keys), "as_of", pd.Timestamp(day))
        for c in SCORE_COLUMNS[ch.task]:
            out[c] = preds[c].to_numpy()
    out["model_version"] = ch.version
    out["run_id"] = ch.run_id
    path = _write(out, workspace, model, day, ch.version) if write else None
    return ScoreResult(model, day, ch.version, out, path, t1 - t0, t2 - t1)


def score_all(
    models: Sequence[str],
    lake: Lake,
    *,
    workspace: str | Path,
    as_of: str | date | None = None,
    partners: Sequence[str] | None = None,
    engine: str = "duckdb",
    spark: Any | None = None,
    memory_limit: str | None = None,
    skipped: dict[str, str] | None = None,
) -> list[ScoreResult]:
    """:func:`score` for several models in one feature session: what the models share (page
    readings, supply levels, the install base at the date) is computed once.

    ``skipped``: a dict to collect, by model, why a model without a champion or without the
    tables it needs was left out (``amplify score --all``); without it, that is an error."""
    done = []
    with FeatureBuilder(
        lake,
        engine=engine,
        partners=partners,
        spark=spark,
        memory_limit=memory_limit,  # type: ignore[arg-type]
    ) as fb:
        for m in models:
            try:
                done.append(
                    score(
                        m,
                        lake,
                        workspace=workspace,
                        as_of=as_of,
                        engine=engine,
                        spark=spark,
                        builder=fb,
                    )
                )
            except (MissingTableError, NoChampionError) as exc:
                if skipped is None:
                    raise
                skipped[m] = exc.message
    return done


def _units(by: list[str], keys: list[str], frame: pd.DataFrame, p: Any) -> pd.DataFrame:
    """A champion whose rows are parts of a unit: one row per unit, its probability
    ``1 - prod(1 - p)`` of its parts', the likeliest part with its own probability, and every
    part's (JSON; see :func:`amplify_ml.modeling.units.unit_scores`)."""
    part = [k for k in keys if k not in by]
    if len(part) != 1:
        raise InvalidRequestError(f"combine_by {by}: the keys {keys} leave {part}, not one part")
    return unit_scores(frame, by, part[0], p).drop(columns="cutoff")


def _empty(task: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in SCORE_COLUMNS[task]})


def _spark_predict(
    ch: Champion, frame: pd.DataFrame, features: list[str], spark: Any
) -> pd.DataFrame:
    """Score with MLflow's ``spark_udf`` on the champion (Spark for scale, not for speed)."""
    from pyspark.sql import functions as F

    from amplify_ml.features.engine import spark_session

    session = spark if spark is not None else spark_session()
    cols = SCORE_COLUMNS[ch.task]
    kinds = {
        "probability": "double",
        "p10_days": "double",
        "p50_days": "double",
        "p90_days": "double",
        "beyond_window": "boolean",
    }
    result_type = "struct<" + ", ".join(f"{c}: {kinds[c]}" for c in cols) + ">"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        udf = mlflow.pyfunc.spark_udf(session, ch.uri, result_type=result_type, env_manager="local")
        x = frame[features].copy()
        x["__row"] = range(len(x))
        sdf = session.createDataFrame(x)
        scored = sdf.select("__row", udf(*[F.col(f"`{c}`") for c in features]).alias("s"))
        res = scored.select("__row", *[F.col(f"s.{c}").alias(c) for c in cols]).toPandas()
    return res.sort_values("__row").reset_index(drop=True)[cols]


def _write(df: pd.DataFrame, workspace: str | Path, model: str, day: date, version: str) -> Path:
    folder = scores_dir(workspace, model) / f"as_of={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"version={version}.parquet"
    tmp = folder / f".{uuid.uuid4().hex}.tmp"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
    os.replace(tmp, path)
    return path


def read_scores(
    workspace: str | Path,
    model: str,
    *,
    as_of: str | date | None = None,
    partners: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The latest score table of ``model`` (or the one of ``as_of``), newest version first."""
    df = pd.read_parquet(score_file(workspace, model, as_of=as_of))
    if partners is not None:
        df = df[df["partner_id"].isin(list(partners))].reset_index(drop=True)
    return df


def score_file(workspace: str | Path, model: str, *, as_of: str | date | None = None) -> Path:
    """The file :func:`read_scores` reads: the latest as-of date (or ``as_of``), the highest
    model version scored on it."""
    root = scores_dir(workspace, model)
    days = sorted(p.name.split("=", 1)[1] for p in root.glob("as_of=*")) if root.is_dir() else []
    if not days:
        raise NotFoundError(
            f"no scores of {model} in {workspace}: run amplify score {model} -w {workspace}"
        )
    day = to_date(as_of, what="as_of").isoformat() if as_of is not None else days[-1]
    if day not in days:
        raise NotFoundError(
            f"no scores of {model} as of {day}; scored dates: {', '.join(days[-5:])}"
        )
    files = sorted(
        (root / f"as_of={day}").glob("version=*.parquet"),
        key=lambda p: int(p.stem.split("=", 1)[1]),
    )
    if not files:
        raise NotFoundError(f"no score table of {model} as of {day}: run amplify score {model}")
    return files[-1]
