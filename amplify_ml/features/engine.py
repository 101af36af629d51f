"""Engines the builders run on: DuckDB in process (default) or Spark, both through Ibis.

An :class:`Engine` registers Parquet files as views, materialises shared intermediates
(:meth:`Engine.cache`) and brings results back as Arrow/pandas. Builders never see the
engine: they take and return Ibis tables, so the same code runs on both.

DuckDB runs with a memory cap and a private spill folder (it spills to disk past the cap).
Spark takes a session (``spark=``) or creates a local one with :func:`spark_session`; the
session's time zone must be UTC, as timestamps count by their UTC date.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
import warnings
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.operations as ops
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from amplify_ml.errors import ConfigError, InvalidRequestError

EngineName = Literal["duckdb", "spark"]
DEFAULT_MEMORY_LIMIT = "4GB"
RELEASE_KEEP = "1GB"
"""What :meth:`Engine.release` leaves in memory of the tables the engine keeps."""


@contextmanager
def _quiet() -> Any:
    """Ibis 12 calls a DuckDB method that DuckDB 1.5 deprecates; not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*fetch_arrow_table", category=DeprecationWarning
        )
        yield


@contextmanager
def _quiet_spark() -> Any:
    """PySpark 4.0 warns about pandas 3 while converting (it works, DESIGN.md); not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"pyspark\..*")
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*copy keyword.*")
        warnings.filterwarnings("ignore", message=r".*copy keyword is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*future\.infer_string.*")
        yield


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Part:
    """A table joined to the spine of an :class:`Assembly` on ``on``, for its ``columns``.

    ``fill``: columns whose nulls (spine rows without a row here) read as the value given
    (``0``, ``0.0``, ``False``). ``inner``: spine rows without a row here are dropped.
    """

    table: ibis.Table
    on: tuple[str, ...]
    columns: tuple[str, ...]
    fill: Mapping[str, bool | int | float] = field(default_factory=dict)
    inner: bool = False


@dataclass(frozen=True)
class Assembly:
    """A training set put together: the spine's ``columns`` and each part's, one row per
    spine row (left joins; an ``inner`` part drops rows), sorted by ``order``."""

    spine: ibis.Table
    columns: tuple[str, ...]
    parts: tuple[Part, ...]
    order: tuple[str, ...]

    def aliases(self) -> list[str]:
        """The names of the spine (``s``) and of each part in the SQL, in that order."""
        return ["s", *(f"b{i}" for i in range(len(self.parts)))]

    def from_sql(self, engine: Engine) -> str:
        """``FROM`` and ``JOIN`` clauses, with the tables named as :meth:`aliases` says."""
        q = engine.quote
        s, *names = self.aliases()
        sql = f"FROM {engine.table_name(self.spine)} AS {s}"
        for b, p in zip(names, self.parts, strict=True):
            on = " AND ".join(f"{s}.{q(k)} = {b}.{q(k)}" for k in p.on)
            kind = "JOIN" if p.inner else "LEFT JOIN"
            sql += f" {kind} {engine.table_name(p.table)} AS {b} ON {on}"
        return sql

    def order_sql(self, engine: Engine) -> str:
        s = self.aliases()[0]
        return "ORDER BY " + ", ".join(f"{s}.{engine.quote(k)}" for k in self.order)

    def sql(self, engine: Engine) -> str:
        """The whole assembly as one SELECT."""
        q = engine.quote
        s, *names = self.aliases()
        picked = [f"{s}.{q(c)}" for c in self.columns]
        for b, p in zip(names, self.parts, strict=True):
            for c in p.columns:
                col = f"{b}.{q(c)}"
                if c in p.fill:
                    col = f"COALESCE({col}, {_sql_literal(p.fill[c])})"
                picked.append(f"{col} AS {q(c)}")
        return f"SELECT {', '.join(picked)} {self.from_sql(engine)} {self.order_sql(engine)}"


def _sql_literal(value: bool | int | float) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value) if "." in repr(value) else f"{value!r}.0"
    return str(int(value))


class Engine:
    """Common interface of the two engines (see the module docstring)."""

    name: EngineName
    con: Any

    def __init__(self) -> None:
        self._prefix = "amp_" + uuid.uuid4().hex[:8] + "_"
        self._n_cached = 0
        self._cached_names: set[str] = set()

    def view_name(self, name: str) -> str:
        return self._prefix + name

    def register_parquet(
        self,
        name: str,
        files: Sequence[Path],
        columns: Sequence[str],
        timestamps: Sequence[str] = (),
    ) -> ibis.Table:
        """A view ``name`` over ``files`` (schemas unioned by column name), ``columns`` only;
        ``timestamps`` are UTC timestamp columns."""
        raise NotImplementedError

    def register_frame(self, name: str, df: pd.DataFrame) -> ibis.Table:
        """A small table (the cutoffs) as a named table on the engine."""
        raise NotImplementedError

    def cache(self, expr: ibis.Table, label: str | None = None) -> ibis.Table:
        """``expr`` computed once and kept (a temp table, or a Spark checkpoint); ``label``
        (what it is) names it in errors."""
        raise NotImplementedError

    def _cached_name(self) -> str:
        """A new name for a table :meth:`cache` makes (and :meth:`is_cached` knows)."""
        self._n_cached += 1
        name = self.view_name(f"cached_{self._n_cached}")
        self._cached_names.add(name)
        return name

    def sync(self) -> None:
        """Wait for work :meth:`cache` queued (none on this engine)."""

    def is_cached(self, expr: ibis.Table) -> bool:
        """Whether ``expr`` is a table :meth:`cache` made."""
        op = expr.op()
        return type(op).__name__ == "DatabaseTable" and op.name in self._cached_names

    def to_arrow(self, expr: ibis.Table) -> pa.Table:
        with _quiet():
            return self.con.to_pyarrow(expr)

    def quote(self, name: str) -> str:
        """``name`` as a quoted SQL identifier of this engine."""
        return '"' + name.replace('"', '""') + '"'

    def table_name(self, table: ibis.Table) -> str:
        """The quoted name of a registered or cached table, for hand-written SQL."""
        op = table.op()
        if not hasattr(op, "name") or type(op).__name__ not in ("DatabaseTable", "CachedTable"):
            raise TypeError(f"not a named table: {type(op).__name__}")
        return self.quote(op.name)

    def sql_to_arrow(self, sql: str) -> pa.Table:
        """The result of a SELECT in this engine's dialect."""
        return self.con.con.sql(sql).to_arrow_table()

    def assemble(self, assembly: Assembly) -> pa.Table:
        """The rows of ``assembly`` as Arrow (one SELECT joining every part)."""
        return self.sql_to_arrow(assembly.sql(self))

    def release(self, keep: str = RELEASE_KEEP) -> None:
        """Give back memory the engine holds between builds, keeping about ``keep`` of it
        (nothing to do on this engine)."""

    def close(self) -> None:
        """Drop what this engine created (subclasses)."""


