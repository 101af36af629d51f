"""A workspace without a lake, models or scores: 503s that say which command fixes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from amplify_ml.config import Settings
from amplify_ml.features.spec import MODELS
from amplify_ml.serving.app import create_app
from amplify_ml.serving.keys import KeyStore
from tests.workspaces import ApiWorkspace

LAKE = "the lake is not available: there is no lake in the workspace; ingest the packs (amplify ingest PACK_DIR)"


def _client(ws: Path) -> Iterator[tuple[TestClient, str, str]]:
    store = KeyStore.in_workspace(ws)
    _, key = store.create(partner="P001")
    _, ops = store.create(role="operations")
    with TestClient(create_app(Settings(workspace=ws, model_poll_seconds=0))) as client:
        yield client, key, ops


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, str]]:
    yield from _client(tmp_path_factory.mktemp("empty-ws"))


@pytest.fixture(scope="module")
def lake_only(
    api_workspace: ApiWorkspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, str, str]]:
    ws = tmp_path_factory.mktemp("lake-only-ws")
    shutil.copytree(api_workspace.path / "lake", ws / "lake")
    yield from _client(ws)


def test_ready_lists_everything_missing(empty: tuple[TestClient, str, str]) -> None:
    client, _, _ = empty
    r = client.get("/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False and body["lake"] == "missing"
    assert body["missing"] == [
        "lake: no lake in the workspace; ingest the packs (amplify ingest PACK_DIR)",
        *(f"{m}: no champion in the registry; train it (amplify train {m})" for m in MODELS),
    ]
    assert body["scores"] == dict.fromkeys(MODELS)
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "who", "detail"),
    [
        ("GET", "/v1/devices/D-1/risk", None, "key", LAKE),
        ("GET", "/v1/leads?partner=P001", None, "ops", LAKE),
        ("GET", "/v1/benchmarks", None, "key", LAKE),
        (
            "GET",
            "/v1/devices/D-1/risk",
            None,
            "ops",
            "scores of device_failure are not available: train it (amplify train device_failure), "
            "then score it (amplify score device_failure)",
        ),
        (
            "GET",
            "/v1/supplies",
            None,
            "ops",
            "scores of consumable_depletion are not available: train it (amplify train "
            "consumable_depletion), then score it (amplify score consumable_depletion)",
        ),
        (
            "POST",
            "/v1/models/device_failure/score",
            {"rows": [{"x": 1}]},
            "key",
            "model device_failure is not available: no champion in the registry; train it "
            "(amplify train device_failure)",
        ),
    ],
)
def test_routes_answer_503_naming_the_command(
    empty: tuple[TestClient, str, str],
    method: str,
    url: str,
    body: dict | None,
    who: str,
    detail: str,
) -> None:
    client, key, ops = empty
    r = client.request(method, url, json=body, headers={"X-API-Key": key if who == "key" else ops})
    assert (r.status_code, r.json()["detail"]) == (503, detail)


def test_models_list_is_empty_but_says_what_to_do(empty: tuple[TestClient, str, str]) -> None:
    client, key, _ = empty
    r = client.get("/v1/models", headers={"X-API-Key": key})
    assert r.status_code == 200
    for m in r.json()["models"]:
        assert m["versions"] == [] and m["serving_version"] is None
        assert m["problem"] == f"no champion in the registry; train it (amplify train {m['model']})"


@pytest.mark.xdist_group("api")
def test_a_lake_without_models_asks_to_train_then_score(
    lake_only: tuple[TestClient, str, str],
) -> None:
    client, key, _ = lake_only
    h = {"X-API-Key": key}
    leads = client.get("/v1/leads", headers=h)
    assert (leads.status_code, leads.json()["detail"]) == (
        503,
        "scores of propensity_to_buy and refresh_due are not available: train them (amplify "
        "train propensity_to_buy refresh_due), then score them (amplify score propensity_to_buy "
        "refresh_due)",
    )
    fleet = client.get("/v1/fleet", headers=h)
    assert (fleet.status_code, fleet.json()["detail"]) == (
        503,
        "scores of device_failure are not available: train it (amplify train device_failure), "
        "then score it (amplify score device_failure)",
    )
    bench = client.get("/v1/benchmarks", headers=h)
    assert bench.status_code == 200  # benchmarks need the lake only
    missing = client.get("/v1/benchmarks?partner=P999", headers={"X-API-Key": key})
    assert (missing.status_code, missing.json()["detail"]) == (
        404,
        "partner not found: no partner with this id is visible to your key",
    )
