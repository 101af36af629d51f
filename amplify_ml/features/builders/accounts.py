"""Account-side features: sell-through, install-base composition, intent, opportunities, tickets.

Keys: ``ACCOUNT`` = (partner_id, account_id); ``ACCOUNT_CATEGORY`` adds the product
category (the propensity model's entity). Every builder returns one row per key and
``cutoff`` for the entities that have rows; the training set left-joins it on its spine.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from amplify_ml.datapack.contract import CHANNELS, CONTRACTS, DEVICE_CATEGORIES, PRODUCT_CATEGORIES
from amplify_ml.features.graph import (
    builder,
    count_if,
    day_of,
    entity,
    int_sum,
    latest_as_of,
    node,
    sum_if,
    window_join,
    within,
)

ACCOUNT = ("partner_id", "account_id")
ACCOUNT_CATEGORY = ("partner_id", "account_id", "category")


# -- spine and profile ------------------------------------------------------------------------


@entity(keys=ACCOUNT_CATEGORY)
def account_category_spine(accounts: ir.Table, products: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Accounts first seen on or before the cutoff, once per category of launched products."""
    a = accounts.select("partner_id", "account_id", first_day=day_of(accounts.first_seen))
    alive = window_join(a, cutoffs, days=None, on="first_day")
    launched = products.select("category", day=day_of(products.launched_on))
    cats = window_join(launched, cutoffs, days=None).select(c_cutoff="cutoff", category="category")
    cats = cats.distinct()
    j = alive.join(cats, alive.cutoff == cats.c_cutoff)
    return j.select("partner_id", "account_id", "category", "cutoff", "cday")


