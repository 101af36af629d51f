"""Device features: profile, telemetry pages and health, device events, service tickets.

Keys: ``DEVICE`` = (partner_id, device_id). Device spines also carry ``account_id`` so that
account-level builders can join onto devices.

Telemetry is long (one reading a row). ``page_count`` is a cumulative counter: pages are
the increments between a device's consecutive readings (a counter that went down was reset:
the increment is then the new value), attributed to the day of the later reading; the
daily rate over a window is the sum of increments over the sum of the days they span, so
gaps in reporting do not bias it.
"""

from __future__ import annotations

import re

import ibis
import ibis.expr.types as ir

from amplify_ml.datapack.contract import SEVERITIES
from amplify_ml.errors import ConfigError
from amplify_ml.features.builders.accounts import REPAIR_KINDS, alive_at
from amplify_ml.features.graph import (
    builder,
    count_if,
    day_of,
    entity,
    in_range,
    keyed,
    last_value,
    latest_as_of,
    node,
    ols_slope,
    on_keys,
    outer_join_on,
    recent_with_previous,
    sum_if,
    window_join,
    window_sums,
    within,
)

DEVICE = ("partner_id", "device_id")
DEVICE_SPINE = ("partner_id", "account_id", "device_id")
HEALTH_METRICS = {"battery": "battery_health_pct", "disk": "disk_health_pct"}


def slug(text: str) -> str:
    """A value as a column-name fragment: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "blank"


# -- spine and profile ------------------------------------------------------------------------


@entity(keys=DEVICE_SPINE)
def device_spine(
    ib_devices: ir.Table, cutoffs: ir.Table, *, contracts: tuple[str, ...] | None = None
) -> ir.Table:
    """Devices installed on or before the cutoff and not retired (or replaced) on or before it."""
    ib = ib_devices
    if contracts:
        ib = ib.filter(ib.contract.isin(list(contracts)))
    j = window_join(ib, cutoffs, days=None, on="inst")
    return j.filter(alive_at(j)).select(*DEVICE_SPINE, "cutoff", "cday")


@builder(keys=DEVICE)
def device_profile(ib_devices: ir.Table, products: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Age, warranty, contract, family, category, list price and family age of the device."""
    fam = products.filter(products.category.isin(["printer", "pc"]))
    fam = window_join(fam.select("family", day=day_of(fam.launched_on)), cutoffs, days=None)
    fam = fam.group_by(["family", "cutoff"]).aggregate(family_launched=fam.day.min())
    fam = fam.select(f_family="family", f_cutoff="cutoff", family_launched="family_launched")
    j = window_join(ib_devices, cutoffs, days=None, on="inst")
    j = j.filter(alive_at(j))
    j = j.left_join(fam, [j.family == fam.f_family, j.cutoff == fam.f_cutoff])
    pred = ib_devices.filter(ib_devices.replaced_by.notnull())
    pred = pred.select("partner_id", device_id="replaced_by", pred_ret="ret")
    known_pred = window_join(
        pred.filter(pred.pred_ret.notnull()), cutoffs, days=None, on="pred_ret"
    )
    at = (*DEVICE, "cutoff")
    known_pred = known_pred.select(
        **keyed(known_pred, "p_", at), has_pred=ibis.literal(1)
    ).distinct()
    j = j.left_join(known_pred, on_keys(j, known_pred, "p_", at))
    return j.select(
        *DEVICE,
        "cutoff",
        "contract",
        "family",
        "device_category",
        device_list_price=j.list_price,
        device_age_days=(j.cday - j.inst).cast("int64"),
        days_to_warranty_end=(j.wend - j.cday).cast("int64"),
        is_under_warranty=j.wend.notnull() & (j.wend > j.cday),
        is_replacement=j.has_pred.notnull(),
        family_age_days=(j.cday - j.family_launched).cast("int64"),
    )


@builder(keys=DEVICE, zero_fill=True)
def ib_retired_age(ib_devices: ir.Table, cutoffs: ir.Table) -> ir.Table:
    """Age at which the account retires devices of this category, how many, this one's age over it.

    The mean age of the account's devices of the device's category retired (or replaced) on or
    before the cutoff (printers and PCs live differently long): the account's refresh habit.
    """
    r = ib_devices.filter(ib_devices.ret.notnull())
    r = window_join(r, cutoffs, days=None, on="ret")
    g = r.group_by(["partner_id", "account_id", "device_category", "cutoff"]).aggregate(
        life=(r.ret - r.inst).cast("float64").mean(), n=r.count()
    )
    g = g.select(
        g_partner="partner_id",
        g_account="account_id",
        g_category="device_category",
        g_cutoff="cutoff",
        life="life",
        n="n",
    )
    j = window_join(ib_devices, cutoffs, days=None, on="inst")
    j = j.filter(alive_at(j))
    j = j.join(
        g,
        [
            j.partner_id == g.g_partner,
            j.account_id == g.g_account,
            j.device_category == g.g_category,
            j.cutoff == g.g_cutoff,
        ],
    )
    age = (j.cday - j.inst).cast("float64")
    return j.select(
        *DEVICE,
        "cutoff",
        ib_retired_age_mean_days=j.life,
        ib_retired_devices_count=j.n.cast("int64"),
        device_age_vs_retired_age=ibis.ifelse(j.life > 0, age / j.life, ibis.null("float64")),
    )


