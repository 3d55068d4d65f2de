"""The practice's identity data for decommission (DESIGN invariant 7: exported and verified
before anything is deleted): the realm's partial export and its users, without credentials."""

from __future__ import annotations

from typing import Any

from ..adapters.keycloak import KeycloakAdapter
from ..domain.model import Slot
from ..render.realm import SMOKE_PREFIX
from .identity import require_own_realm


def export_realm(kc: KeycloakAdapter, slot: Slot) -> dict[str, Any]:
    """The practice's identity data for decommission: Keycloak's partial export (clients,
    roles, groups; secrets masked by Keycloak) plus the users without any credentials."""
    require_own_realm(kc, slot)
    realm = kc.partial_export(slot.realm)
    for client in realm.get("clients") or []:
        client.pop("secret", None)
    smtp = realm.get("smtpServer")
    if isinstance(smtp, dict):
        smtp.pop("password", None)
    keep = (
        "username",
        "email",
        "firstName",
        "lastName",
        "enabled",
        "emailVerified",
        "attributes",
        "requiredActions",
        "createdTimestamp",
    )
    users = []
    for user in kc.users(slot.realm):
        if user["username"].startswith(SMOKE_PREFIX):
            continue
        users.append({k: user[k] for k in keep if k in user})
    return {"realm": realm, "users": users}
