"""Partner benchmarks on a lake of hand-made packs: measures worked out by hand, growth, peer
groups and k-anonymity, missing tables, no other partner's identity in the output, errors; and
a smoke test on the tiny synthetic world.

The lake: 12 partners in the vendor's partners table, 10 with a data pack.

- ``power``/``DE``: P01 (the partner under test, hand-made rows) and P02-P06 (the factory's
  rows, amounts scaled by 1-5; P06 sends no opportunities and no inventory), plus P11 (no
  consent) and P12 (consent, but no pack): P01 has 5 peers.
- ``synergy``/``FR``: P07-P10 (the factory's rows): P07 has 3 peers.

The partners' packs state that they cover 2022 to 2024 (``HISTORY``). The default period is
the 365 days to the packs' period end, 2024-12-31: 2024-01-02 to 2024-12-31 (2024 is a leap
year), the previous one 2023-01-02 to 2024-01-01.

A second lake (``late_lake``) holds six partners of which one, L1, has data only from March
2024: the measures its data cannot cover are unavailable, for it and as a peer.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from amplify_ml.datapack.ingest import ingest_pack
from amplify_ml.errors import ConsentError, InvalidRequestError, NotFoundError
from amplify_ml.lake import Lake
from amplify_ml.scoring.benchmarks import FRAME_COLUMNS, MEASURE_NAMES, Period, benchmark
from tests.factories import (
    PERIOD,
    partner_tables,
    ts,
    vendor_tables,
    write_partner_pack,
    write_vendor_pack,
)

POWER_DE = ["P01", "P02", "P03", "P04", "P05", "P06"]
SYNERGY_FR = ["P07", "P08", "P09", "P10"]
WITHOUT_PACK = ["P11", "P12"]
ALL = [*POWER_DE, *SYNERGY_FR, *WITHOUT_PACK]
HISTORY = (date(2022, 1, 1), date(2024, 12, 31))
"""The period the partners' packs state that they cover."""


def _partners(ids: list[str], track: list[str], country: list[str], consent: list[bool]):
    return pd.DataFrame(
        {
            "partner_id": ids,
            "name": [f"Company {p[1:]} Ltd" for p in ids],
            "track": track,
            "data_sharing": consent,
            "country": country,
            "joined_on": [date(2020, 1, 1)] * len(ids),
        }
    )


def _vendor() -> dict[str, pd.DataFrame]:
    t = vendor_tables()
    t["partners"] = _partners(
        ALL,
        ["power"] * 6 + ["synergy"] * 4 + ["power"] * 2,
        ["DE"] * 6 + ["FR"] * 4 + ["DE"] * 2,
        [True] * 10 + [False, True],
    )
    # market revenue a month: DE printers 1000 in 2023 -> 1100 in 2024 (+10%), PCs 2000 ->
    # 2400 (+20%), supplies 500 -> 500 (0%); nothing for AT or accessories
    months = pd.date_range("2023-01-01", "2024-12-01", freq="MS").date
    rows = []
    for category, before, now in (
        ("printer", 1000, 1100),
        ("pc", 2000, 2400),
        ("supplies", 500, 500),
    ):
        for m in months:
            rows.append(("DE", category, m, 10, float(before if m.year == 2023 else now)))
    t["market"] = pd.DataFrame(rows, columns=["country", "category", "month", "units", "revenue"])
    del t["intent_signals"]
    return t


