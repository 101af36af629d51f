"""Champions change without a restart; a version that fails to load never replaces the one
serving. On a copy of the tiny workspace, with the registry polled every 0.2 s."""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.isotonic import IsotonicRegression

from amplify_ml.modeling.registry import (
    AmplifyPyfunc,
    pip_requirements,
    registered_name,
    resolve_tracking_uri,
)
from amplify_ml.serving import models as models_module
from amplify_ml.serving.app import create_app
from amplify_ml.serving.keys import KeyStore
from amplify_ml.serving.models import ChampionStore
from amplify_ml.serving.service import Service
from tests.unit.serving.conftest import api_settings
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")
MODEL = "device_failure"
BROKEN = "FileNotFoundError while loading the artifact; see the server log"


def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def _register(ws: Path, estimator: Any, signature: Any, *, broken: bool = False) -> str:
    """Log ``estimator`` as a new version of the model, break its artifact if asked, and
    point the alias champion at it."""
    uri = resolve_tracking_uri(ws)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(uri, uri)
    exp = client.create_experiment(
        f"swap-{uuid.uuid4().hex[:8]}", artifact_location=(ws / "mlruns-swap").as_uri()
    )
    with mlflow.start_run(experiment_id=exp), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no input example: the signature is the first version's
        mlflow.log_params({"model": MODEL, "task": "binary", "feature_set": f"{MODEL}.v1.toml"})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=AmplifyPyfunc(estimator, "binary"),
            signature=signature,
            pip_requirements=pip_requirements(),
        )
        mv = mlflow.register_model(info.model_uri, registered_name(MODEL))
    if broken:
        where = client.get_model_version_download_uri(registered_name(MODEL), mv.version)
        Path(where.removeprefix("file://"), "python_model.pkl").unlink()
    client.set_registered_model_alias(registered_name(MODEL), "champion", str(mv.version))
    return str(mv.version)


