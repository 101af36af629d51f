"""The demo pipeline on the tiny world, without serving: every step's output exists."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from amplify_ml.cli import app
from amplify_ml.lake import Lake


def test_demo_on_the_tiny_world(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["demo", "--scale", "tiny", "--seed", "5", "-w", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    demo = tmp_path / "demo"
    assert (demo / "world-tiny-5" / "world.json").exists()
    assert len(summary["refused"]) == 1 and "has not opted in" in summary["refused"][0]["reason"]
    lake = Lake(demo / "lake")
    for table in ("partners", "products", "accounts", "sell_through", "install_base", "telemetry"):
        assert not lake.read(table).empty, table
    assert len(lake.packs()) == summary["packs"] - 1
    # a second run reuses the world and rebuilds the lake to the same content
    again = runner.invoke(
        app, ["demo", "--scale", "tiny", "--seed", "5", "-w", str(tmp_path), "--json"]
    )
    assert again.exit_code == 0, again.output
    assert len(Lake(demo / "lake").packs()) == len(lake.packs())
