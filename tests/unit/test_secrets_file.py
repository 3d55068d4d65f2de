"""The embedded encrypted file secret store."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.errors import SecretStoreError
from smartpraxx_provision.secrets import FileSecretStore, open_secret_store
from smartpraxx_provision.secrets import filestore as filestore_mod

JOIN_TIMEOUT = 60.0


@pytest.fixture
def store(tmp_path: Path) -> FileSecretStore:
    return FileSecretStore(tmp_path / "secrets")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_roundtrip_and_modes(store: FileSecretStore) -> None:
    assert store.get("practices/nc07-cloud023/db-password") is None
    assert not store.key_path.exists()  # a read creates no key
    store.put("practices/nc07-cloud023/db-password", "geheim-123")
    assert store.get("practices/nc07-cloud023/db-password") == "geheim-123"
    assert _mode(store.key_path) == 0o600
    assert _mode(store.directory) == 0o700
    files = sorted(store.directory.glob("*.enc"))
    assert [_mode(f) for f in files] == [0o600]
    for f in (*files, store.key_path):
        assert b"geheim-123" not in f.read_bytes()  # encrypted at rest


def test_default_store_lives_under_state_dir(settings: Any) -> None:
    s = open_secret_store(settings)
    assert isinstance(s, FileSecretStore) and s.directory == settings.state_dir / "secrets"


def test_key_readable_by_others_is_refused(store: FileSecretStore, tmp_path: Path) -> None:
    store.put("platform/keycloak-admin", "x")
    store.key_path.chmod(0o644)
    with pytest.raises(SecretStoreError, match="readable by others") as err:
        FileSecretStore(store.directory).get("platform/keycloak-admin")
    assert err.value.hint == f"chmod 600 {store.key_path}"


def test_lost_key_is_not_silently_replaced(store: FileSecretStore) -> None:
    store.put("platform/keycloak-admin", "x")
    store.key_path.unlink()
    fresh = FileSecretStore(store.directory)
    with pytest.raises(SecretStoreError, match="missing"):
        fresh.put("platform/other", "y")
    assert not store.key_path.exists()


def test_tamper_detection(store: FileSecretStore) -> None:
    store.put("practices/nc07-cloud023/db-password", "a")
    store.put("practices/nc08-cloud023/db-password", "b")
    f7 = store._file("practices/nc07-cloud023")
    f8 = store._file("practices/nc08-cloud023")
    blob = bytearray(f7.read_bytes())
    blob[-5] ^= 0x01
    f7.write_bytes(bytes(blob))
    with pytest.raises(SecretStoreError, match="tampered"):
        store.get("practices/nc07-cloud023/db-password")
    # a valid file of another practice moved into place fails too (unit is authenticated)
    f7.write_bytes(f8.read_bytes())
    with pytest.raises(SecretStoreError, match="tampered"):
        store.get("practices/nc07-cloud023/db-password")
    f7.write_bytes(b"garbage")
    with pytest.raises(SecretStoreError, match="not a smartpraxx secret file"):
        store.get("practices/nc07-cloud023/db-password")


def test_wrong_key_cannot_decrypt(store: FileSecretStore, tmp_path: Path) -> None:
    store.put("platform/keycloak-admin", "x")
    other = FileSecretStore(tmp_path / "other")
    other.put("platform/unrelated", "y")
    store.key_path.write_bytes(other.key_path.read_bytes())
    with pytest.raises(SecretStoreError, match="wrong key"):
        FileSecretStore(store.directory).get("platform/keycloak-admin")


def test_atomic_write_keeps_old_file_on_failure(
    store: FileSecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("practices/nc07-cloud023/db-password", "old")
    before = store._file("practices/nc07-cloud023").read_bytes()

    def broken_replace(*args: Any, **kw: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(filestore_mod.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put("practices/nc07-cloud023/db-password", "new")
    monkeypatch.undo()
    assert store._file("practices/nc07-cloud023").read_bytes() == before
    assert store.get("practices/nc07-cloud023/db-password") == "old"
    assert [p.name for p in store.directory.iterdir() if p.name.endswith(".tmp")] == []


def test_delete_prefix(store: FileSecretStore) -> None:
    for path in (
        "practices/nc07-cloud023/db-password",
        "practices/nc07-cloud023/admin/pw",
        "practices/nc07-cloud0234/db-password",
        "practices/nc08-cloud023/db-password",
        "platform/keycloak-admin",
    ):
        store.put(path, "v")
    assert store.list("practices/nc07-cloud023") == [
        "practices/nc07-cloud023/admin/pw",
        "practices/nc07-cloud023/db-password",
    ]
    assert store.delete("practices/nc07-cloud023/admin") == 1  # inside a unit
    assert store.delete("practices/nc07-cloud023") == 1
    assert not store._file("practices/nc07-cloud023").exists()  # one file per practice
    assert store.list("") == [
        "platform/keycloak-admin",
        "practices/nc07-cloud0234/db-password",
        "practices/nc08-cloud023/db-password",
    ]
    assert store.delete("practices/nc07-cloud023") == 0
    assert store.delete("practices") == 2
    assert store.list("") == ["platform/keycloak-admin"]


def test_units_with_underscores_do_not_collide(store: FileSecretStore) -> None:
    """Regression: the old "__" file separator mapped a/b__c and a__b/c to one file."""
    store.put("practices/a__b/x", "one")
    store.put("practices__a/b/x", "two")
    assert store.get("practices/a__b/x") == "one"
    assert store.get("practices__a/b/x") == "two"
    assert store.list("") == ["practices/a__b/x", "practices__a/b/x"]
    assert store.delete("practices") == 1


@pytest.mark.parametrize("bad", ["", "single", "Upper/case", "a//b", "../etc/passwd", "a/b c"])
def test_invalid_paths(store: FileSecretStore, bad: str) -> None:
    with pytest.raises(SecretStoreError, match="invalid secret path"):
        store.put(bad, "x")


def test_ensure_and_require(store: FileSecretStore) -> None:
    first = store.ensure("practices/nc07-cloud023/db-password")
    assert len(first) >= 40
    assert store.ensure("practices/nc07-cloud023/db-password", lambda: "other") == first
    with pytest.raises(SecretStoreError, match="missing"):
        store.require("practices/nc07-cloud023/nothing")


def _ensure_worker(directory: str, i: int, start: Any, results: Any) -> None:
    s = FileSecretStore(Path(directory))
    start.wait(JOIN_TIMEOUT)
    results.put(s.ensure("practices/nc07-cloud023/admin-password", lambda: f"value-{i}"))


def test_ensure_generates_once_across_processes(store: FileSecretStore) -> None:
    ctx = mp.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_ensure_worker, args=(str(store.directory), i, start, results))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    start.set()
    values = [results.get(timeout=JOIN_TIMEOUT) for _ in procs]
    for p in procs:
        p.join(JOIN_TIMEOUT)
        assert p.exitcode == 0
    assert len(set(values)) == 1
    assert store.get("practices/nc07-cloud023/admin-password") == values[0]
    # one key for all of them (created once under the lock)
    assert len([p for p in store.directory.iterdir() if p.name == "key"]) == 1
    assert os.stat(store.key_path).st_size > 0


def test_generated_secrets_never_start_with_a_dash() -> None:
    """`occ maintenance:install --admin-pass -x...` reads the value as an option."""
    from smartpraxx_provision.secrets import generate_token

    drawn = [generate_token() for _ in range(2000)]
    assert all(v[0].isalnum() for v in drawn)
    assert len(set(drawn)) == len(drawn)
    assert all(len(v) >= 43 for v in drawn)
