"""A third-party app (the "Dienstplanung" test double, a real Authlib relying party) signs a
practice's staff in through the practice's realm, against the real Keycloak."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Callable
from html import unescape

import requests

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.model import Slot, ThirdPartyApp
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.render.bundle import realm_issuer
from smartpraxx_provision.secrets import FileSecretStore
from tests.doubles import dienstplanung
from tests.integration.test_identity import PASSWORD, converge, enable_login, make_spec

_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _login(session: requests.Session, start: str, username: str) -> requests.Response:
    form = session.get(start, timeout=20)
    assert form.status_code == 200, form.text[:500]
    for cookie in session.cookies:  # as a browser does on loopback (see _loopback_cookies)
        cookie.secure = False
    match = _ACTION.search(form.text)
    assert match, "Keycloak showed no login form"
    return session.post(unescape(match.group(1)),
                        data={"username": username, "password": PASSWORD}, timeout=20)


def test_dienstplanung_signs_in_the_practice_staff_and_nobody_else(
    kc_admin: KeycloakAdapter, keycloak: Settings, kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = ThirdPartyApp("Dienstplanung", base + "/", base + "/oidc/callback")
    spec = make_spec(third_party_apps=(app,))
    slot, other = throwaway_realm(), throwaway_realm()
    converge(kc_admin, spec, slot, keycloak, kc_secrets)
    converge(kc_admin, dataclasses.replace(spec, praxisname="praxis-andere"), other, keycloak,
             kc_secrets)
    enable_login(kc_admin, slot, "bschulz")
    enable_login(kc_admin, other, "jweiss")
    issuer = realm_issuer(keycloak, slot)
    double = dienstplanung.create_app(
        issuer=issuer, client_id=app.client_id,
        client_secret=kc_secrets.get(realm_render.app_secret_path(slot, app)) or "", base_url=base)
    with dienstplanung.Server(double, port), requests.Session() as browser:
        page = _login(browser, base + "/", "bschulz")
        assert page.status_code == 200, page.text[:500]
        assert '<strong id=\'name\'>Ben Schulz</strong>' in page.text
        assert "<span id='benutzer'>bschulz</span>" in page.text
        # the realm session carries her: the next visit needs no password
        for cookie in browser.cookies:
            cookie.secure = False
        again = browser.get(base + "/", timeout=20)
        assert again.status_code == 200 and "Ben Schulz" in again.text
        assert "kc-form-login" not in again.text

        # a staff member of another practice has no account in this realm
        with requests.Session() as stranger:
            refused = _login(stranger, base + "/", "jweiss")
            assert "Ben Schulz" not in refused.text and "Angemeldet" not in refused.text
            assert "kc-form-login" in refused.text  # Keycloak shows the form again
