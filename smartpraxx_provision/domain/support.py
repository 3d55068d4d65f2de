"""Support access with the practice's consent: the pure rules (no I/O).

A *consent record* lives in the practice's realm (realm attribute ``smartpraxx.support.<ticket>``,
JSON): the practice's evidence of who approved (the approver's realm user id, never a name),
when, for which ticket, scope and until when. Its states::

    pending ──approve──▶ approved ──expiry/revoke──▶ expired | revoked
       └────decline───▶ declined

The consent link in the admins' mail carries a random token; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..errors import UsageError

RECORD_ATTR_PREFIX = "smartpraxx.support."
USER_PREFIX = "support-"
USER_MARKER_ATTR = "smartpraxx_support_ticket"  # on support users only (admin-only attribute)
SCOPES = {"nextcloud": "Anmeldung an der Nextcloud der Praxis (eigene, leere Ablage; "
                       "nur was die Praxis mit dem Support-Konto teilt)"}
DEFAULT_SCOPE = "nextcloud"
MAX_DURATION = timedelta(days=7)
MIN_DURATION = timedelta(minutes=5)
PENDING_LIFETIME = timedelta(days=3)  # an unanswered request lapses after this

PENDING, APPROVED, DECLINED, REVOKED, EXPIRED = (
    "pending", "approved", "declined", "revoked", "expired")
STATES = (PENDING, APPROVED, DECLINED, REVOKED, EXPIRED)
FINAL_STATES = (DECLINED, REVOKED, EXPIRED)

_TICKET_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_DURATION_RE = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def check_ticket(ticket: str) -> str:
    """The ticket id, lower case: letters, digits, '-'; it names the support user."""
    value = ticket.strip().lower()
    if not _TICKET_RE.match(value):
        raise UsageError(
            f"ticket {ticket!r} is invalid: 1-32 letters, digits or '-' (it names the "
            f"support user {USER_PREFIX}<ticket>)",
            obj=f"ticket {ticket}", hint="e.g. --ticket SP-1234",
        )
    return value


def parse_duration(text: str) -> timedelta:
    """``30m``, ``4h``, ``2d``: between 5 minutes and 7 days."""
    match = _DURATION_RE.match(text.strip().lower())
    if not match:
        raise UsageError(f"duration {text!r} is invalid", obj=f"duration {text}",
                         hint="e.g. --duration 4h (m, h or d)")
    value = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise UsageError(f"duration {text} is outside 5m..7d", obj=f"duration {text}",
                         hint="ask for the time the ticket needs, at most 7d")
    return value


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise UsageError(f"scope {scope!r} is unknown", obj=f"scope {scope}",
                         hint=f"one of: {', '.join(SCOPES)}")
    return scope


def support_username(ticket: str) -> str:
    return USER_PREFIX + check_ticket(ticket)


def record_attr(ticket: str) -> str:
    return RECORD_ATTR_PREFIX + check_ticket(ticket)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Consent:
    """One support request and the practice's answer (the realm's copy is the evidence)."""

    ticket: str
    reason: str
    scope: str
    duration_s: int
    requested_at: str
    token_sha256: str
    state: str = PENDING
    decided_by: str = ""  # the approving/declining admin's realm user id (never a name)
    decided_at: str = ""
    expires_at: str = ""  # set on approval
    ended_at: str = ""  # expiry, revoke
    ended_by: str = ""  # "sweep", "ops" or a realm user id

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Consent:
        data = json.loads(text)
        fields = {k: data[k] for k in Consent.__dataclass_fields__ if k in data}
        return Consent(**fields)

    def token_ok(self, token: str) -> bool:
        return hmac.compare_digest(self.token_sha256, token_hash(token))

    def lapsed(self, now: datetime) -> bool:
        """A pending request nobody answered in time."""
        return self.state == PENDING and now >= parse_stamp(self.requested_at) + PENDING_LIFETIME

    def due(self, now: datetime) -> bool:
        """An approved consent whose time is up."""
        return self.state == APPROVED and now >= parse_stamp(self.expires_at)

    def approve(self, approver_id: str, now: datetime, duration: timedelta | None = None
                ) -> Consent:
        self._require(PENDING, "approved")
        granted = duration or timedelta(seconds=self.duration_s)
        if granted > timedelta(seconds=self.duration_s) or granted < MIN_DURATION:
            raise UsageError("the approved duration must be between 5 minutes and the "
                             "requested one", obj=f"ticket {self.ticket}")
        return replace(self, state=APPROVED, decided_by=approver_id, decided_at=stamp(now),
                       expires_at=stamp(now + granted), duration_s=int(granted.total_seconds()))

    def decline(self, approver_id: str, now: datetime) -> Consent:
        self._require(PENDING, "declined")
        return replace(self, state=DECLINED, decided_by=approver_id, decided_at=stamp(now))

    def end(self, state: str, by: str, now: datetime) -> Consent:
        if state not in (REVOKED, EXPIRED):
            raise ValueError(state)
        if self.state not in (PENDING, APPROVED):
            return self
        return replace(self, state=state, ended_by=by, ended_at=stamp(now))

    def _require(self, state: str, verb: str) -> None:
        if self.state != state:
            raise UsageError(
                f"support request {self.ticket} is {self.state} and cannot be {verb}",
                obj=f"ticket {self.ticket}",
                hint="ops open a new request: smartpraxx-provision support request")

    def central(self) -> dict[str, Any]:
        """What the central inventory may know: the fact, no person."""
        return {"ticket": self.ticket, "state": self.state,
                "expires_at": self.expires_at or None}

    def public(self) -> dict[str, Any]:
        """For status output (no token hash)."""
        out = asdict(self)
        out.pop("token_sha256")
        return out


def new_request(ticket: str, reason: str, duration: timedelta, scope: str, now: datetime,
                token: str) -> Consent:
    reason = " ".join(reason.split())
    if not reason or len(reason) > 500:
        raise UsageError("give a reason of 1-500 characters (the practice reads it)",
                         obj=f"ticket {ticket}", hint='--reason "Was und warum"')
    return Consent(ticket=check_ticket(ticket), reason=reason, scope=check_scope(scope),
                   duration_s=int(duration.total_seconds()), requested_at=stamp(now),
                   token_sha256=token_hash(token))


def records_from_attributes(attributes: dict[str, Any]) -> dict[str, Consent]:
    out: dict[str, Consent] = {}
    for key, value in (attributes or {}).items():
        if key.startswith(RECORD_ATTR_PREFIX) and isinstance(value, str):
            out[key[len(RECORD_ATTR_PREFIX):]] = Consent.from_json(value)
    return out


def german_duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        n = seconds // 86400
        return f"{n} Tag" if n == 1 else f"{n} Tage"
    if seconds % 3600 == 0:
        n = seconds // 3600
        return f"{n} Stunde" if n == 1 else f"{n} Stunden"
    n = seconds // 60
    return f"{n} Minute" if n == 1 else f"{n} Minuten"
