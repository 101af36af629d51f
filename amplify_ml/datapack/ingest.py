"""Ingest a pack into the lake: verify, validate, gate, quarantine, supersede, publish.

``ingest_pack(path, lake)``:

1. verifies the manifest (a broken one refuses the pack whole: nothing stored);
2. validates every row against the contract with the lake as reference (the vendor's
   partners and products, the partner's earlier accounts and devices);
3. applies the consent gate: a partner without consent, or unknown, is refused whole,
   unread; a vendor pack that withdraws a partner's consent takes that partner's rows out
   of the readable lake;
4. writes rows that break no rule to the lake with ``_pack_id`` and ``_ingested_at``; rows
   whose key is already in the lake replace the old ones, which move to ``superseded``
   (a date the pack derived from the history it holds, as :data:`EARLIEST_IF_DERIVED` lists,
   keeps the earlier of the two);
5. writes every other row to the quarantine, as text, with its reasons (``column:rule``);
   cells holding suspected personal data are redacted there, and columns whose names say
   they hold personal data are never stored;
6. checks that loaded + quarantined = read for every table, then publishes everything at
   once (a killed process leaves the lake as it was).

Re-ingesting a pack already in the lake (same pack id) changes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from amplify_ml.datapack.contract import TABLES
from amplify_ml.datapack.pack import MANIFEST, DataPack, format_timestamp, read_pack
from amplify_ml.datapack.validate import PackValidator, ValidationReport, _lit, _q
from amplify_ml.errors import ConsentError, DataPackError, LakeError
from amplify_ml.lake import Lake, Transaction, partition_of

Status = Literal["loaded", "unchanged"]
Progress = Callable[[str, int, int], None]
_PRIVACY_RULES = ("email_in_text", "phone_in_text")
EARLIEST_IF_DERIVED = {"accounts": "first_seen", "products": "launched_on", "partners": "joined_on"}
"""Dates a pack may derive from its own rows, saying so in its manifest's ``derived`` (``amplify
pack from-transactions``: an account's first purchase in the export). Such a pack saw part of
the history only: next month's export would move every returning account's first purchase to
next month. A row it supersedes keeps the earlier of the two dates; a date the pack states
(not derived) replaces the old one, as any other value."""
_SEP = chr(31)


@dataclass
class TableIngest:
    """What happened to one table's rows."""

    table: str
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    superseded: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "superseded": self.superseded,
            "reasons": dict(sorted(self.reasons.items())),
        }


@dataclass
class IngestReport:
    """The outcome of ingesting one pack."""

    pack: str
    pack_id: str
    source: str
    status: Status
    tables: dict[str, TableIngest] = field(default_factory=dict)
    withdrawn_partners: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    validation: ValidationReport | None = None

    @property
    def rows_read(self) -> int:
        return sum(t.read for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "pack_id": self.pack_id,
            "source": self.source,
            "status": self.status,
            "tables": {n: t.to_dict() for n, t in self.tables.items()},
            "withdrawn_partners": self.withdrawn_partners,
            "warnings": self.warnings,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rows_per_second": round(self.rows_read / self.elapsed_seconds)
            if self.elapsed_seconds > 0
            else None,
        }


def _manifest_sha(pack: DataPack) -> str:
    return hashlib.sha256((pack.path / MANIFEST).read_bytes()).hexdigest()


def _lake_reference(lake: Lake, pack: DataPack) -> dict[str, str]:
    """SQL sources in the lake for the tables validation refers to."""
    partners = None if pack.is_vendor else [pack.source]
    ref: dict[str, str] = {}
    for table in ("partners", "products", "accounts", "install_base"):
        # consent is read from every partners row, the vendor's included
        src = lake.source(table, None if table == "partners" else partners)
        if src is not None:
            ref[table] = src
    return ref


