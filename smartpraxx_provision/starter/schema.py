"""The Starter Excel's sheets, labels, headers and help texts (format version 1).

Shared by the reader/validator and the template writer so both speak exactly one format
(see /work/shared/STARTER_EXCEL.md). Labels are German; matching uses ``match_key``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.catalog import match_key

FORM_VERSION = 1

SHEET_PRAXIS = "Praxis"
SHEET_PEOPLE = "Mitarbeitende"
SHEET_APPS = "Apps"
SHEET_LISTS = "Listen"  # template only: values for the dropdowns (hidden)


@dataclass(frozen=True)
class Field:
    key: str  # internal name
    label: str  # German label / header as written by the template
    required: bool = False
    help: str = ""  # help text (template: column C of Praxis, help row of Mitarbeitende)
    aliases: tuple[str, ...] = ()

    def match_keys(self) -> set[str]:
        return {match_key(name) for name in (self.label, *self.aliases)}


PRAXIS_FIELDS: tuple[Field, ...] = (
    Field("form_version", "Formularversion", True, "Bitte nicht ändern."),
    Field("praxisname", "Praxisname", True,
          "Name in der Adresse mein.smartpraxx.de/<praxisname>: 3–40 Zeichen a-z, 0-9, -; "
          "beginnt mit einem Buchstaben; z. B. praxis-mueller"),
    Field("display_name", "Anzeigename", True,
          "Name der Praxis, wie er angezeigt wird; z. B. Hausarztpraxis Dr. Müller & Kollegen"),
    Field("practice_type", "Praxisart", True,
          "Arztpraxis, Zahnarztpraxis, MVZ oder Psychotherapiepraxis"),
    Field("bsnr", "BSNR", False,
          "Betriebsstättennummer, 9 Ziffern (Pflicht außer bei Zahnarztpraxen)",
          ("Betriebsstättennummer",)),
    Field("kv", "KV", True, "Ihre KV bzw. KZV (Auswahlliste)", ("KZV", "KV/KZV", "KV / KZV")),
    Field("specialties", "Fachrichtungen", True,
          "Eine oder mehrere, getrennt durch Komma; z. B. Allgemeinmedizin, Innere Medizin",
          ("Fachrichtung",)),
    Field("order_id", "Bestellnummer", True, "Steht in Ihrer Bestellbestätigung",
          ("Bestell-Nr", "Bestellnr")),
    Field("contact_email", "Kontakt E-Mail", True,
          "Erhält den ersten Anmelde-Link", ("Kontakt-E-Mail-Adresse", "Kontakt E-Mail-Adresse")),
    Field("package", "Paket", False, "Basis oder Premium (leer = Basis)"),
)

PEOPLE_FIELDS: tuple[Field, ...] = (
    Field("first_name", "Vorname", True, "Pflicht"),
    Field("last_name", "Nachname", True, "Pflicht"),
    Field("email", "E-Mail", True, "Pflicht, dienstliche Adresse, je Person verschieden",
          ("E-Mail-Adresse", "Email", "Mail")),
    Field("username", "Benutzername", False, "leer = vorname.nachname", ("Login",)),
    Field("role", "Rolle", True, "Pflicht, eine Rolle aus der Liste"),
    Field("work_areas", "Arbeitsbereiche", False,
          "keiner oder mehrere, getrennt durch Komma", ("Arbeitsbereich",)),
    Field("lanr", "LANR", False,
          "9 Ziffern; Pflicht für Praxisinhaber:in und Ärzt:in (nicht Zahnarztpraxis)",
          ("Arztnummer", "Lebenslange Arztnummer")),
    Field("specialty", "Fachrichtung", False, "leer = erste Fachrichtung der Praxis"),
    Field("admin", "Admin", False, "ja oder leer; Praxisinhaber:innen sind immer Admin",
          ("Administrator:in",)),
)

APPS_FIELDS: tuple[Field, ...] = (
    Field("talk", "Talk", False, "ja/nein: Chat und Videotelefonie (PraxisTalk)"),
    Field("deck", "Aufgaben", False, "ja/nein: Aufgaben-Boards (Deck)"),
    Field("passwords", "Passwörter", False, "ja/nein: Passwortverwaltung"),
    Field("forms", "Umfragen", False, "ja/nein: Umfragen und Formulare"),
)
# Drittsystem [N] Name / URL / Redirect-URI: matched by pattern, see validate.py.
THIRD_PARTY_PARTS = (("name", "Name"), ("url", "URL"), ("redirect_uri", "Redirect-URI"))
# optional fourth row of a Drittsystem: the roles whose start page shows its tile
THIRD_PARTY_ROLES = ("roles", "Rollen")
THIRD_PARTY_HELP = {
    "name": "Name des Drittsystems auf der Startseite, z. B. Dienstplanung (optional)",
    "url": "Adresse, z. B. https://dienstplan.example.de",
    "redirect_uri": "Redirect-URI für die Anmeldung, z. B. https://dienstplan.example.de/oidc/callback",
    "roles": "Nur für diese Rollen auf der Startseite (optional, mit Komma getrennt), "
             "z. B. MFA, Praxismanager:in; leer = alle",
}

YES_WORDS = frozenset({"ja", "x", "j", "yes", "y", "true", "wahr", "1"})
NO_WORDS = frozenset({"nein", "n", "no", "false", "falsch", "0"})

PEOPLE_HELP_KEYS: dict[str, str] = {match_key(f.help): f.key for f in PEOPLE_FIELDS}


def field_index(fields: tuple[Field, ...]) -> dict[str, Field]:
    index: dict[str, Field] = {}
    for f in fields:
        for key in f.match_keys():
            index[key] = f
    return index
