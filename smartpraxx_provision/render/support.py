"""German texts of support access: the admins' consent mail, the consent page and the
hand-over report (pure, autoescaped Jinja2 from ``templates/support``)."""

from __future__ import annotations

from typing import Any

from ..domain.support import SCOPES, Consent, german_duration
from .templates import render


def _common(consent: Consent, practice: str) -> dict[str, Any]:
    return {
        "practice": practice,
        "ticket": consent.ticket,
        "reason": consent.reason,
        "scope": SCOPES[consent.scope],
        "duration": german_duration(consent.duration_s),
    }


def consent_mail_subject(consent: Consent) -> str:
    return f"Zustimmung erbeten: Support-Zugriff für Ticket {consent.ticket}"


def consent_mail_text(consent: Consent, practice: str, link: str) -> str:
    return render("support/consent_mail.txt.j2", html=False,
        **_common(consent, practice), link=link)


def consent_page(consent: Consent, practice: str, form_token: str, action: str) -> str:
    return render("support/consent_page.html.j2", html=True,
        **_common(consent, practice), form_token=form_token, action=action)


def message_page(title: str, text: str) -> str:
    return render("support/message_page.html.j2", html=True, title=title, text=text)


def export_report(consent: Consent, practice: str, entries: list[dict[str, str]],
                  sha256_of_json: str) -> str:
    return render("support/export_report.html.j2", html=True,
        **_common(consent, practice), consent=consent, entries=entries, sha256=sha256_of_json)
