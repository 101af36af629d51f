"""Builders as a small graph of pure functions (Hamilton style), and the point-in-time joins.

A function's positional parameters are its inputs, resolved by name: a lake table
(``sell_through``), the ``cutoffs`` table (``cutoff``, ``cday``, ``ci`` its position), the
sorted ``cutoff_days`` (a tuple of day numbers, for bucketing rows by cutoff), ``materialize``
(``materialize(expr, label)``: ``expr`` computed once and kept, for an intermediate that a
function's own expression reads more than once; an engine that inlines shared subqueries, as
Spark does, would otherwise compute it again at each use), or another
registered function's output (``st_daily``). Keyword-only parameters are settings from the feature-set spec (windows,
horizons). A parameter whose default is ``None`` is an optional input: ``None`` when its
table is absent. Every other input is required: a builder whose table is absent is skipped.

Kinds of functions:

- ``node``: a shared intermediate (e.g. page increments of the telemetry), computed once per
  build; ``cache=True`` materialises it when several builders use it;
- ``entity``: the spine of a model, one row per (entity, cutoff) alive at the cutoff;
- ``builder``: features, one row per (``keys``, cutoff) with the columns it names;
- ``label``: the label of a model, one row per spine row.

The time rules live in :func:`window_join` and :func:`ahead_join`: features join rows whose
day ``d`` satisfies ``cday - days < d <= cday``; labels rows with ``cday < d <= cday + h``.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir

from amplify_ml.datapack.contract import TABLES
from amplify_ml.features.cutoffs import (
    GRID_AHEAD_DAYS,
    GRID_BACK_DAYS,
    cutoffs_frame,
    day_grid_frame,
)

if TYPE_CHECKING:
    from amplify_ml.features.engine import Engine

Kind = Literal["node", "entity", "builder", "label"]
Materialize = Callable[[ir.Table, str], ir.Table]
"""The ``materialize`` input: ``(expr, label)`` to ``expr`` computed once and kept."""


@dataclass(frozen=True)
class Function:
    """A registered function and what it needs."""

    name: str
    func: Callable[..., ir.Table]
    kind: Kind
    inputs: tuple[str, ...]
    optional: tuple[str, ...]
    settings: tuple[str, ...]
    keys: tuple[str, ...] = ()
    zero_fill: bool = False
    cache: bool = False
    doc: str = ""

    @property
    def all_inputs(self) -> tuple[str, ...]:
        return self.inputs + self.optional


REGISTRY: dict[str, Function] = {}


def _register(kind: Kind, keys: Iterable[str] = (), zero_fill: bool = False, cache: bool = False):
    def deco(func: Callable[..., ir.Table]) -> Callable[..., ir.Table]:
        sig = inspect.signature(func)
        inputs, optional, settings = [], [], []
        for p in sig.parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                settings.append(p.name)
            elif p.default is None:
                optional.append(p.name)
            else:
                inputs.append(p.name)
        doc = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
        if not doc:
            raise TypeError(f"{func.__name__}: a feature function needs a one-line docstring")
        REGISTRY[func.__name__] = Function(
            name=func.__name__,
            func=func,
            kind=kind,
            inputs=tuple(inputs),
            optional=tuple(optional),
            settings=tuple(settings),
            keys=tuple(keys),
            zero_fill=zero_fill,
            cache=cache,
            doc=doc,
        )
        return func

    return deco


def node(*, cache: bool = False):
    """Register a shared intermediate."""
    return _register("node", cache=cache)


def entity(*, keys: Iterable[str]):
    """Register a model's entity spine with its key columns."""
    return _register("entity", keys=keys)


def builder(*, keys: Iterable[str], zero_fill: bool = False):
    """Register a feature builder whose rows are keyed by ``keys`` and ``cutoff``.

    ``zero_fill``: entities without rows get 0 in its ``*_count*``, ``*_sum_*`` and
    ``*_distinct_*`` columns and False in its ``is_``/``has_`` columns (the table is there,
    so no rows means none happened); every other column stays null.
    """
    return _register("builder", keys=keys, zero_fill=zero_fill)


def label():
    """Register a label function."""
    return _register("label")


