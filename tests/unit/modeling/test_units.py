"""Rows that combine into units (device_failure v3: a device's components), worked by hand."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from amplify_ml.errors import ConfigError
from amplify_ml.modeling.spec import load_model_spec
from amplify_ml.modeling.units import (
    combine_by,
    combine_labels,
    combine_probabilities,
    to_units,
    unit_scores,
)


def test_a_units_chance_is_that_of_any_of_its_rows() -> None:
    codes = np.array([0, 0, 1, 2, 2, 2])
    p = np.array([0.5, 0.5, 0.1, 0.0, 0.2, 1.0])
    # 1 - 0.5 x 0.5; 0.1 alone; a certain row makes the unit certain
    assert combine_probabilities(p, codes, 3) == pytest.approx([0.75, 0.1, 1.0])
    assert list(combine_labels(np.array([0, 0, 1, 0, 0, 0]), codes, 3)) == [0, 1, 0]


def test_to_units_keeps_the_first_row_of_each_unit_in_order() -> None:
    rows = pd.DataFrame(
        {
            "device_id": ["D2", "D2", "D1", "D1", "D2"],
            "component": ["a", "b", "a", "b", "a"],
            "cutoff": pd.to_datetime(["2024-01-01"] * 4 + ["2024-02-01"]),
            "age": [5, 5, 7, 7, 6],
            "label": [0, 1, 0, 0, 0],
        }
    )
    units, p, codes = to_units(rows, ["device_id"], np.array([0.1, 0.2, 0.0, 0.5, 0.3]))
    assert list(codes) == [0, 0, 1, 1, 2]
    assert list(units.device_id) == ["D2", "D1", "D2"] and list(units.age) == [5, 7, 6]
    assert list(units.label) == [1, 0, 0]
    assert p == pytest.approx([1 - 0.9 * 0.8, 0.5, 0.3])


def test_combine_by_must_name_some_of_the_keys() -> None:
    spec = load_model_spec("device_failure")
    keys = ["partner_id", "account_id", "device_id", "component"]
    with_ = dataclasses.replace(spec, settings={"combine_by": ["partner_id", "device_id"]})
    assert combine_by(with_, keys) == ["partner_id", "device_id"]
    assert combine_by(dataclasses.replace(spec, settings={}), keys) is None
    for bad in (["partner_id", "colour"], keys, "device_id"):
        with pytest.raises(ConfigError, match="combine_by"):
            combine_by(dataclasses.replace(spec, settings={"combine_by": bad}), keys)


def test_unit_scores_name_the_likeliest_part_and_every_parts_probability() -> None:
    rows = pd.DataFrame(
        {
            "device_id": ["D1", "D1", "D1", "D2", "D2"],
            "cutoff": pd.to_datetime(["2024-01-01"] * 5),
            "component": ["drum", "fuser", "other", "battery", "disk"],
        }
    )
    out = unit_scores(rows, ["device_id"], "component", np.array([0.1, 0.2, 0.0, 0.05, 0.05]))
    assert list(out.columns) == [
        "device_id",
        "cutoff",
        "probability",
        "likely_component",
        "component_probability",
        "component_probabilities",
    ]
    assert out["probability"].to_numpy() == pytest.approx([1 - 0.9 * 0.8, 1 - 0.95**2])
    # a tie goes to the first name
    assert list(out.likely_component) == ["fuser", "battery"]
    assert list(out.component_probability) == [0.2, 0.05]
    assert json.loads(out.component_probabilities[0]) == {"fuser": 0.2, "drum": 0.1, "other": 0.0}
    assert list(json.loads(out.component_probabilities[0])) == ["fuser", "drum", "other"]