def ingest_pack(
    path: str | Path,
    lake: Lake,
    *,
    ingested_at: datetime | None = None,
    memory_limit: str | None = None,
    progress: Progress | None = None,
    after_table: Callable[[str], None] | None = None,
) -> IngestReport:
    """Load the pack at ``path`` into ``lake``; see the module docstring for the rules.

    Raises :class:`~amplify_ml.errors.ManifestError` (broken manifest),
    :class:`~amplify_ml.errors.ConsentError` (no consent) or
    :class:`~amplify_ml.errors.DataPackError` (unknown partner, pack dated in the future);
    in each case nothing is stored. ``after_table`` is called after each table is staged
    (used to test a crash half-way).
    """
    started = time.monotonic()
    pack = read_pack(path)
    now = (ingested_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    created = pack.manifest.created_at.astimezone(UTC)
    if created > now + timedelta(hours=1):
        raise DataPackError(
            f"pack {pack.path.name}: manifest created_at {format_timestamp(created)} lies in the "
            "future; fix the exporter's clock or the manifest, then send the pack again"
        )
    reference = _lake_reference(lake, pack)
    with PackValidator(
        pack, reference=reference, now=min(created, now), memory_limit=memory_limit
    ) as v:
        v.gate()  # consent first: a pack seen before is refused too once consent is gone
        _refuse_if_needed(pack, v.report)
        if lake.has_pack(pack.pack_id):
            return IngestReport(
                pack.path.name,
                pack.pack_id,
                pack.source,
                "unchanged",
                warnings=[f"pack {pack.pack_id} was ingested before; nothing changed"],
                elapsed_seconds=time.monotonic() - started,
            )
        report = v.run()
        _refuse_if_needed(pack, report)
        result = IngestReport(
            pack.path.name, pack.pack_id, pack.source, "loaded", validation=report
        )
        result.warnings = [w.message for w in report.warnings]
        with lake.transaction() as tx:
            tables = [t for t in TABLES if pack.has(t)]
            for i, table in enumerate(tables):
                result.tables[table] = _ingest_table(v, tx, pack, table, now)
                if progress:
                    progress(f"ingest {pack.path.name}", i + 1, len(tables))
                if after_table:
                    after_table(table)
            if pack.is_vendor and "partners" in result.tables:
                result.withdrawn_partners = _apply_withdrawals(v, tx)
            for t in result.tables.values():
                if t.loaded + t.quarantined != t.read:
                    raise LakeError(
                        f"pack {pack.path.name}, table {t.table}: {t.loaded} loaded + "
                        f"{t.quarantined} quarantined != {t.read} read; nothing was published. "
                        "This is a bug in amplify_ml: please report it with the pack's manifest."
                    )
            tx.add_pack(
                {
                    "pack_id": pack.pack_id,
                    "source": pack.source,
                    "path": str(pack.path.resolve()),
                    "created_at": format_timestamp(created),
                    "ingested_at": format_timestamp(now),
                    "period_start": pack.manifest.period.start.isoformat(),
                    "period_end": pack.manifest.period.end.isoformat(),
                    "manifest_sha256": _manifest_sha(pack),
                    "tables": {n: t.to_dict() for n, t in result.tables.items()},
                }
            )
            tx.commit()
    result.elapsed_seconds = time.monotonic() - started
    return result


def _refuse_if_needed(pack: DataPack, report: ValidationReport) -> None:
    for v in report.errors:
        if v.rows is None and v.rule == "consent":
            raise ConsentError(v.message)
        if v.rows is None:
            raise DataPackError(v.message)
    if not pack.is_vendor and any(v.rule == "consent_not_checked" for v in report.warnings):
        raise ConsentError(
            f"pack {pack.path.name} is refused: consent of partner {pack.source} cannot be "
            "checked because the lake has no partners table and the pack holds none. Ingest "
            "the vendor pack (source 'vendor') first, then this pack."
        )


def _ingest_table(
    v: PackValidator, tx: Transaction, pack: DataPack, table: str, now: datetime
) -> TableIngest:
    con = v.con
    schema = TABLES[table]
    stats = TableIngest(table, read=v.report.tables[table].rows_read)
    pack_id = _lit(pack.pack_id)
    at = f"TIMESTAMPTZ {_lit(now.strftime('%Y-%m-%d %H:%M:%S+00'))}"
    raw_cols = [
        c
        for c in (r[0] for r in con.execute(f"DESCRIBE raw_{table}").fetchall())
        if c != "_row" and c not in v.dropped_columns.get(table, [])
    ]
    typed = table in v._typed
    # -- quarantine: every flagged row, as text, with its reasons; personal cells redacted
    if typed:
        flags = "t._flags"
        where = "len(t._flags) > 0"
        join = f"FROM typed_{table} t JOIN raw_{table} r USING (_row)"
    else:  # a missing column: no row can be read
        flags = f"[{_lit('*' + _SEP + 'missing_column')}]"
        where = "TRUE"
        join = f"FROM raw_{table} r"
    cells = []
    for c in raw_cols:
        redact = " OR ".join(
            f"list_contains({flags}, {_lit(c + _SEP + rule)})" for rule in _PRIVACY_RULES
        )
        cells.append(
            f"CASE WHEN {redact} THEN '<redacted: personal data>' "
            f"ELSE CAST(r.{_q(c)} AS VARCHAR) END AS {_q(c)}"
        )
    quarantine_sql = (
        f"SELECT r._row AS _row, {', '.join(cells)}, "
        f"list_transform({flags}, x -> replace(x, chr(31), ':')) AS _reasons, "
        f"{pack_id} AS _pack_id, {at} AS _ingested_at {join} WHERE {where}"
    )
    n_quarantined = con.execute(f"SELECT count(*) FROM ({quarantine_sql})").fetchone()[0]  # type: ignore[index]
    if n_quarantined:
        staged, rel = tx.new_file("quarantine", table, pack.source, pack.pack_id)
        con.execute(
            f"COPY ({quarantine_sql} ORDER BY _row) TO {_lit(str(staged))} (FORMAT parquet)"
        )
        tx.add_files("quarantine", table, pack.source, [rel])
        for reason, n in con.execute(
            f"SELECT split_part(f, ':', 2), count(DISTINCT _row) FROM "
            f"(SELECT _row, unnest(_reasons) AS f FROM ({quarantine_sql})) GROUP BY 1"
        ).fetchall():
            stats.reasons[reason] = int(n)
    stats.quarantined = int(n_quarantined)
    if not typed:
        return stats
    # -- loaded rows: contract columns (typed), kept extras, lineage
    cols = [_q(c) for c in schema.column_names]
    extras = [_q(c) for c in v.extra_columns.get(table, [])]
    add_partner = partition_of(table) == "partner_id" and not schema.has_partner_id
    lineage = [f"{pack_id} AS _pack_id", f"{at} AS _ingested_at"]
    if add_partner:
        lineage.insert(0, f"{_lit(pack.source)} AS partner_id")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE new_{table} AS SELECT {', '.join(cols + extras + lineage)} "
        f"FROM typed_{table} WHERE len(_flags) = 0"
    )
    stats.loaded = con.execute(f"SELECT count(*) FROM new_{table}").fetchone()[0]  # type: ignore[index]
    if partition_of(table) == "partner_id":
        partitions = [
            r[0] for r in con.execute(f"SELECT DISTINCT partner_id FROM new_{table}").fetchall()
        ]
        part_filter = "partner_id = {}"
    else:
        partitions = [pack.source] if stats.loaded else []
        part_filter = "TRUE"
    keys = " AND ".join(f"c.{_q(k)} = n.{_q(k)}" for k in schema.key)
    for partition in sorted(partitions):
        new_rows = f"(SELECT * FROM new_{table} WHERE {part_filter.format(_lit(partition))})"
        current = tx.current_files("tables", table, partition)
        staged_new, rel_new = tx.new_file("tables", table, partition, pack.pack_id)
        if not current:
            con.execute(
                f"COPY {new_rows} TO {_lit(str(staged_new))} (FORMAT parquet, COMPRESSION zstd)"
            )
            tx.add_files("tables", table, partition, [rel_new])
            continue
        cur = (
            "read_parquet(["
            + ", ".join(_lit(str(p)) for p in current)
            + "], union_by_name = true, hive_partitioning = false)"
        )
        overlap = con.execute(
            f"SELECT count(*) FROM {cur} c WHERE EXISTS (SELECT 1 FROM {new_rows} n WHERE {keys})"
        ).fetchone()[0]  # type: ignore[index]
        if overlap and (col := _derived_date(pack, table)):
            con.execute(
                f"UPDATE new_{table} AS n SET {_q(col)} = c.{_q(col)} FROM {cur} c "
                f"WHERE {keys} AND c.{_q(col)} < n.{_q(col)}"
            )
        con.execute(
            f"COPY {new_rows} TO {_lit(str(staged_new))} (FORMAT parquet, COMPRESSION zstd)"
        )
        if not overlap:
            tx.add_files("tables", table, partition, [rel_new])
            continue
        staged_kept, rel_kept = tx.new_file("tables", table, partition, pack.pack_id + "-kept")
        con.execute(
            f"COPY (SELECT * FROM {cur} c WHERE NOT EXISTS (SELECT 1 FROM {new_rows} n WHERE {keys})) "
            f"TO {_lit(str(staged_kept))} (FORMAT parquet, COMPRESSION zstd)"
        )
        staged_sup, rel_sup = tx.new_file("superseded", table, partition, pack.pack_id)
        con.execute(
            f"COPY (SELECT c.*, {pack_id} AS _superseded_by, {at} AS _superseded_at FROM {cur} c "
            f"WHERE EXISTS (SELECT 1 FROM {new_rows} n WHERE {keys})) "
            f"TO {_lit(str(staged_sup))} (FORMAT parquet, COMPRESSION zstd)"
        )
        tx.set_files("tables", table, partition, [rel_kept, rel_new])
        tx.add_files("superseded", table, partition, [rel_sup])
        stats.superseded += int(overlap)
    con.execute(f"DROP TABLE new_{table}")
    return stats