@pytest.fixture(scope="module")
def swap_ws(api_workspace: ApiWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("swap-ws")
    shutil.copytree(api_workspace.path, ws, dirs_exist_ok=True)
    return ws


@pytest.fixture(scope="module")
def swap(swap_ws: Path, api_workspace: ApiWorkspace) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = KeyStore.in_workspace(swap_ws)
    _, key = store.create(partner=api_workspace.partners[0])
    _, ops = store.create(role="operations")
    settings = api_settings(api_workspace).model_copy(
        update={"workspace": swap_ws, "model_poll_seconds": 0.2}
    )
    with TestClient(create_app(settings)) as client:
        yield client, {"key": key, "ops": ops}


def _rows(service: Service) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    frame = pd.DataFrame(service.champions.get(MODEL).champion.pyfunc.input_example)
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
    return frame, rows


def test_a_new_champion_is_served_without_a_restart_and_a_broken_one_never_is(
    swap: tuple[TestClient, dict[str, str]], swap_ws: Path
) -> None:
    client, keys = swap
    h = {"X-API-Key": keys["key"]}
    service = client.app.state.service
    v1 = service.champions.get(MODEL)
    frame, rows = _rows(service)
    url = f"/v1/models/{MODEL}/score"
    before = client.post(url, json={"rows": rows}, headers=h).json()
    assert before["version"] == "1"

    # version 2: the same trees, another calibration (so its answers differ)
    est2 = copy.deepcopy(v1.champion.estimator)
    est2.calibrator_ = IsotonicRegression(out_of_bounds="clip").fit([0.0, 1.0], [0.25, 0.75])
    signature = v1.champion.pyfunc.metadata.signature
    assert _register(swap_ws, est2, signature) == "2"
    answers: list[int] = []

    def swapped() -> bool:  # keep asking while the new version loads: every answer is 200
        r = client.post(url, json={"rows": rows}, headers=h)
        answers.append(r.status_code)
        return r.json()["version"] == "2"

    _wait(swapped)
    assert set(answers) == {200}
    after = client.post(url, json={"rows": rows}, headers=h).json()
    expected = est2.predict_proba(frame)[:, 1]
    assert np.allclose([p["probability"] for p in after["predictions"]], expected, atol=1e-12)
    assert not np.allclose(
        [p["probability"] for p in after["predictions"]],
        [p["probability"] for p in before["predictions"]],
    )
    detail = client.get(f"/v1/models/{MODEL}", headers=h).json()
    assert (detail["serving_version"], detail["champion_version"]) == ("2", "2")
    assert [v["aliases"] for v in detail["versions"]] == [["champion"], []]

    # version 3 cannot be loaded: version 2 keeps serving, /ready and /v1/models say why
    assert _register(swap_ws, est2, signature, broken=True) == "3"
    _wait(lambda: client.get("/ready").json()["models"][MODEL]["load_error"] is not None)
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    state = ready.json()["models"][MODEL]
    assert (state["serving_version"], state["champion_version"]) == ("2", "3")
    assert state["load_error"]["version"] == "3"
    assert state["load_error"]["message"] == BROKEN
    assert state["problem"] == (
        f"its champion (version 3) failed to load: {BROKEN}; fix the artifact or train it "
        f"(amplify train {MODEL})"
    )
    models = client.get(f"/v1/models/{MODEL}", headers=h).json()
    assert (models["serving_version"], models["load_error"]["version"]) == ("2", "3")
    still = client.post(url, json={"rows": rows}, headers=h).json()
    assert still["version"] == "2" and still["predictions"] == after["predictions"]
    metrics = client.get("/metrics").text
    assert f'amplify_model_load_failures_total{{model="{MODEL}"}} 1.0' in metrics
    assert f'amplify_model_serving_version{{model="{MODEL}"}} 2.0' in metrics
    forced = client.post("/v1/models/refresh", headers={"X-API-Key": keys["ops"]}).json()
    assert forced["results"][MODEL] == "failed"
    assert forced["results"]["refresh_due"] == "unchanged"

    # back to version 2: the error clears
    mlflow.MlflowClient().set_registered_model_alias(registered_name(MODEL), "champion", "2")
    _wait(lambda: client.get("/ready").json()["models"][MODEL]["load_error"] is None)
    assert client.get("/ready").json()["models"][MODEL]["problem"] is None


def test_a_champion_that_cannot_load_at_start_answers_503_saying_why(
    swap: tuple[TestClient, dict[str, str]], swap_ws: Path, api_workspace: ApiWorkspace
) -> None:
    client, keys = swap
    signature = client.app.state.service.champions.get(MODEL).champion.pyfunc.metadata.signature
    est = client.app.state.service.champions.get(MODEL).champion.estimator
    version = _register(swap_ws, est, signature, broken=True)
    settings = api_settings(api_workspace).model_copy(update={"workspace": swap_ws})
    with TestClient(create_app(settings)) as fresh:
        ready = fresh.get("/ready")
        assert ready.status_code == 503
        problem = (
            f"its champion (version {version}) failed to load: {BROKEN}; fix the artifact or "
            f"train it (amplify train {MODEL})"
        )
        assert ready.json()["missing"] == [f"{MODEL}: {problem}"]
        r = fresh.post(
            f"/v1/models/{MODEL}/score", json={"rows": [{}]}, headers={"X-API-Key": keys["key"]}
        )
        assert (r.status_code, r.json()["detail"]) == (
            503,
            f"model {MODEL} is not available: {problem}",
        )
        other = fresh.post(
            "/v1/models/refresh_due/score", json={"rows": [{}]}, headers={"X-API-Key": keys["key"]}
        )
        assert other.status_code == 422  # the other models serve as before


@pytest.fixture
def own_ws(api_workspace: ApiWorkspace, tmp_path: Path) -> Path:
    """A copy of the tiny workspace for one test, whose registry it may change."""
    ws = tmp_path / "ws"
    shutil.copytree(api_workspace.path, ws)
    return ws


def test_a_remote_champion_is_copied_for_the_load_and_the_copy_removed(
    own_ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a registry whose artifacts are not local files (a tracking server) answers a URI that
    # must be downloaded; a server that reloads champions for months must not keep the copies
    uri = resolve_tracking_uri(own_ws)
    mlflow.set_tracking_uri(uri)
    store = ChampionStore(tracking_uri=uri, models=[MODEL])
    real = store.client()
    seen: list[str] = []

    class RemoteClient:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def get_model_version_download_uri(self, name: str, version: str) -> str:
            seen.append(f"models:/{name}/{version}")
            return seen[-1]

    download = mlflow.artifacts.download_artifacts

    def remote_download(artifact_uri: str, dst_path: str | None = None, **kw: Any) -> str:
        # a remote repository copies, into a new temporary folder when given no destination
        # (a local one hands back its own path, so the copy is made here)
        return download(artifact_uri=artifact_uri, dst_path=dst_path or tempfile.mkdtemp(), **kw)

    monkeypatch.setattr(store, "client", RemoteClient)
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", remote_download)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    assert store.refresh() == {MODEL: "loaded"}, store.status()
    loaded = store.require(MODEL)
    assert seen == [f"models:/{registered_name(MODEL)}/{loaded.version}"]
    frame = pd.DataFrame(loaded.champion.pyfunc.input_example)
    assert len(loaded.champion.pyfunc.predict(frame)) == len(frame)  # scores after the removal
    assert list(scratch.iterdir()) == []


def test_the_poller_tries_a_broken_champion_again_ever_less_often_and_an_operator_at_once(
    own_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with a remote registry every try downloads the artifact: a version that cannot load must
    # not be fetched at every poll for as long as it stays champion
    ws = own_ws
    uri = resolve_tracking_uri(ws)
    store = ChampionStore(tracking_uri=uri, models=[MODEL], poll_seconds=10, max_retry_seconds=35)
    assert store.refresh() == {MODEL: "loaded"}
    good = store.require(MODEL)
    signature = good.champion.pyfunc.metadata.signature
    broken = _register(ws, good.champion.estimator, signature, broken=True)

    clock = [1000.0]
    monkeypatch.setattr(models_module.time, "monotonic", lambda: clock[0])
    loads: list[float] = []
    real_load = store._load

    def counted(*args: Any) -> Any:
        loads.append(clock[0])
        return real_load(*args)

    monkeypatch.setattr(store, "_load", counted)

    def poll_at(t: float) -> str:
        clock[0] = t
        return store.refresh(retry_failed=False)[MODEL]

    # tried at 1000, then after 10, 20, 35 (the cap) and 35 seconds
    for t in (1000, 1005, 1009.9, 1010, 1029, 1030, 1064, 1065, 1099, 1100):
        assert poll_at(t) == "failed"
    assert loads == [1000, 1010, 1030, 1065, 1100]
    assert store.require(MODEL).version == good.version  # the old version serves throughout
    error = store.status()[MODEL]["load_error"]
    assert (error["version"], error["message"], error["attempts"]) == (broken, BROKEN, 5)
    assert error["retry_at"] is not None

    # an operator's refresh tries at once, whatever the poller's wait
    clock[0] = 1101
    assert store.refresh() == {MODEL: "failed"}
    assert loads[-1] == 1101 and store.status()[MODEL]["load_error"]["attempts"] == 6

    # the alias moves back: the failure is forgotten, and a new broken version starts afresh
    mlflow.MlflowClient(uri, uri).set_registered_model_alias(
        registered_name(MODEL), "champion", good.version
    )
    assert poll_at(1102) == "unchanged" and store.status()[MODEL]["load_error"] is None
    again = _register(ws, good.champion.estimator, signature, broken=True)
    assert poll_at(1103) == "failed" and loads[-1] == 1103
    assert store.status()[MODEL]["load_error"]["version"] == again
    assert store.status()[MODEL]["load_error"]["attempts"] == 1
    assert poll_at(1112) == "failed" and loads[-1] == 1103
