"""Support access only with the practice's prior, explicit consent (issue 15).

``request``: ops open a request for a ticket; the consent record (pending) is written into
the practice's realm (realm attribute, see ``domain.support``), the central inventory learns
only "ticket X pending", and every admin of the practice (realm role ``praxis-admin``) gets a
German mail with a link to the consent page (served by ``serve``, see ``service/app.py``).
The admin logs in through the practice's own realm (confidential client
``smartpraxx-support-consent``, code flow) and approves or declines.

``decide`` (called by the consent page): only a current ``praxis-admin`` of the realm may
answer; on approval the named account ``support-<ticket>`` is created in the realm with no
role and no group (least rights: it can log into the practice's Nextcloud through
user_oidc and sees only what the practice shares with it), and Keycloak mails the credential
set-up link (execute-actions UPDATE_PASSWORD) to the configured ``support_ops_email``: ops log
in through the normal OIDC path with a password only they set. No shared password, no
impersonation. ``admin_audit`` is enabled in the practice's Nextcloud for the platform.

``expire`` (the sweep; also run at the start of every support command) and ``revoke``:
disable the support user in Keycloak, log out all its sessions, ``occ user:disable`` it in
Nextcloud. The clock is injectable (``now`` parameter; ``SMARTPRAXX_SUPPORT_NOW`` for the
CLI in tests).

``export``: the support user's Keycloak events and its lines of the Nextcloud ``audit.log``,
as raw JSON, a German HTML report and a SHA-256 file.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as pysecrets
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..adapters import smtp
from ..adapters.keycloak import KeycloakAdapter
from ..domain import support as dom
from ..errors import (
    ConfigError,
    ExternalServiceError,
    NotFoundError,
    SmartpraxxError,
    UsageError,
)
from ..inventory.models import PracticeRecord
from ..inventory.support import SupportBook
from ..render import support as render
from ..render.realm import ROLE_ADMIN
from .context import OpContext

CONSENT_CLIENT = "smartpraxx-support-consent"
NOW_ENV = "SMARTPRAXX_SUPPORT_NOW"  # tests: the injected clock of the CLI (ISO 8601 UTC)
AUDIT_LOG = "/var/www/html/data/audit.log"


def now_from_env() -> datetime | None:
    value = os.environ.get(NOW_ENV)
    return dom.parse_stamp(value) if value else None


def _clock(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)


def consent_link(ctx: OpContext, realm: str, ticket: str, token: str) -> str:
    base = ctx.settings.service_public_url.rstrip("/")
    return f"{base}/support/consent/{quote(realm)}/{quote(ticket)}?t={quote(token)}"


def callback_url(ctx: OpContext) -> str:
    return callback_url_for(ctx.settings.service_public_url)


def callback_url_for(service_public_url: str) -> str:
    return service_public_url.rstrip("/") + "/support/callback"


def _practice(ctx: OpContext, praxisname: str) -> PracticeRecord:
    record = ctx.inventory.get_practice(praxisname)
    if record is None or record.tombstoned:
        raise NotFoundError(f"practice {praxisname} is not provisioned", obj=praxisname,
                            hint="smartpraxx-provision practices list")
    return record


def _practice_of_realm(ctx: OpContext, realm: str) -> PracticeRecord:
    for record in ctx.inventory.list_practices():
        if record.realm == realm:
            return record
    raise NotFoundError(f"realm {realm} belongs to no practice", obj=f"realm {realm}")


# --- the realm's records ---------------------------------------------------------------------


def read_records(kc: KeycloakAdapter, realm: str) -> dict[str, dom.Consent]:
    live = kc.get_realm(realm)
    if live is None:
        raise NotFoundError(f"realm {realm} does not exist", obj=f"realm {realm}",
                            hint="smartpraxx-provision status")
    return dom.records_from_attributes(live.get("attributes") or {})


def _write_record(ctx: OpContext, kc: KeycloakAdapter, record: PracticeRecord,
                  consent: dom.Consent) -> None:
    """Realm first (the evidence), then the central fact."""
    live = kc.get_realm(record.realm) or {}
    attrs = dict(live.get("attributes") or {})
    attrs[dom.record_attr(consent.ticket)] = consent.to_json()
    kc.update_realm(record.realm, {"attributes": attrs})
    expires = dom.parse_stamp(consent.expires_at) if consent.expires_at else None
    SupportBook(ctx.inventory).put(record.practice_id, consent.ticket, consent.state, expires)


def _admins(kc: KeycloakAdapter, realm: str) -> list[dict[str, Any]]:
    ids = kc.role_member_ids(realm, ROLE_ADMIN)
    users = [kc.get_user(realm, uid) for uid in sorted(ids)]
    return [u for u in users if u.get("enabled", True) and u.get("email")]


# --- request ---------------------------------------------------------------------------------


def request(ctx: OpContext, praxisname: str, ticket: str, duration: str, reason: str, *,
            scope: str = dom.DEFAULT_SCOPE, dry_run: bool = False,
            now: datetime | None = None) -> dict[str, Any]:
    at = _clock(now)
    if not ctx.settings.support_ops_email:
        raise ConfigError("support_ops_email is not set: the support account's set-password "
                          "link has nowhere to go", obj="setting support_ops_email",
                          hint="set support_ops_email in smartpraxx.yaml or "
                          "SMARTPRAXX_SUPPORT_OPS_EMAIL (the ops team's address)")
    expire(ctx, now=at)
    record = _practice(ctx, praxisname)
    kc = ctx.practice_keycloak(record)
    token = pysecrets.token_urlsafe(32)
    consent = dom.new_request(ticket, reason, dom.parse_duration(duration), scope, at, token)
    existing = read_records(kc, record.realm).get(consent.ticket)
    if existing is not None and existing.state in (dom.PENDING, dom.APPROVED):
        raise UsageError(
            f"ticket {consent.ticket} of {praxisname} is already {existing.state}",
            obj=f"ticket {consent.ticket}",
            hint=f"smartpraxx-provision support status {praxisname}")
    if existing is not None:
        raise UsageError(
            f"ticket {consent.ticket} of {praxisname} was {existing.state} already; a ticket "
            "is asked for once", obj=f"ticket {consent.ticket}",
            hint="open the request under a new ticket id")
    admins = _admins(kc, record.realm)
    if not admins:
        raise UsageError(f"practice {praxisname} has no admin with an e-mail address to ask",
                         obj=f"realm {record.realm}",
                         hint="mark an admin in the Starter Excel and re-run provision")
    out: dict[str, Any] = {"praxisname": praxisname, "realm": record.realm,
                           "ticket": consent.ticket, "scope": consent.scope,
                           "duration_s": consent.duration_s, "admins_asked": len(admins)}
    if dry_run:
        return {"ok": True, "dry_run": True, "plan": out}
    _ensure_consent_client(ctx, kc, record.realm)
    _write_record(ctx, kc, record, consent)
    link = consent_link(ctx, record.realm, consent.ticket, token)
    display = record.display_name or praxisname
    for admin in admins:
        msg = EmailMessage()
        msg["To"] = str(admin["email"])
        msg["Subject"] = render.consent_mail_subject(consent)
        msg.set_content(render.consent_mail_text(consent, display, link))
        smtp.send_mail(ctx.settings, ctx.secrets, msg)
    ctx.reporter.change(f"support request {consent.ticket} of {praxisname}: "
                        f"{len(admins)} admin(s) asked")
    return {"ok": True, **out, "state": consent.state}


def _ensure_consent_client(ctx: OpContext, kc: KeycloakAdapter, realm: str) -> str:
    """The confidential client of the consent page (code flow, this redirect URI only)."""
    payload = {
        "clientId": CONSENT_CLIENT,
        "name": "smartpraxx Support-Zustimmung",
        "protocol": "openid-connect",
        "publicClient": False,
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": [callback_url(ctx)],
        "webOrigins": [],
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "-"},
    }
    live = kc.find_client(realm, CONSENT_CLIENT)
    if live is None:
        return kc.create_client(realm, payload)
    if live.get("redirectUris") != payload["redirectUris"]:
        kc.update_client(realm, str(live["id"]), {**live, **payload})
    return str(live["id"])


def consent_client(ctx: OpContext, realm: str) -> tuple[str, str]:
    """The consent client of ``realm``: its identity shard's URL (where its token endpoint
    is) and its secret."""
    record = _practice_of_realm(ctx, realm)
    kc = ctx.practice_keycloak(record)
    live = kc.find_client(realm, CONSENT_CLIENT)
    secret = kc.client_secret(realm, str(live["id"])) if live else None
    if not secret:
        raise NotFoundError(f"realm {realm} has no consent client", obj=f"realm {realm}")
    return kc.active_url, secret


# --- the consent page's part --------------------------------------------------------------------


def pending_for_link(ctx: OpContext, realm: str, ticket: str, token: str,
                     now: datetime | None = None) -> tuple[PracticeRecord, dom.Consent] | None:
    """The pending request a consent link names, None when the link is not (or no longer)
    valid."""
    try:
        record = _practice_of_realm(ctx, realm)
        consent = read_records(ctx.practice_keycloak(record), realm).get(dom.check_ticket(ticket))
    except UsageError:
        return None
    if consent is None or not consent.token_ok(token):
        return None
    if consent.state != dom.PENDING or consent.lapsed(_clock(now)):
        return None
    return record, consent


def decide(ctx: OpContext, realm: str, ticket: str, token: str, approver_id: str,
           approve: bool, *, now: datetime | None = None) -> dom.Consent:
    """The answer of an admin of the practice (their realm user id from the login)."""
    at = _clock(now)
    found = pending_for_link(ctx, realm, ticket, token, at)
    if found is None:
        raise UsageError("this consent link is no longer valid", obj=f"ticket {ticket}")
    record, consent = found
    kc = ctx.practice_keycloak(record)
    if approver_id not in kc.role_member_ids(realm, ROLE_ADMIN):
        raise UsageError("only an admin of the practice can answer a support request",
                         obj=f"ticket {ticket}")
    if not approve:
        decided = consent.decline(approver_id, at)
        _write_record(ctx, kc, record, decided)
        ctx.reporter.change(f"support request {ticket} of {record.praxisname}: declined")
        return decided
    decided = consent.approve(approver_id, at)
    _write_record(ctx, kc, record, decided)
    _create_support_user(ctx, kc, record, decided)
    _enable_audit(ctx, record)
    ctx.reporter.change(f"support request {ticket} of {record.praxisname}: approved until "
                        f"{decided.expires_at}")
    return decided


def _create_support_user(ctx: OpContext, kc: KeycloakAdapter, record: PracticeRecord,
                         consent: dom.Consent) -> str:
    username = dom.support_username(consent.ticket)
    realm = record.realm
    _declare_marker(kc, realm)
    user_id = kc.find_user_id(realm, username)
    payload = {
        "username": username,
        "enabled": True,
        "email": ctx.settings.support_ops_email,
        "emailVerified": False,
        "firstName": "smartpraxx",
        "lastName": f"Support {consent.ticket}",
        "requiredActions": ["UPDATE_PASSWORD"],
        "attributes": {dom.USER_MARKER_ATTR: [consent.ticket]},
    }
    if user_id is None:
        user_id = kc.create_user(realm, payload)
    else:
        kc.update_user(realm, user_id, {**kc.get_user(realm, user_id), **payload})
    lifespan = max(300, int((dom.parse_stamp(consent.expires_at) - _clock(None)).total_seconds()))
    kc.send_actions_email(realm, user_id, ["UPDATE_PASSWORD"], lifespan=min(lifespan, 86400))
    return user_id


def _declare_marker(kc: KeycloakAdapter, realm: str) -> None:
    config = kc.get_user_profile(realm)
    attributes: list[dict[str, Any]] = list(config.get("attributes") or [])
    if any(a.get("name") == dom.USER_MARKER_ATTR for a in attributes):
        return
    attributes.append({"name": dom.USER_MARKER_ATTR, "displayName": "Support-Ticket",
                       "permissions": {"view": ["admin"], "edit": ["admin"]},
                       "multivalued": False, "validations": {"length": {"max": 40}}})
    kc.update_user_profile(realm, {**config, "attributes": attributes})


# --- Nextcloud ---------------------------------------------------------------------------------


def _nextcloud(ctx: OpContext, record: PracticeRecord) -> Any | None:
    """The practice's Nextcloud door, None when its app container does not run."""
    from ..adapters.nextcloud import NextcloudAdapter
    from . import nextcloud_stack

    engine = ctx.practice_engine(record)
    app = nextcloud_stack.slot_names(record.slot).app
    info = engine.inspect_container(app)
    if info is None or info.status != "running":
        ctx.reporter.warn(f"{app} is not running: its support user is handled in Keycloak only")
        return None
    return NextcloudAdapter(engine, app)


