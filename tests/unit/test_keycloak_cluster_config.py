"""The cluster's configuration, without a server: the setting keycloak_failover_urls, and the
identity role's env template (rendered as the cluster tests render it) against the build the
nodes start from."""

from __future__ import annotations

import pytest

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import load_settings
from smartpraxx_provision.devstack import keycloak_cluster as kcc
from smartpraxx_provision.errors import ConfigError
from tests.fixtures.keycloak_cluster import role_env

ROLE_SECRETS = {
    "identity_host_keycloak_admin_password": "x",
    "identity_host_db_password": "y",
    "inventory_hostname": "id1.smartpraxx.de",
}


def test_failover_urls_default_to_none() -> None:
    settings = load_settings(env={}, overrides={})
    assert settings.keycloak_failover_urls == ""
    assert settings.keycloak_failover_url_list == ()
    door = KeycloakAdapter(settings.keycloak_url, "admin", "pw",
                           failover_urls=settings.keycloak_failover_url_list)
    assert door.urls == [settings.keycloak_url]


def test_failover_urls_from_the_environment_keep_their_order() -> None:
    settings = load_settings(env={
        "SMARTPRAXX_KEYCLOAK_URL": "http://127.0.0.1:8081",
        "SMARTPRAXX_KEYCLOAK_FAILOVER_URLS": "http://127.0.0.1:8082/, http://127.0.0.1:8081,"
                                             "https://id3.example.org",
    }, overrides={})
    door = KeycloakAdapter(settings.keycloak_url, "admin", "pw",
                           failover_urls=settings.keycloak_failover_url_list)
    # keycloak_url first, each node once, trailing slashes dropped
    assert door.urls == ["http://127.0.0.1:8081", "http://127.0.0.1:8082",
                         "https://id3.example.org"]


@pytest.mark.parametrize("bad", ["ftp://x", "http://a, nota url", "http://a,,http://"])
def test_a_bad_failover_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"SMARTPRAXX_KEYCLOAK_FAILOVER_URLS": bad}, overrides={})
    assert "keycloak_failover_urls" in err.value.message
    assert "comma-separated URLs" in err.value.message


def test_role_env_defaults_are_a_single_production_node() -> None:
    env = role_env(ROLE_SECRETS)
    assert env["KC_DB_URL"] == "jdbc:postgresql://127.0.0.1:5432/keycloak"
    assert env["KC_HOSTNAME"] == "https://mein.smartpraxx.de"
    assert env["KC_HTTP_HOST"] == "127.0.0.1" and env["KC_HTTP_PORT"] == "8080"
    assert env["KC_CACHE_STACK"] == "jdbc-ping"
    assert env["KC_CACHE_EMBEDDED_NETWORK_BIND_ADDRESS"] == "127.0.0.1"
    assert env["KC_CACHE_EMBEDDED_NETWORK_BIND_PORT"] == "7800"
    assert env["KC_SPI_CACHE_EMBEDDED_DEFAULT_NODE_NAME"] == "id1.smartpraxx.de"


def test_role_env_matches_the_build_the_nodes_start_from() -> None:
    """``kc.sh start --optimized`` needs the build-time options the role sets at runtime."""
    env = role_env(ROLE_SECRETS)
    for option in kcc.BUILD_OPTIONS:
        name, _, value = option.removeprefix("--").partition("=")
        assert env["KC_" + name.upper().replace("-", "_")] == value, option


def test_cluster_ports_leave_room_for_failure_detection() -> None:
    specs = kcc.node_specs(2)
    ports = [p for s in specs for p in (s.http_port, s.management_port, s.cluster_port)]
    assert len(set(ports)) == 6
    for spec in specs:
        assert spec.cluster_port + kcc.FD_SOCK_OFFSET < 65536
