"""Training sets and feature frames: shape, dtypes, degradation, metadata, as-known mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from amplify_ml.datapack import write_pack
from amplify_ml.datapack.ingest import ingest_pack
from amplify_ml.errors import ConfigError, InvalidRequestError, MissingTableError
from amplify_ml.features import (
    FeatureWarning,
    feature_frame,
    load_spec,
    monthly,
    read_training_set,
    training_set,
    write_training_set,
)
from amplify_ml.features.cutoffs import as_cutoffs
from amplify_ml.features.spec import spec_path
from amplify_ml.lake import Lake
from tests.factories import partner_tables, vendor_tables, write_partner_pack, write_vendor_pack

CUTOFFS = ["2024-03-01", "2024-04-01", "2024-05-01"]
# degraded builds warn (checked below with pytest.warns); the factories' packs lack tables
pytestmark = pytest.mark.filterwarnings("ignore::amplify_ml.features.training.FeatureWarning")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("features-lake")
    lake = Lake(root / "lake")
    ingest_pack(write_vendor_pack(root / "vendor"), lake)
    ingest_pack(write_partner_pack(root / "P001"), lake)
    ingest_pack(write_partner_pack(root / "P002", partner_tables("P002"), "P002"), lake)
    return lake


def test_monthly_cutoffs() -> None:
    assert monthly("2025-01-01", "2025-12-01")[::11] == [date(2025, 1, 1), date(2025, 12, 1)]
    assert len(monthly("2025-01-01", "2025-12-01")) == 12
    assert monthly("2025-01-15", "2025-03-01") == [date(2025, 2, 1), date(2025, 3, 1)]
    assert as_cutoffs(["2024-02-01", date(2024, 1, 1), "2024-02-01"]) == [
        date(2024, 1, 1),
        date(2024, 2, 1),
    ]
    with pytest.raises(InvalidRequestError, match=r"cutoff 'soon' is not a date"):
        as_cutoffs(["soon"])
    with pytest.raises(InvalidRequestError, match=r"no cutoffs given"):
        as_cutoffs([])


LATEST = {"consumable_depletion": 9, "device_failure": 6, "propensity_to_buy": 4}
"""Feature-set versions above 1 (the others have only v1)."""


def test_specs_load_and_name_registered_builders() -> None:
    for model, horizon in [
        ("propensity_to_buy", 90),
        ("refresh_due", 180),
        ("device_failure", 30),
        ("consumable_depletion", 180),
    ]:
        spec = load_spec(model)
        assert (spec.model, spec.version, spec.horizon_days) == (
            model,
            LATEST.get(model, 1),
            horizon,
        )
        assert len(spec.sha256) == 64
    # an older version still loads when named
    for model in LATEST:
        v1 = load_spec(model, path=spec_path(model, 1))
        assert v1.version == 1 and v1.sha256 != load_spec(model).sha256


@pytest.fixture(scope="module")
def versions(lake: Lake) -> Callable[[str, int], tuple[pd.DataFrame, Any]]:
    """A model's training set at a feature-set version (its spec's version checked), each
    built once for the module: the version tests compare neighbours."""
    built: dict[tuple[str, int], tuple[pd.DataFrame, Any]] = {}

    def build(model: str, version: int) -> tuple[pd.DataFrame, Any]:
        if (model, version) not in built:
            spec = load_spec(model, version=version)
            ts, meta = training_set(model, lake, cutoffs=CUTOFFS, spec=spec)
            assert meta.spec["version"] == version
            built[model, version] = (ts, meta)
        return built[model, version]

    return build


def only_adds(versions, model: str, old: int, new: int) -> tuple[pd.DataFrame, Any, set[str]]:
    """Version ``new`` of ``model``'s feature set: its training set, its metadata and the
    features it adds to version ``old``, whose columns it must build unchanged."""
    before, meta_before = versions(model, old)
    after, meta_after = versions(model, new)
    assert set(meta_before.features) < set(meta_after.features)
    pd.testing.assert_frame_equal(before, after[before.columns])
    return after, meta_after, set(meta_after.features) - set(meta_before.features)


def test_an_earlier_feature_set_version_still_builds(versions) -> None:
    _, meta, _ = only_adds(versions, "device_failure", 1, 2)  # version 2 only adds columns
    meta1 = versions("device_failure", 1)[1]
    added = {
        "days_since_last_preventive",
        "days_since_fuser_repair",
        "dev_events_fuser_count_since_repair_365d",
    }
    assert added <= set(meta.features) and not added & set(meta1.features)


def test_failure_v3_has_a_row_per_component_and_the_devices_labels(versions) -> None:
    dev, _ = versions("device_failure", 2)
    comp, meta = versions("device_failure", 3)
    assert meta.keys == ["partner_id", "account_id", "device_id", "component"]
    assert {"component_name", "comp_age_days", "comp_events_count_30d"} <= set(meta.features)
    assert not any(f.startswith("days_since_fuser") for f in meta.features)
    keys = ["partner_id", "account_id", "device_id", "cutoff"]
    # every device of v2 with its category's components and an other row; any of its
    # components' labels is the device's
    per = comp.groupby(keys, observed=True).agg(n=("label", "size"), label=("label", "max"))
    per = per.reset_index()
    both = dev[[*keys, "label", "device_category"]].merge(per, on=keys, suffixes=("", "_c"))
    assert len(both) == len(dev) == len(per)
    assert (both["label"] == both["label_c"]).all()
    assert set(both.loc[both.device_category.isin(["printer", "pc"]), "n"]) == {5}
    assert (comp["component_name"] == comp["component"]).all()


def test_failure_v4_only_adds_the_wear_model(versions) -> None:
    new, _, added = only_adds(versions, "device_failure", 3, 4)
    assert added == {"comp_warning_rate", "comp_wear_index", "comp_hazard_index_next_30d"}
    assert new["comp_wear_index"].notna().all() and (new["comp_wear_index"] > 0).all()


def test_failure_v5_only_adds_the_wear_from_use(versions) -> None:
    new, _, added = only_adds(versions, "device_failure", 4, 5)
    assert added == {"comp_use_rel", "comp_use_wear_index", "comp_use_hazard_index_next_30d"}
    # printers read their pages; the pack's PC reports its health but no charge cycles: no
    # use (null, not zero)
    printers = new[new["device_category"] == "printer"]
    assert printers["comp_use_rel"].notna().any()
    assert (printers["comp_use_wear_index"].dropna() > 0).all()
    assert new.loc[new["device_category"] == "pc", "comp_use_wear_index"].isna().all()


def test_failure_v6_only_adds_the_season_of_the_horizon(versions) -> None:
    new, _, added = only_adds(versions, "device_failure", 5, 6)
    assert added == {"fleet_use_next_30d_vs_year", "comp_hazard_index_season_next_30d"}
    # the pack's readings start less than a year before these cutoffs: the season is not known
    # (null, not a pace of 1), and neither is the hazard at its pace (the parity tests compare
    # known values on later cutoffs of the tiny world)
    assert new["comp_hazard_index_next_30d"].notna().all()
    assert new["fleet_use_next_30d_vs_year"].isna().all()
    assert new["comp_hazard_index_season_next_30d"].isna().all()


def test_propensity_v1_still_builds_and_v2_only_adds_columns(versions) -> None:
    new, _, added = only_adds(versions, "propensity_to_buy", 1, 2)
    assert {"ib_cat_devices_count", "ib_warranty_due_overlap_sum_next_90d"} <= added
    assert all(f.startswith(("ib_cat_", "ib_warranty_")) for f in added)
    # the warranty columns describe warranty rows only, the device ones printer and PC rows
    other = new[~new["category"].isin(["warranty"])]
    assert other["ib_warranty_due_count_next_90d"].isna().all()
    assert new.loc[~new["category"].isin(["printer", "pc"]), "ib_cat_devices_count"].isna().all()


def test_propensity_v3_only_adds_the_category_and_its_intent_run(versions) -> None:
    new, _, added = only_adds(versions, "propensity_to_buy", 2, 3)  # horizon "label": 90 days
    assert added == {
        "product_category",
        "intent_cat_days_since_signal",
        "intent_cat_run_weeks",
        "intent_cat_run_intensity_last",
        "intent_cat_run_intensity_total",
    }
    assert (new["product_category"] == new["category"]).all()
    # no intent on record: the run's columns stay null (not zero: no run is not a short one)
    none = new["intent_cat_run_weeks"].isna()
    assert new.loc[none, "intent_cat_days_since_signal"].isna().all()
    assert (new.loc[~none, "intent_cat_run_weeks"] >= 1).all()


def test_propensity_v4_is_v3_without_amounts_of_money(versions) -> None:
    v3, meta3 = versions("propensity_to_buy", 3)
    v4, meta4 = versions("propensity_to_buy", 4)
    dropped = set(meta3.features) - set(meta4.features)
    assert set(meta4.features) < set(meta3.features)
    windows = (30, 90, 180, 365, 730)
    assert dropped == {
        *(f"st_cat_revenue_sum_{w}d" for w in windows),
        *(f"st_revenue_sum_{w}d" for w in windows),
        "opp_open_amount_sum",
        "opp_won_amount_sum_90d",
        "opp_won_amount_sum_365d",
    }
    pd.testing.assert_frame_equal(v4, v3[v4.columns])


def test_propensity_features_do_not_depend_on_the_currency(tmp_path: Path) -> None:
    """The same partner in kronor instead of euros (every amount x 10.4): the same rows."""
    built = []
    for name, rate in (("eur", 1.0), ("sek", 10.4)):
        tables = partner_tables("P001")
        for table, col in (("sell_through", "net_amount"), ("opportunities", "amount")):
            tables[table] = tables[table].assign(**{col: tables[table][col] * rate})
        tables["sell_through"]["currency"] = "EUR" if rate == 1.0 else "SEK"
        lake = Lake(tmp_path / name / "lake")
        ingest_pack(write_vendor_pack(tmp_path / name / "vendor"), lake)
        ingest_pack(write_partner_pack(tmp_path / name / "P001", tables), lake)
        built.append(training_set("propensity_to_buy", lake, cutoffs=CUTOFFS)[0])
    assert built[0]["st_cat_units_sum_365d"].sum() > 0  # the rows hold purchases
    pd.testing.assert_frame_equal(built[0], built[1])


CATEGORY_ONLY = ("ib_cat_", "ib_warranty_due_", "ib_warranty_ended_", "ib_warranty_extended_")
"""Counts of builders that describe some categories' rows only (propensity v2): not
zero-filled, the other rows stay null (not applicable), so they are float64."""


@pytest.mark.parametrize(
    "model", ["propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion"]
)
def test_training_set_shape_order_and_dtypes(lake: Lake, model: str) -> None:
    df, meta = training_set(model, lake, cutoffs=CUTOFFS)
    keys = meta.keys
    assert list(df.columns) == [*keys, "cutoff", *meta.features, *meta.labels]
    assert not df.duplicated([*keys, "cutoff"]).any()
    assert df.equals(df.sort_values([*keys, "cutoff"]).reset_index(drop=True))
    assert str(df["cutoff"].dtype) == "datetime64[ns]"
    for c in meta.features:
        assert df[c].dtype.kind in "fiubO" or str(df[c].dtype) == "str", (c, df[c].dtype)
        if "_count" in c and c.startswith(CATEGORY_ONLY):
            assert df[c].dtype == "float64", c
            v = df[c].dropna()
            assert ((v >= 0) & (v == v.round())).all(), c
        elif "_count" in c:
            assert df[c].dtype == "int64", c
    assert meta.rows == len(df) and meta.model == model
    assert meta.cutoffs == CUTOFFS and meta.spec["version"] == LATEST.get(model, 1)
    again, _ = training_set(model, lake, cutoffs=CUTOFFS)
    pd.testing.assert_frame_equal(df, again)  # deterministic


def test_metadata_fingerprint_and_counts(lake: Lake) -> None:
    df, meta = training_set("propensity_to_buy", lake, cutoffs=CUTOFFS, horizon_days=60)
    packs = lake.packs()
    assert [p["pack_id"] for p in meta.fingerprint["packs"]] == list(packs["pack_id"])
    assert [p["manifest_sha256"] for p in meta.fingerprint["packs"]] == list(
        packs["manifest_sha256"]
    )
    assert meta.horizon_days == 60 and meta.positives == int(df["label"].sum())
    assert sum(meta.rows_per_cutoff.values()) == len(df)
    assert {b["builder"] for b in meta.builders_used} >= {"st_cat_window_sums", "ib_composition"}
    assert meta.builders_skipped == []
    json.dumps(meta.to_dict(), default=str)  # serialisable as it is


def test_write_and_read_back(lake: Lake, tmp_path: Path) -> None:
    df, meta = training_set("device_failure", lake, cutoffs=CUTOFFS)
    path = write_training_set(df, meta, tmp_path / "out" / "failure.parquet")
    back, m = read_training_set(path)
    pd.testing.assert_frame_equal(back, df)
    assert m["model"] == "device_failure" and m["features"] == meta.features
    assert json.loads((tmp_path / "out" / "failure.meta.json").read_text()) == m


def test_partners_restrict_rows(lake: Lake) -> None:
    df, meta = training_set("refresh_due", lake, cutoffs=CUTOFFS, partners=["P002"])
    assert set(df["partner_id"]) == {"P002"} and meta.partners == ["P002"]


def test_minimal_pack_builds_propensity_and_skips_the_rest(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    vt = vendor_tables()
    ingest_pack(
        write_vendor_pack(tmp_path / "v", {k: vt[k] for k in ("partners", "products")}), lake
    )
    pt = partner_tables()
    ingest_pack(
        write_partner_pack(tmp_path / "p", {k: pt[k] for k in ("accounts", "sell_through")}), lake
    )
    with pytest.warns(
        FeatureWarning, match=r"builder ib_composition skipped: table\(s\) install_base absent"
    ):
        df, meta = training_set("propensity_to_buy", lake, cutoffs=CUTOFFS)
    assert len(df) == 2 * 6 * 3  # two accounts, six categories, three cutoffs
    skipped = {s["builder"]: s["tables"] for s in meta.builders_skipped}
    assert skipped == {
        "intent_cat_sums": ["intent_signals"],
        "intent_cat_run": ["intent_signals"],
        "ib_composition": ["install_base"],
        "intent_sums": ["intent_signals"],
        "opportunity_counts": ["opportunities"],
        "svc_account_counts": ["service_events"],
        "ib_cat_age": ["install_base"],
        "ib_warranty_extension": ["install_base"],
    }
    assert not any(c.startswith(("ib_", "intent_", "opp_", "svc_")) for c in df.columns)
    assert any("ib_composition skipped" in n for n in meta.notes)
    with pytest.raises(MissingTableError, match=r"refresh_due needs the table install_base"):
        training_set("refresh_due", lake, cutoffs=CUTOFFS)
    with pytest.raises(MissingTableError, match=r"consumable_depletion needs the table telemetry"):
        training_set("consumable_depletion", lake, cutoffs=CUTOFFS)


def test_feature_frame_matches_the_training_set_without_label(lake: Lake) -> None:
    ts, meta = training_set("refresh_due", lake, cutoffs=["2024-04-01"])
    ff, fmeta = feature_frame("refresh_due", lake, as_of="2024-04-01")
    assert list(ff.columns) == [c for c in ts.columns if c not in meta.labels]
    pd.testing.assert_frame_equal(ff, ts.drop(columns=meta.labels))
    assert fmeta.kind == "feature_frame" and fmeta.labels == []


def test_in_memory_tables_give_the_same_training_set(lake: Lake) -> None:
    frames = {t: lake.read(t) for t in lake.tables()}
    a, _ = training_set("device_failure", lake, cutoffs=CUTOFFS)
    b, meta = training_set("device_failure", frames, cutoffs=CUTOFFS)
    pd.testing.assert_frame_equal(a, b)
    assert meta.fingerprint["source"] == "in-memory tables"


def test_unknown_model_and_bad_arguments(lake: Lake) -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown model 'churn'"):
        training_set("churn", lake, cutoffs=CUTOFFS)
    with pytest.raises(InvalidRequestError, match=r"horizon_days must be at least 1"):
        training_set("refresh_due", lake, cutoffs=CUTOFFS, horizon_days=0)
    with pytest.raises(InvalidRequestError, match=r"threshold_pct applies to consumable_depletion"):
        training_set("refresh_due", lake, cutoffs=CUTOFFS, threshold_pct=5)
    with pytest.raises(InvalidRequestError, match=r"unknown engine 'polars'"):
        training_set("refresh_due", lake, cutoffs=CUTOFFS, engine="polars")  # type: ignore[arg-type]


# -- as-known mode: what was ingested by the end of the cutoff day --------------------------------


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Lake]:
    """A lake fed twice by partner P001 (April and July), and one with the April pack only."""
    root = tmp_path_factory.mktemp("as-known")
    period = (date(2024, 1, 1), date(2024, 6, 30))
    pt = partner_tables()
    st = pt["sell_through"]
    ib = pt["install_base"].copy()
    ib["retired_on"] = None
    april = {
        "accounts": pt["accounts"],
        "sell_through": st.iloc[[0]],
        "install_base": ib,
    }
    late_line = st.iloc[[0]].assign(line_id="L-4", sold_on=date(2024, 3, 15), net_amount=999.0)
    retired = ib.iloc[[0]].assign(retired_on=date(2024, 6, 15))
    july = {"sell_through": pd.concat([st.iloc[1:], late_line]), "install_base": retired}
    lakes = []
    for name, packs in [("both", [april, july]), ("april", [april])]:
        lake = Lake(root / name / "lake")
        write_pack(
            root / name / "v",
            vendor_tables(),
            source="vendor",
            period=period,
            created_at=_at("2024-01-01"),
        )
        ingest_pack(root / name / "v", lake, ingested_at=_at("2024-01-02"))
        for i, (tables, made) in enumerate(zip(packs, ["2024-04-01", "2024-07-01"], strict=False)):
            path = root / name / f"p{i}"
            write_pack(path, tables, source="P001", period=period, created_at=_at(made))
            ingest_pack(path, lake, ingested_at=_at(made))
        lakes.append(lake)
    return lakes[0], lakes[1]


def test_as_known_ignores_rows_ingested_after_the_cutoff(history: tuple[Lake, Lake]) -> None:
    both, april = history
    known, meta = training_set("propensity_to_buy", both, cutoffs=["2024-05-01"], as_known=True)
    only_april, _ = training_set("propensity_to_buy", april, cutoffs=["2024-05-01"])
    features = meta.features
    pd.testing.assert_frame_equal(known[features], only_april[features])
    now, _ = training_set("propensity_to_buy", both, cutoffs=["2024-05-01"])
    a1 = (now.account_id == "A-1") & (now.category == "printer")
    assert now.loc[a1, "st_cat_units_sum_180d"].item() == 1 + 1  # the late line
    assert known.loc[a1, "st_cat_units_sum_180d"].item() == 1
    # labels always use the lake as it is now: the purchases of May count
    pd.testing.assert_series_equal(known["label"], now["label"])


def test_as_known_before_any_ingestion_has_no_rows_and_says_so(history: tuple[Lake, Lake]) -> None:
    both, _ = history
    with pytest.warns(FeatureWarning, match=r"nothing had been ingested by the end of 2023-12-01"):
        df, meta = training_set("refresh_due", both, cutoffs=["2023-12-01"], as_known=True)
    assert df.empty and list(df.columns) == [*meta.keys, "cutoff", *meta.features, "label"]


def test_as_known_uses_the_version_of_a_row_current_at_the_cutoff(
    history: tuple[Lake, Lake],
) -> None:
    both, _ = history
    known, _ = training_set("refresh_due", both, cutoffs=["2024-06-20"], as_known=True)
    now, _ = training_set("refresh_due", both, cutoffs=["2024-06-20"])
    # D-1's retirement on 2024-06-15 arrived on 2024-07-01: at the cutoff it looked alive
    assert "D-1" in set(known.device_id) and "D-1" not in set(now.device_id)
    # after the July pack was ingested, both modes agree
    k2, _ = training_set("refresh_due", both, cutoffs=["2024-07-02"], as_known=True)
    n2, _ = training_set("refresh_due", both, cutoffs=["2024-07-02"])
    pd.testing.assert_frame_equal(k2, n2)


def test_as_known_needs_lineage() -> None:
    frames = {k: v.copy() for k, v in {**vendor_tables(), **partner_tables()}.items()}
    frames["telemetry"]["partner_id"] = "P001"
    frames["device_events"]["partner_id"] = "P001"
    with pytest.raises(InvalidRequestError, match=r"as_known needs _ingested_at"):
        training_set("refresh_due", frames, cutoffs=CUTOFFS, as_known=True)


def test_a_withdrawn_partner_is_gone_in_as_known_mode_too(tmp_path: Path) -> None:
    period = (date(2024, 1, 1), date(2024, 6, 30))
    lake = Lake(tmp_path / "lake")
    write_pack(
        tmp_path / "v",
        vendor_tables(),
        source="vendor",
        period=period,
        created_at=_at("2024-01-01"),
    )
    ingest_pack(tmp_path / "v", lake, ingested_at=_at("2024-01-02"))
    for partner in ("P001", "P002"):
        pt = partner_tables(partner)
        write_pack(
            tmp_path / partner, pt, source=partner, period=period, created_at=_at("2024-04-01")
        )
        ingest_pack(tmp_path / partner, lake, ingested_at=_at("2024-04-01"))
    retired = partner_tables("P001")["install_base"].iloc[[0]].assign(retired_on=date(2024, 6, 15))
    write_pack(
        tmp_path / "late",
        {"install_base": retired},
        source="P001",
        period=period,
        created_at=_at("2024-07-01"),
    )
    ingest_pack(tmp_path / "late", lake, ingested_at=_at("2024-07-01"))
    vt = vendor_tables()
    vt["partners"].loc[vt["partners"].partner_id == "P001", "data_sharing"] = False
    write_pack(tmp_path / "v2", vt, source="vendor", period=period, created_at=_at("2024-08-01"))
    ingest_pack(tmp_path / "v2", lake, ingested_at=_at("2024-08-01"))
    assert not lake.superseded("install_base").empty  # P001's old version is still stored
    known, _ = training_set("refresh_due", lake, cutoffs=["2024-06-20"], as_known=True)
    assert set(known.partner_id) == {"P002"}


def test_a_builder_that_repeats_an_entity_is_reported_not_passed_on() -> None:
    from amplify_ml.errors import AmplifyError
    from amplify_ml.features.training import _finalize

    df = pd.DataFrame(
        {
            "partner_id": ["P1", "P1", "P1"],
            "device_id": ["D1", "D1", "D2"],
            "cutoff": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-01"]),
            "x": [1.0, 2.0, 3.0],
        }
    )
    kinds = {"partner_id": "key", "device_id": "key", "cutoff": "cutoff", "x": "float"}
    with pytest.raises(AmplifyError, match="several rows for one"):
        _finalize(df.copy(), ["partner_id", "device_id"], ["x"], [], kinds, set(), sort=False)
    ok = _finalize(df.iloc[1:].copy(), ["partner_id", "device_id"], ["x"], [], kinds, set())
    assert ok["x"].tolist() == [2.0, 3.0]


def test_cutoff_ranges_expand_to_month_starts() -> None:
    from amplify_ml.features.cutoffs import expand_cutoffs

    got = expand_cutoffs(["2025-01-01:2025-03-01", "2025-02-01", date(2025, 6, 15)])
    assert got == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 6, 15)]
    with pytest.raises(InvalidRequestError, match="before start"):
        expand_cutoffs(["2025-05-01:2025-01-01"])
    with pytest.raises(InvalidRequestError, match="not a date"):
        expand_cutoffs(["2025-13-01"])


def test_scratch_folders_go_even_when_nobody_closes_the_builder(lake: Lake) -> None:
    """The DuckDB spill folder and the in-memory tables' folder are removed at close, and
    also when a builder (or engine) that was never closed is collected."""
    import gc
    from pathlib import Path as P

    from amplify_ml.features import FeatureBuilder
    from amplify_ml.features.engine import DuckDBEngine

    engine = DuckDBEngine()
    spill = P(engine._tmp)
    assert spill.is_dir()
    del engine
    gc.collect()
    assert not spill.exists()

    fb = FeatureBuilder({"partners": pd.DataFrame({"partner_id": ["P1"]})})
    folders = [P(fb.engine._tmp), P(str(fb.inputs._tmp))]
    assert all(f.is_dir() for f in folders)
    del fb
    gc.collect()
    assert not any(f.exists() for f in folders)


def test_cached_tables_have_the_schema_their_expressions_promise(lake: Lake, monkeypatch) -> None:
    """DuckDB creates cached tables on its own thread and the builders go on with the schema
    the expression promised (no catalog lookup): it must be the schema DuckDB created."""
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.features.engine import _quiet

    promised: dict[str, object] = {}
    with FeatureBuilder(lake) as fb:
        cache = fb.engine.cache

        def recording(expr, label=None):
            out = cache(expr, label)
            promised[out.op().name] = out.schema()
            return out

        monkeypatch.setattr(fb.engine, "cache", recording)
        for model in ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion"):
            fb.training_set(model, cutoffs=CUTOFFS)
        fb.engine.sync()
        assert len(promised) > 20
        with _quiet():  # Ibis reads the catalog with a method DuckDB deprecates
            created = {name: fb.engine.con.get_schema(name) for name in promised}
    assert created == promised


def test_a_queued_table_that_fails_is_raised_by_the_next_result_with_its_name() -> None:
    import duckdb

    from amplify_ml.features.engine import DuckDBEngine

    engine = DuckDBEngine()
    try:
        t = engine.register_frame("t", pd.DataFrame({"a": ["1", "x"]}))
        bad = engine.cache(t.mutate(n=t.a.cast("int64")), "builder_n")
        after = engine.cache(bad.mutate(m=bad.n + 1), "builder_m")  # reads the failed one
        with pytest.raises(duckdb.ConversionException) as err:
            engine.sql_to_arrow("SELECT 1 AS one")
        assert "while computing builder_n on DuckDB" in err.value.__notes__
        assert not engine._pending  # what came after it was dropped, not run
        # the engine goes on: later work runs, and the dropped table was never created
        assert engine.sql_to_arrow("SELECT 1 AS one").to_pydict() == {"one": [1]}
        with pytest.raises(duckdb.CatalogException):
            engine.sql_to_arrow(f"SELECT * FROM {engine.table_name(after)}")
        ok = engine.cache(t.filter(t.a == "1"), "builder_ok")
        assert engine.to_arrow(ok).to_pydict() == {"a": ["1"]}
    finally:
        engine.close()


def test_release_spills_the_cached_tables_and_keeps_their_rows_and_the_cap() -> None:
    """After a build the engine spills what it keeps beyond a little to its temp folder (a
    model's fit needs the memory): the tables read back the same and the cap is restored."""
    from amplify_ml.features.engine import DuckDBEngine, _quiet

    def held(engine: DuckDBEngine) -> tuple[int, int]:
        mem, disk = engine.con.con.execute(
            "SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) FROM duckdb_memory()"
        ).fetchone()
        return int(mem), int(disk)

    engine = DuckDBEngine(memory_limit="2GB")
    try:
        with _quiet():
            t = engine.con.sql("SELECT range AS a, range * 0.5 AS b FROM range(4000000)")
        cached = engine.cache(t, "numbers")
        engine.sync()
        query = f"SELECT sum(a) AS a, sum(b) AS b, count(*) AS n FROM {engine.table_name(cached)}"
        before = engine.sql_to_arrow(query).to_pydict()
        mem, disk = held(engine)
        assert mem > 40e6 and disk == 0
        engine.release(keep="8MB")
        mem, disk = held(engine)
        assert mem <= 8e6 and disk > 40e6
        assert engine.sql_to_arrow(query).to_pydict() == before
        limit = engine.con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        assert limit == "1.8 GiB"  # 2GB, as DuckDB shows it
        engine.release()  # keeping more than it holds changes nothing
        assert engine.sql_to_arrow(query).to_pydict() == before
    finally:
        engine.close()


def test_a_build_releases_the_engines_memory_before_the_frame_is_made(
    lake: Lake, monkeypatch
) -> None:
    from amplify_ml.features import FeatureBuilder

    with FeatureBuilder(lake) as fb:
        released: list[bool] = []
        release = fb.engine.release
        assemble = fb.engine.assemble

        def recording(*a, **k):
            released.append(True)
            return release(*a, **k)

        def assembling(assembly):
            assert not released  # not before the rows are out
            return assemble(assembly)

        monkeypatch.setattr(fb.engine, "release", recording)
        monkeypatch.setattr(fb.engine, "assemble", assembling)
        fb.training_set("refresh_due", cutoffs=CUTOFFS)
        assert released == [True]


def test_a_release_that_cannot_spill_keeps_the_cap() -> None:
    import duckdb

    from amplify_ml.features.engine import DuckDBEngine

    engine = DuckDBEngine(memory_limit="2GB")
    try:
        engine.con.con.execute("SET temp_directory = ''")  # nowhere to spill to
        engine.con.con.execute("CREATE TEMP TABLE t AS SELECT range AS a FROM range(4000000)")
        with pytest.raises(duckdb.OutOfMemoryException):  # what release meets, and absorbs
            engine.con.con.execute("SET memory_limit = '1MB'")
        engine.con.con.execute("SET memory_limit = '2GB'")
        engine.release(keep="1MB")
        limit = engine.con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        assert limit == "1.8 GiB"
        assert engine.sql_to_arrow("SELECT count(*) AS n FROM t").to_pydict() == {"n": [4000000]}
    finally:
        engine.close()


def test_window_joins_give_the_same_rows_with_or_without_the_day_grid(lake: Lake) -> None:
    """A FeatureBuilder's window joins read the cutoffs' day grid (a table); without it, or
    past its reach, they expand the cutoffs themselves: the training sets are the same."""
    from amplify_ml.features import FeatureBuilder, graph

    models = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")
    with FeatureBuilder(lake) as fb:
        with_grid = [fb.training_set(m, cutoffs=CUTOFFS)[0] for m in models]
        assert len(graph._DAY_GRIDS) == 1
    assert not graph._DAY_GRIDS  # dropped at close
    original = graph.register_day_grid
    graph.register_day_grid = lambda *a, **k: None
    try:
        with FeatureBuilder(lake) as fb:
            without = [fb.training_set(m, cutoffs=CUTOFFS)[0] for m in models]
    finally:
        graph.register_day_grid = original
    for a, b in zip(with_grid, without, strict=True):
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b)
    unnamed = ibis.table({"cutoff": "date", "cday": "int64", "ci": "int64"}).select(
        "cutoff", "cday"
    )
    with pytest.raises(TypeError, match="named cutoffs table"):
        graph.register_day_grid(unnamed, unnamed)