# -- telemetry: pages ---------------------------------------------------------------------------


PAGE_LOOKBACK_DAYS = 180
"""Page increments are read from this many days before the first cutoff: page windows and
pages since a cartridge change (looked for as far back) reach no further."""
PAGE_HISTORY_DAYS = 365
"""Page increments are computed once from this many days before the first cutoff: the
fleet's calendar (supplies) reads a year back."""


@node()
def page_counts(telemetry: ir.Table) -> ir.Table:
    """page_count readings (the cumulative counter) with their day."""
    t = telemetry.filter(telemetry.metric == "page_count")
    return t.select("partner_id", "device_id", "observed_at", "value", day=day_of(t.observed_at))


@node(cache=True)
def page_history(page_counts: ir.Table, cutoff_days: tuple[int, ...]) -> ir.Table:
    """Page counter readings with their increments, from ``PAGE_HISTORY_DAYS`` back.

    From that many days before the first cutoff to the last, with the increment and the gap
    in days since the device's previous reading, however old."""
    return _with_increments(page_counts, cutoff_days, PAGE_HISTORY_DAYS)


def page_history_back(
    page_counts: ir.Table, page_history: ir.Table, cutoff_days: tuple[int, ...], days: int
) -> ir.Table:
    """:func:`page_history` reaching ``days`` (more than ``PAGE_HISTORY_DAYS``) before the first
    cutoff: the earlier readings' increments are computed apart (each from its true
    predecessor, however old) and added, so that the shared history stays as it is."""
    if days <= PAGE_HISTORY_DAYS:
        return page_history
    end = cutoff_days[0] - PAGE_HISTORY_DAYS
    old = _with_increments(page_counts, (end,), days - PAGE_HISTORY_DAYS)
    return old.union(page_history.select(*old.columns))


def _with_increments(
    page_counts: ir.Table, cutoff_days: tuple[int, ...], lookback_days: int
) -> ir.Table:
    """The readings from ``lookback_days`` before the first cutoff to the last, each with its
    increment and gap since the device's previous reading, however old."""
    t = recent_with_previous(
        page_counts, cutoff_days, group=list(DEVICE), lookback_days=lookback_days
    )
    out = t.select(
        "partner_id", "device_id", "observed_at", "day", "value", "_before", **increments(t)
    )
    return out.filter(~out._before).drop("_before")


@node()
def page_readings(page_history: ir.Table, cutoff_days: tuple[int, ...]) -> ir.Table:
    """Page counter readings near the cutoffs, with the increment since the previous reading.

    :func:`page_history` from ``PAGE_LOOKBACK_DAYS`` before the first cutoff."""
    return page_history.filter(page_history.day > cutoff_days[0] - PAGE_LOOKBACK_DAYS)


@node()
def cycle_counts(telemetry: ir.Table) -> ir.Table:
    """battery_cycle_count readings (a PC's charges since its battery was new) with their day."""
    t = telemetry.filter(telemetry.metric == "battery_cycle_count")
    return t.select("partner_id", "device_id", "observed_at", "value", day=day_of(t.observed_at))


@node()
def cycle_readings(cycle_counts: ir.Table, cutoff_days: tuple[int, ...]) -> ir.Table:
    """Charge-cycle counter readings near the cutoffs, with the increment since the previous one.

    The reading itself after a battery replacement resets the counter; from
    ``PAGE_LOOKBACK_DAYS`` before the first cutoff, like :func:`page_readings`."""
    return _with_increments(cycle_counts, cutoff_days, PAGE_LOOKBACK_DAYS)


def increments(t: ir.Table) -> dict[str, ir.Value]:
    """``delta`` (pages since the device's previous counter reading; the reading itself after
    a counter reset; null for the first) and ``gap`` (days since it), as window columns."""
    w = ibis.window(group_by=[t.partner_id, t.device_id], order_by=[t.observed_at])
    prev = t.value.lag().over(w)
    return {
        "delta": ibis.cases(
            (prev.isnull(), ibis.null("float64")),
            (t.value >= prev, t.value - prev),
            else_=t.value,
        ),
        "gap": (t.day - t.day.lag().over(w)).cast("float64"),
    }


@node(cache=True)
def page_latest(
    page_readings: ir.Table, cutoffs: ir.Table, cutoff_days: tuple[int, ...]
) -> ir.Table:
    """The page counter's latest reading at each cutoff, among :func:`page_readings`."""
    return latest_as_of(page_readings, cutoffs, cutoff_days, group=list(DEVICE), values=["value"])


def _check_lookback(windows: tuple[int, ...]) -> None:
    if max(windows) > PAGE_LOOKBACK_DAYS:
        raise ConfigError(
            f"page windows go up to {PAGE_LOOKBACK_DAYS} days; got {max(windows)}: shorten the "
            "window in the feature-set spec"
        )


