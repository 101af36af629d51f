"""Reasons: hand-checked sentences per feature family, missing values, the top-k selection,
input checks, and every feature of the four current specs (built from the tiny world) covered."""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amplify_ml.errors import ConsentError, InvalidRequestError
from amplify_ml.modeling.reasons import (
    Reason,
    describe,
    fallback_text,
    fmt_days,
    fmt_number,
    has_template,
    reasons,
    reasons_frame,
)

NOT_A_VALUE = re.compile(r"(?<!\w)(nan|NaN|None|inf|NaT|<NA>)(?!\w)")
MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")
SUPPLIES = {"category": "supplies"}
BLACK = {"color": "black"}


# -- sentences, worked out by hand -------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "value", "context", "expected"),
    [
        # sell-through in the row's category
        ("st_cat_lines_count_90d", 3, SUPPLIES, "bought supplies 3 times in the last 90 days"),
        ("st_cat_lines_count_30d", 1, {"category": "pc"}, "bought PCs once in the last 30 days"),
        ("st_cat_lines_count_90d", 0, SUPPLIES, "did not buy supplies in the last 90 days"),
        ("st_cat_lines_count_90d", 3, {}, "bought this category 3 times in the last 90 days"),
        ("st_cat_revenue_sum_365d", 12345.67, SUPPLIES, "spent 12,346 on supplies in the last 365 days"),
        ("st_cat_units_sum_30d", 1, {"category": "printer"}, "bought 1 unit of printers in the last 30 days (net of returns)"),
        ("st_cat_units_sum_30d", -2, SUPPLIES, "returned 2 units of supplies more than bought in the last 30 days"),
        ("st_cat_skus_distinct_180d", 3, {"category": "pc"}, "bought 3 different PC products in the last 180 days"),
        ("st_cat_returns_count_90d", 2, SUPPLIES, "returned supplies twice in the last 90 days"),
        ("days_since_last_purchase_cat", 40, SUPPLIES, "last bought supplies 40 days ago"),
        ("days_since_last_purchase_cat", 800, {"category": "accessory"}, "last bought accessories 2.2 years ago"),
        # sell-through of the account
        ("st_lines_count_90d", 5, {}, "bought 5 times in the last 90 days (any category)"),
        ("st_revenue_sum_30d", 9.75, {}, "spent 9.8 in the last 30 days (any category)"),
        ("st_units_sum_365d", 1200, {}, "bought 1,200 units in the last 365 days (any category, net of returns)"),
        ("st_skus_distinct_90d", 1, {}, "bought 1 product in the last 90 days"),
        ("st_returns_count_30d", 0, {}, "returned nothing in the last 30 days"),
        ("st_categories_distinct_365d", 2, {}, "bought in 2 categories in the last 365 days"),
        ("st_channel_online_share_365d", 0.25, {}, "25% of purchases online in the last 365 days"),
        ("st_channel_field_share_365d", 1 / 3, {}, "33.3% of purchases through field sales in the last 365 days"),
        ("st_pc_units_sum_90d", 1, {}, "the account bought 1 PC in the last 90 days"),
        ("st_printer_units_sum_365d", 4, {}, "the account bought 4 printers in the last 365 days"),
        ("days_since_last_purchase", 10, {}, "last bought anything 10 days ago"),
        # install base
        ("ib_devices_count", 12, {}, "12 devices in the install base"),
        ("ib_pc_count", 1, {}, "1 PC in the install base"),
        ("ib_device_age_mean_days", 1387.95, {}, "installed devices 3.8 years old on average"),
        ("ib_device_age_max_days", 2264, {}, "oldest installed device 6.2 years old"),
        ("ib_warranty_ending_count_next_90d", 1, {}, "1 device warranty ends in the next 90 days"),
        ("ib_warranty_ending_count_next_180d", 2, {}, "2 device warranties end in the next 180 days"),
        ("ib_contract_daas_count", 3, {}, "3 installed devices on a DaaS contract"),
        ("ib_contract_none_count", 1, {}, "1 installed device with no contract"),
        ("ib_retired_count_365d", 2, {}, "2 devices retired or replaced in the last 365 days"),
        # intent
        ("intent_cat_intensity_sum_4w", 3.2, SUPPLIES, "online interest in supplies over the last 4 weeks (intensity 3.2)"),
        ("intent_cat_intensity_sum_2w", 0, SUPPLIES, "no online interest in supplies over the last 2 weeks"),
        ("intent_cat_days_since_signal", 3, {"category": "printer"}, "online interest in printers in the last complete week"),
        ("intent_cat_days_since_signal", 21, {"category": "pc"}, "last online interest in PCs 21 days ago"),
        ("intent_cat_days_since_signal", None, {"category": "pc"}, "no online interest in PCs on record"),
        ("intent_cat_run_weeks", 6, {"category": "service"}, "online interest in services for 6 weeks in a row in its latest run"),
        ("intent_cat_run_weeks", 1, {"category": "service"}, "online interest in services for 1 week in its latest run"),
        ("intent_cat_run_intensity_last", 9, {"category": "printer"}, "online interest in printers of intensity 9 in its latest week"),
        ("intent_cat_run_intensity_total", 34, {"category": "printer"}, "online interest in printers of intensity 34 over its latest run of weeks"),
        ("product_category", "accessory", {"category": "accessory"}, "the category itself: accessories"),
        ("intent_intensity_sum_12w", 20, {}, "online interest (all topics) over the last 12 weeks (intensity 20)"),
        ("intent_security_intensity_sum_8w", 5, {}, "online interest in security over the last 8 weeks (intensity 5)"),
        ("intent_topics_distinct_12w", 2, {}, "online interest in 2 topics over the last 12 weeks"),
        # opportunities
        ("opp_open_count", 1, {}, "1 open opportunity"),
        ("opp_open_amount_sum", 25000, {}, "open opportunities worth 25,000"),
        ("opp_registered_count_90d", 2, {}, "2 deals registered in the last 90 days"),
        ("opp_lost_count_365d", 0, {}, "no opportunities lost in the last 365 days"),
        ("opp_won_amount_sum_365d", 4999.5, {}, "won opportunities worth 5,000 in the last 365 days"),
        ("days_since_last_opportunity", 308, {}, "last opportunity created 308 days ago"),
        # service tickets
        ("svc_open_count", 2, {}, "2 service tickets open"),
        ("svc_tickets_count_90d", 9, {}, "9 service tickets on the account's devices in the last 90 days"),
        ("svc_repair_count_365d", 1, {}, "1 repair ticket on the account's devices in the last 365 days"),
        ("svc_dev_component_fuser_count_365d", 1, {}, "1 fuser ticket in the last 365 days"),
        ("svc_dev_part_replacement_count_90d", 2, {}, "2 part replacement tickets in the last 90 days"),
        ("svc_dev_preventive_count_365d", 0, {}, "no preventive maintenance tickets in the last 365 days"),
        ("days_since_last_repair", 136, {}, "last repaired 136 days ago"),
        ("days_since_last_preventive", 190, {}, "last preventive maintenance ticket 190 days ago"),
        ("days_since_fuser_repair", 400, {}, "fuser last repaired 1.1 years ago"),
        ("days_since_drum_repair", 0, {}, "drum repaired today"),
        ("dev_events_drum_count_since_repair_365d", 3, {}, "3 drum events in the last 365 days (since the drum's last repair, if any)"),
        ("dev_events_fuser_count_since_repair_365d", 0, {}, "no fuser events in the last 365 days (since the fuser's last repair, if any)"),
        # device profile and categoricals
        ("device_age_days", 2264, {}, "installed 6.2 years ago"),
        ("device_age_days", 200, {}, "installed 200 days ago"),
        ("days_to_warranty_end", -30, {}, "warranty ended 30 days ago"),
        ("days_to_warranty_end", 45, {}, "warranty ends in 45 days"),
        ("days_to_warranty_end", 0, {}, "warranty ends today"),
        ("is_under_warranty", True, {}, "under warranty"),
        ("is_replacement", np.False_, {}, "did not replace an earlier device"),
        ("family_age_days", 365.25, {}, "product family launched 1 year ago"),
        ("device_list_price", 2199.0, {}, "list price 2,199"),
        ("account_tenure_days", 4008, {}, "customer for 11 years"),
        ("employee_band", "10-49", {}, "company size: 10-49 employees"),
        ("contract", "daas", {}, "contract: daas"),
        ("family", "LaserJet Pro 3001", {}, "family: LaserJet Pro 3001"),
        ("partner_track", "power_services", {}, "partner track: power_services"),
        # telemetry
        ("telemetry_pages_sum_30d", 1385.0, {}, "printed 1,385 pages in the last 30 days"),
        ("telemetry_pages_per_day_mean_30d", 46.1666, {}, "printed 46.2 pages a day on average in the last 30 days"),
        ("telemetry_pages_trend_30d_vs_90d", 0.7346, {}, "printed 27% less a day in the last 30 days than over the last 90 days"),
        ("telemetry_pages_trend_30d_vs_90d", 1.002, {}, "printed about as much a day in the last 30 days as over the last 90 days"),
        ("telemetry_pages_vs_family_90d", 2.5, {}, "printed 2.5 times as much a day as its family's average in the last 90 days"),
        ("telemetry_pages_vs_fleet_180d", 0.62, {}, "printed 38% less a day than the fleet's average in the last 180 days"),
        ("telemetry_battery_health_last", 83.8, {}, "battery health at 83.8%"),
        ("telemetry_disk_health_slope_60d", -0.0249, {}, "disk health falling 0.7 points a month in the last 60 days"),
        ("telemetry_battery_health_slope_60d", 0.001, {}, "battery health steady in the last 60 days"),
        # device events
        ("dev_events_error_count_30d", 4, {}, "4 error events in the last 30 days"),
        ("dev_events_count_7d", 1, {}, "1 device event in the last 7 days"),
        ("dev_events_prefix_50_count_30d", 2, {}, "2 events with code 50.* in the last 30 days"),
        ("dev_events_prefix_other_count_90d", 0, {}, "no events with other codes in the last 90 days"),
        ("dev_events_daily_count_max_7d", 5, {}, "up to 5 device events on a single day in the last 7 days"),
        ("days_since_last_error_event", 28, {}, "last error event 28 days ago"),
        # supplies
        ("supply_level_last", 23.5, {}, "toner at 23.5%"),
        ("supply_level_last", 23.5, BLACK, "black toner at 23.5%"),
        ("supply_level_slope_30d", -0.1464, {"color": "cyan"}, "cyan toner falling 4.4 points a month in the last 30 days"),
        ("supply_days_to_empty_linear_30d", 211.7, BLACK, "black toner empty in about 212 days at the pace of the last 30 days"),
        ("supply_pct_per_kpage_mean_180d", 41.25, BLACK, "black toner falls 41.2 points every 1,000 pages"),
        ("supply_pct_per_kpage_fit_180d", 41.25, BLACK, "black toner falls 41.2 points every 1,000 pages (over its recent cartridges)"),
        ("supply_pct_per_kpage_account", 125.0, BLACK, "this customer's printers use black toner at 125 points every 1,000 pages of a cartridge like this one"),
        ("telemetry_pages_vs_fleet_account", 0.38, {}, "a printer like this one at this customer prints 62% less a day than the fleet's average"),
        ("days_since_supply_change", 74, BLACK, "black cartridge changed 74 days ago"),
        ("pages_since_supply_change", 7141, BLACK, "7,141 pages printed since the black cartridge was changed"),
        ("supply_page_yield_mean", 4800.0, BLACK, "its black cartridges are rated for 4,800 pages on average"),
        ("supply_days_to_threshold_est_calendar", 43.4, {"color": "cyan"}, "cyan toner low in about 43 days, by last year's calendar"),
        ("supply_days_to_threshold_est_calendar", 365.0, BLACK, "black toner low in a year or more, by last year's calendar"),
        ("days_since_page_reading", 0.875, BLACK, "page count last read 21 hours ago"),
        ("days_since_page_reading", 5.875, BLACK, "page count last read 6 days ago"),
        ("telemetry_pages_vs_fleet_365d", 1.5, {}, "printed 50% more a day than the fleet's average in the last 365 days"),
    ],
)  # fmt: skip
def test_sentences_per_family(feature: str, value: object, context: dict, expected: str) -> None:
    assert has_template(feature)
    assert describe(feature, value, context) == expected


