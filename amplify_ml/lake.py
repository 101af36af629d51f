"""The embedded store: Parquet files per table and partner, published by atomic snapshots.

Layout under ``<workspace>/lake/``::

    CURRENT                          name of the current snapshot (replaced atomically)
    snapshots/000007.json            which files make up each table, quarantine and history
    tables/<table>/partner=<id>/*.parquet        loaded rows (+ _pack_id, _ingested_at)
    superseded/<table>/partner=<id>/*.parquet    rows replaced by a newer pack, by key
    quarantine/<table>/partner=<id>/*.parquet    rejected rows as text, with their reasons
    _staging/<txid>/                 a transaction's files before they are published

Files are immutable; a change writes new files and then a new snapshot, and flips ``CURRENT``
with one ``os.replace``. A process killed half-way leaves ``CURRENT`` as it was, so readers
(and the next ingest) see the lake as before; its stray files are never referenced.

Rows are partitioned by partner: by ``partner_id`` for partner-scoped tables, otherwise by the
pack's source (``vendor`` for the vendor's catalogue and market data). Reading takes an
optional list of partners, so a partner's view never holds another partner's rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

import duckdb
import pandas as pd

from amplify_ml.datapack.contract import TABLES
from amplify_ml.errors import LakeError

Kind = Literal["tables", "superseded", "quarantine", "withdrawn"]
KINDS: tuple[Kind, ...] = ("tables", "superseded", "quarantine", "withdrawn")
VENDOR_PARTITION = "vendor"
# Tables that carry partner_id but are not partner data: the registry of partners itself.
_PARTITION_BY_SOURCE = {"partners", "products", "market"}


def partition_of(table: str) -> Literal["partner_id", "source"]:
    """How rows of ``table`` are partitioned: by their partner_id, or by the pack's source."""
    schema = TABLES.get(table)
    if schema is not None and schema.has_partner_id and table not in _PARTITION_BY_SOURCE:
        return "partner_id"
    if table in ("telemetry", "device_events"):
        return "partner_id"  # the lake adds partner_id from the pack's source
    return "source"


def _part_dir(partition: str) -> str:
    return "partner=" + quote(partition, safe="")


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


