"""Ownership through the CLI against the real Docker engine and the real Keycloak (issue 11).

Two state dirs (two inventories = two installations) on one engine and one Keycloak, and an
inventory restored from an older backup. The tests build on each other in file order (a
provision costs a minute of real container start-up); each asserts its own outcome.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.ownership import (
    LABEL_INSTALLATION,
    LABEL_PRACTICE,
    REALM_ATTR_INSTALLATION,
    REALM_ATTR_PRACTICE,
)
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter import load_practice_spec

from .conftest import ADMIN_SECRET, GP_SAMPLE, SAMPLES, Cli, slot_objects

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DENTAL_SAMPLE = SAMPLES / "zahnarztpraxis-sonnenschein.xlsx"
MVZ_SAMPLE = SAMPLES / "mvz-rheinaue.xlsx"
STATE: dict[str, Any] = {}


def _kc(keycloak: Settings) -> KeycloakAdapter:
    return KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))


def _snapshot(engine: DockerEngine, kc: KeycloakAdapter, cli: Cli, slot: str) -> dict[str, Any]:
    """What must not change of a practice: its containers (id, start time), volumes, network,
    secrets, realm attributes and users."""
    objects = slot_objects(engine, slot)
    containers = {}
    for name in objects["containers"]:
        attrs = engine.client.containers.get(name).attrs
        containers[name] = (attrs["Id"], attrs["State"]["StartedAt"], attrs["State"]["Status"])
    store = FileSecretStore(cli.state_dir / "secrets")
    realm = kc.get_realm(slot) or {}
    return {
        "objects": objects,
        "containers": containers,
        "secrets": {p: store.get(p) for p in store.list(f"practices/{slot}")},
        "realm_attributes": realm.get("attributes"),
        "users": sorted((u["id"], u["username"], u["enabled"]) for u in kc.users(slot)),
    }


def _installation(cli: Cli) -> str:
    settings = load_settings(env={}, overrides={"state_dir": str(cli.state_dir)})
    with open_inventory(settings) as inv:
        return inv.installation_id


@pytest.fixture(scope="module")
def second(e2e: Cli, keycloak: Settings, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A second inventory (state dir) on the same engine, Keycloak and host name."""
    return _other_inventory(e2e, keycloak, tmp_path_factory.mktemp("e2e-state-second"))


def _other_inventory(e2e: Cli, keycloak: Settings, state_dir: Path) -> Cli:
    admin = FileSecretStore(keycloak.secrets_dir).require(ADMIN_SECRET)
    FileSecretStore(state_dir / "secrets").put(ADMIN_SECRET, admin)
    cli = Cli(
        env={**e2e.env, "SMARTPRAXX_STATE_DIR": str(state_dir)}, state_dir=state_dir, host=e2e.host
    )
    add = cli("hosts", "add", e2e.host, "--endpoint", "unix:///var/run/docker.sock")
    assert add.returncode == 0, add.stderr
    return cli


@pytest.fixture(scope="module", autouse=True)
def _realm_cleanup(e2e: Cli, keycloak: Settings) -> Any:
    """Also remove realms of this module's host that no inventory lists (e.g. after a
    restored backup), after the conftest's teardown of Docker objects."""
    yield
    kc = _kc(keycloak)
    for name in kc.realm_names():
        if re.fullmatch(rf"nc\d\d-{e2e.host}", name):
            kc.delete_realm(name)


