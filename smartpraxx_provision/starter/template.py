"""Write the empty Starter Excel (format version 1) with dropdowns and help texts.

A file written here and filled in passes ``starter check``: the Praxis sheet has labels in
column A, values in B and help in C; Mitarbeitende has the header in row 1 and a help row
in row 2 that the reader recognises and skips; a hidden sheet ``Listen`` feeds the dropdowns.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from ..domain.catalog import REGIONS, SPECIALTIES
from ..domain.model import PracticeType, Role, WorkArea
from .schema import (
    APPS_FIELDS,
    FORM_VERSION,
    PEOPLE_FIELDS,
    PRAXIS_FIELDS,
    SHEET_APPS,
    SHEET_LISTS,
    SHEET_PEOPLE,
    SHEET_PRAXIS,
    THIRD_PARTY_HELP,
    THIRD_PARTY_PARTS,
    THIRD_PARTY_ROLES,
)

PEOPLE_ROWS = 500  # rows below the help row that get dropdowns
_BOLD = Font(bold=True)
_HELP = Font(italic=True, color="666666")
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_WRAP = Alignment(wrap_text=True, vertical="top")

LISTS: dict[str, list[str]] = {
    "KV": [r.short for r in REGIONS],
    "Praxisart": [t.label for t in PracticeType],
    "Rolle": [r.label for r in Role],
    "Arbeitsbereiche": [a.label for a in WorkArea],
    "Fachrichtungen": [s.label for s in SPECIALTIES],
    "ja/nein": ["ja", "nein"],
    "Paket": ["Basis", "Premium"],
}


def _list_ranges(ws: Worksheet) -> dict[str, str]:
    ranges: dict[str, str] = {}
    for col, (name, values) in enumerate(LISTS.items(), start=1):
        letter = get_column_letter(col)
        ws.cell(1, col, name).font = _BOLD
        for row, value in enumerate(values, start=2):
            ws.cell(row, col, value)
        ranges[name] = f"{SHEET_LISTS}!${letter}$2:${letter}${len(values) + 1}"
        ws.column_dimensions[letter].width = 32
    return ranges


def _dropdown(ws: Worksheet, source: str, cells: str, *, strict: bool = True,
              prompt: str | None = None) -> None:
    """A list dropdown. ``strict=False`` also allows typed values (multi-value cells)."""
    dv = DataValidation(type="list", formula1=f"={source}", allow_blank=True)
    dv.showErrorMessage = strict
    if strict:
        dv.errorTitle = "Ungültiger Wert"
        dv.error = "Bitte einen Wert aus der Liste wählen."
    if prompt:
        dv.promptTitle = "Hinweis"
        dv.prompt = prompt
        dv.showInputMessage = True
    ws.add_data_validation(dv)
    dv.add(cells)


def new_template() -> Workbook:
    """The empty Starter Excel as an openpyxl workbook."""
    wb = Workbook()
    praxis = wb.active
    assert praxis is not None
    praxis.title = SHEET_PRAXIS
    people = wb.create_sheet(SHEET_PEOPLE)
    apps = wb.create_sheet(SHEET_APPS)
    lists = wb.create_sheet(SHEET_LISTS)
    ranges = _list_ranges(lists)
    lists.sheet_state = "hidden"

    _fill_praxis(praxis, ranges)
    _fill_people(people, ranges)
    _fill_apps(apps, ranges)
    return wb


def _fill_praxis(praxis: Worksheet, ranges: dict[str, str]) -> None:
    """Praxis: label | value | help."""
    for row, f in enumerate(PRAXIS_FIELDS, start=1):
        praxis.cell(row, 1, f.label + ("*" if f.required else "")).font = _BOLD
        praxis.cell(row, 3, f.help).font = _HELP
        praxis.cell(row, 2).number_format = "@"  # text: keeps a BSNR's leading 0
        cell = f"B{row}"
        if f.key == "form_version":
            praxis.cell(row, 2, FORM_VERSION)
            praxis.cell(row, 2).number_format = "General"
        elif f.key == "practice_type":
            _dropdown(praxis, ranges["Praxisart"], cell)
        elif f.key == "kv":
            _dropdown(praxis, ranges["KV"], cell)
        elif f.key == "package":
            praxis.cell(row, 2, "Basis")
            _dropdown(praxis, ranges["Paket"], cell)
        elif f.key == "specialties":
            _dropdown(praxis, ranges["Fachrichtungen"], cell, strict=False,
                      prompt="Mehrere durch Komma trennen")
    praxis.column_dimensions["A"].width = 22
    praxis.column_dimensions["B"].width = 48
    praxis.column_dimensions["C"].width = 90


def _fill_people(people: Worksheet, ranges: dict[str, str]) -> None:
    """Mitarbeitende: header row 1, help row 2, one person per row from row 3."""
    last = 2 + PEOPLE_ROWS
    for col, f in enumerate(PEOPLE_FIELDS, start=1):
        letter = get_column_letter(col)
        header = people.cell(1, col, f.label + ("*" if f.required else ""))
        header.font = _BOLD
        header.fill = _HEADER_FILL
        help_cell = people.cell(2, col, f.help)
        help_cell.font = _HELP
        help_cell.alignment = _WRAP
        people.column_dimensions[letter].width = 24
        cells = f"{letter}3:{letter}{last}"
        if f.key == "role":
            _dropdown(people, ranges["Rolle"], cells)
        elif f.key == "work_areas":
            _dropdown(people, ranges["Arbeitsbereiche"], cells, strict=False,
                      prompt="Mehrere durch Komma trennen")
        elif f.key == "admin":
            _dropdown(people, ranges["ja/nein"], cells)
        elif f.key == "specialty":
            _dropdown(people, ranges["Fachrichtungen"], cells)
        elif f.key == "lanr":
            people.column_dimensions[letter].number_format = "@"
    people.freeze_panes = "A3"


def _fill_apps(apps: Worksheet, ranges: dict[str, str]) -> None:
    """Apps: label | value | help."""
    row = 0
    for row, f in enumerate(APPS_FIELDS, start=1):
        apps.cell(row, 1, f.label).font = _BOLD
        apps.cell(row, 2, "ja")
        apps.cell(row, 3, f.help).font = _HELP
        _dropdown(apps, ranges["ja/nein"], f"B{row}")
    for part, label in (*THIRD_PARTY_PARTS, THIRD_PARTY_ROLES):
        row += 1
        apps.cell(row, 1, f"Drittsystem {label}").font = _BOLD
        apps.cell(row, 3, THIRD_PARTY_HELP[part]).font = _HELP
    apps.column_dimensions["A"].width = 28
    apps.column_dimensions["B"].width = 48
    apps.column_dimensions["C"].width = 80


def write_template(path: Path) -> None:
    """Write the empty Starter Excel to ``path`` (.xlsx)."""
    new_template().save(path)
