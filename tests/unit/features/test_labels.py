"""Labels use rows dated in (cutoff, cutoff + horizon] only (cutoff 2024-06-30)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from amplify_ml.features.cutoffs import epoch_day
from tests.unit.features.helpers import P, row, run, table
from tests.unit.features.test_supplies import supplies  # noqa: F401 - fixture

C = "2024-06-30"


def _spine(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(0, "partner_id", P)
    df["cutoff"] = date(2024, 6, 30)
    df["cday"] = epoch_day(date(2024, 6, 30))
    return df


def test_bought_in_category() -> None:
    sales = table(
        "sell_through",
        [
            dict(account_id="A", sku="PR-1", sold_on="2024-07-01", quantity=1, net_amount=1.0),
            dict(account_id="A", sku="TN-1-K", sold_on="2024-07-05", quantity=-1, net_amount=-1.0),
            dict(account_id="A", sku="PC-1", sold_on="2024-09-28", quantity=1, net_amount=1.0),
            dict(account_id="A", sku="AC-1", sold_on="2024-09-29", quantity=1, net_amount=1.0),
            dict(account_id="A", sku="SV-1", sold_on=C, quantity=1, net_amount=1.0),
        ],
    )
    spine = _spine(
        [
            dict(account_id="A", category=c)
            for c in ("printer", "pc", "supplies", "service", "accessory")
        ]
    )
    out = run(
        "label_bought_in_category",
        {"accounts": table("accounts", [dict(account_id="A")]), "sell_through": sales},
        [C],
        extra={"spine": spine},
        horizon_days=90,
    )
    got = dict(zip(out.category, out.label, strict=True))
    # a return is no purchase; day 90 is inside, day 91 and the cutoff day are not
    assert got == {"printer": 1, "pc": 1, "supplies": 0, "service": 0, "accessory": 0}


def test_retired_or_replaced_within_the_horizon() -> None:
    ib = table(
        "install_base",
        [
            dict(
                device_id="D1",
                account_id="A",
                sku="PR-1",
                installed_on="2020-01-01",
                retired_on="2024-12-27",
            ),
            dict(
                device_id="D2",
                account_id="A",
                sku="PR-1",
                installed_on="2020-01-01",
                retired_on="2024-12-28",
            ),
            dict(
                device_id="D3",
                account_id="A",
                sku="PR-1",
                installed_on="2020-01-01",
                replaced_by="D4",
            ),
            dict(device_id="D4", account_id="A", sku="PR-1", installed_on="2024-08-01"),
        ],
    )
    spine = _spine([dict(account_id="A", device_id=d) for d in ("D1", "D2", "D3")])
    tabs = {"accounts": table("accounts", [dict(account_id="A")]), "install_base": ib}
    out = run("label_retired", tabs, [C], extra={"spine": spine}, horizon_days=180)
    # D3 has no retired_on, but was replaced by D4 on 2024-08-01: replaced counts as retired
    assert list(out.label) == [1, 0, 1]
    spine = run("device_spine", tabs, ["2024-07-31", "2024-08-01"])
    assert list(spine[spine.device_id == "D3"].cutoff) == ["2024-07-31"]


def test_repair_opened_within_the_horizon() -> None:
    tickets = table(
        "service_events",
        [
            dict(account_id="A", device_id="D1", opened_at="2024-07-30T23:00:00Z", kind="repair"),
            dict(account_id="A", device_id="D2", opened_at="2024-07-02T09:00:00Z", kind="incident"),
            dict(
                account_id="A",
                device_id="D2",
                opened_at="2024-06-30T12:00:00Z",
                kind="part_replacement",
            ),
        ],
    )
    spine = _spine([dict(account_id="A", device_id="D1"), dict(account_id="A", device_id="D2")])
    tabs = {"accounts": table("accounts", [dict(account_id="A")]), "service_events": tickets}
    out = run("label_repair_opened", tabs, [C], extra={"spine": spine}, horizon_days=30)
    assert list(out.label) == [1, 0]


def test_days_to_threshold_and_censoring(supplies) -> None:  # noqa: F811
    spine = _spine(
        [
            dict(account_id="A", device_id="D1", color="black"),
            dict(account_id="A", device_id="D5", color="black"),
        ]
    )
    out = run("label_days_to_threshold", supplies, [C], extra={"spine": spine}, horizon_days=180)
    d1 = row(out, device_id="D1")
    assert (d1["label"], d1["censored"]) == (32.0, False)
    d5 = row(out, device_id="D5")
    assert math.isnan(d5["label"]) and d5["censored"]
    short = run("label_days_to_threshold", supplies, [C], extra={"spine": spine}, horizon_days=30)
    assert short.censored.all()


def test_component_repaired_within_the_horizon() -> None:
    def t(device: str, at: str, kind: str, component: str | None) -> dict:
        return dict(account_id="A", device_id=device, opened_at=at, kind=kind, component=component)

    tickets = table(
        "service_events",
        [
            t("D1", "2024-07-30T23:00:00Z", "repair", "fuser"),  # day 30: inside
            t("D1", "2024-07-31T01:00:00Z", "repair", "drum"),  # day 31: outside
            t("D1", "2024-07-05T09:00:00Z", "incident", "drum"),  # no repair
            t("D1", "2024-06-30T12:00:00Z", "part_replacement", "drum"),  # the cutoff day
            t("D2", "2024-07-02T09:00:00Z", "part_replacement", None),  # names no component
            t("D3", "2024-07-02T09:00:00Z", "repair", "fuser"),  # not a component of a PC
        ],
    )
    spine = _spine(
        [
            dict(account_id="A", device_id=d, component=c)
            for d, cs in (("D1", ("drum", "fuser", "other")), ("D2", ("drum", "other")))
            for c in cs
        ]
        + [dict(account_id="A", device_id="D3", component=c) for c in ("battery", "other")]
    )
    tabs = {"accounts": table("accounts", [dict(account_id="A")]), "service_events": tickets}
    out = run(
        "label_component_repaired",
        tabs,
        [C],
        extra={"spine": spine},
        horizon_days=30,
        other="other",
    )
    got = {(d, c): y for d, c, y in zip(out.device_id, out.component, out.label, strict=True)}
    assert got == {
        ("D1", "drum"): 0,
        ("D1", "fuser"): 1,
        ("D1", "other"): 0,
        ("D2", "drum"): 0,
        ("D2", "other"): 1,  # the repair naming no component
        ("D3", "battery"): 0,
        ("D3", "other"): 1,  # a fuser on a PC: none of its components
    }
    # without an other row those repairs count nowhere
    out = run("label_component_repaired", tabs, [C], extra={"spine": spine}, horizon_days=30)
    assert out.label.sum() == 1
