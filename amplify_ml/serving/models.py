"""The champions the API serves: loaded at start, swapped without a restart, never half-loaded.

:class:`ChampionStore` loads the version behind ``amplify.<model>@champion`` of every model
through an MLflow client of its own (the process-wide tracking URI is not touched). It looks
at the registry again every ``poll_seconds`` in a background thread (and on
:meth:`ChampionStore.refresh`): when the alias points elsewhere it loads the new version
aside and, once it is complete, swaps it in with one assignment, so a request sees either
the old model or the new one. A version that fails to load is logged, counted and reported
(``/ready``, ``/v1/models``) and never replaces the one serving. The poller tries a version
that failed again after ``poll_seconds``, then twice as long after each failure, up to
``max_retry_seconds`` (a registry whose artifacts are remote is not asked for a broken
artifact at every poll); :meth:`ChampionStore.refresh` called by an operator
(``POST /v1/models/refresh``) tries at once.

Online scoring skips pandas: :class:`FeatureEncoder` turns JSON rows into the float matrix
the estimators take on their fast path (feature order cached, categories as codes), checking
each value against the model's signature with messages that name the row and the feature.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from amplify_ml.errors import InvalidRequestError, ModelError
from amplify_ml.features.spec import MODELS
from amplify_ml.serving.metrics import Metrics

log = logging.getLogger(__name__)

Kind = Literal["number", "integer", "boolean", "category"]
_KINDS: dict[str, Kind] = {
    "double": "number",
    "float": "number",
    "long": "integer",
    "integer": "integer",
    "boolean": "boolean",
    "string": "category",
}
_EXPECTED = {
    "number": "a number or null",
    "integer": "a whole number or null",
    "boolean": "true, false or null",
    "category": "a string or null",
}
MAX_ERRORS = 5
_BIG = 1e300  # a JSON number past this (or inf, NaN, a 400-digit integer) is refused


def train_hint(model: str) -> str:
    return f"train it (amplify train {model})"


@dataclass(frozen=True)
class Feature:
    """One input of a model: its name, the JSON it takes, whether the signature requires it."""

    name: str
    kind: Kind
    required: bool
    codes: Mapping[str, int] | None = None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "required": self.required}
        if self.codes is not None:
            out["categories"] = list(self.codes)
        return out


class FeatureEncoder:
    """JSON rows -> the estimator's float matrix (columns in ``feature_names_in_`` order)."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = list(features)
        self.index = {f.name: i for i, f in enumerate(self.features)}
        self.required = frozenset(f.name for f in self.features if f.required)

    @classmethod
    def of(cls, estimator: Any, schema: Any | None) -> FeatureEncoder:
        """From a fitted amplify estimator and its MLflow input schema (None: from the
        estimator alone, nothing required)."""
        cats: Mapping[str, Any] = getattr(estimator, "categories_", {})
        specs = {}
        if schema is not None:
            for col in schema.inputs:
                kind = _KINDS.get(getattr(col.type, "name", str(col.type)), "number")
                specs[col.name] = (kind, bool(col.required))
        feats = []
        for name in estimator.feature_names_in_:
            kind, required = specs.get(name, ("category" if name in cats else "number", False))
            codes = None
            if name in cats:
                kind = "category"
                codes = {str(v): i for i, v in enumerate(cats[name])}
            elif kind == "category":  # a string column the estimator reads as a number
                kind = "number"
            feats.append(Feature(name, kind, required, codes))
        return cls(feats)

    def encode(self, rows: Sequence[Mapping[str, Any]], *, model: str) -> np.ndarray:
        """The matrix of ``rows``; :class:`InvalidRequestError` naming each bad row and
        feature (up to :data:`MAX_ERRORS`). ``model`` names the model in messages."""
        n, index, feats = len(rows), self.index, self.features
        M = np.full((n, len(feats)), np.nan)
        errors: list[str] = []
        for i, row in enumerate(rows):
            missing = self.required - row.keys()
            if missing:
                names = sorted(missing)
                more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
                errors.append(f"body.rows[{i}]: missing feature(s) {', '.join(names[:3])}{more}")
            out = M[i]
            for name, value in row.items():
                j = index.get(name)
                if j is None:
                    errors.append(
                        f"body.rows[{i}].{name[:64]}: not a feature of {model} (its features: "
                        f"GET /v1/models/{model})"
                    )
                    continue
                if value is None:
                    continue
                f = feats[j]
                kind, tv = f.kind, type(value)
                if kind == "number":
                    if (tv is float or tv is int) and -_BIG < value < _BIG:  # NaN fails too
                        out[j] = value
                        continue
                elif kind == "integer":
                    if (tv is int and -_BIG < value < _BIG) or (
                        tv is float and -_BIG < value < _BIG and value.is_integer()
                    ):
                        out[j] = value
                        continue
                elif kind == "boolean":
                    if tv is bool:
                        out[j] = 1.0 if value else 0.0
                        continue
                elif tv is str:
                    code = f.codes.get(value) if f.codes is not None else None
                    if code is not None:  # an unseen category is missing, as in batch scoring
                        out[j] = code
                    continue
                errors.append(
                    f"body.rows[{i}].{name}: expected {_EXPECTED[kind]}, got {_json_type(value)}"
                )
            if len(errors) >= MAX_ERRORS:
                break
        if errors:
            raise InvalidRequestError("; ".join(errors[:MAX_ERRORS]))
        return M


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number" if -_BIG < value < _BIG else "a number out of range"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True)
class LoadedModel:
    """A champion ready to answer: the estimator, its encoder, where it came from."""

    model: str
    version: str
    run_id: str
    task: str
    champion: Any
    encoder: FeatureEncoder
    outputs: tuple[str, ...]
    loaded_at: str

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One prediction per row: ``probability``, or the day quantiles and
        ``beyond_window``."""
        M = self.encoder.encode(rows, model=self.model)
        est = self.champion.estimator
        if self.task == "binary":
            p = est.predict_proba_matrix(M)
            return [{"probability": float(v)} for v in p]
        q = est.predict_matrix(M)
        beyond = est.beyond_window(q)
        cols = est.quantile_columns
        return [
            {**{c: float(v) for c, v in zip(cols, row, strict=True)}, "beyond_window": bool(b)}
            for row, b in zip(q, beyond, strict=True)
        ]


@dataclass(frozen=True)
class LoadFailure:
    """A champion version that could not be loaded."""

    version: str
    error: str
    at: str
    attempts: int = 1
    """Failed loads of this version in a row."""
    retry_at: str | None = None
    """When the poller tries this version again (None: it does not poll)."""
    retry_after: float = 0.0
    """``time.monotonic()`` before which the poller does not try it again."""


@dataclass
class ModelState:
    """What the store knows of one model (for /ready and /v1/models)."""

    champion_version: str | None = None
    """The version behind the alias at the last look (None: no champion)."""
    failure: LoadFailure | None = None
    """The last failed load of the current champion version (None once it loads)."""
    looked_at: str | None = None
    registry_error: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ChampionStore:
    """The champions of ``models`` in the registry at ``tracking_uri`` (module docstring)."""

    tracking_uri: str
    models: Sequence[str] = MODELS
    poll_seconds: float = 30.0
    max_retry_seconds: float = 3600.0
    metrics: Metrics | None = None
    _loaded: dict[str, LoadedModel] = field(default_factory=dict)
    _states: dict[str, ModelState] = field(default_factory=dict)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._states = {m: ModelState() for m in self.models}

    # -- reading -------------------------------------------------------------------------------
    def get(self, model: str) -> LoadedModel | None:
        """The model serving now, or None."""
        return self._loaded.get(model)

    def require(self, model: str) -> LoadedModel:
        """The model serving now; :class:`ModelError` (503) saying what to do when none."""
        loaded = self._loaded.get(model)
        if loaded is None:
            raise ModelError(f"model {model} is not available: {self.problem(model)}")
        return loaded

    def problem(self, model: str) -> str:
        """Why ``model`` is not serving (or has a newer version that did not load)."""
        st = self._states[model]
        if st.failure is not None:
            return (
                f"its champion (version {st.failure.version}) failed to load: "
                f"{st.failure.error}; fix the artifact or {train_hint(model)}"
            )
        if st.registry_error is not None:
            return f"the model registry cannot be read: {st.registry_error}"
        return f"no champion in the registry; {train_hint(model)}"

    def status(self) -> dict[str, dict[str, Any]]:
        """Per model: version serving, the champion's version, the last load error."""
        out = {}
        for m in self.models:
            st, loaded = self._states[m], self._loaded.get(m)
            out[m] = {
                "serving_version": loaded.version if loaded else None,
                "loaded_at": loaded.loaded_at if loaded else None,
                "champion_version": st.champion_version,
                "load_error": (
                    {
                        "version": st.failure.version,
                        "message": st.failure.error,
                        "at": st.failure.at,
                        "attempts": st.failure.attempts,
                        "retry_at": st.failure.retry_at,
                    }
                    if st.failure
                    else None
                ),
                "problem": None if loaded and st.failure is None else self.problem(m),
            }
        return out

    # -- loading -------------------------------------------------------------------------------
    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def refresh(self, *, retry_failed: bool = True) -> dict[str, str]:
        """Look at the registry now and load every champion that changed: per model,
        ``unchanged``, ``loaded``, ``failed``, ``no champion`` or ``registry error``.
        ``retry_failed=False`` (the poller) leaves a version that failed to load alone until
        its retry time; ``failed`` is then answered without loading it."""
        with self._refresh_lock:
            return {m: self._refresh_one(m, retry_failed) for m in self.models}

    def _retry_delay(self, attempts: int) -> float:
        """Seconds the poller waits before loading a version again after ``attempts`` failed
        loads: ``poll_seconds``, doubled after each failure, at most ``max_retry_seconds``."""
        return min(self.max_retry_seconds, self.poll_seconds * 2.0 ** min(attempts - 1, 60))

    def _refresh_one(self, model: str, retry_failed: bool = True) -> str:
        from mlflow.exceptions import MlflowException

        from amplify_ml.modeling.registry import CHAMPION, registered_name

        st = self._states[model]
        st.looked_at = _now()
        client = self.client()
        try:
            try:
                mv = client.get_model_version_by_alias(registered_name(model), CHAMPION)
            except MlflowException as exc:
                # no such registered model, or it has no alias champion (MLflow's two codes)
                absent = exc.error_code == "RESOURCE_DOES_NOT_EXIST" or (
                    exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc)
                )
                if not absent:
                    raise
                mv = None
        except Exception as exc:  # a registry that cannot be read must not stop serving
            st.registry_error = f"{type(exc).__name__}; see the server log"
            log.error("model registry at %s cannot be read: %s", self.tracking_uri, exc)
            return "registry error"
        st.registry_error = None
        if mv is None:
            st.champion_version = None  # the model serving (if any) keeps serving
            return "no champion"
        version = str(mv.version)
        st.champion_version = version
        current = self._loaded.get(model)
        if current is not None and current.version == version:
            st.failure = None
            return "unchanged"
        failed = st.failure if st.failure is not None and st.failure.version == version else None
        if failed is not None and not retry_failed and time.monotonic() < failed.retry_after:
            return "failed"
        try:
            loaded = self._load(client, model, mv)
        except Exception as exc:
            # the API says what kind of failure; the log says where (paths stay server-side)
            message = f"{type(exc).__name__} while loading the artifact; see the server log"
            attempts = failed.attempts + 1 if failed is not None else 1
            if failed is None:
                log.error(
                    "champion %s version %s failed to load (%s: %s); still serving %s",
                    model,
                    version,
                    type(exc).__name__,
                    exc,
                    f"version {current.version}" if current else "nothing",
                )
                if self.metrics is not None:
                    self.metrics.load_failures.labels(model).inc()
            else:
                log.warning(
                    "champion %s version %s failed to load again (%d attempts): %s",
                    model,
                    version,
                    attempts,
                    exc,
                )
            delay = self._retry_delay(attempts)
            polls = self.poll_seconds > 0
            st.failure = LoadFailure(
                version,
                message,
                _now(),
                attempts,
                (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="seconds")
                if polls
                else None,
                time.monotonic() + delay,
            )
            return "failed"
        self._loaded = {**self._loaded, model: loaded}  # one assignment: the swap
        st.failure = None
        if self.metrics is not None:
            self.metrics.model_version.labels(model).set(float(version))
        log.info("serving %s version %s", model, version)
        return "loaded"

    def _load(self, client: Any, model: str, mv: Any) -> LoadedModel:
        import warnings

        import mlflow

        from amplify_ml.modeling.registry import registered_name
        from amplify_ml.scoring.score import champion_of_run

        uri = client.get_model_version_download_uri(registered_name(model), mv.version)
        # a remote artifact is copied for the load and removed after it: the pyfunc is in memory
        # then, and a server reloading champions for months must not fill the disk with copies
        with contextlib.ExitStack() as stack:
            if not str(uri).startswith("file:"):
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="amplify-model-"))
                uri = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pyfunc = mlflow.pyfunc.load_model(uri)
        ch = champion_of_run(model, str(mv.version), pyfunc, client.get_run(mv.run_id))
        est = ch.estimator
        schema = pyfunc.metadata.get_input_schema()
        encoder = FeatureEncoder.of(est, schema)
        if ch.task == "binary":
            if not hasattr(est, "predict_proba_matrix"):
                raise ModelError(f"{type(est).__name__} has no predict_proba_matrix")
            outputs: tuple[str, ...] = ("probability",)
        else:
            if not hasattr(est, "predict_matrix"):
                raise ModelError(f"{type(est).__name__} has no predict_matrix")
            outputs = (*est.quantile_columns, "beyond_window")
        loaded = LoadedModel(
            model, str(mv.version), ch.run_id, ch.task, ch, encoder, outputs, _now()
        )
        # a model that cannot score a row of missing values is not ready to serve
        probe = np.full((1, len(encoder.features)), np.nan)
        if ch.task == "binary":
            est.predict_proba_matrix(probe)
        else:
            est.predict_matrix(probe)
        return loaded

    # -- polling -------------------------------------------------------------------------------
    def start(self) -> None:
        """Poll the registry every ``poll_seconds`` in a daemon thread (0: never)."""
        if self.poll_seconds > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="amplify-models", daemon=True)
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh(retry_failed=False)
            except Exception:  # pragma: no cover - refresh catches its own
                log.exception("refreshing the champions failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
