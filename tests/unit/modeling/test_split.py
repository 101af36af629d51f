"""The cutoffs of a backtest: evaluation on the latest complete labels, training before them,
never before the data begin."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from amplify_ml.errors import InvalidRequestError
from amplify_ml.modeling.backtest import final_cutoffs, plan_split
from amplify_ml.modeling.spec import load_model_spec

SPEC = load_model_spec("propensity_to_buy")  # 12 training and 3 evaluation cutoffs


def test_the_spec_counts_back_from_the_latest_complete_labels() -> None:
    s = plan_split(SPEC, date(2025, 12, 9), horizon_days=90)
    assert s.evaluate == [date(2025, 7, 1), date(2025, 8, 1), date(2025, 9, 1)]
    # every training label (90 days) ends by the first evaluation cutoff
    assert s.train[-1] == date(2025, 4, 1) and len(s.train) == 12
    assert s.before_data == [] and s.data_start is None


def test_training_cutoffs_before_the_data_are_left_out_and_named() -> None:
    """Thirteen months of transactions: 12 training cutoffs would reach back 7 months
    before the first sale, where nothing is known."""
    s = plan_split(SPEC, date(2025, 12, 9), horizon_days=90, start=date(2024, 12, 1))
    assert s.train == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
    assert s.before_data[0] == date(2024, 5, 1) and s.before_data[-1] == date(2024, 12, 1)
    assert len(s.before_data) == 8
    assert s.to_dict()["data_start"] == "2024-12-01"
    # a history that covers them changes nothing
    assert (
        plan_split(SPEC, date(2025, 12, 9), horizon_days=90, start=date(2023, 1, 1)).train
        == plan_split(SPEC, date(2025, 12, 9), horizon_days=90).train
    )
    # explicit cutoffs are the user's: kept as given
    explicit = plan_split(
        SPEC,
        date(2025, 12, 9),
        horizon_days=90,
        train=["2024-06-01", "2024-07-01"],
        start=date(2024, 12, 1),
    )
    assert explicit.train == [date(2024, 6, 1), date(2024, 7, 1)] and explicit.before_data == []


def test_too_short_a_history_says_what_to_change() -> None:
    with pytest.raises(InvalidRequestError) as info:
        plan_split(SPEC, date(2025, 12, 9), horizon_days=90, start=date(2025, 3, 15))
    text = str(info.value)
    assert (
        "the data run from 2025-03-15 to 2025-12-09: 1 of the 12 monthly training cutoffs" in text
    )
    assert "give fewer --eval-cutoffs or a shorter --horizon-days" in text
    with pytest.raises(InvalidRequestError, match=r"begin at 2025-07-01, before any data"):
        plan_split(SPEC, date(2025, 12, 9), horizon_days=90, start=date(2025, 8, 1))


def test_the_served_model_learns_from_every_cutoff_with_complete_labels() -> None:
    """The backtest's model stops 4 months before the first evaluation cutoff; the version
    served also learns from those months and from the evaluation cutoffs."""
    s = plan_split(SPEC, date(2025, 12, 9), horizon_days=90, start=date(2024, 12, 1))
    final = final_cutoffs(s)
    assert final[: len(s.train)] == s.train
    assert final[len(s.train) :] == [
        date(2025, 5, 1),
        date(2025, 6, 1),
        date(2025, 7, 1),
        date(2025, 8, 1),
        date(2025, 9, 1),
    ]
    assert final[-1] + timedelta(days=90) <= s.data_end
    # explicit, irregular cutoffs: kept, and the month starts after them up to the last
    # evaluation cutoff added
    odd = plan_split(
        SPEC,
        date(2025, 12, 9),
        horizon_days=90,
        train=["2025-01-15", "2025-03-20"],
        evaluate=["2025-07-10", "2025-08-10"],
    )
    assert final_cutoffs(odd) == [
        date(2025, 1, 15),
        date(2025, 3, 20),
        date(2025, 4, 1),
        date(2025, 5, 1),
        date(2025, 6, 1),
        date(2025, 7, 1),
        date(2025, 7, 10),
        date(2025, 8, 1),
        date(2025, 8, 10),
    ]