DRUM, OTHER = {"component": "drum"}, {"component": "other"}


@pytest.mark.parametrize(
    ("feature", "value", "context", "expected"),
    [
        ("component_name", "drum", DRUM, "the part is the drum"),
        ("component_name", "other", OTHER, "a part not listed for the device"),
        ("days_since_comp_repair", 40, DRUM, "the drum last repaired 40 days ago"),
        ("days_since_comp_repair", np.nan, DRUM, "no repair of the drum on record"),
        ("days_since_comp_repair", np.nan, OTHER, "no repair of another part on record"),
        ("comp_repairs_count_365d", 2, DRUM, "2 repair tickets of the drum in the last 365 days"),
        ("comp_events_count_30d", 1, DRUM, "1 warning of the drum in the last 30 days"),
        ("comp_events_count_since_repair_365d", 12, DRUM, "12 warnings of the drum in the last 365 days (since its last repair, if any)"),
        ("comp_age_days", 800, DRUM, "the drum in service for 2.2 years (since its last repair, else since installation)"),
        ("comp_use_pages_est", 41250.0, DRUM, "about 41,250 pages printed since the drum was new (at the recent pace)"),
        ("comp_health_last", 71.5, {"component": "battery"}, "the battery health at 71.5%"),
        ("comp_health_slope_60d", -0.1, {"component": "battery"}, "the battery health falling 3 points a month in the last 60 days"),
        ("comp_health_last", np.nan, {}, "no health reading of the part in recent months"),
        ("comp_warning_rate", 0.1, DRUM, "0.7 warnings a week from the drum since it was new"),
        ("comp_wear_index", 0.4, DRUM, "the drum worn to 0.4 (its wear index: its warnings for its age, or its health)"),
        ("comp_hazard_index_next_30d", 0.012, DRUM, "failure hazard of the drum over the next 30 days at 0.012 (its wear carried forward)"),
        ("comp_use_rel", 1.5, DRUM, "used 1.5 times as much as the average device of its model"),
        ("comp_use_wear_index", 0.62, DRUM, "the drum worn to 0.62 by its use (its device's use for its age in years)"),
        ("comp_use_hazard_index_next_30d", 0.031, DRUM, "failure hazard of the drum from its use over the next 30 days at 0.031"),
        ("comp_use_wear_index", np.nan, DRUM, "use of the drum not known"),
        ("comp_use_rel", np.nan, DRUM, "use of the device not known (no page or charge-cycle counter read)"),
        ("fleet_use_next_30d_vs_year", 0.74, DRUM, "the next 30 days a season of 26% less use than the year's average (the fleet a year ago)"),
        ("fleet_use_next_30d_vs_year", 1.08, DRUM, "the next 30 days a season of 8% more use than the year's average (the fleet a year ago)"),
        ("fleet_use_next_30d_vs_year", 1.004, DRUM, "the next 30 days a season of usual use (the fleet printed as much then a year ago)"),
        ("fleet_use_next_30d_vs_year", np.nan, DRUM, "the season ahead not known (less than a year of page counter readings)"),
        ("comp_hazard_index_season_next_30d", 0.009, DRUM, "failure hazard of the drum over the next 30 days at 0.009 (its wear carried forward at the season's pace)"),
        ("comp_hazard_index_season_next_30d", np.nan, DRUM, "wear of the drum or the season ahead not known"),
    ],
)  # fmt: skip
def test_sentences_of_the_rows_own_component(
    feature: str, value: object, context: dict, expected: str
) -> None:
    assert has_template(feature)
    assert describe(feature, value, context) == expected


