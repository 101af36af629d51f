"""Account-side builders on a few rows, expected values worked out by hand.

The cutoff is mostly 2024-06-30 (a Sunday). A window of N days holds the days
(cutoff - N, cutoff]: the 30-day window starts on 2024-06-01.
"""

from __future__ import annotations

import math

import pytest

from tests.unit.features.helpers import PRODUCTS, row, run, table

C = "2024-06-30"


@pytest.fixture(scope="module")
def sales():
    return {
        "accounts": table(
            "accounts",
            [
                dict(account_id="A"),
                dict(account_id="B"),
                dict(account_id="C", first_seen="2024-07-01"),
            ],
        ),
        "sell_through": table(
            "sell_through",
            [
                # on the cutoff day: inside every window
                dict(account_id="A", sku="PR-1", sold_on=C, quantity=1, net_amount=300.0),
                # 29 days before: inside the 30-day window
                dict(
                    account_id="A",
                    sku="TN-1-K",
                    sold_on="2024-06-01",
                    quantity=2,
                    net_amount=160.0,
                    channel="online",
                ),
                # 30 days before: outside the 30-day window, inside the 90-day one
                dict(
                    account_id="A",
                    sku="TN-1-K-XL",
                    sold_on="2024-05-31",
                    quantity=1,
                    net_amount=120.0,
                    channel="online",
                ),
                # a return
                dict(
                    account_id="A",
                    sku="TN-1-K",
                    sold_on="2024-04-15",
                    quantity=-1,
                    net_amount=-80.0,
                    channel="marketplace",
                ),
                # after the cutoff: never seen at 2024-06-30
                dict(
                    account_id="A", sku="PR-1", sold_on="2024-07-01", quantity=5, net_amount=1500.0
                ),
                # exactly 365 days before: outside; one day later: inside
                dict(
                    account_id="A", sku="PR-1", sold_on="2023-07-01", quantity=1, net_amount=280.0
                ),
                dict(
                    account_id="A", sku="PR-1", sold_on="2023-07-02", quantity=1, net_amount=290.0
                ),
            ],
        ),
    }


def test_category_window_sums(sales) -> None:
    out = run("st_cat_window_sums", sales, [C, "2024-07-01"], windows=(30, 90, 365))
    sup = row(out, account_id="A", category="supplies", cutoff=C)
    assert (sup["st_cat_revenue_sum_30d"], sup["st_cat_units_sum_30d"]) == (160.0, 2)
    assert (sup["st_cat_lines_count_30d"], sup["st_cat_skus_distinct_30d"]) == (1, 1)
    assert sup["st_cat_returns_count_30d"] == 0
    assert (sup["st_cat_revenue_sum_90d"], sup["st_cat_units_sum_90d"]) == (200.0, 2)
    assert (sup["st_cat_lines_count_90d"], sup["st_cat_skus_distinct_90d"]) == (3, 2)
    assert sup["st_cat_returns_count_90d"] == 1
    pr = row(out, account_id="A", category="printer", cutoff=C)
    assert (pr["st_cat_revenue_sum_30d"], pr["st_cat_revenue_sum_365d"]) == (300.0, 590.0)
    assert (pr["st_cat_units_sum_365d"], pr["st_cat_lines_count_365d"]) == (2, 2)
    later = row(out, account_id="A", category="printer", cutoff="2024-07-01")
    assert (later["st_cat_revenue_sum_30d"], later["st_cat_units_sum_30d"]) == (1800.0, 6)
    assert set(out["account_id"]) == {"A"}  # B bought nothing: no row (zero-filled later)


@pytest.mark.parametrize("name", ["st_cat_window_sums", "st_window_sums"])
def test_window_sums_without_money_leave_out_the_revenue_only(sales, name: str) -> None:
    with_money = run(name, sales, [C], windows=(30, 365))
    without = run(name, sales, [C], windows=(30, 365), money=False)
    revenue = [c for c in with_money.columns if "_revenue_" in c]
    assert len(revenue) == 2
    assert list(without.columns) == [c for c in with_money.columns if c not in revenue]
    assert without.equals(with_money[without.columns])


def test_account_window_sums_and_categories(sales) -> None:
    out = run("st_window_sums", sales, [C], windows=(30, 365))
    a = row(out, account_id="A", cutoff=C)
    assert (a["st_revenue_sum_30d"], a["st_units_sum_30d"], a["st_lines_count_30d"]) == (
        460.0,
        3,
        2,
    )
    assert (a["st_revenue_sum_365d"], a["st_units_sum_365d"], a["st_lines_count_365d"]) == (
        790.0,
        4,
        5,
    )
    assert (a["st_skus_distinct_365d"], a["st_returns_count_365d"]) == (3, 1)
    assert a["st_categories_distinct_365d"] == 2


