"""The inventory: hosts, practices with their immutable slots, the operation lock and
journal, and business events. One class, two database backends (SQLite, PostgreSQL).

Guarantees (DESIGN.md invariants 1, 2, 5):

- a slot ``ncXX-cloudYYY`` is allocated inside an exclusive write transaction from the
  host's high-water mark ``next_number``, which only grows: a number is never handed out
  twice, tombstoned practices keep theirs;
- a praxisname is held by at most one live practice (unique index) and is not handed out
  again after a tombstone or while it is a former name in its rename grace period, unless
  ops ask explicitly (``reuse_name``);
- one running operation per practice, keyed by its practice id (a UUID that never changes,
  so a rename mid-operation cannot break the lock; a new practice without a row yet is keyed
  by its praxisname until allocated); a lock left by a process that no longer exists on this
  machine is taken over;
- every inventory has a stable installation id (created once, at the first open); with the
  practice id it is the owner of every Docker object and realm the tool creates;
- do-not-track: the schema has no column for staff names, e-mails, usernames or LANRs, and
  event payloads with such keys are refused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from ..config import PRIMARY_SHARD, Settings
from ..domain.model import HOST_RE, MAX_PORT, MIN_SLOT_PORT, Slot
from ..errors import ConfigError, ConflictError, InventoryError, NotFoundError, UsageError
from .backend import Backend, IntegrityViolation, Tx, split_statements
from .models import (
    DEFAULT_PUBLISH_ADDRESS,
    HOST_STATES,
    OPERATION_STATES,
    PRACTICE_STATES,
    STEP_STATES,
    Event,
    HostRecord,
    JournalEntry,
    OperationRecord,
    PracticeRecord,
)

# Keys an event payload may never carry (do-not-track; no secrets).
FORBIDDEN_PAYLOAD_KEYS = frozenset(
    {
        "email",
        "e_mail",
        "mail",
        "username",
        "user",
        "first_name",
        "last_name",
        "vorname",
        "nachname",
        "lanr",
        "persons",
        "staff",
        "password",
        "secret",
        "token",
    }
)
_PRACTICE_FIELDS = (
    "display_name",
    "kv",
    "specialties",
    "billable_seats",
    "apps",
    "state",
    "last_smoke",
    "export_sha256",
    "package",
)
_JSON_LIST_FIELDS = ("specialties", "apps")
_ENDPOINT_SCHEMES = ("unix://", "ssh://", "tcp://")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def _ts(dt: datetime) -> str:
    """Fixed-width ISO 8601 UTC text (sorts like the time it names)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _req_dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _host_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"host {name} is not in the inventory",
        obj=name,
        hint=f"smartpraxx-provision hosts add {name} --endpoint ...",
    )


def _check_resumable(live: PracticeRecord, order_id: str, host: str | None) -> None:
    """An allocation re-run for ``live`` resumes it: same order, no other host."""
    if live.order_id != order_id:
        raise ConflictError(
            f"praxisname {live.praxisname} is taken by slot {live.slot.id} "
            f"(order {live.order_id})",
            obj=live.praxisname,
            hint="choose another praxisname ('smartpraxx-provision practices list')",
        )
    if host is not None and host != live.slot.host:
        raise ConflictError(
            f"practice {live.praxisname} already has slot {live.slot.id}; "
            f"a slot never moves to {host}",
            obj=live.praxisname,
            hint=f"re-run without --host (or with --host {live.slot.host})",
        )


def validate_endpoint(endpoint: str, tls: dict[str, str] | None) -> None:
    """A Docker engine endpoint: unix://PATH, ssh://[user@]host[:port] or tcp://host:port."""
    if not endpoint.startswith(_ENDPOINT_SCHEMES) or len(endpoint) <= len("tcp://"):
        raise UsageError(
            f"invalid engine endpoint {endpoint!r}",
            obj=endpoint,
            hint="use unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376 with --tls-*",
        )
    if endpoint.startswith("tcp://") and not tls:
        host = endpoint[len("tcp://") :].rsplit(":", 1)[0]
        if host not in _LOOPBACK:
            raise UsageError(
                f"tcp endpoint {endpoint} needs TLS (the Docker API is root access)",
                obj=endpoint,
                hint="pass --tls-ca, --tls-cert and --tls-key, or use ssh://",
            )
    if tls is not None and set(tls) != {"ca", "cert", "key"}:
        raise UsageError(
            "TLS needs all three of ca, cert and key",
            obj=endpoint,
            hint="pass --tls-ca, --tls-cert and --tls-key together",
        )


