"""Inventory behaviour, the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartpraxx_provision.config import PRIMARY_SHARD, load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import (
    ConfigError,
    ConflictError,
    InventoryError,
    NotFoundError,
    ServiceUnavailableError,
    UsageError,
)
from smartpraxx_provision.inventory import Inventory, open_inventory
from smartpraxx_provision.inventory.postgres import redact_url

pytestmark = pytest.mark.integration

ENGINE = "unix:///var/run/docker.sock"


def alloc(inv: Inventory, name: str, order: str | None = None, **kw: Any) -> Any:
    return inv.allocate_practice(
        name,
        order_id=order or f"order-{name}",
        display_name=kw.pop("display_name", f"Praxis {name}"),
        kv=kw.pop("kv", "KV Bayern"),
        specialties=kw.pop("specialties", ["allgemeinmedizin"]),
        billable_seats=kw.pop("billable_seats", 2),
        **kw,
    )


# --- hosts ------------------------------------------------------------------------------


def test_add_and_list_hosts(inventory: Inventory) -> None:
    h = inventory.add_host("cloud002", "ssh://deploy@cloud002.example", capacity=10)
    assert (h.name, h.number, h.capacity, h.state, h.used, h.tls) == (
        "cloud002",
        2,
        10,
        "active",
        0,
        None,
    )
    tls = {"ca": "/etc/spx/ca.pem", "cert": "/etc/spx/cert.pem", "key": "/etc/spx/key.pem"}
    inventory.add_host("cloud001", "tcp://cloud001.example:2376", tls=tls, state="bootstrapping")
    hosts = inventory.list_hosts()
    assert [x.name for x in hosts] == ["cloud001", "cloud002"]  # by host number
    assert hosts[0].tls == tls and hosts[0].state == "bootstrapping"
    # adding again with the same settings is a no-op; with other settings a conflict
    assert inventory.add_host("cloud002", "ssh://deploy@cloud002.example", capacity=10).name
    with pytest.raises(ConflictError, match="other settings"):
        inventory.add_host("cloud002", "ssh://deploy@cloud002.example", capacity=11)


@pytest.mark.parametrize(
    ("name", "endpoint", "tls"),
    [
        ("cloud1", ENGINE, None),
        ("host001", ENGINE, None),
        ("cloud001", "http://x", None),
        ("cloud001", "tcp://10.0.0.5:2375", None),  # remote tcp without TLS
        ("cloud001", "tcp://10.0.0.5:2376", {"ca": "a", "cert": "b"}),  # incomplete TLS
    ],
)
def test_add_host_rejects_bad_input(
    inventory: Inventory, name: str, endpoint: str, tls: dict[str, str] | None
) -> None:
    with pytest.raises(UsageError):
        inventory.add_host(name, endpoint, tls=tls)
    assert inventory.list_hosts() == []


def test_publish_address_round_trips_and_changes(inventory: Inventory) -> None:
    """Migration 0010 on both backends: 127.0.0.1 unless the host record says otherwise."""
    assert inventory.add_host("cloud001", ENGINE).publish_address == "127.0.0.1"
    assert inventory.add_host("cloud002", ENGINE, publish_address="0.0.0.0").publish_address == (
        "0.0.0.0"
    )
    with pytest.raises(ConflictError, match="other settings"):
        inventory.add_host("cloud002", ENGINE)
    with pytest.raises(UsageError, match="--publish-address"):
        inventory.add_host("cloud003", ENGINE, publish_address="localhost")
    assert inventory.get_host("cloud003") is None
    inventory.update_host("cloud001", publish_address="::")
    assert [h.publish_address for h in inventory.list_hosts()] == ["::", "0.0.0.0"]


def test_slot_port_base_round_trips_and_changes(inventory: Inventory) -> None:
    """Migration 0010's second column on both backends: NULL (random ports) unless set."""
    assert inventory.add_host("cloud001", ENGINE).slot_port_base is None
    assert inventory.add_host("cloud002", ENGINE, capacity=5, slot_port_base=21000).slot_port_base == (
        21000
    )
    with pytest.raises(UsageError, match="--slot-port-base"):
        inventory.update_host("cloud002", capacity=50000)
    inventory.update_host("cloud001", slot_port_base=30000)
    inventory.update_host("cloud002", slot_port_base=None)
    assert [h.slot_port_base for h in inventory.list_hosts()] == [30000, None]


