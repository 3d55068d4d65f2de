"""The smoke check's throwaway users: created with a marker, used for one real login through a
client of the practice's realm, deleted again; leftovers of killed runs are found by their marker
and removed by the next run. Their usernames start with ``SMOKE_PREFIX``, so every converge,
export and read-back leaves them out."""

from __future__ import annotations

import os
import secrets as _secrets
import socket
import time
from typing import Any

from ..adapters.keycloak import KeycloakAdapter
from ..adapters.keycloak_login import jwt_claims, password_login
from ..config import Settings
from ..domain.model import Slot
from ..errors import UsageError
from ..output import Reporter
from ..render.realm import SMOKE_MARKER_ATTR, SMOKE_PREFIX
from ..secrets import generate_token
from .runner import crash_point

SMOKE_USER_MAX_AGE = 900  # seconds; an older smoke user is a leftover whatever its marker


def create_test_user(kc: KeycloakAdapter, slot: Slot, marker: str = "") -> tuple[str, str]:
    """A throwaway user for the smoke check: (username, password), no required actions.

    ``marker`` goes into the declared attribute ``SMOKE_MARKER_ATTR`` so a user left by a
    killed run is found (and removed) by the next one."""
    username = f"{SMOKE_PREFIX}{_secrets.token_hex(4)}"
    password = generate_token(24)
    user_id = kc.create_user(
        slot.realm,
        {
            "username": username,
            "email": f"{username}@smoke.invalid",
            "firstName": "Smoke",
            "lastName": "Test",
            "enabled": True,
            "emailVerified": True,
            "requiredActions": [],
            "attributes": {SMOKE_MARKER_ATTR: [marker or "smoke"]},
        },
    )
    kc.set_password(slot.realm, user_id, password, temporary=False)
    return username, password


def delete_test_user(kc: KeycloakAdapter, slot: Slot, username: str) -> bool:
    if not username.startswith(SMOKE_PREFIX):
        raise UsageError("only smoke-test users can be deleted this way", obj=f"realm {slot.realm}")
    user_id = kc.find_user_id(slot.realm, username)
    if user_id is None:
        return False
    kc.delete_user(slot.realm, user_id)
    return True


def smoke_marker() -> str:
    """The value of ``SMOKE_MARKER_ATTR`` on a smoke user: ``host:pid:epoch`` of its run."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


def _marker_is_stale(marker: str, created_ms: int, now: float) -> bool:
    """A smoke user is a leftover when its run's process is gone on this machine, or it is
    older than ``SMOKE_USER_MAX_AGE`` (a run on another machine, or no readable marker)."""
    host, _, rest = marker.partition(":")
    pid_text, _, epoch_text = rest.partition(":")
    try:
        pid, born = int(pid_text), int(epoch_text)
    except ValueError:
        return now - created_ms / 1000 > SMOKE_USER_MAX_AGE
    if host == socket.gethostname() and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    return now - born > SMOKE_USER_MAX_AGE


def remove_leftover_test_users(kc: KeycloakAdapter, slot: Slot, reporter: Reporter) -> int:
    """Delete smoke users left by killed runs (found by the marker attribute); return how many."""
    found = kc.request(
        "GET",
        f"admin/realms/{slot.realm}/users",
        params={"search": SMOKE_PREFIX, "briefRepresentation": "false", "max": 200},
        what=f"look up smoke users in realm {slot.realm}",
    )
    now = time.time()
    removed = 0
    for user in found:
        if not str(user.get("username", "")).startswith(SMOKE_PREFIX):
            continue
        marker = ((user.get("attributes") or {}).get(SMOKE_MARKER_ATTR) or [""])[0]
        if _marker_is_stale(str(marker), int(user.get("createdTimestamp") or 0), now):
            kc.delete_user(slot.realm, str(user["id"]))
            removed += 1
    if removed:
        reporter.change(f"{removed} smoke user(s) left by an interrupted run removed from {slot.realm}")
    return removed


def smoke_login(
    kc: KeycloakAdapter,
    settings: Settings,
    slot: Slot,
    client_id: str,
    client_secret: str,
    marker: str = "",
) -> dict[str, Any]:
    """Create a throwaway user, log in for real through ``client_id``, remove the user again
    (in a ``finally``; a user left by a killed run carries ``marker`` and is removed by
    :func:`remove_leftover_test_users` at the start of the next smoke).
    Returns the ID token's claims (not verified here; the caller checks ``iss``)."""
    username, password = create_test_user(kc, slot, marker or smoke_marker())
    try:
        crash_point("smoke", "login", "during")  # crash tests: a kill with the user alive
        tokens = password_login(settings, slot, client_id, client_secret, username, password)
        return jwt_claims(str(tokens.get("id_token", "")))
    finally:
        delete_test_user(kc, slot, username)
