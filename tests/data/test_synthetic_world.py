"""The synthetic world: contract, determinism, oracle labels and calibration, dirty mode.

A tiny world is generated once per module (a few seconds); a second and third generation
check determinism, a dirty one the expected defects.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from amplify_ml.datapack import read_pack
from amplify_ml.datapack.contract import PRODUCT_CATEGORIES, TABLES
from amplify_ml.datapack.privacy import has_email, has_phone
from amplify_ml.datasets import SCALES, WorldSummary, generate
from amplify_ml.errors import ConfigError, ManifestError
from tests.data import labels_reference as ref

SEED = 11
CREATED_AT = pd.Timestamp("2026-10-01T06:00:00Z")


@pytest.fixture(scope="module")
def tiny(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, WorldSummary, list[tuple[str, int, int]]]:
    out = tmp_path_factory.mktemp("tiny")
    calls: list[tuple[str, int, int]] = []
    summary = generate("tiny", seed=SEED, out=out, progress=lambda s, d, n: calls.append((s, d, n)))
    return out, summary, calls


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    out = tmp_path_factory.mktemp("dirty")
    return out, generate("tiny", seed=SEED, out=out, dirty=True)


@pytest.fixture(scope="module")
def products(tiny: tuple[Path, WorldSummary, list]) -> pd.DataFrame:
    return pq.read_table(tiny[0] / "packs" / "vendor" / "products.parquet").to_pandas()


def _packs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "packs").iterdir() if p.is_dir())


def _oracle(out: Path, model: str) -> pd.DataFrame:
    return pq.read_table(out / "oracle" / f"{model}.parquet").to_pandas(date_as_object=False)


def _partners(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "packs" / "vendor" / "partners.parquet").to_pandas()


# ---- layout, summary, contract ---------------------------------------------------------------
def test_layout_and_world_json(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, summary, calls = tiny
    world = json.loads((out / "world.json").read_text())
    assert world == json.loads(json.dumps(summary.to_dict()))
    assert world["scale"] == "tiny" and world["seed"] == SEED and world["dirty"] is False
    assert not (out / "expected_defects.json").exists()
    names = {p.name for p in _packs(out)}
    partners = _partners(out)
    assert names >= {"vendor", *partners["partner_id"]}
    assert {p["name"] for p in world["packs"]} == names
    assert world["late_packs"] and all(n in names for n in world["late_packs"])
    assert set(world["oracle"]) == {
        "propensity_to_buy",
        "refresh_due",
        "consumable_depletion",
        "device_failure",
    }
    for model, rows in world["oracle"].items():
        assert (
            rows > 0
            and pq.ParquetFile(out / "oracle" / f"{model}.parquet").metadata.num_rows == rows
        )
    # the clean world's mess is recorded: telemetry duplicates and the partner without consent
    assert sum(world["telemetry_duplicates"].values()) > 0
    assert world["no_consent_partner"] in set(partners["partner_id"])
    assert world["refused_packs"] == [
        {
            "pack": world["no_consent_partner"],
            "table": None,
            "column": None,
            "rule": "consent",
            "rows": None,
        }
    ]
    assert calls[-1] == ("partners", len(partners), len(partners))
    # device counts are in the documented range of the scale
    devices = sum(
        p["tables"]["install_base"]["rows"] for p in world["packs"] if p["kind"] == "main"
    )
    assert 800 <= devices <= 3000


def test_packs_read_with_contract_columns_and_types(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, summary, _ = tiny
    by_name = {p.name: p for p in summary.packs}
    for path in _packs(out):
        pack = read_pack(path)  # verifies the manifest (sha256, rows)
        kind = by_name[path.name].kind
        assert pack.source == ("vendor" if kind == "vendor" else path.name.split(".")[0])
        expected_created = "2026-10-20T06:00:00Z" if kind == "late" else "2026-10-01T06:00:00Z"
        assert pack.manifest.created_at == pd.Timestamp(expected_created)
        for table in pack.tables:
            schema = pq.ParquetFile(pack.file(table).path).schema_arrow
            assert schema.names == list(TABLES[table].column_names), (path.name, table)
            for f in TABLES[table].arrow_schema:
                assert schema.field(f.name).type == f.type, (path.name, table, f.name)
            assert by_name[path.name].tables[table].rows == pack.manifest.tables[table].rows


def _violations(df: pd.DataFrame, table: str, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows breaking each single-table rule of the contract (column rules and row rules)."""
    schema = TABLES[table]
    out: dict[str, int] = {}
    for col in schema.columns:
        s = df[col.name]
        if not col.nullable:
            out[f"{col.name}:required"] = int(s.isna().sum())
        v = s.dropna()
        if col.enum:
            out[f"{col.name}:enum"] = int((~v.isin(col.enum)).sum())
        if col.min is not None:
            out[f"{col.name}:min"] = int((v < col.min).sum())
        if col.nonzero:
            out[f"{col.name}:nonzero"] = int((v == 0).sum())
        if col.pattern:
            out[f"{col.name}:pattern"] = int((~v.astype(str).str.fullmatch(col.pattern)).sum())
        if col.not_future:
            day = ref._day(v)
            out[f"{col.name}:future"] = int((day > CREATED_AT.tz_localize(None).normalize()).sum())
    con.register("t", df)
    for rule in schema.rules:
        out[rule.name] = con.execute(
            f"SELECT count(*) FROM t WHERE {rule.violation_sql}"
        ).fetchone()[0]
    con.unregister("t")
    return {k: v for k, v in out.items() if v}