def test_a_window_past_the_day_grid_expands_the_cutoffs() -> None:
    from amplify_ml.features.cutoffs import GRID_BACK_DAYS
    from tests.unit.features.helpers import run, table

    rows = [
        {"account_id": "A", "sku": "PR-1", "sold_on": d, "quantity": 1}
        for d in ("2019-01-10", "2021-06-01", "2023-12-31")
    ]
    st = {
        "accounts": table("accounts", [{"account_id": "A"}]),
        "sell_through": table("sell_through", rows),
    }
    long = GRID_BACK_DAYS + 400  # past the grid: the cutoffs expanded
    out = run("st_window_sums", st, ["2024-01-01"], windows=(30, long))
    assert out.loc[0, f"st_units_sum_{long}d"] == 2  # 2021 and 2023, not 2019
    assert out.loc[0, "st_units_sum_30d"] == 1


def test_duckdb_assembles_by_row_numbers_what_one_join_gives() -> None:
    """The DuckDB assembly (keys joined, columns gathered in Arrow) gives the rows, values,
    fills and order of the single SQL join every engine can run."""
    from amplify_ml.features.engine import Assembly, DuckDBEngine, Engine, Part

    engine = DuckDBEngine()
    try:
        spine = engine.register_frame(
            "spine",
            pd.DataFrame({"k": ["b", "a", "c", "a"], "cutoff": [1, 2, 1, 1], "cday": 0}),
        )
        counts = engine.register_frame(
            "counts", pd.DataFrame({"k": ["a", "c"], "cutoff": [1, 1], "n": [5, 7]})
        )
        flags = engine.register_frame(
            "flags",
            pd.DataFrame(
                {"k": ["a", "b"], "cutoff": [2, 1], "is_on": [True, False], "x": [0.5, None]}
            ),
        )
        labels = engine.register_frame(  # no label for ("c", 1): that row goes
            "labels",
            pd.DataFrame({"k": ["a", "a", "b"], "cutoff": [1, 2, 1], "label": [1, 0, 1]}),
        )
        # stored in another order than the spine's, and cached (a CREATE TABLE AS)
        counts = engine.cache(counts.order_by(ibis.desc("k")), "counts")
        on = ("k", "cutoff")
        assembly = Assembly(
            spine,
            ("k", "cutoff"),
            (
                Part(counts, on, ("n",), {"n": 0}),
                Part(flags, on, ("is_on", "x"), {"is_on": False}),
                Part(labels, on, ("label",), inner=True),
            ),
            on,
        )
        got = engine.assemble(assembly)
        want = Engine.assemble(engine, assembly)  # the one join
        assert got.to_pydict() == want.to_pydict()
        assert got.to_pydict() == {
            "k": ["a", "a", "b"],
            "cutoff": [1, 2, 1],
            "n": [5, 0, 0],
            "is_on": [False, True, False],
            "x": [None, 0.5, None],
            "label": [1, 0, 1],
        }
        assert got.schema == want.schema
    finally:
        engine.close()


