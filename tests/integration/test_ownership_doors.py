"""The Docker and Keycloak doors check the owner before reusing, replacing, exec'ing into or
deleting anything (DESIGN invariant 8) — against the real engine and the real Keycloak."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from smartpraxx_provision.adapters.docker_engine import ContainerSpec
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.domain.ownership import (
    LABEL_INSTALLATION,
    LABEL_PRACTICE,
    LABEL_SLOT,
    REALM_ATTR_INSTALLATION,
    Owner,
)
from smartpraxx_provision.errors import SafetyRefusal
from smartpraxx_provision.operations import identity, identity_export, identity_smoke
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.secrets import FileSecretStore
from tests.fixtures.stack import DockerScratch

from .test_identity import make_spec

pytestmark = pytest.mark.integration

A = Owner("inst-a-" + secrets.token_hex(4), "prac-1")
B_OTHER_INSTALLATION = Owner("inst-b-" + secrets.token_hex(4), "prac-1")
A_OTHER_PRACTICE = Owner(A.installation, "prac-2")


def _names(scratch: DockerScratch) -> tuple[str, str]:
    host = f"cloud9{secrets.randbelow(10**5):05d}"
    return f"nc01-{host}", host


@pytest.mark.parametrize("other", [B_OTHER_INSTALLATION, A_OTHER_PRACTICE], ids=["inst", "prac"])
def test_docker_door_refuses_objects_of_another_owner(
    docker_scratch: DockerScratch, local_images: dict[str, str], other: Owner
) -> None:
    plain = docker_scratch.engine
    mine, theirs = plain.owned_by(A), plain.owned_by(other)
    slot, host = _names(docker_scratch)
    net, vol, box = f"{slot}-net", f"{slot}-data", f"{slot}-app"
    labels = {**docker_scratch.labels, LABEL_SLOT: slot}
    spec = ContainerSpec(
        name=box,
        image=local_images["base"],
        labels=labels,
        network=net,
        volumes={vol: "/data"},
        command=["sleep", "600"],
        restart_policy="no",
    )
    assert mine.ensure_network(net, labels) is True
    assert mine.ensure_container(spec) == "created"
    assert mine.ensure_container(spec) == "running"
    for kind in ("container", "volume", "network"):
        got = plain.object_labels(kind, {"container": box, "volume": vol, "network": net}[kind])
        assert got is not None
        assert (got[LABEL_INSTALLATION], got[LABEL_PRACTICE]) == (A.installation, A.practice)
    before = plain.inspect_container(box)
    assert before is not None

    attempts: list[Callable[[], object]] = [
        lambda: theirs.ensure_network(net, labels),
        lambda: theirs.ensure_volume(vol, labels),
        lambda: theirs.ensure_container(spec),
        lambda: theirs.ensure_container(ContainerSpec(**{**spec.__dict__, "command": ["true"]})),
        lambda: theirs.exec(box, ["true"]),
        lambda: list(theirs.get_archive(box, "/data")),
        lambda: theirs.start_container(box),
        lambda: theirs.remove_container(box),
        lambda: theirs.remove_volume(vol),
        lambda: theirs.remove_network(net),
    ]
    for attempt in attempts:
        with pytest.raises(SafetyRefusal) as err:
            attempt()
        assert "foreign" in err.value.message and A.installation in err.value.message
        assert f"hosts scan {host}" in (err.value.hint or "")
        assert err.value.exit_code == 1
    after = plain.inspect_container(box)
    assert after is not None and (after.id, after.status) == (before.id, "running")
    assert plain.object_labels("volume", vol) is not None
    assert plain.object_labels("network", net) is not None
    # the owner itself may remove them
    assert mine.remove_container(box) and mine.remove_volume(vol) and mine.remove_network(net)


def test_docker_door_refuses_unlabelled_objects_unless_adopted(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    plain = docker_scratch.engine
    slot, _host = _names(docker_scratch)
    vol = f"{slot}-db"
    stray = f"{slot}-stray"
    plain.ensure_volume(vol, {**docker_scratch.labels, LABEL_SLOT: slot})  # made before marks
    plain.ensure_volume(stray, dict(docker_scratch.labels))  # not even a slot label
    with pytest.raises(SafetyRefusal, match="unlabelled"):
        plain.owned_by(A).remove_volume(vol)
    adopted = plain.owned_by(A, {("volume", vol), ("volume", stray)})
    assert adopted.ensure_volume(vol, {}) is False  # reused, as adopted
    with pytest.raises(SafetyRefusal, match="unlabelled"):
        adopted.remove_volume(stray)  # adoption needs the slot's own mark on the object
    # adoption never covers an object of another owner
    plain.owned_by(B_OTHER_INSTALLATION).ensure_volume(f"{slot}-data", dict(docker_scratch.labels))
    with pytest.raises(SafetyRefusal, match="foreign"):
        plain.owned_by(A, {("volume", f"{slot}-data")}).remove_volume(f"{slot}-data")
    assert adopted.remove_volume(vol) is True


def test_keycloak_door_labels_its_realm_and_refuses_other_owners(
    kc_admin: KeycloakAdapter,
    keycloak: Settings,
    kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    rep = Reporter(quiet=True)
    mine = kc_admin.owned_by(slot.realm, A, host=slot.host)
    identity.converge_realm(mine, spec, slot, keycloak, kc_secrets, rep)
    realm = kc_admin.get_realm(slot.realm)
    assert realm is not None
    assert realm["attributes"][REALM_ATTR_INSTALLATION] == A.installation
    users_before = sorted(u["id"] for u in kc_admin.users(slot.realm))
    # converging again as the owner changes nothing
    before = kc_admin.mutations
    identity.converge_realm(kc_admin.owned_by(slot.realm, A), spec, slot, keycloak, kc_secrets, rep)
    assert kc_admin.mutations == before

    for other in (B_OTHER_INSTALLATION, A_OTHER_PRACTICE):
        theirs = kc_admin.owned_by(slot.realm, other, host=slot.host)
        attempts: list[Callable[[], object]] = [
            lambda t=theirs: identity.converge_realm(t, spec, slot, keycloak, kc_secrets, rep),
            lambda t=theirs: identity.set_alias(t, slot, "x", "X", rep),
            lambda t=theirs: identity.delete_realm(t, slot, rep),
            lambda t=theirs: identity_export.export_realm(t, slot),
            lambda t=theirs: t.users(slot.realm),
            lambda t=theirs: identity_smoke.create_test_user(t, slot),
        ]
        for attempt in attempts:
            with pytest.raises(SafetyRefusal) as err:
                attempt()
            assert f"realm {slot.realm}" in err.value.message
            assert A.installation in err.value.message
            assert f"hosts scan {slot.host}" in (err.value.hint or "")
    assert kc_admin.mutations == before  # nothing was touched
    assert sorted(u["id"] for u in kc_admin.users(slot.realm)) == users_before
    assert kc_admin.get_realm(slot.realm)["attributes"] == realm["attributes"]  # type: ignore[index]


def test_keycloak_door_refuses_an_unlabelled_realm_unless_adopt(
    kc_admin: KeycloakAdapter,
    keycloak: Settings,
    kc_secrets: FileSecretStore,
    throwaway_realm: Callable[[], Slot],
) -> None:
    slot = throwaway_realm()
    spec = make_spec()
    rep = Reporter(quiet=True)
    identity.converge_realm(kc_admin, spec, slot, keycloak, kc_secrets, rep)  # the old way
    before = kc_admin.mutations
    with pytest.raises(SafetyRefusal, match="unlabelled"):
        identity.converge_realm(
            kc_admin.owned_by(slot.realm, A), spec, slot, keycloak, kc_secrets, rep
        )
    assert kc_admin.mutations == before
    adopting = kc_admin.owned_by(slot.realm, A, adopt_unlabelled=True)
    identity.converge_realm(adopting, spec, slot, keycloak, kc_secrets, rep)
    realm = kc_admin.get_realm(slot.realm)
    assert realm is not None and realm["attributes"][REALM_ATTR_INSTALLATION] == A.installation
    # from now on it is ours without --adopt, and still foreign to everyone else
    identity.converge_realm(kc_admin.owned_by(slot.realm, A), spec, slot, keycloak, kc_secrets, rep)
    with pytest.raises(SafetyRefusal, match="foreign"):
        kc_admin.owned_by(slot.realm, B_OTHER_INSTALLATION, adopt_unlabelled=True).get_realm(
            slot.realm
        )