def test_first_inventory_labels_everything_it_creates(
    e2e: Cli, docker_engine: DockerEngine, keycloak: Settings
) -> None:
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--host", e2e.host, "--yes")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    slot = doc["slot"]
    assert slot == f"nc01-{e2e.host}"
    code, listing = e2e.json("practices", "list")
    (practice,) = listing["practices"]
    owner = {LABEL_INSTALLATION: _installation(e2e), LABEL_PRACTICE: practice["practice_id"]}
    objects = slot_objects(docker_engine, slot)
    assert len(objects["containers"]) == 4 and len(objects["volumes"]) == 2
    labels = [docker_engine.client.containers.get(n).labels for n in objects["containers"]]
    labels += [docker_engine.client.volumes.get(n).attrs["Labels"] for n in objects["volumes"]]
    labels += [docker_engine.client.networks.get(n).attrs["Labels"] for n in objects["networks"]]
    assert len(labels) == 7
    for lab in labels:
        assert {k: lab.get(k) for k in owner} == owner
    attrs = _kc(keycloak).get_realm(slot)["attributes"]  # type: ignore[index]
    assert attrs[REALM_ATTR_INSTALLATION] == owner[LABEL_INSTALLATION]
    assert attrs[REALM_ATTR_PRACTICE] == owner[LABEL_PRACTICE]
    STATE.update(slot=slot, owner=owner)
    STATE["before"] = _snapshot(docker_engine, _kc(keycloak), e2e, slot)


