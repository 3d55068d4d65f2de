"""German texts of support access: the admins' consent mail, the consent page and the
hand-over report (pure, autoescaped Jinja2 from ``templates/support``)."""

from __future__ import annotations

import importlib.resources
from functools import cache
from typing import Any

import jinja2

from ..domain.support import SCOPES, Consent, german_duration

TEMPLATE_PACKAGE = "smartpraxx_provision._templates"
TEMPLATE_DIR = "support"


def _template_text(name: str) -> str | None:
    resource = importlib.resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR, name)
    if not resource.is_file():
        return None
    return resource.read_text(encoding="utf-8")


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_text),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,  # noqa: S701 - False only for the plain-text mail
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


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
    return _environment(False).get_template("consent_mail.txt.j2").render(
        **_common(consent, practice), link=link)


def consent_page(consent: Consent, practice: str, form_token: str, action: str) -> str:
    return _environment(True).get_template("consent_page.html.j2").render(
        **_common(consent, practice), form_token=form_token, action=action)


def message_page(title: str, text: str) -> str:
    return _environment(True).get_template("message_page.html.j2").render(title=title, text=text)


def export_report(consent: Consent, practice: str, entries: list[dict[str, str]],
                  sha256_of_json: str) -> str:
    return _environment(True).get_template("export_report.html.j2").render(
        **_common(consent, practice), consent=consent, entries=entries, sha256=sha256_of_json)
