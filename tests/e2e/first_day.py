"""A staff member's first day, step by step: shared by tests/e2e/test_first_day.py and
benchmarks/first_day.py.

* :func:`invitation` reads the staff member's invitation from the local mail sink through the
  product's own ``dev-stack mail list|show --json`` (the sink's state dir);
* :func:`set_password_from_invitation` opens the mail's link in Chromium and sets the first
  password on Keycloak's German pages;
* :func:`keycloak_login` logs in at a realm's account console (or is refused);
* :func:`nextcloud_landing` opens the practice's Nextcloud, follows user_oidc's redirect to
  the realm, logs in and reads the Nextcloud user (``cloud/user``) with the browser's session.

Every page the person sees is saved as a screenshot through :meth:`Browser.step`.
"""

from __future__ import annotations

import importlib
import json
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from smartpraxx_provision.config import Settings
from tests.fixtures.browser import Browser

ACTION_TOKEN = "/login-actions/action-token"
LOGIN_FAILED_DE = "Ungültiger Benutzername oder Passwort"


def ca_certificates(settings: Settings) -> list[Path]:
    """The local Caddy's root certificate (``settings``: the stack's, whose state dir holds
    the proxy) when this checkout has the TLS proxy (issuer wiring); none otherwise (the
    pages are then plain http on 127.0.0.1)."""
    try:
        proxy = importlib.import_module("smartpraxx_provision.devstack.proxy")
    except ImportError:
        return []
    cert = Path(proxy.ca_certificate(settings))
    return [cert] if cert.is_file() else []


def browser_reaches(nextcloud_url: str) -> bool:
    """A Nextcloud URL a browser on this machine can open: https on a ``*.localhost`` name
    (Chromium resolves those to 127.0.0.1 itself), served by the local Caddy."""
    parts = urlparse(nextcloud_url)
    return parts.scheme == "https" and (parts.hostname or "").endswith(".localhost")


def new_password() -> str:
    """A password the realms' policy accepts (length 12, not the username/e-mail)."""
    return f"Erster-Tag-{secrets.token_urlsafe(12)}-9a"


