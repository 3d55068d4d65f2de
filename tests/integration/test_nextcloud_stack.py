"""A practice's Nextcloud stack on the real Docker engine with real MariaDB and Redis and the
Nextcloud stand-in (a test double of Nextcloud that refuses occ commands/options the real one
lacks and really installs into the slot's DB and Redis).

Two throwaway slots on a unique host ``cloud9NN`` share the module: A is launched and
configured, B is launched for the isolation checks and then given a wrong DB password.
Everything they create is removed at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.nextcloud import NextcloudAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import AppChoice, PracticeSpec, PracticeType, Slot
from smartpraxx_provision.domain.ownership import LABEL_SLOT
from smartpraxx_provision.errors import ExternalServiceError
from smartpraxx_provision.operations.nextcloud_stack import (
    configure_nextcloud,
    launch_stack,
    remove_stack,
    slot_names,
    slot_status,
)
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.bundle import (
    CAP_ADD,
    CONTAINER_SECRETS,
    OIDC_PROVIDER_ID,
    desired_apps,
    desired_config,
    realm_issuer,
    slot_secret_refs,
)
from smartpraxx_provision.secrets import FileSecretStore

pytestmark = pytest.mark.integration

HOST = f"cloud9{os.getpid() % 100:02d}"
SLOT_A = Slot(HOST, 1)
SLOT_B = Slot(HOST, 2)
SPEC_A = PracticeSpec(
    praxisname="praxis-stack-a",
    display_name="Hausarztpraxis Stack A",
    practice_type=PracticeType.ARZTPRAXIS,
    kv="KV Nordrhein",
    specialties=(),
    order_id="IT-A",
    contact_email="a@example.org",
)
SPEC_B = PracticeSpec(
    praxisname="praxis-stack-b",
    display_name="Zahnarztpraxis Stack B",
    practice_type=PracticeType.ZAHNARZTPRAXIS,
    kv="KZV Bayern",
    specialties=(),
    order_id="IT-B",
    contact_email="b@example.org",
    apps=AppChoice(talk=False, passwords=False),
)


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    eng = DockerEngine()
    if not eng.answers():
        pytest.skip("Docker engine at /var/run/docker.sock does not answer")
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, engine: DockerEngine) -> Settings:
    state = tmp_path_factory.mktemp("nc-stack-state")
    tag = {k: v for k, v in os.environ.items() if k == "SMARTPRAXX_LOCAL_IMAGE_TAG"}
    cfg = load_settings(env=tag, overrides={"state_dir": str(state), "health_timeout": "150"})
    for image in (cfg.nextcloud_image, cfg.mariadb_image, cfg.redis_image):
        if not engine.image_exists(image):
            pytest.skip(f"image {image} is not built: run smartpraxx-provision dev-stack up")
    return cfg


@pytest.fixture(scope="module")
def store(settings: Settings) -> FileSecretStore:
    return FileSecretStore(settings.secrets_dir)


@pytest.fixture(scope="module")
def stacks(
    engine: DockerEngine, settings: Settings, store: FileSecretStore
) -> Iterator[dict[str, Any]]:
    reporter = Reporter(quiet=True)
    try:
        launched: dict[str, Any] = {}
        for key, spec, slot in (("a", SPEC_A, SLOT_A), ("b", SPEC_B, SLOT_B)):
            start = time.monotonic()
            launched[key] = launch_stack(engine, spec, slot, settings, store, reporter)
            launched[key]["wall_seconds"] = round(time.monotonic() - start, 1)
        print(
            f"\nlaunch times: A {launched['a']['wall_seconds']}s, B {launched['b']['wall_seconds']}s"
        )
        yield launched
    finally:
        for slot in (SLOT_A, SLOT_B):
            remove_stack(engine, slot, reporter)
        left = engine.list_containers({LABEL_SLOT: SLOT_A.id}) + engine.list_containers(
            {LABEL_SLOT: SLOT_B.id}
        )
        assert not left, f"containers left behind: {[c.name for c in left]}"


def _nc(engine: DockerEngine, slot: Slot) -> NextcloudAdapter:
    return NextcloudAdapter(engine, slot_names(slot).app)


def _sql(engine: DockerEngine, slot: Slot, store: FileSecretStore, query: str) -> str:
    names = slot_names(slot)
    password = store.require(slot_secret_refs(slot)["db_password"])
    result = engine.exec(
        names.db,
        [
            "mariadb",
            "--no-defaults",
            "--protocol=tcp",
            "-h127.0.0.1",
            "-unextcloud",
            "-N",
            "-e",
            query,
            "nextcloud",
        ],
        env={"MYSQL_PWD": password},
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_containers_run_with_slot_labels_and_volumes(
    engine: DockerEngine, stacks: dict[str, Any]
) -> None:
    for slot in (SLOT_A, SLOT_B):
        names = slot_names(slot)
        status = slot_status(engine, slot)
        for role in ("db", "redis", "app"):
            info = status["containers"][role]
            assert info is not None and info["status"] == "running", (slot.id, role, info)
            assert info["slot_label"] == slot.id
        assert status["volumes"] == {names.db_volume: True, names.data_volume: True}
        assert status["network"] is True
        assert status["nextcloud"]["installed"] is True
        labels = {c.name: c.labels for c in engine.list_containers({LABEL_SLOT: slot.id})}
        assert {names.db, names.redis, names.app} <= set(labels)
        assert labels[names.app]["de.smartpraxx.role"] == "app"
    # the app port is published on 127.0.0.1 only
    ports = engine.client.containers.get(slot_names(SLOT_A).app).attrs["NetworkSettings"]["Ports"]
    assert {b["HostIp"] for b in ports["80/tcp"]} == {"127.0.0.1"}


def test_app_installed_against_its_own_database(
    engine: DockerEngine, stacks: dict[str, Any], store: FileSecretStore
) -> None:
    for slot in (SLOT_A, SLOT_B):
        system = _nc(engine, slot).config_list()["system"]
        assert system["dbhost"].split(":")[0] == slot_names(slot).db
        assert system["dbtype"] == "mysql"
        tables = int(
            _sql(
                engine,
                slot,
                store,
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='nextcloud'",
            )
        )
        assert tables > 0, f"no Nextcloud tables in the database of {slot.id}"


def _probe(engine: DockerEngine, container: str, script: str) -> int:
    return engine.exec(container, ["sh", "-c", script], timeout=30).exit_code


def test_network_isolation_between_slots(engine: DockerEngine, stacks: dict[str, Any]) -> None:
    a, b = slot_names(SLOT_A), slot_names(SLOT_B)
    a_net = engine.client.containers.get(a.db).attrs["NetworkSettings"]["Networks"]
    a_ip = a_net[a.network]["IPAddress"]
    assert list(a_net) == [a.network]
    tcp = "timeout 5 bash -c 'exec 3<>/dev/tcp/{}/3306'"
    # positive control: B's app reaches B's DB by name
    assert _probe(engine, b.app, f"getent hosts {b.db}") == 0
    assert _probe(engine, b.app, tcp.format(b.db)) == 0
    # A's DB is neither resolvable nor reachable from B's app container
    assert _probe(engine, b.app, f"getent hosts {a.db}") != 0
    assert _probe(engine, b.app, tcp.format(a.db)) != 0
    assert _probe(engine, b.app, tcp.format(a_ip)) != 0


def test_no_secret_in_docker_inspect_and_each_container_gets_only_its_files(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stacks: dict[str, Any]
) -> None:
    """Every secret of the slot is in the store; none is in any container's inspect document
    (env, args, labels, config); each container holds only its own 0400 files, owned by the
    user that reads them; cron has no admin or DB password."""
    for slot in (SLOT_A, SLOT_B):
        names = slot_names(slot)
        values = {
            key: store.require(ref)
            for key, ref in slot_secret_refs(slot).items()
            if key in CONTAINER_SECRETS["app"] + CONTAINER_SECRETS["db"]
        }
        assert all(len(v) >= 16 for v in values.values())
        containers = engine.list_containers({LABEL_SLOT: slot.id})
        assert {c.name for c in containers} == {names.db, names.redis, names.app, names.cron}
        for c in containers:
            doc = json.dumps(engine.client.api.inspect_container(c.id))
            for key, value in values.items():
                assert value not in doc, f"{key} of {slot.id} in docker inspect {c.name}"
            env = engine.client.api.inspect_container(c.id)["Config"]["Env"] or []
            assert not [e for e in env if "PASSWORD=" in e], (c.name, "a *_PASSWORD in env")
        expected = {
            names.db: ("mysql", ["db-password", "db-root-password"]),
            names.redis: ("redis", ["redis-password"]),
            names.app: ("www-data", ["db-password", "nc-admin", "redis-password"]),
            names.cron: ("www-data", ["redis-password"]),
        }
        for container, (owner, files) in expected.items():
            listing = engine.exec(
                container,
                ["sh", "-c", "stat -c '%a %U %n' /run/secrets /run/secrets/*"],
                user=owner,
            )
            assert listing.ok, (container, listing.stderr)
            lines = listing.stdout.split("\n")
            assert lines[0] == f"500 {owner} /run/secrets", (container, lines)
            assert sorted(line for line in lines[1:] if line) == [
                f"400 {owner} /run/secrets/{f}" for f in files
            ], container
        # the file holds exactly the store's value (what the image's *_FILE reads)
        got = engine.exec(names.app, ["cat", "/run/secrets/nc-admin"], user="www-data")
        assert got.stdout == values["nc_admin"]
        # another user of the container cannot read it
        other = engine.exec(names.app, ["cat", "/run/secrets/nc-admin"], user="nobody")
        assert not other.ok


def test_containers_are_confined(
    engine: DockerEngine, settings: Settings, stacks: dict[str, Any]
) -> None:
    """cap_drop ALL + the image's minimal cap_add, no-new-privileges, pids and CPU limits."""
    names = slot_names(SLOT_A)
    for role, container in (
        ("db", names.db),
        ("redis", names.redis),
        ("app", names.app),
        ("cron", names.cron),
    ):
        host = engine.client.api.inspect_container(container)["HostConfig"]
        assert host["CapDrop"] == ["ALL"], container
        assert sorted(host["CapAdd"] or []) == sorted(CAP_ADD[role]), container
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), container
        assert host["PidsLimit"] == settings.slot_pids_limit, container
        assert host["NanoCpus"] == round(settings.slot_cpus * 1e9), container
    # the running processes really have no capabilities in db and redis
    for container in (names.db, names.redis):
        status = engine.exec(container, ["sh", "-c", "grep CapEff /proc/1/status"])
        assert status.stdout.split() == ["CapEff:", "0000000000000000"], (container, status)
    nnp = engine.exec(names.app, ["sh", "-c", "grep NoNewPrivs /proc/1/status"])
    assert nnp.stdout.split() == ["NoNewPrivs:", "1"]


