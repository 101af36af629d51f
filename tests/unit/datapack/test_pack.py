"""Reading and writing packs: manifest verification, formats, typed reads."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from amplify_ml.datapack import PackWriter, read_pack, write_pack
from amplify_ml.datapack.validate import validate_pack
from amplify_ml.errors import DataPackError, ManifestError
from tests.factories import CREATED_AT, PERIOD, partner_tables, write_partner_pack


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path: Path, data: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_pack_round_trips_with_contract_types(tmp_path: Path, fmt: str) -> None:
    pack_dir = write_partner_pack(tmp_path / "P001", format=fmt)
    m = _manifest(pack_dir)
    assert m["contract"] == "amplify-datapack/1"
    assert m["source"] == "P001"
    assert m["created_at"] == "2025-01-01T06:00:00Z"
    assert m["period"] == {"start": "2024-01-01", "end": "2024-12-31"}
    assert m["tables"]["telemetry"]["rows"] == 4
    assert m["tables"]["telemetry"]["file"] == f"telemetry.{fmt}"
    pack = read_pack(pack_dir)
    assert pack.source == "P001" and not pack.is_vendor
    tel = pack.read_table("telemetry")
    assert str(tel["observed_at"].dtype).startswith("datetime64") and "UTC" in str(
        tel["observed_at"].dtype
    )
    assert tel["observed_at"].iloc[0] == pd.Timestamp("2024-03-01T08:00:00Z")
    assert tel["value"].tolist() == [1200.0, 80.0, 1650.0, 92.5]
    sell = pack.read_table("sell_through")
    assert sell["quantity"].tolist() == [1, 2, -1]
    assert str(sell["quantity"].dtype) == "int64"
    ib = pack.read_table("install_base")
    assert ib["retired_on"].isna().tolist() == [True, False]


def test_csv_timestamps_are_written_the_contract_way(tmp_path: Path) -> None:
    pack_dir = write_partner_pack(tmp_path / "P001", format="csv")
    lines = (pack_dir / "telemetry.csv").read_text().splitlines()
    assert lines[1] == '"D-1","2024-03-01T08:00:00Z","page_count",1200'


def test_pack_id_is_stable_and_content_addressed(tmp_path: Path) -> None:
    a = read_pack(write_partner_pack(tmp_path / "a"))
    b = read_pack(write_partner_pack(tmp_path / "b"))
    assert a.pack_id == b.pack_id
    assert re.fullmatch(r"P001-20250101T060000Z-[0-9a-f]{12}", a.pack_id)
    tables = partner_tables()
    tables["accounts"].loc[0, "industry"] = "Energy"
    c = read_pack(write_partner_pack(tmp_path / "c", tables))
    assert c.pack_id != a.pack_id


def test_streaming_writer_appends_chunks(tmp_path: Path) -> None:
    tel = partner_tables()["telemetry"]
    with PackWriter(tmp_path / "P001", source="P001", period=PERIOD, created_at=CREATED_AT) as w:
        w.append("telemetry", tel.iloc[:2])
        w.append("telemetry", tel.iloc[2:])
    pack = read_pack(tmp_path / "P001")
    assert pack.manifest.tables["telemetry"].rows == 4
    assert len(pack.read_table("telemetry")) == 4


def test_writing_a_table_twice_is_refused(tmp_path: Path) -> None:
    tel = partner_tables()["telemetry"]
    with (
        pytest.raises(DataPackError, match=r"table 'telemetry' was already written"),
        PackWriter(tmp_path / "x", source="P001", period=PERIOD) as w,
    ):
        w.write("telemetry", tel)
        w.write("telemetry", tel)


def test_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    with pytest.raises(ManifestError, match=r"no manifest\.json; a data pack is a folder"):
        read_pack(tmp_path / "p")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataPackError, match=r"not a folder"):
        read_pack(tmp_path / "nope")


def test_manifest_not_json(tmp_path: Path) -> None:
    p = write_partner_pack(tmp_path / "p")
    (p / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match=r"manifest\.json: not valid UTF-8 JSON"):
        read_pack(p)


def test_manifest_fields_are_checked(tmp_path: Path) -> None:
    p = write_partner_pack(tmp_path / "p")
    m = _manifest(p)
    m["created_at"] = "2025-01-01 06:00"
    del m["period"]
    _write_manifest(p, m)
    with pytest.raises(
        ManifestError,
        match=r"invalid manifest: created_at: Value error, expected a UTC timestamp "
        r"YYYY-MM-DDTHH:MM:SSZ; period: Field required",
    ):
        read_pack(p)


def test_contract_version(tmp_path: Path) -> None:
    p = write_partner_pack(tmp_path / "p")
    m = _manifest(p)
    m["contract"] = "amplify-datapack/2"
    _write_manifest(p, m)
    with pytest.raises(
        ManifestError, match=r"contract is 'amplify-datapack/2', expected 'amplify-datapack/1'"
    ):
        read_pack(p)


def test_sha256_mismatch_is_refused_with_every_problem(tmp_path: Path) -> None:
    p = write_partner_pack(tmp_path / "p", format="csv")
    with (p / "accounts.csv").open("a") as fh:
        fh.write('"A-3","P001","Retail","1-9","DE","2023-01-01"\n')
    m = _manifest(p)
    m["tables"]["inventory"]["rows"] = 99
    m["tables"]["inventory"]["sha256"] = m["tables"]["inventory"]["sha256"]  # unchanged
    _write_manifest(p, m)
    with pytest.raises(ManifestError) as info:
        read_pack(p)
    rules = [(pr.rule, pr.table) for pr in info.value.problems]
    assert rules == [("manifest_sha256", "accounts"), ("manifest_rows", "inventory")]
    assert "the file changed after the manifest was written" in str(info.value)
    assert "inventory.csv holds 2 rows, the manifest says 99" in str(info.value)


def test_missing_unlisted_and_misnamed_files(tmp_path: Path) -> None:
    p = write_partner_pack(tmp_path / "p")
    (p / "inventory.parquet").rename(p / "stock.parquet")
    m = _manifest(p)
    m["tables"]["opportunities"]["file"] = "opps.parquet"
    m["tables"]["customers"] = m["tables"]["accounts"]
    _write_manifest(p, m)
    with pytest.raises(ManifestError) as info:
        read_pack(p)
    rules = sorted(pr.rule for pr in info.value.problems)
    assert rules == ["file_name", "missing_file", "unknown_table", "unlisted_file", "unlisted_file"]
    text = str(info.value)
    assert "table 'customers' is not a contract table" in text
    assert "file stock.parquet is not listed in the manifest" in text


def test_vendor_pack_may_not_hold_partner_tables(tmp_path: Path) -> None:
    write_pack(
        tmp_path / "v",
        {"accounts": partner_tables()["accounts"]},
        source="vendor",
        period=PERIOD,
        created_at=CREATED_AT,
    )
    with pytest.raises(
        ManifestError, match=r"table 'accounts' is a partner table; a vendor pack holds only"
    ):
        read_pack(tmp_path / "v")


def test_period_must_be_ordered(tmp_path: Path) -> None:
    write_pack(
        tmp_path / "p",
        {"accounts": partner_tables()["accounts"]},
        source="P001",
        period=(date(2024, 12, 31), date(2024, 1, 1)),
        created_at=CREATED_AT,
    )
    with pytest.raises(ManifestError, match=r"period ends \(2024-01-01\) before it starts"):
        read_pack(tmp_path / "p")


def test_validate_reports_a_broken_manifest_instead_of_raising(tmp_path: Path) -> None:
    p = write_partner_pack(tmp_path / "p")
    m = _manifest(p)
    m["tables"]["accounts"]["sha256"] = "0" * 64
    _write_manifest(p, m)
    report = validate_pack(p)
    assert report.refused
    assert report.counts() == {("accounts", "manifest_sha256"): None}


def test_read_table_refuses_values_of_the_wrong_type(tmp_path: Path) -> None:
    from tests.factories import write_string_pack

    tables = partner_tables()
    tables["sell_through"] = tables["sell_through"].astype(object)
    tables["sell_through"].loc[1, "quantity"] = "two"
    p = write_string_pack(tmp_path / "p", tables, "P001")
    pack = read_pack(p)
    from amplify_ml.errors import ContractError

    with pytest.raises(
        ContractError,
        match=r"p/sell_through: values in quantity cannot be read as their contract types "
        r"\(1 row \(row 2\)\); run `amplify validate`",
    ):
        pack.read_table("sell_through")


def test_unknown_table_in_pack_access(tmp_path: Path) -> None:
    pack = read_pack(write_partner_pack(tmp_path / "p"))
    with pytest.raises(DataPackError, match=r"has no table 'market'; it holds accounts, "):
        pack.read_table("market")
