"""Models whose rows are parts of what they are judged on (device_failure v3: one row per
component of a device): the spec's ``settings.combine_by`` names the keys of the unit (the
device), and a unit's rows combine as independent chances: the unit's probability is
``1 - prod(1 - p)`` over its rows, its label 1 when any row's is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from amplify_ml.errors import ConfigError
from amplify_ml.modeling.spec import ModelSpec


def combine_by(spec: ModelSpec, keys: Sequence[str]) -> list[str] | None:
    """The unit's keys of a model whose rows combine (``settings.combine_by``), or None.

    They must be among the training set's ``keys`` (the others tell the rows of a unit
    apart)."""
    by = spec.settings.get("combine_by")
    if not by:
        return None
    if not isinstance(by, list) or not all(isinstance(k, str) for k in by):
        raise ConfigError(f"{spec.path}: settings.combine_by: a list of key columns")
    missing = [k for k in by if k not in keys]
    if missing or len(by) >= len(keys):
        raise ConfigError(
            f"{spec.path}: settings.combine_by: {by} must be some of the feature set's keys "
            f"{list(keys)}, not all of them (got {missing or by})"
        )
    return list(by)


def unit_codes(rows: pd.DataFrame, by: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's unit (0..n-1, in the order units first appear) and the units' first rows
    (index reset): the unit's keys, ``cutoff`` and the columns its rows share."""
    on = [*by, "cutoff"]
    codes = rows.groupby(on, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    first = ~pd.Series(codes).duplicated().to_numpy()
    return codes, rows[first].reset_index(drop=True)


def combine_probabilities(p: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Per unit, ``1 - prod(1 - p)`` of its rows' probabilities."""
    q = np.log1p(-np.clip(np.asarray(p, dtype=float), 0.0, 1.0 - 1e-12))
    return -np.expm1(np.bincount(codes, weights=q, minlength=n))


def combine_labels(y: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Per unit, 1 when any of its rows' labels is, else 0."""
    return (np.bincount(codes, weights=np.asarray(y, dtype=float), minlength=n) > 0).astype(
        np.int64
    )


def to_units(
    rows: pd.DataFrame, by: Sequence[str], p: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray]:
    """The units of ``rows`` (their first rows, ``label`` combined when present), the units'
    combined probabilities when ``p`` is given, and each row's unit."""
    codes, units = unit_codes(rows, by)
    if "label" in rows:
        units["label"] = combine_labels(rows["label"].to_numpy(), codes, len(units))
    pu = combine_probabilities(p, codes, len(units)) if p is not None else None
    return units, pu, codes


def unit_scores(rows: pd.DataFrame, by: Sequence[str], part: str, p: np.ndarray) -> pd.DataFrame:
    """Per unit (``by`` and ``cutoff``, in the order units first appear): ``probability``
    (its rows combined), the likeliest part (``likely_<part>``, ties to the first in name
    order), that part's own probability (``<part>_probability``) and every part's
    (``<part>_probabilities``, a JSON object, likeliest first)."""
    rows = rows[[*by, "cutoff", part]].assign(_p=np.asarray(p, dtype=float))
    codes, units = unit_codes(rows, by)
    units = units[[*by, "cutoff"]].copy()
    units["probability"] = combine_probabilities(rows["_p"].to_numpy(), codes, len(units))
    rows = rows.assign(_u=codes, _name=rows[part].astype(str))
    rows = rows.sort_values(["_u", "_p", "_name"], ascending=[True, False, True], kind="stable")
    best = rows.drop_duplicates("_u").set_index("_u").reindex(np.arange(len(units)))
    units[f"likely_{part}"] = best["_name"].to_numpy()
    units[f"{part}_probability"] = best["_p"].to_numpy()
    each = {
        u: json.dumps({n: round(float(v), 6) for n, v in zip(g["_name"], g["_p"], strict=True)})
        for u, g in rows.groupby("_u", sort=False)
    }
    units[f"{part}_probabilities"] = [each.get(u, "{}") for u in range(len(units))]
    return units
