"""Plain-sentence reasons for a prediction, from its SHAP contributions.

A model's ``contributions(X)`` (see :mod:`amplify_ml.modeling.estimators`) holds, for every
row, how much each feature pushed that row's score up or down (log-odds for the binary
models, days for the depletion model), plus ``_bias``. :func:`reasons` picks the ``top``
features of each row and turns each into a sentence a salesperson can read, e.g.
``st_cat_lines_count_90d = 3`` on a "supplies" row becomes "bought supplies 3 times in the
last 90 days".

Templates. :data:`TEMPLATES` is an ordered table of :class:`Template` s, grouped by
feature family (sell-through, install base, intent, opportunities, service, device
profile, telemetry, device events, supplies). Each has a regular expression matched
against the whole feature name (the first match wins, so specific patterns come before
general ones), a function that writes the sentence from the match, the value and the row's
context, and the wording for a missing value (NaN/None never shows as "nan"). The context
is the row's keys (``category`` for propensity rows, ``color`` for depletion rows): passed
as ``keys=``, else read from ``features`` when it holds those columns. A feature no template
knows still gets a sentence: :func:`fallback_text` reads the naming convention
``<source>_<measure>_<agg>_<window>`` into words ("foo bar count in the last 30 days: 5").
:func:`has_template` says whether a name has a specific template (the tests require one
for every feature of the v1 specs).

Selection. ``direction="up"`` keeps the features with a positive contribution, largest
first (what pushed the score up: for the depletion model, what makes the threshold come
later); ``"down"`` the negative ones, most negative first; ``"both"`` the non-zero ones by
absolute value. The sentence states the fact only, in every direction; the sign of
:attr:`Reason.contribution` says which way it pushed. Fewer qualifying features than ``top``
give fewer reasons, never invented ones. Ties are broken by feature name, so the same input
always gives the same output. ``_bias`` is never a reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import TICKET_KINDS
from amplify_ml.errors import InvalidRequestError

BIAS = "_bias"
DIRECTIONS = ("up", "down", "both")
DAYS_PER_YEAR = 365.25

Context = Mapping[str, Any]
Render = Callable[[re.Match[str], Any, Context], str]
Missing = Callable[[re.Match[str], Context], str]


@dataclass(frozen=True)
class Reason:
    """One feature's part in one prediction: its value, its contribution and the sentence."""

    feature: str
    value: Any
    contribution: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """The reason as JSON-able plain values."""
        return asdict(self)


@dataclass(frozen=True)
class Template:
    """A feature family: names matching ``pattern`` read as ``render`` (or ``missing``)."""

    pattern: re.Pattern[str]
    render: Render
    missing: Missing


# -- formatting helpers ----------------------------------------------------------------------


def is_missing(value: Any) -> bool:
    """None, NaN, NaT, pd.NA and infinities are missing; anything else (0, False, "") is not."""
    if value is None:
        return True
    if isinstance(value, float | np.floating) and math.isinf(value):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def fmt_number(x: float) -> str:
    """Thousands separators, at most one decimal, none when it would be ``.0``."""
    r = round(float(x), 1)
    if r == 0:
        return "0"
    if r.is_integer():
        return f"{int(r):,}"
    return f"{r:,.1f}"


def fmt_amount(x: float) -> str:
    """Money (currency unknown here): whole units from 10 up, else one decimal at most."""
    return f"{round(float(x)):,}" if abs(x) >= 10 else fmt_number(x)


def fmt_pct(x: float) -> str:
    """A percentage value (already 0-100) with a ``%`` sign."""
    return f"{fmt_number(x)}%"


def plural(n: float, singular: str, plural_form: str | None = None) -> str:
    """``1 ticket``, ``3 tickets``, ``no tickets``."""
    many = plural_form or singular + "s"
    if n == 0:
        return f"no {many}"
    return f"{fmt_number(n)} {singular if abs(n) == 1 else many}"


def fmt_days(days: float) -> str:
    """A span of days for people: days under a year, years (one decimal at most) above."""
    d = abs(float(days))
    if d < 365:
        n = round(d)
        return f"{n:,} day" if n == 1 else f"{n:,} days"
    years = fmt_number(d / DAYS_PER_YEAR)
    return f"{years} year" if years == "1" else f"{years} years"


def fmt_times(n: float) -> str:
    """``once``, ``twice``, ``3 times``."""
    if n == 1:
        return "once"
    if n == 2:
        return "twice"
    return f"{fmt_number(n)} times"


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _compare(ratio: float) -> tuple[str, str]:
    """A ratio to a reference as (amount, conjunction): ``("39% less", "than")``,
    ``("about as much", "as")``, ``("3.1 times as much", "as")``."""
    if ratio >= 2:
        return f"{fmt_number(ratio)} times as much", "as"
    pct = round((ratio - 1) * 100)
    if pct == 0:
        return "about as much", "as"
    return f"{abs(pct)}% {'more' if pct > 0 else 'less'}", "than"


def _window(m: re.Match[str]) -> str:
    """``in the last 30 days`` / ``over the last 4 weeks`` from the ``w`` or ``wk`` group."""
    g = m.groupdict()
    if g.get("wk"):
        n = int(g["wk"])
        return f"over the last {n} week" if n == 1 else f"over the last {n} weeks"
    n = int(g["w"])
    return f"in the last {n:,} day" if n == 1 else f"in the last {n:,} days"


# -- context: the row's keys -----------------------------------------------------------------

CATEGORY_NOUN = {
    "printer": "printers",
    "pc": "PCs",
    "supplies": "supplies",
    "warranty": "warranties",
    "service": "services",
    "accessory": "accessories",
}
CATEGORY_ADJECTIVE = {"pc": "PC"}
CONTRACT_PHRASE = {
    "none": "no contract",
    "care_pack": "a Care Pack",
    "mps": "an MPS contract",
    "daas": "a DaaS contract",
}
CHANNEL_PHRASE = {
    "field": "through field sales",
    "online": "online",
    "marketplace": "on marketplaces",
}
SERVICE_KIND = {
    "part_replacement": "part replacement",
    "preventive": "preventive maintenance",
}
CATEGORICAL_LABEL = {
    "contract": "contract",
    "family": "family",
    "device_category": "device category",
    "industry": "industry",
    "country": "country",
    "partner_track": "partner track",
}


def _key(ctx: Context, name: str) -> str | None:
    v = ctx.get(name)
    return None if is_missing(v) else str(v)


def _cat(ctx: Context) -> str:
    """The row's category as a noun (``supplies``, ``printers``), or ``this category``."""
    c = _key(ctx, "category")
    return "this category" if c is None else CATEGORY_NOUN.get(c, _words(c))