def test_clean_world_satisfies_every_contract_rule(
    tiny: tuple[Path, WorldSummary, list], products: pd.DataFrame
) -> None:
    out, _, _ = tiny
    con = duckdb.connect()
    skus = set(products["sku"])
    device_skus = set(products.loc[products["category"].isin(["printer", "pc"]), "sku"])
    partners = _partners(out)
    for path in _packs(out):
        frames = {
            t: pq.read_table(path / f"{t}.parquet").to_pandas(date_as_object=False)
            for t in read_pack(path).tables
        }
        for table, df in frames.items():
            assert _violations(df, table, con) == {}, (path.name, table)
            key = list(TABLES[table].key)
            if table == "telemetry":
                # repeated keys are exact duplicates only (no conflict in the clean world)
                assert df.drop_duplicates().duplicated(key).sum() == 0
            else:
                assert df.duplicated(key).sum() == 0, (path.name, table)
        if path.name == "vendor":
            assert set(frames["intent_signals"]["partner_id"]) <= set(partners["partner_id"])
            continue
        tables = ref.partner_tables(out / "packs", path.name.split(".")[0])
        accounts = set(tables["accounts"]["account_id"])
        devices = set(tables["install_base"]["device_id"])
        for table, df in frames.items():
            assert (
                set(df["partner_id"]) <= {path.name.split(".")[0]} if "partner_id" in df else True
            )
            if "account_id" in df:
                assert set(df["account_id"]) <= accounts, (path.name, table)
            if "device_id" in df:
                assert set(df["device_id"].dropna()) <= devices, (path.name, table)
            if "sku" in df:
                allowed = device_skus if table == "install_base" else skus
                assert set(df["sku"]) <= allowed, (path.name, table)
        # the late pack is consistent on its own too
        assert set(frames["telemetry"]["device_id"]) <= set(frames["install_base"]["device_id"])
    # ids are pseudonyms: never e-mail-like nor phone-like
    for path in _packs(out):
        if path.name == "vendor":
            continue
        for table in ("accounts", "install_base"):
            if (path / f"{table}.parquet").exists():
                ids = pq.read_table(path / f"{table}.parquet").column(0).to_pylist()
                assert all(re.fullmatch(r"[AD]-[a-f][0-9a-f]+", i) for i in ids)