@dataclass
class Snapshot:
    """One published state of the lake."""

    version: int = 0
    created_at: str | None = None
    files: dict[str, dict[str, dict[str, list[str]]]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    """kind -> table -> partition -> file paths relative to the lake root."""
    packs: list[dict[str, Any]] = field(default_factory=list)
    withdrawn_partners: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "created_at": self.created_at,
                "files": self.files,
                "packs": self.packs,
                "withdrawn_partners": self.withdrawn_partners,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        files = {k: data.get("files", {}).get(k, {}) for k in KINDS}
        return cls(
            data["version"],
            data.get("created_at"),
            files,
            data.get("packs", []),
            data.get("withdrawn_partners", []),
        )

    def partitions(self, kind: Kind, table: str) -> dict[str, list[str]]:
        return self.files.setdefault(kind, {}).setdefault(table, {})


class Lake:
    """The lake at ``root`` (usually ``<workspace>/lake``). Opening it creates nothing."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def in_workspace(cls, workspace: str | Path) -> Lake:
        return cls(Path(workspace) / "lake")

    # -- snapshot ------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The current snapshot (an empty one if nothing was ever published)."""
        current = self.root / "CURRENT"
        if not current.exists():
            return Snapshot()
        name = current.read_text().strip()
        path = self.root / "snapshots" / name
        try:
            return Snapshot.from_json(path.read_text())
        except (OSError, ValueError, KeyError) as exc:
            raise LakeError(
                f"lake {self.root}: CURRENT names snapshot {name}, which cannot be read ({exc}); "
                "restore the snapshots folder from a backup or start a new workspace"
            ) from None

    @property
    def exists(self) -> bool:
        return (self.root / "CURRENT").exists()

    def tables(self) -> list[str]:
        """Tables holding at least one loaded file, in contract order."""
        snap = self.snapshot()
        present = {t for t, parts in snap.files["tables"].items() if any(parts.values())}
        return [t for t in TABLES if t in present]

    def partners(self) -> list[str]:
        """Partners with rows in the lake (the vendor partition excluded)."""
        snap = self.snapshot()
        found: set[str] = set()
        for parts in snap.files["tables"].values():
            found |= {p for p, files in parts.items() if files}
        return sorted(found - {VENDOR_PARTITION})

    def files(
        self, table: str, partners: Sequence[str] | None = None, kind: Kind = "tables"
    ) -> list[Path]:
        """Absolute paths of ``table``'s files (of ``partners`` and the vendor partition)."""
        snap = self.snapshot()
        parts = snap.files.get(kind, {}).get(table, {})
        allowed = None if partners is None else {*partners, VENDOR_PARTITION}
        out: list[Path] = []
        for partition, rels in sorted(parts.items()):
            if allowed is None or partition in allowed:
                out += [self.root / r for r in rels]
        return out

    def source(
        self, table: str, partners: Sequence[str] | None = None, kind: Kind = "tables"
    ) -> str | None:
        """A DuckDB SQL source over ``table`` (rows of ``partners`` only), or None if empty."""
        files = self.files(table, partners, kind)
        if not files:
            return None
        sql = f"read_parquet({_sql_list(files)}, union_by_name = true, hive_partitioning = false)"
        if partners is not None and table == "partners":
            ids = ", ".join("'" + p.replace("'", "''") + "'" for p in partners)
            sql = f"(SELECT * FROM {sql} WHERE partner_id IN ({ids}))"
        return sql

    def connect(
        self,
        partners: Sequence[str] | None = None,
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per lake table (only ``partners``' rows if given).

        Vendor-wide tables (products, market) are visible to every partner; ``partners`` shows
        a partner its own row only.
        """
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        for table in self.tables():
            src = self.source(table, partners)
            if src is not None:
                con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {src}')
        return con

    def read(
        self, table: str, partners: Sequence[str] | None = None, kind: Kind = "tables"
    ) -> pd.DataFrame:
        """``table`` as pandas (rows of ``partners`` only if given); empty if absent."""
        src = self.source(table, partners, kind)
        if src is None:
            return pd.DataFrame()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(f"SELECT * FROM {src}").to_arrow_table().to_pandas(date_as_object=False)

    def quarantine(self, table: str, partners: Sequence[str] | None = None) -> pd.DataFrame:
        """Rejected rows of ``table`` as text, with ``_reasons`` (column:rule) and ``_row``."""
        return self.read(table, partners, kind="quarantine")

    def superseded(self, table: str, partners: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of ``table`` replaced by a newer pack, with ``_superseded_by``."""
        return self.read(table, partners, kind="superseded")

    def packs(self) -> pd.DataFrame:
        """Packs ingested, oldest first: id, source, created and ingested times, fingerprints."""
        rows = self.snapshot().packs
        cols = [
            "pack_id",
            "source",
            "created_at",
            "ingested_at",
            "period_start",
            "period_end",
            "manifest_sha256",
            "tables",
        ]
        return pd.DataFrame(rows, columns=cols)

    def has_pack(self, pack_id: str) -> bool:
        return any(p["pack_id"] == pack_id for p in self.snapshot().packs)

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """An exclusive write: files staged, then published by :meth:`Transaction.commit`.

        Leaving the block without commit (an error) discards the staged files; a killed
        process leaves them behind unreferenced, removed by the next transaction.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / ".lock"
        with lock_path.open("a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LakeError(
                    f"lake {self.root} is being written by another process (ingest running?); "
                    "wait for it to finish, then try again"
                ) from None
            staging_root = self.root / "_staging"
            if staging_root.exists():  # left by a killed process: never referenced
                shutil.rmtree(staging_root, ignore_errors=True)
            tx = Transaction(self, self.snapshot())
            try:
                yield tx
            finally:
                shutil.rmtree(tx.staging, ignore_errors=True)
                with suppress(OSError):
                    staging_root.rmdir()
                fcntl.flock(lock, fcntl.LOCK_UN)


class Transaction:
    """Staged changes to the lake; nothing is visible until :meth:`commit`."""

    def __init__(self, lake: Lake, base: Snapshot) -> None:
        self.lake = lake
        self.base = base
        self.snapshot = Snapshot.from_json(base.to_json())
        self.txid = uuid.uuid4().hex[:12]
        self.staging = lake.root / "_staging" / self.txid
        self.staging.mkdir(parents=True, exist_ok=True)
        self._moves: list[tuple[Path, Path]] = []
        self.committed = False

    def new_file(self, kind: Kind, table: str, partition: str, stem: str) -> tuple[Path, str]:
        """A staging path to write, and the lake-relative path it will be published at."""
        rel = f"{kind}/{table}/{_part_dir(partition)}/{stem}-{self.txid}.parquet"
        staged = self.staging / rel
        staged.parent.mkdir(parents=True, exist_ok=True)
        self._moves.append((staged, self.lake.root / rel))
        return staged, rel

    def current_files(self, kind: Kind, table: str, partition: str) -> list[Path]:
        return [
            self.lake.root / r for r in self.snapshot.partitions(kind, table).get(partition, [])
        ]

    def set_files(self, kind: Kind, table: str, partition: str, rels: list[str]) -> None:
        self.snapshot.partitions(kind, table)[partition] = rels

    def add_files(self, kind: Kind, table: str, partition: str, rels: list[str]) -> None:
        self.snapshot.partitions(kind, table).setdefault(partition, []).extend(rels)

    def withdraw_partner(self, partner: str) -> list[str]:
        """Take a partner's partitions out of the readable tables (consent withdrawn)."""
        moved = []
        for table, parts in self.snapshot.files["tables"].items():
            if parts.get(partner):
                self.snapshot.partitions("withdrawn", table).setdefault(partner, []).extend(
                    parts.pop(partner)
                )
                moved.append(table)
        if moved and partner not in self.snapshot.withdrawn_partners:
            self.snapshot.withdrawn_partners.append(partner)
        return moved

    def add_pack(self, record: dict[str, Any]) -> None:
        self.snapshot.packs.append(record)

    def commit(self) -> Snapshot:
        """Publish: move staged files into place, write the snapshot, flip CURRENT."""
        for staged, final in self._moves:
            if staged.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
        for kind in KINDS:  # drop empty partitions and tables
            tables = self.snapshot.files.get(kind, {})
            for table in list(tables):
                tables[table] = {p: f for p, f in tables[table].items() if f}
        snap = self.snapshot
        snap.version = self.base.version + 1
        snap.created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        snapdir = self.lake.root / "snapshots"
        snapdir.mkdir(parents=True, exist_ok=True)
        name = f"{snap.version:06d}.json"
        _atomic_write(snapdir / name, snap.to_json())
        _atomic_write(self.lake.root / "CURRENT", name + "\n")
        self.committed = True
        return snap


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{uuid.uuid4().hex[:8]}")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def partition_name(rel_dir: str) -> str:
    """The partner id of a ``partner=<id>`` folder name."""
    return unquote(rel_dir.split("=", 1)[1])
