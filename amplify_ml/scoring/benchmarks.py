"""Descriptive partner benchmarks: a partner's program measures against its peers and the market.

:func:`benchmark` answers "how is this partner doing?" for one partner and one period
(``(as_of - period_days, as_of]``, compared with the period of the same length before it):
revenue and its growth, deal registrations, conversion, pre-sales support, attach rates,
average sale value, revenue per account, support use, SLA compliance, account retention and
expansion, and inventory. Every measure is computed from the lake with DuckDB, for the partner
and for each partner of its peer group (same values of ``peer_by`` columns of the partners
table, consenting partners only: those with data in the lake).

Rules the report keeps:

- A measure the partner's data cannot support is *unavailable* with the reason, naming the
  missing table or column; never 0 or NaN in its place.
- Peer figures are aggregates (25th percentile, median, 75th percentile, the partner's
  percentile rank among its peers), released only when at least ``k`` peers have the measure
  (money measures: in the partner's currency). The report never holds another partner's id,
  name or individual value.
- Market growth comes from the vendor's ``market`` table, weighted by the partner's own
  previous-period revenue per country (of the account) and product category.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import TABLES
from amplify_ml.errors import InvalidRequestError, NotFoundError
from amplify_ml.lake import Lake, partition_of

SUPPORT_KINDS = ("incident", "repair", "part_replacement")
"""Ticket kinds that count as support use (reactive service); the others are planned work."""
RUN_RATE_DAYS = 91
"""Weeks of cover divide units on hand by the weekly units sold in these 13 weeks."""
MAX_PERIOD_DAYS = 3660
_VENDOR_TABLES = ("partners", "products", "market", "intent_signals")
_NOT_PEER_COLUMNS = ("partner_id", "name")

Unit = Literal[
    "currency", "count", "share", "growth", "per printer", "per device", "units", "weeks"
]


@dataclass(frozen=True)
class MeasureSpec:
    """What a measure is: its name, unit, the tables it needs and its definition."""

    name: str
    label: str
    unit: Unit
    needs: tuple[str, ...]
    definition: str
    has_growth: bool = False
    spans: Literal["any", "period", "both"] = "any"
    """What the partner's data must cover for the measure to be computed: ``period``, the
    whole period (a total over part of it would read as a fall); ``both``, the period and the
    one before it (a comparison of the two); ``any``, nothing (a ratio within the period, or a
    snapshot)."""


MEASURES: tuple[MeasureSpec, ...] = (
    MeasureSpec(
        "revenue",
        "Revenue",
        "currency",
        ("sell_through",),
        "sum of sell_through.net_amount of lines sold in the period (after discount; returns, "
        "with negative amounts, included)",
        has_growth=True,
        spans="period",
    ),
    MeasureSpec(
        "revenue_growth",
        "Revenue growth",
        "growth",
        ("sell_through",),
        "revenue / revenue of the previous period - 1; market: market.revenue growth over the "
        "same days, weighted by the partner's previous-period revenue per account country and "
        "product category",
        spans="both",
    ),
    MeasureSpec(
        "deal_registrations",
        "Deal registrations",
        "count",
        ("opportunities",),
        "opportunities created in the period with deal_registered true",
        has_growth=True,
        spans="period",
    ),
    MeasureSpec(
        "conversion_rate",
        "Conversion rate",
        "share",
        ("opportunities",),
        "opportunities won / opportunities won or lost, of those closed (closed_on) in the period",
    ),
    MeasureSpec(
        "presales_support_rate",
        "Pre-sales support use",
        "share",
        ("opportunities",),
        "share of opportunities created in the period with presales_support true",
    ),
    MeasureSpec(
        "supplies_attach_rate",
        "Supplies attach rate",
        "per printer",
        ("sell_through", "products"),
        "net units of supplies sold in the period / net units of printers sold in the period "
        "(products.category)",
    ),
    MeasureSpec(
        "warranty_attach_rate",
        "Warranty attach rate",
        "per device",
        ("sell_through", "products"),
        "net units of warranty extensions (care packs) sold in the period / net units of "
        "devices (printers and PCs) sold in the period (products.category)",
    ),
    MeasureSpec(
        "average_sale_value",
        "Average sale value",
        "currency",
        ("sell_through",),
        "mean net_amount of the invoice lines with quantity > 0 sold in the period (per "
        "invoice line: the contract has no order id)",
    ),
    MeasureSpec(
        "revenue_per_account",
        "Revenue per account",
        "currency",
        ("sell_through",),
        "revenue / accounts with at least one sell_through line in the period",
        spans="period",
    ),
    MeasureSpec(
        "tickets_per_device",
        "Support tickets per device",
        "per device",
        ("service_events", "install_base"),
        f"service tickets of kind {', '.join(SUPPORT_KINDS)} opened in the period / devices in "
        "service during it (installed_on on or before its last day, retired_on empty or after "
        "its first day)",
        spans="period",
    ),
    MeasureSpec(
        "sla_compliance",
        "SLA compliance",
        "share",
        ("service_events",),
        "share of service tickets opened in the period with sla_met recorded that met the SLA",
    ),
    MeasureSpec(
        "account_retention",
        "Account retention",
        "share",
        ("sell_through",),
        "share of accounts that bought (a line with quantity > 0) in the previous period and "
        "bought again in this one",
        spans="both",
    ),
    MeasureSpec(
        "account_expansion",
        "Account expansion",
        "share",
        ("sell_through", "products"),
        "share of retained accounts that spent more (net_amount) or bought in more product "
        "categories than in the previous period",
        spans="both",
    ),
    MeasureSpec(
        "inventory_units_on_hand",
        "Inventory on hand",
        "units",
        ("inventory",),
        "units_on_hand summed over SKUs at the partner's latest inventory snapshot (as_of) "
        "dated in the period",
    ),
    MeasureSpec(
        "inventory_weeks_of_cover",
        "Inventory weeks of cover",
        "weeks",
        ("inventory", "sell_through"),
        f"units on hand at that snapshot / (net units of the same SKUs sold in the "
        f"{RUN_RATE_DAYS // 7} weeks up to the snapshot / {RUN_RATE_DAYS // 7})",
    ),
)
MEASURE_NAMES = tuple(m.name for m in MEASURES)


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def before(self) -> Period:
        """The period of the same length ending the day before this one starts."""
        last = self.first - timedelta(days=1)
        return Period(last - timedelta(days=self.days - 1), last)

    def __str__(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class Measure:
    """One row of the report: the partner's value, its peers' aggregates, the market."""

    name: str
    label: str
    unit: str
    definition: str
    needs: tuple[str, ...]
    available: bool
    reason: str | None
    """Why the partner's value is unavailable (None when available)."""
    value: float | None
    previous: float | None = None
    """The value in the previous period (None when it cannot be computed there)."""
    previous_reason: str | None = None
    """Why the previous period's value is unavailable (None when it is shown, or for a measure
    that is itself a comparison with the previous period)."""
    growth: float | None = None
    """value / previous - 1, for volume measures with a positive previous value."""
    peers_with_measure: int = 0
    peer_p25: float | None = None
    peer_median: float | None = None
    peer_p75: float | None = None
    percentile: float | None = None
    """The partner's percentile rank among the peers (0-100; ties count half)."""
    peer_reason: str | None = None
    """Why the peer figures are not shown (None when they are)."""
    market: float | None = None
    market_reason: str | None = None
    note: str | None = None

    @property
    def peers_shown(self) -> bool:
        return self.peer_median is not None