def test_clean_free_text_holds_no_personal_data(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, _, _ = tiny
    for path in _packs(out):
        for table in read_pack(path).tables:
            df = pq.read_table(path / f"{table}.parquet").to_pandas()
            for col in TABLES[table].columns:
                if col.free_text:
                    values = df[col.name].dropna().astype(str).unique()
                    assert not any(has_email(v) or has_phone(v) for v in values), (
                        path.name,
                        table,
                        col.name,
                    )


def test_consent_and_late_packs(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, summary, _ = tiny
    partners = _partners(out)
    assert (~partners["data_sharing"]).sum() == 1
    no_consent = partners.loc[~partners["data_sharing"], "partner_id"].item()
    assert summary.no_consent_partner == no_consent
    assert (out / "packs" / no_consent / "manifest.json").exists()
    intent = pq.read_table(out / "packs" / "vendor" / "intent_signals.parquet").to_pandas()
    assert no_consent not in set(intent["partner_id"])
    for oracle in ("propensity_to_buy", "refresh_due"):
        assert no_consent not in set(_oracle(out, oracle)["partner_id"])
    for name in summary.late_packs:
        pid = name.split(".")[0]
        late = read_pack(out / "packs" / name)
        assert late.source == pid and set(late.tables) == {"telemetry", "install_base"}
        tel = late.read_arrow("telemetry").to_pandas()
        assert len(tel) > 0
        assert tel["observed_at"].min() >= pd.Timestamp("2026-09-01T00:00:00Z")
        assert tel["observed_at"].max() < pd.Timestamp("2026-10-01T00:00:00Z")
        main = pq.read_table(out / "packs" / pid / "telemetry.parquet").to_pandas()
        key = ["device_id", "observed_at", "metric"]
        assert len(main.merge(tel[key], on=key)) == 0  # late readings are not in the main pack
        ib_late = late.read_arrow("install_base").to_pandas(date_as_object=False)
        ib_main = pq.read_table(out / "packs" / pid / "install_base.parquet").to_pandas(
            date_as_object=False
        )
        both = ib_late.merge(ib_main, on="device_id", suffixes=("", "_main"))
        assert len(both) == len(ib_late)  # updates by key of devices the main pack knows
        changed = both["retired_on"].notna() & both["retired_on_main"].isna()
        assert changed.sum() == summary.late_install_base_updates[name]


# ---- determinism -------------------------------------------------------------------------------
def _hashes(out: Path) -> dict[str, str]:
    found = {}
    for path in _packs(out):
        manifest = json.loads((path / "manifest.json").read_text())
        for table, entry in manifest["tables"].items():
            found[f"{path.name}/{table}"] = entry["sha256"]
    return found


def test_same_seed_same_world_other_seed_other_world(
    tiny: tuple[Path, WorldSummary, list], tmp_path: Path
) -> None:
    out, _, _ = tiny
    again = generate("tiny", seed=SEED, out=tmp_path / "again")
    assert _hashes(tmp_path / "again") == _hashes(out)
    for model in again.oracle:
        assert _oracle(tmp_path / "again", model).equals(_oracle(out, model))
    other = generate("tiny", seed=SEED + 1, out=tmp_path / "other")
    h_other, h = _hashes(tmp_path / "other"), _hashes(out)
    assert other.no_consent_partner is not None
    differing = [k for k in h if k.startswith("P") and h_other.get(k) != h[k]]
    assert len(differing) > 0.9 * len([k for k in h if k.startswith("P")])


def test_bad_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="unknown scale 'huge': choose one of tiny, small, medium, large"
    ):
        generate("huge", seed=1, out=tmp_path)


def test_foreign_folders_are_never_deleted(tmp_path: Path) -> None:
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds packs/ or oracle/ that no earlier"):
        generate("tiny", seed=1, out=tmp_path)
    assert (tmp_path / "packs" / "keep.txt").read_text() == "mine"


def test_csv_packs_read_back(tmp_path: Path) -> None:
    cfg = replace(
        SCALES["tiny"],
        population=replace(SCALES["tiny"].population, n_partners=2, accounts_per_partner=6),
    )
    summary = generate(cfg, seed=3, out=tmp_path, format="csv")
    pid = next(p.name for p in summary.packs if p.kind == "main")
    pack = read_pack(tmp_path / "packs" / pid)
    assert pack.file("telemetry").format == "csv"
    head = (tmp_path / "packs" / pid / "telemetry.csv").read_text().splitlines()[:2]
    assert head[0] == '"device_id","observed_at","metric","value"'
    assert re.search(r'"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"', head[1])


# ---- the oracle: labels -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model", ["propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion"]
)
def test_realised_labels_match_reference(
    tiny: tuple[Path, WorldSummary, list], products: pd.DataFrame, model: str
) -> None:
    out, _, _ = tiny
    oracle = _oracle(out, model)
    for pid, rows in oracle.groupby("partner_id", sort=True):
        rows = rows.reset_index(drop=True)
        tables = ref.partner_tables(out / "packs", pid)
        if model == "propensity_to_buy":
            expected = ref.propensity_labels(tables, products, rows)
        elif model == "refresh_due":
            expected = ref.refresh_labels(tables, rows)
        elif model == "device_failure":
            expected = ref.failure_labels(tables, rows)
        else:
            got = ref.depletion_labels(tables, rows)
            assert (got.isna().to_numpy() == rows["censored"].to_numpy()).all()
            assert (got.dropna().to_numpy() == rows["label"].dropna().to_numpy()).all()
            assert (rows["label"].isna() == rows["censored"]).all()
            continue
        assert (expected == rows["label"].to_numpy()).all(), (
            pid,
            model,
            int((expected != rows["label"]).sum()),
        )
        assert expected.sum() > 0


