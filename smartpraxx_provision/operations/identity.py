"""Identity steps: each practice's own Keycloak realm, converged from its PracticeSpec.

Every step re-reads live state, changes only what differs and reports through the Reporter
("realm nc07-cloud023 exists, up to date"). Staff data never reaches a report line or an
error message: users are reported as counts, attributes by name only.

Realm
    The technical name is the slot id (``nc07-cloud023``), fixed at creation and never
    recreated: renaming a Keycloak realm would change the issuer, the discovery URL and leave
    every redirect URI stale. The realm attribute ``smartpraxx.slot`` marks it as ours; a realm
    without it is refused unless ``adopt=True``. ``praxisname`` is only an alias: the realm's
    ``displayName`` and the attribute ``smartpraxx.praxisname`` (``set_alias`` moves it).

Start page: ``mein.smartpraxx.de/<praxisname>``
    The start page is Keycloak's own account console of the practice's realm, whose
    *Applications* view lists every client with ``alwaysDisplayInConsole`` and a ``baseUrl``:
    the practice's Nextcloud and each third-party app from the Starter Excel's Apps sheet, each
    a link to its base URL. The identity host's reverse proxy (rendered by
    ``render/proxy.py`` from ``templates/proxy/start_page.caddy.j2``) answers
    ``/<praxisname>`` with a 302 to ``/realms/<realm>/account/`` (former names redirect to the
    new path during the rename grace period) and proxies ``/realms/*`` and ``/resources/*`` to
    Keycloak. ``start_page_url`` is the public address, ``account_console_url`` the target.

Users
    Created with UPDATE_PASSWORD (and CONFIGURE_TOTP for admins when ``admin_totp``) as
    required actions; no password is ever set. The invitation mail is ``invitations.py``'s
    (following its link also verifies the e-mail address, so VERIFY_EMAIL is not needed). Required actions are set at
    creation only (a user who completed them must not get them back on the next converge).
    Each created or updated user is read back and the managed attributes compared (Keycloak
    >= 24 drops attributes that the user profile does not declare, and still answers 201).
    Persons missing from a newer spec are disabled, deleted only with ``prune=True``.
"""

from __future__ import annotations

import os
import secrets as _secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..adapters.keycloak import KeycloakAdapter, authorization_code_login, jwt_claims
from ..config import Settings
from ..domain import audience
from ..domain.model import Person, PracticeSpec, Role, Slot, ThirdPartyApp, WorkArea
from ..errors import ConflictError, ExternalServiceError, NotFoundError, UsageError
from ..output import Reporter
from ..render.bundle import nextcloud_base_url, realm_issuer
from ..secrets import SecretStore, generate_token
from .identity_payloads import (
    ImportUser,
    ReadBack,
    RealmParts,
    import_differences,
    realm_representation,
)
from .runner import crash_point

SLOT_ATTR = "smartpraxx.slot"
PRAXISNAME_ATTR = "smartpraxx.praxisname"
MANAGED_ATTR = "smartpraxx.managed"  # on clients and groups we manage (value: our key)
ROLES_ATTR = "smartpraxx.roles"  # on third-party clients: role slugs that see the start tile
SMOKE_PREFIX = "smartpraxx-smoke-"
SMOKE_MARKER_ATTR = "smartpraxx_smoke"  # on the smoke check's throwaway users only
SMOKE_USER_MAX_AGE = 900  # seconds; an older smoke user is a leftover whatever its marker
SMTP_PASSWORD_SECRET = "platform/smtp-password"  # noqa: S105 - a path

PASSWORD_POLICY = (
    "length(12) and notUsername and notEmail and passwordHistory(5) and hashAlgorithm(argon2)"  # noqa: S105
)
ACCESS_TOKEN_LIFESPAN = 300  # seconds
EVENTS_EXPIRATION = 90 * 24 * 3600  # seconds, login and admin events

NEXTCLOUD_CLIENT = "nextcloud"
START_PAGE_CLIENT = "startseite"
ROLE_ADMIN = "praxis-admin"
ROLE_DOCTOR = "arzt"
ROLE_STAFF = "mitarbeitende"

# realm role -> (description, attributes)
REALM_ROLES: dict[str, tuple[str, dict[str, list[str]]]] = {
    ROLE_ADMIN: ("Praxis-Admin: verwaltet Benutzer:innen und Einstellungen der Praxis", {}),
    ROLE_DOCTOR: ("Ärzt:in / Psychotherapeut:in (abrechenbarer Platz)", {"billable": ["true"]}),
    ROLE_STAFF: ("Mitarbeitende der Praxis", {}),
}
ROLE_GROUPS = {ROLE_ADMIN: "Praxis-Admins", ROLE_DOCTOR: "Ärzt:innen", ROLE_STAFF: "Mitarbeitende"}

CLAIM_ATTRIBUTES = ("rolle", "arbeitsbereiche", "fachrichtung", "kv")
MANAGED_USER_ATTRIBUTES = ("rolle", "arbeitsbereiche", "fachrichtung", "kv", "lanr")


@dataclass
class IdentityResult:
    changes: int = 0  # mutating admin calls made
    created_users: int = 0
    updated_users: int = 0
    disabled_users: int = 0
    deleted_users: int = 0
    clients: list[str] = field(default_factory=list)


# --- pure: URLs ---------------------------------------------------------------------------


def start_page_url(settings: Settings, praxisname: str) -> str:
    """The practice's public start page, ``<scheme>://mein.smartpraxx.de/<praxisname>``."""
    return f"{settings.public_origin(settings.identity_host)}/{praxisname}"