FRAME_COLUMNS = (
    "name",
    "label",
    "unit",
    "available",
    "reason",
    "value",
    "previous",
    "previous_reason",
    "growth",
    "peers_with_measure",
    "peer_p25",
    "peer_median",
    "peer_p75",
    "percentile",
    "peer_reason",
    "market",
    "market_reason",
    "note",
    "needs",
    "definition",
)


@dataclass(frozen=True)
class BenchmarkReport:
    """A partner's measures for one period, against its peer group and the market."""

    partner_id: str
    as_of: date
    period: Period
    previous_period: Period
    peer_by: tuple[str, ...]
    peer_group: dict[str, Any]
    """The partner's own values of the ``peer_by`` columns (the group's definition)."""
    peer_group_size: int
    """Consenting partners in the lake in the group, the partner itself excluded."""
    k_anonymity: int
    measures: list[Measure] = field(default_factory=list)
    peer_group_reason: str | None = None
    """Why there is no peer group at all (None when the group could be formed)."""
    coverage: Period | None = None
    """The days the partner's data covers (see :func:`benchmark`); None if no pack says."""

    def measure(self, name: str) -> Measure:
        """The measure called ``name``."""
        for m in self.measures:
            if m.name == name:
                return m
        raise NotFoundError(
            f"benchmark report has no measure {name!r}; the measures are {', '.join(MEASURE_NAMES)}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per measure, columns :data:`FRAME_COLUMNS`."""
        rows = []
        for m in self.measures:
            row = asdict(m)
            row["needs"] = ", ".join(m.needs)
            rows.append({c: row[c] for c in FRAME_COLUMNS})
        frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        floats = ["value", "previous", "growth", "peer_p25", "peer_median", "peer_p75"]
        frame[[*floats, "percentile", "market"]] = frame[[*floats, "percentile", "market"]].astype(
            "float64"
        )
        return frame

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (dates as ISO strings, no NaN)."""
        return {
            "partner_id": self.partner_id,
            "as_of": self.as_of.isoformat(),
            "period": _period_dict(self.period),
            "previous_period": _period_dict(self.previous_period),
            "peer_group": {
                "by": list(self.peer_by),
                "values": dict(self.peer_group),
                "size": self.peer_group_size,
                "k_anonymity": self.k_anonymity,
                "reason": self.peer_group_reason,
            },
            "coverage": None if self.coverage is None else _period_dict(self.coverage),
            "measures": [{**asdict(m), "needs": list(m.needs)} for m in self.measures],
        }

    def render(self, *, definitions: bool = False) -> str:
        """A plain-text table for the terminal, reasons as numbered notes below it."""
        return _render(self, definitions=definitions)


def benchmark(
    lake: Lake,
    partner_id: str,
    *,
    as_of: date | str | None = None,
    period_days: int = 365,
    peer_by: Sequence[str] = ("track", "country"),
    k_anonymity: int | None = None,
) -> BenchmarkReport:
    """Benchmark ``partner_id`` over ``(as_of - period_days, as_of]`` against its peers.

    ``as_of`` defaults to the latest period end of the lake's packs; ``peer_by`` names columns
    of the partners table (empty: every other consenting partner is a peer); ``k_anonymity``
    defaults to the setting of the same name. Raises :class:`NotFoundError` for a partner
    without data in the lake, :class:`InvalidRequestError` for bad parameters.

    A partner's data covers the days from the earliest start of its packs' periods (or its
    first sale, if earlier) to the latest end (or its last sale, if later). A total over the
    period (revenue, say) is unavailable, with the reason, when the data does not cover the
    whole period, and a comparison with the period before (growth, retention) when it does
    not cover both: an export that starts in the middle of last year would otherwise read as
    growth. Peers are held to the same rule.
    """
    if k_anonymity is None:
        from amplify_ml.config import get_settings

        k_anonymity = get_settings().k_anonymity
    k = _check_k(k_anonymity)
    days = _check_days(period_days)
    by = _check_peer_by(peer_by)
    in_lake = lake.partners()
    if not isinstance(partner_id, str) or partner_id not in in_lake:
        raise NotFoundError(
            f"partner {partner_id!r} has no data in the lake at {lake.root}: the id is unknown, "
            "its data pack was not ingested, or it withdrew its consent; check the id (ids are "
            "case-sensitive) or ingest the partner's pack with `amplify ingest`, then try again"
        )
    end = _check_as_of(lake, as_of)
    period = Period(end - timedelta(days=days - 1), end)
    previous = period.before()

    registry = _registry(lake)
    group, peers, group_reason = _peer_group(registry, partner_id, by, in_lake)
    cohort = [partner_id, *peers]
    present = _present_tables(lake, cohort)
    lake_tables = set(lake.tables())
    home_country = _home_country(registry, partner_id)
    with closing(lake.connect(cohort)) as con:
        now = _aggregates(con, lake_tables, period)
        before = _aggregates(con, lake_tables, previous)
        market = _market_growth(con, lake_tables, partner_id, home_country, period, previous)
        coverage = _coverage(lake, con, lake_tables, cohort)

    rows_now = {p: _Row(now, p, present[p], period, coverage[p]) for p in cohort}
    rows_before = {p: _Row(before, p, present[p], previous, coverage[p]) for p in cohort}
    measures = []
    for spec in MEASURES:
        values = {p: _evaluate(spec, rows_now[p], rows_before[p]) for p in cohort}
        own = values[partner_id]
        prev = (
            _evaluate(spec, rows_before[partner_id], None, hint=False)
            if spec.name != "revenue_growth"
            else _Value(None)
        )
        currency = rows_now[partner_id].currency if spec.unit == "currency" else None
        if spec.unit == "currency" and currency is None:
            currency = rows_before[partner_id].currency
        peer_values = [
            v.value
            for p, v in values.items()
            if p != partner_id
            and v.value is not None
            and (spec.unit != "currency" or rows_now[p].currency == currency)
        ]
        stats = _peer_stats(peer_values, own.value, k, group_reason, currency)
        growth = None
        same_currency = spec.unit != "currency" or rows_before[partner_id].currency == currency
        if spec.has_growth and own.value is not None and prev.value and prev.value > 0:
            growth = own.value / prev.value - 1.0 if same_currency else None
        extra: dict[str, Any] = {}
        if spec.name == "revenue_growth":
            extra = {"market": market.value, "market_reason": market.reason, "note": market.note}
        measures.append(
            Measure(
                name=spec.name,
                label=spec.label,
                unit=(currency or "currency") if spec.unit == "currency" else spec.unit,
                definition=spec.definition,
                needs=spec.needs,
                available=own.value is not None,
                reason=own.reason,
                value=own.value,
                previous=prev.value,
                previous_reason=prev.reason if prev.value is None else None,
                growth=growth,
                **stats,
                **extra,
            )
        )
    return BenchmarkReport(
        partner_id=partner_id,
        as_of=end,
        period=period,
        previous_period=previous,
        peer_by=by,
        peer_group=group,
        peer_group_size=len(peers),
        k_anonymity=k,
        measures=measures,
        peer_group_reason=group_reason,
        coverage=coverage[partner_id],
    )


# -- parameters --------------------------------------------------------------------------------


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidRequestError(
            f"k_anonymity must be a whole number of partners >= 1, got {k!r}; leave it out to "
            "use the AMPLIFY_K_ANONYMITY setting (default 5)"
        )
    return int(k)


def _check_days(days: Any) -> int:
    if isinstance(days, bool) or not isinstance(days, int | np.integer):
        raise InvalidRequestError(
            f"period_days must be a whole number of days, got {days!r}; e.g. 365 for a year"
        )
    if not 1 <= days <= MAX_PERIOD_DAYS:
        raise InvalidRequestError(
            f"period_days must lie between 1 and {MAX_PERIOD_DAYS}, got {days}; e.g. 365 for a "
            "year or 90 for a quarter"
        )
    return int(days)


def _peer_columns() -> tuple[str, ...]:
    return tuple(c for c in TABLES["partners"].column_names if c not in _NOT_PEER_COLUMNS)


def _check_peer_by(peer_by: Any) -> tuple[str, ...]:
    allowed = _peer_columns()
    cols = (peer_by,) if isinstance(peer_by, str) else peer_by
    try:
        cols = tuple(cols)
    except TypeError:
        cols = (peer_by,)
    bad = [c for c in cols if c not in allowed]
    if bad:
        raise InvalidRequestError(
            f"peer_by {bad[0]!r} is not a column peers can be grouped by; use any of "
            f"{', '.join(allowed)} (columns of the partners table), or () for all partners"
        )
    if len(set(cols)) != len(cols):
        raise InvalidRequestError(f"peer_by names a column twice: {list(cols)}; name each once")
    return cols


def _check_as_of(lake: Lake, as_of: date | str | None) -> date:
    if as_of is None:
        packs = lake.packs()
        ends = pd.to_datetime(packs["period_end"], errors="coerce").dropna()
        if ends.empty:
            raise InvalidRequestError(
                f"no pack in the lake at {lake.root} states its period; pass as_of "
                "(YYYY-MM-DD), the last day of the period to benchmark"
            )
        return ends.max().date()
    if isinstance(as_of, pd.Timestamp | np.datetime64):
        return pd.Timestamp(as_of).date()
    if isinstance(as_of, datetime):
        return as_of.date()
    if isinstance(as_of, date):
        return as_of
    if isinstance(as_of, str):
        try:
            return date.fromisoformat(as_of)
        except ValueError:
            pass
    raise InvalidRequestError(
        f"as_of {as_of!r} is not a date; give the last day of the period as YYYY-MM-DD "
        "(e.g. 2024-12-31), or leave it out for the latest period end of the lake's packs"
    )


# -- peers ------------------------------------------------------------------------------------


def _registry(lake: Lake) -> pd.DataFrame:
    """The partners table (one row per partner, the latest), or an empty frame."""
    src = lake.source("partners")
    if src is None:
        return pd.DataFrame(columns=list(TABLES["partners"].column_names))
    with closing(duckdb.connect()) as con:
        df = _frame(con, f"SELECT * FROM {src}")
    return df.drop_duplicates("partner_id", keep="last").set_index("partner_id")


def _json_value(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _peer_group(
    registry: pd.DataFrame, partner_id: str, by: tuple[str, ...], in_lake: list[str]
) -> tuple[dict[str, Any], list[str], str | None]:
    """The group's definition, its members (sorted) and why there is no group, if so."""
    if partner_id not in registry.index:
        return (
            {},
            [],
            "the partner is not in the partners table (vendor pack), so its peer group is "
            "unknown; ingest the vendor's latest pack",
        )
    own = registry.loc[partner_id]
    group = {c: _json_value(own[c]) for c in by}
    empty = [c for c, v in group.items() if v is None]
    if empty:
        return (
            group,
            [],
            f"the partner's {empty[0]} is empty in the partners table, so its peer group is "
            "unknown; fix the vendor's partners table or choose other peer_by columns",
        )
    mask = registry.index.isin(in_lake) & (registry.index != partner_id)
    mask &= registry["data_sharing"].fillna(False).astype(bool).to_numpy()
    for c in by:
        mask &= (registry[c].map(_json_value) == group[c]).to_numpy()
    peers = sorted(registry.index[mask])
    return group, peers, None


def _peer_stats(
    values: list[float], own: float | None, k: int, group_reason: str | None, currency: str | None
) -> dict[str, Any]:
    n = len(values)
    out: dict[str, Any] = {"peers_with_measure": n}
    if group_reason is not None:
        return {**out, "peer_reason": group_reason}
    if n < k:
        what = (
            "no peer has"
            if n == 0
            else f"only {n} peer{'s' if n > 1 else ''} {'have' if n > 1 else 'has'}"
        )
        unit = f" in {currency}" if currency else ""
        return {**out, "peer_reason": f"{what} this measure{unit}; at least {k} are needed"}
    arr = np.asarray(values, dtype="float64")
    p25, median, p75 = (float(x) for x in np.percentile(arr, [25, 50, 75]))
    out.update(peer_p25=p25, peer_median=median, peer_p75=p75)
    if own is not None:
        below = float(np.sum(arr < own))
        ties = float(np.sum(arr == own))
        out["percentile"] = 100.0 * (below + 0.5 * ties) / n
    return out


# -- data -------------------------------------------------------------------------------------


def _present_tables(lake: Lake, cohort: list[str]) -> dict[str, set[str]]:
    """Per partner, the tables with rows of it in the lake (vendor tables: of the vendor)."""
    files = lake.snapshot().files.get("tables", {})
    out: dict[str, set[str]] = {p: set() for p in cohort}
    for table, parts in files.items():
        if table not in TABLES:
            continue
        filled = {p for p, f in parts.items() if f}
        for p in cohort:
            if partition_of(table) == "partner_id":
                if p in filled:
                    out[p].add(table)
            elif filled:
                out[p].add(table)
    return out


def _home_country(registry: pd.DataFrame, partner_id: str) -> str | None:
    if partner_id in registry.index and "country" in registry.columns:
        return _json_value(registry.loc[partner_id, "country"])
    return None


def _frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> pd.DataFrame:
    return con.execute(sql, params or []).to_arrow_table().to_pandas()


def _lit(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _within(col: str, p: Period) -> str:
    return f"{col} BETWEEN {_lit(p.first)} AND {_lit(p.last)}"


def _categories_cte(tables: set[str]) -> str:
    if "products" in tables:
        return "cat AS (SELECT sku, any_value(category) AS category FROM products GROUP BY sku)"
    return "cat AS (SELECT NULL::VARCHAR AS sku, NULL::VARCHAR AS category WHERE false)"


def _aggregates(con: duckdb.DuckDBPyConnection, tables: set[str], p: Period) -> pd.DataFrame:
    """Raw counts and sums per partner for period ``p``, one row per partner with rows."""
    frames: list[pd.DataFrame] = []
    if "sell_through" in tables:
        cat = _categories_cte(tables)
        frames.append(
            _frame(
                con,
                f"""
                WITH {cat},
                st AS (SELECT s.*, c.category FROM sell_through s LEFT JOIN cat c USING (sku)
                       WHERE {_within("s.sold_on", p)})
                SELECT partner_id,
                    count(*) AS lines,
                    sum(net_amount) AS revenue,
                    count(*) FILTER (WHERE quantity > 0) AS sale_lines,
                    sum(net_amount) FILTER (WHERE quantity > 0) AS sale_amount,
                    count(DISTINCT account_id) AS accounts,
                    list(DISTINCT currency ORDER BY currency) AS currencies,
                    coalesce(sum(quantity) FILTER (WHERE category = 'printer'), 0)
                        AS printer_units,
                    coalesce(sum(quantity) FILTER (WHERE category IN ('printer', 'pc')), 0)
                        AS device_units,
                    coalesce(sum(quantity) FILTER (WHERE category = 'supplies'), 0)
                        AS supplies_units,
                    coalesce(sum(quantity) FILTER (WHERE category = 'warranty'), 0)
                        AS warranty_units
                FROM st GROUP BY partner_id
                """,
            )
        )
        before = p.before()
        frames.append(
            _frame(
                con,
                f"""
                WITH {cat},
                acc AS (
                    SELECT s.partner_id, s.account_id, s.sold_on >= {_lit(p.first)} AS is_now,
                        sum(s.net_amount) AS amount,
                        count(DISTINCT c.category) FILTER (WHERE s.quantity > 0) AS categories,
                        bool_or(s.quantity > 0) AS bought
                    FROM sell_through s LEFT JOIN cat c USING (sku)
                    WHERE s.sold_on BETWEEN {_lit(before.first)} AND {_lit(p.last)}
                    GROUP BY ALL
                )
                SELECT b.partner_id,
                    count(*) AS buyers_before,
                    count(n.account_id) AS retained,
                    count(*) FILTER (WHERE n.amount > b.amount OR n.categories > b.categories)
                        AS expanded
                FROM acc b LEFT JOIN acc n ON n.partner_id = b.partner_id
                    AND n.account_id = b.account_id AND n.is_now AND n.bought
                WHERE NOT b.is_now AND b.bought
                GROUP BY b.partner_id
                """,
            )
        )
    if "opportunities" in tables:
        created, closed = _within("created_on", p), _within("closed_on", p)
        frames.append(
            _frame(
                con,
                f"""
                SELECT partner_id,
                    count(*) FILTER (WHERE {created}) AS opps_created,
                    count(*) FILTER (WHERE {created} AND deal_registered) AS registered,
                    count(*) FILTER (WHERE {created} AND presales_support) AS presales,
                    count(*) FILTER (WHERE {closed} AND stage = 'won') AS won,
                    count(*) FILTER (WHERE {closed} AND stage = 'lost') AS lost
                FROM opportunities GROUP BY partner_id
                """,
            )
        )
    if "service_events" in tables:
        kinds = ", ".join(f"'{k}'" for k in SUPPORT_KINDS)
        frames.append(
            _frame(
                con,
                f"""
                SELECT partner_id,
                    count(*) AS tickets,
                    count(*) FILTER (WHERE kind IN ({kinds})) AS support_tickets,
                    count(sla_met) AS sla_known,
                    count(*) FILTER (WHERE sla_met) AS sla_met
                FROM service_events WHERE {_within("CAST(opened_at AS DATE)", p)}
                GROUP BY partner_id
                """,
            )
        )
    if "install_base" in tables:
        frames.append(
            _frame(
                con,
                f"""
                SELECT partner_id, count(*) AS devices FROM install_base
                WHERE installed_on <= {_lit(p.last)}
                    AND (retired_on IS NULL OR retired_on >= {_lit(p.first)})
                GROUP BY partner_id
                """,
            )
        )
    if "inventory" in tables and "sell_through" in tables:
        frames.append(
            _frame(
                con,
                f"""
                WITH snap AS (
                    SELECT partner_id, max(as_of) AS snap FROM inventory
                    WHERE {_within("as_of", p)} GROUP BY partner_id
                ),
                inv AS (
                    SELECT i.partner_id, i.sku, sum(i.units_on_hand) AS units,
                        any_value(snap.snap) AS snap
                    FROM inventory i JOIN snap
                        ON i.partner_id = snap.partner_id AND i.as_of = snap.snap
                    GROUP BY ALL
                ),
                sold AS (
                    SELECT inv.partner_id, inv.sku, sum(s.quantity) AS units
                    FROM inv JOIN sell_through s ON s.partner_id = inv.partner_id
                        AND s.sku = inv.sku
                        AND s.sold_on > inv.snap - {RUN_RATE_DAYS} AND s.sold_on <= inv.snap
                    GROUP BY ALL
                )
                SELECT inv.partner_id, any_value(inv.snap) AS inventory_as_of,
                    sum(inv.units) AS units_on_hand,
                    coalesce(sum(sold.units), 0) AS units_sold_run_rate
                FROM inv LEFT JOIN sold USING (partner_id, sku)
                GROUP BY inv.partner_id
                """,
            )
        )
    out = pd.DataFrame(index=pd.Index([], name="partner_id"))
    for f in frames:
        out = out.join(f.set_index("partner_id"), how="outer")
    return out


@dataclass(frozen=True)
class _Value:
    value: float | None
    reason: str | None = None


class _Row:
    """One partner's raw aggregates for one period, with the tables it has and the days its
    data covers."""

    def __init__(
        self,
        agg: pd.DataFrame,
        partner: str,
        tables: set[str],
        period: Period,
        covered: Period | None = None,
    ) -> None:
        self.data: dict[str, Any] = (
            {k: v for k, v in agg.loc[partner].items()} if partner in agg.index else {}
        )
        self.tables = tables
        self.period = period
        self.covered = covered

    def n(self, key: str) -> float:
        """A count or sum; 0 when the partner had no rows in the period."""
        v = self.data.get(key)
        return 0.0 if v is None or pd.isna(v) else float(v)

    def get(self, key: str) -> Any:
        v = self.data.get(key)
        if v is None or (np.ndim(v) == 0 and pd.isna(v)):
            return None
        return v

    @property
    def currencies(self) -> list[str]:
        v = self.get("currencies")
        return [] if v is None else [str(c) for c in v]

    @property
    def currency(self) -> str | None:
        c = self.currencies
        return c[0] if len(c) == 1 else None


def _coverage(
    lake: Lake, con: duckdb.DuckDBPyConnection, tables: set[str], cohort: list[str]
) -> dict[str, Period | None]:
    """Per partner, the days its data covers: from the earliest start of its packs' periods
    (or its first sale, if earlier) to the latest end (or its last sale, if later)."""
    packs = lake.packs()
    first: dict[str, date] = {}
    last: dict[str, date] = {}

    def widen(p: str, lo: Any, hi: Any) -> None:
        lo, hi = pd.to_datetime(lo, errors="coerce"), pd.to_datetime(hi, errors="coerce")
        if not pd.isna(lo):
            first[p] = min(first.get(p, lo.date()), lo.date())
        if not pd.isna(hi):
            last[p] = max(last.get(p, hi.date()), hi.date())

    for pack in packs.itertuples():
        if pack.source in cohort:
            widen(pack.source, pack.period_start, pack.period_end)
    if "sell_through" in tables:
        sold = _frame(
            con,
            "SELECT partner_id, min(sold_on) AS lo, max(sold_on) AS hi FROM sell_through "
            "GROUP BY partner_id",
        )
        for row in sold.itertuples():
            if row.partner_id in cohort:
                widen(row.partner_id, row.lo, row.hi)
    return {p: Period(first[p], last[p]) if p in first and p in last else None for p in cohort}


def _uncovered(spec: MeasureSpec, r: _Row, hint: bool = True) -> str | None:
    """Why the partner's data is too short for ``spec`` over ``r.period`` (None if it is not),
    with a period that would do unless ``hint`` is false."""
    c = r.covered
    if spec.spans == "any" or c is None:
        return None
    both = spec.spans == "both"
    need = Period(r.period.before().first, r.period.last) if both else r.period
    if c.first <= need.first and need.last <= c.last:
        return None
    what = f"{r.period} and the period before it" if both else str(r.period)
    why = (
        "comparing a partial period with a whole one would read as growth or loss"
        if both
        else "a total over part of the period would read as a fall"
    )
    if not hint:
        return f"the partner's data covers {c}, not all of {what}: {why}"
    if need.last > c.last:
        fix = f"choose as_of on or before {c.last.isoformat()}"
    else:
        fits = (r.period.last - c.first).days + 1
        fits = fits // 2 if both else fits
        fix = (
            f"choose period_days of at most {fits} with this as_of"
            if fits >= 1
            else f"choose an as_of after {c.first.isoformat()}"
        )
    return f"the partner's data covers {c}, not all of {what}: {why}; {fix}"


def _missing_table(table: str) -> str:
    if table in _VENDOR_TABLES:
        return f"needs the {table} table, which comes with the vendor's pack and is not in the lake"
    return f"needs the {table} table, which this partner's data packs do not include"


def _money(r: _Row) -> str | None:
    if r.n("lines") == 0:
        return f"no sell_through lines sold in {r.period}"
    cur = r.currencies
    if len(cur) > 1:
        return (
            f"sell_through lines of {r.period} are in {len(cur)} currencies ({', '.join(cur)}); "
            "amounts are not converted between currencies"
        )
    return None


def _revenue(r: _Row) -> float | str:
    return _money(r) or r.n("revenue")


def _revenue_growth(r: _Row, before: _Row | None) -> float | str:
    if (reason := _money(r)) is not None:
        return reason
    if before is None:
        return "not computed"
    if before.n("lines") == 0:
        return f"no sell_through lines sold in the previous period ({before.period})"
    if (reason := _money(before)) is not None:
        return reason
    if before.currency != r.currency:
        return (
            f"revenue was in {before.currency} in the previous period and in {r.currency} in "
            "this one; amounts are not converted between currencies"
        )
    if before.n("revenue") <= 0:
        return f"revenue of the previous period ({before.period}) was not positive"
    return r.n("revenue") / before.n("revenue") - 1.0


def _deal_registrations(r: _Row) -> float | str:
    return r.n("registered")


def _conversion(r: _Row) -> float | str:
    closed = r.n("won") + r.n("lost")
    if closed == 0:
        return f"no opportunity was closed (won or lost) in {r.period}"
    return r.n("won") / closed


def _presales(r: _Row) -> float | str:
    if r.n("opps_created") == 0:
        return f"no opportunity was created in {r.period}"
    return r.n("presales") / r.n("opps_created")


def _supplies_attach(r: _Row) -> float | str:
    if r.n("printer_units") <= 0:
        return f"no printers sold (net units, products.category printer) in {r.period}"
    return r.n("supplies_units") / r.n("printer_units")


def _warranty_attach(r: _Row) -> float | str:
    if r.n("device_units") <= 0:
        return f"no devices sold (net units, products.category printer or pc) in {r.period}"
    return r.n("warranty_units") / r.n("device_units")


def _average_sale(r: _Row) -> float | str:
    if (reason := _money(r)) is not None:
        return reason
    if r.n("sale_lines") == 0:
        return f"no sell_through line with quantity > 0 in {r.period}"
    return r.n("sale_amount") / r.n("sale_lines")


def _revenue_per_account(r: _Row) -> float | str:
    if (reason := _money(r)) is not None:
        return reason
    return r.n("revenue") / r.n("accounts")


def _tickets_per_device(r: _Row) -> float | str:
    if r.n("devices") == 0:
        return f"no device of install_base was in service during {r.period}"
    return r.n("support_tickets") / r.n("devices")


def _sla(r: _Row) -> float | str:
    if r.n("tickets") == 0:
        return f"no service ticket was opened in {r.period}"
    if r.n("sla_known") == 0:
        return (
            f"no service ticket opened in {r.period} records service_events.sla_met "
            "(the column is empty)"
        )
    return r.n("sla_met") / r.n("sla_known")


def _retention(r: _Row) -> float | str:
    if r.n("buyers_before") == 0:
        return f"no account bought in the period before ({r.period.before()})"
    return r.n("retained") / r.n("buyers_before")


def _expansion(r: _Row) -> float | str:
    if r.n("buyers_before") == 0:
        return f"no account bought in the period before ({r.period.before()})"
    if r.n("retained") == 0:
        return f"no account bought both in {r.period.before()} and in {r.period}"
    return r.n("expanded") / r.n("retained")


def _inventory_units(r: _Row) -> float | str:
    if r.get("inventory_as_of") is None:
        return f"no inventory snapshot (inventory.as_of) dated in {r.period}"
    return r.n("units_on_hand")


def _weeks_of_cover(r: _Row) -> float | str:
    snap = r.get("inventory_as_of")
    if snap is None:
        return f"no inventory snapshot (inventory.as_of) dated in {r.period}"
    sold = r.n("units_sold_run_rate")
    if sold <= 0:
        return (
            f"no net units of the stocked SKUs were sold in the {RUN_RATE_DAYS // 7} weeks up to "
            f"the inventory snapshot of {pd.Timestamp(snap).date().isoformat()}"
        )
    return r.n("units_on_hand") / (sold / (RUN_RATE_DAYS // 7))


_COMPUTE: Mapping[str, Callable[[_Row], float | str]] = {
    "revenue": _revenue,
    "deal_registrations": _deal_registrations,
    "conversion_rate": _conversion,
    "presales_support_rate": _presales,
    "supplies_attach_rate": _supplies_attach,
    "warranty_attach_rate": _warranty_attach,
    "average_sale_value": _average_sale,
    "revenue_per_account": _revenue_per_account,
    "tickets_per_device": _tickets_per_device,
    "sla_compliance": _sla,
    "account_retention": _retention,
    "account_expansion": _expansion,
    "inventory_units_on_hand": _inventory_units,
    "inventory_weeks_of_cover": _weeks_of_cover,
}


def _evaluate(spec: MeasureSpec, r: _Row, before: _Row | None, hint: bool = True) -> _Value:
    """The measure for one partner and period, or why it is unavailable."""
    for table in spec.needs:
        if table not in r.tables:
            return _Value(None, _missing_table(table))
    if (reason := _uncovered(spec, r, hint)) is not None:
        return _Value(None, reason)
    out = _revenue_growth(r, before) if spec.name == "revenue_growth" else _COMPUTE[spec.name](r)
    if isinstance(out, str):
        return _Value(None, out)
    if not math.isfinite(out):  # defensive: a measure is a number or a reason, never NaN
        return _Value(None, f"the {spec.name} of {r.period} is not a finite number")
    return _Value(float(out))


# -- market -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Market:
    value: float | None
    reason: str | None = None
    note: str | None = None


def _month_fractions(p: Period) -> dict[date, float]:
    """For each calendar month overlapping ``p``, the share of its days inside ``p``."""
    out: dict[date, float] = {}
    month = p.first.replace(day=1)
    while month <= p.last:
        nxt = (month + timedelta(days=32)).replace(day=1)
        lo, hi = max(month, p.first), min(nxt - timedelta(days=1), p.last)
        out[month] = ((hi - lo).days + 1) / (nxt - month).days
        month = nxt
    return out


def _cells_text(cells: Sequence[tuple[str, str]], limit: int = 5) -> str:
    shown = ", ".join(f"{c}/{k}" for c, k in cells[:limit])
    return shown + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def _market_growth(
    con: duckdb.DuckDBPyConnection,
    tables: set[str],
    partner_id: str,
    home_country: str | None,
    period: Period,
    previous: Period,
) -> _Market:
    """Market revenue growth over the partner's countries and categories, mix-weighted."""
    if "market" not in tables:
        return _Market(None, _missing_table("market"))
    if "sell_through" not in tables or "products" not in tables:
        return _Market(None, _missing_table("sell_through" if "products" in tables else "products"))
    accounts = (
        "(SELECT partner_id, account_id, any_value(country) AS country FROM accounts GROUP BY ALL)"
        if "accounts" in tables
        else "(SELECT NULL::VARCHAR AS partner_id, NULL::VARCHAR AS account_id, "
        "NULL::VARCHAR AS country WHERE false)"
    )
    weights = _frame(
        con,
        f"""
        WITH {_categories_cte(tables)}
        SELECT coalesce(a.country, ?) AS country, c.category, sum(s.net_amount) AS amount
        FROM sell_through s LEFT JOIN cat c USING (sku)
        LEFT JOIN {accounts} a ON a.partner_id = s.partner_id AND a.account_id = s.account_id
        WHERE s.partner_id = ? AND {_within("s.sold_on", previous)}
        GROUP BY ALL HAVING sum(s.net_amount) > 0
        """,
        [home_country, partner_id],
    )
    weights = weights.dropna(subset=["country", "category"])
    if weights.empty:
        return _Market(
            None,
            f"no positive revenue of known country and category in {previous} to weight the "
            "market by",
        )
    now_f, before_f = _month_fractions(period), _month_fractions(previous)
    months = sorted({*now_f, *before_f})
    market = _frame(
        con,
        f"""
        SELECT country, category, CAST(date_trunc('month', month) AS DATE) AS month,
            sum(revenue) AS revenue
        FROM market
        WHERE month BETWEEN {_lit(months[0])} AND {_lit(months[-1] + timedelta(days=31))}
        GROUP BY ALL
        """,
    )
    by_cell = {
        (c, k): dict(
            zip(g["month"].map(lambda m: pd.Timestamp(m).date()), g["revenue"], strict=True)
        )
        for (c, k), g in market.groupby(["country", "category"])
    }
    total = float(weights["amount"].sum())
    covered_w, weighted, missing = 0.0, 0.0, []
    for row in weights.sort_values(["country", "category"]).itertuples(index=False):
        cell = (row.country, row.category)
        revenue = by_cell.get(cell, {})
        if any(m not in revenue or pd.isna(revenue[m]) for m in months):
            missing.append(cell)
            continue
        now_rev = sum(revenue[m] * f for m, f in now_f.items())
        before_rev = sum(revenue[m] * f for m, f in before_f.items())
        if before_rev <= 0:
            missing.append(cell)
            continue
        covered_w += float(row.amount)
        weighted += float(row.amount) * (now_rev / before_rev - 1.0)
    if covered_w == 0:
        return _Market(
            None,
            f"the market table does not cover every month from {months[0]:%Y-%m} to "
            f"{months[-1]:%Y-%m} for the partner's countries and categories "
            f"({_cells_text(missing)})",
        )
    note = f"market growth weighted by the partner's revenue per country and category in {previous}"
    if missing:
        note += (
            f"; the market table covers {100 * covered_w / total:.0f}% of that revenue "
            f"(not covered: {_cells_text(missing)})"
        )
    return _Market(weighted / covered_w, None, note)


# -- rendering --------------------------------------------------------------------------------


def _period_dict(p: Period) -> dict[str, Any]:
    return {"first": p.first.isoformat(), "last": p.last.isoformat(), "days": p.days}


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return ""
    if unit == "growth":
        return f"{100 * v:+.1f}%"
    if unit == "share":
        return f"{100 * v:.1f}%"
    if unit in ("count", "units"):
        return f"{v:,.0f}"
    return f"{v:,.2f}"  # money, ratios, weeks


def _render(report: BenchmarkReport, *, definitions: bool) -> str:
    notes: dict[str, int] = {}

    def ref(text: str) -> str:
        notes.setdefault(text, len(notes) + 1)
        return f"[{notes[text]}]"

    header = [
        "Measure",
        "Unit",
        "Partner",
        "Previous",
        "Growth",
        "Peer p25",
        "Median",
        "Peer p75",
        "Percentile",
        "Market",
    ]
    rows: list[list[str]] = []
    for m in report.measures:
        unit = "%" if m.unit in ("share", "growth") else m.unit
        value = _fmt(m.value, m.unit) if m.available else f"n/a {ref(f'{m.name}: {m.reason}')}"
        if m.peers_shown:
            peers = [
                _fmt(m.peer_p25, m.unit),
                _fmt(m.peer_median, m.unit),
                _fmt(m.peer_p75, m.unit),
            ]
            rank = "" if m.percentile is None else f"{m.percentile:.0f}"
        else:
            peers = ["-", f"- {ref(f'peers: {m.peer_reason}')}", "-"]
            rank = ""
        market = ""
        if m.market is not None:
            market = _fmt(m.market, m.unit)
        elif m.market_reason:
            market = f"n/a {ref(f'market: {m.market_reason}')}"
        if m.note:
            market += f" {ref(m.note)}"
        previous = _fmt(m.previous, m.unit)
        if m.previous is None and m.previous_reason == m.reason and m.reason:
            previous = f"n/a {ref(f'{m.name}: {m.reason}')}"  # the current value's note
        elif m.previous is None and m.previous_reason:
            previous = f"n/a {ref(f'{m.name}, previous period: {m.previous_reason}')}"
        rows.append(
            [
                m.label,
                unit,
                value,
                previous,
                _fmt(m.growth, "growth"),
                *peers,
                rank,
                market.strip(),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {0, 1}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    group = ", ".join(f"{k}={v}" for k, v in report.peer_group.items()) or "all partners"
    out = [
        f"Benchmark of partner {report.partner_id}: {report.period} ({report.period.days} days), "
        f"compared with {report.previous_period}",
        f"Peers: {group}; {report.peer_group_size} other consenting partner"
        f"{'' if report.peer_group_size == 1 else 's'} in the lake. Peer figures are shown "
        f"when at least {report.k_anonymity} peers have the measure.",
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
    ]
    if report.peer_group_reason:
        out[1] = f"Peers: none: {report.peer_group_reason}"
    if report.coverage is not None:
        out.insert(1, f"The partner's data covers {report.coverage}.")
    if notes:
        out += ["", "Notes:"]
        out += [f"  [{i}] {text}" for text, i in notes.items()]
    if definitions:
        out += ["", "Definitions:"]
        out += [f"  {m.label}: {m.definition}" for m in report.measures]
    return "\n".join(out) + "\n"


__all__ = [
    "FRAME_COLUMNS",
    "MEASURES",
    "MEASURE_NAMES",
    "BenchmarkReport",
    "Measure",
    "MeasureSpec",
    "Period",
    "benchmark",
]
