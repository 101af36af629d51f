"""Batch scoring with the champion on the tiny world: tables, partners, Spark = embedded."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from amplify_ml.errors import NotFoundError
from amplify_ml.lake import Lake
from amplify_ml.modeling.spec import load_model_spec
from amplify_ml.modeling.train import train
from amplify_ml.scoring.score import champion, read_scores, score, score_all


@pytest.fixture(scope="module")
def scored_ws(tiny_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("scoring-ws")
    spec = load_model_spec("device_failure")
    spec = dataclasses.replace(
        spec, gate=dataclasses.replace(spec.gate, max_ece=1.0, min_positives=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train(spec, tiny_lake, workspace=ws, card_dir=ws / "cards")
    assert res.promoted
    return ws


def test_scores_cover_the_fleet_alive_at_the_date_with_the_champions_version(
    tiny_lake: Lake, scored_ws: Path
) -> None:
    r = score("device_failure", tiny_lake, workspace=scored_ws, as_of="2026-06-30")
    assert r.path is not None and r.path.name == "version=1.parquet"
    df = read_scores(scored_ws, "device_failure")
    assert len(df) == r.rows > 0
    assert df[["partner_id", "device_id"]].duplicated().sum() == 0
    assert df["probability"].between(0, 1).all()
    assert set(df["model_version"]) == {"1"}
    assert str(df["as_of"].iloc[0].date()) == "2026-06-30"
    one = read_scores(scored_ws, "device_failure", partners=["P001"])
    assert set(one["partner_id"]) == {"P001"} and 0 < len(one) < len(df)


def test_a_per_component_champion_scores_devices_with_each_components_probability(
    tiny_lake: Lake, scored_ws: Path
) -> None:
    """device_failure v3 and later: a row per device, its probability that of any of its
    components, the likeliest one and every one's own probability."""
    ch = champion("device_failure", scored_ws)
    assert ch.feature_set_version == 6
    assert ch.combine_by == ["partner_id", "account_id", "device_id"]
    df = score("device_failure", tiny_lake, workspace=scored_ws, write=False).frame
    assert df[["partner_id", "device_id"]].duplicated().sum() == 0
    each = df["component_probabilities"].map(json.loads)
    assert (each.map(len) == 5).all()  # four of the category's and other
    combined = each.map(lambda p: 1 - np.prod([1 - v for v in p.values()]))
    assert np.allclose(combined, df["probability"], atol=1e-5)
    likeliest = each.map(lambda p: max(p, key=p.get))
    assert (likeliest == df["likely_component"]).all()
    assert np.allclose(each.map(lambda p: max(p.values())), df["component_probability"], atol=1e-6)
    printers = set(df.loc[each.map(lambda p: "fuser" in p), "device_id"])
    assert printers and not any("battery" in p for p in each[df.device_id.isin(printers)])