def test_row_positions_follow_the_row_ids_in_any_scan_order() -> None:
    import pyarrow as pa

    from amplify_ml.features.engine import _positions

    wanted = pa.chunked_array([[2, None, 0, 3]])
    # scanned in row-id order: the row ids are the positions
    assert _positions(pa.chunked_array([[0, 1, 2, 3]]), wanted).to_pylist() == [2, None, 0, 3]
    # scanned in another order, with a gap in the ids: positions of those ids in the scan
    ids = pa.chunked_array([[3, 0], [5, 2]])
    assert _positions(ids, wanted).to_pylist() == [3, None, 1, 0]
    assert _positions(
        pa.chunked_array([[]], type=pa.int64()), pa.chunked_array([[None]], type=pa.int64())
    ).to_pylist() == [None]


def test_duckdb_argmax_takes_the_row_with_the_greatest_key_nulls_left_out() -> None:
    """The engine's own compiler writes argmax/argmin as DuckDB's arg_max_null/arg_min_null
    (faster than Ibis's ordered FIRST): the value on the row with the greatest (least) key,
    kept when it is null; rows with a null key never win; the filter applies."""
    from amplify_ml.features.engine import DuckDBEngine

    engine = DuckDBEngine()
    try:
        t = engine.register_frame(
            "t",
            pd.DataFrame(
                {
                    "g": ["a", "a", "a", "b", "b"],
                    "v": [1.0, None, 5.0, 3.0, 4.0],
                    "k": [1.0, 3.0, None, None, 2.0],
                }
            ),
        )
        x = t.group_by("g").aggregate(
            last=t.v.argmax(t.k),
            first=t.v.argmin(t.k),
            last_before_3=t.v.argmax(t.k, where=t.k < 3),
        )
        got = engine.to_arrow(x.order_by("g")).to_pydict()
        assert got == {
            "g": ["a", "b"],
            "last": [None, 4.0],  # a: the greatest key's value is null, and stays null
            "first": [1.0, 4.0],
            "last_before_3": [1.0, 4.0],
        }
        assert "ARG_MAX_NULL" in engine.con.compile(x)
        # other Ibis connections in the process keep Ibis's own compiler
        assert "ARG_MAX_NULL" not in ibis.to_sql(x, dialect="duckdb")
    finally:
        engine.close()


