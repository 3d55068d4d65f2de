"""Pure parts of the identity layer: desired realm/user/client state, diffs, URLs, Java pick."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.adapters.keycloak_login import jwt_claims
from smartpraxx_provision.config import Settings, load_settings, replace
from smartpraxx_provision.devstack import keycloak as devkc
from smartpraxx_provision.domain.model import (
    Person,
    PracticeSpec,
    PracticeType,
    Role,
    Slot,
    ThirdPartyApp,
    WorkArea,
)
from smartpraxx_provision.errors import ExternalServiceError, ServiceUnavailableError
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.render.bundle import nextcloud_base_url, realm_issuer

SLOT = Slot("cloud023", 7)


def spec(**kw: object) -> PracticeSpec:
    base: dict[str, object] = {
        "praxisname": "praxis-mueller",
        "display_name": "Praxis Dr. Müller",
        "practice_type": PracticeType.ARZTPRAXIS,
        "kv": "KV Rheinland-Pfalz",
        "specialties": ("urologie",),
        "order_id": "T-1",
        "contact_email": "praxis@example.org",
    }
    base.update(kw)
    return PracticeSpec(**base)  # type: ignore[arg-type]


def person(**kw: object) -> Person:
    base: dict[str, object] = {
        "first_name": "Anna", "last_name": "Müller", "email": "Anna@Example.org",
        "username": "AMueller", "role": Role.PRAXISINHABER,
        "work_areas": (WorkArea.ABRECHNUNG, WorkArea.DATENSCHUTZ_IT), "lanr": "123456699",
        "specialty": "urologie", "admin": True,
    }
    base.update(kw)
    return Person(**base)  # type: ignore[arg-type]


def test_urls(settings: Settings) -> None:
    s = replace(settings, profile="production", keycloak_public_url="https://mein.smartpraxx.de")
    assert realm_issuer(s, SLOT) == "https://mein.smartpraxx.de/realms/nc07-cloud023"
    assert f"{realm_issuer(s, SLOT)}/.well-known/openid-configuration".endswith(
        "/realms/nc07-cloud023/.well-known/openid-configuration"
    )
    assert realm_render.start_page_url(s, "praxis-mueller") == "https://mein.smartpraxx.de/praxis-mueller"
    assert realm_render.nextcloud_redirect_uris(s, SLOT) == [
        "https://nc07.cloud023.smartpraxx.de/apps/user_oidc/code",
        "https://nc07.cloud023.smartpraxx.de/index.php/apps/user_oidc/code",
    ]
    # embedded profile: http, issuer base defaults to the admin URL
    assert nextcloud_base_url(settings, SLOT) == "http://nc07.cloud023.smartpraxx.de"
    assert realm_issuer(settings, SLOT) == f"{settings.keycloak_url}/realms/nc07-cloud023"


def test_urls_behind_the_local_tls_proxy(settings: Settings) -> None:
    """Embedded + https: the browser URLs carry the local Caddy's port, the issuer is the
    identity host's, the containers use the internal name for the same realm."""
    from smartpraxx_provision.render.bundle import backchannel_issuer_url

    s = replace(
        settings, domain="smartpraxx.localhost", identity_host="mein.smartpraxx.localhost",
        public_scheme="https", proxy_port=9443,
    )
    assert s.local_tls_proxy
    assert s.keycloak_public_url == "https://mein.smartpraxx.localhost:9443"
    assert s.keycloak_internal_url == "http://idp-internal:8080"
    assert realm_issuer(s, SLOT) == (
        "https://mein.smartpraxx.localhost:9443/realms/nc07-cloud023"
    )
    assert backchannel_issuer_url(s, SLOT) == "http://idp-internal:8080/realms/nc07-cloud023"
    assert realm_render.start_page_url(s, "praxis-mueller") == (
        "https://mein.smartpraxx.localhost:9443/praxis-mueller"
    )
    assert realm_render.nextcloud_redirect_uris(s, SLOT)[0] == (
        "https://nc07.cloud023.smartpraxx.localhost:9443/apps/user_oidc/code"
    )
    # without the proxy the containers use the public issuer itself
    assert not settings.local_tls_proxy
    assert backchannel_issuer_url(settings, SLOT) == realm_issuer(settings, SLOT)