def test_configure_converges_and_second_run_changes_nothing(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stacks: dict[str, Any]
) -> None:
    nc = _nc(engine, SLOT_A)
    issuer = realm_issuer(settings, SLOT_A)
    reporter = Reporter(quiet=True)
    first = configure_nextcloud(nc, SPEC_A, SLOT_A, settings, store, reporter, issuer=issuer)
    assert first.mutating_calls > 0 and first.changes

    # live state equals the desired state
    current = nc.config_list()
    desired = desired_config(SPEC_A, SLOT_A, settings)
    for key, value in desired["system"].items():
        assert current["system"].get(key) == value, f"system.{key}"
    for app, values in desired["apps"].items():
        for key, value in values.items():
            assert str(current["apps"][app][key]) == value, f"apps.{app}.{key}"
    apps = nc.app_list()
    plan = desired_apps(SPEC_A)
    assert set(plan.enable) <= set(apps["enabled"])
    assert not set(plan.disable) & set(apps["enabled"])
    provider = next(p for p in nc.oidc_providers() if p["identifier"] == OIDC_PROVIDER_ID)
    assert provider["clientId"] == "nextcloud"
    assert provider["discoveryEndpoint"] == f"{issuer}/.well-known/openid-configuration"
    assert provider["settings"]["mappingUid"] == "preferred_username"
    assert provider["settings"]["mappingGroups"] == "groups"
    assert not provider["settings"]["uniqueUid"]
    assert provider["settings"]["groupProvisioning"]

    second = configure_nextcloud(nc, SPEC_A, SLOT_A, settings, store, reporter, issuer=issuer)
    print(
        f"\nocc runs: first converge {first.occ_calls} ({first.mutating_calls} mutating), "
        f"no-op converge {second.occ_calls} ({second.mutating_calls} mutating)"
    )
    assert second.changes == []
    assert second.mutating_calls == 0
    assert second.occ_calls <= 3

    # a rotated client secret is noticed (fingerprint) and only the secret is re-sent
    store.put(slot_secret_refs(SLOT_A)["oidc_client_secret"], "rotated-" + "x" * 30)
    third = configure_nextcloud(nc, SPEC_A, SLOT_A, settings, store, reporter, issuer=issuer)
    assert third.mutating_calls == 2, third.changes  # provider secret + fingerprint
    fourth = configure_nextcloud(nc, SPEC_A, SLOT_A, settings, store, reporter, issuer=issuer)
    assert fourth.mutating_calls == 0


