"""MLflow: where runs go, the pyfunc that serves probabilities, the registry and the gate.

Tracking defaults to ``sqlite:///<workspace>/mlflow.db`` with artifacts under
``<workspace>/mlruns`` (MLflow 3 refuses a plain ``./mlruns`` file store); an explicit URI
(``MLFLOW_TRACKING_URI`` or the setting) overrides. Registered models are
``amplify.<model>``; the alias ``champion`` moves only through :func:`gate_decision`.

MLflow's own LightGBM flavour returns labels, not probabilities, so models are logged as
an :class:`AmplifyPyfunc` that returns a DataFrame: ``probability`` for binary models,
``p10_days``/``p50_days``/``p90_days``/``beyond_window`` for depletion.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from amplify_ml.errors import ModelError, NotFoundError

CHAMPION = "champion"
# the user's MLFLOW_TRACKING_URI, read before MLflow's set_tracking_uri (which exports the
# variable) could make one workspace's store look like the user's choice for the next
_ENV_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")
_REQUIREMENTS = ("lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow")


def registered_name(model: str) -> str:
    """The registry name of a model: ``amplify.<model>``."""
    return f"amplify.{model}"


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged pyfunc (the versions in this environment)."""
    return [f"{p}=={pkg_version(p)}" for p in _REQUIREMENTS]


def resolve_tracking_uri(workspace: str | Path, tracking_uri: str | None = None) -> str:
    """``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the setting
    ``AMPLIFY_MLFLOW_TRACKING_URI``, else the workspace's SQLite store (nothing is changed)."""
    from amplify_ml.config import get_settings

    return (
        tracking_uri
        or _ENV_TRACKING_URI
        or get_settings().mlflow_tracking_uri
        or f"sqlite:///{Path(workspace).resolve() / 'mlflow.db'}"
    )


def configure_tracking(workspace: str | Path, tracking_uri: str | None = None) -> str:
    """Point MLflow at :func:`resolve_tracking_uri` (process-wide); return the URI."""
    Path(workspace).resolve().mkdir(parents=True, exist_ok=True)
    uri = resolve_tracking_uri(workspace, tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(model: str, workspace: str | Path) -> str:
    """The experiment ``amplify/<model>``, created with artifacts under the workspace."""
    name = f"amplify/{model}"
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = (Path(workspace).resolve() / "mlruns" / model).as_uri()
    return client.create_experiment(name, artifact_location=location)


class AmplifyPyfunc(mlflow.pyfunc.PythonModel):
    """A fitted amplify estimator behind MLflow's pyfunc interface.

    ``predict`` takes the feature columns the model was trained with (extra columns are
    ignored) and returns a DataFrame of probabilities or quantiles, one row per input row.
    """

    def __init__(self, estimator: Any, task: str) -> None:
        self.estimator = estimator
        self.task = task

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if self.task == "binary":
            proba = self.estimator.predict_proba(frame)[:, 1]
            return pd.DataFrame({"probability": proba}, index=frame.index)
        return self.estimator.predict_frame(frame)


@dataclass
class GateDecision:
    """Whether a new version may become champion, and why."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


def gate_decision(
    new: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    metric: str,
    higher_is_better: bool = True,
    tolerance: float = 0.0,
    max_ece: float | None = None,
    min_positives: int = 0,
    positives: int | None = None,
) -> GateDecision:
    """The promotion gate: at least as good as the champion on the same evaluation cutoffs
    (within ``tolerance``), calibrated (ECE at most ``max_ece`` beyond ``ece_by_chance``, the
    ECE a perfectly calibrated model scores by chance on the same rows, when ``new`` has it),
    and trained on enough positives. ``new`` and ``champion`` are metrics on the same evaluation rows."""
    reasons: list[str] = []
    ok = True
    value = new.get(metric, float("nan"))
    if not np.isfinite(value):
        return GateDecision(False, [f"{metric} is not available for the new version"])
    if positives is not None and positives < min_positives:
        ok = False
        reasons.append(f"trained on {positives} positives, the gate needs at least {min_positives}")
    if max_ece is not None and "ece" in new:
        ece, chance = new["ece"], new.get("ece_by_chance", float("nan"))
        if np.isfinite(chance):
            # judged beyond what a perfectly calibrated model scores by chance on these rows
            excess = max(ece - chance, 0.0)
            said = f"ECE {ece:.4f}, {chance:.4f} of it by chance on these rows: {excess:.4f}"
        else:
            excess, said = ece, f"ECE {ece:.4f}"
        if not excess <= max_ece:
            ok = False
            reasons.append(f"not calibrated: {said} > {max_ece}")
        else:
            reasons.append(f"calibrated: {said} <= {max_ece}")
    if champion is None:
        reasons.append("no champion yet")
    else:
        old = champion.get(metric, float("nan"))
        better = value >= old - tolerance if higher_is_better else value <= old + tolerance
        if np.isfinite(old) and not better:
            ok = False
            reasons.append(f"{metric} {value:.4f} is worse than the champion's {old:.4f}")
        else:
            reasons.append(f"{metric} {value:.4f} vs the champion's {old:.4f}")
    return GateDecision(ok, reasons)


def champion_version(model: str) -> ModelVersion | None:
    """The version behind ``amplify.<model>@champion``, or None."""
    client = mlflow.MlflowClient()
    try:
        return client.get_model_version_by_alias(registered_name(model), CHAMPION)
    except MlflowException:
        return None


def load_champion(model: str) -> mlflow.pyfunc.PyFuncModel:
    """Load ``models:/amplify.<model>@champion``; a clear error if there is none."""
    if champion_version(model) is None:
        raise NotFoundError(
            f"no champion for {model}: train it first (`amplify train {model}`), or check "
            "MLFLOW_TRACKING_URI / --workspace point at the store it was trained in"
        )
    try:
        return mlflow.pyfunc.load_model(f"models:/{registered_name(model)}@{CHAMPION}")
    except Exception as exc:  # a broken artifact must not pass for a model
        raise ModelError(f"the champion of {model} cannot be loaded: {exc}") from exc


def set_champion(model: str, version: str | int) -> None:
    """Move the alias ``champion`` of ``amplify.<model>`` to ``version``."""
    mlflow.MlflowClient().set_registered_model_alias(registered_name(model), CHAMPION, str(version))