def test_scoring_several_models_in_one_session_equals_scoring_each_alone(
    tiny_lake: Lake, scored_ws: Path
) -> None:
    """amplify score --all shares one feature session; the tables must not depend on it, and
    the batch path (no MLflow signature enforcement) must equal MLflow's pyfunc."""
    alone = score("device_failure", tiny_lake, workspace=scored_ws, write=False)
    (together,) = score_all(["device_failure"], tiny_lake, workspace=scored_ws)
    assert together.path is not None
    assert together.frame.equals(alone.frame)
    ch = champion("device_failure", scored_ws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from amplify_ml.features import FeatureBuilder

        with FeatureBuilder(tiny_lake) as fb:
            frame, meta = fb.feature_frame("device_failure", as_of=alone.as_of)
    via_mlflow = ch.pyfunc.predict(frame[meta.features])["probability"].to_numpy()
    assert np.array_equal(ch.predict(frame[meta.features])["probability"].to_numpy(), via_mlflow)
    if ch.combine_by:  # a row per component: the table's devices combine them
        from amplify_ml.modeling.units import to_units

        _, via_mlflow, _ = to_units(frame, ch.combine_by, via_mlflow)
    assert np.array_equal(alone.frame["probability"].to_numpy(), via_mlflow)


def test_a_champion_trained_at_another_horizon_scores_with_its_features(
    tiny_lake: Lake, tmp_path: Path
) -> None:
    """Builders with ``horizon = "label"`` (propensity v3) follow the label: trained at 60
    days, the champion is scored with the features at 60 days (it would refuse the 90-day
    columns)."""
    from amplify_ml.features.training import feature_frame

    spec = load_model_spec("propensity_to_buy")
    spec = dataclasses.replace(
        spec, gate=dataclasses.replace(spec.gate, max_ece=1.0, min_positives=0)
    )
    ws = tmp_path / "ws"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train(spec, tiny_lake, workspace=ws, horizon_days=60, card_dir=ws / "cards")
        assert res.promoted
        ch = champion("propensity_to_buy", ws)
        assert ch.horizon_days == 60
        trained = set(ch.estimator.feature_names_in_)
        assert "st_cat_buys_count_last_year_next_60d" in trained
        assert not any(f.endswith("_last_year_next_90d") for f in trained)
        r = score("propensity_to_buy", tiny_lake, workspace=ws, write=False)
        frame, meta = feature_frame("propensity_to_buy", tiny_lake, **ch.feature_args(r.as_of))
    assert ch.feature_args(r.as_of)["horizon_days"] == 60
    assert "ib_warranty_due_count_next_60d" in meta.features
    p = ch.predict(frame)["probability"].to_numpy()
    assert len(r.frame) == len(frame) > 0
    assert np.allclose(np.sort(r.frame["probability"].to_numpy()), np.sort(p))


def test_no_champion_and_no_scores_say_what_to_run(tiny_lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="train it first"):
        score("refresh_due", tiny_lake, workspace=tmp_path)
    with pytest.raises(NotFoundError, match="amplify score refresh_due"):
        read_scores(tmp_path, "refresh_due")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_scoring_equals_embedded_scoring(tiny_lake: Lake, scored_ws: Path) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from amplify_ml.features.engine import spark_session

    spark = spark_session()
    embedded = score(
        "device_failure", tiny_lake, workspace=scored_ws, as_of="2026-03-31", write=False
    )
    on_spark = score(
        "device_failure",
        tiny_lake,
        workspace=scored_ws,
        as_of="2026-03-31",
        engine="spark",
        spark=spark,
        write=False,
    )
    a = embedded.frame.sort_values(["partner_id", "device_id"]).reset_index(drop=True)
    b = on_spark.frame.sort_values(["partner_id", "device_id"]).reset_index(drop=True)
    assert len(a) == len(b) > 0
    assert (a["device_id"] == b["device_id"]).all()
    assert np.allclose(a["probability"], b["probability"], rtol=1e-9, atol=1e-12)
    assert (a["likely_component"] == b["likely_component"]).all()


@pytest.fixture(scope="module")
def lead_ws(tiny_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("leads-ws")
    for model in ("propensity_to_buy", "refresh_due"):
        spec = load_model_spec(model)
        spec = dataclasses.replace(
            spec, gate=dataclasses.replace(spec.gate, max_ece=1.0, min_positives=0)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert train(spec, tiny_lake, workspace=ws, card_dir=ws / "cards").promoted
        score(model, tiny_lake, workspace=ws)
    return ws


def test_each_partners_lead_list_holds_only_its_accounts_and_round_trips_as_csv(
    tiny_lake: Lake, lead_ws: Path, tmp_path: Path
) -> None:
    import pandas as pd

    from amplify_ml.scoring.leads import COLUMNS, leads

    accounts = tiny_lake.read("accounts")
    devices = tiny_lake.read("install_base")
    for partner in tiny_lake.partners():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = leads(partner, tiny_lake, workspace=lead_ws, top=40)
        assert list(df.columns) == COLUMNS
        assert len(df) > 0 and set(df["partner_id"]) == {partner}
        own = set(accounts.loc[accounts["partner_id"] == partner, "account_id"])
        assert set(df["account_id"]) <= own
        dev = df["device_id"].dropna()
        assert set(dev) <= set(devices.loc[devices["partner_id"] == partner, "device_id"])
        assert df["expected_value"].is_monotonic_decreasing
        assert df["reason_1"].notna().all()
        assert set(df["offer"]) <= {"propensity", "warranty", "refresh"}
    path = tmp_path / "leads.csv"
    df.to_csv(path, index=False)
    back = pd.read_csv(path)
    assert list(back.columns) == COLUMNS and len(back) == len(df)
    assert (back["account_id"] == df["account_id"]).all()
    assert np.allclose(back["expected_value"], df["expected_value"])


def test_fleet_lists_a_partners_devices_by_risk_with_component_and_reasons(
    tiny_lake: Lake, scored_ws: Path
) -> None:
    from amplify_ml.scoring.fleet import COLUMNS, fleet

    score("device_failure", tiny_lake, workspace=scored_ws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everyone = fleet(tiny_lake, workspace=scored_ws, top=None)
        one = fleet(tiny_lake, workspace=scored_ws, partner="P001", top=10)
    assert list(one.columns) == COLUMNS
    assert set(one["partner_id"]) == {"P001"} and 0 < len(one) <= 10
    assert one["probability"].is_monotonic_decreasing
    assert set(one["contract"]) <= {"mps", "daas"}
    assert one["reason_1"].notna().all()
    tickets = tiny_lake.read("service_events")
    known = set(tickets["component"].dropna())
    assert set(one["likely_component"].dropna()) <= known | {"other"}
    # a per-component champion: the model's likeliest component, its own probability, its
    # share of the device's components' summed probabilities
    each = one["component_probabilities"].map(json.loads)
    assert (each.map(lambda p: max(p, key=p.get)) == one["likely_component"]).all()
    assert np.allclose(
        each.map(lambda p: max(p.values())), one["component_probability"], atol=1e-6
    )  # the JSON's probabilities have 6 decimals
    share = each.map(lambda p: max(p.values()) / sum(p.values()))
    assert np.allclose(share, one["component_share"])
    # the same device gets the same component in the partner's list and in the whole fleet's
    both = one.merge(everyone, on=["partner_id", "device_id"], suffixes=("", "_all"))
    assert len(both) == len(one)
    assert (both["likely_component"].fillna("") == both["likely_component_all"].fillna("")).all()
    with pytest.raises(NotFoundError, match="no partner P999"):
        fleet(tiny_lake, workspace=scored_ws, partner="P999")