@builder(keys=DEVICE)
def telemetry_pages(
    page_readings: ir.Table, cutoffs: ir.Table, *, windows: tuple[int, ...] = (7, 30, 90)
) -> ir.Table:
    """Pages printed per window (from counter increments), mean daily pages, and the trend."""
    _check_lookback(windows)
    j = window_join(page_readings, cutoffs, days=max(windows))
    ok = j.delta.notnull()
    aggs: dict[str, ir.Value] = {}
    for w in windows:
        f = ok & within(j, w)
        aggs[f"telemetry_pages_sum_{w}d"] = j.delta.sum(where=f)
        aggs[f"_gap_{w}"] = j.gap.sum(where=f)
    g = j.group_by([*DEVICE, "cutoff"]).aggregate(**aggs)
    rates = {
        f"telemetry_pages_per_day_mean_{w}d": ibis.ifelse(
            g[f"_gap_{w}"] > 0,
            g[f"telemetry_pages_sum_{w}d"] / g[f"_gap_{w}"],
            ibis.null("float64"),
        )
        for w in windows
    }
    g = g.mutate(**rates)
    out = [*DEVICE, "cutoff"]
    for w in windows:
        out += [f"telemetry_pages_sum_{w}d", f"telemetry_pages_per_day_mean_{w}d"]
    cols = {}
    if len(windows) >= 2:
        short, long = sorted(windows)[-2], max(windows)
        s, lg = (
            g[f"telemetry_pages_per_day_mean_{short}d"],
            g[f"telemetry_pages_per_day_mean_{long}d"],
        )
        cols[f"telemetry_pages_trend_{short}d_vs_{long}d"] = ibis.ifelse(
            lg > 0, s / lg, ibis.null("float64")
        )
    return g.select(*out, **cols)


@builder(keys=DEVICE)
def telemetry_pages_vs_family(
    page_readings: ir.Table, ib_devices: ir.Table, cutoffs: ir.Table, *, window: int = 90
) -> ir.Table:
    """The device's mean daily pages over the window relative to its family's mean at the cutoff."""
    _check_lookback((window,))
    return _usage_vs_family(
        page_readings, ib_devices, cutoffs, window, f"telemetry_pages_vs_family_{window}d"
    )


def _usage_vs_family(
    readings: ir.Table, ib_devices: ir.Table, cutoffs: ir.Table, window: int, name: str
) -> ir.Table:
    """Per device and cutoff, column ``name``: the mean daily increment of its usage counter
    (``readings`` with ``delta`` and ``gap``) over the ``window`` days to the cutoff, relative
    to the mean of the devices of its family that report one (null when that is 0)."""
    g = _daily_rate(readings, cutoffs, window)
    fam = ib_devices.select("partner_id", "device_id", "family")
    g = g.join(fam, ["partner_id", "device_id"])
    g = g.filter(g.family.notnull())
    typical = g.group_by(["family", "cutoff"]).aggregate(_family=g._rate.mean())
    g = g.join(typical, ["family", "cutoff"])
    rel = ibis.ifelse(g._family > 0, g._rate / g._family, ibis.null("float64"))
    return g.select(*DEVICE, "cutoff", **{name: rel})


def _daily_rate(readings: ir.Table, cutoffs: ir.Table, window: int) -> ir.Table:
    """Per device and cutoff, ``_rate``: the mean daily increment of a usage counter
    (``readings`` with ``delta`` and ``gap``) over the ``window`` days to the cutoff; devices
    without an increment in the window have no row."""
    j = window_join(readings, cutoffs, days=window)
    j = j.filter(j.delta.notnull())
    g = j.group_by([*DEVICE, "cutoff"]).aggregate(_used=j.delta.sum(), _gap=j.gap.sum())
    return g.filter(g._gap > 0).select(*DEVICE, "cutoff", _rate=g._used / g._gap)


# -- telemetry: health --------------------------------------------------------------------------


@node()
def health_readings(telemetry: ir.Table) -> ir.Table:
    """Battery and disk health readings (percent) with their day."""
    # one suffix test reads the telemetry twice as fast as a list of names (readings of other
    # *_health_pct metrics get through and count nowhere: every use picks its metric)
    t = telemetry.filter(telemetry.metric.endswith("_health_pct"))
    return t.select(
        "partner_id", "device_id", "metric", "observed_at", "value", day=day_of(t.observed_at)
    )


@builder(keys=DEVICE)
def telemetry_health(
    health_readings: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    windows: tuple[int, ...] = (30, 90),
) -> ir.Table:
    """Battery and disk health: the last reading within the longest window, and slopes per day."""
    top = max(windows)
    h = in_range(health_readings, cutoff_days, top)
    j = window_join(h, cutoffs, days=top)
    x = (j.day - j.cday).cast("float64")
    flags = {f"_{name}": j.metric == metric for name, metric in HEALTH_METRICS.items()}
    flags.update({f"_w{w}": within(j, w) for w in windows})
    j = j.mutate(_x=x, _xx=x * x, _xy=x * j.value, **flags)
    aggs: dict[str, ir.Value] = {}
    for name in HEALTH_METRICS:
        m = j[f"_{name}"]
        aggs[f"telemetry_{name}_health_last"] = last_value(j.value, j.observed_at, m)
        for w in windows:
            f = m & j[f"_w{w}"]
            aggs[f"_{name}_{w}_n"] = count_if(f)
            for part in ("x", "xx", "xy"):
                aggs[f"_{name}_{w}_{part}"] = sum_if(f, j[f"_{part}"])
            aggs[f"_{name}_{w}_y"] = sum_if(f, j.value)
    g = j.group_by([*DEVICE, "cutoff"]).aggregate(**aggs)
    cols: dict[str, ir.Value] = {}
    for name in HEALTH_METRICS:
        cols[f"telemetry_{name}_health_last"] = g[f"telemetry_{name}_health_last"]
    for name in HEALTH_METRICS:
        for w in windows:
            p = f"_{name}_{w}_"
            cols[f"telemetry_{name}_health_slope_{w}d"] = ols_slope(
                g[p + "n"], g[p + "x"], g[p + "y"], g[p + "xy"], g[p + "xx"]
            )
    return g.select(*DEVICE, "cutoff", **cols)


