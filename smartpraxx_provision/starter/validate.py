"""Validate the cells of a Starter Excel into a ``PracticeSpec`` — every problem at once.

Each problem names the sheet and cell (or label), the offending value and what would be
valid (see /work/shared/STARTER_EXCEL.md). Values from the Mitarbeitende sheet are marked
personal; messages and hints never contain them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..domain.catalog import (
    REGIONS_BY_SHORT,
    Region,
    find_region,
    find_specialty,
    kv_for_bsnr,
    match_key,
    split_list,
)
from ..domain.lanr import bsnr_problem, lanr_person_key, lanr_problem
from ..domain.model import (
    AppChoice,
    Package,
    Person,
    PracticeSpec,
    PracticeType,
    Role,
    ThirdPartyApp,
    WorkArea,
)
from ..domain.names import (
    praxisname_problem,
    suggest_praxisname,
    unique_usernames,
    username_base,
    username_problem,
)
from .reader import SheetData, WorkbookData, cell_ref
from .report import ERROR, WARNING, Problem, StarterResult
from .schema import (
    APPS_FIELDS,
    FORM_VERSION,
    NO_WORDS,
    PEOPLE_FIELDS,
    PRAXIS_FIELDS,
    SHEET_APPS,
    SHEET_PEOPLE,
    SHEET_PRAXIS,
    THIRD_PARTY_PARTS,
    THIRD_PARTY_ROLES,
    YES_WORDS,
    Field,
    field_index,
)

WANTED_SHEETS = (SHEET_PRAXIS, SHEET_PEOPLE, SHEET_APPS)

_PRACTICE_TYPES: dict[str, PracticeType] = {
    **{match_key(t.label): t for t in PracticeType},
    match_key("Medizinisches Versorgungszentrum"): PracticeType.MVZ,
    match_key("Zahnarztpraxis-MVZ"): PracticeType.MVZ,
    match_key("Psychotherapeutische Praxis"): PracticeType.PSYCHOTHERAPIEPRAXIS,
}
_ROLES: dict[str, Role] = {
    **{match_key(role.label): role for role in Role},
    **{match_key(role.value): role for role in Role},
    **{match_key(alias): role for alias, role in (
        ("Praxisinhaber", Role.PRAXISINHABER), ("Inhaber:in", Role.PRAXISINHABER),
        ("Arzt", Role.ARZT), ("angestellte:r Ärzt:in", Role.ARZT),
        ("Angestellter Arzt", Role.ARZT), ("Angestellte Ärztin", Role.ARZT),
        ("Zahnarzt", Role.ZAHNARZT), ("Weiterbildungsassistent", Role.WEITERBILDUNGSASSISTENT),
        ("Psychotherapeut", Role.PSYCHOTHERAPEUT), ("Praxismanager", Role.PRAXISMANAGER),
        ("Auszubildende", Role.AZUBI), ("Azubi", Role.AZUBI),
    )},
}
_WORK_AREAS: dict[str, WorkArea] = {
    **{match_key(area.label): area for area in WorkArea},
    **{match_key(area.value): area for area in WorkArea},
    match_key("Datenschutz"): WorkArea.DATENSCHUTZ_IT,
    match_key("IT"): WorkArea.DATENSCHUTZ_IT,
}
_PACKAGES = {match_key(p.value): p for p in Package}
_DENTAL_ROLES = frozenset({Role.ZAHNARZT, Role.ZFA, Role.ZMF, Role.ZMP, Role.ZMV, Role.DH})
_MEDICAL_ROLES = frozenset({Role.ARZT, Role.MFA})
_LANR_REQUIRED = frozenset({Role.PRAXISINHABER, Role.ARZT})

_EMAIL_RE = re.compile(r"^[^@\s\"<>(),;:\[\]]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}$")
_THIRD_PARTY_RE = re.compile(r"^drittsystem(\d*)(name|url|redirecturi|rollen)$")
_SCIENTIFIC_RE = re.compile(r"^\d+(?:[.,]\d+)?[eE][+-]?\d+$")

ROLE_HINT = ", ".join(role.label for role in Role)
WORK_AREA_HINT = ", ".join(area.label for area in WorkArea)
KV_HINT = (
    "one of the 17 KV or 17 KZV names in long or short form, e.g. "
    "'Kassenärztliche Vereinigung Rheinland-Pfalz', 'KV Rheinland-Pfalz', 'KVRLP', 'KZV Bayern'"
)
SPECIALTY_HINT = (
    "specialty slugs or labels, e.g. 'allgemeinmedizin' or 'Allgemeinmedizin'; the full "
    "list is in sheet 'Listen' of `smartpraxx-provision starter template`"
)
YES_NO_HINT = "'ja', 'nein', 'x' or empty"


def as_text(value: Any) -> str:
    """A cell value as text: numbers without a spurious ``.0``, strings stripped."""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def email_problem(text: str) -> str | None:
    if len(text) > 254 or not _EMAIL_RE.match(text):
        return "not a valid e-mail address"
    local = text.split("@", 1)[0]
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "not a valid e-mail address"
    return None


def parse_yes_no(value: Any) -> bool | None:
    """True/False for ja/nein/x/empty (and Excel booleans); None if not understood."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    key = as_text(value).casefold()
    if key in YES_WORDS:
        return True
    if key in NO_WORDS or key == "":
        return False
    return None


