"""Writing the world: contract-typed Arrow tables, packs through ``PackWriter``, summaries.

Tables are converted to the contract's Arrow types here (dates to ``date32``, timestamps to
``timestamp[us, UTC]``), written with :class:`amplify_ml.datapack.PackWriter` (which also
computes the manifest), and summarised (rows, min and max of the table's main date column).
Telemetry is streamed in chunks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from amplify_ml.datapack.contract import TABLES
from amplify_ml.datapack.pack import PackWriter, TableFormat, format_timestamp

DATE_COLUMNS = {
    "partners": "joined_on",
    "products": "launched_on",
    "accounts": "first_seen",
    "sell_through": "sold_on",
    "install_base": "installed_on",
    "telemetry": "observed_at",
    "device_events": "occurred_at",
    "service_events": "opened_at",
    "opportunities": "created_on",
    "inventory": "as_of",
    "intent_signals": "week_of",
    "market": "month",
}
TELEMETRY_CHUNK = 2_000_000


def to_arrow(table: str, data: pd.DataFrame | pa.Table) -> pa.Table:
    """``data`` with the contract's Arrow type for every contract column, in contract order."""
    if isinstance(data, pa.Table):
        return data
    schema = TABLES[table]
    arrays = []
    for col in schema.columns:
        s = data[col.name]
        t = col.arrow_type
        if col.type == "date" and s.dtype != object:
            v = s.to_numpy().astype("datetime64[D]")
            arr = pa.array(
                v.astype(np.int64).astype(np.int32), type=pa.int32(), mask=np.isnat(v)
            ).view(pa.date32())
        elif col.type == "timestamp" and s.dtype != object:
            v = s.to_numpy().astype("datetime64[us]")
            arr = pa.array(v.astype(np.int64), type=pa.timestamp("us", tz="UTC"), mask=np.isnat(v))
        else:
            arr = pa.array(s, type=t, from_pandas=True)
        arrays.append(arr)
    return pa.table(arrays, schema=schema.arrow_schema)


@dataclass
class TableSummary:
    rows: int
    date_column: str | None
    min: str | None
    max: str | None


@dataclass
class PackSummary:
    """One pack written: folder name, source, kind (main, late, vendor) and its tables."""

    name: str
    source: str
    kind: str
    created_at: str
    tables: dict[str, TableSummary] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iso_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class DateRange:
    def __init__(self) -> None:
        self.lo: Any = None
        self.hi: Any = None

    def update(self, arr: pa.ChunkedArray | pa.Array) -> None:
        if len(arr) == 0:
            return
        mm = pc.min_max(arr)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None:
            return
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)


def write_pack(
    path: Path,
    tables: dict[str, pd.DataFrame | pa.Table],
    *,
    name: str,
    source: str,
    kind: str,
    period: tuple[date, date],
    created_at: datetime,
    format: TableFormat,
) -> PackSummary:
    """Write one pack (telemetry streamed in chunks) and summarise it."""
    summary = PackSummary(
        name=name, source=source, kind=kind, created_at=format_timestamp(created_at)
    )
    with PackWriter(
        path, source=source, period=period, created_at=created_at, format=format
    ) as writer:
        for table, data in tables.items():
            arrow = to_arrow(table, data)
            rng_ = DateRange()
            col = DATE_COLUMNS.get(table)
            step = TELEMETRY_CHUNK if table == "telemetry" else max(arrow.num_rows, 1)
            for start in range(0, max(arrow.num_rows, 1), step):
                chunk = arrow.slice(start, step)
                writer.append(table, chunk)
                if col:
                    rng_.update(chunk.column(col))
            summary.tables[table] = TableSummary(
                arrow.num_rows, col, iso_value(rng_.lo), iso_value(rng_.hi)
            )
    return summary


class OracleWriter:
    """Appends oracle rows per partner to ``OUT/oracle/<model>.parquet``."""

    SCHEMAS: ClassVar[dict[str, pa.Schema]] = {
        "propensity_to_buy": pa.schema(
            [
                ("partner_id", pa.string()),
                ("account_id", pa.string()),
                ("category", pa.string()),
                ("cutoff", pa.date32()),
                ("horizon_days", pa.int64()),
                ("p_true", pa.float64()),
                ("label", pa.int64()),
            ]
        ),
        "refresh_due": pa.schema(
            [
                ("partner_id", pa.string()),
                ("device_id", pa.string()),
                ("cutoff", pa.date32()),
                ("horizon_days", pa.int64()),
                ("p_true", pa.float64()),
                ("label", pa.int64()),
            ]
        ),
        "consumable_depletion": pa.schema(
            [
                ("partner_id", pa.string()),
                ("device_id", pa.string()),
                ("color", pa.string()),
                ("cutoff", pa.date32()),
                ("horizon_days", pa.int64()),
                ("threshold_pct", pa.float64()),
                ("p_true", pa.float64()),
                ("expected_days", pa.float64()),
                ("p10_days", pa.float64()),
                ("p50_days", pa.float64()),
                ("p90_days", pa.float64()),
                ("label", pa.int64()),
                ("censored", pa.bool_()),
            ]
        ),
        "device_failure": pa.schema(
            [
                ("partner_id", pa.string()),
                ("device_id", pa.string()),
                ("cutoff", pa.date32()),
                ("horizon_days", pa.int64()),
                ("p_true", pa.float64()),
                ("label", pa.int64()),
            ]
        ),
    }

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._writers = {
            m: pq.ParquetWriter(folder / f"{m}.parquet", s, compression="zstd")
            for m, s in self.SCHEMAS.items()
        }
        self.rows = {m: 0 for m in self.SCHEMAS}

    def append(self, tables: dict[str, pd.DataFrame]) -> None:
        for model, df in tables.items():
            schema = self.SCHEMAS[model]
            arrow = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
            self._writers[model].write_table(arrow)
            self.rows[model] += arrow.num_rows

    def close(self) -> dict[str, int]:
        for w in self._writers.values():
            w.close()
        return dict(self.rows)
