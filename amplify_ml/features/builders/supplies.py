"""Supply features per device and colour (the consumable_depletion model's entity).

Supply levels come from ``supply_level_pct.<color>`` readings. A cartridge change is a jump
up of at least ``CHANGE_JUMP_PCT`` points from the colour's previous reading, looked for up to
``CHANGE_LOOKBACK_DAYS`` back. "Latest" means the last reading dated on or before the
cutoff, however old.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from amplify_ml.features.builders.devices import (
    DEVICE,
    PAGE_LOOKBACK_DAYS,
    _check_lookback,
    page_history_back,
)
from amplify_ml.features.graph import (
    Materialize,
    bucket_latest,
    builder,
    count_if,
    day_of,
    entity,
    in_range,
    keyed,
    last_value,
    latest_as_of,
    latest_from_buckets,
    node,
    ols_slope,
    on_keys,
    sum_if,
    window_join,
    window_sums,
    within,
)

DEVICE_COLOR = ("partner_id", "device_id", "color")
DEVICE_COLOR_SPINE = ("partner_id", "account_id", "device_id", "color")
DEVICE_CUTOFF = (*DEVICE, "cutoff")
DEVICE_COLOR_CUTOFF = (*DEVICE_COLOR, "cutoff")
SUPPLY_PREFIX = "supply_level_pct."
CHANGE_JUMP_PCT = 30.0
FULL_PCT = 100.0
"""A level read at this is a full cartridge."""
CHANGE_LOOKBACK_DAYS = PAGE_LOOKBACK_DAYS
"""Cartridge changes are looked for this many days back from a cutoff (as far as the page
increments go, for the pages since the change)."""


FLEET_PACE_DAYS = 7
"""The fleet's pace on a day, for a device's share of it by the days it was read, is over
this many days up to it (a whole week: every weekday as often)."""
FLEET_PANEL_EDGE_DAYS = 28
"""With ``fleet_panel``, a device is in a cutoff's panel when its page counter was read within
this many days of both ends of the history the panel spans (an outage of a few days at either
end does not drop it)."""
CALENDAR_WEEKS = 52
"""The fleet's calendar a year earlier is read in this many weeks after the cutoff's date."""
CALENDAR_CAP_DAYS = 365
"""Days to the threshold by the calendar are capped here (pages to go beyond the year)."""
PROFILE_DAYS = 364
"""With ``weekday_profile``, the fleet's pages by day of the week are measured over the
counter readings of this many days up to the cutoff (52 whole weeks)."""
PROFILE_MAX_GAP_DAYS = 7
"""Counter increments over more days than this (outages) are left out of the weekday
profile: they tell little about any one day."""
PROFILE_MIN_WEIGHT = 0.01
"""A day of the week's share of the profile is at least this (times the mean day's), so that
every day moves the calendar on."""


@node()
def fleet_page_days(page_history: ir.Table) -> ir.Table:
    """The whole fleet's page counter increments and the days they cover, per reading day.

    From a year before the first cutoff; an increment counts on the day of its reading."""
    r = page_history.filter(page_history.delta.notnull())
    return r.group_by("day").aggregate(pages=r.delta.sum(), gap=r.gap.sum())


@node()
def fleet_calendar(fleet_page_days: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """The fleet's pages a device-day, week by week, in the year after the cutoff's date a year ago.

    ``rate`` per cutoff and week 1..``CALENDAR_WEEKS``: null for a week without readings."""
    return _weekly_calendar(window_join(fleet_page_days, cutoffs, days=365), cutoffs)


def _weekly_calendar(j: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Weekly pages a device-day in the ``CALENDAR_WEEKS`` after ``cday - 365`` from ``j``'s
    pages and days per reading day and cutoff (with ``cday``), on a grid of every week."""
    j = j.mutate(week=(j.day - (j.cday - 365) - 1) // 7 + 1)
    j = j.filter((j.week >= 1) & (j.week <= CALENDAR_WEEKS))
    g = j.group_by(["cutoff", "week"]).aggregate(pages=j.pages.sum(), gap=j.gap.sum())
    g = g.select(w_cutoff="cutoff", w_week="week", pages="pages", gap="gap")
    grid = cutoffs.select("cutoff").mutate(_w=ibis.range(1, CALENDAR_WEEKS + 1).unnest())
    grid = grid.select("cutoff", week=grid._w.cast("int64"))
    out = grid.left_join(g, [grid.cutoff == g.w_cutoff, grid.week == g.w_week])
    return out.select(
        "cutoff",
        "week",
        rate=ibis.ifelse(out.gap > 0, out.pages / out.gap, ibis.null("float64")),
    )


@node()
def supply_readings(telemetry: ir.Table) -> ir.Table:
    """Supply level readings per device and colour, with their day."""
    t = telemetry.filter(telemetry.metric.startswith(SUPPLY_PREFIX))
    return t.select(
        "partner_id",
        "device_id",
        "observed_at",
        "value",
        color=t.metric.substr(len(SUPPLY_PREFIX)),
        day=day_of(t.observed_at),
    )


@node(cache=True)
def supply_buckets(supply_readings: ir.Table, cutoff_days: tuple[int, ...]) -> ir.Table:
    """Each device colour's latest reading per cutoff bucket, in one pass over its history.

    Bucket -1 holds the latest reading from before the change lookback.
    """
    return bucket_latest(
        supply_readings,
        cutoff_days,
        group=list(DEVICE_COLOR),
        values=["value"],
        lookback=CHANGE_LOOKBACK_DAYS,
    )


@node(cache=True)
def supply_latest(supply_buckets: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Each device colour's latest level at each cutoff (however old), and its day."""
    return latest_from_buckets(supply_buckets, cutoffs, group=list(DEVICE_COLOR), values=["value"])


@node(cache=True)
def supply_steps(
    supply_readings: ir.Table,
    supply_buckets: ir.Table,
    page_readings: ir.Table,
    cutoff_days: tuple[int, ...],
) -> ir.Table:
    """Readings where a colour's level fell or jumped up (a change), with the page counter then.

    Looked for up to ``CHANGE_LOOKBACK_DAYS`` before the first cutoff; ``prev`` is the
    colour's previous reading however old; the page counter is the one read at the same time
    (periodic readings report both; supply alerts have none), with the pages since the
    device's counter reading before it (``page_delta``). Also the colour's first reading when
    it reads full (``prev`` null: neither a fall nor a change; see
    ``supply_usage(first_full_as_change=...)``).
    """
    s = supply_readings
    recent = s.filter(
        (s.day > cutoff_days[0] - CHANGE_LOOKBACK_DAYS) & (s.day <= cutoff_days[-1])
    ).select(*DEVICE_COLOR, "observed_at", "day", "value", _before=ibis.literal(False))
    b = supply_buckets
    older = b.filter(b._b == -1).select(
        *DEVICE_COLOR, "observed_at", "day", "value", _before=ibis.literal(True)
    )
    t = recent.union(older)
    w = ibis.window(group_by=[t.partner_id, t.device_id, t.color], order_by=[t.observed_at])
    t = t.mutate(prev=t.value.lag().over(w))
    step = t.prev.notnull() & ((t.value < t.prev) | (t.value - t.prev >= CHANGE_JUMP_PCT))
    st = t.filter(~t._before & (step | (t.prev.isnull() & (t.value >= FULL_PCT))))
    st = st.select(*DEVICE_COLOR, "observed_at", "day", "value", "prev")
    at = (*DEVICE, "observed_at")
    p = page_readings.select(
        **keyed(page_readings, "p_", at), page_value=page_readings.value, page_delta="delta"
    )
    j = st.left_join(p, on_keys(st, p, "p_", at))
    return j.select(
        *DEVICE_COLOR, "observed_at", "day", "value", "prev", "page_value", "page_delta"
    )


@node()
def supply_changes(supply_steps: ir.Table) -> ir.Table:
    """Cartridge changes (jumps up from the previous reading), with the page counter then."""
    return _changes(supply_steps)


def _changes(steps: ir.Table) -> ir.Table:
    ch = steps.filter(steps.value - steps.prev >= CHANGE_JUMP_PCT)
    return ch.select(*DEVICE_COLOR, "observed_at", "day", "page_value")


@node(cache=True)
def supply_last_change(supply_changes: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Each device colour's last cartridge change within the lookback of each cutoff.

    Its time (``since``), day and page counter; no row when none within
    ``CHANGE_LOOKBACK_DAYS``."""
    return _last_change(supply_changes, cutoffs)


def _last_change(changes: ir.Table, cutoffs: ir.Table) -> ir.Table:
    cj = window_join(changes, cutoffs, days=CHANGE_LOOKBACK_DAYS)
    return cj.group_by([*DEVICE_COLOR, "cutoff"]).aggregate(
        cday=cj.cday.max(),
        since=cj.observed_at.max(),
        change_day=cj.day.max(),
        change_pages=cj.page_value.argmax(cj.observed_at),
    )


@entity(keys=DEVICE_COLOR_SPINE)
def device_color_spine(
    supply_latest: ir.Table,
    cutoffs: ir.Table,
    ib_devices: ir.Table | None = None,
    *,
    threshold_pct: float = 10.0,
) -> ir.Table:
    """Device colours whose latest level on or before the cutoff is above the threshold.

    With an install base, only devices alive at the cutoff.
    """
    last = supply_latest.filter(supply_latest.value > threshold_pct)
    if ib_devices is None:
        return last.select(
            "partner_id",
            account_id=ibis.null("string"),
            device_id=last.device_id,
            color=last.color,
            cutoff=last.cutoff,
            cday=last.cday,
        )
    ib = ib_devices.select("partner_id", "account_id", "device_id", "inst", "ret")
    j = last.join(ib, ["partner_id", "device_id"])
    j = j.filter((j.inst <= j.cday) & (j.ret.isnull() | (j.ret > j.cday)))
    return j.select(*DEVICE_COLOR_SPINE, "cutoff", "cday")


@builder(keys=DEVICE_COLOR)
def supply_level(
    supply_readings: ir.Table,
    supply_latest: ir.Table,
    supply_last_change: ir.Table,
    page_latest: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    windows: tuple[int, ...] = (7, 30),
) -> ir.Table:
    """Last level, slopes since the last change, days and pages since it, days to empty.

    Slopes are per day over each window's readings since the last cartridge change (looked
    for within ``CHANGE_LOOKBACK_DAYS``); days to empty extrapolate the longest window's slope.
    """
    last = supply_latest.select(*DEVICE_COLOR, "cutoff", "cday", supply_level_last="value")
    chg = supply_last_change.select(
        **keyed(supply_last_change, "c_", DEVICE_COLOR_CUTOFF),
        change_day="change_day",
        change_pages="change_pages",
    )
    base = last.left_join(chg, on_keys(last, chg, "c_", DEVICE_COLOR_CUTOFF)).select(
        *DEVICE_COLOR, "cutoff", "cday", "supply_level_last", "change_day", "change_pages"
    )
    # slopes over the readings since the last change, per window
    top = max(windows)
    r = supply_readings.select(*DEVICE_COLOR, "day", "value")
    win = window_join(in_range(r, cutoff_days, top), cutoffs, days=top)
    c = chg.select(*(f"c_{k}" for k in DEVICE_COLOR_CUTOFF), since="change_day")
    win = win.left_join(c, on_keys(win, c, "c_", DEVICE_COLOR_CUTOFF)).select(
        *DEVICE_COLOR, "cutoff", "cday", "day", "value", "since"
    )
    win = win.filter(win.since.isnull() | (win.day >= win.since))
    x = (win.day - win.cday).cast("float64")
    win = win.mutate(
        _x=x, _xx=x * x, _xy=x * win.value, **{f"_w{w}": within(win, w) for w in windows}
    )
    slopes = {}
    for w in windows:
        f = win[f"_w{w}"]
        slopes[f"_slope_{w}"] = ols_slope(
            count_if(f),
            sum_if(f, win._x),
            sum_if(f, win.value),
            sum_if(f, win._xy),
            sum_if(f, win._xx),
        )
    sl = win.group_by([*DEVICE_COLOR, "cutoff"]).aggregate(**slopes)
    sl = sl.select(**keyed(sl, "s_", DEVICE_COLOR_CUTOFF), **{k: sl[k] for k in slopes})
    p = page_latest.select(**keyed(page_latest, "p_", DEVICE_CUTOFF), page_last=page_latest.value)
    out = base.left_join(sl, on_keys(base, sl, "s_", DEVICE_COLOR_CUTOFF))
    out = out.select(*base.columns, *slopes)
    out = out.left_join(p, on_keys(out, p, "p_", DEVICE_CUTOFF)).select(*out.columns, "page_last")
    pages = out.page_last - out.change_pages
    cols: dict[str, ir.Value] = {
        "supply_level_last": out.supply_level_last,
        "days_since_supply_change": (out.cday - out.change_day).cast("int64"),
        "pages_since_supply_change": ibis.ifelse(pages >= 0, pages, ibis.null("float64")),
    }
    for w in windows:
        cols[f"supply_level_slope_{w}d"] = out[f"_slope_{w}"]
    slope = out[f"_slope_{max(windows)}"]
    cols[f"supply_days_to_empty_linear_{max(windows)}d"] = ibis.ifelse(
        slope < 0, out.supply_level_last / -slope, ibis.null("float64")
    )
    return out.select(*DEVICE_COLOR, "cutoff", **cols)


@builder(keys=DEVICE_COLOR)
def supply_usage(
    supply_steps: ir.Table,
    supply_last_change: ir.Table,
    page_latest: ir.Table,
    page_readings: ir.Table,
    page_history: ir.Table,
    page_counts: ir.Table,
    fleet_calendar: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    materialize: Materialize,
    ib_devices: ir.Table | None = None,
    products: ir.Table | None = None,
    *,
    windows: tuple[int, int] = (30, 90),
    threshold_pct: float = 10.0,
    calendar: bool = False,
    at_cutoff: bool = False,
    prev_fallback: bool = False,
    share_days: int | None = None,
    prev_weight_pct: float = 0.0,
    share_by_day: bool = False,
    first_full_as_change: bool = False,
    rate_by_fit: bool = False,
    fleet_panel: bool = False,
    account_prior: bool = False,
    weekday_profile: bool = False,
    step_midpoint: bool = False,
    share_by_weekday: bool = False,
) -> ir.Table:
    """Toner used per 1000 pages, pages since the level last fell, days to the threshold.

    Points are the readings since the last cartridge change (within ``CHANGE_LOOKBACK_DAYS``)
    where the reported level changed, with a page counter: the change itself and each fall of
    the level (a coarse level first reads lower just after the true level crossed it). Usage
    per page is the level lost between the first and the last point over the pages printed
    between them; the level now is the last point's level less the usage of the pages since.
    Days to the threshold divide what is left by the usage at the device's mean daily pages:
    over the short window, and over the long one scaled by the whole fleet's short-over-long
    ratio (the season: every device's pages move with the calendar).

    With ``calendar``, also the device's pages a day over the long window relative to the
    fleet's (pages a device-day over the same days), and the days until the device, printing
    that share of what the fleet printed a device-day in the same weeks a year earlier,
    prints the pages to go (weeks without readings a year earlier at the fleet's pace over the
    long window; read week by week, linear within a week, capped at ``CALENDAR_CAP_DAYS``).

    With ``at_cutoff``, the pages to go (by this cartridge and by the previous one) are those
    left at the end of the cutoff day, not at the latest counter reading: the pages the device
    is expected to print in between (the long window's season-scaled pace times the days
    since that reading, ``days_since_page_reading``) are taken off. With
    ``prev_fallback``, the calendar's days go by the previous cartridge's pages to go where
    the current one has not fallen yet (no use per page of its own). With ``share_days``, the
    device's share of the fleet's pages (``telemetry_pages_vs_fleet_<share_days>d``, which the
    calendar reads) is over that many days of counter history instead of the long window (beyond
    ``PAGE_HISTORY_DAYS``, the readings further back are read for this share alone); with
    ``share_by_day`` it is the device's pages over those the fleet's pace would have printed on
    the days of its own readings (see :func:`_share_of_fleet`). With
    ``prev_weight_pct``, the pages to go use the previous cartridge's use per page (taken as
    full at its change) pooled with this one's, as if it were that many points of level seen
    fall: a cartridge that has fallen little is read mostly by its predecessor. With
    ``first_full_as_change``, a colour whose first reading reads full (``FULL_PCT``) counts as
    changed then (a new device, or a cartridge fitted before the device reported): its
    cartridge is read from there, and it is the previous cartridge of the colour's next change.
    With ``rate_by_fit``, the use per page is the least-squares slope of the level over the
    page counter through every level step of the colour's cartridges within the lookback, one
    intercept per cartridge (``supply_pct_per_kpage_fit_<lookback>d``, see
    :func:`_use_per_page_fit`); the other rules read it where it exists. With ``fleet_panel``
    (with ``share_days``, ``share_by_day`` and ``calendar``), the fleet whose pace the share is
    measured against and whose calendar a year earlier is read is, at each cutoff, the same
    devices throughout: those read from the start of the share's history to the cutoff (see
    :func:`_panel_pace`). The whole fleet's pages a device-day move with its mix as well as with
    the calendar (devices that print much wear out and are replaced sooner), and a device's
    share measured against one period of the fleet and spent on another would carry that drift.
    With ``account_prior`` (with ``rate_by_fit`` and ``fleet_panel``; with an install base and
    products, else null), a colour without a use per page of its own (a cartridge that has not
    fallen yet, and no earlier one in the lookback) reads its account's, and a device without a
    share of the fleet's pages of its own (no page counter increments yet) its account's
    (``supply_pct_per_kpage_account``, ``telemetry_pages_vs_fleet_account``; see
    :func:`_account_prior`): a new device starts from what its account's other devices print.
    With ``weekday_profile`` (with ``fleet_panel``), the calendar goes day by day, each day of a
    week at its day of the week's weight in the fleet's profile (see :func:`_weekday_profile`),
    and so do the pages expected since the latest counter reading with ``at_cutoff``: offices
    print little at weekends. With ``step_midpoint``, the level at the last point is taken at
    the middle of what it can be: a gauge shows the level rounded up to its display step, and
    the level crossed the value a step reading shows since the reading before, so it is below
    that value by up to the use of the pages in between and by at most one display step (the
    smallest fall seen above the threshold): half the smaller of the two is taken off. With
    ``share_by_weekday`` (with ``weekday_profile``), the device's share of the panel's pages
    weighs each day a reading counts at its day of the week's weight (see
    :func:`_share_of_panel`): a device read for a few days that held a weekend is not taken for
    one that prints little.
    """
    short, long = sorted(windows)
    _check_lookback((long,))
    if account_prior and not (rate_by_fit and fleet_panel):
        raise ValueError("account_prior needs rate_by_fit and fleet_panel: it pools their figures")
    if weekday_profile and not fleet_panel:
        raise ValueError("weekday_profile needs fleet_panel: it spreads the panel's calendar")
    if share_by_weekday and not weekday_profile:
        raise ValueError("share_by_weekday needs weekday_profile: it weighs the days by it")
    prior = account_prior and ib_devices is not None and products is not None
    steps, ch = supply_steps.filter(supply_steps.prev.notnull()), supply_last_change
    if first_full_as_change:
        # a colour first read full: a jump up from nothing, a change
        steps = supply_steps.mutate(prev=ibis.coalesce(supply_steps.prev, 0.0))
        steps = materialize(steps, "supply_usage: level steps")
        ch = materialize(_last_change(_changes(steps), cutoffs), "supply_usage: last changes")
    j = window_join(steps, cutoffs, days=CHANGE_LOOKBACK_DAYS)
    ch = ch.select(**keyed(ch, "c_", DEVICE_COLOR_CUTOFF), since=ch.since, c_cday=ch.cday)
    j = j.left_join(ch, on_keys(j, ch, "c_", DEVICE_COLOR_CUTOFF)).select(*j.columns, "since")
    pts = j.filter(j.page_value.notnull() & (j.since.isnull() | (j.observed_at >= j.since)))
    g = pts.group_by([*DEVICE_COLOR, "cutoff"]).aggregate(
        v0=pts.value.argmin(pts.observed_at),
        p0=pts.page_value.argmin(pts.observed_at),
        v1=pts.value.argmax(pts.observed_at),
        p1=pts.page_value.argmax(pts.observed_at),
        **({"d1": pts.page_delta.argmax(pts.observed_at)} if step_midpoint else {}),
    )
    if step_midpoint:
        # the gauge's display step: the smallest fall seen above the threshold
        fell = j.filter((j.prev > j.value) & (j.value > threshold_pct))
        shown = fell.group_by([*DEVICE_COLOR, "cutoff"]).aggregate(
            shown=(fell.prev - fell.value).min()
        )
        shown = shown.select(**keyed(shown, "s_", DEVICE_COLOR_CUTOFF), shown=shown.shown)
        g = g.left_join(shown, on_keys(g, shown, "s_", DEVICE_COLOR_CUTOFF)).select(
            *g.columns, "shown"
        )
    pl = page_latest.select(**keyed(page_latest, "q_", DEVICE_CUTOFF), now=page_latest.value)
    g = g.left_join(pl, on_keys(g, pl, "q_", DEVICE_CUTOFF)).select(*g.columns, "now")
    # mean daily pages per device over both windows, and the fleet's over all devices
    # (window sums: each reading added once, not once per cutoff whose window holds it)
    inc = page_readings.filter(page_readings.delta.notnull())
    r = window_sums(
        inc, cutoffs, cutoff_days, group=list(DEVICE), values=["delta", "gap"], windows=windows
    )
    rate = r.select(
        *DEVICE,
        "cutoff",
        ps=r[f"delta_{short}d"],
        gs=r[f"gap_{short}d"],
        pl=r[f"delta_{long}d"],
        gl=r[f"gap_{long}d"],
    )
    if at_cutoff:
        # days from the latest counter reading (with or without increment) to the end of the
        # cutoff day; every device with increments in the window has that reading
        seen = latest_as_of(
            page_readings, cutoffs, cutoff_days, group=list(DEVICE), values=["observed_at"]
        )
        u = seen.observed_at.epoch_seconds().cast("float64") / 86400.0
        sn = seen.select(
            **keyed(seen, "t_", DEVICE_CUTOFF),
            stale=(seen.cday + 1).cast("float64") - u,
            # the days the latest reading has not counted yet (see _weekday_profile)
            stale_days=seen.cday - (u - 0.5).floor().cast("int64"),
        )
        cols = rate.columns
        rate = rate.join(sn, on_keys(rate, sn, "t_", DEVICE_CUTOFF))
        rate = rate.select(*cols, "stale", "stale_days")
    fleet = rate.group_by("cutoff").aggregate(
        season=(rate.ps.sum() / rate.gs.sum()) / (rate.pl.sum() / rate.gl.sum()),
        fleet_long=rate.pl.sum() / rate.gl.sum(),
    )
    fleet = fleet.select(f_cutoff="cutoff", season="season", fleet_long="fleet_long")
    rate = rate.join(fleet, rate.cutoff == fleet.f_cutoff)
    rate = rate.select(
        **keyed(rate, "r_", DEVICE_CUTOFF),
        per_day=ibis.ifelse(rate.gs > 0, rate.ps / rate.gs, ibis.null("float64")),
        per_day_long=ibis.ifelse(
            rate.gl > 0, rate.season * rate.pl / rate.gl, ibis.null("float64")
        ),
        vs_fleet=ibis.ifelse(
            (rate.gl > 0) & (rate.fleet_long > 0),
            rate.pl / rate.gl / rate.fleet_long,
            ibis.null("float64"),
        ),
        **({"stale": rate.stale, "stale_days": rate.stale_days} if at_cutoff else {}),
    )
    stale_cols = ["stale", "stale_days"] if at_cutoff else []
    g = g.left_join(rate, on_keys(g, rate, "r_", DEVICE_CUTOFF)).select(
        *g.columns, "per_day", "per_day_long", "vs_fleet", *stale_cols
    )
    share_col = f"telemetry_pages_vs_fleet_{long}d"
    profile = sums = None
    if fleet_panel and share_days is None:
        raise ValueError("fleet_panel needs share_days: the panel spans the share's history")
    if share_days is not None:
        # the fleet's pace on the window's first day reads FLEET_PACE_DAYS back
        reach = share_days + (FLEET_PACE_DAYS if share_by_day else 0)
        hist = page_history_back(page_counts, page_history, cutoff_days, reach)
        if hist is not page_history:
            hist = materialize(hist, "supply_usage: page history")
        if fleet_panel:
            if not (share_by_day and calendar):
                raise ValueError("fleet_panel needs share_by_day and calendar")
            pace = materialize(_panel_pace(hist, cutoffs, reach), "supply_usage: panel pace")
            if weekday_profile:
                profile = _weekday_profile(page_history, cutoffs, cutoff_days)
                profile = materialize(profile, "supply_usage: weekday profile")
                sums = materialize(_weekday_sums(profile), "supply_usage: weekday sums")
            sh = _share_of_panel(
                hist, cutoffs, share_days, pace, sums if share_by_weekday else None
            )
            fleet_calendar, fleet = _panel_calendar(pace, cutoffs, long)
        else:
            sh = _share_of_fleet(hist, cutoffs, cutoff_days, share_days, by_day=share_by_day)
        sh = materialize(sh, "supply_usage: share of the fleet")
        keep = [c for c in g.columns if c != "vs_fleet"]
        g = g.left_join(sh, on_keys(g, sh, "h_", DEVICE_CUTOFF)).select(
            *keep, vs_fleet="h_vs_fleet"
        )
        share_col = f"telemetry_pages_vs_fleet_{share_days}d"
    if sums is not None and at_cutoff:
        end = (day_of(g.cutoff) + 3) % 7
        g = g.left_join(
            sums,
            [g.cutoff == sums.w_cutoff, end == sums.w_end, g.stale_days % 7 == sums.w_n],
        ).select(*g.columns, b_weight="w_weight")
    cyc = _previous_cartridge(steps, page_readings, threshold_pct)
    # the previous change too within the lookback of every cutoff (as when scoring one cutoff)
    cyc = cyc.join(
        ch,
        [cyc[k] == ch["c_" + k] for k in DEVICE_COLOR]
        + [cyc.c_obs == ch.since, cyc.p_day > ch.c_cday - CHANGE_LOOKBACK_DAYS],
    )
    cyc = cyc.select(
        **{"y_" + k: cyc["c_" + k] for k in (*DEVICE_COLOR, "cutoff")},
        **{"cycle_pages": cyc.cycle_pages, "start_pages": cyc.start_pages},
    )
    g = g.left_join(cyc, on_keys(g, cyc, "y_", DEVICE_COLOR_CUTOFF)).select(
        *g.columns, "cycle_pages", "start_pages"
    )
    if rate_by_fit:
        fit = materialize(_use_per_page_fit(steps, cutoffs), "supply_usage: use per page fit")
        g = g.left_join(fit, on_keys(g, fit, "f_", DEVICE_COLOR_CUTOFF)).select(*g.columns, "fit")
    if prior:
        ap = _account_prior(fit, sh, ib_devices, products, cutoffs)
        g = g.left_join(ap, on_keys(g, ap, "a_", DEVICE_COLOR_CUTOFF)).select(
            *g.columns, "a_rate", "a_share"
        )
    g = materialize(g, "supply_usage: points")
    used = g.v0 - g.v1
    pages = g.p1 - g.p0
    per_page = ibis.ifelse((pages > 0) & (used > 0), used / pages, ibis.null("float64"))
    rate = per_page
    if prev_weight_pct > 0:
        # the previous cartridge's use per page (full at its change, at the threshold after
        # cycle_pages) counts as prev_weight_pct points of level seen fall on this one
        prev = ibis.ifelse(
            g.cycle_pages > 0, (100.0 - threshold_pct) / g.cycle_pages, ibis.null("float64")
        )
        pooled = (used + prev_weight_pct) / (pages + prev_weight_pct / prev)
        ok = (pages >= 0) & (used >= 0)
        rate = ibis.cases((ok & prev.notnull(), pooled), else_=per_page)
    if rate_by_fit:
        rate = ibis.coalesce(g.fit, rate)
    if prior:
        rate = ibis.coalesce(rate, g.a_rate)
    since = g.now - g.p1
    since = ibis.ifelse(since >= 0, since, ibis.null("float64"))
    level = g.v1
    if step_midpoint:
        # the level crossed what the step reading shows since the reading before: it is below
        # it by up to the use of the pages in between, and by at most one display step
        lag = ibis.cases(
            (g.d1.isnull(), ibis.coalesce(g.shown, 0.0)),
            (g.shown.isnull() | (rate * g.d1 < g.shown), rate * g.d1),
            else_=g.shown,
        )
        level = g.v1 - ibis.coalesce(lag, 0.0) / 2.0
    left = level - rate * since - threshold_pct
    to_go = ibis.cases((left > 0, left / rate), (left <= 0, 0.0), else_=ibis.null("float64"))
    printed = g.now - g.start_pages
    rest = ibis.ifelse(printed >= 0, g.cycle_pages - printed, ibis.null("float64"))
    extra: dict[str, ir.Value] = {}
    if rate_by_fit:
        extra[f"supply_pct_per_kpage_fit_{CHANGE_LOOKBACK_DAYS}d"] = 1000.0 * g.fit
    if at_cutoff:
        # pages expected since the latest counter reading (none known: none taken off)
        gap_days = g.stale
        if profile is not None:
            # each day not counted yet at its day of the week's weight
            gap_days = 7.0 * (g.stale_days // 7) + g.b_weight
        gap_pages = ibis.coalesce(g.per_day_long * gap_days, 0.0)
        to_go = ibis.cases((to_go > gap_pages, to_go - gap_pages), else_=to_go * 0.0)
        rest = rest - gap_pages
        extra["days_since_page_reading"] = g.stale
    # (not ibis.greatest: DuckDB's GREATEST skips nulls)
    by_prev = ibis.cases((rest > 0, rest), (rest <= 0, 0.0), else_=ibis.null("float64"))
    if account_prior:
        extra["supply_pct_per_kpage_account"] = 1000.0 * g.a_rate if prior else ibis.null("float64")
        extra["telemetry_pages_vs_fleet_account"] = g.a_share if prior else ibis.null("float64")
    if calendar:
        need = ibis.coalesce(to_go, by_prev) if prev_fallback else to_go
        share = ibis.coalesce(g.vs_fleet, g.a_share) if prior else g.vs_fleet
        g, by_calendar = _days_by_calendar(g, need / share, fleet_calendar, fleet, profile)
        extra = {
            **extra,
            share_col: g.vs_fleet,
            "supply_days_to_threshold_est_calendar": by_calendar,
        }
    return g.select(
        *DEVICE_COLOR,
        "cutoff",
        **{f"supply_pct_per_kpage_mean_{CHANGE_LOOKBACK_DAYS}d": 1000.0 * per_page},
        pages_since_supply_level_fell=since,
        supply_pages_to_threshold_est=to_go,
        **{
            f"supply_days_to_threshold_est_{short}d": ibis.ifelse(
                g.per_day > 0, to_go / g.per_day, ibis.null("float64")
            ),
            f"supply_days_to_threshold_est_{long}d_seasonal": ibis.ifelse(
                g.per_day_long > 0, to_go / g.per_day_long, ibis.null("float64")
            ),
        },
        supply_pages_per_cartridge_prev=g.cycle_pages,
        supply_pages_to_threshold_by_prev=by_prev,
        **{
            f"supply_days_to_threshold_by_prev_{short}d": ibis.ifelse(
                g.per_day > 0, by_prev / g.per_day, ibis.null("float64")
            ),
            f"supply_days_to_threshold_by_prev_{long}d_seasonal": ibis.ifelse(
                g.per_day_long > 0, by_prev / g.per_day_long, ibis.null("float64")
            ),
        },
        **extra,
    )


def _use_per_page_fit(steps: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Each colour's use per page at each cutoff: minus the least-squares slope of the level
    over the page counter through its level steps (falls and changes with a counter, above 0)
    within ``CHANGE_LOOKBACK_DAYS``, one intercept per cartridge (``fit``, null without two
    steps of one cartridge or when the level does not fall with the pages).

    A cartridge's use per page does not change from one cartridge to the next (same device,
    same coverage, same yield), so the previous cartridge's steps measure the current one's
    too; each step is the first reading at a lower level, so every point lags its crossing by
    part of a reading interval and the lags cancel in the slope. A full cartridge pins the use
    per page to a tenth of a percent where its first points alone (a fall of a few points over
    a few readings) leave it uncertain by tens of percents.
    """
    jump = (steps.value - steps.prev >= CHANGE_JUMP_PCT).cast("int64")
    by = [steps.partner_id, steps.device_id, steps.color]
    w = ibis.window(group_by=by, order_by=[steps.observed_at], preceding=None, following=0)
    s = steps.mutate(cart=jump.sum().over(w))
    s = s.filter(s.page_value.notnull() & (s.value > 0))
    j = window_join(s, cutoffs, days=CHANGE_LOOKBACK_DAYS)
    x, y = j.page_value.cast("float64"), j.value.cast("float64")
    per = j.group_by([*DEVICE_COLOR, "cutoff", "cart"]).aggregate(
        n=j.count(), sx=x.sum(), sy=y.sum(), sxy=(x * y).sum(), sxx=(x * x).sum()
    )
    per = per.filter(per.n >= 2)
    n = per.n.cast("float64")
    per = per.mutate(cxy=per.sxy - per.sx * per.sy / n, cxx=per.sxx - per.sx * per.sx / n)
    f = per.group_by([*DEVICE_COLOR, "cutoff"]).aggregate(cxy=per.cxy.sum(), cxx=per.cxx.sum())
    return f.select(
        **keyed(f, "f_", DEVICE_COLOR_CUTOFF),
        fit=ibis.ifelse((f.cxx > 0) & (f.cxy < 0), -f.cxy / f.cxx, ibis.null("float64")),
    )


