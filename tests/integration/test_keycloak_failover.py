"""The Keycloak door's failover between cluster nodes, against the session's real Keycloak as
the node that answers. The failing "nodes" are a closed loopback port (nothing listens: a
stopped node) and a tiny HTTP server answering 503 (a node that is shutting down or a proxy
without upstream). Read-only on the real Keycloak."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.errors import ServiceUnavailableError
from smartpraxx_provision.secrets import FileSecretStore

from ..fixtures.keycloak import free_port

pytestmark = pytest.mark.integration

ADMIN_SECRET = "platform/keycloak-admin"


class _Unavailable(BaseHTTPRequestHandler):
    hits = 0

    def _answer(self) -> None:
        type(self).hits += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def unavailable_node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _settings(keycloak: Settings, url: str, failover: str) -> Settings:
    return load_settings(env={}, overrides={
        "state_dir": str(keycloak.state_dir),
        "keycloak_url": url,
        "keycloak_failover_urls": failover,
    })


def test_a_stopped_first_node_fails_over_to_the_next(
    keycloak: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = _settings(keycloak, down, keycloak.keycloak_url)
    caplog.set_level(logging.WARNING, logger="smartpraxx.keycloak")
    door = KeycloakAdapter.from_settings(settings, FileSecretStore(keycloak.secrets_dir))
    assert door.urls == [down, keycloak.keycloak_url]
    assert door.active_url == keycloak.keycloak_url  # the token came from the second node
    assert "master" in door.realm_names()
    assert [f[:2] for f in door.failovers] == [(down, keycloak.keycloak_url)]
    assert f"Keycloak node {down} failed (token: no connection" in caplog.text
    assert f"Keycloak node {keycloak.keycloak_url} answered" in caplog.text
    password = FileSecretStore(keycloak.secrets_dir).require(ADMIN_SECRET)
    assert password not in caplog.text


def test_a_5xx_node_fails_over_and_the_answering_node_stays_active(
    keycloak: Settings, unavailable_node: str
) -> None:
    password = FileSecretStore(keycloak.secrets_dir).require(ADMIN_SECRET)
    door = KeycloakAdapter(keycloak.keycloak_url, keycloak.keycloak_admin_user, password,
                           failover_urls=[unavailable_node])
    door.connect()
    assert door.active_url == keycloak.keycloak_url and door.failovers == []
    # the 503 node first: every request would go there and fail over
    door = KeycloakAdapter(unavailable_node, keycloak.keycloak_admin_user, password,
                           failover_urls=[keycloak.keycloak_url])
    _Unavailable.hits = 0
    door.connect()
    door.realm_names()
    door.realm_names()
    assert door.failovers == [(unavailable_node, keycloak.keycloak_url, "HTTP 503")]
    assert _Unavailable.hits == 1  # sticky: after the failover it is not asked again


def test_all_nodes_down_is_one_clear_error(keycloak: Settings) -> None:
    a, b = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    door = KeycloakAdapter(a, "admin", "irrelevant", timeout=3, failover_urls=[b, a])
    assert door.urls == [a, b]
    with pytest.raises(ServiceUnavailableError) as err:
        door.connect()
    assert f"Keycloak cannot be reached on any of its nodes {a}, {b}" in err.value.message
    assert len(door.failovers) == 1  # each node tried once


def test_one_node_behaves_as_before(keycloak: Settings) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    door = KeycloakAdapter(down, "admin", "irrelevant", timeout=3)
    with pytest.raises(ServiceUnavailableError) as err:
        door.connect()
    assert f"Keycloak at {down} cannot be reached" in err.value.message
    assert door.failovers == []
