"""The promotion gate by hand, and an MLflow round trip in a temporary store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from amplify_ml.errors import NotFoundError
from amplify_ml.modeling.estimators import TimeCalibratedClassifier
from amplify_ml.modeling.registry import (
    AmplifyPyfunc,
    champion_version,
    configure_tracking,
    experiment_id,
    gate_decision,
    load_champion,
    pip_requirements,
    registered_name,
    set_champion,
)


def test_gate_promotes_the_first_calibrated_version() -> None:
    d = gate_decision(
        {"roc_auc": 0.8, "ece": 0.01},
        None,
        metric="roc_auc",
        max_ece=0.02,
        min_positives=100,
        positives=500,
    )
    assert d.promote
    assert d.reasons == ["calibrated: ECE 0.0100 <= 0.02", "no champion yet"]


def test_gate_refuses_a_worse_model() -> None:
    d = gate_decision(
        {"roc_auc": 0.78, "ece": 0.01}, {"roc_auc": 0.80}, metric="roc_auc", tolerance=0.005
    )
    assert not d.promote
    assert "roc_auc 0.7800 is worse than the champion's 0.8000" in d.reasons


def test_gate_tolerates_noise_and_refuses_uncalibrated_or_thin_models() -> None:
    assert gate_decision(
        {"roc_auc": 0.798}, {"roc_auc": 0.80}, metric="roc_auc", tolerance=0.005
    ).promote
    d = gate_decision(
        {"roc_auc": 0.9, "ece": 0.05},
        {"roc_auc": 0.8},
        metric="roc_auc",
        max_ece=0.02,
        min_positives=100,
        positives=40,
    )
    assert not d.promote
    assert d.reasons[:2] == [
        "trained on 40 positives, the gate needs at least 100",
        "not calibrated: ECE 0.0500 > 0.02",
    ]
    # with the chance part of the ECE known, the gate judges what is left of it
    d = gate_decision(
        {"roc_auc": 0.9, "ece": 0.045, "ece_by_chance": 0.02}, None, metric="roc_auc", max_ece=0.03
    )
    assert d.promote
    assert (
        d.reasons[0]
        == "calibrated: ECE 0.0450, 0.0200 of it by chance on these rows: 0.0250 <= 0.03"
    )
    d = gate_decision(
        {"roc_auc": 0.9, "ece": 0.055, "ece_by_chance": 0.02}, None, metric="roc_auc", max_ece=0.03
    )
    assert not d.promote
    assert (
        d.reasons[0]
        == "not calibrated: ECE 0.0550, 0.0200 of it by chance on these rows: 0.0350 > 0.03"
    )
    # lower is better for errors such as MAE
    assert gate_decision({"mae": 5.0}, {"mae": 6.0}, metric="mae", higher_is_better=False).promote
    assert not gate_decision(
        {"mae": 7.0}, {"mae": 6.0}, metric="mae", higher_is_better=False
    ).promote


def test_pip_requirements_are_pinned() -> None:
    reqs = pip_requirements()
    assert any(r.startswith("lightgbm==4.7") for r in reqs)
    assert all("==" in r for r in reqs)


@pytest.fixture
def tracking(tmp_path: Path):
    uri = configure_tracking(tmp_path)
    yield tmp_path, uri
    mlflow.set_tracking_uri(None)


def test_mlflow_round_trip_log_register_alias_load_same_predictions(tracking) -> None:
    workspace, uri = tracking
    assert uri == f"sqlite:///{workspace.resolve() / 'mlflow.db'}"
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=600), "kind": rng.choice(["x", "y"], size=600)})
    y = (X["a"] + rng.normal(size=600) > 0).astype(int)
    cutoff = np.repeat(pd.date_range("2025-01-01", periods=4, freq="MS"), 150)
    est = TimeCalibratedClassifier(n_estimators=30).fit(X, y, time=cutoff)
    wrapped = AmplifyPyfunc(est, "binary")
    expected = wrapped.predict(None, X.head(50))
    with pytest.raises(NotFoundError, match=r"no champion for demo_model: train it first"):
        load_champion("demo_model")
    exp = experiment_id("demo_model", workspace)
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapped,
            signature=infer_signature(X.head(5), expected.head(5)),
            input_example=X.head(5),
            pip_requirements=pip_requirements(),
        )
    mv = mlflow.register_model(info.model_uri, registered_name("demo_model"))
    set_champion("demo_model", mv.version)
    assert champion_version("demo_model").version == mv.version
    loaded = load_champion("demo_model")
    got = loaded.predict(X.head(50))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    assert (workspace / "mlruns" / "demo_model").exists()  # artifacts stay in the workspace


def test_each_workspace_gets_its_own_store(tmp_path: Path) -> None:
    """MLflow exports the URI it is given; the next workspace must still get its own."""
    first = configure_tracking(tmp_path / "a")
    second = configure_tracking(tmp_path / "b")
    assert first.endswith("/a/mlflow.db") and second.endswith("/b/mlflow.db")
    assert mlflow.get_tracking_uri() == second
    mlflow.set_tracking_uri(None)
