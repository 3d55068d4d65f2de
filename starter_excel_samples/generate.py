"""Generate the sample Starter Excel files in this folder.

Run from the repository root:  python starter_excel_samples/generate.py

Each sample starts from the product's own template (``starter template``) and is filled in
the way a practice would, so the samples also prove that a filled-in template passes
``starter check``. All people, addresses and numbers are fictional; the LANRs carry valid
check digits computed with the KBV rule, and every domain is under ``.example``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from smartpraxx_provision.domain.catalog import match_key
from smartpraxx_provision.domain.lanr import lanr_check_digit
from smartpraxx_provision.starter.schema import (
    PEOPLE_FIELDS,
    SHEET_APPS,
    SHEET_PEOPLE,
    SHEET_PRAXIS,
)
from smartpraxx_provision.starter.template import new_template

HERE = Path(__file__).resolve().parent
FIXED_TIME = dt.datetime(2026, 1, 15, 9, 0, 0)


def lanr(person_id: int, fachgruppe: str) -> str:
    """A fictional LANR with a valid check digit (``fachgruppe`` = digits 8–9)."""
    first = f"{person_id:06d}"
    return f"{first}{lanr_check_digit(first)}{fachgruppe}"


def set_value(wb: Workbook, sheet: str, label: str, value: Any) -> None:
    """Write ``value`` into column B of the row labelled ``label`` (adds the row if absent)."""
    ws = wb[sheet]
    for row in range(1, ws.max_row + 1):
        cell = ws.cell(row, 1).value
        if cell is not None and match_key(str(cell)) == match_key(label):
            ws.cell(row, 2, value)
            return
    row = ws.max_row + 1
    ws.cell(row, 1, label)
    ws.cell(row, 2, value)


def add_people(wb: Workbook, people: Sequence[dict[str, Any]], first_row: int = 3) -> None:
    ws = wb[SHEET_PEOPLE]
    columns = {f.key: col for col, f in enumerate(PEOPLE_FIELDS, start=1)}
    for offset, person in enumerate(people):
        for key, value in person.items():
            ws.cell(first_row + offset, columns[key], value)


def person(first: str, last: str, role: str, domain: str, **extra: Any) -> dict[str, Any]:
    local = f"{first}.{last}".lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), (" ", "-")):
        local = local.replace(a, b)
    return {"first_name": first, "last_name": last, "email": f"{local}@{domain}",
            "role": role, **extra}


def save(wb: Workbook, name: str) -> Path:
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "smartpraxx-provision samples"
    path = HERE / name
    wb.save(path)
    return path


# --- GP practice ------------------------------------------------------------------------


def hausarztpraxis() -> Workbook:
    wb = new_template()
    for label, value in (
        ("Praxisname", "praxis-mueller"),
        ("Anzeigename", "Hausarztpraxis Dr. Müller & Kollegen"),
        ("Praxisart", "Arztpraxis"),
        ("BSNR", "511234500"),
        ("KV", "Kassenärztliche Vereinigung Rheinland-Pfalz"),
        ("Fachrichtungen", "Allgemeinmedizin, Innere Medizin"),
        ("Bestellnummer", "SPX-2026-000123"),
        ("Kontakt E-Mail", "praxis@praxis-mueller.example"),
    ):
        set_value(wb, SHEET_PRAXIS, label, value)
    d = "praxis-mueller.example"
    add_people(wb, [
        person("Anna", "Müller", "Praxisinhaber:in", d, lanr=lanr(100234, "01"),
               work_areas="Abrechnung"),
        person("Jörg", "Weiß", "Praxisinhaber:in", d, lanr=lanr(100517, "03"),
               specialty="Innere Medizin"),
        person("Leonie", "Schäfer", "Ärzt:in", d, lanr=lanr(101328, "01"), admin="nein"),
        person("Tobias", "Krämer", "Weiterbildungsassistent:in", d),
        person("Sabine", "Hoffmann", "MFA", d, work_areas="Empfang, Abrechnung, QM",
               admin="ja"),
        person("Mehmet", "Yılmaz", "MFA", d, work_areas="Labor; Hygiene",
               username="mehmet.yilmaz"),
        person("Katrin", "Böhm", "MFA", d, work_areas="Empfang\nDatenschutz/IT"),
        person("Finn", "Schulze", "Auszubildende:r", d, work_areas="Empfang"),
    ])
    set_value(wb, SHEET_APPS, "Drittsystem Name", "Dienstplanung")
    set_value(wb, SHEET_APPS, "Drittsystem URL", "https://dienstplan.example.de")
    set_value(wb, SHEET_APPS, "Drittsystem Redirect-URI",
              "https://dienstplan.example.de/oidc/callback")
    return wb


# --- dental practice --------------------------------------------------------------------


def zahnarztpraxis() -> Workbook:
    wb = new_template()
    for label, value in (
        ("Praxisname", "zahnarzt-sonnenschein"),
        ("Anzeigename", "Zahnarztpraxis Sonnenschein – Dr. Özdemir"),
        ("Praxisart", "Zahnarztpraxis"),
        ("KV", "Kassenzahnärztliche Vereinigung Bayerns"),
        ("Fachrichtungen", "Zahnmedizin; Kieferorthopädie"),
        ("Bestellnummer", 4711002),  # typed as a number
        ("Kontakt E-Mail", "info@zahnarzt-sonnenschein.example"),
        ("Paket", "Premium"),
    ):
        set_value(wb, SHEET_PRAXIS, label, value)
    d = "zahnarzt-sonnenschein.example"
    add_people(wb, [
        person("Aylin", "Özdemir", "Praxisinhaber:in", d),
        person("Maximilian", "Gruber", "Zahnärzt:in", d, specialty="kieferorthopaedie"),
        person("Lena", "Huber", "ZFA", d, work_areas="Empfang, Abrechnung"),
        person("Sophie", "Wagner", "ZFA", d, work_areas="Assistenz, Röntgen"),
        person("Julia", "Bauer", "ZFA", d, work_areas="Assistenz, Hygiene"),
        person("Marie", "Fischer", "ZMP", d, work_areas="Prophylaxe"),
        person("Elena", "Wolf", "DH", d, work_areas="Prophylaxe, QM"),
        person("Andrea", "Schneider", "ZMV", d, work_areas="Abrechnung, Verwaltung",
               admin="x"),
        person("Noah", "Maier", "Auszubildende:r", d),
    ])
    set_value(wb, SHEET_APPS, "Umfragen", "nein")
    return wb


# --- MVZ with 60+ people ----------------------------------------------------------------

FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas",
         "Klara", "Lukas", "Mia", "Niklas", "Olga", "Paul", "Rosa", "Simon", "Tara", "Uwe",
         "Vera", "Wilhelm", "Yasemin", "Zoe", "Ömer", "Jürgen", "Björn", "Chantal"]
LAST = ["Becker", "Schmitz", "Koch", "Richter", "Klein", "Neumann", "Schwarz", "Zimmermann",
        "Braun", "Hofmann", "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler",
        "Walter", "König", "Mayer", "Kaiser", "Fuchs", "Peters", "Jung", "Scholz", "Möller",
        "Weber", "Schröder", "Keller", "Günther", "Frank"]


def _names() -> Iterator[tuple[str, str]]:
    # deterministic distinct pairs, different from the plain product
    for i in itertools.count():
        yield FIRST[i % len(FIRST)], LAST[(i * 7 + i // len(FIRST)) % len(LAST)]


def mvz() -> Workbook:
    wb = new_template()
    for label, value in (
        ("Praxisname", "mvz-rheinaue"),
        ("Anzeigename", "MVZ Rheinaue – Medizinisches Versorgungszentrum"),
        ("Praxisart", "MVZ"),
        ("BSNR", 381234500),  # typed as a number
        ("KV", "KVNO"),
        ("Fachrichtungen",
         "Allgemeinmedizin\nInnere Medizin\nKardiologie\nGastroenterologie\nUrologie\n"
         "Radiologie\nPsychotherapie"),
        ("Bestellnummer", "SPX-2026-000777"),
        ("Kontakt E-Mail", "verwaltung@mvz-rheinaue.example"),
        ("Paket", "Premium"),
    ):
        set_value(wb, SHEET_PRAXIS, label, value)
    d = "mvz-rheinaue.example"
    names = _names()
    specialties = [("allgemeinmedizin", "01"), ("innere-medizin", "23"), ("kardiologie", "28"),
                   ("gastroenterologie", "26"), ("urologie", "67"), ("radiologie", "62")]
    people: list[dict[str, Any]] = []
    doctor_id = 230800
    for i in range(3):
        doctor_id += 17
        slug, fg = specialties[i]
        people.append(person(*next(names), "Praxisinhaber:in", d, lanr=lanr(doctor_id, fg),
                             specialty=slug))
    for i in range(14):
        doctor_id += 17
        slug, fg = specialties[i % len(specialties)]
        number: Any = lanr(doctor_id, fg)
        if i in (1, 5, 9):
            # internists who also bill as cardiologists: two LANRs, same digits 1–7
            number = f"{lanr(doctor_id, '23')}, {lanr(doctor_id, '28')}"
        elif i in (2, 3):
            number = int(number)  # typed as a number: Excel stores 9 digits fine
        people.append(person(*next(names), "Ärzt:in", d, lanr=number, specialty=slug))
    for _ in range(2):
        doctor_id += 17
        people.append(person(*next(names), "Psychotherapeut:in", d, lanr=lanr(doctor_id, "68"),
                             specialty="psychotherapie"))
    for _ in range(3):
        people.append(person(*next(names), "Weiterbildungsassistent:in", d))
    areas = ["Empfang", "Abrechnung", "Labor", "Empfang, Hygiene", "Assistenz", "QM, Empfang",
             "Röntgen", "Labor, Hygiene"]
    for i in range(32):
        people.append(person(*next(names), "MFA", d, work_areas=areas[i % len(areas)]))
    people.append(person(*next(names), "Praxismanager:in", d, work_areas="Verwaltung, QM",
                         admin="ja"))
    people.append(person(*next(names), "Praxismanager:in", d,
                         work_areas="Datenschutz/IT, Verwaltung", admin="ja"))
    for _ in range(6):
        people.append(person(*next(names), "Auszubildende:r", d, work_areas="Ausbildung"))
    for _ in range(3):
        people.append(person(*next(names), "Sonstige", d, work_areas="Verwaltung"))
    add_people(wb, people)
    set_value(wb, SHEET_APPS, "Drittsystem Name", "Dienstplanung")
    set_value(wb, SHEET_APPS, "Drittsystem URL", "https://dienstplan.example.de")
    set_value(wb, SHEET_APPS, "Drittsystem Redirect-URI",
              "https://dienstplan.example.de/oidc/callback")
    set_value(wb, SHEET_APPS, "Drittsystem 2 Name", "Labor-Portal")
    set_value(wb, SHEET_APPS, "Drittsystem 2 URL", "https://labor.example.de")
    set_value(wb, SHEET_APPS, "Drittsystem 2 Redirect-URI", "https://labor.example.de/sso")
    return wb


# --- invalid: many error kinds ----------------------------------------------------------


def invalid() -> Workbook:
    wb = new_template()
    ws = wb[SHEET_PRAXIS]
    for label, value in (
        ("Formularversion", 2),
        ("Praxisname", "Praxis Müller"),
        ("Anzeigename", "Praxis Müller"),
        ("Praxisart", "Arztpraxis"),
        ("BSNR", "12345"),
        ("KV", "KV Atlantis"),
        ("Fachrichtungen", "Allgemeinmedizin, Zauberei"),
        ("Kontakt E-Mail", "praxis@"),
        ("Paket", "Gold"),
        ("Lieblingsfarbe", "blau"),
    ):
        set_value(wb, SHEET_PRAXIS, label, value)
    for row in range(1, ws.max_row + 1):  # drop the Bestellnummer row entirely
        if ws.cell(row, 1).value and str(ws.cell(row, 1).value).startswith("Bestellnummer"):
            ws.delete_rows(row)
            break
    d = "kaputt.example"
    people = wb[SHEET_PEOPLE]
    people.cell(1, len(PEOPLE_FIELDS) + 1, "Bemerkung")
    rows = [
        person("Hans", "Wurst", "Praxisinhaber:in", d, lanr="123456799"),  # wrong check digit
        person("Eva", "Probe", "Ärzt:in", d, lanr="999999900"),  # pseudo number
        person("Max", "Ohne", "Ärzt:in", d),  # LANR missing
        person("Ida", "Doppelt", "MFA", d, email="team@kaputt.example"),
        person("Udo", "Doppelt", "MFA", d, email="Team@Kaputt.example"),  # duplicate e-mail
        person("Karl", "Chef", "Chefarzt", d),  # unknown role
        person("Olaf", "Numbers", "Ärzt:in", d, lanr=int(lanr(12345, "01"))),  # leading 0 lost
        person("Lisa", "Bereich", "MFA", d, work_areas="Empfang, Kaffeeküche"),
        person("Tom", "Vielleicht", "MFA", d, admin="vielleicht"),
        person("Ute", "Login", "MFA", d, username="Ute Login"),
        person("Rolf", "Mail", "MFA", d, email="rolf.mail(at)kaputt.example"),
        {"first_name": "Nur", "role": "MFA"},  # partly filled row
        person("Sven", "Wissenschaft", "Ärzt:in", d, lanr="1,23457E+08"),
    ]
    add_people(wb, rows)
    row = 3 + len(rows)
    people.cell(row, 1, "=CONCATENATE(\"Fo\",\"rmel\")")  # formula without a cached value
    people.cell(row, 2, "Formel")
    people.cell(row, 3, "formel@kaputt.example")
    people.cell(row, 5, "MFA")
    set_value(wb, SHEET_APPS, "Talk", "vielleicht")
    set_value(wb, SHEET_APPS, "Drittsystem Name", "Dienstplanung")
    return wb


SAMPLES = {
    "hausarztpraxis-mueller.xlsx": hausarztpraxis,
    "zahnarztpraxis-sonnenschein.xlsx": zahnarztpraxis,
    "mvz-rheinaue.xlsx": mvz,
    "invalid-praxis-kaputt.xlsx": invalid,
}


def main(argv: list[str]) -> int:
    for name, build in SAMPLES.items():
        print(f"wrote {save(build(), name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
