"""Supply builders and the depletion entity, worked out by hand (cutoff 2024-06-30)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from tests.unit.features.helpers import PRODUCTS, row, run, table

C = "2024-06-30"


def _reading(device: str, t: str, metric: str, value: float) -> dict:
    return dict(device_id=device, observed_at=t, metric=metric, value=value)


CAL = date(2025, 6, 30)
"""The cutoff of the calendar tests (which need a year of readings before it)."""
BLACK = "supply_level_pct.black"


def at(days_before: int) -> str:
    """A reading time ``days_before`` days before ``CAL``."""
    return f"{CAL - timedelta(days=days_before)}T03:00:00Z"


def _d1_read_for_30_days() -> list[dict]:
    """D1: its first counter reading 30 days before ``CAL``, 10 pages a day since; its level
    fell 80 -> 65 -> 50 (15 points over 300 pages: 800 pages to the threshold of 10)."""
    return [
        _reading("D1", at(40), BLACK, 80.0),
        _reading("D1", at(30), BLACK, 65.0),
        _reading("D1", at(30), "page_count", 1000.0),
        _reading("D1", at(0), BLACK, 50.0),
        _reading("D1", at(0), "page_count", 1300.0),
    ]


@pytest.fixture(scope="module")
def supplies():
    k = "supply_level_pct.black"
    rows = []
    for t, level, pages in [
        ("2024-05-01T03:00:00Z", 40.0, 1000.0),
        ("2024-05-20T03:00:00Z", 12.0, 1500.0),
        ("2024-05-28T03:00:00Z", 100.0, 1700.0),  # cartridge changed: a jump up
        ("2024-06-10T03:00:00Z", 90.0, 2000.0),
        ("2024-06-20T03:00:00Z", 80.0, 2300.0),
        ("2024-06-30T03:00:00Z", 70.0, 2600.0),
        ("2024-07-10T03:00:00Z", 55.0, 2900.0),
    ]:
        rows += [_reading("D1", t, k, level), _reading("D1", t, "page_count", pages)]
    rows += [
        _reading("D1", "2024-05-25T12:00:00Z", k, 9.0),  # a supply alert (no page counter)
        _reading("D1", "2024-08-01T12:00:00Z", k, 9.0),  # 32 days after the cutoff
        _reading("D1", "2024-06-29T03:00:00Z", "supply_level_pct.cyan", 8.0),
        _reading("D5", "2024-01-01T03:00:00Z", k, 50.0),
    ]
    ib = table(
        "install_base",
        [
            dict(device_id="D1", account_id="A", sku="PR-1", installed_on="2020-06-30"),
            dict(
                device_id="D5",
                account_id="A",
                sku="PR-1",
                installed_on="2019-01-01",
                retired_on="2024-07-01",
            ),
        ],
    )
    return {
        "accounts": table("accounts", [dict(account_id="A")]),
        "install_base": ib,
        "telemetry": table("telemetry", rows),
    }


def test_entity_is_colours_whose_latest_level_is_above_the_threshold(supplies) -> None:
    spine = run("device_color_spine", supplies, [C])
    assert list(zip(spine.device_id, spine.color, strict=True)) == [
        ("D1", "black"),
        ("D5", "black"),
    ]
    assert set(spine.account_id) == {"A"}
    assert list(run("device_color_spine", supplies, [C], threshold_pct=60.0).device_id) == ["D1"]
    without_ib = {k: v for k, v in supplies.items() if k != "install_base"}
    spine = run("device_color_spine", without_ib, [C])
    assert len(spine) == 2 and spine.account_id.isna().all()


def test_supply_level_since_the_last_change(supplies) -> None:
    out = run("supply_level", supplies, [C, "2024-06-10"], windows=(7, 30))
    d1 = row(out, device_id="D1", color="black", cutoff=C)
    assert d1["supply_level_last"] == 70.0
    assert d1["days_since_supply_change"] == 33  # changed on 2024-05-28
    assert d1["pages_since_supply_change"] == 900.0  # counter 2600 now, 1700 at the change
    assert d1["supply_level_slope_30d"] == pytest.approx(-1.0)  # 90, 80, 70 ten days apart
    assert math.isnan(d1["supply_level_slope_7d"])  # one reading in the last 7 days
    assert d1["supply_days_to_empty_linear_30d"] == pytest.approx(70.0)
    # on 2024-06-10 the change lies inside the 30-day window: only readings since it count
    early = row(out, device_id="D1", color="black", cutoff="2024-06-10")
    assert early["supply_level_slope_30d"] == pytest.approx(-10 / 13)
    assert (early["days_since_supply_change"], early["pages_since_supply_change"]) == (13, 300.0)
    d5 = row(out, device_id="D5", color="black", cutoff=C)
    assert d5["supply_level_last"] == 50.0
    assert math.isnan(d5["days_since_supply_change"]) and math.isnan(d5["supply_level_slope_30d"])


def test_supply_yield_of_the_family(supplies) -> None:
    out = run("supply_yield", supplies, [C])
    assert row(out, device_id="D1", color="black")["supply_page_yield_mean"] == 4500.0
    assert set(out.color) == {"black"}


def test_supply_usage_per_page_and_days_to_the_threshold(supplies) -> None:
    out = run("supply_usage", supplies, [C, "2024-06-10"], windows=(30, 90), threshold_pct=10.0)
    d1 = row(out, device_id="D1", color="black", cutoff=C)
    # points since the change: 100 at counter 1700 (the change), ..., 70 at 2600
    assert d1["supply_pct_per_kpage_mean_180d"] == pytest.approx(1000 * 30 / 900)
    assert d1["pages_since_supply_level_fell"] == 0.0  # the latest reading is the last fall
    assert d1["supply_pages_to_threshold_est"] == pytest.approx(60 * 30)  # 60 points at 1/30
    # 900 pages over the 33 days the readings of the last 30 days span
    assert d1["supply_days_to_threshold_est_30d"] == pytest.approx(1800 / (900 / 33))
    assert d1["supply_days_to_threshold_est_90d_seasonal"] == pytest.approx(1800 / (900 / 33))
    early = row(out, device_id="D1", color="black", cutoff="2024-06-10")
    assert early["supply_pct_per_kpage_mean_180d"] == pytest.approx(1000 * 10 / 300)
    assert early["supply_days_to_threshold_est_30d"] == pytest.approx(2400 / 25)  # 1000 / 40
    assert "D5" not in set(out.device_id)  # one reading: nothing to measure


def test_supply_usage_with_coarse_levels_and_no_change() -> None:
    k = "supply_level_pct.black"
    rows = []
    for t, level, pages in [
        ("2024-03-01T03:00:00Z", 75.0, 5000.0),
        ("2024-04-01T03:00:00Z", 50.0, 6000.0),  # fell: the true level crossed 50 here
        ("2024-05-01T03:00:00Z", 50.0, 6500.0),
        ("2024-06-01T03:00:00Z", 25.0, 7000.0),  # crossed 25 here
        ("2024-06-25T03:00:00Z", 25.0, 7400.0),
    ]:
        rows += [_reading("D2", t, k, level), _reading("D2", t, "page_count", pages)]
    out = run("supply_usage", {"telemetry": table("telemetry", rows)}, [C], windows=(30, 90))
    d2 = row(out, device_id="D2", color="black")
    assert d2["supply_pct_per_kpage_mean_180d"] == pytest.approx(25.0)  # 25 points, 1000 pages
    assert d2["pages_since_supply_level_fell"] == 400.0
    # 25 - 0.025 x 400 = 15 left now, 5 above the threshold: 200 pages
    assert d2["supply_pages_to_threshold_est"] == pytest.approx(200.0)
    # 900 pages over the 55 days of the readings of the last 30 days
    assert d2["supply_days_to_threshold_est_30d"] == pytest.approx(200 / (900 / 55))
    # the long window's pace scaled by the fleet's short-over-long ratio: with one device in
    # the fleet, that is its short-window pace again
    assert d2["supply_days_to_threshold_est_90d_seasonal"] == pytest.approx(200 / (900 / 55))


def test_supply_usage_from_the_previous_cartridge() -> None:
    k = "supply_level_pct.black"
    rows = []
    for t, level, pages in [
        ("2024-02-20T03:00:00Z", 5.0, 9800.0),
        ("2024-03-01T03:00:00Z", 100.0, 10000.0),  # the previous change
        ("2024-04-01T03:00:00Z", 60.0, 11000.0),
        ("2024-04-20T03:00:00Z", 20.0, 11800.0),
        ("2024-04-27T03:00:00Z", 8.0, 12100.0),
        ("2024-05-01T03:00:00Z", 100.0, 12300.0),  # the current cartridge
        ("2024-06-01T03:00:00Z", 70.0, 13000.0),
        ("2024-06-25T03:00:00Z", 50.0, 13500.0),
    ]:
        rows += [_reading("D3", t, k, level), _reading("D3", t, "page_count", pages)]
    rows.append(_reading("D3", "2024-04-25T12:00:00Z", k, 10.0))  # the alert: no counter
    tel = {"telemetry": table("telemetry", rows)}
    out = run("supply_usage", tel, ["2024-04-22", "2024-05-15", C], windows=(30, 90))
    # the counter at the alert, 129 of the 168 hours from the reading before to the one after
    cycle = 11800.0 + 300.0 * 129 / 168 - 10000.0
    now = row(out, device_id="D3", color="black", cutoff=C)
    assert now["supply_pages_per_cartridge_prev"] == pytest.approx(cycle)
    assert now["supply_pages_to_threshold_by_prev"] == pytest.approx(cycle - 1200.0)
    # 1200 pages over the 55 days the readings of the last 30 days span; the long window's
    # pace scaled by the fleet (one device) is the same
    assert now["supply_days_to_threshold_by_prev_30d"] == pytest.approx((cycle - 1200) * 55 / 1200)
    assert now["supply_days_to_threshold_by_prev_90d_seasonal"] == pytest.approx(
        (cycle - 1200) * 55 / 1200
    )
    fresh = row(out, device_id="D3", color="black", cutoff="2024-05-15")
    assert fresh["supply_pages_to_threshold_by_prev"] == pytest.approx(cycle)  # nothing printed
    # before the current change, the cartridge in use has no complete predecessor in view
    before = row(out, device_id="D3", color="black", cutoff="2024-04-22")
    assert math.isnan(before["supply_pages_per_cartridge_prev"])
    assert math.isnan(before["supply_pages_to_threshold_by_prev"])


def _pooled_slope(carts: list[list[tuple[float, float]]]) -> float:
    """Minus the least-squares slope with one intercept per cartridge, by hand."""
    cxy = cxx = 0.0
    for pts in carts:
        mx = sum(x for x, _ in pts) / len(pts)
        my = sum(y for _, y in pts) / len(pts)
        cxy += sum((x - mx) * (y - my) for x, y in pts)
        cxx += sum((x - mx) ** 2 for x, _ in pts)
    return -cxy / cxx


def test_supply_usage_fits_the_use_per_page_through_every_cartridge() -> None:
    k = "supply_level_pct.black"
    rows = []
    for t, level, pages in [
        ("2024-02-20T03:00:00Z", 5.0, 9800.0),  # first reading: neither a fall nor a change
        ("2024-03-01T03:00:00Z", 100.0, 10000.0),  # a change
        ("2024-03-15T03:00:00Z", 100.0, 10400.0),  # no step: not a point
        ("2024-04-01T03:00:00Z", 60.0, 11000.0),
        ("2024-04-20T03:00:00Z", 20.0, 11800.0),
        ("2024-04-27T03:00:00Z", 8.0, 12100.0),
        ("2024-04-29T03:00:00Z", 0.0, 12200.0),  # empty: the level stops falling, left out
        ("2024-05-01T03:00:00Z", 100.0, 12300.0),  # the current cartridge
        ("2024-06-01T03:00:00Z", 70.0, 13000.0),
        ("2024-06-25T03:00:00Z", 50.0, 13500.0),
    ]:
        rows += [_reading("D3", t, k, level), _reading("D3", t, "page_count", pages)]
    rows.append(_reading("D3", "2024-04-25T12:00:00Z", k, 10.0))  # an alert: no counter
    # a colour with a change and no fall yet, and nothing before it: nothing to fit
    rows += [
        _reading("D4", "2024-06-01T03:00:00Z", k, 40.0),
        _reading("D4", "2024-06-20T03:00:00Z", k, 100.0),
        _reading("D4", "2024-06-20T03:00:00Z", "page_count", 500.0),
    ]
    tel = {"telemetry": table("telemetry", rows)}
    cut = ["2024-05-02", C]
    fit = run("supply_usage", tel, cut, windows=(30, 90), rate_by_fit=True)
    plain = run("supply_usage", tel, cut, windows=(30, 90))
    first = [(10000.0, 100.0), (11000.0, 60.0), (11800.0, 20.0), (12100.0, 8.0)]
    second = [(12300.0, 100.0), (13000.0, 70.0), (13500.0, 50.0)]
    # the day after the change, the new cartridge is read by the whole fall of the previous
    fresh = row(fit, device_id="D3", color="black", cutoff="2024-05-02")
    rho = _pooled_slope([first])
    assert fresh["supply_pct_per_kpage_fit_180d"] == pytest.approx(1000.0 * rho)
    assert fresh["supply_pages_to_threshold_est"] == pytest.approx(90.0 / rho)
    assert math.isnan(
        row(plain, device_id="D3", color="black", cutoff="2024-05-02")[
            "supply_pages_to_threshold_est"
        ]
    )
    # later, both cartridges, each with its own intercept
    now = row(fit, device_id="D3", color="black", cutoff=C)
    rho = _pooled_slope([first, second])
    assert now["supply_pct_per_kpage_fit_180d"] == pytest.approx(1000.0 * rho)
    assert now["supply_pages_to_threshold_est"] == pytest.approx(40.0 / rho)
    # the current cartridge's own reading is kept beside it
    assert now["supply_pct_per_kpage_mean_180d"] == pytest.approx(1000.0 * 50 / 1200)
    assert "supply_pct_per_kpage_fit_180d" not in plain.columns
    d4 = row(fit, device_id="D4", color="black", cutoff=C)
    assert math.isnan(d4["supply_pct_per_kpage_fit_180d"])
    assert math.isnan(d4["supply_pages_to_threshold_est"])


def test_supply_usage_days_to_the_threshold_by_last_years_calendar() -> None:
    # D9 (no toner readings) is the rest of the fleet: one counter reading a week from the
    # cutoff's date a year earlier, 70 pages a week in the first 4 weeks, then 140
    rows, counter = [], 0.0
    for w in range(53):
        counter += 0 if w == 0 else (70.0 if w <= 4 else 140.0)
        rows.append(_reading("D9", at(365 - 7 * w), "page_count", counter))
    # D1: its first counter reading 30 days ago, 10 pages a day since; the level fell 65 -> 50
    rows += _d1_read_for_30_days()
    tel = {"telemetry": table("telemetry", rows)}
    out = run("supply_usage", tel, [str(CAL)], windows=(30, 90), calendar=True)
    d1 = row(out, device_id="D1", color="black")
    # 15 points over 300 pages: 40 points above the threshold are 800 pages
    assert d1["supply_pages_to_threshold_est"] == pytest.approx(800.0)
    # the fleet over the last 90 days: D1's 300 pages in 30 days, D9's 13 weeks of 140 pages
    fleet = (300.0 + 13 * 140.0) / (30 + 13 * 7)
    assert d1["telemetry_pages_vs_fleet_90d"] == pytest.approx(10.0 / fleet)
    # 800 pages at that share are 1401.65 pages of the fleet's device-day pace; a year ago
    # weeks 1-4 made 70 each, weeks 5-12 140 each: 1400 by the end of week 12, and week 13's
    # 140 add the last 1.65 pages in its first 0.08 day
    need = 800.0 / (10.0 / fleet)
    assert d1["supply_days_to_threshold_est_calendar"] == pytest.approx(
        84.0 + 7.0 * (need - 1400.0) / 140.0
    )
    # without calendar=True the columns are not there
    plain = run("supply_usage", tel, [str(CAL)], windows=(30, 90))
    assert "supply_days_to_threshold_est_calendar" not in plain.columns


def test_supply_usage_calendar_caps_at_a_year_and_gives_zero_when_at_the_threshold() -> None:
    rows = []
    for dev, levels in (("D1", (90.0, 89.0)), ("D2", (80.0, 10.0))):
        rows += [
            _reading(dev, at(60), BLACK, 100.0),
            _reading(dev, at(30), BLACK, levels[0]),
            _reading(dev, at(30), "page_count", 1000.0),
            _reading(dev, at(0), BLACK, levels[1]),
            _reading(dev, at(0), "page_count", 1030.0),
        ]
    out = run("supply_usage", {"telemetry": table("telemetry", rows)}, [str(CAL)], calendar=True)
    # D1: 1 point in 30 pages, 79 points to go = 2370 pages at 1 page a day (the fleet's pace
    # too: no readings a year ago) is more than a year
    assert row(out, device_id="D1")["supply_days_to_threshold_est_calendar"] == 365.0
    assert row(out, device_id="D2")["supply_days_to_threshold_est_calendar"] == 0.0


def _two_cartridges() -> dict:
    """D3's toner and counter: a complete previous cartridge, then the current one (changed
    2024-05-01 at counter 12300)."""
    k = "supply_level_pct.black"
    rows = []
    for t, level, pages in [
        ("2024-02-20T03:00:00Z", 5.0, 9800.0),
        ("2024-03-01T03:00:00Z", 100.0, 10000.0),  # the previous change
        ("2024-04-01T03:00:00Z", 60.0, 11000.0),
        ("2024-04-20T03:00:00Z", 20.0, 11800.0),
        ("2024-04-27T03:00:00Z", 8.0, 12100.0),
        ("2024-05-01T03:00:00Z", 100.0, 12300.0),  # the current cartridge
        ("2024-06-01T03:00:00Z", 70.0, 13000.0),
        ("2024-06-25T03:00:00Z", 50.0, 13500.0),
    ]:
        rows += [_reading("D3", t, k, level), _reading("D3", t, "page_count", pages)]
    rows.append(_reading("D3", "2024-04-25T12:00:00Z", k, 10.0))  # the alert: no counter
    return {"telemetry": table("telemetry", rows)}


def test_supply_usage_at_the_cutoff_and_by_the_previous_cartridge_before_a_fall() -> None:
    tel = _two_cartridges()
    cutoffs = ["2024-05-15", C]
    out = run(
        "supply_usage",
        tel,
        cutoffs,
        windows=(30, 90),
        calendar=True,
        at_cutoff=True,
        prev_fallback=True,
    )
    cycle = 11800.0 + 300.0 * 129 / 168 - 10000.0  # the previous cartridge's pages
    now = row(out, device_id="D3", color="black", cutoff=C)
    # the latest counter reading at 03:00 on 2024-06-25: 5 days 21 hours before the end of
    # the cutoff day, at the long window's pace (one device: the short window's, 1200 pages
    # in 55 days) 128.2 pages
    assert now["days_since_page_reading"] == pytest.approx(5.875)
    gap = 5.875 * 1200 / 55
    # 50 points used over 1200 pages; 40 points above the threshold are 960 pages at the reading
    assert now["supply_pages_to_threshold_est"] == pytest.approx(960.0 - gap)
    assert now["supply_days_to_threshold_est_30d"] == pytest.approx((960.0 - gap) / (1200 / 55))
    assert now["supply_pages_to_threshold_by_prev"] == pytest.approx(cycle - 1200.0 - gap)
    # no readings a year earlier: the calendar runs at the fleet's (D3's) pace over the long
    # window, 2500 pages in the 85 days its readings since 2024-04-01 span
    assert now["supply_days_to_threshold_est_calendar"] == pytest.approx((960.0 - gap) * 85 / 2500)
    fresh = row(out, device_id="D3", color="black", cutoff="2024-05-15")
    # the current cartridge has not fallen: no use per page of its own
    assert math.isnan(fresh["supply_pages_to_threshold_est"])
    # the last counter reading 14 days 21 hours before the end of the cutoff day; 1300 pages
    # in the 30 days the short window's readings span
    assert fresh["days_since_page_reading"] == pytest.approx(14.875)
    by_prev = cycle - 14.875 * 1300 / 30
    assert fresh["supply_pages_to_threshold_by_prev"] == pytest.approx(by_prev)
    # so the calendar goes by the previous cartridge: 2500 pages in 71 days over the long window
    assert fresh["supply_days_to_threshold_est_calendar"] == pytest.approx(by_prev * 71 / 2500)
    plain = run("supply_usage", tel, cutoffs, windows=(30, 90), calendar=True)
    assert "days_since_page_reading" not in plain.columns
    assert math.isnan(row(plain, cutoff="2024-05-15")["supply_days_to_threshold_est_calendar"])
    assert row(plain, cutoff=C)["supply_pages_to_threshold_est"] == pytest.approx(960.0)


def test_supply_usage_share_of_the_fleet_over_a_year() -> None:
    tel = _two_cartridges()
    # D4 (no toner readings): 4250 pages over the 425 days to 2024-06-29, dated that day
    d4 = [
        _reading("D4", "2023-05-01T03:00:00Z", "page_count", 0.0),
        _reading("D4", "2024-06-29T03:00:00Z", "page_count", 4250.0),
    ]
    tel = {"telemetry": pd.concat([tel["telemetry"], table("telemetry", d4)])}
    out = run("supply_usage", tel, [C], windows=(30, 90), calendar=True, share_days=365)
    d3 = row(out, device_id="D3", color="black")
    # D3: every increment since 2024-02-20 (its first reading), 3700 pages over 126 days;
    # the fleet: D3's and D4's, 7950 pages over 551 device-days
    assert d3["telemetry_pages_vs_fleet_365d"] == pytest.approx((3700 / 126) / (7950 / 551))
    assert "telemetry_pages_vs_fleet_90d" not in out.columns


def test_supply_usage_share_of_the_fleet_over_two_years_by_the_days_read() -> None:
    tel = _two_cartridges()
    # D4: toner read twice (one fall: no use per page, but a row); its counter from 2022,
    # 20 pages a day to 2023-01-01 (245 days, more than a year before the cutoff), then 10
    d4 = [
        _reading("D4", "2022-05-01T03:00:00Z", "page_count", 0.0),
        _reading("D4", "2023-01-01T03:00:00Z", "page_count", 4900.0),
        _reading("D4", "2024-06-01T03:00:00Z", "page_count", 10070.0),  # 517 days later
        _reading("D4", "2024-06-29T03:00:00Z", "page_count", 10350.0),  # 28 days later
        _reading("D4", "2024-06-01T03:00:00Z", "supply_level_pct.black", 80.0),
        _reading("D4", "2024-06-29T03:00:00Z", "supply_level_pct.black", 70.0),
    ]
    tel = {"telemetry": pd.concat([tel["telemetry"], table("telemetry", d4)])}
    out = run("supply_usage", tel, [C], windows=(30, 90), calendar=True, share_days=730)
    # over two years: every increment of both (D4's first one too, from its reading of
    # 2022-05-01 before the window); D3's 3700 pages over 126 days (see above)
    fleet = (10350 + 3700) / (790 + 126)
    d4_share = row(out, device_id="D4", color="black")["telemetry_pages_vs_fleet_730d"]
    assert d4_share == pytest.approx((10350 / 790) / fleet)
    d3_share = row(out, device_id="D3", color="black")["telemetry_pages_vs_fleet_730d"]
    assert d3_share == pytest.approx((3700 / 126) / fleet)
    out = run(
        "supply_usage",
        tel,
        [C],
        windows=(30, 90),
        calendar=True,
        share_days=730,
        share_by_day=True,
    )
    # by the days read: each reading's days at the fleet's pages a device-day over the 7 days
    # up to its day. D3 alone on its days but 2024-05-01 (with its 2024-04-27 reading: 500
    # pages over 11 days) and 2024-06-01 (with D4's: 5870 over 548); D4 alone on 2023-01-01
    # (20 a day), with D3's 2024-06-25 reading on 2024-06-29 (780 over 52)
    on_0601 = 31 * 5870 / 548
    d3_fleet = 200 + 1000 + 800 + 300 + 4 * 500 / 11 + on_0601 + 500
    d3 = row(out, device_id="D3", color="black")
    assert d3["telemetry_pages_vs_fleet_730d"] == pytest.approx(3700 / d3_fleet)
    d4_fleet = 245 * 20 + 517 * 5870 / 548 + 28 * 780 / 52
    d4 = row(out, device_id="D4", color="black")
    assert d4["telemetry_pages_vs_fleet_730d"] == pytest.approx(10350 / d4_fleet)


def test_supply_usage_measures_the_share_and_the_calendar_on_a_fixed_panel_of_the_fleet() -> None:
    # counters read weekly, on the cutoff's weekday: P1 from 735 days back at 10 pages a day;
    # P2 from 714 days back at 30; R (retired 203 days back) at 50; N (new, 98 days back) at 100
    rows = []
    for device, first, last, per_week in [
        ("P1", 105, 0, 70.0),
        ("P2", 102, 0, 210.0),
        ("R", 105, 29, 350.0),
        ("N", 14, 0, 700.0),
    ]:
        for i, w in enumerate(range(first, last - 1, -1)):
            rows.append(_reading(device, at(7 * w), "page_count", i * per_week))
    # D1: read for 30 days, 10 pages a day; 15 points over 300 pages, 800 pages to go
    rows += _d1_read_for_30_days()
    tel = {"telemetry": table("telemetry", rows)}
    args = dict(windows=(30, 90), calendar=True, share_days=730, share_by_day=True)
    out = run("supply_usage", tel, [str(CAL)], fleet_panel=True, **args)
    d1 = row(out, device_id="D1", color="black")
    assert d1["supply_pages_to_threshold_est"] == pytest.approx(800.0)
    # the panel: P1 and P2, whose first increments (728 and 707 days back) are within 28 days
    # of the fleet's first and whose last readings are within 28 days of the cutoff; not R
    # (gone), N or D1 (new). On the cutoff its pace is (70 + 210) / 14 = 20 a device-day
    assert d1["telemetry_pages_vs_fleet_730d"] == pytest.approx(300.0 / (30 * 20.0))
    # 800 pages at half the panel's pace are 1600 of its pages; a year earlier it printed 140
    # a week: 11 weeks and 60/140 of the 12th
    assert d1["supply_days_to_threshold_est_calendar"] == pytest.approx(77.0 + 3.0)
    # the whole fleet's pace moves with its mix: on the cutoff with N's and D1's own reading,
    # a year earlier with R's (210 a week up to R's last reading, in week 24), so D1 would
    # print its 800 pages in 67 days, not at its own 10 pages a day
    whole = row(run("supply_usage", tel, [str(CAL)], **args), device_id="D1", color="black")
    share = 300.0 / (30 * (70.0 + 210.0 + 700.0 + 300.0) / (7 + 7 + 7 + 30))
    assert whole["telemetry_pages_vs_fleet_730d"] == pytest.approx(share)
    assert whole["supply_days_to_threshold_est_calendar"] == pytest.approx(7 * 800 / share / 210)
    with pytest.raises(ValueError, match="share_days"):
        run("supply_usage", tel, [str(CAL)], windows=(30, 90), calendar=True, fleet_panel=True)
    with pytest.raises(ValueError, match="share_by_day"):
        run("supply_usage", tel, [str(CAL)], **{**args, "share_by_day": False}, fleet_panel=True)


def test_supply_usage_counts_a_colour_first_read_full_as_a_change() -> None:
    k = "supply_level_pct.black"
    rows = []
    # D6: new, first read full; its level fell once since (one point of its own)
    for t, level, pages in [
        ("2024-04-01T03:00:00Z", 100.0, 1000.0),
        ("2024-05-01T03:00:00Z", 60.0, 3000.0),
        ("2024-06-29T03:00:00Z", 60.0, 3500.0),
    ]:
        rows += [_reading("D6", t, k, level), _reading("D6", t, "page_count", pages)]
    # D7: its first cartridge (read full from the start) reached the threshold, then changed
    for t, level, pages in [
        ("2024-01-10T03:00:00Z", 100.0, 0.0),
        ("2024-02-10T03:00:00Z", 50.0, 5000.0),
        ("2024-02-28T03:00:00Z", 20.0, 8500.0),
        ("2024-03-03T03:00:00Z", 10.0, 9000.0),
        ("2024-03-05T03:00:00Z", 100.0, 9200.0),
        ("2024-06-29T03:00:00Z", 100.0, 9600.0),
    ]:
        rows += [_reading("D7", t, k, level), _reading("D7", t, "page_count", pages)]
    rows.append(_reading("D7", "2024-03-01T12:00:00Z", k, 10.0))  # the alert
    # D8: first read at 90: not a new cartridge
    for t, level, pages in [
        ("2024-04-01T03:00:00Z", 90.0, 1000.0),
        ("2024-05-01T03:00:00Z", 60.0, 3000.0),
    ]:
        rows += [_reading("D8", t, k, level), _reading("D8", t, "page_count", pages)]
    tel = {"telemetry": table("telemetry", rows)}
    plain = run("supply_usage", tel, [C], windows=(30, 90))
    out = run("supply_usage", tel, [C], windows=(30, 90), first_full_as_change=True)
    d6 = row(out, device_id="D6")
    # from the full first reading: 40 points over 2000 pages; 500 pages since the fall
    assert d6["supply_pct_per_kpage_mean_180d"] == pytest.approx(20.0)
    assert d6["supply_pages_to_threshold_est"] == pytest.approx((60.0 - 0.02 * 500 - 10.0) / 0.02)
    assert math.isnan(row(plain, device_id="D6")["supply_pct_per_kpage_mean_180d"])
    # D7's first cartridge, from 0 pages to the alert (57 of the 96 hours between the counter
    # readings around it, 29 February between): the previous cartridge of the one changed
    # 2024-03-05
    d7 = row(out, device_id="D7")
    cycle = 8500.0 + 500.0 * 57 / 96
    assert d7["supply_pages_per_cartridge_prev"] == pytest.approx(cycle)
    assert d7["supply_pages_to_threshold_by_prev"] == pytest.approx(cycle - 400.0)
    assert math.isnan(row(plain, device_id="D7")["supply_pages_per_cartridge_prev"])
    d8 = row(out, device_id="D8")
    assert math.isnan(d8["supply_pct_per_kpage_mean_180d"])
    assert (
        d8["pages_since_supply_level_fell"]
        == row(plain, device_id="D8")["pages_since_supply_level_fell"]
    )


def test_supply_usage_pools_the_previous_cartridges_use_per_page() -> None:
    tel = _two_cartridges()
    cutoffs = ["2024-05-15", C]
    out = run("supply_usage", tel, cutoffs, windows=(30, 90), prev_weight_pct=15.0)
    cycle = 11800.0 + 300.0 * 129 / 168 - 10000.0
    # the previous cartridge went from full to the threshold, 90 points, in `cycle` pages: it
    # counts as 15 of those points next to this one's 50 points over 1200 pages
    rate = (50.0 + 15.0) / (1200.0 + 15.0 * cycle / 90.0)
    now = row(out, device_id="D3", color="black", cutoff=C)
    assert now["supply_pages_to_threshold_est"] == pytest.approx(40.0 / rate)
    assert now["supply_pct_per_kpage_mean_180d"] == pytest.approx(1000 * 50 / 1200)  # its own
    # before the current cartridge falls, the previous one's use per page alone: 90 points
    # to go from the change (read at 100) are its whole cycle
    fresh = row(out, device_id="D3", color="black", cutoff="2024-05-15")
    assert fresh["supply_pages_to_threshold_est"] == pytest.approx(cycle)
    assert math.isnan(fresh["supply_pct_per_kpage_mean_180d"])


def test_supply_usage_starts_a_colour_without_figures_of_its_own_from_its_account() -> None:
    # counters read weekly on the cutoff's weekday from 105 weeks back: P1 (account B, family
    # Laser 1) 30 pages a day, P2 (account A, Laser 2) 10: the panel prints 20 a device-day
    rows = []
    for device, per_week in [("P1", 210.0), ("P2", 70.0)]:
        for i, w in enumerate(range(105, -1, -1)):
            rows.append(_reading(device, at(7 * w), "page_count", i * per_week))
    # D1 (A, Laser 1): 10 pages a day (a share of 0.5), 15 points over 300 pages (0.05 a page)
    rows += _d1_read_for_30_days()
    # N2 (A, Laser 2): installed two days ago, its cartridge read full, its counter once
    rows += [_reading("N2", at(2), BLACK, 100.0), _reading("N2", at(2), "page_count", 0.0)]
    ib = table(
        "install_base",
        [
            dict(device_id=d, account_id=a, sku=sku, installed_on="2020-01-01")
            for d, a, sku in [("P1", "B", "PR-1"), ("P2", "A", "PR-2"), ("D1", "A", "PR-1")]
        ]
        + [dict(device_id="N2", account_id="A", sku="PR-2", installed_on=str(CAL))],
    )
    products = table(
        "products",
        [
            *PRODUCTS,
            dict(sku="PR-2", category="printer", family="Laser 2"),
            dict(
                sku="TN-2-K", category="supplies", family="Laser 2", page_yield=1800, color="black"
            ),
        ],
    )
    tel = {"telemetry": table("telemetry", rows), "install_base": ib, "products": products}
    args = dict(
        windows=(30, 90),
        calendar=True,
        share_days=730,
        share_by_day=True,
        fleet_panel=True,
        rate_by_fit=True,
        first_full_as_change=True,
    )
    out = run("supply_usage", tel, [str(CAL)], account_prior=True, **args)
    d1, n2 = (row(out, device_id=d, color="black") for d in ("D1", "N2"))
    # the account's coverage: D1's 0.05 a page on cartridges rated 4500 pages (the mean of
    # Laser 1's 3000 and 6000), 225 pages' worth; on N2's 1800-page cartridges, 0.125 a page
    assert d1["supply_pct_per_kpage_account"] == pytest.approx(50.0)
    assert n2["supply_pct_per_kpage_account"] == pytest.approx(125.0)
    assert math.isnan(n2["supply_pct_per_kpage_fit_180d"])
    assert n2["supply_pages_to_threshold_est"] == pytest.approx(90.0 / 0.125)
    # shares: P1 1.5, P2 0.5, D1 0.5. Laser 1's devices 0.5 and 1.5 (geometric mean sqrt .75),
    # Laser 2's 0.5; account A's over their families': D1 0.5 / sqrt .75, P2 1
    assert math.isnan(n2["telemetry_pages_vs_fleet_730d"])
    a_intensity = math.sqrt(0.5 / math.sqrt(0.75))
    assert n2["telemetry_pages_vs_fleet_account"] == pytest.approx(0.5 * a_intensity)
    assert d1["telemetry_pages_vs_fleet_account"] == pytest.approx(math.sqrt(0.75) * a_intensity)
    # 720 pages at that share of the panel's 140 pages a week a year earlier
    days = 7 * 720 / (0.5 * a_intensity) / 140
    assert n2["supply_days_to_threshold_est_calendar"] == pytest.approx(days)
    # D1's own figures are its own
    assert d1["telemetry_pages_vs_fleet_730d"] == pytest.approx(0.5)
    assert d1["supply_pages_to_threshold_est"] == pytest.approx(800.0)
    assert d1["supply_days_to_threshold_est_calendar"] == pytest.approx(7 * 1600 / 140)
    # without the prior N2 has no pages to go and no days; without an install base no prior
    plain = row(run("supply_usage", tel, [str(CAL)], **args), device_id="N2", color="black")
    assert math.isnan(plain["supply_pages_to_threshold_est"])
    assert math.isnan(plain["supply_days_to_threshold_est_calendar"])
    bare = {"telemetry": tel["telemetry"]}
    alone = row(run("supply_usage", bare, [str(CAL)], account_prior=True, **args), device_id="N2")
    assert math.isnan(alone["supply_pct_per_kpage_account"])
    assert math.isnan(alone["supply_days_to_threshold_est_calendar"])
    with pytest.raises(ValueError, match="account_prior needs rate_by_fit and fleet_panel"):
        run("supply_usage", tel, [str(CAL)], account_prior=True, **{**args, "rate_by_fit": False})


# -- the calendar day by day (weekday_profile) -------------------------------------------------

PATTERN = (10.0, 10.0, 10.0, 10.0, 10.0, 2.0, 2.0)
"""Pages a day, Monday first: an office printer."""


def _printed_before(first: date, day: date, scale: float) -> float:
    """Pages printed from ``first`` to the day before ``day`` at ``scale`` x ``PATTERN``."""
    return sum(
        scale * PATTERN[(first + timedelta(days=i)).weekday()] for i in range((day - first).days)
    )


def _office_printer(device: str, every: int, scale: float, days: int, hour: int = 3) -> list:
    """Counter readings every ``every`` days at ``hour``:00 up to ``CAL``, from ``days`` before
    it, of a printer printing ``scale`` x ``PATTERN`` (a reading counts the days before its own
    at 03:00, and its own day too at 15:00)."""
    first = CAL - timedelta(days=days)
    out = []
    for back in range(days, -1, -every):
        day = CAL - timedelta(days=back)
        counted = day + timedelta(days=1) if hour >= 12 else day
        out.append((device, f"{day}T{hour:02d}:00:00Z", _printed_before(first, counted, scale)))
    return out


def _weekday_profile_of(readings: list) -> list[float]:
    """``_weekday_profile`` at ``CAL`` over these counter readings."""
    from amplify_ml.features.builders.supplies import _weekday_profile
    from amplify_ml.features.cutoffs import epoch_day
    from amplify_ml.features.engine import DuckDBEngine
    from amplify_ml.features.graph import drop_day_grid, register_cutoffs

    ph = pd.DataFrame(readings, columns=["device_id", "observed_at", "value"])
    ph["partner_id"] = "P001"
    ph["observed_at"] = pd.to_datetime(ph["observed_at"], utc=True)
    ph["day"] = (ph["observed_at"].dt.tz_localize(None) - pd.Timestamp("1970-01-01")).dt.days
    ph = ph.sort_values(["device_id", "observed_at"])
    g = ph.groupby("device_id")
    ph["delta"] = ph["value"] - g["value"].shift()
    ph["gap"] = (ph["day"] - g["day"].shift()).astype("float64")
    engine = DuckDBEngine(memory_limit="1GB", threads=1)
    cut = register_cutoffs(engine, "cutoffs", [CAL])
    try:
        prof = _weekday_profile(engine.register_frame("ph", ph), cut, (epoch_day(CAL),))
        out = engine.to_arrow(prof).to_pandas().sort_values("p_wd")
    finally:
        drop_day_grid(cut)
        engine.close()
    assert list(out["p_wd"]) == list(range(7))
    return list(out["beta"])


def test_the_weekday_profile_is_read_from_increments_over_different_numbers_of_days() -> None:
    # the weights average 1: 54 pages a week, 7 x 10 / 54 on a weekday, 7 x 2 / 54 at weekends
    expected = [7.0 * p / sum(PATTERN) for p in PATTERN]
    # read every 2 and every 3 days at night (each reading counts the days before it), one
    # printing three times as much as the other: over 3 days to a day less over 2 days to the
    # day before is that day's pages, each device's over its own mean day's (both count whole
    # weeks in the year to the cutoff: A 52, B 51 from its first reading)
    readings = _office_printer("A", 2, 1.0, 400) + _office_printer("B", 3, 3.0, 357)
    assert _weekday_profile_of(readings) == pytest.approx(expected)
    # read every day in the afternoon: each reading counts its own day
    daily = _office_printer("C", 1, 2.0, 98, hour=15)
    assert _weekday_profile_of(daily) == pytest.approx(expected)
    # read every 2 days only: the days cannot be told apart, so every day weighs the same
    assert _weekday_profile_of(_office_printer("A", 2, 1.0, 400)) == [1.0] * 7


def test_supply_usage_spreads_the_calendar_over_the_days_of_the_week() -> None:
    # the panel: P1 and P2 read every night for two years, printing 1 and 3 x PATTERN; D1 (not
    # in it) read for 30 days, 10 pages a day, 800 pages to go at its latest reading
    rows = [
        _reading(d, t, "page_count", v)
        for d, t, v in _office_printer("P1", 1, 1.0, 740) + _office_printer("P2", 1, 3.0, 740)
    ]
    rows += _d1_read_for_30_days()
    tel = {"telemetry": table("telemetry", rows)}
    args = dict(
        windows=(28, 84), calendar=True, share_days=730, share_by_day=True, fleet_panel=True
    )
    flat = row(run("supply_usage", tel, [str(CAL)], **args), device_id="D1")
    out = row(
        run("supply_usage", tel, [str(CAL)], **args, weekday_profile=True, at_cutoff=True),
        device_id="D1",
    )
    # any 7 nights' readings count one whole week: the panel prints (54 + 162) / 14 a
    # device-day, D1 300 over 30 days of it
    pace = (54.0 + 162.0) / 14.0
    share = 300.0 / (30.0 * pace)
    assert out["telemetry_pages_vs_fleet_730d"] == pytest.approx(share)
    # D1's latest reading (03:00 on the cutoff day, a Monday) has not counted the cutoff day:
    # one Monday at D1's pace over the long window (10 a day) times the season (the fleet's
    # pace over the 28 days over the 84: P1 and P2 print 4 and 12 weeks; D1 300 over 30 days)
    season = ((4 * 54.0 + 4 * 162.0 + 300.0) / 86.0) / ((12 * 54.0 + 12 * 162.0 + 300.0) / 198.0)
    monday = 7.0 * 10.0 / 54.0
    to_go = 800.0 - season * 10.0 * monday
    assert out["supply_pages_to_threshold_est"] == pytest.approx(to_go)
    assert flat["supply_pages_to_threshold_est"] == pytest.approx(800.0)
    # a year earlier the panel printed the same each week, 2 x PATTERN a device-day: D1's pages
    # to go are to_go / share of them, printed from Tuesday 1 July; the day they run out counts
    # whole, and the estimate is centred on it (its day less a half, plus the part of its pages)
    need, day = to_go / share, 0
    while need > 2.0 * PATTERN[(CAL + timedelta(days=day + 1)).weekday()]:
        need -= 2.0 * PATTERN[(CAL + timedelta(days=day + 1)).weekday()]
        day += 1
    last = 2.0 * PATTERN[(CAL + timedelta(days=day + 1)).weekday()]
    assert out["supply_days_to_threshold_est_calendar"] == pytest.approx(day + need / last + 0.5)
    # each day a reading counts at its day of the week's weight: D1's reading at 03:00 on the
    # cutoff day counts the 30 days up to Sunday, 4 weeks and a Saturday and a Sunday
    weighed = row(
        run("supply_usage", tel, [str(CAL)], **args, weekday_profile=True, share_by_weekday=True),
        device_id="D1",
    )
    weekend = 7.0 * 2.0 / 54.0
    assert weighed["telemetry_pages_vs_fleet_730d"] == pytest.approx(
        300.0 / ((28.0 + 2.0 * weekend) * pace)
    )
    # evenly through a week: 800 / share pages at 108 a week
    weeks = 800.0 / share / 108.0
    assert flat["supply_days_to_threshold_est_calendar"] == pytest.approx(7.0 * weeks)
    with pytest.raises(ValueError, match="weekday_profile needs fleet_panel"):
        run(
            "supply_usage",
            tel,
            [str(CAL)],
            **{**args, "fleet_panel": False},
            weekday_profile=True,
        )
    with pytest.raises(ValueError, match="share_by_weekday needs weekday_profile"):
        run("supply_usage", tel, [str(CAL)], **args, share_by_weekday=True)


def test_supply_usage_takes_the_level_at_a_step_reading_below_what_it_shows() -> None:
    # (days before the cutoff, level, page counter): a cartridge change 50 days back, then
    # steps. D: a gauge in steps of 10 read every 100-400 pages; E: a gauge in whole percent
    # falling 3 points between readings (1 once)
    series = {
        "D": [
            (60, 25, 0),
            (50, 100, 500),
            (40, 90, 900),
            (30, 90, 1100),
            (20, 80, 1300),
            (10, 80, 1500),
            (0, 80, 1600),
        ],
        "E": [
            (60, 30, 0),
            (50, 100, 500),
            (40, 97, 560),
            (30, 96, 580),
            (20, 93, 640),
            (0, 93, 650),
        ],
    }
    rows = []
    for device, readings in series.items():
        for back, level, pages in readings:
            rows.append(_reading(device, at(back), BLACK, float(level)))
            rows.append(_reading(device, at(back), "page_count", float(pages)))
    tel = {"telemetry": table("telemetry", rows)}
    plain = run("supply_usage", tel, [str(CAL)], windows=(30, 90))
    mid = run("supply_usage", tel, [str(CAL)], windows=(30, 90), step_midpoint=True)
    # D: 20 points over 800 pages since the change (0.025 a page); 300 pages since it read 80.
    # That reading came 200 pages after the one before (which read 90): the level crossed 80
    # in those 200 pages, so it is up to 5 points below 80 (within one step of 10): 77.5
    d_plain, d_mid = row(plain, device_id="D"), row(mid, device_id="D")
    assert d_plain["supply_pages_to_threshold_est"] == pytest.approx((80 - 7.5 - 10) / 0.025)
    assert d_mid["supply_pages_to_threshold_est"] == pytest.approx((77.5 - 7.5 - 10) / 0.025)
    # E: 7 points over 140 pages (0.05 a page); 3 points fell between its last two step
    # readings, but a whole-percent gauge shows the level within one point: 92.5
    e_plain, e_mid = row(plain, device_id="E"), row(mid, device_id="E")
    assert e_plain["supply_pages_to_threshold_est"] == pytest.approx((93 - 0.5 - 10) / 0.05)
    assert e_mid["supply_pages_to_threshold_est"] == pytest.approx((92.5 - 0.5 - 10) / 0.05)
    # the use per page itself is unchanged
    for a, b in [(d_plain, d_mid), (e_plain, e_mid)]:
        assert a["supply_pct_per_kpage_mean_180d"] == b["supply_pct_per_kpage_mean_180d"]
