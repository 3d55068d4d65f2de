"""Pure: a new practice realm as ONE complete Keycloak ``RealmRepresentation``, and the check of
what Keycloak stored against it.

``operations/identity.py`` creates a realm that does not exist yet with a single
``POST /admin/realms`` (Keycloak's own import) instead of dozens of fine-grained calls, then
reads everything back. This module holds no builders of its own for the managed state: the
caller passes the parts produced by render/realm.py's payload builders (realm settings, user-profile
attributes, roles, groups, users, clients), so whatever those builders gain flows into the
one-call path unchanged. What is added here is only what an *import* needs on top:

* the user profile travels as the realm's ``UserProfileProvider`` component, exactly as
  Keycloak's own export carries it: ``components["org.keycloak.userprofile.UserProfileProvider"]
  = [{"providerId": "declarative-user-profile", "config": {"kc.user.profile.config":
  ["<json>"]}}]`` (Keycloak's built-in default attributes first, ours after them);
* users carry ``realmRoles`` (including the realm's ``default-roles-<realm>``, which the admin
  API grants on user creation but an import does not) and ``groups`` as paths.

Everything here is deterministic and free of I/O; ``import_differences`` names what differs by
field and by the person's position in the spec (never a username, name or value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .realm import (
    READER_CLIENT,
    READER_ROLES,
    comparable_realm,
    field_differences,
    user_differences,
)

USER_PROFILE_COMPONENT = "org.keycloak.userprofile.UserProfileProvider"
USER_PROFILE_PROVIDER = "declarative-user-profile"
USER_PROFILE_CONFIG_KEY = "kc.user.profile.config"


def _builtin_attribute(name: str, validations: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """One of Keycloak's built-in user-profile attributes as a fresh realm declares it."""
    attribute: dict[str, Any] = {
        "name": name,
        "displayName": f"${{{name}}}",
        "validations": validations,
    }
    if required:
        attribute["required"] = {"roles": ["user"]}
    attribute["permissions"] = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    attribute["multivalued"] = False
    return attribute


# Keycloak 26's built-in user profile of a new realm (GET .../users/profile of a fresh realm,
# 26.5.6). An imported realm gets exactly this plus our attributes, like a realm whose profile
# the fine-grained converge extended.
DEFAULT_USER_PROFILE: dict[str, Any] = {
    "attributes": [
        _builtin_attribute(
            "username",
            {
                "length": {"min": 3, "max": 255},
                "username-prohibited-characters": {},
                "up-username-not-idn-homograph": {},
            },
            required=False,
        ),
        _builtin_attribute("email", {"email": {}, "length": {"max": 255}}, required=True),
        *(
            _builtin_attribute(
                name,
                {"length": {"max": 255}, "person-name-prohibited-characters": {}},
                required=True,
            )
            for name in ("firstName", "lastName")
        ),
    ],
    "groups": [
        {
            "name": "user-metadata",
            "displayHeader": "User metadata",
            "displayDescription": "Attributes, which refer to user metadata",
        }
    ],
}


@dataclass(frozen=True)
class ImportUser:
    """One person as the fine-grained converge would create them."""

    fields: dict[str, Any]  # realm.user_fields(): username, email, names, enabled, attributes
    required_actions: list[str]
    realm_roles: list[str]  # our realm roles (realm.person_roles)
    groups: list[str]  # our group names (realm.desired_groups()[key])


@dataclass(frozen=True)
class RealmParts:
    """The desired state of a new realm, as built by render/realm.py's payload builders."""

    realm: dict[str, Any]  # realm.realm_payload()
    user_profile_attributes: list[dict[str, Any]]  # realm.user_profile_attributes()
    roles: list[dict[str, Any]]  # {"name", "description", "attributes"}
    groups: list[dict[str, Any]]  # {"name", "attributes"}
    clients: list[dict[str, Any]]  # realm.*_client_payload() incl. secret and mappers
    users: list[ImportUser] = field(default_factory=list)
    reader_secret: str | None = None  # the READER_CLIENT's secret; None: no reader imported

    @property
    def name(self) -> str:
        return str(self.realm["realm"])


def default_role_name(realm: str) -> str:
    return f"default-roles-{realm}"


