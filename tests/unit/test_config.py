"""Settings: typed, prefixed, read once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from amplify_ml.config import Settings, get_settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AMPLIFY_WORKSPACE", "AMPLIFY_K_ANONYMITY", "AMPLIFY_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    s = Settings()
    assert s.workspace == Path(".amplify")
    assert s.k_anonymity == 5
    assert s.engine == "duckdb"
    assert s.tracking_uri == f"sqlite:///{Path('.amplify/mlflow.db').resolve()}"


def test_environment_with_prefix_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMPLIFY_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("AMPLIFY_K_ANONYMITY", "7")
    monkeypatch.setenv("AMPLIFY_MLFLOW_TRACKING_URI", "sqlite:////tmp/x.db")
    s = Settings()
    assert (s.workspace, s.k_anonymity, s.tracking_uri) == (tmp_path, 7, "sqlite:////tmp/x.db")


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPLIFY_ENGINE", "pandas")
    with pytest.raises(ValidationError, match=r"engine\n  Input should be 'duckdb' or 'spark'"):
        Settings()


def test_get_settings_is_cached() -> None:
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()
