"""Small helpers: column-oriented frames of numpy arrays, pseudonymous ids, random draws."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Self

import numpy as np

_HEX = np.array(list("0123456789abcdef"))
_HEX_LETTER = np.array(list("abcdef"))


@dataclass
class ArrayFrame:
    """A dataclass whose fields are numpy arrays sharing their first dimension."""

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def take(self, idx: np.ndarray) -> Self:
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


def pseudonyms(
    rng: np.random.Generator, n: int, prefix: str, width: int, taken: set[str] | None = None
) -> np.ndarray:
    """``n`` unique ids ``<prefix><hex>``: the first hex digit is a letter, so an id never
    starts with a run of digits (never phone-like, never e-mail-like)."""
    span = 16 ** (width - 1)
    values = rng.integers(0, 6 * span, n + n // 4 + 8)
    _, first_pos = np.unique(values, return_index=True)
    values = values[np.sort(first_pos)]
    while len(values) < n:  # pragma: no cover - astronomically unlikely
        values = np.unique(np.concatenate([values, rng.integers(0, 6 * span, n)]))
    values = values[:n]
    heads = _HEX_LETTER[values // span].astype(object)
    tails = np.char.mod(f"%0{width - 1}x", values % span).astype(object) if width > 1 else ""
    out = prefix + heads + tails
    if taken:
        clash = np.isin(out, np.asarray(list(taken), dtype=object))
        if clash.any():  # pragma: no cover - astronomically unlikely
            out[clash] = pseudonyms(rng, int(clash.sum()), prefix, width, set(taken) | set(out))
    return out.astype(object)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0])[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def first_true(mask: np.ndarray, none: int) -> np.ndarray:
    """Column index of the first True in each row of ``mask`` (``none`` when there is none)."""
    any_ = mask.any(axis=1)
    return np.where(any_, mask.argmax(axis=1), none)


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start positions of runs of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
