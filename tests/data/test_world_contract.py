"""The synthetic world against the contract: the clean world passes, and every injected defect
of the dirty world is found by validation and by ingestion, with its exact expected count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from amplify_ml.datapack.ingest import ingest_pack
from amplify_ml.datapack.validate import validate_pack
from amplify_ml.errors import ConsentError, ManifestError
from amplify_ml.lake import Lake

PACK_LEVEL = None


def _packs(world: Path) -> list[Path]:
    dirs = [p for p in (world / "packs").iterdir() if (p / "manifest.json").exists()]
    return sorted(dirs, key=lambda p: (p.name != "vendor", p.name))


def _expected(world: Path) -> dict[tuple[str, str | None, str], int | None]:
    entries = json.loads((world / "expected_defects.json").read_text())
    out: dict[tuple[str, str | None, str], int | None] = {}
    for e in entries:
        key = (e["pack"], e["table"], e["rule"])
        if e["rows"] is None:
            out[key] = None
        else:
            out[key] = (out.get(key) or 0) + e["rows"]
    return out


def _found(world: Path) -> dict[tuple[str, str | None, str], int | None]:
    vendor = world / "packs" / "vendor"
    found: dict[tuple[str, str | None, str], int | None] = {}
    for pack in _packs(world):
        report = validate_pack(pack, reference=None if pack == vendor else vendor)
        for (table, rule), rows in report.counts().items():
            found[(pack.name, table, rule)] = rows
    return found


def test_clean_world_passes_the_contract_but_for_the_partner_without_consent(
    tiny_world: Path,
) -> None:
    found = _found(tiny_world)
    errors = {k: v for k, v in found.items() if k[2] != "duplicate"}
    partners = json.loads((tiny_world / "world.json").read_text())
    assert len(errors) == 1, errors
    [(pack, table, rule)] = errors
    assert (table, rule, errors[(pack, table, rule)]) == (None, "consent", None)
    assert pack in json.dumps(partners)  # the world says which partner did not consent
    # exact copies of telemetry readings are real-world mess, set aside, never errors
    assert {k[1] for k in found if k[2] == "duplicate"} <= {"telemetry"}


def test_every_injected_defect_is_detected_with_its_expected_count(tiny_dirty_world: Path) -> None:
    expected = _expected(tiny_dirty_world)
    found = _found(tiny_dirty_world)
    assert found == expected
    rules = {rule for (_, _, rule) in expected}
    for rule in (
        "email_in_text",
        "phone_in_text",
        "consent",
        "key_conflict",
        "below_min",
        "future_date",
        "unknown_sku",
        "manifest_sha256",
    ):
        assert rule in rules, f"the dirty world should inject {rule}"


def test_ingesting_the_dirty_world_quarantines_exactly_the_expected_rows(
    tiny_dirty_world: Path, tmp_path: Path
) -> None:
    expected = _expected(tiny_dirty_world)
    lake = Lake(tmp_path / "lake")
    quarantined: Counter[tuple[str, str | None, str]] = Counter()
    refused: dict[str, str] = {}
    for pack in _packs(tiny_dirty_world):
        try:
            report = ingest_pack(pack, lake)
        except ConsentError:
            refused[pack.name] = "consent"
            continue
        except ManifestError as exc:
            refused[pack.name] = exc.problems[0].rule
            continue
        for table, t in report.tables.items():
            assert t.loaded + t.quarantined == t.read, (pack.name, table)
            for reason, n in t.reasons.items():
                quarantined[(pack.name, table, reason)] += n
    pack_level = {k[0]: k[2] for k, v in expected.items() if v is None}
    assert refused == pack_level
    row_level = {k: v for k, v in expected.items() if v is not None}
    assert dict(quarantined) == row_level
    # nothing of the refused packs reached the lake
    for name in refused:
        assert not any(p["path"].endswith(name) for p in lake.snapshot().packs)


@pytest.mark.parametrize("fmt", ["csv"])
def test_a_csv_world_validates_like_the_parquet_one(tmp_path: Path, fmt: str) -> None:
    from amplify_ml.datasets import generate

    generate("tiny", seed=3, out=tmp_path / "w", format=fmt)
    found = _found(tmp_path / "w")
    errors = {k: v for k, v in found.items() if k[2] != "duplicate"}
    assert [k[2] for k in errors] == ["consent"]
