"""Every verification branch of a decommission export, on real tar files: a deletion only
follows an export that passes all of them."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import SafetyRefusal
from smartpraxx_provision.inventory.models import PracticeRecord
from smartpraxx_provision.operations.decommission import (
    DUMP_DONE_MARK,
    _reverify_after_tombstone,
    verify_export,
)

SLOT = Slot(host="cloud001", number=7)
OP = "op-1"
RECORD = PracticeRecord(
    praxisname="praxis-a", slot=SLOT, realm=SLOT.realm, order_id="SO-1", display_name="A",
    kv="KV Bayern", specialties=(), billable_seats=1, state="active",
    created_at=datetime.now(UTC), updated_at=datetime.now(UTC),
)


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _members(**change: Any) -> dict[str, bytes]:
    members = {
        "db.sql": f"CREATE TABLE oc_x (id int);\n{DUMP_DONE_MARK} on 2026-12-02\n".encode(),
        "data.tar": _tar({"config/config.php": b"<?php $CONFIG = [];",
                          "data/admin/files/brief.txt": b"hallo"}),
        "realm.json": json.dumps({"realm": {"realm": SLOT.realm}, "users": []}).encode(),
    }
    members.update({k.replace("_", "."): v for k, v in change.items()})
    return members


def _write(path: Path, members: dict[str, bytes], **manifest_change: Any) -> Path:
    manifest: dict[str, Any] = {
        "format": 2, "praxisname": "praxis-a", "slot": SLOT.id, "realm": SLOT.realm,
        "operation": OP, "files": {n: hashlib.sha256(d).hexdigest() for n, d in members.items()},
    }
    manifest.update(manifest_change)
    path.write_bytes(_tar({"manifest.json": json.dumps(manifest).encode(), **members}))
    return path


def test_verified_is_computed_from_the_members_read_back(tmp_path: Path) -> None:
    members = _members()
    path = _write(tmp_path / "e.tar", members)
    result = verify_export(path, RECORD, operation=OP)
    assert result["verified"] is True
    # every member was hashed on read-back and equals its own content's digest
    assert result["members"] == {n: hashlib.sha256(d).hexdigest() for n, d in members.items()}
    # a member the manifest does not list (nothing to compare) is never counted as verified
    files = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "realm.json"}
    with pytest.raises(SafetyRefusal, match=r"realm\.json checksum differs"):
        verify_export(_write(tmp_path / "f.tar", members, files=files), RECORD, operation=OP)


def test_a_re_run_after_the_tombstone_reads_the_export_back_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.tar", _members())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    done = dataclasses.replace(RECORD, state="tombstoned", export_sha256=sha)
    assert _reverify_after_tombstone(path, done)["verified"] is True
    _write(path, _members(db_sql=b"other\n" + DUMP_DONE_MARK.encode()))  # replaced on disk
    changed = _reverify_after_tombstone(path, done)
    assert changed["verified"] is False and "not the export the deletion began with" in changed["detail"]
    path.unlink()
    gone = _reverify_after_tombstone(path, done)
    assert gone["verified"] is False and "no longer at this path" in gone["detail"]


def test_a_good_export_passes(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.tar", _members())
    result = verify_export(path, RECORD, operation=OP)
    assert result["verified"] and result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert verify_export(path, RECORD, sha256=result["sha256"])["verified"]


def _bad_checksum(p: Path) -> Path:
    m = _members()
    path = _write(p, m)
    raw = path.read_bytes().replace(b"CREATE TABLE oc_x", b"CREATE TABLE oc_y")
    path.write_bytes(raw)
    return path


BRANCHES: list[tuple[str, Callable[[Path], Path], dict[str, Any], str]] = [
    ("bad checksum", _bad_checksum, {}, "db.sql checksum differs"),
    ("truncated dump", lambda p: _write(p, _members(db_sql=b"CREATE TABLE oc_x (id")), {},
     "not a complete dump"),
    ("wrong realm", lambda p: _write(p, _members(realm_json=json.dumps(
        {"realm": {"realm": "nc01-cloud009"}}).encode())), {}, "not the practice's realm"),
    ("manifest of another slot", lambda p: _write(p, _members(), slot="nc01-cloud009"), {},
     "manifest names slot nc01-cloud009"),
    ("empty data", lambda p: _write(p, _members(data_tar=_tar({}))), {}, "data.tar is empty"),
    ("data without config", lambda p: _write(p, _members(data_tar=_tar(
        {"data/a.txt": b"x"}))), {}, "data.tar has no config/"),
    ("Nextcloud code in the data", lambda p: _write(p, _members(data_tar=_tar(
        {"config/config.php": b"x", "data/a": b"x", "lib/base.php": b"x"}))), {},
     "more than the practice's dirs: lib"),
    ("data not a tar", lambda p: _write(p, _members(data_tar=b"no tar" * 200)), {},
     "not a tar archive"),
    ("stale: made by an earlier run", lambda p: _write(p, _members(), operation="op-0"), {},
     "made by an earlier run"),
    ("half-done run: not the recorded export", lambda p: _write(p, _members()),
     {"sha256": "0" * 64, "operation": None}, "not the export the deletion began with"),
    ("truncated file", lambda p: p.write_bytes(_write(p, _members()).read_bytes()[:700]) and p,
     {}, "cannot read the export"),
    ("missing member", lambda p: p.write_bytes(_tar({"manifest.json": b"{}"})) and p, {},
     "db.sql missing"),
]


@pytest.mark.parametrize(("what", "make", "kw", "problem"), BRANCHES, ids=[b[0] for b in BRANCHES])
def test_every_branch_refuses(
    tmp_path: Path, what: str, make: Callable[[Path], Path], kw: dict[str, Any], problem: str
) -> None:
    path = make(tmp_path / "x.tar")
    args = {"operation": OP, **kw}
    with pytest.raises(SafetyRefusal) as err:
        verify_export(path, RECORD, **args)
    assert problem in err.value.message, err.value.message
    assert "nothing was deleted" in err.value.message
    assert err.value.exit_code == 1 and "decommission praxis-a" in (err.value.hint or "")
