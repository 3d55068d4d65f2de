"""LANR check digit (KBV rule, weights 4,9,4,9,4,9 + check digit weight 1), pseudo numbers,
BSNR format and prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpraxx_provision.domain.lanr import (
    bsnr_problem,
    lanr_check_digit,
    lanr_person_key,
    lanr_problem,
    pseudo_lanr_reason,
)


@pytest.mark.parametrize(("first_six", "digit"), [
    ("123456", 6),  # [KVDT 6.02] example LANR 123456699
    ("654321", 1),  # reference, second worked example
    ("000000", 0),
])
def test_check_digit_examples(first_six: str, digit: int) -> None:
    assert lanr_check_digit(first_six) == digit


@given(st.integers(min_value=0, max_value=999_999), st.integers(min_value=0, max_value=99))
def test_valid_lanrs_satisfy_weighted_sum(person: int, fachgruppe: int) -> None:
    first = f"{person:06d}"
    number = f"{first}{lanr_check_digit(first)}{fachgruppe:02d}"
    weights = (4, 9, 4, 9, 4, 9, 1)
    assert sum(int(d) * w for d, w in zip(number[:7], weights, strict=True)) % 10 == 0
    if pseudo_lanr_reason(number) is None:
        assert lanr_problem(number) is None
    # any single wrong check digit is caught
    wrong = (int(number[6]) + 1) % 10
    assert lanr_problem(number[:6] + str(wrong) + number[7:]) is not None


@pytest.mark.parametrize(("lanr", "fragment"), [
    ("123456699", None),
    ("123456799", "check digit"),
    ("12345669", "9 digits"),
    ("1234566999", "9 digits"),
    ("12345669a", "9 digits"),
    ("１２３４５６６９９", "9 digits"),  # fullwidth digits are not ASCII digits
    ("999999900", "pseudo"),
    ("888888800", "obsolete"),
    ("444444401", "discharge"),
    ("333333301", "pseudo"),
    ("555555501", "ASV"),
    ("555555123", "ASV"),
])
def test_lanr_problem(lanr: str, fragment: str | None) -> None:
    problem = lanr_problem(lanr)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem
        if pseudo_lanr_reason(lanr) is None:  # public placeholders may be named
            assert lanr not in problem  # never echo a person's number


def test_pseudo_numbers_have_correct_check_digits() -> None:
    # the check digit alone would not flag them (reference, section b)
    for first in ("999999", "444444", "333333", "555555"):
        assert lanr_check_digit(first) == int(first[0])


def test_person_key() -> None:
    assert lanr_person_key("123456623") == lanr_person_key("123456628") == "1234566"


@pytest.mark.parametrize(("bsnr", "fragment"), [
    ("511234500", None), ("010123499", None), ("991234500", None), ("357112345", None),
    ("741234563", None), ("51123450", "9 digits"), ("5112345000", "9 digits"),
    ("04123450 ", "9 digits"), ("041234500", "KV code"), ("221234500", "KV code"),
    ("751234500", "KV code"), ("350412345", "KV code"),
])
def test_bsnr_problem(bsnr: str, fragment: str | None) -> None:
    problem = bsnr_problem(bsnr)
    assert (problem is None) if fragment is None else (problem is not None and fragment in problem)