def test_days_since_last_purchase(sales) -> None:
    cat = run("days_since_last_purchase_cat", sales, [C, "2024-06-15"])
    assert row(cat, category="printer", cutoff=C)["days_since_last_purchase_cat"] == 0
    assert row(cat, category="supplies", cutoff=C)["days_since_last_purchase_cat"] == 29
    # 2023-07-02 to 2024-06-15 (2024 is a leap year); the return of 2024-04-15 is no purchase
    assert row(cat, category="printer", cutoff="2024-06-15")["days_since_last_purchase_cat"] == 349
    assert row(cat, category="supplies", cutoff="2024-06-15")["days_since_last_purchase_cat"] == 14
    acc = run("days_since_last_purchase", sales, [C, "2024-06-15"])
    assert list(acc["days_since_last_purchase"]) == [14, 0]


def test_channel_share(sales) -> None:
    out = run("st_channel_share", sales, [C], window=365)
    a = row(out, account_id="A")
    assert a["st_channel_field_share_365d"] == pytest.approx(0.4)
    assert a["st_channel_online_share_365d"] == pytest.approx(0.4)
    assert a["st_channel_marketplace_share_365d"] == pytest.approx(0.2)


def test_spine_and_profile(sales) -> None:
    spine = run("account_category_spine", sales, [C, "2024-07-01"])
    assert len(spine[spine.cutoff == C]) == 2 * 6  # A and B, six categories
    assert len(spine[spine.cutoff == "2024-07-01"]) == 3 * 6  # C first seen that day
    prof = run("account_profile", sales, [C])
    a = row(prof, account_id="A")
    assert a["account_tenure_days"] == 1642  # 2020-01-01 to 2024-06-30
    assert (a["industry"], a["employee_band"], a["partner_track"]) == ("Retail", "10-49", "power")


def test_install_base_composition() -> None:
    ib = table(
        "install_base",
        [
            dict(
                device_id="D1",
                account_id="A",
                sku="PR-1",
                installed_on="2020-06-30",
                warranty_ends_on="2024-08-15",
                contract="mps",
            ),
            dict(
                device_id="D2",
                account_id="A",
                sku="PC-1",
                installed_on="2022-06-30",
                warranty_ends_on="2024-12-01",
                contract="daas",
            ),
            dict(
                device_id="D3",
                account_id="A",
                sku="PR-1",
                installed_on="2018-01-01",
                retired_on="2024-03-01",
                contract="none",
            ),
            dict(device_id="D4", account_id="A", sku="PR-1", installed_on="2024-07-15"),
            dict(
                device_id="D5",
                account_id="A",
                sku="PC-1",
                installed_on="2021-01-01",
                retired_on="2024-09-01",
                contract="care_pack",
            ),
        ],
    )
    tabs = {"accounts": table("accounts", [dict(account_id="A")]), "install_base": ib}
    out = run("ib_composition", tabs, [C])
    a = row(out, account_id="A")
    assert (a["ib_devices_count"], a["ib_printer_count"], a["ib_pc_count"]) == (3, 1, 2)
    assert a["ib_device_age_mean_days"] == pytest.approx((1461 + 731 + 1276) / 3)
    assert a["ib_device_age_max_days"] == 1461
    assert a["ib_warranty_ending_count_next_90d"] == 1  # D1 in 46 days
    assert a["ib_warranty_ending_count_next_180d"] == 2  # and D2 in 154 days
    assert (a["ib_contract_mps_count"], a["ib_contract_daas_count"]) == (1, 1)
    assert (a["ib_contract_care_pack_count"], a["ib_contract_none_count"]) == (1, 0)
    assert a["ib_retired_count_365d"] == 1


