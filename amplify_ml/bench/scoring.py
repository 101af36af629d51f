"""Benchmark: batch scoring throughput of the four champions against LightGBM's own predict.

For each model, on the world at ``scale`` as of the end of its data:

- ``features``: building the feature frame (DuckDB);
- ``booster``: ``Booster.predict`` on a ready float matrix (the floor: LightGBM alone);
- ``booster_on_frame``: ``Booster.predict`` on the prepared DataFrame (LightGBM converting it);
- ``embedded``: what ``amplify score`` runs on the feature frame: the champion's column checks,
  categories, the float matrix, calibration or quantile sorting included;
- ``mlflow_pyfunc``: the same through MLflow's pyfunc ``predict`` (signature enforcement);
- ``end_to_end``: :func:`amplify_ml.scoring.score_all` as ``amplify score --all`` runs it (one
  feature session, the four models, the tables written);
- ``spark`` (with ``spark=True``): MLflow's ``spark_udf`` on the same frame, local[2], and the
  four models end to end with the features built on Spark.

Rows per second for each, the ratios to the floor, and the four models end to end.
The champions are trained once on the small world (seed 7) in the benchmark's workspace and
reused at every scale (a model does not depend on the size of the lake it scores).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amplify_ml.bench import world_lake, write_result

MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")


def _lake(base: Path, scale: str, seed: int, memory_limit: str) -> Any:
    return world_lake(base, scale, seed, memory_limit)[1]


def _champions(
    ws: Path, base: Path, seed: int, memory_limit: str, retrain: Sequence[str] = ()
) -> None:
    """Train the four models on the small world once (champions of the bench workspace);
    ``retrain``: models whose champion no longer matches the feature set (train again)."""
    from amplify_ml.modeling.registry import champion_version, configure_tracking
    from amplify_ml.modeling.train import train

    configure_tracking(ws)
    missing = [m for m in MODELS if m in retrain or champion_version(m) is None]
    if not missing:
        return
    lake = _lake(base, "small", seed, memory_limit)
    for m in missing:
        t0 = time.perf_counter()
        r = train(m, lake, workspace=ws, card_dir=ws / "cards", memory_limit=memory_limit)
        if not r.promoted:  # the benchmark needs a champion; say so rather than fail later
            from amplify_ml.modeling.registry import set_champion

            set_champion(m, r.version)  # type: ignore[arg-type]
            print(
                f"  {m}: the gate refused version {r.version} ({'; '.join(r.gate.reasons)}); "
                "made champion in the benchmark's own workspace only"
            )
        print(f"trained {m} in {time.perf_counter() - t0:.0f} s")


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds) if seconds > 0 else float("nan")


def run(
    scale: str,
    workspace: Path,
    *,
    seed: int = 7,
    memory_limit: str = "3GB",
    spark: bool = False,
    repeat: int = 7,
) -> dict[str, Any]:
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.modeling.backtest import data_end
    from amplify_ml.scoring.score import champion, score_all

    base = workspace / "bench"
    ws = base / "scoring-ws"
    warnings.simplefilter("ignore")
    _champions(ws, base, seed, memory_limit)
    lake = _lake(base, scale, seed, memory_limit)
    day = data_end(lake)
    result: dict[str, Any] = {
        "benchmark": "scoring",
        "scale": scale,
        "as_of": day.isoformat(),
        "cpus": os.cpu_count(),
        "repeat": repeat,
        "models": {},
    }
    frames: dict[str, tuple[Any, Any, list[str]]] = {}
    stale = []
    tiny = _lake(base, "tiny", seed, memory_limit)
    for m in MODELS:
        with FeatureBuilder(tiny, memory_limit=memory_limit) as fb:
            _, tiny_meta = fb.feature_frame(m, **champion(m, ws).feature_args(data_end(tiny)))
        if set(champion(m, ws).estimator.feature_names_in_) != set(tiny_meta.features):
            stale.append(m)
    if stale:  # a feature was added since they were trained: they would ignore it
        print(f"retraining the benchmark's champions of {', '.join(stale)} (features changed)")
        _champions(ws, base, seed, memory_limit, retrain=stale)
    for m in MODELS:
        ch = champion(m, ws)
        kw = ch.feature_args(day)
        t0 = time.perf_counter()
        with FeatureBuilder(lake, memory_limit=memory_limit) as fb:
            frame, meta = fb.feature_frame(m, **kw)
        t_feat = time.perf_counter() - t0
        X = frame[meta.features]
        est = ch.estimator
        matrix = est._matrix(X)
        prepared = est._prepare(X, fitting=False)
        boosters = (
            [(est.booster_, est.best_iteration_)]
            if hasattr(est, "booster_")
            else [(b, est.best_iterations_[q]) for q, b in est.boosters_.items()]
        )
        timings = {
            # the floor: LightGBM alone on a ready float matrix
            "booster": lambda: [b.predict(matrix, num_iteration=i) for b, i in boosters],  # noqa: B023
            # LightGBM given the prepared DataFrame (it converts it to a matrix itself)
            "booster_on_frame": lambda: [
                b.predict(prepared, num_iteration=i)  # noqa: B023
                for b, i in boosters  # noqa: B023
            ],
            # what amplify score runs: checks, categories, the matrix, calibration/quantiles
            "embedded": lambda: ch.predict(X),  # noqa: B023
            # the same through MLflow's pyfunc (its signature enforcement converts again)
            "mlflow_pyfunc": lambda: ch.pyfunc.predict(X),  # noqa: B023
        }
        # rounds interleave the four, so a slower moment of the machine hits them alike
        runs: dict[str, list[float]] = {k: [] for k in timings}
        for _ in range(repeat):
            for k, fn in timings.items():
                runs[k].append(_timed(fn))
        best = {k: min(v) for k, v in runs.items()}
        rows = len(frame)
        entry: dict[str, Any] = {"rows": rows, "features": len(meta.features)}
        entry["features_seconds"] = round(t_feat, 3)
        for k, v in best.items():
            entry[f"{k}_seconds"] = round(v, 4)
            entry[f"{k}_rows_per_s"] = _rate(rows, v)
        for k in ("booster_on_frame", "embedded", "mlflow_pyfunc"):
            entry[f"{k}_over_booster"] = round(best[k] / best["booster"], 3)
        if spark:
            frames[m] = (ch, frame, list(meta.features))
        result["models"][m] = entry
        print(
            f"{m}: {rows:,} rows x {len(meta.features)} features; features {t_feat:.2f} s; "
            f"Booster.predict {entry['booster_rows_per_s']:,} rows/s; embedded "
            f"{entry['embedded_rows_per_s']:,} rows/s ({entry['embedded_over_booster']}x the "
            f"booster's time; Booster.predict on the frame {entry['booster_on_frame_over_booster']}x, "
            f"MLflow pyfunc {entry['mlflow_pyfunc_over_booster']}x)"
        )
    # end to end as `amplify score --all` runs it: one feature session, all four champions
    t0 = time.perf_counter()
    per_model = score_all(MODELS, lake, workspace=ws, as_of=day, memory_limit=memory_limit)
    total = time.perf_counter() - t0
    for r in per_model:
        result["models"][r.model].update(
            end_to_end_seconds=round(r.seconds_features + r.seconds_predict, 3),
            score_rows=r.rows,
        )
    result["four_models_end_to_end_seconds"] = round(total, 2)
    print(f"all four models scored end to end (features, models, tables written) in {total:.1f} s")
    if spark:  # last: a JVM beside the timings above would slow them down
        _spark(result, frames, lake, ws, day)
    path = write_result(base / f"scoring-{scale}.json", result)
    print(f"figures in {path}")
    return result


def _spark(
    result: dict[str, Any],
    frames: dict[str, tuple[Any, Any, list[str]]],
    lake: Any,
    ws: Path,
    day: Any,
) -> None:
    """spark_udf on each model's frame, then the four models end to end on Spark."""
    from amplify_ml.features.engine import spark_session
    from amplify_ml.scoring.score import _spark_predict, score_all

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = spark_session()
    for m, (ch, frame, features) in frames.items():
        t0 = time.perf_counter()
        _spark_predict(ch, frame, features, session)
        t = time.perf_counter() - t0
        entry = result["models"][m]
        entry["spark_udf_seconds"] = round(t, 3)
        entry["spark_udf_rows_per_s"] = _rate(len(frame), t)
        print(f"{m}: spark_udf {entry['spark_udf_rows_per_s']:,} rows/s")
    t0 = time.perf_counter()
    score_all(MODELS, lake, workspace=ws, as_of=day, engine="spark", spark=session)
    t = time.perf_counter() - t0
    result["four_models_end_to_end_spark_seconds"] = round(t, 2)
    print(f"all four models end to end on Spark (features on Spark, spark_udf): {t:.1f} s")


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


__all__ = ["run"]