def _color(ctx: Context, noun: str) -> str:
    """``black toner`` with the row's colour, else ``toner``."""
    c = _key(ctx, "color")
    return noun if c is None else f"{_words(c)} {noun}"


def _products(n: float, kind: str = "") -> str:
    """``no PC products``, ``1 PC product``, ``3 different PC products``."""
    noun = f"{kind} product" if kind else "product"
    return plural(n, noun) if n in (0, 1) else f"{fmt_number(n)} different {noun}s"


def _words(text: str) -> str:
    return text.replace("_", " ").strip()


# -- the templates ---------------------------------------------------------------------------

TEMPLATES: list[Template] = []


def template(pattern: str, missing: str | Missing) -> Callable[[Render], Render]:
    """Register ``render`` for names fully matching ``pattern``; ``missing`` for a NaN value
    (a format string over the match's groups, or a function of (match, context))."""

    def register(render: Render) -> Render:
        miss: Missing
        if isinstance(missing, str):
            text = missing

            def miss(m: re.Match[str], ctx: Context) -> str:
                return text.format(**{k: v for k, v in m.groupdict().items() if v is not None})

        else:
            miss = missing
        TEMPLATES.append(Template(re.compile(pattern), render, miss))
        return render

    return register


_W = r"(?P<w>\d+)d"  # a window in days
_WK = r"(?P<wk>\d+)w"  # a window in weeks

# sell-through in the row's category (propensity rows) -----------------------------------


