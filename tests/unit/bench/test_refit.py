"""The refit benchmark's replay: a training day in the past, and cutoffs that neither model
could have learnt from."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from amplify_ml.bench.refit import replay_cutoffs
from amplify_ml.errors import InvalidRequestError
from amplify_ml.modeling.spec import load_model_spec


def test_both_sides_learn_only_before_the_training_day_and_are_scored_after_it() -> None:
    spec = load_model_spec("propensity_to_buy")  # 90 days, 12 training cutoffs, 3 evaluated
    end, start = date(2026, 9, 30), date(2023, 10, 1)
    c = replay_cutoffs(spec, end, start, months_back=6, eval_cutoffs=3)
    t0 = c["t0"][0]
    assert t0 == date(2026, 3, 1)
    assert c["backtest_model"][0] == date(2024, 7, 1) and c["backtest_model"][-1] == date(
        2025, 6, 1
    )
    # the refit adds the months up to the last cutoff whose labels end before the day
    assert c["refit"][:12] == c["backtest_model"] and c["refit"][-1] == date(2025, 11, 1)
    assert len(c["refit"]) == 17
    h = timedelta(days=spec.horizon_days)
    assert max(c["refit"]) + h < t0
    assert c["scored"] == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]
    assert all(s + h <= end for s in c["scored"])


def test_a_replay_too_close_to_the_end_for_the_horizon_says_so() -> None:
    spec = load_model_spec("refresh_due")  # 180 days
    with pytest.raises(InvalidRequestError, match="give a larger months_back"):
        replay_cutoffs(spec, date(2026, 9, 30), None, months_back=3, eval_cutoffs=3)
