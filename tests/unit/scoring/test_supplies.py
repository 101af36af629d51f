"""Ship-by dates from the depletion model's quantiles, worked out by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from amplify_ml.errors import InvalidRequestError
from amplify_ml.scoring.supplies import ship_plan, status_counts


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": ["P1", "P1", "P1", "P2"],
            "account_id": ["A1", "A1", "A2", "B1"],
            "device_id": ["D1", "D1", "D2", "E1"],
            "color": ["black", "cyan", "black", "black"],
            "as_of": pd.Timestamp("2026-09-30"),
            "p10_days": [4.0, 20.0, 60.0, 10.0],
            "p50_days": [8.0, 30.0, 90.0, 15.0],
            "p90_days": [12.0, 40.0, 180.0, 20.0],
            "beyond_window": [False, False, True, False],
            "model_version": "3",
        }
    )


def test_ship_on_the_alpha_quantile_minus_the_lead_time() -> None:
    plan = ship_plan(_scores(), alpha=0.1, lead_time_days=5, soon_days=7)
    by = plan.set_index(["device_id", "color"])
    # D1 black: P10 4 days - 5 days lead = -1: ship now (today)
    assert by.loc[("D1", "black"), "status"] == "ship now"
    assert by.loc[("D1", "black"), "ship_by"] == date(2026, 9, 30)
    assert by.loc[("D1", "black"), "threshold_p50_date"] == date(2026, 10, 8)
    # D1 cyan: 20 - 5 = 15 days: 2026-10-15, beyond the 7 "soon" days: ok
    assert by.loc[("D1", "cyan"), "ship_by"] == date(2026, 10, 15)
    assert by.loc[("D1", "cyan"), "status"] == "ok"
    # E1: 10 - 5 = 5 days: soon
    assert by.loc[("E1", "black"), "days_to_ship"] == 5
    assert by.loc[("E1", "black"), "status"] == "soon"
    # D2: beyond the window, flagged
    assert bool(by.loc[("D2", "black"), "beyond_window"])
    assert list(plan["status"]) == ["ship now", "soon", "ok", "ok"]
    assert status_counts(plan) == {"ship now": 1, "soon": 1, "ok": 2}


def test_alpha_between_levels_is_interpolated_and_a_longer_lead_ships_earlier() -> None:
    # alpha 0.3: half way from P10 (0.1) to P50 (0.5) -> 20 + (30-20)*0.5 = 25 for D1 cyan
    plan = ship_plan(_scores(), alpha=0.3, lead_time_days=5).set_index(["device_id", "color"])
    assert plan.loc[("D1", "cyan"), "days_to_ship"] == 20
    longer = ship_plan(_scores(), alpha=0.3, lead_time_days=12).set_index(["device_id", "color"])
    assert longer.loc[("D1", "cyan"), "days_to_ship"] == 13


def test_a_partners_plan_holds_only_its_devices() -> None:
    plan = ship_plan(_scores(), partners=["P2"])
    assert set(plan["partner_id"]) == {"P2"} and len(plan) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"alpha": 0.0}, "alpha must be between 0 and 1"), ({"lead_time_days": -1}, "lead time")],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        ship_plan(_scores(), **kwargs)


def test_a_table_of_another_model_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not a depletion score table: missing"):
        ship_plan(pd.DataFrame({"as_of": [], "probability": []}))