def _account_prior(
    fit: ir.Table, share: ir.Table, ib_devices: ir.Table, products: ir.Table, cutoffs: ir.Table
) -> ir.Table:
    """Per device colour and cutoff, what its account's devices point to: the use per page
    (``a_rate``) and the share of the fleet's pages a device-day (``a_share``).

    The use per page is a cartridge's coverage over its rated yield, and an account prints the
    same kinds of documents on each of its devices, whatever their cartridges: ``a_rate`` is
    the geometric mean, over the account's colours with a fitted use per page (``fit``, see
    :func:`_use_per_page_fit`), of that use times their cartridges' rated yield, over the
    device's own rated yield; over the whole fleet's colours where the account has none.

    A device's pages a day are its family's (a desk printer prints less than a department's)
    times its account's intensity: ``a_share`` is the geometric mean of the shares (``share``,
    see :func:`_share_of_panel`) of the devices of the device's family, times the geometric
    mean over the account's devices of their shares over their families'. A device's own
    figures count in its account's.
    """
    y = family_yields(products, cutoffs)
    y = y.select(**keyed(y, "y_", ("family", "color", "cutoff")), page_yield=y.page_yield)
    dev = ib_devices.select("partner_id", "account_id", "device_id", "family")
    f = fit.filter(fit.fit > 0)
    f = f.join(dev, on_keys(dev, f, "f_", DEVICE))
    f = f.join(y, [f.family == y.y_family, f.f_color == y.y_color, f.f_cutoff == y.y_cutoff])
    f = f.select(
        "partner_id",
        "account_id",
        color="f_color",
        cutoff="f_cutoff",
        lc=(f.fit * f.page_yield).ln(),
    )
    acc_color = ("partner_id", "account_id", "color", "cutoff")
    cov = f.group_by(list(acc_color)).aggregate(lc=f.lc.mean())
    cov = cov.select(**keyed(cov, "c_", acc_color), lc=cov.lc)
    fleet_cov = f.group_by(["color", "cutoff"]).aggregate(lc_fleet=f.lc.mean())
    fleet_cov = fleet_cov.select(
        **keyed(fleet_cov, "k_", ("color", "cutoff")), lc_fleet=fleet_cov.lc_fleet
    )
    s = share.filter(share.h_vs_fleet > 0)
    s = s.join(dev, on_keys(dev, s, "h_", DEVICE))
    s = s.select("partner_id", "account_id", "family", cutoff="h_cutoff", ls=s.h_vs_fleet.ln())
    fam = s.group_by(["family", "cutoff"]).aggregate(lf=s.ls.mean())
    fam = fam.select(**keyed(fam, "m_", ("family", "cutoff")), lf=fam.lf)
    s = s.join(fam, on_keys(s, fam, "m_", ("family", "cutoff")))
    acc = ("partner_id", "account_id", "cutoff")
    pace = s.group_by(list(acc)).aggregate(la=(s.ls - s.lf).mean())
    pace = pace.select(**keyed(pace, "p_", acc), la=pace.la)
    # every colour of every device at the cutoffs where its family has cartridges
    t = dev.join(y, dev.family == y.y_family).select(
        "partner_id",
        "account_id",
        "device_id",
        "family",
        color="y_color",
        cutoff="y_cutoff",
        own="page_yield",
    )
    for right, prefix, keys, col in [
        (cov, "c_", acc_color, "lc"),
        (fleet_cov, "k_", ("color", "cutoff"), "lc_fleet"),
        (pace, "p_", acc, "la"),
        (fam, "m_", ("family", "cutoff"), "lf"),
    ]:
        t = t.left_join(right, on_keys(t, right, prefix, keys)).select(*t.columns, col)
    lc = ibis.coalesce(t.lc, t.lc_fleet)
    return t.select(
        **keyed(t, "a_", DEVICE_COLOR_CUTOFF),
        a_rate=ibis.ifelse(t.own > 0, lc.exp() / t.own, ibis.null("float64")),
        a_share=(ibis.coalesce(t.la, 0.0) + ibis.coalesce(t.lf, 0.0)).exp(),
    )


