"""Benchmark: model quality on synthetic worlds, against the targets of the model issue.

For each seed, the world at ``scale`` (generated and ingested once, kept in the benchmark's
folder and shared with the other benchmarks) and each model backtested on its spec's cutoffs
against its baselines and the world's oracle, exactly as ``amplify evaluate MODEL --oracle``
does. Printed, and written to ``<workspace>/bench/quality-<scale>.json``.

The targets (they describe synthetic worlds, not a contract; a real pack has no oracle):

- binary models: skill ratio ``(AUC - 0.5) / (AUC_oracle - 0.5)`` at least 0.95, expected
  calibration error at most 0.02;
- consumable_depletion: MAE in days at most 1.2 times the oracle's;
- each model clearly ahead of each baseline: for the binary ones a ROC AUC more than 0.005
  higher, a higher PR AUC and a lower Brier score; for depletion a lower MAE than the straight
  line, and a shipping threshold that stocks out no more often than the 12-days-or-5 % trigger
  and throws less toner away.

One world's skill ratio moves by about 0.02 with the draw of its outcomes, so each binary model
also shows ``skill_ratio_expected`` (the AUCs expected over the outcomes, from the oracle's
probabilities) and every seed counts: a target is met on a seed or it is not, and the summary
says on how many.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from amplify_ml.bench import world_lake, write_result

MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")
TARGETS = {"skill_ratio": 0.95, "ece": 0.02, "mae_ratio_vs_oracle": 1.2}
AUC_MARGIN = 0.005
"""How much higher than a baseline's a binary model's ROC AUC must be to count as ahead."""


def _num(v: Any) -> float | None:
    """A JSON-safe float: None for NaN or a missing figure."""
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else round(f, 4)


def _ci(overall: Mapping[str, float], metric: str) -> list[float | None]:
    """The 95 % interval of ``metric`` from the overall metrics (its ``_ci_low``/``_ci_high``)."""
    return [_num(overall.get(f"{metric}_ci_low")), _num(overall.get(f"{metric}_ci_high"))]


def binary_figures(table: Mapping[str, Mapping[str, float]], overall: Mapping[str, float]) -> dict:
    """Figures and checks of a binary model from its backtest table (scorer -> metric -> value,
    baselines and oracle included) and the model's overall metrics (with the intervals)."""
    model = table["model"]
    baselines = {
        name: {k: _num(row.get(k)) for k in ("roc_auc", "pr_auc", "brier")}
        for name, row in table.items()
        if name not in ("model", "oracle")
    }
    behind = [
        name
        for name, b in baselines.items()
        if not (
            model["roc_auc"] > (b["roc_auc"] or 0.0) + AUC_MARGIN
            and model["pr_auc"] > (b["pr_auc"] or 0.0)
            and model["brier"] < (b["brier"] if b["brier"] is not None else math.inf)
        )
    ]
    skill = overall.get("skill_ratio", math.nan)
    return {
        "roc_auc": _num(model["roc_auc"]),
        "oracle_roc_auc": _num(table.get("oracle", {}).get("roc_auc")),
        "skill_ratio": _num(skill),
        "skill_ratio_ci": _ci(overall, "skill_ratio"),
        "skill_ratio_expected": _num(overall.get("skill_ratio_expected")),
        "ece": _num(model["ece"]),
        "baselines": baselines,
        "checks": {
            "skill_ratio": bool(skill >= TARGETS["skill_ratio"]),
            "ece": bool(model["ece"] <= TARGETS["ece"]),
            "ahead_of_baselines": not behind,
        },
        "behind": behind,
    }