def test_window_sums_add_each_row_into_every_window_that_holds_it() -> None:
    """Bucketed window sums: worked by hand on a few rows (edges included), and the same as
    a window join's sums over random rows and cutoffs a few days apart (windows overlap)."""
    import numpy as np

    from amplify_ml.features.cutoffs import cutoffs_frame
    from amplify_ml.features.engine import DuckDBEngine
    from amplify_ml.features.graph import (
        drop_day_grid,
        register_cutoffs,
        window_join,
        window_sums,
    )

    engine = DuckDBEngine()
    grids = []
    try:
        cuts = [date(2024, 1, 11), date(2024, 1, 21)]
        c = register_cutoffs(engine, "c", cuts)
        grids.append(c)
        days = tuple(int(d) for d in cutoffs_frame(cuts)["cday"])
        d0 = days[0]
        # windows of 10 days: (d0-10, d0] and (d0, d0+10]
        rows = engine.register_frame(
            "r",
            pd.DataFrame(
                {
                    "g": ["a", "a", "a", "a", "b"],
                    "day": [d0 - 10, d0 - 9, d0, d0 + 10, d0 + 11],
                    "v": [1.0, 2.0, 4.0, 8.0, 16.0],
                }
            ),
        )
        got = window_sums(rows, c, days, group=["g"], values=["v"], windows=(10, 1))
        got = engine.to_arrow(got.order_by(["g", "cutoff"])).to_pandas()
        # d0-10 is outside the first window (it ends there); d0+11 is after every cutoff
        assert got[["g", "v_10d", "_n_10d", "v_1d", "_n_1d"]].to_dict("list") == {
            "g": ["a", "a"],
            "v_10d": [6.0, 8.0],
            "_n_10d": [2, 1],
            "v_1d": [4.0, 8.0],  # the cutoff day itself
            "_n_1d": [1, 1],
        }
        assert [str(x)[:10] for x in got["cutoff"]] == ["2024-01-11", "2024-01-21"]

        rng = np.random.default_rng(7)
        cuts = [date(2024, 3, 1), date(2024, 3, 9), date(2024, 4, 1), date(2024, 6, 30)]
        c = register_cutoffs(engine, "c2", cuts)
        grids.append(c)
        days = tuple(int(d) for d in cutoffs_frame(cuts)["cday"])
        n = 2000
        frame = pd.DataFrame(
            {
                "g": rng.choice(["a", "b", "c"], n),
                "day": rng.integers(days[0] - 80, days[-1] + 5, n),
                "v": rng.integers(0, 50, n).astype(float),
            }
        )
        rows = engine.register_frame("r2", frame)
        windows = (1, 7, 30, 45)
        bucketed = window_sums(rows, c, days, group=["g"], values=["v"], windows=windows)
        j = window_join(rows, c, days=max(windows))
        aggs = {}
        for w in windows:
            inside = j.day > j.cday - w
            aggs |= {f"v_{w}d": j.v.sum(where=inside), f"_n_{w}d": inside.sum()}
        joined = j.group_by(["g", "cutoff", "cday"]).aggregate(**aggs)
        key = ["g", "cutoff"]
        a = engine.to_arrow(bucketed).to_pandas().sort_values(key).reset_index(drop=True)
        b = engine.to_arrow(joined).to_pandas().sort_values(key).reset_index(drop=True)
        assert len(a) == len(b) > 0
        b = b.fillna(0.0)  # a window without rows sums to 0 (null in SQL's sum)
        pd.testing.assert_frame_equal(a[b.columns], b, check_dtype=False)
    finally:
        for g in grids:
            drop_day_grid(g)
        engine.close()


