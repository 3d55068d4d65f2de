"""Three real Docker engines: practices spread across the local engine and two test fleet
hosts (docker-in-docker, each its own engine over mutual TLS on 127.0.0.1), one host stops
and comes back (issue 17).

The module's own TLS-mode stack (the ``tls`` fixture: local Caddy, its own Keycloak), so the
smoke includes the staff member's path: the code flow through the practice's Nextcloud on
its fleet host, whose idp gateway reaches the identity provider through the local proxy's
socket. Images are copied to the fleet hosts by the provision itself (``docker save | load``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from smartpraxx_provision.devstack import fleet_host
from smartpraxx_provision.output import Reporter

from .conftest import Tls

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "starter_excel_samples"
PRACTICES = {
    "praxis-mueller": SAMPLES / "hausarztpraxis-mueller.xlsx",
    "zahnarzt-sonnenschein": SAMPLES / "zahnarztpraxis-sonnenschein.xlsx",
    "mvz-rheinaue": SAMPLES / "mvz-rheinaue.xlsx",
}
FOURTH = "praxis-vierte"
FIFTH = "praxis-fuenfte"
BACK_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def fleet(tls: Tls) -> Iterator[list[fleet_host.FleetHost]]:
    """Two test fleet hosts registered over TLS next to the module's local host."""
    settings = tls.settings
    number = int(tls.host[5:]) + 200  # cloud7NN is the local one; cloud9NN, cloud9NN+1 here
    names = [f"cloud{number}", f"cloud{number + 1}"]
    hosts: list[fleet_host.FleetHost] = []
    try:
        for name in names:
            host = fleet_host.ensure_fleet_host(settings, Reporter(quiet=True), name)
            hosts.append(host)
            added = tls.cli(*host.hosts_add_args(), "--capacity", "4")
            assert added.returncode == 0, added.stdout + added.stderr
        yield hosts
    finally:
        for name in names:
            fleet_host.remove_fleet_host(settings, name)


def _gp_variant(tmp: Path, praxisname: str, order: str) -> Path:
    """The GP sample under another praxisname and order number."""
    wb = openpyxl.load_workbook(PRACTICES["praxis-mueller"])
    wb["Praxis"]["B2"] = praxisname
    wb["Praxis"]["B8"] = order
    path = tmp / f"{praxisname}.xlsx"
    wb.save(path)
    return path


def _provision(tls: Tls, sample: Path) -> dict[str, Any]:
    proc = tls.cli("provision", str(sample), "--yes", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _checks(doc: dict[str, Any]) -> dict[str, bool]:
    return {c["check"]: c["ok"] for c in doc["smoke"]["checks"]}


def _verdicts(tls: Tls) -> tuple[int, dict[str, dict[str, Any]]]:
    code, doc = tls.json("status")
    return code, {p["praxisname"]: p for p in doc["practices"]}


def _wait_back(tls: Tls, praxisname: str) -> dict[str, Any]:
    """Bounded: until the practice on the restarted host is ``ok`` again (its smoke passes)."""
    deadline = time.monotonic() + BACK_TIMEOUT
    last: dict[str, Any] = {}
    for _ in range(60):
        code, last = tls.json("smoke", praxisname)
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(4)
    return last


def test_practices_spread_a_host_stops_and_comes_back(
    tls: Tls, fleet: list[fleet_host.FleetHost], tmp_path: Path
) -> None:
    fleet_names = {h.name for h in fleet}
    placed: dict[str, str] = {}
    for name, sample in PRACTICES.items():
        doc = _provision(tls, sample)
        placed[name] = doc["slot"].split("-", 1)[1]
        assert all(_checks(doc).values()), doc["smoke"]
        assert "nextcloud-login" in _checks(doc)  # the staff member's path, not skipped
        # the provision itself copied the slot images to a fleet host that lacked them
        first_on_host = list(placed.values()).count(placed[name]) == 1
        copied = set(doc["images_copied"])
        if placed[name] in fleet_names and first_on_host:
            assert tls.settings.nextcloud_image in copied, doc["images_copied"]
        else:
            assert not copied, doc["images_copied"]
    # placement by load: the three practices on three engines
    assert set(placed.values()) == {tls.host, *fleet_names}, placed

    down = fleet[0]
    victim = next(n for n, h in placed.items() if h == down.name)
    assert fleet_host.stop_fleet_host(tls.settings, down.name)

    code, by_name = _verdicts(tls)
    assert code == 4, by_name  # at least one practice down
    verdict = by_name[victim]["verdict"]
    assert verdict["verdict"] == "down", verdict
    assert any(down.endpoint in reason for reason in verdict["reasons"]), verdict
    assert all(by_name[n]["verdict"]["verdict"] == "ok" for n in placed if n != victim), by_name

    # an operation on the stopped host's practice fails cleanly, naming the engine
    code, smoke = tls.json("smoke", victim)
    assert code == 1 and not smoke["ok"], smoke
    assert down.endpoint in json.dumps(smoke), smoke

    # the next practice goes elsewhere; the silent host is named
    fourth = _provision(tls, _gp_variant(tmp_path, FOURTH, "SPX-2026-000998"))
    assert fourth["slot"].split("-", 1)[1] != down.name, fourth["slot"]
    assert fourth["skipped_hosts"] == [down.name], fourth["skipped_hosts"]
    assert all(_checks(fourth).values()), fourth["smoke"]

    fleet_host.ensure_fleet_host(tls.settings, Reporter(quiet=True), down.name)
    back = _wait_back(tls, victim)
    assert back.get("ok"), back
    for name in [*PRACTICES, FOURTH]:
        code, doc = tls.json("smoke", name)
        assert code == 0 and doc["ok"], (name, doc)
        assert {c["check"] for c in doc["checks"]} >= {"nextcloud-login", "login", "apps"}
    code, by_name = _verdicts(tls)
    assert code == 0, {n: p["verdict"] for n, p in by_name.items()}

    # drain works across hosts: the drained TLS host gets nothing, the restarted one does
    other = fleet[1]
    code, drained = tls.json("hosts", "drain", other.name)
    assert code == 0, drained
    fifth = _provision(tls, _gp_variant(tmp_path, FIFTH, "SPX-2026-000999"))
    assert fifth["slot"] == f"nc02-{down.name}", fifth["slot"]  # fewest used, not drained
    assert all(_checks(fifth).values()), fifth["smoke"]
    assert not fifth["images_copied"]  # the host kept its images over the restart