@dataclass
class _Number:
    digits: str | None  # None when the value is unusable
    widened: bool = False  # a leading 0 was restored


def parse_number_id(value: Any, length: int) -> _Number:
    """A 9-digit number (LANR, BSNR) from a number or text cell.

    Excel stores numbers: a leading 0 is lost (8 digits → ``0`` + digits, flagged), and a
    float or scientific value is fine as long as it is a whole number. Text keeps what was
    typed (spaces removed); text in scientific notation has lost digits.
    """
    if isinstance(value, bool):
        return _Number(None)
    if isinstance(value, float):
        if not value.is_integer():
            return _Number(None)
        value = int(value)
    if isinstance(value, int):
        digits = str(value)
        if len(digits) == length - 1:
            return _Number("0" + digits, widened=True)
        return _Number(digits)
    text = re.sub(r"\s+", "", str(value))
    if _SCIENTIFIC_RE.match(text):
        return _Number(None)
    return _Number(text)


class _Validator:
    def __init__(self, wb: WorkbookData, source: str) -> None:
        self.wb = wb
        self.result = StarterResult(source=source)
        # cells the reader already reported (formula without result, #REF!): no 2nd error
        self.bad_cells = {(s.title, p.cell) for s in wb.sheets.values() for p in s.problems
                          if p.severity == ERROR}

    # --- problems -------------------------------------------------------------------
    def problem(self, severity: str, message: str, *, sheet: str | None, cell: str | None = None,
                label: str | None = None, value: Any = None, hint: str | None = None,
                personal: bool = False) -> None:
        shown = None if value is None else as_text(value) if not isinstance(value, str) else value
        self.result.add(Problem(severity, message, sheet=sheet, cell=cell, label=label,
                                value=shown, hint=hint, personal=personal))

    def error(self, message: str, **kw: Any) -> None:
        if (kw.get("sheet"), kw.get("cell")) not in self.bad_cells:
            self.problem(ERROR, message, **kw)

    def warn(self, message: str, **kw: Any) -> None:
        self.problem(WARNING, message, **kw)

    # --- key/value sheets -------------------------------------------------------------
    def key_values(self, sheet: SheetData, fields: tuple[Field, ...],
                   extra: re.Pattern[str] | None = None) -> dict[str, tuple[Any, int, str]]:
        """Rows ``label | value`` → {field key: (value, row, label as written)}."""
        index = field_index(fields)
        out: dict[str, tuple[Any, int, str]] = {}
        for row, cells in sheet.rows().items():
            label_raw, value = cells.get(1), cells.get(2)
            if label_raw is None:
                if value is not None:
                    self.warn("value without a label in column A; ignored", sheet=sheet.title,
                              cell=cell_ref(row, 2), value=value)
                continue
            label = as_text(label_raw)
            key = match_key(label)
            f = index.get(key)
            name = f.key if f else (key if extra is not None and extra.match(key) else None)
            if name is None:
                self.warn(f"unknown label {label!r}; row ignored", sheet=sheet.title,
                          cell=cell_ref(row, 1),
                          hint="labels: " + ", ".join(x.label for x in fields))
                continue
            if name in out:
                self.error(f"label {label!r} appears twice (also row {out[name][1]})",
                           sheet=sheet.title, cell=cell_ref(row, 1),
                           hint="keep one row per label")
                continue
            out[name] = (value, row, f.label if f else label)
        return out

    def required(self, sheet: str, kv: dict[str, tuple[Any, int, str]], f: Field) -> Any:
        """The value of a required field, or None after reporting it missing."""
        if f.key not in kv:
            self.error(f"required label {f.label!r} is missing", sheet=sheet, label=f.label,
                       hint=f"add a row '{f.label}' in column A with the value in column B: "
                       f"{f.help}")
            return None
        value, row, _ = kv[f.key]
        if value is None:
            self.error(f"{f.label} is empty", sheet=sheet, cell=cell_ref(row, 2), label=f.label,
                       hint=f.help)
        return value

    # --- Praxis ---------------------------------------------------------------------
    def praxis(self) -> dict[str, Any] | None:
        sheet = self.wb.sheets.get(SHEET_PRAXIS)
        if sheet is None:
            return None
        self.result.errors.extend(p for p in sheet.problems if p.severity == ERROR)
        self.result.warnings.extend(p for p in sheet.problems if p.severity == WARNING)
        kv = self.key_values(sheet, PRAXIS_FIELDS)
        fields = {f.key: f for f in PRAXIS_FIELDS}
        out: dict[str, Any] = {}
        name = SHEET_PRAXIS

        def at(key: str) -> dict[str, Any]:
            f = fields[key]
            return {"sheet": name, "cell": cell_ref(kv[key][1], 2) if key in kv else None,
                    "label": f.label}

        checks: tuple[tuple[str, Callable[[Any, dict[str, Any]], object]], ...] = (
            ("form_version", self.form_version),
            ("praxisname", self.praxisname),
            ("display_name", self.display_name),
        )
        for key, check in checks:  # each value is kept when it is valid
            raw = self.required(name, kv, fields[key])
            if raw is not None and (value := check(raw, at(key))) is not None:
                out[key] = value

        practice_type: PracticeType | None = None
        raw = self.required(name, kv, fields["practice_type"])
        if raw is not None:
            practice_type = _PRACTICE_TYPES.get(match_key(as_text(raw)))
            if practice_type is None:
                self.error("unknown Praxisart", value=raw, **at("practice_type"),
                           hint=", ".join(t.label for t in PracticeType))
            out["practice_type"] = practice_type

        region: Region | None = None
        raw = self.required(name, kv, fields["kv"])
        if raw is not None:
            region = self.region(raw, practice_type, at("kv"))
            if region is not None:
                out["kv"] = region.short

        self.bsnr(kv, practice_type, region, out, at("bsnr"))

        kept: tuple[tuple[str, Callable[[Any, dict[str, Any]], object]], ...] = (
            ("specialties", self.specialties),
            ("order_id", self.order_id),
            ("contact_email", self.contact_email),
        )
        for key, check in kept:  # each value is kept, also after an error
            raw = self.required(name, kv, fields[key])
            if raw is not None:
                out[key] = check(raw, at(key))

        out["package"] = self.package(kv.get("package", (None, 0, ""))[0], at("package"))
        return out

    def order_id(self, raw: Any, where: dict[str, Any]) -> str:
        text = as_text(raw)
        if len(text) > 100:
            self.error("Bestellnummer is longer than 100 characters", value=raw,
                       hint="the order id from the shop", **where)
        return text

    def contact_email(self, raw: Any, where: dict[str, Any]) -> str:
        problem = email_problem(as_text(raw))
        if problem:
            self.error(problem, value=raw, hint="an address like name@praxis.de", **where)
        return as_text(raw)

    def form_version(self, raw: Any, where: dict[str, Any]) -> int | None:
        if as_text(raw) != str(FORM_VERSION):
            self.error("unsupported Formularversion", value=raw, **where,
                       hint=f"{FORM_VERSION} (this tool reads format version "
                       f"{FORM_VERSION}; `starter template` writes a current form)")
            return None
        return FORM_VERSION

    def display_name(self, raw: Any, where: dict[str, Any]) -> str | None:
        text = as_text(raw)
        if not 1 <= len(text) <= 120:
            self.error("Anzeigename must have 1–120 characters", value=raw,
                       hint="a shorter display name", **where)
            return None
        return text

    def package(self, raw: Any, where: dict[str, Any]) -> Package:
        """The ordered package; empty (or unknown, after an error) = Basis."""
        if raw is None:
            return Package.BASIS
        package = _PACKAGES.get(match_key(as_text(raw)))
        if package is None:
            self.error("unknown Paket", value=raw, hint="'Basis' or 'Premium' (empty = Basis)",
                       **where)
            return Package.BASIS
        return package

    def praxisname(self, raw: Any, where: dict[str, Any]) -> str | None:
        """The praxisname, or None after an error (with a suggestion when there is one)."""
        text = as_text(raw)
        problem = praxisname_problem(text)
        if not problem:
            return text
        suggestion = suggest_praxisname(text)
        hint = "3–40 characters a-z, 0-9 and '-', starting with a letter, no '--', " \
            "not reserved; the name is binding and never changed silently"
        if suggestion and suggestion != text:
            hint = f"e.g. {suggestion!r} ({hint})"
        self.error(f"invalid praxisname: {problem}", value=raw, hint=hint, **where)
        return None

    def region(self, raw: Any, practice_type: PracticeType | None,
               where: dict[str, Any]) -> Region | None:
        """The KV/KZV, or None after an error (unknown, or not the practice type's kind)."""
        region = find_region(as_text(raw))
        if region is None:
            self.error("unknown KV/KZV", value=raw, hint=KV_HINT, **where)
        elif practice_type is PracticeType.ZAHNARZTPRAXIS and not region.dental:
            self.error("a Zahnarztpraxis belongs to a KZV, not a KV", value=raw,
                       hint=f"'KZV {region.land}'", **where)
            return None
        elif practice_type in (PracticeType.ARZTPRAXIS, PracticeType.PSYCHOTHERAPIEPRAXIS) \
                and region.dental:
            self.error(f"a {practice_type.label} belongs to a KV, not a KZV", value=raw,
                       hint=f"'KV {region.land}'", **where)
            return None
        return region

    def specialties(self, raw: Any, where: dict[str, Any]) -> tuple[str, ...]:
        """The known specialties' slugs (each once); an error for each unknown one."""
        slugs: list[str] = []
        for part in split_list(as_text(raw)):
            spec = find_specialty(part)
            if spec is None:
                self.error(f"unknown Fachrichtung {part!r}", value=raw, hint=SPECIALTY_HINT,
                           **where)
            elif spec.slug not in slugs:
                slugs.append(spec.slug)
        if not slugs and not split_list(as_text(raw)):
            self.error("Fachrichtungen is empty", hint=SPECIALTY_HINT, **where)
        return tuple(slugs)

    def bsnr(self, kv: dict[str, tuple[Any, int, str]], practice_type: PracticeType | None,
             region: Region | None, out: dict[str, Any], where: dict[str, Any]) -> None:
        raw = kv.get("bsnr", (None, 0, ""))[0]
        out["bsnr"] = None
        if raw is None:
            if practice_type is not None and not practice_type.is_dental:
                self.error(f"BSNR is required for a {practice_type.label}",
                           hint="the 9-digit Betriebsstättennummer", **where)
            return
        number = parse_number_id(raw, 9)
        problem = "not a whole number" if number.digits is None else bsnr_problem(number.digits)
        if number.digits is None or problem:
            self.error(f"invalid BSNR: {problem}", value=raw, **where,
                       hint="9 digits, the first two a KV code; format the cell as text so "
                       "Excel keeps a leading 0")
            return
        if number.widened:
            self.warn("BSNR was stored as an 8-digit number; read with a leading 0", value=raw,
                      hint="format the cell as text and type all 9 digits", **where)
        bsnr = number.digits
        out["bsnr"] = bsnr
        bsnr_kv = kv_for_bsnr(bsnr)
        if region is not None and bsnr_kv is not None and \
                REGIONS_BY_SHORT[bsnr_kv].land != region.land:
            self.warn(f"BSNR prefix {bsnr[:2]} belongs to {bsnr_kv}, but KV is {region.short}",
                      value=bsnr, hint="check the BSNR and the KV", **where)

    # --- Mitarbeitende --------------------------------------------------------------
    def people(self, praxis: dict[str, Any]) -> list[Person] | None:
        sheet = self.wb.sheets.get(SHEET_PEOPLE)
        if sheet is None:
            return None
        self.result.errors.extend(p for p in sheet.problems if p.severity == ERROR)
        self.result.warnings.extend(p for p in sheet.problems if p.severity == WARNING)
        title = sheet.title
        rows = sheet.rows()
        if not rows:
            self.error("the sheet is empty: no header row and no persons", sheet=title,
                       hint="row 1: " + ", ".join(f.label for f in PEOPLE_FIELDS))
            return None
        header_row = min(rows)
        index = field_index(PEOPLE_FIELDS)
        columns: dict[str, int] = {}
        for col, raw in sorted(rows[header_row].items()):
            f = index.get(match_key(as_text(raw)))
            if f is None:
                self.warn(f"unknown column {as_text(raw)!r}; ignored", sheet=title,
                          cell=cell_ref(header_row, col),
                          hint="columns: " + ", ".join(x.label for x in PEOPLE_FIELDS))
            elif f.key in columns:
                self.error(f"column {f.label!r} appears twice (also column "
                           f"{cell_ref(header_row, columns[f.key])[:-len(str(header_row))]})",
                           sheet=title, cell=cell_ref(header_row, col),
                           hint="keep one column per header")
            else:
                columns[f.key] = col
        missing = [f for f in PEOPLE_FIELDS if f.required and f.key not in columns]
        for f in missing:
            self.error(f"required column {f.label!r} is missing", sheet=title,
                       cell=f"{header_row}:{header_row}", label=f.label,
                       hint=f"a header cell '{f.label}' in row {header_row}")
        fields = {f.key: f for f in PEOPLE_FIELDS}
        help_keys = {f.key: match_key(f.help) for f in PEOPLE_FIELDS}

        persons: list[dict[str, Any]] = []
        for row in sorted(r for r in rows if r > header_row):
            values = {key: rows[row].get(col) for key, col in columns.items()}
            filled = {k: v for k, v in values.items() if v is not None}
            if not filled:
                continue
            if all(match_key(as_text(v)) == help_keys[k] for k, v in filled.items()):
                continue  # the template's help row
            person = self.person(title, row, values, columns, fields, praxis)
            if person is not None:
                persons.append(person)
        if not persons and not missing:
            self.error("no person in the sheet", sheet=title,
                       hint=f"one row per person below the header row {header_row}")
        return self.people_checks(title, persons, columns, praxis)

    def person(self, title: str, row: int, values: dict[str, Any], columns: dict[str, int],
               fields: dict[str, Field], praxis: dict[str, Any]) -> dict[str, Any] | None:
        errors_before = len(self.result.errors)

        def at(key: str) -> dict[str, Any]:
            col = columns.get(key)
            return {"sheet": title, "cell": cell_ref(row, col) if col else None,
                    "label": fields[key].label}

        out: dict[str, Any] = {"row": row}
        for key in ("first_name", "last_name"):
            raw = values.get(key)
            text = "" if raw is None else as_text(raw)
            if key in columns and not text:
                self.error(f"{fields[key].label} is empty", hint="the person's name", **at(key))
            elif key in columns and len(text) > 60:
                self.error(f"{fields[key].label} is longer than 60 characters", value=raw,
                           personal=True, hint="at most 60 characters", **at(key))
            out[key] = text

        raw = values.get("email")
        out["email"] = as_text(raw) if raw is not None else ""
        if "email" in columns:
            problem = "E-Mail is empty" if raw is None else email_problem(out["email"])
            if problem:
                self.error(problem, value=raw, personal=True,
                           hint="a work address like name@praxis.de", **at("email"))

        raw = values.get("role")
        role: Role | None = None
        if "role" in columns:
            role = _ROLES.get(match_key(as_text(raw))) if raw is not None else None
            if role is None:
                self.error("Rolle is empty" if raw is None else "unknown Rolle", value=raw,
                           hint=ROLE_HINT, **at("role"))
        out["role"] = role

        out["work_areas"] = self.work_areas(values.get("work_areas"), at("work_areas"))
        out["lanrs"] = self.lanrs(values.get("lanr"), role, praxis, at("lanr"))
        out["specialty"] = self.person_specialty(values.get("specialty"), role, praxis,
                                                 at("specialty"))

        raw = values.get("admin")
        admin = parse_yes_no(raw)
        if admin is None:
            self.error("Admin must be ja or nein", value=raw, hint=YES_NO_HINT, **at("admin"))
        if raw is None and role is Role.PRAXISINHABER:
            admin = True
        out["admin"] = bool(admin)

        out["username"] = self.username(values.get("username"), at("username"))
        out["username_at"] = at("username")
        out["email_at"] = at("email")
        out["lanr_at"] = at("lanr")

        practice_type: PracticeType | None = praxis.get("practice_type")
        if role is not None and practice_type is not None:
            self.role_fit(role, practice_type, at("role"))
        return out if len(self.result.errors) == errors_before else {**out, "invalid": True}

    def work_areas(self, raw: Any, where: dict[str, Any]) -> tuple[WorkArea, ...]:
        """The known work areas (each once); an error for each unknown one."""
        areas: list[WorkArea] = []
        if raw is not None:
            for part in split_list(as_text(raw)):
                area = _WORK_AREAS.get(match_key(part))
                if area is None:
                    self.error(f"unknown Arbeitsbereich {part!r}", value=raw,
                               hint=WORK_AREA_HINT, **where)
                elif area not in areas:
                    areas.append(area)
        return tuple(areas)

    def person_specialty(self, raw: Any, role: Role | None, praxis: dict[str, Any],
                         where: dict[str, Any]) -> str | None:
        """The person's specialty slug; empty: a doctor gets the practice's first one."""
        if raw is not None:
            spec = find_specialty(as_text(raw))
            if spec is None:
                self.error("unknown Fachrichtung", value=raw, hint=SPECIALTY_HINT, **where)
                return None
            return spec.slug
        if role is not None and role.is_doctor and praxis.get("specialties"):
            return str(praxis["specialties"][0])
        return None

    def username(self, raw: Any, where: dict[str, Any]) -> str | None:
        """The username as given (None: derive one); an error when it is not a valid one."""
        if raw is None:
            return None
        text = as_text(raw)
        problem = username_problem(text)
        if problem:
            self.error(f"invalid Benutzername: {problem}", value=raw, personal=True,
                       hint="e.g. anna.mueller, or leave empty for vorname.nachname", **where)
        return text

    def role_fit(self, role: Role, practice_type: PracticeType, where: dict[str, Any]) -> None:
        """Warn about a dental role in a medical practice and the other way round."""
        if role in _DENTAL_ROLES and practice_type in (
                PracticeType.ARZTPRAXIS, PracticeType.PSYCHOTHERAPIEPRAXIS):
            self.warn(f"role {role.label} is unusual in a {practice_type.label}",
                      hint="check Rolle and Praxisart", **where)
        if role in _MEDICAL_ROLES and practice_type is PracticeType.ZAHNARZTPRAXIS:
            self.warn(f"role {role.label} is unusual in a Zahnarztpraxis",
                      hint="Zahnärzt:in, ZFA, ZMF, ZMP, ZMV or DH", **where)

    def lanrs(self, raw: Any, role: Role | None, praxis: dict[str, Any],
              where: dict[str, Any]) -> tuple[str, ...]:
        practice_type: PracticeType | None = praxis.get("practice_type")
        if raw is None:
            if role in _LANR_REQUIRED and practice_type is not None \
                    and not practice_type.is_dental:
                self.error(f"LANR is required for {role.label if role else ''} "
                           f"(Praxisart {practice_type.label})", hint="the 9-digit LANR",
                           **where)
            return ()
        single = not isinstance(raw, str) or _SCIENTIFIC_RE.match(re.sub(r"\s+", "", raw))
        parts: list[Any] = [raw] if single else split_list(raw)
        hint = ("9 digits with a valid check digit; format the column as text so Excel keeps "
                "a leading 0; several LANRs of one doctor separated by ','")
        numbers: list[str] = []
        for part in parts:
            number = parse_number_id(part, 9)
            if number.digits is None:
                self.error("LANR is not a whole 9-digit number (a decimal or scientific "
                           "value like 1.23457E+08 has lost digits)", value=raw, personal=True,
                           hint=hint, **where)
                continue
            problem = lanr_problem(number.digits)
            if problem:
                self.error(f"invalid LANR: {problem}", value=raw, personal=True, hint=hint,
                           **where)
                continue
            if number.widened:
                self.warn("LANR was stored as an 8-digit number; read with a leading 0",
                          value=raw, personal=True, hint="format the cell as text", **where)
            if number.digits not in numbers:
                numbers.append(number.digits)
        if len({lanr_person_key(n) for n in numbers}) > 1:
            self.error("the LANRs in one cell belong to different doctors (digits 1–7 differ)",
                       value=raw, personal=True,
                       hint="one row per person; several LANRs of one doctor share digits 1–7",
                       **where)
            return ()
        if numbers and role is not None and not role.is_doctor:
            self.warn(f"a LANR for role {role.label} is ignored", value=raw, personal=True,
                      hint="only doctors and psychotherapists have a LANR", **where)
            return ()
        return tuple(numbers)

    def people_checks(self, title: str, persons: list[dict[str, Any]], columns: dict[str, int],
                      praxis: dict[str, Any]) -> list[Person] | None:
        seen_user = self.unique_checks(persons)

        bases: list[str] = []
        for p in persons:
            if p["username"] is None:
                base = username_base(p["first_name"], p["last_name"])
                if not base and p["first_name"] and p["last_name"]:
                    self.error("no username can be derived from the name (no Latin letters)",
                               hint="enter a Benutzername (a-z, 0-9, '.', '_', '-')",
                               **p["username_at"])
                    p["invalid"] = True
                bases.append(base)
        derived = iter(unique_usernames(bases, taken=seen_user))

        if persons and not any(p["admin"] for p in persons):
            self.error("no administrator: at least one person needs Admin = ja",
                       sheet=title, label="Admin",
                       hint="set Admin to 'ja' for at least one person (every "
                       "Praxisinhaber:in is admin unless marked 'nein')")

        out: list[Person] = []
        for p in persons:
            username = p["username"] if p["username"] is not None else next(derived)
            if p.get("invalid") or p["role"] is None:
                continue
            out.append(Person(
                first_name=p["first_name"], last_name=p["last_name"], email=p["email"],
                username=username, role=p["role"], work_areas=p["work_areas"],
                lanr=p["lanrs"][0] if p["lanrs"] else None, lanrs=p["lanrs"],
                specialty=p["specialty"], admin=p["admin"],
            ))
        return out

    def unique_checks(self, persons: list[dict[str, Any]]) -> dict[str, int]:
        """E-mail addresses, usernames and LANRs must be unique across rows; the row of each
        given username is returned."""
        seen_email: dict[str, int] = {}
        seen_user: dict[str, int] = {}
        seen_lanr: dict[str, int] = {}
        for p in persons:
            if p["email"]:
                key = p["email"].casefold()
                if key in seen_email:
                    self.error(f"E-Mail is already used in row {seen_email[key]} (addresses "
                               "must be unique, case-insensitive)", value=p["email"],
                               personal=True, hint="a different address per person",
                               **p["email_at"])
                    p["invalid"] = True
                seen_email.setdefault(key, p["row"])
            if p["username"]:
                if p["username"] in seen_user:
                    self.error(f"Benutzername is already used in row {seen_user[p['username']]}",
                               value=p["username"], personal=True,
                               hint="a different username, or leave it empty",
                               **p["username_at"])
                    p["invalid"] = True
                seen_user.setdefault(p["username"], p["row"])
            for key in {lanr_person_key(n) for n in p["lanrs"]}:
                if key in seen_lanr:
                    # A LANR belongs to one doctor for life: two rows with the same digits
                    # 1–7 are two persons claiming one doctor's number (seats undercounted).
                    self.error(f"the LANR (digits 1–7) of row {p['row']} is also in row "
                               f"{seen_lanr[key]}: a LANR belongs to one doctor, rows "
                               f"{seen_lanr[key]} and {p['row']} are two persons",
                               value=", ".join(p["lanrs"]), personal=True,
                               hint="one row per person; correct the LANR of one of the two "
                                    "rows (several LANRs of one doctor go into one cell)",
                               **p["lanr_at"])
                    p["invalid"] = True
                seen_lanr.setdefault(key, p["row"])
        return seen_user

    # --- Apps -----------------------------------------------------------------------
    def apps(self) -> tuple[AppChoice, tuple[ThirdPartyApp, ...]]:
        sheet = self.wb.sheets.get(SHEET_APPS)
        if sheet is None:
            return AppChoice(), ()
        self.result.errors.extend(p for p in sheet.problems if p.severity == ERROR)
        self.result.warnings.extend(p for p in sheet.problems if p.severity == WARNING)
        kv = self.key_values(sheet, APPS_FIELDS, extra=_THIRD_PARTY_RE)
        choice: dict[str, bool] = {}
        for f in APPS_FIELDS:
            if f.key not in kv or kv[f.key][0] is None:
                continue
            value, row, _ = kv[f.key]
            flag = parse_yes_no(value)
            if flag is None:
                self.error(f"{f.label} must be ja or nein", sheet=sheet.title,
                           cell=cell_ref(row, 2), label=f.label, value=value, hint=YES_NO_HINT)
            else:
                choice[f.key] = flag

        groups: dict[int, dict[str, tuple[Any, int, str]]] = {}
        for key, entry in kv.items():
            m = _THIRD_PARTY_RE.match(key)
            if m:
                groups.setdefault(int(m.group(1) or 1), {})[m.group(2)] = entry
        parts = {match_key(label): (part, label)
                 for part, label in (*THIRD_PARTY_PARTS, THIRD_PARTY_ROLES)}
        third: list[ThirdPartyApp] = []
        for number in sorted(groups):
            group = {parts[k][0]: v for k, v in groups[number].items() if v[0] is not None}
            if not group:
                continue
            prefix = "Drittsystem" if number == 1 else f"Drittsystem {number}"
            app = self.third_party_app(sheet.title, prefix, group)
            if app is None:
                continue
            if any(a.client_id == app.client_id for a in third):
                self.error(f"{prefix}: another Drittsystem has the same name",
                           sheet=sheet.title, cell=cell_ref(group["name"][1], 2),
                           value=app.name, hint="distinct names")
            else:
                third.append(app)
        return AppChoice(**choice), tuple(third)

    def third_party_app(self, title: str, prefix: str,
                        group: dict[str, tuple[Any, int, str]]) -> ThirdPartyApp | None:
        """One Drittsystem's rows (name, URL, Redirect-URI, optional roles) as an app, or None
        after an error."""
        missing = [label for part, label in THIRD_PARTY_PARTS if part not in group]
        if missing:
            anchor = next(iter(group.values()))
            self.error(f"{prefix}: name, URL and Redirect-URI go together; missing: "
                       + ", ".join(f"'{prefix} {m}'" for m in missing), sheet=title,
                       cell=cell_ref(anchor[1], 2), label=prefix,
                       hint="fill in all three rows or none")
            return None
        name_text = as_text(group["name"][0])
        valid = True
        if not 1 <= len(name_text) <= 60:
            self.error(f"{prefix} Name must have 1–60 characters", sheet=title,
                       cell=cell_ref(group["name"][1], 2), value=group["name"][0],
                       hint="a short name, e.g. Dienstplanung")
            valid = False
        for part in ("url", "redirect_uri"):
            value, row, label = group[part]
            split = urlsplit(as_text(value))
            if split.scheme not in ("https", "http") or not split.hostname:
                self.error(f"{label} is not an absolute https:// address", value=value,
                           sheet=title, cell=cell_ref(row, 2), label=label,
                           hint="e.g. https://dienstplan.example.de")
                valid = False
            elif split.scheme == "http":
                self.warn(f"{label} uses unencrypted http://", value=value,
                          sheet=title, cell=cell_ref(row, 2), label=label,
                          hint="use https:// in production")
        roles: list[str] = []
        if "roles" in group:
            value, row, label = group["roles"]
            for word in re.split(r"[,;]", as_text(value)):
                role = _ROLES.get(match_key(word)) if word.strip() else None
                if word.strip() and role is None:
                    self.error(f"{label}: unknown role {word.strip()!r}", value=value,
                               sheet=title, cell=cell_ref(row, 2), label=label,
                               hint=f"roles separated by commas, from: {ROLE_HINT}")
                    valid = False
                elif role is not None and role.value not in roles:
                    roles.append(role.value)
        if not valid:
            return None
        return ThirdPartyApp(name_text, as_text(group["url"][0]),
                             as_text(group["redirect_uri"][0]), tuple(sorted(roles)))

    # --- all ------------------------------------------------------------------------
    def run(self) -> StarterResult:
        for name, required in ((SHEET_PRAXIS, True), (SHEET_PEOPLE, True)):
            if name not in self.wb.sheets and required:
                self.error(f"sheet {name!r} is missing", sheet=None, label=f"sheet {name}",
                           hint="sheets: Praxis, Mitarbeitende, Apps (optional); the file has: "
                           + ", ".join(repr(t) for t in self.wb.sheet_titles))
        praxis = self.praxis() or {}
        persons = self.people(praxis)
        apps, third = self.apps()
        order = {None: 0, SHEET_PRAXIS: 1, SHEET_PEOPLE: 2, SHEET_APPS: 3}
        for problems in (self.result.errors, self.result.warnings):
            problems.sort(key=lambda p: (order.get(p.sheet, 4), *_cell_key(p.cell)))
        if self.result.errors or persons is None:
            return self.result
        self.result.spec = PracticeSpec(
            praxisname=praxis["praxisname"],
            display_name=praxis["display_name"],
            practice_type=praxis["practice_type"],
            kv=praxis["kv"],
            specialties=praxis["specialties"],
            order_id=praxis["order_id"],
            contact_email=praxis["contact_email"],
            bsnr=praxis["bsnr"],
            package=praxis["package"],
            persons=tuple(persons),
            apps=apps,
            third_party_apps=third,
            form_version=praxis["form_version"],
        )
        return self.result


def _cell_key(cell: str | None) -> tuple[int, int]:
    """Sort key (row, column) for ``E7``, ``7:7`` or ``D5:D7``; no cell sorts first."""
    if not cell:
        return (0, 0)
    m = re.match(r"([A-Z]*)(\d*)", cell)
    letters, digits = (m.group(1), m.group(2)) if m else ("", "")
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return (int(digits) if digits else 0, col)


def validate_workbook(wb: WorkbookData, source: str) -> StarterResult:
    """All problems of the workbook at once; ``spec`` set when there is no error."""
    return _Validator(wb, source).run()


__all__ = ["WANTED_SHEETS", "as_text", "email_problem", "parse_number_id",
           "parse_yes_no", "validate_workbook"]
