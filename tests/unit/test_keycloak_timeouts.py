"""A realm DELETE grows with the realm count (RESULTS-realms.md): it waits longer than the
door's other requests, and the door's own timeout is back afterwards."""

from __future__ import annotations

import pytest

from smartpraxx_provision.adapters.keycloak import REALM_DELETE_TIMEOUT, KeycloakAdapter


def test_a_realm_delete_waits_longer_than_the_other_requests() -> None:
    door = KeycloakAdapter("http://127.0.0.1:9", "admin", "unused", timeout=30.0)
    seen: list[object] = []
    door.admin.delete_realm = lambda realm: seen.append(door._connection.timeout)  # type: ignore[method-assign]
    door.delete_realm("nc01-cloud001")
    assert seen == [int(REALM_DELETE_TIMEOUT)]
    assert door._connection.timeout == 30


def test_the_door_timeout_is_restored_when_the_delete_fails() -> None:
    door = KeycloakAdapter("http://127.0.0.1:9", "admin", "unused", timeout=30.0)

    def boom(realm: str) -> None:
        raise RuntimeError("connection reset")

    door.admin.delete_realm = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        door.delete_realm("nc01-cloud001")
    assert door._connection.timeout == 30
