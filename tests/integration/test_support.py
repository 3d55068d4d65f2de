"""Support access with the practice's consent, for real: the real Keycloak, the real mail
sink, the consent pages of the service (Starlette app, in process) and Keycloak's own login
form. Request → German mail to the admin → admin logs in through the practice's realm and
approves → support user (least rights) gets its set-password mail → logs in → the sweep with
an injected clock disables it and ends its sessions → export lists its logins. Without
consent or after a decline there is no support user and ``support`` refuses (exit 2)."""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from starlette.testclient import TestClient

from smartpraxx_provision.adapters import keycloak_login
from smartpraxx_provision.adapters.keycloak_login import LoginRefused, _loopback_cookies
from smartpraxx_provision.config import Settings, replace
from smartpraxx_provision.devstack import mailsink
from smartpraxx_provision.domain import support as dom
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import UsageError
from smartpraxx_provision.operations import identity, support
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.service.app import create_app

from .test_identity import make_spec
from .test_invitations import _follow_invitation

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "Praxis-Admin-2026!"
SUPPORT_PASSWORD = "Support-Ticket-2026!"
ADMIN_MAIL = "anna.mueller@example.org"


@dataclass
class Practice:
    ctx: OpContext
    settings: Settings
    praxisname: str
    slot: Slot
    admin_id: str


@pytest.fixture
def practice(
    tmp_path: Path, keycloak: Settings, kc_secrets: FileSecretStore, mail_sink: Settings,
) -> Iterator[Practice]:
    """A realm-only practice (no Nextcloud container) whose admin has a password."""
    settings = replace(keycloak, state_dir=tmp_path / "state", smtp_port=mail_sink.smtp_port)
    store = FileSecretStore(settings.secrets_dir)
    store.put("platform/keycloak-admin", kc_secrets.require("platform/keycloak-admin"))
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    host = f"cloud9{secrets.randbelow(10**5):05d}"
    ctx.inventory.add_host(host, "unix:///var/run/docker.sock")
    name = f"praxis-sup-{secrets.token_hex(3)}"
    record = ctx.inventory.allocate_practice(
        name, order_id="T-SUP", display_name="Urologische Praxis Dr. Müller", kv="KV Bayerns",
        specialties=("urologie",), billable_seats=3, host=host,
    )
    kc = ctx.practice_keycloak(record)
    identity.converge_realm(kc, make_spec(praxisname=name), record.slot, settings, ctx.secrets,
                            Reporter(quiet=True))
    admin_id = kc.find_user_id(record.realm, "amueller")
    assert admin_id
    kc.set_password(record.realm, admin_id, ADMIN_PASSWORD, temporary=False)
    user = kc.get_user(record.realm, admin_id)
    kc.update_user(record.realm, admin_id, {**user, "requiredActions": []})
    yield Practice(ctx, settings, name, record.slot, admin_id)
    if ctx.keycloak.get_realm(record.slot.realm) is not None:
        ctx.keycloak.delete_realm(record.slot.realm)


def _mails(sink: Settings, address: str, subject_part: str = "") -> list[dict[str, object]]:
    return [m for m in mailsink.list_messages(sink)
            if address in m["to"] and subject_part in str(m["subject"])]


def _consent_link(sink: Settings, ticket: str) -> str:
    [mail] = _mails(sink, ADMIN_MAIL, f"Ticket {ticket}")
    shown = mailsink.show_message(sink, str(mail["id"]))
    assert shown["subject"] == f"Zustimmung erbeten: Support-Zugriff für Ticket {ticket}"
    assert "ausdrückliche" in shown["text"] and f"support-{ticket}" in shown["text"]
    [link] = [u for u in shown["links"] if "/support/consent/" in u]
    return str(link)


def _keycloak_login(auth_url: str, username: str, password: str) -> str:
    """Keycloak's login form, as a browser fills it in; returns the redirect back."""
    base = auth_url.split("/realms/")[0]
    with requests.Session() as session:
        page = session.get(auth_url, timeout=20)
        _loopback_cookies(session, base)
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        assert action, page.text[:300]
        answer = session.post(html.unescape(action.group(1)), allow_redirects=False,
                              data={"username": username, "password": password}, timeout=20)
        assert answer.status_code == 302, answer.text[:300]
        return str(answer.headers["Location"])


