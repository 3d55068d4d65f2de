"""Identity against the real Keycloak of the local stack (one throwaway realm per test)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import pytest
import requests
from keycloak import KeycloakOpenID

from smartpraxx_provision.adapters import keycloak_login
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.adapters.keycloak_login import (
    LoginRefused,
    OidcClient,
    authorization_code_login,
    jwt_claims,
)
from smartpraxx_provision.config import Settings
from smartpraxx_provision.devstack import keycloak as devkc
from smartpraxx_provision.domain import audience
from smartpraxx_provision.domain.model import (
    Person,
    PracticeSpec,
    PracticeType,
    Role,
    Slot,
    ThirdPartyApp,
    WorkArea,
)
from smartpraxx_provision.errors import ConflictError, ExternalServiceError
from smartpraxx_provision.operations import identity, identity_export, identity_smoke
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.render.bundle import nextcloud_base_url, realm_issuer
from smartpraxx_provision.secrets import FileSecretStore

pytestmark = pytest.mark.integration

PASSWORD = "Testpasswort-fuer-Login-7"


def persons() -> tuple[Person, ...]:
    return (
        Person(
            "Anna", "Müller", "anna.mueller@example.org", "amueller", Role.PRAXISINHABER,
            (WorkArea.ABRECHNUNG, WorkArea.QM), lanr="123456699", specialty="urologie",
            admin=True, lanrs=("123456699", "123456628"),
        ),
        Person(
            "Jörg", "Weiß", "joerg.weiss@example.org", "jweiss", Role.ARZT,
            (WorkArea.LABOR,), lanr="654321101", specialty="urologie",
        ),
        Person(
            "Ben", "Schulz", "ben.schulz@example.org", "bschulz", Role.MFA,
            (WorkArea.EMPFANG, WorkArea.DATENSCHUTZ_IT),
        ),
    )


def make_spec(people: tuple[Person, ...] | None = None, **changes: object) -> PracticeSpec:
    spec = PracticeSpec(
        praxisname="praxis-mueller",
        display_name="Urologische Praxis Dr. Müller",
        practice_type=PracticeType.ARZTPRAXIS,
        kv="KV Rheinland-Pfalz",
        specialties=("urologie",),
        order_id="T-1",
        contact_email="praxis@example.org",
        persons=persons() if people is None else people,
        third_party_apps=(
            ThirdPartyApp(
                "Dienstplanung", "https://dienstplan.example.org",
                "https://dienstplan.example.org/oidc/callback",
            ),
        ),
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def converge(
    kc: KeycloakAdapter, spec: PracticeSpec, slot: Slot, settings: Settings,
    store: FileSecretStore, **kw: bool,
) -> tuple[identity.IdentityResult, Reporter]:
    reporter = Reporter(quiet=True)
    return identity.converge_realm(kc, spec, slot, settings, store, reporter, **kw), reporter


def enable_login(kc: KeycloakAdapter, slot: Slot, username: str, password: str = PASSWORD) -> None:
    """Test-only: set a password through the admin API and clear the required actions."""
    user_id = kc.find_user_id(slot.realm, username)
    assert user_id
    kc.set_password(slot.realm, user_id, password, temporary=False)
    user = kc.get_user(slot.realm, user_id)
    user["requiredActions"] = []
    kc.update_user(slot.realm, user_id, user)


def test_converge_twice_second_run_changes_nothing(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    first, _ = converge(kc_admin, spec, slot, keycloak, kc_secrets)
    assert first.created_users == 3
    assert first.changes > 0
    assert first.clients == ["nextcloud", "app-dienstplanung", "startseite"]

    before = kc_admin.mutations
    second, reporter = converge(kc_admin, spec, slot, keycloak, kc_secrets)
    assert kc_admin.mutations - before == 0
    assert second.changes == 0
    assert (second.created_users, second.updated_users, second.disabled_users) == (0, 0, 0)
    assert f"realm {slot.realm} exists, up to date" in " ".join(reporter.lines)
    assert any("up to date, nothing changed" in line for line in reporter.lines)
    # staff data never reaches the report
    text = "\n".join(reporter.lines)
    for p in spec.persons:
        assert p.username not in text and p.email not in text and p.last_name not in text


def test_realm_settings_as_designed(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(people=()), slot, keycloak, kc_secrets)
    realm = kc_admin.get_realm(slot.realm)
    assert realm is not None
    assert realm["displayName"] == "Urologische Praxis Dr. Müller"
    assert realm["defaultLocale"] == "de" and realm["internationalizationEnabled"] is True
    assert realm["passwordPolicy"] == realm_render.PASSWORD_POLICY
    assert "hashAlgorithm(argon2)" in realm["passwordPolicy"]
    assert realm["bruteForceProtected"] is True
    assert realm["sslRequired"] == "external"
    assert realm["accessTokenLifespan"] == realm_render.ACCESS_TOKEN_LIFESPAN
    assert realm["eventsEnabled"] is True and realm["adminEventsEnabled"] is True
    assert realm["eventsExpiration"] == realm_render.EVENTS_EXPIRATION
    assert realm["attributes"][realm_render.SLOT_ATTR] == slot.id
    assert realm["attributes"][realm_render.PRAXISNAME_ATTR] == "praxis-mueller"
    roles = {r["name"]: r for r in kc_admin.realm_roles(slot.realm)}
    assert roles["arzt"]["attributes"] == {"billable": ["true"]}
    assert {"praxis-admin", "mitarbeitende"} <= set(roles)


def test_drifted_realm_setting_is_repaired(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec(people=())
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    kc_admin.update_realm(slot.realm, {"sslRequired": "none", "passwordPolicy": "length(4)"})
    result, reporter = converge(kc_admin, spec, slot, keycloak, kc_secrets)
    assert result.changes == 1
    realm = kc_admin.get_realm(slot.realm)
    assert realm and realm["sslRequired"] == "external"
    assert realm["passwordPolicy"] == realm_render.PASSWORD_POLICY
    assert any("passwordPolicy" in line and "sslRequired" in line for line in reporter.lines)


def test_attribute_round_trip_for_every_attribute(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    for person in spec.persons:
        user_id = kc_admin.find_user_id(slot.realm, person.username)
        assert user_id
        user = kc_admin.get_user(slot.realm, user_id)
        attrs = user.get("attributes") or {}
        expected = realm_render.user_attributes(person, spec)
        for name in realm_render.MANAGED_USER_ATTRIBUTES:
            assert sorted(attrs.get(name) or []) == sorted(expected[name]), name
        assert (user["firstName"], user["lastName"]) == (person.first_name, person.last_name)
        assert user["email"] == person.email
        assert user["enabled"] is True
        assert user["requiredActions"] == ["UPDATE_PASSWORD"]  # the invitation link verifies
        creds = kc_admin.request(
            "GET", f"admin/realms/{slot.realm}/users/{user_id}/credentials", what="read credentials"
        )
        assert creds == []  # no password is ever set by provisioning
    anna = kc_admin.get_user(slot.realm, kc_admin.find_user_id(slot.realm, "amueller") or "")
    assert sorted(anna["attributes"]["lanr"]) == ["123456628", "123456699"]
    assert sorted(anna["attributes"]["arbeitsbereiche"]) == ["abrechnung", "qm"]


def test_changed_person_is_updated_and_regrouped(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    people = list(persons())
    people[2] = dataclasses.replace(people[2], work_areas=(WorkArea.HYGIENE,), last_name="Schulze")
    result, _ = converge(kc_admin, make_spec(tuple(people)), slot, keycloak, kc_secrets)
    assert (result.created_users, result.updated_users) == (0, 1)
    user_id = kc_admin.find_user_id(slot.realm, "bschulz") or ""
    user = kc_admin.get_user(slot.realm, user_id)
    assert user["attributes"]["arbeitsbereiche"] == ["hygiene"]
    assert user["lastName"] == "Schulze"
    groups = {g["name"] for g in kc_admin.admin.get_user_groups(user_id)}
    audience_groups = audience.person_groups(people[2], make_spec(tuple(people)))
    assert "bereich-hygiene" in audience_groups
    assert groups == {"Hygiene", "Mitarbeitende"} | audience_groups
    # a role change in the Starter Excel moves the person's rolle-* group (issue 16)
    people[2] = dataclasses.replace(people[2], role=Role.PRAXISMANAGER)
    converge(kc_admin, make_spec(tuple(people)), slot, keycloak, kc_secrets)
    after = {g["name"] for g in kc_admin.admin.get_user_groups(user_id)}
    assert "rolle-praxismanager" in after and "rolle-mfa" not in after


def test_undeclared_attribute_is_detected_on_read_back(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keycloak >= 24 answers 201 and drops an undeclared attribute: we must notice."""
    declared = [a for a in realm_render.user_profile_attributes() if a["name"] != "fachrichtung"]
    monkeypatch.setattr(identity, "user_profile_attributes", lambda: declared)
    slot = throwaway_realm()
    with pytest.raises(ExternalServiceError) as err:
        converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    assert "attributes.fachrichtung" in err.value.message
    assert "amueller" not in err.value.message and "urologie" not in err.value.message


