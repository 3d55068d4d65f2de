"""Usernames (transliteration, uniqueness) and praxisname rules (reserved, lookalikes)."""

from __future__ import annotations

import pytest

from smartpraxx_provision.domain.names import (
    RESERVED_PRAXISNAMES,
    lookalike_chars,
    praxisname_problem,
    suggest_praxisname,
    unique_usernames,
    username_base,
    username_problem,
)


@pytest.mark.parametrize(("first", "last", "expected"), [
    ("Anna", "Müller", "anna.mueller"),
    ("Jörg", "Weiß", "joerg.weiss"),
    ("Ärzte", "Öztürk", "aerzte.oeztuerk"),
    ("Zoë", "Françoise", "zoe.francoise"),
    ("Anna Lena", "von der Heide", "anna-lena.von-der-heide"),
    ("Mehmet", "Yılmaz", "mehmet.ylmaz"),  # dotless ı has no ASCII form
    ("  Max ", " Mustermann-Schulz ", "max.mustermann-schulz"),
    ("李", "王", ""),
    ("A" * 60, "B" * 60, ("a" * 60 + ".bbb")),
])
def test_username_base(first: str, last: str, expected: str) -> None:
    assert username_base(first, last) == expected
    if expected:
        assert username_problem(expected) is None


def test_unique_usernames_suffix_and_taken() -> None:
    assert unique_usernames(["anna.m", "anna.m", "ben", "anna.m"], taken=["ben"]) == [
        "anna.m", "anna.m2", "ben2", "anna.m3"]
    long = "x" * 64
    assert unique_usernames([long, long]) == [long, "x" * 63 + "2"]


@pytest.mark.parametrize(("name", "ok"), [
    ("anna.mueller", True), ("a_b-c.d", True), ("ab", True), ("a", False),
    ("Anna", False), ("anna müller", False), ("x" * 65, False), ("аnna", False),
])
def test_username_problem(name: str, ok: bool) -> None:
    assert (username_problem(name) is None) is ok


@pytest.mark.parametrize(("name", "fragment", "suggestion"), [
    ("praxis-mueller", None, "praxis-mueller"),
    ("abc", None, "abc"),
    ("a" * 40, None, "a" * 40),
    ("Praxis Müller", "lowercase", "praxis-mueller"),
    ("praxis_mueller", "lowercase", "praxis-mueller"),
    ("ab", "3–40", None),
    ("a" * 41, "3–40", "a" * 40),
    ("1praxis", "start with a letter", "praxis-1praxis"),
    ("-praxis", "start with a letter", "praxis"),
    ("praxis--x", "'--'", "praxis-x"),
    ("admin", "reserved", "praxis-admin"),
    ("www", "reserved", "praxis-www"),
    ("prаxis", "U+0430 CYRILLIC SMALL LETTER A", "praxis"),  # Cyrillic а
    ("pοlyklinik", "GREEK SMALL LETTER OMICRON", "polyklinik"),
    ("ｐraxis", "FULLWIDTH", "praxis"),
    ("praxis‐nord", "HYPHEN", "praxis-nord"),  # U+2010
    ("praxis\u200bnord", "ZERO WIDTH SPACE", "praxisnord"),
    ("", "empty", None),
])
def test_praxisname(name: str, fragment: str | None, suggestion: str | None) -> None:
    problem = praxisname_problem(name)
    assert (problem is None) if fragment is None else (problem is not None and fragment in problem)
    assert suggest_praxisname(name) == suggestion


def test_reserved_names_listed_in_spec() -> None:
    assert {"admin", "api", "auth", "realms", "resources", "js", "master", "www", "mein",
            "support", "static", "health"} == RESERVED_PRAXISNAMES


def test_umlauts_are_not_lookalikes() -> None:
    assert lookalike_chars("müller") == []
    assert lookalike_chars("mü\u0430") == ["\u0430"]
