"""The audit log of the API: one entry per request to partner data, refusals included, and
nothing lost when the server stops."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from amplify_ml.serving.app import create_app
from amplify_ml.serving.audit import FIELDS, read_audit
from amplify_ml.serving.keys import KeyStore
from tests.unit.serving.conftest import Keys, api_settings
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")


def test_one_entry_per_request_with_failures_recorded(
    api_client: TestClient, api_workspace: ApiWorkspace, api_keys: Keys
) -> None:
    p1, p2 = api_workspace.partners[:2]
    rec, key = KeyStore.in_workspace(api_workspace.path).create(partner=p1, label="audit test")
    h = {"X-API-Key": key}
    own, other = api_workspace.device_of(p1), api_workspace.device_of(p2)
    wrong = f"{rec.key_id}.{'A' * 43}"
    calls = [
        ("GET", f"/v1/devices/{own}/risk", h, None, 200),
        ("GET", f"/v1/devices/{other}/risk", h, None, 404),
        ("POST", "/v1/devices/risk", h, {"device_ids": [own, other]}, 200),
        ("GET", "/v1/leads?limit=0", h, None, 422),
        ("GET", f"/v1/fleet?partner={p2}", h, None, 404),
        ("GET", "/v1/supplies?limit=5", h, None, 200),
        ("GET", "/v1/models", {"X-API-Key": wrong}, None, 401),
    ]
    for method, url, headers, body, status in calls:
        assert api_client.request(method, url, headers=headers, json=body).status_code == status
    api_client.get("/health")  # open routes are not audited
    api_client.app.state.service.audit.flush()
    entries = [e for e in read_audit(api_workspace.path) if e["key_id"] == rec.key_id]
    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("GET", "/v1/devices/{device_id}/risk", 200),
        ("GET", "/v1/devices/{device_id}/risk", 404),
        ("POST", "/v1/devices/risk", 200),
        ("GET", "/v1/leads", 422),
        ("GET", "/v1/fleet", 404),
        ("GET", "/v1/supplies", 200),
        ("GET", "/v1/models", 401),
    ]
    for e in entries:
        assert tuple(e) == FIELDS
        assert datetime.fromisoformat(e["time"]).tzinfo is not None and e["ms"] > 0
    # the key's partner (the refused key is not known to be anyone's); what it asked for
    assert [e["partner"] for e in entries] == [p1] * 6 + [None]
    assert [e["role"] for e in entries] == ["partner"] * 6 + [None]
    assert entries[1]["path"] == f"/v1/devices/{other}/risk"
    assert entries[4]["path"] == f"/v1/fleet?partner={p2}"
    assert not any(e["path"] == "/health" for e in read_audit(api_workspace.path))


def test_operations_requests_record_the_partner_they_reached(
    api_client: TestClient, api_workspace: ApiWorkspace, api_keys: Keys
) -> None:
    p2 = api_workspace.partners[1]
    ops_id = api_keys.ops.split(".", 1)[0]
    api_client.get(
        f"/v1/devices/{api_workspace.device_of(p2)}/risk", headers={"X-API-Key": api_keys.ops}
    )
    api_client.get(f"/v1/benchmarks?partner={p2}", headers={"X-API-Key": api_keys.ops})
    api_client.app.state.service.audit.flush()
    last = [e for e in read_audit(api_workspace.path) if e["key_id"] == ops_id][-2:]
    assert [(e["route"], e["partner"], e["role"], e["status"]) for e in last] == [
        ("/v1/devices/{device_id}/risk", p2, "operations", 200),
        ("/v1/benchmarks", p2, "operations", 200),
    ]


def test_entries_still_buffered_are_written_at_shutdown(
    api_workspace: ApiWorkspace, api_keys: Keys
) -> None:
    rec, key = KeyStore.in_workspace(api_workspace.path).create(
        partner=api_workspace.partners[0], label="shutdown test"
    )
    app = create_app(api_settings(api_workspace, audit_flush_seconds=3600))
    with TestClient(app) as client:
        for _ in range(3):
            client.get("/v1/supplies?limit=1", headers={"X-API-Key": key})
        assert [e for e in read_audit(api_workspace.path) if e["key_id"] == rec.key_id] == []
    mine = [e for e in read_audit(api_workspace.path) if e["key_id"] == rec.key_id]
    assert [e["status"] for e in mine] == [200, 200, 200]
