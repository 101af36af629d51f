"""Validate a data pack against the contract, in DuckDB (columnar, out of core).

Every table is read once into a typed table (``typed_<table>``: ``_row``, the contract
columns with their contract types, extra columns as given) and every broken rule becomes a
row of ``viol_<table>`` (``_row``, ``column``, ``rule``). The :class:`ValidationReport`
aggregates them per table, column and rule, with row numbers (1-based data rows, the header
not counted) and never the values of suspected personal data. Ingestion reuses the same
tables to split loaded from quarantined rows.

Rule codes (stable, used in reports, quarantine and tests):

- pack level (the pack is refused whole): ``consent``, ``unknown_partner`` and the manifest
  rules of :func:`~amplify_ml.datapack.pack.read_pack` (``manifest_sha256``, ...);
- table level: ``missing_column`` (error: the table cannot be read), ``extra_column`` and
  ``personal_column`` (warnings: kept, or dropped and never stored), ``reference_not_checked``;
- row level (the row is quarantined): ``type``, ``required``, ``enum``, ``format``,
  ``below_min``, ``above_max``, ``zero``, ``future_date``, ``email_in_text``,
  ``phone_in_text``, ``consent``, ``foreign_partner``, ``unknown_partner``, ``key_conflict``,
  ``unknown_sku``, ``unknown_account``, ``unknown_device``, the table's own rules
  (``sign_follows_quantity``, ``week_not_monday``, ...), and ``duplicate`` (info: an exact
  copy of an earlier row, set aside rather than loaded twice).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amplify_ml.datapack.contract import (
    PERSONAL_COLUMN_PATTERN,
    TABLES,
    Column,
    TableSchema,
)
from amplify_ml.datapack.pack import DataPack, iter_csv_batches, read_pack
from amplify_ml.datapack.privacy import duckdb_has_email, duckdb_has_phone, safe_echo
from amplify_ml.errors import ContractError, DataPackError, ManifestError

Severity = Literal["error", "warning", "info"]

TYPE_HINTS: Mapping[str, str] = {
    "str": "text",
    "enum": "text",
    "int": "a whole number such as 12 or -3",
    "float": "a number with '.' as decimal point, such as 12.5",
    "bool": "true or false",
    "date": "a date YYYY-MM-DD",
    "timestamp": "a UTC timestamp YYYY-MM-DDTHH:MM:SSZ",
}

_INT_RE = r"[+-]?[0-9]+"
_FLOAT_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TS_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z"

# Rules whose offending values may be shown in a message (never for privacy rules).
_ECHO_RULES = {"type", "enum", "format"}
_PACK_REFUSAL_RULES = {"consent", "unknown_partner"}
_SAMPLE = 5


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (table, column), how many rows, which rows, and what to do."""

    table: str | None
    column: str | None
    rule: str
    rows: int | None
    sample_rows: tuple[int, ...]
    message: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "column": self.column,
            "rule": self.rule,
            "rows": self.rows,
            "sample_rows": list(self.sample_rows),
            "severity": self.severity,
            "message": self.message,
        }


@dataclass
class TableReport:
    """Row counts of one table after validation."""

    table: str
    rows_read: int
    rows_rejected: int = 0
    rows_duplicate: int = 0
    start: str | None = None
    """Earliest value of the table's time column among valid rows (ISO text)."""
    end: str | None = None

    @property
    def rows_valid(self) -> int:
        """Rows that pass every rule and are not a copy of an earlier row."""
        return self.rows_read - self.rows_rejected - self.rows_duplicate


