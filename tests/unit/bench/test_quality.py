"""The quality benchmark: its checks against the targets, worked by hand, and the command on
the tiny world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplify_ml.bench.quality import _line, binary_figures, depletion_figures, summarise
from amplify_ml.cli import app

ORACLE = {"roc_auc": 0.90, "pr_auc": 0.70, "brier": 0.08, "ece": 0.004}


def _binary(model: dict, baseline: dict, skill: float) -> dict:
    overall = {
        "skill_ratio": skill,
        "skill_ratio_ci_low": skill - 0.01,
        "skill_ratio_ci_high": skill + 0.01,
        "skill_ratio_expected": skill - 0.002,
    }
    return binary_figures({"model": model, "age": baseline, "oracle": ORACLE}, overall)


def test_a_binary_model_meets_the_targets_only_when_each_is_met() -> None:
    good = {"roc_auc": 0.885, "pr_auc": 0.62, "brier": 0.09, "ece": 0.015}
    base = {"roc_auc": 0.85, "pr_auc": 0.55, "brier": 0.10, "ece": 0.01}
    f = _binary(good, base, 0.962)
    assert f["checks"] == {"skill_ratio": True, "ece": True, "ahead_of_baselines": True}
    assert f["skill_ratio_ci"] == [0.952, 0.972] and f["skill_ratio_expected"] == 0.96
    assert f["baselines"]["age"] == {"roc_auc": 0.85, "pr_auc": 0.55, "brier": 0.1}

    assert not _binary(good, base, 0.949)["checks"]["skill_ratio"]
    assert not _binary({**good, "ece": 0.021}, base, 0.962)["checks"]["ece"]
    # ahead means clearly ahead: 0.004 more AUC is not, nor a worse Brier or PR AUC
    for worse in ({"roc_auc": 0.881}, {"brier": 0.089}, {"pr_auc": 0.63}):
        f = _binary(good, {**base, **worse}, 0.962)
        assert not f["checks"]["ahead_of_baselines"] and f["behind"] == ["age"], worse


def _depletion(ratio: float, model_ship: dict[float, tuple[float, float]]) -> dict:
    table = {
        "model": {"mae_days": 5.0 * ratio, "coverage_p10_p90": 0.8},
        "straight_line": {"mae_days": 15.0},
        "trigger_12d_5pct": {"ship_stockout_rate": 0.25, "ship_waste_days_mean": 11.0},
        "oracle": {"mae_days": 5.0},
    }
    overall = {"mae_ratio_vs_oracle": ratio, "mae_ratio_vs_oracle_ci_low": ratio - 0.03}
    for a, (stock, waste) in model_ship.items():
        overall[f"ship_stockout_rate_alpha_{a:g}"] = stock
        overall[f"ship_waste_days_mean_alpha_{a:g}"] = waste
    return depletion_figures(table, overall)


def test_depletion_is_ahead_of_the_trigger_only_with_fewer_stockouts_and_less_waste() -> None:
    # alpha 0.05 and 0.1 stock out less than the trigger; 0.1 wastes less of the two
    f = _depletion(1.15, {0.05: (0.05, 14.0), 0.1: (0.2, 10.0), 0.3: (0.3, 7.0)})
    assert f["shipping"] == {"alpha": 0.1, "stockout_rate": 0.2, "waste_days_mean": 10.0}
    assert f["checks"] == {"mae_ratio_vs_oracle": True, "ahead_of_baselines": True}
    assert f["mae_ratio_vs_oracle_ci"] == [1.12, None]  # a missing figure is null, not NaN

    # fewer stockouts only by throwing more toner away than the trigger: not ahead
    f = _depletion(1.15, {0.05: (0.05, 14.0), 0.3: (0.3, 7.0)})
    assert f["shipping"]["alpha"] == 0.05 and f["behind"] == ["trigger_12d_5pct"]
    # no threshold stocks out as rarely as the trigger
    f = _depletion(1.25, {0.3: (0.3, 7.0)})
    assert f["shipping"] is None
    assert f["checks"] == {"mae_ratio_vs_oracle": False, "ahead_of_baselines": False}


def test_the_summary_counts_seeds_and_shows_the_worst() -> None:
    good = {"roc_auc": 0.885, "pr_auc": 0.62, "brier": 0.09, "ece": 0.015}
    base = {"roc_auc": 0.85, "pr_auc": 0.55, "brier": 0.10, "ece": 0.01}
    per_seed = {
        7: {"refresh_due": _binary(good, base, 0.96), "consumable_depletion": _depletion(1.1, {})},
        1: {"refresh_due": _binary(good, base, 0.94), "consumable_depletion": _depletion(1.3, {})},
    }
    s = summarise(per_seed)
    r = s["refresh_due"]
    assert r["passed"] == {"skill_ratio": 1, "ece": 2, "ahead_of_baselines": 2}
    assert (r["mean"], r["worst"], r["mean_expected"]) == (0.95, 0.94, 0.948)
    d = s["consumable_depletion"]
    assert (d["figure"], d["mean"], d["worst"]) == ("mae_ratio_vs_oracle", 1.2, 1.3)
    assert d["passed"] == {"mae_ratio_vs_oracle": 1, "ahead_of_baselines": 0}


def test_a_figure_the_backtest_could_not_compute_prints_as_such() -> None:
    good = {"roc_auc": 0.885, "pr_auc": 0.62, "brier": 0.09, "ece": 0.015}
    f = binary_figures({"model": good}, {})  # no oracle, no baseline
    assert f["skill_ratio"] is None and f["checks"]["skill_ratio"] is False
    line = _line("refresh_due", 7, f)
    assert "skill n/a (n/a-n/a), expected n/a, ECE 0.0150; AUC 0.885;" in line
    assert line.endswith("short: skill_ratio")
    d = _depletion(1.1, {0.3: (0.3, 7.0)})
    assert "no shipping threshold stocks out as rarely as the trigger" in _line("d", 7, d)


def test_the_command_on_the_tiny_world(tmp_path: Path) -> None:
    args = ["bench", "quality", "--scale", "tiny", "--model", "device_failure"]
    r = CliRunner().invoke(app, [*args, "-w", str(tmp_path)])
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "bench" / "quality-tiny.json").read_text())
    assert data["seeds"] == [7] and list(data["per_seed"]["7"]) == ["device_failure"]
    f = data["per_seed"]["7"]["device_failure"]
    assert 0.5 < f["roc_auc"] < f["oracle_roc_auc"] <= 1.0
    skill = (f["roc_auc"] - 0.5) / (
        f["oracle_roc_auc"] - 0.5
    )  # the figures are rounded to 4 places
    assert f["skill_ratio"] == pytest.approx(skill, abs=2e-4)
    assert list(f["baselines"]) == ["errors_30d"] and len(f["cutoffs"]["evaluate"]) == 3
    s = data["summary"]["device_failure"]
    assert s["seeds"] == 1 and s["worst"] == f["skill_ratio"]
    assert "device_failure" in r.output and "targets met on seeds" in r.output

    bad = CliRunner().invoke(app, [*args[:4], "--model", "churn", "-w", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown model(s) churn" in bad.output
