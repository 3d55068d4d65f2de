"""Audience groups and broadcast targets (pure).

A practice's realm puts every staff member into prefixed, stable groups for the four
attributes a broadcast can target; they reach the practice's Nextcloud through the groups
claim (user_oidc group provisioning with a whitelist):

=========== ========== =========================================================
dimension   prefix     value
=========== ========== =========================================================
KV / KZV    ``kv-``    land code of the practice's KV (``kv-rlp``); KZVs ``kzv-`` (``kzv-by``)
Fachrichtung ``fach-`` the person's specialty slug (``fach-urologie``)
Rolle       ``rolle-`` the person's role slug (``rolle-mfa``)
Arbeitsbereich ``bereich-`` each work area slug (``bereich-abrechnung``)
=========== ========== =========================================================

Every value is ASCII ``[a-z0-9-]`` (umlauts transliterated: ``fach-orthopaedie-…``),
deterministic and independent of display labels, so a group id never changes.

A ``Target`` is a conjunction of clauses, each clause a set of group ids of which a user
needs at least one: AND across clauses, OR within one. ``--kv``/``--fach``/``--rolle``/
``--bereich`` make one clause per dimension; ``--any`` makes one clause across dimensions,
e.g. KV ∈ {RLP} and (Fachrichtung ∈ {Urologie} or Arbeitsbereich ∈ {Abrechnung}):
``(("kv-rlp",), ("fach-urologie", "bereich-abrechnung"))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .catalog import (
    LAND_CODES,
    REGIONS,
    SPECIALTIES_BY_SLUG,
    find_region,
    find_specialty,
    match_key,
)
from .model import LabelledEnum, Person, PracticeSpec, Role, WorkArea
from .names import slugify

DIMENSIONS = ("kv", "fach", "rolle", "bereich")
PREFIXES = ("kv-", "kzv-", "fach-", "rolle-", "bereich-")
GROUP_RE = re.compile(r"^(?:kv|kzv|fach|rolle|bereich)-[a-z0-9]+(?:-[a-z0-9]+)*$")

def kv_group(kv: str) -> str:
    """``KV Rheinland-Pfalz`` → ``kv-rlp``, ``KZV Bayern`` → ``kzv-by`` (any accepted form)."""
    region = find_region(kv)
    if region is None:
        raise ValueError(f"unknown KV/KZV {kv!r}")
    return f"{'kzv' if region.dental else 'kv'}-{LAND_CODES[region.land]}"


def fach_group(specialty: str) -> str:
    """A specialty slug or label → ``fach-<slug>``."""
    found = SPECIALTIES_BY_SLUG.get(specialty) or find_specialty(specialty)
    if found is None:
        raise ValueError(f"unknown Fachrichtung {specialty!r}")
    return f"fach-{slugify(found.slug)}"


def rolle_group(role: Role) -> str:
    return f"rolle-{slugify(role.value)}"


def bereich_group(area: WorkArea) -> str:
    return f"bereich-{slugify(area.value)}"


def person_groups(person: Person, spec: PracticeSpec) -> set[str]:
    """The audience groups of one staff member (what the groups claim carries for them)."""
    groups = {rolle_group(person.role)}
    groups.update(bereich_group(area) for area in person.work_areas)
    if spec.kv:
        groups.add(kv_group(spec.kv))
    if person.specialty:
        groups.add(fach_group(person.specialty))
    return groups


def all_groups() -> set[str]:
    """Every audience group there can be (for tests and the whitelist's documentation)."""
    out = {f"{'kzv' if r.dental else 'kv'}-{LAND_CODES[r.land]}" for r in REGIONS}
    out.update(f"fach-{slugify(s)}" for s in SPECIALTIES_BY_SLUG)
    out.update(rolle_group(r) for r in Role)
    out.update(bereich_group(a) for a in WorkArea)
    return out


# --- targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """AND over ``clauses``; a clause holds when the user is in ANY of its groups."""

    clauses: tuple[tuple[str, ...], ...]

    def matches(self, groups: Iterable[str]) -> bool:
        have = set(groups)
        return bool(self.clauses) and all(have.intersection(c) for c in self.clauses)

    def encode(self) -> str:
        """``kv-rlp;fach-urologie,bereich-abrechnung`` (what the platform script reads)."""
        return ";".join(",".join(c) for c in self.clauses)

    @classmethod
    def decode(cls, text: str) -> Target:
        clauses = tuple(
            tuple(sorted({g for g in part.split(",") if g})) for part in text.split(";") if part
        )
        target = cls(tuple(sorted(set(clauses))))
        target.validate()
        return target

    def validate(self) -> None:
        if not self.clauses or any(not c for c in self.clauses):
            raise ValueError("a target needs at least one criterion")
        bad = sorted({g for c in self.clauses for g in c if not GROUP_RE.match(g)})
        if bad:
            raise ValueError(f"not an audience group: {', '.join(bad)}")

    def describe(self) -> str:
        return " AND ".join(
            c[0] if len(c) == 1 else "(" + " OR ".join(c) + ")" for c in self.clauses
        )


# dimension → the enum its values name (by slug or label), and its noun in messages
_LABELLED_DIMENSIONS: dict[str, tuple[type[LabelledEnum], str]] = {
    "rolle": (Role, "Rolle"),
    "bereich": (WorkArea, "Arbeitsbereich"),
}


def _labelled_group(dimension: str, value: str) -> str:
    members, noun = _LABELLED_DIMENSIONS[dimension]
    key = match_key(value)
    for member in members:
        if key in (match_key(member.value), match_key(member.label)):
            return f"{dimension}-{slugify(member.value)}"
    raise ValueError(
        f"unknown {noun} {value!r} (one of {', '.join(m.label for m in members)})"
    )


def group_for(dimension: str, value: str) -> str:
    """One criterion as given by a person (``fach``, ``Urologie``) → its group id.

    Raises ValueError naming the value and the valid choices."""
    value = value.strip()
    if GROUP_RE.match(value) and value.startswith(f"{dimension}-"):
        return value
    if dimension == "kv":
        if GROUP_RE.match(value) and value.startswith("kzv-"):
            return value
        region = find_region(value)
        if region is None:
            code = value.lower()
            for land, land_code in LAND_CODES.items():
                if code == land_code or match_key(value) == match_key(land):
                    return f"kv-{LAND_CODES[land]}"
            raise ValueError(
                f"unknown KV {value!r} (e.g. 'KV Rheinland-Pfalz', 'KZV Bayern', 'rlp')"
            )
        return kv_group(region.short)
    if dimension == "fach":
        return fach_group(value)
    if dimension in _LABELLED_DIMENSIONS:
        return _labelled_group(dimension, value)
    raise ValueError(f"unknown dimension {dimension!r} (one of {', '.join(DIMENSIONS)})")


def build_target(
    by_dimension: dict[str, list[str]], any_of: Iterable[str] = ()
) -> Target:
    """``{"kv": ["KV Rheinland-Pfalz"], "fach": ["Urologie"]}`` (AND across, OR within)
    plus ``any_of`` clauses ``"fach=Urologie,bereich=Abrechnung"`` (OR across dimensions)."""
    clauses: list[tuple[str, ...]] = []
    for dimension in DIMENSIONS:
        values = [v for raw in by_dimension.get(dimension, []) for v in raw.split(",") if v.strip()]
        if values:
            clauses.append(tuple(sorted({group_for(dimension, v) for v in values})))
    for clause in any_of:
        groups: set[str] = set()
        for part in clause.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"--any {clause!r}: expected dimension=value[,dimension=value]")
            dimension, value = part.split("=", 1)
            groups.add(group_for(dimension.strip().lower(), value))
        if groups:
            clauses.append(tuple(sorted(groups)))
    target = Target(tuple(sorted(set(clauses))))
    target.validate()
    return target
