"""What the API reads, cached: the lake's partners and accounts, score tables, computed lists.

- :class:`LakeView` knows the lake's snapshot (its ``CURRENT`` pointer) and caches what it
  derives from it: partners, each partner's account ids.
- :class:`ScoreTables` reads each model's latest score table once per file and indexes it by
  device id, so a device's risk is a dictionary lookup.
- :class:`ListCache` keeps recent lists (leads, fleet, benchmarks) under keys that include
  the snapshot, the score files and the champion versions they came from, so a new ingest, a
  new scoring run or a new champion yields a fresh list.

Each looks for changes on disk at most every ``recheck_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from amplify_ml.errors import LakeError, NotFoundError
from amplify_ml.lake import Lake

T = TypeVar("T")


class LakeView:
    """The workspace's lake, with what the API derives from its snapshot cached."""

    def __init__(self, lake: Lake, *, recheck_seconds: float = 2.0) -> None:
        self.lake = lake
        self.recheck_seconds = recheck_seconds
        self._snapshot: str | None = None
        self._checked = float("-inf")
        self._partners: frozenset[str] = frozenset()
        self._tables: frozenset[str] = frozenset()
        self._accounts: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> str | None:
        """The name of the current snapshot (None: no lake)."""
        now = time.monotonic()
        if now - self._checked >= self.recheck_seconds:
            current = self.lake.root / "CURRENT"
            try:
                name: str | None = current.read_text().strip()
            except FileNotFoundError:
                name = None
            with self._lock:
                self._checked = now
                if name != self._snapshot:
                    self._snapshot = name
                    self._partners = frozenset(self.lake.partners()) if name else frozenset()
                    self._tables = frozenset(self.lake.tables()) if name else frozenset()
                    self._accounts = {}
        return self._snapshot

    @property
    def exists(self) -> bool:
        return self.snapshot() is not None

    def require(self) -> Lake:
        """The lake; :class:`LakeError` (503) saying what to do when there is none."""
        if self.snapshot() is None:
            raise LakeError(
                "the lake is not available: there is no lake in the workspace; ingest the packs "
                "(amplify ingest PACK_DIR)"
            )
        return self.lake

    def partners(self) -> frozenset[str]:
        """Partners with data in the lake (empty without a lake)."""
        self.snapshot()
        return self._partners

    def tables(self) -> frozenset[str]:
        """Tables with rows in the lake (empty without a lake)."""
        self.snapshot()
        return self._tables

    def accounts(self, partner: str) -> frozenset[str]:
        """Account ids of ``partner``."""
        self.require()
        found = self._accounts.get(partner)
        if found is None:
            df = self.lake.read("accounts", [partner])
            found = frozenset(df["account_id"].astype(str)) if len(df) else frozenset()
            self._accounts[partner] = found
        return found


@dataclass(frozen=True)
class ScoreTable:
    """One score file, as a frame, as row dicts, and indexed by device id."""

    model: str
    path: Path
    stamp: tuple[str, int]
    as_of: str
    version: str
    frame: pd.DataFrame
    rows: list[dict[str, Any]]
    by_device: dict[str, list[int]]

    @classmethod
    def read(cls, model: str, path: Path) -> ScoreTable:
        frame = pd.read_parquet(path)
        stamp = (str(path), path.stat().st_mtime_ns)
        out = frame.copy()
        if "as_of" in out:
            out["as_of"] = pd.to_datetime(out["as_of"]).dt.strftime("%Y-%m-%d")
        out = out.astype(object).where(out.notna(), None)
        rows = out.to_dict("records")
        by_device: dict[str, list[int]] = {}
        if "device_id" in frame:
            for i, d in enumerate(frame["device_id"].astype(str)):
                by_device.setdefault(d, []).append(i)
        as_of = path.parent.name.split("=", 1)[1]
        version = path.stem.split("=", 1)[1]
        return cls(model, path, stamp, as_of, version, frame, rows, by_device)

    def for_device(self, device_id: str, partners: frozenset[str] | None) -> list[int]:
        """Row positions of ``device_id`` among ``partners``' rows (None: every partner)."""
        hits = self.by_device.get(device_id, [])
        if partners is None:
            return hits
        return [i for i in hits if self.rows[i]["partner_id"] in partners]


class ScoreTables:
    """The latest score table of each model, read once per file."""

    def __init__(self, workspace: str | Path, *, recheck_seconds: float = 2.0) -> None:
        self.workspace = Path(workspace)
        self.recheck_seconds = recheck_seconds
        self._tables: dict[str, ScoreTable | None] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> ScoreTable | None:
        """The latest table of ``model``, or None when it was never scored."""
        now = time.monotonic()
        if now - self._checked.get(model, float("-inf")) < self.recheck_seconds:
            return self._tables.get(model)
        from amplify_ml.scoring.score import score_file

        with self._lock:
            if now - self._checked.get(model, float("-inf")) < self.recheck_seconds:
                return self._tables.get(model)
            try:
                path = score_file(self.workspace, model)
                stamp = (str(path), path.stat().st_mtime_ns)
            except (NotFoundError, FileNotFoundError):
                self._tables[model] = None
            else:
                current = self._tables.get(model)
                if current is None or current.stamp != stamp:
                    self._tables[model] = ScoreTable.read(model, path)
            self._checked[model] = time.monotonic()
            return self._tables[model]

    def stamp(self, model: str) -> tuple[str, int] | None:
        """Which file of ``model`` is current (for cache keys)."""
        table = self.get(model)
        return table.stamp if table else None


class ListCache:
    """A small LRU of computed lists; one computation per key at a time."""

    def __init__(self, maxsize: int = 128) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = compute()
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
                self._locks.pop(key, None)
            return value