def test_real_login_carries_claims_and_issuer(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    enable_login(kc_admin, slot, "amueller")
    secret = kc_secrets.require(realm_render.nextcloud_secret_path(slot))
    tokens = keycloak_login.password_login(keycloak, slot, "nextcloud", secret, "amueller", PASSWORD)

    # the issuer user_oidc would use: the realm's discovery document
    discovery = requests.get(f"{realm_issuer(keycloak, slot)}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == realm_issuer(keycloak, slot)
    # verify the signature against the realm's JWKS, then the claims
    oidc = KeycloakOpenID(
        server_url=keycloak.keycloak_url + "/", realm_name=slot.realm, client_id="nextcloud",
        client_secret_key=secret,
    )
    claims = oidc.decode_token(tokens["id_token"], validate=True)
    assert claims["iss"] == realm_issuer(keycloak, slot)
    assert claims["aud"] == "nextcloud"
    assert claims["preferred_username"] == "amueller"
    assert claims["rolle"] == "praxisinhaber"
    assert sorted(claims["arbeitsbereiche"]) == ["abrechnung", "qm"]
    assert claims["fachrichtung"] == "urologie"
    assert claims["kv"] == "KV Rheinland-Pfalz"
    assert set(claims["groups"]) == {"Abrechnung", "QM", "Praxis-Admins", "Ärzt:innen",
                                     "Mitarbeitende", "kv-rlp", "fach-urologie",
                                     "rolle-praxisinhaber", "bereich-abrechnung", "bereich-qm"}
    assert "lanr" not in claims  # admin-only attribute, not mapped
    userinfo = requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10,
    ).json()
    assert userinfo["rolle"] == "praxisinhaber" and "Mitarbeitende" in userinfo["groups"]


def test_wrong_password_and_required_actions_refuse_login(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    secret = kc_secrets.require(realm_render.nextcloud_secret_path(slot))
    enable_login(kc_admin, slot, "amueller")
    with pytest.raises(LoginRefused):
        keycloak_login.password_login(keycloak, slot, "nextcloud", secret, "amueller", "Falsch-falsch-123")
    # a freshly provisioned user has no password at all: cannot log in
    with pytest.raises(LoginRefused):
        keycloak_login.password_login(keycloak, slot, "nextcloud", secret, "bschulz", PASSWORD)


def test_user_of_realm_a_cannot_log_in_to_realm_b(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot_a, slot_b = throwaway_realm(), throwaway_realm()
    converge(kc_admin, make_spec(), slot_a, keycloak, kc_secrets)
    converge(kc_admin, make_spec(people=(), praxisname="praxis-b"), slot_b, keycloak, kc_secrets)
    enable_login(kc_admin, slot_a, "amueller")
    secret_a = kc_secrets.require(realm_render.nextcloud_secret_path(slot_a))
    secret_b = kc_secrets.require(realm_render.nextcloud_secret_path(slot_b))
    assert secret_a != secret_b
    tokens = keycloak_login.password_login(keycloak, slot_a, "nextcloud", secret_a, "amueller", PASSWORD)
    assert jwt_claims(tokens["id_token"])["iss"].endswith(f"/realms/{slot_a.realm}")
    with pytest.raises(LoginRefused):
        keycloak_login.password_login(keycloak, slot_b, "nextcloud", secret_b, "amueller", PASSWORD)
    # realm A's client secret is worthless at realm B's token endpoint
    resp = requests.post(
        f"{keycloak.keycloak_url}/realms/{slot_b.realm}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": "nextcloud",
              "client_secret": secret_a},
        timeout=10,
    )
    assert resp.status_code in (400, 401)


def test_third_party_client_created_and_usable(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    app = spec.third_party_apps[0]
    clients = {c["clientId"]: c for c in kc_admin.clients(slot.realm)}
    client = clients[app.client_id]
    assert client["redirectUris"] == [app.redirect_uri]
    assert client["baseUrl"] == "https://dienstplan.example.org/"
    assert client["alwaysDisplayInConsole"] is True
    assert client["publicClient"] is False and client["directAccessGrantsEnabled"] is False
    secret = kc_secrets.require(realm_render.app_secret_path(slot, app))
    assert kc_admin.client_secret(slot.realm, client["id"]) == secret
    nc = clients["nextcloud"]
    assert sorted(nc["redirectUris"]) == sorted(realm_render.nextcloud_redirect_uris(keycloak, slot))
    assert nc["baseUrl"] == nextcloud_base_url(keycloak, slot) + "/"
    enable_login(kc_admin, slot, "jweiss")
    tokens = keycloak_login.password_login(
        keycloak, slot, app.client_id, secret, "jweiss", PASSWORD, redirect_uri=app.redirect_uri
    )
    claims = jwt_claims(tokens["id_token"])
    assert claims["aud"] == app.client_id and claims["rolle"] == "arzt"


def test_missing_person_disabled_then_pruned(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    fewer = make_spec(people=persons()[:2])
    result, _ = converge(kc_admin, fewer, slot, keycloak, kc_secrets)
    assert (result.disabled_users, result.deleted_users) == (1, 0)
    user_id = kc_admin.find_user_id(slot.realm, "bschulz")
    assert user_id and kc_admin.get_user(slot.realm, user_id)["enabled"] is False
    again, _ = converge(kc_admin, fewer, slot, keycloak, kc_secrets)
    assert again.changes == 0  # disabling is not repeated
    pruned, _ = converge(kc_admin, fewer, slot, keycloak, kc_secrets, prune=True)
    assert pruned.deleted_users == 1
    assert kc_admin.find_user_id(slot.realm, "bschulz") is None
    assert kc_admin.find_user_id(slot.realm, "amueller") is not None


def test_foreign_realm_refused_without_adopt(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    kc_admin.create_realm({"realm": slot.realm, "enabled": True, "displayName": "Fremd"})
    before = kc_admin.mutations
    with pytest.raises(ConflictError) as err:
        converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    assert "--adopt" in (err.value.hint or "")
    assert kc_admin.mutations == before  # nothing was touched
    result, _ = converge(kc_admin, make_spec(), slot, keycloak, kc_secrets, adopt=True)
    assert result.created_users == 3
    realm = kc_admin.get_realm(slot.realm)
    assert realm and realm["attributes"][realm_render.SLOT_ATTR] == slot.id


def test_alias_moves_and_realm_stays(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(people=()), slot, keycloak, kc_secrets)
    reporter = Reporter(quiet=True)
    assert identity.set_alias(kc_admin, slot, "praxis-neu", "Praxis Neu", reporter) is True
    assert identity.set_alias(kc_admin, slot, "praxis-neu", "Praxis Neu", reporter) is False
    realm = kc_admin.get_realm(slot.realm)
    assert realm and realm["realm"] == slot.realm and realm["displayName"] == "Praxis Neu"
    assert realm["attributes"][realm_render.PRAXISNAME_ATTR] == "praxis-neu"
    assert realm["attributes"][realm_render.SLOT_ATTR] == slot.id


def test_export_has_no_secrets_and_delete_realm(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    before = kc_admin.mutations
    exported = identity_export.export_realm(kc_admin, slot)
    assert kc_admin.mutations == before  # the export POST is read-only
    text = json.dumps(exported)
    for path in kc_secrets.list(f"practices/{slot.id}"):
        assert (kc_secrets.get(path) or "") not in text
    assert {c["clientId"] for c in exported["realm"]["clients"]} >= {"nextcloud",
                                                                     "app-dienstplanung"}
    assert sorted(u["username"] for u in exported["users"]) == ["amueller", "bschulz", "jweiss"]
    assert all("credentials" not in u for u in exported["users"])
    reporter = Reporter(quiet=True)
    assert identity.delete_realm(kc_admin, slot, reporter) is True
    assert kc_admin.get_realm(slot.realm) is None
    assert identity.delete_realm(kc_admin, slot, reporter) is False


def test_smoke_login_cleans_up(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    secret = kc_secrets.require(realm_render.nextcloud_secret_path(slot))
    claims = identity_smoke.smoke_login(kc_admin, keycloak, slot, "nextcloud", secret)
    assert claims["iss"] == realm_issuer(keycloak, slot)
    names = [u["username"] for u in kc_admin.users(slot.realm)]
    assert not [n for n in names if n.startswith(realm_render.SMOKE_PREFIX)]
    again, _ = converge(kc_admin, spec, slot, keycloak, kc_secrets)
    assert again.changes == 0


def test_wrong_admin_credential(keycloak: Settings) -> None:
    kc = KeycloakAdapter(keycloak.keycloak_url, keycloak.keycloak_admin_user, "not-the-password")
    with pytest.raises(ExternalServiceError) as err:
        kc.connect()
    assert "refused the admin credential" in err.value.message
    assert "not-the-password" not in err.value.message
    assert "platform/keycloak-admin" in (err.value.hint or "")


def test_ensure_keycloak_is_idempotent_and_detects_a_wiped_store(
    keycloak: Settings, kc_secrets: FileSecretStore,
) -> None:
    reporter = Reporter(quiet=True)
    t0 = time.monotonic()
    info = devkc.ensure_keycloak(keycloak, reporter)
    assert info.started is False and time.monotonic() - t0 < 5
    status = devkc.keycloak_status(keycloak)
    assert status["running"] and status["answers"] and status["database"]

    # the store says another password than the running server's database
    real = kc_secrets.require(devkc.ADMIN_SECRET)
    kc_secrets.put(devkc.ADMIN_SECRET, "a-different-password-123")
    try:
        with pytest.raises(ConflictError) as err:
            devkc.ensure_keycloak(keycloak, reporter)
        assert devkc.ADMIN_SECRET in err.value.message
        assert str(devkc.data_dir(keycloak)) in err.value.message
        assert "a-different-password-123" not in err.value.message
    finally:
        kc_secrets.put(devkc.ADMIN_SECRET, real)
    # the store lost the secret entirely (wiped): refused before generating a new one
    kc_secrets.delete(devkc.ADMIN_SECRET)
    try:
        with pytest.raises(ConflictError):
            devkc.ensure_keycloak(keycloak, reporter)
        assert kc_secrets.get(devkc.ADMIN_SECRET) is None
    finally:
        kc_secrets.put(devkc.ADMIN_SECRET, real)
    assert devkc.ensure_keycloak(keycloak, reporter).started is False


def test_start_page_client_is_public_pkce_only_with_its_exact_address(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    """The start page's own client, against the real Keycloak: a login through it works
    (code flow with PKCE from its one exact address, CORS for the page's origin); without
    PKCE, from another address or with the password grant, Keycloak refuses."""
    slot = throwaway_realm()
    spec = make_spec()
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    enable_login(kc_admin, slot, "bschulz")
    page = realm_render.start_page_url(keycloak, spec.praxisname) + "/"
    start_page = OidcClient(keycloak.keycloak_url, slot.realm, "startseite", "", page)
    tokens = authorization_code_login(start_page, "bschulz", PASSWORD)
    claims = jwt_claims(tokens["id_token"])
    assert claims["aud"] == "startseite" and claims["name"] == "Ben Schulz"
    assert claims["rolle"] == "mfa"

    with pytest.raises(LoginRefused):
        other_address = dataclasses.replace(start_page, redirect_uri=page + "anders/")
        authorization_code_login(other_address, "bschulz", PASSWORD)
    auth = f"{keycloak.keycloak_url}/realms/{slot.realm}/protocol/openid-connect"
    no_pkce = requests.get(f"{auth}/auth", params={
        "client_id": "startseite", "response_type": "code", "scope": "openid",
        "redirect_uri": page, "state": "s"}, allow_redirects=False, timeout=10)
    assert no_pkce.status_code == 302
    assert "error=invalid_request" in no_pkce.headers["Location"]
    assert "code_challenge" in no_pkce.headers["Location"]
    grant = requests.post(f"{auth}/token", data={
        "grant_type": "password", "client_id": "startseite", "username": "bschulz",
        "password": PASSWORD}, timeout=10)
    assert grant.status_code in (400, 401) and "access_token" not in grant.text
    origin = page.split("/praxis-mueller/")[0]
    preflight = requests.options(f"{auth}/token", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"}, timeout=10)
    assert preflight.headers.get("Access-Control-Allow-Origin") == origin

    for client in kc_admin.clients(slot.realm):
        if client["clientId"] in ("nextcloud", "startseite", "app-dienstplanung"):
            assert realm_render.client_safety_problems(client) == [], client["clientId"]


def test_rename_moves_the_start_page_client(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    converge(kc_admin, make_spec(), slot, keycloak, kc_secrets)
    reporter = Reporter(quiet=True)
    identity.move_start_page_client(kc_admin, slot, keycloak, "praxis-neu", reporter)
    client = kc_admin.find_client(slot.realm, "startseite")
    assert client is not None
    new = realm_render.start_page_url(keycloak, "praxis-neu") + "/"
    assert client["redirectUris"] == [new]
    assert client["attributes"]["post.logout.redirect.uris"] == new
    before = kc_admin.mutations
    identity.move_start_page_client(kc_admin, slot, keycloak, "praxis-neu", reporter)
    assert kc_admin.mutations == before  # nothing left to change


def test_third_party_roles_reach_the_client_and_the_start_page_tiles(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    roster = ThirdPartyApp("Dienstplanung", "https://dienstplan.example.org",
                           "https://dienstplan.example.org/oidc/callback", ("mfa",))
    lab = ThirdPartyApp("Labor", "https://labor.example.org", "https://labor.example.org/cb")
    converge(kc_admin, make_spec(third_party_apps=(roster, lab)), slot, keycloak,
                        kc_secrets)
    clients = {c["clientId"]: c for c in kc_admin.clients(slot.realm)}
    assert clients["app-dienstplanung"]["attributes"][realm_render.ROLES_ATTR] == "mfa"
    assert realm_render.ROLES_ATTR not in clients["app-labor"]["attributes"]
    again, _ = converge(kc_admin, make_spec(third_party_apps=(roster, lab)), slot, keycloak,
                        kc_secrets)
    assert again.changes == 0
