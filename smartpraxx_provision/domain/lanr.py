"""LANR and BSNR rules (pure).

LANR = lebenslange Arztnummer, 9 digits ``nnnnnnpff``: digits 1–6 the person, digit 7 the
check digit, 8–9 the Fachgruppe. Check digit per [KVDT 6.02] rule 050: digits 1–6 weighted
4,9,4,9,4,9, sum mod 10, check digit = (10 - remainder) mod 10; equivalently
``(4·d1 + 9·d2 + 4·d3 + 9·d4 + 4·d5 + 9·d6 + 1·d7) mod 10 == 0``.

BSNR = Betriebsstättennummer, 9 digits; digits 1–2 a KV code (rule 162), no check digit.

Functions return ``None`` when the number is fine, else an English message naming the rule
(never the number itself: LANRs are personal data).
"""

from __future__ import annotations

from .catalog import BSNR_PREFIX_KV, BSNR_SPECIAL_PREFIXES

LANR_WEIGHTS = (4, 9, 4, 9, 4, 9)
BSNR_PREFIX_RANGES = "01-03, 06-21, 24, 25, 27, 28, 31, 37-73, 78-81, 83, 85-88, 93-96, 98, 99"


def lanr_check_digit(first_six: str) -> int:
    """The check digit (digit 7) for the LANR's digits 1–6."""
    if len(first_six) != 6 or not first_six.isascii() or not first_six.isdigit():
        raise ValueError("expected 6 digits")
    total = sum(int(d) * w for d, w in zip(first_six, LANR_WEIGHTS, strict=True))
    return (10 - total % 10) % 10


def pseudo_lanr_reason(lanr: str) -> str | None:
    """Why ``lanr`` is a pseudo/placeholder number (not a person), or None."""
    if lanr == "999999900":
        return "999999900 is the substitute value for doctors without a LANR"
    if lanr == "888888800":
        return "888888800 is the obsolete substitute value (KVDT rule 878)"
    if lanr.startswith("4444444"):
        return "4444444ff is the pseudonym for hospital discharge prescriptions"
    if lanr.startswith("3333333"):
        return "3333333ff is a pseudo number"
    if lanr.startswith("555555"):
        return "555555nff is the pseudo number for hospital doctors in ASV billing"
    return None


def lanr_problem(lanr: str) -> str | None:
    """None if ``lanr`` is a real person's LANR, else the reason it is not."""
    if len(lanr) != 9 or not lanr.isascii() or not lanr.isdigit():
        return "a LANR has exactly 9 digits"
    pseudo = pseudo_lanr_reason(lanr)
    if pseudo:
        return f"pseudo LANR: {pseudo}; enter the person's own LANR or leave it empty"
    if lanr_check_digit(lanr[:6]) != int(lanr[6]):
        return "wrong check digit (digit 7) per the KBV rule; check for a typo"
    return None


def lanr_person_key(lanr: str) -> str:
    """Digits 1–7: the same for every LANR of one doctor (one per Fachgruppe)."""
    return lanr[:7]


def bsnr_problem(bsnr: str) -> str | None:
    """None if ``bsnr`` is well-formed with a known KV prefix, else the reason."""
    if len(bsnr) != 9 or not bsnr.isascii() or not bsnr.isdigit():
        return "a BSNR has exactly 9 digits"
    prefix = bsnr[:2]
    if prefix in BSNR_SPECIAL_PREFIXES:
        prefix = bsnr[2:4]
    if prefix not in BSNR_PREFIX_KV:
        return f"digits 1–2 are not a KV code (KBV list: {BSNR_PREFIX_RANGES})"
    return None
