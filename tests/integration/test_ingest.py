"""Ingestion into the lake: consent, privacy, quarantine, idempotence, supersede, crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from amplify_ml.datapack.ingest import ingest_pack
from amplify_ml.errors import ConsentError, DataPackError, ManifestError
from amplify_ml.lake import Lake
from tests.factories import (
    CREATED_AT,
    partner_tables,
    vendor_tables,
    write_partner_pack,
    write_string_pack,
    write_vendor_pack,
)

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> dict[str, int]:
    """Every file under root with its size: a fingerprint of what is stored."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "ws" / "lake")
    ingest_pack(write_vendor_pack(tmp_path / "vendor"), lake)
    return lake


def test_partner_pack_loads_every_table_with_lineage(tmp_path: Path, lake: Lake) -> None:
    report = ingest_pack(write_partner_pack(tmp_path / "P001"), lake)
    assert report.status == "loaded"
    for name, df in partner_tables().items():
        t = report.tables[name]
        assert (t.read, t.loaded, t.quarantined) == (len(df), len(df), 0), name
        stored = lake.read(name)
        assert len(stored) == len(df)
        assert set(stored["_pack_id"]) == {report.pack_id}
    tel = lake.read("telemetry")
    assert set(tel["partner_id"]) == {"P001"}  # the lake adds the pack's partner to telemetry
    assert str(tel["observed_at"].dtype).endswith("UTC]")
    packs = lake.packs()
    assert list(packs["source"]) == ["vendor", "P001"]
    assert packs["manifest_sha256"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_loaded_plus_quarantined_equals_read(tmp_path: Path, lake: Lake) -> None:
    t = {k: v.astype(object) for k, v in partner_tables().items()}
    t["accounts"].loc[0, "industry"] = "buyer jane@shop.example"
    t["sell_through"].loc[1, "quantity"] = "x"
    t["sell_through"].loc[2, "partner_id"] = "P002"
    t["telemetry"] = pd.concat([t["telemetry"], t["telemetry"].iloc[[0]]], ignore_index=True)
    t["inventory"].loc[0, "units_on_hand"] = -1
    report = ingest_pack(write_string_pack(tmp_path / "P001", t, "P001"), lake)
    for name, ti in report.tables.items():
        assert ti.loaded + ti.quarantined == ti.read, name
        assert len(lake.read(name)) == ti.loaded, name
        q = lake.quarantine(name)
        assert len(q) == ti.quarantined, name
    # the foreign row also names an account this partner does not have
    assert report.tables["sell_through"].reasons == {
        "type": 1,
        "foreign_partner": 1,
        "unknown_account": 1,
    }
    assert report.tables["telemetry"].reasons == {"duplicate": 1}
    assert report.tables["accounts"].reasons == {"email_in_text": 1}
    assert report.tables["inventory"].reasons == {"below_min": 1}


def test_quarantine_keeps_rows_as_text_with_reasons_and_redacts_personal_data(
    tmp_path: Path, lake: Lake
) -> None:
    t = {k: v.astype(object) for k, v in partner_tables().items()}
    t["accounts"].loc[1, "industry"] = "Retail, ring +49 30 1234567"
    t["accounts"].loc[1, "employee_band"] = "huge"
    ingest_pack(write_string_pack(tmp_path / "P001", t, "P001"), lake)
    q = lake.quarantine("accounts")
    assert len(q) == 1
    row = q.iloc[0]
    assert row["_row"] == 2
    assert sorted(row["_reasons"]) == ["employee_band:enum", "industry:phone_in_text"]
    assert row["industry"] == "<redacted: personal data>"
    assert row["employee_band"] == "huge"  # not personal: kept so the partner can fix it
    stored = _tree(lake.root)
    blob = b"".join((lake.root / f).read_bytes() for f in stored)
    assert b"1234567" not in blob


def test_consent_refusal_stores_nothing(tmp_path: Path, lake: Lake) -> None:
    before = _tree(lake.root)
    with pytest.raises(ConsentError, match=r"partner P003 has not opted in to share its data"):
        ingest_pack(write_partner_pack(tmp_path / "P003", partner_tables("P003"), "P003"), lake)
    assert _tree(lake.root) == before


def test_unknown_partner_and_missing_vendor_pack_are_refused(tmp_path: Path, lake: Lake) -> None:
    with pytest.raises(DataPackError, match=r"its source partner is not in the partners table"):
        ingest_pack(write_partner_pack(tmp_path / "P777", partner_tables("P777"), "P777"), lake)
    empty = Lake(tmp_path / "empty" / "lake")
    with pytest.raises(ConsentError, match=r"Ingest the vendor pack \(source 'vendor'\) first"):
        ingest_pack(write_partner_pack(tmp_path / "P001"), empty)
    assert _tree(empty.root) == {}


def test_broken_manifest_is_refused_whole(tmp_path: Path, lake: Lake) -> None:
    p = write_partner_pack(tmp_path / "P001")
    m = json.loads((p / "manifest.json").read_text())
    m["tables"]["telemetry"]["sha256"] = "f" * 64
    (p / "manifest.json").write_text(json.dumps(m))
    before = _tree(lake.root)
    with pytest.raises(ManifestError, match=r"table 'telemetry': sha256 of telemetry.parquet"):
        ingest_pack(p, lake)
    assert _tree(lake.root) == before


def test_pack_from_the_future_is_refused(tmp_path: Path, lake: Lake) -> None:
    from amplify_ml.datapack import write_pack
    from tests.factories import PERIOD

    write_pack(
        tmp_path / "P001",
        partner_tables(),
        source="P001",
        period=PERIOD,
        created_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(DataPackError, match=r"created_at 2099-01-01T00:00:00Z lies in the future"):
        ingest_pack(tmp_path / "P001", lake)


def test_reingesting_the_same_pack_changes_nothing(tmp_path: Path, lake: Lake) -> None:
    p = write_partner_pack(tmp_path / "P001")
    ingest_pack(p, lake)
    before, version = _tree(lake.root), lake.snapshot().version
    again = ingest_pack(p, lake)
    assert again.status == "unchanged"
    assert _tree(lake.root) == before and lake.snapshot().version == version
    assert len(lake.read("sell_through")) == 3


def test_newer_pack_supersedes_rows_by_key_and_keeps_the_old_ones(
    tmp_path: Path, lake: Lake
) -> None:
    first = ingest_pack(write_partner_pack(tmp_path / "P001"), lake)
    ib = partner_tables()["install_base"].iloc[[0]].copy()
    ib["retired_on"] = [pd.Timestamp("2024-11-30").date()]
    tel = (
        partner_tables()["telemetry"]
        .iloc[[0]]
        .assign(observed_at=[pd.Timestamp("2024-04-01T08:00:00Z")], value=[2400.0])
    )
    from amplify_ml.datapack import write_pack
    from tests.factories import PERIOD

    write_pack(
        tmp_path / "P001-late",
        {"install_base": ib, "telemetry": tel},
        source="P001",
        period=PERIOD,
        created_at=CREATED_AT.replace(month=2),
    )
    late = ingest_pack(tmp_path / "P001-late", lake)
    assert late.tables["install_base"].superseded == 1
    assert late.tables["telemetry"].superseded == 0  # a late reading: a new key, appended
    current = lake.read("install_base").set_index("device_id")
    assert len(current) == 2
    assert str(current.loc["D-1", "retired_on"].date()) == "2024-11-30"
    assert current.loc["D-1", "_pack_id"] == late.pack_id
    assert current.loc["D-2", "_pack_id"] == first.pack_id
    old = lake.superseded("install_base")
    assert list(old["device_id"]) == ["D-1"] and pd.isna(old["retired_on"].iloc[0])
    assert list(old["_superseded_by"]) == [late.pack_id]
    assert len(lake.read("telemetry")) == 5


def test_a_derived_first_seen_keeps_the_earlier_date_a_stated_one_replaces_it(
    tmp_path: Path, lake: Lake
) -> None:
    """A pack that derived accounts.first_seen from its own rows (say so in its manifest's
    'derived') saw part of the history: the earlier date stays. A stated one is a correction."""
    from amplify_ml.datapack import write_pack
    from tests.factories import PERIOD

    ingest_pack(write_partner_pack(tmp_path / "P001"), lake)  # A-1 first seen 2021-05-01
    later = partner_tables()["accounts"].iloc[[0]].assign(first_seen=[date(2024, 2, 1)])
    for name, derived, month in (("derived", True, 2), ("stated", False, 3)):
        path = tmp_path / f"P001-{name}"
        write_pack(
            path,
            {"accounts": later},
            source="P001",
            period=PERIOD,
            created_at=CREATED_AT.replace(month=month),
        )
        if derived:
            manifest = json.loads((path / "manifest.json").read_text())
            manifest["derived"] = {"accounts.first_seen": "first purchase in the export"}
            (path / "manifest.json").write_text(json.dumps(manifest))
        report = ingest_pack(path, lake)
        assert report.tables["accounts"].superseded == 1
        first_seen = lake.read("accounts").set_index("account_id").loc["A-1", "first_seen"]
        expected = "2021-05-01" if derived else "2024-02-01"
        assert str(first_seen.date()) == expected, name


def test_vendor_pack_withdrawing_consent_hides_the_partner(tmp_path: Path, lake: Lake) -> None:
    ingest_pack(write_partner_pack(tmp_path / "P001"), lake)
    assert "P001" in lake.partners()
    vt = vendor_tables()
    vt["partners"].loc[0, "data_sharing"] = False
    from amplify_ml.datapack import write_pack
    from tests.factories import PERIOD

    write_pack(
        tmp_path / "vendor2",
        vt,
        source="vendor",
        period=PERIOD,
        created_at=CREATED_AT.replace(month=3),
    )
    report = ingest_pack(tmp_path / "vendor2", lake)
    assert report.withdrawn_partners == ["P001"]
    assert "P001" not in lake.partners()
    assert lake.read("sell_through").empty
    with pytest.raises(ConsentError):
        ingest_pack(write_partner_pack(tmp_path / "P001b"), lake)


def test_a_partner_view_never_holds_another_partners_rows(tmp_path: Path, lake: Lake) -> None:
    ingest_pack(write_partner_pack(tmp_path / "P001"), lake)
    ingest_pack(write_partner_pack(tmp_path / "P002", partner_tables("P002"), "P002"), lake)
    con = lake.connect(partners=["P002"])
    for table in ("accounts", "sell_through", "telemetry", "install_base", "partners"):
        ids = {r[0] for r in con.execute(f'SELECT DISTINCT partner_id FROM "{table}"').fetchall()}
        assert ids == {"P002"}, table
    assert con.execute('SELECT count(*) FROM "products"').fetchone()[0] == 6  # vendor-wide


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from amplify_ml.datapack.ingest import ingest_pack
    from amplify_ml.lake import Lake

    def die(table):
        if table == sys.argv[3]:
            os.kill(os.getpid(), signal.SIGKILL)

    ingest_pack(sys.argv[1], Lake(sys.argv[2]), after_table=die)
    """
)


@pytest.mark.parametrize("kill_after", ["accounts", "telemetry", "inventory"])
def test_a_killed_ingest_leaves_the_lake_unchanged_and_a_rerun_succeeds(
    tmp_path: Path, lake: Lake, kill_after: str
) -> None:
    pack = write_partner_pack(tmp_path / "P001")
    snapshot_before = lake.snapshot().to_json()
    reads_before = {t: len(lake.read(t)) for t in ("partners", "products")}
    # a killed process cannot remove its scratch folders: keep them under tmp_path, not /tmp
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(pack), str(lake.root), kill_after],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert lake.snapshot().to_json() == snapshot_before
    assert {t: len(lake.read(t)) for t in ("partners", "products")} == reads_before
    assert lake.read("accounts").empty and not lake.has_pack("P001")
    report = ingest_pack(pack, lake)
    assert report.status == "loaded"
    assert len(lake.read("telemetry")) == 4
    assert not (lake.root / "_staging").exists()
