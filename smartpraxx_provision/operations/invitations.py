"""Invitations: each staff member's first-login mail, sent once, recorded in the realm.

A new staff member has no password (none ever travels in the Starter Excel) and the required
action UPDATE_PASSWORD. ``provision`` asks Keycloak to mail them its execute-actions e-mail
(``PUT /admin/realms/{realm}/users/{id}/execute-actions-email``, German: the realm's locale is
``de``): one mail, one link (an action token of the practice's realm, valid
``invitation_lifespan_days``), the user sets a password and is done — following the link
also marks the e-mail address verified, so no second mail is needed. The page Keycloak shows
afterwards links to the Nextcloud client's base URL (``client_id=nextcloud``), the practice's
Nextcloud. No ``redirect_uri`` is passed: Keycloak would only accept one that is a registered
redirect URI of the client, and widening the client's redirect URIs to the bare base URL
for this is not worth it (Keycloak shows the same page with the same link either way).

That it was sent is recorded **in the realm**, as the user attribute
``smartpraxx_invited_at`` (UTC timestamp), declared in the realm's user profile as visible
and editable by admins only; the central inventory never learns who was invited. A user with
that attribute is never mailed again by ``provision``; ``invite resend`` sends another one on
request (and updates the timestamp). A user who has no UPDATE_PASSWORD left to do (set up
already) is not invited by ``provision`` either.

The attribute is written right after Keycloak accepted the mail: a crash between the two
means one duplicate mail on the next run, never a staff member without one.

Failure to send (SMTP down or refusing) does not abort the other invitations: each is tried,
the failures are counted, and the caller (``provision``'s last step) then fails with an error
naming the next commands. Nothing here ever reports a username, a name or an e-mail address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..adapters.keycloak import KeycloakAdapter
from ..config import Settings
from ..domain.model import PracticeSpec, Slot
from ..errors import ConfigError, ExternalServiceError, NotFoundError, UsageError
from ..inventory.models import record_dict
from ..output import Reporter
from ..render.realm import NEXTCLOUD_CLIENT, SMOKE_PREFIX, SMTP_PASSWORD_SECRET
from ..secrets import SecretStore
from .context import OpContext, provisioned_practice

INVITED_ATTR = "smartpraxx_invited_at"
# the required actions an invitation mail may carry (in Keycloak's order of execution)
MAIL_ACTIONS = ("UPDATE_PASSWORD", "CONFIGURE_TOTP", "VERIFY_EMAIL")


@dataclass
class InvitationResult:
    sent: int = 0
    already_invited: int = 0
    set_up: int = 0  # no invitation needed: nothing left to do
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Its fields; the errors without repeats."""
        return {**record_dict(self), "errors": list(dict.fromkeys(self.errors))}


# --- settings ---------------------------------------------------------------------------


def mail_settings_problems(settings: Settings, secrets: SecretStore) -> list[str]:
    """What is missing for Keycloak to send mail (names of settings/secrets)."""
    problems = [name for name in ("smtp_host", "smtp_from") if not getattr(settings, name)]
    if settings.smtp_port <= 0 or settings.smtp_port > 65535:
        problems.append("smtp_port")
    if settings.smtp_user and secrets.get(SMTP_PASSWORD_SECRET) is None:
        problems.append(f"secret {SMTP_PASSWORD_SECRET}")
    return problems


def require_mail_settings(settings: Settings, secrets: SecretStore) -> None:
    """Refuse (exit 2) when the realms could not send invitations.

    Production needs its relay configured; the embedded profile has working defaults (the
    local mail sink), so there only an inconsistent setting (user without password) fails."""
    problems = mail_settings_problems(settings, secrets)
    if not problems:
        return
    raise ConfigError(
        f"e-mail is not configured for the {settings.profile} profile: missing "
        f"{', '.join(problems)} (the staff's invitations and password resets are mails)",
        obj="settings " + ", ".join(p for p in problems if not p.startswith("secret")),
        hint="set smtp_host, smtp_port, smtp_from (and smtp_user, smtp_starttls) in "
        "smartpraxx.yaml or SMARTPRAXX_SMTP_*; put the relay password into the secret store "
        f"at {SMTP_PASSWORD_SECRET}; then re-run the command",
    )