def test_install_base_of_the_rows_own_category() -> None:
    ib = table(
        "install_base",
        [
            # A: two printers in service (6.0 and 4.5 years old), one retired; one PC in
            # service (366 days) and one installed after the cutoff
            dict(device_id="P1", account_id="A", sku="PR-1", installed_on="2018-06-30"),
            dict(device_id="P2", account_id="A", sku="PR-1", installed_on="2019-12-31"),
            dict(
                device_id="P3",
                account_id="A",
                sku="PR-1",
                installed_on="2015-01-01",
                retired_on="2024-03-01",
            ),
            dict(device_id="C1", account_id="A", sku="PC-1", installed_on="2023-06-30"),
            dict(device_id="C2", account_id="A", sku="PC-1", installed_on="2024-07-15"),
            # B: only a retired printer
            dict(
                device_id="P4",
                account_id="B",
                sku="PR-1",
                installed_on="2016-01-01",
                retired_on="2023-01-01",
            ),
        ],
    )
    tabs = {"accounts": table("accounts", [dict(account_id=a) for a in "ABC"]), "install_base": ib}
    out = run("ib_cat_age", tabs, [C], older_than_years=(4, 5, 6))
    assert set(zip(out["account_id"], out["category"], strict=True)) == {
        ("A", "printer"),
        ("A", "pc"),
        ("B", "printer"),
        ("B", "pc"),
    }  # C has no install base: no rows; nor do the other categories
    pr = row(out, account_id="A", category="printer")
    assert pr["ib_cat_devices_count"] == 2
    assert pr["ib_cat_device_age_mean_days"] == pytest.approx((2192 + 1643) / 2)
    assert pr["ib_cat_device_age_max_days"] == 2192
    # older than n years: age > 365.25 n days (2192 > 2191.5; 1643 > 1461)
    over = [pr[f"ib_cat_devices_over_{n}y_count"] for n in (4, 5, 6)]
    assert over == [2, 1, 1]
    pc = row(out, account_id="A", category="pc")
    assert (pc["ib_cat_devices_count"], pc["ib_cat_device_age_max_days"]) == (1, 366)
    assert pc["ib_cat_devices_over_4y_count"] == 0
    b = row(out, account_id="B", category="printer")
    assert b["ib_cat_devices_count"] == 0 and math.isnan(b["ib_cat_device_age_mean_days"])


def test_warranty_extensions_due_and_taken_up() -> None:
    """Cutoff 2024-06-30, horizon (2024-07-01 .. 2024-09-28], buying window the 90 days
    before the warranty ends."""
    products = table(
        "products",
        [
            *PRODUCTS,
            dict(sku="WR-2", category="warranty", family="Book 1", extends_warranty_months=12),
        ],
    )

    def dev(device_id, sku, wend, account="A", **kw):
        return dict(
            device_id=device_id,
            account_id=account,
            sku=sku,
            installed_on=kw.pop("installed_on", "2021-01-01"),
            warranty_ends_on=wend,
            **kw,
        )

    ib = table(
        "install_base",
        [
            # due: window 2024-05-17 .. 08-14, 45 of its 90 days in the horizon; the line of
            # 2024-04-01 came before the window opened, the one of 2024-07-10 after the cutoff
            dev("D1", "PR-1", "2024-08-15"),
            # extended on 2024-05-10, inside its window 2024-04-21 .. 07-19: not due
            dev("D2", "PR-1", "2024-07-20"),
            # due: window 2024-08-17 .. 11-14, 43 days in the horizon
            dev("D3", "PC-1", "2024-11-15"),
            # window opens 2024-12-01: after the horizon
            dev("D4", "PC-1", "2025-03-01"),
            # out of service before the cutoff
            dev("D5", "PR-1", "2024-09-01", retired_on="2024-06-01"),
            dev("D6", "PR-1", None),
            # ended in the last 730 days while in service, extended in its window
            dev("E1", "PR-1", "2023-10-01"),
            # ended while in service (retired later); the line of 2024-02-05 came after the end
            dev("E2", "PC-1", "2024-02-01", retired_on="2024-05-01"),
            # retired before its warranty ended; and one ended before the lookback
            dev("E3", "PR-1", "2023-12-01", retired_on="2023-11-01"),
            dev("E4", "PR-1", "2022-06-01", installed_on="2019-06-01"),
            # B: one device, window after the horizon
            dev("F1", "PR-1", "2025-01-01", account="B", installed_on="2024-01-01"),
        ],
    )
    lines = [
        ("WR-1", "2024-04-01"),
        ("WR-1", "2024-05-10"),
        ("WR-1", "2024-07-10"),
        ("WR-1", "2023-08-01"),
        ("WR-2", "2024-02-05"),
        ("PR-1", "2024-06-01"),  # not a warranty
    ]
    st = table(
        "sell_through",
        [
            dict(account_id="A", sku=sku, sold_on=day, quantity=1, net_amount=50.0)
            for sku, day in lines
        ],
    )
    tabs = {
        "products": products,
        "accounts": table("accounts", [dict(account_id=a) for a in "ABC"]),
        "install_base": ib,
        "sell_through": st,
    }
    out = run("ib_warranty_extension", tabs, [C], window=90, horizon=90, lookback=730)
    assert set(out["category"]) == {"warranty"} and set(out["account_id"]) == {"A", "B"}
    a = row(out, account_id="A")
    assert a["ib_warranty_due_count_next_90d"] == 2  # D1, D3
    assert a["ib_warranty_due_overlap_sum_next_90d"] == pytest.approx(45 / 90 + 43 / 90)
    assert a["ib_warranty_ended_count_730d"] == 2  # E1, E2
    assert a["ib_warranty_extended_count_730d"] == 1  # E1
    assert a["ib_warranty_extended_rate_730d"] == 0.5
    b = row(out, account_id="B")
    assert b["ib_warranty_due_count_next_90d"] == 0
    assert b["ib_warranty_due_overlap_sum_next_90d"] == 0.0
    assert b["ib_warranty_ended_count_730d"] == 0
    assert math.isnan(b["ib_warranty_extended_rate_730d"])
    # on 2024-07-11 the line of 2024-07-10 has extended D1: only D3 is due (window 08-17 ..
    # 11-14 against the horizon 07-12 .. 10-09: 54 days)
    later = row(run("ib_warranty_extension", tabs, ["2024-07-11"]), account_id="A")
    assert later["ib_warranty_due_count_next_90d"] == 1
    assert later["ib_warranty_due_overlap_sum_next_90d"] == pytest.approx(54 / 90)