def account_console_url(settings: Settings, slot: Slot) -> str:
    """Where the start page leads: the realm's account console (applications list)."""
    return f"{realm_issuer(settings, slot)}/account/"


def nextcloud_redirect_uris(settings: Settings, slot: Slot) -> list[str]:
    base = nextcloud_base_url(settings, slot)
    # real Nextcloud sends the index.php form when pretty URLs are off
    return [f"{base}/apps/user_oidc/code", f"{base}/index.php/apps/user_oidc/code"]


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- pure: desired state ------------------------------------------------------------------


def realm_payload(
    spec: PracticeSpec, slot: Slot, settings: Settings, smtp_password: str | None = None
) -> dict[str, Any]:
    """The realm settings we manage (a subset of Keycloak's RealmRepresentation)."""
    smtp = bool(settings.smtp_host)
    payload: dict[str, Any] = {
        "realm": slot.realm,
        "enabled": True,
        "displayName": spec.display_name,
        "internationalizationEnabled": True,
        "supportedLocales": ["de"],  # Keycloak's own pages and mails: German
        "defaultLocale": "de",
        "passwordPolicy": PASSWORD_POLICY,
        "bruteForceProtected": True,
        "permanentLockout": False,
        "failureFactor": 10,
        "sslRequired": "external",
        "accessTokenLifespan": ACCESS_TOKEN_LIFESPAN,
        "registrationAllowed": False,
        "resetPasswordAllowed": smtp,
        "loginWithEmailAllowed": True,
        "duplicateEmailsAllowed": False,
        "eventsEnabled": True,
        "eventsExpiration": EVENTS_EXPIRATION,
        "adminEventsEnabled": True,
        "adminEventsDetailsEnabled": False,
        "attributes": {
            SLOT_ATTR: slot.id,
            PRAXISNAME_ATTR: spec.praxisname,
            "adminEventsExpiration": str(EVENTS_EXPIRATION),
        },
    }
    if settings.keycloak_login_theme:
        payload["loginTheme"] = settings.keycloak_login_theme
    if smtp:
        server: dict[str, Any] = {
            "host": settings.smtp_host,
            "port": str(settings.smtp_port),
            "from": settings.smtp_from,
            "fromDisplayName": spec.display_name,
            "starttls": str(settings.smtp_starttls).lower(),
            "auth": str(bool(settings.smtp_user)).lower(),
            # SMTPUTF8 (RFC 6531): without it Keycloak >= 26.1 refuses to even create a user
            # whose address has a non-ASCII local part (e.g. mehmet.yılmaz@...)
            "allowutf8": "true",
        }
        if settings.smtp_user:
            server["user"] = settings.smtp_user
            if smtp_password is not None:
                server["password"] = smtp_password
        payload["smtpServer"] = server
    return payload


def user_profile_attributes() -> list[dict[str, Any]]:
    """Declared user-profile attributes (Keycloak >= 24 drops undeclared ones silently)."""
    staff_view = {"view": ["admin", "user"], "edit": ["admin"]}
    admin_only = {"view": ["admin"], "edit": ["admin"]}
    return [
        {
            "name": "rolle",
            "displayName": "Rolle",
            "permissions": staff_view,
            "multivalued": False,
            "validations": {"options": {"options": [r.value for r in Role]}},
        },
        {
            "name": "arbeitsbereiche",
            "displayName": "Arbeitsbereiche",
            "permissions": staff_view,
            "multivalued": True,
            "validations": {"options": {"options": [w.value for w in WorkArea]}},
        },
        {
            "name": "fachrichtung",
            "displayName": "Fachrichtung",
            "permissions": staff_view,
            "multivalued": False,
            "validations": {"length": {"max": 100}},
        },
        {
            "name": "kv",
            "displayName": "KV/KZV",
            "permissions": staff_view,
            "multivalued": False,
            "validations": {"length": {"max": 100}},
        },
        {
            "name": SMOKE_MARKER_ATTR,
            "displayName": "Smoke-Test-Benutzer",
            "permissions": admin_only,
            "multivalued": False,
            "validations": {"length": {"max": 200}},
        },
        {
            "name": "lanr",
            "displayName": "LANR",
            "permissions": admin_only,
            "multivalued": True,
            "validations": {
                "pattern": {"pattern": "^[0-9]{9}$", "error-message": "LANR: 9 Ziffern"}
            },
        },
    ]


def person_roles(person: Person) -> set[str]:
    roles = {ROLE_STAFF}
    if person.admin:
        roles.add(ROLE_ADMIN)
    if person.role.is_billable:
        roles.add(ROLE_DOCTOR)
    return roles


def group_name(area: WorkArea) -> str:
    # '/' separates group paths in Keycloak and is awkward as a Nextcloud group id
    return area.label.replace("/", " & ")


AUDIENCE_KEY = "audience:"  # managed key prefix of the audience groups (domain/audience.py)


def desired_groups(spec: PracticeSpec | None = None) -> dict[str, str]:
    """Our groups: managed key -> group name. With ``spec`` also the audience groups its
    persons are in (``kv-rlp``, ``fach-urologie``, ``rolle-mfa``, ``bereich-abrechnung``)."""
    groups = {f"role:{role}": name for role, name in ROLE_GROUPS.items()}
    groups.update({f"area:{area.value}": group_name(area) for area in WorkArea})
    if spec is not None:
        for gid in sorted({g for p in spec.persons for g in audience.person_groups(p, spec)}):
            groups[f"{AUDIENCE_KEY}{gid}"] = gid
    return groups


