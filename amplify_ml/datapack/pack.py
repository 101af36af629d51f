"""A data pack on disk: the manifest, its verification, reading tables and writing packs.

A pack is a folder with one file per table (``<table>.parquet`` or ``<table>.csv``) and a
``manifest.json`` (DATAPACK.md, "Packaging"). :func:`read_pack` opens one and checks the
manifest against the files; :class:`PackWriter` writes one, streaming large tables in
chunks, and computes the manifest itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from amplify_ml.datapack.contract import CONTRACT_VERSION, TABLES, VENDOR_TABLES, TableSchema
from amplify_ml.errors import DataPackError, ManifestError

MANIFEST = "manifest.json"
VENDOR_SOURCE = "vendor"
TableFormat = Literal["parquet", "csv"]
_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


class TableEntry(BaseModel):
    """One table in the manifest."""

    model_config = ConfigDict(extra="forbid")
    file: str
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Period(BaseModel):
    """The period the pack covers."""

    model_config = ConfigDict(extra="forbid")
    start: date
    end: date


class Manifest(BaseModel):
    """``manifest.json`` of a pack."""

    model_config = ConfigDict(extra="allow")
    contract: str
    source: str = Field(min_length=1)
    created_at: datetime
    period: Period
    tables: dict[str, TableEntry]

    @field_validator("created_at", mode="before")
    @classmethod
    def _utc_timestamp(cls, value: object) -> object:
        if isinstance(value, str) and not _TIMESTAMP_RE.fullmatch(value):
            raise ValueError("expected a UTC timestamp YYYY-MM-DDTHH:MM:SSZ")
        return value

    @property
    def is_vendor(self) -> bool:
        return self.source == VENDOR_SOURCE

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        data["created_at"] = format_timestamp(self.created_at)
        return json.dumps(data, indent=2, sort_keys=False) + "\n"


def format_timestamp(value: datetime) -> str:
    """A UTC timestamp in the contract's form ``YYYY-MM-DDTHH:MM:SSZ``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def count_rows(path: Path) -> int:
    """Data rows in a table file (Parquet metadata, or a streaming CSV parse)."""
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return sum(batch.num_rows for batch in iter_csv_batches(path))


def csv_header(path: Path, *, encoding: str = "utf-8", delimiter: str = ",") -> list[str]:
    """The column names of a CSV file's header row (a UTF-8 byte order mark is not a name's)."""
    try:
        with path.open("r", encoding=encoding, newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError as exc:
        raise DataPackError(
            f"{path}: not {encoding} text (byte {exc.object[exc.start]:#04x} at byte offset "
            f"{exc.start}); {_ENCODING_HINT}"
        ) from None
    if not first.strip():
        raise DataPackError(f"{path}: the file is empty; expected a header row of column names")
    import csv

    return next(csv.reader([first.removeprefix("\ufeff")], delimiter=delimiter))


_ENCODING_HINT = (
    "pack tables are UTF-8: save the file as UTF-8 (a transactions export may name its "
    "encoding instead: amplify pack from-transactions --encoding cp1252)"
)


def _all_strings_options(
    path: Path, *, encoding: str = "utf-8", delimiter: str = ","
) -> pacsv.ConvertOptions:
    names = csv_header(path, encoding=encoding, delimiter=delimiter)
    return pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )


def iter_csv_batches(
    path: Path,
    block_size: int = 16 << 20,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> Iterator[pa.RecordBatch]:
    """Stream a CSV table as record batches of strings (empty fields are null); a file in
    another ``encoding`` than UTF-8 is transcoded as it is read."""
    try:
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block_size, encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=_all_strings_options(path, encoding=encoding, delimiter=delimiter),
        ) as reader:
            yield from reader
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        what = "invalid UTF8" in str(exc) or isinstance(exc, UnicodeDecodeError)
        raise DataPackError(
            f"{path}: cannot be parsed as CSV ({exc}); expected {encoding} text with a header "
            f"row, {delimiter!r} separators and double-quoted fields"
            + (f"; {_ENCODING_HINT}" if what else "")
        ) from None


@dataclass(frozen=True)
class PackProblem:
    """One reason a pack as a whole is refused: a rule code, the table if any, a message."""

    rule: str
    table: str | None
    message: str


@dataclass(frozen=True)
class TableFile:
    """One table file of a pack."""

    table: str
    path: Path
    format: TableFormat

    @property
    def schema(self) -> TableSchema:
        return TABLES[self.table]

    def columns(self) -> list[str]:
        if self.format == "parquet":
            return list(pq.ParquetFile(self.path).schema_arrow.names)
        return csv_header(self.path)