@pytest.fixture(scope="module")
def intent():
    return {
        "accounts": table("accounts", [dict(account_id="A")]),
        "intent_signals": table(
            "intent_signals",
            [
                dict(account_id="A", week_of="2024-06-24", topic="printer", intensity=5),
                dict(account_id="A", week_of="2024-06-17", topic="Laser 1", intensity=3),
                dict(account_id="A", week_of="2024-06-10", topic="security", intensity=2),
                dict(account_id="A", week_of="2024-05-06", topic="pc", intensity=4),
                # the week of 2024-07-01 ends after the cutoff
                dict(account_id="A", week_of="2024-07-01", topic="printer", intensity=10),
                # ends 2024-04-07, exactly 12 weeks before: outside
                dict(account_id="A", week_of="2024-04-01", topic="printer", intensity=1),
            ],
        ),
    }


def test_intent_per_category_counts_family_topics(intent) -> None:
    out = run("intent_cat_sums", intent, [C], weeks=(2, 4, 8, 12))
    pr = row(out, category="printer")
    assert [pr[f"intent_cat_intensity_sum_{w}w"] for w in (2, 4, 8, 12)] == [8, 8, 8, 8]
    pc = row(out, category="pc")
    assert [pc[f"intent_cat_intensity_sum_{w}w"] for w in (2, 4, 8, 12)] == [0, 0, 4, 4]
    assert set(out["category"]) == {"printer", "pc"}


def test_intent_account_level_uses_complete_weeks_only(intent) -> None:
    out = run("intent_sums", intent, [C, "2024-06-26"], weeks=(2, 4, 8, 12))
    a = row(out, cutoff=C)
    assert [a[f"intent_intensity_sum_{w}w"] for w in (2, 4, 8, 12)] == [8, 10, 14, 14]
    assert [a[f"intent_security_intensity_sum_{w}w"] for w in (2, 4, 8, 12)] == [0, 2, 2, 2]
    assert a["intent_topics_distinct_12w"] == 4
    # on Wednesday 2024-06-26 the week of 2024-06-24 is not over: not counted
    assert row(out, cutoff="2024-06-26")["intent_intensity_sum_2w"] == 3 + 2