# -- device events ---------------------------------------------------------------------------


@node()
def events(device_events: ir.Table) -> ir.Table:
    """Device events with their day."""
    e = device_events
    return e.select("partner_id", "device_id", "code", "severity", day=day_of(e.occurred_at))


def has_prefix(code: ir.StringValue, prefix: str) -> ir.BooleanValue:
    """The code's part before its first dot is ``prefix``."""
    return (code == prefix) | code.startswith(prefix + ".")


@builder(keys=DEVICE, zero_fill=True)
def device_event_counts(
    events: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    windows: tuple[int, ...] = (7, 30, 90),
    code_prefixes: tuple[str, ...] = (),
) -> ir.Table:
    """Device events per window by severity and by code prefix (listed ones, then the others)."""
    e = in_range(events, cutoff_days, max(windows))
    kinds = {"": e.device_id.notnull()}
    kinds.update({f"{s}_": e.severity == s for s in SEVERITIES})
    listed = [has_prefix(e.code, p) for p in code_prefixes]
    kinds.update({f"prefix_{slug(p)}_": m for p, m in zip(code_prefixes, listed, strict=True)})
    if code_prefixes:
        kinds["prefix_other_"] = ~ibis.or_(*listed)
    # each event counted once per kind, into the windows that hold it (see window_sums)
    e = e.select(*DEVICE, "day", **{f"_ev_{k}n": ibis.ifelse(c, 1, 0) for k, c in kinds.items()})
    s = window_sums(
        e,
        cutoffs,
        cutoff_days,
        group=list(DEVICE),
        values=[f"_ev_{k}n" for k in kinds],
        windows=windows,
    )
    return s.select(
        *DEVICE,
        "cutoff",
        **{f"dev_events_{k}count_{w}d": s[f"_ev_{k}n_{w}d"] for w in windows for k in kinds},
    )


@builder(keys=DEVICE, zero_fill=True)
def device_event_bursts(
    events: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    windows: tuple[int, ...] = (7, 30),
) -> ir.Table:
    """The most events on one day per window (recent bursts), and days since the last error."""
    recent = in_range(events, cutoff_days, max(windows))
    daily = recent.group_by(["partner_id", "device_id", "day"]).aggregate(n=recent.count())
    j = window_join(daily, cutoffs, days=max(windows))
    g = j.group_by([*DEVICE, "cutoff"]).aggregate(
        **{f"dev_events_daily_count_max_{w}d": j.n.max(where=within(j, w)) for w in windows}
    )
    err = events.filter(events.severity == "error").select("partner_id", "device_id", "day")
    last = latest_as_of(err, cutoffs, cutoff_days, group=list(DEVICE), values=[], order="day")
    last = last.select(
        *DEVICE, "cutoff", days_since_last_error_event=(last.cday - last.day).cast("int64")
    )
    return outer_join_on(g, last, [*DEVICE, "cutoff"])


# -- service tickets per device ----------------------------------------------------------------


@builder(keys=DEVICE, zero_fill=True)
def svc_device_counts(
    tickets: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    windows: tuple[int, ...] = (90, 365),
    kinds: tuple[str, ...] = ("incident", "repair", "part_replacement", "preventive"),
    components: tuple[str, ...] = (),
    component_window: int = 365,
) -> ir.Table:
    """The device's tickets per window by kind and by component, and days since the last repair."""
    t = tickets.filter(tickets.device_id.notnull())
    top = max(*windows, component_window)
    j = window_join(in_range(t, cutoff_days, top), cutoffs, days=top)
    aggs: dict[str, ir.Value] = {}
    for w in windows:
        f = within(j, w)
        for k in kinds:
            aggs[f"svc_dev_{slug(k)}_count_{w}d"] = count_if(f & (j.kind == k))
    fc = within(j, component_window)
    for c in components:
        aggs[f"svc_dev_component_{slug(c)}_count_{component_window}d"] = count_if(
            fc & (j.component == c)
        )
    g = j.group_by([*DEVICE, "cutoff"]).aggregate(**aggs)
    rep = t.filter(t.kind.isin(REPAIR_KINDS)).select("partner_id", "device_id", "day")
    last = latest_as_of(rep, cutoffs, cutoff_days, group=list(DEVICE), values=[], order="day")
    last = last.select(
        *DEVICE, "cutoff", days_since_last_repair=(last.cday - last.day).cast("int64")
    )
    return outer_join_on(g, last, [*DEVICE, "cutoff"])


