"""Training sets and feature frames: spine x builders (+ label), point in time, on an engine.

:func:`training_set` returns a pandas DataFrame (keys, ``cutoff``, features, label) and its
:class:`FeatureSetMeta`; :func:`feature_frame` the same features without a label for one
as-of date (scoring). :class:`FeatureBuilder` keeps one engine and the shared intermediates
(e.g. the telemetry increments) across several builds, which is what the CLI and the
benchmark use to build the four training sets.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amplify_ml.errors import AmplifyError, InvalidRequestError, MissingTableError
from amplify_ml.features import builders as _builders  # noqa: F401 - registers the functions
from amplify_ml.features.cutoffs import DateLike, as_cutoffs, epoch_day, to_date
from amplify_ml.features.engine import Assembly, Engine, EngineName, Part, make_engine
from amplify_ml.features.graph import (
    REGISTRY,
    Resolver,
    depends_on_cutoffs,
    drop_day_grid,
    register_cutoffs,
    required_tables,
)
from amplify_ml.features.inputs import Inputs, known_views
from amplify_ml.features.spec import FeatureSetSpec, load_spec, resolve_horizon
from amplify_ml.lake import Lake

LakeLike = Lake | Mapping[str, pd.DataFrame]
_STR = pd.StringDtype("pyarrow", na_value=np.nan)
_STRINGS = {pa.string(): _STR, pa.large_string(): _STR, pa.string_view(): _STR}
_ZEROS: dict[str, bool | int | float] = {"bool": False, "int": 0, "float": 0.0}
ZERO_FILL = re.compile(r"(_count|_sum|_distinct)(_|$)")
BOOL = re.compile(r"^(is|has)_")


_NOTHING_KNOWN = -(10**6)


class FeatureWarning(UserWarning):
    """A training set was built, but degraded (a builder skipped, labels incomplete)."""


@dataclass
class FeatureSetMeta:
    """What a training set (or feature frame) is and where it came from."""

    model: str
    spec: dict[str, Any]
    kind: str
    engine: str
    as_known: bool
    cutoffs: list[str]
    horizon_days: int | None
    keys: list[str]
    features: list[str]
    labels: list[str]
    builders_used: list[dict[str, Any]]
    builders_skipped: list[dict[str, Any]]
    rows: int
    rows_per_cutoff: dict[str, int]
    positives: int | None
    positives_per_cutoff: dict[str, int] | None
    fingerprint: dict[str, Any]
    partners: list[str] | None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def feature_set_version(self) -> int:
        return int(self.spec["version"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    spec: FeatureSetSpec
    used: list[str]
    skipped: list[dict[str, Any]]


class FeatureBuilder:
    """One engine and lake view for several builds (shared intermediates are computed once).

    ``lake`` is a :class:`~amplify_ml.lake.Lake` or a mapping of table name to DataFrame
    (in-memory tables with the lake's columns). ``partners`` restricts every table to those
    partners' rows. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        lake: LakeLike,
        *,
        engine: EngineName | Engine = "duckdb",
        partners: Sequence[str] | None = None,
        spark: Any | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        if isinstance(lake, Lake):
            self.inputs = Inputs.from_lake(lake, partners)
        elif isinstance(lake, Mapping):
            self.inputs = Inputs.from_frames(lake, partners)
        else:
            raise InvalidRequestError(
                f"lake must be an amplify_ml.lake.Lake or a mapping of tables, not {type(lake)}"
            )
        self.engine, self._own_engine = make_engine(
            engine, memory_limit=memory_limit, threads=threads, spark=spark
        )
        self.partners = list(partners) if partners is not None else None
        self._registered = self.inputs.register(self.engine)
        self._views: dict[int | None, dict[str, ir.Table]] = {}
        self._cutoff_tables: dict[tuple[date, ...], ir.Table] = {}
        self._shared: dict[tuple[Any, ...], ir.Table] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FeatureBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for table in self._cutoff_tables.values():
            drop_day_grid(table)
        if self._own_engine:
            self.engine.close()
        else:
            Engine.close(self.engine)
        self.inputs.close()

    # -- public --------------------------------------------------------------------------------
    def training_set(
        self,
        model: str,
        *,
        cutoffs: Iterable[DateLike] | DateLike,
        horizon_days: int | None = None,
        as_known: bool = False,
        threshold_pct: float | None = None,
        spec: FeatureSetSpec | str | None = None,
    ) -> tuple[pd.DataFrame, FeatureSetMeta]:
        """Features and label per (entity, cutoff); see :func:`training_set`."""
        return self._build(
            model,
            as_cutoffs(cutoffs),
            labelled=True,
            horizon_days=horizon_days,
            as_known=as_known,
            threshold_pct=threshold_pct,
            spec=spec,
        )

    def feature_frame(
        self,
        model: str,
        *,
        as_of: DateLike,
        as_known: bool = False,
        threshold_pct: float | None = None,
        horizon_days: int | None = None,
        spec: FeatureSetSpec | str | None = None,
    ) -> tuple[pd.DataFrame, FeatureSetMeta]:
        """Features (no label) of the entities alive at ``as_of``; see :func:`feature_frame`."""
        return self._build(
            model,
            [to_date(as_of, what="as_of")],
            labelled=False,
            horizon_days=horizon_days,
            as_known=as_known,
            threshold_pct=threshold_pct,
            spec=spec,
        )

    # -- planning ------------------------------------------------------------------------------
    def plan(self, model: str, spec: FeatureSetSpec | str | None = None) -> _Plan:
        """Which builders run and which are skipped (and why) on this lake."""
        s = _spec(model, spec)
        present = set(self.inputs.tables)
        require_tables(model, present, self.partners, spec=s)
        used, skipped = [], []
        for b in s.builders:
            missing = sorted(required_tables(b.name) - present)
            if missing:
                skipped.append(
                    {
                        "builder": b.name,
                        "reason": f"table(s) {', '.join(missing)} absent",
                        "tables": missing,
                    }
                )
            else:
                used.append(b.name)
        return _Plan(s, used, skipped)

    # -- building ------------------------------------------------------------------------------
    def _views_for(self, known_day: int | None) -> dict[str, ir.Table]:
        if known_day not in self._views:
            self._views[known_day] = known_views(self._registered, known_day)
        return self._views[known_day]

    def _cutoffs_table(self, cutoffs: list[date]) -> ir.Table:
        key = tuple(cutoffs)
        if key not in self._cutoff_tables:
            n = len(self._cutoff_tables) + 1
            self._cutoff_tables[key] = register_cutoffs(self.engine, f"cutoffs_{n}", cutoffs)
        return self._cutoff_tables[key]

    def _resolver(
        self, known_day: int | None, cutoffs: list[date], settings: dict[str, dict[str, Any]]
    ) -> Resolver:
        """A resolver that reuses what this session computed for the same inputs."""
        ckey = tuple(cutoffs)
        r = Resolver(
            self._views_for(known_day),
            self._cutoffs_table(cutoffs),
            tuple(epoch_day(c) for c in cutoffs),
            settings,
            cache=self._materialize,
        )
        for (k, c, name, sett), t in self._shared.items():
            if k == known_day and c in (None, ckey) and sett == _freeze(settings.get(name, {})):
                r._memo[name] = t
        return r

    def _materialize(self, expr: ir.Table, label: str | None = None) -> ir.Table:
        if self.engine.is_cached(expr):
            return expr
        return self.engine.cache(expr, label)

    def _keep(
        self,
        known_day: int | None,
        cutoffs: list[date],
        r: Resolver,
        settings: dict[str, dict[str, Any]],
    ) -> None:
        """Remember nodes and builder outputs for later builds in this session."""
        for name, t in r._memo.items():
            fn = REGISTRY[name]
            if fn.kind not in ("node", "builder"):
                continue
            c = tuple(cutoffs) if depends_on_cutoffs(name) else None
            self._shared[(known_day, c, name, _freeze(settings.get(name, {})))] = t

    def _build(
        self,
        model: str,
        cutoffs: list[date],
        *,
        labelled: bool,
        horizon_days: int | None,
        as_known: bool,
        threshold_pct: float | None,
        spec: FeatureSetSpec | str | None,
    ) -> tuple[pd.DataFrame, FeatureSetMeta]:
        started = time.perf_counter()
        plan = self.plan(model, spec)
        s = plan.spec
        notes: list[str] = []
        for sk in plan.skipped:
            msg = f"{model}: builder {sk['builder']} skipped: {sk['reason']}"
            warnings.warn(msg, FeatureWarning, stacklevel=3)
            notes.append(msg)
        label_settings = dict(s.label_settings)
        entity_settings = dict(s.entity_settings)
        if horizon_days is not None:
            if int(horizon_days) < 1:
                raise InvalidRequestError(f"horizon_days must be at least 1, got {horizon_days}")
            label_settings["horizon_days"] = int(horizon_days)
        if threshold_pct is not None:
            if "threshold_pct" not in label_settings:
                raise InvalidRequestError(
                    f"threshold_pct applies to consumable_depletion, not {model}"
                )
            label_settings["threshold_pct"] = float(threshold_pct)
            entity_settings["threshold_pct"] = float(threshold_pct)
        horizon = int(label_settings["horizon_days"]) if labelled else None
        settings: dict[str, dict[str, Any]] = {
            b.name: resolve_horizon(dict(b.settings), int(label_settings["horizon_days"]))
            for b in s.builders
        }
        settings[s.entity] = entity_settings
        settings[s.label] = label_settings
        if labelled:
            notes += self._horizon_notes(model, cutoffs, horizon)

        groups = self._epochs(cutoffs) if as_known else {None: cutoffs}
        if _NOTHING_KNOWN in groups:
            msg = (
                f"{model}: as_known: nothing had been ingested by the end of "
                f"{', '.join(str(c) for c in groups[_NOTHING_KNOWN])}; those cutoffs have no rows"
            )
            warnings.warn(msg, FeatureWarning, stacklevel=3)
            notes.append(msg)
        frames: list[pd.DataFrame] = []
        kinds: dict[str, str] = {}
        filled: set[str] = set()
        for known_day, cs in groups.items():
            assembly, kinds, filled = self._expr(plan, cs, known_day, settings, labelled)
            arrow = self.engine.assemble(assembly)
            # what the engine keeps for later builds need not hold memory while the rows
            # become a frame and a model learns from them
            self.engine.release()
            frames.append(arrow.to_pandas(self_destruct=True, types_mapper=_STRINGS.get))
            del arrow
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        keys = list(REGISTRY[s.entity].keys)
        label_cols = [c for c in kinds if c in ("label", "censored")]
        features = [c for c in kinds if c not in (*keys, "cutoff", *label_cols)]
        df = _finalize(df, keys, features, label_cols, kinds, filled, sort=len(frames) > 1)
        meta = self._meta(
            plan, df, cutoffs, horizon, as_known, keys, features, label_cols, notes, settings
        )
        meta.seconds = round(time.perf_counter() - started, 3)
        return df, meta

    def _epochs(self, cutoffs: list[date]) -> dict[int | None, list[date]]:
        """Cutoffs grouped by what was known at their end (the ingestion days on or before)."""
        if not self.inputs.has_lineage():
            raise InvalidRequestError(
                "as_known needs _ingested_at on every table; these tables come without it"
            )
        days = self.inputs.ingest_days()
        groups: dict[int | None, list[date]] = {}
        for c in cutoffs:
            cd = epoch_day(c)
            known = [d for d in days if d <= cd]
            key = known[-1] if known else _NOTHING_KNOWN
            groups.setdefault(key, []).append(c)
        return groups

    def _horizon_notes(self, model: str, cutoffs: list[date], horizon: int | None) -> list[str]:
        packs = self.inputs.packs
        if horizon is None or not len(packs) or "period_end" not in packs:
            return []
        end = max(date.fromisoformat(str(p)) for p in packs["period_end"].dropna())
        late = [c for c in cutoffs if c + timedelta(days=horizon) > end]
        if not late:
            return []
        msg = (
            f"{model}: the label window of cutoff(s) {', '.join(str(c) for c in late)} ends after "
            f"the data ({end}); their labels only see rows up to {end}"
        )
        warnings.warn(msg, FeatureWarning, stacklevel=4)
        return [msg]

    def _expr(
        self,
        plan: _Plan,
        cutoffs: list[date],
        known_day: int | None,
        settings: dict[str, dict[str, Any]],
        labelled: bool,
    ) -> tuple[Assembly, dict[str, str], set[str]]:
        s = plan.spec
        r = self._resolver(known_day, cutoffs, settings)
        # every part is materialised, then put together by the engine (see Engine.assemble):
        # building the join of a hundred columns as an Ibis expression costs more than running it
        spine = self._materialize(r.get(s.entity), s.entity)
        keys = list(REGISTRY[s.entity].keys)
        on = [*keys, "cutoff"]
        kinds: dict[str, str] = {k: "key" for k in keys}
        kinds["cutoff"] = "cutoff"
        filled: set[str] = set()
        parts: list[Part] = []
        for name in plan.used:
            fn = REGISTRY[name]
            # each builder's rows are computed on their own: one big plan over all of them
            # optimises worse on DuckDB and plans slowly on Spark
            f = self._materialize(r.get(name), name)
            r._memo[name] = f
            bon = (*fn.keys, "cutoff")
            cols = [c for c in f.columns if c not in bon]
            dup = [c for c in cols if c in kinds]
            if dup:
                raise AmplifyError(f"builder {name} repeats column(s) {dup} of another builder")
            fill: dict[str, bool | int | float] = {}
            for c in cols:
                kinds[c] = _kind(f[c].type())
                if fn.zero_fill and (ZERO_FILL.search(c) or BOOL.match(c)):
                    filled.add(c)
                    zero = _ZEROS.get(kinds[c])
                    if zero is not None:  # entities without rows: none happened
                        fill[c] = zero
            parts.append(Part(f, bon, tuple(cols), fill))
        self._keep(known_day, cutoffs, r, settings)
        if labelled:
            truth = self._resolver(None, cutoffs, settings)
            truth.extra = {"spine": spine}
            lab = self._materialize(truth.get(s.label), s.label)
            self._keep(None, cutoffs, truth, settings)
            lcols = [c for c in lab.columns if c not in on]
            parts.append(Part(lab, tuple(on), tuple(lcols), inner=True))
            for c in lcols:
                kinds[c] = _kind(lab[c].type())
        columns = tuple(c for c in spine.columns if c != "cday")
        return Assembly(spine, columns, tuple(parts), tuple(on)), kinds, filled

    def _meta(
        self,
        plan: _Plan,
        df: pd.DataFrame,
        cutoffs: list[date],
        horizon: int | None,
        as_known: bool,
        keys: list[str],
        features: list[str],
        label_cols: list[str],
        notes: list[str],
        settings: dict[str, dict[str, Any]],
    ) -> FeatureSetMeta:
        s = plan.spec

        def per_cutoff(values: pd.Series) -> dict[str, int]:
            sums = values.groupby(df["cutoff"]).sum()
            return {pd.Timestamp(k).date().isoformat(): int(v) for k, v in sums.items()}

        counts = per_cutoff(pd.Series(1, index=df.index))
        positives = positives_per = None
        if "label" in df and s.label != "label_days_to_threshold":
            positives = int(df["label"].sum())
            positives_per = per_cutoff(df["label"])
        elif "censored" in df:
            positives = int((~df["censored"]).sum())
            positives_per = per_cutoff(~df["censored"])
        used = []
        for name in plan.used:
            fn = REGISTRY[name]
            used.append(
                {
                    "builder": name,
                    "doc": fn.doc,
                    "tables": sorted(required_tables(name)),
                    "settings": {
                        k: list(v) if isinstance(v, tuple) else v for k, v in settings[name].items()
                    },
                }
            )
        packs = self.inputs.packs
        fingerprint = {
            "source": self.inputs.source,
            "packs": [
                {
                    "pack_id": str(p["pack_id"]),
                    "source": str(p["source"]),
                    "manifest_sha256": str(p["manifest_sha256"]),
                    "ingested_at": str(p["ingested_at"]),
                }
                for _, p in packs.iterrows()
            ],
            "tables": self.inputs.tables,
        }
        return FeatureSetMeta(
            model=s.model,
            spec=s.to_dict(),
            kind="training_set" if label_cols else "feature_frame",
            engine=self.engine.name,
            as_known=as_known,
            cutoffs=[c.isoformat() for c in cutoffs],
            horizon_days=horizon,
            keys=keys,
            features=features,
            labels=label_cols,
            builders_used=used,
            builders_skipped=plan.skipped,
            rows=len(df),
            rows_per_cutoff={c.isoformat(): counts.get(c.isoformat(), 0) for c in cutoffs},
            positives=positives,
            positives_per_cutoff=positives_per,
            fingerprint=fingerprint,
            partners=self.partners,
            notes=notes,
        )


def tables_needed(model: str, spec: FeatureSetSpec | str | None = None) -> list[str]:
    """The lake tables without which ``model`` cannot be trained or scored (its entities, its
    label and what its spec names), sorted."""
    s = _spec(model, spec)
    return sorted({*s.needs, *required_tables(s.entity), *required_tables(s.label)})


def require_tables(
    model: str,
    present: Iterable[str],
    partners: Sequence[str] | None = None,
    *,
    spec: FeatureSetSpec | str | None = None,
) -> None:
    """:class:`MissingTableError` naming the first of :func:`tables_needed` not ``present``."""
    have = set(present)
    for t in tables_needed(model, spec):
        if t not in have:
            raise MissingTableError(
                f"{model} needs the table {t}, which is not in the lake"
                + (f" for partners {', '.join(partners)}" if partners else "")
                + f"; ingest a pack holding {t}, or build another model"
            )


def _spec(model: str, spec: FeatureSetSpec | str | None) -> FeatureSetSpec:
    if isinstance(spec, FeatureSetSpec):
        if spec.model != model:
            raise InvalidRequestError(f"spec is for {spec.model}, not {model}")
        return spec
    if isinstance(spec, str):
        return load_spec(model, path=spec)
    return load_spec(model)


def _freeze(settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in settings.items()))


