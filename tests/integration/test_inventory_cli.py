"""``hosts`` and ``practices`` commands against a real inventory (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.cli import main
from smartpraxx_provision.config import Settings
from smartpraxx_provision.errors import ConflictError
from smartpraxx_provision.inventory import open_inventory

pytestmark = pytest.mark.integration

ENGINE = "unix:///var/run/docker.sock"


@pytest.fixture
def cli(
    inventory_settings_factory: Callable[[], Settings], capsys: pytest.CaptureFixture[str]
) -> Any:
    settings = inventory_settings_factory()
    base = ["--state-dir", str(settings.state_dir)]
    if settings.inventory_url:
        base += ["--set", f"inventory_url={settings.inventory_url}"]

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*base, *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.settings = settings  # type: ignore[attr-defined]
    return run


def test_hosts_add_list_drain_activate(cli: Any) -> None:
    code, _, err = cli("hosts", "add", "cloud001", "--endpoint", ENGINE, "--capacity", "3")
    assert code == 0 and "host cloud001 added" in err
    code, _, err = cli("hosts", "add", "cloud001", "--endpoint", ENGINE, "--capacity", "3")
    assert code == 0 and "exists, up to date" in err
    code, out, _ = cli("hosts", "list")
    assert code == 0
    assert out.splitlines()[1].split() == ["cloud001", "active", "0/3", "nc01", "no", ENGINE]
    code, out, _ = cli("hosts", "drain", "cloud001", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["changed"] is True and doc["host"]["state"] == "draining"
    code, out, _ = cli("hosts", "drain", "cloud001", "--dry-run")
    assert code == 0 and "nothing to do" in out
    code, out, _ = cli("hosts", "activate", "cloud001", "--json")
    assert json.loads(out)["host"]["state"] == "active"
    code, out, _ = cli("hosts", "list", "--json")
    assert [h["name"] for h in json.loads(out)["hosts"]] == ["cloud001"]


def test_hosts_add_dry_run_changes_nothing(cli: Any) -> None:
    code, out, _ = cli("hosts", "add", "cloud002", "--endpoint", ENGINE, "--dry-run")
    assert code == 0 and "would add host cloud002" in out
    code, out, _ = cli("hosts", "list", "--json")
    assert json.loads(out)["hosts"] == []


def test_hosts_tls(cli: Any, tmp_path: Path) -> None:
    files = {}
    for k in ("ca", "cert", "key"):
        files[k] = tmp_path / f"{k}.pem"
        files[k].write_text("pem")
    code, _, err = cli(
        "hosts",
        "add",
        "cloud003",
        "--endpoint",
        "tcp://10.0.0.3:2376",
        "--tls-ca",
        str(files["ca"]),
    )
    assert code == 2 and "--tls-cert" in err
    code, _, err = cli("hosts", "add", "cloud003", "--endpoint", "tcp://10.0.0.3:2376")
    assert code == 2 and "needs TLS" in err
    code, _, _ = cli(
        "hosts",
        "add",
        "cloud003",
        "--endpoint",
        "tcp://10.0.0.3:2376",
        "--tls-ca",
        str(files["ca"]),
        "--tls-cert",
        str(files["cert"]),
        "--tls-key",
        str(files["key"]),
        "--bootstrapping",  # not probed (no address but 127.0.0.1 is ever contacted here)
    )
    assert code == 0
    code, out, _ = cli("hosts", "list", "--json")
    assert json.loads(out)["hosts"][0]["tls"] == {k: str(v) for k, v in files.items()}
    assert json.loads(out)["hosts"][0]["state"] == "bootstrapping"


def test_hosts_errors_exit_codes(cli: Any) -> None:
    code, _, err = cli("hosts", "drain", "cloud404")
    assert code == 2 and "hosts add cloud404" in err
    code, _, err = cli("hosts", "add", "server1", "--endpoint", ENGINE)
    assert code == 2 and "cloud023" in err
    cli("hosts", "add", "cloud001", "--endpoint", ENGINE)
    code, out, _ = cli("hosts", "add", "cloud001", "--endpoint", "ssh://x@y", "--json")
    assert code == 1 and json.loads(out)["error"]["kind"] == "conflict"


def test_practices_list(cli: Any) -> None:
    with open_inventory(cli.settings) as inv:
        inv.add_host("cloud001", ENGINE)
        for name in ("praxis-a", "praxis-b"):
            inv.allocate_practice(
                name,
                order_id=f"SO-{name}",
                display_name=name,
                kv="KV Hessen",
                specialties=["hno"],
                billable_seats=2,
            )
        inv.tombstone_practice("praxis-a")
    code, out, _ = cli("practices", "list")
    assert code == 0
    assert [line.split() for line in out.splitlines()[1:]] == [
        ["praxis-b", "nc02-cloud001", "allocated", "2", "primary", "SO-praxis-b"]
    ]
    code, out, _ = cli("practices", "list", "--json", "--all")
    docs = json.loads(out)["practices"]
    assert [(d["praxisname"], d["slot"], d["state"]) for d in docs] == [
        ("praxis-a", "nc01-cloud001", "tombstoned"),
        ("praxis-b", "nc02-cloud001", "allocated"),
    ]
    assert set(docs[0]) >= {"billable_seats", "kv", "specialties", "order_id", "former_names",
                            "identity_shard"}


def test_operations_abandon_releases_a_lock_held_by_another_machine(cli: Any) -> None:
    with open_inventory(cli.settings) as inv:
        inv.hostname = "ops-laptop-2"  # a run that died on another operator's machine
        stale = inv.begin_operation("provision", "praxis-a")
        inv.hostname = "this-machine"
        with pytest.raises(ConflictError) as refused:
            inv.begin_operation("provision", "praxis-a")
    assert f"smartpraxx-provision operations abandon {stale} --yes" in str(refused.value.hint)
    code, out, _ = cli("operations", "abandon", stale, "--dry-run", "--json")
    assert code == 0
    plan = json.loads(out)["plan"]
    assert (plan["state"], plan["hostname"], plan["kind"]) == ("running", "ops-laptop-2",
                                                              "provision")
    code, _, err = cli("operations", "abandon", stale, "--json")  # no --yes: refused, exit 2
    assert code == 2 and "--yes" in err
    with open_inventory(cli.settings) as inv:
        assert inv.get_operation(stale).state == "running"  # type: ignore[union-attr]
    code, out, _ = cli("operations", "abandon", stale, "--yes", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] and doc["changed"] and doc["state"] == "abandoned"
    with open_inventory(cli.settings) as inv:
        assert inv.get_operation(stale).state == "abandoned"  # type: ignore[union-attr]
        inv.hostname = "this-machine"
        taken = inv.begin_operation("provision", "praxis-a")  # the lock is free again
        inv.end_operation(taken, "done")
    code, out, _ = cli("operations", "abandon", stale, "--yes", "--json")  # idempotent
    assert code == 0 and json.loads(out)["changed"] is False
    code, out, _ = cli("operations", "abandon", taken, "--yes", "--json")  # a finished run
    assert code == 0 and json.loads(out)["state"] == "done"


def test_operations_abandon_refuses_a_live_run_and_an_unknown_id(cli: Any) -> None:
    with open_inventory(cli.settings) as inv:
        live = inv.begin_operation("rename", "praxis-b")  # this process, alive
    code, _, err = cli("operations", "abandon", live, "--yes")
    assert code == 1 and "still running on this machine" in err, err
    with open_inventory(cli.settings) as inv:
        assert inv.get_operation(live).state == "running"  # type: ignore[union-attr]
        inv.end_operation(live, "done")
    code, _, err = cli("operations", "abandon", "no-such-op", "--yes")
    assert code == 2 and "no-such-op" in err
