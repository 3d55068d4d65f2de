"""Converge the ``practice_host`` role on a real target: a container from the local Debian
base image, reached with the ``community.docker.docker`` connection plugin, through the real
``hosts bootstrap`` code path (routing file, 0600 extra-vars file, streamed ansible-playbook,
PLAY RECAP, host state).

The container test variable ``smartpraxx_container_test`` is set: loading nftables, starting
or reloading services (docker, caddy, ssh, timesyncd, timers) need a kernel and systemd the
container does not have. ``smartpraxx_allow_unencrypted_data`` is set after the first run has
shown that the LUKS check fails the play on the container's overlay filesystem.
Order matters (one container per module): LUKS refusal → converge → idempotence (changed=0)
→ restore check against a real restic snapshot.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import OperationFailed
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.fleet import STORE_PATH_RESTIC, PlayResult, bootstrap_host
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.proxy import render_host_routes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE_IMAGE = "smartpraxx/debian-base:bookworm"
PREFIX = "smartpraxx-fleettest"
HOST = "cloud901"
REPOSITORY = "/var/backups/smartpraxx-restic"
# A stand-in fleet host: the Debian base plus python3 for Ansible, and policy-rc.d so that
# package installs do not try to start services (the container has no init system). The
# package lists stay, like on a real host (the role's apt cache_valid_time relies on them).
DOCKERFILE = f"""FROM {BASE_IMAGE}
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-apt
"""
TARGET_IMAGE = f"{PREFIX}/target:{hashlib.sha256(DOCKERFILE.encode()).hexdigest()[:12]}"
CONTAINER_VARS = {"smartpraxx_container_test": True, "ansible_become": False}


def _docker(*args: str, timeout: float = 120, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"docker {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def _exec(container: str, script: str) -> str:
    return _docker("exec", container, "sh", "-c", script)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    if shutil.which("docker") is None or shutil.which("ansible-playbook") is None:
        pytest.skip("needs the docker CLI and ansible-playbook (pip install -e '.[fleet]')")
    probe = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True,
                           timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip(f"local base image {BASE_IMAGE} is not imported yet (debootstrap + docker import)")
    if subprocess.run(["docker", "image", "inspect", TARGET_IMAGE], capture_output=True,
                      timeout=30, check=False).returncode != 0:
        _docker("build", "-q", "-t", TARGET_IMAGE, "-", stdin=DOCKERFILE, timeout=600)
    name = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, "--label", f"{PREFIX}=1", TARGET_IMAGE,
            "sleep", "infinity")
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, target: str) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fleet")
    settings = load_settings(
        env={}, overrides={"state_dir": str(tmp / "state"), "backup_repository": REPOSITORY}
    )
    with open_inventory(settings) as inv:
        inv.add_host(HOST, f"ssh://root@{HOST}.test", capacity=20, state="bootstrapping")
    inventory_file = tmp / "hosts.ini"
    inventory_file.write_text(
        f"[practice_hosts]\n{HOST} ansible_connection=community.docker.docker "
        f"ansible_host={target}\n",
        encoding="utf-8",
    )
    routes = render_host_routes(
        settings,
        [(Slot(HOST, 7), "nc07-cloud901-app:80"), (Slot(HOST, 2), "nc02-cloud901-app:80")],
    )
    routes_file = tmp / f"{HOST}.caddy"
    routes_file.write_text(routes, encoding="utf-8")
    return {"settings": settings, "inventory": str(inventory_file), "routes": routes,
            "routes_file": str(routes_file), "container": target}


def _bootstrap(
    fleet: dict[str, Any], lines: list[str], *, expect_failure: bool = False, **extra: Any
) -> PlayResult:
    settings: Settings = fleet["settings"]
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    try:
        return bootstrap_host(
            ctx, HOST, inventory=fleet["inventory"], output=lines.append,
            extra_vars={**CONTAINER_VARS, "practice_host_routes_file": fleet["routes_file"],
                        **extra},
        )
    except OperationFailed as err:
        if expect_failure:
            raise
        pytest.fail(f"{err.message}\n" + "\n".join(lines[-40:]))
    finally:
        ctx.inventory.close()


def _state(settings: Settings) -> str:
    with open_inventory(settings) as inv:
        record = inv.get_host(HOST)
    assert record is not None
    return record.state


def test_luks_check_fails_the_play_on_an_unencrypted_filesystem(fleet: dict[str, Any]) -> None:
    lines: list[str] = []
    with pytest.raises(OperationFailed) as info:
        _bootstrap(fleet, lines, expect_failure=True)
    text = "\n".join(lines)
    assert "LUKS check failed on cloud901" in text
    assert "smartpraxx_allow_unencrypted_data" in text
    assert info.value.details["recap"]["failed"] == 1
    assert _state(fleet["settings"]) == "bootstrapping"


def test_converge_then_second_run_changes_nothing(fleet: dict[str, Any]) -> None:
    container = fleet["container"]
    first: list[str] = []
    result = _bootstrap(fleet, first, smartpraxx_allow_unencrypted_data=True)
    assert result.returncode == 0, "\n".join(first[-40:])
    assert result.recap["changed"] > 5 and result.recap["failed"] == 0
    assert any("not on LUKS; allowed only" in line for line in first)
    assert _state(fleet["settings"]) == "active"

    # what the role left on the host
    assert _exec(container, f"cat /etc/caddy/routes/{HOST}.caddy") == fleet["routes"]
    daemon = _exec(container, "cat /etc/docker/daemon.json")
    assert '"live-restore": true' in daemon and '"max-size": "10m"' in daemon
    assert '"base": "172.30.0.0/16"' in daemon
    # tenant isolation on the shared host: no traffic between containers on the default
    # bridge, no privilege gain through setuid binaries in any container by default
    assert '"icc": false' in daemon and '"no-new-privileges": true' in daemon
    sshd = _exec(container, "mkdir -p /run/sshd && /usr/sbin/sshd -T")
    assert "passwordauthentication no" in sshd
    assert "permitrootlogin without-password" in sshd
    assert "tcp dport { 22, 80, 443 } ct state new accept" in _exec(
        container, "cat /etc/nftables.conf"
    )
    assert "Debian-Security" in _exec(
        container, "cat /etc/apt/apt.conf.d/52smartpraxx-unattended-upgrades"
    )
    assert "NTP=ptbtime1.ptb.de" in _exec(
        container, "cat /etc/systemd/timesyncd.conf.d/50-smartpraxx.conf"
    )
    assert _exec(container, "stat -c %a /etc/smartpraxx/restic.env").strip() == "600"
    assert _exec(container, f"test -f {REPOSITORY}/config && echo repo").strip() == "repo"
    stored = fleet["settings"]
    from smartpraxx_provision.secrets import open_secret_store

    password = open_secret_store(stored).require(STORE_PATH_RESTIC)
    assert f"RESTIC_PASSWORD={password}\n" in _exec(container, "cat /etc/smartpraxx/restic.env")
    assert not any(password in line for line in first), "secret leaked into ansible output"
    assert "Valid configuration" in _exec(
        container, "caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile 2>&1"
    )

    second: list[str] = []
    again = _bootstrap(fleet, second, smartpraxx_allow_unencrypted_data=True)
    assert again.returncode == 0, "\n".join(second[-40:])
    assert again.recap["changed"] == 0, "\n".join(line for line in second if "changed:" in line)


def test_restore_check_restores_the_latest_slot_snapshot(fleet: dict[str, Any]) -> None:
    container = fleet["container"]
    # a real restic snapshot laid out like smartpraxx-backup-slot writes it
    _exec(
        container,
        "set -e; d=/var/tmp/smartpraxx-backup/nc07-cloud901; mkdir -p $d; "
        "printf 'CREATE TABLE oc_test (id int);\\n-- Dump completed on 2025-01-01\\n' > $d/db.sql; "
        "set -a; . /etc/smartpraxx/restic.env; set +a; "
        "restic backup --quiet --tag slot=nc07-cloud901 $d; rm -rf $d",
    )
    lines: list[str] = []
    result = _bootstrap(
        fleet, lines, smartpraxx_allow_unencrypted_data=True, practice_host_restore_check=True
    )
    assert result.returncode == 0, "\n".join(lines[-40:])
    text = "\n".join(lines)
    assert "slot nc07-cloud901: snapshot" in text and "restore ok" in text
    assert result.recap["changed"] == 0