@dataclass
class ValidationReport:
    """What validation found in one pack."""

    pack: str
    path: Path
    source: str | None
    violations: list[Violation] = field(default_factory=list)
    tables: dict[str, TableReport] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """True when the pack as a whole cannot be accepted (manifest, consent, partner)."""
        return any(v.severity == "error" and v.rows is None for v in self.violations)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors at all (warnings and set-aside duplicates allowed)."""
        return not self.errors

    def counts(self, *, include_info: bool = True) -> dict[tuple[str | None, str], int | None]:
        """Rows per (table, rule) for errors (and info), summed over columns."""
        out: dict[tuple[str | None, str], int | None] = {}
        for v in self.violations:
            if v.severity == "warning" or (v.severity == "info" and not include_info):
                continue
            key = (v.table, v.rule)
            if v.rows is None:
                out[key] = None
            else:
                prev = out.get(key) or 0
                out[key] = prev + v.rows
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per violation."""
        cols = ["table", "column", "rule", "rows", "sample_rows", "severity", "message"]
        return pd.DataFrame([v.to_dict() for v in self.violations], columns=cols)

    def to_dict(self) -> dict[str, object]:
        return {
            "pack": self.pack,
            "path": str(self.path),
            "source": self.source,
            "refused": self.refused,
            "ok": self.ok,
            "tables": {
                name: {
                    "rows_read": t.rows_read,
                    "rows_valid": t.rows_valid,
                    "rows_rejected": t.rows_rejected,
                    "rows_duplicate": t.rows_duplicate,
                    "start": t.start,
                    "end": t.end,
                }
                for name, t in self.tables.items()
            },
            "violations": [v.to_dict() for v in self.violations],
        }

    def summary(self) -> str:
        """A few human lines: the verdict, then each violation's message."""
        if self.refused:
            head = f"pack {self.pack} (source {self.source}) is REFUSED"
        elif self.errors:
            n = sum(t.rows_rejected for t in self.tables.values())
            head = f"pack {self.pack} (source {self.source}): {n} rows break the contract"
        else:
            head = f"pack {self.pack} (source {self.source}) passes the contract"
        lines = [head]
        lines += [f"  [{v.severity}] {v.message}" for v in self.violations]
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        """Raise :class:`ContractError` (with this report attached) if there is any error."""
        if self.errors:
            raise ContractError(self.summary(), report=self)


def _q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def _rows_text(n: int, sample: tuple[int, ...]) -> str:
    shown = ", ".join(str(r) for r in sample)
    more = f" (+{n - len(sample)} more)" if n > len(sample) else ""
    noun = "row" if n == 1 else "rows"
    return f"{n} {noun} ({noun} {shown}{more})"


def _typed_expr(col: Column, raw_type: str, raw: str) -> str:
    """DuckDB expression turning a raw column into the contract type (NULL if it cannot)."""
    target = col.duckdb_type
    is_text = raw_type.upper() in ("VARCHAR", "STRING", "TEXT")
    if col.type in ("str", "enum"):
        text = raw if is_text else f"CAST({raw} AS VARCHAR)"
        return f"CASE WHEN trim({text}) = '' THEN NULL ELSE {text} END"
    if not is_text:
        rt = raw_type.upper()
        fractional = rt in ("FLOAT", "DOUBLE", "REAL") or rt.startswith("DECIMAL")
        if col.type == "float":
            return (
                f"CASE WHEN isfinite(TRY_CAST({raw} AS DOUBLE)) THEN TRY_CAST({raw} AS DOUBLE) END"
            )
        if col.type == "int" and fractional:
            # DuckDB rounds 2.5 to 3 when casting; a whole number is required instead
            return (
                f"CASE WHEN isfinite({raw}) AND {raw} = trunc({raw}) "
                f"THEN TRY_CAST({raw} AS BIGINT) END"
            )
        if col.type == "date" and rt.startswith("TIMESTAMP"):
            # a date stored as a timestamp is accepted at midnight only
            return (
                f"CASE WHEN CAST({raw} AS TIMESTAMP) = CAST(CAST({raw} AS DATE) AS TIMESTAMP) "
                f"THEN CAST({raw} AS DATE) END"
            )
        return f"TRY_CAST({raw} AS {target})"
    t = f"trim({raw})"
    if col.type == "int":
        return f"CASE WHEN regexp_full_match({t}, '{_INT_RE}') THEN TRY_CAST({t} AS BIGINT) END"
    if col.type == "float":
        return f"CASE WHEN regexp_full_match({t}, '{_FLOAT_RE}') THEN TRY_CAST({t} AS DOUBLE) END"
    if col.type == "bool":
        return (
            f"CASE lower({t}) WHEN 'true' THEN TRUE WHEN '1' THEN TRUE "
            f"WHEN 'false' THEN FALSE WHEN '0' THEN FALSE END"
        )
    if col.type == "date":
        return f"CASE WHEN regexp_full_match({t}, '{_DATE_RE}') THEN TRY_CAST({t} AS DATE) END"
    if col.type == "timestamp":
        return f"CASE WHEN regexp_full_match({t}, '{_TS_RE}') THEN TRY_CAST({t} AS TIMESTAMPTZ) END"
    raise DataPackError(f"unsupported contract type {col.type!r}")  # pragma: no cover


