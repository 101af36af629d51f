"""The pages inside the real app: keys, lists and audit of the API's own service.

(The pages themselves are tested over hand-made frames in test_pages.py and in Chromium in
tests/browser/; here they run on the tiny workspace with its four champions.)
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from amplify_ml.serving.app import create_app
from amplify_ml.serving.audit import read_audit
from amplify_ml.serving.keys import MAX_REFUSALS
from tests.unit.serving.conftest import Keys, api_settings, key_id
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")


def _login(api_workspace: ApiWorkspace, key: str) -> TestClient:
    client = TestClient(create_app(api_settings(api_workspace)), follow_redirects=False)
    client.__enter__()
    r = client.post("/pages/login", data={"key": key})
    assert r.status_code == 303, r.text
    assert "amplify_key" in r.cookies
    return client


def test_a_partner_sees_its_own_leads_and_nobody_elses(
    api_workspace: ApiWorkspace, api_keys: Keys
) -> None:
    p1, p2 = api_workspace.partners[:2]
    accounts = api_workspace.lake.read("accounts")
    own = set(accounts.loc[accounts.partner_id == p1, "account_id"])
    theirs = set(accounts.loc[accounts.partner_id == p2, "account_id"]) - own
    client = _login(api_workspace, api_keys.p1)
    try:
        page = client.get("/pages/leads")
        assert page.status_code == 200
        shown = {a for a in own if a in page.text}
        assert shown, "the lead page shows none of the partner's accounts"
        assert not [a for a in theirs if a in page.text]
        csv = client.get("/pages/leads.csv")
        assert csv.status_code == 200
        rows = pd.read_csv(io.StringIO(csv.text))
        assert len(rows) > 0 and set(rows["account_id"]) <= own
        other = client.get(f"/pages/leads?partner={p2}")
        assert other.status_code == 404
        assert not [a for a in theirs if a in other.text]
    finally:
        client.__exit__(None, None, None)
    pages = [
        e for e in read_audit(api_workspace.path) if str(e.get("route", "")).startswith("/pages")
    ]
    mine = [e for e in pages if e.get("key_id") == key_id(api_keys.p1)]
    assert {(e["route"], e["status"]) for e in mine} >= {
        ("/pages/login", 303),
        ("/pages/leads", 200),
        ("/pages/leads.csv", 200),
        ("/pages/leads", 404),
    }
    assert {e["partner"] for e in mine if e["status"] == 404} == {p2}


def test_operations_sees_the_fleet_riskiest_first(
    api_workspace: ApiWorkspace, api_keys: Keys
) -> None:
    client = _login(api_workspace, api_keys.ops)
    try:
        csv = client.get("/pages/fleet.csv")
        assert csv.status_code == 200
        rows = pd.read_csv(io.StringIO(csv.text))
        assert len(rows) > 1 and rows["probability"].is_monotonic_decreasing
        # riskiest first: the top row holds the highest probability of the score table (the
        # calibrated probabilities have ties, so the device itself may be any of the tied)
        risk = api_workspace.risk
        top = risk.loc[risk["device_id"] == rows.iloc[0]["device_id"], "probability"]
        assert float(top.iloc[0]) == pytest.approx(float(risk["probability"].max()))
        assert rows.iloc[0]["probability"] == pytest.approx(float(risk["probability"].max()))
        assert client.get("/pages/fleet").status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_a_wrong_key_does_not_log_in(api_workspace: ApiWorkspace, api_keys: Keys) -> None:
    with TestClient(create_app(api_settings(api_workspace)), follow_redirects=False) as c:
        r = c.post("/pages/login", data={"key": api_keys.revoked})
        assert r.status_code == 401 and "amplify_key" not in r.cookies
        assert "not valid" in r.text
        assert c.get("/pages/leads").status_code == 303


def test_repeated_wrong_keys_at_the_login_are_held_off(
    api_workspace: ApiWorkspace, api_keys: Keys
) -> None:
    with TestClient(create_app(api_settings(api_workspace)), follow_redirects=False) as c:
        kid, secret = api_keys.p2.split(".", 1)
        wrong = f"{kid}.{'C' * len(secret)}"
        for _ in range(MAX_REFUSALS):
            assert c.post("/pages/login", data={"key": wrong}).status_code == 401
        r = c.post("/pages/login", data={"key": wrong})
        assert r.status_code == 429 and "amplify_key" not in r.cookies
        assert int(r.headers["retry-after"]) in range(1, 61)
        assert f"too many refused attempts with key id {kid}" in r.text
        # a cookie carrying a guess gets the error page, not the lists
        c.cookies.set("amplify_key", wrong)
        page = c.get("/pages/leads")
        assert page.status_code == 429 and "Too many attempts" in page.text
    # audited like any refused login (the key id typed, never the secret): written at exit
    logins = [
        e["status"]
        for e in read_audit(api_workspace.path)
        if e.get("route") == "/pages/login" and e.get("key_id") == kid
    ]
    assert logins[-(MAX_REFUSALS + 1) :] == [401] * MAX_REFUSALS + [429]
