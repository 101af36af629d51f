"""``generate``: write a whole synthetic world (packs, oracle, summary) partner by partner."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from amplify_ml.datapack.pack import PackWriter, format_timestamp
from amplify_ml.datasets import dirty as dirty_mod
from amplify_ml.datasets.accounts import build_partners, partners_table
from amplify_ml.datasets.calendar import Calendar
from amplify_ml.datasets.catalogue import build_catalogue
from amplify_ml.datasets.config import SCALES, WorldConfig
from amplify_ml.datasets.market import market_table
from amplify_ml.datasets.oracle import Oracle
from amplify_ml.datasets.partner import simulate_partner
from amplify_ml.datasets.writer import (
    DATE_COLUMNS,
    DateRange,
    OracleWriter,
    PackSummary,
    TableSummary,
    iso_value,
    to_arrow,
    write_pack,
)
from amplify_ml.errors import ConfigError

Progress = Callable[[str, int, int], None]
VENDOR = "vendor"
MARKER = ".synthetic-world"
"""Written first into OUT, so that an interrupted world can be replaced by the next one."""


@dataclass
class WorldSummary:
    """What :func:`generate` wrote (also saved as ``OUT/world.json``)."""

    out: str
    scale: str
    seed: int
    dirty: bool
    format: str
    period: dict[str, str]
    packs: list[PackSummary]
    oracle: dict[str, int]
    """Rows per oracle file (``OUT/oracle/<model>.parquet``)."""
    elapsed_seconds: float
    no_consent_partner: str
    late_packs: list[str]
    telemetry_duplicates: dict[str, int]
    """Surplus exact-duplicate telemetry rows per pack (the clean world's mess)."""
    late_install_base_updates: dict[str, int] = field(default_factory=dict)
    """Per late pack, the install_base rows that supersede a different main-pack row."""
    refused_packs: list[dict[str, Any]] = field(default_factory=list)
    expected_defects: list[dict[str, Any]] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def oracle_files(self) -> dict[str, str]:
        return {m: str(Path(self.out) / "oracle" / f"{m}.parquet") for m in self.oracle}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["oracle_files"] = self.oracle_files
        return d


def resolve_scale(scale: str | WorldConfig) -> WorldConfig:
    if isinstance(scale, WorldConfig):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ConfigError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}") from None


class _VendorPack:
    """The vendor pack, written as partners are generated (intent signals appended per partner)."""

    def __init__(self, path: Path, cal: Calendar, format: str) -> None:
        self.writer = PackWriter(
            path,
            source=VENDOR,
            period=(cal.start, cal.end),
            created_at=cal.created_at,
            format=format,
        )  # type: ignore[arg-type]
        self.writer.__enter__()
        self.rows: dict[str, int] = {}
        self.ranges: dict[str, DateRange] = {}

    def append(self, table: str, df: pd.DataFrame) -> None:
        arrow = to_arrow(table, df)
        self.writer.append(table, arrow)
        self.rows[table] = self.rows.get(table, 0) + arrow.num_rows
        self.ranges.setdefault(table, DateRange()).update(arrow.column(DATE_COLUMNS[table]))

    def close(self, cal: Calendar) -> PackSummary:
        self.writer.close()
        return PackSummary(
            name=VENDOR,
            source=VENDOR,
            kind="vendor",
            created_at=format_timestamp(cal.created_at),
            tables={
                t: TableSummary(
                    n, DATE_COLUMNS[t], iso_value(self.ranges[t].lo), iso_value(self.ranges[t].hi)
                )
                for t, n in self.rows.items()
            },
        )


