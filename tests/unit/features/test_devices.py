"""Device builders on a few rows, expected values worked out by hand (cutoff 2024-06-30)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from amplify_ml.errors import ConfigError
from tests.unit.features.helpers import row, run, table

C = "2024-06-30"


@pytest.fixture(scope="module")
def fleet():
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
                contract="daas",
            ),
            dict(
                device_id="D0",
                account_id="A",
                sku="PR-1",
                installed_on="2016-01-01",
                retired_on="2020-06-30",
                replaced_by="D1",
                contract="mps",
            ),
            dict(device_id="D3", account_id="A", sku="PR-1", installed_on="2024-07-01"),
            dict(
                device_id="D4", account_id="A", sku="PR-1", installed_on="2019-01-01", retired_on=C
            ),
            dict(
                device_id="D5",
                account_id="A",
                sku="PR-1",
                installed_on="2019-01-01",
                retired_on="2024-07-01",
                contract="none",
            ),
        ],
    )
    return {"accounts": table("accounts", [dict(account_id="A")]), "install_base": ib}


def test_spine_keeps_devices_alive_at_the_cutoff(fleet) -> None:
    spine = run("device_spine", fleet, [C])
    assert list(spine["device_id"]) == ["D1", "D2", "D5"]  # D4 retired on the cutoff day
    managed = run("device_spine", fleet, [C], contracts=("mps", "daas"))
    assert list(managed["device_id"]) == ["D1", "D2"]


def test_device_profile(fleet) -> None:
    out = run("device_profile", fleet, [C])
    d1 = row(out, device_id="D1")
    assert (d1["device_age_days"], d1["days_to_warranty_end"]) == (1461, 46)
    assert d1["is_under_warranty"] and d1["is_replacement"]  # D0 was retired, replaced by D1
    assert (d1["family"], d1["device_category"], d1["contract"]) == ("Laser 1", "printer", "mps")
    assert (d1["device_list_price"], d1["family_age_days"]) == (100.0, 3468)
    d2 = row(out, device_id="D2")
    assert math.isnan(d2["days_to_warranty_end"]) and not d2["is_under_warranty"]
    assert not d2["is_replacement"]


def _pages(device: str, readings: list[tuple[str, float]]) -> list[dict]:
    return [
        dict(device_id=device, observed_at=t, metric="page_count", value=v) for t, v in readings
    ]


@pytest.fixture(scope="module")
def pages(fleet):
    tel = table(
        "telemetry",
        _pages(
            "D1",
            [
                ("2024-03-01T03:00:00Z", 1000.0),
                ("2024-04-01T03:00:00Z", 1300.0),  # 90 days before: outside the 90-day window
                ("2024-04-02T03:00:00Z", 1310.0),
                ("2024-06-01T03:00:00Z", 1910.0),  # after a 60-day gap
                ("2024-06-20T03:00:00Z", 50.0),  # counter reset: 50 pages since
                ("2024-06-25T03:00:00Z", 150.0),
                ("2024-06-30T23:00:00Z", 170.0),  # late on the cutoff day: counts
                ("2024-07-01T01:00:00Z", 9999.0),  # after the cutoff
            ],
        )
        + _pages("D5", [("2024-06-01T03:00:00Z", 100.0), ("2024-06-11T03:00:00Z", 300.0)]),
    )
    return {**fleet, "telemetry": tel}


def test_pages_from_counter_increments(pages) -> None:
    out = run("telemetry_pages", pages, [C], windows=(7, 30, 90))
    d1 = row(out, device_id="D1")
    assert (d1["telemetry_pages_sum_7d"], d1["telemetry_pages_per_day_mean_7d"]) == (120.0, 12.0)
    assert d1["telemetry_pages_sum_30d"] == 770.0  # 600 + 50 (reset) + 100 + 20
    assert d1["telemetry_pages_per_day_mean_30d"] == pytest.approx(770 / 89)  # over 89 days
    assert d1["telemetry_pages_sum_90d"] == 780.0
    assert d1["telemetry_pages_per_day_mean_90d"] == pytest.approx(780 / 90)
    assert d1["telemetry_pages_trend_30d_vs_90d"] == pytest.approx((770 / 89) / (780 / 90))
    assert "D2" not in set(out["device_id"])  # no page counter: no row, never zeros


def test_pages_relative_to_the_family(pages) -> None:
    out = run("telemetry_pages_vs_family", pages, [C], window=90)
    family_mean = (780 / 90 + 20.0) / 2
    assert row(out, device_id="D1")["telemetry_pages_vs_family_90d"] == pytest.approx(
        (780 / 90) / family_mean
    )
    assert row(out, device_id="D5")["telemetry_pages_vs_family_90d"] == pytest.approx(
        20.0 / family_mean
    )


def test_health_last_and_slopes(fleet) -> None:
    def h(metric: str, t: str, v: float) -> dict:
        return dict(device_id="D2", observed_at=t, metric=metric, value=v)

    tel = table(
        "telemetry",
        [
            h("battery_health_pct", "2024-06-30T02:00:00Z", 80.0),
            h("battery_health_pct", "2024-06-20T02:00:00Z", 84.0),
            h("battery_health_pct", "2024-06-10T02:00:00Z", 88.0),
            h("battery_health_pct", "2024-05-01T02:00:00Z", 90.0),
            h("battery_health_pct", "2024-07-02T02:00:00Z", 10.0),
            h("disk_health_pct", "2024-06-15T02:00:00Z", 95.0),
            # another *_health_pct metric is read past the first filter and counts nowhere
            h("fan_health_pct", "2024-06-29T02:00:00Z", 1.0),
            h("fan_health_pct", "2024-06-30T02:00:00Z", 2.0),
        ],
    )
    d2 = row(
        run("telemetry_health", {**fleet, "telemetry": tel}, [C], windows=(30, 90)), device_id="D2"
    )
    assert d2["telemetry_battery_health_last"] == 80.0
    assert d2["telemetry_battery_health_slope_30d"] == pytest.approx(-0.4)
    # least squares over x = (0, -10, -20, -60) days, y = (80, 84, 88, 90)
    assert d2["telemetry_battery_health_slope_90d"] == pytest.approx(-1220 / 8300)
    assert d2["telemetry_disk_health_last"] == 95.0
    assert math.isnan(d2["telemetry_disk_health_slope_90d"])  # one reading: no slope


@pytest.fixture(scope="module")
def events(fleet):
    def e(device: str, t: str, code: str, severity: str) -> dict:
        return dict(device_id=device, occurred_at=t, code=code, severity=severity)

    ev = table(
        "device_events",
        [
            e("D1", "2024-06-30T10:00:00Z", "13.A2.D3", "warning"),
            e("D1", "2024-06-30T11:00:00Z", "13.B1.E4", "warning"),
            e("D1", "2024-06-30T12:00:00Z", "50.00.01", "error"),
            e("D1", "2024-06-20T12:00:00Z", "50.C7.F2", "warning"),
            e("D1", "2024-04-15T12:00:00Z", "10.00.00", "info"),
            e("D1", "2024-07-01T12:00:00Z", "13.A2.D3", "error"),
            e("D2", "2023-01-01T12:00:00Z", "61.A2.D3", "error"),
        ],
    )
    return {**fleet, "device_events": ev}


def test_event_counts_by_severity_and_prefix(events) -> None:
    out = run("device_event_counts", events, [C], windows=(7, 30, 90), code_prefixes=("13", "50"))
    d1 = row(out, device_id="D1")
    assert (d1["dev_events_count_7d"], d1["dev_events_count_30d"], d1["dev_events_count_90d"]) == (
        3,
        4,
        5,
    )
    assert (d1["dev_events_warning_count_7d"], d1["dev_events_error_count_7d"]) == (2, 1)
    assert (d1["dev_events_warning_count_30d"], d1["dev_events_info_count_90d"]) == (3, 1)
    assert (d1["dev_events_prefix_13_count_7d"], d1["dev_events_prefix_50_count_7d"]) == (2, 1)
    assert d1["dev_events_prefix_50_count_30d"] == 2
    assert (d1["dev_events_prefix_other_count_30d"], d1["dev_events_prefix_other_count_90d"]) == (
        0,
        1,
    )


def test_event_bursts_and_days_since_error(events) -> None:
    out = run("device_event_bursts", events, [C], windows=(7, 30))
    d1 = row(out, device_id="D1")
    assert (d1["dev_events_daily_count_max_7d"], d1["dev_events_daily_count_max_30d"]) == (3, 3)
    assert d1["days_since_last_error_event"] == 0
    d2 = row(out, device_id="D2")
    assert d2["days_since_last_error_event"] == 546  # 2023-01-01
    assert math.isnan(d2["dev_events_daily_count_max_7d"])  # zero-filled in the training set


def test_device_tickets(fleet) -> None:
    def t(device: str | None, opened: str, kind: str, component: str | None = None) -> dict:
        return dict(
            account_id="A", device_id=device, opened_at=opened, kind=kind, component=component
        )

    tickets = table(
        "service_events",
        [
            t("D1", "2024-06-29T09:00:00Z", "repair", "fuser"),
            t("D1", "2024-03-01T09:00:00Z", "part_replacement", "drum"),
            t("D1", "2023-08-01T09:00:00Z", "incident"),
            t("D1", "2024-07-01T09:00:00Z", "repair", "fuser"),
            t("D1", "2022-01-01T09:00:00Z", "repair", "fuser"),
            t(None, "2024-06-29T09:00:00Z", "incident"),
            t("D2", "2021-05-05T09:00:00Z", "part_replacement", "battery"),
        ],
    )
    out = run(
        "svc_device_counts",
        {**fleet, "service_events": tickets},
        [C],
        windows=(90, 365),
        kinds=("incident", "repair"),
        components=("fuser",),
    )
    d1 = row(out, device_id="D1")
    assert (d1["svc_dev_repair_count_90d"], d1["svc_dev_repair_count_365d"]) == (1, 1)
    assert (d1["svc_dev_incident_count_90d"], d1["svc_dev_incident_count_365d"]) == (0, 1)
    assert d1["svc_dev_component_fuser_count_365d"] == 1
    assert d1["days_since_last_repair"] == 1  # repair or part_replacement
    assert row(out, device_id="D2")["days_since_last_repair"] == 1152


def test_retirement_age_of_the_accounts_devices(fleet) -> None:
    out = run("ib_retired_age", fleet, [C, "2020-06-29"])
    # printers of A retired by the cutoff: D0 at 1642 days old, D4 (on the cutoff) at 2007
    assert list(out.device_id) == ["D1", "D5"]  # no PC of A was retired: nothing for D2
    d1 = row(out, device_id="D1")
    assert (d1["ib_retired_age_mean_days"], d1["ib_retired_devices_count"]) == (1824.5, 2)
    assert d1["device_age_vs_retired_age"] == pytest.approx(1461 / 1824.5)
    assert row(out, device_id="D5")["device_age_vs_retired_age"] == pytest.approx(2007 / 1824.5)


@pytest.fixture(scope="module")
def repairs(fleet):
    def t(device: str, opened: str, kind: str, component: str | None = None) -> dict:
        return dict(
            account_id="A", device_id=device, opened_at=opened, kind=kind, component=component
        )

    def e(device: str, at: str, code: str, severity: str = "warning") -> dict:
        return dict(device_id=device, occurred_at=at, code=code, severity=severity)

    tickets = table(
        "service_events",
        [
            t("D1", "2024-06-20T09:00:00Z", "repair", "fuser"),
            t("D1", "2024-07-01T09:00:00Z", "repair", "fuser"),  # after the cutoff
            t("D1", "2023-01-01T09:00:00Z", "part_replacement", "drum"),
            t("D1", "2024-06-25T09:00:00Z", "incident", "roller"),  # not a repair
            t("D1", "2023-08-01T09:00:00Z", "incident"),
            t("D1", "2024-02-01T09:00:00Z", "preventive", "maintenance kit"),
            t("D1", "2024-05-01T09:00:00Z", "preventive", "maintenance kit"),
            t("D2", "2024-06-30T08:00:00Z", "repair", "battery"),
        ],
    )
    events = table(
        "device_events",
        [
            e("D1", "2024-06-30T10:00:00Z", "13.A2.D3"),  # roller, never repaired
            e("D1", "2024-06-30T11:00:00Z", "13.B1.E4"),
            e("D1", "2024-06-01T11:00:00Z", "130.00.00"),  # prefix 130, not 13
            e("D1", "2024-06-30T12:00:00Z", "50.00.01", "error"),  # fuser, after its repair
            e("D1", "2024-06-20T12:00:00Z", "50.C7.F2"),  # on the repair's day: not after it
            e("D1", "2024-06-10T12:00:00Z", "50.11.11"),  # before the repair
            e("D1", "2024-04-15T12:00:00Z", "10.00.00", "info"),  # no component
            e("D1", "2024-07-01T12:00:00Z", "13.A2.D3", "error"),  # after the cutoff
            e("D1", "2023-08-01T12:00:00Z", "31.00.01"),  # drum, after its repair, 334 days ago
            e("D1", "2023-07-01T12:00:00Z", "31.00.02"),  # 365 days ago: outside the lookback
            e("D2", "2024-06-30T07:00:00Z", "61.00.01", "error"),  # battery, its repair's day
        ],
    )
    return {**fleet, "service_events": tickets, "device_events": events}


def test_component_repairs_days_since_and_events_after(repairs) -> None:
    out = run(
        "component_repairs",
        repairs,
        [C],
        components=("fuser", "drum", "roller", "battery"),
        code_prefixes=("50", "31", "13", "61"),
        lookback=365,
    )
    d1 = row(out, device_id="D1")
    assert (d1["days_since_fuser_repair"], d1["days_since_drum_repair"]) == (10, 546)
    assert math.isnan(d1["days_since_roller_repair"])  # an incident is not a repair
    assert math.isnan(d1["days_since_battery_repair"])
    assert d1["dev_events_fuser_count_since_repair_365d"] == 1
    assert d1["dev_events_drum_count_since_repair_365d"] == 1
    assert d1["dev_events_roller_count_since_repair_365d"] == 2
    assert d1["dev_events_battery_count_since_repair_365d"] == 0
    d2 = row(out, device_id="D2")
    assert d2["days_since_battery_repair"] == 0  # repaired on the cutoff day
    # its only event came on the repair's day: no count row (zero-filled in the training set)
    assert math.isnan(d2["dev_events_battery_count_since_repair_365d"])


def test_component_repairs_needs_one_code_prefix_per_component(repairs) -> None:
    with pytest.raises(ConfigError, match="2 components and 1 code prefixes"):
        run("component_repairs", repairs, [C], components=("fuser", "drum"), code_prefixes=("50",))


def test_days_since_the_last_ticket_of_a_kind(repairs) -> None:
    out = run("svc_device_recency", repairs, [C], kinds=("preventive", "incident"))
    d1 = row(out, device_id="D1")
    # the roller incident of 2024-06-25 is the latest incident
    assert (d1["days_since_last_preventive"], d1["days_since_last_incident"]) == (60, 5)
    assert list(out["device_id"]) == ["D1"]  # D2 has neither kind of ticket


# -- device x component ----------------------------------------------------------------------

SPINE = dict(
    contracts=("mps", "daas"),
    components=("fuser", "drum", "roller", "battery"),
    categories=("printer", "printer", "printer", "pc"),
    other="other",
)


def test_device_component_spine_lists_its_category_components_and_other(fleet) -> None:
    out = run("device_component_spine", fleet, [C], **SPINE)
    got = sorted(zip(out.device_id, out.component, strict=True))
    # D0/D4 retired, D3 not installed yet, D5 under no managed contract
    assert got == [
        ("D1", "drum"),
        ("D1", "fuser"),
        ("D1", "other"),
        ("D1", "roller"),
        ("D2", "battery"),
        ("D2", "other"),
    ]
    no_other = run("device_component_spine", fleet, [C], **{**SPINE, "other": ""})
    assert "other" not in set(no_other.component) and len(no_other) == 4


def test_device_component_spine_needs_one_category_per_component(fleet) -> None:
    with pytest.raises(ConfigError, match="2 components and 1 categories"):
        run("device_component_spine", fleet, [C], components=("a", "b"), categories=("pc",))


@pytest.fixture(scope="module")
def component_world(repairs):
    def h(metric: str, at: str, v: float) -> dict:
        return dict(device_id="D2", observed_at=at, metric=metric, value=v)

    def pages(at: str, v: float) -> dict:
        return dict(device_id="D1", observed_at=at, metric="page_count", value=v)

    telemetry = table(
        "telemetry",
        [
            h("battery_health_pct", "2024-06-30T02:00:00Z", 78.0),
            h("battery_health_pct", "2024-06-10T02:00:00Z", 80.0),
            h("battery_health_pct", "2024-04-01T02:00:00Z", 95.0),  # 90 days back: outside
            h("battery_health_pct", "2024-07-02T02:00:00Z", 10.0),  # after the cutoff
            h("disk_health_pct", "2024-06-15T02:00:00Z", 95.0),  # no disk row: dropped
            pages("2024-06-10T05:00:00Z", 1000.0),  # first reading: no increment
            pages("2024-06-20T05:00:00Z", 1500.0),
            pages("2024-06-30T05:00:00Z", 2500.0),
            pages("2024-07-10T05:00:00Z", 9000.0),  # after the cutoff
        ],
    )
    return {**repairs, "telemetry": telemetry}


def test_component_state_own_component_under_common_names(component_world) -> None:
    out = run(
        "component_state",
        component_world,
        [C],
        settings_of={"device_component_spine": SPINE},
        components=("fuser", "drum", "roller", "battery"),
        code_prefixes=("50", "31", "13", "61"),
        windows=(7, 30),
        lookback=365,
        health_window=60,
        use_window=30,
    )
    assert len(out) == 6  # one row per spine row
    fuser = row(out, device_id="D1", component="fuser")
    assert fuser["component_name"] == "fuser"
    # repaired 2024-06-20; its events on 06-30 (after), 06-20 (the repair's day), 06-10
    assert (fuser["days_since_comp_repair"], fuser["comp_repairs_count_365d"]) == (10, 1)
    assert (fuser["comp_events_count_7d"], fuser["comp_events_count_30d"]) == (1, 3)
    assert fuser["comp_events_count_since_repair_365d"] == 1
    # renewed 10 days ago; 1,500 pages over the 20 days between readings in the last 30 days
    assert fuser["comp_age_days"] == 10 and fuser["comp_use_pages_est"] == 10 * 75.0
    drum = row(out, device_id="D1", component="drum")
    # replaced 2023-01-01 (546 days): outside the 365 days of repairs; one event since
    # (counts without a row are null here, zero-filled in the training set)
    assert drum["days_since_comp_repair"] == 546 and math.isnan(drum["comp_repairs_count_365d"])
    assert drum["comp_events_count_30d"] == 0 and drum["comp_events_count_since_repair_365d"] == 1
    assert drum["comp_use_pages_est"] == 546 * 75.0
    roller = row(out, device_id="D1", component="roller")
    # never repaired (an incident is no repair): as old as the device, installed 2020-06-30
    assert math.isnan(roller["days_since_comp_repair"]) and roller["comp_age_days"] == 1461
    assert (roller["comp_events_count_7d"], roller["comp_events_count_since_repair_365d"]) == (2, 2)
    assert math.isnan(roller["comp_health_last"])
    other = row(out, device_id="D1", component="other")
    assert other["component_name"] == "other" and other["comp_age_days"] == 1461
    assert math.isnan(other["comp_events_count_30d"])
    battery = row(out, device_id="D2", component="battery")
    assert (battery["days_since_comp_repair"], battery["comp_age_days"]) == (0, 0)
    # its event came on the repair's day, before it: in the windows, not since the repair
    assert (battery["comp_events_count_7d"], battery["comp_events_count_since_repair_365d"]) == (
        1,
        0,
    )
    # 80 on 06-10, 78 on 06-30 (the April and July readings outside the window)
    assert battery["comp_health_last"] == 78.0
    assert battery["comp_health_slope_60d"] == pytest.approx(-0.1)
    assert math.isnan(battery["comp_use_pages_est"])  # the PC reports no pages
    assert math.isnan(row(out, device_id="D2", component="other")["comp_health_last"])


COMPONENT_STATE = dict(
    settings_of={"device_component_spine": SPINE},
    components=("fuser", "drum", "roller", "battery"),
    code_prefixes=("50", "31", "13", "61"),
    windows=(7, 30),
    use_window=30,
)
"""component_state's settings for the component world (lookback: the default 365 days)."""