def lake_tables(name: str, *, optional: bool = True) -> set[str]:
    """Lake tables ``name`` reads, through its inputs (optional ones too unless told)."""
    if name in TABLES:
        return {name}
    fn = REGISTRY.get(name)
    if fn is None:
        return set()
    out: set[str] = set()
    for i in fn.inputs + (fn.optional if optional else ()):
        out |= lake_tables(i, optional=optional)
    return out


def required_tables(name: str) -> set[str]:
    """Lake tables without which ``name`` cannot run (its optional inputs left out)."""
    return lake_tables(name, optional=False)


class MissingInput(LookupError):
    """A required lake table is absent."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table


@dataclass
class Resolver:
    """Computes functions by name over one set of sources and cutoffs, each once."""

    sources: Mapping[str, ir.Table]
    cutoffs: ir.Table
    cutoff_days: tuple[int, ...]
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cache: Callable[[ir.Table, str], ir.Table] | None = None
    extra: Mapping[str, ir.Table] = field(default_factory=dict)
    _memo: dict[str, ir.Table] = field(default_factory=dict)

    def materialize(self, expr: ir.Table, label: str) -> ir.Table:
        """``expr`` computed once and kept (as is when this resolver does not cache)."""
        return expr if self.cache is None else self.cache(expr, label)

    def available(self, name: str) -> bool:
        return not (required_tables(name) - set(self.sources))

    def get(self, name: str) -> Any:
        if name in self._memo:
            return self._memo[name]
        if name == "cutoffs":
            return self.cutoffs
        if name == "cutoff_days":
            return self.cutoff_days
        if name == "materialize":
            return self.materialize
        if name in self.extra:
            return self.extra[name]
        if name in TABLES:
            if name not in self.sources:
                raise MissingInput(name)
            return self.sources[name]
        fn = REGISTRY[name]
        args = [self.get(i) for i in fn.inputs]
        kwargs: dict[str, Any] = {
            o: (self.get(o) if self.available(o) else None) for o in fn.optional
        }
        kwargs.update({k: v for k, v in self.settings.get(name, {}).items() if k in fn.settings})
        out = fn.func(*args, **kwargs)
        if fn.cache and self.cache is not None:
            out = self.cache(out, name)
        self._memo[name] = out
        return out


# -- point-in-time helpers --------------------------------------------------------------------


def day_of(col: ir.Value) -> ir.IntegerValue:
    """Days since 1970-01-01 of a date, or of a timestamp's UTC date (sessions run in UTC)."""
    if col.type().is_timestamp():
        col = col.date()
    return col.epoch_days().cast("int64")


_DAY_GRIDS: dict[str, ir.Table] = {}


def register_cutoffs(engine: Engine, name: str, cutoffs: Iterable[date]) -> ir.Table:
    """The cutoffs as a table on ``engine`` (see :func:`cutoffs_frame`), with their day grid
    (:func:`day_grid_frame`, ``<name>_days``) registered for the window joins over them."""
    table = engine.register_frame(name, cutoffs_frame(cutoffs))
    register_day_grid(table, engine.register_frame(f"{name}_days", day_grid_frame(cutoffs)))
    return table


def register_day_grid(cutoffs: ir.Table, grid: ir.Table) -> None:
    """Window joins over the named table ``cutoffs`` read ``grid`` (its rows repeated per day,
    see :func:`amplify_ml.features.cutoffs.day_grid_frame`) for windows within
    ``GRID_BACK_DAYS`` back and ``GRID_AHEAD_DAYS`` ahead: a table the engine knows the size
    of, so that it plans the joins after a window join on what the window join gives."""
    name = _table_name(cutoffs)
    if not name:
        raise TypeError("a day grid belongs to a named cutoffs table (one the engine registered)")
    _DAY_GRIDS[name] = grid


def drop_day_grid(cutoffs: ir.Table) -> None:
    _DAY_GRIDS.pop(_table_name(cutoffs), None)


def _table_name(t: ir.Table) -> str:
    op = t.op()
    return str(getattr(op, "name", "")) if type(op).__name__ == "DatabaseTable" else ""


