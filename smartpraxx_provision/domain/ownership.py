"""Ownership (DESIGN invariant 8): the one place that names the owner marks.

Every Docker object (network, volumes, containers) the tool creates carries the labels
``de.smartpraxx.installation`` (the inventory's stable installation id) and
``de.smartpraxx.practice`` (the practice id, a UUID that never changes); every realm carries
the same two values as realm attributes. The doors (adapters/docker_engine.py,
adapters/keycloak.py) compare them before reusing, replacing or deleting anything. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# The Docker labels of every object the tool creates (the slot, the role in it, the mark
# that the tool made it, the hash of the spec a container was created from) and the owner.
LABEL_SLOT = "de.smartpraxx.slot"
LABEL_ROLE = "de.smartpraxx.role"
LABEL_MANAGED = "de.smartpraxx.managed"
LABEL_SPEC_HASH = "de.smartpraxx.spec-hash"
LABEL_INSTALLATION = "de.smartpraxx.installation"
LABEL_PRACTICE = "de.smartpraxx.practice"
REALM_ATTR_INSTALLATION = "smartpraxx_installation"
REALM_ATTR_PRACTICE = "smartpraxx_practice"

# A slot-scoped object name: ``nc07-cloud023`` or ``nc07-cloud023-<role>``.
SLOT_OBJECT_RE = re.compile(r"^nc(?P<number>\d{2,})-(?P<host>cloud\d{3,})(?:-[A-Za-z0-9_.-]+)?$")

Verdict = Literal["ours", "foreign", "unlabelled"]


@dataclass(frozen=True)
class Owner:
    """Who an object belongs to: an installation (inventory) and a practice in it."""

    installation: str
    practice: str

    def labels(self) -> dict[str, str]:
        return {LABEL_INSTALLATION: self.installation, LABEL_PRACTICE: self.practice}

    def realm_attributes(self) -> dict[str, str]:
        return {REALM_ATTR_INSTALLATION: self.installation, REALM_ATTR_PRACTICE: self.practice}

    def describe(self) -> str:
        return f"installation {self.installation}, practice {self.practice}"


def owner_from_labels(labels: dict[str, str] | None) -> Owner | None:
    """The owner a Docker object's labels name (None: not labelled with both)."""
    labels = labels or {}
    inst, practice = labels.get(LABEL_INSTALLATION), labels.get(LABEL_PRACTICE)
    return Owner(inst, practice) if inst and practice else None


def owner_from_realm(attributes: dict[str, object] | None) -> Owner | None:
    """The owner a realm's attributes name (Keycloak may answer a value or a list)."""

    def one(value: object) -> str:
        if isinstance(value, list):
            value = value[0] if value else ""
        return value if isinstance(value, str) else ""

    attributes = attributes or {}
    inst = one(attributes.get(REALM_ATTR_INSTALLATION))
    practice = one(attributes.get(REALM_ATTR_PRACTICE))
    return Owner(inst, practice) if inst and practice else None


def verdict(found: Owner | None, expected: Owner) -> Verdict:
    if found is None:
        return "unlabelled"
    return "ours" if found == expected else "foreign"


def describe_owner(found: Owner | None) -> str:
    return "no owner labels" if found is None else found.describe()


def slot_of_name(name: str) -> tuple[str, int] | None:
    """(host, slot number) of a slot-scoped object name, else None."""
    m = SLOT_OBJECT_RE.match(name)
    return (m.group("host"), int(m.group("number"))) if m else None


def scan_hint(host: str) -> str:
    return f"smartpraxx-provision hosts scan {host}"