@pytest.mark.parametrize(
    ("feature", "value", "context", "expected"),
    [
        ("days_since_last_purchase_cat", np.nan, SUPPLIES, "no purchase of supplies on record"),
        ("days_since_last_purchase_cat", None, {}, "no purchase of this category on record"),
        ("days_since_last_purchase", pd.NA, {}, "no purchase on record"),
        ("telemetry_pages_sum_30d", np.nan, {}, "no page-count telemetry in the last 30 days"),
        ("telemetry_pages_per_day_mean_7d", float("inf"), {}, "no page-count telemetry in the last 7 days"),
        ("days_to_warranty_end", np.nan, {}, "no warranty on record"),
        ("st_channel_online_share_365d", np.nan, {}, "no purchases in the last 365 days to split"),
        ("ib_device_age_mean_days", np.nan, {}, "no devices in the install base"),
        ("telemetry_battery_health_slope_60d", np.nan, {}, "too few battery health readings in the last 60 days for a trend"),
        ("supply_days_to_empty_linear_30d", np.nan, BLACK, "no empty date in sight (black toner not falling in the last 30 days)"),
        ("days_since_supply_change", np.nan, {"color": "yellow"}, "no recent yellow cartridge change seen"),
        ("intent_security_intensity_sum_4w", np.nan, {}, "no intent data for the last 4 weeks"),
        ("contract", None, {}, "contract not known"),
        ("days_since_last_preventive", np.nan, {}, "no preventive maintenance ticket on record"),
        ("days_since_battery_repair", np.nan, {}, "no battery repair on record"),
        ("supply_level_last", np.nan, {"color": None}, "no toner level reported"),
        ("days_since_page_reading", np.nan, BLACK, "no recent page count reading"),
        ("st_cat_overdue_ratio_730d", np.nan, SUPPLIES, "not yet a usual interval between supplies purchases: fewer than two purchase days in the last 730 days"),
    ],
)  # fmt: skip
def test_missing_values_have_their_own_wording(
    feature: str, value: object, context: dict, expected: str
) -> None:
    assert describe(feature, value, context) == expected


