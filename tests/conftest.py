"""Shared fixtures: synthetic worlds generated once per test session, with fixed seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 11


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic world (clean), generated once per session."""
    from amplify_ml.datasets import generate

    out = tmp_path_factory.mktemp("tiny-world")
    generate("tiny", seed=TINY_SEED, out=out)
    return out


@pytest.fixture(scope="session")
def tiny_dirty_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic world with injected defects and expected_defects.json."""
    from amplify_ml.datasets import generate

    out = tmp_path_factory.mktemp("tiny-dirty-world")
    generate("tiny", seed=TINY_SEED, out=out, dirty=True)
    return out


@pytest.fixture(scope="session")
def api_workspace(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny world ingested, all four models trained and scored (tests/workspaces.py).

    Tests that use it are in the xdist group ``api`` so that one worker builds it once."""
    from tests.workspaces import build_api_workspace

    return build_api_workspace(tiny_world, tmp_path_factory.mktemp("api-ws"))
