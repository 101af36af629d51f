"""The demo pipeline on the tiny world, without serving: every step's output exists.

One run of :func:`amplify_ml.demo.run_demo` (a session fixture, with a gate the tiny world
can pass) is checked step by step; the command runs once more, in a workspace of its own
with the models' own gates and a lighter plan, to check its wiring and its JSON summary.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from amplify_ml.cli import app
from amplify_ml.demo import (
    DemoPlan,
    DemoResult,
    ServeStep,
    prepare_world,
    reset_workspace,
    run_demo,
    serving_step,
)
from amplify_ml.errors import InvalidRequestError
from amplify_ml.features import MODELS, read_training_set
from amplify_ml.modeling.registry import champion_version, configure_tracking
from amplify_ml.modeling.spec import ModelSpec, load_model_spec
from amplify_ml.scoring.leads import COLUMNS as LEAD_COLUMNS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]

SEED = 5


def _tiny_specs() -> dict[str, ModelSpec]:
    """The four specs with a gate the tiny world can pass and fewer trees (the tiny world has
    too few positives for the real gate: that refusal is checked in the command's test)."""
    out = {}
    for m in MODELS:
        spec = load_model_spec(m)
        gate = dataclasses.replace(spec.gate, max_ece=1.0, min_positives=0, max_coverage_gap=1.0)
        est = dataclasses.replace(
            spec.estimator, options={**spec.estimator.options, "n_estimators": 100}
        )
        out[m] = dataclasses.replace(spec, gate=gate, estimator=est)
    return out


@pytest.fixture(scope="session")
def result(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """One run for the whole session (a module fixture is set up again when xdist interleaves
    other modules' tests); the tests only read what it produced."""
    ws = tmp_path_factory.mktemp("demo-ws") / "demo"
    seen: list[DemoResult] = []
    steps: dict[str, int] = {}

    def progress(step: str, done: int, total: int) -> None:
        steps[step] = done

    res = run_demo(
        ws,
        scale="tiny",
        seed=SEED,
        plan=DemoPlan(train_cutoffs=4, eval_cutoffs=1),
        specs=_tiny_specs(),
        progress=progress,
        ready=seen.append,
    )
    assert seen == [res]  # ready is called once, with the whole result
    assert steps["train models"] == 4 and steps["score models"] == 4
    assert steps["ingest packs"] == len(res.world.packs)
    return res


def test_world_and_lake(result: DemoResult) -> None:
    assert result.world.generated and (result.world.path / "world.json").is_file()
    assert result.world.path.parent == result.workspace
    lake = result.ingest.lake
    for table in ("partners", "products", "accounts", "sell_through", "install_base", "telemetry"):
        assert not lake.read(table).empty, table
    # the partner without consent is refused, every other pack loaded
    assert len(result.ingest.refused) == 1
    assert "has not opted in" in result.ingest.refused[0][1]
    assert len(lake.packs()) == len(result.world.packs) - 1
    assert result.ingest.rows_loaded > 0


def test_every_model_is_trained_backtested_registered_and_champion(result: DemoResult) -> None:
    assert list(result.models) == list(MODELS)
    configure_tracking(result.workspace)
    for name, step in result.models.items():
        bt = step.result.backtest
        assert len(bt.split.train) == 4 and len(bt.split.evaluate) == 1
        own = bt.spec.cutoffs
        assert f"lighter than the model's own plan of {own.train} and {own.evaluate}" in step.plan
        # the training set on disk: training and evaluation cutoffs, features and label
        df, meta = read_training_set(step.training_set)
        # (a model per component is judged per device: its evaluation rows are in bt.rows)
        evaluated = bt.rows if bt.rows is not None else bt.evaluate
        assert len(df) == len(bt.train) + len(evaluated) > 0
        assert df["cutoff"].nunique() == 5 and "label" in df
        assert meta["model"] == name
        # model, best baseline and oracle on the main metric, all finite
        h = step.headline
        assert [r.scorer for r in h.rows] == ["model", h.best_baseline, "oracle"]
        assert all(pd.notna(r.value) for r in h.rows)
        assert h.value("model") == pytest.approx(bt.overall()[h.metric])
        # registered, promoted, the model card in the workspace (never in the repo)
        assert step.promoted and step.result.version == "1"
        assert str(champion_version(name).version) == "1"
        assert step.result.card_path == result.workspace / "cards" / name / "MODEL_CARD.md"
        assert step.result.card_path.is_file()
    binary = result.models["device_failure"].headline
    assert binary.metric == "roc_auc" and binary.best_baseline == "errors_30d"
    days = result.models["consumable_depletion"].headline
    assert days.metric == "mae_days" and days.best_baseline == "straight_line"
    assert not days.higher_is_better


def test_scores_and_lists(result: DemoResult) -> None:
    assert set(result.scores.results) == set(MODELS) and not result.scores.skipped
    as_of = {r.as_of for r in result.scores.results.values()}
    assert len(as_of) == 1  # all four at the lake's data end
    for name, r in result.scores.results.items():
        assert r.path is not None and r.path.is_file(), name
        assert len(pd.read_parquet(r.path)) == r.rows > 0
    lists = result.lists
    assert lists.partner == "P001" and not lists.skipped
    leads = lists.leads
    assert leads is not None and list(leads.columns) == LEAD_COLUMNS
    assert 0 < len(leads) <= 10 and set(leads["partner_id"]) == {"P001"}
    assert leads["reason_1"].notna().all() and leads["recommended_sku"].notna().all()
    depletion_rows = result.scores.results["consumable_depletion"].rows
    assert lists.supplies is not None and sum(lists.supplies.values()) == depletion_rows
    assert lists.fleet is not None and len(lists.fleet) > 0
    assert set(lists.fleet["partner_id"]) == {"P001"}
    assert lists.fleet_devices >= len(lists.fleet)


def test_the_serving_step_creates_working_keys(result: DemoResult) -> None:
    from amplify_ml.serving.keys import KeyStore

    assert result.serving is not None and result.serving.available
    assert set(result.serving.keys) == {"P001", "operations"}
    store = KeyStore.in_workspace(result.workspace)
    partner = store.verify(result.serving.keys["P001"])
    ops = store.verify(result.serving.keys["operations"])
    assert partner is not None and (partner.role, partner.partner_id) == ("partner", "P001")
    assert ops is not None and (ops.role, ops.partner_id) == ("operations", None)
    assert set(result.timings) == {"world", "ingest", "train", "score", "lists", "keys"}


def test_printed_summary(result: DemoResult) -> None:
    from amplify_ml import cli

    buf = io.StringIO()
    saved = cli.out
    cli.out = Console(file=buf, width=200, soft_wrap=True)
    try:
        cli._print_demo(result, serving=False)
    finally:
        cli.out = saved
    text = buf.getvalue()
    for name in MODELS:
        assert f"{name}: version 1, promoted to champion" in text
    assert text.count("(best baseline)") == 4 and text.count("oracle") >= 4
    assert "ROC AUC" in text and "MAE P50 (days)" in text
    assert text.count("95 % intervals from 200 resamples of whole") == 4
    assert text.count("the version is refit on all") == 4
    assert "P001: top" in text and "recommended_sku" in text
    assert "supplies: " in text and "device colours" in text
    assert "fleet: " in text and "devices of P001 under contract scored" in text
    assert f"mlflow ui --backend-store-uri sqlite:///{result.workspace}/mlflow.db" in text
    assert f"API key for P001: {result.serving.keys['P001']}" in text
    assert "the API was not started (--no-serve)" in text


def test_serving_step_creates_keys_then_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import amplify_ml.serving as serving

    calls: list[tuple[str, object]] = []

    def serve(workspace: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
        calls.append(("serve", (workspace, host, port)))

    monkeypatch.setattr(serving, "serve", serve)

    def ready(step: ServeStep) -> None:
        calls.append(("ready", sorted(step.keys)))

    step = serving_step(tmp_path, "P002", host="0.0.0.0", port=8123, serve=True, ready=ready)
    assert step.available and sorted(step.keys) == ["P002", "operations"]
    assert calls == [("ready", ["P002", "operations"]), ("serve", (tmp_path, "0.0.0.0", 8123))]
    assert step.urls["API docs"] == "http://0.0.0.0:8123/docs"
    assert step.urls["leads page"] == "http://0.0.0.0:8123/pages/leads"
    calls.clear()
    again = serving_step(tmp_path, "P002", host="127.0.0.1", port=8000, serve=False)
    assert calls == [] and again.keys["P002"] != step.keys["P002"]  # a new key each run


def test_plan_and_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="at least 2"):
        DemoPlan(train_cutoffs=1)
    with pytest.raises(InvalidRequestError, match="unknown model"):
        run_demo(tmp_path, scale="tiny", specs={"churn": load_model_spec("refresh_due")})
    runner = CliRunner()
    bad = runner.invoke(app, ["demo", "--scale", "huge", "-w", str(tmp_path), "--no-serve"])
    assert bad.exit_code == 2 and "unknown scale 'huge'" in bad.output


def test_a_second_run_reuses_the_world_and_rebuilds_what_it_derives(
    result: DemoResult, tmp_path: Path
) -> None:
    again = prepare_world(result.workspace, scale="tiny", seed=SEED, fresh=False)
    assert not again.generated and again.path == result.world.path
    assert again.packs == result.world.packs
    # what a run derives goes; the world and the MLflow store (every run) stay
    ws = tmp_path / "demo"
    for d in ("lake", "scores", "cards", "training_sets", "mlruns", "world-tiny-5"):
        (ws / d).mkdir(parents=True)
    (ws / "mlflow.db").write_text("")
    assert set(reset_workspace(ws)) == {"lake", "scores", "cards", "training_sets"}
    assert sorted(p.name for p in ws.iterdir()) == ["mlflow.db", "mlruns", "world-tiny-5"]
    assert reset_workspace(ws) == []


def test_the_command_with_the_models_own_gates(result: DemoResult, tmp_path: Path) -> None:
    """The command in a new workspace holding a copy of the world (so it is reused), with the
    models' own gates: on the tiny world some refuse, and what is refused is not scored."""
    demo = tmp_path / "demo"
    shutil.copytree(result.world.path, demo / result.world.path.name)
    runner = CliRunner()
    args = ["demo", "--scale", "tiny", "--seed", str(SEED), "-w", str(tmp_path), "--no-serve"]
    args += ["--train-cutoffs", "3", "--eval-cutoffs", "1", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["workspace"] == str(demo.resolve())
    assert not summary["world"]["generated"] and summary["world"]["scale"] == "tiny"
    assert summary["ingest"]["rows_loaded"] > 0 and len(summary["ingest"]["refused"]) == 1
    models = summary["models"]
    assert set(models) == set(MODELS)
    for name, m in models.items():
        assert m["version"] == "1" and m["gate"], name
        assert "3 training and 1 evaluation cutoffs" in m["plan"]
        # the version served learnt up to the evaluated cutoff
        assert m["served"]["cutoffs"][-1] == m["split"]["evaluate"][-1]
        assert set(m["headline"]["rows"]) >= {"model", "oracle"}
        scored = name in summary["scores"]["written"]
        assert scored == m["promoted"], name
        if not m["promoted"]:
            assert "did not pass the promotion gate" in summary["scores"]["skipped"][name]
    assert not all(m["promoted"] for m in models.values())  # the tiny world is too small
    assert summary["mlflow"]["ui"].endswith(f"sqlite:///{demo.resolve()}/mlflow.db")
    assert set(summary["timings"]) >= {"world", "ingest", "train", "score", "lists", "total"}