def _enable_audit(ctx: OpContext, record: PracticeRecord) -> None:
    nc = _nextcloud(ctx, record)
    if nc is None:
        return
    nc.config_import({"system": {"log_type_audit": "file", "logfile_audit": AUDIT_LOG}})
    if "admin_audit" not in nc.app_list().get("enabled", {}):
        nc.enable_apps(["admin_audit"])


def _nextcloud_disable(ctx: OpContext, record: PracticeRecord, username: str) -> str:
    nc = _nextcloud(ctx, record)
    if nc is None:
        return "not running"
    try:
        nc.occ("user:info", username, "--output=json")
    except ExternalServiceError:  # "user not found": it never logged in there
        return "never logged in"
    nc.occ("user:disable", username)
    return "disabled"


# --- ending access -------------------------------------------------------------------------------


def _end(ctx: OpContext, record: PracticeRecord, consent: dom.Consent, state: str, by: str,
         at: datetime) -> dict[str, Any]:
    kc = ctx.practice_keycloak(record)
    username = dom.support_username(consent.ticket)
    realm = record.realm
    user_id = kc.find_user_id(realm, username)
    sessions = 0
    if user_id is not None:
        user = kc.get_user(realm, user_id)
        if user.get("enabled", True):
            kc.update_user(realm, user_id, {**user, "enabled": False})
        sessions = len(kc.request("GET", f"admin/realms/{quote(realm)}/users/{user_id}/sessions",
                                  what=f"list sessions in realm {realm}", mutating=False) or [])
        kc.request("POST", f"admin/realms/{quote(realm)}/users/{user_id}/logout",
                   what=f"log out the support user of realm {realm}")
    nextcloud = _nextcloud_disable(ctx, record, username) if user_id else "no user"
    ended = consent.end(state, by, at)
    _write_record(ctx, kc, record, ended)
    ctx.reporter.change(f"support {consent.ticket} of {record.praxisname}: {state}, "
                        f"{sessions} session(s) ended, Nextcloud user {nextcloud}")
    return {"praxisname": record.praxisname, "ticket": consent.ticket, "state": state,
            "keycloak_user": "disabled" if user_id else "none", "sessions_ended": sessions,
            "nextcloud_user": nextcloud}


