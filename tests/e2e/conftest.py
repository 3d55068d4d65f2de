"""End-to-end fixtures: whole operations through the real CLI against the local stack.

Each test module gets its own state dir (inventory, secret store) and its own fleet host
name, pointing at the local Docker engine; Keycloak is the session's real server (its admin
password is copied into the module's secret store), the realms send to the session's mail sink. Everything a test provisions is torn
down afterwards by slot label and realm name, also when the test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.ownership import LABEL_SLOT
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.secrets import FileSecretStore

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "starter_excel_samples"
GP_SAMPLE = SAMPLES / "hausarztpraxis-mueller.xlsx"
ADMIN_SECRET = "platform/keycloak-admin"


@dataclass
class Cli:
    """Runs ``smartpraxx-provision`` as a child process with the module's settings."""

    env: dict[str, str]
    state_dir: Path
    host: str
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def __call__(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "smartpraxx_provision.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.runs.append(proc)
        return proc

    def json(self, *args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        proc = self(*args, "--json", **kw)
        try:
            doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"stdout is not one JSON document: {proc.stdout[:500]!r}\nstderr: {proc.stderr[-2000:]}"
            ) from exc
        return proc.returncode, doc

    def all_output(self) -> str:
        return "\n".join(p.stdout + p.stderr for p in self.runs)


# The session's own settings that the CLI children keep: the tag of this checkout's images.
_PASSED_THROUGH = ("SMARTPRAXX_TEST_KEEP", "SMARTPRAXX_LOCAL_IMAGE_TAG")


def _settings_env(keycloak: Settings, state_dir: Path, smtp_port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMARTPRAXX_") or k in _PASSED_THROUGH
    }
    env.update(
        {
            "SMARTPRAXX_STATE_DIR": str(state_dir),
            "SMARTPRAXX_KEYCLOAK_URL": keycloak.keycloak_url,
            "SMARTPRAXX_KEYCLOAK_PORT": str(keycloak.keycloak_port),
            "SMARTPRAXX_HEALTH_TIMEOUT": "240",
            "SMARTPRAXX_SMTP_PORT": str(smtp_port),  # the session's mail sink
            "PYTHONPATH": str(REPO),
        }
    )
    return env


@pytest.fixture(scope="module")
def e2e(
    tmp_path_factory: pytest.TempPathFactory,
    keycloak: Settings,
    docker_engine: DockerEngine,
    local_images: dict[str, str],
    mail_sink: Settings,
) -> Iterator[Cli]:
    state_dir = tmp_path_factory.mktemp("e2e-state")
    admin = FileSecretStore(keycloak.secrets_dir).require(ADMIN_SECRET)
    FileSecretStore(state_dir / "secrets").put(ADMIN_SECRET, admin)
    host = f"cloud{800 + secrets.randbelow(199)}"
    cli = Cli(
        env=_settings_env(keycloak, state_dir, mail_sink.smtp_port), state_dir=state_dir, host=host
    )
    add = cli("hosts", "add", host, "--endpoint", "unix:///var/run/docker.sock", "--capacity", "20")
    assert add.returncode == 0, add.stderr
    yield cli
    _teardown(cli, keycloak, docker_engine)


def _teardown(cli: Cli, keycloak: Settings, engine: DockerEngine) -> None:
    """Remove every container, volume, network and realm of the module's host."""
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    # sparse: no inspect per container, so another checkout's container vanishing meanwhile
    # cannot fail this teardown (the list answer carries the labels)
    for c in engine.client.containers.list(all=True, sparse=True, filters={"label": LABEL_SLOT}):
        if (c.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{cli.host}"):
            c.remove(force=True)
    for v in engine.client.volumes.list(filters={"label": LABEL_SLOT}):
        if (v.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{cli.host}"):
            v.remove(force=True)
    for n in engine.client.networks.list(filters={"label": LABEL_SLOT}):
        if (n.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{cli.host}"):
            n.remove()
    settings = load_settings(env={}, overrides={"state_dir": str(cli.state_dir)})
    with open_inventory(settings) as inv:
        realms = {p.realm for p in inv.list_practices(include_tombstoned=True)}
    for realm in sorted(realms):
        if kc.get_realm(realm) is not None:
            kc.delete_realm(realm)


def slot_objects(engine: DockerEngine, slot_id: str) -> dict[str, list[str]]:
    labels = {LABEL_SLOT: slot_id}
    return {
        "containers": sorted(c.name for c in engine.list_containers(labels)),
        "volumes": sorted(v.name for v in engine.list_volumes(labels)),
        "networks": sorted(n.name for n in engine.list_networks(labels)),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tls:
    """A module's own embedded stack in the TLS mode (local Caddy, its own Keycloak started
    with the browser hostname): its state dir, CLI environment and fleet host."""

    def __init__(self, state: Path, env: dict[str, str], host: str) -> None:
        self.state, self.env, self.host = state, env, host
        self.slots: list[str] = []

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smartpraxx_provision.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )

    def json(self, *args: str, timeout: float = 900) -> tuple[int, dict[str, Any]]:
        proc = self.cli(*args, "--json", timeout=timeout)
        assert proc.stdout.strip(), proc.stderr[-3000:]
        return proc.returncode, json.loads(proc.stdout)

    @property
    def settings(self) -> Settings:
        return load_settings(env={k: v for k, v in self.env.items()
                                  if k.startswith("SMARTPRAXX_")})

    @property
    def ca(self) -> str:
        return str(self.state / "proxy/caddy/data/caddy/pki/authorities/local/root.crt")


@pytest.fixture(scope="module")
def tls_settings() -> dict[str, str]:
    """Further SMARTPRAXX_* settings of a module's TLS stack (a module overrides this)."""
    return {}


@pytest.fixture(scope="module")
def tls(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: DockerEngine,
    tls_settings: dict[str, str],
) -> Iterator[Tls]:
    reuse = os.environ.get("SMARTPRAXX_TEST_TLS_STATE")
    state = Path(reuse) if reuse else tmp_path_factory.mktemp("tls-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPRAXX_")}
    if "SMARTPRAXX_LOCAL_IMAGE_TAG" in os.environ:
        env["SMARTPRAXX_LOCAL_IMAGE_TAG"] = os.environ["SMARTPRAXX_LOCAL_IMAGE_TAG"]
    kc_port = int(os.environ.get("SMARTPRAXX_TEST_TLS_KEYCLOAK_PORT") or free_port())
    env.update({
        "PYTHONPATH": str(REPO),
        "SMARTPRAXX_STATE_DIR": str(state),
        "SMARTPRAXX_KEYCLOAK_PORT": str(kc_port),
        "SMARTPRAXX_KEYCLOAK_URL": f"http://127.0.0.1:{kc_port}",
        "SMARTPRAXX_PROXY_PORT": os.environ.get("SMARTPRAXX_TEST_TLS_PROXY_PORT") or str(free_port()),
        "SMARTPRAXX_SMTP_PORT": os.environ.get("SMARTPRAXX_TEST_TLS_SMTP_PORT") or str(free_port()),
        "SMARTPRAXX_DOMAIN": "smartpraxx.localhost",
        "SMARTPRAXX_IDENTITY_HOST": "mein.smartpraxx.localhost",
        "SMARTPRAXX_PUBLIC_SCHEME": "https",
        "SMARTPRAXX_HEALTH_TIMEOUT": "240",
        **tls_settings,
    })
    t = Tls(state, env, f"cloud7{secrets.randbelow(100):02d}")
    up = t.cli("dev-stack", "up")
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    if not reuse:  # a reused state dir keeps its host (and its practice)
        add = t.cli("hosts", "add", t.host, "--endpoint", "unix:///var/run/docker.sock")
        assert add.returncode == 0, add.stderr
    yield t
    if reuse:
        return
    for c in docker_engine.client.containers.list(all=True, filters={"label": LABEL_SLOT}):
        if c.labels.get(LABEL_SLOT, "").endswith(f"-{t.host}"):
            c.remove(force=True, v=True)
    for v in docker_engine.client.volumes.list(filters={"label": LABEL_SLOT}):
        if (v.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{t.host}"):
            v.remove(force=True)
    for n in docker_engine.client.networks.list(filters={"label": LABEL_SLOT}):
        if (n.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{t.host}"):
            n.remove()
    # only what this module's state dir started (by pid): Keycloak, mail sink, Caddy
    from smartpraxx_provision.config import load_settings
    from smartpraxx_provision.devstack import keycloak, mailsink, proxy
    from smartpraxx_provision.output import Reporter

    s = load_settings(env={k: v for k, v in env.items() if k.startswith("SMARTPRAXX_")})
    for stop in (keycloak.stop_keycloak, keycloak.stop_shards, mailsink.stop_mailsink,
                 proxy.stop_proxy):
        stop(s, Reporter(quiet=True))