@builder(keys=("category",))
def product_category(products: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """The row's product category itself, so that a model pooled over categories knows it.

    One row per category of the products launched on or before the cutoff (the categories
    of :func:`account_category_spine`); the training set joins it on the category.
    """
    launched = products.select("category", day=day_of(products.launched_on))
    j = window_join(launched, cutoffs, days=None)
    return j.select("category", "cutoff", product_category=j.category).distinct()


@builder(keys=ACCOUNT)
def account_profile(accounts: ir.Table, partners: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Industry, size band, country, partner track and days since the account was first seen."""
    p = partners.select("partner_id", partner_track="track")
    a = accounts.select(
        "partner_id",
        "account_id",
        "industry",
        "employee_band",
        "country",
        first_day=day_of(accounts.first_seen),
    ).left_join(p, "partner_id")
    a = a.select(*[c for c in a.columns if not c.endswith("_right")])
    j = window_join(a, cutoffs, days=None, on="first_day")
    return j.select(
        "partner_id",
        "account_id",
        "cutoff",
        "industry",
        "employee_band",
        "country",
        "partner_track",
        account_tenure_days=(j.cday - j.first_day).cast("int64"),
    )


# -- sell-through --------------------------------------------------------------------------


@node(cache=True)
def st_daily(sell_through: ir.Table, products: ir.Table) -> ir.Table:
    """Sell-through per account, category, SKU and day: revenue, units, lines, returns, buys."""
    p = products.select("sku", "category")
    s = sell_through.select(
        "partner_id",
        "account_id",
        "sku",
        "quantity",
        "net_amount",
        "channel",
        day=day_of(sell_through.sold_on),
    ).join(p, "sku")
    aggs = {
        "revenue": s.net_amount.sum(),
        "units": int_sum(s.quantity),
        "lines": s.count(),
        "returns": count_if(s.quantity < 0),
        "buys": count_if(s.quantity > 0),
    }
    for ch in CHANNELS:
        aggs[f"lines_{ch}"] = count_if(s.channel == ch)
    return s.group_by(["partner_id", "account_id", "category", "sku", "day"]).aggregate(**aggs)


def _st_window_aggs(
    j: ir.Table, prefix: str, windows: tuple[int, ...], money: bool = True
) -> dict[str, ir.Value]:
    aggs: dict[str, ir.Value] = {}
    for w in windows:
        f = within(j, w)
        if money:
            aggs[f"{prefix}_revenue_sum_{w}d"] = sum_if(f, j.revenue)
        aggs[f"{prefix}_units_sum_{w}d"] = sum_if(f, j.units).cast("int64")
        aggs[f"{prefix}_lines_count_{w}d"] = sum_if(f, j.lines).cast("int64")
        aggs[f"{prefix}_skus_distinct_{w}d"] = j.sku.nunique(where=f).cast("int64")
        aggs[f"{prefix}_returns_count_{w}d"] = sum_if(f, j.returns).cast("int64")
    return aggs


@builder(keys=ACCOUNT_CATEGORY, zero_fill=True)
def st_cat_window_sums(
    st_daily: ir.Table,
    cutoffs: ir.Table,
    *,
    windows: tuple[int, ...] = (30, 90, 180, 365),
    money: bool = True,
) -> ir.Table:
    """The account's sell-through in the category per window: revenue, units, lines, SKUs, returns.

    ``money=False`` leaves out the revenue (amounts in the partner's currency, which a model
    pooled over partners in several currencies cannot compare)."""
    j = window_join(st_daily, cutoffs, days=max(windows))
    return j.group_by([*ACCOUNT_CATEGORY, "cutoff"]).aggregate(
        **_st_window_aggs(j, "st_cat", windows, money)
    )


@builder(keys=ACCOUNT, zero_fill=True)
def st_window_sums(
    st_daily: ir.Table,
    cutoffs: ir.Table,
    *,
    windows: tuple[int, ...] = (30, 90, 180, 365),
    money: bool = True,
) -> ir.Table:
    """The account's sell-through over all categories per window, and categories bought.

    ``money=False`` leaves out the revenue, as in :func:`st_cat_window_sums`."""
    j = window_join(st_daily, cutoffs, days=max(windows))
    aggs = _st_window_aggs(j, "st", windows, money)
    top = max(windows)
    aggs[f"st_categories_distinct_{top}d"] = j.category.nunique(where=j.buys > 0).cast("int64")
    return j.group_by([*ACCOUNT, "cutoff"]).aggregate(**aggs)


@builder(keys=ACCOUNT_CATEGORY)
def days_since_last_purchase_cat(
    st_daily: ir.Table, cutoffs: ir.Table, cutoff_days: tuple[int, ...]
) -> ir.Table:
    """Days since the account last bought (quantity > 0) in the category; null if never."""
    b = st_daily.filter(st_daily.buys > 0).select(*ACCOUNT_CATEGORY, "day")
    j = latest_as_of(b, cutoffs, cutoff_days, group=list(ACCOUNT_CATEGORY), values=[], order="day")
    return j.select(
        *ACCOUNT_CATEGORY, "cutoff", days_since_last_purchase_cat=(j.cday - j.day).cast("int64")
    )


@builder(keys=ACCOUNT_CATEGORY, zero_fill=True)
def st_cat_rhythm(
    st_daily: ir.Table, cutoffs: ir.Table, *, window: int = 730, horizon: int = 90
) -> ir.Table:
    """Usual interval between purchase days in the category, how overdue, same days last year.

    The interval is the mean gap between the first and the last purchase day (quantity > 0) of
    the ``window``; overdue is the days since the last one over that interval; last year counts
    the purchases in the ``horizon`` days that followed the cutoff's date a year earlier.
    """
    b = st_daily.filter(st_daily.buys > 0)
    j = window_join(b, cutoffs, days=window)
    ly = (j.day > j.cday - 365) & (j.day <= j.cday - 365 + horizon)
    g = j.group_by([*ACCOUNT_CATEGORY, "cutoff", "cday"]).aggregate(
        _first=j.day.min(),
        _last=j.day.max(),
        _n=j.day.nunique(),
        **{f"st_cat_buys_count_last_year_next_{horizon}d": sum_if(ly, j.buys).cast("int64")},
    )
    interval = ibis.ifelse(
        g._n >= 2, (g._last - g._first).cast("float64") / (g._n - 1), ibis.null("float64")
    )
    return g.select(
        *ACCOUNT_CATEGORY,
        "cutoff",
        **{
            f"st_cat_purchase_interval_mean_days_{window}d": interval,
            f"st_cat_overdue_ratio_{window}d": (g.cday - g._last).cast("float64") / interval,
            f"st_cat_buys_count_last_year_next_{horizon}d": g[
                f"st_cat_buys_count_last_year_next_{horizon}d"
            ],
        },
    )


@builder(keys=ACCOUNT)
def days_since_last_purchase(
    st_daily: ir.Table, cutoffs: ir.Table, cutoff_days: tuple[int, ...]
) -> ir.Table:
    """Days since the account last bought anything (quantity > 0); null if never."""
    b = st_daily.filter(st_daily.buys > 0).select(*ACCOUNT, "day")
    j = latest_as_of(b, cutoffs, cutoff_days, group=list(ACCOUNT), values=[], order="day")
    return j.select(*ACCOUNT, "cutoff", days_since_last_purchase=(j.cday - j.day).cast("int64"))


@builder(keys=ACCOUNT)
def st_channel_share(st_daily: ir.Table, cutoffs: ir.Table, *, window: int = 365) -> ir.Table:
    """Share of the account's invoice lines by channel over the window; null without lines."""
    j = window_join(st_daily, cutoffs, days=window)
    g = j.group_by([*ACCOUNT, "cutoff"]).aggregate(
        _lines=int_sum(j.lines), **{f"_{ch}": int_sum(j[f"lines_{ch}"]) for ch in CHANNELS}
    )
    return g.select(
        *ACCOUNT,
        "cutoff",
        **{
            f"st_channel_{ch}_share_{window}d": g[f"_{ch}"].cast("float64") / g._lines
            for ch in CHANNELS
        },
    )


@builder(keys=ACCOUNT, zero_fill=True)
def st_device_units(
    st_daily: ir.Table, cutoffs: ir.Table, *, windows: tuple[int, ...] = (90, 365)
) -> ir.Table:
    """Printer and PC units the account bought per window (net of returns)."""
    d = st_daily.filter(st_daily.category.isin(DEVICE_CATEGORIES))
    j = window_join(d, cutoffs, days=max(windows))
    aggs = {
        f"st_{cat}_units_sum_{w}d": sum_if(within(j, w) & (j.category == cat), j.units).cast(
            "int64"
        )
        for w in windows
        for cat in DEVICE_CATEGORIES
    }
    return j.group_by([*ACCOUNT, "cutoff"]).aggregate(**aggs)


# -- install base ----------------------------------------------------------------------------


@node()
def ib_devices(install_base: ir.Table, products: ir.Table) -> ir.Table:
    """Devices with day numbers (installed, out of service, warranty end) and their product.

    ``ret``, the day a device left service, is its ``retired_on`` or, when that is empty but
    ``replaced_by`` is set, the day its replacement was installed ("retired or replaced").
    """
    p = products.select("sku", "family", "list_price", device_category="category")
    ib = install_base.select(
        "partner_id",
        "account_id",
        "device_id",
        "sku",
        "contract",
        "replaced_by",
        inst=day_of(install_base.installed_on),
        retired=day_of(install_base.retired_on),
        wend=day_of(install_base.warranty_ends_on),
    )
    rep = install_base.select(
        r_partner="partner_id", r_device="device_id", r_inst=day_of(install_base.installed_on)
    )
    ib = ib.left_join(rep, [ib.partner_id == rep.r_partner, ib.replaced_by == rep.r_device])
    ib = ib.select(
        "partner_id",
        "account_id",
        "device_id",
        "sku",
        "contract",
        "replaced_by",
        "inst",
        "wend",
        ret=ibis.coalesce(ib.retired, ib.r_inst),
    )
    return ib.left_join(p, "sku").select(
        "partner_id",
        "account_id",
        "device_id",
        "sku",
        "contract",
        "replaced_by",
        "inst",
        "ret",
        "wend",
        "device_category",
        "family",
        "list_price",
    )


def alive_at(t: ir.Table) -> ir.BooleanValue:
    """Devices of a window_join on ``inst`` not retired on or before the cutoff."""
    return t.ret.isnull() | (t.ret > t.cday)


@builder(keys=ACCOUNT, zero_fill=True)
def ib_composition(
    ib_devices: ir.Table,
    cutoffs: ir.Table,
    *,
    warranty_windows: tuple[int, ...] = (90, 180),
    retired_window: int = 365,
) -> ir.Table:
    """The account's install base at the cutoff: devices per category, age, warranties, contracts."""
    j = window_join(ib_devices, cutoffs, days=None, on="inst")
    alive = alive_at(j)
    age = (j.cday - j.inst).cast("float64")
    aggs: dict[str, ir.Value] = {"ib_devices_count": count_if(alive)}
    for cat in DEVICE_CATEGORIES:
        aggs[f"ib_{cat}_count"] = count_if(alive & (j.device_category == cat))
    aggs["ib_device_age_mean_days"] = age.mean(where=alive)
    aggs["ib_device_age_max_days"] = age.max(where=alive)
    for w in warranty_windows:
        aggs[f"ib_warranty_ending_count_next_{w}d"] = count_if(
            alive & j.wend.notnull() & (j.wend > j.cday) & (j.wend <= j.cday + w)
        )
    for c in CONTRACTS:
        aggs[f"ib_contract_{c}_count"] = count_if(alive & (j.contract == c))
    aggs[f"ib_retired_count_{retired_window}d"] = count_if(
        j.ret.notnull() & (j.ret <= j.cday) & (j.ret > j.cday - retired_window)
    )
    return j.group_by([*ACCOUNT, "cutoff"]).aggregate(**aggs)


@builder(keys=ACCOUNT_CATEGORY)
def ib_cat_age(
    ib_devices: ir.Table, cutoffs: ir.Table, *, older_than_years: tuple[int, ...] = (4, 5, 6)
) -> ir.Table:
    """The account's devices of the row's category (printer, PC) in service: count and ages.

    Rows for the device categories of accounts with an install base at the cutoff (0 devices
    of a category they have none of in service). Not zero-filled: on the rows of the other
    categories, and of accounts without an install base, the columns stay null (not
    applicable), which a pooled model tells apart from none.
    """
    j = window_join(ib_devices, cutoffs, days=None, on="inst")
    alive = alive_at(j)
    age = (j.cday - j.inst).cast("float64")
    aggs: dict[str, ir.Value] = {}
    for cat in DEVICE_CATEGORIES:
        here = alive & (j.device_category == cat)
        aggs[f"_{cat}_n"] = count_if(here)
        aggs[f"_{cat}_mean"] = age.mean(where=here)
        aggs[f"_{cat}_max"] = age.max(where=here)
        for n in older_than_years:
            aggs[f"_{cat}_over_{n}"] = count_if(here & (age > 365.25 * n))
    g = j.group_by([*ACCOUNT, "cutoff"]).aggregate(**aggs)
    parts = [
        g.select(
            *ACCOUNT,
            category=ibis.literal(cat),
            cutoff="cutoff",
            ib_cat_devices_count=g[f"_{cat}_n"],
            ib_cat_device_age_mean_days=g[f"_{cat}_mean"],
            ib_cat_device_age_max_days=g[f"_{cat}_max"],
            **{f"ib_cat_devices_over_{n}y_count": g[f"_{cat}_over_{n}"] for n in older_than_years},
        )
        for cat in DEVICE_CATEGORIES
    ]
    return ibis.union(*parts)


@node()
def warranty_lines(st_daily: ir.Table, products: ir.Table) -> ir.Table:
    """Days an account bought an extended warranty, with the device family its SKU names."""
    p = products.filter(products.category == "warranty").select("sku", w_family="family")
    s = st_daily.filter((st_daily.category == "warranty") & (st_daily.buys > 0))
    s = s.join(p, "sku")
    return s.select(
        w_partner="partner_id", w_account="account_id", w_family="w_family", w_day="day"
    ).distinct()


@builder(keys=ACCOUNT_CATEGORY)
def ib_warranty_extension(
    ib_devices: ir.Table,
    warranty_lines: ir.Table,
    cutoffs: ir.Table,
    *,
    window: int = 90,
    horizon: int = 90,
    lookback: int = 730,
) -> ir.Table:
    """Warranties due for extension in the horizon, and the account's past take-up (warranty rows).

    A device's buying window is the ``window`` days before its warranty ends. A device counts
    as extended when the account bought a warranty of its family from the day the window
    opened (up to the cutoff, and before the warranty ended). Due: devices in service at the
    cutoff, not extended yet, whose window overlaps the ``horizon`` days after the cutoff;
    the overlap sum adds the share of each window inside the horizon. Take-up: of the
    devices whose warranty ended in the last ``lookback`` days while in service, those
    extended, and their rate. One row per account with an install base, category "warranty";
    not zero-filled, so the other categories' rows stay null (see :func:`ib_cat_age`).
    """
    j = window_join(ib_devices, cutoffs, days=None, on="inst")
    w = warranty_lines
    hit = j.join(
        w,
        [
            j.partner_id == w.w_partner,
            j.account_id == w.w_account,
            j.family == w.w_family,
            w.w_day >= j.wend - window,
            w.w_day <= j.cday,
            w.w_day < j.wend,
        ],
    )
    hit = hit.select(h_partner="partner_id", h_device="device_id", h_cutoff="cutoff").distinct()
    j = j.left_join(
        hit,
        [j.partner_id == hit.h_partner, j.device_id == hit.h_device, j.cutoff == hit.h_cutoff],
    )
    extended = j.h_device.notnull()
    lo = ibis.greatest(j.wend - window, j.cday + 1)
    hi = ibis.least(j.wend - 1, j.cday + horizon)
    overlap = (hi - lo + 1).cast("float64") / window
    due = alive_at(j) & ~extended & j.wend.notnull() & (hi >= lo)
    ended = (j.wend <= j.cday) & (j.wend > j.cday - lookback) & (j.ret.isnull() | (j.ret >= j.wend))
    g = j.group_by([*ACCOUNT, "cutoff"]).aggregate(
        _due=count_if(due),
        _overlap=sum_if(due, overlap),
        _ended=count_if(ended),
        _extended=count_if(ended & extended),
    )
    return g.select(
        *ACCOUNT,
        category=ibis.literal("warranty"),
        cutoff="cutoff",
        **{
            f"ib_warranty_due_count_next_{horizon}d": g._due,
            f"ib_warranty_due_overlap_sum_next_{horizon}d": g._overlap,
            f"ib_warranty_ended_count_{lookback}d": g._ended,
            f"ib_warranty_extended_count_{lookback}d": g._extended,
            f"ib_warranty_extended_rate_{lookback}d": ibis.ifelse(
                g._ended > 0, g._extended.cast("float64") / g._ended, ibis.null("float64")
            ),
        },
    )


# -- intent ----------------------------------------------------------------------------------


@node()
def intent_weeks(intent_signals: ir.Table, products: ir.Table) -> ir.Table:
    """Weekly intent with the day the week ends and the category its topic points to."""
    fam = (
        products.filter(products.category.isin(DEVICE_CATEGORIES))
        .select(topic="family", family_category="category")
        .distinct()
    )
    i = intent_signals.select(
        "partner_id", "account_id", "topic", "intensity", end_day=day_of(intent_signals.week_of) + 6
    ).left_join(fam, "topic")
    topic_category = ibis.ifelse(i.topic.isin(PRODUCT_CATEGORIES), i.topic, i.family_category)
    return i.select(
        "partner_id", "account_id", "topic", "intensity", "end_day", category=topic_category
    )


@builder(keys=ACCOUNT_CATEGORY, zero_fill=True)
def intent_cat_sums(
    intent_weeks: ir.Table, cutoffs: ir.Table, *, weeks: tuple[int, ...] = (2, 4, 8, 12)
) -> ir.Table:
    """Intent on the category (its name or one of its device families) over complete weeks."""
    t = intent_weeks.filter(intent_weeks.category.notnull())
    j = window_join(t, cutoffs, days=7 * max(weeks), on="end_day")
    aggs = {
        f"intent_cat_intensity_sum_{n}w": sum_if(within(j, 7 * n, on="end_day"), j.intensity).cast(
            "int64"
        )
        for n in weeks
    }
    return j.group_by([*ACCOUNT_CATEGORY, "cutoff"]).aggregate(**aggs)


@builder(keys=ACCOUNT_CATEGORY)
def intent_cat_run(
    intent_weeks: ir.Table, cutoffs: ir.Table, cutoff_days: tuple[int, ...]
) -> ir.Table:
    """The category's latest run of weekly intent: weeks since it stopped, its length, intensity.

    A run is a series of consecutive complete weeks with intent on the category (its name or
    one of its device families, intensity > 0); a buying project shows as one from its start
    to the week before its purchase, rising in intensity the longer it has run. At a cutoff,
    of the latest week with intent: the days from its end to the cutoff (0 to 6: intent in
    the last complete week, so the run may still go on), the weeks of its run up to it, its
    intensity and the run's. A run's start depends only on the weeks before it, so later
    weeks change nothing. No row (nulls) for categories without intent on record.
    """
    t = intent_weeks.filter(intent_weeks.category.notnull() & (intent_weeks.intensity > 0))
    w = t.group_by([*ACCOUNT_CATEGORY, "end_day"]).aggregate(intensity=int_sum(t.intensity))
    by = [w[k] for k in ACCOUNT_CATEGORY]
    prev = w.end_day.lag().over(ibis.window(group_by=by, order_by=w.end_day))
    w = w.mutate(_new=prev.isnull() | (w.end_day - prev > 7))
    upto = ibis.cumulative_window(group_by=[w[k] for k in ACCOUNT_CATEGORY], order_by=w.end_day)
    w = w.mutate(_cum=w.intensity.cast("float64").sum().over(upto).cast("int64"))
    w = w.mutate(
        _start=ibis.ifelse(w._new, w.end_day, ibis.null("int64")).max().over(upto),
        _before=ibis.ifelse(w._new, w._cum - w.intensity, ibis.null("int64")).max().over(upto),
    )
    w = w.select(*ACCOUNT_CATEGORY, "end_day", "intensity", "_start", _run=w._cum - w._before)
    j = latest_as_of(
        w,
        cutoffs,
        cutoff_days,
        group=list(ACCOUNT_CATEGORY),
        values=["intensity", "_start", "_run"],
        order="end_day",
        on="end_day",
    )
    return j.select(
        *ACCOUNT_CATEGORY,
        "cutoff",
        intent_cat_days_since_signal=(j.cday - j.end_day).cast("int64"),
        intent_cat_run_weeks=((j.end_day - j._start) / 7).round().cast("int64") + 1,
        intent_cat_run_intensity_last=j.intensity.cast("int64"),
        intent_cat_run_intensity_total=j._run.cast("int64"),
    )


@builder(keys=ACCOUNT, zero_fill=True)
def intent_sums(
    intent_weeks: ir.Table, cutoffs: ir.Table, *, weeks: tuple[int, ...] = (2, 4, 8, 12)
) -> ir.Table:
    """The account's intent over complete weeks: all topics, security, distinct topics."""
    j = window_join(intent_weeks, cutoffs, days=7 * max(weeks), on="end_day")
    aggs: dict[str, ir.Value] = {}
    for n in weeks:
        f = within(j, 7 * n, on="end_day")
        aggs[f"intent_intensity_sum_{n}w"] = sum_if(f, j.intensity).cast("int64")
        aggs[f"intent_security_intensity_sum_{n}w"] = sum_if(
            f & (j.topic == "security"), j.intensity
        ).cast("int64")
    aggs[f"intent_topics_distinct_{max(weeks)}w"] = j.topic.nunique(where=j.intensity > 0).cast(
        "int64"
    )
    return j.group_by([*ACCOUNT, "cutoff"]).aggregate(**aggs)


# -- opportunities ---------------------------------------------------------------------------


@builder(keys=ACCOUNT, zero_fill=True)
def opportunity_counts(
    opportunities: ir.Table,
    cutoffs: ir.Table,
    *,
    windows: tuple[int, ...] = (90, 365),
    money: bool = True,
) -> ir.Table:
    """Opportunities open at the cutoff, and created, won, lost and registered per window.

    The stage column is the state when the pack was made; at a cutoff an opportunity counts
    as won or lost only if it closed on or before it, else it was open. ``money=False`` leaves
    out the amounts (open, and won per window), as :func:`st_cat_window_sums` does.
    """
    o = opportunities.select(
        "partner_id",
        "account_id",
        "stage",
        "amount",
        "deal_registered",
        created=day_of(opportunities.created_on),
        closed=day_of(opportunities.closed_on),
    )
    j = window_join(o, cutoffs, days=None, on="created")
    is_open = j.closed.isnull() | (j.closed > j.cday)
    aggs: dict[str, ir.Value] = {"opp_open_count": count_if(is_open)}
    if money:
        aggs["opp_open_amount_sum"] = sum_if(is_open, j.amount)
    for w in windows:
        created = within(j, w, on="created")
        closed = ~is_open & (j.closed > j.cday - w)
        aggs[f"opp_created_count_{w}d"] = count_if(created)
        aggs[f"opp_registered_count_{w}d"] = count_if(created & j.deal_registered)
        aggs[f"opp_won_count_{w}d"] = count_if(closed & (j.stage == "won"))
        aggs[f"opp_lost_count_{w}d"] = count_if(closed & (j.stage == "lost"))
        if money:
            aggs[f"opp_won_amount_sum_{w}d"] = sum_if(closed & (j.stage == "won"), j.amount)
    g = j.group_by([*ACCOUNT, "cutoff", "cday"]).aggregate(_last=j.created.max(), **aggs)
    return g.mutate(days_since_last_opportunity=(g.cday - g._last).cast("int64")).drop(
        "cday", "_last"
    )


# -- service tickets (account level) ---------------------------------------------------------


@node()
def tickets(service_events: ir.Table) -> ir.Table:
    """Service tickets with the days they opened and closed."""
    s = service_events
    return s.select(
        "partner_id",
        "account_id",
        "device_id",
        "kind",
        "component",
        day=day_of(s.opened_at),
        closed=day_of(s.closed_at),
    )


REPAIR_KINDS = ("repair", "part_replacement")


@builder(keys=ACCOUNT, zero_fill=True)
def svc_account_counts(
    tickets: ir.Table, cutoffs: ir.Table, *, windows: tuple[int, ...] = (90, 365)
) -> ir.Table:
    """The account's service tickets: opened per window (all, incidents, repairs), open now."""
    cols = [*ACCOUNT, "cutoff", "cday", "kind", "day"]
    recent = window_join(tickets, cutoffs, days=max(windows)).select(*cols, is_open=ibis.literal(0))
    t = tickets
    open_now = t.join(
        cutoffs, [t.day <= cutoffs.cday, t.closed.isnull() | (t.closed > cutoffs.cday)]
    ).select(*cols, is_open=ibis.literal(1))
    j = recent.union(open_now)
    counted = j.is_open == 0
    aggs: dict[str, ir.Value] = {"svc_open_count": int_sum(j.is_open)}
    for w in windows:
        f = counted & within(j, w)
        aggs[f"svc_tickets_count_{w}d"] = count_if(f)
        aggs[f"svc_incident_count_{w}d"] = count_if(f & (j.kind == "incident"))
        aggs[f"svc_repair_count_{w}d"] = count_if(f & j.kind.isin(REPAIR_KINDS))
    return j.group_by([*ACCOUNT, "cutoff"]).aggregate(**aggs)