@pytest.mark.parametrize(
    "model", ["propensity_to_buy", "refresh_due", "device_failure", "consumable_depletion"]
)
def test_oracle_entities_are_alive_at_the_cutoff(
    tiny: tuple[Path, WorldSummary, list], model: str
) -> None:
    out, _, _ = tiny
    oracle = _oracle(out, model)
    keys = {
        "propensity_to_buy": ["account_id", "category"],
        "consumable_depletion": ["device_id", "color"],
    }.get(model, ["device_id"])
    assert not oracle.duplicated(["partner_id", *keys, "cutoff"]).any()
    assert oracle["p_true"].between(0.0, 1.0).all()
    cutoffs = sorted(oracle["cutoff"].unique())
    assert len(cutoffs) == 12
    assert all(pd.Timestamp(c).day == 1 for c in cutoffs)
    horizon = int(oracle["horizon_days"].iloc[0])
    assert pd.Timestamp(cutoffs[-1]) + pd.Timedelta(days=horizon) <= pd.Timestamp("2026-09-30")
    assert pd.Timestamp(cutoffs[-1]) + pd.Timedelta(days=horizon + 31) > pd.Timestamp("2026-09-30")
    for pid, rows in oracle.groupby("partner_id"):
        tables = ref.partner_tables(out / "packs", pid)
        for c, g in rows.groupby("cutoff"):
            c = pd.Timestamp(c)
            got = set(zip(*(g[k] for k in keys), strict=True)) if len(keys) > 1 else set(g[keys[0]])
            if model == "propensity_to_buy":
                expected = ref.propensity_entities(tables, c, list(PRODUCT_CATEGORIES))
            elif model == "refresh_due":
                expected = ref.alive_devices(tables, c)
            elif model == "device_failure":
                expected = ref.failure_entities(tables, c)
            else:
                expected = ref.depletion_entities(tables, c)
            assert got == expected, (pid, model, c)


# ---- the oracle: calibration --------------------------------------------------------------------
def _reliability_gaps(
    p: np.ndarray, y: np.ndarray, design_effect: float, bins: int = 5
) -> list[float]:
    """Per quantile bin of p, |mean(y) - mean(p)| in standard errors (inflated by the design
    effect of overlapping windows across monthly cutoffs), plus the overall gap."""
    order = np.argsort(p, kind="stable")
    gaps = []
    for part in [*np.array_split(order, bins), order]:
        pp, yy = p[part], y[part]
        se = np.sqrt(max(np.sum(pp * (1 - pp)), 1.0) * design_effect) / len(part)
        gaps.append(abs(yy.mean() - pp.mean()) / se)
    return gaps


CALIBRATION = {
    # model: (design effect ~ horizon in months, minimum oracle AUC)
    "propensity_to_buy": (3.0, 0.8),
    "refresh_due": (6.0, 0.8),
    "device_failure": (1.5, 0.7),
}


