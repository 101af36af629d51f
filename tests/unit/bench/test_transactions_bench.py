"""The transactions benchmark: its generated export, and the command end to end on a small one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from amplify_ml.bench.transactions import MAPPING, run, write_export


def test_the_export_is_seeded_and_a_twentieth_of_its_lines_lack_a_customer(
    tmp_path: Path,
) -> None:
    a = write_export(tmp_path / "a.csv", 1201, seed=3)
    b = write_export(tmp_path / "b.csv", 1201, seed=3)
    assert a.read_bytes() == b.read_bytes()
    df = pd.read_csv(a, dtype=str, keep_default_na=False)
    assert len(df) == 1201 and set(MAPPING.values()) <= set(df.columns)
    assert 0.02 < (df["CustomerID"] == "").mean() < 0.09
    assert (
        pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.year.isin([2022, 2023]).all()
    )
    assert (df["Quantity"].astype(int) != 0).all()
    # written once: a second call with the same path keeps the file
    before = a.stat().st_mtime_ns
    write_export(a, 1201, seed=3)
    assert a.stat().st_mtime_ns == before


def test_the_command_converts_with_and_without_the_cap(tmp_path: Path, capsys) -> None:
    result = run(3000, tmp_path, seed=1, memory_limit="256MB")
    written = json.loads((tmp_path / "bench" / "transactions-3000.json").read_text())
    assert written == result
    refused = (
        pd.read_csv(
            tmp_path / "bench" / "transactions-3000-1.csv", dtype=str, keep_default_na=False
        )["CustomerID"]
        == ""
    ).sum()
    for side in ("convert", "baseline_no_cap"):
        assert result[side]["rows"] == 3000
        assert result[side]["converted"] == 3000 - refused
        assert result[side]["peak_mib"] > 0
    assert result["read_whole"]["rows"] == 3000
    # the packs and refused rows are removed; the export is kept for the next run
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == [
        "transactions-3000-1.csv",
        "transactions-3000.json",
    ]
    assert "cap 256MB" in capsys.readouterr().out