def _share_of_fleet(
    page_history: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    days: int,
    *,
    by_day: bool = False,
) -> ir.Table:
    """Each device's mean daily pages over the ``days`` before each cutoff relative to the
    whole fleet's (pages a device-day over the same days), as ``h_vs_fleet``.

    The counter increments of the readings within the ``days`` up to each cutoff (see
    :func:`window_sums`: each reading added once, not once per cutoff that sees it). With
    ``by_day``, the device's pages over those the fleet's pace would have printed on the days
    of its own readings (each reading's days at the fleet's pages a device-day over the
    ``FLEET_PACE_DAYS`` up to its day): a device seen for part of the window is compared with
    the fleet over the same part of the calendar, not over the whole window."""
    r = page_history.filter(page_history.delta.notnull())
    if by_day:
        f = r.group_by("day").aggregate(f_pages=r.delta.sum(), f_gap=r.gap.sum())
        w = ibis.window(order_by=f.day, range=(-(FLEET_PACE_DAYS - 1), 0))
        f = f.select(f_day="day", f_pages=f.f_pages.sum().over(w), f_gap=f.f_gap.sum().over(w))
        f = f.select("f_day", f_rate=ibis.ifelse(f.f_gap > 0, f.f_pages / f.f_gap, 0.0))
        r = r.join(f, r.day == f.f_day)
        r = r.select(*DEVICE, "day", "delta", fleet=r.gap * r.f_rate)
        d = window_sums(
            r, cutoffs, cutoff_days, group=list(DEVICE), values=["delta", "fleet"], windows=(days,)
        )
        pages, fleet = d[f"delta_{days}d"].cast("float64"), d[f"fleet_{days}d"]
        return d.select(
            **keyed(d, "h_", DEVICE_CUTOFF),
            h_vs_fleet=ibis.ifelse(fleet > 0, pages / fleet, ibis.null("float64")),
        )
    d = window_sums(
        r, cutoffs, cutoff_days, group=list(DEVICE), values=["delta", "gap"], windows=(days,)
    )
    d = d.select(
        *DEVICE,
        "cutoff",
        pages=d[f"delta_{days}d"].cast("float64"),
        gap=d[f"gap_{days}d"].cast("float64"),
    )
    d = d.filter(d.gap > 0)
    f = d.group_by("cutoff").aggregate(f_rate=d.pages.sum() / d.gap.sum()).rename(f_cutoff="cutoff")
    d = d.join(f, d.cutoff == f.f_cutoff)
    return d.select(
        **keyed(d, "h_", DEVICE_CUTOFF),
        h_vs_fleet=ibis.ifelse(d.f_rate > 0, d.pages / d.gap / d.f_rate, ibis.null("float64")),
    )


