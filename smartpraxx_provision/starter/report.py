"""The result of reading a Starter Excel: every problem at once, plus the spec when valid."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..domain.catalog import SPECIALTIES_BY_SLUG
from ..domain.model import PracticeSpec, Role
from ..domain.seats import billable_seats

ERROR = "error"
WARNING = "warning"
HIDDEN_VALUE = "(hidden: personal data; --show-people shows it)"


@dataclass(frozen=True)
class Problem:
    """One finding about the Starter Excel.

    ``cell`` is a coordinate (``E7``) when the problem has one; ``label`` names the field
    (``Praxisname``, ``E-Mail``) or, without a sheet, the file. ``value`` is the offending
    value as text; ``personal`` marks it as staff personal data, hidden in output unless
    asked for. ``message`` and ``hint`` never contain personal data.
    """

    severity: str  # ERROR | WARNING
    message: str
    sheet: str | None = None
    cell: str | None = None
    label: str | None = None
    value: str | None = None
    hint: str | None = None  # what would be valid
    personal: bool = False

    @property
    def where(self) -> str:
        """``Mitarbeitende!E7 (E-Mail)``, ``Praxis (Praxisname)`` or ``file``."""
        if self.sheet is None:
            return self.label or "file"
        place = f"{self.sheet}!{self.cell}" if self.cell else self.sheet
        return f"{place} ({self.label})" if self.label else place

    def shown_value(self, show_personal: bool = False) -> str | None:
        if self.value is None:
            return None
        return HIDDEN_VALUE if self.personal and not show_personal else self.value

    def to_dict(self, show_personal: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "message": self.message,
                               "where": self.where}
        for key in ("sheet", "cell", "label", "hint"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.value is not None:
            out["value"] = self.shown_value(show_personal)
        return out

    def format(self, show_personal: bool = False) -> str:
        text = f"{self.where}: {self.message}"
        value = self.shown_value(show_personal)
        if value is not None:
            text += f" [value: {value!r}]" if value != HIDDEN_VALUE else f" [value {value}]"
        if self.hint:
            text += f"\n      valid: {self.hint}"
        return text


@dataclass
class StarterResult:
    """Outcome of ``read_starter_excel``: ``spec`` is set only when there are no errors."""

    source: str
    spec: PracticeSpec | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.spec is not None

    def add(self, problem: Problem) -> None:
        (self.errors if problem.severity == ERROR else self.warnings).append(problem)

    def to_dict(self, show_people: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.source,
            "ok": self.ok,
            "errors": [p.to_dict(show_people) for p in self.errors],
            "warnings": [p.to_dict(show_people) for p in self.warnings],
        }
        if self.spec is not None:
            out["summary"] = summarize(self.spec)
            if show_people:
                out["people"] = people_rows(self.spec)
        return out


def summarize(spec: PracticeSpec) -> dict[str, Any]:
    """Practice-level facts and counts only (no staff names, e-mails, usernames, LANRs)."""
    roles = Counter(p.role for p in spec.persons)
    return {
        "praxisname": spec.praxisname,
        "anzeigename": spec.display_name,
        "praxisart": spec.practice_type.label,
        "kv": spec.kv,
        "bsnr": spec.bsnr,
        "fachrichtungen": list(spec.specialties),
        "paket": spec.package.value,
        "formularversion": spec.form_version,
        "persons": len(spec.persons),
        "persons_by_role": {r.label: n for r, n in sorted(
            roles.items(), key=lambda item: list(Role).index(item[0]))},
        "admins": sum(1 for p in spec.persons if p.admin),
        "billable_seats": billable_seats(spec),
        "apps": list(spec.apps.app_ids()),
        "third_party_apps": [
            {"name": a.name, "url": a.url, "client_id": a.client_id}
            for a in spec.third_party_apps
        ],
    }


def people_rows(spec: PracticeSpec) -> list[dict[str, Any]]:
    """Staff personal data, for ``--show-people`` only."""
    return [
        {
            "vorname": p.first_name,
            "nachname": p.last_name,
            "email": p.email,
            "benutzername": p.username,
            "rolle": p.role.label,
            "arbeitsbereiche": [w.label for w in p.work_areas],
            "lanr": list(p.lanrs),
            "fachrichtung": p.specialty,
            "admin": p.admin,
        }
        for p in spec.persons
    ]


def format_summary(spec: PracticeSpec) -> list[str]:
    s = summarize(spec)
    specialties = ", ".join(
        f"{slug} ({SPECIALTIES_BY_SLUG[slug].label})" for slug in spec.specialties
    )
    roles = ", ".join(f"{label} {n}" for label, n in s["persons_by_role"].items())
    apps = ", ".join(s["apps"]) or "none"
    lines = [
        f"praxisname:     {s['praxisname']}",
        f"Anzeigename:    {s['anzeigename']!r}",
        f"Praxisart:      {s['praxisart']}",
        f"KV:             {s['kv']}" + (f" (BSNR {s['bsnr']})" if s["bsnr"] else ""),
        f"Fachrichtungen: {specialties}",
        f"Paket:          {spec.package.value.capitalize()}",
        f"persons:        {s['persons']} ({roles}); admins: {s['admins']}",
        f"billable seats: {s['billable_seats']}",
        f"apps:           {apps}",
    ]
    for app in spec.third_party_apps:
        lines.append(f"third-party:    {app.name!r} {app.url} (client {app.client_id})")
    return lines
