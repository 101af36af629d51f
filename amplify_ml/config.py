"""Settings, read once from the environment (prefix ``AMPLIFY_``) through :func:`get_settings`.

Library functions take explicit arguments and never read the environment themselves; the
CLI and the API read settings here and pass values down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Typed settings for the CLI and the API. Every field maps to ``AMPLIFY_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="AMPLIFY_", extra="ignore")

    workspace: Path = Field(
        default=Path(".amplify"),
        description="Folder for generated output: lake, quarantine, MLflow store, scores.",
    )
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb", description="Engine for feature builders."
    )
    duckdb_memory_limit: str = Field(
        default="6GB", description="DuckDB memory cap; past it DuckDB spills to disk."
    )
    duckdb_threads: int = Field(default=0, ge=0, description="DuckDB threads; 0 = all cores.")
    k_anonymity: int = Field(
        default=5, ge=1, description="Minimum partners an aggregate must cover to be released."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; default sqlite:///<workspace>/mlflow.db.",
    )
    host: str = Field(default="127.0.0.1", description="API bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="API port.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    model_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        description="API: seconds between looks at the registry for a new champion; 0 = never "
        "(POST /v1/models/refresh still works).",
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1_024, description="API: largest request body; bigger answers 413."
    )
    audit_flush_seconds: float = Field(
        default=1.0, gt=0, description="API: the audit log is written at least this often."
    )

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the explicit setting, else a SQLite store in the workspace."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.workspace / 'mlflow.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