@pytest.mark.parametrize("model", list(CALIBRATION))
def test_oracle_is_calibrated_and_informative(
    tiny: tuple[Path, WorldSummary, list], model: str
) -> None:
    out, _, _ = tiny
    oracle = _oracle(out, model)
    p, y = oracle["p_true"].to_numpy(), oracle["label"].to_numpy().astype(float)
    deff, min_auc = CALIBRATION[model]
    assert 0.02 <= y.mean() <= 0.45
    assert max(_reliability_gaps(p, y, deff)) < 4.0
    # per cutoff, the mean probability matches the base rate (each cutoff's entities are
    # independent of one another)
    for _, g in oracle.groupby("cutoff"):
        pp, yy = g["p_true"].to_numpy(), g["label"].to_numpy()
        assert abs(yy.sum() - pp.sum()) < 4.0 * np.sqrt(pp @ (1 - pp)) + 1.0
    assert roc_auc_score(y, p) > min_auc
    # the check has teeth: a distorted oracle fails it
    for distorted in (np.clip(p * 2.0, 0, 1), np.sqrt(p), np.random.default_rng(0).permutation(p)):
        assert max(_reliability_gaps(distorted, y, deff)) >= 4.0


def test_depletion_oracle_is_calibrated(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, _, _ = tiny
    d = _oracle(out, "consumable_depletion")
    hit = (~d["censored"]).to_numpy().astype(float)
    assert max(_reliability_gaps(d["p_true"].to_numpy(), hit, 6.0)) < 4.0
    # quantiles: the realised days fall below P10/P50/P90 about 10/50/90 % of the time
    # (discrete days make the quantiles slightly conservative)
    for col, lo, hi in (
        ("p10_days", 0.05, 0.22),
        ("p50_days", 0.42, 0.65),
        ("p90_days", 0.84, 0.96),
    ):
        sel = d[col] <= d["horizon_days"]
        below = (~d.loc[sel, "censored"]) & (d.loc[sel, "label"] <= d.loc[sel, col])
        assert lo <= below.mean() <= hi, col
    unc = d[~d["censored"]]
    assert (unc["expected_days"] - unc["label"]).abs().mean() < 10.0
    q = d[["p10_days", "p50_days", "p90_days"]].fillna(np.inf)  # NaN: beyond the longest horizon
    assert (q["p10_days"] <= q["p50_days"]).all() and (q["p50_days"] <= q["p90_days"]).all()
    assert (d["expected_days"] > 0).all() and d["p50_days"].notna().mean() > 0.95


def test_vendor_rule_of_thumb_is_a_beatable_baseline(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, _, _ = tiny
    oracle = _oracle(out, "refresh_due")
    frames = []
    for pid, rows in oracle.groupby("partner_id"):
        ib = ref.partner_tables(out / "packs", pid)["install_base"][["device_id", "installed_on"]]
        frames.append(rows.merge(ib, on="device_id"))
    df = pd.concat(frames)
    age = (df["cutoff"] - df["installed_on"]).dt.days / 365.25
    auc_rule = roc_auc_score(df["label"], age > 5)
    auc_age = roc_auc_score(df["label"], age)
    auc_oracle = roc_auc_score(df["label"], df["p_true"])
    assert 0.6 < auc_rule < auc_oracle - 0.1
    assert auc_age < auc_oracle - 0.05


# ---- dirty mode ---------------------------------------------------------------------------------
def _count_defects(out: Path) -> dict[tuple[str, str | None, str | None, str], int | None]:
    """Every defect in the files, counted with pandas (independently of the generator)."""
    found: dict[tuple[str, str | None, str | None, str], int | None] = {}
    products = pq.read_table(out / "packs" / "vendor" / "products.parquet").to_pandas()
    partners = _partners(out)
    no_consent = set(partners.loc[~partners["data_sharing"], "partner_id"])

    def add(key: tuple[str, str | None, str | None, str], n: int | None) -> None:
        if n is None or n > 0:
            found[key] = n

    for path in _packs(out):
        pack = path.name
        try:
            read_pack(path)
        except ManifestError as exc:
            for problem in exc.problems:
                add((pack, problem.table, None, problem.rule), None)
        if json.loads((path / "manifest.json").read_text())["source"] in no_consent:
            add((pack, None, None, "consent"), None)
        frames = {f.stem: pq.read_table(f).to_pandas() for f in path.glob("*.parquet")}
        for table, df in frames.items():
            for col in TABLES[table].columns:
                if col.free_text:
                    text = df[col.name].fillna("").astype(str)
                    add((pack, table, col.name, "email_in_text"), int(text.map(has_email).sum()))
                    add((pack, table, col.name, "phone_in_text"), int(text.map(has_phone).sum()))
        if "intent_signals" in frames:
            add(
                (pack, "intent_signals", "partner_id", "consent"),
                int(frames["intent_signals"]["partner_id"].isin(no_consent).sum()),
            )
        if "telemetry" in frames:
            tel = frames["telemetry"]
            key = ["device_id", "observed_at", "metric"]
            add((pack, "telemetry", None, "duplicate"), int(tel.duplicated().sum()))
            distinct = tel.drop_duplicates()
            conflicting = distinct[distinct.duplicated(key, keep=False)][key].drop_duplicates()
            add((pack, "telemetry", None, "key_conflict"), len(tel.merge(conflicting, on=key)))
        if "inventory" in frames:
            add(
                (pack, "inventory", "units_on_hand", "below_min"),
                int((frames["inventory"]["units_on_hand"] < 0).sum()),
            )
        if "sell_through" in frames:
            st = frames["sell_through"]
            add(
                (pack, "sell_through", "sold_on", "future_date"),
                int((pd.to_datetime(st["sold_on"]) > pd.Timestamp("2026-10-01")).sum()),
            )
            add(
                (pack, "sell_through", "sku", "unknown_sku"),
                int((~st["sku"].isin(products["sku"])).sum()),
            )
    return found


def test_dirty_world_defects_are_exactly_the_expected_ones(
    dirty: tuple[Path, WorldSummary],
) -> None:
    out, summary = dirty
    expected = json.loads((out / "expected_defects.json").read_text())
    assert expected == summary.expected_defects
    assert {d["rule"] for d in expected} == {
        "email_in_text",
        "phone_in_text",
        "consent",
        "key_conflict",
        "duplicate",
        "below_min",
        "future_date",
        "unknown_sku",
        "manifest_sha256",
    }
    as_dict = {(d["pack"], d["table"], d["column"], d["rule"]): d["rows"] for d in expected}
    assert len(as_dict) == len(expected)
    assert _count_defects(out) == as_dict


def test_clean_world_holds_none_of_the_dirty_defects(tiny: tuple[Path, WorldSummary, list]) -> None:
    out, summary, _ = tiny
    found = _count_defects(out)
    duplicates = {k[0]: v for k, v in found.items() if k[3] == "duplicate"}
    assert duplicates == summary.telemetry_duplicates
    rest = {k: v for k, v in found.items() if k[3] != "duplicate"}
    assert rest == {(summary.no_consent_partner, None, None, "consent"): None}


def test_dirty_oracle_is_the_clean_oracle(
    tiny: tuple[Path, WorldSummary, list], dirty: tuple[Path, WorldSummary]
) -> None:
    for model in tiny[1].oracle:
        assert _oracle(dirty[0], model).equals(_oracle(tiny[0], model))


def test_intent_signals_lead_purchases_by_weeks(
    tiny: tuple[Path, WorldSummary, list], products: pd.DataFrame
) -> None:
    """Research on a device family shows up in the weeks before it is bought, far more often
    than in the same weeks of a placebo date."""
    out, _, _ = tiny
    intent = pq.read_table(out / "packs" / "vendor" / "intent_signals.parquet").to_pandas(
        date_as_object=False
    )
    lines = pd.concat(
        pq.read_table(p / "sell_through.parquet").to_pandas(date_as_object=False)
        for p in _packs(out)
        if (p / "sell_through.parquet").exists()
    )
    lines = lines[lines["quantity"] > 0].merge(products[["sku", "category", "family"]], on="sku")
    lines = lines[lines["category"].isin(["printer", "pc"])].reset_index(drop=True)

    def share_with_signal(shift_days: int) -> float:
        t = lines["sold_on"] + pd.Timedelta(days=shift_days)
        m = lines.assign(t=t).reset_index().merge(intent, on=["partner_id", "account_id"])
        before = (m["week_of"] >= m["t"] - pd.Timedelta(weeks=13)) & (m["week_of"] < m["t"])
        return m.loc[before & (m["topic"] == m["family"]), "index"].nunique() / len(lines)

    assert share_with_signal(0) > 3 * share_with_signal(-200)
    assert share_with_signal(0) > 0.1