def person_group_keys(person: Person, spec: PracticeSpec | None = None) -> set[str]:
    keys = {f"role:{role}" for role in person_roles(person)}
    keys.update(f"area:{area.value}" for area in person.work_areas)
    if spec is not None:
        keys.update(f"{AUDIENCE_KEY}{gid}" for gid in audience.person_groups(person, spec))
    return keys


def group_whitelist_regex() -> str:
    """user_oidc's ``--group-whitelist-regex``: exactly the groups the realm manages (the
    fixed role and work-area groups and every audience group), so groups made on the
    platform itself (``admin``, the broadcasts' ``news-*``) survive each login."""
    import re

    fixed = sorted(desired_groups().values())
    names = "|".join(re.escape(n) for n in fixed)  # no '/' in them (see group_name)
    return f"/^(?:(?:kv|kzv|fach|rolle|bereich)-[a-z0-9-]+|{names})$/"


def _lanrs(person: Person) -> list[str]:
    many = tuple(getattr(person, "lanrs", ()) or ())
    if many:
        return list(dict.fromkeys(many))
    return [person.lanr] if person.lanr else []


def user_attributes(person: Person, spec: PracticeSpec) -> dict[str, list[str]]:
    return {
        "rolle": [person.role.value],
        "arbeitsbereiche": [area.value for area in person.work_areas],
        "fachrichtung": [person.specialty] if person.specialty else [],
        "kv": [spec.kv] if spec.kv else [],
        "lanr": _lanrs(person),
    }


def user_fields(person: Person, spec: PracticeSpec) -> dict[str, Any]:
    """The managed part of a user's representation (no required actions, no credentials)."""
    return {
        "username": person.username.lower(),
        "email": person.email.lower(),
        "firstName": person.first_name,
        "lastName": person.last_name,
        "enabled": True,
        "attributes": user_attributes(person, spec),
    }


def required_actions(person: Person, settings: Settings) -> list[str]:
    actions = ["UPDATE_PASSWORD"]
    if person.admin and settings.admin_totp:
        actions.append("CONFIGURE_TOTP")
    return actions


def _attribute_mapper(attribute: str, multivalued: bool) -> dict[str, Any]:
    return {
        "name": attribute,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": attribute,
            "claim.name": attribute,
            "jsonType.label": "String",
            "multivalued": str(multivalued).lower(),
            "id.token.claim": "true",
            "access.token.claim": "true",
            "userinfo.token.claim": "true",
        },
    }


def protocol_mappers() -> list[dict[str, Any]]:
    mappers = [_attribute_mapper(a, a == "arbeitsbereiche") for a in CLAIM_ATTRIBUTES]
    mappers.append(
        {
            "name": "groups",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "config": {
                "claim.name": "groups",
                "full.path": "false",
                "id.token.claim": "true",
                "access.token.claim": "true",
                "userinfo.token.claim": "true",
            },
        }
    )
    return mappers


def _client_payload(
    *,
    client_id: str,
    name: str,
    base_url: str,
    redirect_uris: list[str],
    secret: str,
    description: str,
) -> dict[str, Any]:
    origin = _origin(base_url)
    return {
        "clientId": client_id,
        "name": name,
        "description": description,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "frontchannelLogout": True,
        "rootUrl": base_url,
        "baseUrl": base_url.rstrip("/") + "/",
        "alwaysDisplayInConsole": True,
        "redirectUris": sorted(redirect_uris),
        "webOrigins": [origin],
        "attributes": {
            "post.logout.redirect.uris": f"{origin}/*",
            MANAGED_ATTR: client_id,
        },
        "protocolMappers": protocol_mappers(),
    }


def nextcloud_client_payload(
    settings: Settings, slot: Slot, spec: PracticeSpec, secret: str
) -> dict[str, Any]:
    payload = _client_payload(
        client_id=NEXTCLOUD_CLIENT,
        name="Nextcloud",
        base_url=nextcloud_base_url(settings, slot),
        redirect_uris=nextcloud_redirect_uris(settings, slot),
        secret=secret,
        description=f"Nextcloud der Praxis {spec.display_name}",
    )
    # access tokens name the Nextcloud as their audience: user_oidc's bearer check
    # (--check-bearer) accepts only tokens meant for its client
    payload["protocolMappers"].append({
        "name": "audience-nextcloud",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.client.audience": NEXTCLOUD_CLIENT,
            "id.token.claim": "false",
            "access.token.claim": "true",
            "introspection.token.claim": "true",
        },
    })
    return payload


def third_party_client_payload(app: ThirdPartyApp, secret: str) -> dict[str, Any]:
    payload = _client_payload(
        client_id=app.client_id,
        name=app.name,
        base_url=app.url,
        redirect_uris=[app.redirect_uri],
        secret=secret,
        description=app.name,
    )
    if app.roles:  # the start page shows the tile to these roles only (absent = everyone)
        payload["attributes"][ROLES_ATTR] = " ".join(app.roles)
    return payload


def start_page_client_payload(settings: Settings, praxisname: str) -> dict[str, Any]:
    """The start page's own client: public (the page is static), code flow with PKCE S256
    required, its exact address as the only redirect and post-logout URI."""
    page = start_page_url(settings, praxisname) + "/"
    return {
        "clientId": START_PAGE_CLIENT,
        "name": "Startseite",
        "description": "Startseite der Praxis (mein.smartpraxx.de)",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": True,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "frontchannelLogout": True,
        "rootUrl": page,
        "baseUrl": page,
        "alwaysDisplayInConsole": False,
        "redirectUris": [page],
        "webOrigins": [_origin(page)],
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": page,
            MANAGED_ATTR: START_PAGE_CLIENT,
        },
        "protocolMappers": protocol_mappers(),
    }