def _panel_pace(page_history: ir.Table, cutoffs: ir.Table, days: int) -> ir.Table:
    """Per cutoff and reading day within the ``days`` up to it, the pages and the days the
    increments of the cutoff's fleet panel cover (``pages``, ``gap``, with ``cday``).

    The panel is the devices whose counter was read within ``FLEET_PANEL_EDGE_DAYS`` of the
    fleet's first reading in those days and within as many days before the cutoff: the same
    devices throughout, so that the panel's pages a device-day move with the calendar alone
    (each device prints at its own pace), not with the fleet's mix of old and new devices."""
    r = page_history.filter(page_history.delta.notnull())
    j = window_join(r, cutoffs, days=days)
    start = j.group_by("cutoff").aggregate(s_first=j.day.min()).rename(s_cutoff="cutoff")
    dev = j.group_by([*DEVICE, "cutoff"]).aggregate(
        d_first=j.day.min(), d_last=j.day.max(), d_cday=j.cday.max()
    )
    dev = dev.join(start, dev.cutoff == start.s_cutoff)
    dev = dev.filter(
        (dev.d_first <= dev.s_first + FLEET_PANEL_EDGE_DAYS)
        & (dev.d_last > dev.d_cday - FLEET_PANEL_EDGE_DAYS)
    )
    dev = dev.select(**keyed(dev, "m_", DEVICE_CUTOFF))
    p = j.join(dev, on_keys(j, dev, "m_", DEVICE_CUTOFF))
    return p.group_by(["cutoff", "cday", "day"]).aggregate(pages=p.delta.sum(), gap=p.gap.sum())


