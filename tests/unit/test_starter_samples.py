"""The samples in starter_excel_samples/ give the results documented in their README."""

from __future__ import annotations

from collections import Counter

import pytest

from smartpraxx_provision.domain.seats import billable_seats
from smartpraxx_provision.starter import read_starter_excel
from tests.conftest import SAMPLES

VALID = {
    # file: (praxisname, kv, persons, billable seats, third-party client ids)
    "hausarztpraxis-mueller.xlsx": ("praxis-mueller", "KV Rheinland-Pfalz", 8, 3,
                                    ["app-dienstplanung"]),
    "zahnarztpraxis-sonnenschein.xlsx": ("zahnarzt-sonnenschein", "KZV Bayern", 9, 2, []),
    "mvz-rheinaue.xlsx": ("mvz-rheinaue", "KV Nordrhein", 65, 19,
                          ["app-dienstplanung", "app-labor-portal"]),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_samples(name: str) -> None:
    result = read_starter_excel(SAMPLES / name)
    assert result.ok and not result.warnings, [p.format() for p in result.errors]
    spec = result.spec
    assert spec is not None
    praxisname, kv, persons, seats, third = VALID[name]
    assert (spec.praxisname, spec.kv, len(spec.persons), billable_seats(spec)) == (
        praxisname, kv, persons, seats)
    assert [a.client_id for a in spec.third_party_apps] == third


def test_mvz_has_doctors_with_two_lanrs() -> None:
    spec = read_starter_excel(SAMPLES / "mvz-rheinaue.xlsx").spec
    assert spec is not None
    two = [p for p in spec.persons if len(p.lanrs) == 2]
    assert len(two) == 3
    assert all(p.lanrs[0][:7] == p.lanrs[1][:7] for p in two)
    assert len({s for s in spec.specialties}) >= 5


def test_dental_sample_roles() -> None:
    spec = read_starter_excel(SAMPLES / "zahnarztpraxis-sonnenschein.xlsx").spec
    assert spec is not None
    roles = Counter(p.role.value for p in spec.persons)
    assert {"zfa", "zmp", "dh", "zmv"} <= set(roles)


def test_invalid_sample_lists_every_problem_with_a_cell() -> None:
    result = read_starter_excel(SAMPLES / "invalid-praxis-kaputt.xlsx")
    assert not result.ok
    wheres = [p.where for p in result.errors]
    assert len(wheres) == 23
    # every problem but the missing label names a cell
    assert [w for w in wheres if "!" not in w] == ["Praxis (Bestellnummer)"]
    assert [p.where for p in result.warnings] == [
        "Praxis!A10", "Mitarbeitende!J1", "Mitarbeitende!G9 (LANR)"]
