"""Build real Starter Excel files for the tests (openpyxl), one knob per bad-input case."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from smartpraxx_provision.domain.lanr import lanr_check_digit
from smartpraxx_provision.starter import StarterResult, read_starter_excel


def lanr(person_id: int, fachgruppe: str = "01") -> str:
    first = f"{person_id:06d}"
    return f"{first}{lanr_check_digit(first)}{fachgruppe}"


VALID_PRAXIS: dict[str, Any] = {
    "Formularversion": 1,
    "Praxisname": "praxis-test",
    "Anzeigename": "Praxis Dr. Test",
    "Praxisart": "Arztpraxis",
    "BSNR": "511234500",
    "KV": "KV Rheinland-Pfalz",
    "Fachrichtungen": "Allgemeinmedizin",
    "Bestellnummer": "SPX-1",
    "Kontakt E-Mail": "praxis@test.example",
}
HEADER = ["Vorname", "Nachname", "E-Mail", "Rolle", "Arbeitsbereiche", "LANR", "Admin"]
PEOPLE: list[list[Any]] = [
    ["Anna", "Müller", "anna@test.example", "Praxisinhaber:in", "Abrechnung", lanr(100234), None],
    ["Ben", "Weiß", "ben@test.example", "MFA", "Empfang, QM", None, None],
]

Mutator = Callable[[Workbook], None]


def build(
    path: Path,
    *,
    praxis: dict[str, Any] | None = None,
    praxis_update: dict[str, Any] | None = None,
    header: Sequence[Any] | None = None,
    people: Sequence[Sequence[Any]] | None = None,
    apps: dict[str, Any] | None = None,
    sheets: Sequence[str] = ("Praxis", "Mitarbeitende"),
    mutate: Mutator | None = None,
) -> Path:
    """Write a Starter Excel: valid by default; every argument changes one part."""
    wb = Workbook()
    default = wb.active
    assert default is not None
    wb.remove(default)
    values = dict(VALID_PRAXIS if praxis is None else praxis)
    for key, value in (praxis_update or {}).items():
        if value is _DROP:
            values.pop(key, None)
        else:
            values[key] = value
    if "Praxis" in sheets:
        ws = wb.create_sheet("Praxis")
        for label, value in values.items():
            ws.append([label, value])
    if "Mitarbeitende" in sheets:
        ws = wb.create_sheet("Mitarbeitende")
        ws.append(list(HEADER if header is None else header))
        for row in PEOPLE if people is None else people:
            ws.append(list(row))
    if apps is not None:
        ws = wb.create_sheet("Apps")
        for label, value in apps.items():
            ws.append([label, value])
    if mutate is not None:
        mutate(wb)
    wb.save(path)
    return path


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


_DROP: Any = _Drop()
DROP = _DROP  # use in praxis_update to remove a label row


def check(path: Path) -> StarterResult:
    return read_starter_excel(path)


def messages(result: StarterResult, severity: str = "error") -> list[str]:
    problems = result.errors if severity == "error" else result.warnings
    return [f"{p.where}: {p.message}" for p in problems]
