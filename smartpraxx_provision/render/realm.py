"""Pure: the desired state of a practice's Keycloak realm, and how live state differs from it.

The payload builders for what ``operations/identity.py`` converges: realm settings, declared
user-profile attributes, roles, groups (fixed role and work-area groups, audience groups), users
(managed fields, attributes, required actions) and OIDC clients (Nextcloud, the Apps sheet's
third-party tools, the start page) with their protocol mappers; the public URLs of the start
page; the secret-store paths of client secrets; ``differences``, the field-by-field comparison
of a desired payload with what Keycloak answers. Deterministic and free of I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from ..config import Settings
from ..domain import audience
from ..domain.model import Person, PracticeSpec, Role, Slot, ThirdPartyApp, WorkArea
from .bundle import nextcloud_base_url, realm_issuer

SLOT_ATTR = "smartpraxx.slot"
PRAXISNAME_ATTR = "smartpraxx.praxisname"
MANAGED_ATTR = "smartpraxx.managed"  # on clients and groups we manage (value: our key)
ROLES_ATTR = "smartpraxx.roles"  # on third-party clients: role slugs that see the start tile
SMOKE_PREFIX = "smartpraxx-smoke-"
SMOKE_MARKER_ATTR = "smartpraxx_smoke"  # on the smoke check's throwaway users only
SMTP_PASSWORD_SECRET = "platform/smtp-password"  # noqa: S105 - a path

PASSWORD_POLICY = (
    "length(12) and notUsername and notEmail and passwordHistory(5) and hashAlgorithm(argon2)"  # noqa: S105
)
ACCESS_TOKEN_LIFESPAN = 300  # seconds
EVENTS_EXPIRATION = 90 * 24 * 3600  # seconds, login and admin events

NEXTCLOUD_CLIENT = "nextcloud"
START_PAGE_CLIENT = "startseite"
# A confidential client whose service account may only read its realm (realm-management's
# view roles), imported with every new realm: the read-back right after the import goes
# through it. Keycloak makes the first master-admin request that touches a new realm pay for
# it (8.8 s at 200 realms, 0.16 s at 0: benchmarks/RESULTS-realms.md); the realm's own
# read-only token does not (0.36 s for token + whole read-back at 200 realms).
READER_CLIENT = "smartpraxx-reader"
READER_ROLES = ("view-clients", "view-realm", "view-users")
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


# --- URLs ---------------------------------------------------------------------------


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


# --- desired state ------------------------------------------------------------------


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


def reader_secret_path(slot: Slot) -> str:
    return f"practices/{slot.id}/keycloak-{READER_CLIENT}"


def nextcloud_secret_path(slot: Slot) -> str:
    return f"practices/{slot.id}/oidc-{NEXTCLOUD_CLIENT}"


def app_secret_path(slot: Slot, app: ThirdPartyApp) -> str:
    return f"practices/{slot.id}/oidc-{app.slug}"


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


# --- desired vs live state ---------------------------------------------------------


def field_differences(
    desired: Any,
    live: Any,
    prefix: str,
    *,
    same: Callable[[Any, Any], bool],
    text: Callable[[Any], str],
) -> list[str]:
    """Names of the fields of ``desired`` that ``live`` does not match: dicts compare as
    subsets (keys Keycloak adds are ignored), lists of scalars as sets of their ``text``,
    other lists exactly, scalars by ``same(desired, live)``."""
    if isinstance(desired, dict):
        live_dict = live if isinstance(live, dict) else {}
        out: list[str] = []
        for key, value in desired.items():
            out.extend(
                field_differences(
                    value, live_dict.get(key), f"{prefix}{key}.", same=same, text=text
                )
            )
        return out
    name = prefix.rstrip(".")
    if isinstance(desired, list):
        live_list = live if isinstance(live, list) else ([] if live is None else [live])
        if all(not isinstance(v, (dict, list)) for v in desired):
            equal = sorted(map(text, desired)) == sorted(map(text, live_list))
        else:
            equal = desired == live_list
        return [] if equal else [name]
    return [] if same(desired, live) else [name]


def _same_string(desired: Any, live: Any) -> bool:
    if live is None and desired is None:
        return True
    if isinstance(desired, bool):
        return str(desired).lower() == str(live).lower()
    return str(desired) == str(live) and live is not None


def differences(desired: Any, live: Any, prefix: str = "") -> list[str]:
    """Names of the fields of ``desired`` that ``live`` does not match.

    Dicts compare as subsets (keys Keycloak adds are ignored); lists of scalars compare as
    sets; scalars compare by their string form (Keycloak answers "true"/"300" for some)."""
    return field_differences(desired, live, prefix, same=_same_string, text=str)


def user_differences(
    want: dict[str, Any],
    live: dict[str, Any],
    compare: Callable[[Any, Any], list[str]] = differences,
) -> list[str]:
    """What of a user's managed fields (``user_fields``) ``live`` does not hold: the top-level
    fields by ``compare``, then each managed attribute as a set of values."""
    diffs = compare({k: v for k, v in want.items() if k != "attributes"}, live)
    live_attrs = live.get("attributes") or {}
    for name, values in want["attributes"].items():
        if sorted(values) != sorted(live_attrs.get(name) or []):
            diffs.append(f"attributes.{name}")
    return diffs


def comparable_realm(payload: dict[str, Any]) -> dict[str, Any]:
    """A realm payload as Keycloak answers it back: without the realm's name, the SMTP
    password left out (Keycloak masks the stored one)."""
    compare = {k: v for k, v in payload.items() if k != "realm"}
    smtp = compare.get("smtpServer")
    if isinstance(smtp, dict):
        compare["smtpServer"] = {k: v for k, v in smtp.items() if k != "password"}
    return compare