def test_component_state_reads_wear_from_warnings_and_health(component_world) -> None:
    kw = COMPONENT_STATE
    plain = run("component_state", component_world, [C], **kw)
    assert not {"comp_warning_rate", "comp_wear_index"} & set(plain.columns)  # v3 unchanged
    wear = dict(
        wear_exponent=2.0,
        failure_shape=2.0,
        health_components=("battery",),
        health_exponents=(2.0,),
        horizon=30,
    )
    out = run("component_state", component_world, [C], **kw, **wear)
    fuser = row(out, device_id="D1", component="fuser")
    # 1 warning in the 10 days since its repair, read as if over 90 days (WEAR_MIN_DAYS):
    # r^2 = (1 + 1/2) x 3 / 90^3, wear 10 r, hazard over 30 days W^2 ((1 + 30/90)^2 - 1)
    w = 10 * math.sqrt(4.5 / 90**3)
    assert fuser["comp_warning_rate"] == pytest.approx(1 / 90)
    assert fuser["comp_wear_index"] == pytest.approx(w)
    assert fuser["comp_hazard_index_next_30d"] == pytest.approx(w**2 * 7 / 9)
    # the drum is 546 days old: its warning counts over the last 365 (days 181 to 546)
    drum = row(out, device_id="D1", component="drum")
    r = math.sqrt(1.5 * 3 / (546**3 - 181**3))
    assert drum["comp_wear_index"] == pytest.approx(546 * r)
    assert drum["comp_warning_rate"] == pytest.approx(1 / 365)
    assert drum["comp_hazard_index_next_30d"] == pytest.approx(
        (546 * r) ** 2 * ((1 + 30 / 546) ** 2 - 1)
    )
    roller = row(out, device_id="D1", component="roller")  # 2 warnings, more worn
    assert roller["comp_wear_index"] == pytest.approx(1461 * math.sqrt(7.5 / (1461**3 - 1096**3)))
    assert (
        roller["comp_hazard_index_next_30d"]
        > row(out, device_id="D1", component="other")["comp_hazard_index_next_30d"]
    )
    # the battery was renewed today: its health readings describe the old one, so its wear
    # comes from its warnings (none) over its day of age
    battery = row(out, device_id="D2", component="battery")
    assert battery["comp_wear_index"] == pytest.approx(math.sqrt(1.5 / 90**3))
    assert battery["comp_warning_rate"] == 0
    # without that repair, its last reading (78) gives its wear: sqrt(0.22)
    world = dict(component_world)
    t = world["service_events"]
    world["service_events"] = t[~((t["device_id"] == "D2") & (t["component"] == "battery"))]
    kept = run("component_state", world, [C], **kw, **wear)
    battery = row(kept, device_id="D2", component="battery")
    age = battery["comp_age_days"]
    assert age > 90 and battery["comp_wear_index"] == pytest.approx(math.sqrt(0.22))
    assert battery["comp_hazard_index_next_30d"] == pytest.approx(0.22 * ((1 + 30 / age) ** 2 - 1))
    with pytest.raises(ConfigError, match=r"wear model needs .* a horizon"):
        run("component_state", component_world, [C], **kw, wear_exponent=2.0)