def client_safety_problems(payload: dict[str, Any]) -> list[str]:
    """What makes a client payload unsafe: wildcard or non-absolute redirect URIs, direct
    access grants or the implicit flow, a public client without PKCE S256."""
    problems = []
    for uri in payload.get("redirectUris") or []:
        parts = urlparse(uri)
        if "*" in uri or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"redirect URI {uri!r} is not one exact absolute address")
    if payload.get("directAccessGrantsEnabled"):
        problems.append("direct access grants (password grant) are on")
    if payload.get("implicitFlowEnabled"):
        problems.append("the implicit flow is on")
    attrs = payload.get("attributes") or {}
    if payload.get("publicClient") and attrs.get("pkce.code.challenge.method") != "S256":
        problems.append("a public client without PKCE S256")
    return problems


def nextcloud_secret_path(slot: Slot) -> str:
    return f"practices/{slot.id}/oidc-{NEXTCLOUD_CLIENT}"


def app_secret_path(slot: Slot, app: ThirdPartyApp) -> str:
    return f"practices/{slot.id}/oidc-{app.slug}"


def differences(desired: Any, live: Any, prefix: str = "") -> list[str]:
    """Names of the fields of ``desired`` that ``live`` does not match.

    Dicts compare as subsets (keys Keycloak adds are ignored); lists of scalars compare as
    sets; scalars compare by their string form (Keycloak answers "true"/"300" for some)."""
    if isinstance(desired, dict):
        live_dict = live if isinstance(live, dict) else {}
        out: list[str] = []
        for key, value in desired.items():
            out.extend(differences(value, live_dict.get(key), f"{prefix}{key}."))
        return out
    name = prefix.rstrip(".")
    if isinstance(desired, list):
        live_list = live if isinstance(live, list) else ([] if live is None else [live])
        if all(not isinstance(v, (dict, list)) for v in desired):
            same = sorted(map(str, desired)) == sorted(map(str, live_list))
        else:
            same = desired == live_list
        return [] if same else [name]
    if live is None and desired is None:
        return []
    if isinstance(desired, bool):
        return [] if str(desired).lower() == str(live).lower() else [name]
    return [] if str(desired) == str(live) and live is not None else [name]


def _user_differences(want: dict[str, Any], live: dict[str, Any]) -> list[str]:
    diffs = differences({k: v for k, v in want.items() if k != "attributes"}, live)
    live_attrs = live.get("attributes") or {}
    for name, values in want["attributes"].items():
        if sorted(values) != sorted(live_attrs.get(name) or []):
            diffs.append(f"attributes.{name}")
    return diffs


# --- steps ------------------------------------------------------------------------------


def _is_ours(realm: dict[str, Any], slot: Slot) -> bool:
    return (realm.get("attributes") or {}).get(SLOT_ATTR) == slot.id


def converge_realm(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
    *,
    prune: bool = False,
    adopt: bool = False,
    one_call: bool = True,
) -> IdentityResult:
    """Create the practice's realm or bring it up to date (never recreates it).

    A realm that does not exist yet is created from one complete representation and read
    back (``create_realm_in_one_call``); ``one_call=False`` builds it call by call instead.
    An existing realm is always converged call by call."""
    if one_call and kc.get_realm(slot.realm) is None:
        return create_realm_in_one_call(kc, spec, slot, settings, secrets, reporter)
    start = kc.mutations
    result = IdentityResult()
    realm = slot.realm
    _converge_realm_settings(kc, spec, slot, settings, secrets, reporter, adopt=adopt)
    _converge_user_profile(kc, realm, reporter)
    roles = _converge_roles(kc, realm, reporter)
    groups = _converge_groups(kc, realm, reporter, spec)
    result.clients = _converge_clients(kc, spec, slot, settings, secrets, reporter, prune=prune)
    user_ids = _converge_users(kc, spec, slot, settings, reporter, result, prune=prune)
    _converge_memberships(kc, spec, realm, roles, groups, user_ids, reporter)
    result.changes = kc.mutations - start
    if result.changes == 0:
        reporter.skip(f"identity of {slot.realm}: up to date, nothing changed")
    else:
        reporter.info(f"identity of {slot.realm}: {result.changes} change(s) applied")
    return result


# --- a new realm in one call ----------------------------------------------------------------


def role_payloads() -> list[dict[str, Any]]:
    """Our realm roles as RoleRepresentations."""
    return [
        {"name": name, "description": description, "attributes": attributes}
        for name, (description, attributes) in REALM_ROLES.items()
    ]


def group_payloads() -> list[dict[str, Any]]:
    """Our top-level groups as GroupRepresentations (marked with their managed key)."""
    return [
        {"name": name, "attributes": {MANAGED_ATTR: [key]}}
        for key, name in desired_groups().items()
    ]


def audience_group_payloads(spec: PracticeSpec) -> list[dict[str, Any]]:
    """The practice's audience groups (only those someone is in) as GroupRepresentations."""
    fixed = desired_groups()
    return [
        {"name": name, "attributes": {MANAGED_ATTR: [key]}}
        for key, name in desired_groups(spec).items()
        if key not in fixed
    ]


