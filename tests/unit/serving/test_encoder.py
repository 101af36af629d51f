"""Online rows -> the estimator's matrix: order, codes, missing values, messages (by hand)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from amplify_ml.errors import InvalidRequestError
from amplify_ml.serving.models import FeatureEncoder


@dataclass
class _Col:
    name: str
    type: str
    required: bool


@dataclass
class _Schema:
    inputs: list[_Col]


class _Estimator:
    def __init__(self) -> None:
        self.feature_names_in_ = ["kind", "pages", "events", "under_warranty"]
        self.categories_ = {"kind": pd.Index(["laptop", "printer"])}


SCHEMA = _Schema(
    [
        _Col("under_warranty", "boolean", True),
        _Col("events", "long", True),
        _Col("pages", "double", False),
        _Col("kind", "string", True),
    ]
)


def test_rows_become_the_matrix_in_the_estimators_order() -> None:
    enc = FeatureEncoder.of(_Estimator(), SCHEMA)
    assert [(f.name, f.kind, f.required) for f in enc.features] == [
        ("kind", "category", True),
        ("pages", "number", False),
        ("events", "integer", True),
        ("under_warranty", "boolean", True),
    ]
    rows = [
        {"under_warranty": True, "events": 3, "kind": "printer", "pages": 120.5},
        {"under_warranty": False, "events": 2.0, "kind": "tablet"},  # unseen kind, no pages
        {"under_warranty": None, "events": None, "kind": None, "pages": None},
    ]
    M = enc.encode(rows, model="m")
    expected = np.array(
        [[1.0, 120.5, 3.0, 1.0], [np.nan, np.nan, 2.0, 0.0], [np.nan, np.nan, np.nan, np.nan]]
    )
    assert np.array_equal(M, expected, equal_nan=True)


def test_bad_rows_are_named_with_what_was_expected() -> None:
    enc = FeatureEncoder.of(_Estimator(), SCHEMA)
    good = {"under_warranty": True, "events": 3, "kind": "printer"}
    cases = [
        (
            {**good, "events": 2.5},
            "body.rows[0].events: expected a whole number or null, got a number",
        ),
        (
            {**good, "pages": float("inf")},
            "body.rows[0].pages: expected a number or null, got a number out of range",
        ),
        ({**good, "pages": True}, "body.rows[0].pages: expected a number or null, got true/false"),
        (
            {**good, "events": 10**400},
            "body.rows[0].events: expected a whole number or null, got a number out of range",
        ),
        (
            {**good, "pages": float("nan")},
            "body.rows[0].pages: expected a number or null, got a number out of range",
        ),
        ({**good, "kind": 1}, "body.rows[0].kind: expected a string or null, got a number"),
        (
            {**good, "under_warranty": "yes"},
            "body.rows[0].under_warranty: expected true, false or null, got a string",
        ),
        (
            {**good, "colour": "red"},
            "body.rows[0].colour: not a feature of m (its features: GET /v1/models/m)",
        ),
        ({"pages": 1.0}, "body.rows[0]: missing feature(s) events, kind, under_warranty"),
    ]
    for row, message in cases:
        with pytest.raises(InvalidRequestError, match=f"^{re.escape(message)}$"):
            enc.encode([row], model="m")


def test_errors_of_several_rows_are_joined_up_to_five() -> None:
    enc = FeatureEncoder.of(_Estimator(), SCHEMA)
    rows = [{"under_warranty": True, "events": 1, "kind": "laptop", "pages": "x"}] * 7
    with pytest.raises(InvalidRequestError) as info:
        enc.encode(rows, model="m")
    parts = str(info.value).split("; ")
    assert parts == [
        f"body.rows[{i}].pages: expected a number or null, got a string" for i in range(5)
    ]


def test_without_a_signature_nothing_is_required() -> None:
    enc = FeatureEncoder.of(_Estimator(), None)
    assert [(f.kind, f.required) for f in enc.features] == [
        ("category", False),
        ("number", False),
        ("number", False),
        ("number", False),
    ]
    assert np.isnan(enc.encode([{}], model="m")).all()