@dataclass
class DataPack:
    """A data pack opened from a folder. Tables are read on demand."""

    path: Path
    manifest: Manifest
    files: dict[str, TableFile]
    problems: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.manifest.source

    @property
    def is_vendor(self) -> bool:
        return self.manifest.is_vendor

    @property
    def pack_id(self) -> str:
        """A stable identifier: source, creation time and a digest of the table hashes."""
        digest = hashlib.sha256(
            "".join(
                f"{name}:{entry.sha256};" for name, entry in sorted(self.manifest.tables.items())
            ).encode()
        ).hexdigest()[:12]
        stamp = self.manifest.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{self.source}-{stamp}-{digest}"

    @property
    def tables(self) -> list[str]:
        return list(self.files)

    def has(self, table: str) -> bool:
        return table in self.files

    def file(self, table: str) -> TableFile:
        try:
            return self.files[table]
        except KeyError:
            raise DataPackError(
                f"pack {self.path} has no table {table!r}; it holds {', '.join(self.files) or 'none'}"
            ) from None

    def read_arrow(self, table: str) -> pa.Table:
        """The table as stored: Parquet with its own types, CSV as strings."""
        tf = self.file(table)
        if tf.format == "parquet":
            return pq.read_table(tf.path)
        batches = list(iter_csv_batches(tf.path))
        if not batches:
            return pa.table({n: pa.array([], pa.string()) for n in csv_header(tf.path)})
        return pa.Table.from_batches(batches)

    def read_table(self, table: str) -> pd.DataFrame:
        """The table with the contract's types (via validation's typed view).

        Raises :class:`~amplify_ml.errors.ContractError` naming every violated rule when a
        value cannot be read as its contract type; use :func:`validate_pack` for a full report.
        """
        from amplify_ml.datapack.validate import read_typed

        return read_typed(self, table)


def _load_manifest(path: Path) -> Manifest:
    mpath = path / MANIFEST
    if not mpath.exists():
        raise ManifestError(
            f"{path}: no {MANIFEST}; a data pack is a folder with one file per table and a "
            "manifest (DATAPACK.md, Packaging). Write it with amplify_ml.datapack.PackWriter "
            "or `amplify pack from-transactions`."
        )
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{mpath}: not valid UTF-8 JSON ({exc})") from None
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ManifestError(f"{mpath}: invalid manifest: {details}") from None


def read_pack(path: str | Path, *, verify: bool = True) -> DataPack:
    """Open the pack in folder ``path`` and verify its manifest.

    Verification checks the contract version, that every listed table is a contract table
    in a file that exists, that the files' sha256 and row counts match the manifest, that
    no table file is left out of it, and that a vendor pack holds vendor tables only.
    Every problem is reported at once in one :class:`~amplify_ml.errors.ManifestError`.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataPackError(f"{root}: not a folder; a data pack is a folder with a manifest.json")
    manifest = _load_manifest(root)
    problems: list[PackProblem] = []

    def problem(rule: str, table: str | None, message: str) -> None:
        problems.append(PackProblem(rule, table, message))

    if manifest.contract != CONTRACT_VERSION:
        problem(
            "manifest_contract",
            None,
            f"contract is {manifest.contract!r}, expected {CONTRACT_VERSION!r}: this version of "
            "amplify_ml reads contract v1 packs only",
        )
    if manifest.period.end < manifest.period.start:
        problem(
            "manifest_period",
            None,
            f"period ends ({manifest.period.end}) before it starts ({manifest.period.start})",
        )
    files: dict[str, TableFile] = {}
    for name, entry in manifest.tables.items():
        if name not in TABLES:
            problem(
                "unknown_table",
                None,
                f"table {name!r} is not a contract table (known: {', '.join(TABLES)})",
            )
            continue
        fpath = root / entry.file
        fmt: TableFormat | None = (
            "parquet"
            if entry.file.endswith(".parquet")
            else "csv"
            if entry.file.endswith(".csv")
            else None
        )
        if fmt is None or Path(entry.file).stem != name or Path(entry.file).name != entry.file:
            problem(
                "file_name",
                name,
                f"table {name!r}: file {entry.file!r} must be named {name}.parquet or {name}.csv "
                "inside the pack folder",
            )
            continue
        if not fpath.exists():
            problem(
                "missing_file",
                name,
                f"table {name!r}: file {entry.file} listed in the manifest is missing",
            )
            continue
        if manifest.is_vendor and name not in VENDOR_TABLES:
            problem(
                "partner_table_in_vendor_pack",
                name,
                f"table {name!r} is a partner table; a vendor pack holds only "
                f"{', '.join(VENDOR_TABLES)}",
            )
        if verify:
            actual_sha = sha256_file(fpath)
            if actual_sha != entry.sha256:
                problem(
                    "manifest_sha256",
                    name,
                    f"table {name!r}: sha256 of {entry.file} is {actual_sha[:12]}..., the manifest "
                    f"says {entry.sha256[:12]}...: the file changed after the manifest was "
                    "written, or the copy is incomplete; re-export the pack",
                )
            else:
                rows = count_rows(fpath)
                if rows != entry.rows:
                    problem(
                        "manifest_rows",
                        name,
                        f"table {name!r}: {entry.file} holds {rows} rows, the manifest says "
                        f"{entry.rows}",
                    )
        files[name] = TableFile(name, fpath, fmt)
    listed = {entry.file for entry in manifest.tables.values()}
    for candidate in sorted(root.iterdir()):
        if candidate.suffix in (".csv", ".parquet") and candidate.name not in listed:
            problem(
                "unlisted_file",
                None,
                f"file {candidate.name} is not listed in the manifest; list it or remove it",
            )
    if problems:
        raise ManifestError(
            f"pack {root} (source {manifest.source!r}) is refused: "
            + "; ".join(p.message for p in problems),
            problems=problems,
            source=manifest.source,
        )
    return DataPack(root, manifest, files)


def _to_arrow(table: str, data: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


def _csv_ready(data: pa.Table) -> pa.Table:
    """Format dates and timestamps the contract's way for CSV."""
    cols = []
    for _name, col in zip(data.column_names, data.columns, strict=False):
        if pa.types.is_timestamp(col.type):
            if col.type.tz is None:
                col = pc.assume_timezone(col, "UTC")
            col = col.cast(pa.timestamp("s", tz="UTC"), safe=False)
            col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_date(col.type):
            col = pc.strftime(col, format="%Y-%m-%d")
        cols.append(col)
    return pa.table(cols, names=data.column_names)


