"""The tiny synthetic world through the feature builders: labels equal the oracle's realised
labels for the same (entity, cutoff), and Spark builds the same four training sets as DuckDB.

One Spark session for the module (local[2]); the Spark tests are marked ``spark`` and
``slow`` (the module takes about a minute and a half).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amplify_ml.datapack.ingest import ingest_pack
from amplify_ml.errors import ConsentError
from amplify_ml.features import FeatureBuilder, FeatureWarning
from amplify_ml.lake import Lake

MODELS = ("propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion")
PARITY_CUTOFFS = ["2025-09-01", "2026-01-01", "2026-03-01"]


@pytest.fixture(scope="module")
def tiny_lake(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Every pack of the tiny world, vendor first; the partner without consent is refused."""
    lake = Lake(tmp_path_factory.mktemp("tiny-features") / "lake")
    packs = sorted((tiny_world / "packs").iterdir(), key=lambda p: (p.name != "vendor", p.name))
    refused = []
    for p in packs:
        try:
            ingest_pack(p, lake)
        except ConsentError:
            refused.append(p.name)
    assert len(refused) == 1
    return lake


def _oracle(world: Path, model: str, partners: list[str]) -> pd.DataFrame:
    o = pd.read_parquet(world / "oracle" / f"{model}.parquet")
    o = o[o["partner_id"].isin(partners)].copy()
    o["cutoff"] = pd.to_datetime(o["cutoff"]).astype("datetime64[ns]")
    return o


@pytest.mark.parametrize("model", MODELS)
def test_labels_equal_the_oracles_realised_labels(
    tiny_world: Path, tiny_lake: Lake, model: str
) -> None:
    oracle = _oracle(tiny_world, model, tiny_lake.partners())
    cutoffs = sorted(oracle["cutoff"].dt.date.unique())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        with FeatureBuilder(tiny_lake) as fb:
            ts, meta = fb.training_set(model, cutoffs=cutoffs)
    keys = [*meta.keys, "cutoff"]
    keys = [k for k in keys if k in oracle.columns]
    positives = meta.positives
    if "component" in meta.keys:  # one row per component: the device's label is any of them
        ts = ts.groupby(keys, as_index=False, observed=True)["label"].max()
        positives = int(ts["label"].sum())
    merged = ts.merge(oracle, on=keys, how="outer", suffixes=("", "_oracle"), indicator=True)
    counts = merged["_merge"].value_counts().to_dict()
    assert counts.get("left_only", 0) == 0 and counts.get("right_only", 0) == 0, counts
    assert len(ts) == len(oracle) > 0
    if model == "consumable_depletion":
        ours = merged["label"].fillna(-1.0)
        theirs = merged["label_oracle"].astype("float64").fillna(-1.0)
        assert (ours == theirs).all()
        assert (merged["censored"] == merged["censored_oracle"]).all()
    else:
        assert (merged["label"] == merged["label_oracle"]).all()
        assert positives == int(oracle["label"].sum()) > 0


