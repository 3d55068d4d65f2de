"""The owner marks (domain/ownership.py): one place for the names, pure verdicts."""

from __future__ import annotations

import pytest

from smartpraxx_provision.domain.ownership import (
    LABEL_INSTALLATION,
    LABEL_PRACTICE,
    REALM_ATTR_INSTALLATION,
    REALM_ATTR_PRACTICE,
    Owner,
    owner_from_labels,
    owner_from_realm,
    slot_of_name,
    verdict,
)

OURS = Owner("inst-a", "prac-1")


def test_labels_and_realm_attributes_round_trip() -> None:
    assert owner_from_labels(OURS.labels()) == OURS
    assert owner_from_realm(OURS.realm_attributes()) == OURS
    assert set(OURS.labels()) == {LABEL_INSTALLATION, LABEL_PRACTICE}
    assert set(OURS.realm_attributes()) == {REALM_ATTR_INSTALLATION, REALM_ATTR_PRACTICE}
    # Keycloak may answer attribute values as lists
    assert owner_from_realm({k: [v] for k, v in OURS.realm_attributes().items()}) == OURS


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (OURS.labels(), "ours"),
        (Owner("inst-b", "prac-1").labels(), "foreign"),  # other installation
        (Owner("inst-a", "prac-2").labels(), "foreign"),  # other practice
        ({"de.smartpraxx.slot": "nc01-cloud001"}, "unlabelled"),
        ({LABEL_INSTALLATION: "inst-a"}, "unlabelled"),  # half a mark is no mark
        ({}, "unlabelled"),
        (None, "unlabelled"),
    ],
)
def test_verdicts(labels: dict[str, str] | None, expected: str) -> None:
    assert verdict(owner_from_labels(labels), OURS) == expected


@pytest.mark.parametrize(
    ("name", "slot"),
    [
        ("nc01-cloud001", ("cloud001", 1)),
        ("nc07-cloud023-db", ("cloud023", 7)),
        ("nc123-cloud4567-app", ("cloud4567", 123)),
        ("nc07-cloud023-net", ("cloud023", 7)),
        ("smartpraxx-keycloak", None),
        ("nc7-cloud023", None),
        ("xnc07-cloud023", None),
        ("nc07-cloud02", None),
    ],
)
def test_slot_of_name(name: str, slot: tuple[str, int] | None) -> None:
    assert slot_of_name(name) == slot
