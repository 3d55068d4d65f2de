"""A provision through the CLI while one node of the Keycloak cluster is down (issue 17).

The embedded stack with the real Docker engine, MariaDB, Redis and the Nextcloud stand-in
(like test_operations.py), but the identity service is the two-node production-mode cluster
of tests/fixtures/keycloak_cluster.py: the tool's settings point keycloak_url at node 1,
keycloak_failover_urls at node 2 and keycloak_public_url (the issuer, ``KC_HOSTNAME``) at the
cluster's front proxy. Node 1 is stopped before the provision and started again after it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack import keycloak_cluster as kcc
from smartpraxx_provision.secrets import FileSecretStore
from tests.fixtures.keycloak_cluster import ADMIN_USER, KeycloakCluster, discovery_issuer

from .conftest import _PASSED_THROUGH, ADMIN_SECRET, GP_SAMPLE, REPO, Cli, _teardown

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


def _cluster_settings(cluster: KeycloakCluster, cli: Cli) -> Settings:
    return load_settings(env={}, overrides={
        "state_dir": str(cli.state_dir),
        "keycloak_url": cluster.urls[0],
        "keycloak_failover_urls": ",".join(cluster.urls[1:]),
        "keycloak_public_url": cluster.front_url,
    })


@pytest.fixture(scope="module")
def cluster_cli(
    tmp_path_factory: pytest.TempPathFactory,
    keycloak_cluster: KeycloakCluster,
    docker_engine: DockerEngine,
    local_images: dict[str, str],
    mail_sink: Settings,
) -> Iterator[Cli]:
    state_dir = tmp_path_factory.mktemp("e2e-cluster-state")
    FileSecretStore(state_dir / "secrets").put(ADMIN_SECRET, keycloak_cluster.admin_password)
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("SMARTPRAXX_") or k in _PASSED_THROUGH
    }
    env.update({
        "SMARTPRAXX_STATE_DIR": str(state_dir),
        "SMARTPRAXX_HEALTH_TIMEOUT": "240",
        # a realm import on two busy cores can take longer than the default 30 s
        "SMARTPRAXX_KEYCLOAK_TIMEOUT": "120",
        "SMARTPRAXX_SMTP_PORT": str(mail_sink.smtp_port),
        "PYTHONPATH": str(REPO),
        **keycloak_cluster.cli_env(),
    })
    cli = Cli(env=env, state_dir=state_dir, host=f"cloud{800 + secrets.randbelow(199)}")
    add = cli("hosts", "add", cli.host, "--endpoint", "unix:///var/run/docker.sock",
              "--capacity", "20")
    assert add.returncode == 0, add.stderr
    yield cli
    _teardown(cli, _cluster_settings(keycloak_cluster, cli), docker_engine)


def _log_problems(cluster: KeycloakCluster) -> list[str]:
    """WARN/ERROR lines of the nodes' logs (for a failure message; no secrets are logged)."""
    lines: list[str] = []
    for log in cluster.logs:
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        lines += [f"{log.name}: {line[:300]}" for line in text.splitlines()
                  if (" WARN " in line or " ERROR " in line) and "Unsafe" not in line]
    return lines[-30:]


def _staff(cluster: KeycloakCluster, url: str, realm: str) -> set[str]:
    door = KeycloakAdapter(url, ADMIN_USER, cluster.admin_password, timeout=60)
    door.connect()
    return {u["username"] for u in door.users(realm)
            if not u["username"].startswith("smartpraxx-smoke")}


def test_provision_while_node1_is_down_then_both_nodes_serve_the_realm(
    cluster_cli: Cli, keycloak_cluster: KeycloakCluster
) -> None:
    url1, url2 = keycloak_cluster.urls
    keycloak_cluster.stop(0)
    try:
        started = time.monotonic()
        code, doc = cluster_cli.json("provision", str(GP_SAMPLE), "--host", cluster_cli.host,
                                     "--yes")
        keycloak_cluster.figures["provision_with_node1_down_s"] = round(
            time.monotonic() - started, 1)
        run = cluster_cli.runs[-1]
        assert code == 0, (run.stderr[-3000:], doc.get("smoke"), _log_problems(keycloak_cluster))
        assert doc["ok"] is True and doc["smoke"]["ok"] is True, doc["smoke"]
        checks = {c["check"]: c["ok"] for c in doc["smoke"]["checks"]}
        assert checks["login"] and checks["oidc-discovery"] and checks["oidc-client"], checks
        assert doc["invitations"]["sent"] == 8
        # the door said which node failed and which one answered; no secret in the output
        assert f"Keycloak node {url1} failed" in run.stderr
        assert f"Keycloak node {url2} answered" in run.stderr
        assert keycloak_cluster.admin_password not in run.stderr + run.stdout
    finally:
        started = time.monotonic()
        keycloak_cluster.start(0)
        kcc.wait_for_view(keycloak_cluster.running(), 2)
        keycloak_cluster.figures["node1_back_in_cluster_s"] = round(
            time.monotonic() - started, 1)
    realm = doc["realm"]
    issuer = f"{keycloak_cluster.front_url}/realms/{realm}"
    assert doc["urls"]["issuer"] == issuer
    # node 1 missed the whole provision; it serves the realm from the shared database
    assert discovery_issuer(url1, realm) == issuer
    assert discovery_issuer(url2, realm) == issuer
    staff = _staff(keycloak_cluster, url1, realm)
    assert len(staff) == 8 and staff == _staff(keycloak_cluster, url2, realm)
    # with both nodes up again, a second run converges to no changes (through node 1)
    code, again = cluster_cli.json("provision", str(GP_SAMPLE), "--yes")
    assert code == 0, cluster_cli.runs[-1].stderr[-3000:]
    assert again["no_changes"] is True, again
    assert "Keycloak node" not in cluster_cli.runs[-1].stderr  # node 1 answered: no failover
    print("\nkeycloak cluster figures:", keycloak_cluster.figures)
