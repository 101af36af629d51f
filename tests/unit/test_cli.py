"""The amplify command: exit codes, JSON summaries, messages."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from amplify_ml.cli import app
from tests.factories import partner_tables, vendor_tables, write_string_pack

runner = CliRunner()


def test_contract_lists_every_table_as_json() -> None:
    result = runner.invoke(app, ["contract", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["table"] for r in rows} == {
        "partners",
        "products",
        "accounts",
        "sell_through",
        "install_base",
        "telemetry",
        "device_events",
        "service_events",
        "opportunities",
        "inventory",
        "intent_signals",
        "market",
    }
    assert {"table": "telemetry", "column": "observed_at", "type": "timestamp"}.items() <= next(
        r for r in rows if r["column"] == "observed_at"
    ).items()


def _packs(tmp_path: Path, bad: bool = False) -> Path:
    partner = partner_tables()
    if bad:
        partner["inventory"] = partner["inventory"].astype(object)
        partner["inventory"].loc[0, "units_on_hand"] = -3
    write_string_pack(tmp_path / "packs" / "vendor", vendor_tables(), "vendor")
    write_string_pack(tmp_path / "packs" / "P001", partner, "P001")
    return tmp_path


def test_validate_a_folder_of_packs_uses_the_vendor_pack_as_reference(tmp_path: Path) -> None:
    root = _packs(tmp_path)
    result = runner.invoke(app, ["validate", str(root), "--json", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert [r["pack"] for r in reports] == ["vendor", "P001"]
    assert all(r["ok"] for r in reports)
    # with the vendor pack as reference, skus and consent were checked: no such warnings
    rules = {v["rule"] for v in reports[1]["violations"]}
    assert "consent_not_checked" not in rules and "reference_not_checked" not in rules


def test_validate_exits_1_and_names_table_column_and_row(tmp_path: Path) -> None:
    root = _packs(tmp_path, bad=True)
    result = runner.invoke(
        app,
        [
            "validate",
            str(root / "packs" / "P001"),
            "--reference",
            str(root / "packs" / "vendor"),
            "-w",
            str(tmp_path / "ws"),
        ],
    )
    assert result.exit_code == 1
    assert "inventory.units_on_hand: 1 row (row 1) below the minimum 0" in result.stdout


def test_validate_missing_path_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope"), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_synth_refuses_an_unknown_scale(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["synth", "--scale", "huge", "--out", str(tmp_path / "w"), "-w", str(tmp_path / "ws")]
    )
    assert result.exit_code == 2
    assert "unknown scale 'huge'; choose one of tiny, small, medium, large" in result.output


def test_ingest_prints_rows_read_loaded_and_quarantined_by_reason(tmp_path: Path) -> None:
    root = _packs(tmp_path, bad=True)
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["ingest", str(root), "-w", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    inv = data["packs"][1]["tables"]["inventory"]
    assert inv == {
        "read": 2,
        "loaded": 1,
        "quarantined": 1,
        "superseded": 0,
        "reasons": {"below_min": 1},
    }
    again = runner.invoke(app, ["ingest", str(root / "packs" / "P001"), "-w", str(ws)])
    assert again.exit_code == 0
    assert "P001: already in the lake, nothing changed" in again.stdout


def test_ingest_of_a_pack_without_consent_exits_2_and_says_why(tmp_path: Path) -> None:
    write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    write_string_pack(tmp_path / "P003", partner_tables("P003"), "P003")
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(tmp_path / "vendor"), "-w", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(tmp_path / "P003"), "-w", str(ws)])
    assert result.exit_code == 2
    assert "refused P003: pack P003 is refused: partner P003 has not opted in" in result.stdout


def _from_transactions(src: Path) -> list[str]:
    """The command line shared by the from-transactions tests (no consent, no defaults)."""
    return [
        "pack",
        "from-transactions",
        str(src),
        "--partner",
        "P001",
        "--map",
        "customer_id=cust,date=day,quantity=qty,amount=amt",
        "--country",
        "DE",
        "--currency",
        "EUR",
    ]


def test_pack_from_transactions_then_ingest(tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    src.write_text("cust,day,qty,amt\nC1,2024-01-02,3,30.0\nC2,2024-01-03,1,12.5\nC3,bad,1,1\n")
    ws = tmp_path / "ws"
    result = runner.invoke(
        app,
        [
            *_from_transactions(src),
            "--consent",
            "--default",
            "channel=field,employee_band=1-9,track=power,category=supplies",
            "-w",
            str(ws),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 of 3 rows converted" in result.stdout
    assert "refused 1 rows (bad_date; rows 3)" in result.stdout
    ingested = runner.invoke(app, ["ingest", str(ws / "packs" / "P001"), "-w", str(ws), "--json"])
    assert ingested.exit_code == 0, ingested.output
    tables = json.loads(ingested.stdout)["packs"][0]["tables"]
    assert tables["sell_through"]["loaded"] == 2


def test_pack_from_transactions_without_consent_exits_2(tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    src.write_text("cust,day,qty,amt\nC1,2024-01-02,3,30.0\n")
    result = runner.invoke(app, [*_from_transactions(src), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "pass --consent once the partner has opted in" in result.output


def test_lake_packs_and_quarantine(tmp_path: Path) -> None:
    root = _packs(tmp_path, bad=True)
    ws = tmp_path / "ws"
    runner.invoke(app, ["ingest", str(root), "-w", str(ws)])
    packs = runner.invoke(app, ["lake", "packs", "-w", str(ws), "--json"])
    assert packs.exit_code == 0
    data = json.loads(packs.stdout)
    assert [p["source"] for p in data["packs"]] == ["vendor", "P001"]
    q = runner.invoke(app, ["lake", "quarantine", "inventory", "-w", str(ws), "--json"])
    rows = json.loads(q.stdout)
    assert [(r["_row"], r["units_on_hand"], r["_reasons"]) for r in rows] == [
        (1, "-3", ["units_on_hand:below_min"])
    ]
    bad = runner.invoke(app, ["lake", "quarantine", "customers", "-w", str(ws)])
    assert bad.exit_code == 2 and "unknown table 'customers'" in bad.output


def test_synth_writes_a_dirty_tiny_world(tmp_path: Path) -> None:
    out = tmp_path / "w"
    result = runner.invoke(
        app,
        [
            "synth",
            "--scale",
            "tiny",
            "--seed",
            "2",
            "--dirty",
            "--out",
            str(out),
            "-w",
            str(tmp_path / "ws"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote the tiny world (seed 2, dirty) to {out}" in result.stdout
    assert (out / "packs" / "vendor" / "manifest.json").exists()
    assert json.loads((out / "expected_defects.json").read_text())
    assert sorted(p.name for p in (out / "oracle").iterdir()) == [
        "consumable_depletion.parquet",
        "device_failure.parquet",
        "propensity_to_buy.parquet",
        "refresh_due.parquet",
    ]


def test_build_writes_a_training_set_with_its_metadata(tmp_path: Path) -> None:
    from amplify_ml.features import read_training_set

    root = _packs(tmp_path)
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(root), "-w", str(ws)]).exit_code == 0
    target = tmp_path / "sets" / "propensity.parquet"
    result = runner.invoke(
        app,
        [
            "build",
            "propensity_to_buy",
            "--cutoff",
            "2024-03-01:2024-05-01",
            "--cutoff",
            "2024-04-15",
            "--out",
            str(target),
            "-w",
            str(ws),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cutoffs"] == ["2024-03-01", "2024-04-01", "2024-04-15", "2024-05-01"]
    df, meta = read_training_set(target)
    assert len(df) == summary["rows"] == meta["rows"] > 0
    assert sorted(df["cutoff"].dt.date.astype(str).unique()) == summary["cutoffs"]
    assert json.loads(target.with_name("propensity.meta.json").read_text()) == meta
    assert meta["features"] and set(meta["features"]) <= set(df.columns)


def test_build_refuses_an_unknown_model_a_bad_cutoff_and_a_missing_lake(tmp_path: Path) -> None:
    root = _packs(tmp_path)
    ws = tmp_path / "ws"
    args = ["--out", str(tmp_path / "x.parquet"), "-w", str(ws)]
    nolake = runner.invoke(app, ["build", "refresh_due", "--cutoff", "2024-03-01", *args])
    assert nolake.exit_code == 2
    assert "no lake in" in nolake.output and "amplify ingest" in nolake.output
    assert runner.invoke(app, ["ingest", str(root), "-w", str(ws)]).exit_code == 0
    unknown = runner.invoke(app, ["build", "refreshdue", "--cutoff", "2024-03-01", *args])
    assert unknown.exit_code == 2
    assert "unknown model 'refreshdue'" in unknown.output
    bad = runner.invoke(app, ["build", "refresh_due", "--cutoff", "2024-13-01", *args])
    assert bad.exit_code == 2
    assert "'2024-13-01' is not a date" in bad.output
    backwards = runner.invoke(
        app, ["build", "refresh_due", "--cutoff", "2024-05-01:2024-01-01", *args]
    )
    assert backwards.exit_code == 2
    assert "before start" in backwards.output
    assert not (tmp_path / "x.parquet").exists()


def test_mlflow_info_lines_stay_off_the_command_line_unless_asked_for() -> None:
    """MLflow sets its loggers' level when it is imported, which a command does after the
    CLI's callback: the callback's choice must outlive that import ("Creating initial MLflow
    database tables..." printed on every first run in a workspace), and a user's own
    MLFLOW_LOGGING_LEVEL wins."""
    code = (
        "import logging\n"
        "from amplify_ml.cli import _commands\n"
        "_commands()\n"
        "import mlflow\n"
        "print(logging.getLogger('mlflow.store.db.utils').getEffectiveLevel())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_LOGGING_LEVEL"}

    def level(**extra: str) -> int:
        run = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return int(run.stdout.strip().splitlines()[-1])

    assert level() == logging.WARNING
    assert level(MLFLOW_LOGGING_LEVEL="DEBUG") == logging.DEBUG