def expire(ctx: OpContext, *, now: datetime | None = None, dry_run: bool = False
           ) -> dict[str, Any]:
    """The sweep: end every consent whose time is up (and lapse unanswered requests)."""
    at = _clock(now)
    ended: list[dict[str, Any]] = []
    book = SupportBook(ctx.inventory)
    for central in book.open_consents():
        record = ctx.inventory.get_practice_by_id(central.practice_id)
        if record is None or record.tombstoned:
            continue
        consent = read_records(ctx.practice_keycloak(record), record.realm).get(central.ticket)
        if consent is None:
            continue
        if consent.due(at) or consent.lapsed(at):
            if dry_run:
                ended.append({"praxisname": record.praxisname, "ticket": consent.ticket,
                              "state": dom.EXPIRED})
                continue
            ended.append(_end(ctx, record, consent, dom.EXPIRED, "sweep", at))
        elif consent.state != central.state:  # the realm is the truth
            book.put(record.practice_id, consent.ticket, consent.state,
                     dom.parse_stamp(consent.expires_at) if consent.expires_at else None)
    return {"ok": True, "dry_run": dry_run, "now": dom.stamp(at), "ended": ended}


def sweep_if_due(ctx: OpContext, *, now: datetime | None = None) -> int:
    """The sweep at the start of every command: one inventory query when nothing is due;
    ends what is (as ``support expire``). A failing sweep never blocks the command (the
    timer's ``support expire`` and the next command try again): it is a warning."""
    at = _clock(now)
    due = [c for c in SupportBook(ctx.inventory).open_consents()
           if c.state == dom.APPROVED and c.expires_at is not None and c.expires_at <= at]
    if not due:
        return 0
    try:
        return len(expire(ctx, now=at)["ended"])
    except SmartpraxxError as err:
        ctx.reporter.warn(f"support expiry sweep failed: {err.message} "
                          "(next: smartpraxx-provision support expire)")
        return 0


