"""Point-in-time properties over random tiny packs (hypothesis, fixed seeds, small examples).

- rows dated after the cutoff (added or changed) leave every feature unchanged;
- in as-known mode, rows ingested after the cutoff leave every feature unchanged;
- one row per (entity, cutoff), and the same output whatever the order of the input rows;
- labels only use rows dated after the cutoff.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from amplify_ml.features import FeatureBuilder
from tests.unit.features.helpers import base_tables, table

MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")
CUTOFFS = [date(2024, 3, 31), date(2024, 6, 30)]
LAST = CUTOFFS[-1]
START = date(2023, 1, 1)
SKUS = ["PR-1", "PC-1", "TN-1-K", "TN-1-K-XL", "WR-1", "SV-1", "AC-1"]
TABLES_USED = (
    "accounts",
    "sell_through",
    "install_base",
    "telemetry",
    "device_events",
    "service_events",
    "opportunities",
    "intent_signals",
)
LATE = pd.Timestamp("2024-09-01T00:00:00Z")
SETTINGS = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    # no shrinking: one build takes a second, shrinking a failure would take many minutes
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# each example builds the four training sets two or three times (about 30 s a test)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::amplify_ml.features.training.FeatureWarning"),
]


def _day(lo: date, hi: date) -> st.SearchStrategy[date]:
    return st.integers(0, (hi - lo).days).map(lambda n: lo + timedelta(days=n))


def _ts(d: date, seconds: int) -> str:
    return (pd.Timestamp(d, tz="UTC") + pd.Timedelta(seconds=seconds)).isoformat()


@st.composite
def rows(draw: st.DrawFn, lo: date, hi: date, devices: list[str]) -> dict[str, list[dict]]:
    """Random rows of the event tables, dated in [lo, hi]."""
    day = _day(lo, hi)
    secs = st.integers(0, 86_399)
    accounts = ["A", "B"]
    out: dict[str, list[dict]] = {
        k: []
        for k in (
            "sell_through",
            "telemetry",
            "device_events",
            "service_events",
            "opportunities",
            "intent_signals",
        )
    }
    for _ in range(draw(st.integers(0, 6))):
        q = draw(st.sampled_from([-1, 1, 2]))
        out["sell_through"].append(
            dict(
                account_id=draw(st.sampled_from(accounts)),
                sku=draw(st.sampled_from(SKUS)),
                sold_on=draw(day),
                quantity=q,
                net_amount=100.0 * q,
                channel=draw(st.sampled_from(["field", "online", "marketplace"])),
            )
        )
    for _ in range(draw(st.integers(0, 12))):
        metric = draw(
            st.sampled_from(
                [
                    "page_count",
                    "supply_level_pct.black",
                    "supply_level_pct.cyan",
                    "battery_health_pct",
                    "disk_health_pct",
                ]
            )
        )
        out["telemetry"].append(
            dict(
                device_id=draw(st.sampled_from(devices)),
                observed_at=_ts(draw(day), draw(secs)),
                metric=metric,
                value=float(
                    draw(st.integers(0, 5000) if metric == "page_count" else st.integers(0, 100))
                ),
            )
        )
    for _ in range(draw(st.integers(0, 5))):
        out["device_events"].append(
            dict(
                device_id=draw(st.sampled_from(devices)),
                occurred_at=_ts(draw(day), draw(secs)),
                code=draw(st.sampled_from(["13.A2.D3", "50.00.01", "61.B1.E4", "99.X"])),
                severity=draw(st.sampled_from(["info", "warning", "error"])),
            )
        )
    for _ in range(draw(st.integers(0, 5))):
        opened = draw(day)
        closed = draw(st.none() | st.integers(0, 20).map(lambda n, o=opened: o + timedelta(days=n)))
        out["service_events"].append(
            dict(
                account_id=draw(st.sampled_from(accounts)),
                device_id=draw(st.none() | st.sampled_from(devices)),
                opened_at=_ts(opened, 3600),
                closed_at=None if closed is None else _ts(closed, 7200),
                kind=draw(
                    st.sampled_from(["incident", "repair", "part_replacement", "preventive"])
                ),
                component=draw(st.sampled_from([None, "fuser", "battery"])),
            )
        )
    for _ in range(draw(st.integers(0, 3))):
        created = draw(day)
        stage = draw(st.sampled_from(["open", "won", "lost"]))
        out["opportunities"].append(
            dict(
                account_id=draw(st.sampled_from(accounts)),
                created_on=created,
                stage=stage,
                closed_on=None
                if stage == "open"
                else created + timedelta(days=draw(st.integers(0, 60))),
                deal_registered=draw(st.booleans()),
            )
        )
    for _ in range(draw(st.integers(0, 4))):
        d = draw(day)
        out["intent_signals"].append(
            dict(
                account_id=draw(st.sampled_from(accounts)),
                week_of=d - timedelta(days=d.weekday()),
                topic=draw(st.sampled_from(["printer", "pc", "Laser 1", "security"])),
                intensity=draw(st.integers(0, 9)),
            )
        )
    return out


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, list[dict]]:
    """A partner with two accounts, up to three devices and random events up to the cutoff."""
    devices = ["D1", "D2", "D3"][: draw(st.integers(1, 3))]
    ib = []
    for d in devices:
        inst = draw(_day(START, LAST))
        retired = draw(st.none() | _day(inst, LAST + timedelta(days=200)))
        ib.append(
            dict(
                device_id=d,
                account_id=draw(st.sampled_from(["A", "B"])),
                sku=draw(st.sampled_from(["PR-1", "PC-1"])),
                installed_on=inst,
                retired_on=retired,
                warranty_ends_on=draw(st.none() | _day(inst, inst + timedelta(days=1000))),
                contract=draw(st.sampled_from(["none", "care_pack", "mps", "daas"])),
            )
        )
    world = draw(rows(START, LAST, devices))
    world["install_base"] = ib
    world["accounts"] = [
        dict(account_id="A", first_seen=draw(_day(date(2020, 1, 1), LAST))),
        dict(account_id="B", first_seen=date(2021, 1, 1)),
    ]
    return world


def frames(
    world: dict[str, list[dict]],
    extra: dict[str, list[dict]] | None = None,
    ingested: dict[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of the world (empty ones too: the same tables, so the same builders)."""
    out = base_tables()
    for name in TABLES_USED:
        rs = list(world.get(name, []))
        rs += [{**r, **(ingested or {})} for r in (extra or {}).get(name, [])]
        out[name] = table(name, rs)
    return out


