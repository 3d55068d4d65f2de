"""The practice's start page in a real browser (issue 13, "Done when").

Against the module's own embedded stack in the TLS mode (local Caddy ``tls internal``, its
own Keycloak with the browser hostname; the ``tls`` fixture), through the CLI: the GP sample is
provisioned with its "Dienstplanung" pointing at the Dienstplanung test double (a real
Authlib relying party on 127.0.0.1, tests/doubles/dienstplanung.py), limited to the roles
MFA and Praxisinhaber:in. In headless Chromium a staff member opens
``https://mein.<domain>/<praxisname>``, logs in once at her realm, is greeted by name and
sees her practice's tiles; "Dienstplanung" logs her in there without a second password;
"Aufgaben" lands in the practice's Nextcloud Deck; "Abmelden" ends the realm session, so the
next visit asks for the password again. A doctor does not see the MFA-only tile; a staff
member of another practice is refused. ``rename`` moves the page; the old address redirects.
Screenshots (desktop and phone) under ``test-artifacts/``.

The tests build on each other in file order (provisioning costs minutes).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from openpyxl import load_workbook

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.model import Slot, ThirdPartyApp
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter.schema import SHEET_APPS
from starter_excel_samples.generate import set_value
from tests.doubles import dienstplanung
from tests.fixtures.browser import Browser, BrowserFactory

from .conftest import GP_SAMPLE, SAMPLES, Tls
from .first_day import LOGIN_FAILED_DE, browser_reaches

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

MFA = "sabine.hoffmann"
DOCTOR = "leonie.schaefer"
OTHER_SAMPLE = SAMPLES / "zahnarztpraxis-sonnenschein.xlsx"
OTHER_STAFF = "lena.huber"
PHONE = (390, 844)
DESKTOP = (1280, 900)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _password() -> str:
    return f"Startseite-{secrets.token_urlsafe(12)}-7b"


def _kc(settings: Settings) -> KeycloakAdapter:
    return KeycloakAdapter.from_settings(settings, FileSecretStore(settings.secrets_dir))


def _give_password(settings: Settings, realm: str, username: str, password: str) -> None:
    """Test-only shortcut (the invitation path is the first-day test's): a password set
    through the admin API and the required actions cleared."""
    kc = _kc(settings)
    user_id = kc.find_user_id(realm, username)
    assert user_id, username
    kc.set_password(realm, user_id, password, temporary=False)
    user = kc.get_user(realm, user_id)
    kc.update_user(realm, user_id, {**user, "requiredActions": []})


@pytest.fixture(scope="module")
def roster_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def world(tls: Tls, roster_port: int, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two practices on the module's own TLS stack (local Caddy, its own Keycloak)."""
    base = f"http://dienstplan.smartpraxx.localhost:{roster_port}"
    wb = load_workbook(GP_SAMPLE)
    set_value(wb, SHEET_APPS, "Drittsystem URL", base + "/")
    set_value(wb, SHEET_APPS, "Drittsystem Redirect-URI", base + "/oidc/callback")
    set_value(wb, SHEET_APPS, "Drittsystem Rollen", "MFA, Praxisinhaber:in")
    sample = tmp_path_factory.mktemp("start-page") / "hausarztpraxis-mueller.xlsx"
    wb.save(sample)
    out: dict[str, Any] = {"roster": base, "passwords": {}}
    for key, path in (("a", sample), ("b", OTHER_SAMPLE)):
        code, doc = tls.json("provision", str(path), "--host", tls.host, "--yes")
        assert code == 0, doc
        out[key] = doc
    assert browser_reaches(out["a"]["urls"]["start_page"]), out["a"]["urls"]
    settings = tls.settings
    for key, username in (("a", MFA), ("a", DOCTOR), ("b", OTHER_STAFF)):
        password = _password()
        _give_password(settings, out[key]["realm"], username, password)
        out["passwords"][username] = password
    out["ca_certs"] = [Path(tls.ca)]
    return out


@pytest.fixture(scope="module")
def roster(world: dict[str, Any], tls: Tls, roster_port: int) -> Iterator[str]:
    """The Dienstplanung test double, a client of practice a's realm, on 127.0.0.1."""
    settings = tls.settings
    slot = Slot.parse(world["a"]["slot"])
    app = ThirdPartyApp("Dienstplanung", world["roster"] + "/",
                        world["roster"] + "/oidc/callback")
    secret = FileSecretStore(settings.secrets_dir).require(realm_render.app_secret_path(slot, app))
    # the host reaches Keycloak directly; the realm keeps its one (browser) issuer
    backchannel = f"{settings.keycloak_url.rstrip('/')}/realms/{slot.realm}"
    double = dienstplanung.create_app(
        issuer=world["a"]["urls"]["issuer"], client_id=app.client_id, client_secret=secret,
        base_url=world["roster"], backchannel_issuer=backchannel)
    with dienstplanung.Server(double, roster_port):
        yield world["roster"]


def _css(browser: Browser, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.wait_for(f"element {selector}",
                            lambda d: (els := d.find_elements(By.CSS_SELECTOR, selector))
                            and els[0].is_displayed() and els[0])


def _present(browser: Browser, selector: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(browser.driver.find_elements(By.CSS_SELECTOR, selector))


def _login_form(browser: Browser, username: str, password: str) -> None:
    _css(browser, "#username").send_keys(username)
    _css(browser, "#password").send_keys(password)
    browser.step(f"login form {username}")
    _css(browser, "#password").submit()


def _open_start_page(browser: Browser, url: str, username: str, password: str) -> str:
    """Start page → the realm's login → back on the start page, greeted. Returns its text."""
    browser.get(url)
    browser.wait_for("the realm's login form", lambda d: _present(browser, "#username"))
    browser.step("start page sends to the login")
    _login_form(browser, username, password)
    browser.wait_for("greeting", lambda d: "Guten Tag" in browser.text())
    browser.step(f"start page of {username}")
    return browser.text()


def _tiles(browser: Browser) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {el.get_attribute("id"): el.get_attribute("href")
            for el in browser.driver.find_elements(By.CSS_SELECTOR, ".kachel a")}


def test_staff_member_logs_in_once_and_reaches_her_tools_without_a_second_password(
    world: dict[str, Any], roster: str, browser_factory: BrowserFactory
) -> None:
    """One browser, one person, in order: the start page after one login (greeting, her
    practice's tiles, a phone-size view), Dienstplanung and Aufgaben without a password
    prompt, then Abmelden ends the realm session: the next visit asks again."""
    browser = browser_factory("mfa", ca_certs=world["ca_certs"])
    page = world["a"]["urls"]["start_page"] + "/"
    text = _open_start_page(browser, world["a"]["urls"]["start_page"], MFA,
                            world["passwords"][MFA])
    assert "Guten Tag, Sabine Hoffmann!" in text
    assert "Hausarztpraxis Dr. Müller & Kollegen" in text
    tiles = _tiles(browser)
    assert set(tiles) == {"kachel-talk", "kachel-aufgaben", "kachel-passwoerter",
                          "kachel-umfragen", "kachel-dateien", "kachel-app-dienstplanung"}
    nextcloud = world["a"]["urls"]["nextcloud"].rstrip("/")
    assert tiles["kachel-aufgaben"] == f"{nextcloud}/apps/deck/"
    browser.driver.set_window_size(*PHONE)
    browser.step("start page on a phone")
    width = browser.driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], "the page must not scroll sideways on a phone"
    browser.driver.set_window_size(*DESKTOP)

    # Dienstplanung: the realm session carries her, no second password
    _css(browser, "#kachel-app-dienstplanung").click()
    browser.wait_for("Dienstplanung", lambda d: "Angemeldet als" in browser.text()
                     or _present(browser, "#password"))
    browser.step("dienstplanung")
    assert not _present(browser, "#password"), "asked for the password a second time"
    assert urlparse(browser.driver.current_url).netloc == urlparse(roster).netloc
    assert "Angemeldet als Sabine Hoffmann (sabine.hoffmann)" in browser.text()

    # Aufgaben: the practice's Nextcloud, its own OIDC login finds the same session
    browser.get(page)
    browser.wait_for("greeting again", lambda d: "Guten Tag" in browser.text())
    _css(browser, "#kachel-aufgaben").click()
    host = urlparse(nextcloud).netloc
    browser.wait_for("the practice's Nextcloud Deck",
                     lambda d: urlparse(d.current_url).netloc == host
                     and "/apps/deck" in d.current_url and not _present(browser, "#password"))
    browser.step("aufgaben in nextcloud")

    # Abmelden ends the realm session: the next visit asks for the password again
    browser.get(page)
    browser.wait_for("greeting again", lambda d: "Guten Tag" in browser.text())
    _css(browser, "#abmelden").click()
    browser.wait_for("the password is asked again", lambda d: _present(browser, "#password"))
    browser.step("after logout the realm asks again")
    assert "Guten Tag" not in browser.text()
    browser.get(roster + "/")
    browser.wait_for("Dienstplanung asks too", lambda d: _present(browser, "#password"))


def test_doctor_does_not_see_the_mfa_only_tile(
    world: dict[str, Any], browser_factory: BrowserFactory
) -> None:
    browser = browser_factory("doctor", ca_certs=world["ca_certs"])
    text = _open_start_page(browser, world["a"]["urls"]["start_page"], DOCTOR,
                            world["passwords"][DOCTOR])
    assert "Guten Tag, Leonie Schäfer!" in text
    tiles = _tiles(browser)
    assert "kachel-app-dienstplanung" not in tiles and "kachel-aufgaben" in tiles


def test_staff_of_another_practice_sees_nothing_of_this_one(
    world: dict[str, Any], browser_factory: BrowserFactory
) -> None:
    browser = browser_factory("other-practice", ca_certs=world["ca_certs"])
    browser.get(world["a"]["urls"]["start_page"])
    browser.wait_for("the realm's login form", lambda d: _present(browser, "#username"))
    _login_form(browser, OTHER_STAFF, world["passwords"][OTHER_STAFF])
    browser.wait_for("refused", lambda d: LOGIN_FAILED_DE in browser.text())
    browser.step("refused at the other practice")
    assert "Guten Tag" not in browser.text() and not _tiles(browser)


def test_rename_moves_the_start_page_and_the_old_address_redirects(
    world: dict[str, Any], tls: Tls, browser_factory: BrowserFactory
) -> None:
    old = world["a"]["urls"]["start_page"]
    code, doc = tls.json("rename", "praxis-mueller", "praxis-mueller-neu", "--confirm-fee",
                         "--yes")
    assert code == 0, doc
    browser = browser_factory("after-rename", ca_certs=world["ca_certs"])
    browser.get(old)
    browser.wait_for("the realm's login form", lambda d: _present(browser, "#username"))
    _login_form(browser, MFA, world["passwords"][MFA])
    browser.wait_for("greeting at the new address", lambda d: "Guten Tag" in browser.text())
    browser.step("renamed start page")
    assert browser.driver.current_url.rstrip("/") == doc["start_page"].rstrip("/")