@builder(keys=DEVICE)
def svc_device_recency(
    tickets: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    kinds: tuple[str, ...] = (),
) -> ir.Table:
    """Days since the device's last ticket of each kind (null when none is on record)."""
    t = tickets.filter(tickets.device_id.notnull() & tickets.kind.isin(list(kinds)))
    t = t.select("partner_id", "device_id", "kind", "day")
    last = latest_as_of(t, cutoffs, cutoff_days, group=[*DEVICE, "kind"], values=[], order="day")
    ago = last.cday - last.day
    return last.group_by([*DEVICE, "cutoff"]).aggregate(
        **{f"days_since_last_{slug(k)}": ago.min(where=last.kind == k).cast("int64") for k in kinds}
    )


@builder(keys=DEVICE, zero_fill=True)
def component_repairs(
    tickets: ir.Table,
    events: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    *,
    components: tuple[str, ...] = (),
    code_prefixes: tuple[str, ...] = (),
    lookback: int = 365,
) -> ir.Table:
    """Per component: days since its last repair, and its device events since then.

    A repair or part replacement renews a component, so its wear (and the warnings that wear
    sends) starts again: the component's events (the code prefix at the same position in
    ``code_prefixes``) are counted after the day of its last repair ticket, within the last
    ``lookback`` days; a component never repaired counts the whole ``lookback`` days.
    """
    if len(components) != len(code_prefixes):
        raise ConfigError(
            f"component_repairs: {len(components)} components and {len(code_prefixes)} code "
            "prefixes; give one code prefix per component, in the same order"
        )
    t = tickets.filter(
        tickets.device_id.notnull()
        & tickets.kind.isin(REPAIR_KINDS)
        & tickets.component.isin(list(components))
    )
    t = t.select("partner_id", "device_id", "component", "day")
    last = latest_as_of(
        t, cutoffs, cutoff_days, group=[*DEVICE, "component"], values=[], order="day"
    )
    e = in_range(events, cutoff_days, lookback)
    part = ibis.cases(
        *[(has_prefix(e.code, p), c) for c, p in zip(components, code_prefixes, strict=True)],
        else_=ibis.null("string"),
    )
    e = e.mutate(component=part)
    e = e.filter(e.component.notnull())
    daily = e.group_by([*DEVICE, "component", "day"]).aggregate(n=e.count())
    j = window_join(daily, cutoffs, days=lookback)
    r = last.select(
        r_partner="partner_id",
        r_device="device_id",
        r_component="component",
        r_cutoff="cutoff",
        r_day="day",
    )
    j = j.left_join(
        r,
        [
            j.partner_id == r.r_partner,
            j.device_id == r.r_device,
            j.component == r.r_component,
            j.cutoff == r.r_cutoff,
        ],
    )
    j = j.filter(j.r_day.isnull() | (j.day > j.r_day))
    counts = j.group_by([*DEVICE, "cutoff"]).aggregate(
        **{
            f"dev_events_{slug(c)}_count_since_repair_{lookback}d": sum_if(j.component == c, j.n)
            for c in components
        }
    )
    ago = last.cday - last.day
    days = last.group_by([*DEVICE, "cutoff"]).aggregate(
        **{
            f"days_since_{slug(c)}_repair": ago.min(where=last.component == c).cast("int64")
            for c in components
        }
    )
    return outer_join_on(counts, days, [*DEVICE, "cutoff"])


# -- device x component ------------------------------------------------------------------------

DEVICE_COMPONENT = ("partner_id", "device_id", "component")
DEVICE_COMPONENT_SPINE = ("partner_id", "account_id", "device_id", "component")
HEALTH_SUFFIX = "_health_pct"
"""A component's health metric is ``<component>_health_pct`` (battery, disk)."""


def _check_components(what: str, components: tuple[str, ...], other: tuple[str, ...], of: str):
    if len(components) != len(other):
        raise ConfigError(
            f"{what}: {len(components)} components and {len(other)} {of}; give one of the "
            "latter per component, in the same order"
        )


@entity(keys=DEVICE_COMPONENT_SPINE)
def device_component_spine(
    ib_devices: ir.Table,
    cutoffs: ir.Table,
    *,
    contracts: tuple[str, ...] | None = None,
    components: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    other: str = "",
) -> ir.Table:
    """The components of the devices of :func:`device_spine`, one row each.

    A device has the components listed for its category (``categories`` at the same position
    as ``components``), and with ``other`` a row of that name for the repairs that name no
    listed component of it (none, or another one): the rows of a device together see every
    repair of it.
    """
    _check_components("device_component_spine", components, categories, "categories")
    dev = device_spine(ib_devices, cutoffs, contracts=contracts)
    cat = ib_devices.select(c_partner="partner_id", c_device="device_id", c_cat="device_category")
    dev = dev.join(cat, [dev.partner_id == cat.c_partner, dev.device_id == cat.c_device])
    parts = [
        dev.filter(dev.c_cat == k).select(
            *DEVICE_SPINE,
            component=ibis.literal(c, type="string"),
            cutoff=dev.cutoff,
            cday=dev.cday,
        )
        for c, k in zip(components, categories, strict=True)
    ]
    if other:
        parts.append(
            dev.select(
                *DEVICE_SPINE,
                component=ibis.literal(other, type="string"),
                cutoff=dev.cutoff,
                cday=dev.cday,
            )
        )
    if not parts:
        raise ConfigError("device_component_spine: list components (or name an other row)")
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out


