"""Benchmark: batch scoring throughput of the four champions against LightGBM's own predict.

For each model, on the world at ``scale`` as of the end of its data:

- ``features``: building the feature frame (DuckDB);
- ``booster``: ``Booster.predict`` on the already prepared matrix (the floor: LightGBM alone);
- ``embedded``: the champion's pyfunc on the feature frame (what ``amplify score`` runs:
  column checks, categoricals, calibration or quantile sorting included);
- ``end_to_end``: :func:`amplify_ml.scoring.score` (features, model, writing the table);
- ``spark`` (with ``spark=True``): MLflow's ``spark_udf`` on the same frame, local[2].

Rows per second for each, the ratio embedded / booster, and the four models end to end.
The champions are trained once on the small world (seed 7) in the benchmark's workspace and
reused at every scale (a model does not depend on the size of the lake it scores).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from amplify_ml.bench import write_result

MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")


def _lake(base: Path, scale: str, seed: int, memory_limit: str) -> Any:
    from amplify_ml.bench.features import _ingest
    from amplify_ml.datasets import generate
    from amplify_ml.lake import Lake

    world = base / f"world-{scale}-{seed}"
    if not (world / "world.json").exists():
        shutil.rmtree(world, ignore_errors=True)
        generate(scale, seed=seed, out=world)  # type: ignore[arg-type]
    root = base / f"features-lake-{scale}-{seed}"
    if not (root / "CURRENT").exists():
        _ingest(world, root, memory_limit)
    return Lake(root)


def _champions(ws: Path, base: Path, seed: int, memory_limit: str) -> None:
    """Train the four models on the small world once (champions of the bench workspace)."""
    from amplify_ml.modeling.registry import champion_version, configure_tracking
    from amplify_ml.modeling.train import train

    configure_tracking(ws)
    missing = [m for m in MODELS if champion_version(m) is None]
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
    repeat: int = 3,
) -> dict[str, Any]:
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.features.spec import load_spec, spec_path
    from amplify_ml.modeling.backtest import data_end
    from amplify_ml.scoring.score import champion, score

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
    session = None
    if spark:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from amplify_ml.features.engine import spark_session

        session = spark_session()
    total = 0.0
    for m in MODELS:
        ch = champion(m, ws)
        fs = load_spec(m, path=spec_path(m, ch.feature_set_version))
        kw: dict[str, Any] = {"as_of": day, "spec": fs}
        if ch.threshold_pct is not None:
            kw["threshold_pct"] = ch.threshold_pct
        t0 = time.perf_counter()
        with FeatureBuilder(lake, memory_limit=memory_limit) as fb:
            frame, meta = fb.feature_frame(m, **kw)
        t_feat = time.perf_counter() - t0
        X = frame[meta.features]
        est = ch.estimator
        prepared = est._prepare(X, fitting=False)
        boosters = (
            [(est.booster_, est.best_iteration_)]
            if hasattr(est, "booster_")
            else [(b, est.best_iterations_[q]) for q, b in est.boosters_.items()]
        )

        def booster() -> None:
            for b, it in boosters:  # noqa: B023 - run at once
                b.predict(prepared, num_iteration=it)  # noqa: B023

        def embedded() -> None:
            ch.pyfunc.predict(X)  # noqa: B023

        t_boost = min(_timed(booster) for _ in range(repeat))
        t_emb = min(_timed(embedded) for _ in range(repeat))
        t0 = time.perf_counter()
        r = score(m, lake, workspace=ws, as_of=day, memory_limit=memory_limit)
        t_e2e = time.perf_counter() - t0
        total += t_e2e
        rows = len(frame)
        entry: dict[str, Any] = {
            "rows": rows,
            "features_seconds": round(t_feat, 3),
            "booster_seconds": round(t_boost, 4),
            "embedded_seconds": round(t_emb, 4),
            "end_to_end_seconds": round(t_e2e, 3),
            "booster_rows_per_s": _rate(rows, t_boost),
            "embedded_rows_per_s": _rate(rows, t_emb),
            "end_to_end_rows_per_s": _rate(rows, t_e2e),
            "embedded_over_booster": round(t_emb / t_boost, 3) if t_boost > 0 else None,
            "score_rows": r.rows,
        }
        if session is not None:
            from amplify_ml.scoring.score import _spark_predict

            t0 = time.perf_counter()
            _spark_predict(ch, frame, list(meta.features), session)
            t_spark = time.perf_counter() - t0
            entry["spark_udf_seconds"] = round(t_spark, 3)
            entry["spark_udf_rows_per_s"] = _rate(rows, t_spark)
        result["models"][m] = entry
        print(
            f"{m}: {rows:,} rows; features {t_feat:.2f} s; booster {entry['booster_rows_per_s']:,} "
            f"rows/s; embedded {entry['embedded_rows_per_s']:,} rows/s "
            f"({entry['embedded_over_booster']}x the booster's time); end to end {t_e2e:.2f} s"
            + (f"; spark_udf {entry['spark_udf_rows_per_s']:,} rows/s" if session else "")
        )
    result["four_models_end_to_end_seconds"] = round(total, 2)
    print(f"all four models scored end to end in {total:.1f} s")
    path = write_result(base / f"scoring-{scale}.json", result)
    print(f"figures in {path}")
    return result


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


__all__ = ["run"]
