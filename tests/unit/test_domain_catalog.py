"""KV/KZV normalisation, BSNR prefix → KV, specialties, Fachgruppen evidence markers."""

from __future__ import annotations

import pytest

from smartpraxx_provision.domain.catalog import (
    BSNR_PREFIX_KV,
    FACHGRUPPEN,
    KV_REGIONS,
    KZV_REGIONS,
    SPECIALTIES,
    Evidence,
    fachgruppe_of_lanr,
    find_specialty,
    kv_for_bsnr,
    match_key,
    normalize_kv,
    split_list,
)

KV_CASES = [
    ("Kassenärztliche Vereinigung Rheinland-Pfalz", "KV Rheinland-Pfalz"),
    ("KV Rheinland-Pfalz", "KV Rheinland-Pfalz"),
    ("KVRLP", "KV Rheinland-Pfalz"),
    ("kv rlp", "KV Rheinland-Pfalz"),
    ("  kassenaerztliche vereinigung rheinland pfalz ", "KV Rheinland-Pfalz"),
    ("Kassenärztliche Vereinigung Bayerns", "KV Bayern"),
    ("KVB", "KV Bayern"),
    ("KVNO", "KV Nordrhein"),
    ("KVWL", "KV Westfalen-Lippe"),
    ("KV Baden-Württemberg", "KV Baden-Württemberg"),
    ("Kassenzahnärztliche Vereinigung Bayerns", "KZV Bayern"),
    ("KZV Bayern", "KZV Bayern"),
    ("KZV im Lande Bremen", "KZV Bremen"),
    ("KZV Land Brandenburg", "KZV Brandenburg"),
    ("KZVBW", "KZV Baden-Württemberg"),
    ("KZVNR", "KZV Nordrhein"),
    ("KVH", None),  # ambiguous: Hamburg or Hessen
    ("KVS", None),  # ambiguous: Saarland or Sachsen
    ("KV Atlantis", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), KV_CASES)
def test_normalize_kv(text: str, expected: str | None) -> None:
    assert normalize_kv(text) == expected


def test_seventeen_kvs_and_seventeen_kzvs() -> None:
    assert len(KV_REGIONS) == 17 and len(KZV_REGIONS) == 17
    assert all(normalize_kv(r.long) == r.short for r in KV_REGIONS + KZV_REGIONS)
    assert all(not r.dental for r in KV_REGIONS) and all(r.dental for r in KZV_REGIONS)


# [KVDT 6.02] rule 162: 01-03, 06-21, 24, 25, 27, 28, 31, 37-73, 78-81, 83, 85-88, 93-96, 98, 99
RULE_162 = {f"{n:02d}" for n in [1, 2, 3, *range(6, 22), 24, 25, 27, 28, 31, *range(37, 74),
                                 78, 79, 80, 81, 83, 85, 86, 87, 88, 93, 94, 95, 96, 98, 99]}


def test_bsnr_prefixes_are_rule_162() -> None:
    assert set(BSNR_PREFIX_KV) == RULE_162


@pytest.mark.parametrize(("bsnr", "kv"), [
    ("511234500", "KV Rheinland-Pfalz"), ("471234500", "KV Rheinland-Pfalz"),  # Koblenz
    ("501234500", "KV Rheinland-Pfalz"),  # Trier
    ("381234500", "KV Nordrhein"), ("271234500", "KV Nordrhein"),  # Köln
    ("201234500", "KV Westfalen-Lippe"), ("191234500", "KV Westfalen-Lippe"),
    ("171234500", "KV Niedersachsen"), ("061234500", "KV Niedersachsen"),
    ("461234500", "KV Hessen"), ("401234500", "KV Hessen"),
    ("521234500", "KV Baden-Württemberg"), ("551234500", "KV Baden-Württemberg"),
    ("611234500", "KV Baden-Württemberg"),
    ("711234500", "KV Bayern"), ("631234500", "KV Bayern"),
    ("721234500", "KV Berlin"), ("731234500", "KV Saarland"),
    ("781234500", "KV Mecklenburg-Vorpommern"), ("831234500", "KV Brandenburg"),
    ("801234500", "KV Brandenburg"), ("881234500", "KV Sachsen-Anhalt"),
    ("861234500", "KV Sachsen-Anhalt"), ("931234500", "KV Thüringen"),
    ("981234500", "KV Sachsen"), ("951234500", "KV Sachsen"),
    ("010123499", "KV Schleswig-Holstein"), ("021234500", "KV Hamburg"),
    ("031234500", "KV Bremen"),
    ("991234500", None),  # Knappschaft
    ("357112345", "KV Bayern"),  # 35kk: Terminservicestelle hospital, kk = 71
    ("741234563", "KV Niedersachsen"),  # 74kk… SAPV, kk = 12 (Niedersachsen district)
])
def test_kv_for_bsnr(bsnr: str, kv: str | None) -> None:
    assert kv_for_bsnr(bsnr) == kv


def test_fachgruppen_evidence_markers() -> None:
    verified = {code for code, fg in FACHGRUPPEN.items() if fg.evidence is Evidence.VERIFIED}
    assert verified == {"00", "28", "33"}
    assert FACHGRUPPEN["67"].evidence is Evidence.UNVERIFIED  # Urologie: to be confirmed
    fg = fachgruppe_of_lanr("123456628")
    assert fg is not None and fg.label == "Kardiologie"
    assert fachgruppe_of_lanr("12345") is None


@pytest.mark.parametrize(("text", "slug"), [
    ("Urologie", "urologie"), ("urologie", "urologie"), ("HNO", "hals-nasen-ohrenheilkunde"),
    ("Orthopädie und Unfallchirurgie", "orthopaedie-und-unfallchirurgie"),
    ("Kieferorthopädie", "kieferorthopaedie"), ("Zahnmedizin", "zahnmedizin"),
    ("Psychotherapie", "psychotherapie"), ("Zauberei", None),
])
def test_find_specialty(text: str, slug: str | None) -> None:
    spec = find_specialty(text)
    assert (spec.slug if spec else None) == slug


def test_specialty_slugs_are_clean_and_unique() -> None:
    slugs = [s.slug for s in SPECIALTIES]
    assert len(slugs) == len(set(slugs))
    assert all(s == s.lower() and s.replace("-", "").isalnum() and s.isascii() for s in slugs)
    assert any(s.dental for s in SPECIALTIES)


def test_match_key_and_split_list() -> None:
    assert match_key("Ärzt:in") == match_key("Ärzt*in") == match_key("ÄRZTIN") == "aerztin"
    assert match_key(" Praxisname* ") == match_key("praxisname:") == "praxisname"
    assert split_list("a, b;c\nd\r\n ,") == ["a", "b", "c", "d"]