def mail_cli(env: Mapping[str, str], mail_state: Path, *args: str) -> Any:
    """``smartpraxx-provision dev-stack mail ARGS --json`` against the sink's state dir."""
    proc = subprocess.run(
        [sys.executable, "-m", "smartpraxx_provision.cli", "dev-stack", "mail", *args, "--json"],
        env={**env, "SMARTPRAXX_STATE_DIR": str(mail_state)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, f"dev-stack mail {' '.join(args)}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def invitations_to(env: Mapping[str, str], mail_state: Path, address: str) -> list[dict[str, Any]]:
    """The captured mails to ``address`` (summaries, oldest first)."""
    return [m for m in mail_cli(env, mail_state, "list")["messages"] if address in m["to"]]


def invitation(env: Mapping[str, str], mail_state: Path, address: str) -> dict[str, Any]:
    """The one invitation mail to ``address`` with its action-token ``link``."""
    found = invitations_to(env, mail_state, address)
    assert len(found) == 1, f"expected one mail to the staff member, found {len(found)}"
    shown = mail_cli(env, mail_state, "show", found[0]["id"])["message"]
    links = [u for u in shown["links"] if ACTION_TOKEN in u]
    assert len(links) == 1, f"invitation {found[0]['id']} has {len(links)} action links"
    return {**shown, "link": links[0]}


def _by_css(browser: Browser, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.wait_for(
        f"element {selector}",
        lambda d: (els := d.find_elements(By.CSS_SELECTOR, selector)) and els[0],
    )


def _present(browser: Browser, selector: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(browser.driver.find_elements(By.CSS_SELECTOR, selector))


def set_password_from_invitation(browser: Browser, link: str, password: str) -> str:
    """Invitation link → (confirmation page →) new password form → "account updated" page.

    Returns the text of the final page. Keycloak shows a page listing the actions first
    (execute-actions e-mail) and asks to continue; the form has ``password-new`` and
    ``password-confirm``."""
    browser.get(link)
    browser.wait_for("invitation page", lambda d: _present(browser, "#password-new")
                     or _present(browser, "a[href*='action-token']"))
    browser.step("invitation link opened")
    if not _present(browser, "#password-new"):
        _by_css(browser, "a[href*='action-token']").click()
    _by_css(browser, "#password-new").send_keys(password)
    _by_css(browser, "#password-confirm").send_keys(password)
    browser.step("new password entered")
    _by_css(browser, "#password-confirm").submit()
    browser.wait_for("password set", lambda d: not _present(browser, "#password-new")
                     or LOGIN_FAILED_DE in browser.text())
    browser.step("password set")
    return browser.text()


def origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


def account_url(keycloak_url: str, realm: str) -> str:
    """The realm's account console. ``keycloak_url``: the base the browser uses, e.g. the
    :func:`origin` of the invitation link (Keycloak's frontend URL)."""
    return f"{keycloak_url.rstrip('/')}/realms/{realm}/account/"


def keycloak_login(
    browser: Browser, url: str, username: str, password: str, *, expect_refusal: bool = False
) -> str:
    """Open ``url`` (a page behind the realm's login), log in; returns the page text after.
    With ``expect_refusal`` the login form must come back with Keycloak's German error."""
    browser.get(url)
    _by_css(browser, "#username")
    browser.step("keycloak login form")
    _by_css(browser, "#username").send_keys(username)
    _by_css(browser, "#password").send_keys(password)
    _by_css(browser, "#password").submit()
    if expect_refusal:
        browser.wait_for("login refused", lambda d: LOGIN_FAILED_DE in browser.text())
        browser.step("login refused")
    else:
        browser.wait_for("logged in", lambda d: not _present(browser, "#password")
                         and urlparse(d.current_url).path.rstrip("/").endswith("/account")
                         and len(browser.text()) > 40)
        browser.step("logged in at keycloak")
    return browser.text()


def start_page_login(browser: Browser, url: str, username: str, password: str) -> str:
    """Open the practice's start page, log in at its realm, back on the page greeted by
    name; returns the page text."""
    browser.get(url)
    _by_css(browser, "#username")
    browser.step("start page sends to the login")
    _by_css(browser, "#username").send_keys(username)
    _by_css(browser, "#password").send_keys(password)
    _by_css(browser, "#password").submit()
    browser.wait_for("greeted on the start page", lambda d: "Guten Tag" in browser.text())
    browser.step("start page, logged in")
    return browser.text()


def nextcloud_landing(
    browser: Browser, nextcloud_url: str, username: str, password: str
) -> dict[str, Any]:
    """Nextcloud ``/login`` → user_oidc → the realm's login → back into Nextcloud; returns
    the OCS ``cloud/user`` data read with the browser's own session."""
    base = nextcloud_url.rstrip("/")
    browser.get(f"{base}/index.php/login")
    browser.wait_for("realm login form", lambda d: _present(browser, "#username")
                     or "Dashboard" in browser.text())
    browser.step("nextcloud sends to the practice's login")
    if _present(browser, "#username"):
        _by_css(browser, "#username").send_keys(username)
        _by_css(browser, "#password").send_keys(password)
        _by_css(browser, "#password").submit()
    browser.wait_for("nextcloud dashboard", lambda d: d.current_url.startswith(base)
                     and "Dashboard" in browser.text())
    browser.step("in nextcloud")
    # as Nextcloud's own web pages do: same-origin request with the session cookie and the
    # OCS-APIRequest header (without it Nextcloud refuses cookie-authenticated OCS: CSRF)
    status, raw = browser.driver.execute_script(
        "return fetch(arguments[0], {credentials: 'same-origin', headers: "
        "{'OCS-APIRequest': 'true', 'Accept': 'application/json'}})"
        ".then(r => r.text().then(t => [r.status, t]));",
        f"{base}/ocs/v2.php/cloud/user?format=json",
    )
    assert status == 200, f"OCS cloud/user answered {status}: {str(raw)[:300]}"
    doc = json.loads(raw)
    assert doc["ocs"]["meta"]["statuscode"] == 200, doc["ocs"]["meta"]
    return dict(doc["ocs"]["data"])
