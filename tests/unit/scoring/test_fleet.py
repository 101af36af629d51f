"""The likely component of a device at risk, learnt from past tickets, worked out by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from amplify_ml.scoring.fleet import code_family, learn_components, likely_components

DEVICES = pd.DataFrame(
    {
        "partner_id": "P1",
        "device_id": ["D1", "D2", "D3", "D4"],
        "device_category": ["printer", "printer", "printer", "pc"],
    }
)


def _history() -> tuple[pd.DataFrame, pd.DataFrame]:
    # printers: 3 fuser repairs preceded by 50.* events, 1 drum repair preceded by 31.* events
    tickets = pd.DataFrame(
        {
            "partner_id": "P1",
            "ticket_id": ["T1", "T2", "T3", "T4", "T5"],
            "device_id": ["D1", "D2", "D1", "D2", "D2"],
            "kind": ["repair", "repair", "part_replacement", "repair", "incident"],
            "component": ["fuser", "fuser", "fuser", "drum", "drum"],
            "opened_at": pd.to_datetime(
                ["2026-01-10", "2026-02-10", "2026-03-10", "2026-04-10", "2026-04-20"], utc=True
            ),
        }
    )
    events = pd.DataFrame(
        {
            "partner_id": "P1",
            "device_id": ["D1", "D2", "D1", "D2", "D2"],
            "code": ["50.A1", "50.B2", "50.C3", "31.X1", "31.X2"],
            "occurred_at": pd.to_datetime(
                ["2026-01-05", "2026-02-01", "2026-03-01", "2026-04-01", "2025-01-01"], utc=True
            ),
        }
    )
    return tickets, events


def test_priors_and_likelihoods_come_from_named_repairs_before_the_date() -> None:
    tickets, events = _history()
    m = learn_components(tickets, events, DEVICES, as_of=date(2026, 6, 30), lookback_days=30)
    assert m.tickets == 4  # the incident does not count
    prior = m.prior.set_index("component")["log_prior"]
    assert np.exp(prior["fuser"]) == pytest.approx(0.75)
    assert np.exp(prior["drum"]) == pytest.approx(0.25)
    lik = m.likelihood.set_index(["component", "family"])["log_p"]
    # fuser: three 50.* events, families {31, 50}: (3 + 1) / (3 + 2 + 1)
    assert np.exp(lik[("fuser", "50")]) == pytest.approx(4 / 6)
    # drum: one 31.* event within 30 days (the 2025 one is too old): (1 + 1) / (1 + 2 + 1)
    assert np.exp(lik[("drum", "31")]) == pytest.approx(2 / 4)
    # a later date does not see tickets after it
    early = learn_components(tickets, events, DEVICES, as_of=date(2026, 2, 28))
    assert early.tickets == 2 and set(early.prior["component"]) == {"fuser"}


def test_recent_code_families_move_the_likely_component() -> None:
    tickets, events = _history()
    m = learn_components(tickets, events, DEVICES, as_of=date(2026, 6, 30))
    recent = pd.DataFrame(
        {"partner_id": "P1", "device_id": ["D3", "D3"], "family": ["31", "31"], "n": [1, 1]}
    )
    out = likely_components(m, DEVICES, recent).set_index("device_id")
    # D3 has two 31.* events: drum 0.25 * (2/4)^2 vs fuser 0.75 * (1/6)^2 -> drum
    drum, fuser = 0.25 * (2 / 4) ** 2, 0.75 * (1 / 6) ** 2
    assert out.loc["D3", "likely_component"] == "drum"
    assert out.loc["D3", "component_share"] == pytest.approx(drum / (drum + fuser))
    # D1 without recent events: the prior decides
    assert out.loc["D1", "likely_component"] == "fuser"
    # a PC: no PC component was ever repaired here: left empty, not guessed
    assert pd.isna(out.loc["D4", "likely_component"])


def test_no_named_repairs_means_no_component() -> None:
    tickets, events = _history()
    tickets["component"] = None
    m = learn_components(tickets, events, DEVICES, as_of=date(2026, 6, 30))
    out = likely_components(
        m, DEVICES, pd.DataFrame(columns=["partner_id", "device_id", "family", "n"])
    )
    assert out["likely_component"].isna().all()


def test_code_family_is_the_first_segment() -> None:
    assert code_family(pd.Series(["13.A2.D3", "50", "X.1"])).tolist() == ["13", "50", "X"]
