"""Invitation mails for real: the real Keycloak sends through the real local mail sink
(aiosmtpd over SMTP), the link in the mail sets a password, the password logs in."""

from __future__ import annotations

import html
import re
import secrets
import smtplib
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from smartpraxx_provision.adapters import keycloak_login
from smartpraxx_provision.adapters.keycloak_login import _loopback_cookies, jwt_claims
from smartpraxx_provision.config import Settings, replace
from smartpraxx_provision.devstack import mailsink
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import ConflictError, OperationFailed
from smartpraxx_provision.operations import identity, invitations
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.render.bundle import nextcloud_base_url, realm_issuer
from smartpraxx_provision.secrets import FileSecretStore

from .test_identity import make_spec, persons

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NEW_PASSWORD = "Erster-Arbeitstag-2026!"


# --- the mail sink alone ---------------------------------------------------------------------


def _send(port: int, to: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = "absender@example.org"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg)


def test_sink_stores_what_it_receives_privately(mail_sink: Settings) -> None:
    before = len(mailsink.list_messages(mail_sink))
    _send(mail_sink.smtp_port, "empfaenger@example.org", "Grüße aus der Praxis",
          "Hallo,\nhier ist ein Link: https://example.org/weiter?x=1.\n")
    messages = mailsink.list_messages(mail_sink)
    assert len(messages) == before + 1
    last = messages[-1]
    assert last["to"] == ["empfaenger@example.org"] and last["subject"] == "Grüße aus der Praxis"
    shown = mailsink.show_message(mail_sink, last["id"])
    assert "hier ist ein Link" in shown["text"]
    assert shown["links"] == ["https://example.org/weiter?x=1"]
    box = mailsink.mailbox_dir(mail_sink)
    assert stat.S_IMODE(box.stat().st_mode) == 0o700
    assert stat.S_IMODE(mailsink.mail_home(mail_sink).stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(shown["path"]).stat().st_mode) == 0o600
    # the log names message ids, never addresses
    assert "empfaenger@example.org" not in mailsink.log_file(mail_sink).read_text()
    status = mailsink.mailsink_status(mail_sink)
    assert status["answers"] and status["messages"] == before + 1
    # SMTPUTF8: an internationalised address arrives intact
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "mehmet.yılmaz@example.org", "Ü"
    msg.set_content("Grüße\n")
    with smtplib.SMTP("127.0.0.1", mail_sink.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg, mail_options=["SMTPUTF8"])
    utf8 = mailsink.show_message(mail_sink, mailsink.list_messages(mail_sink)[-1]["id"])
    assert utf8["to"] == ["mehmet.yılmaz@example.org"] and "Grüße" in utf8["text"]