# --- user profile ---------------------------------------------------------------------------


def invited_attribute() -> dict[str, Any]:
    return {
        "name": INVITED_ATTR,
        "displayName": "Einladung gesendet",
        "permissions": {"view": ["admin"], "edit": ["admin"]},
        "multivalued": False,
        "validations": {"length": {"max": 40}},
    }


def declare_invited_attribute(kc: KeycloakAdapter, realm: str, reporter: Reporter) -> bool:
    """Declare ``smartpraxx_invited_at`` in the realm's user profile (Keycloak >= 24 drops
    undeclared attributes). True when it was changed."""
    config = kc.get_user_profile(realm)
    attributes: list[dict[str, Any]] = list(config.get("attributes") or [])
    want = invited_attribute()
    for i, attr in enumerate(attributes):
        if attr.get("name") == INVITED_ATTR:
            if attr.get("permissions") == want["permissions"]:
                return False
            attributes[i] = {**attr, **want}
            break
    else:
        attributes.append(want)
    kc.update_user_profile(realm, {**config, "attributes": attributes})
    reporter.change(f"user profile of {realm}: declared {INVITED_ATTR}")
    return True


# --- pure -------------------------------------------------------------------------------------


def invited_at(user: dict[str, Any]) -> str | None:
    values = (user.get("attributes") or {}).get(INVITED_ATTR) or []
    return str(values[0]) if values else None


def mail_actions(user: dict[str, Any]) -> list[str]:
    """The actions the mail asks for: the user's pending ones, else a new password."""
    pending = set(user.get("requiredActions") or [])
    actions = [a for a in MAIL_ACTIONS if a in pending]
    return actions or ["UPDATE_PASSWORD"]


def needs_invitation(user: dict[str, Any]) -> bool:
    """Enabled, never invited, and still without a password of their own."""
    return (
        bool(user.get("enabled", True))
        and invited_at(user) is None
        and "UPDATE_PASSWORD" in (user.get("requiredActions") or [])
    )


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- steps ------------------------------------------------------------------------------------


def _send(kc: KeycloakAdapter, settings: Settings, realm: str, user: dict[str, Any]) -> str:
    """Send one invitation and record it on the user; return the timestamp."""
    kc.send_actions_email(
        realm,
        str(user["id"]),
        mail_actions(user),
        client_id=NEXTCLOUD_CLIENT,
        lifespan=settings.invitation_lifespan_days * 86400,
    )
    stamp = now_stamp()
    current = kc.get_user(realm, str(user["id"]))
    attributes = {**(current.get("attributes") or {}), INVITED_ATTR: [stamp]}
    kc.update_user(realm, str(user["id"]), {**current, "attributes": attributes})
    return stamp


def _smtp_text(settings: Settings) -> str:
    return f"SMTP {settings.smtp_host}:{settings.smtp_port}"


def send_invitations(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    reporter: Reporter,
) -> InvitationResult:
    """Invite every staff member of ``spec`` who was never invited and has no password yet."""
    realm = slot.realm
    result = InvitationResult()
    declare_invited_attribute(kc, realm, reporter)
    wanted = {p.username.lower() for p in spec.persons}
    for user in kc.users(realm):
        username = str(user.get("username", ""))
        if username not in wanted or username.startswith(SMOKE_PREFIX):
            continue
        if invited_at(user) is not None:
            result.already_invited += 1
            continue
        if not needs_invitation(user):
            result.set_up += 1
            continue
        try:
            _send(kc, settings, realm, user)
        except ExternalServiceError as err:  # Keycloak answered: its mailer failed
            result.failed += 1
            result.errors.append(err.message)
            continue
        result.sent += 1
    counts = (
        f"{result.sent} sent, {result.already_invited} sent before, "
        f"{result.set_up} not needed, {result.failed} failed"
    )
    if result.failed:
        reporter.warn(f"invitations of {realm} via {_smtp_text(settings)}: {counts}")
    elif result.sent:
        reporter.change(f"invitations of {realm}: {counts}")
    else:
        reporter.skip(f"invitations of {realm}: {counts}")
    return result