def test_numbers_and_spans_are_formatted_for_people() -> None:
    assert [fmt_number(x) for x in (3, 3.0, 1234567, 1234.56, 0.04, -2.75)] == [
        "3",
        "3",
        "1,234,567",
        "1,234.6",
        "0",
        "-2.8",
    ]
    assert [fmt_days(d) for d in (1, 45, -30, 364, 365.25, 2264, 3000)] == [
        "1 day",
        "45 days",
        "30 days",
        "364 days",
        "1 year",
        "6.2 years",
        "8.2 years",
    ]


# -- fallback --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        ("foo_bar_count_30d", 5, "foo bar count in the last 30 days: 5"),
        ("foo_bar_count_30d", np.nan, "foo bar count in the last 30 days: no data"),
        ("st_widgets_mean_4w", 2.26, "purchases widgets average in the last 4 weeks: 2.3"),
        ("ib_cat_loans_count_next_1d", 1234, "install base category loans count in the next 1 day: 1,234"),
        ("days_since_last_visit", 12, "last visit: 12 days ago"),
        ("days_to_renewal", 400, "renewal: in 1.1 years"),
        ("has_portal_account", True, "has portal account: yes"),
        ("is_key_account", 0.0, "is key account: no"),
        ("loyalty_tier", "gold", "loyalty tier: gold"),
    ],
)  # fmt: skip
def test_unknown_feature_names_are_read_from_the_naming_convention(
    feature: str, value: object, expected: str
) -> None:
    assert not has_template(feature)
    assert fallback_text(feature, value) == expected
    assert describe(feature, value, {"category": "supplies"}) == expected


