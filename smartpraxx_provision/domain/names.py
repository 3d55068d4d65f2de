"""Name rules: transliteration of German names (pure)."""

from __future__ import annotations

import unicodedata

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