def _p01() -> dict[str, pd.DataFrame]:
    """The partner under test; each value of the tests is worked out from these rows."""
    p = "P01"
    t = partner_tables(p)
    t["accounts"] = pd.DataFrame(
        {
            "account_id": ["A-1", "A-2", "A-3", "A-4"],
            "partner_id": [p] * 4,
            "industry": ["Manufacturing", "Retail", "Retail", "Health"],
            "employee_band": ["50-249", "10-49", "1-9", "10-49"],
            "country": ["DE", "DE", "AT", "DE"],
            "first_seen": [date(2021, 5, 1)] * 4,
        }
    )
    lines = [  # line, account, sku, sold_on, quantity, net_amount
        ("L-0", "A-1", "PR-4001", "2022-12-31", 1, 400.0),  # before both periods
        ("L-1", "A-1", "PR-4001", "2023-03-01", 2, 800.0),
        ("L-2", "A-1", "TN-4001-K", "2023-03-01", 4, 320.0),
        ("L-3", "A-2", "PC-840", "2023-06-01", 1, 1200.0),
        ("L-4", "A-3", "AC-DOCK", "2023-12-31", 1, 180.0),  # last day of 2023
        ("L-5", "A-1", "PR-4001", "2024-02-01", 4, 1600.0),
        ("L-6", "A-1", "TN-4001-K", "2024-02-01", 6, 480.0),
        ("L-7", "A-1", "WR-4001-24", "2024-02-01", 2, 240.0),
        ("L-8", "A-2", "PC-840", "2024-05-01", 1, 1100.0),
        ("L-9", "A-4", "PR-4001", "2024-06-01", 1, 400.0),
        ("L-10", "A-1", "TN-4001-K", "2024-07-01", -1, -80.0),  # a return
        ("L-11", "A-4", "TN-4001-K", "2024-12-31", 2, 160.0),  # last day of 2024
    ]
    st = pd.DataFrame(
        lines, columns=["line_id", "account_id", "sku", "sold_on", "quantity", "net_amount"]
    )
    st["sold_on"] = pd.to_datetime(st["sold_on"]).dt.date
    st.insert(1, "partner_id", p)
    st["currency"] = "EUR"
    st["channel"] = "field"
    t["sell_through"] = st
    t["install_base"] = pd.DataFrame(
        {
            "device_id": ["D-1", "D-2", "D-3", "D-4"],
            "partner_id": [p] * 4,
            "account_id": ["A-1", "A-1", "A-2", "A-4"],
            "sku": ["PR-4001", "PC-840", "PC-840", "PR-4001"],
            "installed_on": [
                date(2024, 2, 5),
                date(2019, 1, 10),
                date(2020, 1, 1),
                date(2024, 12, 31),
            ],
            "warranty_ends_on": [None] * 4,
            "contract": ["mps", "daas", "none", "none"],
            "retired_on": [None, date(2024, 9, 30), date(2023, 6, 30), None],
            "replaced_by": [None] * 4,
        }
    )
    t["telemetry"] = t["telemetry"].iloc[:0]
    t["device_events"] = t["device_events"].iloc[:0]
    tickets = [  # ticket, account, device, opened, closed, kind, sla_met
        ("T-1", "A-1", "D-1", "2024-04-01T09:00:00Z", "2024-04-02T09:00:00Z", "repair", True),
        ("T-2", "A-1", None, "2024-04-02T09:00:00Z", None, "incident", None),
        (
            "T-3",
            "A-1",
            "D-2",
            "2024-05-01T09:00:00Z",
            "2024-05-03T09:00:00Z",
            "part_replacement",
            False,
        ),
        (
            "T-4",
            "A-1",
            "D-1",
            "2024-06-01T09:00:00Z",
            "2024-06-01T12:00:00Z",
            "supplies_delivery",
            True,
        ),
        ("T-5", "A-2", "D-3", "2023-03-01T09:00:00Z", "2023-03-02T09:00:00Z", "repair", True),
        ("T-6", "A-1", "D-2", "2024-12-31T23:30:00Z", "2025-01-01T01:00:00Z", "incident", True),
    ]
    t["service_events"] = pd.DataFrame(
        {
            "ticket_id": [r[0] for r in tickets],
            "partner_id": p,
            "account_id": [r[1] for r in tickets],
            "device_id": [r[2] for r in tickets],
            "opened_at": [ts(r[3]) for r in tickets],
            "closed_at": [ts(r[4]) if r[4] else pd.NaT for r in tickets],
            "kind": [r[5] for r in tickets],
            "component": [None] * len(tickets),
            "sla_met": pd.array([r[6] for r in tickets], dtype="boolean"),
        }
    )
    opps = [  # id, account, created, stage, closed, registered, presales
        ("O-1", "A-1", date(2024, 1, 10), "won", date(2024, 2, 1), True, False),
        ("O-2", "A-2", date(2024, 3, 1), "open", None, False, True),
        ("O-3", "A-1", date(2024, 4, 1), "lost", date(2024, 5, 1), True, True),
        ("O-4", "A-4", date(2023, 11, 1), "won", date(2024, 1, 15), True, False),
        ("O-5", "A-2", date(2023, 5, 1), "lost", date(2023, 6, 1), False, False),
    ]
    t["opportunities"] = pd.DataFrame(
        {
            "opportunity_id": [o[0] for o in opps],
            "partner_id": p,
            "account_id": [o[1] for o in opps],
            "created_on": [o[2] for o in opps],
            "stage": [o[3] for o in opps],
            "closed_on": [o[4] for o in opps],
            "amount": [1000.0] * len(opps),
            "deal_registered": [o[5] for o in opps],
            "presales_support": [o[6] for o in opps],
        }
    )
    t["inventory"] = pd.DataFrame(
        {
            "partner_id": p,
            "sku": ["PR-4001", "TN-4001-K"] * 3,
            "as_of": [date(2023, 12, 31)] * 2 + [date(2024, 6, 30)] * 2 + [date(2024, 12, 31)] * 2,
            "units_on_hand": [2, 2, 5, 5, 3, 9],
        }
    )
    return t