def test_component_state_reads_wear_from_use(component_world) -> None:
    kw = {**COMPONENT_STATE, "failure_shape": 2.0, "horizon": 30}
    plain = run("component_state", component_world, [C], **kw)
    assert not {c for c in plain.columns if c.startswith("comp_use_") and c != "comp_use_pages_est"}

    def reading(device: str, metric: str, at: str, v: float) -> dict:
        return dict(device_id=device, observed_at=at, metric=metric, value=v)

    world = dict(component_world)
    world["telemetry"] = pd.concat(
        [
            world["telemetry"],
            table(
                "telemetry",
                [
                    # D5 (a PR-1 like D1, under no contract: no row, but in the family's mean)
                    reading("D5", "page_count", "2024-06-10T05:00:00Z", 0.0),
                    reading("D5", "page_count", "2024-06-30T05:00:00Z", 500.0),
                    # D2's charge cycles: +4 in 10 days, then the new battery's first 2
                    reading("D2", "battery_cycle_count", "2024-06-10T02:00:00Z", 100.0),
                    reading("D2", "battery_cycle_count", "2024-06-20T02:00:00Z", 104.0),
                    reading("D2", "battery_cycle_count", "2024-06-30T02:00:00Z", 2.0),
                    reading("D2", "battery_cycle_count", "2024-07-10T02:00:00Z", 90.0),  # after
                ],
            ),
        ],
        ignore_index=True,
    )
    out = run("component_state", world, [C], **kw, usage_wear=True)
    # D1 printed 75 pages a day over the 30 days (as comp_use_pages_est), D5 25: their family's
    # mean is 50, so D1 is used 1.5 times as much; the fuser is 10 days old (90 in the growth)
    fuser = row(out, device_id="D1", component="fuser")
    w = 1.5 * 10 / 365.25
    assert fuser["comp_use_rel"] == pytest.approx(1.5)
    assert fuser["comp_use_wear_index"] == pytest.approx(w)
    assert fuser["comp_use_hazard_index_next_30d"] == pytest.approx(w**2 * 7 / 9)
    drum = row(out, device_id="D1", component="drum")  # 546 days old: the same use, more wear
    w = 1.5 * 546 / 365.25
    assert drum["comp_use_wear_index"] == pytest.approx(w)
    assert drum["comp_use_hazard_index_next_30d"] == pytest.approx(w**2 * ((1 + 30 / 546) ** 2 - 1))
    # D2 is the only PC-1 that reports cycles (6 over 20 days, the reset read as 2): as used
    # as its family; its battery is new today (a day old in the wear, 90 in the growth)
    battery = row(out, device_id="D2", component="battery")
    assert battery["comp_use_rel"] == pytest.approx(1.0)
    assert battery["comp_use_wear_index"] == pytest.approx(1 / 365.25)
    assert battery["comp_use_hazard_index_next_30d"] == pytest.approx((1 / 365.25) ** 2 * 7 / 9)
    # D5's pages are the family's: without them D1 is as used as its family
    t = world["telemetry"]
    alone = run(
        "component_state",
        {**world, "telemetry": t[t["device_id"] != "D5"]},
        [C],
        **kw,
        usage_wear=True,
    )
    assert row(alone, device_id="D1", component="fuser")["comp_use_rel"] == pytest.approx(1.0)
    # no counter read: no use, and no wear from it (null, not zero)
    none = run("component_state", component_world, [C], **kw, usage_wear=True)
    battery = row(none, device_id="D2", component="battery")
    assert math.isnan(battery["comp_use_rel"]) and math.isnan(battery["comp_use_wear_index"])
    with pytest.raises(ConfigError, match=r"usage_wear needs .* a horizon"):
        run("component_state", world, [C], **COMPONENT_STATE, usage_wear=True)