def test_realm_payload(settings: Settings) -> None:
    p = realm_render.realm_payload(spec(), SLOT, settings)
    assert p["realm"] == "nc07-cloud023"
    assert p["displayName"] == "Praxis Dr. Müller"
    assert p["defaultLocale"] == "de" and "de" in p["supportedLocales"]
    assert p["passwordPolicy"].startswith("length(12)")
    assert "notUsername" in p["passwordPolicy"] and "notEmail" in p["passwordPolicy"]
    assert "hashAlgorithm(argon2)" in p["passwordPolicy"]
    assert p["sslRequired"] == "external" and p["bruteForceProtected"] is True
    assert p["accessTokenLifespan"] <= 300
    assert p["eventsEnabled"] and p["adminEventsEnabled"] and p["eventsExpiration"] > 0
    assert p["attributes"]["smartpraxx.slot"] == "nc07-cloud023"
    assert p["attributes"]["smartpraxx.praxisname"] == "praxis-mueller"
    assert p["supportedLocales"] == ["de"] and p["internationalizationEnabled"] is True
    assert "loginTheme" not in p
    # embedded: the local mail sink, plain SMTP on loopback; staff can reset their password
    assert p["smtpServer"] == {
        "host": "127.0.0.1", "port": "2525", "from": "noreply@smartpraxx.localhost",
        "fromDisplayName": "Praxis Dr. Müller", "starttls": "false", "auth": "false",
        "allowutf8": "true",
    }
    assert p["resetPasswordAllowed"] is True


def test_realm_payload_with_smtp_and_theme(settings: Settings) -> None:
    s = replace(settings, smtp_host="mail.example.org", smtp_from="noreply@example.org",
                smtp_user="mailer", keycloak_login_theme="smartpraxx")
    p = realm_render.realm_payload(spec(), SLOT, s, smtp_password="pw")
    assert p["smtpServer"]["host"] == "mail.example.org"
    assert p["smtpServer"]["auth"] == "true" and p["smtpServer"]["password"] == "pw"
    assert p["loginTheme"] == "smartpraxx"
    assert p["resetPasswordAllowed"] is True


def test_user_fields_and_attributes() -> None:
    s = spec()
    u = realm_render.user_fields(person(lanrs=("123456699", "123456628")), s)
    assert u["username"] == "amueller" and u["email"] == "anna@example.org"
    assert u["attributes"] == {
        "rolle": ["praxisinhaber"],
        "arbeitsbereiche": ["abrechnung", "datenschutz-it"],
        "fachrichtung": ["urologie"],
        "kv": ["KV Rheinland-Pfalz"],
        "lanr": ["123456699", "123456628"],
    }
    mfa = realm_render.user_fields(person(role=Role.MFA, lanr=None, specialty=None, admin=False), s)
    assert mfa["attributes"]["lanr"] == [] and mfa["attributes"]["fachrichtung"] == []


def test_roles_groups_required_actions(settings: Settings) -> None:
    owner = person()
    assert realm_render.person_roles(owner) == {"praxis-admin", "arzt", "mitarbeitende"}
    trainee = person(role=Role.WEITERBILDUNGSASSISTENT, admin=False)
    assert realm_render.person_roles(trainee) == {"mitarbeitende"}  # not billable
    assert realm_render.person_group_keys(owner) >= {"area:abrechnung", "area:datenschutz-it"}
    names = realm_render.desired_groups()
    assert names["area:datenschutz-it"] == "Datenschutz & IT"  # no '/' in group names
    assert all("/" not in n for n in names.values())
    # one mail, one link, set a password: following the link verifies the address too
    assert realm_render.required_actions(owner, settings) == ["UPDATE_PASSWORD"]
    totp = replace(settings, admin_totp=True)
    assert realm_render.required_actions(owner, totp)[-1] == "CONFIGURE_TOTP"
    assert "CONFIGURE_TOTP" not in realm_render.required_actions(trainee, totp)


def test_user_profile_declares_every_attribute() -> None:
    attrs = {a["name"]: a for a in realm_render.user_profile_attributes()}
    # plus the smoke check's marker on its throwaway users (admin-only)
    assert set(attrs) == {*realm_render.MANAGED_USER_ATTRIBUTES, realm_render.SMOKE_MARKER_ATTR}
    assert attrs[realm_render.SMOKE_MARKER_ATTR]["permissions"] == {
        "view": ["admin"],
        "edit": ["admin"],
    }
    assert attrs["arbeitsbereiche"]["multivalued"] is True
    assert attrs["lanr"]["permissions"] == {"view": ["admin"], "edit": ["admin"]}
    assert "user" in attrs["rolle"]["permissions"]["view"]
    assert "user" not in attrs["rolle"]["permissions"]["edit"]