def _factory_partner(pid: str, scale: float, drop: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    """The factory's rows, amounts times ``scale``, plus one printer sold in mid-2023."""
    t = partner_tables(pid)
    st = t["sell_through"]
    earlier = st.iloc[[0]].assign(line_id="L-0", sold_on=date(2023, 6, 1), net_amount=400.0)
    st = pd.concat([earlier, st], ignore_index=True)
    st["net_amount"] = st["net_amount"] * scale
    t["sell_through"] = st
    return {k: v for k, v in t.items() if k not in drop}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("benchmarks")
    lake = Lake(root / "lake")
    ingest_pack(write_vendor_pack(root / "vendor", _vendor()), lake)
    packs = {"P01": _p01()}
    for i, pid in enumerate(POWER_DE[1:], start=1):
        packs[pid] = _factory_partner(
            pid, i, ("opportunities", "inventory") if pid == "P06" else ()
        )
    for pid in SYNERGY_FR:
        packs[pid] = _factory_partner(pid, 1.0)
    for pid, tables in packs.items():
        pack = write_partner_pack(root / pid, tables, partner_id=pid, period=HISTORY)
        report = ingest_pack(pack, lake)
        assert all(t.quarantined == 0 for t in report.tables.values()), (pid, report.to_dict())
    with pytest.raises(ConsentError):  # P11 did not consent: its pack is refused
        ingest_pack(write_partner_pack(root / "P11", partner_tables("P11"), "P11"), lake)
    assert lake.partners() == [*POWER_DE, *SYNERGY_FR]
    return lake


@pytest.fixture(scope="module")
def p01(lake: Lake):
    return benchmark(lake, "P01")


def _m(report, name: str):
    return report.measure(name)


# -- the partner's values, by hand ------------------------------------------------------------


def test_period_defaults_to_the_latest_pack_period_end(p01) -> None:
    assert p01.as_of == date(2024, 12, 31)
    assert (p01.period.first, p01.period.last) == (date(2024, 1, 2), date(2024, 12, 31))
    assert (p01.previous_period.first, p01.previous_period.last) == (
        date(2023, 1, 2),
        date(2024, 1, 1),
    )
    assert [m.name for m in p01.measures] == list(MEASURE_NAMES)


def test_revenue_and_its_growth(p01) -> None:
    # 2024: 1600 + 480 + 240 + 1100 + 400 - 80 (return) + 160 (on 2024-12-31) = 3900
    # 2023: 800 + 320 + 1200 + 180 (on 2023-12-31) = 2500; L-0 of 2022 in neither
    revenue = _m(p01, "revenue")
    assert revenue.available and revenue.unit == "EUR"
    assert revenue.value == pytest.approx(3900.0)
    assert revenue.previous == pytest.approx(2500.0)
    assert revenue.growth == pytest.approx(0.56)
    assert _m(p01, "revenue_growth").value == pytest.approx(0.56)


def test_sales_measures(p01) -> None:
    # 6 lines with quantity > 0 in 2024 worth 3980; 3 accounts buying
    assert _m(p01, "average_sale_value").value == pytest.approx(3980 / 6)
    assert _m(p01, "average_sale_value").previous == pytest.approx(2500 / 4)
    assert _m(p01, "revenue_per_account").value == pytest.approx(3900 / 3)
    # printers 4 + 1 = 5, devices 5 + 1 PC = 6; supplies 6 - 1 + 2 = 7; warranty 2
    assert _m(p01, "supplies_attach_rate").value == pytest.approx(7 / 5)
    assert _m(p01, "supplies_attach_rate").previous == pytest.approx(4 / 2)
    assert _m(p01, "warranty_attach_rate").value == pytest.approx(2 / 6)
    assert _m(p01, "warranty_attach_rate").previous == pytest.approx(0.0)


def test_account_retention_and_expansion(p01) -> None:
    # bought in 2023; again in 2024: A-1, A-2 (A-4 is new)
    assert _m(p01, "account_retention").value == pytest.approx(2 / 3)
    # 1120 in 2 categories -> 2240 in 3; A-2: 1200 -> 1100, pc only
    assert _m(p01, "account_expansion").value == pytest.approx(1 / 2)
    # 2022 -> 2023: A-1 only, 400 (printer) -> 1120 (printer, supplies)
    assert _m(p01, "account_retention").previous == pytest.approx(1.0)
    assert _m(p01, "account_expansion").previous == pytest.approx(1.0)


def test_opportunity_measures(p01) -> None:
    # created in 2024: O-1, O-2, O-3; registered O-1, O-3; pre-sales O-2, O-3
    registrations = _m(p01, "deal_registrations")
    assert (registrations.value, registrations.previous) == (2.0, 1.0)
    assert registrations.growth == pytest.approx(1.0)
    assert _m(p01, "presales_support_rate").value == pytest.approx(2 / 3)
    assert _m(p01, "presales_support_rate").previous == pytest.approx(0.0)
    # closed in 2024: O-1 won, O-3 lost, O-4 won (created in 2023); in 2023: O-5 lost
    assert _m(p01, "conversion_rate").value == pytest.approx(2 / 3)
    assert _m(p01, "conversion_rate").previous == pytest.approx(0.0)


def test_service_measures(p01) -> None:
    # in service in 2024: D-1, D-2 (retired 2024-09-30), D-4 (installed 2024-12-31) = 3;
    # support tickets T-1, T-2, T-3 and T-6 (opened 23:30 UTC on 2024-12-31); T-4 is a delivery
    assert _m(p01, "tickets_per_device").value == pytest.approx(4 / 3)
    assert _m(p01, "tickets_per_device").previous == pytest.approx(1 / 2)  # T-5; D-2, D-3
    # sla_met recorded: T-1 yes, T-3 no, T-4 yes, T-6 yes (T-2 empty)
    assert _m(p01, "sla_compliance").value == pytest.approx(3 / 4)
    assert _m(p01, "sla_compliance").previous == pytest.approx(1.0)


def test_inventory_measures(p01) -> None:
    # snapshot 2024-12-31: 3 + 9 = 12 units; in the 13 weeks to it, 2 toners sold (L-11)
    assert _m(p01, "inventory_units_on_hand").value == 12.0
    assert _m(p01, "inventory_units_on_hand").previous == 4.0
    cover = _m(p01, "inventory_weeks_of_cover")
    assert cover.value == pytest.approx(12 / (2 / 13))
    assert cover.previous is None  # nothing of the stocked SKUs sold in late 2023
    assert cover.previous_reason == (
        "no net units of the stocked SKUs were sold in the 13 weeks up to the inventory "
        "snapshot of 2023-12-31"
    )
    assert _m(p01, "inventory_units_on_hand").previous_reason is None


def test_market_growth_is_weighted_by_the_partners_previous_revenue(p01) -> None:
    # 2023 revenue by cell: DE printer 800, DE supplies 320, DE pc 1200, AT accessory 180
    # (no market rows: left out). Months count by their days in the period: January 2024 has
    # 30 of its 31 days in this period and 1 in the previous one (so supplies, flat at 500 a
    # month, shrink by 1/31 of a month: the leap day falls in February, a whole month).
    def market_growth(before: float, now: float) -> float:
        return (now * (11 + 30 / 31)) / (before * (11 + 30 / 31) + now / 31) - 1

    printer, supplies, pc = (
        market_growth(1000, 1100),
        market_growth(500, 500),
        market_growth(2000, 2400),
    )
    growth = _m(p01, "revenue_growth")
    assert growth.market == pytest.approx((800 * printer + 320 * supplies + 1200 * pc) / 2320)
    assert growth.market_reason is None
    assert "93%" in growth.note and "AT/accessory" in growth.note


def test_market_growth_unavailable_when_the_market_does_not_cover_the_period(lake) -> None:
    report = benchmark(lake, "P01", as_of="2024-06-30")
    growth = _m(report, "revenue_growth")
    assert growth.market is None
    assert "market table does not cover every month from 2022-07 to 2024-06" in (
        growth.market_reason
    )


def test_a_shorter_period(lake) -> None:
    report = benchmark(lake, "P01", as_of=date(2024, 12, 31), period_days=31)
    # December 2024 vs the 31 days before: only L-11 (160) in December, nothing before
    assert _m(report, "revenue").value == pytest.approx(160.0)
    assert _m(report, "revenue").previous is None
    assert _m(report, "revenue_growth").reason == (
        "no sell_through lines sold in the previous period (2024-10-31 to 2024-11-30)"
    )


# -- the days the data covers -------------------------------------------------------------------


def test_the_report_states_the_days_the_partners_data_covers(p01) -> None:
    assert p01.coverage == Period(date(2022, 1, 1), date(2024, 12, 31))
    assert p01.to_dict()["coverage"] == {"first": "2022-01-01", "last": "2024-12-31", "days": 1096}
    assert "The partner's data covers 2022-01-01 to 2024-12-31." in p01.render()


def test_a_period_beyond_the_data_leaves_its_totals_unavailable(lake) -> None:
    report = benchmark(lake, "P01", as_of="2025-03-31")
    revenue = _m(report, "revenue")
    assert not revenue.available and revenue.value is None
    assert revenue.reason == (
        "the partner's data covers 2022-01-01 to 2024-12-31, not all of 2024-04-01 to "
        "2025-03-31: a total over part of the period would read as a fall; choose as_of on or "
        "before 2024-12-31"
    )
    # the peers' data ends there too: no peer figure for a total
    assert revenue.peers_with_measure == 0
    for name in ("deal_registrations", "revenue_per_account", "tickets_per_device"):
        assert not _m(report, name).available, name
    # ratios within the period and snapshots do not depend on the period being whole
    assert _m(report, "average_sale_value").value == pytest.approx((1100 + 400 + 160) / 3)
    assert _m(report, "sla_compliance").available
    assert _m(report, "inventory_units_on_hand").value == 12.0
    assert _m(report, "average_sale_value").peers_with_measure == 5


def test_a_comparison_needs_the_data_to_cover_the_period_before(lake) -> None:
    # 600 days to 2024-12-31 start on 2023-05-12; the 600 before them on 2021-09-19
    report = benchmark(lake, "P01", period_days=600)
    revenue = _m(report, "revenue")  # L-3, L-4 and the 3900 of 2024
    assert revenue.value == pytest.approx(1200 + 180 + 3900.0)
    assert revenue.previous is None and revenue.growth is None
    assert revenue.previous_reason == (  # no hint: the period chosen is the current one
        "the partner's data covers 2022-01-01 to 2024-12-31, not all of 2021-09-19 to "
        "2023-05-11: a total over part of the period would read as a fall"
    )
    assert "revenue, previous period: the partner's data covers" in report.render()
    for name in ("revenue_growth", "account_retention", "account_expansion"):
        m = _m(report, name)
        assert not m.available, name
        assert m.reason == (
            "the partner's data covers 2022-01-01 to 2024-12-31, not all of 2023-05-12 to "
            "2024-12-31 and the period before it: comparing a partial period with a whole one "
            "would read as growth or loss; choose period_days of at most 548 with this as_of"
        )
    # the hint is right: 548 days and the 548 before them start on 2022-01-01
    fits = benchmark(lake, "P01", period_days=548)
    assert fits.previous_period.first == date(2022, 1, 1)
    assert _m(fits, "account_retention").available
    assert _m(fits, "revenue_growth").available
    assert not _m(benchmark(lake, "P01", period_days=549), "revenue_growth").available


LATE = ["L1", "L2", "L3", "L4", "L5", "L6"]


@pytest.fixture(scope="module")
def late_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Six power/DE partners. L1's pack covers March to December 2024 (its sales move to
    March); L2-L6 send the factory's rows (and a printer sold on 2023-06-01), L2-L5 in packs
    stating 2022 to 2024, L6 in one stating 2024 only."""
    root = tmp_path_factory.mktemp("late")
    lake = Lake(root / "lake")
    vendor = vendor_tables()
    vendor["partners"] = _partners(LATE, ["power"] * 6, ["DE"] * 6, [True] * 6)
    ingest_pack(write_vendor_pack(root / "vendor", vendor), lake)
    late = partner_tables("L1")
    late["sell_through"]["sold_on"] = [date(2024, 3, 5), date(2024, 5, 2), date(2024, 5, 3)]
    ingest_pack(
        write_partner_pack(root / "L1", late, "L1", period=(date(2024, 3, 1), date(2024, 12, 31))),
        lake,
    )
    for i, pid in enumerate(LATE[1:], start=1):
        period = PERIOD if pid == "L6" else HISTORY
        pack = write_partner_pack(root / pid, _factory_partner(pid, i), pid, period=period)
        ingest_pack(pack, lake)
    return lake


def test_an_export_that_starts_late_has_no_totals_for_a_whole_year(late_lake) -> None:
    report = benchmark(late_lake, "L1")
    assert report.coverage == Period(date(2024, 3, 1), date(2024, 12, 31))
    revenue = _m(report, "revenue")
    assert not revenue.available
    assert revenue.reason == (
        "the partner's data covers 2024-03-01 to 2024-12-31, not all of 2024-01-02 to "
        "2024-12-31: a total over part of the period would read as a fall; choose period_days "
        "of at most 306 with this as_of"
    )
    assert not _m(report, "revenue_growth").available
    assert not _m(report, "account_retention").available
    # a ratio within the period is the partner's own, whatever part of it the data covers
    assert _m(report, "average_sale_value").value == pytest.approx((350 + 160) / 2)
    shorter = benchmark(late_lake, "L1", period_days=306)
    assert _m(shorter, "revenue").value == pytest.approx(430.0)
    assert "comparing a partial period" in _m(shorter, "revenue_growth").reason


def test_a_peer_whose_data_does_not_cover_the_period_is_left_out(late_lake) -> None:
    report = benchmark(late_lake, "L2")
    assert report.peer_group_size == 5
    revenue = _m(report, "revenue")  # L3-L6: L1's year is partial
    assert revenue.peers_with_measure == 4 and revenue.peer_median is None
    assert revenue.peer_reason == "only 4 peers have this measure in EUR; at least 5 are needed"
    assert _m(report, "average_sale_value").peers_with_measure == 5
    shown = benchmark(late_lake, "L2", k_anonymity=4)
    # L3-L6: 430 x 2..5 in 2024
    assert _m(shown, "revenue").peer_median == pytest.approx(430 * 3.5)


def test_sales_before_the_packs_period_widen_what_the_data_covers(late_lake) -> None:
    assert benchmark(late_lake, "L2").coverage == Period(date(2022, 1, 1), date(2024, 12, 31))
    l6 = benchmark(late_lake, "L6")  # its pack states 2024; it sold a printer on 2023-06-01
    assert l6.coverage == Period(date(2023, 6, 1), date(2024, 12, 31))
    assert _m(l6, "revenue").available
    assert not _m(l6, "revenue_growth").available  # the year before starts on 2023-01-02
    # as a peer of L2: a year's revenue, but no growth
    assert _m(benchmark(late_lake, "L2"), "revenue_growth").peers_with_measure == 3


# -- peers -------------------------------------------------------------------------------------


def test_peer_group_counts_consenting_partners_with_data_only(lake, p01) -> None:
    assert p01.peer_group == {"track": "power", "country": "DE"}
    assert p01.peer_group_size == 5  # P02-P06; not P11 (no consent) nor P12 (no pack)
    assert benchmark(lake, "P01", peer_by=("track",)).peer_group_size == 5
    assert benchmark(lake, "P01", peer_by=()).peer_group_size == 9


def test_peer_statistics_with_five_peers(p01) -> None:
    revenue = _m(p01, "revenue")  # peers: 430 x 1..5
    assert revenue.peers_with_measure == 5 and revenue.peer_reason is None
    assert (revenue.peer_p25, revenue.peer_median, revenue.peer_p75) == pytest.approx(
        (860.0, 1290.0, 1720.0)
    )
    assert revenue.percentile == 100.0
    sale = _m(p01, "average_sale_value")  # peers: (350 + 160) / 2 x 1..5; 2 below 663.33
    assert sale.peer_median == pytest.approx(765.0)
    assert sale.percentile == pytest.approx(40.0)
    growth = _m(p01, "revenue_growth")  # every peer: 430 / 400 - 1
    assert growth.peer_median == pytest.approx(0.075)


def test_peer_statistics_suppressed_below_k(lake, p01) -> None:
    conversion = _m(p01, "conversion_rate")  # P06 sent no opportunities: 4 peers
    assert conversion.available and conversion.peers_with_measure == 4
    assert conversion.peer_median is None and conversion.percentile is None
    assert conversion.peer_reason == "only 4 peers have this measure; at least 5 are needed"
    shown = benchmark(lake, "P01", k_anonymity=4)
    assert _m(shown, "conversion_rate").peer_median == pytest.approx(1.0)
    assert _m(shown, "conversion_rate").percentile == 0.0


def test_a_group_of_three_peers_is_suppressed_everywhere(lake) -> None:
    report = benchmark(lake, "P07")
    assert report.peer_group == {"track": "synergy", "country": "FR"}
    assert report.peer_group_size == 3
    for m in report.measures:
        assert m.peer_median is None and m.peer_p25 is None and m.percentile is None
        assert m.peer_reason in (
            "only 3 peers have this measure; at least 5 are needed",
            "only 3 peers have this measure in EUR; at least 5 are needed",
            "no peer has this measure; at least 5 are needed",
        ), m
    assert "only 3 peers have this measure in EUR" in report.render()
    assert _m(benchmark(lake, "P07", k_anonymity=3), "revenue").peer_median == 430.0


def test_no_other_partners_identity_anywhere_in_the_report(lake) -> None:
    for pid in ("P01", "P07"):
        report = benchmark(lake, pid, peer_by=(), k_anonymity=1)
        text = "\n".join(
            [
                json.dumps(report.to_dict()),
                report.to_frame().to_csv(),
                report.render(definitions=True),
            ]
        )
        assert pid in text
        for other in ALL:
            if other != pid:
                assert other not in text
                assert f"Company {other[1:]}" not in text


# -- unavailable measures ---------------------------------------------------------------------


def test_missing_tables_are_named(lake) -> None:
    report = benchmark(lake, "P06")
    for name in ("deal_registrations", "conversion_rate", "presales_support_rate"):
        m = _m(report, name)
        assert not m.available and m.value is None and m.previous is None
        assert (
            m.reason
            == "needs the opportunities table, which this partner's data packs do not include"
        )
    for name in ("inventory_units_on_hand", "inventory_weeks_of_cover"):
        assert "needs the inventory table" in _m(report, name).reason
    assert _m(report, "revenue").available
    text = report.render()
    assert "n/a [" in text and "needs the opportunities table" in text
    # the previous period lacks the table too: its cell points to the same note
    assert (
        _m(report, "deal_registrations").previous_reason == _m(report, "deal_registrations").reason
    )
    assert text.count("needs the opportunities table") == 3


def test_frame_and_dict_are_stable_and_json_able(p01) -> None:
    frame = p01.to_frame()
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert list(frame["name"]) == list(MEASURE_NAMES)
    data = json.loads(json.dumps(p01.to_dict(), allow_nan=False))
    assert data["period"] == {"first": "2024-01-02", "last": "2024-12-31", "days": 365}
    assert data["peer_group"]["size"] == 5 and data["peer_group"]["k_anonymity"] == 5
    assert data["measures"][0]["name"] == "revenue"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", ["P99", "P11", "p01"])
def test_a_partner_without_data_is_not_found(lake, pid: str) -> None:
    with pytest.raises(
        NotFoundError, match=rf"partner '{pid}' has no data in the lake .* `amplify ingest`"
    ):
        benchmark(lake, pid)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period_days": 0}, r"period_days must lie between 1 and 3660, got 0"),
        ({"period_days": 1.5}, r"period_days must be a whole number of days, got 1.5"),
        ({"peer_by": ("name",)}, r"peer_by 'name' is not a column peers can be grouped by"),
        ({"peer_by": ("colour",)}, r"use any of track, data_sharing, country, joined_on"),
        ({"k_anonymity": 0}, r"k_anonymity must be a whole number of partners >= 1, got 0"),
        ({"as_of": "31/12/2024"}, r"as_of '31/12/2024' is not a date; .* YYYY-MM-DD"),
    ],
)
def test_bad_parameters(lake, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        benchmark(lake, "P01", **kwargs)


# -- the tiny synthetic world -----------------------------------------------------------------


def test_every_measure_is_a_number_or_a_reason_on_the_tiny_world(
    tiny_world: Path, tmp_path: Path
) -> None:
    lake = Lake(tmp_path / "lake")
    packs = sorted((tiny_world / "packs").iterdir(), key=lambda p: (p.name != "vendor", p.name))
    for p in packs:
        with contextlib.suppress(ConsentError):
            ingest_pack(p, lake)
    assert len(lake.partners()) >= 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for pid in lake.partners():
            report = benchmark(lake, pid, peer_by=())
            assert report.peer_group_size == len(lake.partners()) - 1
            for m in report.measures:
                if m.available:
                    assert m.reason is None and isinstance(m.value, float), m
                else:
                    assert m.value is None and m.reason, m
                assert m.peer_median is not None or m.peer_reason, m
            frame = report.to_frame()
            assert frame["available"].sum() > len(frame) / 2
            json.dumps(report.to_dict(), allow_nan=False)
