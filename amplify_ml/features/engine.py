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
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.operations as ops
import pandas as pd
import pyarrow as pa

from amplify_ml.errors import ConfigError, InvalidRequestError

EngineName = Literal["duckdb", "spark"]
DEFAULT_MEMORY_LIMIT = "4GB"


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


class Engine:
    """Common interface of the two engines (see the module docstring)."""

    name: EngineName
    con: Any

    def __init__(self) -> None:
        self._prefix = "amp_" + uuid.uuid4().hex[:8] + "_"
        self._cached: list[ibis.Table] = []
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
        """``expr`` computed once and kept (a temp table, or a cached Spark DataFrame);
        ``label`` (what it is) names it in errors."""
        with _quiet(), _quiet_spark():
            cached = expr.cache()
        self._cached.append(cached)
        self._cached_names.add(cached.op().name)
        return cached

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

    def close(self) -> None:
        for t in self._cached:
            with suppress(Exception):
                t.release()
        self._cached.clear()


class DuckDBEngine(Engine):
    """DuckDB in process, with a memory cap and its own spill folder."""

    name: EngineName = "duckdb"

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None) -> None:
        super().__init__()
        self._n_tables = 0
        self._temp_tables: list[str] = []
        self._tmp = tempfile.mkdtemp(prefix="amplify-duckdb-")
        # removed at close, or when an engine nobody closed is collected (or at exit)
        self._remove_tmp = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        config: dict[str, Any] = {
            "memory_limit": memory_limit or DEFAULT_MEMORY_LIMIT,
            "temp_directory": self._tmp,
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = int(threads)
        self.con = ibis.duckdb.connect(**config)
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
        self._n_tables += 1
        name = self.view_name(f"cached_{self._n_tables}")
        with _quiet():
            sql = self.con.compile(expr)
        schema = expr.schema()
        self._temp_tables.append(name)
        self._cached_names.add(name)
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
        for name in [t.name for t in self.spark.catalog.listTables() if t.isTemporary]:
            if name.startswith(self._prefix):
                self.spark.catalog.dropTempView(name)


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