def _derived_date(pack: DataPack, table: str) -> str | None:
    """The column of :data:`EARLIEST_IF_DERIVED` that ``pack`` derived for ``table``, if any."""
    col = EARLIEST_IF_DERIVED.get(table)
    derived = (pack.manifest.model_extra or {}).get("derived")
    if col and isinstance(derived, dict) and f"{table}.{col}" in derived:
        return col
    return None


def _apply_withdrawals(v: PackValidator, tx: Transaction) -> list[str]:
    """Partners whose consent this vendor pack withdraws lose their readable partitions."""
    no_consent = [
        r[0]
        for r in v.con.execute(
            "SELECT partner_id FROM typed_partners WHERE len(_flags) = 0 AND NOT data_sharing"
        ).fetchall()
    ]
    withdrawn = []
    for partner in no_consent:
        if tx.withdraw_partner(partner):
            withdrawn.append(partner)
    return withdrawn


def pack_dirs(root: str | Path) -> list[Path]:
    """The pack folders at ``root``: a pack itself, a world (its ``packs/``) or a folder of
    packs; the vendor pack first (it is the reference of the others), then by name."""
    path = Path(root)
    base = path / "packs" if (path / "packs").is_dir() else path
    if (base / MANIFEST).exists():
        return [base]
    if not base.is_dir():
        return []
    dirs = sorted(p for p in base.iterdir() if (p / MANIFEST).exists())
    return sorted(dirs, key=lambda p: (p.name != "vendor", p.name))


def ingest_packs(
    dirs: list[Path],
    lake: Lake,
    *,
    memory_limit: str | None = None,
    progress: Progress | None = None,
) -> tuple[list[IngestReport], list[tuple[str, str]]]:
    """Ingest packs in order (see :func:`pack_dirs`). A refused pack (no consent, unknown
    partner, broken manifest) is collected as (folder name, reason), not raised: the
    others still load."""
    reports: list[IngestReport] = []
    refused: list[tuple[str, str]] = []
    for i, d in enumerate(dirs):
        try:
            reports.append(ingest_pack(d, lake, memory_limit=memory_limit))
        except DataPackError as exc:
            refused.append((d.name, exc.message))
        if progress:
            progress("ingest packs", i + 1, len(dirs))
    return reports, refused