def generate(
    scale: str | WorldConfig,
    *,
    seed: int,
    out: str | Path,
    dirty: bool = False,
    format: Literal["parquet", "csv"] = "parquet",
    progress: Progress | None = None,
) -> WorldSummary:
    """Generate a synthetic world into ``out``: packs, oracle files, ``world.json``.

    Same ``seed`` and ``scale`` give the same files row for row. Partners are generated one
    at a time from their own seed, so memory stays bounded by the largest partner. With
    ``dirty=True``, known defects are injected and listed in ``OUT/expected_defects.json``.
    A previous world in ``out`` is replaced; other ``packs/`` or ``oracle/`` folders there are
    never deleted (:class:`~amplify_ml.errors.ConfigError`).
    """
    t0 = time.perf_counter()
    cfg = resolve_scale(scale)
    if format not in ("parquet", "csv"):
        raise ConfigError(f"unknown format {format!r}: choose parquet or csv")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    ours = marker.exists() or (out / "world.json").exists()
    if not ours and any((out / d).exists() for d in ("packs", "oracle")):
        raise ConfigError(
            f"{out} already holds packs/ or oracle/ that no earlier synthetic world wrote: "
            "choose an empty folder (generate replaces a previous world in place)"
        )
    for stale in ("packs", "oracle"):
        if (out / stale).exists():
            shutil.rmtree(out / stale)
    for stale in ("world.json", "expected_defects.json"):
        (out / stale).unlink(missing_ok=True)
    marker.write_text("written by amplify_ml.datasets.generate\n", encoding="utf-8")
    packs_dir = out / "packs"

    cal = Calendar.from_config(cfg)
    cat = build_catalogue()
    n = cfg.population.n_partners
    root = np.random.SeedSequence(seed)
    children = root.spawn(n + 2)
    vendor_rng = np.random.default_rng(children[0])
    dirty_rng = np.random.default_rng(children[1])
    partners = build_partners(cfg, cal, vendor_rng)
    no_consent = next(p for p in partners if not p.data_sharing)
    consenting = [p.partner_id for p in partners if p.data_sharing]
    plan = dirty_mod.assign(cfg, consenting, dirty_rng) if dirty else {}
    defects: list[dirty_mod.Defect] = [
        dirty_mod.Defect(no_consent.partner_id, None, None, "consent", None)
    ]

    vendor = _VendorPack(packs_dir / VENDOR, cal, format)
    vendor.append("partners", partners_table(partners))
    vendor.append("products", cat.products)
    oracle = OracleWriter(out / "oracle")
    summaries: list[PackSummary] = []
    duplicates: dict[str, int] = {}
    late_packs: list[str] = []
    late_updates: dict[str, int] = {}
    tampered = False
    period = (cal.start, cal.end)
    for i, partner in enumerate(partners):
        world = simulate_partner(cfg, cal, cat, partner, children[i + 2])
        if partner.data_sharing:
            oracle.append(Oracle(cfg, cal, cat, world).tables())
            vendor.append("intent_signals", world.intent)
        elif dirty:
            leaked = dirty_mod.consent_rows(cfg, world.intent, dirty_rng)
            vendor.append("intent_signals", leaked)
            defects.append(
                dirty_mod.Defect(VENDOR, "intent_signals", "partner_id", "consent", len(leaked))
            )
        pid = partner.partner_id
        tables = dict(world.tables)
        if pid in plan:
            defects += dirty_mod.inject_partner(cfg, cal, pid, tables, plan[pid], dirty_rng)
        n_dup = (
            dirty_mod.duplicate_rows(tables["telemetry"]) if dirty else world.telemetry_duplicates
        )
        if n_dup:
            duplicates[pid] = n_dup
            if dirty:
                defects.append(dirty_mod.Defect(pid, "telemetry", None, "duplicate", n_dup))
        summaries.append(
            write_pack(
                packs_dir / pid,
                tables,
                name=pid,
                source=pid,
                kind="main",
                period=period,
                created_at=cal.created_at,
                format=format,
            )
        )
        if world.late_tables:
            name = f"{pid}.late"
            summaries.append(
                write_pack(
                    packs_dir / name,
                    world.late_tables,
                    name=name,
                    source=pid,
                    kind="late",
                    period=period,
                    created_at=cal.late_created_at,
                    format=format,
                )
            )
            late_packs.append(name)
            late_updates[name] = world.late_updates
            if dirty and not tampered:
                dirty_mod.tamper_manifest(packs_dir / name, "telemetry")
                defects.append(dirty_mod.Defect(name, "telemetry", None, "manifest_sha256", None))
                tampered = True
        del world
        if progress is not None:
            progress("partners", i + 1, n)
    vendor.append("market", market_table(cfg, cal, partners, vendor_rng))
    summaries.insert(0, vendor.close(cal))
    oracle_rows = oracle.close()

    summary = WorldSummary(
        out=str(out),
        scale=cfg.name,
        seed=seed,
        dirty=dirty,
        format=format,
        period={
            "start": cal.start.isoformat(),
            "end": cal.end.isoformat(),
            "created_at": format_timestamp(cal.created_at),
            "late_created_at": format_timestamp(cal.late_created_at),
        },
        packs=summaries,
        oracle=oracle_rows,
        elapsed_seconds=round(time.perf_counter() - t0, 3),
        no_consent_partner=no_consent.partner_id,
        late_packs=late_packs,
        telemetry_duplicates=duplicates,
        late_install_base_updates=late_updates,
        refused_packs=[defects[0].to_dict()],
        expected_defects=[d.to_dict() for d in defects] if dirty else None,
        config=cfg.to_dict(),
    )
    if dirty:
        (out / "expected_defects.json").write_text(
            json.dumps(summary.expected_defects, indent=2) + "\n", encoding="utf-8"
        )
    (out / "world.json").write_text(
        json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    return summary
