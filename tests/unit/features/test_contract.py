"""One suite every registered feature function must pass (the factories' valid tables)."""

from __future__ import annotations

import re

import pytest

from amplify_ml.datapack.contract import TABLES
from amplify_ml.features import MODELS, load_spec
from amplify_ml.features.graph import REGISTRY, required_tables
from amplify_ml.features.spec import resolve_horizon, spec_path
from tests.factories import valid_tables
from tests.unit.features.helpers import run

CUTOFFS = ["2024-03-01", "2024-04-01", "2024-06-30"]
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
BUILDERS = sorted(n for n, f in REGISTRY.items() if f.kind == "builder")
SPECS = [
    load_spec(m, path=spec_path(m, v)) for m in MODELS for v in range(1, load_spec(m).version + 1)
]
"""Every version of every feature set (a builder an older one alone uses is still tested)."""
SPEC_SETTINGS = {
    b.name: resolve_horizon(b.settings, s.horizon_days) for s in SPECS for b in s.builders
}
"""Each builder's settings as a spec gives them (``horizon = "label"`` at the spec's horizon)."""
ENTITY_SETTINGS = {s.entity: s.entity_settings for s in SPECS}
"""The spines' settings, for a builder that reads its spine (component_state)."""


@pytest.fixture(scope="module")
def tables():
    t = valid_tables()
    for name in ("telemetry", "device_events"):
        t[name] = t[name].assign(partner_id="P001")
    return t


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_declares_its_tables_and_has_a_one_line_docstring(name: str) -> None:
    fn = REGISTRY[name]
    first = fn.func.__doc__.strip().splitlines()[0]
    assert first.endswith(".") and len(first) <= 100, first
    assert required_tables(name) and required_tables(name) <= set(TABLES)


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_rows_are_unique_per_key_and_cutoff(name: str, tables) -> None:
    fn = REGISTRY[name]
    out = run(name, tables, CUTOFFS, settings_of=ENTITY_SETTINGS, **SPEC_SETTINGS.get(name, {}))
    assert list(out.columns[: len(fn.keys) + 1]) == [*fn.keys, "cutoff"]
    assert not out.duplicated([*fn.keys, "cutoff"]).any()
    assert set(out["cutoff"]) <= set(CUTOFFS)
    for c in out.columns:
        assert SNAKE.match(c), c


def test_every_spec_names_registered_builders_with_distinct_columns(tables) -> None:
    for model in MODELS:
        spec = load_spec(model)
        seen: dict[str, str] = {}
        for b in spec.builders:
            fn = REGISTRY[b.name]
            assert fn.kind == "builder"
            cols = [
                c
                for c in run(
                    b.name,
                    tables,
                    CUTOFFS[:1],
                    settings_of=ENTITY_SETTINGS,
                    **resolve_horizon(b.settings, spec.horizon_days),
                ).columns
                if c not in (*fn.keys, "cutoff")
            ]
            for c in cols:
                assert c not in seen, f"{model}: {c} from {b.name} and {seen.get(c)}"
                seen[c] = b.name
        assert spec.needs and set(spec.needs) <= set(TABLES)