def test_mail_cli_lists_and_shows(mail_sink: Settings) -> None:
    _send(mail_sink.smtp_port, "cli@example.org", "Für die CLI", "Text für die CLI\n")
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
           "SMARTPRAXX_STATE_DIR": str(mail_sink.state_dir),
           "SMARTPRAXX_SMTP_PORT": str(mail_sink.smtp_port)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smartpraxx_provision.cli", *args],
                              env=env, capture_output=True, text=True, timeout=60, check=False)

    import json
    listed = cli("dev-stack", "mail", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = [m["id"] for m in json.loads(listed.stdout)["messages"] if m["subject"] == "Für die CLI"]
    assert len(ids) == 1
    shown = cli("dev-stack", "mail", "show", ids[0])
    assert shown.returncode == 0 and "Text für die CLI" in shown.stdout
    missing = cli("dev-stack", "mail", "show", "20260101T000000-000000-abcdef")
    assert missing.returncode == 2 and "dev-stack mail list" in missing.stderr


def test_sink_start_is_idempotent_and_port_conflicts_are_refused(
    tmp_path: Path, mail_sink: Settings,
) -> None:
    reporter = Reporter(quiet=True)
    again = mailsink.ensure_mailsink(mail_sink, reporter)
    assert again["started"] is False
    # another state dir on the same port: the port belongs to someone else
    other = replace(mail_sink, state_dir=tmp_path / "other")
    with pytest.raises(ConflictError) as err:
        mailsink.ensure_mailsink(other, reporter)
    assert str(mail_sink.smtp_port) in err.value.message and "smtp_port" in (err.value.hint or "")
    # a sink of its own starts and stops by its pid file
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    own = replace(other, smtp_port=port)
    info = mailsink.ensure_mailsink(own, reporter)
    assert info["started"] is True and mailsink.smtp_banner("127.0.0.1", port)
    assert mailsink.stop_mailsink(own, reporter) is True
    assert mailsink.smtp_banner("127.0.0.1", port) is None
    assert not mailsink.pid_file(own).exists()
    assert mailsink.stop_mailsink(own, reporter) is False


# --- Keycloak sends, the staff member follows the link -------------------------------------


@dataclass
class Practice:
    ctx: OpContext
    settings: Settings
    praxisname: str
    slot: Slot


@pytest.fixture
def practice(
    tmp_path: Path, keycloak: Settings, kc_secrets: FileSecretStore, mail_sink: Settings,
) -> Iterator[Practice]:
    """A practice in a throwaway inventory whose realm sends to the session's mail sink."""
    settings = replace(keycloak, state_dir=tmp_path / "state", smtp_port=mail_sink.smtp_port)
    store = FileSecretStore(settings.secrets_dir)
    store.put("platform/keycloak-admin", kc_secrets.require("platform/keycloak-admin"))
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    host = f"cloud9{secrets.randbelow(10**5):05d}"
    ctx.inventory.add_host(host, "unix:///var/run/docker.sock")
    name = f"praxis-inv-{secrets.token_hex(3)}"
    record = ctx.inventory.allocate_practice(
        name, order_id="T-INV", display_name="Urologische Praxis Dr. Müller", kv="KV Bayerns",
        specialties=("urologie",), billable_seats=2, host=host,
    )
    yield Practice(ctx, settings, name, record.slot)
    if ctx.keycloak.get_realm(record.slot.realm) is not None:
        ctx.keycloak.delete_realm(record.slot.realm)


def _mails_to(sink: Settings, address: str) -> list[dict[str, object]]:
    return [m for m in mailsink.list_messages(sink) if address in m["to"]]


def _follow_invitation(link: str, password: str) -> str:
    """What a browser does with the link: open it, continue, set the password twice.
    Returns the text of the last page."""
    base = link.split("/realms/")[0]
    with requests.Session() as session:
        resp = session.get(link, allow_redirects=False, timeout=20)
        for _ in range(10):  # bounded: a handful of pages
            _loopback_cookies(session, base)
            if resp.status_code in (302, 303):
                resp = session.get(resp.headers["Location"], allow_redirects=False, timeout=20)
                continue
            assert resp.status_code == 200, resp.status_code
            form = re.search(r'<form[^>]*action="([^"]+)"', resp.text)
            if form and 'name="password-new"' in resp.text:
                resp = session.post(html.unescape(form.group(1)), allow_redirects=False,
                                    data={"password-new": password, "password-confirm": password},
                                    timeout=20)
                continue
            onward = re.search(r'href="([^"]*login-actions/action-token[^"]*)"', resp.text)
            if onward:  # "Klicken Sie hier, um fortzufahren"
                resp = session.get(html.unescape(onward.group(1)), allow_redirects=False,
                                   timeout=20)
                continue
            return resp.text
    raise AssertionError("the invitation flow did not end within 10 pages")


def test_invitation_arrives_in_german_sets_a_password_and_is_sent_once(
    practice: Practice, mail_sink: Settings,
) -> None:
    ctx, settings, slot = practice.ctx, practice.settings, practice.slot
    spec = make_spec(praxisname=practice.praxisname)
    reporter = Reporter(quiet=True)
    record = ctx.inventory.get_practice(practice.praxisname)
    assert record is not None
    # as provision does: through the owner-bound door, so the realm carries the owner marks
    identity.converge_realm(ctx.practice_keycloak(record), spec, slot, settings, ctx.secrets,
                            reporter)
    realm = ctx.keycloak.get_realm(slot.realm)
    assert realm is not None
    assert realm["smtpServer"]["host"] == "127.0.0.1"
    assert realm["smtpServer"]["port"] == str(mail_sink.smtp_port)
    assert realm["smtpServer"]["starttls"] == "false"
    assert realm["supportedLocales"] == ["de"] and realm["defaultLocale"] == "de"
    assert realm["resetPasswordAllowed"] is True
    # converging the realm sends nothing; the invitation step does, one mail per person
    for p in spec.persons:
        assert _mails_to(mail_sink, p.email) == []
    result = invitations.send_invitations(ctx.keycloak, spec, slot, settings, reporter)
    assert (result.sent, result.failed) == (3, 0)
    issuer = realm_issuer(settings, slot)
    links: dict[str, str] = {}
    for p in spec.persons:
        mails = _mails_to(mail_sink, p.email)
        assert len(mails) == 1
        shown = mailsink.show_message(mail_sink, str(mails[0]["id"]))
        assert shown["subject"] == "Aktualisieren Sie Ihr Konto"
        assert "Passwort aktualisieren" in shown["text"] and "Der Link ist 7 Tage gültig" in shown[
            "text"]
        assert "Urologische Praxis Dr. Müller" in shown["from"]
        [link] = [u for u in shown["links"] if "action-token" in u]
        assert link.startswith(f"{issuer}/login-actions/action-token?key=")
        token = jwt_claims(link.split("key=", 1)[1].split("&")[0])
        assert token["typ"] == "execute-actions" and token["azp"] == "nextcloud"
        assert token["rqac"] == ["UPDATE_PASSWORD"]
        assert token["exp"] - token["iat"] == 7 * 86400
        links[p.username] = link
    # the realm records it, admin-only; the report names nobody
    kc = ctx.keycloak
    user_id = kc.find_user_id(slot.realm, "bschulz")
    assert user_id
    assert invitations.INVITED_ATTR in (kc.get_user(slot.realm, user_id)["attributes"])
    text = "\n".join(reporter.lines)
    for p in spec.persons:
        assert p.email not in text and p.username not in text and p.last_name not in text

    # the staff member follows the link, sets a password, and logs in with it
    secret = ctx.secrets.require(realm_render.nextcloud_secret_path(slot))
    last_page = _follow_invitation(links["bschulz"], NEW_PASSWORD)
    assert "Ihr Benutzerkonto wurde aktualisiert" in last_page
    assert nextcloud_base_url(settings, slot) in last_page
    user = kc.get_user(slot.realm, user_id)
    assert user["requiredActions"] == [] and user["emailVerified"] is True
    tokens = keycloak_login.password_login(settings, slot, "nextcloud", secret, "bschulz", NEW_PASSWORD)
    claims = jwt_claims(tokens["id_token"])
    assert claims["preferred_username"] == "bschulz" and claims["iss"] == issuer

    # a second run sends nothing
    again = invitations.send_invitations(ctx.keycloak, spec, slot, settings, reporter)
    assert (again.sent, again.already_invited) == (0, 3)
    assert all(len(_mails_to(mail_sink, p.email)) == 1 for p in spec.persons)

    # invite resend: exactly one more, to that person only
    plan = invitations.resend_invitation(ctx, practice.praxisname, "amueller", dry_run=True)
    assert plan["dry_run"] and plan["plan"]["actions"] == ["UPDATE_PASSWORD"]
    assert len(_mails_to(mail_sink, "anna.mueller@example.org")) == 1
    sent = invitations.resend_invitation(ctx, practice.praxisname, "AMueller")
    assert sent["sent"] is True and sent["previously_invited_at"]
    assert len(_mails_to(mail_sink, "anna.mueller@example.org")) == 2
    assert all(len(_mails_to(mail_sink, p.email)) == 1 for p in spec.persons[1:])


def test_smtp_down_fails_clearly_and_a_rerun_sends_the_missing(
    practice: Practice, mail_sink: Settings,
) -> None:
    ctx, slot = practice.ctx, practice.slot
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = replace(practice.settings, smtp_port=closed)
    spec = make_spec(people=persons()[:2], praxisname=practice.praxisname)
    reporter = Reporter(quiet=True)
    identity.converge_realm(ctx.keycloak, spec, slot, down, ctx.secrets, reporter)
    result = invitations.send_invitations(ctx.keycloak, spec, slot, down, reporter)
    assert (result.sent, result.failed) == (0, 2)
    err = invitations.failure(practice.praxisname, slot.realm, result, down)
    assert isinstance(err, OperationFailed) and err.exit_code == 1
    assert f"invite resend {practice.praxisname}" in (err.hint or "")
    assert f"127.0.0.1:{closed}" in err.message
    # nothing was recorded as sent, so the next run (SMTP back) sends both
    identity.converge_realm(ctx.keycloak, spec, slot, practice.settings, ctx.secrets, reporter)
    retry = invitations.send_invitations(ctx.keycloak, spec, slot, practice.settings, reporter)
    assert (retry.sent, retry.failed) == (2, 0)
    for p in spec.persons:
        assert len(_mails_to(mail_sink, p.email)) >= 1


def test_production_profile_refuses_provision_without_smtp(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
           "SMARTPRAXX_STATE_DIR": str(tmp_path / "state"), "SMARTPRAXX_PROFILE": "production"}
    sample = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
    proc = subprocess.run(
        [sys.executable, "-m", "smartpraxx_provision.cli", "provision", str(sample), "--yes"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "smtp_host" in proc.stderr and "smtp_from" in proc.stderr
    assert not (tmp_path / "state" / "inventory.sqlite3").exists()  # nothing was started


def test_dev_stack_status_shows_the_mail_sink(mail_sink: Settings) -> None:
    from smartpraxx_provision.devstack import stack

    shown = stack.status(mail_sink)["mail"]
    assert shown["answers"] is True and shown["url"] == f"smtp://127.0.0.1:{mail_sink.smtp_port}"
    assert shown["mailbox"] == str(mailsink.mailbox_dir(mail_sink))


def test_staff_member_can_recover_with_a_german_reset_mail(
    practice: Practice, mail_sink: Settings,
) -> None:
    """resetPasswordAllowed: "Passwort vergessen?" on the login page mails a reset link."""
    ctx, settings, slot = practice.ctx, practice.settings, practice.slot
    spec = make_spec(people=persons()[2:], praxisname=practice.praxisname)
    identity.converge_realm(ctx.keycloak, spec, slot, settings, ctx.secrets, Reporter(quiet=True))
    person = spec.persons[0]
    before = len(_mails_to(mail_sink, person.email))
    auth = (f"{realm_issuer(settings, slot)}/protocol/openid-connect/auth?"
            "client_id=nextcloud&response_type=code&scope=openid&redirect_uri="
            + requests.utils.quote(realm_render.nextcloud_redirect_uris(settings, slot)[0], safe=""))
    with requests.Session() as session:
        page = session.get(auth, timeout=20)
        _loopback_cookies(session, settings.keycloak_url)
        assert page.status_code == 200 and 'lang="de"' in page.text
        forgot = re.search(r'href="([^"]*login-actions/reset-credentials[^"]*)"', page.text)
        assert forgot, "no 'Passwort vergessen?' link on the login page"
        form_page = session.get(urljoin(page.url, html.unescape(forgot.group(1))), timeout=20)
        _loopback_cookies(session, settings.keycloak_url)
        action = re.search(r'<form[^>]*action="([^"]+)"', form_page.text)
        assert action
        done = session.post(urljoin(form_page.url, html.unescape(action.group(1))),
                            data={"username": person.username},
                            timeout=20)
        assert done.status_code == 200
    mails = _mails_to(mail_sink, person.email)
    assert len(mails) == before + 1
    shown = mailsink.show_message(mail_sink, str(mails[-1]["id"]))
    assert shown["subject"] == "Passwort zurücksetzen", shown["subject"]
    assert any(f"/realms/{slot.realm}/login-actions/action-token?key=" in u
               for u in shown["links"])
