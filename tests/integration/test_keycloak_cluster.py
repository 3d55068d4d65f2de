"""Keycloak as a cluster: two production-mode nodes on one PostgreSQL, jdbc-ping discovery,
configured from the Ansible identity role's own template (tests/fixtures/keycloak_cluster.py).
Run with ``-s`` to see the measured figures (start, cluster formation, failover).

The tests share the session's cluster and run in file order: the last one stops node 1 and
starts it again (each start is ~30-90 s on this machine)."""

from __future__ import annotations

import logging
import secrets
import time

import psycopg
import pytest

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.devstack import keycloak_cluster as kcc
from tests.fixtures.keycloak_cluster import ADMIN_USER, KeycloakCluster, discovery_issuer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INVALIDATION_TIMEOUT = 15.0


def _door(cluster: KeycloakCluster, *urls: str) -> KeycloakAdapter:
    door = KeycloakAdapter(urls[0], ADMIN_USER, cluster.admin_password, timeout=60,
                           failover_urls=urls[1:])
    door.connect()
    return door


def test_nodes_run_production_mode_on_the_shared_postgresql(
    keycloak_cluster: KeycloakCluster,
) -> None:
    env = keycloak_cluster.env(0)
    # the role's settings, rendered from its template
    assert env["KC_DB"] == "postgres" and env["KC_CACHE_STACK"] == "jdbc-ping"
    assert env["KC_HTTP_ENABLED"] == "true" and env["KC_PROXY_HEADERS"] == "xforwarded"
    assert env["KC_HOSTNAME"] == keycloak_cluster.front_url
    for node in keycloak_cluster.running():
        text = node.log.read_text(encoding="utf-8", errors="replace")
        assert "Profile prod activated" in text, node.spec.name
        assert f"Listening on: http://127.0.0.1:{node.spec.http_port}" in text
        assert "start-dev" not in " ".join(node.proc.args)  # type: ignore[arg-type]
        assert keycloak_cluster.admin_password not in text
    with psycopg.connect(keycloak_cluster.db.url(keycloak_cluster.dbname)) as conn:
        realms = {r[0] for r in conn.execute("SELECT name FROM realm").fetchall()}
    assert "master" in realms
    print("\nkeycloak cluster figures:", keycloak_cluster.figures)


def test_two_nodes_form_one_cluster(keycloak_cluster: KeycloakCluster) -> None:
    names = {s.name for s in keycloak_cluster.specs}
    rows = keycloak_cluster.ping_members()
    assert {r[0] for r in rows} == names, rows  # both registered through jdbc-ping
    assert sum(1 for r in rows if r[2]) == 1, rows  # one coordinator
    ports = {s.cluster_port for s in keycloak_cluster.specs}
    assert {int(r[1].rsplit(":", 1)[1]) for r in rows} == ports
    views = [kcc.cluster_views(n.log)[-1] for n in keycloak_cluster.running()]
    assert all(set(v.members) == names for v in views), views
    assert len({v.view_id for v in views}) == 1  # the same view on both nodes


def test_realm_created_through_node1_is_served_by_node2(
    keycloak_cluster: KeycloakCluster,
) -> None:
    url1, url2 = keycloak_cluster.urls
    realm = f"cluster-{secrets.token_hex(4)}"
    node1, node2 = _door(keycloak_cluster, url1), _door(keycloak_cluster, url2)
    node1.create_realm({"realm": realm, "enabled": True, "displayName": "Praxis Eins"})
    try:
        expected = f"{keycloak_cluster.front_url}/realms/{realm}"
        assert discovery_issuer(url2, realm) == expected
        assert discovery_issuer(url1, realm) == expected
        live = node2.get_realm(realm)
        assert live is not None and live["displayName"] == "Praxis Eins"
        # node 1 has the realm in its local cache now; a change through node 2 reaches it
        # only by the cluster's invalidation messages (the database alone would not)
        assert (node1.get_realm(realm) or {})["displayName"] == "Praxis Eins"
        node2.update_realm(realm, {"displayName": "Praxis Zwei"})
        started = time.monotonic()
        seen = None
        for _ in range(int(INVALIDATION_TIMEOUT / 0.2)):
            seen = (node1.get_realm(realm) or {}).get("displayName")
            if seen == "Praxis Zwei" or time.monotonic() - started > INVALIDATION_TIMEOUT:
                break
            time.sleep(0.2)
        assert seen == "Praxis Zwei"
        keycloak_cluster.figures["invalidation_s"] = round(time.monotonic() - started, 2)
    finally:
        node2.delete_realm(realm)
    assert discovery_issuer(url1, realm) is None


def test_door_fails_over_while_node1_is_down(
    keycloak_cluster: KeycloakCluster, caplog: pytest.LogCaptureFixture
) -> None:
    url1, url2 = keycloak_cluster.urls
    door = _door(keycloak_cluster, url1, url2)
    assert door.active_url == url1
    before = set(door.realm_names())
    started = time.monotonic()
    keycloak_cluster.stop(0)
    keycloak_cluster.figures["node1_stop_s"] = round(time.monotonic() - started, 1)
    try:
        caplog.set_level(logging.WARNING, logger="smartpraxx.keycloak")
        started = time.monotonic()
        assert set(door.realm_names()) == before  # same session, next node
        keycloak_cluster.figures["failover_delay_s"] = round(time.monotonic() - started, 3)
        assert door.active_url == url2
        started = time.monotonic()
        door.realm_names()  # the same call, node 2 already active: the baseline
        keycloak_cluster.figures["same_call_on_node2_s"] = round(time.monotonic() - started, 3)
        assert [f[:2] for f in door.failovers] == [(url1, url2)]
        assert "no connection" in door.failovers[0][2]
        # a fresh door logs in on node 2 (the token endpoint fails over too)
        started = time.monotonic()
        fresh = _door(keycloak_cluster, url1, url2)
        keycloak_cluster.figures["fresh_login_with_node1_down_s"] = round(
            time.monotonic() - started, 3)
        assert fresh.active_url == url2
        realm = f"cluster-{secrets.token_hex(4)}"
        fresh.create_realm({"realm": realm, "enabled": True})
        assert discovery_issuer(url2, realm) is not None
        logged = caplog.text
        assert f"Keycloak node {url1} failed" in logged and f"node {url2} answered" in logged
        assert keycloak_cluster.admin_password not in logged
    finally:
        started = time.monotonic()
        keycloak_cluster.start(0)
        keycloak_cluster.figures["node1_restart_s"] = round(time.monotonic() - started, 1)
        kcc.wait_for_view(keycloak_cluster.running(), 2)
        keycloak_cluster.figures["rejoined_after_restart_s"] = round(
            time.monotonic() - started, 1)
    # node 1 is back in the cluster and serves the realm node 2 created while it was down
    try:
        assert discovery_issuer(url1, realm) == f"{keycloak_cluster.front_url}/realms/{realm}"
    finally:
        _door(keycloak_cluster, url1).delete_realm(realm)
    print("\nkeycloak cluster figures:", keycloak_cluster.figures)