def revoke(ctx: OpContext, praxisname: str, ticket: str, *, dry_run: bool = False,
           now: datetime | None = None) -> dict[str, Any]:
    at = _clock(now)
    expire(ctx, now=at)
    record = _practice(ctx, praxisname)
    consent = _require_consent(ctx, record, ticket)
    if consent.state not in (dom.PENDING, dom.APPROVED):
        return {"ok": True, "praxisname": praxisname, "ticket": consent.ticket,
                "state": consent.state, "changed": False}
    if dry_run:
        return {"ok": True, "dry_run": True, "plan": {"praxisname": praxisname,
                                                       "ticket": consent.ticket,
                                                       "state": dom.REVOKED}}
    return {"ok": True, **_end(ctx, record, consent, dom.REVOKED, "ops", at), "changed": True}


def _require_consent(ctx: OpContext, record: PracticeRecord, ticket: str) -> dom.Consent:
    name = dom.check_ticket(ticket)
    consent = read_records(ctx.practice_keycloak(record), record.realm).get(name)
    if consent is None:
        raise UsageError(f"practice {record.praxisname} has no support request {name}",
                         obj=f"ticket {name}",
                         hint=f"smartpraxx-provision support request {record.praxisname} "
                         f"--ticket {name} --duration 4h --reason \"...\"")
    return consent