def _column_checks(col: Column, raw: str, typed: str, now_sql: str) -> list[tuple[str, str]]:
    """(rule, violation predicate) pairs for one contract column."""
    checks: list[tuple[str, str]] = []
    raw_present = f"({raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) <> '')"
    checks.append(("type", f"({raw_present} AND {typed} IS NULL)"))
    if not col.nullable:
        checks.append(("required", f"(NOT {raw_present})"))
    if col.enum:
        values = ", ".join(_lit(v) for v in col.enum)
        checks.append(("enum", f"({typed} NOT IN ({values}))"))
    if col.pattern:
        checks.append(("format", f"(NOT regexp_full_match({typed}, {_lit(col.pattern)}))"))
    if col.min is not None:
        checks.append(("below_min", f"({typed} < {col.min!r})"))
    if col.max is not None:
        checks.append(("above_max", f"({typed} > {col.max!r})"))
    if col.nonzero:
        checks.append(("zero", f"({typed} = 0)"))
    if col.not_future:
        bound = f"CAST({now_sql} AS DATE)" if col.type == "date" else now_sql
        checks.append(("future_date", f"({typed} > {bound})"))
    return checks


def _rule_message(
    table: TableSchema,
    column: str | None,
    rule: str,
    n: int,
    sample: tuple[int, ...],
    values: list[str],
) -> str:
    where = f"{table.name}.{column}" if column else table.name
    rows = _rows_text(n, sample)
    col = table.column(column) if column and column in table.column_names else None
    got = f": got {', '.join(values)}" if values else ""
    if rule == "type" and col is not None:
        return f"{where}: {rows} not {col.type}: expected {TYPE_HINTS[col.type]}{got}"
    if rule == "required":
        return f"{where}: {rows} empty; the column is required"
    if rule == "enum" and col is not None and col.enum:
        return f"{where}: {rows} not one of {', '.join(col.enum)}{got}"
    if rule == "format" and col is not None:
        return f"{where}: {rows} not {col.pattern_hint or 'in the expected format'}{got}"
    if rule == "below_min" and col is not None:
        return f"{where}: {rows} below the minimum {col.min:g}"
    if rule == "above_max" and col is not None:
        return f"{where}: {rows} above the maximum {col.max:g}"
    if rule == "zero":
        return f"{where}: {rows} zero; the contract forbids 0 here"
    if rule == "future_date":
        return f"{where}: {rows} dated after the pack was created (manifest created_at)"
    if rule == "email_in_text":
        return (
            f"{where}: {rows} holding an e-mail address; only company-level data may be "
            "shared: remove personal contact data from the export (value withheld)"
        )
    if rule == "phone_in_text":
        return (
            f"{where}: {rows} holding a phone number; only company-level data may be shared: "
            "remove personal contact data from the export (value withheld)"
        )
    if rule == "consent":
        return (
            f"{where}: {rows} of a partner that has not opted in to share its data "
            "(partners.data_sharing is false); these rows are refused"
        )
    if rule == "foreign_partner":
        return (
            f"{where}: {rows} of another partner; a partner pack holds only the rows of its "
            "source partner"
        )
    if rule == "unknown_partner":
        return f"{where}: {rows} with a partner_id that is not in the partners table"
    if rule == "key_conflict":
        keys = ", ".join(table.key)
        return (
            f"{where}: {rows} sharing a key ({keys}) with different values; which one is "
            "right cannot be told, so all of them are set aside: send one value per key"
        )
    if rule == "duplicate":
        return f"{where}: {rows} exact copies of an earlier row; set aside, loaded once"
    for rule_def in table.rules:
        if rule_def.name == rule:
            return f"{where}: {rows} breaking the rule: {rule_def.message}"
    for ref in table.references:
        if ref.rule == rule:
            return f"{where}: {rows} where {ref.message}"
    return f"{where}: {rows} breaking rule {rule}"  # pragma: no cover