def _share_of_panel(
    page_history: ir.Table,
    cutoffs: ir.Table,
    days: int,
    pace: ir.Table,
    weekday_sums: ir.Table | None = None,
) -> ir.Table:
    """Each device's pages over the ``days`` before each cutoff relative to those its fleet
    panel's pace would have printed on the days of its readings (each reading's days at the
    panel's pages a device-day over the ``FLEET_PACE_DAYS`` up to its day; a reading with no
    panel reading in those days is left out of both), as ``h_vs_fleet``. With
    ``weekday_sums`` (see :func:`_weekday_sums`), each day a reading counts (see
    :func:`_covered_days`) weighs its day of the week's weight, not 1: a printer read on a
    Monday morning printed little since Friday's reading."""
    # every day of the span (a literal range: Spark's range over columns comes back empty)
    span = days + FLEET_PACE_DAYS
    grid = cutoffs.select("cutoff", "cday", _k=ibis.range(span).unnest())
    grid = grid.select("cutoff", day=(grid.cday - span + 1 + grid._k).cast("int64"))
    pc = pace.select(p_cutoff="cutoff", p_day="day", p_pages="pages", p_gap="gap")
    f = grid.left_join(pc, [grid.cutoff == pc.p_cutoff, grid.day == pc.p_day])
    w = ibis.window(group_by=f.cutoff, order_by=f.day, rows=(-(FLEET_PACE_DAYS - 1), 0))
    f = f.select(
        f_cutoff="cutoff",
        f_day="day",
        f_pages=f.p_pages.sum().over(w),
        f_gap=f.p_gap.sum().over(w),
    )
    f = f.filter(f.f_gap > 0)
    f = f.select("f_cutoff", "f_day", f_rate=f.f_pages / f.f_gap)
    if weekday_sums is None:
        r = page_history.filter(page_history.delta.notnull())
        j = window_join(r, cutoffs, days=days)
        j = j.mutate(_days=j.gap)
    else:
        r = _covered_days(page_history)
        j = window_join(r, cutoffs, days=days)
        ws = weekday_sums
        j = j.left_join(
            ws,
            [j.cutoff == ws.w_cutoff, j.wd == ws.w_end, j.span % 7 == ws.w_n],
        ).select(*j.columns, _days=7.0 * (j.span // 7) + ws.w_weight)
    j = j.join(f, [j.cutoff == f.f_cutoff, j.day == f.f_day])
    d = j.group_by([*DEVICE, "cutoff"]).aggregate(
        pages=j.delta.sum().cast("float64"), fleet=(j._days * j.f_rate).sum()
    )
    return d.select(
        **keyed(d, "h_", DEVICE_CUTOFF),
        h_vs_fleet=ibis.ifelse(d.fleet > 0, d.pages / d.fleet, ibis.null("float64")),
    )


def _panel_calendar(pace: ir.Table, cutoffs: ir.Table, long: int) -> tuple[ir.Table, ir.Table]:
    """The fleet panel's calendar (as :func:`fleet_calendar`) and its pages a device-day over
    the ``long`` days up to the cutoff (``f_cutoff``, ``fleet_long``: the calendar's weeks
    without readings)."""
    recent = pace.filter(pace.day > pace.cday - long)
    fl = recent.group_by("cutoff").aggregate(pages=recent.pages.sum(), gap=recent.gap.sum())
    fl = fl.select(
        f_cutoff="cutoff",
        fleet_long=ibis.ifelse(fl.gap > 0, fl.pages / fl.gap, ibis.null("float64")),
    )
    return _weekly_calendar(pace, cutoffs), fl


def _covered_days(page_history: ir.Table) -> ir.Table:
    """The counter increments with the days they count: those whose middle falls between the
    reading and the one before (a reading at 02:00 counts the day before, not the day it is
    dated): ``span`` of them, the last a ``wd`` (0 = Monday .. 6). A reading whose predecessor
    is before the history counts the days between their dates (``gap``)."""
    t = page_history
    mid = (t.observed_at.epoch_seconds().cast("float64") / 86400.0 - 0.5).floor().cast("int64")
    w = ibis.window(group_by=[t.partner_id, t.device_id], order_by=[t.observed_at])
    t = t.mutate(_end=mid, _span=mid - mid.lag().over(w))
    t = t.filter(t.delta.notnull())
    span = ibis.coalesce(t._span, t.gap.cast("int64"))
    return t.mutate(span=span, wd=(t._end + 3) % 7).drop("_end", "_span")


def _weekday_profile(
    page_history: ir.Table, cutoffs: ir.Table, cutoff_days: tuple[int, ...]
) -> ir.Table:
    """Per cutoff, the fleet's pages on each day of the week over the mean day's (``wd``
    0 = Monday .. 6, ``beta``), from the page counter readings of the ``PROFILE_DAYS`` up to
    the cutoff.

    An increment counts the pages of the days whose middle falls between its reading and the
    one before (a reading at 02:00 counts the day before, not the day it is dated), taken
    over the device's mean pages a day over the same increments, so that big and small
    printers weigh alike. On the mean, the increments over ``k + 1`` days
    to a day of the week less those over ``k`` days to the day before are that day's pages
    (``k = 0``: one day, nothing taken off); the estimate pools them over ``k``, each by the
    smaller of its two counts. Where a day of the week has no such pair (readings all equally
    far apart: the days cannot be told apart), every day weighs the same.
    """
    r = _covered_days(page_history)
    r = r.filter((r.span >= 1) & (r.span <= PROFILE_MAX_GAP_DAYS))
    r = r.select(*DEVICE, "day", "delta", "span", "wd")
    s = window_sums(
        r,
        cutoffs,
        cutoff_days,
        group=[*DEVICE, "span", "wd"],
        values=["delta"],
        windows=(PROFILE_DAYS,),
    )
    pages, n = s[f"delta_{PROFILE_DAYS}d"].cast("float64"), s[f"_n_{PROFILE_DAYS}d"]
    s = s.mutate(_pages=pages, _n=n, _days=(n * s.span).cast("float64"))
    dev = s.group_by([*DEVICE, "cutoff"]).aggregate(v=s._pages.sum() / s._days.sum())
    dev = dev.select(**keyed(dev, "v_", DEVICE_CUTOFF), v=dev.v)
    s = s.join(dev, on_keys(s, dev, "v_", DEVICE_CUTOFF))
    s = s.filter(s.v > 0)
    m = s.group_by(["cutoff", "span", "wd"]).aggregate(y=(s._pages / s.v).sum(), n=s._n.sum())
    m = m.mutate(y=m.y / m.n)
    lo = m.select(l_cutoff="cutoff", l_span="span", l_wd="wd", l_y="y", l_n="n")
    p = m.left_join(
        lo, [m.cutoff == lo.l_cutoff, lo.l_span == m.span - 1, lo.l_wd == (m.wd + 6) % 7]
    )
    one = p.span == 1
    p = p.select(
        "cutoff",
        "wd",
        est=ibis.ifelse(one, p.y, p.y - p.l_y),
        n=ibis.ifelse(one, p.n, ibis.least(p.n, p.l_n)).cast("float64"),
    )
    p = p.filter(p.est.notnull())
    b = p.group_by(["cutoff", "wd"]).aggregate(beta=(p.est * p.n).sum() / p.n.sum())
    top = b.group_by("cutoff").aggregate(t_top=b.beta.max()).rename(t_cutoff="cutoff")
    b = b.join(top, b.cutoff == top.t_cutoff)
    b = b.mutate(beta=ibis.greatest(b.beta, PROFILE_MIN_WEIGHT * b.t_top))
    tot = b.group_by("cutoff").aggregate(t_sum=b.beta.sum(), t_n=b.count())
    tot = tot.rename(t_cutoff="cutoff")
    b = b.join(tot, b.cutoff == tot.t_cutoff)
    b = b.filter((b.t_n == 7) & (b.t_top > 0))
    b = b.select(b_cutoff="cutoff", b_wd="wd", b_beta=7.0 * b.beta / b.t_sum)
    # every day of the week at every cutoff: flat where the days cannot be told apart
    grid = cutoffs.select("cutoff", _w=ibis.range(7).unnest())
    grid = grid.select("cutoff", wd=grid._w.cast("int64"))
    out = grid.left_join(b, [grid.cutoff == b.b_cutoff, grid.wd == b.b_wd])
    return out.select(p_cutoff="cutoff", p_wd="wd", beta=ibis.coalesce(out.b_beta, 1.0))


def _weekday_sums(profile: ir.Table) -> ir.Table:
    """Per cutoff, day of the week ``w_end`` and ``w_n`` 0..6: the weights in ``profile`` of
    the ``w_n`` days up to a ``w_end`` (``w_weight``: 0 for none)."""
    ends = profile.select(e_cutoff="p_cutoff", e_end="p_wd")
    grid = ends.mutate(_k=ibis.range(6).unnest())
    grid = grid.select(
        "e_cutoff", "e_end", n=grid._k.cast("int64") + 1, wd=(grid.e_end - grid._k + 7) % 7
    )
    t = grid.join(profile, [grid.e_cutoff == profile.p_cutoff, grid.wd == profile.p_wd])
    w = ibis.window(group_by=[t.e_cutoff, t.e_end], order_by=t.n, rows=(None, 0))
    t = t.select("e_cutoff", "e_end", "n", weight=t.beta.sum().over(w))
    zero = ends.select("e_cutoff", "e_end", n=ibis.literal(0, "int64"), weight=ibis.literal(0.0))
    t = t.union(zero)
    return t.select(w_cutoff="e_cutoff", w_end="e_end", w_n="n", w_weight="weight")


def _days_by_calendar(
    g: ir.Table,
    need: ir.NumericValue,
    fleet_calendar: ir.Table,
    fleet: ir.Table,
    profile: ir.Table | None = None,
) -> tuple[ir.Table, ir.NumericValue]:
    """``g`` with its rows' days until the fleet's calendar a year earlier adds up to ``need``
    pages a device (see :func:`supply_usage`), and that expression over the returned table.

    Without ``profile`` the pages go linearly within a week; with it (see
    :func:`_weekday_profile`) day by day, each day of a week at its week's rate times its
    day of the week's weight (a week holds each day once, and the weights average 1). The
    label counts the day the threshold is reached whole (day ``k`` for any hour of it), so
    day by day the estimate is centred on it: ``k - 1/2`` plus the part of the day's pages."""
    cal = fleet_calendar.join(fleet, fleet_calendar.cutoff == fleet.f_cutoff)
    cal = cal.mutate(rate=ibis.coalesce(cal.rate, cal.fleet_long))
    if profile is None:
        width, centre = 7.0, 0.0
        cal = cal.select("cutoff", unit=cal.week, pages=7.0 * cal.rate)
    else:
        width, centre = 1.0, 0.5
        cal = cal.mutate(_j=ibis.range(1, 8).unnest())
        cal = cal.mutate(unit=(7 * (cal.week - 1) + cal._j).cast("int64"))
        cal = cal.mutate(_wd=(day_of(cal.cutoff) + cal.unit + 3) % 7)
        cal = cal.join(profile, [cal.cutoff == profile.p_cutoff, cal._wd == profile.p_wd])
        cal = cal.select("cutoff", "unit", pages=cal.rate * cal.beta)
    w = ibis.window(group_by=cal.cutoff, order_by=cal.unit, rows=(None, 0))
    cal = cal.mutate(hi=cal.pages.sum().over(w))
    cal = cal.select(k_cutoff="cutoff", k_unit="unit", k_lo=cal.hi - cal.pages, k_hi="hi")
    g = g.mutate(_need=need)
    j = g.left_join(
        cal, [g.cutoff == cal.k_cutoff, g._need > cal.k_lo, g._need <= cal.k_hi]
    ).select(*g.columns, "k_unit", "k_lo", "k_hi")
    days = ibis.cases(
        (j._need.isnull(), ibis.null("float64")),
        (j._need <= 0, 0.0),
        (
            j.k_unit.notnull(),
            width * (j.k_unit - 1) + width * (j._need - j.k_lo) / (j.k_hi - j.k_lo) + centre,
        ),
        else_=float(CALENDAR_CAP_DAYS),
    )
    return j, days


ALERT_SEARCH_DAYS = 7
"""Page counter readings this many days either side of a threshold crossing date it."""


def _previous_cartridge(
    supply_steps: ir.Table, page_readings: ir.Table, threshold_pct: float
) -> ir.Table:
    """Per cartridge change: the pages the cartridge it replaced printed from its own change
    to the first reading at or below the threshold (``cycle_pages``), and the page counter at
    the change (``start_pages``).

    The page counter at the crossing is interpolated in time between the counter readings
    around it (a supply alert carries no counter); readings after the change are never used.
    """
    s = supply_steps
    chg = s.filter(s.value - s.prev >= CHANGE_JUMP_PCT).select(
        *DEVICE_COLOR, c_obs="observed_at", start_pages="page_value"
    )
    w = ibis.window(group_by=[chg.partner_id, chg.device_id, chg.color], order_by=[chg.c_obs])
    chg = chg.mutate(p_obs=chg.c_obs.lag().over(w), p_pages=chg.start_pages.lag().over(w))
    chg = chg.mutate(p_day=day_of(chg.p_obs))
    chg = chg.filter(chg.p_obs.notnull() & chg.p_pages.notnull())
    cross = s.filter((s.value <= threshold_pct) & (s.prev > threshold_pct))
    cross = cross.select(
        x_partner="partner_id", x_device="device_id", x_color="color", x_obs="observed_at"
    )
    cy = chg.join(
        cross,
        [
            chg.partner_id == cross.x_partner,
            chg.device_id == cross.x_device,
            chg.color == cross.x_color,
            cross.x_obs > chg.p_obs,
            cross.x_obs < chg.c_obs,
        ],
    )
    keys = [*DEVICE_COLOR, "c_obs", "start_pages", "p_pages", "p_day"]
    cy = cy.group_by(keys).aggregate(a_obs=cy.x_obs.min())
    cy = cy.mutate(a_day=day_of(cy.a_obs))
    pr = page_readings.select(
        r_partner="partner_id",
        r_device="device_id",
        r_obs="observed_at",
        r_day="day",
        r_val="value",
    )
    # the days around the crossing as join keys: an equality join on (device, day), not a
    # range join over every reading of the device (ten times slower on the small world)
    near = cy.mutate(_off=ibis.range(-ALERT_SEARCH_DAYS, ALERT_SEARCH_DAYS + 1).unnest())
    near = near.mutate(_day=near.a_day + near._off.cast("int64")).drop("_off")
    k = near.join(
        pr,
        [
            near.partner_id == pr.r_partner,
            near.device_id == pr.r_device,
            near._day == pr.r_day,
            pr.r_obs <= near.c_obs,
        ],
    )
    before = k.r_obs <= k.a_obs
    after = ~before
    t = k.r_obs.epoch_seconds().cast("float64")
    k = k.mutate(_t=t)
    at = k.group_by([*keys, "a_obs"]).aggregate(
        b_val=last_value(k.r_val, k._t, before),
        b_t=k._t.max(where=before),
        f_val=ibis.ifelse(after, k.r_val, ibis.null("float64")).argmin(
            ibis.ifelse(after, k._t, ibis.null("float64"))
        ),
        f_t=k._t.min(where=after),
    )
    a_t = at.a_obs.epoch_seconds().cast("float64")
    frac = (a_t - at.b_t) / (at.f_t - at.b_t)
    pages_at = ibis.cases(
        (at.b_val.isnull(), ibis.null("float64")),
        (at.f_val.isnull() | (at.f_val < at.b_val) | (at.f_t <= at.b_t), at.b_val),
        else_=at.b_val + frac * (at.f_val - at.b_val),
    )
    cycle = pages_at - at.p_pages
    return at.select(
        *DEVICE_COLOR,
        "c_obs",
        "p_day",
        "start_pages",
        cycle_pages=ibis.ifelse(cycle > 0, cycle, ibis.null("float64")),
    )


@builder(keys=DEVICE_COLOR)
def supply_yield(ib_devices: ir.Table, products: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Mean rated page yield of the family's cartridges in the colour launched by the cutoff."""
    y = family_yields(products, cutoffs).rename(supply_page_yield_mean="page_yield")
    d = ib_devices.select("partner_id", "device_id", "family").join(y, "family")
    return d.select(*DEVICE_COLOR, "cutoff", "supply_page_yield_mean")


def family_yields(products: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Per printer family, colour and cutoff, the mean rated page yield of the family's
    cartridges in the colour launched by the cutoff (``page_yield``)."""
    sup = products.filter((products.category == "supplies") & products.color.notnull())
    sup = sup.select("family", "color", "page_yield", day=day_of(sup.launched_on))
    j = window_join(sup, cutoffs, days=None)
    return j.group_by(["family", "color", "cutoff"]).aggregate(
        page_yield=j.page_yield.cast("float64").mean()
    )