def test_outer_join_on_keeps_the_rows_of_either_side_with_their_keys() -> None:
    from amplify_ml.features.engine import DuckDBEngine
    from amplify_ml.features.graph import outer_join_on

    engine = DuckDBEngine()
    try:
        left = engine.register_frame("l", pd.DataFrame({"d": ["x", "y"], "c": [1, 1], "n": [3, 4]}))
        right = engine.register_frame(
            "r", pd.DataFrame({"d": ["y", "z"], "c": [1, 2], "since": [7.0, 9.0]})
        )
        got = outer_join_on(left, right, ["d", "c"])
        frame = engine.to_arrow(got.order_by(["d", "c"])).to_pandas()
        assert list(frame.columns) == ["d", "c", "n", "since"]
        assert frame["d"].tolist() == ["x", "y", "z"] and frame["c"].tolist() == [1, 1, 2]
        assert frame["n"].fillna(-1).tolist() == [3, 4, -1]  # z: no row on the left
        assert frame["since"].fillna(-1).tolist() == [-1, 7.0, 9.0]  # x: none on the right
    finally:
        engine.close()


# -- builders whose horizon follows the label's -------------------------------------------------


def _v2_with(tmp_path: Path, horizon: str) -> Path:
    """Propensity v2 with its builders' ``horizon = 90`` replaced by ``horizon``."""
    text = spec_path("propensity_to_buy", 2).read_text()
    assert text.count("horizon = 90\n") == 2
    tmp_path.mkdir()
    path = tmp_path / "propensity_to_buy.v2.toml"
    path.write_text(text.replace("horizon = 90\n", f"horizon = {horizon}\n"))
    return path


