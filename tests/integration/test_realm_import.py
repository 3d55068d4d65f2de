"""A new realm in one call (POST /admin/realms with the complete representation) against the real
Keycloak: same end state as the call-by-call converge, a no-op second run, no half realms."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import ConflictError, ExternalServiceError
from smartpraxx_provision.operations import identity
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.secrets import FileSecretStore
from tests.integration.test_identity import make_spec

pytestmark = pytest.mark.integration

# fields of a RealmRepresentation that are ids, timestamps or per-server noise
_VOLATILE = {"id", "containerId", "createdTimestamp", "notBefore", "keycloakVersion"}


def _scrub(value: Any, slot: Slot, settings: Settings) -> Any:
    """Drop ids, put placeholders for the slot's names (the two realms differ only there)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = text.replace(slot.fqdn(settings.domain), "<FQDN>").replace(slot.realm, "<REALM>")
    data = json.loads(text)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items() if k not in _VOLATILE}
        if isinstance(v, list):
            items = [walk(x) for x in v]
            return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
        return v

    return walk(data)


def snapshot(kc: KeycloakAdapter, slot: Slot, settings: Settings) -> dict[str, Any]:
    """Everything a practice realm consists of, read back through the admin API."""
    realm = slot.realm
    rep = kc.get_realm(realm) or {}
    clients = kc.clients(realm)
    ours = [c for c in clients if (c.get("attributes") or {}).get(realm_render.MANAGED_ATTR)]
    client_data = {}
    for client in ours:
        uuid = str(client["id"])
        client_data[client["clientId"]] = {
            "client": client,
            "secret": kc.client_secret(realm, uuid),
            "default_scopes": [
                s["name"] for s in kc.request(
                    "GET", f"admin/realms/{realm}/clients/{uuid}/default-client-scopes",
                    what="read default scopes")
            ],
            "optional_scopes": [
                s["name"] for s in kc.request(
                    "GET", f"admin/realms/{realm}/clients/{uuid}/optional-client-scopes",
                    what="read optional scopes")
            ],
        }
    groups = kc.groups(realm)
    users = {}
    for user in kc.users(realm):
        uid = str(user["id"])
        mappings = kc.request(
            "GET", f"admin/realms/{realm}/users/{uid}/role-mappings", what="read role mappings"
        )
        users[user["username"]] = {
            "user": user,
            "realm_roles": sorted(r["name"] for r in mappings.get("realmMappings") or []),
            "client_roles": sorted(
                f"{c}:{r['name']}"
                for c, m in (mappings.get("clientMappings") or {}).items()
                for r in m.get("mappings") or []
            ),
            "groups": sorted(g["name"] for g in kc.admin.get_user_groups(uid)),
            "credentials": kc.request(
                "GET", f"admin/realms/{realm}/users/{uid}/credentials", what="read credentials"
            ),
        }
    data = {
        "realm": rep,
        "user_profile": kc.get_user_profile(realm),
        "roles": kc.realm_roles(realm),
        "default_role_composites": [
            r["name"] for r in kc.request(
                "GET", f"admin/realms/{realm}/roles/default-roles-{realm}/composites",
                what="read default roles")
        ],
        "groups": groups,
        "client_ids": sorted(c["clientId"] for c in clients),
        "clients": client_data,
        "users": users,
    }
    return dict(_scrub(data, slot, settings))


def converge(
    kc: KeycloakAdapter, slot: Slot, settings: Settings, store: FileSecretStore, **kw: bool
) -> tuple[identity.IdentityResult, Reporter]:
    reporter = Reporter(quiet=True)
    result = identity.converge_realm(kc, make_spec(), slot, settings, store, reporter, **kw)
    return result, reporter