def desired_clients(
    spec: PracticeSpec, slot: Slot, settings: Settings, secrets: SecretStore
) -> list[dict[str, Any]]:
    """The practice's OIDC clients (Nextcloud first, then the Apps sheet), secrets ensured."""
    wanted = [
        nextcloud_client_payload(settings, slot, spec, secrets.ensure(nextcloud_secret_path(slot)))
    ]
    for app in spec.third_party_apps:
        wanted.append(third_party_client_payload(app, secrets.ensure(app_secret_path(slot, app))))
    wanted.append(start_page_client_payload(settings, spec.praxisname))
    ids = [w["clientId"] for w in wanted]
    if len(set(ids)) != len(ids):
        raise UsageError(
            "two third-party apps map to the same client id",
            obj=f"practice {spec.praxisname}",
            hint="give the apps in the Starter Excel's Apps sheet distinct names",
        )
    for want in wanted:
        problems = client_safety_problems(want)
        if problems:
            raise UsageError(
                f"client {want['clientId']} would be unsafe: {'; '.join(problems)}",
                obj=f"practice {spec.praxisname}",
                hint="fix the app's Redirect-URI in the Starter Excel's Apps sheet",
            )
    return wanted


def realm_parts(
    spec: PracticeSpec, slot: Slot, settings: Settings, secrets: SecretStore
) -> RealmParts:
    """The whole desired state of a new realm, composed from the payload builders above."""
    usernames = [p.username.lower() for p in spec.persons]
    if len(set(usernames)) != len(usernames):
        raise UsageError(
            "two persons share a username",
            obj=f"practice {spec.praxisname}",
            hint="fix the Starter Excel (usernames must be unique)",
        )
    smtp_password = secrets.get(SMTP_PASSWORD_SECRET) if settings.smtp_user else None
    groups = desired_groups(spec)
    return RealmParts(
        realm=realm_payload(spec, slot, settings, smtp_password),
        user_profile_attributes=user_profile_attributes(),
        roles=role_payloads(),
        groups=group_payloads() + audience_group_payloads(spec),
        clients=desired_clients(spec, slot, settings, secrets),
        users=[
            ImportUser(
                fields=user_fields(person, spec),
                required_actions=required_actions(person, settings),
                realm_roles=sorted(person_roles(person)),
                groups=sorted(groups[key] for key in person_group_keys(person, spec)),
            )
            for person in spec.persons
        ],
    )


def read_back(kc: KeycloakAdapter, parts: RealmParts, *, group_members: bool = False) -> ReadBack:
    """Everything ``import_differences`` compares, read from Keycloak (GETs only).

    Group memberships are read only with ``group_members=True``: Keycloak refuses a whole
    import whose user names a group path it cannot resolve (HTTP 500, no realm), so they
    cannot be dropped silently; an unknown realm role, by contrast, is accepted silently, so
    role memberships are always read back. The next converge re-checks both."""
    realm = parts.name
    clients = [c for w in parts.clients if (c := kc.find_client(realm, w["clientId"]))]
    groups = kc.groups(realm)
    wanted_groups = {g["name"] for g in parts.groups}
    return ReadBack(
        realm=kc.get_realm(realm) or {},
        user_profile=kc.get_user_profile(realm),
        roles=kc.realm_roles(realm),
        groups=groups,
        clients=clients,
        client_secrets={c["clientId"]: kc.client_secret(realm, str(c["id"])) for c in clients},
        users=[u for u in kc.users(realm) if not u["username"].startswith(SMOKE_PREFIX)],
        role_members={r["name"]: kc.role_member_ids(realm, r["name"]) for r in parts.roles},
        group_members=(
            {
                g["name"]: kc.group_member_ids(realm, str(g["id"]))
                for g in groups
                if g["name"] in wanted_groups
            }
            if group_members
            else None
        ),
    )


def _remove_own_new_realm(kc: KeycloakAdapter, slot: Slot, reporter: Reporter) -> bool:
    """After a failed import: delete the realm only if it exists and carries our marker for
    this slot (it was just created by this call); never touch anything else."""
    try:
        live = kc.get_realm(slot.realm)
        if live is None or not _is_ours(live, slot):
            return False
        kc.delete_realm(slot.realm)
    except ExternalServiceError:
        reporter.warn(f"realm {slot.realm}: could not remove the incomplete import")
        return False
    reporter.change(f"realm {slot.realm} removed again (the import did not complete)")
    return True


def create_realm_in_one_call(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
) -> IdentityResult:
    """Create a new practice realm with ONE ``POST /admin/realms`` carrying the complete
    representation (settings, user profile, roles, groups, users with attributes, required
    actions and memberships, clients with mappers), then read everything back.

    Keycloak imports a realm in one transaction: a refused import leaves no realm. When the
    read-back finds something not stored as sent (e.g. an attribute the user profile does not
    declare), the realm, created by this very call and carrying our marker, is deleted again,
    so the next run starts from scratch. The invitations go out later, in provision's
    ``invite`` step (operations/invitations.py)."""
    start = kc.mutations
    realm = slot.realm
    parts = realm_parts(spec, slot, settings, secrets)
    try:
        kc.create_realm(realm_representation(parts))
    except ExternalServiceError as exc:
        if exc.details.get("status") == 409:
            raise ConflictError(
                f"realm {realm} appeared while this run was creating it",
                obj=f"realm {realm}",
                hint="check no other provision of this practice is running, then re-run it",
            ) from exc
        _remove_own_new_realm(kc, slot, reporter)
        raise
    reporter.change(
        f"realm {realm} created ({spec.praxisname}) from one representation: "
        f"{len(parts.users)} user(s), {len(parts.clients)} client(s)"
    )
    diffs = import_differences(parts, read_back(kc, parts))
    if diffs:
        removed = _remove_own_new_realm(kc, slot, reporter)
        raise ExternalServiceError(
            f"Keycloak did not store {', '.join(diffs)} in realm {realm} "
            "(read back after the import)"
            + ("; the new realm was removed again" if removed else ""),
            obj=f"realm {realm}",
            hint="check the realm's user profile declares the attribute, then re-run the operation",
        )
    result = IdentityResult(
        created_users=len(parts.users), clients=[c["clientId"] for c in parts.clients]
    )
    result.changes = kc.mutations - start
    reporter.info(f"identity of {realm}: created in one call and verified by reading back")
    return result