def depletion_figures(
    table: Mapping[str, Mapping[str, float]], overall: Mapping[str, float]
) -> dict:
    """Figures and checks of the depletion model (arguments as :func:`binary_figures`); the
    shipping threshold shown is the one that throws the least toner away among those that
    stock out no more often than the trigger (None when none does)."""
    model = table["model"]
    line = table.get("straight_line", {})
    trigger = table.get("trigger_12d_5pct", {})
    t_stock, t_waste = trigger.get("ship_stockout_rate"), trigger.get("ship_waste_days_mean")
    alphas = sorted(
        float(k.rsplit("_", 1)[1]) for k in overall if k.startswith("ship_stockout_rate_alpha_")
    )
    shipping = None
    if t_stock is not None:
        ok = [
            {
                "alpha": a,
                "stockout_rate": _num(overall[f"ship_stockout_rate_alpha_{a:g}"]),
                "waste_days_mean": _num(overall[f"ship_waste_days_mean_alpha_{a:g}"]),
            }
            for a in alphas
            if overall[f"ship_stockout_rate_alpha_{a:g}"] <= t_stock
        ]
        shipping = min(ok, key=lambda r: r["waste_days_mean"]) if ok else None
    ratio = overall.get("mae_ratio_vs_oracle", math.nan)
    ahead_line = bool(model["mae_days"] < line.get("mae_days", math.inf))
    ahead_trigger = bool(
        shipping is not None and t_waste is not None and shipping["waste_days_mean"] < t_waste
    )
    return {
        "mae_days": _num(model["mae_days"]),
        "oracle_mae_days": _num(table.get("oracle", {}).get("mae_days")),
        "mae_ratio_vs_oracle": _num(ratio),
        "mae_ratio_vs_oracle_ci": _ci(overall, "mae_ratio_vs_oracle"),
        "coverage_p10_p90": _num(model.get("coverage_p10_p90")),
        "baselines": {
            "straight_line": {"mae_days": _num(line.get("mae_days"))},
            "trigger_12d_5pct": {
                "stockout_rate": _num(t_stock),
                "waste_days_mean": _num(t_waste),
            },
        },
        "shipping": shipping,
        "checks": {
            "mae_ratio_vs_oracle": bool(ratio <= TARGETS["mae_ratio_vs_oracle"]),
            "ahead_of_baselines": ahead_line and ahead_trigger,
        },
        "behind": [
            n
            for n, ok in (("straight_line", ahead_line), ("trigger_12d_5pct", ahead_trigger))
            if not ok
        ],
    }


def _table(bt: Any) -> dict[str, dict[str, float]]:
    t = bt.table()
    return {str(s): {str(k): float(v) for k, v in row.items() if v == v} for s, row in t.iterrows()}


def evaluate_world(lake: Any, oracle: Path, models: Sequence[str], memory_limit: str) -> dict:
    """Backtest each model on ``lake`` against ``oracle``: figures, checks and seconds."""
    from amplify_ml.modeling.backtest import backtest

    out: dict[str, Any] = {}
    for m in models:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = backtest(m, lake, oracle=oracle, memory_limit=memory_limit)
        fig = (binary_figures if bt.spec.task == "binary" else depletion_figures)(
            _table(bt), bt.overall()
        )
        fig["cutoffs"] = {
            "train": [bt.split.train[0].isoformat(), bt.split.train[-1].isoformat()],
            "evaluate": [c.isoformat() for c in bt.split.evaluate],
        }
        fig["seconds"] = round(time.perf_counter() - t0, 1)
        out[m] = fig
    return out