def test_a_value_of_the_wrong_type_falls_back_instead_of_failing() -> None:
    assert describe("days_to_warranty_end", "soon") == "days to warranty end: soon"


# -- selection -------------------------------------------------------------------------------


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    index = pd.Index([10, 11, 12], name="row")
    features = pd.DataFrame(
        {
            "category": ["supplies", "pc", "printer"],
            "st_cat_lines_count_90d": [3, 0, 1],
            "days_since_last_purchase_cat": [40.0, np.nan, 200.0],
            "intent_cat_intensity_sum_4w": [2, 0, 7],
            "opp_open_count": [1, 0, 2],
            "label": [1, 0, 0],
        },
        index=index,
    )
    contributions = pd.DataFrame(
        {
            "st_cat_lines_count_90d": [0.9, -0.4, 0.2],
            "days_since_last_purchase_cat": [0.5, 0.3, 0.2],
            "intent_cat_intensity_sum_4w": [0.1, -0.1, 0.2],
            "opp_open_count": [-1.2, 0.0, 0.05],
            "_bias": [5.0, 5.0, 5.0],
        },
        index=index,
    )
    return contributions, features


def test_up_picks_the_largest_positive_contributions_and_invents_nothing() -> None:
    contributions, features = _frames()
    got = reasons(contributions, features)
    assert got[0] == [
        Reason("st_cat_lines_count_90d", 3, 0.9, "bought supplies 3 times in the last 90 days"),
        Reason("days_since_last_purchase_cat", 40.0, 0.5, "last bought supplies 40 days ago"),
        Reason(
            "intent_cat_intensity_sum_4w",
            2,
            0.1,
            "online interest in supplies over the last 4 weeks (intensity 2)",
        ),
    ]
    # one positive contribution only (zero is not a push): one reason, no padding
    assert got[1] == [
        Reason("days_since_last_purchase_cat", None, 0.3, "no purchase of PCs on record")
    ]
    # three-way tie at 0.2: broken by feature name
    assert [r.feature for r in got[2]] == [
        "days_since_last_purchase_cat",
        "intent_cat_intensity_sum_4w",
        "st_cat_lines_count_90d",
    ]