def _converge_realm_settings(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
    *,
    adopt: bool,
) -> None:
    smtp_password = secrets.get(SMTP_PASSWORD_SECRET) if settings.smtp_user else None
    want = realm_payload(spec, slot, settings, smtp_password)
    live = kc.get_realm(slot.realm)
    if live is None:
        kc.create_realm(want)
        reporter.change(f"realm {slot.realm} created ({spec.praxisname})")
        return
    if not _is_ours(live, slot):
        if not adopt:
            raise ConflictError(
                f"realm {slot.realm} exists but was not created by smartpraxx-provision "
                f"(no {SLOT_ATTR} attribute)",
                obj=f"realm {slot.realm}",
                hint="check it is the right realm, then re-run with --adopt to take it over",
            )
        reporter.warn(f"realm {slot.realm} exists without our marker: adopting it (--adopt)")
    compare = dict(want)
    compare.pop("realm")
    smtp = compare.get("smtpServer")
    if isinstance(smtp, dict):  # Keycloak masks the stored password
        compare["smtpServer"] = {k: v for k, v in smtp.items() if k != "password"}
    diffs = differences(compare, live)
    if not diffs:
        reporter.skip(f"realm {slot.realm} exists, up to date")
        return
    update = {key: want[key] for key in {d.split(".")[0] for d in diffs}}
    if "attributes" in update:
        update["attributes"] = {**(live.get("attributes") or {}), **want["attributes"]}
    if "smtpServer" in diffs or any(d.startswith("smtpServer.") for d in diffs):
        update["smtpServer"] = want["smtpServer"]
    kc.update_realm(slot.realm, update)
    reporter.change(f"realm {slot.realm} updated: {', '.join(sorted(set(diffs)))}")


def _converge_user_profile(kc: KeycloakAdapter, realm: str, reporter: Reporter) -> None:
    config = kc.get_user_profile(realm)
    attributes: list[dict[str, Any]] = list(config.get("attributes") or [])
    by_name = {a.get("name"): i for i, a in enumerate(attributes)}
    changed: list[str] = []
    for want in user_profile_attributes():
        index = by_name.get(want["name"])
        if index is None:
            attributes.append(want)
            changed.append(want["name"])
        elif differences(want, attributes[index]):
            attributes[index] = {**attributes[index], **want}
            changed.append(want["name"])
    if not changed:
        reporter.skip(f"user profile of {realm}: attributes declared, up to date")
        return
    kc.update_user_profile(realm, {**config, "attributes": attributes})
    reporter.change(f"user profile of {realm}: declared {', '.join(changed)}")


