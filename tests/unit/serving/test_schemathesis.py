"""Schemathesis over the OpenAPI schema: generated requests (valid and not) with a partner key
and an operations key; no answer is a server error, every answer is documented and matches
its schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from amplify_ml.serving.app import create_app
from tests.unit.serving.conftest import Keys, api_settings
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The schema is loaded when the module is imported (Schemathesis' fixture-based loader does
# not run under pytest 9). The app reads its settings when it starts, and it is started by the
# fixture below, once for the module: Schemathesis would start and stop an app's lifespan
# around every operation (loading the four champions each time), so it gets the started app
# behind a wrapper that acknowledges lifespan messages and passes requests through.
APP = create_app()


async def _started_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await APP(scope, receive, send)


schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = _started_app
schema.config.generation.update(max_examples=12, deterministic=True, with_security_parameters=False)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])


@pytest.fixture(autouse=True, scope="module")
def _started(api_workspace: ApiWorkspace, api_keys: Keys) -> Iterator[None]:
    APP.state.settings = api_settings(api_workspace)
    with TestClient(APP):
        yield


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_server_errors_and_answers_match_the_schema(case: Any, api_keys: Keys) -> None:
    for key in (api_keys.p1, api_keys.ops):  # a partner's view, then the operations view
        r = case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)
        # answered by the started service: every model and score table is there, the key is
        # valid, so neither 503 nor 401 is a right answer here
        assert r.status_code not in (401, 503), r.text
