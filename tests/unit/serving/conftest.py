"""Fixtures of the API tests: keys in the shared tiny workspace and a client with the app
started (its lifespan runs once for the session; the registry poll is off)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from amplify_ml.config import Settings
from amplify_ml.serving.app import create_app
from amplify_ml.serving.keys import KeyStore
from tests.workspaces import ApiWorkspace


@dataclass(frozen=True)
class Keys:
    """Keys of the shared workspace: two partners, operations, a revoked one."""

    p1: str
    p2: str
    ops: str
    revoked: str

    @staticmethod
    def header(key: str) -> dict[str, str]:
        return {"X-API-Key": key}


def key_id(key: str) -> str:
    return key.split(".", 1)[0]


@pytest.fixture(scope="session")
def api_keys(api_workspace: ApiWorkspace) -> Keys:
    store = KeyStore.in_workspace(api_workspace.path)
    p1, p2 = api_workspace.partners[:2]
    _, k1 = store.create(partner=p1, label="tests: first partner")
    _, k2 = store.create(partner=p2, label="tests: second partner")
    _, ops = store.create(role="operations", label="tests: operations")
    gone, revoked = store.create(partner=p1, label="tests: revoked")
    store.revoke(gone.key_id)
    return Keys(k1, k2, ops, revoked)


def api_settings(api_workspace: ApiWorkspace, **overrides: object) -> Settings:
    return Settings(workspace=api_workspace.path, model_poll_seconds=0, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def api_client(api_workspace: ApiWorkspace, api_keys: Keys) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(api_workspace))) as client:
        yield client