def test_down_and_both_directions() -> None:
    contributions, features = _frames()
    down = reasons(contributions, features, direction="down")
    assert [[r.feature for r in row] for row in down] == [
        ["opp_open_count"],
        ["st_cat_lines_count_90d", "intent_cat_intensity_sum_4w"],
        [],
    ]
    assert down[0][0].text == "1 open opportunity"
    both = reasons(contributions, features, direction="both", top=2)
    assert [[(r.feature, r.contribution) for r in row] for row in both] == [
        [("opp_open_count", -1.2), ("st_cat_lines_count_90d", 0.9)],
        [("st_cat_lines_count_90d", -0.4), ("days_since_last_purchase_cat", 0.3)],
        [("days_since_last_purchase_cat", 0.2), ("intent_cat_intensity_sum_4w", 0.2)],
    ]


def test_top_bias_and_keys() -> None:
    contributions, features = _frames()
    assert [len(row) for row in reasons(contributions, features, top=1)] == [1, 1, 1]
    assert [len(row) for row in reasons(contributions, features, top=10)] == [3, 1, 4]
    only_bias = reasons(contributions[["_bias"]], features)
    assert only_bias == [[], [], []]
    # keys given: they, not the features, say the category
    keys = pd.DataFrame({"category": ["warranty", "pc", "pc"]}, index=contributions.index)
    text = reasons(contributions, features.drop(columns="category"), keys=keys)[0][0].text
    assert text == "bought warranties 3 times in the last 90 days"
    no_keys = reasons(contributions, features.drop(columns="category"))[0][0].text
    assert no_keys == "bought this category 3 times in the last 90 days"