def failure(praxisname: str, realm: str, result: InvitationResult, settings: Settings) -> Any:
    """The error ``provision`` raises after its other steps when mails could not be sent."""
    from ..errors import OperationFailed

    up = " (embedded: 'smartpraxx-provision dev-stack up' starts the local mail sink)"
    return OperationFailed(
        f"{result.failed} invitation mail(s) of realm {realm} could not be sent via "
        f"{_smtp_text(settings)}: {'; '.join(dict.fromkeys(result.errors))[:300]}. "
        "Everything else of the practice is provisioned.",
        obj=f"invitations of {praxisname}",
        hint="make the SMTP server reachable" + (up if settings.profile == "embedded" else "")
        + f", then re-run the same provision (it sends only the missing invitations) or "
        f"'smartpraxx-provision invite resend {praxisname} <username>'",
        details={"invitations": result.to_dict()},
    )


# --- invite resend ------------------------------------------------------------------------


def _staff_username(username: str, praxisname: str, realm: str) -> str:
    """The username as the realm stores it; a smoke test user is no staff member."""
    name = username.strip().lower()
    if not name or name.startswith(SMOKE_PREFIX):
        raise UsageError(
            "give the username of a staff member (Benutzername in the Starter Excel)",
            obj=f"realm {realm}",
            hint=f"smartpraxx-provision invite resend {praxisname} <username>",
        )
    return name


def _staff_user(kc: KeycloakAdapter, praxisname: str, realm: str, name: str) -> dict[str, Any]:
    """The enabled user ``name`` of the realm (an error names the next step otherwise)."""
    user_id = kc.find_user_id(realm, name)
    if user_id is None:
        raise NotFoundError(
            f"realm {realm} of {praxisname} has no user with that username",
            obj=f"realm {realm}",
            hint="check the Benutzername in the practice's Starter Excel (usernames are "
            "lower case); a person added to the Excel is created by re-running provision",
        )
    user = kc.get_user(realm, user_id)
    if not user.get("enabled", True):
        raise UsageError(
            f"that user of realm {realm} is disabled (no longer in the Starter Excel)",
            obj=f"realm {realm}",
            hint="add the person to the Starter Excel again and re-run provision",
        )
    return user


def resend_invitation(
    ctx: OpContext, praxisname: str, username: str, *, dry_run: bool = False
) -> dict[str, Any]:
    """Send one staff member another invitation (on request; ``provision`` never does)."""
    from .runner import JournaledOperation

    record = provisioned_practice(ctx, praxisname)
    require_mail_settings(ctx.settings, ctx.secrets)
    realm = record.slot.realm
    name = _staff_username(username, praxisname, realm)
    kc = ctx.practice_keycloak(record)  # refuses a realm of another owner
    user = _staff_user(kc, praxisname, realm, name)
    out: dict[str, Any] = {
        "praxisname": praxisname,
        "realm": realm,
        "actions": mail_actions(user),
        "lifespan_days": ctx.settings.invitation_lifespan_days,
        "previously_invited_at": invited_at(user),
        "smtp": _smtp_text(ctx.settings),
    }
    if dry_run:
        return {"ok": True, "dry_run": True, "plan": out}
    with (
        JournaledOperation(ctx, "invite", praxisname) as op,
        op.step("invite", "send the invitation"),
    ):
        declare_invited_attribute(kc, realm, ctx.reporter)
        try:
            stamp = _send(kc, ctx.settings, realm, user)
        except ExternalServiceError as err:
            raise ExternalServiceError(
                f"the invitation of a user of realm {realm} could not be sent via "
                f"{_smtp_text(ctx.settings)}: {err.message}",
                obj=f"invitations of {praxisname}",
                hint="make the SMTP server reachable, then re-run the same "
                "'smartpraxx-provision invite resend'",
            ) from err
        ctx.reporter.change(f"invitation sent (realm {realm})")
    return {"ok": True, "operation": op.op_id, **out, "invited_at": stamp, "sent": True}
