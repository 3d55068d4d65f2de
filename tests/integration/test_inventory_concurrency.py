"""Reliability of the inventory under concurrency and crashes (real processes), and a
property test over allocate / decommission / rename — on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from smartpraxx_provision.config import Settings
from smartpraxx_provision.errors import ConflictError
from smartpraxx_provision.inventory import Inventory, open_inventory

pytestmark = pytest.mark.integration

ENGINE = "unix:///var/run/docker.sock"
JOIN_TIMEOUT = 120.0
CTX = mp.get_context("fork")  # children inherit the imported modules; no connection is shared


def _alloc(inv: Inventory, name: str, order: str, host: str | None = None) -> Any:
    return inv.allocate_practice(
        name,
        order_id=order,
        display_name=name,
        kv="KV Bayern",
        specialties=["x"],
        billable_seats=1,
        host=host,
    )


def _join_all(procs: list[Any]) -> None:
    for p in procs:
        p.join(JOIN_TIMEOUT)
        if p.is_alive():
            p.kill()
            p.join(5)
            pytest.fail(f"worker {p.pid} did not finish within {JOIN_TIMEOUT}s")


def _allocate_worker(settings: Settings, i: int, start: Any, results: Any) -> None:
    try:
        with open_inventory(settings) as inv:
            start.wait(JOIN_TIMEOUT)
            rec = _alloc(inv, f"praxis-{i:02d}", f"SO-{i}", host="cloud001")
            results.put(("ok", i, rec.slot.id))
    except Exception as exc:
        results.put(("error", i, f"{type(exc).__name__}: {exc}"))


def test_50_concurrent_allocations_get_50_distinct_slots(
    inventory_settings_factory: Any,
) -> None:
    settings = inventory_settings_factory()
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE, capacity=60)
    start, results = CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(target=_allocate_worker, args=(settings, i, start, results)) for i in range(50)
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=JOIN_TIMEOUT) for _ in procs]
    _join_all(procs)
    errors = [o for o in outcomes if o[0] != "ok"]
    assert errors == []
    slots = [o[2] for o in outcomes]
    assert len(set(slots)) == 50
    assert sorted(slots) == sorted(f"nc{n:02d}-cloud001" for n in range(1, 51))
    with open_inventory(settings) as inv:
        assert len(inv.list_practices()) == 50
        assert inv.get_host("cloud001").next_number == 51  # type: ignore[union-attr]


def _provision_worker(
    settings: Settings, order: str, start: Any, release: Any, results: Any
) -> None:
    """What ``provision`` does first: take the operation lock, then allocate."""
    try:
        with open_inventory(settings) as inv:
            start.wait(JOIN_TIMEOUT)
            op = inv.begin_operation("provision", "praxis-x")
            rec = _alloc(inv, "praxis-x", order)
            results.put(("won", rec.slot.id, op))
            release.wait(JOIN_TIMEOUT)  # hold the lock until the other one has tried
            inv.end_operation(op, "done")
    except ConflictError as exc:
        results.put(("conflict", str(exc), exc.hint or ""))
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", ""))


@pytest.mark.parametrize("orders", [("SO-1", "SO-1"), ("SO-1", "SO-2")], ids=["same", "other"])
def test_two_processes_provisioning_one_praxisname(
    inventory_settings_factory: Any, orders: tuple[str, str]
) -> None:
    settings = inventory_settings_factory()
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE)
    start, release, results = CTX.Event(), CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(target=_provision_worker, args=(settings, o, start, release, results))
        for o in orders
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = sorted(results.get(timeout=JOIN_TIMEOUT) for _ in procs)
    release.set()
    _join_all(procs)
    assert [o[0] for o in outcomes] == ["conflict", "won"]
    conflict, won = outcomes
    # the loser is told which operation holds the practice
    assert won[2] in conflict[1] and "provision" in conflict[1]
    with open_inventory(settings) as inv:
        assert [p.slot.id for p in inv.list_practices()] == [won[1]]


def test_two_processes_other_orders_without_lock_one_wins(inventory_settings_factory: Any) -> None:
    settings = inventory_settings_factory()
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE)
    start, results = CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(target=_allocate_same_name_worker, args=(settings, o, start, results))
        for o in ("SO-1", "SO-2")
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = sorted(results.get(timeout=JOIN_TIMEOUT) for _ in procs)
    _join_all(procs)
    assert [o[0] for o in outcomes] == ["conflict", "ok"]
    assert "praxis-x is taken by slot nc01-cloud001" in outcomes[0][1]


def _allocate_same_name_worker(settings: Settings, order: str, start: Any, results: Any) -> None:
    try:
        with open_inventory(settings) as inv:
            start.wait(JOIN_TIMEOUT)
            results.put(("ok", _alloc(inv, "praxis-x", order).slot.id))
    except ConflictError as exc:
        results.put(("conflict", str(exc)))


def _crash_after_allocation(settings: Settings) -> None:
    inv = open_inventory(settings)
    op = inv.begin_operation("provision", "praxis-k")
    inv.journal_step(op, "allocate", "started")
    _alloc(inv, "praxis-k", "SO-9")
    inv.journal_step(op, "allocate", "done")
    os.kill(os.getpid(), signal.SIGKILL)  # before the first side effect (network, volumes)


def test_kill_between_allocation_and_first_side_effect(inventory_settings_factory: Any) -> None:
    settings = inventory_settings_factory()
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE)
    child = CTX.Process(target=_crash_after_allocation, args=(settings,))
    child.start()
    child.join(JOIN_TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    with open_inventory(settings) as inv:
        p = inv.get_practice("praxis-k")
        assert p is not None and p.state == "allocated"
        stale = inv.unfinished_operation("praxis-k")
        assert stale is not None and stale.state == "running" and stale.pid == child.pid
        assert [e.state for e in inv.journal(stale.op_id)] == ["done"]
        # the re-run takes over the dead process's lock and gets the same slot
        op = inv.begin_operation("provision", "praxis-k")
        assert inv.get_operation(stale.op_id).state == "abandoned"  # type: ignore[union-attr]
        again = _alloc(inv, "praxis-k", "SO-9")
        assert again.slot == p.slot and again.state == "allocated"
        inv.end_operation(op, "done")
        assert len(inv.list_practices(include_tombstoned=True)) == 1
        assert inv.get_host("cloud001").next_number == 2  # type: ignore[union-attr]


# --- property test ----------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d", "e"])


def test_property_no_reused_slot_no_duplicate_name(
    inventory_factory: Any, inventory_backend: str
) -> None:
    """Any sequence of allocate / decommission / rename never hands a slot id out twice and
    never lets two live practices share a praxisname; a released name is only reused with
    reuse_name, a name in its rename grace period never."""

    class InventoryMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.inv: Inventory = inventory_factory()
            self.inv.add_host("cloud001", ENGINE, capacity=4)
            self.inv.add_host("cloud002", ENGINE, capacity=3)
            self.orders = 0
            self.slot_owner: dict[str, str] = {}  # slot id -> order id that got it
            self.tombstoned_names: set[str] = set()
            self.reserved: set[str] = set()  # former names in their grace period

        @rule(name=NAMES, reuse=st.booleans())
        def allocate(self, name: str, reuse: bool) -> None:
            self.orders += 1
            order = f"SO-{self.orders}"
            live = {p.praxisname for p in self.inv.list_practices()}
            try:
                rec = self.inv.allocate_practice(
                    name,
                    order_id=order,
                    display_name=name,
                    kv="KV",
                    specialties=[],
                    billable_seats=1,
                    reuse_name=reuse,
                )
            except ConflictError:
                return
            assert name not in live
            assert name not in self.reserved
            assert reuse or name not in self.tombstoned_names
            assert rec.slot.id not in self.slot_owner, "slot id handed out twice"
            self.slot_owner[rec.slot.id] = order

        @rule(name=NAMES)
        def rerun(self, name: str) -> None:
            live = self.inv.get_practice(name)
            if live is None or live.tombstoned:
                return
            again = self.inv.allocate_practice(
                name,
                order_id=live.order_id,
                display_name=name,
                kv="KV",
                specialties=[],
                billable_seats=1,
            )
            assert again.slot == live.slot

        @rule(name=NAMES)
        def decommission(self, name: str) -> None:
            live = self.inv.get_practice(name)
            if live is None or live.tombstoned:
                return
            self.inv.tombstone_practice(name)
            self.tombstoned_names.add(name)

        @rule(old=NAMES, new=NAMES)
        def rename(self, old: str, new: str) -> None:
            before = self.inv.get_practice(old)
            try:
                rec = self.inv.rename_practice(
                    old, new, grace_until=datetime.now(UTC) + timedelta(days=90)
                )
            except ConflictError:
                return
            except Exception as exc:  # NotFoundError for a name nobody holds
                assert before is None or before.tombstoned, exc
                return
            if before is None or before.tombstoned:  # re-run of a finished rename
                assert rec.praxisname == new and old in rec.former_names
                return
            assert rec.slot == before.slot and rec.praxisname == new
            if new != old:
                assert new not in self.tombstoned_names
                self.reserved.discard(new)
                self.reserved.add(old)

        @invariant()
        def unique_slots_and_live_names(self) -> None:
            everything = self.inv.list_practices(include_tombstoned=True)
            slot_ids = [p.slot.id for p in everything]
            assert len(slot_ids) == len(set(slot_ids))
            for p in everything:
                assert self.slot_owner[p.slot.id] == p.order_id
            live = [p.praxisname for p in everything if not p.tombstoned]
            assert len(live) == len(set(live))

        def teardown(self) -> None:
            self.inv.close()

    examples = 40 if inventory_backend == "sqlite" else 12
    run_state_machine_as_test(
        InventoryMachine,
        settings=hyp_settings(max_examples=examples, stateful_step_count=25, deadline=None),
    )
