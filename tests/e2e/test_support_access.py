"""Support access with the practice's consent in a real browser (issue 15, "Done when").

On the module's own embedded TLS stack (the ``tls`` fixture: local Caddy, its own Keycloak
and mail sink) with the real order/consent service (``serve``) as a child process: ops
request access → the admin's German mail arrives in the local mailbox → the admin opens the
link in Chromium, logs in through the practice's realm and approves → ops set the support
account's password from their mail and log into the practice's Nextcloud through user_oidc
→ they write a file (WebDAV with the browser session) → ``support export`` lists the login
and the file with time and object → after the expiry (``SMARTPRAXX_SUPPORT_NOW``: the
injected clock) the sweep disables the account: the browser's Nextcloud and Keycloak
sessions are gone and the login is refused. A declined request creates no account and
``support login`` refuses (exit 2). The central inventory holds no staff name or e-mail.

Screenshots of every page go to ``test-artifacts/``. The steps build on each other.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from smartpraxx_provision.domain import support as dom
from smartpraxx_provision.starter import load_practice_spec
from tests.fixtures.browser import Browser, BrowserFactory

from .conftest import GP_SAMPLE, Tls
from .first_day import (
    LOGIN_FAILED_DE,
    _by_css,
    _present,
    invitations_to,
    mail_cli,
    nextcloud_landing,
    set_password_from_invitation,
    start_page_login,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

ADMIN = "sabine.hoffmann"
TICKET = "sp-4711"
SUPPORT_USER = f"support-{TICKET}"
FILE_PATH = f"/remote.php/dav/files/{SUPPORT_USER}/Support-Notiz-{TICKET}.txt"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, tls: Tls, port: int) -> None:
        self.tls = tls
        self.env = {**tls.env, "SMARTPRAXX_SERVICE_PORT": str(port)}
        self.port = port

    def cli(self, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smartpraxx_provision.cli", *args],
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=900, check=False)

    def json(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        proc = self.cli(*args, "--json", env=env)
        assert proc.stdout.strip(), proc.stderr[-3000:]
        return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def stack(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Any:
    port = _free_port()
    s = Stack(tls, port)
    log = (tmp_path_factory.mktemp("service") / "serve.log").open("wb")
    service = subprocess.Popen(  # the real service with the consent pages
        [sys.executable, "-m", "smartpraxx_provision.cli", "serve", "--port", str(port)],
        env=s.env, stdout=log, stderr=subprocess.STDOUT)
    print(f"\nservice log: {log.name}")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise AssertionError("the service did not answer within 60 s")
        yield s
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
        log.close()


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    code, doc = stack.json("provision", str(GP_SAMPLE), "--host", stack.tls.host, "--yes")
    assert code == 0, doc
    spec = load_practice_spec(GP_SAMPLE)
    admin = next(p for p in spec.persons if p.username == ADMIN)
    assert admin.admin
    return {"doc": doc, "spec": spec, "admin": admin, "ca": [Path(stack.tls.ca)]}


def _mail_link(stack: Stack, address: str, subject_part: str, link_part: str) -> str:
    found = [m for m in invitations_to(stack.env, stack.tls.state, address)
             if subject_part in m["subject"]]
    assert len(found) == 1, [m["subject"] for m in invitations_to(
        stack.env, stack.tls.state, address)]
    shown = mail_cli(stack.env, stack.tls.state, "show", found[0]["id"])["message"]
    links = [u for u in shown["links"] if link_part in u]
    assert len(links) == 1, shown["links"]
    return str(links[0])


def _answer_in_browser(browser: Browser, link: str, username: str, password: str,
                       button: str) -> str:
    browser.get(link)
    browser.wait_for("login or consent page", lambda d: _present(browser, "#username")
                     or _present(browser, "#approve"))
    browser.step("consent link opened")
    if _present(browser, "#username"):
        _by_css(browser, "#username").send_keys(username)
        _by_css(browser, "#password").send_keys(password)
        _by_css(browser, "#password").submit()
    _by_css(browser, "#approve")
    browser.step("consent page")
    text = browser.text()
    _by_css(browser, f"#{button}").click()
    browser.wait_for("answer stored", lambda d: _present(browser, "#title"))
    browser.step(f"consent {button}")
    return text + "\n" + browser.text()


def _network_flake(browser: Browser) -> bool:
    try:
        return "ERR_NETWORK_CHANGED" in (browser.driver.page_source or "")
    except Exception:
        return False


def _landing(browser: Browser, url: str, username: str, password: str) -> dict[str, Any]:
    """``nextcloud_landing``, started again (bounded) when Chromium aborted a navigation of
    the chain with ERR_NETWORK_CHANGED (Docker networks of parallel tests come and go): a
    new login at the Nextcloud, the realm session is reused."""
    for attempt in range(3):
        try:
            return nextcloud_landing(browser, url, username, password)
        except AssertionError:
            if attempt == 2 or not _network_flake(browser):
                raise
    raise AssertionError("unreachable")


def _fetch(browser: Browser, url: str, method: str = "GET", body: str = "") -> tuple[int, str]:
    status, text = browser.driver.execute_script(
        "const [url, method, body] = arguments;"
        "const opts = {credentials: 'same-origin', method: method, headers: "
        "{'OCS-APIRequest': 'true', 'Accept': 'application/json'}};"
        "const go = (t) => { if (t) { opts.headers.requesttoken = t; }"
        "  if (method === 'PUT') { opts.body = body; }"
        "  return fetch(url, opts).then(r => r.text().then(x => [r.status, x])); };"
        "if (method !== 'PUT') { return go(''); }"
        "return fetch(new URL('/index.php/csrftoken', url), {credentials: 'same-origin'})"
        ".then(r => r.ok ? r.json().then(j => go(j.token)) : go(''));",
        url, method, body)
    return int(status), str(text)


def test_support_access_with_consent_in_the_browser(
    stack: Stack, world: dict[str, Any], browser_factory: BrowserFactory, tmp_path: Path,
) -> None:
    doc, admin = world["doc"], world["admin"]
    name, realm, nextcloud = doc["praxisname"], doc["realm"], doc["urls"]["nextcloud"]

    # without consent: no support user, `support login` refuses with a clear error
    refused = stack.cli("support", "login", name, "--ticket", TICKET)
    assert refused.returncode == 2 and f"no support request {TICKET}" in refused.stderr

    # the admin's first day: invitation → password → start page
    invite = _mail_link(stack, admin.email, "", "action-token")
    admin_browser = browser_factory("support-admin", ca_certs=world["ca"])
    admin_password = f"Admin-{time.time_ns()}-Pw9"
    set_password_from_invitation(admin_browser, invite, admin_password)
    start_page_login(admin_browser, doc["urls"]["start_page"], ADMIN, admin_password)

    # ops ask; the admin's German mail arrives
    code, asked = stack.json("support", "request", name, "--ticket", "SP-4711",
                             "--duration", "2h", "--reason", "Kalender synchronisiert nicht")
    assert code == 0 and asked["state"] == "pending", asked
    assert asked["admins_asked"] == sum(p.admin for p in world["spec"].persons)
    link = _mail_link(stack, admin.email, f"Support-Zugriff für Ticket {TICKET}",
                      "/support/consent/")
    assert link.startswith(f"http://127.0.0.1:{stack.port}/support/consent/{realm}/{TICKET}?t=")
    code, st = stack.json("support", "status", name)
    assert [r["state"] for r in st["requests"]] == ["pending"]
    assert st["requests"][0]["support_user_enabled"] is None  # no support user yet

    # the admin approves in Chromium, logged in through the practice's realm
    page = _answer_in_browser(admin_browser, link, ADMIN, admin_password, "approve")
    assert "Kalender synchronisiert nicht" in page and "höchstens 2 Stunden" in page
    assert "Zustimmung erteilt" in page
    code, st = stack.json("support", "status", name)
    [row] = st["requests"]
    assert row["state"] == "approved" and row["support_user_enabled"] is True
    assert row["decided_by"] and row["decided_by"] != ADMIN  # the realm user id, not a name
    code, login = stack.json("support", "login", name, "--ticket", TICKET)
    assert code == 0 and login["username"] == SUPPORT_USER and login["nextcloud"] == nextcloud

    # ops: set-password link by mail → Nextcloud through user_oidc → write a file
    settings = stack.tls.settings
    setup = _mail_link(stack, settings.support_ops_email, "", "action-token")
    ops = browser_factory("support-ops", ca_certs=world["ca"])
    ops_password = f"Support-{time.time_ns()}-Pw9"
    set_password_from_invitation(ops, setup, ops_password)
    me = _landing(ops, nextcloud, SUPPORT_USER, ops_password)
    assert me["id"] == SUPPORT_USER and me["groups"] == []  # least rights: no group
    written, _ = _fetch(ops, nextcloud.rstrip("/") + FILE_PATH, "PUT", "Notiz des Supports")
    assert written == 201
    read, content = _fetch(ops, nextcloud.rstrip("/") + FILE_PATH)
    assert (read, content) == (200, "Notiz des Supports")
    ops.step("file written")

    # hand-over: the login and the file, with time and object
    code, out = stack.json("support", "export", name, "--ticket", TICKET,
                           "--out", str(tmp_path / "export"))
    assert code == 0, out
    raw = json.loads(Path(out["json"]).read_text())
    messages = [line["message"] for line in raw["audit_log"]]
    assert f'Login successful: "{SUPPORT_USER}"' in messages
    shown = f'written to: "/Support-Notiz-{TICKET}.txt"'
    [write] = [line for line in raw["audit_log"] if shown in line["message"]]
    assert write["user"] == SUPPORT_USER and write["app"] == "admin_audit" and write["time"]
    assert any(e["type"] == "LOGIN" for e in raw["keycloak_events"])
    report = Path(out["html"]).read_text()
    assert "Protokoll des Support-Zugriffs" in report and f"Support-Notiz-{TICKET}.txt" in report
    assert write["time"] in report

    # after the expiry (clock moved): disabled, sessions gone, login refused
    expires = dom.parse_stamp(row["expires_at"])
    early = {"SMARTPRAXX_SUPPORT_NOW": dom.stamp(expires - timedelta(minutes=1))}
    code, swept = stack.json("support", "expire", env=early)
    assert code == 0 and swept["ended"] == []
    late = {"SMARTPRAXX_SUPPORT_NOW": dom.stamp(expires + timedelta(seconds=1))}
    code, swept = stack.json("support", "expire", env=late)
    assert code == 0, swept
    [ended] = swept["ended"]
    assert ended["ticket"] == TICKET and ended["nextcloud_user"] == "disabled"
    assert ended["sessions_ended"] >= 1
    gone, _ = _fetch(ops, nextcloud.rstrip("/") + "/ocs/v2.php/cloud/user?format=json")
    assert gone == 401  # the Nextcloud session no longer counts
    denied, _ = _fetch(ops, nextcloud.rstrip("/") + FILE_PATH, "PUT", "noch einmal")
    assert denied == 401
    ops.get(nextcloud.rstrip("/") + "/index.php/apps/dashboard/")
    ops.wait_for("back at the realm's login", lambda d: _present(ops, "#username"))
    ops.step("session gone: login form")  # the Keycloak session is gone too
    _by_css(ops, "#username").send_keys(SUPPORT_USER)
    _by_css(ops, "#password").send_keys(ops_password)
    _by_css(ops, "#password").submit()
    ops.wait_for("login refused", lambda d: LOGIN_FAILED_DE in ops.text()
                 or "Benutzerkonto ist gesperrt" in ops.text())
    ops.step("login refused after expiry")
    refused = stack.cli("support", "login", name, "--ticket", TICKET, env=late)
    assert refused.returncode == 2 and "expired" in refused.stderr

    # a declined request: no account, refusal
    code, asked = stack.json("support", "request", name, "--ticket", "SP-4712",
                             "--duration", "1h", "--reason", "Drucker", env=late)
    assert code == 0, asked
    link2 = _mail_link(stack, admin.email, "Ticket sp-4712", "/support/consent/")
    page = _answer_in_browser(admin_browser, link2, ADMIN, admin_password, "decline")
    assert "abgelehnt" in page
    code, st = stack.json("support", "status", name, env=late)
    states = {r["ticket"]: (r["state"], r["support_user_enabled"]) for r in st["requests"]}
    assert states == {TICKET: ("expired", False), "sp-4712": ("declined", None)}
    refused = stack.cli("support", "login", name, "--ticket", "sp-4712", env=late)
    assert refused.returncode == 2 and "declined" in refused.stderr

    # the central inventory holds no staff names or e-mails
    db = sqlite3.connect(stack.tls.state / "inventory.sqlite3")
    dump = "\n".join(db.iterdump()).lower()
    for person in world["spec"].persons:  # (the practice's display name may hold a surname)
        for value in (person.email.lower(), person.username, person.email.split("@")[0]):
            assert value not in dump, value
    assert "support@" not in dump and "sp-4711" in dump  # the fact, not the ops address