class PackValidator:
    """Validate one pack in a DuckDB connection, leaving typed and violation tables behind.

    ``reference`` supplies the tables a pack refers to beside its own (``partners`` for
    consent, ``products`` for SKUs, ``accounts`` and ``install_base`` of earlier packs): a
    vendor :class:`DataPack`, or a mapping of table name to an Arrow table in contract types
    or to a DuckDB SQL source such as ``read_parquet([...])`` over the lake. ``now`` bounds event dates (default: the manifest's created_at).
    """

    def __init__(
        self,
        pack: DataPack,
        *,
        reference: DataPack | Mapping[str, pa.Table | str] | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
        now: datetime | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.pack = pack
        self.reference = reference
        self.now = (now or pack.manifest.created_at).astimezone(UTC)
        self._own_con = con is None
        self.con = con if con is not None else duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        self._scratch = Path(tempfile.mkdtemp(prefix="amplify-validate-"))
        # removed at close, or when a validator nobody closed is collected (or at exit)
        self._remove_scratch = weakref.finalize(self, shutil.rmtree, str(self._scratch), True)
        self.con.execute(f"SET temp_directory = {_lit(str(self._scratch / 'spill'))}")
        self.report = ValidationReport(pack.path.name, pack.path, pack.source)
        self._typed: set[str] = set()
        self._ref_views: dict[str, str] = {}
        self.extra_columns: dict[str, list[str]] = {}
        self._gated: bool | None = None
        self._known: set[str] | None = None
        self._no_consent: set[str] = set()
        self.dropped_columns: dict[str, list[str]] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._own_con:
            self.con.close()
        self._remove_scratch()

    def __enter__(self) -> PackValidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw and typed tables ---------------------------------------------------------------
    def _raw_source(self, pack: DataPack, table: str, tag: str) -> str:
        """A SQL source of the table's rows with a 1-based ``_row``."""
        tf = pack.file(table)
        path = tf.path
        if tf.format == "csv":
            staged = self._scratch / f"{tag}_{table}.parquet"
            writer: pq.ParquetWriter | None = None
            offset = 0
            for batch in iter_csv_batches(path):
                rows = pa.array(range(offset + 1, offset + batch.num_rows + 1), pa.int64())
                offset += batch.num_rows
                out = pa.RecordBatch.from_arrays(
                    [*batch.columns, rows], names=[*batch.schema.names, "_row"]
                )
                if writer is None:
                    writer = pq.ParquetWriter(staged, out.schema)
                writer.write_batch(out)
            if writer is None:
                names = pack.file(table).columns()
                empty = pa.table(
                    {
                        **{n: pa.array([], pa.string()) for n in names},
                        "_row": pa.array([], pa.int64()),
                    }
                )
                pq.write_table(empty, staged)
            else:
                writer.close()
            return f"read_parquet({_lit(str(staged))})"
        return (
            f"(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _row "
            f"FROM read_parquet({_lit(str(path))}, file_row_number = true))"
        )

    def _describe(self, source: str) -> dict[str, str]:
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        return {r[0]: r[1] for r in rows}

    def _typed_select(
        self, schema: TableSchema, source: str, raw_types: Mapping[str, str]
    ) -> tuple[str, list[tuple[str, str, str]]]:
        """SELECT list of typed columns, and (column, rule, predicate) checks."""
        select = ["_row"]
        checks: list[tuple[str, str, str]] = []
        now_sql = f"TIMESTAMPTZ {_lit(self.now.strftime('%Y-%m-%d %H:%M:%S+00'))}"
        for col in schema.columns:
            raw = f"r.{_q(col.name)}"
            typed = _typed_expr(col, raw_types[col.name], raw)
            select.append(f"{typed} AS {_q(col.name)}")
            for rule, pred in _column_checks(col, raw, typed, now_sql):
                checks.append((col.name, rule, pred))
        return ", ".join(select), checks

    def _reference_view(self, table: str) -> str | None:
        """A typed view of ``table`` from the reference (vendor pack, or lake), if it has one."""
        if table in self._ref_views:
            return self._ref_views[table]
        ref = self.reference
        view = f"ref_{table}"
        schema = TABLES[table]
        if isinstance(ref, DataPack) and ref.has(table):
            source = self._raw_source(ref, table, "ref")
            raw_types = self._describe(source)
            if any(c.name not in raw_types for c in schema.columns):
                return None
            select, _ = self._typed_select(schema, "r", raw_types)
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select} FROM {source} r"
            )
        elif isinstance(ref, Mapping) and table in ref:
            value = ref[table]
            if isinstance(value, str):  # a SQL source, e.g. read_parquet([...]) over the lake
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {value}")
            else:
                self.con.register(view, value)
        else:
            return None
        self._ref_views[table] = view
        return view

    def _ensure_typed_reference(self, table: str) -> str | None:
        """A relation over ``table``'s contract columns: this pack's rows and the reference's."""
        cols = ", ".join(_q(c) for c in TABLES[table].column_names)
        parts = []
        if self.pack.has(table) and table in self._typed:
            parts.append(f"SELECT {cols} FROM typed_{table}")
        ref = self._reference_view(table)
        if ref is not None:
            parts.append(f"SELECT {cols} FROM {ref}")
        if not parts:
            return None
        return "(" + " UNION ALL ".join(parts) + ")"

    # -- pack-level gates --------------------------------------------------------------------
    def _partner_consent(self) -> tuple[set[str], set[str]] | None:
        """(partners known, partners without consent), from every partners table available."""
        sources: list[str] = []
        if self.pack.has("partners"):
            sources.append(self._raw_partner_view(self.pack, "own"))
        ref = self._reference_view("partners") if not self.pack.is_vendor else None
        if ref is not None:
            sources.append(ref)
        if not sources:
            return None
        known: set[str] = set()
        refused: set[str] = set()
        for src in sources:
            for pid, sharing in self.con.execute(
                f"SELECT partner_id, data_sharing FROM {src} WHERE partner_id IS NOT NULL"
            ).fetchall():
                known.add(pid)
                if sharing is not True:
                    refused.add(pid)
        return known, refused

    def _raw_partner_view(self, pack: DataPack, tag: str) -> str:
        view = f"partners_{tag}"
        source = self._raw_source(pack, "partners", f"p{tag}")
        raw_types = self._describe(source)
        schema = TABLES["partners"]
        missing = [c.name for c in schema.columns if c.name not in raw_types]
        if missing:
            raise ContractError(
                f"{pack.path}/partners: missing columns {', '.join(missing)}; consent cannot be "
                "read. Expected columns: " + ", ".join(schema.column_names)
            )
        select, _ = self._typed_select(schema, "r", raw_types)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select} FROM {source} r")
        return view

    # -- running -----------------------------------------------------------------------------
    def gate(self) -> bool:
        """The pack-level checks (consent, partner known), reading no table of the pack but
        partners. Returns True when the pack is refused; the reasons are in the report."""
        if self._gated is not None:
            return self._gated
        consent = self._partner_consent()
        known: set[str] | None = None
        no_consent: set[str] = set()
        if consent is None:
            self._add(
                Violation(
                    None,
                    None,
                    "consent_not_checked",
                    0,
                    (),
                    f"pack {self.pack.path.name}: no partners table in the pack or the reference; "
                    "consent and partner ids were not checked. Validate with the vendor pack as "
                    "reference (--reference) or ingest the vendor pack first.",
                    "warning",
                )
            )
        else:
            known, no_consent = consent
            if not self.pack.is_vendor:
                src = self.pack.source
                if src not in known:
                    self._add(
                        Violation(
                            None,
                            None,
                            "unknown_partner",
                            None,
                            (),
                            f"pack {self.pack.path.name} is refused: its source partner is not in "
                            "the partners table; the vendor must register the partner first",
                        )
                    )
                    self._gated = True
                    return True
                if src in no_consent:
                    self._add(
                        Violation(
                            None,
                            None,
                            "consent",
                            None,
                            (),
                            f"pack {self.pack.path.name} is refused: partner {src} has not opted "
                            "in to share its data (partners.data_sharing is false), so nothing "
                            "of the pack is read or stored. Ask the partner to opt in in the "
                            "partner program, then send the pack again.",
                        )
                    )
                    self._gated = True
                    return True
        self._known, self._no_consent = known, no_consent
        self._gated = False
        return False

    def run(self, tables: list[str] | None = None) -> ValidationReport:
        """Validate every table (or ``tables``) and return the report."""
        if self.gate():
            return self.report
        known, no_consent = self._known, self._no_consent
        order = [t for t in TABLES if t in (tables or self.pack.tables)]
        for table in order:
            self._check_table(table, known, no_consent)
        for table in order:
            if table in self._typed:
                self._check_references(table)
        for table in order:
            if table in self._typed:
                self._summarise(table)
        return self.report

    def _add(self, violation: Violation) -> None:
        self.report.violations.append(violation)

    def _check_table(self, table: str, known: set[str] | None, no_consent: set[str]) -> None:
        schema = TABLES[table]
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW raw_{table} AS "
            f"SELECT * FROM {self._raw_source(self.pack, table, 'pack')}"
        )
        source = f"raw_{table}"
        raw_types = self._describe(source)
        raw_types.pop("_row", None)
        n_rows = self.con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]  # type: ignore[index]
        self.report.tables[table] = TableReport(table, n_rows)
        missing = [c for c in schema.column_names if c not in raw_types]
        if missing:
            self.report.tables[table].rows_rejected = n_rows
            self._add(
                Violation(
                    table,
                    None,
                    "missing_column",
                    n_rows,
                    (),
                    f"{table}: missing contract columns {', '.join(missing)}; no row of the "
                    f"table can be read. Expected columns: {', '.join(schema.column_names)}",
                )
            )
            return
        extras = [c for c in raw_types if c not in schema.column_names]
        personal = [c for c in extras if re.search(PERSONAL_COLUMN_PATTERN, c.lower())]
        kept = [c for c in extras if c not in personal]
        self.extra_columns[table] = kept
        self.dropped_columns[table] = personal
        for c in personal:
            self._add(
                Violation(
                    table,
                    c,
                    "personal_column",
                    None if n_rows == 0 else n_rows,
                    (),
                    f"{table}.{c}: the column name says it holds personal data (a person's name, "
                    "e-mail, phone or address); it is dropped and never stored. Only "
                    "company-level data may be shared: remove it from the export.",
                    "warning",
                )
            )
        if kept:
            self._add(
                Violation(
                    table,
                    None,
                    "extra_column",
                    0,
                    (),
                    f"{table}: extra columns {', '.join(kept)} are not in the contract; they "
                    "are kept as given and ignored by the models",
                    "warning",
                )
            )
        select, checks = self._typed_select(schema, "r", raw_types)
        # privacy scans on every text column (e-mail) and free-text ones (phone)
        text_cols = [c.name for c in schema.columns if c.type in ("str", "enum")]
        text_cols += [c for c in kept if raw_types[c].upper() == "VARCHAR"]
        phone_cols = [c.name for c in schema.columns if c.free_text]
        phone_cols += [c for c in kept if raw_types[c].upper() == "VARCHAR"]
        for c in text_cols:
            expr = f"CAST(r.{_q(c)} AS VARCHAR)"
            checks.append((c, "email_in_text", duckdb_has_email(expr)))
        for c in phone_cols:
            expr = f"CAST(r.{_q(c)} AS VARCHAR)"
            checks.append((c, "phone_in_text", duckdb_has_phone(expr)))
        # row-level tenant and consent checks
        if schema.has_partner_id:
            pid = "r.partner_id"
            if not self.pack.is_vendor:
                checks.append(
                    ("partner_id", "foreign_partner", f"({pid} <> {_lit(self.pack.source)})")
                )
            elif table != "partners":
                if no_consent:
                    ids = ", ".join(_lit(p) for p in sorted(no_consent))
                    checks.append(("partner_id", "consent", f"({pid} IN ({ids}))"))
                if known is not None:
                    ids = ", ".join(_lit(p) for p in sorted(known)) or "NULL"
                    checks.append(("partner_id", "unknown_partner", f"({pid} NOT IN ({ids}))"))
        # cross-column rules over typed values: computed in a second projection
        flag_items = [
            f"CASE WHEN {pred} THEN {_lit(col + chr(31) + rule)} END" for col, rule, pred in checks
        ]
        extras_sql = "".join(f", r.{_q(c)}" for c in kept)
        rule_items = [
            f"CASE WHEN {rule.violation_sql} THEN {_lit(rule.columns[0] + chr(31) + rule.name)} END"
            for rule in schema.rules
        ]
        # one pass: raw -> typed values with column flags -> cross-column rule flags
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE typed_{table} AS
            SELECT * EXCLUDE (_flags), list_concat(_flags, list_filter(
                [{", ".join(rule_items) or "NULL"}], x -> x IS NOT NULL)) AS _flags
            FROM (
                SELECT {select}{extras_sql},
                    list_filter([{", ".join(flag_items) or "NULL"}], x -> x IS NOT NULL) AS _flags
                FROM {source} r
            )
            """
        )
        # keys: find the repeated ones with a GROUP BY (most keys are unique), then tell
        # copies from conflicts with window functions over those few rows only
        key_cols = ", ".join(_q(c) for c in schema.key)
        key_not_null = " AND ".join(f"{_q(c)} IS NOT NULL" for c in schema.key)
        on = " AND ".join(f"t.{_q(c)} = d.{_q(c)}" for c in schema.key)
        conflict = _lit(schema.key[-1] + chr(31) + "key_conflict")
        duplicate = _lit(schema.key[-1] + chr(31) + "duplicate")
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE keyflags_{table} AS
            WITH d AS (
                SELECT {key_cols} FROM typed_{table} WHERE {key_not_null}
                GROUP BY ALL HAVING count(*) > 1
            ),
            k AS (
                SELECT t._row, {", ".join(f"t.{_q(c)}" for c in schema.key)},
                    hash({", ".join(f"t.{_q(c)}" for c in schema.column_names)}) AS _h
                FROM typed_{table} t JOIN d ON {on}
            ),
            c AS (
                SELECT _row,
                    min(_h) OVER (PARTITION BY {key_cols}) <> max(_h) OVER (PARTITION BY {key_cols})
                        AS _conflict,
                    row_number() OVER (PARTITION BY {key_cols}, _h ORDER BY _row) AS _copy
                FROM k
            )
            SELECT _row, CASE WHEN _conflict THEN {conflict} ELSE {duplicate} END AS flag
            FROM c WHERE _conflict OR _copy > 1
            """
        )
        self.con.execute(
            f"""
            UPDATE typed_{table} t SET _flags = list_append(t._flags, f.flag)
            FROM keyflags_{table} f WHERE t._row = f._row
            """
        )
        self.con.execute(f"DROP TABLE keyflags_{table}")
        self._typed.add(table)

    def _check_references(self, table: str) -> None:
        schema = TABLES[table]
        ref_flags: list[str] = []
        for ref in schema.references:
            target = self._ensure_typed_reference(ref.target)
            if target is None:
                self._add(
                    Violation(
                        table,
                        ",".join(ref.columns),
                        "reference_not_checked",
                        0,
                        (),
                        f"{table}.{', '.join(ref.columns)}: not checked against {ref.target}, "
                        f"which is in neither this pack nor the reference ({ref.rule} not checked)",
                        "warning",
                    )
                )
                continue
            where = f"WHERE {ref.target_filter_sql}" if ref.target_filter_sql else ""
            on = " AND ".join(
                f"t.{_q(c)} = x.{_q(tc)}"
                for c, tc in zip(ref.columns, ref.target_columns, strict=False)
            )
            not_null = " AND ".join(f"t.{_q(c)} IS NOT NULL" for c in ref.columns)
            ref_flags.append(
                f"CASE WHEN {not_null} AND NOT EXISTS (SELECT 1 FROM (SELECT * FROM {target} "
                f"{where}) x WHERE {on}) THEN {_lit(ref.columns[-1] + chr(31) + ref.rule)} END"
            )
        if ref_flags:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE typed_{table} AS SELECT t.* EXCLUDE (_flags), "
                f"list_concat(t._flags, list_filter([{', '.join(ref_flags)}], x -> x IS NOT NULL)) "
                f"AS _flags FROM typed_{table} t"
            )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE viol_{table} AS
            SELECT _row, split_part(f, chr(31), 1) AS "column", split_part(f, chr(31), 2) AS rule
            FROM (SELECT _row, unnest(_flags) AS f FROM typed_{table})
            """
        )

    def _summarise(self, table: str) -> None:
        schema = TABLES[table]
        rows = self.con.execute(
            f"""
            SELECT "column", rule, count(*) AS n, list(_row ORDER BY _row)[1:{_SAMPLE}] AS sample
            FROM viol_{table} GROUP BY ALL ORDER BY min(_row)
            """
        ).fetchall()
        for column, rule, n, sample in rows:
            values: list[str] = []
            if rule in _ECHO_RULES:
                values = self._offending_values(table, column, rule)
            sev: Severity = "info" if rule == "duplicate" else "error"
            self._add(
                Violation(
                    table,
                    column,
                    rule,
                    int(n),
                    tuple(int(r) for r in sample),
                    _rule_message(schema, column, rule, int(n), tuple(sample), values),
                    sev,
                )
            )
        rejected, dup = self.con.execute(
            f"""
            SELECT count(*) FILTER (WHERE NOT only_dup), count(*) FILTER (WHERE only_dup)
            FROM (SELECT _row, bool_and(rule = 'duplicate') AS only_dup FROM viol_{table} GROUP BY _row)
            """
        ).fetchone()  # type: ignore[misc]
        self.report.tables[table].rows_rejected = int(rejected)
        self.report.tables[table].rows_duplicate = int(dup)
        if schema.time_column:
            tc = _q(schema.time_column)
            fmt = (
                "%Y-%m-%dT%H:%M:%SZ"
                if schema.column(schema.time_column).type == "timestamp"
                else "%Y-%m-%d"
            )
            start, end = self.con.execute(
                f"SELECT strftime(min({tc}), '{fmt}'), strftime(max({tc}), '{fmt}') "
                f"FROM typed_{table} WHERE len(_flags) = 0"
            ).fetchone()  # type: ignore[misc]
            self.report.tables[table].start = start
            self.report.tables[table].end = end

    def _offending_values(self, table: str, column: str, rule: str) -> list[str]:
        """Up to three distinct offending raw values, personal-looking ones withheld."""
        rows = self.con.execute(
            f"""
            SELECT DISTINCT CAST(r.{_q(column)} AS VARCHAR) AS v
            FROM viol_{table} v JOIN raw_{table} r USING (_row)
            WHERE v."column" = ? AND v.rule = ? ORDER BY v LIMIT 3
            """,
            [column, rule],
        ).fetchall()
        return [safe_echo(r[0]) for r in rows if r[0] is not None]

    # -- typed access --------------------------------------------------------------------------
    def valid_rows(self, table: str) -> duckdb.DuckDBPyRelation:
        """Typed rows of ``table`` that break no rule (contract columns plus kept extras)."""
        return self.con.sql(f"SELECT * EXCLUDE (_flags) FROM typed_{table} WHERE len(_flags) = 0")


def validate_pack(
    pack: str | Path | DataPack,
    *,
    reference: DataPack | Mapping[str, pa.Table] | str | Path | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """Validate a pack (a folder or an opened :class:`DataPack`) and return the report.

    A broken manifest does not raise: it comes back as pack-level violations in a refused
    report, so a caller can show every problem at once.
    """
    if isinstance(reference, (str, Path)):
        reference = read_pack(reference)
    if not isinstance(pack, DataPack):
        path = Path(pack)
        try:
            pack = read_pack(path)
        except ManifestError as exc:
            report = ValidationReport(path.name, path, exc.source)
            problems = exc.problems or [None]
            for p in problems:
                report.violations.append(
                    Violation(
                        p.table if p else None,
                        None,
                        p.rule if p else "manifest",
                        None,
                        (),
                        p.message if p else exc.message,
                    )
                )
            return report
    with PackValidator(pack, reference=reference, now=now) as validator:
        return validator.run()


@contextmanager
def open_validator(
    pack: DataPack, *, reference: DataPack | Mapping[str, pa.Table] | None = None
) -> Iterator[PackValidator]:
    """A validator that has run, left open so its typed and violation tables can be read."""
    validator = PackValidator(pack, reference=reference)
    try:
        validator.run()
        yield validator
    finally:
        validator.close()


def read_typed(pack: DataPack, table: str) -> pd.DataFrame:
    """``table`` of ``pack`` with contract types; raises :class:`ContractError` on type errors."""
    schema = TABLES[table]
    with PackValidator(pack) as v:
        v._check_table(table, None, set())
        bad = v.con.execute(
            f"SELECT _row, unnest(_flags) f FROM typed_{table} "
            f"WHERE list_contains(list_transform(_flags, x -> split_part(x, chr(31), 2)), 'type') "
            f"OR list_contains(list_transform(_flags, x -> split_part(x, chr(31), 2)), 'required')"
        ).fetchall()
        if bad:
            cols = sorted({f.split(chr(31))[0] for _, f in bad})
            rows = sorted({r for r, _ in bad})
            raise ContractError(
                f"{pack.path.name}/{table}: values in {', '.join(cols)} cannot be read as their "
                f"contract types ({_rows_text(len(rows), tuple(rows[:_SAMPLE]))}); run "
                "`amplify validate` on the pack for the full report"
            )
        cols = ", ".join(_q(c) for c in schema.column_names)
        extras = "".join(f", {_q(c)}" for c in v.extra_columns.get(table, []))
        arrow = v.con.execute(
            f"SELECT {cols}{extras} FROM typed_{table} ORDER BY _row"
        ).to_arrow_table()
        return arrow.to_pandas(date_as_object=False)