RUN_WEEKS = [
    # printer, run 1: two weeks, ended (no intent in the week of 2024-05-13)
    dict(account_id="A", week_of="2024-04-29", topic="printer", intensity=2),
    dict(account_id="A", week_of="2024-05-06", topic="Laser 1", intensity=3),
    # printer, run 2: six weeks up to the one ending on the cutoff; two topics in a week add up
    dict(account_id="A", week_of="2024-05-20", topic="printer", intensity=2),
    dict(account_id="A", week_of="2024-05-27", topic="Laser 1", intensity=3),
    dict(account_id="A", week_of="2024-05-27", topic="printer", intensity=1),
    dict(account_id="A", week_of="2024-06-03", topic="printer", intensity=5),
    dict(account_id="A", week_of="2024-06-10", topic="printer", intensity=6),
    dict(account_id="A", week_of="2024-06-17", topic="printer", intensity=8),
    dict(account_id="A", week_of="2024-06-24", topic="printer", intensity=9),
    dict(account_id="A", week_of="2024-06-24", topic="Laser 1", intensity=0),  # no signal
    # PC: one week, three weeks before the cutoff's week
    dict(account_id="A", week_of="2024-06-03", topic="pc", intensity=4),
    # topics of no category
    dict(account_id="A", week_of="2024-06-24", topic="security", intensity=7),
    dict(account_id="A", week_of="2024-06-24", topic="gardening", intensity=1),
    # B: intent only after the cutoff
    dict(account_id="B", week_of="2024-07-01", topic="printer", intensity=3),
]


def _runs(extra: list[dict] | None = None) -> dict:
    rows = RUN_WEEKS + (extra or [])
    return {
        "accounts": table("accounts", [dict(account_id="A"), dict(account_id="B")]),
        "intent_signals": table("intent_signals", rows),
    }


def _run_state(r: dict) -> tuple:
    return (
        r["intent_cat_days_since_signal"],
        r["intent_cat_run_weeks"],
        r["intent_cat_run_intensity_last"],
        r["intent_cat_run_intensity_total"],
    )


def test_intent_run_of_the_category() -> None:
    cutoffs = ["2024-04-01", "2024-05-12", "2024-05-19", "2024-05-26", "2024-06-26", C]
    out = run("intent_cat_run", _runs(), cutoffs)
    pr = lambda c: _run_state(row(out, account_id="A", category="printer", cutoff=c))  # noqa: E731
    # (days since the latest week ended, weeks of its run, its intensity, the run's)
    assert pr("2024-05-12") == (0, 2, 3, 5)
    assert pr("2024-05-19") == (7, 2, 3, 5)  # the run stopped a week ago
    assert pr("2024-05-26") == (0, 1, 2, 2)  # a new run
    # on Wednesday 2024-06-26 the week of 2024-06-24 is not over
    assert pr("2024-06-26") == (3, 5, 8, 2 + 4 + 5 + 6 + 8)
    assert pr(C) == (0, 6, 9, 2 + 4 + 5 + 6 + 8 + 9)
    assert _run_state(row(out, account_id="A", category="pc", cutoff=C)) == (21, 1, 4, 4)
    # nothing before the first week, nothing for B yet, no rows for topics of no category
    assert "2024-04-01" not in set(out["cutoff"])
    assert set(out["account_id"]) == {"A"}
    assert set(out["category"]) == {"printer", "pc"}


def test_intent_run_sees_nothing_after_the_cutoff() -> None:
    later = [dict(account_id="A", week_of="2024-07-01", topic="printer", intensity=10)]
    before = run("intent_cat_run", _runs(), [C])
    after = run("intent_cat_run", _runs(later), [C, "2024-07-07"])
    assert after[after["cutoff"] == C].reset_index(drop=True).equals(before)
    nxt = row(after, account_id="A", category="printer", cutoff="2024-07-07")
    assert _run_state(nxt) == (0, 7, 10, 34 + 10)
    assert row(after, account_id="B", cutoff="2024-07-07")["intent_cat_run_weeks"] == 1


def test_product_category_of_the_launched_products() -> None:
    products = [
        dict(sku="PR-1", category="printer", family="Laser 1"),
        dict(sku="SV-1", category="service", family="Onsite", launched_on="2024-07-01"),
    ]
    tabs = {"products": table("products", products)}
    out = run("product_category", tabs, [C, "2024-07-01"])
    assert list(out.columns) == ["category", "cutoff", "product_category"]
    assert out.values.tolist() == [
        ["printer", C, "printer"],
        ["printer", "2024-07-01", "printer"],
        ["service", "2024-07-01", "service"],
    ]