@builder(keys=DEVICE_COMPONENT, zero_fill=True)
def component_state(
    device_component_spine: ir.Table,
    ib_devices: ir.Table,
    tickets: ir.Table,
    cutoffs: ir.Table,
    cutoff_days: tuple[int, ...],
    events: ir.Table | None = None,
    health_readings: ir.Table | None = None,
    page_readings: ir.Table | None = None,
    cycle_readings: ir.Table | None = None,
    fleet_page_days: ir.Table | None = None,
    *,
    code_prefixes: tuple[str, ...] = (),
    components: tuple[str, ...] = (),
    windows: tuple[int, ...] = (7, 30, 90),
    lookback: int = 365,
    health_window: int = 60,
    use_window: int = 90,
    wear_exponent: float | None = None,
    failure_shape: float = 3.0,
    health_components: tuple[str, ...] = (),
    health_exponents: tuple[float, ...] = (),
    usage_wear: bool = False,
    season: bool = False,
    horizon: int | None = None,
) -> ir.Table:
    """The row's own component: its name, age, use, warnings, repairs, health, wear.

    Under the same names for every component, so that one model learns how wear shows in any
    of them: ``component_name``; its device events (the code prefix at the component's
    position in ``code_prefixes``) per window and since its last repair (within ``lookback``
    days, as :func:`component_repairs`); its repair and part replacement tickets over
    ``lookback`` days and days since the last (null when none is on record); its age (a
    repair renews it: days since its last repair, else the device's age) and the pages it
    has printed (its age at the device's mean daily pages over ``use_window`` days; null
    without page readings); and, for a component with a health metric
    (``<component>_health_pct``), the last reading within ``health_window`` days and its
    slope per day.

    With ``wear_exponent``, a wear model reads the part's wear from its warnings and health
    and projects it over the ``horizon`` (see :func:`_wear_columns`): ``comp_warning_rate``,
    ``comp_wear_index`` and ``comp_hazard_index_next_<horizon>d``.

    With ``usage_wear``, the wear the part's use alone implies (see :func:`_usage_wear_columns`):
    how much the device is used relative to its family over ``use_window`` days (pages for a
    printer, battery charge cycles for a PC), ``comp_use_rel``; that times the part's age,
    ``comp_use_wear_index``; and its hazard over the ``horizon``,
    ``comp_use_hazard_index_next_<horizon>d``.

    With ``season`` (and the wear model), how much the fleet prints in the ``horizon`` days
    after the cutoff's date relative to the whole year, as it did a year earlier
    (:func:`_fleet_season`), ``fleet_use_next_<horizon>d_vs_year``, and the part's hazard over
    the horizon at that pace, ``comp_hazard_index_season_next_<horizon>d``.
    """
    _check_lookback((use_window,))
    _check_components("component_state", components, code_prefixes, "code prefixes")
    _check_components("component_state", health_components, health_exponents, "health exponents")
    if wear_exponent is not None and (horizon is None or wear_exponent <= 0 or failure_shape <= 0):
        raise ConfigError(
            "component_state: the wear model needs wear_exponent > 0, failure_shape > 0 and a "
            'horizon (a number of days, or "label"); got '
            f"{wear_exponent}, {failure_shape}, {horizon}"
        )
    if usage_wear and (horizon is None or failure_shape <= 0):
        raise ConfigError(
            "component_state: usage_wear needs failure_shape > 0 and a horizon (a number of "
            f'days, or "label"); got {failure_shape}, {horizon}'
        )
    if season and wear_exponent is None:
        raise ConfigError(
            "component_state: season scales the wear model's hazard and needs it: give "
            "wear_exponent (and a horizon)"
        )
    on = [*DEVICE_COMPONENT, "cutoff"]
    t = tickets.filter(tickets.device_id.notnull() & tickets.kind.isin(REPAIR_KINDS))
    t = t.filter(t.component.notnull()).select(*DEVICE_COMPONENT, "day")
    last = latest_as_of(
        t, cutoffs, cutoff_days, group=list(DEVICE_COMPONENT), values=[], order="day"
    )
    parts = [last.select(*on, days_since_comp_repair=(last.cday - last.day).cast("int64"))]
    rep = window_join(in_range(t, cutoff_days, lookback), cutoffs, days=lookback)
    parts.append(rep.group_by(on).aggregate(**{f"comp_repairs_count_{lookback}d": rep.count()}))
    if events is not None and components:
        top = max(*windows, lookback)
        e = in_range(events, cutoff_days, top)
        part = ibis.cases(
            *[(has_prefix(e.code, p), c) for c, p in zip(components, code_prefixes, strict=True)],
            else_=ibis.null("string"),
        )
        e = e.mutate(component=part)
        e = e.filter(e.component.notnull())
        daily = e.group_by([*DEVICE_COMPONENT, "day"]).aggregate(n=e.count())
        j = window_join(daily, cutoffs, days=top)
        j = _left_on(j, last.select(*on, r_day=last.day), on)
        fresh = j.r_day.isnull() | (j.day > j.r_day)
        aggs = {f"comp_events_count_{w}d": sum_if(within(j, w), j.n) for w in windows}
        aggs[f"comp_events_count_since_repair_{lookback}d"] = sum_if(
            within(j, lookback) & fresh, j.n
        )
        parts.append(j.group_by(on).aggregate(**aggs))
    if health_readings is not None:
        h = in_range(health_readings, cutoff_days, health_window)
        h = h.filter(h.metric.endswith(HEALTH_SUFFIX))
        h = h.mutate(component=h.metric.substr(0, h.metric.length() - len(HEALTH_SUFFIX)))
        j = window_join(h, cutoffs, days=health_window)
        x = (j.day - j.cday).cast("float64")
        # the wear model takes a reading only if it is from after the part was renewed
        when = {"_health_day": j.day.max(where=j.value.notnull())} if wear_exponent else {}
        g = j.group_by(on).aggregate(
            comp_health_last=last_value(j.value, j.observed_at, j.value.notnull()),
            **when,
            _n=j.count(),
            _x=x.sum(),
            _xx=(x * x).sum(),
            _y=j.value.sum(),
            _xy=(x * j.value).sum(),
        )
        slope = ols_slope(g._n, g._x, g._y, g._xy, g._xx)
        parts.append(
            g.select(
                *on, "comp_health_last", *when, **{f"comp_health_slope_{health_window}d": slope}
            )
        )
    sp = device_component_spine
    ib = ib_devices.select(i_partner="partner_id", i_device="device_id", inst="inst")
    sp = sp.join(ib, [sp.partner_id == ib.i_partner, sp.device_id == ib.i_device])
    out = sp.select(*on, "cday", "inst", component_name=sp.component)
    for p in parts:
        out = _left_on(out, p, on)
    age = ibis.coalesce(out.days_since_comp_repair, (out.cday - out.inst).cast("int64"))
    out = out.mutate(comp_age_days=age)
    if page_readings is not None:
        out = _left_on(out, _daily_rate(page_readings, cutoffs, use_window), [*DEVICE, "cutoff"])
        out = out.mutate(comp_use_pages_est=out.comp_age_days.cast("float64") * out._rate)
        out = out.drop("_rate")
    if wear_exponent is not None and horizon is not None:
        events_since = f"comp_events_count_since_repair_{lookback}d"
        out = out.mutate(
            **_wear_columns(
                age=out.comp_age_days.cast("float64"),
                events=(
                    ibis.coalesce(out[events_since], 0).cast("float64")
                    if events_since in out.columns
                    else ibis.null("float64")
                ),
                # a reading from before the part was renewed describes the old part
                health=(
                    ibis.ifelse(
                        out.cday - out._health_day < out.comp_age_days,
                        out.comp_health_last.cast("float64"),
                        ibis.null("float64"),
                    )
                    if "comp_health_last" in out.columns
                    else ibis.null("float64")
                ),
                component=out.component_name,
                lookback=lookback,
                a=float(wear_exponent),
                k=float(failure_shape),
                health_exponent=dict(zip(health_components, health_exponents, strict=True)),
                horizon=int(horizon),
            )
        )
    if usage_wear and horizon is not None:
        used = [r for r in (page_readings, cycle_readings) if r is not None]
        if used:
            counters = (
                used[0] if len(used) == 1 else used[0].union(used[1].select(*used[0].columns))
            )
            rel = _usage_vs_family(counters, ib_devices, cutoffs, use_window, "comp_use_rel")
            out = _left_on(out, rel, [*DEVICE, "cutoff"])
        else:
            out = out.mutate(comp_use_rel=ibis.null("float64"))
        out = out.mutate(
            **_usage_wear_columns(
                age=out.comp_age_days.cast("float64"),
                rel=out.comp_use_rel,
                k=float(failure_shape),
                horizon=int(horizon),
            )
        )
    if season and horizon is not None:
        factor = f"fleet_use_next_{horizon}d_vs_year"
        if fleet_page_days is not None:
            out = _left_on(
                out, _fleet_season(fleet_page_days, cutoffs, int(horizon), factor), ["cutoff"]
            )
        else:
            out = out.mutate(**{factor: ibis.null("float64")})
        out = out.mutate(
            **{
                f"comp_hazard_index_season_next_{horizon}d": out[
                    f"comp_hazard_index_next_{horizon}d"
                ]
                * out[factor]
            }
        )
    if "_health_day" in out.columns:
        out = out.drop("_health_day")
    return out.drop("cday", "inst")