def status(ctx: OpContext, praxisname: str, *, now: datetime | None = None) -> dict[str, Any]:
    at = _clock(now)
    expire(ctx, now=at)
    record = _practice(ctx, praxisname)
    kc = ctx.practice_keycloak(record)
    out = []
    for ticket, consent in sorted(read_records(kc, record.realm).items()):
        user_id = kc.find_user_id(record.realm, dom.support_username(ticket))
        enabled = bool(kc.get_user(record.realm, user_id).get("enabled")) if user_id else None
        out.append({**consent.public(), "support_user": dom.support_username(ticket),
                    "support_user_enabled": enabled})
    return {"ok": True, "praxisname": praxisname, "now": dom.stamp(at), "requests": out}


def require_active(ctx: OpContext, praxisname: str, ticket: str,
                   now: datetime | None = None) -> dom.Consent:
    """The approved, unexpired consent of ``ticket``; a clear usage error (exit 2) else."""
    at = _clock(now)
    expire(ctx, now=at)
    record = _practice(ctx, praxisname)
    consent = _require_consent(ctx, record, ticket)
    if consent.state != dom.APPROVED:
        raise UsageError(
            f"no consent: support request {consent.ticket} of {praxisname} is "
            f"{consent.state}; support access needs the practice's approval",
            obj=f"ticket {consent.ticket}",
            hint=f"smartpraxx-provision support status {praxisname}")
    return consent