def test_a_builder_horizon_can_follow_the_labels(lake: Lake, tmp_path: Path) -> None:
    follows = str(_v2_with(tmp_path / "a", '"label"'))
    fixed = str(_v2_with(tmp_path / "b", "60"))
    # at the spec's own horizon, "label" builds what the number 90 builds
    same, _ = training_set("propensity_to_buy", lake, cutoffs=CUTOFFS, spec=follows)
    v2, _ = training_set(
        "propensity_to_buy", lake, cutoffs=CUTOFFS, spec=str(spec_path("propensity_to_buy", 2))
    )
    pd.testing.assert_frame_equal(same, v2)
    # at another horizon, it builds what the number 60 builds, and the label is 60 days too
    a, meta = training_set(
        "propensity_to_buy", lake, cutoffs=CUTOFFS, spec=follows, horizon_days=60
    )
    b, _ = training_set("propensity_to_buy", lake, cutoffs=CUTOFFS, spec=fixed, horizon_days=60)
    pd.testing.assert_frame_equal(a, b)
    assert {"st_cat_buys_count_last_year_next_60d", "ib_warranty_due_count_next_60d"} <= set(a)
    # ib_composition's warranty windows are windows, not a horizon: they stay at 90 days
    assert [c for c in a if c.endswith("_next_90d")] == ["ib_warranty_ending_count_next_90d"]
    used = {u["builder"]: u["settings"] for u in meta.builders_used}
    assert used["st_cat_rhythm"]["horizon"] == 60 and meta.horizon_days == 60
    assert meta.spec["builders"] and "label" in json.dumps(meta.spec)  # the spec as written
    # a feature frame for a model trained at 60 days builds the same columns
    ff, _ = feature_frame(
        "propensity_to_buy", lake, as_of=CUTOFFS[-1], spec=follows, horizon_days=60
    )
    last = a[a["cutoff"] == pd.Timestamp(CUTOFFS[-1])].reset_index(drop=True)
    pd.testing.assert_frame_equal(ff, last.drop(columns=["label"]))


