"""API keys: salted scrypt hashes at rest, verification, revocation, the commands."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplify_ml.cli import app
from amplify_ml.errors import InvalidRequestError, NotFoundError, TooManyAttemptsError
from amplify_ml.serving.keys import KeyStore, parse_key

runner = CliRunner()


def test_the_store_holds_a_salted_hash_and_never_the_key(tmp_path: Path) -> None:
    store = KeyStore.in_workspace(tmp_path)
    rec, key = store.create(partner="P001", label="crm sync")
    key_id, secret = key.split(".", 1)
    assert rec.key_id == key_id and rec.role == "partner" and rec.partner_id == "P001"
    text = store.path.read_text()
    assert secret not in text and key not in text
    saved = json.loads(text)["keys"][0]
    assert set(saved) == {
        "key_id",
        "role",
        "partner_id",
        "created_at",
        "revoked_at",
        "label",
        "salt",
        "hash",
        "kdf",
    }
    salt = bytes.fromhex(saved["salt"])
    assert len(salt) == 16
    kdf = saved["kdf"]
    # the stored hash is scrypt(secret, salt): recomputed here by hand
    expected = hashlib.scrypt(
        secret.encode(), salt=salt, n=kdf["n"], r=kdf["r"], p=kdf["p"], dklen=32, maxmem=2**28
    )
    assert saved["hash"] == expected.hex()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_the_same_secret_hashes_differently_under_two_salts(tmp_path: Path) -> None:
    from amplify_ml.serving.keys import _SCRYPT, _kdf

    a, b = os.urandom(16), os.urandom(16)
    assert _kdf("one secret", a, _SCRYPT) != _kdf("one secret", b, _SCRYPT)
    assert _kdf("one secret", a, _SCRYPT) == _kdf("one secret", a, _SCRYPT)
    store = KeyStore.in_workspace(tmp_path)
    (r1, _), (r2, _) = store.create(partner="P001"), store.create(partner="P001")
    assert r1.salt != r2.salt and r1.hash != r2.hash and r1.key_id != r2.key_id


def test_verification_accepts_the_key_and_refuses_everything_else(tmp_path: Path) -> None:
    store = KeyStore.in_workspace(tmp_path)
    rec, key = store.create(partner="P001")
    _, other = store.create(role="operations")
    assert store.quick(key) == (None, True)  # not seen yet: only the KDF can tell
    assert store.verify(key) == rec
    assert store.quick(key) == (rec, False)  # remembered: no KDF
    key_id, secret = key.split(".", 1)
    wrong = f"{key_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    assert store.quick(wrong) == (None, False)  # a verified id has one secret
    assert store.verify(wrong) is None
    assert store.verify(f"{other.split('.')[0]}.{secret}") is None  # another key's id
    for bad in ("", "nodot", "ak0123456789abcdef.short", f"AK{key_id[2:]}.{secret}", " . "):
        assert store.verify(bad) is None
    assert store.verify("ak0000000000000000." + "x" * 43) is None  # unknown id


def test_a_fresh_store_verifies_with_the_kdf_alone(tmp_path: Path) -> None:
    rec, key = KeyStore.in_workspace(tmp_path).create(partner="P002")
    fresh = KeyStore.in_workspace(tmp_path)
    assert fresh.quick(key) == (None, True)
    assert fresh.verify(key) == rec


def test_a_revoked_key_fails_here_and_in_a_running_store(tmp_path: Path) -> None:
    serving = KeyStore.in_workspace(tmp_path, check_seconds=0)
    rec, key = serving.create(partner="P001")
    assert serving.verify(key) == rec
    # revoked from elsewhere (the command line): the serving store re-reads the file
    revoked = KeyStore.in_workspace(tmp_path).revoke(rec.key_id)
    assert revoked.revoked_at is not None and not revoked.active
    assert serving.quick(key) == (None, False)
    assert serving.verify(key) is None
    again = KeyStore.in_workspace(tmp_path).revoke(rec.key_id)
    assert again.revoked_at == revoked.revoked_at  # revoking twice changes nothing
    with pytest.raises(NotFoundError, match=r"no key 'ak0000000000000000' in .*keys\.json"):
        serving.revoke("ak0000000000000000")


def test_creating_keys_checks_role_and_partner(tmp_path: Path) -> None:
    store = KeyStore.in_workspace(tmp_path)
    with pytest.raises(InvalidRequestError, match=r"^a partner key needs the partner"):
        store.create()
    with pytest.raises(InvalidRequestError, match=r"^an operations key sees every partner"):
        store.create(role="operations", partner="P001")
    with pytest.raises(InvalidRequestError, match=r"^role must be one of partner, operations"):
        store.create(role="admin", partner="P001")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match=r"^partner ids are 1-64 letters"):
        store.create(partner="P 1")
    rec, key = store.create(role="operations")
    assert rec.partner_id is None and parse_key(key) == tuple(key.split(".", 1))


def test_a_damaged_store_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "serving" / "keys.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(InvalidRequestError, match=r"cannot be read .*restore it from a backup"):
        KeyStore(path)


def test_keys_commands_create_list_revoke(tmp_path: Path) -> None:
    made = runner.invoke(app, ["keys", "create", "--partner", "P001", "-w", str(tmp_path)])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    key_id = key.split(".", 1)[0]
    assert parse_key(key) is not None
    assert KeyStore.in_workspace(tmp_path).verify(key) is not None
    ops = runner.invoke(
        app, ["keys", "create", "--role", "operations", "--json", "-w", str(tmp_path)]
    )
    assert ops.exit_code == 0 and json.loads(ops.stdout)["role"] == "operations"
    listed = runner.invoke(app, ["keys", "list", "--json", "-w", str(tmp_path)])
    rows = json.loads(listed.stdout)
    assert [r["role"] for r in rows] == ["partner", "operations"]
    assert key not in listed.stdout and "hash" not in rows[0] and "salt" not in rows[0]
    gone = runner.invoke(app, ["keys", "revoke", key_id, "-w", str(tmp_path)])
    assert gone.exit_code == 0 and f"key {key_id} revoked at" in gone.stdout
    assert KeyStore.in_workspace(tmp_path).verify(key) is None
    missing = runner.invoke(app, ["keys", "revoke", "ak0000000000000000", "-w", str(tmp_path)])
    assert missing.exit_code == 2
    assert "no key 'ak0000000000000000'" in missing.output
    no_partner = runner.invoke(app, ["keys", "create", "-w", str(tmp_path)])
    assert no_partner.exit_code == 2
    assert "a partner key needs the partner it is for (--partner ID)" in no_partner.output


def test_a_key_created_elsewhere_works_at_once_in_a_running_store(tmp_path: Path) -> None:
    serving = KeyStore.in_workspace(tmp_path, check_seconds=3600)
    assert serving.list() == []
    rec, key = KeyStore.in_workspace(tmp_path).create(partner="P003")  # the command line
    assert serving.verify(key) == rec


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wrong(key: str) -> str:
    key_id, secret = key.split(".", 1)
    return f"{key_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"


def test_refusals_of_a_key_id_are_limited_and_its_owner_keeps_working(tmp_path: Path) -> None:
    clock = _Clock()
    store = KeyStore.in_workspace(tmp_path, max_refusals=3, refusal_window_s=60, clock=clock)
    rec, key = store.create(partner="P001")
    wrong = _wrong(key)
    for _ in range(3):  # not verified yet: each refusal costs a KDF
        assert store.verify(wrong) is None
    with pytest.raises(
        TooManyAttemptsError, match=r"too many refused attempts with key id ak"
    ) as e:
        store.verify(wrong)
    assert e.value.retry_after == 60 and e.value.http_status == 429
    # the right key needs the KDF here (never verified in this process): held off too
    with pytest.raises(TooManyAttemptsError):
        store.verify(key)
    clock.now += 45
    with pytest.raises(TooManyAttemptsError) as e:
        store.verify(wrong)
    assert e.value.retry_after == 15  # until the oldest refusal leaves the window
    clock.now += 15
    assert store.verify(key) == rec  # the window has passed
    # verified now: guesses are refused without the KDF, counted, then held off, while the
    # owner's key keeps working (its check needs no KDF)
    for _ in range(3):
        assert store.verify(wrong) is None
    with pytest.raises(TooManyAttemptsError):
        store.verify(wrong)
    with pytest.raises(TooManyAttemptsError):
        store.refused(wrong)
    assert store.verify(key) == rec
    assert len(store._refusals[rec.key_id]) == 3  # attempts beyond the limit are not stored


def test_unknown_ids_and_malformed_keys_are_refused_without_being_tracked(tmp_path: Path) -> None:
    store = KeyStore.in_workspace(tmp_path, max_refusals=2, clock=_Clock())
    _, key = store.create(partner="P001")
    for _ in range(5):
        assert store.verify("ak0000000000000000." + "x" * 43) is None
        assert store.verify("nodot") is None
        store.refused("ak0000000000000001." + "y" * 43)
    assert store._refusals == {}
    assert store.verify(key) is not None  # other keys are not affected
    with pytest.raises(InvalidRequestError, match="max_refusals must be >= 1"):
        KeyStore.in_workspace(tmp_path, max_refusals=0)
