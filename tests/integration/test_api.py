"""Pack -> lake -> features -> train -> MLflow -> scores -> API, on the tiny world.

The API answers what the library computes: online scoring of a partner's feature rows equals
the batch score table, lead lists equal :func:`amplify_ml.scoring.leads.leads`; and the real
server (``amplify serve``) starts, answers with a key and writes its audit log on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from amplify_ml.config import Settings
from amplify_ml.features import FeatureBuilder
from amplify_ml.features.spec import load_spec, spec_path
from amplify_ml.scoring.leads import leads
from amplify_ml.serving.app import create_app
from amplify_ml.serving.audit import read_audit
from amplify_ml.serving.keys import KeyStore
from amplify_ml.serving.schemas import MAX_SCORE_ROWS
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(api_workspace: ApiWorkspace) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = KeyStore.in_workspace(api_workspace.path)
    keys = {p: store.create(partner=p)[1] for p in api_workspace.partners}
    with TestClient(create_app(Settings(workspace=api_workspace.path, model_poll_seconds=0))) as c:
        yield c, keys


def _json_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    out = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in out]


@pytest.mark.parametrize("model", ["device_failure", "refresh_due"])
def test_online_scoring_of_a_partners_features_equals_the_batch_scores(
    served: tuple[TestClient, dict[str, str]], api_workspace: ApiWorkspace, model: str
) -> None:
    client, keys = served
    partner = api_workspace.partners[0]
    h = {"X-API-Key": keys[partner]}
    loaded = client.app.state.service.champions.get(model)
    batch = client.app.state.service.score_table(model).frame
    day = pd.Timestamp(batch["as_of"].iloc[0]).date()
    # the features as batch scoring builds them (over the whole pool), the partner's rows sent
    with warnings.catch_warnings(), FeatureBuilder(api_workspace.lake) as fb:
        warnings.simplefilter("ignore")
        spec = load_spec(model, path=spec_path(model, loaded.champion.feature_set_version))
        frame, meta = fb.feature_frame(model, as_of=day, spec=spec)
    frame = frame[frame["partner_id"] == partner].reset_index(drop=True)
    assert len(frame) > 0
    got = []
    for i in range(0, len(frame), MAX_SCORE_ROWS):
        rows = _json_rows(frame[meta.features].iloc[i : i + MAX_SCORE_ROWS])
        r = client.post(f"/v1/models/{model}/score", json={"rows": rows}, headers=h)
        assert r.status_code == 200, r.text
        got += [p["probability"] for p in r.json()["predictions"]]
    keys_ = list(meta.keys)
    online = frame[keys_].assign(online=got)
    by = loaded.champion.combine_by
    if by:  # a row per component online; the batch table combines them per device
        from amplify_ml.modeling.units import to_units

        units, p, _ = to_units(frame, by, np.asarray(got, dtype=float))
        parts = online
        online, keys_ = units[by].assign(online=p), by
        each = batch.set_index(by)["component_probabilities"].map(json.loads)
        for r in parts.head(50).itertuples(index=False):
            own = each.loc[tuple(getattr(r, k) for k in by)][r.component]
            assert own == pytest.approx(r.online, abs=1e-6)
    both = online.merge(batch, on=keys_, how="inner")
    assert len(both) == len(online) == (batch["partner_id"] == partner).sum()
    assert np.allclose(both["online"], both["probability"], rtol=0, atol=1e-12)
    if model == "device_failure":  # and the risk route serves the same numbers
        device = both.iloc[0]
        risk = client.get(f"/v1/devices/{device['device_id']}/risk", headers=h).json()
        assert risk["probability"] == pytest.approx(device["online"], abs=1e-12)


def test_each_partners_lead_list_is_the_librarys(
    served: tuple[TestClient, dict[str, str]], api_workspace: ApiWorkspace
) -> None:
    client, keys = served
    for partner in api_workspace.partners[1:3]:
        r = client.get("/v1/leads?limit=40", headers={"X-API-Key": keys[partner]})
        assert r.status_code == 200
        api = r.json()["leads"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib = leads(partner, api_workspace.lake, workspace=api_workspace.path, top=40)
        assert [(x["account_id"], x["offer"], x["category"]) for x in api] == list(
            zip(lib["account_id"], lib["offer"], lib["category"], strict=True)
        )
        assert np.allclose([x["expected_value"] for x in api], lib["expected_value"])
        assert [x["reasons"][0] for x in api] == lib["reason_1"].tolist()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_amplify_serve_answers_and_keeps_its_audit_log_on_ctrl_c(
    api_workspace: ApiWorkspace,
) -> None:
    rec, key = KeyStore.in_workspace(api_workspace.path).create(
        partner=api_workspace.partners[0], label="serve test"
    )
    port = _free_port()
    amplify = str(Path(sys.executable).with_name("amplify"))
    env = {**os.environ, "AMPLIFY_AUDIT_FLUSH_SECONDS": "3600", "AMPLIFY_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [amplify, "serve", "--port", str(port), "-w", str(api_workspace.path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.5)
        device = api_workspace.device_of(api_workspace.partners[0])
        r = httpx.get(f"{base}/v1/devices/{device}/risk", headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["device_id"] == device
        assert httpx.get(f"{base}/v1/devices/{device}/risk").status_code == 401
        docs = httpx.get(f"{base}/openapi.json").json()
        assert "/v1/devices/{device_id}/risk" in docs["paths"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    entries = [e for e in read_audit(api_workspace.path) if e["key_id"] == rec.key_id]
    assert [e["status"] for e in entries] == [200]  # buffered, written at shutdown
    assert entries[0]["route"] == "/v1/devices/{device_id}/risk"
