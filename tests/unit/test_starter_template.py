"""The template: written by `starter template`, filled in like a customer would → passes."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from smartpraxx_provision.domain.catalog import REGIONS
from smartpraxx_provision.starter import read_starter_excel
from smartpraxx_provision.starter.schema import PEOPLE_FIELDS
from smartpraxx_provision.starter.template import write_template
from tests.unit._xlsx import lanr


def _fill(path: Path, values: dict[str, object], people: list[dict[str, object]]) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb["Praxis"]
    rows = {str(ws.cell(r, 1).value).rstrip("*"): r for r in range(1, ws.max_row + 1)}
    for label, value in values.items():
        ws.cell(rows[label], 2, value)
    people_ws = wb["Mitarbeitende"]
    columns = {f.key: i for i, f in enumerate(PEOPLE_FIELDS, start=1)}
    for offset, person in enumerate(people):
        for key, value in person.items():
            people_ws.cell(3 + offset, columns[key], value)
    wb.save(path)


def test_empty_template_reports_missing_values_not_a_help_person(tmp_path: Path) -> None:
    path = tmp_path / "leer.xlsx"
    write_template(path)
    result = read_starter_excel(path)
    wheres = [p.where for p in result.errors]
    assert "Mitarbeitende" in wheres  # "no person": the help row is not read as a person
    assert not any(w.startswith("Mitarbeitende!") for w in wheres)
    assert "Praxis!B2 (Praxisname)" in wheres
    assert not any("Formularversion" in w for w in wheres)  # prefilled
    assert not result.warnings


def test_filled_template_passes(tmp_path: Path) -> None:
    path = tmp_path / "starter.xlsx"
    write_template(path)
    _fill(path, {
        "Praxisname": "praxis-vorlage", "Anzeigename": "Praxis Vorlage",
        "Praxisart": "Psychotherapiepraxis", "BSNR": "721234500", "KV": "KV Berlin",
        "Fachrichtungen": "Psychologische Psychotherapie", "Bestellnummer": "SPX-9",
        "Kontakt E-Mail": "info@vorlage.example"},
        [{"first_name": "Pia", "last_name": "Psych", "email": "pia@vorlage.example",
          "role": "Psychotherapeut:in", "lanr": lanr(104405, "68"), "admin": "ja"},
         {"first_name": "Mo", "last_name": "Empfang", "email": "mo@vorlage.example",
          "role": "Sonstige", "work_areas": "Empfang, Verwaltung"}])
    result = read_starter_excel(path)
    assert result.ok, [p.format() for p in result.errors]
    assert not result.warnings
    spec = result.spec
    assert spec is not None
    assert [p.username for p in spec.persons] == ["pia.psych", "mo.empfang"]
    assert spec.kv == "KV Berlin" and spec.apps.app_ids() == ("spreed", "deck", "passwords",
                                                              "forms")


def test_template_has_dropdowns_help_row_and_version(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Praxis", "Mitarbeitende", "Apps", "Listen"]
    assert wb["Listen"].sheet_state == "hidden"
    praxis = wb["Praxis"]
    assert praxis["A1"].value == "Formularversion*" and praxis["B1"].value == 1
    people = wb["Mitarbeitende"]
    assert [c.value for c in people[1]] == [
        f.label + ("*" if f.required else "") for f in PEOPLE_FIELDS]
    assert all(c.value for c in people[2])  # help row
    def lists(ws: openpyxl.worksheet.worksheet.Worksheet) -> dict[str, str]:
        return {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    praxis_lists = lists(praxis)
    people_lists = lists(people)
    assert praxis_lists["B6"].startswith("=Listen!$A$")  # KV
    assert praxis_lists["B4"].startswith("=Listen!$B$")  # Praxisart
    assert set(people_lists) >= {"E3:E502", "F3:F502", "H3:H502", "I3:I502"}  # Rolle, ...
    kv_values = [c.value for c in wb["Listen"]["A"][1:] if c.value]
    assert kv_values == [r.short for r in REGIONS] and len(kv_values) == 34
    assert [c.value for c in wb["Listen"]["F"][1:] if c.value] == ["ja", "nein"]
