"""Cutoffs: the dates a training set is cut at.

A cutoff ``c`` is a date. Features use rows dated on or before ``c`` (a timestamp counts by
its UTC date); labels use rows dated in ``(c, c + horizon]``. Inside the builders a cutoff is
also carried as ``cday``, its number of days since 1970-01-01, so every window is integer
arithmetic that reads the same on every engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import numpy as np
import pandas as pd

from amplify_ml.errors import InvalidRequestError

DateLike = date | datetime | str | pd.Timestamp
EPOCH = date(1970, 1, 1)


def to_date(value: DateLike, *, what: str = "cutoff") -> date:
    """``value`` as a :class:`datetime.date` (ISO strings, dates, datetimes, Timestamps)."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise InvalidRequestError(
        f"{what} {value!r} is not a date; give an ISO date such as 2025-01-01 or a datetime.date"
    )


def epoch_day(d: date) -> int:
    """Days since 1970-01-01 (what builders compare)."""
    return (d - EPOCH).days


def monthly(start: DateLike, end: DateLike) -> list[date]:
    """First days of the months from ``start`` to ``end``, both included.

    ``monthly("2025-01-01", "2025-12-01")`` gives twelve cutoffs. A ``start`` that is not the
    first of a month starts at the next first of a month.
    """
    first, last = to_date(start, what="start"), to_date(end, what="end")
    if last < first:
        raise InvalidRequestError(f"monthly cutoffs: end {last} is before start {first}")
    y, m = first.year, first.month
    if first.day != 1:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    out = []
    while date(y, m, 1) <= last:
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def expand_cutoffs(values: Iterable[DateLike]) -> list[date]:
    """Dates, where a text ``START:END`` stands for the month starts in between (both
    included): ``["2025-01-01:2025-03-01", "2025-06-15"]`` gives four cutoffs, sorted, unique."""
    out: list[date] = []
    for v in values:
        if isinstance(v, str) and ":" in v:
            start, _, end = v.partition(":")
            out += monthly(start, end)
        else:
            out.append(to_date(v))
    return sorted(set(out))


def as_cutoffs(cutoffs: Iterable[DateLike] | DateLike) -> list[date]:
    """Cutoffs as sorted unique dates; at least one is required."""
    if isinstance(cutoffs, (str, date, datetime, pd.Timestamp)):
        cutoffs = [cutoffs]
    out = sorted({to_date(c) for c in cutoffs})
    if not out:
        raise InvalidRequestError(
            "no cutoffs given; pass cutoffs=monthly('2025-01-01', '2025-12-01') or a list of dates"
        )
    return out


def cutoffs_frame(cutoffs: Iterable[date]) -> pd.DataFrame:
    """The cutoffs table builders join with: ``cutoff`` (date), ``cday`` (its day number) and
    ``ci`` (its position among the sorted cutoffs)."""
    cs = sorted(cutoffs)
    return pd.DataFrame(
        {
            "cutoff": pd.Series(cs, dtype="object"),
            "cday": pd.Series([epoch_day(c) for c in cs], dtype="int64"),
            "ci": pd.Series(range(len(cs)), dtype="int64"),
        }
    )


GRID_BACK_DAYS = 731
"""Windows up to this many days back from a cutoff read the cutoffs' day grid."""
GRID_AHEAD_DAYS = 366
"""Label windows up to this many days ahead of a cutoff read the cutoffs' day grid."""


def day_grid_frame(cutoffs: Iterable[date]) -> pd.DataFrame:
    """The cutoffs table with one row per day around each cutoff: ``_day`` (a day number) and
    ``_back`` (``cday - _day``), from ``GRID_BACK_DAYS - 1`` back to ``GRID_AHEAD_DAYS`` ahead.

    Window joins read it as a table (see :func:`amplify_ml.features.graph.window_join`)."""
    c = cutoffs_frame(cutoffs)
    back = np.arange(-GRID_AHEAD_DAYS, GRID_BACK_DAYS, dtype="int64")
    grid = c.loc[c.index.repeat(len(back))].reset_index(drop=True)
    grid["_back"] = np.tile(back, len(c))
    grid["_day"] = grid["cday"] - grid["_back"]
    return grid
