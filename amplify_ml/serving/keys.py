"""API keys: shown once when created, stored only as salted scrypt hashes.

A key reads ``<key_id>.<secret>``. The store (``<workspace>/serving/keys.json``, mode 0600)
holds per key: its id, role (``partner`` bound to one partner, or ``operations``), partner,
creation and revocation times, a random 16-byte salt and ``scrypt(secret, salt)``. Looking a
key up is by id, then a constant-time comparison of the hash (:func:`hmac.compare_digest`).

The KDF is deliberately slow (tens of milliseconds), so a verified key is remembered in memory
as the SHA-256 of its secret: later requests cost a dictionary lookup and one hash. A key id
has exactly one valid secret, so once it is verified a different secret fails without the
KDF too. The file is re-read when it changes (checked at most every ``check_seconds``), so a
key revoked from the command line stops working in a running server within that time; an
unknown key id makes it look at once (a new key works at once).

Refused attempts are counted per key id (ids that exist and are active; unknown ids cost
nothing and are not tracked, so the counts cannot grow without bound): after
``max_refusals`` in ``refusal_window_s`` seconds, further attempts with that id that would
need the KDF, or that are refused, answer :class:`~amplify_ml.errors.TooManyAttemptsError`
(HTTP 429 with ``Retry-After``) until the oldest refusal leaves the window. A key already
verified in this process keeps working during that time (its check needs no KDF), so
guessing at a key cannot lock its owner out of a running server, and a guesser cannot make
the server run the KDF more than ``max_refusals`` times a window per key.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from amplify_ml.errors import InvalidRequestError, NotFoundError, TooManyAttemptsError

Role = Literal["partner", "operations"]
ROLES: tuple[Role, ...] = ("partner", "operations")
KEY_FILE = "keys.json"
_KEY_ID = re.compile(r"ak[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")
_PARTNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# scrypt at n=2^14, r=8, p=1 (16 MiB, tens of ms): the parameters are stored with each hash
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_REFUSALS = 10
REFUSAL_WINDOW_S = 60.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _kdf(secret: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(
        secret.encode(),
        salt=salt,
        n=params["n"],
        r=params["r"],
        p=params["p"],
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )


def parse_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    key_id, dot, secret = key.strip().partition(".")
    if not dot or not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        return None
    return key_id, secret


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: who it is for, and the salted hash of its secret."""

    key_id: str
    role: Role
    partner_id: str | None
    created_at: str
    revoked_at: str | None
    label: str | None
    salt: str
    hash: str
    kdf: dict[str, int]

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """The record without its salt and hash (for listings)."""
        return {
            "key_id": self.key_id,
            "role": self.role,
            "partner_id": self.partner_id,
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class KeyStore:
    """The keys of one workspace (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        check_seconds: float = 1.0,
        max_refusals: int = MAX_REFUSALS,
        refusal_window_s: float = REFUSAL_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_refusals < 1 or refusal_window_s <= 0:
            raise InvalidRequestError(
                f"max_refusals must be >= 1 and refusal_window_s > 0; got {max_refusals} and "
                f"{refusal_window_s}"
            )
        self.path = Path(path)
        self.check_seconds = check_seconds
        self.max_refusals = max_refusals
        self.refusal_window_s = refusal_window_s
        self._clock = clock
        self._refusals: dict[str, deque[float]] = {}
        self._records: dict[str, KeyRecord] = {}
        self._verified: dict[str, bytes] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._kdf_locks: dict[str, threading.Lock] = {}
        self._load()

    @classmethod
    def in_workspace(cls, workspace: str | Path, **kwargs: Any) -> KeyStore:
        return cls(Path(workspace) / "serving" / KEY_FILE, **kwargs)

    # -- reading -------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _load(self) -> None:
        stamp = self._file_stamp()
        records = self._read() if stamp is not None else {}
        with self._lock:
            old = self._records
            self._records = records
            self._stamp = stamp
            self._checked = time.monotonic()
            # forget verifications of keys that are gone, revoked or re-hashed
            self._verified = {
                k: v
                for k, v in self._verified.items()
                if k in records
                and records[k].active
                and k in old
                and old[k].hash == records[k].hash
            }

    def _read(self) -> dict[str, KeyRecord]:
        try:
            data = json.loads(self.path.read_text())
            return {r["key_id"]: KeyRecord(**r) for r in data["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidRequestError(
                f"the key store {self.path} cannot be read ({exc}); restore it from a backup or "
                "move it away and create new keys (amplify keys create)"
            ) from None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.check_seconds:
            return
        self._checked = now
        if self._file_stamp() != self._stamp:
            self._load()

    def list(self) -> list[KeyRecord]:
        """Every key in the order created (revoked ones included)."""
        self._load()
        return list(self._records.values())

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict[str, KeyRecord]]:
        """Read-modify-write under an exclusive file lock; written atomically (0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._read() if self.path.exists() else {}
            yield records
            tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
            payload = {"version": 1, "keys": [asdict(r) for r in records.values()]}
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        self._load()

    def create(
        self, *, role: Role = "partner", partner: str | None = None, label: str | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key: ``(record, key)``. The key is returned here only; store it safely."""
        if role not in ROLES:
            raise InvalidRequestError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if role == "partner" and not partner:
            raise InvalidRequestError("a partner key needs the partner it is for (--partner ID)")
        if role == "operations" and partner:
            raise InvalidRequestError(
                "an operations key sees every partner; leave out --partner (or create a partner "
                "key with --partner ID and no --role)"
            )
        if partner is not None and not _PARTNER.fullmatch(partner):
            raise InvalidRequestError(
                f"partner ids are 1-64 letters, digits, '_', '.' or '-', got {partner!r}"
            )
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._locked() as records:
            key_id = "ak" + secrets.token_hex(8)
            while key_id in records:  # pragma: no cover - 64 random bits
                key_id = "ak" + secrets.token_hex(8)
            rec = KeyRecord(
                key_id=key_id,
                role=role,
                partner_id=partner if role == "partner" else None,
                created_at=_now(),
                revoked_at=None,
                label=label,
                salt=salt.hex(),
                hash=_kdf(secret, salt, _SCRYPT).hex(),
                kdf=dict(_SCRYPT),
            )
            records[key_id] = rec
        return rec, f"{key_id}.{secret}"

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke ``key_id`` (kept in the store, marked revoked); revoking twice is a no-op."""
        with self._locked() as records:
            rec = records.get(key_id)
            if rec is None:
                raise NotFoundError(f"no key {key_id!r} in {self.path} (amplify keys list)")
            if rec.active:
                rec = replace(rec, revoked_at=_now())
                records[key_id] = rec
        return rec

    # -- verifying -----------------------------------------------------------------------------
    def quick(self, key: str) -> tuple[KeyRecord | None, bool]:
        """``(record, False)`` for a key verified before, ``(None, False)`` for one that cannot
        be valid, ``(None, True)`` when only the KDF can tell (see :meth:`verify`)."""
        parsed = parse_key(key)
        if parsed is None:
            return None, False
        self._maybe_reload()
        key_id, secret = parsed
        rec = self._records.get(key_id)
        if rec is None and self._file_stamp() != self._stamp:  # a key created a moment ago
            self._load()
            rec = self._records.get(key_id)
        if rec is None or not rec.active:
            return None, False
        known = self._verified.get(key_id)
        if known is None:
            return None, True
        digest = hashlib.sha256(secret.encode()).digest()
        return (rec if hmac.compare_digest(known, digest) else None), False

    def verify(self, key: str) -> KeyRecord | None:
        """The record of a valid, unrevoked key, else None (a full KDF the first time).

        Raises :class:`TooManyAttemptsError` when the key id has had too many refusals
        lately and this attempt is refused or would need the KDF (see the module doc)."""
        rec, needs_kdf = self.quick(key)
        if needs_kdf:
            key_id, secret = parse_key(key)  # type: ignore[misc]  # quick() parsed it
            self._hold_off(key_id)
            with self._lock:
                kdf_lock = self._kdf_locks.setdefault(key_id, threading.Lock())
            with kdf_lock:  # one KDF per key at a time: a burst of first requests waits for it
                rec, needs_kdf = self.quick(key)
                if needs_kdf:
                    rec = self._verify_slow(key_id, secret)
        if rec is None:
            self.refused(key)
        return rec

    def refused(self, key: str) -> None:
        """Count a refused attempt against its key id when that id exists and is active;
        raise :class:`TooManyAttemptsError` for attempts beyond the limit (the API calls this
        for keys refused without :meth:`verify`)."""
        parsed = parse_key(key)
        if parsed is None:
            return
        key_id = parsed[0]
        rec = self._records.get(key_id)
        if rec is None or not rec.active:
            return
        now = self._clock()
        with self._lock:
            times = self._refusals.setdefault(key_id, deque())
            self._expire(times, now)
            if len(times) < self.max_refusals:  # beyond, refused without counting (bounded)
                times.append(now)
                return
        self._hold_off(key_id)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.refusal_window_s:
            times.popleft()

    def _hold_off(self, key_id: str) -> None:
        """Raise :class:`TooManyAttemptsError` when ``key_id`` is over its refusals."""
        now = self._clock()
        with self._lock:
            times = self._refusals.get(key_id)
            if times is None:
                return
            self._expire(times, now)
            if not times:
                del self._refusals[key_id]
                return
            if len(times) < self.max_refusals:
                return
            wait = max(1, math.ceil(times[0] + self.refusal_window_s - now))
        raise TooManyAttemptsError(
            f"too many refused attempts with key id {key_id} ({len(times)} in the last "
            f"{self.refusal_window_s:g} s): wait {wait} s before trying again, and check that "
            "the key is copied whole (amplify keys list shows the ids; a lost key is revoked "
            "and a new one created)",
            retry_after=wait,
        )

    def _verify_slow(self, key_id: str, secret: str) -> KeyRecord | None:
        rec = self._records.get(key_id)
        if rec is None or not rec.active:
            return None
        computed = _kdf(secret, bytes.fromhex(rec.salt), rec.kdf)
        if not hmac.compare_digest(computed, bytes.fromhex(rec.hash)):
            return None
        with self._lock:
            current = self._records.get(key_id)
            if current is not None and current.hash == rec.hash and current.active:
                self._verified[key_id] = hashlib.sha256(secret.encode()).digest()
        return rec
