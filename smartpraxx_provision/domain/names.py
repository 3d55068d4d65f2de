"""Name rules (pure): transliteration, usernames, praxisname."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

_GERMAN = {
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss",
    "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ẞ": "SS",
}


def transliterate(text: str) -> str:
    """German transliteration (``ä→ae``, ``ß→ss``), other accents stripped, ASCII out."""
    text = "".join(_GERMAN.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).encode(
        "ascii", "ignore"
    ).decode("ascii")


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """ASCII slug: transliterated (``ä→ae``, ``ß→ss``), lower case, runs of others → ``-``."""
    return _NOT_SLUG.sub("-", transliterate(text).lower()).strip("-")


# --- usernames ----------------------------------------------------------------------

USERNAME_RE = re.compile(r"^[a-z0-9._-]{2,64}$")
USERNAME_MAX = 64
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9]+")


def _name_part(text: str) -> str:
    ascii_text = transliterate(unicodedata.normalize("NFKC", text)).lower()
    return _NOT_NAME_CHAR.sub("-", ascii_text).strip("-")


def username_base(first_name: str, last_name: str) -> str:
    """``vorname.nachname`` transliterated and lowercased (``Jörg Weiß`` → ``joerg.weiss``).

    Spaces and other characters inside a name become ``-``. Returns ``""`` when nothing
    usable is left (e.g. a name in a non-Latin script).
    """
    parts = [p for p in (_name_part(first_name), _name_part(last_name)) if p]
    base = ".".join(parts)[:USERNAME_MAX].rstrip(".-")
    return base if len(base) >= 2 else ""


def username_problem(name: str) -> str | None:
    """None if ``name`` is a valid explicit username, else what is wrong."""
    if not USERNAME_RE.match(name):
        return "a username has 2–64 characters from a-z, 0-9, '.', '_' and '-'"
    return None


def unique_usernames(bases: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """Make derived usernames unique: the first keeps its base, later ones get 2, 3, ...

    ``taken`` are names already in use (explicit usernames); a derived name never equals one.
    """
    used = set(taken)
    out: list[str] = []
    for base in bases:
        candidate, n = base, 1
        while candidate in used:
            n += 1
            suffix = str(n)
            candidate = base[: USERNAME_MAX - len(suffix)] + suffix
        used.add(candidate)
        out.append(candidate)
    return out


# --- praxisname ---------------------------------------------------------------------

PRAXISNAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
RESERVED_PRAXISNAMES = frozenset(
    {"admin", "api", "auth", "realms", "resources", "js", "master", "www", "mein", "support",
     "static", "health"}
)

# Letters from other scripts that look like Latin ones (a practical subset of Unicode's
# confusables list: Cyrillic, Greek, Armenian and IPA letters seen in spoofed names), plus
# dash and space variants. Fullwidth and styled letters are handled by NFKC.
LOOKALIKES: dict[str, str] = {
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "х": "x",
    "ԝ": "w", "ɡ": "g", "ո": "n", "ս": "u", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "Х": "x", "Ι": "i", "Ο": "o", "Ρ": "p", "Τ": "t",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "\u00a0": " ",
}
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


def lookalike_chars(text: str) -> list[str]:
    """Characters of ``text`` that imitate ASCII letters/dashes or are invisible."""
    found: list[str] = []
    for ch in text:
        if ch.isascii() or ch in found:
            continue
        if ch in LOOKALIKES or ch in _INVISIBLE or unicodedata.normalize("NFKC", ch).isascii():
            found.append(ch)
    return found


def describe_char(ch: str) -> str:
    """``'а' (U+0430 CYRILLIC SMALL LETTER A)``."""
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')})"


def suggest_praxisname(text: str) -> str | None:
    """A valid praxisname close to ``text`` (``Praxis Müller`` → ``praxis-mueller``), or None."""
    folded = unicodedata.normalize("NFKC", "".join(LOOKALIKES.get(ch, ch) for ch in text))
    folded = "".join(ch for ch in folded if ch not in _INVISIBLE)
    slug = _NOT_NAME_CHAR.sub("-", transliterate(folded).lower()).strip("-")
    if slug and not slug[0].isalpha():
        slug = f"praxis-{slug}"
    slug = slug[:40].rstrip("-")
    if slug in RESERVED_PRAXISNAMES:
        slug = f"praxis-{slug}"
    return slug if praxisname_problem(slug) is None else None


def praxisname_problem(name: str) -> str | None:
    """None if ``name`` is a valid praxisname, else what is wrong (English)."""
    if not name:
        return "the praxisname is empty"
    odd = lookalike_chars(name)
    if odd:
        return (
            "contains characters that only look like Latin letters or dashes: "
            + ", ".join(describe_char(ch) for ch in odd)
        )
    if not re.fullmatch(r"[a-z0-9-]*", name):
        return "only lowercase a-z, 0-9 and '-' are allowed (no uppercase, umlauts or spaces)"
    if not 3 <= len(name) <= 40:
        return "must be 3–40 characters long"
    if not name[0].isalpha():
        return "must start with a letter"
    if "--" in name:
        return "must not contain '--'"
    if name in RESERVED_PRAXISNAMES:
        return "is a reserved name"
    return None
