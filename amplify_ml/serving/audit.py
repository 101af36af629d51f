"""The audit log: one JSON line per API request to partner data, append-only.

Lines go to ``<workspace>/serving/audit/audit-<YYYY-MM-DD>.jsonl`` (UTC day of the request):
``time``, ``key_id`` (the id presented, verified or not; never a secret), ``role``,
``partner`` (whose data: the key's partner, or the one an operations key named or reached),
``method``, ``route`` (the path template), ``path`` (with the query string), ``status`` and
``ms``. Requests refused
with 401/404/413/422 are recorded too.

Entries are buffered in memory and written by a background thread at least every
``flush_seconds`` (and at once past ``max_buffer`` entries); :meth:`AuditLog.close` writes what
is left, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

AUDIT_DIR = ("serving", "audit")
FIELDS = ("time", "key_id", "role", "partner", "method", "route", "path", "status", "ms")


def audit_dir(workspace: str | Path) -> Path:
    return Path(workspace).joinpath(*AUDIT_DIR)


class AuditLog:
    """Buffered, append-only JSON-lines audit log (see the module docstring)."""

    def __init__(
        self, folder: str | Path, *, flush_seconds: float = 1.0, max_buffer: int = 1000
    ) -> None:
        self.folder = Path(folder)
        self.flush_seconds = flush_seconds
        self.max_buffer = max_buffer
        self._buffer: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background writer."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="amplify-audit", daemon=True)
            self._thread.start()

    def record(self, **entry: Any) -> None:
        """Queue one entry, stamped now; formatting waits for the writer (off the request)."""
        with self._lock:
            self._buffer.append((time.time(), entry))
            full = len(self._buffer) >= self.max_buffer
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write every queued entry now."""
        with self._write_lock:
            with self._lock:
                pending, self._buffer = self._buffer, []
            if not pending:
                return
            by_day: dict[str, list[str]] = {}
            for stamp, entry in pending:
                at = datetime.fromtimestamp(stamp, UTC)
                row = {k: entry.get(k) for k in FIELDS}
                row["time"] = at.isoformat(timespec="milliseconds")
                line = json.dumps(row, separators=(",", ":"), default=str)
                by_day.setdefault(at.date().isoformat(), []).append(line)
            done: set[str] = set()
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                for day, lines in by_day.items():
                    # one unbuffered write per batch: an O_APPEND write lands whole, so workers
                    # sharing the file never cut each other's lines
                    with open(self.folder / f"audit-{day}.jsonl", "ab", buffering=0) as fh:
                        fh.write(("\n".join(lines) + "\n").encode())
                        os.fsync(fh.fileno())
                    done.add(day)
            except OSError:
                with self._lock:  # put back what was not written, ahead of newer entries
                    self._buffer[:0] = [
                        (t, e)
                        for t, e in pending
                        if datetime.fromtimestamp(t, UTC).date().isoformat() not in done
                    ]
                raise

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except OSError as exc:  # keep serving; the entries stay queued for the next try
                log.error("audit log: cannot write to %s: %s", self.folder, exc)

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()


def read_audit(workspace: str | Path) -> list[dict[str, Any]]:
    """Every audit entry of the workspace, oldest first."""
    return list(_entries(audit_dir(workspace)))


def _entries(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("audit-*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