@template(
    rf"st_cat_lines_count_{_W}", lambda m, c: f"no purchase of {_cat(c)} {_window(m)} on record"
)
def _st_cat_lines(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"did not buy {_cat(c)} {_window(m)}"
    return f"bought {_cat(c)} {fmt_times(v)} {_window(m)}"


@template(rf"st_cat_revenue_sum_{_W}", lambda m, c: f"no {_cat(c)} revenue {_window(m)} on record")
def _st_cat_revenue(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"spent nothing on {_cat(c)} {_window(m)}"
    if v < 0:
        return f"returned {fmt_amount(-v)} more {_cat(c)} than bought {_window(m)} (net value)"
    return f"spent {fmt_amount(v)} on {_cat(c)} {_window(m)}"


@template(rf"st_cat_units_sum_{_W}", lambda m, c: f"no {_cat(c)} units {_window(m)} on record")
def _st_cat_units(m: re.Match[str], v: Any, c: Context) -> str:
    if v < 0:
        return f"returned {plural(-v, 'unit')} of {_cat(c)} more than bought {_window(m)}"
    return f"bought {plural(v, 'unit')} of {_cat(c)} {_window(m)} (net of returns)"


@template(
    rf"st_cat_skus_distinct_{_W}", lambda m, c: f"no {_cat(c)} products {_window(m)} on record"
)
def _st_cat_skus(m: re.Match[str], v: Any, c: Context) -> str:
    cat = _key(c, "category")
    if cat is None:
        return f"bought {_products(v)} in this category {_window(m)}"
    return f"bought {_products(v, CATEGORY_ADJECTIVE.get(cat, _words(cat)))} {_window(m)}"


@template(
    rf"st_cat_returns_count_{_W}", lambda m, c: f"no {_cat(c)} returns {_window(m)} on record"
)
def _st_cat_returns(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"returned no {_cat(c)} {_window(m)}"
    return f"returned {_cat(c)} {fmt_times(v)} {_window(m)}"


@template(
    rf"st_cat_purchase_interval_mean_days_{_W}",
    lambda m, c: f"fewer than two {_cat(c)} purchase days {_window(m)}",
)
def _st_cat_interval(m: re.Match[str], v: Any, c: Context) -> str:
    return f"buys {_cat(c)} every {fmt_days(v)} on average {_window(m)}"


@template(
    rf"st_cat_overdue_ratio_{_W}",
    lambda m, c: (
        f"not yet a usual interval between {_cat(c)} purchases: fewer than two "
        f"purchase days {_window(m)}"
    ),
)
def _st_cat_overdue(m: re.Match[str], v: Any, c: Context) -> str:
    return f"last {_cat(c)} purchase {fmt_number(v)} usual intervals ago"


@template(
    r"st_cat_buys_count_last_year_next_(?P<h>\d+)d",
    lambda m, c: f"no {_cat(c)} purchase in the same {m['h']} days last year on record",
)
def _st_cat_last_year(m: re.Match[str], v: Any, c: Context) -> str:
    return f"bought {_cat(c)} {plural(v, 'time')} in the same {m['h']} days last year"


@template("days_since_last_purchase_cat", lambda m, c: f"no purchase of {_cat(c)} on record")
def _days_since_cat(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"bought {_cat(c)} today"
    return f"last bought {_cat(c)} {fmt_days(v)} ago"


# sell-through of the account, all categories ----------------------------------------------


@template(rf"st_lines_count_{_W}", "no purchases in the last {w} days on record")
def _st_lines(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"bought nothing {_window(m)}"
    return f"bought {fmt_times(v)} {_window(m)} (any category)"


@template(rf"st_revenue_sum_{_W}", "no revenue in the last {w} days on record")
def _st_revenue(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"spent nothing {_window(m)}"
    if v < 0:
        return f"returned {fmt_amount(-v)} more than bought {_window(m)} (net value)"
    return f"spent {fmt_amount(v)} {_window(m)} (any category)"


@template(rf"st_units_sum_{_W}", "no units bought in the last {w} days on record")
def _st_units(m: re.Match[str], v: Any, c: Context) -> str:
    if v < 0:
        return f"returned {plural(-v, 'unit')} more than bought {_window(m)}"
    return f"bought {plural(v, 'unit')} {_window(m)} (any category, net of returns)"


@template(rf"st_skus_distinct_{_W}", "no products bought in the last {w} days on record")
def _st_skus(m: re.Match[str], v: Any, c: Context) -> str:
    return f"bought {_products(v)} {_window(m)}"


@template(rf"st_returns_count_{_W}", "no returns in the last {w} days on record")
def _st_returns(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"returned nothing {_window(m)}"
    return f"returned products {fmt_times(v)} {_window(m)}"


@template(rf"st_categories_distinct_{_W}", "no categories bought in the last {w} days on record")
def _st_categories(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"bought in no category {_window(m)}"
    return f"bought in {plural(v, 'category', 'categories')} {_window(m)}"


@template(
    rf"st_channel_(?P<ch>[a-z0-9_]+)_share_{_W}", "no purchases in the last {w} days to split"
)
def _st_channel(m: re.Match[str], v: Any, c: Context) -> str:
    how = CHANNEL_PHRASE.get(m["ch"], f"through {_words(m['ch'])}")
    return f"{fmt_pct(100 * v)} of purchases {how} {_window(m)}"


@template(
    rf"st_(?!cat_)(?P<dc>[a-z0-9]+)_units_sum_{_W}",
    lambda m, c: f"no {CATEGORY_NOUN.get(m['dc'], _words(m['dc']))} bought {_window(m)} on record",
)
def _st_device_units(m: re.Match[str], v: Any, c: Context) -> str:
    noun = CATEGORY_NOUN.get(m["dc"], _words(m["dc"]))
    if v == 0:
        return f"the account bought no {noun} {_window(m)}"
    if v < 0:
        return f"the account returned {fmt_number(-v)} more {noun} than it bought {_window(m)}"
    one = CATEGORY_ADJECTIVE.get(m["dc"], _words(m["dc"]))
    return f"the account bought {fmt_number(v)} {one if v == 1 else noun} {_window(m)}"


@template("days_since_last_purchase", "no purchase on record")
def _days_since_purchase(m: re.Match[str], v: Any, c: Context) -> str:
    return "bought something today" if v == 0 else f"last bought anything {fmt_days(v)} ago"


# install base (account level) -------------------------------------------------------------


@template("ib_devices_count", "install base not known")
def _ib_devices(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'device')} in the install base"


@template(r"ib_(?P<dc>[a-z0-9]+)_count", "install base not known")
def _ib_category(m: re.Match[str], v: Any, c: Context) -> str:
    one = CATEGORY_ADJECTIVE.get(m["dc"], _words(m["dc"]))
    return f"{plural(v, one, CATEGORY_NOUN.get(m['dc'], one + 's'))} in the install base"


@template("ib_device_age_mean_days", "no devices in the install base")
def _ib_age_mean(m: re.Match[str], v: Any, c: Context) -> str:
    return f"installed devices {fmt_days(v)} old on average"


@template("ib_device_age_max_days", "no devices in the install base")
def _ib_age_max(m: re.Match[str], v: Any, c: Context) -> str:
    return f"oldest installed device {fmt_days(v)} old"


@template(r"ib_warranty_ending_count_next_(?P<w>\d+)d", "warranties of the install base not known")
def _ib_warranty(m: re.Match[str], v: Any, c: Context) -> str:
    verb = "ends" if v == 1 else "end"
    return f"{plural(v, 'device warranty', 'device warranties')} {verb} in the next {m['w']} days"


@template(r"ib_contract_(?P<k>[a-z0-9_]+)_count", "contracts of the install base not known")
def _ib_contract(m: re.Match[str], v: Any, c: Context) -> str:
    on = CONTRACT_PHRASE.get(m["k"], f"a {_words(m['k'])} contract")
    return f"{plural(v, 'installed device')} {'with' if m['k'] == 'none' else 'on'} {on}"


@template(rf"ib_retired_count_{_W}", "retired devices not known")
def _ib_retired(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'device')} retired or replaced {_window(m)}"


# install base of the row's category, warranty extensions (propensity rows) ----------------


def _device_nouns(ctx: Context) -> tuple[str, str]:
    """The row's device category as (singular, plural): ``("PC", "PCs")``, or devices."""
    c = _key(ctx, "category")
    if c is None or c not in CATEGORY_NOUN:
        return "device", "devices"
    return CATEGORY_ADJECTIVE.get(c, c), CATEGORY_NOUN[c]


@template("ib_cat_devices_count", lambda m, c: f"no install base of {_cat(c)} on record")
def _ib_cat_devices(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, *_device_nouns(c))} in service"


@template("ib_cat_device_age_mean_days", lambda m, c: f"no {_device_nouns(c)[1]} in service")
def _ib_cat_age_mean(m: re.Match[str], v: Any, c: Context) -> str:
    return f"its {_device_nouns(c)[1]} in service {fmt_days(v)} old on average"


@template("ib_cat_device_age_max_days", lambda m, c: f"no {_device_nouns(c)[1]} in service")
def _ib_cat_age_max(m: re.Match[str], v: Any, c: Context) -> str:
    return f"oldest {_device_nouns(c)[0]} in service {fmt_days(v)} old"


@template(
    r"ib_cat_devices_over_(?P<n>\d+)y_count",
    lambda m, c: f"no install base of {_cat(c)} on record",
)
def _ib_cat_old(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, *_device_nouns(c))} in service older than {m['n']} years"


@template(r"ib_warranty_due_count_next_(?P<w>\d+)d", "warranties of the install base not known")
def _ib_warranty_due(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"{plural(v, 'device')} whose warranty can be extended in the next {m['w']} days, "
        "not extended yet"
    )


@template(
    r"ib_warranty_due_overlap_sum_next_(?P<w>\d+)d", "warranties of the install base not known"
)
def _ib_warranty_overlap(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"no warranty extension windows in the next {m['w']} days"
    worth = "1 device's" if v == 1 else f"{fmt_number(v)} devices'"
    return f"{worth} worth of warranty extension windows in the next {m['w']} days"


@template(rf"ib_warranty_ended_count_{_W}", "warranties of the install base not known")
def _ib_warranty_ended(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'device warranty', 'device warranties')} ended {_window(m)}"


@template(rf"ib_warranty_extended_count_{_W}", "warranties of the install base not known")
def _ib_warranty_extended(m: re.Match[str], v: Any, c: Context) -> str:
    them = "it" if v == 1 else "they"
    return (
        f"extended {plural(v, 'device warranty', 'device warranties')} before {them} ended "
        f"{_window(m)}"
    )


@template(rf"ib_warranty_extended_rate_{_W}", lambda m, c: f"no device warranty ended {_window(m)}")
def _ib_warranty_rate(m: re.Match[str], v: Any, c: Context) -> str:
    return f"extended {fmt_pct(100 * v)} of the device warranties that ended {_window(m)}"


# intent ---------------------------------------------------------------------------------


@template(
    rf"intent_cat_intensity_sum_{_WK}", lambda m, c: f"no intent data on {_cat(c)} {_window(m)}"
)
def _intent_cat(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"no online interest in {_cat(c)} {_window(m)}"
    return f"online interest in {_cat(c)} {_window(m)} (intensity {fmt_number(v)})"


def _no_cat_intent(m: re.Match[str], c: Context) -> str:
    return f"no online interest in {_cat(c)} on record"


@template("intent_cat_days_since_signal", _no_cat_intent)
def _intent_cat_since(m: re.Match[str], v: Any, c: Context) -> str:
    if v < 7:
        return f"online interest in {_cat(c)} in the last complete week"
    return f"last online interest in {_cat(c)} {fmt_days(v)} ago"


@template("intent_cat_run_weeks", _no_cat_intent)
def _intent_cat_run_weeks(m: re.Match[str], v: Any, c: Context) -> str:
    weeks = "1 week" if v == 1 else f"{fmt_number(v)} weeks in a row"
    return f"online interest in {_cat(c)} for {weeks} in its latest run"


@template("intent_cat_run_intensity_last", _no_cat_intent)
def _intent_cat_run_last(m: re.Match[str], v: Any, c: Context) -> str:
    return f"online interest in {_cat(c)} of intensity {fmt_number(v)} in its latest week"


@template("intent_cat_run_intensity_total", _no_cat_intent)
def _intent_cat_run_total(m: re.Match[str], v: Any, c: Context) -> str:
    return f"online interest in {_cat(c)} of intensity {fmt_number(v)} over its latest run of weeks"


@template(rf"intent_intensity_sum_{_WK}", "no intent data for the last {wk} weeks")
def _intent_all(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"no online interest in any topic {_window(m)}"
    return f"online interest (all topics) {_window(m)} (intensity {fmt_number(v)})"


@template(
    rf"intent_(?P<topic>[a-z0-9_]+)_intensity_sum_{_WK}", "no intent data for the last {wk} weeks"
)
def _intent_topic(m: re.Match[str], v: Any, c: Context) -> str:
    topic = _words(m["topic"])
    if v == 0:
        return f"no online interest in {topic} {_window(m)}"
    return f"online interest in {topic} {_window(m)} (intensity {fmt_number(v)})"


@template(rf"intent_topics_distinct_{_WK}", "no intent data for the last {wk} weeks")
def _intent_topics(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"no online interest in any topic {_window(m)}"
    return f"online interest in {plural(v, 'topic')} {_window(m)}"


# opportunities --------------------------------------------------------------------------

OPP_EVENT = {
    "created": "opportunity created|opportunities created",
    "registered": "deal registered|deals registered",
    "won": "opportunity won|opportunities won",
    "lost": "opportunity lost|opportunities lost",
}


@template("opp_open_count", "open opportunities not known")
def _opp_open(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'open opportunity', 'open opportunities')}"


@template("opp_open_amount_sum", "value of open opportunities not known")
def _opp_open_amount(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return "no value in open opportunities"
    return f"open opportunities worth {fmt_amount(v)}"


@template(rf"opp_(?P<ev>created|registered|won|lost)_count_{_W}", "opportunities not known")
def _opp_count(m: re.Match[str], v: Any, c: Context) -> str:
    one, many = OPP_EVENT[m["ev"]].split("|")
    return f"{plural(v, one, many)} {_window(m)}"


@template(rf"opp_won_amount_sum_{_W}", "won opportunities not known")
def _opp_won_amount(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"no opportunity value won {_window(m)}"
    return f"won opportunities worth {fmt_amount(v)} {_window(m)}"


@template("days_since_last_opportunity", "no opportunity on record")
def _days_since_opp(m: re.Match[str], v: Any, c: Context) -> str:
    return f"last opportunity created {fmt_days(v)} ago" if v else "opportunity created today"


# service tickets ------------------------------------------------------------------------


@template("svc_open_count", "open service tickets not known")
def _svc_open(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'service ticket')} open"


@template(rf"svc_tickets_count_{_W}", "service tickets not known")
def _svc_tickets(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'service ticket')} on the account's devices {_window(m)}"


@template(rf"svc_incident_count_{_W}", "service tickets not known")
def _svc_account_incidents(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'incident ticket')} on the account's devices {_window(m)}"


@template(rf"svc_repair_count_{_W}", "service tickets not known")
def _svc_account_repairs(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'repair ticket')} on the account's devices {_window(m)}"


@template(rf"svc_dev_component_(?P<part>[a-z0-9_]+)_count_{_W}", "service tickets not known")
def _svc_component(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, _words(m['part']) + ' ticket')} {_window(m)}"


@template(rf"svc_dev_(?P<kind>[a-z0-9_]+)_count_{_W}", "service tickets not known")
def _svc_device_kind(m: re.Match[str], v: Any, c: Context) -> str:
    kind = SERVICE_KIND.get(m["kind"], _words(m["kind"]))
    return f"{plural(v, kind + ' ticket')} {_window(m)}"


@template("days_since_last_repair", "no repair on record")
def _days_since_repair(m: re.Match[str], v: Any, c: Context) -> str:
    return f"last repaired {fmt_days(v)} ago" if v else "repaired today"


def _no_ticket_of_kind(m: re.Match[str], c: Context) -> str:
    return f"no {SERVICE_KIND.get(m['kind'], _words(m['kind']))} ticket on record"


_TICKET_KIND = "|".join(k for k in TICKET_KINDS if k != "repair")  # days_since_last_repair: above


@template(rf"days_since_last_(?P<kind>{_TICKET_KIND})", _no_ticket_of_kind)
def _days_since_kind(m: re.Match[str], v: Any, c: Context) -> str:
    kind = SERVICE_KIND.get(m["kind"], _words(m["kind"]))
    return f"last {kind} ticket {fmt_days(v)} ago" if v else f"{kind} ticket today"


@template(
    r"days_since_(?P<part>(?!last_)(?!comp_repair$)[a-z0-9_]+)_repair", "no {part} repair on record"
)
def _days_since_part_repair(m: re.Match[str], v: Any, c: Context) -> str:
    part = _words(m["part"])
    return f"{part} last repaired {fmt_days(v)} ago" if v else f"{part} repaired today"


@template(
    rf"dev_events_(?P<part>[a-z0-9_]+)_count_since_repair_{_W}",
    "device events not known",
)
def _events_since_part_repair(m: re.Match[str], v: Any, c: Context) -> str:
    part = _words(m["part"])
    return f"{plural(v, part + ' event')} {_window(m)} (since the {part}'s last repair, if any)"


# the row's own component (device_failure v3: a row per device and component) -------------


def _part(ctx: Context) -> str:
    """The row's component (``fuser``), ``another part`` for the row of the others, else
    ``the part``."""
    c = _key(ctx, "component")
    if c is None:
        return "the part"
    return "another part" if c == "other" else f"the {_words(c)}"


@template("component_name", "part not known")
def _component_name(m: re.Match[str], v: Any, c: Context) -> str:
    return "a part not listed for the device" if v == "other" else f"the part is the {_words(v)}"


@template("days_since_comp_repair", lambda m, c: f"no repair of {_part(c)} on record")
def _days_since_comp_repair(m: re.Match[str], v: Any, c: Context) -> str:
    what = _part(c)
    return f"{what} last repaired {fmt_days(v)} ago" if v else f"{what} repaired today"


@template(rf"comp_repairs_count_{_W}", "service tickets not known")
def _comp_repairs(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'repair ticket')} of {_part(c)} {_window(m)}"


@template(rf"comp_events_count_since_repair_{_W}", "device events not known")
def _comp_events_since_repair(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'warning')} of {_part(c)} {_window(m)} (since its last repair, if any)"


@template(rf"comp_events_count_{_W}", "device events not known")
def _comp_events(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'warning')} of {_part(c)} {_window(m)}"


