"""Training on the tiny world: the MLflow round trip, the promotion gate, the model card,
the commands, and propensity on a partner that shares nothing but transactions."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from amplify_ml.cli import app
from amplify_ml.lake import Lake
from amplify_ml.modeling.registry import CHAMPION, champion_version, load_champion, registered_name
from amplify_ml.modeling.spec import load_model_spec
from amplify_ml.modeling.train import train

runner = CliRunner()


def _lenient(model: str, **estimator: object):
    """The model's spec with a gate the tiny world can pass (and optional estimator options)."""
    spec = load_model_spec(model)
    gate = dataclasses.replace(spec.gate, max_ece=1.0, min_positives=0)
    est = dataclasses.replace(
        spec.estimator,
        options={**spec.estimator.options, **{k: v for k, v in estimator.items() if k != "params"}},
        params={**spec.estimator.params, **estimator.get("params", {})},  # type: ignore[dict-item]
    )
    return dataclasses.replace(spec, gate=gate, estimator=est)


def _train(spec, lake: Lake, ws: Path, **kw: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(spec, lake, workspace=ws, card_dir=ws / "cards", **kw)  # type: ignore[arg-type]


def test_round_trip_gate_and_card(tiny_lake: Lake, tiny_world: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    first = _train(_lenient("refresh_due"), tiny_lake, ws, oracle=tiny_world)
    assert first.promoted and first.version == "1"
    assert str(champion_version("refresh_due").version) == "1"

    # the run holds what DESIGN.md lists
    client = mlflow.MlflowClient()
    run = client.get_run(first.run_id)
    assert run.data.metrics["model.roc_auc"] == pytest.approx(first.backtest.overall()["roc_auc"])
    assert "age.roc_auc" in run.data.metrics and "oracle.roc_auc" in run.data.metrics
    cut = first.backtest.split.evaluate[0].isoformat()
    assert f"model.roc_auc.{cut}" in run.data.metrics
    assert run.data.tags["amplify.gate"] == "passed"
    arts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"spec", "features.json", "fingerprint.json", "plots", "MODEL_CARD.md"} <= arts
    plots = {Path(a.path).name for a in client.list_artifacts(first.run_id, "plots")}
    assert {"roc_pr.png", "calibration.png", "lift.png", "shap_summary.png"} <= plots
    backtest_files = {Path(a.path).name for a in client.list_artifacts(first.run_id, "backtest")}
    assert {"metrics.csv", "partners.csv", "top_reasons.csv"} <= backtest_files
    top = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=first.run_id, artifact_path="backtest/top_reasons.csv", dst_path=tmp_path
        )
    )
    assert top["probability"].is_monotonic_decreasing and top["reason_1"].notna().all()
    fp = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=first.run_id, artifact_path="fingerprint.json", dst_path=tmp_path
            )
        ).read_text()
    )
    assert fp["cutoffs"]["evaluate"] == [c.isoformat() for c in first.backtest.split.evaluate]
    assert {p["pack_id"] for p in fp["packs"]} == set(tiny_lake.packs()["pack_id"])

    # the version served is refit on every cutoff with complete labels, the evaluation ones too
    bt, final = first.backtest, first.final
    assert final is not None and final.cutoffs[0] == bt.split.train[0]
    assert set(bt.split.train) | set(bt.split.evaluate) <= set(final.cutoffs)
    assert final.cutoffs[-1] == bt.split.evaluate[-1] and final.label_end <= bt.split.data_end
    assert final.rows > len(bt.train) and run.data.tags["amplify.served"] == "refit"
    assert run.data.params["served.cutoffs"].endswith(f"({len(final.cutoffs)})")

    # load @champion: the same predictions as the refit; the run's backtest_model: the same
    # as the estimator that was evaluated
    ev = bt.evaluate
    served = load_champion("refresh_due").predict(ev)["probability"].to_numpy()
    assert np.allclose(served, first.served.predict_proba(ev[bt.features])[:, 1])
    judged = mlflow.pyfunc.load_model(run.data.tags["amplify.backtest_model_uri"])
    assert np.allclose(judged.predict(ev)["probability"].to_numpy(), bt.scores["model"])
    assert not np.allclose(served, bt.scores["model"])

    # the card says what was trained, on what, and how it compares
    card = (ws / "cards" / "MODEL_CARD.md").read_text()
    assert "# Model card: refresh_due" in card and "vendor_rule_5y" in card
    assert "- Builders: `" in card  # the method: each builder with its settings
    assert re.search(
        r"95 % intervals from 200 resamples of whole devices .*: ROC AUC 0\.\d{3} \(0\.\d{3}-[01]\.\d{3}\)",
        card,
    )
    assert "Promoted" in card and f"version {first.version}" in card
    assert (
        f"- Served: the same spec fitted again on every cutoff with complete labels, {final.cutoffs[0]}"
        in card
    )

    # a worse model (two leaves, three trees) is registered but not promoted
    worse_spec = _lenient(
        "refresh_due", n_estimators=3, early_stopping_rounds=3, params={"num_leaves": 2}
    )
    worse = _train(worse_spec, tiny_lake, ws, oracle=tiny_world)
    assert worse.version == "2" and not worse.promoted
    assert worse.backtest.overall()["roc_auc"] < first.backtest.overall()["roc_auc"]
    assert any("worse than the champion" in r for r in worse.gate.reasons)
    assert any(
        "re-scored on the same evaluation rows (the model its backtest" in n for n in worse.notes
    )
    # the champion was judged by its backtest's model, which has not seen these rows (its
    # refit, which has, would look better than it is)
    assert worse.champion_metric == pytest.approx(first.backtest.overall()["roc_auc"])
    y = worse.backtest.evaluate["label"].to_numpy()
    assert roc_auc_score(y, served) != pytest.approx(worse.champion_metric)
    assert str(champion_version("refresh_due").version) == "1"
    mv = client.get_model_version(registered_name("refresh_due"), "2")
    assert mv.tags["gate"] == "refused" and CHAMPION not in (mv.aliases or [])


