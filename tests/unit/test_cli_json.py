"""The one --json envelope: every document has ``ok`` and ``command`` next to the result's
keys, an error is one document with ``ok: false`` and the error; the host and practice
commands print through it (embedded inventory in a temporary state dir, no engine probed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.cli import command_name, main
from smartpraxx_provision.output import json_document


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    for key in ("SMARTPRAXX_INVENTORY_URL", "SMARTPRAXX_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SMARTPRAXX_STATE_DIR", str(tmp_path))

    def cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return cli


def test_command_name_skips_global_options_and_stops_at_arguments() -> None:
    assert command_name(["--state-dir", "x", "--set", "a=b", "hosts", "add", "cloud001",
                         "--endpoint", "unix:///x", "--json"]) == "hosts add"
    assert command_name(["status", "praxis-a", "--json"]) == "status"
    assert command_name(["--config=c.yaml", "dev-stack", "mail", "list"]) == "dev-stack mail list"
    assert command_name(["--json"]) == ""


def test_envelope_keeps_a_result_s_own_ok() -> None:
    assert json_document("smoke", {"ok": False, "checks": []}) == {
        "ok": False, "command": "smoke", "checks": []}
    assert json_document("status", {"verdict": "down"}, ok=False)["ok"] is False
    assert json_document("hosts list", {"hosts": []}) == {
        "ok": True, "command": "hosts list", "hosts": []}


def test_every_document_has_ok_and_command(run: Any) -> None:
    for args, key in ((("hosts", "list"), "hosts"), (("practices", "list"), "practices"),
                      (("status",), "verdict"), (("config", "show"), "state_dir"),
                      (("broadcast", "list"), "broadcasts")):
        code, out, _ = run(*args, "--json")
        doc = json.loads(out)
        assert code == 0 and doc["ok"] is True and doc["command"] == " ".join(args), doc
        assert key in doc


def test_an_error_is_one_document_with_ok_false(run: Any) -> None:
    code, out, err = run("hosts", "drain", "cloud404", "--json")
    doc = json.loads(out)  # exactly one document on stdout
    assert code == 2 and doc["ok"] is False and doc["command"] == "hosts drain"
    assert doc["error"]["kind"] == "not-found" and doc["error"]["object"] == "cloud404"
    assert "error: host cloud404 is not in the inventory" in err
    code, out, _ = run("hosts", "list", "--bogus", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["command"] == "hosts list" and doc["error"]["kind"] == "usage"


def test_hosts_add_drain_output(run: Any) -> None:
    add = ("hosts", "add", "cloud001", "--endpoint", "unix:///nowhere.sock", "--bootstrapping")
    code, out, _ = run(*add, "--dry-run")
    assert code == 0 and out.strip() == (
        "would add host cloud001 (unix:///nowhere.sock, capacity 50, bootstrapping)")
    code, out, err = run(*add)
    assert code == 0 and out == "" and "+ host cloud001 added (unix:///nowhere.sock, " \
        "capacity 50, bootstrapping)" in err
    code, out, err = run(*add)
    assert code == 0 and "= host cloud001 exists, up to date" in err
    code, out, _ = run(*add, "--dry-run", "--json")
    assert json.loads(out)["plan"]["exists"] is True
    code, out, _ = run("hosts", "list")
    assert out.splitlines()[1].split() == ["cloud001", "bootstrapping", "0/50", "nc01", "no",
                                           "unix:///nowhere.sock"]
    code, out, _ = run("hosts", "drain", "cloud001", "--dry-run", "--json")
    doc = json.loads(out)
    assert doc["dry_run"] is True and doc["command"] == "hosts drain"
    assert (doc["plan"]["from"], doc["plan"]["to"]) == ("bootstrapping", "draining")
    code, out, err = run("hosts", "drain", "cloud001")
    assert code == 0 and "+ host cloud001: bootstrapping -> draining" in err
    code, out, _ = run("hosts", "drain", "cloud001", "--dry-run")
    assert out.strip() == "host cloud001 is draining; nothing to do"
    code, out, _ = run("hosts", "set", "cloud001", "--capacity", "3", "--json")
    doc = json.loads(out)
    assert doc["changed"] is True and doc["host"]["capacity"] == 3 and doc["dry_run"] is False


def test_a_mutating_command_plans_confirms_and_changes(run: Any, tmp_path: Path) -> None:
    from smartpraxx_provision.config import load_settings
    from smartpraxx_provision.inventory import open_inventory

    with open_inventory(load_settings(overrides={"state_dir": str(tmp_path)})) as inv:
        inv.hostname = "ops-laptop-2"  # a run that died on another machine
        stale = inv.begin_operation("provision", "praxis-a")
    code, out, _ = run("operations", "abandon", stale, "--dry-run")
    assert code == 0 and out.startswith(f"abandon operation {stale} (dry run, nothing changed):")
    code, out, _ = run("operations", "abandon", stale, "--dry-run", "--json")
    doc = json.loads(out)
    assert (doc["ok"], doc["command"], doc["dry_run"]) == (True, "operations abandon", True)
    assert doc["plan"]["state"] == "running" and doc["notice"] is None
    code, out, err = run("operations", "abandon", stale, "--json")  # no --yes
    assert code == 2 and json.loads(out)["error"]["object"] == "--yes" and "--yes" in err
    code, out, _ = run("operations", "abandon", stale, "--yes")
    assert code == 0 and out.strip() == f"operation {stale}: abandoned"
    code, out, _ = run("operations", "abandon", stale, "--yes", "--json")
    doc = json.loads(out)
    assert doc["ok"] is True and doc["changed"] is False and doc["state"] == "abandoned"
