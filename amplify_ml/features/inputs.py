"""What builders read: the lake's Parquet files (or in-memory tables), as views on an engine.

:class:`Inputs` lists, per table, the current files and the superseded ones (older versions
of rows replaced by a newer pack), the packs (for the data fingerprint) and the days data
was ingested. :meth:`Inputs.views` registers the tables on an engine, either as they are now
(``known_day=None``) or as they were known at the end of a day: rows ingested on or before
it, in the version that was current then (superseded rows whose replacement came later).

In-memory tables (a mapping of table name to DataFrame, for notebooks and unit tests) are
written to a temporary folder first: one code path for both.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amplify_ml.datapack.contract import TABLES
from amplify_ml.errors import InvalidRequestError
from amplify_ml.features.cutoffs import epoch_day
from amplify_ml.features.engine import Engine
from amplify_ml.lake import Lake

LINEAGE = ("_ingested_at",)
SUPERSEDED = ("_superseded_at",)
ADDED_PARTNER = ("telemetry", "device_events")


def _columns(table: str, files: Sequence[Path]) -> list[str]:
    """Contract columns (and partner_id, lineage) present in ``files``, in contract order."""
    present: set[str] = set()
    for f in files:
        present |= set(pq.read_schema(f).names)
    want = list(TABLES[table].column_names)
    if table in ADDED_PARTNER:
        want.append("partner_id")
    want += [*LINEAGE, *SUPERSEDED]
    return [c for c in want if c in present]


@dataclass
class Inputs:
    """Files per table (current and superseded), packs and ingestion days."""

    current: dict[str, list[Path]]
    superseded: dict[str, list[Path]]
    packs: pd.DataFrame
    partners: list[str] | None
    source: str
    _tmp: str | None = None
    _columns: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the in-memory tables' folder goes at close, or when the inputs are collected
        if self._tmp:
            weakref.finalize(self, shutil.rmtree, self._tmp, True)

    @classmethod
    def from_lake(cls, lake: Lake, partners: Sequence[str] | None = None) -> Inputs:
        current = {t: lake.files(t, partners) for t in lake.tables()}
        current = {t: f for t, f in current.items() if f and t in TABLES}
        # older versions only of partners still readable (a withdrawn partner's are not)
        visible = list(partners) if partners is not None else lake.partners()
        superseded = {t: lake.files(t, visible, kind="superseded") for t in current}
        return cls(
            current=current,
            superseded={t: f for t, f in superseded.items() if f},
            packs=lake.packs(),
            partners=list(partners) if partners is not None else None,
            source=f"lake {lake.root}",
        )

    @classmethod
    def from_frames(
        cls, tables: Mapping[str, pd.DataFrame], partners: Sequence[str] | None = None
    ) -> Inputs:
        tmp = tempfile.mkdtemp(prefix="amplify-features-")
        current: dict[str, list[Path]] = {}
        for name, df in tables.items():
            if name not in TABLES:
                raise InvalidRequestError(
                    f"unknown table {name!r}: the contract v1 tables are {', '.join(TABLES)}"
                )
            if df is None or len(df.columns) == 0:
                continue
            df = df.copy()
            if name in ADDED_PARTNER and "partner_id" not in df.columns:
                raise InvalidRequestError(
                    f"table {name}: in-memory tables need the partner_id the lake adds to "
                    f"{' and '.join(ADDED_PARTNER)}"
                )
            if (
                partners is not None
                and "partner_id" in df.columns
                and name
                not in (
                    "products",
                    "market",
                )
            ):
                df = df[df["partner_id"].isin(list(partners))]
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(_to_arrow(name, df), path)
            current[name] = [path]
        return cls(
            current=current,
            superseded={},
            packs=pd.DataFrame(columns=["pack_id", "source", "manifest_sha256", "ingested_at"]),
            partners=list(partners) if partners is not None else None,
            source="in-memory tables",
            _tmp=tmp,
        )

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def tables(self) -> list[str]:
        return [t for t in TABLES if t in self.current]

    def ingest_days(self) -> list[int]:
        """Distinct UTC days data was ingested on (from the packs, or the tables' lineage)."""
        if len(self.packs) and "ingested_at" in self.packs:
            ts = pd.to_datetime(self.packs["ingested_at"], utc=True)
            return sorted({epoch_day(t.date()) for t in ts})
        days: set[int] = set()
        for _t, files in self.current.items():
            for f in files:
                if "_ingested_at" in pq.read_schema(f).names:
                    col = pq.read_table(f, columns=["_ingested_at"]).column(0)
                    for v in col.unique().to_pylist():
                        if v is not None:
                            days.add(epoch_day(pd.Timestamp(v).date()))
        return sorted(days)

    def has_lineage(self) -> bool:
        return all("_ingested_at" in self.columns(t, "current") for t in self.current)

    def columns(self, table: str, kind: str) -> list[str]:
        key = (table, kind)
        if key not in self._columns:
            files = self.current[table] if kind == "current" else self.superseded[table]
            self._columns[key] = _columns(table, files)
        return self._columns[key]

    def register(self, engine: Engine) -> dict[str, tuple[ir.Table, ir.Table | None]]:
        """Register every table (current, superseded) on ``engine``."""
        out: dict[str, tuple[ir.Table, ir.Table | None]] = {}
        for t in self.tables:
            stamps = [c.name for c in TABLES[t].columns if c.type == "timestamp"]
            stamps += [*LINEAGE, *SUPERSEDED]
            cur = engine.register_parquet(t, self.current[t], self.columns(t, "current"), stamps)
            sup = None
            if t in self.superseded:
                sup = engine.register_parquet(
                    t + "__superseded", self.superseded[t], self.columns(t, "superseded"), stamps
                )
            if t == "partners" and self.partners is not None:
                cur = cur.filter(cur.partner_id.isin(self.partners))
                if sup is not None:
                    sup = sup.filter(sup.partner_id.isin(self.partners))
            out[t] = (cur, sup)
        return out


def known_views(
    registered: Mapping[str, tuple[ir.Table, ir.Table | None]], known_day: int | None
) -> dict[str, ir.Table]:
    """The tables as they are now (``known_day`` None), or as known at the end of that day."""
    out: dict[str, ir.Table] = {}
    for t, (cur, sup) in registered.items():
        cols = [c for c in TABLES[t].column_names] + (["partner_id"] if t in ADDED_PARTNER else [])
        if known_day is None:
            out[t] = cur.select(*cols)
            continue
        if "_ingested_at" not in cur.columns:
            raise InvalidRequestError(
                f"as_known needs the _ingested_at of every row; table {t} has none "
                "(in-memory tables need an _ingested_at column)"
            )
        day = ibis.literal(known_day, type="int64")
        known = cur.filter(cur._ingested_at.date().epoch_days() <= day).select(*cols)
        if sup is not None:
            old = sup.filter(
                (sup._ingested_at.date().epoch_days() <= day)
                & (sup._superseded_at.date().epoch_days() > day)
            ).select(*cols)
            known = known.union(old)
        out[t] = known
    return out


def _to_arrow(table: str, df: pd.DataFrame) -> pa.Table:
    """An in-memory table with contract types (dates as date32, timestamps in UTC)."""
    schema = TABLES[table]
    arrays, names = [], []
    for name in df.columns:
        s = df[name]
        col = next((c for c in schema.columns if c.name == name), None)
        if col is not None:
            typ = col.arrow_type
        elif name == "partner_id":
            typ = pa.string()
        elif name in ("_ingested_at", "_superseded_at"):
            typ = pa.timestamp("us", tz="UTC")
        else:
            arrays.append(pa.array(s, from_pandas=True))
            names.append(name)
            continue
        if col is not None and col.type == "date":
            values = [None if _isna(v) else pd.Timestamp(v).date() for v in s.tolist()]
            arr = pa.array(values, type=pa.date32())
        elif typ == pa.timestamp("us", tz="UTC"):
            ts = pd.to_datetime(s, utc=True)
            arr = pa.array(ts, type=typ, from_pandas=True)
        else:
            arr = pa.array(s.astype(object).where(s.notna(), None).tolist(), type=typ)
        arrays.append(arr)
        names.append(name)
    return pa.table(arrays, names=names)


def _isna(v: object) -> bool:
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, str):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