def _interval_join(rows: ir.Table, cutoffs: ir.Table, on: str, lo: int, hi: int) -> ir.Table:
    """``rows`` x ``cutoffs`` where ``lo <= cday - rows[on] < hi``, as an equi-join on the day.

    Each cutoff is expanded to the days of its interval and joined on the day: a hash join
    with a small side, the same rows as a range join, and no inequality left for a planner to
    turn into a slow merge join. The days come from the cutoffs' registered day grid when it
    covers the interval, else from the cutoffs themselves.
    """
    grid = _DAY_GRIDS.get(_table_name(cutoffs) or "-")
    if grid is not None and lo >= -GRID_AHEAD_DAYS and hi <= GRID_BACK_DAYS:
        days = grid.filter((grid._back >= lo) & (grid._back < hi)).drop("_back")
    else:
        days = cutoffs.mutate(_back=ibis.range(lo, hi).unnest())
        days = days.mutate(_day=(days.cday - days._back).cast("int64")).drop("_back")
    return rows.join(days, rows[on] == days._day).drop("_day")


def keyed(t: ir.Table, prefix: str, keys: Sequence[str]) -> dict[str, ir.Value]:
    """``t``'s ``keys`` as columns named with ``prefix``: to select beside other columns, then
    join on with :func:`on_keys` (a join's two sides may not share a column name)."""
    return {prefix + k: t[k] for k in keys}


def on_keys(
    left: ir.Table, right: ir.Table, prefix: str, keys: Sequence[str]
) -> list[ir.BooleanValue]:
    """Join predicates of ``left``'s ``keys`` on ``right``'s, named there with ``prefix`` (see
    :func:`keyed`)."""
    return [left[k] == right[prefix + k] for k in keys]


def window_join(
    rows: ir.Table, cutoffs: ir.Table, *, days: int | None, on: str = "day"
) -> ir.Table:
    """``rows`` x ``cutoffs`` where ``cday - days < rows[on] <= cday`` (all history if no days).

    This is the only way builders see rows: nothing dated after the cutoff gets through.
    """
    if days is None:
        return rows.join(cutoffs, [rows[on] <= cutoffs.cday])
    return _interval_join(rows, cutoffs, on, 0, days)


def ahead_join(rows: ir.Table, cutoffs: ir.Table, *, days: int, on: str = "day") -> ir.Table:
    """``rows`` x ``cutoffs`` where ``cday < rows[on] <= cday + days`` (label windows)."""
    return _interval_join(rows, cutoffs, on, -days, 0)


def in_range(
    rows: ir.Table, cutoff_days: tuple[int, ...], lookback: int, on: str = "day"
) -> ir.Table:
    """``rows`` some cutoff's ``lookback``-day window can see (a cheap filter to run before
    grouping; the window joins apply the exact windows)."""
    return rows.filter((rows[on] > cutoff_days[0] - lookback) & (rows[on] <= cutoff_days[-1]))