def test_loopback_tcp_without_tls_is_allowed(inventory: Inventory) -> None:
    assert inventory.add_host("cloud009", "tcp://127.0.0.1:23750").endpoint.startswith("tcp://")


def test_host_state_changes(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    assert inventory.set_host_state("cloud001", "draining").state == "draining"
    assert inventory.get_host("cloud001").state == "draining"  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        inventory.set_host_state("cloud001", "gone")
    with pytest.raises(NotFoundError):
        inventory.set_host_state("cloud404", "active")
    assert inventory.get_host("cloud404") is None


# --- allocation -------------------------------------------------------------------------


def test_allocation_records_practice_level_facts(inventory: Inventory) -> None:
    inventory.add_host("cloud023", ENGINE)
    p = alloc(
        inventory,
        "praxis-mueller",
        "SO-1001",
        display_name="Praxis Dr. Müller",
        kv="KV Rheinland-Pfalz",
        specialties=["innere", "kardiologie"],
        billable_seats=3,
    )
    assert p.slot == Slot("cloud023", 1)
    assert (p.slot.id, p.realm, p.state) == ("nc01-cloud023", "nc01-cloud023", "allocated")
    assert p.specialties == ("innere", "kardiologie")
    assert (p.display_name, p.kv, p.billable_seats, p.order_id) == (
        "Praxis Dr. Müller",
        "KV Rheinland-Pfalz",
        3,
        "SO-1001",
    )
    assert inventory.get_practice("praxis-mueller") == p
    assert inventory.get_practice_by_slot("nc01-cloud023") == p
    assert inventory.get_practice("nobody") is None
    assert inventory.get_host("cloud023").used == 1  # type: ignore[union-attr]


def test_rerun_with_same_order_returns_existing_slot(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    first = alloc(inventory, "praxis-a", "SO-1")
    again = alloc(inventory, "praxis-a", "SO-1")
    assert again.slot == first.slot
    assert len(inventory.list_practices()) == 1
    assert inventory.get_host("cloud001").next_number == 2  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="taken by slot nc01-cloud001"):
        alloc(inventory, "praxis-a", "SO-2")
    inventory.add_host("cloud002", ENGINE)
    with pytest.raises(ConflictError, match="never moves"):
        alloc(inventory, "praxis-a", "SO-1", host="cloud002")


def test_placement_least_loaded_ties_by_host_number(inventory: Inventory) -> None:
    inventory.add_host("cloud003", ENGINE, capacity=5)
    inventory.add_host("cloud001", ENGINE, capacity=5)
    inventory.add_host("cloud002", ENGINE, capacity=1)
    hosts = [alloc(inventory, f"p{i}").slot.host for i in range(5)]
    # tie → cloud001; then cloud002 (0 used, full after one), cloud003, then cloud001/cloud003
    assert hosts == ["cloud001", "cloud002", "cloud003", "cloud001", "cloud003"]
    inventory.set_host_state("cloud001", "draining")
    assert alloc(inventory, "p5").slot.host == "cloud003"


def test_pinned_host(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE, capacity=1)
    inventory.add_host("cloud002", ENGINE)
    assert alloc(inventory, "a", host="cloud001").slot.id == "nc01-cloud001"
    with pytest.raises(ConflictError, match="full"):
        alloc(inventory, "b", host="cloud001")
    inventory.set_host_state("cloud002", "draining")
    with pytest.raises(ConflictError, match="draining") as err:
        alloc(inventory, "b", host="cloud002")
    assert "hosts activate cloud002" in (err.value.hint or "")
    with pytest.raises(NotFoundError):
        alloc(inventory, "b", host="cloud404")


def test_no_capacity_left(inventory: Inventory) -> None:
    with pytest.raises(ConflictError, match="no active host") as err:
        alloc(inventory, "a")
    assert "hosts add" in (err.value.hint or "")
    inventory.add_host("cloud001", ENGINE, capacity=1)
    alloc(inventory, "a")
    with pytest.raises(ConflictError, match="no active host"):
        alloc(inventory, "b")


def test_tombstoned_numbers_and_names_are_never_reused(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE, capacity=2)
    a = alloc(inventory, "praxis-a")
    alloc(inventory, "praxis-b")
    tomb = inventory.tombstone_practice("praxis-a")
    assert tomb.state == "tombstoned" and tomb.slot == a.slot
    assert inventory.tombstone_practice("praxis-a") == tomb  # re-run
    c = alloc(inventory, "praxis-c")  # capacity freed, number not
    assert c.slot.id == "nc03-cloud001"
    with pytest.raises(ConflictError, match="decommissioned") as err:
        alloc(inventory, "praxis-a", "SO-new")
    assert "--reuse-name" in (err.value.hint or "")
    inventory.tombstone_practice("praxis-b")
    reborn = alloc(inventory, "praxis-a", "SO-new", reuse_name=True)
    assert reborn.slot.id == "nc04-cloud001"
    assert [p.praxisname for p in inventory.list_practices()] == ["praxis-c", "praxis-a"]
    everything = inventory.list_practices(include_tombstoned=True)
    assert [p.slot.number for p in everything] == [1, 2, 3, 4]
    assert inventory.get_practice("praxis-a") == reborn  # the live one wins
    with pytest.raises(ConflictError, match="decommissioned"):
        inventory.update_practice("praxis-b", state="active")


def test_update_practice(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "praxis-a")
    p = inventory.update_practice(
        "praxis-a",
        state="active",
        billable_seats=5,
        last_smoke='{"ok": true}',
        specialties=("zahn",),
        apps=["spreed", "deck"],
    )
    assert (p.state, p.billable_seats, p.last_smoke, p.specialties, p.apps) == (
        "active",
        5,
        '{"ok": true}',
        ("zahn",),
        ("spreed", "deck"),
    )
    assert p.updated_at >= p.created_at
    with pytest.raises(UsageError):
        inventory.update_practice("praxis-a", state="exploded")
    with pytest.raises(InventoryError):
        inventory.update_practice("praxis-a", email="x@example.org")
    with pytest.raises(NotFoundError):
        inventory.update_practice("nobody", state="active")


# --- rename -----------------------------------------------------------------------------


def test_rename_keeps_slot_and_reserves_old_name(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    a = alloc(inventory, "praxis-alt")
    grace = datetime.now(UTC) + timedelta(days=90)
    r = inventory.rename_practice("praxis-alt", "praxis-neu", grace_until=grace)
    assert (r.praxisname, r.slot, r.realm, r.former_names) == (
        "praxis-neu",
        a.slot,
        a.realm,
        ("praxis-alt",),
    )
    # re-run of the finished rename
    assert inventory.rename_practice("praxis-alt", "praxis-neu", grace_until=grace) == r
    assert inventory.get_practice("praxis-alt") is None
    assert inventory.resolve_name("praxis-alt") == r
    assert inventory.resolve_name("praxis-neu") == r
    assert inventory.resolve_name("praxis-nie") is None
    # the old name is reserved during the grace period ...
    with pytest.raises(ConflictError, match="grace"):
        alloc(inventory, "praxis-alt", "SO-other")
    alloc(inventory, "praxis-b")
    with pytest.raises(ConflictError, match="grace"):
        inventory.rename_practice("praxis-b", "praxis-alt", grace_until=grace)
    # ... but the practice may take its own former name back
    back = inventory.rename_practice("praxis-neu", "praxis-alt", grace_until=grace)
    assert back.praxisname == "praxis-alt" and back.former_names == ("praxis-neu",)


def test_rename_uniqueness_across_live_and_tombstoned(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    grace = datetime.now(UTC) + timedelta(days=1)
    alloc(inventory, "a")
    alloc(inventory, "b")
    alloc(inventory, "gone")
    inventory.tombstone_practice("gone")
    with pytest.raises(ConflictError, match="another practice"):
        inventory.rename_practice("a", "b", grace_until=grace)
    with pytest.raises(ConflictError, match="decommissioned practice"):
        inventory.rename_practice("a", "gone", grace_until=grace)
    with pytest.raises(NotFoundError):
        inventory.rename_practice("nobody", "c", grace_until=grace)


def test_former_name_is_free_after_grace(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "alt")
    past = datetime.now(UTC) - timedelta(seconds=1)
    renamed = inventory.rename_practice("alt", "neu", grace_until=past)
    assert renamed.former_names == ("alt",) and renamed.redirecting_names == ()
    other = alloc(inventory, "alt", "SO-other")
    assert other.slot != renamed.slot
    assert inventory.resolve_name("alt") == other


def test_former_name_redirects_only_during_grace(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE)
    alloc(inventory, "eins")
    future = datetime.now(UTC) + timedelta(days=1)
    inventory.rename_practice("eins", "zwei", grace_until=future)
    past = datetime.now(UTC) - timedelta(seconds=1)
    r = inventory.rename_practice("zwei", "drei", grace_until=past)
    assert r.former_names == ("eins", "zwei")
    assert r.redirecting_names == ("eins",)


# --- operation lock and journal ---------------------------------------------------------


def test_operation_lock_and_journal(inventory: Inventory) -> None:
    op = inventory.begin_operation("provision", "praxis-a")
    with pytest.raises(ConflictError) as err:
        inventory.begin_operation("rename", "praxis-a")
    msg = str(err.value)
    assert op in msg and "provision" in msg and inventory.hostname in msg
    assert err.value.details["op_id"] == op
    other = inventory.begin_operation("provision", "praxis-b")  # other names are free
    inventory.journal_step(op, "allocate", "started")
    inventory.journal_step(op, "network", "started")
    inventory.journal_step(op, "allocate", "done", "slot nc01-cloud001")
    inventory.journal_step(op, "network", "failed", "engine refused")
    entries = inventory.journal(op)
    assert [(e.seq, e.step, e.state, e.detail) for e in entries] == [
        (1, "allocate", "done", "slot nc01-cloud001"),
        (2, "network", "failed", "engine refused"),
    ]
    assert entries[0].ended_at is not None and entries[0].started_at <= entries[0].updated_at
    assert inventory.unfinished_operation("praxis-a").op_id == op  # type: ignore[union-attr]
    inventory.end_operation(op, "failed")
    assert inventory.unfinished_operation("praxis-a").state == "failed"  # type: ignore[union-attr]
    rerun = inventory.begin_operation("provision", "praxis-a")
    inventory.journal_step(rerun, "allocate", "done")
    with pytest.raises(InventoryError):  # no step state "skipped": a no-op step is "done"
        inventory.journal_step(rerun, "allocate", "skipped")
    inventory.end_operation(rerun, "done")
    assert inventory.unfinished_operation("praxis-a") is None
    last = inventory.last_operation("praxis-a")
    assert last is not None and (last.op_id, last.state, last.kind) == (rerun, "done", "provision")
    assert inventory.last_operation("praxis-a", kind="rename") is None
    assert inventory.get_operation(other).state == "running"  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        inventory.journal_step("no-such-op", "x", "started")
    with pytest.raises(InventoryError):
        inventory.journal_step(op, "x", "weird")
    with pytest.raises(NotFoundError):
        inventory.end_operation("no-such-op", "done")


def test_stale_lock_of_a_dead_process_is_taken_over(inventory: Inventory) -> None:
    inventory.hostname = "ops-laptop"
    op = inventory.begin_operation("provision", "praxis-a")
    # the holder's pid is gone on this machine: pretend it was a long-dead pid
    with inventory._tx(write=True) as tx:
        tx.execute("UPDATE operations SET pid = ? WHERE op_id = ?", (2**22 + 12345, op))
    new = inventory.begin_operation("provision", "praxis-a")
    assert new != op
    assert inventory.get_operation(op).state == "abandoned"  # type: ignore[union-attr]
    # a lock held from another machine is never taken over automatically
    inventory.hostname = "other-machine"
    with pytest.raises(ConflictError, match="ops-laptop"):
        inventory.begin_operation("provision", "praxis-a")
    inventory.abandon_operation(new)
    assert inventory.begin_operation("provision", "praxis-a")


# --- events -----------------------------------------------------------------------------


def test_events(inventory: Inventory) -> None:
    e1 = inventory.record_event("provisioned", "praxis-a", {"slot": "nc01-cloud001", "seats": 3})
    inventory.record_event("renamed", "praxis-a", {"to": "praxis-b"})
    inventory.record_event("provisioned", "praxis-c", {"seats": 1})
    assert e1.payload == {"seats": 3, "slot": "nc01-cloud001"}
    assert [e.kind for e in inventory.list_events("praxis-a")] == ["provisioned", "renamed"]
    assert [e.praxisname for e in inventory.list_events(kind="provisioned")] == [
        "praxis-a",
        "praxis-c",
    ]
    assert len(inventory.list_events()) == 3
    with pytest.raises(InventoryError, match="do-not-track"):
        inventory.record_event("provisioned", "praxis-a", {"email": "x@example.org"})


# --- schema, migrations, do-not-track ---------------------------------------------------


ALLOWED_COLUMNS = {
    "schema_migrations": {"version", "name", "applied_at"},
    # migration 0007: "consented until T for ticket X" per practice, no person (issue 15)
    "support_consents": {"practice_id", "ticket", "state", "expires_at", "updated_at"},
    "hosts": {
        "name",
        "number",
        "endpoint",
        "capacity",
        "state",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "next_number",
        "created_at",
        "updated_at",
        # migration 0006: the Docker engine that answered the probe of hosts add/set
        "engine_id",
        "engine_version",
        "publish_address",  # migration 0010: where the slots' containers publish their ports
        "slot_port_base",  # migration 0010: the slots' fixed app ports (NULL: random)
    },
    "practices": {
        "slot_id",
        "host",
        "slot_number",
        "praxisname",
        "realm",
        "order_id",
        "display_name",
        "kv",
        "specialties",
        "billable_seats",
        "apps",
        "state",
        "last_smoke",
        "created_at",
        "updated_at",
        # migration 0005: ownership (a UUID per practice; the installation of adopted objects)
        "practice_id",
        "owner_installation",
        "export_sha256",  # migration 0006: the export a decommission's deletion began with
        "package",  # migration 0009: basis / premium
        "identity_shard",  # migration 0011: the Keycloak cluster of the practice's realm
    },
    # migration 0005: the stable installation id of this inventory (one row)
    "installation": {"id", "created_at"},
    "adopted_objects": {"kind", "name", "slot_id", "adopted_at"},
    "former_names": {"name", "slot_id", "renamed_at", "grace_until"},
    # migration 0004: shop orders (CRM data of the orderer, nothing about staff)
    "deliveries": {
        "delivery_key", "event", "action", "order_id", "fields", "state", "attempts",
        "claimed_at", "claimed_by", "result", "received_at", "processed_at",
    },
    "orders": {
        "order_id", "product_id", "package", "contact_email", "state", "attention",
        "praxisname", "suspended", "template_sent_at", "created_at", "updated_at",
    },
    "billing_outbox": {
        "event_id", "idempotency_key", "state", "attempts", "next_attempt_at", "last_error",
        "delivered_at",
    },
    "operations": {
        "op_id",
        "kind",
        "praxisname",
        "state",
        "hostname",
        "pid",
        "started_at",
        "ended_at",
        "lock_key",  # migration 0005: the lock is keyed by the practice id
    },
    "journal": {"op_id", "step", "seq", "state", "detail", "started_at", "updated_at", "ended_at"},
    # migration 0006: transition_key '<slot>:<event>' (a transition's event once per slot)
    "events": {"id", "kind", "praxisname", "payload", "created_at", "transition_key"},
    # migration 0007: broadcasts (message + target) and per-practice state + COUNT, no ids
    "broadcasts": {"id", "subject", "message", "link", "valid_until", "target", "created_at",
                   "retracted_at"},
    "broadcast_deliveries": {"broadcast_id", "practice_id", "state", "recipients",
                             "announcement_id", "error", "attempts", "updated_at"},
}


def _columns(inv: Inventory) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with inv._tx(write=False) as tx:
        if inv.backend.name == "sqlite":
            tables = [
                r["name"]
                for r in tx.query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for t in tables:
                out[t] = {r["name"] for r in tx.query(f"PRAGMA table_info({t})")}
        else:
            for r in tx.query(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            ):
                out.setdefault(r["table_name"], set()).add(r["column_name"])
    return out


def test_schema_has_no_staff_columns(inventory: Inventory) -> None:
    cols = _columns(inventory)
    assert cols == ALLOWED_COLUMNS
    staff = re.compile(r"mail|user|first|last_name|vorname|nachname|lanr|person|staff|phone")
    # the one address column is the orderer's (CRM, issue 14), never a staff member's
    crm = {("orders", "contact_email")}
    assert not [c for t, cs in cols.items() for c in cs if staff.search(c) and (t, c) not in crm]


def test_database_holds_only_values_we_put_there(inventory: Inventory) -> None:
    """Dump every cell: each string is an input, a derived id, a timestamp or a state."""
    inventory.add_host("cloud001", ENGINE)
    inputs = {
        "praxis-a",
        "SO-1",
        "Praxis A",
        "KV Nordrhein",
        "provision",
        "allocate",
        "slot nc01-cloud001",
        "praxis-b",
        "provisioned",
        "renamed",
        ENGINE,
    }
    alloc(
        inventory,
        "praxis-a",
        "SO-1",
        display_name="Praxis A",
        kv="KV Nordrhein",
        specialties=["allgemeinmedizin"],
        billable_seats=2,
        apps=["spreed"],
    )
    op = inventory.begin_operation("provision", "praxis-a")
    inventory.journal_step(op, "allocate", "done", "slot nc01-cloud001")
    inventory.end_operation(op, "done")
    inventory.record_event("provisioned", "praxis-a", {"seats": 2})
    inventory.rename_practice("praxis-a", "praxis-b", grace_until=datetime.now(UTC))
    inventory.record_event("renamed", "praxis-b", {"from": "praxis-a"})
    derived = {
        "nc01-cloud001",
        "cloud001",
        '["allgemeinmedizin"]',
        '["spreed"]',
        '{"seats": 2}',
        '{"from": "praxis-a"}',
        op,
        inventory.hostname,
        *(name for _, name, _ in Inventory.migrations()),
        inventory.installation_id,
        inventory.get_practice("praxis-b").practice_id,  # type: ignore[union-attr]
        PRIMARY_SHARD,  # the identity shard's name (settings)
    }
    states = {"active", "allocated", "done"}
    timestamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
    seen: set[str] = set()
    with inventory._tx(write=False) as tx:
        for table in ALLOWED_COLUMNS:
            for row in tx.query(f"SELECT * FROM {table}"):
                seen |= {v for v in row.values() if isinstance(v, str)}
    unexpected = {v for v in seen - inputs - derived - states if not timestamp.match(v)}
    assert unexpected == set()
    assert {"praxis-a", "praxis-b", op} <= seen  # the dump really saw the data


def test_migrations_are_versioned_and_applied_once(inventory: Inventory) -> None:
    versions = [v for v, _, _ in Inventory.migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1
    newest = versions[-1]
    assert inventory.schema_version() == newest
    assert inventory.migrate() == newest  # idempotent
    with inventory._tx(write=False) as tx:
        assert len(tx.query("SELECT * FROM schema_migrations")) == len(versions)
    with inventory._tx(write=True) as tx:
        tx.execute("INSERT INTO schema_migrations VALUES (99, 'future', '')")
    with pytest.raises(InventoryError, match="newer"):
        inventory.migrate()


def test_sqlite_pragmas(tmp_path: Any) -> None:
    settings = load_settings(env={}, overrides={"state_dir": str(tmp_path / "s")})
    with open_inventory(settings) as inv:
        assert inv.backend.name == "sqlite"
        conn = inv.backend._conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert settings.inventory_path.is_file()


def test_open_inventory_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError):  # refused when the settings are loaded
        load_settings(env={}, overrides={"state_dir": str(tmp_path), "inventory_url": "mysql://x"})
    url = "postgresql://spx:hunter2secret@127.0.0.1:1/inventory"
    unreachable = load_settings(
        env={}, overrides={"state_dir": str(tmp_path), "inventory_url": url}
    )
    with pytest.raises(ServiceUnavailableError) as err:
        open_inventory(unreachable)
    assert "hunter2secret" not in str(err.value) and "hunter2secret" not in str(err.value.obj)
    assert redact_url(url) == "postgresql://spx:***@127.0.0.1:1/inventory"


# --- identity shards (migration 0011, issue 18) ---------------------------------------------


def test_realms_fill_the_identity_shards_in_order(inventory: Inventory) -> None:
    inventory.add_host("cloud001", ENGINE, capacity=10)
    shards = ("primary", "kc2")
    first = alloc(inventory, "praxis-a", shards=shards, realms_per_shard=2)
    second = alloc(inventory, "praxis-b", shards=shards, realms_per_shard=2)
    third = alloc(inventory, "praxis-c", shards=shards, realms_per_shard=2)
    assert [r.identity_shard for r in (first, second, third)] == ["primary", "primary", "kc2"]
    assert inventory.get_practice("praxis-c").identity_shard == "kc2"  # stored, read back
    alloc(inventory, "praxis-d", shards=shards, realms_per_shard=2)
    with pytest.raises(ConflictError, match="every identity shard holds 2 realms") as err:
        alloc(inventory, "praxis-e", shards=shards, realms_per_shard=2)
    assert "primary 2, kc2 2" in err.value.message and "identity_shards" in err.value.hint
    assert inventory.get_practice("praxis-e") is None  # nothing allocated
    # a tombstoned practice's realm is gone: its shard has room again
    inventory.tombstone_practice("praxis-a")
    assert alloc(inventory, "praxis-e", shards=shards, realms_per_shard=2).identity_shard == "primary"
    # no limit (one shard): the first; a resumed allocation keeps its shard
    assert alloc(inventory, "praxis-f").identity_shard == "primary"
    assert alloc(inventory, "praxis-c", shards=("primary",)).identity_shard == "kc2"
