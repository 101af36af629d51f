"""Lead lists: ranking and merging of offers, and the warranty offer, worked out by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from amplify_ml.scoring.leads import COLUMNS, merge_offers, propensity_offers, warranty_offers


def test_offers_merge_and_rank_by_expected_value_then_probability() -> None:
    prop = pd.DataFrame(
        {
            "partner_id": ["P1", "P1"],
            "account_id": ["A1", "A2"],
            "offer": "propensity",
            "category": ["supplies", "pc"],
            "probability": [0.5, 0.1],
            "expected_value": [100.0, 300.0],
        }
    )
    war = pd.DataFrame(
        {
            "partner_id": ["P1"],
            "account_id": ["A1"],
            "offer": "warranty",
            "category": "warranty",
            "device_id": ["D9"],
            "probability": [0.8],
            "expected_value": [100.0],
            "reason_1": ["warranty ends soon"],
        }
    )
    out = merge_offers([prop, war, pd.DataFrame()], top=10)
    assert list(out.columns) == COLUMNS
    # 300 first; the two offers worth 100: higher probability (warranty 0.8) before 0.5
    assert list(zip(out["account_id"], out["offer"], strict=True)) == [
        ("A2", "propensity"),
        ("A1", "warranty"),
        ("A1", "propensity"),
    ]
    assert list(out["rank"]) == [1, 2, 3]
    assert merge_offers([prop, war], top=1)["account_id"].tolist() == ["A2"]
    assert merge_offers([], top=5).empty


def test_expected_value_uses_the_accounts_basket_else_the_partners() -> None:
    sales = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2", "A3"],
            "sku": ["S1", "S2", "S1", "S1"],
            "category": ["supplies"] * 4,
            "net_amount": [100.0, 300.0, 40.0, 260.0],
        }
    )
    scores = pd.DataFrame(
        {
            "partner_id": "P1",
            "account_id": ["A1", "A9"],
            "category": ["supplies", "supplies"],
            "probability": [0.5, 0.5],
        }
    )
    out = propensity_offers(scores, sales).set_index("account_id")
    assert out.loc["A1", "expected_value"] == 0.5 * 200.0  # A1's mean basket
    assert out.loc["A9", "expected_value"] == 0.5 * 180.0  # partner median of 40, 100, 260, 300
    assert out.loc["A1", "recommended_sku"] == "S2"  # A1's best seller by revenue
    assert out.loc["A9", "recommended_sku"] == "S1"  # the partner's best seller (400 vs 300)


def test_warranty_offer_fits_the_family_and_skips_managed_and_far_off_ends() -> None:
    ib = pd.DataFrame(
        {
            "partner_id": "P1",
            "account_id": ["A1", "A1", "A2", "A3"],
            "device_id": ["D1", "D2", "D3", "D4"],
            "sku": ["PR1", "PC1", "PR1", "PR1"],
            "installed_on": pd.to_datetime(["2023-01-10"] * 4),
            "retired_on": pd.NaT,
            "warranty_ends_on": pd.to_datetime(
                ["2026-12-01", "2027-01-15", "2028-06-01", "2026-11-01"]
            ),
            "contract": ["none", "care_pack", "none", "mps"],
        }
    )
    products = pd.DataFrame(
        {
            "sku": ["PR1", "PC1", "W-PR-12", "W-PR-36", "W-PC-12"],
            "category": ["printer", "pc", "warranty", "warranty", "warranty"],
            "family": ["LaserJet X", "EliteBook Y", "LaserJet X", "LaserJet X", "EliteBook Y"],
            "list_price": [400.0, 900.0, 80.0, 200.0, 120.0],
            "extends_warranty_months": [None, None, 12, 36, 12],
        }
    )
    sales = pd.DataFrame(
        {"account_id": ["A1"], "sku": ["W-PR-36"], "category": ["warranty"], "net_amount": [190.0]}
    )
    out = warranty_offers(ib, products, sales, date(2026, 9, 30), months=6).set_index("device_id")
    # D3 ends in 2028 (too far), D4 is under an mps contract: no offers
    assert sorted(out.index) == ["D1", "D2"]
    # the partner sold the 36-month LaserJet extension: offered for D1; D2 gets its own family's
    assert out.loc["D1", "recommended_sku"] == "W-PR-36"
    assert out.loc["D2", "recommended_sku"] == "W-PC-12"
    # no warranty propensity scored: the partner's take rate (1 of 3 accounts with devices)
    assert out.loc["D1", "probability"] == 1 / 3
    assert out.loc["D1", "expected_value"] == pytest.approx(200.0 / 3)
    assert out.loc["D1", "reason_1"] == (
        "warranty of LaserJet X device D1 ends on 2026-12-01 (in 62 days)"
    )