def test_what_a_row_is_is_no_reason() -> None:
    """The row's category moves the score but tells a sales team nothing: the next feature
    is the reason instead."""
    contributions, features = _frames()
    contributions = contributions.assign(product_category=[5.0, 5.0, 5.0])
    features = features.assign(product_category=["warranty", "pc", "pc"])
    picked = reasons(contributions, features, top=2)
    assert all(r.feature != "product_category" for row in picked for r in row)
    assert picked == reasons(contributions.drop(columns="product_category"), features, top=2)


def test_same_input_same_output_whatever_the_column_order() -> None:
    contributions, features = _frames()
    first = reasons(contributions, features, direction="both")
    shuffled = contributions[list(reversed(contributions.columns))]
    assert reasons(shuffled, features[list(reversed(features.columns))], direction="both") == first
    assert reasons(contributions, features, direction="both") == first


def test_reasons_frame_is_json_able_and_keeps_the_index() -> None:
    contributions, features = _frames()
    frame = reasons_frame(contributions, features)
    assert list(frame.columns) == ["reason_1", "reason_2", "reason_3", "reasons"]
    assert frame.index.equals(contributions.index)
    assert frame.loc[10, "reason_1"] == "bought supplies 3 times in the last 90 days"
    assert frame.loc[11, "reason_1"] == "no purchase of PCs on record"
    assert frame.loc[11, "reason_2"] is None and frame.loc[11, "reason_3"] is None
    payload = json.loads(json.dumps(frame["reasons"].tolist()))
    assert payload[1] == [
        {
            "feature": "days_since_last_purchase_cat",
            "value": None,
            "contribution": 0.3,
            "text": "no purchase of PCs on record",
        }
    ]
    assert type(payload[0][0]["value"]) is int
    assert list(reasons_frame(contributions, features, top=1).columns) == ["reason_1", "reasons"]


# -- input checks ----------------------------------------------------------------------------


def test_inputs_are_checked_with_messages_that_say_what_to_do() -> None:
    contributions, features = _frames()
    with pytest.raises(InvalidRequestError, match=r"same index, row for row: pass the frame"):
        reasons(contributions, features.iloc[:2])
    with pytest.raises(InvalidRequestError, match=r"contributions \(3 rows\) and features"):
        reasons(contributions, features.reset_index(drop=True))
    with pytest.raises(InvalidRequestError, match=r"contributions \(3 rows\) and keys \(3 rows\)"):
        reasons(contributions, features, keys=features.reset_index(drop=True))
    with pytest.raises(
        InvalidRequestError,
        match=r"contributions has columns that features lacks: opp_open_count; pass the feature",
    ):
        reasons(contributions, features.drop(columns="opp_open_count"))
    with pytest.raises(InvalidRequestError, match=r"direction must be one of up, down, both"):
        reasons(contributions, features, direction="sideways")
    with pytest.raises(InvalidRequestError, match=r"top must be a whole number >= 1; got 0"):
        reasons(contributions, features, top=0)
    with pytest.raises(InvalidRequestError, match=r"features must be a pandas DataFrame, not dict"):
        reasons(contributions, features.to_dict())  # type: ignore[arg-type]
    bad = contributions.copy()
    bad.iloc[1, 0] = np.nan
    with pytest.raises(InvalidRequestError, match=r"holds NaN or infinite values; recompute"):
        reasons(bad, features)
    text = contributions.assign(opp_open_count=["a", "b", "c"])
    with pytest.raises(InvalidRequestError, match=r"not numeric: opp_open_count"):
        reasons(text, features)


# -- every feature of the current specs, from the tiny world ---------------------------------------