def window_sums(
    rows: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    group: list[str],
    values: list[str],
    windows: tuple[int, ...],
    on: str = "day",
) -> ir.Table:
    """Per group and cutoff, for each window ``w``: the sums of ``values`` over the rows with
    ``cday - w < rows[on] <= cday`` (``<value>_<w>d``) and their number (``_n_<w>d``). A group
    has a row at a cutoff when its longest window holds a row (the others may sum to 0).

    Each row is added once, into the interval between two consecutive window edges (every
    cutoff, and every cutoff less each window) it falls in; a cutoff's sums add up the
    intervals its windows cover. A :func:`window_join` would repeat every row for each cutoff
    whose window holds it (a year's window over monthly cutoffs: twelve times). Sums of
    floats whose values are not whole numbers may differ from a direct sum in the last bits.
    """
    top = max(windows)
    edges = sorted(set(cutoff_days) | {c - w for c in cutoff_days for w in windows})
    r = rows.filter((rows[on] > edges[0]) & (rows[on] <= edges[-1]))
    # an interval is named by its upper edge; its lower one is the edge before. Each day
    # finds its interval in a table of the days (a join on the day): a search written into
    # the rows' expression would repeat the day's expression once per edge (on Spark, a
    # timestamp's UTC date per edge and row: generated code past Java's 64 KB per method)
    grid = cutoffs.limit(1).select(_day=ibis.range(edges[0] + 1, edges[-1] + 1).unnest())
    grid = grid.mutate(_hi=ibis.cases(*[(grid._day <= e, e) for e in edges[1:]]))
    grid = grid.select(_day=grid._day.cast("int64"), _hi=grid._hi.cast("int64"))
    r = r.join(grid, r[on] == grid._day).drop("_day")
    b = r.group_by([*group, "_hi"]).aggregate(
        **{v: int_sum(r[v]) if r[v].type().is_integer() else r[v].sum() for v in values},
        _n=r.count(),
    )
    b = b.mutate(_lo=ibis.cases(*[(b._hi == e, p) for p, e in itertools.pairwise(edges)]))
    j = b.join(cutoffs, [b._lo >= cutoffs.cday - top, b._hi <= cutoffs.cday])
    aggs: dict[str, ir.Value] = {}
    for w in windows:
        inside = j._lo >= j.cday - w
        aggs.update({f"{v}_{w}d": sum_if(inside, j[v]) for v in values})
        aggs[f"_n_{w}d"] = sum_if(inside, j._n)
    return j.group_by([*group, "cutoff", "cday"]).aggregate(**aggs)


def outer_join_on(left: ir.Table, right: ir.Table, keys: Iterable[str]) -> ir.Table:
    """The rows of either table matched on equal ``keys``: the keys from whichever side has
    the row, then ``left``'s other columns, then ``right``'s (null where a side has no row).
    The two tables' other columns must have different names."""
    keys = list(keys)
    r = right.rename({f"_o_{k}": k for k in keys})
    both = left.outer_join(r, on_keys(left, r, "_o_", keys))
    return both.select(
        **{k: ibis.coalesce(both[k], both[f"_o_{k}"]) for k in keys},
        **{c: both[c] for c in left.columns if c not in keys},
        **{c: both[c] for c in right.columns if c not in keys},
    )


def within(t: ir.Table, days: int, on: str = "day") -> ir.BooleanValue:
    """Rows of a :func:`window_join` result that fall in the last ``days`` days."""
    return t[on] > t.cday - days


def count_if(cond: ir.BooleanValue) -> ir.IntegerValue:
    """Number of rows where ``cond`` holds (0, not null, when none)."""
    return cond.count(where=cond).cast("int64")


def sum_if(cond: ir.BooleanValue, value: ir.NumericValue) -> ir.NumericValue:
    """Sum of ``value`` where ``cond`` holds (0 when none).

    Integers are summed as doubles (exact below 2**53): DuckDB sums BIGINT into a 128-bit
    integer, several times slower."""
    if value.type().is_integer():
        return ibis.ifelse(cond, value.cast("float64"), 0.0).sum().cast("int64")
    zero = ibis.literal(0, type=value.type())
    return ibis.ifelse(cond, value, zero).sum()


def int_sum(value: ir.IntegerValue) -> ir.IntegerValue:
    """Sum of an integer column, as int64 (see :func:`sum_if`)."""
    return value.cast("float64").sum().cast("int64")


def last_value(value: ir.Value, order: ir.Value, where: ir.BooleanValue) -> ir.Value:
    """``value`` of the row with the greatest ``order`` among rows where ``where`` holds."""
    return ibis.ifelse(where, value, ibis.null(value.type())).argmax(
        ibis.ifelse(where, order, ibis.null(order.type()))
    )


def ols_slope(n: ir.Value, sx: ir.Value, sy: ir.Value, sxy: ir.Value, sxx: ir.Value) -> ir.Value:
    """Least-squares slope from sums (null when fewer than two distinct x)."""
    den = n.cast("float64") * sxx - sx * sx
    return ibis.ifelse(den > 0, (n.cast("float64") * sxy - sx * sy) / den, ibis.null("float64"))


def depends_on_cutoffs(name: str) -> bool:
    """Whether ``name`` reads the cutoffs (directly or through its inputs)."""
    if name in ("cutoffs", "cutoff_days"):
        return True
    fn = REGISTRY.get(name)
    return fn is not None and any(depends_on_cutoffs(i) for i in fn.all_inputs)