def validate_publish_address(address: str, host: str) -> str:
    """The canonical form of an IPv4 or IPv6 literal; a UsageError naming the host otherwise."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise UsageError(
            f"host {host}: --publish-address {address!r} is not an IP address",
            obj=host,
            hint="an IPv4 or IPv6 literal: 127.0.0.1 (the default), or 0.0.0.0 for a host "
            "whose front proxy reaches the slots from outside the engine's loopback",
        ) from None


def validate_slot_port_base(base: int | None, capacity: int, host: str) -> int | None:
    """``base`` when the host's ``capacity`` slots get ports 1024..65535 from it (ncXX: base
    + XX - 1); a UsageError naming the host otherwise. ``None``: random ports, always fine."""
    if base is None or (base >= MIN_SLOT_PORT and base + capacity - 1 <= MAX_PORT):
        return base
    raise UsageError(
        f"host {host}: --slot-port-base {base} does not fit capacity {capacity} "
        f"(ports {base}..{base + capacity - 1})",
        obj=host,
        hint=f"a base from {MIN_SLOT_PORT} to {MAX_PORT - max(capacity, 1) + 1}, so that "
        "every slot's port is a valid unprivileged port",
    )


def _stored_address(address: str) -> str | None:
    """A publish address as the hosts table keeps it: NULL for the default 127.0.0.1."""
    return None if address == DEFAULT_PUBLISH_ADDRESS else address


class Inventory:
    """The state store. Open it with :func:`open_inventory`; close it (or use ``with``).

    Safe to share between threads of one process (calls are serialised); every process
    opens its own. ``clock`` returns the current time (tests replace it).
    """

    def __init__(self, backend: Backend, *, clock: Callable[[], datetime] | None = None) -> None:
        self.backend = backend
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self.hostname = socket.gethostname()
        self.migrate()

    # --- plumbing --------------------------------------------------------------------
    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self.backend.close()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Tx]:
        with self._lock, self.backend.transaction(write=write) as tx:
            yield tx

    def _now(self) -> str:
        return _ts(self.clock())

    # --- schema migrations -----------------------------------------------------------
    @staticmethod
    def migrations() -> list[tuple[int, str, str]]:
        """(version, name, SQL) of every migration shipped in ``inventory/migrations``."""
        out: list[tuple[int, str, str]] = []
        folder = resources.files(__package__).joinpath("migrations")
        for entry in folder.iterdir():
            name = entry.name
            if not name.endswith(".sql"):
                continue
            version = int(name.split("_", 1)[0])
            out.append((version, name[: -len(".sql")], entry.read_text(encoding="utf-8")))
        return sorted(out)

    def migrate(self) -> int:
        """Apply the missing migrations (in one exclusive transaction); return the version."""
        known = self.migrations()
        with self._tx(write=True) as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {int(r["version"]) for r in tx.query("SELECT version FROM schema_migrations")}
            newest = max((v for v, _, _ in known), default=0)
            if applied and max(applied) > newest:
                raise InventoryError(
                    f"inventory {self.backend.describe()} has schema version {max(applied)}, "
                    f"newer than this tool knows ({newest})",
                    obj=self.backend.describe(),
                    hint="upgrade smartpraxx-provision",
                )
            for version, name, sql in known:
                if version in applied:
                    continue
                for statement in split_statements(sql.replace("{{AUTO_ID}}", self.backend.auto_id)):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, self._now()),
                )
            self._ensure_ownership_ids(tx)
            return newest

    def _ensure_ownership_ids(self, tx: Tx) -> None:
        """Migration 0005's data part: the installation id (once) and a practice id for every
        practice row that has none yet (UUIDs are made here, the same on both backends)."""
        if not tx.query("SELECT id FROM installation"):
            tx.execute(
                "INSERT INTO installation (id, created_at) VALUES (?, ?)",
                (str(uuid.uuid4()), self._now()),
            )
        for row in tx.query("SELECT slot_id FROM practices WHERE practice_id IS NULL"):
            tx.execute(
                "UPDATE practices SET practice_id = ? WHERE slot_id = ?",
                (str(uuid.uuid4()), row["slot_id"]),
            )

    @property
    def installation_id(self) -> str:
        """The stable id of this inventory (owner label ``de.smartpraxx.installation``)."""
        if getattr(self, "_installation_id", None) is None:
            with self._tx(write=False) as tx:
                rows = tx.query("SELECT id FROM installation")
            self._installation_id: str | None = str(rows[0]["id"])
        assert self._installation_id is not None
        return self._installation_id

    def schema_version(self) -> int:
        with self._tx(write=False) as tx:
            rows = tx.query("SELECT MAX(version) AS v FROM schema_migrations")
        return int(rows[0]["v"] or 0)

    # --- hosts -----------------------------------------------------------------------
    _HOST_SELECT = (
        "SELECT h.*, (SELECT COUNT(*) FROM practices p"
        " WHERE p.host = h.name AND p.state <> 'tombstoned') AS used FROM hosts h"
    )

    @staticmethod
    def _host(row: dict[str, Any]) -> HostRecord:
        tls = None
        if row["tls_ca"] or row["tls_cert"] or row["tls_key"]:
            tls = {"ca": row["tls_ca"], "cert": row["tls_cert"], "key": row["tls_key"]}
        return HostRecord(
            name=row["name"],
            number=int(row["number"]),
            endpoint=row["endpoint"],
            capacity=int(row["capacity"]),
            state=row["state"],
            tls=tls,
            used=int(row["used"]),
            next_number=int(row["next_number"]),
            created_at=_req_dt(row["created_at"]),
            updated_at=_req_dt(row["updated_at"]),
            engine_id=row.get("engine_id"),
            engine_version=row.get("engine_version"),
            publish_address=row.get("publish_address") or DEFAULT_PUBLISH_ADDRESS,
            slot_port_base=row.get("slot_port_base"),
        )

    def add_host(
        self,
        name: str,
        endpoint: str,
        capacity: int = 50,
        state: str = "active",
        tls: dict[str, str] | None = None,
        engine: dict[str, str] | None = None,
        publish_address: str = DEFAULT_PUBLISH_ADDRESS,
        slot_port_base: int | None = None,
    ) -> HostRecord:
        """Register host ``name``; adding it again with the same settings changes nothing.

        ``engine``: ``{"id", "version"}`` of the Docker engine that answered the probe;
        ``publish_address``: where the slots' containers publish their ports on it;
        ``slot_port_base``: the app port of slot nc01 (``None``: random ports)."""
        m = HOST_RE.match(name)
        if not m:
            raise UsageError(
                f"invalid host name {name!r}", obj=name, hint="host names look like cloud023"
            )
        if state not in HOST_STATES:
            raise UsageError(f"invalid host state {state!r}", obj=name, hint=", ".join(HOST_STATES))
        if capacity < 0:
            raise UsageError(f"capacity must be >= 0, got {capacity}", obj=name)
        validate_endpoint(endpoint, tls)
        address = validate_publish_address(publish_address, name)
        validate_slot_port_base(slot_port_base, capacity, name)
        tls = tls or {}
        with self._tx(write=True) as tx:
            rows = self._host_rows(tx, name)
            if rows:
                existing = self._host(rows[0])
                if existing.registration() != (endpoint, capacity, tls, address, slot_port_base):
                    raise ConflictError(
                        f"host {name} exists with other settings",
                        obj=name,
                        hint=f"smartpraxx-provision hosts list  (host {name} is registered)",
                    )
                return existing
            now = self._now()
            try:
                tx.execute(
                    "INSERT INTO hosts (name, number, endpoint, capacity, state, tls_ca, tls_cert,"
                    " tls_key, next_number, created_at, updated_at, engine_id, engine_version,"
                    " publish_address, slot_port_base)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                    (name, int(m.group("number")), endpoint, capacity, state, tls.get("ca"),
                     tls.get("cert"), tls.get("key"), now, now, (engine or {}).get("id"),
                     (engine or {}).get("version"), _stored_address(address), slot_port_base),
                )
            except IntegrityViolation as exc:
                raise ConflictError(
                    f"host number of {name} is taken by another host name",
                    obj=name,
                    hint="smartpraxx-provision hosts list",
                ) from exc
            return self._host(self._known_host_row(tx, name))

    def _host_rows(self, tx: Tx, name: str) -> list[dict[str, Any]]:
        return tx.query(self._HOST_SELECT + " WHERE h.name = ?", (name,))

    def _known_host_row(self, tx: Tx, name: str) -> dict[str, Any]:
        """The row of host ``name``; NotFoundError if it is not registered."""
        rows = self._host_rows(tx, name)
        if not rows:
            raise _host_not_found(name)
        return rows[0]

    def get_host(self, name: str) -> HostRecord | None:
        with self._tx(write=False) as tx:
            rows = self._host_rows(tx, name)
        return self._host(rows[0]) if rows else None

    def list_hosts(self) -> list[HostRecord]:
        with self._tx(write=False) as tx:
            rows = tx.query(self._HOST_SELECT + " ORDER BY h.number")
        return [self._host(r) for r in rows]

    def update_host(
        self,
        name: str,
        *,
        endpoint: str | None = None,
        capacity: int | None = None,
        tls: dict[str, str] | bool | None = False,
        engine: dict[str, str] | None = None,
        publish_address: str | None = None,
        slot_port_base: int | bool | None = False,
    ) -> HostRecord:
        """Change a host's endpoint, TLS files (``None`` = no TLS, ``False`` = unchanged),
        capacity, publish address, slot port base (``None`` = random ports, ``False`` =
        unchanged) or probed engine facts. The slot numbering stays."""
        if publish_address is not None:
            publish_address = validate_publish_address(publish_address, name)
        with self._tx(write=True) as tx:
            current = self._host(self._known_host_row(tx, name))
            new_tls = current.tls if tls is False else tls
            assert not isinstance(new_tls, bool)
            new_endpoint = endpoint if endpoint is not None else current.endpoint
            validate_endpoint(new_endpoint, new_tls)
            if capacity is not None and capacity < 0:
                raise UsageError(f"capacity must be >= 0, got {capacity}", obj=name)
            new_capacity = current.capacity if capacity is None else capacity
            base = current.slot_port_base if slot_port_base is False else slot_port_base
            assert not isinstance(base, bool)
            validate_slot_port_base(base, new_capacity, name)
            t = new_tls or {}
            tx.execute(
                "UPDATE hosts SET endpoint = ?, capacity = ?, tls_ca = ?, tls_cert = ?,"
                " tls_key = ?, engine_id = ?, engine_version = ?, publish_address = ?,"
                " slot_port_base = ?, updated_at = ? WHERE name = ?",
                (
                    new_endpoint,
                    new_capacity,
                    t.get("ca"),
                    t.get("cert"),
                    t.get("key"),
                    (engine or {}).get("id", current.engine_id),
                    (engine or {}).get("version", current.engine_version),
                    _stored_address(publish_address or current.publish_address),
                    base,
                    self._now(),
                    name,
                ),
            )
            return self._host(self._known_host_row(tx, name))

    def set_host_state(self, name: str, state: str) -> HostRecord:
        if state not in HOST_STATES:
            raise UsageError(f"invalid host state {state!r}", obj=name, hint=", ".join(HOST_STATES))
        with self._tx(write=True) as tx:
            changed = tx.execute(
                "UPDATE hosts SET state = ?, updated_at = ? WHERE name = ?",
                (state, self._now(), name),
            )
            if not changed:
                raise _host_not_found(name)
            return self._host(self._known_host_row(tx, name))

    # --- practices -------------------------------------------------------------------
    @staticmethod
    def _practice(tx: Tx, row: dict[str, Any]) -> PracticeRecord:
        former = tx.query(
            "SELECT name, grace_until FROM former_names WHERE slot_id = ? ORDER BY renamed_at, name",
            (row["slot_id"],),
        )
        now = datetime.now(UTC)
        return PracticeRecord(
            praxisname=row["praxisname"],
            slot=Slot(host=row["host"], number=int(row["slot_number"])),
            realm=row["realm"],
            order_id=row["order_id"],
            display_name=row["display_name"],
            kv=row["kv"],
            specialties=tuple(json.loads(row["specialties"])),
            billable_seats=int(row["billable_seats"]),
            state=row["state"],
            created_at=_req_dt(row["created_at"]),
            updated_at=_req_dt(row["updated_at"]),
            former_names=tuple(r["name"] for r in former),
            redirecting_names=tuple(r["name"] for r in former if _req_dt(r["grace_until"]) > now),
            last_smoke=row["last_smoke"],
            apps=tuple(json.loads(row["apps"])),
            practice_id=row["practice_id"] or "",
            owner_installation=row["owner_installation"],
            export_sha256=row.get("export_sha256"),
            package=row.get("package"),
            identity_shard=row.get("identity_shard") or PRIMARY_SHARD,
        )

    def _one(self, tx: Tx, where: str, params: Sequence[Any]) -> PracticeRecord | None:
        rows = tx.query(f"SELECT * FROM practices WHERE {where}", params)  # noqa: S608
        return self._practice(tx, rows[0]) if rows else None

    def _live(self, tx: Tx, praxisname: str) -> PracticeRecord | None:
        return self._one(tx, "praxisname = ? AND state <> 'tombstoned'", (praxisname,))

    def _last_tombstoned(self, tx: Tx, praxisname: str) -> PracticeRecord | None:
        return self._one(
            tx,
            "praxisname = ? AND state = 'tombstoned' ORDER BY updated_at DESC",
            (praxisname,),
        )

    def _reserved_former(self, tx: Tx, name: str, *, exclude_slot: str = "") -> str | None:
        """The slot whose former name ``name`` is still in its grace period, if any."""
        rows = tx.query(
            "SELECT slot_id, grace_until FROM former_names"
            " WHERE name = ? AND grace_until > ? AND slot_id <> ? ORDER BY grace_until DESC",
            (name, self._now(), exclude_slot),
        )
        return str(rows[0]["slot_id"]) if rows else None

    def allocate_practice(
        self,
        praxisname: str,
        *,
        order_id: str,
        display_name: str,
        kv: str,
        specialties: Sequence[str],
        billable_seats: int,
        host: str | None = None,
        reuse_name: bool = False,
        apps: Sequence[str] = (),
        live_numbers: Mapping[str, Collection[int]] | None = None,
        skip_hosts: Sequence[str] = (),
        shards: Sequence[str] = (PRIMARY_SHARD,),
        realms_per_shard: int = 0,
    ) -> PracticeRecord:
        """Allocate a slot for ``praxisname`` atomically (state ``allocated``).

        Its realm goes to the first of ``shards`` holding fewer than ``realms_per_shard``
        live practices (0: no limit, the first shard).

        Re-running with the same ``order_id`` returns the existing practice (resume).
        ``live_numbers`` maps a host to the slot numbers live on its engine (objects of any
        owner): the allocation moves past them, so a restored older inventory never hands out
        a number another inventory's practice uses.
        """
        if not praxisname or not order_id:
            raise UsageError("praxisname and order id must not be empty", obj=praxisname or "?")
        if billable_seats < 0:
            raise UsageError("billable seats must be >= 0", obj=praxisname)
        with self._tx(write=True) as tx:
            live = self._live(tx, praxisname)
            if live is not None:
                _check_resumable(live, order_id, host)
                return live
            self._check_name_free(tx, praxisname, reuse_name)
            target = self._pick_host(tx, host, skip_hosts)
            high_water = int(target["next_number"])
            busy = set((live_numbers or {}).get(target["name"], ()))
            number = high_water
            while number in busy:
                number += 1
            slot = Slot(host=target["name"], number=number)
            shard = self._pick_shard(tx, shards, realms_per_shard)
            now = self._now()
            tx.execute(
                "UPDATE hosts SET next_number = ?, updated_at = ?"
                " WHERE name = ? AND next_number = ?",
                (number + 1, now, slot.host, high_water),
            )
            self._insert_practice(
                tx, slot, praxisname, state="allocated", practice_id=str(uuid.uuid4()), now=now,
                order_id=order_id, display_name=display_name, kv=kv, specialties=specialties,
                billable_seats=billable_seats, apps=apps, identity_shard=shard,
            )
            record = self._live(tx, praxisname)
            assert record is not None
            return record

    def _check_name_free(self, tx: Tx, praxisname: str, reuse_name: bool) -> None:
        """Refuse a praxisname no live practice has that is still spoken for: a
        decommissioned practice's (unless ``reuse_name``) or a redirecting former name."""
        if not reuse_name and self._last_tombstoned(tx, praxisname) is not None:
            raise ConflictError(
                f"praxisname {praxisname} belonged to a decommissioned practice",
                obj=praxisname,
                hint="choose another praxisname, or pass --reuse-name to hand it out again",
            )
        reserved_by = self._reserved_former(tx, praxisname)
        if reserved_by is not None:
            raise ConflictError(
                f"praxisname {praxisname} is a former name of slot {reserved_by} "
                "and still redirects there (rename grace period)",
                obj=praxisname,
                hint="choose another praxisname",
            )

    @staticmethod
    def _insert_practice(
        tx: Tx,
        slot: Slot,
        praxisname: str,
        *,
        state: str,
        practice_id: str,
        now: str,
        order_id: str,
        display_name: str,
        kv: str = "",
        specialties: Sequence[str] = (),
        billable_seats: int = 0,
        apps: Sequence[str] = (),
        owner_installation: str | None = None,
        identity_shard: str = PRIMARY_SHARD,
    ) -> None:
        """The practices row of ``praxisname`` on ``slot`` (the host's numbering is the
        caller's)."""
        tx.execute(
            "INSERT INTO practices (slot_id, host, slot_number, praxisname, realm, order_id,"
            " display_name, kv, specialties, billable_seats, apps, state, created_at,"
            " updated_at, practice_id, owner_installation, identity_shard)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                slot.id,
                slot.host,
                slot.number,
                praxisname,
                slot.realm,
                order_id,
                display_name,
                kv,
                json.dumps(list(specialties)),
                billable_seats,
                json.dumps(list(apps)),
                state,
                now,
                now,
                practice_id,
                owner_installation,
                identity_shard,
            ),
        )

    @staticmethod
    def _pick_shard(tx: Tx, shards: Sequence[str], limit: int) -> str:
        """The first of ``shards`` with fewer than ``limit`` live practices (0: the first)."""
        rows = tx.query(
            "SELECT identity_shard, COUNT(*) AS n FROM practices"
            " WHERE state <> 'tombstoned' GROUP BY identity_shard"
        )
        counts = {str(r["identity_shard"]): int(r["n"]) for r in rows}
        for shard in shards:
            if not limit or counts.get(shard, 0) < limit:
                return shard
        raise ConflictError(
            f"every identity shard holds {limit} realms (realms_per_shard): "
            + ", ".join(f"{s} {counts.get(s, 0)}" for s in shards),
            obj="identity shards",
            hint="add a Keycloak cluster to the setting identity_shards (name=url), "
            "or raise realms_per_shard",
        )

    def _pick_host(
        self, tx: Tx, pinned: str | None, skip: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The pinned host, or the least loaded active host with room (not in ``skip``:
        hosts whose engine did not answer just now)."""
        if pinned is not None:
            row = self._known_host_row(tx, pinned)
            if row["state"] != "active":
                raise ConflictError(
                    f"host {pinned} is {row['state']}, it takes no new practices",
                    obj=pinned,
                    hint=f"smartpraxx-provision hosts activate {pinned}, or drop --host",
                )
            if int(row["used"]) >= int(row["capacity"]):
                raise ConflictError(
                    f"host {pinned} is full ({row['used']}/{row['capacity']} slots)",
                    obj=pinned,
                    hint="drop --host to place the practice on another host",
                )
            return row
        rows = tx.query(
            f"SELECT * FROM ({self._HOST_SELECT}) c"  # noqa: S608
            " WHERE c.state = 'active' AND c.used < c.capacity ORDER BY c.used, c.number"
        )
        rows = [r for r in rows if r["name"] not in skip]
        if not rows:
            unreachable = (
                f" (skipped, their engine does not answer: {', '.join(sorted(skip))})"
                if skip
                else ""
            )
            raise ConflictError(
                f"no active host has a free slot{unreachable}",
                obj="hosts",
                hint="smartpraxx-provision hosts add cloudNNN --endpoint ...  (or hosts activate)",
            )
        return rows[0]

    def get_practice(self, praxisname: str) -> PracticeRecord | None:
        """The practice currently named ``praxisname`` (live first, else the last tombstoned)."""
        with self._tx(write=False) as tx:
            return self._live(tx, praxisname) or self._last_tombstoned(tx, praxisname)

    def get_practice_by_slot(self, slot_id: str) -> PracticeRecord | None:
        with self._tx(write=False) as tx:
            return self._one(tx, "slot_id = ?", (slot_id,))

    def get_practice_by_id(self, practice_id: str) -> PracticeRecord | None:
        with self._tx(write=False) as tx:
            return self._one(tx, "practice_id = ?", (practice_id,))

    def adopt_practice(
        self,
        praxisname: str,
        *,
        slot: Slot,
        practice_id: str,
        installation: str,
        order_id: str = "",
        display_name: str = "",
        identity_shard: str = PRIMARY_SHARD,
    ) -> PracticeRecord:
        """Take over the owner of a slot's live objects (explicit ``practices adopt`` only).
        ``identity_shard``: where its realm was found.

        A practice this inventory knows on ``slot`` gets the practice id the objects carry
        (and their installation, when it is not ours). A practice it does not know (created
        after the restored backup, or by a lost inventory) is registered on ``slot`` as
        ``active``; the host's high-water mark moves past the slot number.
        """
        try:
            uuid.UUID(practice_id)
        except ValueError:
            raise UsageError(
                f"practice id {practice_id!r} is not a UUID", obj=slot.id
            ) from None
        owner_installation = None if installation == self.installation_id else installation
        with self._tx(write=True) as tx:
            holder = self._one(tx, "practice_id = ?", (practice_id,))
            live = self._live(tx, praxisname)
            if holder is not None and (live is None or holder.slot != live.slot):
                raise ConflictError(
                    f"practice id {practice_id} already belongs to {holder.praxisname} "
                    f"({holder.slot.id}) in this inventory",
                    obj=slot.id,
                    hint=f"smartpraxx-provision hosts scan {slot.host}",
                )
            now = self._now()
            if live is not None:
                if live.slot != slot:
                    raise ConflictError(
                        f"practice {praxisname} has slot {live.slot.id}, not {slot.id}",
                        obj=praxisname,
                        hint=f"smartpraxx-provision practices show {praxisname}",
                    )
                tx.execute(
                    "UPDATE practices SET practice_id = ?, owner_installation = ?,"
                    " identity_shard = ?, updated_at = ? WHERE slot_id = ?",
                    (practice_id, owner_installation, identity_shard, now, slot.id),
                )
            else:
                self._register_adopted(
                    tx, praxisname, slot, practice_id=practice_id, order_id=order_id,
                    display_name=display_name, owner_installation=owner_installation, now=now,
                    identity_shard=identity_shard,
                )
            adopted = self._one(tx, "slot_id = ?", (slot.id,))
            assert adopted is not None
            return adopted

    def _register_adopted(
        self, tx: Tx, praxisname: str, slot: Slot, *, practice_id: str, order_id: str,
        display_name: str, owner_installation: str | None, now: str, identity_shard: str,
    ) -> None:
        """Register a practice this inventory does not know on ``slot`` as ``active`` and move
        the host's high-water mark past the slot number."""
        if not order_id:
            raise UsageError(
                f"practice {praxisname} is not in this inventory: registering it "
                "needs its order id",
                obj=praxisname,
                hint="pass --order-id (the Bestellnummer of the practice)",
            )
        if self._one(tx, "slot_id = ?", (slot.id,)) is not None:
            raise ConflictError(
                f"slot {slot.id} belongs to another practice in this inventory",
                obj=slot.id,
                hint="smartpraxx-provision practices list --all",
            )
        if not tx.query("SELECT name FROM hosts WHERE name = ?", (slot.host,)):
            raise _host_not_found(slot.host)
        try:
            self._insert_practice(
                tx, slot, praxisname, state="active", practice_id=practice_id, now=now,
                order_id=order_id, display_name=display_name or praxisname,
                owner_installation=owner_installation, identity_shard=identity_shard,
            )
        except IntegrityViolation as exc:
            raise ConflictError(
                f"praxisname {praxisname} is taken in this inventory",
                obj=praxisname,
                hint="smartpraxx-provision practices list --all",
            ) from exc
        tx.execute(
            "UPDATE hosts SET next_number = ?, updated_at = ?"
            " WHERE name = ? AND next_number <= ?",
            (slot.number + 1, now, slot.host, slot.number),
        )

    def accept_unlabelled(self, slot_id: str, objects: Sequence[tuple[str, str]]) -> int:
        """Record Docker objects without owner marks as adopted by the practice of
        ``slot_id`` (explicit ``practices adopt`` only). Returns how many are new."""
        added = 0
        with self._tx(write=True) as tx:
            if self._one(tx, "slot_id = ?", (slot_id,)) is None:
                raise NotFoundError(f"slot {slot_id} is not in the inventory", obj=slot_id)
            for kind, name in objects:
                if tx.query(
                    "SELECT slot_id FROM adopted_objects WHERE kind = ? AND name = ?",
                    (kind, name),
                ):
                    continue
                tx.execute(
                    "INSERT INTO adopted_objects (kind, name, slot_id, adopted_at)"
                    " VALUES (?, ?, ?, ?)",
                    (kind, name, slot_id, self._now()),
                )
                added += 1
        return added

    def accepted_unlabelled(self, slot_id: str) -> set[tuple[str, str]]:
        """(kind, name) of the unlabelled objects adopted for ``slot_id``."""
        with self._tx(write=False) as tx:
            rows = tx.query("SELECT kind, name FROM adopted_objects WHERE slot_id = ?", (slot_id,))
        return {(str(r["kind"]), str(r["name"])) for r in rows}

    def resolve_name(self, name: str) -> PracticeRecord | None:
        """The practice for a current name, or for a former name recorded by a rename
        (one in its grace period first, then the most recent one)."""
        with self._tx(write=False) as tx:
            live = self._live(tx, name)
            if live is not None:
                return live
            slot_id = self._reserved_former(tx, name)
            if slot_id is None:
                tomb = self._last_tombstoned(tx, name)
                if tomb is not None:
                    return tomb
                rows = tx.query(
                    "SELECT slot_id FROM former_names WHERE name = ? ORDER BY renamed_at DESC",
                    (name,),
                )
                slot_id = str(rows[0]["slot_id"]) if rows else None
            return self._one(tx, "slot_id = ?", (slot_id,)) if slot_id else None

    def list_practices(self, include_tombstoned: bool = False) -> list[PracticeRecord]:
        where = "" if include_tombstoned else " WHERE p.state <> 'tombstoned'"
        with self._tx(write=False) as tx:
            rows = tx.query(
                "SELECT p.* FROM practices p JOIN hosts h ON h.name = p.host"  # noqa: S608
                + where
                + " ORDER BY h.number, p.slot_number"
            )
            return [self._practice(tx, r) for r in rows]

    def update_practice(self, praxisname: str, **fields: Any) -> PracticeRecord:
        """Change practice-level facts of the live practice ``praxisname``.

        Fields: display_name, kv, specialties, billable_seats, apps, state, last_smoke.
        """
        unknown = set(fields) - set(_PRACTICE_FIELDS)
        if unknown:
            raise InventoryError(
                f"update_practice: unknown field(s) {', '.join(sorted(unknown))}",
                obj=praxisname,
            )
        if "state" in fields and fields["state"] not in PRACTICE_STATES:
            raise UsageError(
                f"invalid practice state {fields['state']!r}",
                obj=praxisname,
                hint=", ".join(PRACTICE_STATES),
            )
        for name in _JSON_LIST_FIELDS:
            if name in fields:
                fields[name] = json.dumps(list(fields[name]))
        if "billable_seats" in fields and int(fields["billable_seats"]) < 0:
            raise UsageError("billable seats must be >= 0", obj=praxisname)
        with self._tx(write=True) as tx:
            record = self._require_live(tx, praxisname)
            if fields:
                names = sorted(fields)
                assignments = ", ".join(f"{n} = ?" for n in names)
                tx.execute(
                    f"UPDATE practices SET {assignments}, updated_at = ? WHERE slot_id = ?",  # noqa: S608
                    [fields[n] for n in names] + [self._now(), record.slot.id],
                )
            updated = self._one(tx, "slot_id = ?", (record.slot.id,))
            assert updated is not None
            return updated

    def _require_live(self, tx: Tx, praxisname: str) -> PracticeRecord:
        record = self._live(tx, praxisname)
        if record is None:
            tomb = self._last_tombstoned(tx, praxisname)
            if tomb is not None:
                raise ConflictError(
                    f"practice {praxisname} ({tomb.slot.id}) is decommissioned",
                    obj=praxisname,
                    hint="smartpraxx-provision practices list --all",
                )
            raise NotFoundError(
                f"practice {praxisname} is not in the inventory",
                obj=praxisname,
                hint="smartpraxx-provision practices list",
            )
        return record

    def rename_practice(self, old: str, new: str, *, grace_until: datetime) -> PracticeRecord:
        """Give the practice ``old`` the name ``new``; it keeps its slot and realm.

        ``old`` is recorded as a former name, reserved until ``grace_until``. Re-running a
        finished rename returns the renamed practice.
        """
        if not new:
            raise UsageError("the new praxisname must not be empty", obj=old)
        with self._tx(write=True) as tx:
            record = self._live(tx, old)
            if record is None:
                done = self._live(tx, new)
                if done is not None and old in done.former_names:
                    return done  # re-run of a finished rename
                record = self._require_live(tx, old)
            if new == old:
                return record
            holder = self._live(tx, new) or self._last_tombstoned(tx, new)
            if holder is not None:
                what = "a decommissioned practice" if holder.tombstoned else "another practice"
                raise ConflictError(
                    f"praxisname {new} belongs to {what} ({holder.slot.id})",
                    obj=new,
                    hint="choose another praxisname",
                )
            reserved_by = self._reserved_former(tx, new, exclude_slot=record.slot.id)
            if reserved_by is not None:
                raise ConflictError(
                    f"praxisname {new} is a former name of slot {reserved_by} and still "
                    "redirects there (rename grace period)",
                    obj=new,
                    hint="choose another praxisname",
                )
            now = self._now()
            tx.execute(
                "DELETE FROM former_names WHERE name = ? AND slot_id = ?", (new, record.slot.id)
            )
            tx.execute(
                "INSERT INTO former_names (name, slot_id, renamed_at, grace_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name, slot_id)"
                " DO UPDATE SET renamed_at = excluded.renamed_at,"
                " grace_until = excluded.grace_until",
                (old, record.slot.id, now, _ts(grace_until)),
            )
            tx.execute(
                "UPDATE practices SET praxisname = ?, updated_at = ? WHERE slot_id = ?",
                (new, now, record.slot.id),
            )
            renamed = self._one(tx, "slot_id = ?", (record.slot.id,))
            assert renamed is not None
            return renamed

    def transition_practice(
        self, praxisname: str, target: str, *, payload: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None, change_event: tuple[str, str] | None = None,
    ) -> tuple[PracticeRecord, list[Event]]:
        """Move the live practice ``praxisname`` to state ``target`` (domain/lifecycle.py's
        table decides, a change it does not allow is refused), set ``fields`` and record the
        transition's billing event, all in one transaction.

        A transition's event (``provisioned``, ``decommissioned``) is keyed by the slot
        (``<slot>:<event>``, unique): it is recorded once in the slot's life, whatever
        re-runs, crash-resumes or failed-then-converged runs happen. ``change_event``
        ``(event, field)``, e.g. ``("seats-changed", "billable_seats")``: recorded when
        ``fields[field]`` differs from the stored value and no transition event is recorded.
        ``decommissioning`` -> ``tombstoned`` on a re-run returns the tombstone.
        """
        from ..domain.lifecycle import transition

        fields = dict(fields or {})
        payload = dict(payload or {})
        self._check_payload(target, payload)
        bad = set(fields) - (set(_PRACTICE_FIELDS) - {"state"})
        if bad:
            raise InventoryError(
                f"transition_practice: bad field(s) {', '.join(sorted(bad))}", obj=praxisname
            )
        stored = {
            k: (json.dumps(list(v)) if k in _JSON_LIST_FIELDS else v) for k, v in fields.items()
        }
        with self._tx(write=True) as tx:
            record = self._live(tx, praxisname)
            if record is None and target == "tombstoned":
                tomb = self._last_tombstoned(tx, praxisname)
                if tomb is not None:
                    return tomb, []
            if record is None:
                record = self._require_live(tx, praxisname)
            step = transition(record.state, target)
            row = tx.query("SELECT * FROM practices WHERE slot_id = ?", (record.slot.id,))[0]
            now = self._now()
            assignments = {"state": target, **stored}
            names = sorted(assignments)
            tx.execute(
                f"UPDATE practices SET {', '.join(f'{n} = ?' for n in names)},"  # noqa: S608
                " updated_at = ? WHERE slot_id = ?",
                [assignments[n] for n in names] + [now, record.slot.id],
            )
            kind, key = self._transition_event(
                tx, record, step.event if step is not None else None, change_event, row, stored
            )
            events: list[Event] = []
            if kind is not None:
                text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
                event_id = self._insert_event(tx, kind, praxisname, text, now, key)
                events.append(Event(event_id, kind, praxisname, payload, _req_dt(now)))
            updated = self._one(tx, "slot_id = ?", (record.slot.id,))
            assert updated is not None
            return updated, events

    def _transition_event(
        self, tx: Tx, record: PracticeRecord, step_event: str | None,
        change_event: tuple[str, str] | None, row: dict[str, Any], stored: dict[str, Any],
    ) -> tuple[str | None, str | None]:
        """The event a transition records, if any, and its once-per-slot key: the step's
        event the first time in the slot's life, else ``change_event`` when its field changed."""
        from ..domain.lifecycle import ONCE_PER_SLOT

        if step_event is not None and step_event in ONCE_PER_SLOT:
            key = f"{record.slot.id}:{step_event}"
            if not self._slot_had_event(tx, record, step_event, key):
                return step_event, key
        if change_event is not None:
            event, field_name = change_event
            if field_name in stored and row[field_name] != stored[field_name]:
                return event, None
        return None, None

    @staticmethod
    def _slot_had_event(tx: Tx, record: PracticeRecord, kind: str, key: str) -> bool:
        """Whether the slot's once-per-life event ``kind`` exists (keyed, or recorded before
        migration 0006 under one of the practice's names)."""
        if tx.query("SELECT 1 AS x FROM events WHERE transition_key = ?", (key,)):
            return True
        names = [record.praxisname, *record.former_names]
        marks = ", ".join("?" for _ in names)
        return bool(
            tx.query(
                "SELECT 1 AS x FROM events WHERE transition_key IS NULL AND kind = ?"  # noqa: S608
                f" AND praxisname IN ({marks}) AND created_at >= ?",
                [kind, *names, _ts(record.created_at)],
            )
        )

    def tombstone_practice(self, praxisname: str) -> PracticeRecord:
        """Mark the practice decommissioned; its slot number and name stay reserved."""
        with self._tx(write=True) as tx:
            record = self._live(tx, praxisname)
            if record is None:
                tomb = self._last_tombstoned(tx, praxisname)
                if tomb is not None:
                    return tomb  # re-run
                self._require_live(tx, praxisname)
                raise AssertionError("unreachable")
            tx.execute(
                "UPDATE practices SET state = 'tombstoned', updated_at = ? WHERE slot_id = ?",
                (self._now(), record.slot.id),
            )
            tomb = self._one(tx, "slot_id = ?", (record.slot.id,))
            assert tomb is not None
            return tomb

    # --- operation lock and journal --------------------------------------------------
    @staticmethod
    def _operation(row: dict[str, Any]) -> OperationRecord:
        return OperationRecord(
            op_id=row["op_id"],
            kind=row["kind"],
            praxisname=row["praxisname"],
            state=row["state"],
            hostname=row["hostname"],
            pid=int(row["pid"]),
            started_at=_req_dt(row["started_at"]),
            ended_at=_dt(row["ended_at"]),
        )

    def begin_operation(self, kind: str, praxisname: str) -> str:
        """Take the operation lock on the practice named ``praxisname`` and open a journal;
        return the op id.

        The lock is keyed by the practice id (it survives a rename); a practice without a
        row yet (a new provision) is locked by ``name:<praxisname>``, and an existing
        practice's lock also collides with that key, so the allocation cannot slip between.
        """
        op_id = uuid.uuid4().hex
        with self._tx(write=True) as tx:
            live = self._live(tx, praxisname)
            name_key = f"name:{praxisname}"
            keys = [live.practice_id, name_key] if live is not None else [name_key]
            lock_key = keys[0]
            marks = ", ".join("?" for _ in keys)
            rows = tx.query(
                f"SELECT * FROM operations WHERE lock_key IN ({marks})"  # noqa: S608
                " AND state = 'running' ORDER BY started_at",
                keys,
            )
            for row in rows:
                running = self._operation(row)
                stale = running.hostname == self.hostname and not _pid_alive(running.pid)
                if not stale:
                    raise ConflictError(
                        f"{kind} of {praxisname} refused: operation {running.op_id} "
                        f"({running.kind}) is running since {running.started_at:%Y-%m-%d %H:%M:%S} "
                        f"UTC (pid {running.pid} on {running.hostname})",
                        obj=praxisname,
                        hint="wait for it to finish and re-run; if that process is gone on "
                        f"{running.hostname}, end it there or: smartpraxx-provision operations abandon "
                        f"{running.op_id} --yes",
                        details={"op_id": running.op_id, "kind": running.kind},
                    )
                tx.execute(
                    "UPDATE operations SET state = 'abandoned', ended_at = ? WHERE op_id = ?",
                    (self._now(), running.op_id),
                )
            tx.execute(
                "INSERT INTO operations (op_id, kind, praxisname, state, hostname, pid,"
                " started_at, lock_key) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (op_id, kind, praxisname, self.hostname, os.getpid(), self._now(), lock_key),
            )
        return op_id

    def is_interrupted(self, op: OperationRecord) -> bool:
        """A ``running`` operation whose process is gone on this machine (killed): its lock
        is stale and the next run takes it over."""
        return op.state == "running" and op.hostname == self.hostname and not _pid_alive(op.pid)

    def end_operation(self, op_id: str, state: str) -> None:
        """Release the lock: ``state`` is 'done', 'failed' or 'abandoned'."""
        if state not in OPERATION_STATES or state == "running":
            raise InventoryError(f"invalid end state {state!r}", obj=op_id)
        with self._tx(write=True) as tx:
            changed = tx.execute(
                "UPDATE operations SET state = ?, ended_at = ? WHERE op_id = ?",
                (state, self._now(), op_id),
            )
        if not changed:
            raise NotFoundError(f"operation {op_id} is not in the journal", obj=op_id)

    def abandon_operation(self, op_id: str) -> bool:
        """Release a lock whose process is gone on another machine (ops decision:
        ``operations abandon``). Only a ``running`` operation changes; False otherwise."""
        with self._tx(write=True) as tx:
            changed = tx.execute(
                "UPDATE operations SET state = 'abandoned', ended_at = ?"
                " WHERE op_id = ? AND state = 'running'",
                (self._now(), op_id),
            )
        return bool(changed)

    def get_operation(self, op_id: str) -> OperationRecord | None:
        with self._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM operations WHERE op_id = ?", (op_id,))
        return self._operation(rows[0]) if rows else None

    def journal_step(self, op_id: str, step: str, state: str, detail: str = "") -> None:
        """Record the state of one step (one row per (op_id, step), updated in place).

        ``detail`` is for operators: never a secret, never staff personal data.
        """
        if state not in STEP_STATES:
            raise InventoryError(f"invalid step state {state!r}", obj=f"{op_id}/{step}")
        now = self._now()
        ended = now if state != "started" else None
        try:
            with self._tx(write=True) as tx:
                tx.execute(
                    "INSERT INTO journal (op_id, step, seq, state, detail, started_at,"
                    " updated_at, ended_at) VALUES (?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE op_id = ?),"
                    " ?, ?, ?, ?, ?) ON CONFLICT (op_id, step) DO UPDATE SET"
                    " state = excluded.state, detail = excluded.detail,"
                    " updated_at = excluded.updated_at, ended_at = excluded.ended_at",
                    (op_id, step, op_id, state, detail, now, now, ended),
                )
        except IntegrityViolation as exc:
            raise NotFoundError(f"operation {op_id} is not in the journal", obj=op_id) from exc

    def journal(self, op_id: str) -> list[JournalEntry]:
        with self._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM journal WHERE op_id = ? ORDER BY seq", (op_id,))
        return [
            JournalEntry(
                op_id=r["op_id"],
                step=r["step"],
                seq=int(r["seq"]),
                state=r["state"],
                detail=r["detail"],
                started_at=_req_dt(r["started_at"]),
                updated_at=_req_dt(r["updated_at"]),
                ended_at=_dt(r["ended_at"]),
            )
            for r in rows
        ]

    def _operations(self, praxisname: str, kind: str | None) -> list[OperationRecord]:
        sql = "SELECT * FROM operations WHERE praxisname = ?"
        params: list[Any] = [praxisname]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._tx(write=False) as tx:
            rows = tx.query(sql + " ORDER BY started_at DESC, op_id", params)
        return [self._operation(r) for r in rows]

    def last_operation(self, praxisname: str, kind: str | None = None) -> OperationRecord | None:
        ops = self._operations(praxisname, kind)
        return ops[0] if ops else None

    def unfinished_operation(self, praxisname: str) -> OperationRecord | None:
        """The latest operation on ``praxisname`` that did not finish (running, failed,
        abandoned) and was not followed by a finished run of the same kind."""
        seen: set[str] = set()
        for op in self._operations(praxisname, None):
            if op.kind in seen:
                continue
            seen.add(op.kind)
            if op.state != "done":
                return op
        return None

    # --- events ----------------------------------------------------------------------
    def record_event(self, kind: str, praxisname: str, payload: dict[str, Any]) -> Event:
        """A business event for billing (e.g. provisioned with seats). No staff data."""
        self._check_payload(kind, payload)
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        now = self._now()
        with self._tx(write=True) as tx:
            event_id = self._insert_event(tx, kind, praxisname, text, now, None)
        return Event(event_id, kind, praxisname, json.loads(text), _req_dt(now))

    @staticmethod
    def _insert_event(
        tx: Tx, kind: str, praxisname: str, payload_json: str, now: str, key: str | None
    ) -> int:
        """Insert an event row (``key``: its once-per-slot transition key) and return its id."""
        tx.execute(
            "INSERT INTO events (kind, praxisname, payload, created_at, transition_key)"
            " VALUES (?, ?, ?, ?, ?)",
            (kind, praxisname, payload_json, now, key),
        )
        rows = tx.query(
            "SELECT MAX(id) AS id FROM events WHERE kind = ? AND praxisname = ?",
            (kind, praxisname),
        )
        return int(rows[0]["id"])

    @staticmethod
    def _check_payload(kind: str, payload: dict[str, Any]) -> None:
        bad = sorted(k for k in payload if k.lower() in FORBIDDEN_PAYLOAD_KEYS)
        if bad:
            raise InventoryError(
                f"event payload key(s) {', '.join(bad)} are not allowed in the inventory "
                "(do-not-track, no secrets)",
                obj=f"event {kind}",
            )

    def list_events(self, praxisname: str | None = None, kind: str | None = None) -> list[Event]:
        sql = "SELECT * FROM events WHERE 1 = 1"
        params: list[Any] = []
        if praxisname is not None:
            sql += " AND praxisname = ?"
            params.append(praxisname)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._tx(write=False) as tx:
            rows = tx.query(sql + " ORDER BY id", params)
        return [
            Event(
                int(r["id"]),
                r["kind"],
                r["praxisname"],
                json.loads(r["payload"]),
                _req_dt(r["created_at"]),
            )
            for r in rows
        ]


def open_inventory(settings: Settings) -> Inventory:
    """The configured inventory: SQLite under the state dir, or PostgreSQL by URL."""
    url = settings.inventory_url.strip()
    if not url:
        from .sqlite import SQLiteBackend

        return Inventory(SQLiteBackend(settings.inventory_path))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresBackend

        return Inventory(PostgresBackend(url))
    raise ConfigError(
        "inventory_url must be empty (SQLite under the state dir) or a postgresql:// URL",
        obj="setting inventory_url",
        hint="e.g. SMARTPRAXX_INVENTORY_URL=postgresql://smartpraxx@db.internal:5432/smartpraxx",
    )