@template("comp_age_days", "installation date not known")
def _comp_age(m: re.Match[str], v: Any, c: Context) -> str:
    what = _part(c)
    if not v:
        return f"{what} new today"
    return f"{what} in service for {fmt_days(v)} (since its last repair, else since installation)"


@template("comp_use_pages_est", "pages printed not known")
def _comp_use(m: re.Match[str], v: Any, c: Context) -> str:
    return f"about {fmt_number(v)} pages printed since {_part(c)} was new (at the recent pace)"


@template("comp_health_last", lambda m, c: f"no health reading of {_part(c)} in recent months")
def _comp_health_last(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{_part(c)} health at {fmt_pct(v)}"


@template(
    rf"comp_health_slope_{_W}",
    lambda m, c: f"too few health readings of {_part(c)} in the last {m['w']} days for a trend",
)
def _comp_health_slope(m: re.Match[str], v: Any, c: Context) -> str:
    per_month = 30 * float(v)
    what = f"{_part(c)} health"
    if round(per_month, 1) == 0:
        return f"{what} steady {_window(m)}"
    way = "falling" if per_month < 0 else "rising"
    return f"{what} {way} {fmt_number(abs(per_month))} points a month {_window(m)}"


# the wear model of the row's own part (device_failure v4) ---------------------------------


@template("comp_warning_rate", lambda m, c: f"warnings of {_part(c)} not known")
def _comp_warning_rate(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{fmt_number(7 * float(v))} warnings a week from {_part(c)} since it was new"


@template("comp_wear_index", lambda m, c: f"wear of {_part(c)} not known")
def _comp_wear_index(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"{_part(c)} worn to {float(v):.2g} "
        "(its wear index: its warnings for its age, or its health)"
    )


@template(rf"comp_hazard_index_next_{_W}", lambda m, c: f"wear of {_part(c)} not known")
def _comp_hazard_index(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"failure hazard of {_part(c)} over the next {int(m['w']):,} days at {float(v):.2g} "
        "(its wear carried forward)"
    )


# the wear the part's use implies (device_failure v5) ----------------------------------------


@template("comp_use_rel", "use of the device not known (no page or charge-cycle counter read)")
def _comp_use_rel(m: re.Match[str], v: Any, c: Context) -> str:
    return f"used {float(v):.2g} times as much as the average device of its model"


@template("comp_use_wear_index", lambda m, c: f"use of {_part(c)} not known")
def _comp_use_wear_index(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{_part(c)} worn to {float(v):.2g} by its use (its device's use for its age in years)"


@template(rf"comp_use_hazard_index_next_{_W}", lambda m, c: f"use of {_part(c)} not known")
def _comp_use_hazard_index(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"failure hazard of {_part(c)} from its use over the next {int(m['w']):,} days at "
        f"{float(v):.2g}"
    )


# the season of the horizon (device_failure v6) --------------------------------------------


@template(
    rf"fleet_use_next_{_W}_vs_year",
    "the season ahead not known (less than a year of page counter readings)",
)
def _fleet_use_next(m: re.Match[str], v: Any, c: Context) -> str:
    pct = 100 * (float(v) - 1)
    days = f"the next {int(m['w']):,} days"
    if round(pct) == 0:
        return f"{days} a season of usual use (the fleet printed as much then a year ago)"
    way = "more" if pct > 0 else "less"
    return (
        f"{days} a season of {fmt_pct(abs(round(pct)))} {way} use than the year's average "
        "(the fleet a year ago)"
    )


@template(
    rf"comp_hazard_index_season_next_{_W}",
    lambda m, c: f"wear of {_part(c)} or the season ahead not known",
)
def _comp_hazard_index_season(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"failure hazard of {_part(c)} over the next {int(m['w']):,} days at {float(v):.2g} "
        "(its wear carried forward at the season's pace)"
    )


# device profile -------------------------------------------------------------------------


@template("device_age_days", "installation date not known")
def _device_age(m: re.Match[str], v: Any, c: Context) -> str:
    return f"installed {fmt_days(v)} ago" if v else "installed today"


@template("days_to_warranty_end", "no warranty on record")
def _warranty_end(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return "warranty ends today"
    if v < 0:
        return f"warranty ended {fmt_days(v)} ago"
    return f"warranty ends in {fmt_days(v)}"


@template("is_under_warranty", "warranty not known")
def _under_warranty(m: re.Match[str], v: Any, c: Context) -> str:
    return "under warranty" if _as_bool(v) else "not under warranty"


_NONE_RETIRED = "the account has retired no device of this kind so far"


@template("ib_retired_age_mean_days", _NONE_RETIRED)
def _ib_retired_age(m: re.Match[str], v: Any, c: Context) -> str:
    return f"the account retires devices of this kind at {fmt_days(v)} old on average"


@template("ib_retired_devices_count", _NONE_RETIRED)
def _ib_retired_devices(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'device')} of this kind retired by the account so far"


@template("device_age_vs_retired_age", _NONE_RETIRED)
def _age_vs_retired(m: re.Match[str], v: Any, c: Context) -> str:
    return f"at {fmt_pct(100 * v)} of the age at which the account retires such devices"


@template("is_replacement", "not known whether it replaced another device")
def _replacement(m: re.Match[str], v: Any, c: Context) -> str:
    return "replaced an earlier device" if _as_bool(v) else "did not replace an earlier device"


@template("family_age_days", "launch date of the product family not known")
def _family_age(m: re.Match[str], v: Any, c: Context) -> str:
    return f"product family launched {fmt_days(v)} ago"


@template("device_list_price", "list price not known")
def _list_price(m: re.Match[str], v: Any, c: Context) -> str:
    return f"list price {fmt_amount(v)}"


@template("employee_band", "company size not known")
def _employee_band(m: re.Match[str], v: Any, c: Context) -> str:
    return f"company size: {v} employees"


@template("product_category", "product category not known")
def _product_category(m: re.Match[str], v: Any, c: Context) -> str:
    return f"the category itself: {CATEGORY_NOUN.get(v, _words(str(v)))}"


@template("account_tenure_days", "customer since: not known")
def _tenure(m: re.Match[str], v: Any, c: Context) -> str:
    return f"customer for {fmt_days(v)}"


@template(
    "(?P<col>" + "|".join(CATEGORICAL_LABEL) + ")",
    lambda m, c: f"{CATEGORICAL_LABEL[m['col']]} not known",
)
def _categorical(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{CATEGORICAL_LABEL[m['col']]}: {v}"


# telemetry: pages and health ------------------------------------------------------------


@template(rf"telemetry_pages_sum_{_W}", "no page-count telemetry in the last {w} days")
def _pages_sum(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"printed no pages {_window(m)}"
    return f"printed {plural(v, 'page')} {_window(m)}"


@template(rf"telemetry_pages_per_day_mean_{_W}", "no page-count telemetry in the last {w} days")
def _pages_per_day(m: re.Match[str], v: Any, c: Context) -> str:
    return f"printed {plural(v, 'page')} a day on average {_window(m)}"


@template(
    r"telemetry_pages_trend_(?P<s>\d+)d_vs_(?P<w>\d+)d",
    "no page trend (too little page-count telemetry in the last {w} days)",
)
def _pages_trend(m: re.Match[str], v: Any, c: Context) -> str:
    if v <= 0:
        return f"printed nothing in the last {m['s']} days (but did over the last {m['w']} days)"
    amount, conj = _compare(v)
    return f"printed {amount} a day in the last {m['s']} days {conj} over the last {m['w']} days"


@template(
    rf"telemetry_pages_vs_family_{_W}",
    "no comparison with its family (no page-count telemetry in the last {w} days)",
)
def _pages_vs_family(m: re.Match[str], v: Any, c: Context) -> str:
    if v <= 0:
        return f"printed nothing {_window(m)}, unlike others of its family"
    amount, conj = _compare(v)
    return f"printed {amount} a day {conj} its family's average {_window(m)}"


@template(
    rf"telemetry_pages_vs_fleet_{_W}",
    "no comparison with the fleet (no page-count telemetry in the last {w} days)",
)
def _pages_vs_fleet(m: re.Match[str], v: Any, c: Context) -> str:
    if v <= 0:
        return f"printed nothing {_window(m)}, unlike the rest of the fleet"
    amount, conj = _compare(v)
    return f"printed {amount} a day {conj} the fleet's average {_window(m)}"


@template("telemetry_pages_vs_fleet_account", "no page-count telemetry at this customer yet")
def _pages_vs_fleet_account(m: re.Match[str], v: Any, c: Context) -> str:
    amount, conj = _compare(v)
    return (
        f"a printer like this one at this customer prints {amount} a day {conj} the fleet's average"
    )


@template(
    r"telemetry_(?P<metric>[a-z0-9_]+)_health_last", "no {metric} health reading in recent months"
)
def _health_last(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{_words(m['metric'])} health at {fmt_pct(v)}"


@template(
    rf"telemetry_(?P<metric>[a-z0-9_]+)_health_slope_{_W}",
    "too few {metric} health readings in the last {w} days for a trend",
)
def _health_slope(m: re.Match[str], v: Any, c: Context) -> str:
    per_month = 30 * float(v)
    what = f"{_words(m['metric'])} health"
    if round(per_month, 1) == 0:
        return f"{what} steady {_window(m)}"
    way = "falling" if per_month < 0 else "rising"
    return f"{what} {way} {fmt_number(abs(per_month))} points a month {_window(m)}"


# device events --------------------------------------------------------------------------


@template(rf"dev_events_count_{_W}", "device events not known")
def _events_all(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'device event')} {_window(m)}"


@template(rf"dev_events_(?P<sev>info|warning|error)_count_{_W}", "device events not known")
def _events_severity(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, m['sev'] + ' event')} {_window(m)}"


@template(rf"dev_events_prefix_other_count_{_W}", "device events not known")
def _events_other(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'event')} with other codes {_window(m)}"


@template(rf"dev_events_prefix_(?P<p>[a-z0-9_]+)_count_{_W}", "device events not known")
def _events_prefix(m: re.Match[str], v: Any, c: Context) -> str:
    code = m["p"].replace("_", ".")
    return f"{plural(v, 'event')} with code {code}.* {_window(m)}"


@template(rf"dev_events_daily_count_max_{_W}", "device events not known")
def _events_burst(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"no device events {_window(m)}"
    if v == 1:
        return f"no more than 1 device event a day {_window(m)}"
    return f"up to {fmt_number(v)} device events on a single day {_window(m)}"


@template("days_since_last_error_event", "no error event on record")
def _days_since_error(m: re.Match[str], v: Any, c: Context) -> str:
    return f"last error event {fmt_days(v)} ago" if v else "error event today"


# supplies (per device colour) -----------------------------------------------------------


@template("supply_level_last", lambda m, c: f"no {_color(c, 'toner')} level reported")
def _supply_last(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{_color(c, 'toner')} at {fmt_pct(v)}"


@template(
    rf"supply_level_slope_{_W}",
    lambda m, c: f"too few {_color(c, 'toner')} readings {_window(m)} for a trend",
)
def _supply_slope(m: re.Match[str], v: Any, c: Context) -> str:
    per_month = 30 * float(v)
    what = _color(c, "toner")
    if round(per_month, 1) == 0:
        return f"{what} level steady {_window(m)}"
    way = "falling" if per_month < 0 else "rising"
    return f"{what} {way} {fmt_number(abs(per_month))} points a month {_window(m)}"


@template(
    rf"supply_days_to_empty_linear_{_W}",
    lambda m, c: f"no empty date in sight ({_color(c, 'toner')} not falling {_window(m)})",
)
def _supply_empty(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"{_color(c, 'toner')} empty in about {fmt_days(v)} at the pace of the last {m['w']} days"
    )


@template(
    "days_since_supply_change", lambda m, c: f"no recent {_color(c, 'cartridge')} change seen"
)
def _supply_change(m: re.Match[str], v: Any, c: Context) -> str:
    if v == 0:
        return f"{_color(c, 'cartridge')} changed today"
    return f"{_color(c, 'cartridge')} changed {fmt_days(v)} ago"


@template(
    "pages_since_supply_change",
    lambda m, c: f"pages since the last {_color(c, 'cartridge')} change not known",
)
def _supply_pages(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'page')} printed since the {_color(c, 'cartridge')} was changed"


@template(
    rf"supply_pct_per_kpage_(?P<how>mean|fit)_{_W}",
    lambda m, c: f"{_color(c, 'toner')} use per page not measured yet",
)
def _supply_per_page(m: re.Match[str], v: Any, c: Context) -> str:
    over = " (over its recent cartridges)" if m["how"] == "fit" else ""
    return f"{_color(c, 'toner')} falls {fmt_number(v)} points every 1,000 pages{over}"


@template(
    "supply_pct_per_kpage_account",
    lambda m, c: f"no {_color(c, 'toner')} use per page measured at this customer yet",
)
def _supply_per_page_account(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"this customer's printers use {_color(c, 'toner')} at {fmt_number(v)} points every "
        "1,000 pages of a cartridge like this one"
    )


@template(
    "pages_since_supply_level_fell",
    lambda m, c: f"pages since the {_color(c, 'toner')} level last fell not known",
)
def _supply_pages_since_fall(m: re.Match[str], v: Any, c: Context) -> str:
    return f"{plural(v, 'page')} printed since the {_color(c, 'toner')} level last fell"


@template("days_since_page_reading", "no recent page count reading")
def _page_count_read(m: re.Match[str], v: Any, c: Context) -> str:
    if v < 1:
        return f"page count last read {plural(max(1, round(24 * v)), 'hour')} ago"
    return f"page count last read {fmt_days(v)} ago"


@template(
    "supply_pages_to_threshold_est",
    lambda m, c: f"pages left on the {_color(c, 'cartridge')} not known",
)
def _supply_pages_left(m: re.Match[str], v: Any, c: Context) -> str:
    return f"about {plural(v, 'page')} left before {_color(c, 'toner')} runs low"


@template(
    rf"supply_days_to_threshold_est_{_W}(?P<s>_seasonal)?",
    lambda m, c: f"days until {_color(c, 'toner')} runs low not known",
)
def _supply_days_left(m: re.Match[str], v: Any, c: Context) -> str:
    how = "at the season's pace" if m["s"] else f"at the pace of the last {m['w']} days"
    return f"{_color(c, 'toner')} low in about {fmt_days(v)} {how}"


@template(
    "supply_pages_per_cartridge_prev",
    lambda m, c: f"pages of the previous {_color(c, 'cartridge')} not known",
)
def _supply_prev_cartridge(m: re.Match[str], v: Any, c: Context) -> str:
    return f"the previous {_color(c, 'cartridge')} lasted {plural(v, 'page')} to running low"


@template(
    "supply_pages_to_threshold_by_prev",
    lambda m, c: f"pages left by the previous {_color(c, 'cartridge')} not known",
)
def _supply_pages_left_prev(m: re.Match[str], v: Any, c: Context) -> str:
    return (
        f"about {plural(v, 'page')} left before {_color(c, 'toner')} runs low, judging by "
        "the previous cartridge"
    )


@template(
    "supply_days_to_threshold_est_calendar",
    lambda m, c: f"days until {_color(c, 'toner')} runs low not known",
)
def _supply_days_left_calendar(m: re.Match[str], v: Any, c: Context) -> str:
    if v >= 365:
        return f"{_color(c, 'toner')} low in a year or more, by last year's calendar"
    return f"{_color(c, 'toner')} low in about {fmt_days(v)}, by last year's calendar"


@template(
    rf"supply_days_to_threshold_by_prev_{_W}(?P<s>_seasonal)?",
    lambda m, c: f"days until {_color(c, 'toner')} runs low by the previous cartridge not known",
)
def _supply_days_left_prev(m: re.Match[str], v: Any, c: Context) -> str:
    how = "at the season's pace" if m["s"] else f"at the pace of the last {m['w']} days"
    return (
        f"{_color(c, 'toner')} low in about {fmt_days(v)} {how}, judging by the previous cartridge"
    )


@template(
    "supply_page_yield_mean",
    lambda m, c: f"rated page yield of its {_color(c, 'cartridges')} not known",
)
def _supply_yield(m: re.Match[str], v: Any, c: Context) -> str:
    return f"its {_color(c, 'cartridges')} are rated for {fmt_number(v)} pages on average"


# -- fallback: the naming convention in words ------------------------------------------------

SOURCE_WORDS = {
    "st": "purchases",
    "svc": "service",
    "dev": "device",
    "ib": "install base",
    "opp": "opportunities",
}
"""First token of a name: the source."""
AGG_WORDS = {
    "sum": "total",
    "mean": "average",
    "max": "maximum",
    "min": "minimum",
    "distinct": "distinct count",
    "last": "latest",
    "slope": "trend",
}
"""Last token of a name (before the window): the aggregation."""
MIDDLE_WORDS = {"cat": "category", "pct": "percent"}
_TRAILING_WINDOW = re.compile(r"_(?:(?P<next>next)_)?(?P<n>\d+)(?P<unit>[dw])$")


def fallback_text(feature: str, value: Any) -> str:
    """A sentence for a feature no template knows, read from its name.

    ``foo_bar_count_30d`` = 5 reads "foo bar count in the last 30 days: 5";
    ``days_since_x`` "x: 12 days ago"; ``is_x``/``has_x`` "is x: yes"; a missing value
    "...: no data".
    """
    name = feature.strip("_")
    window = ""
    w = _TRAILING_WINDOW.search(name)
    if w:
        n, unit = int(w["n"]), "day" if w["unit"] == "d" else "week"
        span = f"{n:,} {unit}" + ("" if n == 1 else "s")
        window = f" in the next {span}" if w["next"] else f" in the last {span}"
        name = name[: w.start()]
    if is_missing(value):
        shown = "no data"
    elif isinstance(value, bool | np.bool_) or re.match(r"(is|has)_", name):
        shown = "yes" if _as_bool(value) else "no"
    elif isinstance(value, int | float | np.integer | np.floating):
        shown = fmt_number(value)
        if name.startswith("days_since_"):
            name, shown = name[len("days_since_") :], f"{fmt_days(value)} ago"
        elif name.startswith("days_to_"):
            name, shown = name[len("days_to_") :], f"in {fmt_days(value)}"
    else:
        shown = str(value)
    tokens = [t for t in name.split("_") if t]
    words = [MIDDLE_WORDS.get(t, t) for t in tokens]
    if len(tokens) > 1:
        words[0] = SOURCE_WORDS.get(tokens[0], words[0])
        words[-1] = AGG_WORDS.get(tokens[-1], words[-1])
    return f"{' '.join(words)}{window}: {shown}"


# -- lookup and rendering --------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _lookup(feature: str) -> tuple[Template, re.Match[str]] | None:
    for t in TEMPLATES:
        m = t.pattern.fullmatch(feature)
        if m:
            return t, m
    return None


def has_template(feature: str) -> bool:
    """Whether ``feature`` has a specific template (else :func:`fallback_text` speaks for it)."""
    return _lookup(feature) is not None


def describe(feature: str, value: Any, context: Context | None = None) -> str:
    """The sentence for one feature's value; ``context`` holds the row's keys (category, color)."""
    ctx: Context = context or {}
    found = _lookup(feature)
    if found is None:
        return fallback_text(feature, value)
    t, m = found
    if is_missing(value):
        return t.missing(m, ctx)
    try:
        return t.render(m, value, ctx)
    except (TypeError, ValueError):  # a value of an unexpected type: say it plainly
        return fallback_text(feature, value)


def _plain(value: Any) -> Any:
    """A cell as a JSON-able Python value: numpy scalars unwrapped, missing as None."""
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


# -- selection -------------------------------------------------------------------------------


def _check(
    contributions: pd.DataFrame,
    features: pd.DataFrame,
    keys: pd.DataFrame | None,
    top: int,
    direction: str,
) -> list[str]:
    """Validate the arguments; return the contribution columns to rank (``_bias`` removed)."""
    for name, frame in (("contributions", contributions), ("features", features), ("keys", keys)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise InvalidRequestError(
                f"reasons: {name} must be a pandas DataFrame, not {type(frame).__name__}"
            )
    if direction not in DIRECTIONS:
        raise InvalidRequestError(
            f"reasons: direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}"
        )
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise InvalidRequestError(f"reasons: top must be a whole number >= 1; got {top!r}")
    for name, frame in (("features", features), ("keys", keys)):
        if frame is not None and not contributions.index.equals(frame.index):
            raise InvalidRequestError(
                f"reasons: contributions ({len(contributions)} rows) and {name} ({len(frame)} "
                "rows) must have the same index, row for row: pass the frame the contributions "
                "were computed from (estimator.contributions(X) keeps X's index)"
            )
    if contributions.columns.duplicated().any():
        raise InvalidRequestError(
            "reasons: contributions has duplicated column names; give each feature one column"
        )
    cols = [c for c in contributions.columns if c != BIAS]
    unknown = [c for c in cols if c not in features.columns]
    if unknown:
        more = f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""
        raise InvalidRequestError(
            f"reasons: contributions has columns that features lacks: {', '.join(unknown[:10])}"
            f"{more}; pass the feature frame the contributions were computed from"
        )
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(contributions[c].dtype)]
    if bad:
        raise InvalidRequestError(
            f"reasons: contribution columns must be numeric; not numeric: {', '.join(bad[:10])}"
        )
    if cols and not np.isfinite(contributions[cols].to_numpy(dtype="float64")).all():
        raise InvalidRequestError(
            "reasons: contributions holds NaN or infinite values; recompute them with the "
            "model's contributions(X)"
        )
    return cols


def _ranked(values: np.ndarray, direction: str, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column positions of the ``top`` picks (columns sorted by name, so a stable
    sort breaks ties by name) and whether each pick qualifies."""
    if direction == "up":
        score = values
    elif direction == "down":
        score = -values
    else:
        score = np.abs(values)
    order = np.argsort(-score, axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(score, order, axis=1)
    return order, picked > 0


KEY_CONTEXT = ("category", "color", "component")

NOT_A_REASON = frozenset({"product_category"})
"""Features that say what a row is, not why its account or device stands out ("the category
itself: printers" tells a sales team nothing): they move the score, as SHAP shows, but
:func:`reasons` picks the reasons among the other features."""


def reasons(
    contributions: pd.DataFrame,
    features: pd.DataFrame,
    keys: pd.DataFrame | None = None,
    top: int = 3,
    direction: str = "up",
) -> list[list[Reason]]:
    """The ``top`` reasons of each row, in the rows' order.

    ``contributions``: one column per feature (and ``_bias``, ignored), one row per
    prediction, as from an estimator's ``contributions(X)``. ``features``: the feature
    values of the same rows (same index; extra columns are fine). ``keys``: the rows' keys
    (same index), for the wording: ``category`` ("bought supplies ...") and ``color``
    ("black toner ..."); when None, those columns are read from ``features`` if present.
    ``direction``: ``"up"`` (positive contributions, largest first), ``"down"`` (negative,
    most negative first) or ``"both"`` (by absolute value). A row gets fewer than ``top``
    reasons when fewer features qualify. Features in :data:`NOT_A_REASON` are never picked.
    """
    cols = _check(contributions, features, keys, top, direction)
    cols = sorted((c for c in cols if c not in NOT_A_REASON), key=str)
    n = len(contributions)
    if not cols:
        return [[] for _ in range(n)]
    values = contributions[cols].to_numpy(dtype="float64")
    order, ok = _ranked(values, direction, min(top, len(cols)))
    source = keys if keys is not None else features
    ctx_cols = [c for c in KEY_CONTEXT if c in source.columns]
    ctx_rows = source[ctx_cols].to_dict("records") if ctx_cols else [{}] * n
    out: list[list[Reason]] = []
    for i in range(n):
        row: list[Reason] = []
        for j, good in zip(order[i], ok[i], strict=True):
            if not good:
                break
            name = cols[j]
            value = features[name].iat[i]
            row.append(
                Reason(
                    feature=str(name),
                    value=_plain(value),
                    contribution=float(values[i, j]),
                    text=describe(str(name), value, ctx_rows[i]),
                )
            )
        out.append(row)
    return out


def reasons_frame(
    contributions: pd.DataFrame,
    features: pd.DataFrame,
    keys: pd.DataFrame | None = None,
    top: int = 3,
    direction: str = "up",
) -> pd.DataFrame:
    """:func:`reasons` as a DataFrame on the contributions' index: ``reason_1`` ..
    ``reason_<top>`` (the sentences, None where a row has fewer) and ``reasons`` (a list of
    plain dicts per row: feature, value, contribution, text; JSON-able)."""
    picked = reasons(contributions, features, keys, top=top, direction=direction)
    index = contributions.index
    data = {
        f"reason_{k + 1}": pd.Series(
            [r[k].text if len(r) > k else None for r in picked], index=index, dtype=object
        )
        for k in range(top)
    }
    data["reasons"] = pd.Series(
        [[x.to_dict() for x in r] for r in picked], index=index, dtype=object
    )
    return pd.DataFrame(data, index=index)