def _kind(t: Any) -> str:
    if t.is_boolean():
        return "bool"
    if t.is_integer():
        return "int"
    if t.is_floating() or t.is_decimal():
        return "float"
    if t.is_string():
        return "str"
    if t.is_date():
        return "date"
    return "other"


def _finalize(
    df: pd.DataFrame,
    keys: list[str],
    features: list[str],
    labels: list[str],
    kinds: dict[str, str],
    filled: set[str],
    *,
    sort: bool = True,
) -> pd.DataFrame:
    """Stable column order, dtypes and row order (keys, then cutoff), the same on every engine.

    Rows come sorted from the engine (binary string order, as Python's) unless ``sort``.
    Columns are converted one at a time in place, so a large set is not held twice."""
    res = df
    for k in keys:
        if str(res[k].dtype) != "str":
            res[k] = res[k].astype(_STR)
    res["cutoff"] = pd.to_datetime(res["cutoff"]).astype("datetime64[ns]")
    for c in [*features, *labels]:
        s = res[c]
        kind = kinds[c]
        if kind == "str":
            if str(s.dtype) != "str":
                res[c] = s.astype(_STR)
        elif kind == "bool":
            if s.dtype != bool:
                res[c] = s.astype(object).where(s.notna(), False).astype(bool)
        elif kind == "int" and (c in filled or c == "label"):
            if s.dtype != "int64":
                res[c] = pd.to_numeric(s).fillna(0).astype("int64")
        elif kind in ("int", "float"):
            if s.dtype != "float64":
                s = pd.to_numeric(s).astype("float64")
            res[c] = s.fillna(0.0) if c in filled and s.hasnans else s
    res = res[[*keys, "cutoff", *features, *labels]]
    if sort:
        res = res.sort_values([*keys, "cutoff"], kind="stable").reset_index(drop=True)
    if _adjacent_duplicates(res, [*keys, "cutoff"]):
        raise AmplifyError(
            "the training set has several rows for one (entity, cutoff); this is a bug in a "
            "builder of amplify_ml.features: please report it with the model name"
        )
    return res


