"""Labels, per DATAPACK.md "What each model learns from": rows dated in (c, c + horizon] only.

Each label function takes the model's ``spine`` (one row per entity and cutoff) and returns
one row per spine row with the spine's keys, ``cutoff`` and the label column(s). Labels
always read the lake as it is now (the best knowledge of what happened), also in as-known
mode, where only the features are restricted to what was known at the cutoff.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from amplify_ml.features.builders.accounts import ACCOUNT_CATEGORY, REPAIR_KINDS
from amplify_ml.features.builders.devices import DEVICE_COMPONENT_SPINE, DEVICE_SPINE
from amplify_ml.features.builders.supplies import DEVICE_COLOR_SPINE
from amplify_ml.features.graph import ahead_join, keyed, label, on_keys


def _flag(spine: ir.Table, hits: ir.Table, keys: tuple[str, ...], out: str = "label") -> ir.Table:
    """``spine`` with ``out`` = 1 where ``hits`` (keys + cutoff, distinct) has the row, else 0."""
    h = hits.select(*keys, "cutoff").distinct()
    h = h.select(**{f"h_{k}": h[k] for k in (*keys, "cutoff")}, _hit=ibis.literal(1))
    j = spine.left_join(h, [spine[k] == h[f"h_{k}"] for k in (*keys, "cutoff")])
    return j.select(*spine.columns, **{out: j._hit.notnull().cast("int64")})


@label()
def label_bought_in_category(
    spine: ir.Table, st_daily: ir.Table, cutoffs: ir.Table, *, horizon_days: int = 90
) -> ir.Table:
    """1 if the account bought (quantity > 0) in the category within the horizon, else 0."""
    buys = st_daily.filter(st_daily.buys > 0).select(*ACCOUNT_CATEGORY, "day")
    hits = ahead_join(buys, cutoffs, days=horizon_days)
    return _flag(spine, hits, ACCOUNT_CATEGORY).select(*ACCOUNT_CATEGORY, "cutoff", "label")


@label()
def label_retired(
    spine: ir.Table, ib_devices: ir.Table, cutoffs: ir.Table, *, horizon_days: int = 180
) -> ir.Table:
    """1 if the device was retired or replaced within the horizon, else 0."""
    ib = ib_devices.filter(ib_devices.ret.notnull())
    ib = ib.select("partner_id", "account_id", "device_id", day=ib.ret)
    hits = ahead_join(ib, cutoffs, days=horizon_days)
    return _flag(spine, hits, ("partner_id", "device_id")).select(*DEVICE_SPINE, "cutoff", "label")


@label()
def label_repair_opened(
    spine: ir.Table, tickets: ir.Table, cutoffs: ir.Table, *, horizon_days: int = 30
) -> ir.Table:
    """1 if a repair or part_replacement ticket of the device opened within the horizon."""
    t = tickets.filter(tickets.kind.isin(REPAIR_KINDS) & tickets.device_id.notnull())
    hits = ahead_join(t.select("partner_id", "device_id", "day"), cutoffs, days=horizon_days)
    return _flag(spine, hits, ("partner_id", "device_id")).select(*DEVICE_SPINE, "cutoff", "label")


@label()
def label_days_to_threshold(
    spine: ir.Table,
    supply_readings: ir.Table,
    cutoffs: ir.Table,
    *,
    horizon_days: int = 180,
    threshold_pct: float = 10.0,
) -> ir.Table:
    """Days from the cutoff to the first reading at or below the threshold, or censored.

    ``label`` is null and ``censored`` true when no reading in the window reaches it.
    """
    low = supply_readings.filter(supply_readings.value <= threshold_pct)
    low = low.select("partner_id", "device_id", "color", "day")
    j = ahead_join(low, cutoffs, days=horizon_days)
    first = j.group_by(["partner_id", "device_id", "color", "cutoff", "cday"]).aggregate(
        _first=j.day.min()
    )
    keys = ("partner_id", "device_id", "color", "cutoff")
    first = first.select(
        **keyed(first, "f_", keys), _days=(first._first - first.cday).cast("float64")
    )
    out = spine.left_join(first, on_keys(spine, first, "f_", keys))
    return out.select(*DEVICE_COLOR_SPINE, "cutoff", label=out._days, censored=out._days.isnull())


@label()
def label_component_repaired(
    spine: ir.Table,
    tickets: ir.Table,
    cutoffs: ir.Table,
    *,
    horizon_days: int = 30,
    other: str = "",
) -> ir.Table:
    """1 if a repair or part_replacement ticket of the row's component opened within the horizon.

    With ``other`` (as the spine's), a repair naming no component of the device's rows
    (none, or another one) counts for its row of that name: a device's rows together are 1
    exactly where :func:`label_repair_opened` is.
    """
    t = tickets.filter(tickets.kind.isin(REPAIR_KINDS) & tickets.device_id.notnull())
    t = t.select("partner_id", "device_id", "component", "day")
    hits = ahead_join(t, cutoffs, days=horizon_days)
    at = ("partner_id", "device_id", "component", "cutoff")
    own = spine.select(**keyed(spine, "s_", at))
    j = hits.left_join(own, on_keys(hits, own, "s_", at))
    listed = j.s_component.notnull()
    j = j.filter(listed) if not other else j
    j = j.select(
        "partner_id",
        "device_id",
        "cutoff",
        component=ibis.ifelse(listed, j.component, ibis.literal(other, type="string")),
    )
    keys = ("partner_id", "device_id", "component")
    return _flag(spine, j, keys).select(*DEVICE_COMPONENT_SPINE, "cutoff", "label")
