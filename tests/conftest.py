"""Shared fixtures: synthetic worlds generated once per test session, with fixed seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 11


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` group again under pytest 9.2.

    pytest-xdist 3.8 marks a grouped test by appending ``@<group>`` to ``item._nodeid``;
    pytest 9.2 derives ``nodeid`` from a structured ``item._id`` instead, so the mark is
    lost and every ``xdist_group`` is silently ignored (pytest-dev/pytest-xdist#1386): the
    small world and other session fixtures are built on both workers and the Spark tests
    run side by side. Carry xdist's id over to the structured one until xdist handles it.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest before 9.2: xdist's own mark works
        return
    for item in items:
        marked = item.__dict__.get("_nodeid")
        if isinstance(marked, str) and marked != item.nodeid:
            item._id = NodeId.parse(marked)  # type: ignore[attr-defined]


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
