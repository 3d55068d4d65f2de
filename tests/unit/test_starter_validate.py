"""Data-driven Starter Excel cases: a real .xlsx written by the test → the expected report.

Each case lists every expected error and warning as (where, message fragment); the report
must contain exactly these (no more, no fewer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from openpyxl.styles import PatternFill

from smartpraxx_provision.domain.model import PracticeType, Role, WorkArea
from smartpraxx_provision.domain.seats import billable_seats
from tests.unit._xlsx import DROP, HEADER, PEOPLE, VALID_PRAXIS, build, check, lanr


@dataclass
class Case:
    id: str
    build: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)  # attribute -> expected value


def _merge(wb: Workbook) -> None:
    ws = wb["Mitarbeitende"]
    ws.append(["Carla", "Beck", "carla@test.example", None, "Empfang", None, None])
    ws["D4"] = "MFA"  # D3 is Ben's MFA; merge D3:D4
    ws["D3"] = "MFA"
    ws.merge_cells("D3:D4")


def _rename_sheets(wb: Workbook) -> None:
    wb["Praxis"].title = " praxis "
    ws = wb["Mitarbeitende"]
    ws.title = "tmp"  # openpyxl refuses a case-only rename
    ws.title = "MITARBEITENDE"


def _hide_row(wb: Workbook) -> None:
    wb["Mitarbeitende"].row_dimensions[3].hidden = True


def _formula_uncached(wb: Workbook) -> None:
    # openpyxl writes formulas without a cached result (it does not calculate)
    wb["Praxis"]["B8"] = "=\"SPX-\"&1"


def _empty_formatted_rows(wb: Workbook) -> None:
    ws = wb["Mitarbeitende"]
    fill = PatternFill("solid", fgColor="FFFF00")
    for row in range(4, 10_004):
        for col in range(1, 8):
            ws.cell(row, col).fill = fill


def _reordered_with_spaces(wb: Workbook) -> None:
    ws = wb["Mitarbeitende"]
    ws.delete_rows(1, ws.max_row)
    ws.append(["  admin ", "LANR", "rolle*", "E-MAIL:", "Nachname", " Vorname", "Notiz"])
    ws.append([None, lanr(100234), "Praxisinhaber*in", "anna@test.example", "Müller", "Anna", "x"])
    ws.append(["ja", None, "mfa", "ben@test.example", "Weiß", "Ben", None])


CASES = [
    Case("valid-minimal", spec={"praxisname": "praxis-test", "kv": "KV Rheinland-Pfalz",
                                "practice_type": PracticeType.ARZTPRAXIS, "bsnr": "511234500",
                                "specialties": ("allgemeinmedizin",)}),
    Case("missing-sheet-mitarbeitende", {"sheets": ("Praxis",)},
         errors=[("sheet Mitarbeitende", "sheet 'Mitarbeitende' is missing")]),
    Case("missing-sheet-praxis", {"sheets": ("Mitarbeitende",)},
         errors=[("sheet Praxis", "sheet 'Praxis' is missing")]),
    Case("sheet-names-case-insensitive", {"mutate": _rename_sheets}),
    Case("missing-required-label", {"praxis_update": {"Bestellnummer": DROP}},
         errors=[("Praxis (Bestellnummer)", "required label 'Bestellnummer' is missing")]),
    Case("labels-with-star-colon-case", {"praxis": {
        f"{k.upper()}*" if i % 2 else f" {k}: ": v
        for i, (k, v) in enumerate(VALID_PRAXIS.items())}}),
    Case("unknown-label-warns", {"praxis_update": {"Lieblingsfarbe": "blau"}},
         warnings=[("Praxis!A10", "unknown label 'Lieblingsfarbe'")]),
    Case("duplicate-label", {"mutate": lambda wb: wb["Praxis"].append(["Praxisname", "x-y"])},
         errors=[("Praxis!A10", "label 'Praxisname' appears twice")]),
    Case("form-version-as-text", {"praxis_update": {"Formularversion": "1"}}),
    Case("form-version-2", {"praxis_update": {"Formularversion": 2}},
         errors=[("Praxis!B1 (Formularversion)", "unsupported Formularversion")]),
    Case("praxisname-uppercase-umlaut", {"praxis_update": {"Praxisname": "Praxis Müller"}},
         errors=[("Praxis!B2 (Praxisname)", "only lowercase a-z")]),
    Case("praxisname-cyrillic-lookalike", {"praxis_update": {"Praxisname": "prаxis-test"}},
         errors=[("Praxis!B2 (Praxisname)", "U+0430 CYRILLIC SMALL LETTER A")]),
    Case("praxisname-fullwidth", {"praxis_update": {"Praxisname": "ｐraxis-test"}},
         errors=[("Praxis!B2 (Praxisname)", "FULLWIDTH LATIN SMALL LETTER P")]),
    Case("praxisname-reserved", {"praxis_update": {"Praxisname": "admin"}},
         errors=[("Praxis!B2 (Praxisname)", "reserved")]),
    Case("praxisname-double-dash", {"praxis_update": {"Praxisname": "praxis--x"}},
         errors=[("Praxis!B2 (Praxisname)", "'--'")]),
    Case("praxisname-digit-first", {"praxis_update": {"Praxisname": "1praxis"}},
         errors=[("Praxis!B2 (Praxisname)", "start with a letter")]),
    Case("praxisart-unknown", {"praxis_update": {"Praxisart": "Tierarztpraxis"}},
         errors=[("Praxis!B4 (Praxisart)", "unknown Praxisart")]),
    Case("bsnr-missing-arztpraxis", {"praxis_update": {"BSNR": DROP}},
         errors=[("Praxis (BSNR)", "BSNR is required for a Arztpraxis")]),
    Case("bsnr-number-leading-zero-lost",
         {"praxis_update": {"BSNR": 10123499, "KV": "KV Schleswig-Holstein"}},
         warnings=[("Praxis!B5 (BSNR)", "8-digit number; read with a leading 0")],
         spec={"bsnr": "010123499"}),
    Case("bsnr-as-float", {"praxis_update": {"BSNR": 511234500.0}}, spec={"bsnr": "511234500"}),
    Case("bsnr-bad-prefix", {"praxis_update": {"BSNR": "041234500"}},
         errors=[("Praxis!B5 (BSNR)", "digits 1–2 are not a KV code")]),
    Case("bsnr-district-code-other-kv", {"praxis_update": {"BSNR": "641234500"}},
         warnings=[("Praxis!B5 (BSNR)", "belongs to KV Bayern, but KV is KV Rheinland-Pfalz")]),
    Case("bsnr-district-code-same-kv", {"praxis_update": {"BSNR": "471234500"}}),
    Case("kv-long-form", {"praxis_update": {"KV": "Kassenärztliche Vereinigung Rheinland-Pfalz"}},
         spec={"kv": "KV Rheinland-Pfalz"}),
    Case("kv-abbreviation", {"praxis_update": {"KV": "kvrlp"}}, spec={"kv": "KV Rheinland-Pfalz"}),
    Case("kv-unknown", {"praxis_update": {"KV": "KV Atlantis"}},
         errors=[("Praxis!B6 (KV)", "unknown KV/KZV")]),
    Case("kzv-for-arztpraxis", {"praxis_update": {"KV": "KZV Rheinland-Pfalz"}},
         errors=[("Praxis!B6 (KV)", "belongs to a KV, not a KZV")]),
    Case("dental-without-bsnr-and-lanr", {
        "praxis_update": {"Praxisart": "Zahnarztpraxis", "BSNR": DROP,
                          "KV": "Kassenzahnärztliche Vereinigung Bayerns",
                          "Fachrichtungen": "Zahnmedizin"},
        "people": [["Zoe", "Zahn", "zoe@test.example", "Praxisinhaber:in", None, None, None],
                   ["Lea", "Fa", "lea@test.example", "ZFA", "Prophylaxe", None, None]]},
        spec={"kv": "KZV Bayern", "bsnr": None, "practice_type": PracticeType.ZAHNARZTPRAXIS}),
    Case("kv-for-zahnarztpraxis", {"praxis_update": {
        "Praxisart": "Zahnarztpraxis", "BSNR": DROP, "Fachrichtungen": "Zahnmedizin"},
        "people": [["Zoe", "Zahn", "zoe@test.example", "Praxisinhaber:in", None, None, None]]},
         errors=[("Praxis!B5 (KV)", "a Zahnarztpraxis belongs to a KZV")]),
    Case("specialties-labels-slugs-newlines",
         {"praxis_update": {"Fachrichtungen": "urologie\nInnere Medizin; HNO, Urologie"}},
         spec={"specialties": ("urologie", "innere-medizin", "hals-nasen-ohrenheilkunde")}),
    Case("specialty-unknown", {"praxis_update": {"Fachrichtungen": "Allgemeinmedizin, Zauberei"}},
         errors=[("Praxis!B7 (Fachrichtungen)", "unknown Fachrichtung 'Zauberei'")]),
    Case("order-id-number", {"praxis_update": {"Bestellnummer": 4711.0}},
         spec={"order_id": "4711"}),
    Case("contact-email-invalid", {"praxis_update": {"Kontakt E-Mail": "praxis@"}},
         errors=[("Praxis!B9 (Kontakt E-Mail)", "not a valid e-mail address")]),
    Case("package-unknown", {"praxis_update": {"Paket": "Gold"}},
         errors=[("Praxis!B10 (Paket)", "unknown Paket")]),
    # --- Mitarbeitende
    Case("headers-reordered-spaces-case", {"mutate": _reordered_with_spaces},
         warnings=[("Mitarbeitende!G1", "unknown column 'Notiz'")]),
    Case("missing-required-column", {"header": ["Vorname", "Nachname", "Rolle"],
                                     "people": [["Anna", "M", "Praxisinhaber:in"]]},
         errors=[("Mitarbeitende!1:1 (E-Mail)", "required column 'E-Mail' is missing"),
                 ("Mitarbeitende (LANR)", "LANR is required")]),
    Case("duplicate-email-case-insensitive", {"people": [
        *PEOPLE, ["Cem", "Kaya", "ANNA@Test.example", "MFA", None, None, None]]},
         errors=[("Mitarbeitende!C4 (E-Mail)", "already used in row 2")]),
    Case("invalid-email", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem at test.example", "MFA", None, None, None]]},
         errors=[("Mitarbeitende!C4 (E-Mail)", "not a valid e-mail address")]),
    Case("unknown-role", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem@test.example", "Chefarzt", None, None, None]]},
         errors=[("Mitarbeitende!D4 (Rolle)", "unknown Rolle")]),
    Case("gender-variants-of-roles", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaberin", None, lanr(100234), None],
        ["Ben", "W", "b@test.example", "Ärzt*in", None, lanr(100517), None],
        ["Cem", "K", "c@test.example", "Auszubildender", None, None, None]]},
         spec={"roles": [Role.PRAXISINHABER, Role.ARZT, Role.AZUBI]}),
    Case("unknown-work-area", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem@test.example", "MFA", "Empfang, Kaffeeküche", None, None]]},
         errors=[("Mitarbeitende!E4 (Arbeitsbereiche)", "unknown Arbeitsbereich 'Kaffeeküche'")]),
    Case("lanr-required-for-arzt", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem@test.example", "Ärzt:in", None, None, None]]},
         errors=[("Mitarbeitende!F4 (LANR)", "LANR is required for Ärzt:in")]),
    Case("lanr-wrong-check-digit", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem@test.example", "Ärzt:in", None, "123456799", None]]},
         errors=[("Mitarbeitende!F4 (LANR)", "wrong check digit")]),
    Case("lanr-pseudo-999999900", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem@test.example", "Ärzt:in", None, "999999900", None]]},
         errors=[("Mitarbeitende!F4 (LANR)", "pseudo LANR")]),
    Case("lanr-pseudo-555555", {"people": [
        *PEOPLE, ["Cem", "Kaya", "cem@test.example", "Ärzt:in", None, "555555501", None]]},
         errors=[("Mitarbeitende!F4 (LANR)", "ASV")]),
    Case("lanr-as-int-and-float", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, int(lanr(100234)), None],
        ["Ben", "W", "b@test.example", "Ärzt:in", None, float(lanr(100517)), None]]},
         spec={"lanrs": [(lanr(100234),), (lanr(100517),)]}),
    Case("lanr-8-digit-number-leading-zero", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, int(lanr(12345)), None]]},
         warnings=[("Mitarbeitende!F2 (LANR)", "8-digit number; read with a leading 0")],
         spec={"lanrs": [(lanr(12345),)]}),
    Case("lanr-scientific-text", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, "1.23457E+08", None]]},
         errors=[("Mitarbeitende!F2 (LANR)", "scientific")]),
    Case("lanr-decimal-number", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, 123456699.5, None]]},
         errors=[("Mitarbeitende!F2 (LANR)", "not a whole 9-digit number")]),
    Case("two-lanrs-one-doctor", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None,
         f"{lanr(100234, '23')}, {lanr(100234, '28')}", None]]},
         spec={"seats": 1, "lanrs": [(lanr(100234, "23"), lanr(100234, "28"))]}),
    Case("two-lanrs-two-doctors-in-one-cell", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None,
         f"{lanr(100234)}; {lanr(100517)}", None]]},
         errors=[("Mitarbeitende!F2 (LANR)", "belong to different doctors")]),
    Case("one-lanr-two-persons", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, lanr(100234, "01"), None],
        ["Bernd", "K", "b@test.example", "Ärzt:in", None, lanr(100234, "28"), None]]},
         errors=[("Mitarbeitende!F3 (LANR)", "rows 2 and 3 are two persons")]),
    Case("lanr-for-mfa-ignored", {"people": [
        *PEOPLE[:1], ["Ben", "W", "b@test.example", "MFA", None, lanr(100517), None]]},
         warnings=[("Mitarbeitende!F3 (LANR)", "is ignored")], spec={"lanrs": [
             (lanr(100234),), ()]}),
    Case("admin-values", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, lanr(100234), "nein"],
        ["Ben", "W", "b@test.example", "MFA", None, None, "x"],
        ["Cem", "K", "c@test.example", "MFA", None, None, True]]},
         spec={"admins": [False, True, True]}),
    Case("admin-invalid", {"people": [
        *PEOPLE, ["Cem", "K", "c@test.example", "MFA", None, None, "vielleicht"]]},
         errors=[("Mitarbeitende!G4 (Admin)", "Admin must be ja or nein")]),
    Case("no-admin", {"people": [["Ben", "W", "b@test.example", "MFA", None, None, "nein"]]},
         errors=[("Mitarbeitende (Admin)", "no administrator")]),
    Case("no-person", {"people": []}, errors=[("Mitarbeitende", "no person in the sheet")]),
    Case("partial-row", {"people": [*PEOPLE, ["Nur", None, None, None, None, None, None]]},
         errors=[("Mitarbeitende!B4 (Nachname)", "Nachname is empty"),
                 ("Mitarbeitende!C4 (E-Mail)", "E-Mail is empty"),
                 ("Mitarbeitende!D4 (Rolle)", "Rolle is empty")]),
    Case("names-as-numbers-and-umlauts", {"people": [
        *PEOPLE, [4711, "Ößür", "n@test.example", "MFA", None, None, None]]},
         spec={"usernames": ["anna.mueller", "ben.weiss", "4711.oessuer"]}),
    Case("usernames-unique-with-suffix", {
        "header": [*HEADER, "Benutzername"],
        "people": [[*PEOPLE[0], None], [*PEOPLE[1], "anna.mueller"],
                   ["Anna", "Müller", "a2@test.example", "MFA", None, None, None, None]]},
        spec={"usernames": ["anna.mueller2", "anna.mueller", "anna.mueller3"]}),
    Case("username-explicit-invalid-and-duplicate", {
        "header": [*HEADER, "Benutzername"],
        "people": [[*PEOPLE[0], "Anna M"], [*PEOPLE[1], "ben"],
                   ["Cem", "K", "c@test.example", "MFA", None, None, None, "ben"]]},
        errors=[("Mitarbeitende!H2 (Benutzername)", "invalid Benutzername"),
                ("Mitarbeitende!H4 (Benutzername)", "already used in row 3")]),
    Case("username-not-derivable", {"people": [
        *PEOPLE, ["李", "王", "li@test.example", "MFA", None, None, None]]},
         errors=[("Mitarbeitende (Benutzername)", "no username can be derived")]),
    Case("specialty-default-for-doctors", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", None, lanr(100234), None],
        ["Ben", "W", "b@test.example", "MFA", None, None, None]]},
         spec={"specialties_of_persons": ["allgemeinmedizin", None]}),
    Case("merged-cells-fill-down", {"mutate": _merge},
         warnings=[("Mitarbeitende!D3:D4", "merged cells D3:D4")],
         spec={"roles": [Role.PRAXISINHABER, Role.MFA, Role.MFA]}),
    Case("hidden-row-is-read-with-warning", {"mutate": _hide_row},
         warnings=[("Mitarbeitende!3:3", "row 3 is hidden")], spec={"persons": 2}),
    Case("formula-without-cached-value", {"mutate": _formula_uncached},
         errors=[("Praxis!B8", "formula without a saved result")]),
    Case("10000-empty-formatted-rows", {"mutate": _empty_formatted_rows}, spec={"persons": 2}),
    Case("work-areas-parsed", {"people": [
        ["Anna", "M", "a@test.example", "Praxisinhaber:in", "Röntgen;datenschutz/it\nQM, QM",
         lanr(100234), None]]},
         spec={"work_areas": [(WorkArea.ROENTGEN, WorkArea.DATENSCHUTZ_IT, WorkArea.QM)]}),
    # --- Apps
    Case("apps-defaults-and-choices", {"apps": {"Talk": "nein", "Umfragen": "ja"}},
         spec={"apps": ("deck", "passwords", "forms")}),
    Case("apps-yes-no-invalid", {"apps": {"Talk": "vielleicht"}},
         errors=[("Apps!B1 (Talk)", "Talk must be ja or nein")]),
    Case("third-party-complete", {"apps": {
        "Drittsystem Name": "Dienstplanung", "Drittsystem URL": "https://dp.example.de",
        "Drittsystem Redirect-URI": "https://dp.example.de/cb",
        "Drittsystem 2 Name": "Labor", "Drittsystem 2 URL": "https://lab.example.de",
        "Drittsystem 2 Redirect-URI": "https://lab.example.de/cb"}},
         spec={"third_party": ["app-dienstplanung", "app-labor"]}),
    Case("third-party-incomplete", {"apps": {"Drittsystem Name": "Dienstplanung"}},
         errors=[("Apps!B1 (Drittsystem)", "missing: 'Drittsystem URL'")]),
    Case("third-party-bad-url", {"apps": {
        "Drittsystem Name": "X", "Drittsystem URL": "dp.example.de",
        "Drittsystem Redirect-URI": "http://dp.example.de/cb"}},
         errors=[("Apps!B2 (Drittsystem URL)", "not an absolute https://")],
         warnings=[("Apps!B3 (Drittsystem Redirect-URI)", "unencrypted http://")]),
    Case("third-party-roles", {"apps": {
        "Drittsystem Name": "Dienstplanung", "Drittsystem URL": "https://dp.example.de",
        "Drittsystem Redirect-URI": "https://dp.example.de/cb",
        "Drittsystem Rollen": "MFA; Praxismanager:in, mfa"}},
         spec={"third_party_roles": [("mfa", "praxismanager")]}),
    Case("third-party-unknown-role", {"apps": {
        "Drittsystem Name": "Dienstplanung", "Drittsystem URL": "https://dp.example.de",
        "Drittsystem Redirect-URI": "https://dp.example.de/cb",
        "Drittsystem Rollen": "MFA, Chefarzt"}},
         errors=[("Apps!B4 (Drittsystem Rollen)", "unknown role 'Chefarzt'")]),
]


def _spec_facts(result: Any) -> dict[str, Any]:
    spec = result.spec
    return {
        "praxisname": spec.praxisname, "kv": spec.kv, "practice_type": spec.practice_type,
        "bsnr": spec.bsnr, "specialties": spec.specialties, "order_id": spec.order_id,
        "roles": [p.role for p in spec.persons], "persons": len(spec.persons),
        "lanrs": [p.lanrs for p in spec.persons], "admins": [p.admin for p in spec.persons],
        "usernames": [p.username for p in spec.persons], "seats": billable_seats(spec),
        "specialties_of_persons": [p.specialty for p in spec.persons],
        "third_party_roles": [a.roles for a in spec.third_party_apps],
        "work_areas": [p.work_areas for p in spec.persons], "apps": spec.apps.app_ids(),
        "third_party": [a.client_id for a in spec.third_party_apps],
    }


def _matches(problems: list[Any], expected: list[tuple[str, str]]) -> None:
    got = [f"{p.where}: {p.message}" for p in problems]
    assert len(got) == len(expected), got
    for where, fragment in expected:
        assert any(g.startswith(where) and fragment in g for g in got), (where, fragment, got)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, tmp_path: Path) -> None:
    result = check(build(tmp_path / f"{case.id}.xlsx", **case.build))
    _matches(result.errors, case.errors)
    _matches(result.warnings, case.warnings)
    assert result.ok is (not case.errors)
    if not case.errors:
        facts = _spec_facts(result)
        for key, value in case.spec.items():
            assert facts[key] == value, key


def test_every_problem_names_a_place_and_a_valid_form(tmp_path: Path) -> None:
    path = build(tmp_path / "many.xlsx", praxis_update={
        "Praxisname": "Praxis Müller", "KV": "?", "Kontakt E-Mail": "x"},
        people=[["Anna", "M", "bad", "Chefarzt", "Kaffee", "1", "vielleicht"]])
    result = check(path)
    assert len(result.errors) >= 7
    for problem in result.errors:
        assert problem.sheet is not None
        assert problem.cell or problem.label
        assert problem.hint


def test_praxisname_suggestion_in_hint(tmp_path: Path) -> None:
    result = check(build(tmp_path / "p.xlsx", praxis_update={"Praxisname": "Praxis Müller"}))
    (problem,) = result.errors
    assert problem.value == "Praxis Müller"
    assert problem.hint is not None and "'praxis-mueller'" in problem.hint


def test_staff_values_are_marked_personal(tmp_path: Path) -> None:
    result = check(build(tmp_path / "p.xlsx", people=[
        *PEOPLE, ["Cem", "Kaya", "cem at test", "Ärzt:in", None, "123456799", None]]))
    assert {p.label for p in result.errors} == {"E-Mail", "LANR"}
    for problem in result.errors:
        assert problem.personal
        assert "cem at test" not in problem.message and "123456799" not in problem.message
        assert problem.to_dict()["value"].startswith("(hidden")
        assert problem.to_dict(show_personal=True)["value"] in ("cem at test", "123456799")