def test_launch_is_idempotent(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stacks: dict[str, Any]
) -> None:
    again = launch_stack(engine, SPEC_A, SLOT_A, settings, store, Reporter(quiet=True))
    assert set(again["containers"].values()) == {"running"}, again["containers"]
    assert again["app_port"] == stacks["a"]["app_port"]


def test_wrong_db_password_names_slot_and_container_and_spares_other_slot(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stacks: dict[str, Any]
) -> None:
    a = slot_names(SLOT_A)
    before = {c.name: (c.id, c.status) for c in engine.list_containers({LABEL_SLOT: SLOT_A.id})}
    b_ref = slot_secret_refs(SLOT_B)["db_password"]
    wrong = "wrong-password-" + "y" * 20
    store.put(b_ref, wrong)
    with pytest.raises(ExternalServiceError) as err:
        launch_stack(engine, SPEC_B, SLOT_B, settings, store, Reporter(quiet=True))
    exc = err.value
    assert SLOT_B.id in exc.message
    assert exc.obj == slot_names(SLOT_B).db and slot_names(SLOT_B).db in exc.message
    assert b_ref in exc.message and wrong not in exc.message
    assert wrong not in json.dumps(exc.to_dict())
    assert exc.details["slot"] == SLOT_B.id and exc.details["logs"].strip()
    assert "last log lines" in exc.message
    # nothing of slot A was touched
    after = {c.name: (c.id, c.status) for c in engine.list_containers({LABEL_SLOT: SLOT_A.id})}
    assert after == before
    assert _nc(engine, SLOT_A).status_http()["installed"] is True
    assert engine.inspect_container(a.db) is not None