SEASON_MIN_DAYS = 300
"""The fleet's year before a cutoff counts (:func:`_fleet_season`) only if its page counter
increments cover at least this many days: a shorter history says nothing of the year."""


def _fleet_season(
    fleet_page_days: ir.Table, cutoffs: ir.Table, horizon: int, name: str
) -> ir.Table:
    """Per cutoff, column ``name``: the fleet's pages a device-day in the ``horizon`` days
    after the cutoff's date a year earlier, over its pages a device-day in the year to the
    cutoff (null without a year of readings behind the cutoff).

    Offices print less in summer and at year end, and parts wear with use: a part's hazard
    over a horizon in August is lower than over one in October at the same wear. A year
    earlier is the nearest observed season (the fleet's calendar for depletion reads it the
    same way); whole-fleet sums (every partner's devices) are stable where one partner's few
    devices are not, and tell no partner anything of another's."""
    j = window_join(fleet_page_days, cutoffs, days=365)
    nxt = j.day <= j.cday - 365 + horizon
    g = j.group_by("cutoff").aggregate(
        _np=j.pages.sum(where=nxt),
        _ng=j.gap.sum(where=nxt),
        _yp=j.pages.sum(),
        _yg=j.gap.sum(),
        _first=j.day.min(),
        _cday=j.cday.max(),
    )
    ok = (g._ng > 0) & (g._yp > 0) & (g._cday - g._first >= SEASON_MIN_DAYS)
    rel = (g._np / g._ng) / (g._yp / g._yg)
    return g.select("cutoff", **{name: ibis.ifelse(ok, rel, ibis.null("float64"))})


