"""Tenant isolation: a partner key never reaches another partner's data, on any route.

Asking for another partner's device, account or lists answers exactly as asking for one
that does not exist (same status, same body), and no answer to the first partner's key
holds an identifier of the second partner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.serving.conftest import Keys
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")

NOT_PARTNER_DATA = {
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model}"),
    ("POST", "/v1/models/refresh"),
    ("POST", "/v1/models/{model}/score"),
}
"""Routes that serve no partner's data (models and online scoring of the caller's rows)."""


@dataclass(frozen=True)
class Case:
    """A request for the other partner's resource, and the same for one that does not exist."""

    name: str
    method: str
    route: str
    other: str
    missing: str
    body: dict[str, Any] | None = None
    missing_body: dict[str, Any] | None = None


def _cases(ws: ApiWorkspace) -> list[Case]:
    p2 = ws.partners[1]
    d2, t2, a2 = ws.device_of(p2), ws.device_of(p2, "depletion"), ws.account_of(p2)
    return [
        Case(
            "risk",
            "GET",
            "/v1/devices/{device_id}/risk",
            f"/v1/devices/{d2}/risk",
            "/v1/devices/D-nope/risk",
        ),
        Case(
            "risk, partner named",
            "GET",
            "/v1/devices/{device_id}/risk",
            f"/v1/devices/{d2}/risk?partner={p2}",
            f"/v1/devices/{d2}/risk?partner=P999",
        ),
        Case(
            "supplies",
            "GET",
            "/v1/devices/{device_id}/supplies",
            f"/v1/devices/{t2}/supplies",
            "/v1/devices/D-nope/supplies",
        ),
        Case(
            "supplies, partner named",
            "GET",
            "/v1/devices/{device_id}/supplies",
            f"/v1/devices/{t2}/supplies?partner={p2}",
            "/v1/devices/D-nope/supplies?partner=P999",
        ),
        Case(
            "batch risk",
            "POST",
            "/v1/devices/risk",
            "/v1/devices/risk",
            "/v1/devices/risk",
            {"device_ids": [d2]},
            {"device_ids": ["D-nope"]},
        ),
        Case(
            "batch risk, partner named",
            "POST",
            "/v1/devices/risk",
            f"/v1/devices/risk?partner={p2}",
            "/v1/devices/risk?partner=P999",
            {"device_ids": [d2]},
            {"device_ids": [d2]},
        ),
        Case("leads", "GET", "/v1/leads", f"/v1/leads?partner={p2}", "/v1/leads?partner=P999"),
        Case(
            "leads as csv",
            "GET",
            "/v1/leads",
            f"/v1/leads?partner={p2}&format=csv",
            "/v1/leads?partner=P999&format=csv",
        ),
        Case(
            "account leads",
            "GET",
            "/v1/accounts/{account_id}/leads",
            f"/v1/accounts/{a2}/leads",
            "/v1/accounts/A-nope/leads",
        ),
        Case(
            "account leads, partner named",
            "GET",
            "/v1/accounts/{account_id}/leads",
            f"/v1/accounts/{a2}/leads?partner={p2}",
            f"/v1/accounts/{a2}/leads?partner=P999",
        ),
        Case("fleet", "GET", "/v1/fleet", f"/v1/fleet?partner={p2}", "/v1/fleet?partner=P999"),
        Case(
            "supply plan",
            "GET",
            "/v1/supplies",
            f"/v1/supplies?partner={p2}",
            "/v1/supplies?partner=P999",
        ),
        Case(
            "benchmarks",
            "GET",
            "/v1/benchmarks",
            f"/v1/benchmarks?partner={p2}",
            "/v1/benchmarks?partner=P999",
        ),
    ]


CASE_NAMES = [
    "risk",
    "risk, partner named",
    "supplies",
    "supplies, partner named",
    "batch risk",
    "batch risk, partner named",
    "leads",
    "leads as csv",
    "account leads",
    "account leads, partner named",
    "fleet",
    "supply plan",
    "benchmarks",
]


def _identifiers(ws: ApiWorkspace, partner: str) -> set[str]:
    """Every id of ``partner`` that an answer could leak: partner, accounts, devices."""
    lake = ws.lake
    ids = {partner}
    ids |= set(lake.read("accounts", [partner])["account_id"].astype(str))
    ids |= set(lake.read("install_base", [partner])["device_id"].astype(str))
    return ids


def _call(client: TestClient, method: str, url: str, key: str, body: Any) -> Any:
    return client.request(method, url, headers={"X-API-Key": key}, json=body)


def test_every_partner_data_route_has_an_isolation_case(
    api_client: TestClient, api_workspace: ApiWorkspace
) -> None:
    routes = {
        (method.upper(), path)
        for path, item in api_client.app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in item
    }
    covered = {(c.method, c.route) for c in _cases(api_workspace)}
    assert routes - NOT_PARTNER_DATA == covered
    assert [c.name for c in _cases(api_workspace)] == CASE_NAMES


@pytest.mark.parametrize("name", CASE_NAMES)
def test_another_partners_resource_answers_like_a_missing_one(
    api_client: TestClient, api_workspace: ApiWorkspace, api_keys: Keys, name: str
) -> None:
    case = next(c for c in _cases(api_workspace) if c.name == name)
    other = _call(api_client, case.method, case.other, api_keys.p1, case.body)
    missing = _call(api_client, case.method, case.missing, api_keys.p1, case.missing_body)
    if case.method == "POST" and "partner" not in case.other:
        # a batch lists the ids it cannot show, whoever they belong to
        assert other.status_code == missing.status_code == 200
        assert other.json() == {"risks": [], "not_found": case.body["device_ids"]}  # type: ignore[index]
        assert missing.json() == {"risks": [], "not_found": ["D-nope"]}
    else:
        assert other.status_code == 404, other.text
        assert (other.status_code, other.json()) == (missing.status_code, missing.json())
    leaked = _identifiers(api_workspace, api_workspace.partners[1])
    echoed = set(case.body["device_ids"]) if case.body else set()  # the caller's own input
    text = other.text
    for ident in leaked - echoed:
        assert ident not in text, f"{name}: the answer holds {ident}"
    # the owner and operations do reach it (so the 404 above is isolation, not absence)
    if case.method == "GET":
        mine = _call(api_client, "GET", case.other, api_keys.p2, None)
        assert mine.status_code == 200, mine.text
        p2 = api_workspace.partners[1]
        named = case.other if "partner=" in case.other else _with(case.other, f"partner={p2}")
        ops = _call(api_client, "GET", named, api_keys.ops, None)
        assert ops.status_code == 200, ops.text


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.mark.parametrize(
    "url",
    [
        "/v1/leads?limit=500",
        "/v1/leads?limit=500&format=csv",
        "/v1/fleet?limit=1000",
        "/v1/fleet?limit=1000&format=csv",
        "/v1/supplies?limit=1000",
        "/v1/supplies?limit=1000&format=csv",
        "/v1/benchmarks",
        "/v1/benchmarks?format=csv",
    ],
)
def test_a_partners_lists_hold_no_other_partners_identifiers(
    api_client: TestClient, api_workspace: ApiWorkspace, api_keys: Keys, url: str
) -> None:
    r = _call(api_client, "GET", url, api_keys.p1, None)
    assert r.status_code == 200
    if "csv" not in url:  # the list is about the caller's partner ...
        assert r.json()["partner_id"] == api_workspace.partners[0]
    for partner in api_workspace.partners[1:]:
        for ident in _identifiers(api_workspace, partner):
            assert ident not in r.text, f"{url} holds {ident} of {partner}"  # ... and no one else
