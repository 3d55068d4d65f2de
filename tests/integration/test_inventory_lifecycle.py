"""Life-cycle transitions in the inventory (SQLite and PostgreSQL): the state machine is
enforced, and a transition's billing event exists exactly once per slot."""

from __future__ import annotations

from typing import Any

import pytest

from smartpraxx_provision.errors import ConflictError
from smartpraxx_provision.inventory import Inventory

from .test_inventory import ENGINE, alloc

pytestmark = pytest.mark.integration


def _kinds(inv: Inventory, name: str) -> list[str]:
    return [e.kind for e in inv.list_events(name)]


def test_provisioned_exactly_once_across_reruns_and_failures(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "praxis-a")
    inventory.transition_practice("praxis-a", "provisioning")
    inventory.transition_practice("praxis-a", "failed")  # a failed first run
    inventory.transition_practice("praxis-a", "provisioning")  # the re-run
    fields: dict[str, Any] = {"billable_seats": 2}
    p, events = inventory.transition_practice(
        "praxis-a", "active", payload={"slot": "nc01-cloud001"}, fields=fields,
        change_event=("seats-changed", "billable_seats"),
    )
    assert p.state == "active" and [e.kind for e in events] == ["provisioned"]
    for _ in range(3):  # converge re-runs: no event while nothing billable changes
        _, again = inventory.transition_practice(
            "praxis-a", "active", fields=fields, change_event=("seats-changed", "billable_seats")
        )
        assert again == []
    _, seats = inventory.transition_practice(
        "praxis-a", "active", fields={"billable_seats": 3, "display_name": "Neu"},
        change_event=("seats-changed", "billable_seats"),
    )
    assert [e.kind for e in seats] == ["seats-changed"]
    _, none = inventory.transition_practice(
        "praxis-a", "active", fields={"billable_seats": 3, "display_name": "Anders"},
        change_event=("seats-changed", "billable_seats"),
    )
    assert none == []  # the display name is not billable
    assert _kinds(inventory, "praxis-a") == ["provisioned", "seats-changed"]


def test_decommission_path_and_refusals(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "praxis-a")
    with pytest.raises(ConflictError, match="cannot go from allocated to active"):
        inventory.transition_practice("praxis-a", "active")
    inventory.transition_practice("praxis-a", "provisioning")
    inventory.transition_practice("praxis-a", "active")
    p, _ = inventory.transition_practice(
        "praxis-a", "decommissioning", fields={"export_sha256": "ab" * 32}
    )
    assert (p.state, p.export_sha256) == ("decommissioning", "ab" * 32)
    with pytest.raises(ConflictError, match="cannot go from decommissioning to provisioning"):
        inventory.transition_practice("praxis-a", "provisioning")
    with pytest.raises(ConflictError, match="cannot go from decommissioning to active"):
        inventory.transition_practice("praxis-a", "active")
    tomb, events = inventory.transition_practice("praxis-a", "tombstoned", payload={"slot": "x"})
    assert tomb.tombstoned and [e.kind for e in events] == ["decommissioned"]
    again, none = inventory.transition_practice("praxis-a", "tombstoned")  # a resumed run
    assert again == tomb and none == []
    assert _kinds(inventory, "praxis-a") == ["provisioned", "decommissioned"]


def test_events_from_before_the_migration_count(inventory: Inventory) -> None:
    """A practice provisioned before migration 0006 (its event has no key) is not billed
    again when a later run activates it once more."""
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "praxis-a")
    inventory.record_event("provisioned", "praxis-a", {"slot": "nc01-cloud001"})
    inventory.update_practice("praxis-a", state="provisioning")
    _, events = inventory.transition_practice("praxis-a", "active")
    assert events == [] and _kinds(inventory, "praxis-a") == ["provisioned"]


def test_reused_name_is_a_new_slot_with_its_own_events(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "praxis-a")
    for state in ("provisioning", "active", "decommissioning", "tombstoned"):
        inventory.transition_practice("praxis-a", state)
    alloc(inventory, "praxis-a", "order-2", reuse_name=True)
    inventory.transition_practice("praxis-a", "provisioning")
    _, events = inventory.transition_practice("praxis-a", "active")
    assert [e.kind for e in events] == ["provisioned"]