def login(ctx: OpContext, praxisname: str, ticket: str, *, resend: bool = False,
          now: datetime | None = None) -> dict[str, Any]:
    """What ops need to log in for an approved ticket (refused, exit 2, without consent):
    the support username and the practice's Nextcloud; ``resend`` mails the set-password
    link to ``support_ops_email`` again."""
    from ..render.bundle import nextcloud_base_url

    consent = require_active(ctx, praxisname, ticket, now)
    record = _practice(ctx, praxisname)
    username = dom.support_username(consent.ticket)
    if resend:
        kc = ctx.practice_keycloak(record)
        user_id = kc.find_user_id(record.realm, username)
        if user_id is None:
            raise NotFoundError(f"realm {record.realm} has no user {username}",
                                obj=f"ticket {consent.ticket}",
                                hint=f"smartpraxx-provision support status {praxisname}")
        kc.send_actions_email(record.realm, user_id, ["UPDATE_PASSWORD"], lifespan=3600)
    return {"ok": True, "praxisname": praxisname, "ticket": consent.ticket,
            "username": username, "nextcloud": nextcloud_base_url(ctx.settings, record.slot),
            "expires_at": consent.expires_at, "mail_resent": resend}


# --- export -------------------------------------------------------------------------------------


def _keycloak_events(kc: KeycloakAdapter, realm: str, user_id: str) -> list[dict[str, Any]]:
    events = kc.request("GET", f"admin/realms/{quote(realm)}/events",
                        params={"user": user_id, "max": 1000}, mutating=False,
                        what=f"read the events of realm {realm}") or []
    return list(events)


def _audit_lines(ctx: OpContext, record: PracticeRecord, username: str) -> list[dict[str, Any]]:
    nc = _nextcloud(ctx, record)
    if nc is None:
        return []
    result = nc.engine.exec(nc.container, ["cat", AUDIT_LOG], user="www-data")
    if result.exit_code != 0:
        return []
    lines = []
    for raw in result.stdout.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if entry.get("user") == username or username in str(entry.get("message", "")):
            lines.append(entry)
    return lines


def _entries(events: list[dict[str, Any]], audit: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for e in events:
        when = datetime.fromtimestamp(int(e.get("time", 0)) / 1000, UTC)
        out.append({"time": dom.stamp(when), "source": "Keycloak",
                    "action": str(e.get("type", "")),
                    "object": str(e.get("clientId") or "")})
    for line in audit:
        out.append({"time": str(line.get("time", "")), "source": "Nextcloud audit.log",
                    "action": str(line.get("app", "")), "object": str(line.get("message", ""))})
    return sorted(out, key=lambda x: x["time"])


def export(ctx: OpContext, praxisname: str, ticket: str, out_dir: Path, *,
           now: datetime | None = None) -> dict[str, Any]:
    at = _clock(now)
    expire(ctx, now=at)
    record = _practice(ctx, praxisname)
    consent = _require_consent(ctx, record, ticket)
    kc = ctx.practice_keycloak(record)
    username = dom.support_username(consent.ticket)
    user_id = kc.find_user_id(record.realm, username)
    events = _keycloak_events(kc, record.realm, user_id) if user_id else []
    audit = _audit_lines(ctx, record, username)
    raw = {"praxisname": praxisname, "ticket": consent.ticket, "support_user": username,
           "consent": consent.public(), "keycloak_events": events, "audit_log": audit,
           "exported_at": dom.stamp(at)}
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"support-{praxisname}-{consent.ticket}"
    data = json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False).encode()
    digest = hashlib.sha256(data).hexdigest()
    json_path = out_dir / f"{stem}.json"
    json_path.write_bytes(data)
    entries = _entries(events, audit)
    html_path = out_dir / f"{stem}.html"
    html_text = render.export_report(consent, record.display_name or praxisname, entries, digest)
    html_path.write_text(html_text, encoding="utf-8")
    sums = out_dir / f"{stem}.sha256"
    html_digest = hashlib.sha256(html_text.encode()).hexdigest()
    sums.write_text(f"{digest}  {json_path.name}\n{html_digest}  {html_path.name}\n")
    return {"ok": True, "praxisname": praxisname, "ticket": consent.ticket,
            "entries": len(entries), "json": str(json_path), "html": str(html_path),
            "sha256": str(sums), "json_sha256": digest}
