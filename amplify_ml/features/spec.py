"""Feature-set specs: ``features/<model>.v<N>.toml`` (which builders, with which settings).

A spec names the model's entity function, the tables the model needs, its label function
with the default horizon, and the builders in output order with their settings (windows,
code prefixes, ...). It is logged, with its sha256, in every training set's metadata.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amplify_ml.datapack.contract import TABLES
from amplify_ml.errors import ConfigError, InvalidRequestError

MODELS = ("propensity_to_buy", "refresh_due", "consumable_depletion", "device_failure")
SPEC_DIR = Path(__file__).resolve().parents[2] / "features"
_NAME = re.compile(r"^(?P<model>[a-z_]+)\.v(?P<version>\d+)\.toml$")


@dataclass(frozen=True)
class BuilderSpec:
    """One builder of a feature set and its settings."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureSetSpec:
    """A model's feature set, as read from its TOML file."""

    model: str
    version: int
    entity: str
    entity_settings: dict[str, Any]
    needs: tuple[str, ...]
    label: str
    label_settings: dict[str, Any]
    builders: tuple[BuilderSpec, ...]
    path: Path
    sha256: str
    description: str = ""

    @property
    def horizon_days(self) -> int:
        return int(self.label_settings["horizon_days"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "file": self.path.name,
            "sha256": self.sha256,
            "entity": self.entity,
            "entity_settings": self.entity_settings,
            "needs": list(self.needs),
            "label": self.label,
            "label_settings": self.label_settings,
            "builders": [{"name": b.name, **b.settings} for b in self.builders],
        }


LABEL_HORIZON = "label"
"""A builder's ``horizon = "label"``: the label's horizon, which ``--horizon-days`` overrides, so
features that look at the coming days of the calendar (last year's same window, warranties due)
cover the days the label does; a number keeps them fixed whatever the model's horizon."""


def resolve_horizon(settings: dict[str, Any], horizon_days: int) -> dict[str, Any]:
    """A builder's settings with ``horizon = "label"`` replaced by ``horizon_days``."""
    if settings.get("horizon") != LABEL_HORIZON:
        return settings
    return {**settings, "horizon": int(horizon_days)}


def _tuples(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}


def spec_path(model: str, version: int | None = None, spec_dir: Path | None = None) -> Path:
    """The spec file of ``model`` (the highest version unless ``version`` is given)."""
    if model not in MODELS:
        raise InvalidRequestError(f"unknown model {model!r}: the models are {', '.join(MODELS)}")
    folder = Path(spec_dir) if spec_dir is not None else SPEC_DIR
    found = {}
    if folder.is_dir():
        for p in folder.glob(f"{model}.v*.toml"):
            m = _NAME.match(p.name)
            if m and m["model"] == model:
                found[int(m["version"])] = p
    if not found:
        raise ConfigError(
            f"no feature-set spec for {model} in {folder}: expected a file {model}.v1.toml; "
            "pass spec= with the path of a spec file"
        )
    if version is None:
        return found[max(found)]
    if version not in found:
        raise ConfigError(
            f"no version {version} of the {model} feature set in {folder}; versions: "
            + ", ".join(str(v) for v in sorted(found))
        )
    return found[version]


def load_spec(
    model: str | None = None,
    *,
    version: int | None = None,
    path: str | Path | None = None,
    spec_dir: Path | None = None,
) -> FeatureSetSpec:
    """Read and check a feature-set spec (by model name, or a file path)."""
    from amplify_ml.features.graph import REGISTRY

    p = Path(path) if path is not None else spec_path(str(model), version, spec_dir)
    raw = p.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"feature-set spec {p}: not valid TOML ({exc})") from None

    def need(key: str) -> Any:
        if key not in data:
            raise ConfigError(f"feature-set spec {p}: missing key {key!r}")
        return data[key]

    name = need("model")
    if model is not None and name != model:
        raise ConfigError(f"feature-set spec {p} is for {name}, not {model}")
    ent = dict(need("entity"))
    lab = dict(need("label"))
    builders = []
    for b in need("builders"):
        b = dict(b)
        bname = b.pop("name", None)
        fn = REGISTRY.get(bname)
        if fn is None or fn.kind != "builder":
            raise ConfigError(f"feature-set spec {p}: {bname!r} is not a registered builder")
        unknown = set(b) - set(fn.settings)
        if unknown:
            raise ConfigError(
                f"feature-set spec {p}: builder {bname} has no setting(s) {sorted(unknown)}; "
                f"its settings are {list(fn.settings)}"
            )
        for key, value in b.items():
            if value == LABEL_HORIZON and key != "horizon":
                raise ConfigError(
                    f"feature-set spec {p}: builder {bname}: {key} = {LABEL_HORIZON!r}; only a "
                    f"builder's horizon can follow the label's (horizon = {LABEL_HORIZON!r})"
                )
        builders.append(BuilderSpec(bname, _tuples(b)))
    for kind, section in (("entity", ent), ("label", lab)):
        fn = REGISTRY.get(section.get("function", ""))
        if fn is None or fn.kind != kind:
            raise ConfigError(f"feature-set spec {p}: [{kind}] function is not a registered {kind}")
    needs = tuple(need("needs"))
    for t in needs:
        if t not in TABLES:
            raise ConfigError(f"feature-set spec {p}: needs unknown table {t!r}")
    if "horizon_days" not in lab:
        raise ConfigError(f"feature-set spec {p}: [label] needs horizon_days")
    return FeatureSetSpec(
        model=name,
        version=int(need("version")),
        entity=ent.pop("function"),
        entity_settings=_tuples(ent),
        needs=needs,
        label=lab.pop("function"),
        label_settings=_tuples(lab),
        builders=tuple(builders),
        path=p,
        sha256=hashlib.sha256(raw).hexdigest(),
        description=str(data.get("description", "")),
    )