def _adjacent_duplicates(df: pd.DataFrame, cols: list[str]) -> bool:
    """Whether two consecutive rows share ``cols`` (the frame is sorted by them): a linear
    check instead of hashing every key of a million-row frame."""
    if len(df) < 2:
        return False
    same = np.ones(len(df) - 1, dtype=bool)
    for c in cols:
        v = df[c].to_numpy()
        same &= v[1:] == v[:-1]
    return bool(same.any())


# -- module-level entry points -------------------------------------------------------------------


def write_training_set(df: pd.DataFrame, meta: FeatureSetMeta, path: str | Path) -> Path:
    """Write a training set (or feature frame) as Parquet, its metadata inside the file (key
    ``amplify.meta``) and beside it as ``<name>.meta.json``. Returns the Parquet path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta.to_dict(), default=str, indent=1)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"amplify.meta": text.encode()}
    )
    pq.write_table(table, path)
    path.with_name(path.stem + ".meta.json").write_text(text + "\n")
    return path


def read_training_set(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A training set written by :func:`write_training_set`, with its metadata as a dict."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"amplify.meta", b"{}"))
    return table.to_pandas(types_mapper=_STRINGS.get), meta


def training_set(
    model: str,
    lake: LakeLike,
    *,
    cutoffs: Iterable[DateLike] | DateLike,
    horizon_days: int | None = None,
    as_known: bool = False,
    partners: Sequence[str] | None = None,
    engine: EngineName | Engine = "duckdb",
    spark: Any | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    threshold_pct: float | None = None,
    spec: FeatureSetSpec | str | None = None,
) -> tuple[pd.DataFrame, FeatureSetMeta]:
    """The training set of ``model``: one row per (entity alive at a cutoff, cutoff).

    Columns: the entity keys, ``cutoff``, the features of the model's feature-set spec, and
    the label (``label``; for consumable_depletion also ``censored``). Features use rows dated
    on or before the cutoff only; labels rows dated in ``(cutoff, cutoff + horizon_days]``.

    ``as_known``: features also drop rows ingested after the end of the cutoff day (and use
    the version of a row that was current then); labels use the lake as it is now.
    ``horizon_days`` defaults per model (propensity 90, refresh 180, failure 30, depletion
    window 180); ``threshold_pct`` (depletion, default 10). ``partners`` restricts to those
    partners' rows. ``engine``: "duckdb" (default, ``memory_limit`` caps it; it spills past
    it) or "spark" (``spark`` = a session; a local one is created if not given).

    Raises :class:`~amplify_ml.errors.MissingTableError` when a table the model needs is
    absent; a builder whose table is absent is skipped with a :class:`FeatureWarning` and a
    note in the metadata.
    """
    with FeatureBuilder(
        lake,
        engine=engine,
        partners=partners,
        spark=spark,
        memory_limit=memory_limit,
        threads=threads,
    ) as fb:
        return fb.training_set(
            model,
            cutoffs=cutoffs,
            horizon_days=horizon_days,
            as_known=as_known,
            threshold_pct=threshold_pct,
            spec=spec,
        )


def feature_frame(
    model: str,
    lake: LakeLike,
    *,
    as_of: DateLike,
    as_known: bool = False,
    partners: Sequence[str] | None = None,
    engine: EngineName | Engine = "duckdb",
    spark: Any | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    threshold_pct: float | None = None,
    horizon_days: int | None = None,
    spec: FeatureSetSpec | str | None = None,
) -> tuple[pd.DataFrame, FeatureSetMeta]:
    """The features of ``model`` (no label) for the entities alive at ``as_of``, for scoring.

    Same columns as :func:`training_set` without the label columns, ``cutoff`` = ``as_of``.
    ``horizon_days``: the horizon the model was trained with, for the builders whose horizon
    follows the label's (``horizon = "label"`` in the feature set); the spec's by default.
    """
    with FeatureBuilder(
        lake,
        engine=engine,
        partners=partners,
        spark=spark,
        memory_limit=memory_limit,
        threads=threads,
    ) as fb:
        return fb.feature_frame(
            model,
            as_of=as_of,
            as_known=as_known,
            threshold_pct=threshold_pct,
            horizon_days=horizon_days,
            spec=spec,
        )