def test_the_gate_refuses_too_few_positives_and_poor_calibration(
    tiny_lake: Lake, tmp_path: Path
) -> None:
    spec = load_model_spec("device_failure")
    strict = dataclasses.replace(
        spec, gate=dataclasses.replace(spec.gate, min_positives=10**6, max_ece=1e-6)
    )
    res = _train(strict, tiny_lake, tmp_path / "ws", refit=False)
    assert res.version == "1" and not res.promoted
    # without the refit the backtest's model is the version, and the only model of the run
    assert res.final is None and res.served is res.backtest.estimator
    tags = mlflow.MlflowClient().get_run(res.run_id).data.tags
    assert tags["amplify.served"] == "backtest model" and "amplify.backtest_model_uri" not in tags
    assert "- Served: the model evaluated below" in res.card
    assert any("the gate needs at least 1000000" in r for r in res.gate.reasons)
    assert any(r.startswith("not calibrated") for r in res.gate.reasons)
    assert champion_version("device_failure") is None
    with pytest.raises(Exception, match="no champion for device_failure"):
        load_champion("device_failure")


def test_depletion_logs_quantiles_and_the_shipping_simulation(
    tiny_lake: Lake, tiny_world: Path, tmp_path: Path
) -> None:
    spec = load_model_spec("consumable_depletion")
    spec = dataclasses.replace(
        spec,
        gate=dataclasses.replace(spec.gate, min_positives=0, max_coverage_gap=1.0),
        estimator=dataclasses.replace(
            spec.estimator, options={**spec.estimator.options, "n_estimators": 60}
        ),
    )
    res = _train(spec, tiny_lake, tmp_path / "ws", oracle=tiny_world)
    assert res.promoted
    t = res.backtest.table()
    assert {"model", "straight_line", "oracle"} <= set(t.index)
    assert res.backtest.shipping is not None
    assert set(res.backtest.shipping["policy"]) >= {"model", "straight_line", "trigger_12d_5pct"}
    ev = res.backtest.evaluate
    out = load_champion("consumable_depletion").predict(ev)
    assert list(out.columns) == ["p10_days", "p50_days", "p90_days", "beyond_window"]
    assert (out["p10_days"] <= out["p50_days"]).all() and (out["p50_days"] <= out["p90_days"]).all()
    # the refit is served; the backtest's model made the evaluated quantiles
    assert res.final is not None and res.final.cutoffs[-1] == res.backtest.split.evaluate[-1]
    assert np.allclose(
        out["p50_days"], res.served.predict_frame(ev[res.backtest.features])["p50_days"]
    )
    assert np.allclose(
        res.backtest.estimator.predict_frame(ev[res.backtest.features])["p50_days"], ev["p50_days"]
    )