def test_second_inventory_refuses_the_same_practice(
    e2e: Cli, second: Cli, docker_engine: DockerEngine, keycloak: Settings
) -> None:
    assert _installation(second) != STATE["owner"][LABEL_INSTALLATION]
    plan = second("provision", str(GP_SAMPLE), "--host", e2e.host, "--dry-run")
    assert plan.returncode == 1 and f"realm {STATE['slot']}" in plan.stderr, plan.stderr
    proc = second("provision", str(GP_SAMPLE), "--host", e2e.host, "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"realm {STATE['slot']}" in proc.stderr
    assert STATE["owner"][LABEL_INSTALLATION] in proc.stderr
    assert f"hosts scan {e2e.host}" in proc.stderr
    # nothing was allocated or created by the second inventory
    _code, listing = second.json("practices", "list", "--all")
    assert listing["practices"] == []
    assert slot_objects(docker_engine, f"nc02-{e2e.host}") == {
        "containers": [], "volumes": [], "networks": []}
    assert _kc(keycloak).get_realm(f"nc02-{e2e.host}") is None
    assert _snapshot(docker_engine, _kc(keycloak), e2e, STATE["slot"]) == STATE["before"]


def test_second_inventory_holding_the_slot_is_refused_by_the_doors(
    e2e: Cli, second: Cli, docker_engine: DockerEngine, keycloak: Settings, tmp_path: Path
) -> None:
    """An inventory that already holds nc01 (allocated before owner labels existed, the
    reproduced case): provision and decommission (dry run and real) refuse, nothing of the
    first practice changes, and its smoke still passes."""
    spec = load_practice_spec(GP_SAMPLE)
    settings = load_settings(env={}, overrides={"state_dir": str(second.state_dir)})
    with open_inventory(settings) as inv:
        rec = inv.allocate_practice(
            spec.praxisname,
            order_id=spec.order_id,
            display_name=spec.display_name,
            kv=spec.kv,
            specialties=spec.specialties,
            billable_seats=1,
            host=e2e.host,
        )
    assert rec.slot.id == STATE["slot"]
    proc = second("provision", str(GP_SAMPLE), "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(rf"(network|volume|container|realm) {STATE['slot']}", proc.stderr)
    assert STATE["owner"][LABEL_PRACTICE] in proc.stderr
    assert "nothing was changed" in proc.stderr
    # refused before any step after the allocation: not even secrets were generated
    assert FileSecretStore(second.state_dir / "secrets").list("practices/") == []
    plan = second("decommission", spec.praxisname, "--dry-run", "--export-to", str(tmp_path))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert STATE["owner"][LABEL_INSTALLATION] in plan.stderr
    assert "then delete" not in plan.stdout
    real = second("decommission", spec.praxisname, "--yes", "--export-to", str(tmp_path))
    assert real.returncode == 1, real.stdout + real.stderr
    assert list(tmp_path.iterdir()) == []  # not even an export was read from it
    assert _snapshot(docker_engine, _kc(keycloak), e2e, STATE["slot"]) == STATE["before"]
    # status of the second inventory does not call the first practice's objects its own
    code, seen = second.json("status", spec.praxisname)
    assert code == 4, seen  # down
    reasons = " ".join(seen["practices"][0]["verdict"]["reasons"])
    assert "not this practice's" in reasons and STATE["owner"][LABEL_PRACTICE] in reasons, seen
    code, doc = e2e.json("status", spec.praxisname)
    assert code == 0, doc  # the owner's own status: ok
    code, doc = e2e.json("smoke", spec.praxisname)
    assert code == 0, e2e.runs[-1].stderr[-2000:]
    assert doc["ok"] is True
    after = _snapshot(docker_engine, _kc(keycloak), e2e, STATE["slot"])
    assert after["containers"] == STATE["before"]["containers"]
    assert after["secrets"] == STATE["before"]["secrets"]
    assert after["realm_attributes"] == STATE["before"]["realm_attributes"]


def _backup(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite inventory (the online backup API)."""
    with sqlite3.connect(src) as s, sqlite3.connect(dst) as d:
        s.backup(d)


def test_restored_older_inventory_allocates_past_live_slots_then_adopts(
    e2e: Cli, docker_engine: DockerEngine, keycloak: Settings, tmp_path: Path
) -> None:
    inventory = load_settings(env={}, overrides={"state_dir": str(e2e.state_dir)}).inventory_path
    backup = tmp_path / "inventory-backup.sqlite3"
    _backup(inventory, backup)
    dental = load_practice_spec(DENTAL_SAMPLE)
    code, doc = e2e.json("provision", str(DENTAL_SAMPLE), "--host", e2e.host, "--yes")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    assert doc["slot"] == f"nc02-{e2e.host}"
    # restore the older inventory (the secret store is not part of that backup)
    for extra in ("-wal", "-shm"):
        Path(str(inventory) + extra).unlink(missing_ok=True)
    shutil.copyfile(backup, inventory)
    code, listing = e2e.json("practices", "list")
    assert [p["slot"] for p in listing["practices"]] == [STATE["slot"]]

    code, scan = e2e.json("hosts", "scan", e2e.host)
    assert code == 0, e2e.runs[-1].stderr
    verdicts = {(o["kind"], o["name"]): o["verdict"] for o in scan["objects"]}
    nc02 = f"nc02-{e2e.host}"
    assert verdicts[("realm", nc02)] == "orphan"
    assert verdicts[("container", f"{nc02}-db")] == "orphan"
    assert verdicts[("container", f"{STATE['slot']}-db")] == "ours"
    human = e2e("hosts", "scan", e2e.host)
    assert "orphan" in human.stdout and nc02 in human.stdout

    # a new practice moves past the live slot nc02 the restored inventory does not know
    code, doc = e2e.json("provision", str(MVZ_SAMPLE), "--host", e2e.host, "--yes", "--no-smoke")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    assert doc["slot"] == f"nc03-{e2e.host}"

    # provisioning the practice from after the backup again is refused, not recreated
    proc = e2e("provision", str(DENTAL_SAMPLE), "--yes")
    assert proc.returncode == 1 and f"realm {nc02}" in proc.stderr, proc.stderr
    assert "practices adopt" in proc.stderr

    # adopt it deliberately: --yes is required, the dry run shows the owner
    refused = e2e("practices", "adopt", dental.praxisname, "--slot", nc02)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    code, plan = e2e.json("practices", "adopt", dental.praxisname, "--slot", nc02, "--dry-run")
    assert code == 0, e2e.runs[-1].stderr
    assert plan["plan"]["in_inventory"] is False and len(plan["plan"]["objects"]) == 8
    code, adopted = e2e.json(
        "practices", "adopt", dental.praxisname, "--slot", nc02,
        "--order-id", dental.order_id, "--yes",
    )
    assert code == 0, e2e.runs[-1].stderr
    assert adopted["changed"] is True
    code, scan = e2e.json("hosts", "scan", e2e.host)
    assert {o["verdict"] for o in scan["objects"]} == {"ours"}, json.dumps(scan, indent=1)
    # the adopted practice converges and passes its smoke
    code, doc = e2e.json("provision", str(DENTAL_SAMPLE), "--yes")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    assert doc["slot"] == nc02 and doc["smoke"]["ok"] is True


def test_objects_from_before_owner_marks_are_refused_until_adopted(
    e2e: Cli,
    docker_engine: DockerEngine,
    keycloak: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A practice made the way the tool did before owner marks (slot labels and the realm's
    slot attribute only, through the plain doors): provision refuses it, scan calls it
    unlabelled, an explicit adopt records it, then provision converges and smoke passes."""
    import openpyxl

    from smartpraxx_provision.operations import identity, nextcloud_stack
    from smartpraxx_provision.operations.context import OpContext
    from smartpraxx_provision.operations.ownership import live_slot_numbers
    from smartpraxx_provision.operations.provision import ensure_slot_secrets
    from smartpraxx_provision.output import Reporter

    third = _other_inventory(e2e, keycloak, tmp_path_factory.mktemp("e2e-state-legacy"))
    sample = third.state_dir / "altbestand.xlsx"
    wb = openpyxl.load_workbook(GP_SAMPLE)
    wb["Praxis"]["B2"] = "praxis-altbestand"
    wb.save(sample)
    spec = load_practice_spec(sample)
    settings = load_settings(env=third.env)
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    record = ctx.inventory.allocate_practice(
        spec.praxisname,
        order_id=spec.order_id,
        display_name=spec.display_name,
        kv=spec.kv,
        specialties=spec.specialties,
        billable_seats=3,
        host=e2e.host,
        live_numbers=live_slot_numbers(ctx, e2e.host),
    )
    slot = record.slot
    assert slot.id == f"nc04-{e2e.host}"  # past nc01..nc03 of the other inventory
    ensure_slot_secrets(ctx, spec, slot)
    identity.converge_realm(
        ctx.keycloak, spec, slot, settings, ctx.secrets, ctx.reporter
    )
    nextcloud_stack.launch_stack(
        ctx.engine(e2e.host), spec, slot, settings, ctx.secrets, ctx.reporter
    )
    ctx.inventory.close()
    assert "de.smartpraxx.practice" not in docker_engine.client.volumes.get(
        f"{slot.id}-data"
    ).attrs["Labels"]

    proc = third("provision", str(sample), "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "unlabelled" in proc.stderr and "no owner labels" in proc.stderr
    code, scan = third.json("hosts", "scan", e2e.host)
    mine = [o for o in scan["objects"] if o["slot"] == slot.id]
    assert len(mine) == 8 and {o["verdict"] for o in mine} == {"unlabelled"}

    code, adopted = third.json("practices", "adopt", spec.praxisname, "--yes")
    assert code == 0, third.runs[-1].stderr
    assert len(adopted["adopt_unlabelled"]) == 7 and adopted["label_realm"] is True

    code, doc = third.json("provision", str(sample), "--yes")
    assert code == 0, third.runs[-1].stderr[-3000:]
    assert doc["slot"] == slot.id and doc["smoke"]["ok"] is True
    code, scan = third.json("hosts", "scan", e2e.host)
    mine = [o for o in scan["objects"] if o["slot"] == slot.id]
    assert {o["verdict"] for o in mine} == {"ours"}, mine
    # the containers were replaced by labelled ones; the volumes kept their data
    labels = docker_engine.client.containers.get(f"{slot.id}-db").labels
    assert labels.get(LABEL_PRACTICE) == adopted["practice_id"]
    # another inventory cannot take it over by accident
    proc = e2e("practices", "adopt", spec.praxisname, "--slot", slot.id, "--order-id", "x", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _installation(third) in proc.stderr and "--from-installation" in proc.stderr
    assert spec.praxisname not in e2e("practices", "list").stdout
