"""`broadcast` through the real CLI entry point, without any platform: input errors are
exit 2 before anything is recorded, a dry run lists the (here: no) platforms, an unknown id
is exit 2 naming the next command; and the pure helpers of operations/broadcast.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartpraxx_provision.cli import main
from smartpraxx_provision.errors import UsageError
from smartpraxx_provision.operations import broadcast


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTPRAXX_STATE_DIR", str(tmp_path))
    return tmp_path


def test_bad_target_is_exit_2_and_records_nothing(
        state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["broadcast", "send", "--subject", "S", "--message", "M", "--kv", "KV Atlantis"])
    assert code == 2
    assert "unknown KV 'KV Atlantis'" in capsys.readouterr().err
    assert main(["broadcast", "send", "--subject", "S", "--message", "M"]) == 2  # no target
    assert main(["broadcast", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["broadcasts"] == []


def test_past_validity_and_http_link_are_refused(
        state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["broadcast", "send", "--subject", "S", "--message", "M", "--kv", "rlp",
                 "--valid-until", "2020-01-01", "--link", "http://x.example"])
    assert code == 2
    err = capsys.readouterr().err
    assert "valid-until is in the past" in err and "https://" in err


def test_dry_run_and_unknown_id(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["broadcast", "send", "--subject", "S", "--message", "M", "--kv", "rlp",
                 "--any", "fach=Urologie,bereich=Abrechnung", "--dry-run", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == "bereich-abrechnung,fach-urologie;kv-rlp"
    assert doc["platforms"] == [] and doc["dry_run"] is True
    assert main(["broadcast", "retry", "b000000000000"]) == 2
    assert "broadcast list" in capsys.readouterr().err


def test_pure_helpers() -> None:
    assert broadcast.parse_script_output("noise\ndelivered 12 7\n") == (12, "7")
    assert broadcast.parse_script_output("delivered 0 -") == (0, None)
    with pytest.raises(ValueError):
        broadcast.parse_script_output("delivered x y")
    assert broadcast.message_text(" Text ", "https://a.example") == (
        "Text\n\n[Mehr erfahren](https://a.example)")
    now = datetime.now(UTC)
    broadcast.validate_message("S", "M", None, now + timedelta(days=1), now)
    with pytest.raises(UsageError):
        broadcast.validate_message("", "M", None, now + timedelta(days=1), now)
    archive = broadcast.script_archive()
    assert b"smartpraxx-broadcast.sh" in archive and archive == broadcast.script_archive()