def build(tables: dict[str, pd.DataFrame], *, as_known: bool = False) -> dict[str, pd.DataFrame]:
    out = {}
    with FeatureBuilder(tables, memory_limit="1GB", threads=1) as fb:
        for m in MODELS:
            try:
                df, meta = fb.training_set(m, cutoffs=CUTOFFS, as_known=as_known)
            except LookupError:  # a model whose table the random world lacks
                continue
            keys = [*meta.keys, "cutoff"]
            assert not df.duplicated(keys).any()
            out[m] = df.set_index(keys)
    return out


def features(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in ("label", "censored") if c in df.columns])


def assert_same_features(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for m in a:
        pd.testing.assert_frame_equal(features(a[m]), features(b[m]), check_exact=False, obj=m)


@seed(20240630)
@SETTINGS
@given(world=worlds(), data=st.data())
def test_rows_dated_after_the_cutoff_change_no_feature(world, data) -> None:
    devices = sorted({d["device_id"] for d in world["install_base"]})
    later = data.draw(rows(LAST + timedelta(days=1), LAST + timedelta(days=400), devices))
    later["install_base"] = [
        dict(device_id="D9", account_id="A", sku="PR-1", installed_on=LAST + timedelta(days=3))
    ]
    later["accounts"] = [dict(account_id="Z", first_seen=LAST + timedelta(days=1))]
    before = build(frames(world))
    after = build(frames(world, later))
    assert_same_features(before, after)
    # changing rows dated after the cutoff: move them and change their values
    moved = {k: [{**r} for r in v] for k, v in later.items()}
    for r in moved["sell_through"]:
        r["net_amount"] *= 3
    for r in moved["telemetry"]:
        r["value"] = 100.0 - r["value"] % 100
    assert_same_features(before, build(frames(world, moved)))


@seed(20240631)
@SETTINGS
@given(world=worlds(), data=st.data())
def test_as_known_ignores_rows_ingested_after_the_cutoff(world, data) -> None:
    devices = sorted({d["device_id"] for d in world["install_base"]})
    late = data.draw(rows(START, LAST, devices))  # dated any time, ingested after the cutoffs
    late["install_base"] = [
        dict(
            device_id="D8",
            account_id="B",
            sku="PC-1",
            installed_on=date(2023, 5, 1),
            contract="daas",
        )
    ]
    before = build(frames(world), as_known=True)
    after = build(frames(world, late, ingested={"_ingested_at": LATE}), as_known=True)
    assert_same_features(before, after)


@seed(20240632)
@SETTINGS
@given(world=worlds(), data=st.data(), order=st.randoms(use_true_random=False))
def test_output_ignores_row_order_and_labels_ignore_rows_up_to_the_cutoff(
    world, data, order
) -> None:
    base = build(frames(world))
    shuffled = {k: order.sample(v, len(v)) for k, v in world.items()}
    again = build(frames(shuffled))
    assert base.keys() == again.keys()
    for m in base:
        pd.testing.assert_frame_equal(base[m], again[m], obj=m)
    # more rows dated on or before the first cutoff: labels of the same entities do not move
    devices = sorted({d["device_id"] for d in world["install_base"]})
    early = data.draw(rows(START, CUTOFFS[0], devices))
    more = build(frames(world, early))
    for m in base:
        common = base[m].index.intersection(more[m].index)
        common = common[common.get_level_values("cutoff") == pd.Timestamp(CUTOFFS[0])]
        labels = [c for c in ("label", "censored") if c in base[m].columns]
        pd.testing.assert_frame_equal(
            base[m].loc[common, labels], more[m].loc[common, labels], obj=m
        )