def test_failed_install_is_reported_at_once_with_the_log(
    engine: DockerEngine, settings: Settings, store: FileSecretStore, stacks: dict[str, Any]
) -> None:
    """An admin password that occ reads as an option ('-t...') makes the image's install
    fail; the launch stops on the image's own failure line instead of waiting it out."""
    slot_c = Slot(HOST, 3)
    store.put(slot_secret_refs(slot_c)["nc_admin"], "-tdash" + "x" * 30)
    try:
        with pytest.raises(ExternalServiceError) as err:
            launch_stack(engine, SPEC_A, slot_c, settings, store, Reporter(quiet=True))
        assert "install failed" in err.value.message
        assert "Installing of nextcloud failed!" in err.value.details["logs"]
        assert err.value.obj == slot_names(slot_c).app
    finally:
        remove_stack(engine, slot_c, Reporter(quiet=True))


def test_remove_stack_is_idempotent(engine: DockerEngine, stacks: dict[str, Any]) -> None:
    # runs last (file order): B is removed here, A by the fixture's finalizer
    first = remove_stack(engine, SLOT_B, Reporter(quiet=True))
    assert any(r.startswith("volume") for r in first["removed"])
    assert remove_stack(engine, SLOT_B, Reporter(quiet=True))["removed"] == []
    status = slot_status(engine, SLOT_B)
    assert all(v is None for v in status["containers"].values())
    assert status["network"] is False and not any(status["volumes"].values())
