"""The platform-side broadcast script (templates/nextcloud/broadcast.sh) run by /bin/sh
against the Nextcloud stand-in's occ on SQLite (no Docker): the target is evaluated from
``group:list``'s plain output, only matching users get the local group and see the
announcement (through the stand-in's announcementcenter OCS logic), the output is a count,
re-runs are idempotent, retract removes everything. Also: every occ command the script uses
exists in the captured surface or the announcementcenter supplement."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartpraxx_provision.operations import broadcast

IMAGE_DIR = (Path(__file__).resolve().parents[2]
             / "smartpraxx_provision" / "devstack" / "images" / "nextcloud-standin")
sys.path.insert(0, str(IMAGE_DIR))

from nc_standin import announcements, occ, state  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "templates" / "nextcloud" / "broadcast.sh"


def run_occ(root: Path, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = occ.main(list(args), root, {}, io.StringIO(""), out, err)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def nc(tmp_path: Path) -> Path:
    root = tmp_path / "html"
    root.mkdir()
    (root / "occ").touch()
    code, out = run_occ(root, "maintenance:install", "--database", "sqlite", "--admin-user",
                        "admin", "--admin-pass", "admin-pass-123", "-n")
    assert code == 0, out
    assert run_occ(root, "app:enable", "announcementcenter")[0] == 0
    users = {
        "uro.rlp": ["kv-rlp", "fach-urologie", "rolle-arzt"],
        "mfa.rlp": ["kv-rlp", "rolle-mfa", "bereich-abrechnung"],
        "empfang.rlp": ["kv-rlp", "rolle-mfa", "bereich-empfang"],
        "uro.bw": ["kv-bw", "fach-urologie"],
    }
    for uid, groups in users.items():
        args = ["user:add", "--password-from-env", *[f"--group={g}" for g in groups], uid]
        out_, err_ = io.StringIO(), io.StringIO()
        assert occ.main(args, root, {"NC_PASS": "pass-word-123"}, io.StringIO(""), out_,
                        err_) == 0, err_.getvalue()
    # the php shim of the image, pointing at this root's stand-in
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "php").write_text(
        "#!/bin/sh\n[ \"$1\" = occ ] || exit 1\nshift\n"
        f"PYTHONPATH={IMAGE_DIR} exec {sys.executable} -m nc_standin {root}/occ \"$@\"\n")
    (shim / "php").chmod(0o755)
    return root


def script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{root.parent}/bin:{os.environ['PATH']}",
           "NEXTCLOUD_ROOT": str(root), "BROADCAST_SUBJECT": "Neue EBM-Ziffer",
           "BROADCAST_MESSAGE": "Hinweis für Urologie und Abrechnung.\n\n[Mehr](https://x.de)"}
    return subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def visible(root: Path, uid: str) -> list[str]:
    from nc_standin.state import SystemConfig

    store = state.Store.connect(SystemConfig(root, {}).values)
    try:
        return [a["subject"] for a in announcements.visible(store, uid)]
    finally:
        store.close()


def notified(root: Path, uid: str) -> int:
    from nc_standin.state import SystemConfig

    store = state.Store.connect(SystemConfig(root, {}).values)
    try:
        return len(announcements.notifications_of(store, uid))
    finally:
        store.close()


def test_deliver_evaluates_on_the_platform_and_prints_only_a_count(nc: Path) -> None:
    until = str(int(time.time()) + 3600)
    target = "kv-rlp;bereich-abrechnung,fach-urologie"
    r = script(nc, "deliver", "b0123456789ab", target, "admin", until)
    assert r.returncode == 0, r.stderr
    count, aid = broadcast.parse_script_output(r.stdout)
    assert count == 2 and aid == "1"
    assert r.stdout.strip() == "delivered 2 1"
    for uid in ("uro.rlp", "mfa.rlp", "empfang.rlp", "uro.bw"):
        assert uid not in r.stdout + r.stderr
    assert visible(nc, "uro.rlp") == ["Neue EBM-Ziffer"]
    assert visible(nc, "mfa.rlp") == ["Neue EBM-Ziffer"]
    assert visible(nc, "empfang.rlp") == []  # RLP but neither urology nor billing
    assert visible(nc, "uro.bw") == []  # urology but another KV
    assert (notified(nc, "uro.rlp"), notified(nc, "mfa.rlp"), notified(nc, "uro.bw")) == (1, 1, 0)
    _, groups = run_occ(nc, "group:list", "--output=json")
    assert json.loads(groups.splitlines()[0])["news-b0123456789ab"] == ["mfa.rlp", "uro.rlp"]

    again = script(nc, "deliver", "b0123456789ab", target, "admin", until)
    assert again.stdout.strip() == "delivered 2 1"  # no second announcement
    assert notified(nc, "uro.rlp") == 1

    # a user who now matches (e.g. after a login with new groups) is added on the next run
    run_occ(nc, "group:adduser", "bereich-abrechnung", "empfang.rlp")
    third = script(nc, "deliver", "b0123456789ab", target, "admin", until)
    assert third.stdout.strip() == "delivered 3 1"
    assert visible(nc, "empfang.rlp") == ["Neue EBM-Ziffer"]

    gone = script(nc, "retract", "b0123456789ab")
    assert gone.returncode == 0 and gone.stdout.strip() == "retracted", gone.stderr
    assert visible(nc, "uro.rlp") == [] and notified(nc, "uro.rlp") == 0
    _, groups = run_occ(nc, "group:list", "--output=json")
    assert "news-b0123456789ab" not in json.loads(groups.splitlines()[0])
    assert script(nc, "retract", "b0123456789ab").stdout.strip() == "retracted"


def test_no_match_creates_no_announcement_for_everyone(nc: Path) -> None:
    r = script(nc, "deliver", "b00000000000a", "kzv-by", "admin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "delivered 0 -"
    for uid in ("uro.rlp", "mfa.rlp", "uro.bw"):
        assert visible(nc, uid) == []


def test_admin_sees_all_and_a_missing_group_means_everyone_in_the_stand_in(nc: Path) -> None:
    """announcementcenter's own fallback (why the script creates the group first)."""
    code, out = run_occ(nc, "announcementcenter:announce", "-g", "no-such-group", "--",
                        "admin", "An alle", "Text")
    assert code == 0 and out.startswith("Created announcement #1: An alle"), out
    assert visible(nc, "uro.bw") == ["An alle"]
    assert run_occ(nc, "announcementcenter:delete", "1")[1].strip() == "Successfully deleted #1"
    assert run_occ(nc, "announcementcenter:delete", "1")[0] == 1


def test_bad_id_is_refused(nc: Path) -> None:
    r = script(nc, "deliver", "../x", "kv-rlp", "admin")
    assert r.returncode == 2 and r.stdout == ""


def test_script_uses_only_real_or_documented_occ_commands() -> None:
    surface = {c["name"]: c for c in occ.REFERENCE_RAW["commands"]}
    text = SCRIPT.read_text()
    used = re.findall(r"\bocc ([a-z_]+:[a-z:_-]+)((?: [^\n]*)?)", text)
    assert {name for name, _ in used} >= {"group:list", "group:add", "group:adduser",
                                          "announcementcenter:announce", "config:app:set"}
    for name, rest in used:
        assert name in surface, name
        options = surface[name]["options"]
        for opt in re.findall(r"--([a-z-]+)", rest):
            assert opt in options, (name, opt)
