"""Audience groups (the realm's groups claim) and broadcast targets: pure domain."""

from __future__ import annotations

import re

import pytest

from smartpraxx_provision.domain import audience
from smartpraxx_provision.domain.catalog import REGIONS
from smartpraxx_provision.domain.model import Person, PracticeSpec, PracticeType, Role, WorkArea
from smartpraxx_provision.render import realm as realm_render


def spec(kv: str = "KV Rheinland-Pfalz", *persons: Person) -> PracticeSpec:
    return PracticeSpec(praxisname="praxis-test", display_name="Praxis", kv=kv,
                        practice_type=PracticeType.ARZTPRAXIS, specialties=("urologie",),
                        order_id="o1", contact_email="a@example.org", persons=persons)


def person(role: Role, *areas: WorkArea, specialty: str | None = None) -> Person:
    return Person("Anna", "Ä", "a@example.org", "anna", role, areas, specialty=specialty)


@pytest.mark.parametrize(("kv", "group"), [
    ("KV Rheinland-Pfalz", "kv-rlp"), ("Kassenärztliche Vereinigung Rheinland-Pfalz", "kv-rlp"),
    ("KVRLP", "kv-rlp"), ("KV Baden-Württemberg", "kv-bw"), ("KV Thüringen", "kv-th"),
    ("KZV Bayern", "kzv-by"), ("KV Westfalen-Lippe", "kv-wl"), ("KV Nordrhein", "kv-no"),
])
def test_kv_groups(kv: str, group: str) -> None:
    assert audience.kv_group(kv) == group


def test_every_region_has_a_distinct_ascii_group() -> None:
    groups = [audience.kv_group(r.short) for r in REGIONS]
    assert len(set(groups)) == len(REGIONS) == 34
    assert all(audience.GROUP_RE.match(g) for g in groups)


def test_slugs_are_ascii_transliterated_and_stable() -> None:
    assert audience.fach_group("Orthopädie und Unfallchirurgie") == (
        "fach-orthopaedie-und-unfallchirurgie")
    assert audience.fach_group("Urologie") == audience.fach_group("urologie") == "fach-urologie"
    assert audience.bereich_group(WorkArea.ROENTGEN) == "bereich-roentgen"
    assert audience.bereich_group(WorkArea.DATENSCHUTZ_IT) == "bereich-datenschutz-it"
    assert audience.rolle_group(Role.PRAXISINHABER) == "rolle-praxisinhaber"
    every = audience.all_groups()
    assert all(re.fullmatch(r"[a-z0-9-]+", g) and audience.GROUP_RE.match(g) for g in every)
    assert audience.slugify("Röntgen & Co. ß") == "roentgen-co-ss"


def test_person_groups_carry_kv_fach_rolle_bereiche() -> None:
    mfa = person(Role.MFA, WorkArea.ABRECHNUNG, WorkArea.EMPFANG)
    doc = person(Role.ARZT, specialty="urologie")
    s = spec("KV Rheinland-Pfalz", mfa, doc)
    assert audience.person_groups(mfa, s) == {
        "kv-rlp", "rolle-mfa", "bereich-abrechnung", "bereich-empfang"}
    assert audience.person_groups(doc, s) == {"kv-rlp", "rolle-arzt", "fach-urologie"}


def test_realm_groups_and_memberships_include_the_audience_groups() -> None:
    mfa = person(Role.MFA, WorkArea.ABRECHNUNG)
    s = spec("KZV Bayern", mfa)
    groups = realm_render.desired_groups(s)
    assert groups["audience:kzv-by"] == "kzv-by"
    assert groups["audience:bereich-abrechnung"] == "bereich-abrechnung"
    assert "audience:fach-urologie" not in groups  # nobody has it
    keys = realm_render.person_group_keys(mfa, s)
    assert {"audience:kzv-by", "audience:rolle-mfa", "area:abrechnung"} <= keys
    assert realm_render.desired_groups() == {k: v for k, v in groups.items()
                                         if not k.startswith("audience:")}


def test_whitelist_regex_manages_only_the_realms_groups() -> None:
    pattern = realm_render.group_whitelist_regex()
    assert pattern.startswith("/^") and pattern.endswith("$/")
    rx = re.compile(pattern[1:-1])
    for gid in [*audience.all_groups(), *realm_render.desired_groups().values()]:
        assert rx.search(gid), gid
    for gid in ("admin", "news-b0123456789ab", "Praxis-Admins-x", "kv-", "fach-Uro"):
        assert not rx.search(gid), gid


def test_target_and_or_semantics() -> None:
    t = audience.build_target({"kv": ["KV Rheinland-Pfalz"]},
                              ["fach=Urologie,bereich=Abrechnung"])
    assert t.clauses == (("bereich-abrechnung", "fach-urologie"), ("kv-rlp",))
    assert t.matches({"kv-rlp", "fach-urologie"})
    assert t.matches({"kv-rlp", "bereich-abrechnung", "rolle-mfa"})
    assert not t.matches({"kv-rlp", "rolle-mfa"})
    assert not t.matches({"kv-bw", "fach-urologie"})
    assert not t.matches(set())
    assert audience.Target.decode(t.encode()) == t
    assert t.encode() == "bereich-abrechnung,fach-urologie;kv-rlp"
    both = audience.build_target({"kv": ["rlp", "KV Hessen"], "rolle": ["MFA"]})
    assert both.matches({"kv-he", "rolle-mfa"}) and not both.matches({"kv-he"})
    assert "AND" in both.describe()


@pytest.mark.parametrize(("by", "any_of", "message"), [
    ({}, [], "at least one"),
    ({"kv": ["KV Atlantis"]}, [], "unknown KV"),
    ({"fach": ["Alchemie"]}, [], "unknown Fachrichtung"),
    ({"rolle": ["Chef"]}, [], "unknown Rolle"),
    ({"bereich": ["Keller"]}, [], "unknown Arbeitsbereich"),
    ({}, ["fach"], "dimension=value"),
    ({}, ["ort=Mainz"], "unknown dimension"),
])
def test_bad_targets_name_the_value(by: dict[str, list[str]], any_of: list[str],
                                    message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audience.build_target(by, any_of)


def test_decode_refuses_non_audience_groups() -> None:
    with pytest.raises(ValueError, match="not an audience group"):
        audience.Target.decode("admin;kv-rlp")