def summarise(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Per model: on how many seeds each check passed, and the mean and worst of the figure
    each target is about."""
    seeds = list(per_seed)
    models = list(dict.fromkeys(m for s in seeds for m in per_seed[s]))
    out: dict[str, Any] = {}
    for m in models:
        rows = [per_seed[s][m] for s in seeds if m in per_seed[s]]
        checks = {k: sum(r["checks"][k] for r in rows) for k in rows[0]["checks"]}
        key = "skill_ratio" if "skill_ratio" in rows[0] else "mae_ratio_vs_oracle"
        values = [r[key] for r in rows if r[key] is not None]
        worst = (min if key == "skill_ratio" else max)(values) if values else None
        summary: dict[str, Any] = {
            "seeds": len(rows),
            "passed": checks,
            "figure": key,
            "mean": _num(sum(values) / len(values)) if values else None,
            "worst": _num(worst),
        }
        if key == "skill_ratio":
            exp = [r["skill_ratio_expected"] for r in rows if r["skill_ratio_expected"] is not None]
            summary["mean_expected"] = _num(sum(exp) / len(exp)) if exp else None
        out[m] = summary
    return out


def _f(v: float | None, spec: str) -> str:
    """``v`` formatted, or "n/a" for a figure the backtest could not compute."""
    return "n/a" if v is None else format(v, spec)


def _line(model: str, seed: int, f: Mapping[str, Any]) -> str:
    if "skill_ratio" in f:
        lo, hi = f["skill_ratio_ci"]
        fig = f"skill {_f(f['skill_ratio'], '.3f')} ({_f(lo, '.3f')}-{_f(hi, '.3f')})"
        fig += f", expected {_f(f['skill_ratio_expected'], '.3f')}, ECE {_f(f['ece'], '.4f')}"
        best = max(f["baselines"].items(), key=lambda kv: kv[1]["roc_auc"] or 0.0, default=None)
        base = f"AUC {_f(f['roc_auc'], '.3f')}"
        if best is not None:
            base += f" vs {best[0]} {_f(best[1]['roc_auc'], '.3f')}"
    else:
        lo, hi = f["mae_ratio_vs_oracle_ci"]
        fig = (
            f"MAE {_f(f['mae_days'], '.2f')} d = {_f(f['mae_ratio_vs_oracle'], '.3f')}x the "
            f"oracle's ({_f(lo, '.3f')}-{_f(hi, '.3f')}), "
            f"P10-P90 coverage {_f(f['coverage_p10_p90'], '.3f')}"
        )
        base = f"straight line {_f(f['baselines']['straight_line']['mae_days'], '.2f')} d"
        trig, ship = f["baselines"]["trigger_12d_5pct"], f["shipping"]
        if ship is not None:
            base += (
                f"; ship at alpha {ship['alpha']:g}: stockouts {_f(ship['stockout_rate'], '.3f')}, "
                f"waste {_f(ship['waste_days_mean'], '.1f')} d vs the trigger's "
                f"{_f(trig['stockout_rate'], '.3f')}, {_f(trig['waste_days_mean'], '.1f')} d"
            )
        else:
            base += "; no shipping threshold stocks out as rarely as the trigger"
    failed = [k for k, ok in f["checks"].items() if not ok]
    verdict = "all targets met" if not failed else "short: " + ", ".join(failed)
    return f"  {model:21s} seed {seed:<4d} {fig}; {base}; {verdict}"


def run(
    scale: str,
    workspace: Path,
    *,
    seeds: Sequence[int] = (7,),
    models: Sequence[str] = MODELS,
    memory_limit: str = "3GB",
) -> dict[str, Any]:
    """Backtest ``models`` on the worlds of ``seeds`` at ``scale``; print the figures against
    the targets and write them to ``<workspace>/bench/quality-<scale>.json``."""
    base = workspace / "bench"
    result: dict[str, Any] = {
        "benchmark": "quality",
        "scale": scale,
        "seeds": list(seeds),
        "targets": {**TARGETS, "auc_margin_over_baselines": AUC_MARGIN},
        "cpus": os.cpu_count(),
        "per_seed": {},
    }
    for seed in seeds:
        world, lake = world_lake(base, scale, seed, memory_limit)
        figures = evaluate_world(lake, world / "oracle", models, memory_limit)
        result["per_seed"][str(seed)] = figures
        for m, f in figures.items():
            print(_line(m, seed, f))
    result["summary"] = summarise({int(s): v for s, v in result["per_seed"].items()})
    path = write_result(base / f"quality-{scale}.json", result)
    print(f"quality on the {scale} world, seeds {', '.join(map(str, seeds))}:")
    for m, s in result["summary"].items():
        passed = ", ".join(f"{k} {n}/{s['seeds']}" for k, n in s["passed"].items())
        extra = f", expected {_f(s['mean_expected'], '.3f')}" if "mean_expected" in s else ""
        print(
            f"  {m:21s} {s['figure']} mean {_f(s['mean'], '.3f')} "
            f"(worst {_f(s['worst'], '.3f')}{extra}); targets met on seeds: {passed}"
        )
    print(f"figures in {path}")
    return result