def test_only_a_horizon_can_follow_the_label(tmp_path: Path) -> None:
    text = spec_path("propensity_to_buy", 2).read_text()
    bad = tmp_path / "propensity_to_buy.v2.toml"
    bad.write_text(text.replace("window = 730\nhorizon = 90", 'window = "label"\nhorizon = 90'))
    with pytest.raises(ConfigError, match=r"st_cat_rhythm: window = 'label'; only a builder's"):
        load_spec("propensity_to_buy", path=bad)


def test_a_function_materializes_its_own_intermediates_through_the_resolvers_cache() -> None:
    """``materialize`` as an input: the resolver's cache with the label given, or the
    expression as it is when the resolver does not cache (the unit helpers')."""
    from amplify_ml.features.graph import Resolver

    t = ibis.table({"a": "int64"}, name="t")
    cutoffs = ibis.table({"cutoff": "date", "cday": "int64", "ci": "int64"}, name="cutoffs")
    plain = Resolver({}, cutoffs, (19723,))
    assert plain.get("materialize")(t, "x") is t
    seen: list[str] = []

    def cache(expr: ibis.Table, label: str) -> ibis.Table:
        seen.append(label)
        return expr.mutate(cached=True)

    caching = Resolver({}, cutoffs, (19723,), cache=cache)
    out = caching.get("materialize")(t, "supply_usage: points")
    assert seen == ["supply_usage: points"] and "cached" in out.columns
