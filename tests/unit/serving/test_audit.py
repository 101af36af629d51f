"""The audit log on its own: buffered, flushed by its thread and on close, append-only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from amplify_ml.serving.audit import FIELDS, AuditLog, audit_dir, read_audit


def _entry(i: int) -> dict[str, object]:
    return {
        "key_id": f"ak{i:016x}",
        "role": "partner",
        "partner": "P001",
        "method": "GET",
        "route": "/v1/devices/{device_id}/risk",
        "path": f"/v1/devices/D-{i}/risk",
        "status": 200,
        "ms": 0.5,
    }


def test_entries_wait_in_memory_until_a_flush_then_append(tmp_path: Path) -> None:
    log = AuditLog(audit_dir(tmp_path), flush_seconds=3600)
    for i in range(3):
        log.record(**_entry(i))
    assert read_audit(tmp_path) == []  # buffered, nothing written yet
    log.flush()
    first = read_audit(tmp_path)
    assert [e["path"] for e in first] == [f"/v1/devices/D-{i}/risk" for i in range(3)]
    assert all(tuple(e) == FIELDS for e in first)
    assert first[0]["time"].endswith("+00:00") and first[0]["status"] == 200
    log.record(**_entry(3))
    log.flush()
    again = read_audit(tmp_path)
    assert again[:3] == first and len(again) == 4  # appended, never rewritten
    files = list(audit_dir(tmp_path).glob("audit-*.jsonl"))
    assert len(files) == 1 and files[0].name == f"audit-{first[0]['time'][:10]}.jsonl"


def test_close_writes_what_is_left(tmp_path: Path) -> None:
    log = AuditLog(audit_dir(tmp_path), flush_seconds=3600)
    log.start()
    for i in range(5):
        log.record(**_entry(i))
    log.close()
    assert len(read_audit(tmp_path)) == 5


def test_the_writer_thread_flushes_on_its_own(tmp_path: Path) -> None:
    log = AuditLog(audit_dir(tmp_path), flush_seconds=0.05)
    log.start()
    log.record(**_entry(1))
    deadline = time.monotonic() + 10
    while not read_audit(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(read_audit(tmp_path)) == 1
    log.close()


def test_a_failed_write_keeps_the_entries(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audit folder should be")
    log = AuditLog(blocker, flush_seconds=3600)
    log.record(**_entry(1))
    with pytest.raises(OSError):
        log.flush()
    blocker.unlink()
    log.flush()  # the folder can be made now: the entry was kept
    lines = list(blocker.glob("audit-*.jsonl"))
    assert len(lines) == 1 and "ak0000000000000001" in lines[0].read_text()
