"""Billable seats: owners, doctors, dentists, psychotherapists; once per LANR digits 1–7."""

from __future__ import annotations

from smartpraxx_provision.domain.model import Person, PracticeSpec, PracticeType, Role
from smartpraxx_provision.domain.seats import billable_seats


def p(role: Role, *lanrs: str) -> Person:
    return Person("V", "N", "v@n.example", "v.n", role, lanr=lanrs[0] if lanrs else None,
                  lanrs=tuple(lanrs))


def test_roles_that_count() -> None:
    persons = [p(Role.PRAXISINHABER), p(Role.ARZT), p(Role.ZAHNARZT), p(Role.PSYCHOTHERAPEUT),
               p(Role.WEITERBILDUNGSASSISTENT), p(Role.MFA), p(Role.ZFA), p(Role.AZUBI),
               p(Role.PRAXISMANAGER), p(Role.SONSTIGE), p(Role.DH)]
    assert billable_seats(persons) == 4


def test_distinct_lanr_digits_1_to_7() -> None:
    persons = [
        p(Role.ARZT, "123456623", "123456628"),  # one doctor, two Fachgruppen
        p(Role.PRAXISINHABER, "123456601"),  # the same doctor again in another row
        p(Role.ARZT, "654321101"),
        p(Role.ARZT),  # no LANR: counts on its own
        p(Role.WEITERBILDUNGSASSISTENT, "100234001"),  # free
    ]
    assert billable_seats(persons) == 3


def test_lanr_only_in_lanr_field_and_spec_input() -> None:
    legacy = Person("V", "N", "v@n.example", "v.n", Role.ARZT, lanr="123456699")
    spec = PracticeSpec("praxis-x", "X", PracticeType.ARZTPRAXIS, "KV Berlin", ("urologie",),
                        "1", "a@b.example", persons=(legacy, p(Role.ARZT, "123456601")))
    assert billable_seats(spec) == 1
    assert billable_seats(()) == 0
