"""Ownership in the inventory (issue 11): installation id, practice ids, allocation past live
slot numbers, the operation lock by practice id, adopt — on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import ConflictError, UsageError
from smartpraxx_provision.inventory import Inventory, open_inventory

from .test_inventory import ENGINE, alloc

pytestmark = pytest.mark.integration


def test_installation_id_is_created_once_and_stable(inventory: Inventory) -> None:
    first = inventory.installation_id
    assert uuid.UUID(first).version == 4
    inventory.migrate()
    with inventory._tx(write=False) as tx:
        assert [r["id"] for r in tx.query("SELECT id FROM installation")] == [first]


def test_every_practice_gets_a_uuid_that_survives_a_rename(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    a = alloc(inventory, "praxis-a")
    b = alloc(inventory, "praxis-b")
    assert uuid.UUID(a.practice_id).version == 4 and a.practice_id != b.practice_id
    renamed = inventory.rename_practice(
        "praxis-a", "praxis-z", grace_until=datetime.now(UTC) + timedelta(days=1)
    )
    assert renamed.practice_id == a.practice_id
    assert inventory.get_practice_by_id(a.practice_id).praxisname == "praxis-z"  # type: ignore[union-attr]


def test_migration_0005_backfills_practice_ids_of_existing_rows(tmp_path: Path) -> None:
    """An inventory at schema 4 with practices and a running operation is upgraded."""
    settings = load_settings(env={}, overrides={"state_dir": str(tmp_path / "s")})
    settings.inventory_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.inventory_path)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    for version, name, sql in Inventory.migrations():
        if version >= 5:
            continue
        conn.executescript(sql.replace("{{AUTO_ID}}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '')", (version, name))
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    conn.execute(
        "INSERT INTO hosts (name, number, endpoint, capacity, state, next_number, created_at,"
        " updated_at) VALUES ('cloud001', 1, ?, 5, 'active', 3, ?, ?)",
        (ENGINE, now, now),
    )
    for n in (1, 2):
        conn.execute(
            "INSERT INTO practices (slot_id, host, slot_number, praxisname, realm, order_id,"
            " display_name, kv, specialties, billable_seats, state, created_at, updated_at)"
            " VALUES (?, 'cloud001', ?, ?, ?, 'o', 'd', 'k', '[]', 1, 'active', ?, ?)",
            (f"nc0{n}-cloud001", n, f"p{n}", f"nc0{n}-cloud001", now, now),
        )
    conn.execute(
        "INSERT INTO operations (op_id, kind, praxisname, state, hostname, pid, started_at)"
        " VALUES ('op1', 'provision', 'p1', 'running', 'elsewhere', 1, ?)",
        (now,),
    )
    conn.commit()
    conn.close()
    with open_inventory(settings) as inv:
        assert inv.schema_version() >= 5
        ids = [p.practice_id for p in inv.list_practices()]
        assert len(set(ids)) == 2 and all(uuid.UUID(i) for i in ids)
        # the old running operation (keyed by name) still holds the renamed-proof lock
        with pytest.raises(ConflictError, match="op1"):
            inv.begin_operation("rename", "p1")
        installation = inv.installation_id
    with open_inventory(settings) as inv:  # stable across opens
        assert inv.installation_id == installation
        assert [p.practice_id for p in inv.list_practices()] == ids


def test_allocation_moves_past_live_slot_numbers(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    a = alloc(inventory, "praxis-a", live_numbers={"cloud001": {1, 2, 4}})
    assert a.slot.id == "nc03-cloud001"
    b = alloc(inventory, "praxis-b", live_numbers={"cloud001": {1, 2, 3, 4}})
    assert b.slot.id == "nc05-cloud001"
    assert inventory.get_host("cloud001").next_number == 6  # type: ignore[union-attr]
    # live numbers of another host do not matter
    c = alloc(inventory, "praxis-c", live_numbers={"cloud002": {6}})
    assert c.slot.id == "nc06-cloud001"


def test_lock_is_keyed_by_practice_id_not_name(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    rec = alloc(inventory, "praxis-a")
    op = inventory.begin_operation("decommission", "praxis-a")
    with inventory._tx(write=False) as tx:
        row = tx.query("SELECT lock_key FROM operations WHERE op_id = ?", (op,))[0]
    assert row["lock_key"] == rec.practice_id
    # a rename happening anyway (e.g. by an older process) does not free the practice
    inventory.rename_practice("praxis-a", "praxis-b", grace_until=datetime.now(UTC))
    with pytest.raises(ConflictError, match=op):
        inventory.begin_operation("provision", "praxis-b")
    # the old name is free for a new practice: its lock is its own
    other = inventory.begin_operation("provision", "praxis-a")
    inventory.end_operation(other, "done")
    inventory.end_operation(op, "done")
    inventory.end_operation(inventory.begin_operation("provision", "praxis-b"), "done")


def test_new_practice_lock_blocks_the_allocated_practice(inventory: Inventory) -> None:
    """A provision of a new practice locks by name; once allocated, a second operation on
    that practice (now found by practice id) still collides with it."""
    inventory.add_host("cloud001", ENGINE)
    op = inventory.begin_operation("provision", "praxis-a")
    alloc(inventory, "praxis-a")
    with pytest.raises(ConflictError, match=op):
        inventory.begin_operation("rename", "praxis-a")
    inventory.end_operation(op, "done")


def test_adopt_registers_or_rekeys_explicitly(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    rec = alloc(inventory, "praxis-a")
    foreign_inst, pid = str(uuid.uuid4()), str(uuid.uuid4())
    # known practice: takes the owner its objects carry
    adopted = inventory.adopt_practice(
        "praxis-a", slot=rec.slot, practice_id=pid, installation=foreign_inst
    )
    assert (adopted.practice_id, adopted.owner_installation) == (pid, foreign_inst)
    # unknown practice: registered on its slot, the high-water mark moves past it
    with pytest.raises(UsageError, match="order id"):
        inventory.adopt_practice(
            "praxis-b",
            slot=Slot("cloud001", 7),
            practice_id=str(uuid.uuid4()),
            installation=inventory.installation_id,
        )
    pid_b = str(uuid.uuid4())
    b = inventory.adopt_practice(
        "praxis-b",
        slot=Slot("cloud001", 7),
        practice_id=pid_b,
        installation=inventory.installation_id,
        order_id="SO-7",
    )
    assert (b.slot.id, b.state, b.owner_installation) == ("nc07-cloud001", "active", None)
    assert alloc(inventory, "praxis-c").slot.id == "nc08-cloud001"
    # a practice id cannot belong to two practices
    with pytest.raises(ConflictError, match="already belongs"):
        inventory.adopt_practice(
            "praxis-d",
            slot=Slot("cloud001", 9),
            practice_id=pid_b,
            installation=inventory.installation_id,
            order_id="SO-9",
        )