def cutoff_bucket(day: ir.IntegerValue, cutoff_days: tuple[int, ...]) -> ir.IntegerValue:
    """Position of the first cutoff on or after ``day`` (``len(cutoff_days)`` after the last)."""
    branches = [(day <= c, i) for i, c in enumerate(cutoff_days)]
    return ibis.cases(*branches, else_=len(cutoff_days)).cast("int64")


def bucket_latest(
    rows: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    group: list[str],
    values: list[str],
    order: str = "observed_at",
    on: str = "day",
    lookback: int | None = None,
) -> ir.Table:
    """The latest row (by ``order``) of each group in each cutoff bucket: ``_b`` = i holds the
    rows dated after cutoff i-1 up to cutoff i; with ``lookback``, ``_b`` = -1 holds the rows
    dated ``lookback`` days or more before the first cutoff (and bucket 0 starts after them).

    One hash aggregate over the rows, no sort: the base of :func:`latest_as_of`.
    """
    n = len(cutoff_days)
    branches = []
    if lookback is not None:
        branches.append((rows[on] <= cutoff_days[0] - lookback, -1))
    branches += [(rows[on] <= c, i) for i, c in enumerate(cutoff_days)]
    # filter on the day itself: a filter on the computed bucket runs twice as slow on DuckDB
    rows = rows.filter(rows[on] <= cutoff_days[-1])
    t = rows.mutate(_b=ibis.cases(*branches, else_=n).cast("int64"))
    key = t[order]
    cols = [*dict.fromkeys([*values, on])]
    aggs = {c: t[c].argmax(key) for c in cols if c != order}
    aggs[order] = key.max()
    return t.group_by([*group, "_b"]).aggregate(**aggs)


def latest_from_buckets(
    buckets: ir.Table, cutoffs: ir.Table, *, group: list[str], values: list[str], on: str = "day"
) -> ir.Table:
    """Per group and cutoff, ``values`` and ``on`` of the latest row on or before the cutoff
    (from :func:`bucket_latest`): a bucket's row serves the cutoffs from its own up to the
    next non-empty bucket."""
    w = ibis.window(group_by=[buckets[g] for g in group], order_by=[buckets._b])
    b = buckets.mutate(_next=buckets._b.lead().over(w))
    j = b.join(cutoffs, [cutoffs.ci >= b._b, b._next.isnull() | (cutoffs.ci < b._next)])
    return j.select(*group, "cutoff", "cday", *[v for v in values if v != on], on)


def latest_as_of(
    rows: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    group: list[str],
    values: list[str],
    order: str = "observed_at",
    on: str = "day",
) -> ir.Table:
    """Per group and cutoff, ``values`` of the group's latest row (by ``order``) dated on or
    before the cutoff, however old, and its ``on`` day; no row when the group has none.

    Rows are reduced to the latest of each cutoff bucket (a hash aggregate, no sort of the
    rows); a bucket's latest row serves the cutoffs up to the next non-empty bucket.
    """
    b = bucket_latest(rows, cutoff_days, group=group, values=values, order=order, on=on)
    return latest_from_buckets(b, cutoffs, group=group, values=values, on=on)


def recent_with_previous(
    rows: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    group: list[str],
    lookback_days: int,
    order: str = "observed_at",
    on: str = "day",
) -> ir.Table:
    """The rows a ``lookback_days`` window before the first cutoff up to the last cutoff can
    see, plus each group's latest earlier row (``_before`` true), so that a lag over the
    result gives every recent row its true predecessor without sorting all history."""
    first = cutoff_days[0] - lookback_days
    recent = rows.filter((rows[on] > first) & (rows[on] <= cutoff_days[-1]))
    old = rows.filter(rows[on] <= first)
    key = old[order]
    cols = [c for c in rows.columns if c not in group]
    last = old.group_by(group).aggregate(**{c: old[c].argmax(key) for c in cols})
    return recent.mutate(_before=ibis.literal(False)).union(
        last.select(*rows.columns).mutate(_before=ibis.literal(True))
    )