def user_profile_config(attributes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Keycloak's default profile with ``attributes`` declared after (or replacing) its own."""
    config = json.loads(json.dumps(DEFAULT_USER_PROFILE))
    by_name = {a["name"]: i for i, a in enumerate(config["attributes"])}
    for attr in attributes:
        index = by_name.get(attr["name"])
        if index is None:
            config["attributes"].append(dict(attr))
        else:
            config["attributes"][index] = {**config["attributes"][index], **attr}
    return dict(config)


def import_user(user: ImportUser, realm: str) -> dict[str, Any]:
    """A UserRepresentation for the import: the same payload the fine-grained converge POSTs
    (empty attributes left out, e-mail not verified, required actions) plus role and group
    memberships, which an import sets in the same transaction."""
    want = user.fields
    return {
        **want,
        "attributes": {k: list(v) for k, v in want["attributes"].items() if v},
        "emailVerified": False,
        "requiredActions": list(user.required_actions),
        "realmRoles": sorted({default_role_name(realm), *user.realm_roles}),
        "groups": sorted(f"/{name}" for name in user.groups),
    }


# What Keycloak's admin endpoint fills in when a client is created one by one (POST .../clients)
# and a realm import does not (observed on 26.5.6): set them so both paths end equal.
IMPORT_CLIENT_ATTRIBUTE_DEFAULTS = {
    "backchannel.logout.session.required": "true",
    "backchannel.logout.revoke.offline.tokens": "false",
}


def import_client(client: Mapping[str, Any]) -> dict[str, Any]:
    """A ClientRepresentation for the import: the payload as built, plus the defaults the
    admin endpoint would have added (``adminUrl`` = ``rootUrl``, back-channel logout)."""
    out: dict[str, Any] = json.loads(json.dumps(client))
    if out.get("rootUrl") and "adminUrl" not in out:
        out["adminUrl"] = out["rootUrl"]
    out["attributes"] = {**IMPORT_CLIENT_ATTRIBUTE_DEFAULTS, **(out.get("attributes") or {})}
    return out


def reader_client(secret: str) -> dict[str, Any]:
    """The read-only admin client of a new realm (render/realm.py ``READER_CLIENT``): no
    login flow of any kind, only its service account's client-credentials grant."""
    return {
        "clientId": READER_CLIENT,
        "name": "smartpraxx (nur lesend)",
        "enabled": True,
        "publicClient": False,
        "secret": secret,
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "frontchannelLogout": False,
    }


def reader_service_account() -> dict[str, Any]:
    """The reader's service-account user, holding realm-management's view roles only."""
    return {
        "username": f"service-account-{READER_CLIENT}",
        "enabled": True,
        "serviceAccountClientId": READER_CLIENT,
        "clientRoles": {"realm-management": list(READER_ROLES)},
    }


def realm_representation(parts: RealmParts) -> dict[str, Any]:
    """The complete RealmRepresentation of a new practice realm (one POST /admin/realms)."""
    profile = user_profile_config(parts.user_profile_attributes)
    rep: dict[str, Any] = json.loads(json.dumps(parts.realm))
    rep["roles"] = {"realm": [dict(r) for r in parts.roles]}
    rep["groups"] = [dict(g) for g in parts.groups]
    rep["clients"] = [import_client(c) for c in parts.clients]
    rep["users"] = [import_user(u, parts.name) for u in parts.users]
    if parts.reader_secret is not None:
        rep["clients"].append(reader_client(parts.reader_secret))
        rep["users"].append(reader_service_account())
    components = dict(rep.get("components") or {})
    components[USER_PROFILE_COMPONENT] = [
        {
            "name": USER_PROFILE_PROVIDER,
            "providerId": USER_PROFILE_PROVIDER,
            "subComponents": {},
            "config": {
                USER_PROFILE_CONFIG_KEY: [
                    json.dumps(profile, ensure_ascii=False, separators=(",", ":"))
                ]
            },
        }
    ]
    rep["components"] = components
    return rep


# --- what Keycloak stored vs what we sent -----------------------------------------------------


@dataclass
class ReadBack:
    """Everything read from Keycloak after the import (admin API answers, unmodified)."""

    realm: dict[str, Any]
    user_profile: dict[str, Any]
    roles: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    clients: list[dict[str, Any]]
    client_secrets: dict[str, str | None]  # clientId -> secret
    users: list[dict[str, Any]]
    role_members: dict[str, set[str]]  # role name -> user ids
    # group name -> user ids; None: not read (Keycloak refuses unresolvable group paths)
    group_members: dict[str, set[str]] | None = None


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _same_normalized(desired: Any, live: Any) -> bool:
    if desired is None:
        return live is None
    return live is not None and _norm(desired) == _norm(live)


def subset_differences(desired: Any, live: Any, prefix: str = "") -> list[str]:
    """Field names of ``desired`` that ``live`` does not match (dicts as subsets, lists of
    scalars as sets, scalars by normalized string form; the traversal of realm.differences)."""
    return field_differences(
        desired, live, prefix, same=_same_normalized, text=lambda v: str(_norm(v))
    )


def _missing_or_different(
    kind: str, wanted: Sequence[Mapping[str, Any]], live: Sequence[Mapping[str, Any]]
) -> list[str]:
    """``<kind>.<name>`` of each wanted representation that is absent or differs (by name)."""
    by_name = {r["name"]: r for r in live}
    return [
        f"{kind}.{want['name']}"
        for want in wanted
        if want["name"] not in by_name or subset_differences(want, by_name[want["name"]])
    ]


def _profile_differences(parts: RealmParts, got: ReadBack) -> list[str]:
    declared = {a.get("name"): a for a in got.user_profile.get("attributes") or []}
    out: list[str] = []
    for attr in parts.user_profile_attributes:
        live = declared.get(attr["name"])
        if live is None or subset_differences(attr, live):
            out.append(f"user profile.{attr['name']}")
    return out


def _client_differences(parts: RealmParts, got: ReadBack) -> list[str]:
    out: list[str] = []
    clients = {c["clientId"]: c for c in got.clients}
    for want in parts.clients:
        cid = want["clientId"]
        live_client = clients.get(cid)
        if live_client is None:
            out.append(f"client.{cid}")
            continue
        top = {k: v for k, v in want.items() if k not in ("protocolMappers", "secret")}
        out += [f"client.{cid}.{d}" for d in subset_differences(top, live_client)]
        if got.client_secrets.get(cid) != want.get("secret"):
            out.append(f"client.{cid}.secret")
        mappers = {m["name"]: m for m in live_client.get("protocolMappers") or []}
        for mapper in want.get("protocolMappers") or []:
            current = mappers.get(mapper["name"])
            if current is None or subset_differences(mapper, current):
                out.append(f"client.{cid}.mapper.{mapper['name']}")
    return out


def _user_import_differences(
    label: str, user: ImportUser, live_user: dict[str, Any], got: ReadBack
) -> list[str]:
    out = [f"{label} {d}" for d in user_differences(user.fields, live_user, subset_differences)]
    if sorted(live_user.get("requiredActions") or []) != sorted(user.required_actions):
        out.append(f"{label} requiredActions")
    if live_user.get("emailVerified") is not False:
        out.append(f"{label} emailVerified")
    uid = str(live_user.get("id"))
    for role_name in user.realm_roles:
        if uid not in got.role_members.get(role_name, set()):
            out.append(f"{label} role {role_name}")
    group_members = got.group_members
    for group_name in user.groups if group_members is not None else ():
        if group_members is not None and uid not in group_members.get(group_name, set()):
            out.append(f"{label} group {group_name}")
    return out


def _unexpected_members(
    parts: RealmParts, got: ReadBack, users: Mapping[Any, dict[str, Any]]
) -> list[str]:
    """Roles and groups with members the spec does not put there."""
    expected_roles: dict[str, set[str]] = {r["name"]: set() for r in parts.roles}
    expected_groups: dict[str, set[str]] = {g["name"]: set() for g in parts.groups}
    for user in parts.users:
        live_user = users.get(user.fields["username"])
        if live_user is None:
            continue
        for role_name in user.realm_roles:
            expected_roles.setdefault(role_name, set()).add(str(live_user.get("id")))
        for group_name in user.groups:
            expected_groups.setdefault(group_name, set()).add(str(live_user.get("id")))
    out: list[str] = []
    for role_name, members in got.role_members.items():
        if members - expected_roles.get(role_name, set()):
            out.append(f"role {role_name}: unexpected members")
    for group_name, members in (got.group_members or {}).items():
        if members - expected_groups.get(group_name, set()):
            out.append(f"group {group_name}: unexpected members")
    return out


def import_differences(parts: RealmParts, got: ReadBack) -> list[str]:
    """What Keycloak did not store as sent. Persons are named by their position in the spec
    ("user 3"), never by username or value; every managed attribute of every user is checked
    (Keycloak drops attributes the user profile does not declare and still answers 201)."""
    out = [f"realm.{d}" for d in subset_differences(comparable_realm(parts.realm), got.realm)]
    out += _profile_differences(parts, got)
    out += _missing_or_different("role", parts.roles, got.roles)
    out += _missing_or_different("group", parts.groups, got.groups)
    out += _client_differences(parts, got)
    users = {u.get("username"): u for u in got.users}
    for index, user in enumerate(parts.users, start=1):
        live_user = users.get(user.fields["username"])
        if live_user is None:
            out.append(f"user {index} missing")
        else:
            out += _user_import_differences(f"user {index}", user, live_user, got)
    return out + _unexpected_members(parts, got, users)
