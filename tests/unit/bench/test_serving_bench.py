"""The serving benchmark's request body: one real feature row of the online model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from amplify_ml.bench.serving import ONLINE_MODEL, _one_row
from amplify_ml.scoring.score import champion
from tests.workspaces import ApiWorkspace

pytestmark = pytest.mark.xdist_group("api")  # the shared tiny workspace, built once


def test_the_row_is_the_champions_input_example_and_its_copy_is_removed(
    api_workspace: ApiWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    row = _one_row(api_workspace.path)
    schema = champion(ONLINE_MODEL, api_workspace.path).pyfunc.metadata.get_input_schema()
    assert list(row) == schema.input_names()
    assert any(v is not None for v in row.values())
    assert list(scratch.iterdir()) == []
