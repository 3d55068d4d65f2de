"""Catalogues (pure): KV/KZV regions, BSNR prefixes, specialties, LANR Fachgruppen.

Sources: /work/shared/reference/german-practice-data.md (KBV "Datensatzbeschreibung KVDT"
6.02 for the BSNR prefix list, rule 162). Facts that were not checked against a primary
document carry ``Evidence.UNVERIFIED``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from .names import transliterate


def match_key(text: str) -> str:
    """The comparison key for labels and list values.

    Case-insensitive, ignores whitespace, punctuation and the gender colon/star
    (``Ärzt:in`` = ``Ärzt*in`` = ``Ärztin`` = ``aerztin``) and a trailing ``*`` or ``:``.
    """
    folded = transliterate(unicodedata.normalize("NFKC", text).casefold())
    return re.sub(r"[^a-z0-9]", "", folded)


def split_list(text: str) -> list[str]:
    """Split a multi-value cell at ``,``, ``;`` and new lines; drop empty parts."""
    return [part.strip() for part in re.split(r"[,;\n\r]+", text) if part.strip()]


class Evidence(StrEnum):
    """How well a catalogue fact is backed (see reference/german-practice-data.md)."""

    VERIFIED = "verified"  # checked against a primary source
    UNVERIFIED = "unverified"  # from memory or a secondary source; do not rely on it


# --- KV / KZV -----------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """One Kassenärztliche or Kassenzahnärztliche Vereinigung."""

    short: str  # canonical short form, e.g. "KV Rheinland-Pfalz" / "KZV Bayern"
    long: str  # official long form
    land: str  # the region part of the name, e.g. "Rheinland-Pfalz"
    dental: bool
    abbreviations: tuple[str, ...] = ()  # e.g. "KVRLP" (Evidence.UNVERIFIED, see reference)
    aliases: tuple[str, ...] = ()  # further spellings of the long form

    def names(self) -> tuple[str, ...]:
        return (self.short, self.long, *self.abbreviations, *self.aliases)


# The 17 KV/KZV regions: land, its code in audience group names (as the KVs abbreviate
# themselves: KVRLP, KVWL, KVNO, ...; Nordrhein and Westfalen-Lippe are two KVs of one Land),
# the KV's and the KZV's abbreviation (Evidence.UNVERIFIED, see reference). Ambiguous
# abbreviations (KVH = Hamburg and Hessen, KVS = Saarland and Sachsen) are deliberately not
# accepted; spellings with spaces ("KV RLP") match anyway (match_key ignores whitespace).
# KVs are listed in this order, KZVs alphabetically by land.
_LANDS: tuple[tuple[str, str, str, str], ...] = (
    ("Schleswig-Holstein", "sh", "KVSH", "KZVSH"),
    ("Hamburg", "hh", "KVHH", "KZVHH"),
    ("Bremen", "hb", "KVHB", "KZVHB"),
    ("Niedersachsen", "ni", "KVN", "KZVN"),
    ("Westfalen-Lippe", "wl", "KVWL", "KZVWL"),
    ("Nordrhein", "no", "KVNO", "KZVNR"),
    ("Hessen", "he", "KVHE", "KZVH"),
    ("Rheinland-Pfalz", "rlp", "KVRLP", "KZVRLP"),
    ("Baden-Württemberg", "bw", "KVBW", "KZVBW"),
    ("Bayern", "by", "KVB", "KZVB"),
    ("Berlin", "be", "KVBerlin", "KZVBerlin"),
    ("Saarland", "sl", "KVSaar", "KZVS"),
    ("Mecklenburg-Vorpommern", "mv", "KVMV", "KZVMV"),
    ("Brandenburg", "bb", "KVBB", "KZVLB"),
    ("Sachsen-Anhalt", "st", "KVSA", "KZVSA"),
    ("Thüringen", "th", "KVT", "KZVTh"),
    ("Sachsen", "sn", "KVSachsen", "KZVSachsen"),
)
LAND_CODES: dict[str, str] = {land: code for land, code, _, _ in _LANDS}

# further spellings of the long form, by short form
_ALIASES: dict[str, tuple[str, ...]] = {
    "KV Bayern": ("Kassenärztliche Vereinigung Bayerns", "KV Bayerns"),
    "KV Brandenburg": ("Kassenärztliche Vereinigung Land Brandenburg",),
    "KZV Bayern": ("Kassenzahnärztliche Vereinigung Bayerns", "KZV Bayerns"),
    "KZV Brandenburg": ("KZV Land Brandenburg", "Kassenzahnärztliche Vereinigung Land Brandenburg"),
    "KZV Bremen": ("KZV im Lande Bremen", "Kassenzahnärztliche Vereinigung im Lande Bremen"),
}


def _make_region(kind: str, long_prefix: str, land: str, abbreviation: str) -> Region:
    short = f"{kind} {land}"
    return Region(short, f"{long_prefix} {land}", land, kind == "KZV", (abbreviation,),
                  _ALIASES.get(short, ()))


KV_REGIONS: tuple[Region, ...] = tuple(
    _make_region("KV", "Kassenärztliche Vereinigung", land, kv) for land, _, kv, _ in _LANDS
)
KZV_REGIONS: tuple[Region, ...] = tuple(
    _make_region("KZV", "Kassenzahnärztliche Vereinigung", land, kzv)
    for land, _, _, kzv in sorted(_LANDS)
)
REGIONS: tuple[Region, ...] = KV_REGIONS + KZV_REGIONS
REGIONS_BY_SHORT: dict[str, Region] = {r.short: r for r in REGIONS}

_REGION_INDEX: dict[str, Region] = {}
for _region in REGIONS:
    for _name in _region.names():
        _REGION_INDEX[match_key(_name)] = _region


def find_region(text: str) -> Region | None:
    """The KV/KZV named by ``text`` (long form, short form or abbreviation), or None."""
    return _REGION_INDEX.get(match_key(text))


def normalize_kv(text: str) -> str | None:
    """Canonical short form (``KV Rheinland-Pfalz``, ``KZV Bayern``) or None if unknown."""
    region = find_region(text)
    return region.short if region else None


# --- BSNR prefixes ------------------------------------------------------------------


def _codes(*spec: int | tuple[int, int]) -> tuple[str, ...]:
    out: list[str] = []
    for item in spec:
        lo, hi = item if isinstance(item, tuple) else (item, item)
        out.extend(f"{n:02d}" for n in range(lo, hi + 1))
    return tuple(out)


# BSNR digits 1–2 → KV. The list of allowed codes is [KVDT 6.02] rule 162 (VERIFIED); the
# assignment of the district codes to their KV is inferred from the district names
# (see reference, section a). 99 = Knappschaft: a valid prefix without a KV region.
BSNR_PREFIX_KV: dict[str, str | None] = {
    **dict.fromkeys(_codes(1), "KV Schleswig-Holstein"),
    **dict.fromkeys(_codes(2), "KV Hamburg"),
    **dict.fromkeys(_codes(3), "KV Bremen"),
    **dict.fromkeys(_codes((6, 17)), "KV Niedersachsen"),
    **dict.fromkeys(_codes((18, 20)), "KV Westfalen-Lippe"),
    **dict.fromkeys(_codes(21, 24, 25, 27, 28, 31, 37, 38), "KV Nordrhein"),
    **dict.fromkeys(_codes((39, 46)), "KV Hessen"),
    **dict.fromkeys(_codes((47, 51)), "KV Rheinland-Pfalz"),
    **dict.fromkeys(_codes((52, 62)), "KV Baden-Württemberg"),
    **dict.fromkeys(_codes((63, 71)), "KV Bayern"),
    **dict.fromkeys(_codes(72), "KV Berlin"),
    **dict.fromkeys(_codes(73), "KV Saarland"),
    **dict.fromkeys(_codes(78), "KV Mecklenburg-Vorpommern"),
    **dict.fromkeys(_codes((79, 81), 83), "KV Brandenburg"),
    **dict.fromkeys(_codes((85, 88)), "KV Sachsen-Anhalt"),
    **dict.fromkeys(_codes(93), "KV Thüringen"),
    **dict.fromkeys(_codes((94, 96), 98), "KV Sachsen"),
    "99": None,  # Knappschaft
}
# Special first digits (rule 049): 35kk… hospitals for the Terminservicestelle, 74kk… SAPV;
# kk is a code from the list above.
BSNR_SPECIAL_PREFIXES = ("35", "74")


def kv_for_bsnr(bsnr: str) -> str | None:
    """The KV a (well-formed) BSNR belongs to, or None (Knappschaft, unknown prefix)."""
    prefix = bsnr[:2]
    if prefix in BSNR_SPECIAL_PREFIXES:
        prefix = bsnr[2:4]
    return BSNR_PREFIX_KV.get(prefix)


# --- LANR Fachgruppen (digits 8–9) ---------------------------------------------------


@dataclass(frozen=True)
class Fachgruppe:
    code: str
    label: str
    evidence: Evidence


_V, _U = Evidence.VERIFIED, Evidence.UNVERIFIED

# Anlage 2 of the KBV Richtlinie (key table S_BAR2_ARZTNRFACHGRUPPE). Only the codes marked
# VERIFIED were seen in a primary source; the rest are from memory and must be checked
# against the key table before anything relies on them. The validator does not use them.
FACHGRUPPEN: dict[str, Fachgruppe] = {
    fg.code: fg
    for fg in (
        Fachgruppe("00", "Ersatzwert (keine Fachgruppe)", _V),
        Fachgruppe("01", "Allgemeinmedizin (Hausarzt)", _U),
        Fachgruppe("02", "Arzt/Praktischer Arzt (Hausarzt)", _U),
        Fachgruppe("03", "Internist (Hausarzt)", _U),
        Fachgruppe("04", "Anästhesiologie", _U),
        Fachgruppe("05", "Augenheilkunde", _U),
        Fachgruppe("06", "Chirurgie", _U),
        Fachgruppe("10", "Orthopädie", _U),
        Fachgruppe("15", "Frauenheilkunde und Geburtshilfe", _U),
        Fachgruppe("19", "Hals-Nasen-Ohrenheilkunde", _U),
        Fachgruppe("21", "Haut- und Geschlechtskrankheiten", _U),
        Fachgruppe("23", "Internist (fachärztlich)", _U),
        Fachgruppe("26", "Gastroenterologie", _U),
        Fachgruppe("28", "Kardiologie", _V),
        Fachgruppe("30", "Pneumologie", _U),
        Fachgruppe("33", "Infektiologie", _V),
        Fachgruppe("34", "Kinder- und Jugendmedizin (Hausarzt)", _U),
        Fachgruppe("53", "Neurologie", _U),
        Fachgruppe("58", "Psychiatrie und Psychotherapie", _U),
        Fachgruppe("62", "Radiologie", _U),
        Fachgruppe("67", "Urologie", _U),
        Fachgruppe("68", "Psychologischer Psychotherapeut", _U),
        Fachgruppe("99", "Sonstige", _U),
    )
}


def fachgruppe_of_lanr(lanr: str) -> Fachgruppe | None:
    return FACHGRUPPEN.get(lanr[7:9]) if len(lanr) == 9 else None


# --- specialties --------------------------------------------------------------------


@dataclass(frozen=True)
class Specialty:
    slug: str  # stored in the realm attribute ``fachrichtung``
    label: str  # German label as shown in the Starter Excel
    dental: bool = False
    aliases: tuple[str, ...] = ()


SPECIALTIES: tuple[Specialty, ...] = (
    # medical (Fachärzt:innen a German practice would pick; Weiterbildungsordnung names)
    Specialty("allgemeinmedizin", "Allgemeinmedizin", aliases=("Hausarzt", "Hausärztin")),
    Specialty("innere-medizin", "Innere Medizin", aliases=("Innere", "Internist")),
    Specialty("kinder-und-jugendmedizin", "Kinder- und Jugendmedizin",
              aliases=("Pädiatrie", "Kinderheilkunde")),
    Specialty("anaesthesiologie", "Anästhesiologie"),
    Specialty("augenheilkunde", "Augenheilkunde", aliases=("Ophthalmologie",)),
    Specialty("chirurgie", "Chirurgie", aliases=("Allgemeinchirurgie",)),
    Specialty("gefaesschirurgie", "Gefäßchirurgie"),
    Specialty("orthopaedie-und-unfallchirurgie", "Orthopädie und Unfallchirurgie",
              aliases=("Orthopädie",)),
    Specialty("frauenheilkunde-und-geburtshilfe", "Frauenheilkunde und Geburtshilfe",
              aliases=("Gynäkologie", "Frauenheilkunde")),
    Specialty("hals-nasen-ohrenheilkunde", "Hals-Nasen-Ohrenheilkunde", aliases=("HNO",)),
    Specialty("haut-und-geschlechtskrankheiten", "Haut- und Geschlechtskrankheiten",
              aliases=("Dermatologie",)),
    Specialty("kardiologie", "Kardiologie", aliases=("Innere Medizin und Kardiologie",)),
    Specialty("gastroenterologie", "Gastroenterologie"),
    Specialty("pneumologie", "Pneumologie"),
    Specialty("nephrologie", "Nephrologie"),
    Specialty("haematologie-und-onkologie", "Hämatologie und Onkologie", aliases=("Onkologie",)),
    Specialty("endokrinologie-und-diabetologie", "Endokrinologie und Diabetologie",
              aliases=("Diabetologie",)),
    Specialty("rheumatologie", "Rheumatologie"),
    Specialty("angiologie", "Angiologie"),
    Specialty("neurologie", "Neurologie"),
    Specialty("psychiatrie-und-psychotherapie", "Psychiatrie und Psychotherapie",
              aliases=("Psychiatrie",)),
    Specialty("psychosomatische-medizin", "Psychosomatische Medizin und Psychotherapie",
              aliases=("Psychosomatik",)),
    Specialty("kinder-und-jugendpsychiatrie", "Kinder- und Jugendpsychiatrie und -psychotherapie",
              aliases=("Kinder- und Jugendpsychiatrie",)),
    Specialty("psychotherapie", "Psychologische Psychotherapie",
              aliases=("Psychotherapie",)),
    Specialty("kinder-und-jugendlichenpsychotherapie", "Kinder- und Jugendlichenpsychotherapie"),
    Specialty("radiologie", "Radiologie"),
    Specialty("nuklearmedizin", "Nuklearmedizin"),
    Specialty("strahlentherapie", "Strahlentherapie"),
    Specialty("urologie", "Urologie"),
    Specialty("neurochirurgie", "Neurochirurgie"),
    Specialty("laboratoriumsmedizin", "Laboratoriumsmedizin", aliases=("Labormedizin",)),
    Specialty("pathologie", "Pathologie"),
    Specialty("physikalische-und-rehabilitative-medizin",
              "Physikalische und Rehabilitative Medizin"),
    Specialty("humangenetik", "Humangenetik"),
    Specialty("mund-kiefer-gesichtschirurgie", "Mund-Kiefer-Gesichtschirurgie",
              aliases=("MKG-Chirurgie", "MKG")),
    # dental (Fachzahnärzt:innen and common Tätigkeitsschwerpunkte)
    Specialty("zahnmedizin", "Zahnmedizin", dental=True,
              aliases=("Zahnheilkunde", "Allgemeine Zahnheilkunde")),
    Specialty("kieferorthopaedie", "Kieferorthopädie", dental=True),
    Specialty("oralchirurgie", "Oralchirurgie", dental=True),
    Specialty("parodontologie", "Parodontologie", dental=True),
    Specialty("implantologie", "Implantologie", dental=True),
    Specialty("endodontie", "Endodontie", dental=True),
    Specialty("kinderzahnheilkunde", "Kinderzahnheilkunde", dental=True),
)
SPECIALTIES_BY_SLUG: dict[str, Specialty] = {s.slug: s for s in SPECIALTIES}

_SPECIALTY_INDEX: dict[str, Specialty] = {}
for _spec in SPECIALTIES:
    for _name in (_spec.slug, _spec.label, *_spec.aliases):
        _SPECIALTY_INDEX.setdefault(match_key(_name), _spec)


def find_specialty(text: str) -> Specialty | None:
    """The specialty named by its slug, label or a common alias (case-insensitive)."""
    return _SPECIALTY_INDEX.get(match_key(text))