class PackWriter:
    """Write a pack: whole tables with :meth:`write`, or chunk by chunk with :meth:`append`.

    >>> with PackWriter(out, source="P001", period=(start, end)) as w:  # doctest: +SKIP
    ...     w.write("accounts", accounts_df)
    ...     for chunk in telemetry_chunks:
    ...         w.append("telemetry", chunk)

    The manifest (rows, sha256 per file) is written on close. Tables are cast to the
    contract's Arrow schema when their columns are contract columns (extra columns kept).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        source: str,
        period: tuple[date, date],
        created_at: datetime | None = None,
        format: TableFormat = "parquet",
        cast: bool = True,
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.period = period
        self.created_at = created_at or datetime.now(UTC).replace(microsecond=0)
        self.format = format
        self.cast = cast
        self._writers: dict[str, pq.ParquetWriter | pacsv.CSVWriter] = {}
        self._rows: dict[str, int] = {}
        self.manifest: Manifest | None = None

    def __enter__(self) -> PackWriter:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            for writer in self._writers.values():
                writer.close()

    def _conform(self, table: str, data: pa.Table) -> pa.Table:
        if not self.cast or table not in TABLES:
            return data
        schema = TABLES[table].arrow_schema
        fields = []
        cols = []
        for name in data.column_names:
            col = data.column(name)
            if name in schema.names:
                target = schema.field(name).type
                if col.type != target:
                    if (
                        pa.types.is_timestamp(target)
                        and pa.types.is_timestamp(col.type)
                        and col.type.tz is None
                    ):
                        col = pc.assume_timezone(col, "UTC")
                    col = col.cast(target)
                fields.append(pa.field(name, target))
            else:
                fields.append(pa.field(name, col.type))
            cols.append(col)
        return pa.table(cols, schema=pa.schema(fields))

    def append(self, table: str, data: pd.DataFrame | pa.Table) -> None:
        """Append rows to ``table`` (created on first call)."""
        arrow = self._conform(table, _to_arrow(table, data))
        file = self.path / f"{table}.{self.format}"
        if table not in self._writers:
            if self.format == "parquet":
                self._writers[table] = pq.ParquetWriter(file, arrow.schema, compression="zstd")
            else:
                arrow_csv = _csv_ready(arrow)
                self._writers[table] = pacsv.CSVWriter(file, arrow_csv.schema)
            self._rows[table] = 0
        writer = self._writers[table]
        if self.format == "parquet":
            writer.write_table(
                arrow.cast(writer.schema) if arrow.schema != writer.schema else arrow
            )
        else:
            writer.write_table(_csv_ready(arrow))
        self._rows[table] += arrow.num_rows

    def write(self, table: str, data: pd.DataFrame | pa.Table) -> None:
        """Write a whole table."""
        if table in self._writers:
            raise DataPackError(f"table {table!r} was already written to {self.path}")
        self.append(table, data)

    def close(self) -> Manifest:
        """Close every file and write manifest.json; returns the manifest (idempotent)."""
        if self.manifest is not None and not self._writers:
            return self.manifest
        tables: dict[str, TableEntry] = {}
        for name, writer in self._writers.items():
            writer.close()
            file = self.path / f"{name}.{self.format}"
            tables[name] = TableEntry(
                file=file.name, rows=self._rows[name], sha256=sha256_file(file)
            )
        self._writers.clear()
        self.manifest = Manifest(
            contract=CONTRACT_VERSION,
            source=self.source,
            created_at=self.created_at,
            period=Period(start=self.period[0], end=self.period[1]),
            tables=tables,
        )
        (self.path / MANIFEST).write_text(self.manifest.to_json(), encoding="utf-8")
        return self.manifest


def write_pack(
    path: str | Path,
    tables: Mapping[str, pd.DataFrame | pa.Table],
    *,
    source: str,
    period: tuple[date, date],
    created_at: datetime | None = None,
    format: TableFormat = "parquet",
    cast: bool = True,
) -> Manifest:
    """Write whole tables as a pack with its manifest (``cast=False`` writes them as given)."""
    writer = PackWriter(
        path, source=source, period=period, created_at=created_at, format=format, cast=cast
    )
    with writer:
        for name, data in tables.items():
            writer.write(name, data)
    return writer.close()
