"""Billable seats (pure).

Billable = persons with role Praxisinhaber:in, Ärzt:in, Zahnärzt:in or Psychotherapeut:in.
A doctor with several LANRs (one per Fachgruppe) shares LANR digits 1–7 across them and is
counted once; persons without a LANR count one each. Weiterbildungsassistent:innen and all
staff are free. The count is a practice-level fact and may go into the inventory.
"""

from __future__ import annotations

from collections.abc import Iterable

from .lanr import lanr_person_key
from .model import Person, PracticeSpec


def billable_seats(spec_or_persons: PracticeSpec | Iterable[Person]) -> int:
    persons = (
        spec_or_persons.persons if isinstance(spec_or_persons, PracticeSpec) else spec_or_persons
    )
    doctors: set[str] = set()
    without_lanr = 0
    for person in persons:
        if not person.role.is_billable:
            continue
        numbers = person.lanrs or ((person.lanr,) if person.lanr else ())
        if numbers:
            doctors.add(lanr_person_key(numbers[0]))
        else:
            without_lanr += 1
    return len(doctors) + without_lanr