@pytest.fixture(scope="module")
def training_sets(
    tiny_world: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[pd.DataFrame, list[str], list[str]]]:
    """The four training sets (latest spec versions) of the tiny world: (frame, keys, features) per model."""
    from amplify_ml.datapack.ingest import ingest_pack
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.lake import Lake

    lake = Lake(tmp_path_factory.mktemp("reasons") / "lake")
    for pack in sorted(
        (tiny_world / "packs").iterdir(), key=lambda p: (p.name != "vendor", p.name)
    ):
        with contextlib.suppress(ConsentError):  # the tiny world's partner without consent
            ingest_pack(pack, lake)
    cutoffs = ["2025-10-01", "2025-11-01", "2025-12-01", "2026-01-01"]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FeatureBuilder(lake) as fb:
            for model in MODELS:
                ts, meta = fb.training_set(model, cutoffs=cutoffs)
                out[model] = (ts, list(meta.keys), list(meta.features))
    return out


def test_every_feature_of_the_specs_has_a_specific_template(training_sets: dict) -> None:
    names = sorted({f for _, _, features in training_sets.values() for f in features})
    assert len(names) > 150  # the four specs together; fewer means the build lost builders
    assert [n for n in names if not has_template(n)] == []


def test_every_value_of_the_tiny_world_reads_without_nan(training_sets: dict) -> None:
    for model, (ts, keys, features) in training_sets.items():
        ctx_cols = [k for k in ("category", "color") if k in keys]
        for f in features:
            distinct = ts[[f, *ctx_cols]].drop_duplicates()
            for row in distinct.to_dict("records"):
                value = row.pop(f)
                text = describe(f, value, row)
                assert text and not NOT_A_VALUE.search(text), (model, f, value, text)
                if not isinstance(value, str):  # a categorical's "label: value" is its template
                    assert text != fallback_text(f, value), (model, f, value)


def test_reasons_from_a_fitted_model_name_real_features(training_sets: dict) -> None:
    from amplify_ml.modeling.estimators import TimeCalibratedClassifier

    ts, keys, features = training_sets["device_failure"]
    X = ts[features]
    model = TimeCalibratedClassifier(
        n_estimators=30, params={"min_child_samples": 5, "num_threads": 1}
    ).fit(X, ts["label"], time=ts["cutoff"])
    contributions = model.contributions(X)
    got = reasons(contributions, X, keys=ts[keys])
    assert len(got) == len(X) and sum(len(r) for r in got) > len(X)
    for i, row in enumerate(got):
        assert [r.contribution for r in row] == sorted((r.contribution for r in row), reverse=True)
        for r in row:
            assert r.feature in features and r.contribution > 0
            assert r.contribution == contributions[r.feature].iat[i]
            cell = X[r.feature].iat[i]
            assert r.value == (None if pd.isna(cell) else cell)
            # the row's keys give the context (device_failure v3: its component)
            ctx = {k: ts[k].iat[i] for k in ("component",) if k in keys}
            assert r.text == describe(r.feature, cell, ctx)
    frame = reasons_frame(contributions, X, keys=ts[keys])
    json.dumps(frame["reasons"].tolist())
    assert frame["reason_1"].notna().all()


def test_a_component_rows_reasons_name_its_component_from_the_keys() -> None:
    features = pd.DataFrame({"comp_events_count_30d": [3, 2], "comp_age_days": [10, 400]})
    contributions = pd.DataFrame(
        {"comp_events_count_30d": [0.5, 0.1], "comp_age_days": [0.1, 0.4], "_bias": [0.0, 0.0]}
    )
    keys = pd.DataFrame({"device_id": ["D1", "D2"], "component": ["fuser", "other"]})
    frame = reasons_frame(contributions, features, keys=keys, top=1)
    assert list(frame["reason_1"]) == [
        "3 warnings of the fuser in the last 30 days",
        "another part in service for 1.1 years (since its last repair, else since installation)",
    ]