def _converge_roles(
    kc: KeycloakAdapter, realm: str, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    live = {r["name"]: r for r in kc.realm_roles(realm)}
    changed = 0
    for want in role_payloads():
        name = want["name"]
        if name not in live:
            kc.create_realm_role(realm, want)
            changed += 1
        elif differences(want, live[name]):
            kc.update_realm_role(realm, name, {**live[name], **want})
            changed += 1
    if changed:
        live = {r["name"]: r for r in kc.realm_roles(realm)}
        reporter.change(f"realm roles of {realm}: {changed} created or updated")
    else:
        reporter.skip(f"realm roles of {realm}: up to date")
    return {name: live[name] for name in REALM_ROLES}


def _converge_groups(
    kc: KeycloakAdapter, realm: str, reporter: Reporter, spec: PracticeSpec | None = None
) -> dict[str, str]:
    """Ensure our groups; return managed key -> group id (audience groups nobody is in any
    more included, so the membership step empties them)."""
    wanted = desired_groups(spec)

    def managed_key(group: dict[str, Any]) -> str | None:
        values = (group.get("attributes") or {}).get(MANAGED_ATTR) or []
        return str(values[0]) if values else None

    live = kc.groups(realm)
    by_key = {k: g for g in live if (k := managed_key(g))}
    by_name = {g["name"]: g for g in live}
    changed = 0
    for key, name in wanted.items():
        attrs = {MANAGED_ATTR: [key]}
        group = by_key.get(key)
        if group is None and name in by_name and managed_key(by_name[name]) is None:
            group = by_name[name]  # a same-named group made by hand: take it over
        if group is None:
            kc.create_group(realm, {"name": name, "attributes": attrs})
            changed += 1
        elif group["name"] != name or differences(attrs, group.get("attributes") or {}):
            kc.update_group(
                realm,
                group["id"],
                {**group, "name": name, "attributes": {**(group.get("attributes") or {}), **attrs}},
            )
            changed += 1
    if changed:
        live = kc.groups(realm)
        by_key = {k: g for g in live if (k := managed_key(g))}
        reporter.change(f"groups of {realm}: {changed} created or updated")
    else:
        reporter.skip(f"groups of {realm}: up to date")
    stale = [k for k in by_key if k.startswith(AUDIENCE_KEY) and k not in wanted]
    return {key: str(by_key[key]["id"]) for key in [*wanted, *stale]}


def _converge_client(
    kc: KeycloakAdapter,
    realm: str,
    want: dict[str, Any],
    live: dict[str, Any] | None,
    reporter: Reporter,
) -> None:
    client_id = want["clientId"]
    if live is None:
        kc.create_client(realm, want)
        reporter.change(f"client {client_id} created in {realm}")
        return
    uuid = str(live["id"])
    top = {k: v for k, v in want.items() if k not in ("protocolMappers", "secret")}
    diffs = differences(top, live)
    secret_differs = "secret" in want and kc.client_secret(realm, uuid) != want["secret"]
    if diffs or secret_differs:
        update = {k: v for k, v in live.items() if k != "protocolMappers"}
        update.update(top)
        update["attributes"] = {**(live.get("attributes") or {}), **want["attributes"]}
        if secret_differs:
            update["secret"] = want["secret"]
        kc.update_client(realm, uuid, update)
        what = sorted(set(diffs)) + (["secret"] if secret_differs else [])
        reporter.change(f"client {client_id} in {realm} updated: {', '.join(what)}")
    live_mappers = {m["name"]: m for m in live.get("protocolMappers") or []}
    mapper_changes = 0
    for mapper in want["protocolMappers"]:
        current = live_mappers.get(mapper["name"])
        if current is None:
            kc.add_client_mapper(realm, uuid, mapper)
            mapper_changes += 1
        elif differences(mapper, current):
            merged = {
                **current,
                **mapper,
                "config": {**current.get("config", {}), **mapper["config"]},
            }
            kc.update_client_mapper(realm, uuid, str(current["id"]), merged)
            mapper_changes += 1
    if mapper_changes:
        reporter.change(f"client {client_id} in {realm}: {mapper_changes} protocol mapper(s) set")
    if not diffs and not secret_differs and not mapper_changes:
        reporter.skip(f"client {client_id} in {realm} exists, up to date")


def _converge_clients(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
    *,
    prune: bool,
) -> list[str]:
    realm = slot.realm
    wanted = desired_clients(spec, slot, settings, secrets)
    ids = [w["clientId"] for w in wanted]
    live = {c["clientId"]: c for c in kc.clients(realm)}
    for want in wanted:
        _converge_client(kc, realm, want, live.get(want["clientId"]), reporter)
    for client_id, client in live.items():
        if client_id in ids or not (client.get("attributes") or {}).get(MANAGED_ATTR):
            continue
        if prune:
            kc.delete_client(realm, str(client["id"]))
            reporter.change(f"client {client_id} removed from {realm} (--prune)")
        elif client.get("enabled", True):
            kc.update_client(realm, str(client["id"]), {**client, "enabled": False})
            reporter.change(f"client {client_id} in {realm} disabled (no longer in the spec)")
    return ids


def _check_read_back(kc: KeycloakAdapter, realm: str, user_id: str, want: dict[str, Any]) -> None:
    stored = kc.get_user(realm, user_id)
    diffs = _user_differences(want, stored)
    if diffs:
        raise ExternalServiceError(
            f"Keycloak did not store {', '.join(diffs)} of a user in realm {realm} "
            "(read back after writing)",
            obj=f"realm {realm}",
            hint="check the realm's user profile declares the attribute, then re-run the operation",
        )


def _converge_users(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    reporter: Reporter,
    result: IdentityResult,
    *,
    prune: bool,
) -> dict[str, str]:
    """Create/update/disable users; return username -> id for the spec's persons."""
    realm = slot.realm
    usernames = [p.username.lower() for p in spec.persons]
    if len(set(usernames)) != len(usernames):
        raise UsageError(
            "two persons share a username",
            obj=f"practice {spec.praxisname}",
            hint="fix the Starter Excel (usernames must be unique)",
        )
    live = {u["username"]: u for u in kc.users(realm) if not u["username"].startswith(SMOKE_PREFIX)}
    ids: dict[str, str] = {}
    unchanged = 0
    for person in spec.persons:
        want = user_fields(person, spec)
        current = live.get(want["username"])
        if current is None:
            payload = {
                **want,
                "attributes": {k: v for k, v in want["attributes"].items() if v},
                "emailVerified": False,
                "requiredActions": required_actions(person, settings),
            }
            user_id = kc.create_user(realm, payload)
            _check_read_back(kc, realm, user_id, want)
            result.created_users += 1
        else:
            user_id = str(current["id"])
            if _user_differences(want, current):
                update = {**current, **{k: v for k, v in want.items() if k != "attributes"}}
                update["attributes"] = {
                    **(current.get("attributes") or {}),
                    **{k: v for k, v in want["attributes"].items()},
                }
                kc.update_user(realm, user_id, update)
                _check_read_back(kc, realm, user_id, want)
                result.updated_users += 1
            else:
                unchanged += 1
        ids[want["username"]] = user_id
    for username, user in live.items():
        if username in ids:
            continue
        if prune:
            kc.delete_user(realm, str(user["id"]))
            result.deleted_users += 1
        elif user.get("enabled", True):
            kc.update_user(realm, str(user["id"]), {**user, "enabled": False})
            result.disabled_users += 1
    counts = (
        f"{result.created_users} created, {result.updated_users} updated, "
        f"{result.disabled_users} disabled, {result.deleted_users} deleted, {unchanged} up to date"
    )
    if (
        result.created_users
        or result.updated_users
        or result.disabled_users
        or result.deleted_users
    ):
        reporter.change(f"users of {realm}: {counts}")
    else:
        reporter.skip(f"users of {realm}: {counts}")
    return ids


def _converge_memberships(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    realm: str,
    roles: dict[str, dict[str, Any]],
    groups: dict[str, str],
    user_ids: dict[str, str],
    reporter: Reporter,
) -> None:
    persons = {p.username.lower(): p for p in spec.persons}
    changes = 0
    for role, rep in roles.items():
        want = {user_ids[u] for u, p in persons.items() if role in person_roles(p)}
        have = kc.role_member_ids(realm, role)
        role_ref = [{"id": rep["id"], "name": rep["name"]}]
        for user_id in sorted(want - have):
            kc.assign_realm_roles(realm, user_id, role_ref)
            changes += 1
        for user_id in sorted(have - want):
            kc.remove_realm_roles(realm, user_id, role_ref)
            changes += 1
    for key, group_id in groups.items():
        want = {user_ids[u] for u, p in persons.items() if key in person_group_keys(p, spec)}
        have = kc.group_member_ids(realm, group_id)
        for user_id in sorted(want - have):
            kc.add_to_group(realm, user_id, group_id)
            changes += 1
        for user_id in sorted(have - want):
            kc.remove_from_group(realm, user_id, group_id)
            changes += 1
    if changes:
        reporter.change(f"role and group memberships of {realm}: {changes} change(s)")
    else:
        reporter.skip(f"role and group memberships of {realm}: up to date")


# --- other operations ---------------------------------------------------------------------


def _require_ours(kc: KeycloakAdapter, slot: Slot) -> dict[str, Any]:
    live = kc.get_realm(slot.realm)
    if live is None:
        raise NotFoundError(
            f"realm {slot.realm} does not exist",
            obj=f"realm {slot.realm}",
            hint="provision the practice first ('smartpraxx-provision provision ...')",
        )
    if not _is_ours(live, slot):
        raise ConflictError(
            f"realm {slot.realm} was not created by smartpraxx-provision",
            obj=f"realm {slot.realm}",
            hint="leave it alone or adopt it with 'provision --adopt'",
        )
    return live


def delete_realm(kc: KeycloakAdapter, slot: Slot, reporter: Reporter) -> bool:
    """Delete the practice's realm (decommission). False when it is already gone."""
    live = kc.get_realm(slot.realm)
    if live is None:
        reporter.skip(f"realm {slot.realm} does not exist, nothing to delete")
        return False
    _require_ours(kc, slot)
    kc.delete_realm(slot.realm)
    reporter.change(f"realm {slot.realm} deleted")
    return True


def set_alias(
    kc: KeycloakAdapter, slot: Slot, praxisname: str, display_name: str, reporter: Reporter
) -> bool:
    """Move the public alias (rename): displayName and smartpraxx.praxisname, never the realm."""
    live = _require_ours(kc, slot)
    attrs = live.get("attributes") or {}
    if live.get("displayName") == display_name and attrs.get(PRAXISNAME_ATTR) == praxisname:
        reporter.skip(f"realm {slot.realm} alias is {praxisname}, up to date")
        return False
    kc.update_realm(
        slot.realm,
        {"displayName": display_name, "attributes": {**attrs, PRAXISNAME_ATTR: praxisname}},
    )
    reporter.change(f"realm {slot.realm} alias set to {praxisname}")
    return True


def move_start_page_client(
    kc: KeycloakAdapter, slot: Slot, settings: Settings, praxisname: str, reporter: Reporter
) -> None:
    """Rename: the start page client's redirect and post-logout URIs follow the new path."""
    _require_ours(kc, slot)
    want = start_page_client_payload(settings, praxisname)
    _converge_client(kc, slot.realm, want, kc.find_client(slot.realm, START_PAGE_CLIENT), reporter)


def export_realm(kc: KeycloakAdapter, slot: Slot) -> dict[str, Any]:
    """The practice's identity data for decommission: Keycloak's partial export (clients,
    roles, groups; secrets masked by Keycloak) plus the users without any credentials."""
    _require_ours(kc, slot)
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


def password_login(
    settings: Settings,
    slot: Slot,
    client_id: str,
    client_secret: str,
    username: str,
    password: str,
    *,
    redirect_uri: str | None = None,
) -> dict[str, Any]:
    """A real authorization-code login at the practice's realm (tests and the smoke check).

    ``redirect_uri`` defaults to Nextcloud's user_oidc callback of the slot; it is never
    contacted. Raises ``adapters.keycloak.LoginRefused`` when Keycloak refuses."""
    # the login form lives on the browser-facing host (its cookies too; behind the local TLS
    # proxy, or a cluster's front): start there, as a browser does (default: keycloak_url)
    base = settings.keycloak_public_url
    return authorization_code_login(
        base,
        slot.realm,
        client_id,
        client_secret,
        redirect_uri or nextcloud_redirect_uris(settings, slot)[0],
        username,
        password,
        timeout=settings.keycloak_timeout,
        verify=tls_verify(settings),
    )


def tls_verify(settings: Settings) -> str | bool:
    """What an https client trusts: the local proxy's CA (embedded TLS mode) or the system's."""
    if settings.local_tls_proxy:
        from ..adapters import localhost_names
        from ..devstack.proxy import ca_certificate

        localhost_names.enable()  # the browser-facing *.localhost names, as browsers do
        return str(ca_certificate(settings))
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
