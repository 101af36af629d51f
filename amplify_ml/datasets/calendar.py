"""The world's calendar: day indices, page weights, seasonality and oracle cutoffs.

Every simulation works in integer *day indices* relative to the period start (day 0 is
``period_start``; the last day of the period is ``n_days - 1``). Negative indices lie before
the period (installations, warm-up), indices beyond the period are used by the oracle's
projections. A :class:`Calendar` precomputes, over a wide range of indices, the weekday,
month, day of month and the page weight ``w_d`` (weekday x month x holiday) that scales
daily pages, PC usage and component wear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from amplify_ml.datasets.config import WorldConfig

EPOCH = date(1970, 1, 1)
NEVER = 10**7
"""A day index meaning "never" (retirement, churn)."""
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Calendar:
    """Day indices and calendar arrays for one world (see the module docstring)."""

    start: date
    end: date
    created_at: datetime
    late_created_at: datetime
    lo: int
    """Lowest precomputed day index."""
    weekday: np.ndarray
    month: np.ndarray
    dom: np.ndarray
    weight: np.ndarray

    @classmethod
    def from_config(cls, cfg: WorldConfig, *, lo: int = -9000, hi_extra: int = 2000) -> Calendar:
        cal = cfg.calendar
        n_days = (cal.period_end - cal.period_start).days + 1
        idx = np.arange(lo, n_days + hi_extra)
        days = np.datetime64(cal.period_start, "D") + idx
        epoch = days.astype("int64")
        weekday = ((epoch + 3) % 7).astype(np.int8)  # 1970-01-01 was a Thursday; Monday = 0
        months = days.astype("datetime64[M]")
        month = (months.astype("int64") % 12 + 1).astype(np.int8)
        dom = ((days - months.astype("datetime64[D]")).astype("int64") + 1).astype(np.int8)
        u = cfg.usage
        weight = np.asarray(u.weekday_weights)[weekday] * np.asarray(u.month_weights)[month - 1]
        holiday = ((month == 12) & (dom >= 24)) | ((month == 1) & (dom == 1))
        weight = np.where(holiday, weight * u.holiday_weight, weight)
        return cls(
            start=cal.period_start,
            end=cal.period_end,
            created_at=cal.created_at,
            late_created_at=cal.late_created_at,
            lo=lo,
            weekday=weekday,
            month=month,
            dom=dom,
            weight=weight.astype(np.float64),
        )

    # -- conversions ---------------------------------------------------------------------
    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_epoch(self) -> int:
        """The period start as days since 1970-01-01 (Arrow date32)."""
        return (self.start - EPOCH).days

    def day(self, d: date) -> int:
        return (d - self.start).days

    def date(self, i: int) -> date:
        return self.start + timedelta(days=int(i))

    def epoch_days(self, idx: np.ndarray) -> np.ndarray:
        """Day indices as days since 1970-01-01 (int32, for Arrow date32)."""
        return (np.asarray(idx, dtype=np.int64) + self.start_epoch).astype(np.int32)

    def epoch_us(self, idx: np.ndarray, seconds: np.ndarray | float = 0) -> np.ndarray:
        """Day indices plus seconds into the day as microseconds since the epoch (UTC)."""
        base = (np.asarray(idx, dtype=np.int64) + self.start_epoch) * US_PER_DAY
        return base + (np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)

    @property
    def created_day(self) -> int:
        """Day index of the main packs' created_at date."""
        return self.day(self.created_at.astimezone(UTC).date())

    # -- arrays ----------------------------------------------------------------------------
    def _ix(self, idx: np.ndarray | int) -> np.ndarray:
        return np.asarray(idx) - self.lo

    def w(self, idx: np.ndarray | int) -> np.ndarray:
        """Page weight of day indices."""
        return self.weight[self._ix(idx)]

    def cum_weight(self) -> np.ndarray:
        """Cumulative page weight: ``cw[i]`` is the sum of weights of indices lo..lo+i-1."""
        return self._cw

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cw", np.concatenate([[0.0], np.cumsum(self.weight)]))

    def weight_sum(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Sum of weights over day indices ``first..last`` inclusive (0 when last < first)."""
        cw = self.cum_weight()
        top = len(self.weight) + self.lo - 1
        first = np.clip(np.asarray(first), self.lo, top)
        last = np.clip(np.maximum(np.asarray(last), first - 1), self.lo - 1, top)
        return cw[last - self.lo + 1] - cw[first - self.lo]

    def month_of(self, idx: np.ndarray | int) -> np.ndarray:
        return self.month[self._ix(idx)]

    def quarter_end(self, idx: np.ndarray | int, days: int) -> np.ndarray:
        """True for the last ``days`` days of March, June, September and December."""
        i = self._ix(idx)
        m = self.month[i]
        is_q = (m % 3) == 0
        # days until the end of the month: look at the month `days` days later
        j = np.minimum(i + days, len(self.month) - 1)
        return is_q & (self.month[j] != m)

    def mondays(self) -> np.ndarray:
        """Day indices of the Mondays inside the period."""
        idx = np.arange(self.n_days)
        return idx[self.weekday[self._ix(idx)] == 0]

    def month_starts(self, first: int | None = None, last: int | None = None) -> np.ndarray:
        """Day indices of first days of months in ``[first, last]`` (default: the period)."""
        first = 0 if first is None else first
        last = self.n_days - 1 if last is None else last
        idx = np.arange(first, last + 1)
        return idx[self.dom[self._ix(idx)] == 1]

    def cutoffs(self, horizon_days: int, n: int) -> np.ndarray:
        """The ``n`` latest month starts c with c + horizon <= the period's last day."""
        starts = self.month_starts(0, self.n_days - 1 - horizon_days)
        return starts[-n:]


def utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
