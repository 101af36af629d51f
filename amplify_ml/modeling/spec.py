"""Model specs: ``models/<name>/model.toml`` (task, feature set, horizon, cutoffs, estimator,
baselines, promotion gate). Logged with every training run.

A spec is read strictly: an unknown key, a wrong type or a missing section is a
:class:`~amplify_ml.errors.ConfigError` naming the file and the key, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from amplify_ml.errors import ConfigError, InvalidRequestError
from amplify_ml.features.spec import MODELS

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
TASKS = ("binary", "days_quantile")


@dataclass(frozen=True)
class CutoffPlan:
    """How many monthly cutoffs to train and evaluate on (the latest with complete labels),
    or explicit lists (``START:END`` ranges allowed)."""

    train: int | list[str] = 12
    evaluate: int | list[str] = 3


@dataclass(frozen=True)
class EstimatorSpec:
    """Arguments of the estimator class and LightGBM parameters."""

    options: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateSpec:
    """The promotion gate (see :func:`amplify_ml.modeling.registry.gate_decision`)."""

    metric: str
    higher_is_better: bool = True
    tolerance: float = 0.0
    max_ece: float | None = None
    min_positives: int = 0
    max_coverage_gap: float | None = None
    """Depletion: the P10-P90 coverage may miss 80% by at most this much."""


@dataclass(frozen=True)
class ModelSpec:
    """A model's spec, as read from its TOML file."""

    name: str
    task: str
    description: str
    feature_set_version: int | None
    horizon_days: int | None
    cutoffs: CutoffPlan
    estimator: EstimatorSpec
    baselines: tuple[str, ...]
    gate: GateSpec
    settings: dict[str, Any]
    """Task settings: ``alert_budgets`` (failure), ``lead_time_days``/``alphas`` (depletion),
    ``partner_min_rows``/``partner_min_positives`` (propensity), ``threshold_pct``."""
    path: Path
    sha256: str

    @property
    def folder(self) -> Path:
        return self.path.parent

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


_TOP = {
    "name",
    "task",
    "description",
    "feature_set_version",
    "horizon_days",
    "baselines",
    "cutoffs",
    "estimator",
    "gate",
    "settings",
}


def model_spec_path(model: str, models_dir: Path | None = None) -> Path:
    if model not in MODELS:
        raise InvalidRequestError(f"unknown model {model!r}: the models are {', '.join(MODELS)}")
    return (Path(models_dir) if models_dir else MODELS_DIR) / model / "model.toml"


def load_model_spec(
    model: str | None = None, *, path: str | Path | None = None, models_dir: Path | None = None
) -> ModelSpec:
    """The spec of ``model`` (from ``models/<model>/model.toml``) or the file at ``path``."""
    if path is None:
        if model is None:
            raise InvalidRequestError("give a model name or the path of a model.toml")
        path = model_spec_path(model, models_dir)
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no model spec at {p}: expected a model.toml (see models/README.md)")
    raw = p.read_bytes()
    try:
        doc = tomllib.loads(raw.decode())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None

    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{p}: {key}: {msg}")

    unknown = set(doc) - _TOP
    if unknown:
        raise fail(", ".join(sorted(unknown)), f"unknown key(s); known: {', '.join(sorted(_TOP))}")
    name = doc.get("name")
    if name not in MODELS:
        raise fail("name", f"must be one of {', '.join(MODELS)}, got {name!r}")
    if model is not None and name != model:
        raise fail("name", f"the spec is for {name}, not {model}")
    task = doc.get("task")
    if task not in TASKS:
        raise fail("task", f"must be one of {', '.join(TASKS)}, got {task!r}")
    horizon = doc.get("horizon_days")
    if horizon is not None and (not isinstance(horizon, int) or horizon < 1):
        raise fail("horizon_days", f"must be a positive integer, got {horizon!r}")
    fsv = doc.get("feature_set_version")
    if fsv is not None and (not isinstance(fsv, int) or fsv < 1):
        raise fail("feature_set_version", f"must be a positive integer, got {fsv!r}")

    c = doc.get("cutoffs", {})
    extra = set(c) - {"train", "evaluate"}
    if extra:
        raise fail("cutoffs", f"unknown key(s) {', '.join(sorted(extra))}; use train, evaluate")
    for k in ("train", "evaluate"):
        v = c.get(k)
        if v is None:
            continue
        if isinstance(v, bool) or not (
            (isinstance(v, int) and v >= 1)
            or (isinstance(v, list) and v and all(isinstance(x, str) for x in v))
        ):
            raise fail(f"cutoffs.{k}", "a number of monthly cutoffs (>= 1) or a list of dates")
    cutoffs = CutoffPlan(train=c.get("train", 12), evaluate=c.get("evaluate", 3))

    e = dict(doc.get("estimator", {}))
    params = e.pop("params", {})
    if not isinstance(params, dict):
        raise fail("estimator.params", "must be a table of LightGBM parameters")
    estimator = EstimatorSpec(options=e, params=params)

    baselines = doc.get("baselines", [])
    if not isinstance(baselines, list) or not all(isinstance(b, str) for b in baselines):
        raise fail("baselines", "must be a list of baseline names")
    from amplify_ml.modeling.baselines import BASELINES

    unknown_b = [b for b in baselines if b not in BASELINES.get(name, {})]
    if unknown_b:
        raise fail(
            "baselines",
            f"unknown for {name}: {', '.join(unknown_b)}; known: "
            + ", ".join(sorted(BASELINES.get(name, {}))),
        )

    g = doc.get("gate")
    if not isinstance(g, dict) or "metric" not in g:
        raise fail("gate", "a [gate] table with at least metric = ... is required")
    allowed = {f for f in GateSpec.__dataclass_fields__}
    extra = set(g) - allowed
    if extra:
        raise fail("gate", f"unknown key(s) {', '.join(sorted(extra))}")
    gate = GateSpec(**g)
    settings = doc.get("settings", {})
    if not isinstance(settings, dict):
        raise fail("settings", "must be a table")
    return ModelSpec(
        name=name,
        task=task,
        description=str(doc.get("description", "")),
        feature_set_version=fsv,
        horizon_days=horizon,
        cutoffs=cutoffs,
        estimator=estimator,
        baselines=tuple(baselines),
        gate=gate,
        settings=settings,
        path=p.resolve(),
        sha256=hashlib.sha256(raw).hexdigest(),
    )