def test_clients(settings: Settings) -> None:
    nc = realm_render.nextcloud_client_payload(settings, SLOT, spec(), "s3cret")
    assert nc["clientId"] == "nextcloud" and nc["publicClient"] is False
    assert nc["secret"] == "s3cret" and nc["directAccessGrantsEnabled"] is False
    assert nc["webOrigins"] == ["http://nc07.cloud023.smartpraxx.de"]
    assert nc["alwaysDisplayInConsole"] is True and nc["baseUrl"].endswith("/")
    claim_mappers = [m for m in nc["protocolMappers"] if "claim.name" in m["config"]]
    claims = {m["config"]["claim.name"] for m in claim_mappers}
    assert claims == {"rolle", "arbeitsbereiche", "fachrichtung", "kv", "groups"}
    audience = [m for m in nc["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
    assert [m["config"]["included.client.audience"] for m in audience] == ["nextcloud"]
    for m in claim_mappers:
        assert m["config"]["id.token.claim"] == "true"
        assert m["config"]["userinfo.token.claim"] == "true"
    app = ThirdPartyApp("Dienstplanung Süd", "https://dp.example.org/x",
                        "https://dp.example.org/cb")
    tp = realm_render.third_party_client_payload(app, "t")
    assert tp["clientId"] == "app-dienstplanung-sued"
    assert tp["redirectUris"] == ["https://dp.example.org/cb"]
    assert tp["webOrigins"] == ["https://dp.example.org"]
    assert realm_render.app_secret_path(SLOT, app) == "practices/nc07-cloud023/oidc-dienstplanung-sued"
    assert realm_render.nextcloud_secret_path(SLOT) == "practices/nc07-cloud023/oidc-nextcloud"


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        ({"a": 1}, {"a": 1, "extra": 2}, []),
        ({"a": 1}, {"a": "1"}, []),
        ({"a": True}, {"a": "true"}, []),
        ({"a": True}, {"a": False}, ["a"]),
        ({"a": {"b": "x"}}, {"a": {"b": "y", "c": 1}}, ["a.b"]),
        ({"l": ["b", "a"]}, {"l": ["a", "b"]}, []),
        ({"l": ["a"]}, {"l": ["a", "b"]}, ["l"]),
        ({"l": []}, {}, []),
        ({"a": "x"}, {}, ["a"]),
    ],
)
def test_differences(desired: object, live: object, expected: list[str]) -> None:
    assert realm_render.differences(desired, live) == expected


def test_jwt_claims_rejects_garbage() -> None:
    with pytest.raises(ExternalServiceError):
        jwt_claims("not-a-token")


def test_keycloak_down_is_service_unavailable() -> None:
    from tests.fixtures.keycloak import free_port

    kc = KeycloakAdapter(f"http://127.0.0.1:{free_port()}", "admin", "irrelevant", timeout=3)
    with pytest.raises(ServiceUnavailableError) as err:
        kc.connect()
    assert err.value.hint == "smartpraxx-provision dev-stack up"
    assert "irrelevant" not in err.value.message


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return home


def test_java_home_setting_checked(tmp_path: Path, state_dir: Path) -> None:
    old = _fake_jdk(tmp_path, "jdk17", "17.0.9")
    new = _fake_jdk(tmp_path, "jdk21", "21.0.2")
    assert devkc._java_major(old) == 17 and devkc._java_major(new) == 21
    ok = load_settings(env={}, overrides={"state_dir": str(state_dir), "java_home": str(new)})
    assert devkc.find_java_home(ok) == new
    bad = load_settings(env={}, overrides={"state_dir": str(state_dir), "java_home": str(old)})
    with pytest.raises(ServiceUnavailableError) as err:
        devkc.find_java_home(bad)
    assert "21" in err.value.message and err.value.hint


def test_new_realm_imports_a_read_only_reader_without_login_flows() -> None:
    from smartpraxx_provision.render.realm_import import (
        RealmParts,
        reader_client,
        realm_representation,
    )

    parts = RealmParts(realm={"realm": "nc07-cloud023"}, user_profile_attributes=[], roles=[],
                       groups=[], clients=[])
    assert realm_render.READER_CLIENT not in [c["clientId"] for c in
                                             realm_representation(parts)["clients"]]
    rep = realm_representation(dataclasses.replace(parts, reader_secret="s3cret-of-the-store"))
    (client,) = [c for c in rep["clients"] if c["clientId"] == realm_render.READER_CLIENT]
    assert client == reader_client("s3cret-of-the-store")
    assert client["serviceAccountsEnabled"] and not client["publicClient"]
    assert not any(client[k] for k in ("standardFlowEnabled", "implicitFlowEnabled",
                                       "directAccessGrantsEnabled"))
    (account,) = [u for u in rep["users"] if u.get("serviceAccountClientId")]
    assert account["clientRoles"] == {"realm-management": ["view-clients", "view-realm",
                                                            "view-users"]}
    assert all(role.startswith("view-") for role in realm_render.READER_ROLES)