@pytest.fixture(scope="module")
def transactions_lake(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake holding nothing but a dealer's plain invoice export of P001 (customer, date,
    quantity, amount, sku, category) turned into a minimal pack."""
    from amplify_ml.datapack.from_transactions import pack_from_transactions
    from amplify_ml.datapack.ingest import ingest_pack

    root = tmp_path_factory.mktemp("transactions")
    pack = tiny_world / "packs" / "P001"
    st = pd.read_parquet(pack / "sell_through.parquet")
    products = pd.read_parquet(tiny_world / "packs" / "vendor" / "products.parquet")
    st = st.merge(products[["sku", "category"]], on="sku")
    export = pd.DataFrame(
        {
            "cust": st["account_id"],
            "day": pd.to_datetime(st["sold_on"]).dt.strftime("%Y-%m-%d"),
            "qty": st["quantity"],
            "amt": st["net_amount"],
            "sku": st["sku"],
            "cat": st["category"],
        }
    )
    src = root / "export.csv"
    export.to_csv(src, index=False)
    out = root / "packs" / "P001"
    pack_from_transactions(
        src,
        out,
        partner_id="P001",
        mapping={
            "customer_id": "cust",
            "date": "day",
            "quantity": "qty",
            "amount": "amt",
            "sku": "sku",
            "category": "cat",
        },
        consent=True,
        defaults={"channel": "field", "employee_band": "10-49", "track": "power"},
        country="DE",
        currency="EUR",
    )
    lake = Lake(root / "lake")
    ingest_pack(out, lake)
    return lake


def test_propensity_trains_on_a_partner_that_shares_only_transactions(
    transactions_lake: Lake,
) -> None:
    from amplify_ml.modeling.backtest import backtest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtest("propensity_to_buy", transactions_lake, train_cutoffs=8, eval_cutoffs=2)
    skipped = {s["builder"] for s in bt.meta.builders_skipped}
    assert {"ib_composition", "intent_sums", "opportunity_counts"} <= skipped
    t = bt.table()
    assert t.loc["model", "roc_auc"] > 0.6
    assert np.isfinite(t.loc["recency_frequency", "roc_auc"])
    assert len(bt.evaluate) > 0 and set(bt.evaluate["partner_id"]) == {"P001"}


def test_all_trains_and_scores_what_a_transactions_only_lake_can_feed(
    transactions_lake: Lake, tmp_path: Path
) -> None:
    """--all is every model the lake can feed: the others are named with the table they need
    (or their missing champion), and only a lake that feeds none is an error."""
    ws = tmp_path / "ws"
    shutil.copytree(transactions_lake.root, ws / "lake")
    cuts = ["--train-cutoffs", "8", "--eval-cutoffs", "2"]
    tr = runner.invoke(
        app, ["train", "--all", "-w", str(ws), "--card-dir", str(ws / "cards"), *cuts, "--json"]
    )
    assert tr.exit_code == 0, tr.output
    results = {r["model"]: r for r in json.loads(tr.stdout)}
    assert set(results) == {
        "propensity_to_buy",
        "refresh_due",
        "consumable_depletion",
        "device_failure",
    }
    assert "skipped" not in results["propensity_to_buy"]
    # the version is refit up to the last evaluation cutoff
    prop = results["propensity_to_buy"]
    assert prop["served"]["cutoffs"][-1] == prop["split"]["evaluate"][-1]
    assert len(prop["served"]["cutoffs"]) > len(prop["split"]["train"])
    assert results["refresh_due"]["skipped"].startswith(
        "refresh_due needs the table install_base, which is not in the lake"
    )
    assert "needs the table telemetry" in results["consumable_depletion"]["skipped"]
    assert "needs the table install_base" in results["device_failure"]["skipped"]
    # MLflow's own chatter (pickling, pip, "Created version 1") stays out of the output
    assert "mlflow" not in tr.output.lower().replace("mlflow run", "")

    alone = runner.invoke(app, ["train", "refresh_due", "-w", str(ws), *cuts])
    assert alone.exit_code == 2
    assert "refresh_due needs the table install_base" in alone.output

    # the tiny partner's few purchases do not pass propensity's gate: nothing to score yet
    assert results["propensity_to_buy"]["promoted"] is False
    none = runner.invoke(app, ["score", "--all", "-w", str(ws)])
    assert none.exit_code == 2
    assert "no model can be scored: no champion for propensity_to_buy" in none.output

    _train(_lenient("propensity_to_buy"), transactions_lake, ws, train_cutoffs=8, eval_cutoffs=2)
    sc = runner.invoke(app, ["score", "--all", "-w", str(ws), "--json"])
    assert sc.exit_code == 0, sc.output
    scored = {r["model"]: r for r in json.loads(sc.stdout)}
    assert scored["propensity_to_buy"]["rows"] > 0
    # the lake's missing table comes first: no champion could be trained for it here
    assert scored["refresh_due"]["skipped"].startswith(
        "refresh_due needs the table install_base, which is not in the lake"
    )
    assert set(scored) == set(results)
    # a model named on its own must be scorable
    assert runner.invoke(app, ["score", "device_failure", "-w", str(ws)]).exit_code == 2

    # the API is ready with what the lake can feed; the others say which tables they need
    from fastapi.testclient import TestClient

    from amplify_ml.config import Settings
    from amplify_ml.serving.app import create_app
    from amplify_ml.serving.keys import KeyStore

    _, key = KeyStore.in_workspace(ws).create(partner="P001")
    with TestClient(create_app(Settings(workspace=ws, model_poll_seconds=0))) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.json()
        body = ready.json()
        assert body["ready"] is True and body["missing"] == []
        assert body["models"]["propensity_to_buy"]["serving_version"] is not None
        for m in ("refresh_due", "consumable_depletion", "device_failure"):
            assert body["models"][m]["problem"].startswith(
                "this lake cannot feed it: it needs the table"
            ), body["models"][m]
        assert "install_base" in body["models"]["refresh_due"]["problem"]
        h = {"X-API-Key": key}
        fleet = client.get("/v1/fleet", headers=h)
        assert fleet.status_code == 503
        assert fleet.json()["detail"].startswith(
            "scores of device_failure are not available: this lake cannot feed it: it needs "
            "the table"
        )
        score = client.post("/v1/models/refresh_due/score", json={"rows": [{}]}, headers=h)
        assert score.status_code == 503
        assert "this lake cannot feed it" in score.json()["detail"]
        leads = client.get("/v1/leads", headers=h)
        assert leads.status_code == 200 and leads.json()["count"] > 0
        # the fleet page is no outage page: each section says what this lake lacks
        login = client.post("/pages/login", data={"key": key}, follow_redirects=False)
        assert login.status_code == 303
        page = client.get("/pages/fleet")
        assert page.status_code == 200, page.text
        assert "Not available right now" not in page.text
        assert "Fleet · P001" in page.text
        assert "Scores of device_failure are not available: this lake cannot feed it" in page.text
        assert "Scores of consumable_depletion are not available: this lake" in page.text


def test_train_and_evaluate_commands(tiny_lake: Lake, tiny_world: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(tiny_lake.root, ws / "lake")
    ev = runner.invoke(
        app, ["evaluate", "device_failure", "-w", str(ws), "--oracle", str(tiny_world), "--json"]
    )
    assert ev.exit_code == 0, ev.output
    data = json.loads(ev.stdout)
    assert set(data["overall"]) == {"model", "errors_30d", "oracle"}
    assert len(data["split"]["evaluate"]) == 3
    assert not (ws / "mlflow.db").exists()  # evaluate logs nothing

    tr = runner.invoke(
        app,
        [
            "train",
            "device_failure",
            "-w",
            str(ws),
            "--no-register",
            "--card-dir",
            str(ws / "cards"),
            "--eval-cutoffs",
            "2",
            "--train-cutoffs",
            "10",
        ],
    )
    assert tr.exit_code == 0, tr.output
    assert "MLflow run" in tr.stdout and "model card:" in tr.stdout
    assert (ws / "cards" / "device_failure" / "MODEL_CARD.md").is_file()

    leak = runner.invoke(
        app, ["evaluate", "refresh_due", "-w", str(ws), "--train-cutoffs", "2026-01-01:2026-03-01"]
    )
    assert leak.exit_code == 2
    assert "reach past the first evaluation cutoff" in leak.output
    none = runner.invoke(app, ["train", "-w", str(ws)])
    assert none.exit_code == 2 and "or pass --all" in none.output


def test_a_backtest_of_component_rows_is_judged_per_device(tiny_lake: Lake) -> None:
    """device_failure on feature set v3 (a row per component) with combine_by: the metrics,
    the baselines and the oracle are per device, on the devices and labels of v2."""
    from amplify_ml.modeling.backtest import backtest
    from amplify_ml.modeling.units import combine_probabilities, unit_codes

    v2 = dataclasses.replace(load_model_spec("device_failure"), feature_set_version=2, settings={})
    v3 = dataclasses.replace(
        v2,
        feature_set_version=3,
        settings={"combine_by": ["partner_id", "account_id", "device_id"]},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = backtest(v2, tiny_lake, train_cutoffs=8, eval_cutoffs=2)
        b = backtest(v3, tiny_lake, train_cutoffs=8, eval_cutoffs=2)
    keys = ["partner_id", "account_id", "device_id", "cutoff"]
    assert b.keys == keys[:-1] and a.rows is None and b.rows is not None
    pd.testing.assert_frame_equal(
        a.evaluate[[*keys, "label"]].sort_values(keys).reset_index(drop=True),
        b.evaluate[[*keys, "label"]].sort_values(keys).reset_index(drop=True),
    )
    codes, units = unit_codes(b.rows, b.keys)
    assert units[keys].equals(b.evaluate[keys])
    p = combine_probabilities(b.rows["p_row"].to_numpy(), codes, len(units))
    assert np.allclose(p, b.scores["model"])
    assert len(b.scores["errors_30d"]) == len(b.evaluate)
    assert {"roc_auc", "ece", "row_roc_auc"} <= set(b.overall())


def test_a_per_component_challenger_meets_a_per_device_champion_on_the_same_devices(
    tiny_lake: Lake, tmp_path: Path
) -> None:
    """device_failure v3 (a row per component) against a v2 champion (a row per device): the
    champion is re-scored on its own rows at the evaluation cutoffs, matched per device; and
    a v3 champion is re-scored on the challenger's component rows, combined."""
    from amplify_ml.modeling.train import _champion_metric

    ws = tmp_path / "ws"
    v3 = _lenient("device_failure")
    v2 = dataclasses.replace(v3, feature_set_version=2, settings={"alert_budgets": [0.01]})
    first = _train(v2, tiny_lake, ws, train_cutoffs=8, eval_cutoffs=2)
    assert first.promoted
    second = _train(v3, tiny_lake, ws, train_cutoffs=8, eval_cutoffs=2)
    assert any("version 1 re-scored on the same evaluation rows" in n for n in second.notes)
    # the champion's figure is its device-level AUC on the challenger's devices: the same as
    # its own backtest's (the same devices, labels and cutoffs)
    assert second.champion_metric == pytest.approx(first.backtest.overall()["roc_auc"])
    if second.promoted:  # a v3 champion re-scored on v3 rows equals its own backtest
        notes: list[str] = []
        rep, value = _champion_metric(second.backtest, v3, notes, tiny_lake)
        assert value == pytest.approx(second.backtest.overall()["roc_auc"])
        assert rep is not None and any("re-scored" in n for n in notes)