def _answer(client: TestClient, link: str, decision: str) -> str:
    """Open the consent link, log in as the admin, answer; returns the final page."""
    parsed = urlparse(link)
    start = client.get(f"{parsed.path}?{parsed.query}", follow_redirects=False)
    assert start.status_code == 302
    back = _keycloak_login(start.headers["location"], "amueller", ADMIN_PASSWORD)
    assert back.startswith(support.callback_url_for(client.base_url.__str__()))
    cb = urlparse(back)
    page = client.get(f"{cb.path}?{cb.query}")
    assert page.status_code == 200, page.text
    assert "Support-Zugriff für Ticket" in page.text and "Zustimmen" in page.text
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token
    done = client.post("/support/decide", data={"form_token": token.group(1),
                                                "decision": decision})
    assert done.status_code == 200, done.text
    return done.text


def _no_staff_in_inventory(settings: Settings) -> None:
    db = sqlite3.connect(settings.state_dir / "inventory.sqlite3")
    dump = "\n".join(db.iterdump()).lower()
    for word in ("anna", "mueller@", "example.org", "amueller", "jweiss", "bschulz"):
        assert word not in dump, word


def test_consent_approve_login_expire_export(practice: Practice, mail_sink: Settings,
                                            tmp_path: Path) -> None:
    ctx, settings, realm = practice.ctx, practice.settings, practice.slot.realm
    kc = ctx.keycloak
    t0 = datetime.now(UTC).replace(microsecond=0)

    # without consent: nothing exists, support refuses
    with pytest.raises(UsageError) as no_request:
        support.require_active(ctx, practice.praxisname, "SP-1")
    assert "no support request" in no_request.value.message
    plan = support.request(ctx, practice.praxisname, "SP-1", "4h",
                           "Kalender synchronisiert nicht", dry_run=True)
    assert plan["dry_run"] and plan["plan"]["admins_asked"] == 1
    assert _mails(mail_sink, ADMIN_MAIL, "Ticket sp-1") == []
    asked = support.request(ctx, practice.praxisname, "SP-1", "4h",
                            "Kalender synchronisiert nicht", now=t0)
    assert asked["state"] == "pending" and asked["admins_asked"] == 1
    link = _consent_link(mail_sink, "sp-1")
    assert link.startswith(f"{settings.service_public_url}/support/consent/{realm}/sp-1?t=")
    with pytest.raises(UsageError) as pending:
        support.require_active(ctx, practice.praxisname, "sp-1")
    assert "no consent" in pending.value.message and "pending" in pending.value.message
    assert kc.find_user_id(realm, "support-sp-1") is None
    with pytest.raises(UsageError):  # one request per ticket
        support.request(ctx, practice.praxisname, "SP-1", "4h", "noch einmal")

    client = TestClient(create_app(ctx), base_url=settings.service_public_url)
    # a wrong token gets the German "invalid link" page and no login
    bad = client.get(f"/support/consent/{realm}/sp-1?t=falsch", follow_redirects=False)
    assert bad.status_code == 404 and "Link ungültig" in bad.text
    # the admin approves after logging in through the practice's realm
    done = _answer(client, link, "approve")
    assert "Zustimmung erteilt" in done
    # the link is spent
    again = client.get(urlparse(link).path + "?" + urlparse(link).query, follow_redirects=False)
    assert again.status_code == 404

    record = support.read_records(kc, realm)["sp-1"]
    assert record.state == "approved" and record.decided_by == practice.admin_id
    approved_at = dom.parse_stamp(record.decided_at)
    assert dom.parse_stamp(record.expires_at) - approved_at == timedelta(hours=4)
    assert support.require_active(ctx, practice.praxisname, "sp-1").ticket == "sp-1"

    # the support user: least rights (no role of the practice, no group), marked
    user_id = kc.find_user_id(realm, "support-sp-1")
    assert user_id
    user = kc.get_user(realm, user_id)
    assert user["enabled"] and user["attributes"][dom.USER_MARKER_ATTR] == ["sp-1"]
    roles = {r["name"] for r in kc.request(
        "GET", f"admin/realms/{realm}/users/{user_id}/role-mappings/realm/composite",
        what="roles", mutating=False)}
    assert not roles & {realm_render.ROLE_ADMIN, realm_render.ROLE_DOCTOR, realm_render.ROLE_STAFF}
    assert kc.request("GET", f"admin/realms/{realm}/users/{user_id}/groups", what="groups",
                      mutating=False) == []
    # ops get the set-password link by mail (no shared password) and log in through OIDC
    [ops_mail] = _mails(mail_sink, settings.support_ops_email)
    shown = mailsink.show_message(mail_sink, str(ops_mail["id"]))
    [action] = [u for u in shown["links"] if "action-token" in u]
    assert "Ihr Benutzerkonto wurde aktualisiert" in _follow_invitation(action, SUPPORT_PASSWORD)
    secret = ctx.secrets.require(realm_render.nextcloud_secret_path(practice.slot))
    tokens = keycloak_login.password_login(settings, practice.slot, "nextcloud", secret,
                                     "support-sp-1", SUPPORT_PASSWORD)
    sessions_path = f"admin/realms/{realm}/users/{user_id}/sessions"
    assert kc.request("GET", sessions_path, what="sessions", mutating=False)

    # the sweep: not before the expiry, then disabled and logged out
    early = support.expire(ctx, now=approved_at + timedelta(hours=3, minutes=59))
    assert early["ended"] == []
    assert kc.get_user(realm, user_id)["enabled"] is True
    swept = support.expire(ctx, now=approved_at + timedelta(hours=4))
    assert [(e["ticket"], e["sessions_ended"]) for e in swept["ended"]] == [("sp-1", 1)]
    assert kc.get_user(realm, user_id)["enabled"] is False
    assert kc.request("GET", sessions_path, what="sessions", mutating=False) == []
    with pytest.raises(LoginRefused):
        keycloak_login.password_login(settings, practice.slot, "nextcloud", secret,
                                "support-sp-1", SUPPORT_PASSWORD)
    refreshed = requests.post(
        f"{settings.keycloak_url}/realms/{realm}/protocol/openid-connect/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("nextcloud", secret), timeout=20)
    assert refreshed.status_code == 400  # the session is gone
    assert support.read_records(kc, realm)["sp-1"].state == "expired"
    assert support.expire(ctx, now=approved_at + timedelta(hours=5))["ended"] == []
    with pytest.raises(UsageError) as over:
        support.require_active(ctx, practice.praxisname, "sp-1")
    assert "expired" in over.value.message

    # hand-over: the support user's logins, with time, in German HTML + JSON + checksum
    out = support.export(ctx, practice.praxisname, "sp-1", tmp_path / "export")
    raw = json.loads(Path(out["json"]).read_text())
    logins = [e for e in raw["keycloak_events"] if e["type"] == "LOGIN"]
    assert logins and all(e["userId"] == user_id for e in raw["keycloak_events"])
    report = Path(out["html"]).read_text()
    assert "Protokoll des Support-Zugriffs" in report and "LOGIN" in report
    assert dom.stamp(datetime.fromtimestamp(logins[0]["time"] / 1000, UTC)) in report
    assert hashlib.sha256(Path(out["json"]).read_bytes()).hexdigest() in Path(
        out["sha256"]).read_text()
    _no_staff_in_inventory(settings)


def test_decline_creates_nothing_and_cli_refuses(practice: Practice, mail_sink: Settings,
                                                 ) -> None:
    ctx, settings, realm = practice.ctx, practice.settings, practice.slot.realm
    ops_before = len(_mails(mail_sink, settings.support_ops_email))
    support.request(ctx, practice.praxisname, "SP-2", "1h", "Druckerproblem")
    client = TestClient(create_app(ctx), base_url=settings.service_public_url)
    assert "abgelehnt" in _answer(client, _consent_link(mail_sink, "sp-2"), "decline")
    assert support.read_records(ctx.keycloak, realm)["sp-2"].state == "declined"
    assert ctx.keycloak.find_user_id(realm, "support-sp-2") is None
    assert len(_mails(mail_sink, settings.support_ops_email)) == ops_before  # no account
    with pytest.raises(UsageError) as declined:
        support.require_active(ctx, practice.praxisname, "sp-2")
    assert "no consent" in declined.value.message and "declined" in declined.value.message
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
           "SMARTPRAXX_STATE_DIR": str(settings.state_dir),
           "SMARTPRAXX_KEYCLOAK_URL": settings.keycloak_url,
           "SMARTPRAXX_KEYCLOAK_PORT": str(settings.keycloak_port),
           "SMARTPRAXX_SMTP_PORT": str(settings.smtp_port)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smartpraxx_provision.cli", *args],
                              env=env, capture_output=True, text=True, timeout=120, check=False)

    status = cli("support", "status", practice.praxisname, "--json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)["requests"]
    assert row["state"] == "declined" and row["support_user_enabled"] is None
    assert "token_sha256" not in row
    no_consent = cli("support", "login", practice.praxisname, "--ticket", "sp-2")
    assert no_consent.returncode == 2 and "no consent" in no_consent.stderr
    assert "declined" in no_consent.stderr and "support status" in no_consent.stderr
    refused = cli("support", "revoke", practice.praxisname, "--ticket", "sp-9")
    assert refused.returncode == 2 and "no support request sp-9" in refused.stderr
    bad = cli("support", "request", practice.praxisname, "--ticket", "x y", "--duration", "4h",
              "--reason", "r")
    assert bad.returncode == 2 and "ticket" in bad.stderr
    unknown = cli("support", "status", "praxis-gibt-es-nicht")
    assert unknown.returncode == 2 and "not provisioned" in unknown.stderr
    swept = cli("support", "expire", "--json")
    assert swept.returncode == 0 and json.loads(swept.stdout)["ended"] == []
    _no_staff_in_inventory(settings)


def test_any_command_ends_an_expired_consent_first(practice: Practice, mail_sink: Settings,
                                                   ) -> None:
    """The sweep runs before every command, not only `support …`: with the clock past the
    expiry, an unrelated command (`practices list`) disables the support user first."""
    ctx, settings, realm = practice.ctx, practice.settings, practice.slot.realm
    support.request(ctx, practice.praxisname, "SP-3", "1h", "Kalender")
    client = TestClient(create_app(ctx), base_url=settings.service_public_url)
    assert "Zustimmung erteilt" in _answer(client, _consent_link(mail_sink, "sp-3"), "approve")
    record = support.read_records(ctx.keycloak, realm)["sp-3"]
    user_id = ctx.keycloak.find_user_id(realm, "support-sp-3")
    assert user_id and ctx.keycloak.get_user(realm, user_id)["enabled"] is True
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
           "SMARTPRAXX_STATE_DIR": str(settings.state_dir),
           "SMARTPRAXX_KEYCLOAK_URL": settings.keycloak_url,
           "SMARTPRAXX_KEYCLOAK_PORT": str(settings.keycloak_port),
           "SMARTPRAXX_SMTP_PORT": str(settings.smtp_port)}

    def listing(now: datetime) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smartpraxx_provision.cli", "practices", "list", "--json"],
            env={**env, "SMARTPRAXX_SUPPORT_NOW": dom.stamp(now)},
            capture_output=True, text=True, timeout=120, check=False)

    before = listing(dom.parse_stamp(record.decided_at) + timedelta(minutes=59))
    assert before.returncode == 0, before.stderr
    assert ctx.keycloak.get_user(realm, user_id)["enabled"] is True  # not due yet
    after = listing(dom.parse_stamp(record.decided_at) + timedelta(hours=1, minutes=1))
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)  # the command's own JSON document is whole
    assert ctx.keycloak.get_user(realm, user_id)["enabled"] is False
    assert support.read_records(ctx.keycloak, realm)["sp-3"].state == "expired"
    assert "sp-3" in after.stderr and "expired" in after.stderr
