"""The one door to the outgoing mail relay (order mails, reports for orderers).

Keycloak sends the realms' own mails (invitations, password resets) itself; this door sends
what the tool writes: the Starter Excel template to a new orderer, the German check report
of a returned Starter Excel. Settings ``smtp_*``; the relay password lives in the secret store.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from ..config import Settings
from ..errors import ServiceUnavailableError
from ..secrets import SecretStore

SMTP_PASSWORD_SECRET = "platform/smtp-password"  # noqa: S105 (a secret's path)
SMTP_TIMEOUT = 20.0


def send_mail(settings: Settings, secrets: SecretStore | None, message: EmailMessage) -> None:
    """Send ``message`` (From is set from ``smtp_from`` when missing) through the relay."""
    if not settings.smtp_host:
        raise ServiceUnavailableError(
            "no mail relay is configured (smtp_host is empty)",
            obj="setting smtp_host",
            hint="set smtp_host/smtp_port/smtp_from (README: Configuration)",
        )
    if "From" not in message:
        message["From"] = settings.smtp_from
    try:
        with smtplib.SMTP(settings.smtp_host, int(settings.smtp_port), timeout=SMTP_TIMEOUT) as s:
            if settings.smtp_starttls:
                s.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                if secrets is None:
                    raise ServiceUnavailableError(
                        "the mail relay needs a password but no secret store was given",
                        obj=f"smtp {settings.smtp_host}")
                s.login(settings.smtp_user, secrets.require(SMTP_PASSWORD_SECRET))
            s.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise ServiceUnavailableError(
            f"mail relay {settings.smtp_host}:{settings.smtp_port} refused or did not answer "
            f"({type(exc).__name__})",
            obj=f"smtp {settings.smtp_host}:{settings.smtp_port}",
            hint="check the relay (embedded: smartpraxx-provision dev-stack up), then re-run",
        ) from exc