def test_opportunities_use_the_stage_only_once_closed() -> None:
    opp = table(
        "opportunities",
        [
            dict(
                account_id="A",
                created_on="2024-05-01",
                stage="won",
                closed_on="2024-06-15",
                deal_registered=True,
            ),
            dict(
                account_id="A",
                created_on="2024-06-01",
                stage="won",
                closed_on="2024-07-10",
                amount=2000.0,
            ),
            dict(account_id="A", created_on="2024-01-10", stage="lost", closed_on="2024-02-01"),
            dict(
                account_id="A",
                created_on="2024-06-20",
                stage="open",
                amount=500.0,
                deal_registered=True,
            ),
            dict(account_id="A", created_on="2024-07-05", stage="open"),
        ],
    )
    tabs = {"accounts": table("accounts", [dict(account_id="A")]), "opportunities": opp}
    a = row(run("opportunity_counts", tabs, [C], windows=(90, 365)), account_id="A")
    assert (a["opp_open_count"], a["opp_open_amount_sum"]) == (2, 2500.0)
    assert (a["opp_created_count_90d"], a["opp_created_count_365d"]) == (3, 4)
    assert (a["opp_registered_count_90d"], a["opp_registered_count_365d"]) == (2, 2)
    assert (a["opp_won_count_90d"], a["opp_won_amount_sum_90d"]) == (1, 1000.0)
    assert (a["opp_lost_count_90d"], a["opp_lost_count_365d"]) == (0, 1)
    assert a["days_since_last_opportunity"] == 10
    # without money: the same counts, no amounts
    b = row(run("opportunity_counts", tabs, [C], windows=(90, 365), money=False), account_id="A")
    assert sorted(set(a) - set(b)) == [
        "opp_open_amount_sum",
        "opp_won_amount_sum_365d",
        "opp_won_amount_sum_90d",
    ]
    assert b == {k: v for k, v in a.items() if k in b}


def test_account_tickets() -> None:
    tickets = table(
        "service_events",
        [
            dict(
                account_id="A",
                opened_at="2024-06-29T10:00:00Z",
                closed_at="2024-07-02T10:00:00Z",
                kind="incident",
            ),
            dict(
                account_id="A",
                opened_at="2024-05-01T10:00:00Z",
                closed_at="2024-05-02T10:00:00Z",
                kind="repair",
            ),
            dict(
                account_id="A",
                opened_at="2024-01-15T10:00:00Z",
                closed_at="2024-01-20T10:00:00Z",
                kind="part_replacement",
            ),
            dict(account_id="A", opened_at="2023-01-01T10:00:00Z", kind="incident"),
            dict(account_id="A", opened_at="2024-07-01T10:00:00Z", kind="incident"),
            dict(
                account_id="A",
                opened_at="2024-06-30T23:59:00Z",
                closed_at="2024-06-30T23:59:30Z",
                kind="preventive",
            ),
        ],
    )
    tabs = {"accounts": table("accounts", [dict(account_id="A")]), "service_events": tickets}
    a = row(run("svc_account_counts", tabs, [C], windows=(90, 365)), account_id="A")
    assert a["svc_open_count"] == 2
    assert (a["svc_tickets_count_90d"], a["svc_tickets_count_365d"]) == (3, 4)
    assert (a["svc_incident_count_90d"], a["svc_incident_count_365d"]) == (1, 1)
    assert (a["svc_repair_count_90d"], a["svc_repair_count_365d"]) == (1, 2)


def test_purchase_rhythm_in_the_category() -> None:
    def buy(sku: str, day: str, quantity: int = 1) -> dict:
        return dict(account_id="A", sku=sku, sold_on=day, quantity=quantity, net_amount=10.0)

    tables = {
        "accounts": table("accounts", [dict(account_id="A")]),
        "sell_through": table(
            "sell_through",
            [
                buy("TN-1-K", "2022-06-15"),  # before the 730-day window (from 2022-07-02)
                buy("TN-1-K", "2023-07-10"),  # in the same 90 days last year (07-02 .. 09-29)
                buy("TN-1-K", "2024-01-01"),
                buy("TN-1-K", "2024-04-15", quantity=-1),  # a return: not a purchase
                buy("TN-1-K", "2024-06-01"),
                buy("TN-1-K-XL", "2024-06-01"),  # same day: one purchase day
                buy("PR-1", "2024-03-01"),
            ],
        ),
    }
    out = run("st_cat_rhythm", tables, [C], window=730, horizon=90)
    sup = row(out, category="supplies")
    # purchase days 2023-07-10, 2024-01-01, 2024-06-01: 327 days apart, 2 intervals
    assert sup["st_cat_purchase_interval_mean_days_730d"] == 163.5
    assert sup["st_cat_overdue_ratio_730d"] == pytest.approx(29 / 163.5)
    assert sup["st_cat_buys_count_last_year_next_90d"] == 1
    printer = row(out, category="printer")  # one purchase day: no interval
    assert math.isnan(printer["st_cat_purchase_interval_mean_days_730d"])
    assert printer["st_cat_buys_count_last_year_next_90d"] == 0