def test_one_call_realm_equals_call_by_call_realm(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    one, fine = throwaway_realm(), throwaway_realm()
    result, reporter = converge(kc_admin, one, keycloak, kc_secrets)
    assert result.changes == 1  # the single POST /admin/realms
    assert result.created_users == 3 and result.clients == ["nextcloud", "app-dienstplanung", "startseite"]
    assert any("from one representation" in line for line in reporter.lines)
    slow, _ = converge(kc_admin, fine, keycloak, kc_secrets, one_call=False)
    assert slow.changes > 20  # what the one call replaces

    a, b = snapshot(kc_admin, one, keycloak), snapshot(kc_admin, fine, keycloak)
    # the secrets differ per slot (each has its own in the store): compare them to the store
    for slot, snap in ((one, a), (fine, b)):
        secret = kc_secrets.require(realm_render.nextcloud_secret_path(slot))
        assert snap["clients"]["nextcloud"]["secret"] == secret
        for client in snap["clients"].values():
            client["secret"] = "<SECRET>"
            client["client"].pop("secret", None)
    # the one call also imports the realm's read-only reader (its read-back goes through it)
    assert realm_render.READER_CLIENT in a["client_ids"]
    assert realm_render.READER_CLIENT not in b["client_ids"]
    a["client_ids"].remove(realm_render.READER_CLIENT)
    for key in a:
        assert a[key] == b[key], key
    # what the test compares is really there
    assert set(a["users"]) == {"amueller", "jweiss", "bschulz"}
    anna = a["users"]["amueller"]
    assert sorted(anna["user"]["attributes"]["lanr"]) == ["123456628", "123456699"]
    assert anna["realm_roles"] == sorted(
        ["arzt", "default-roles-<REALM>", "mitarbeitende", "praxis-admin"]
    )
    assert anna["credentials"] == []
    assert set(anna["user"]["requiredActions"]) == {"UPDATE_PASSWORD"}
    assert {m["name"] for m in a["clients"]["nextcloud"]["client"]["protocolMappers"]} >= {
        "rolle", "arbeitsbereiche", "fachrichtung", "kv", "groups"}
    assert a["realm"]["passwordPolicy"] == realm_render.PASSWORD_POLICY
    assert {"lanr", "rolle"} <= {x["name"] for x in a["user_profile"]["attributes"]}


def test_new_realm_reader_reads_its_realm_only_and_writes_nothing(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, slot, keycloak, kc_secrets)
    realm = slot.realm
    client = kc_admin.find_client(realm, realm_render.READER_CLIENT)
    assert client is not None and client["serviceAccountsEnabled"] and not client["publicClient"]
    assert not (client["standardFlowEnabled"] or client["implicitFlowEnabled"]
                or client["directAccessGrantsEnabled"]), "no login flow of any kind"
    account = kc_admin.request(
        "GET", f"admin/realms/{realm}/clients/{client['id']}/service-account-user",
        what="read the reader's service account")
    mappings = kc_admin.request(
        "GET", f"admin/realms/{realm}/users/{account['id']}/role-mappings",
        what="read the reader's roles")
    granted = {r["name"] for r in mappings["clientMappings"]["realm-management"]["mappings"]}
    assert granted == set(realm_render.READER_ROLES)

    secret = kc_secrets.require(realm_render.reader_secret_path(slot))
    reader = kc_admin.realm_reader(realm, realm_render.READER_CLIENT, secret)
    assert (reader.get_realm(realm) or {}).get("realm") == realm
    assert {u["username"] for u in reader.users(realm)} == {"amueller", "jweiss", "bschulz"}
    with pytest.raises(ExternalServiceError) as refused:
        reader.request("PUT", f"admin/realms/{realm}", {"displayName": "fremd"},
                       what="change the realm")
    assert refused.value.details.get("status") == 403
    with pytest.raises(ExternalServiceError) as other:
        reader.request("GET", "admin/realms/master", what="read another realm")
    assert other.value.details.get("status") == 403
    assert (kc_admin.get_realm(realm) or {}).get("displayName") != "fremd"


def test_second_converge_after_one_call_changes_nothing(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, slot, keycloak, kc_secrets)
    before = kc_admin.mutations
    second, reporter = converge(kc_admin, slot, keycloak, kc_secrets)
    assert kc_admin.mutations - before == 0 and second.changes == 0
    assert f"realm {slot.realm} exists, up to date" in reporter.lines[0]
    assert any("up to date, nothing changed" in line for line in reporter.lines)


def test_refused_import_leaves_no_realm(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An invalid representation (users in a group the representation does not define):
    Keycloak refuses the import as a whole, nothing of the realm stays, and the fixed spec
    is then created in one call."""
    good = identity.group_payloads
    monkeypatch.setattr(identity, "group_payloads", lambda: [
        g for g in good() if g["name"] != realm_render.ROLE_GROUPS[realm_render.ROLE_STAFF]])
    slot = throwaway_realm()
    before = kc_admin.mutations
    with pytest.raises(ExternalServiceError) as err:
        converge(kc_admin, slot, keycloak, kc_secrets)
    assert f"create realm {slot.realm}" in err.value.message
    assert kc_admin.mutations - before == 1  # the refused POST, nothing after it
    assert kc_admin.get_realm(slot.realm) is None
    assert slot.realm not in kc_admin.realm_names()
    monkeypatch.setattr(identity, "group_payloads", good)
    result, _ = converge(kc_admin, slot, keycloak, kc_secrets)
    assert result.changes == 1 and result.created_users == 3


def test_dropped_attribute_found_on_read_back_and_new_realm_removed(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keycloak accepts the import but drops what the user profile does not declare."""
    declared = [a for a in realm_render.user_profile_attributes() if a["name"] != "lanr"]
    monkeypatch.setattr(identity, "user_profile_attributes", lambda: declared)
    slot = throwaway_realm()
    reporter = Reporter(quiet=True)
    with pytest.raises(ExternalServiceError) as err:
        identity.converge_realm(kc_admin, make_spec(), slot, keycloak, kc_secrets, reporter)
    message = err.value.message
    assert "user 1 attributes.lanr" in message and "user 2 attributes.lanr" in message
    assert "user 3 attributes.lanr" not in message  # Ben has no LANR: nothing to drop
    assert "removed again" in message
    for p in make_spec().persons:
        assert p.username not in message and p.last_name not in message
        assert not p.lanr or p.lanr not in message
    assert kc_admin.get_realm(slot.realm) is None


def test_foreign_realm_appearing_meanwhile_is_not_touched(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone else's realm with the slot's name appears between our check and our POST:
    Keycloak answers 409, we raise a conflict and leave that realm exactly as it is."""
    slot = throwaway_realm()
    kc_admin.create_realm({"realm": slot.realm, "enabled": True, "displayName": "fremd"})
    real_get = kc_admin.get_realm
    calls = {"n": 0}

    def racing_get(realm: str) -> dict[str, Any] | None:
        calls["n"] += 1
        return None if calls["n"] == 1 else real_get(realm)

    monkeypatch.setattr(kc_admin, "get_realm", racing_get)
    with pytest.raises(ConflictError) as err:
        converge(kc_admin, slot, keycloak, kc_secrets)
    assert "appeared while this run was creating it" in err.value.message
    live = real_get(slot.realm)
    assert live is not None and live["displayName"] == "fremd"
    assert realm_render.SLOT_ATTR not in (live.get("attributes") or {})
    assert kc_admin.users(slot.realm) == []
