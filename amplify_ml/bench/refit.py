"""Benchmark: what serving the refit is worth, against serving the backtest's model.

``amplify train`` registers the spec fitted again on every cutoff with complete labels
(:func:`~amplify_ml.modeling.backtest.fit_final`); the backtest's model has not seen the last
``horizon + evaluation`` months. The benchmark replays a training day in the past, ``T0``
(``months_back`` months before the end of the world's data): both models are fitted on what
was known before T0 (the backtest's cutoffs at T0, and the refit's), then scored at the
cutoffs from T0 on whose labels the data complete (up to ``eval_cutoffs``), against the oracle:
outcomes that neither model saw, as after a real deployment. Printed, and written to
``<workspace>/bench/refit-<scale>.json``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from amplify_ml.bench import world_lake, write_result
from amplify_ml.bench.quality import MODELS
from amplify_ml.errors import InvalidRequestError

FIGURES = ("roc_auc", "skill_ratio", "skill_ratio_expected", "ece", "mae_days", "mae_vs_oracle")
SIDES = ("backtest_model", "refit")


def replay_cutoffs(
    spec: Any, data_end: date, data_start: date | None, *, months_back: int, eval_cutoffs: int
) -> dict[str, list[date]]:
    """The cutoffs of the replay: T0, each side's training cutoffs at T0, and the later
    cutoffs scored (labels complete by ``data_end``)."""
    from amplify_ml.features.cutoffs import monthly
    from amplify_ml.modeling.backtest import final_cutoffs, plan_split

    h = timedelta(days=spec.horizon_days)
    m = data_end.year * 12 + data_end.month - 1 - months_back
    t0 = date(m // 12, m % 12 + 1, 1)
    at_t0 = plan_split(
        spec, t0 - timedelta(days=1), horizon_days=spec.horizon_days, start=data_start
    )
    later = [c for c in monthly(t0, data_end) if c + h <= data_end][:eval_cutoffs]
    if not later:
        raise InvalidRequestError(
            f"{spec.name}: no cutoff from {t0} on has complete labels by {data_end} "
            f"(horizon {spec.horizon_days} days): give a larger months_back"
        )
    return {
        "t0": [t0],
        "backtest_model": at_t0.train,
        "refit": final_cutoffs(at_t0),
        "scored": later,
    }


def replay(
    lake: Any,
    oracle: Path,
    models: Sequence[str],
    *,
    months_back: int,
    eval_cutoffs: int,
    memory_limit: str,
) -> dict[str, Any]:
    """Per model: each side's figures on the cutoffs after T0, and the cutoffs."""
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.modeling.backtest import backtest, data_end, data_start
    from amplify_ml.modeling.spec import load_model_spec

    end, start = data_end(lake), data_start(lake)
    out: dict[str, Any] = {}
    with warnings.catch_warnings(), FeatureBuilder(lake, memory_limit=memory_limit) as fb:
        warnings.simplefilter("ignore")
        for m in models:
            spec = load_model_spec(m)
            cuts = replay_cutoffs(
                spec, end, start, months_back=months_back, eval_cutoffs=eval_cutoffs
            )
            fig: dict[str, Any] = {
                "t0": cuts["t0"][0].isoformat(),
                "scored": [c.isoformat() for c in cuts["scored"]],
            }
            for side in SIDES:
                t = time.perf_counter()
                bt = backtest(
                    spec,
                    lake,
                    train_cutoffs=cuts[side],
                    eval_cutoffs=cuts["scored"],
                    oracle=oracle,
                    builder=fb,
                )
                o = bt.overall()
                fig[side] = {
                    "train": [cuts[side][0].isoformat(), cuts[side][-1].isoformat()],
                    "n_cutoffs": len(cuts[side]),
                    "rows": len(bt.train),
                    **{k: float(o[k]) for k in FIGURES if k in o and o[k] == o[k]},
                    "seconds": round(time.perf_counter() - t, 1),
                }
            out[m] = fig
    return out


def _gain(fig: dict[str, Any]) -> tuple[str, float, float]:
    key = "skill_ratio_expected" if "skill_ratio_expected" in fig["refit"] else "mae_days"
    return key, fig["backtest_model"].get(key, float("nan")), fig["refit"].get(key, float("nan"))


def run(
    scale: str,
    workspace: Path,
    *,
    seeds: Sequence[int] = (7,),
    models: Sequence[str] = MODELS,
    months_back: int = 6,
    eval_cutoffs: int = 3,
    memory_limit: str = "3GB",
) -> dict[str, Any]:
    """Replay a training ``months_back`` months before the data end on the worlds of
    ``seeds``; print each model's figure for both sides and write the JSON."""
    base = workspace / "bench"
    result: dict[str, Any] = {
        "benchmark": "refit",
        "scale": scale,
        "seeds": list(seeds),
        "months_back": months_back,
        "per_seed": {},
    }
    for seed in seeds:
        world, lake = world_lake(base, scale, seed, memory_limit)
        figs = replay(
            lake,
            world / "oracle",
            models,
            months_back=months_back,
            eval_cutoffs=eval_cutoffs,
            memory_limit=memory_limit,
        )
        result["per_seed"][str(seed)] = figs
        for m, f in figs.items():
            key, old, new = _gain(f)
            print(
                f"seed {seed} {m:21s} trained at {f['t0']}, scored {f['scored'][0]}.."
                f"{f['scored'][-1]}: {key} backtest model {old:.4f} "
                f"({f['backtest_model']['n_cutoffs']} cutoffs), refit {new:.4f} "
                f"({f['refit']['n_cutoffs']} cutoffs)"
            )
    path = write_result(base / f"refit-{scale}.json", result)
    print(f"figures in {path}")
    return result