WEAR_PRIOR_EVENTS = 0.5
"""Events added to a part's count in the wear model: a part without warnings is not unworn."""

WEAR_MIN_DAYS = 90
"""The wear model reads a younger part's warnings as if over this many days: a few days
without (or with one) warning say little about how fast it wears."""


def _wear_columns(
    *,
    age: ir.FloatingValue,
    events: ir.FloatingValue,
    health: ir.FloatingValue,
    component: ir.StringValue,
    lookback: int,
    a: float,
    k: float,
    health_exponent: dict[str, float],
    horizon: int,
) -> dict[str, ir.Value]:
    """A part's warning rate, wear and failure hazard over the horizon, from a wear model.

    Wear ``W`` grows in proportion to the part's age ``A`` (days since it was new: its last
    repair, else the device's installation), ``W = r A``; warnings come at a rate that grows
    as ``W^a`` and failures at a hazard that grows as ``d(W^k)``. The ``N`` warnings of the
    last ``lookback`` days (since the part was new) then give ``r^a`` as ``(N + 1/2) (a + 1) /
    (A^(a+1) - max(A - lookback, 0)^(a+1))`` (warnings per unit of ``W^a`` taken as 1, a
    constant per kind of part), and the hazard over the next ``horizon`` days is ``W^k ((1 +
    horizon / A)^k - 1)``; a part younger than :data:`WEAR_MIN_DAYS` counts as that old in
    the rate and the hazard's growth. A part with a health metric reports its wear: its last
    reading ``h`` since it was renewed gives ``W = ((100 - h) / 100)^(1 / e)`` with the
    metric's exponent ``e`` and takes precedence. The two scales differ by a constant per
    kind of part, which the model knows from ``component_name``. Trees cannot form these
    ratios and powers from the columns themselves with a few hundred repairs to learn from;
    a wrong exponent keeps most of the gain (device_failure v4 on the small world: exponents
    2/2 or 3/4 instead of 2.5/3 lose little).
    """
    A = ibis.greatest(age, 1.0)
    seen = ibis.greatest(A, float(WEAR_MIN_DAYS))
    lo = ibis.greatest(A - lookback, 0.0)
    per_wear = (events + WEAR_PRIOR_EVENTS) * (a + 1) / (seen ** (a + 1) - lo ** (a + 1))
    w = per_wear ** (1.0 / a) * A
    for part, e in health_exponent.items():
        drop = ibis.greatest(100.0 - health, 0.0) / 100.0
        w = ibis.ifelse((component == part) & health.notnull(), drop ** (1.0 / e), w)
    return {
        "comp_warning_rate": events / ibis.least(seen, float(lookback)),
        "comp_wear_index": w,
        f"comp_hazard_index_next_{horizon}d": w**k * ((1.0 + horizon / seen) ** k - 1.0),
    }


def _usage_wear_columns(
    *, age: ir.FloatingValue, rel: ir.FloatingValue, k: float, horizon: int
) -> dict[str, ir.Value]:
    """The wear a part's use implies, and its failure hazard over the horizon.

    A part wears with use: how much its device is used relative to its family (``rel``, the
    device's usage counter's daily rate over the family's mean) times its age in years,
    ``comp_use_wear_index``, up to a constant per kind of part that the model learns from
    ``component_name``. The hazard over the next ``horizon`` days grows as ``d(W^k)``:
    ``W^k ((1 + horizon / A)^k - 1)``, a part younger than :data:`WEAR_MIN_DAYS` counting as
    that old in the growth (as in :func:`_wear_columns`). Warnings come only once a part is
    worn, so for a part without any, its use is what tells a heavily used one from a light
    one (device_failure v5 on small worlds: the skill ratio expected over the outcomes gained
    0.003-0.008 on five pairs of seed and period, most of it from PCs, whose use the trees had
    not seen: printers had their pages relative to their family already).
    """
    A = ibis.greatest(age, 1.0)
    seen = ibis.greatest(A, float(WEAR_MIN_DAYS))
    w = rel * A / 365.25
    return {
        "comp_use_wear_index": w,
        f"comp_use_hazard_index_next_{horizon}d": w**k * ((1.0 + horizon / seen) ** k - 1.0),
    }


def _left_on(left: ir.Table, right: ir.Table, keys: list[str]) -> ir.Table:
    """``left`` with ``right``'s other columns where its ``keys`` match (null elsewhere)."""
    r = right.rename({f"_r_{k}": k for k in keys})
    j = left.left_join(r, [left[k] == r[f"_r_{k}"] for k in keys])
    return j.select(*left.columns, *[c for c in right.columns if c not in keys])