def test_the_benchmarks_pandas_implementation_builds_the_same_training_sets(
    tiny_lake: Lake,
) -> None:
    """The benchmark compares speed against plain pandas; that only means something while
    both build the same thing. A changed builder must be changed in the baseline too."""
    from amplify_ml.bench.features import CUTOFFS, PandasFeatures, compare
    from amplify_ml.features.cutoffs import monthly
    from amplify_ml.features.graph import REGISTRY
    from amplify_ml.features.spec import load_spec

    cutoffs = monthly(*CUTOFFS)
    baseline = PandasFeatures(str(tiny_lake.root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        with FeatureBuilder(tiny_lake) as fb:
            for model in MODELS:
                ours, _ = fb.training_set(model, cutoffs=cutoffs)
                theirs = baseline.training_set(model, cutoffs)
                compare(ours, theirs, list(REGISTRY[load_spec(model).entity].keys))
    # and the comparison does catch a difference
    broken = ours.copy()
    broken.iloc[0, broken.columns.get_loc("supply_level_last")] += 1.0
    with pytest.raises(AssertionError, match="supply_level_last"):
        compare(broken, theirs, list(REGISTRY[load_spec(model).entity].keys))


# -- Spark ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    mp = pytest.MonkeyPatch()
    mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    from amplify_ml.features import spark_session

    session = spark_session("local[2]", shuffle_partitions=2)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    mp.undo()


@pytest.fixture(scope="module")
def both_engines(tiny_lake: Lake, spark) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        with (
            FeatureBuilder(tiny_lake) as duck,
            FeatureBuilder(tiny_lake, engine="spark", spark=spark) as sp,
        ):
            for m in MODELS:
                a, _ = duck.training_set(m, cutoffs=PARITY_CUTOFFS)
                b, _ = sp.training_set(m, cutoffs=PARITY_CUTOFFS)
                out[m] = (a, b)
    return out


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_spark_builds_the_same_training_set(both_engines, model: str) -> None:
    duck, spark = both_engines[model]
    assert len(duck) > 0
    assert list(duck.columns) == list(spark.columns)
    assert list(duck.dtypes.astype(str)) == list(spark.dtypes.astype(str))
    for c in duck.columns:
        a, b = duck[c], spark[c]
        if a.dtype.kind == "f":
            ok = np.isclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-9, equal_nan=True)
            assert ok.all(), f"{model}.{c}: {int((~ok).sum())} values differ"
        else:
            assert a.equals(b), f"{model}.{c} differs"


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
@pytest.mark.slow
def test_the_session_time_zone_must_be_utc(tiny_lake: Lake, spark) -> None:
    from amplify_ml.errors import ConfigError

    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        with pytest.raises(ConfigError, match=r"time zone is 'Europe/Berlin'"):
            FeatureBuilder(tiny_lake, engine="spark", spark=spark)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert os.environ.get("SPARK_LOCAL_IP") == "127.0.0.1"


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
@pytest.mark.slow
def test_a_cached_table_on_spark_is_a_scan_of_its_rows_not_its_plan(spark) -> None:
    """Spark keeps a cached DataFrame's whole plan, and a plan over cached tables carries
    theirs: a builder reading its intermediates several times grew to 1,079 exchanges. The
    engine's cache cuts the lineage (a local checkpoint), computes at once, names what failed,
    and frees its blocks at close."""
    from pyspark.errors import PySparkException

    from amplify_ml.features.engine import SparkEngine

    def blocks() -> int:
        return len(spark.sparkContext._jsc.sc().getRDDStorageInfo())

    before = blocks()
    engine = SparkEngine(spark)
    try:
        t = engine.register_frame(
            "src", pd.DataFrame({"k": [1, 2, 2, 3], "v": [1.0, 2.0, 3.0, 4.0]})
        )
        a = engine.cache(t.group_by("k").aggregate(s=t.v.sum()), "sums")
        r = a.rename(k2="k", s2="s")
        b = engine.cache(a.join(r, a.k == r.k2), "self join")
        plan = spark.table(engine.table_name(b).strip("`"))._jdf.queryExecution().analyzed()
        text = plan.toString()
        assert "LogicalRDD" in text
        assert engine.view_name("src") not in text and "LocalRelation" not in text
        assert "Aggregate" not in text and "Join" not in text
        assert blocks() == before + 2
        got = engine.to_arrow(b.order_by("k")).to_pydict()
        assert got["k"] == [1, 2, 3] and got["s"] == [1.0, 5.0, 4.0] and got["s2"] == got["s"]

        bad = engine.register_frame("bad", pd.DataFrame({"a": ["1", "x"]}))
        with pytest.raises(PySparkException) as err:
            engine.cache(bad.mutate(n=bad.a.cast("int64")), "builder_n")
        assert "while computing builder_n on Spark" in err.value.__notes__
    finally:
        engine.close()
    assert blocks() == before
    assert not [t.name for t in spark.catalog.listTables() if t.name.startswith(engine._prefix)]