def test_component_state_reads_the_season_of_the_horizon_from_the_fleet_a_year_earlier(
    component_world,
) -> None:
    kw = {**COMPONENT_STATE, "wear_exponent": 2.0, "failure_shape": 2.0, "horizon": 30}
    plain = run("component_state", component_world, [C], **kw)
    assert not {c for c in plain.columns if "season" in c or c.startswith("fleet_")}
    # the fleet's page counter read every 10 days from 370 days before the cutoff: 50 pages a
    # day over the 30 days from a year before the cutoff (readings 360, 350 and 340 days before
    # it), 100 a day otherwise
    cday = pd.Timestamp(C)
    days = range(-370, 1, 10)
    pages = [0.0]
    for d in days[1:]:
        pages.append(pages[-1] + 10 * (50 if d <= -340 else 100))
    t = component_world["telemetry"]
    readings = table(
        "telemetry",
        [
            dict(
                device_id="D5",
                observed_at=(cday + pd.Timedelta(days=d, hours=5)).isoformat() + "Z",
                metric="page_count",
                value=v,
            )
            for d, v in zip(days, pages, strict=True)
        ],
    )
    world = {**component_world, "telemetry": pd.concat([t[t["metric"] != "page_count"], readings])}
    out = run("component_state", world, [C], **kw, season=True)
    # the horizon's days a year earlier: 1,500 pages over 30 days; the year: 35,500 over 370
    factor = 50 / (35_500 / 370)
    assert len(out) == len(plain) > 0
    assert out["fleet_use_next_30d_vs_year"].to_numpy() == pytest.approx(factor)
    for r in out.itertuples():
        assert r.comp_hazard_index_season_next_30d == pytest.approx(
            r.comp_hazard_index_next_30d * factor
        )
    # the other columns are the wear model's without the season
    same = run("component_state", world, [C], **kw)
    pd.testing.assert_frame_equal(out[same.columns], same)
    # less than SEASON_MIN_DAYS of history behind the cutoff: no season (null, not 1)
    t = world["telemetry"]
    recent = t[
        pd.to_datetime(t["observed_at"], utc=True)
        > cday.tz_localize("UTC") - pd.Timedelta(days=250)
    ]
    short = run("component_state", {**world, "telemetry": recent}, [C], **kw, season=True)
    assert short["fleet_use_next_30d_vs_year"].isna().all()
    assert short["comp_hazard_index_season_next_30d"].isna().all()
    with pytest.raises(ConfigError, match=r"season scales the wear model's hazard"):
        run("component_state", world, [C], **COMPONENT_STATE, season=True)


def test_component_state_reads_nothing_after_the_cutoff(component_world) -> None:
    kw = COMPONENT_STATE
    before = run("component_state", component_world, [C], **kw)
    when = {
        "service_events": "opened_at",
        "device_events": "occurred_at",
        "telemetry": "observed_at",
    }
    end = pd.Timestamp(C + "T23:59:59Z")
    known = dict(component_world)
    for name, col in when.items():
        t = known[name]
        known[name] = t[pd.to_datetime(t[col], utc=True) <= end]
    after = run("component_state", known, [C], **kw)
    pd.testing.assert_frame_equal(before, after)


def test_component_state_needs_one_code_prefix_per_component(component_world) -> None:
    with pytest.raises(ConfigError, match="2 components and 1 code prefixes"):
        run(
            "component_state",
            component_world,
            [C],
            settings_of={"device_component_spine": SPINE},
            components=("fuser", "drum"),
            code_prefixes=("50",),
        )