def _duckdb_compiler() -> Any:
    """Ibis's DuckDB compiler, with ``argmax``/``argmin`` as DuckDB's ``arg_max_null`` and
    ``arg_min_null``: the value on the row with the greatest (least) key, rows whose key is
    null left out, as Spark's ``max_by``/``min_by`` do.

    Ibis writes ``FIRST(value ORDER BY key DESC)``, which DuckDB runs by building a sort key
    for every row: a third of the time of the aggregations that pick the latest reading
    (supply levels, health, page counters). The two differ only for a group whose keys are all
    null: null here (and on Spark), the value of one of those rows there."""
    from ibis.backends.sql.compilers.duckdb import DuckDBCompiler

    class Compiler(DuckDBCompiler):
        def visit_ArgMax(self, op: Any, *, arg: Any, key: Any, where: Any) -> Any:
            return self.agg.arg_max_null(arg, key, where=where)

        def visit_ArgMin(self, op: Any, *, arg: Any, key: Any, where: Any) -> Any:
            return self.agg.arg_min_null(arg, key, where=where)

    return Compiler()


class DuckDBEngine(Engine):
    """DuckDB in process, with a memory cap and its own spill folder."""

    name: EngineName = "duckdb"

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None) -> None:
        super().__init__()
        self._temp_tables: list[str] = []
        self._tmp = tempfile.mkdtemp(prefix="amplify-duckdb-")
        # removed at close, or when an engine nobody closed is collected (or at exit)
        self._remove_tmp = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.memory_limit = memory_limit or DEFAULT_MEMORY_LIMIT
        config: dict[str, Any] = {
            "memory_limit": self.memory_limit,
            "temp_directory": self._tmp,
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = int(threads)
        self.con = ibis.duckdb.connect(**config)
        self.con.compiler = _duckdb_compiler()  # this connection's only (see there)
        # cached tables are created by one thread, in order, while the caller compiles the
        # next ones (Ibis compiles in Python; DuckDB runs its queries without the GIL)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amplify-duckdb")
        self._pending: deque[Future[Any]] = deque()
        self.con.raw_sql("SET TimeZone = 'UTC'")
        # off already in Jupyter, where DuckDB refuses to change it without ipywidgets
        if self.con.raw_sql("SELECT current_setting('enable_progress_bar')").fetchone()[0]:
            self.con.raw_sql("SET enable_progress_bar = false")

    def _create(self, name: str, sql: str, label: str) -> None:
        try:
            self.con.con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
        except Exception as e:
            e.add_note(f"while computing {label} on DuckDB")
            raise

    def sync(self) -> None:
        """Wait until every queued statement has run; the first failure is raised (and the
        statements after it, which may read what it did not create, are dropped)."""
        while self._pending:
            fut = self._pending.popleft()
            try:
                fut.result()
            except BaseException:
                for rest in self._pending:
                    rest.cancel()
                for rest in self._pending:
                    with suppress(BaseException):
                        rest.result()
                self._pending.clear()
                raise

    def register_parquet(
        self,
        name: str,
        files: Sequence[Path],
        columns: Sequence[str],
        timestamps: Sequence[str] = (),
    ) -> ibis.Table:
        self.sync()
        view = self.view_name(name)
        paths = "[" + ", ".join(_sql_str(str(p)) for p in files) + "]"
        # UTC timestamps as plain timestamps: the same instants, but dates and day numbers
        # come without a time-zone conversion per row (twice as fast on telemetry)
        cols = ", ".join(
            f'make_timestamp(epoch_us("{c}")) AS "{c}"' if c in timestamps else f'"{c}"'
            for c in columns
        )
        self.con.raw_sql(
            f'CREATE OR REPLACE TEMP VIEW "{view}" AS SELECT {cols} FROM read_parquet({paths}, '
            "union_by_name = true, hive_partitioning = false)"
        )
        with _quiet():
            return self.con.table(view)

    def register_frame(self, name: str, df: pd.DataFrame) -> ibis.Table:
        self.sync()
        view = self.view_name(name)
        data = pa.Table.from_pandas(df, preserve_index=False)
        with _quiet():
            return self.con.create_table(view, data, temp=True, overwrite=True)

    def cache(self, expr: ibis.Table, label: str | None = None) -> ibis.Table:
        """``expr`` as a temp table, by one CREATE TABLE AS (Ibis's own cache creates, inserts
        and re-reads the schema: a tenth of the features' build time on the small world).

        The statement is queued: it runs on the engine's thread while the caller goes on, and
        its failure is raised by the next call that needs results (:meth:`sql_to_arrow`,
        :meth:`to_arrow`, :meth:`sync`), with ``label`` in the message."""
        name = self._cached_name()
        with _quiet():
            sql = self.con.compile(expr)
        schema = expr.schema()
        self._temp_tables.append(name)
        self._pending.append(self._worker.submit(self._create, name, sql, label or name))
        # the table as the expression's schema says (no catalog lookup, which would wait)
        return ops.DatabaseTable(
            name=name, schema=schema, source=self.con, namespace=ops.Namespace()
        ).to_expr()

    def to_arrow(self, expr: ibis.Table) -> pa.Table:
        self.sync()
        return super().to_arrow(expr)

    def sql_to_arrow(self, sql: str) -> pa.Table:
        self.sync()
        return super().sql_to_arrow(sql)

    def assemble(self, assembly: Assembly) -> pa.Table:
        """The rows of ``assembly``: DuckDB joins the keys only, giving for each spine row the
        row number of its row in every part; each part is then read once and its columns
        gathered by those numbers in Arrow. Carrying a hundred columns through a dozen joins
        and the final sort costs twice as much (the joins themselves are a fifth of it)."""
        self.sync()
        con = self.con.con
        tables = [assembly.spine, *(p.table for p in assembly.parts)]
        rows = ", ".join(f'{a}.rowid AS "_r{i}"' for i, a in enumerate(assembly.aliases()))
        where = con.sql(
            f"SELECT {rows} {assembly.from_sql(self)} {assembly.order_sql(self)}"
        ).to_arrow_table()
        picks = [(assembly.columns, {}), *((p.columns, p.fill) for p in assembly.parts)]
        out: dict[str, pa.ChunkedArray] = {}
        for i, (table, (columns, fill)) in enumerate(zip(tables, picks, strict=True)):
            if not columns:
                continue
            cols = ", ".join(self.quote(c) for c in columns)
            data = con.sql(
                f'SELECT rowid AS "_rowid", {cols} FROM {self.table_name(table)}'
            ).to_arrow_table()
            taken = data.drop_columns("_rowid").take(
                _positions(data.column("_rowid"), where.column(i))
            )
            for c in columns:
                col = taken.column(c)
                out[c] = pc.fill_null(col, fill[c]) if c in fill else col
        return pa.table(out)

    def release(self, keep: str = RELEASE_KEEP) -> None:
        """Spill the cached tables beyond ``keep`` to the engine's temp folder, then restore
        the cap. DuckDB keeps what it computed in memory up to its cap and would hold it
        through a model's fit, which needs that memory more; a later build reads back what
        it reuses. If DuckDB cannot spill (a table in use), the memory stays where it is:
        nothing is lost either way."""
        import duckdb

        self.sync()
        con = self.con.con
        try:
            con.execute(f"SET memory_limit = {_sql_str(keep)}")
        except duckdb.OutOfMemoryException:
            pass  # it spilled what it could; the rest stays in memory until the next release
        finally:
            con.execute(f"SET memory_limit = {_sql_str(self.memory_limit)}")

    def close(self) -> None:
        # a failure nobody asked results of (or that was raised already) does not stop the close
        with suppress(Exception):
            self.sync()
        self._worker.shutdown(wait=True)
        super().close()
        for name in self._temp_tables:
            with suppress(Exception):
                self.con.con.execute(f'DROP TABLE IF EXISTS "{name}"')
        self._temp_tables.clear()
        try:
            self.con.disconnect()
        finally:
            self._remove_tmp()


def _positions(rowids: pa.ChunkedArray, wanted: pa.ChunkedArray) -> pa.ChunkedArray:
    """Where the rows numbered ``wanted`` (DuckDB row ids; null: none) are in a table read
    with its row ids ``rowids`` (in whatever order the scan gave them)."""
    ids = rowids.to_numpy()
    n = len(ids)
    if n and ids[0] == 0 and ids[-1] == n - 1 and (n < 2 or bool((np.diff(ids) == 1).all())):
        return wanted
    pos = np.full(int(ids.max()) + 1 if n else 0, -1, dtype=np.int64)
    pos[ids] = np.arange(n, dtype=np.int64)
    return pc.take(pa.array(pos), wanted)


class SparkEngine(Engine):
    """Spark through Ibis's PySpark backend; lake files become temp views."""

    name: EngineName = "spark"

    def __init__(self, spark: Any | None = None) -> None:
        super().__init__()
        self.spark = spark if spark is not None else spark_session()
        tz = self.spark.conf.get("spark.sql.session.timeZone")
        if tz not in ("UTC", "Etc/UTC", "GMT", "Z", "+00:00"):
            raise ConfigError(
                f"the Spark session's time zone is {tz!r}; features count timestamps by their "
                "UTC date. Set spark.sql.session.timeZone=UTC on the session, or let "
                "amplify_ml create one (engine='spark' without spark=)"
            )
        self.con = ibis.pyspark.connect(self.spark)
        self._frames: list[Any] = []

    def cache(self, expr: ibis.Table, label: str | None = None) -> ibis.Table:
        """``expr`` computed now and kept without its lineage (a local checkpoint, memory
        then disk), as a temp view.

        A cached DataFrame keeps its whole plan, and a plan over cached tables carries
        theirs: the plans of the builders, which read their intermediates several times,
        grew until Spark spent minutes planning and printing them (the depletion features of
        the tiny world: 1,079 exchanges over 357 scans, then the driver out of memory
        printing the plan). A checkpoint's plan is a scan of its rows. ``label`` names the
        computation in an error."""
        from pyspark import StorageLevel

        name = self._cached_name()
        with _quiet(), _quiet_spark():
            sql = self.con.compile(expr)
            df = self.spark.sql(sql).localCheckpoint(
                eager=False, storageLevel=StorageLevel.MEMORY_AND_DISK
            )
            try:
                df.count()  # computed and kept now (the rows of a failed one freed)
            except Exception as e:
                _release_checkpoint(df)
                e.add_note(f"while computing {label or name} on Spark")
                raise
            df.createOrReplaceTempView(name)
            self._frames.append(df)
            return self.con.table(name)

    def register_parquet(
        self,
        name: str,
        files: Sequence[Path],
        columns: Sequence[str],
        timestamps: Sequence[str] = (),
    ) -> ibis.Table:
        view = self.view_name(name)
        df = self.spark.read.option("mergeSchema", "true").parquet(*[str(p) for p in files])
        df.select(*columns).createOrReplaceTempView(view)
        with _quiet_spark():
            return self.con.table(view)

    def register_frame(self, name: str, df: pd.DataFrame) -> ibis.Table:
        view = self.view_name(name)
        with _quiet_spark():
            sdf = self.spark.createDataFrame(df)
            sdf.createOrReplaceTempView(view)
            return self.con.table(view)

    def to_arrow(self, expr: ibis.Table) -> pa.Table:
        with _quiet_spark():
            return self.con.to_pyarrow(expr)

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def sql_to_arrow(self, sql: str) -> pa.Table:
        with _quiet_spark():
            return self.spark.sql(sql).toArrow()

    def close(self) -> None:
        super().close()
        for df in self._frames:
            _release_checkpoint(df)
        self._frames.clear()
        for name in [t.name for t in self.spark.catalog.listTables() if t.isTemporary]:
            if name.startswith(self._prefix):
                self.spark.catalog.dropTempView(name)


def _release_checkpoint(df: Any) -> None:
    """Free a local checkpoint's blocks (the DataFrame's own unpersist does not reach them;
    Spark's cleaner would, once the driver collects the DataFrame)."""
    with suppress(Exception):
        df._jdf.queryExecution().analyzed().rdd().unpersist(False)


def spark_session(
    master: str = "local[2]", *, shuffle_partitions: int = 4, driver_memory: str | None = None
) -> Any:
    """A local Spark session set up for the builders (UTC, no UI, loopback driver).

    ``driver_memory`` (local mode: the whole JVM; default ``$AMPLIFY_SPARK_DRIVER_MEMORY`` or
    4g) only applies when this call starts the JVM.

    In production, pass your own session (``spark=``) with ``spark.sql.session.timeZone=UTC``.
    Launching Spark here may need ``SPARK_LOCAL_IP=127.0.0.1`` in the environment.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "engine='spark' needs PySpark: install amplify-ml with the 'spark' extra "
            "(uv sync --extra spark)"
        ) from None
    # Python workers (spark_udf) run this interpreter, not whatever python3 is on the PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .config("spark.pyspark.python", sys.executable)
        .appName("amplify_ml.features")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        # Spark makes its (here unused) SQL warehouse folder in the working directory, which
        # is often a project's tree: keep it with the other temporary files
        .config(
            "spark.sql.warehouse.dir",
            str(Path(tempfile.gettempdir()) / f"amplify-spark-warehouse-{os.getuid()}"),
        )
        .config(
            "spark.driver.memory",
            driver_memory or os.environ.get("AMPLIFY_SPARK_DRIVER_MEMORY", "4g"),
        )
        .getOrCreate()
    )


def make_engine(
    engine: EngineName | Engine,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    spark: Any | None = None,
) -> tuple[Engine, bool]:
    """An engine by name (created here, to close after use) or the one given (kept open)."""
    if isinstance(engine, Engine):
        return engine, False
    if engine == "duckdb":
        return DuckDBEngine(memory_limit=memory_limit, threads=threads), True
    if engine == "spark":
        return SparkEngine(spark), True
    raise InvalidRequestError(f"unknown engine {engine!r}: use 'duckdb' (default) or 'spark'")
