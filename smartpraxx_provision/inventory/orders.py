"""Shop orders, the durable webhook queue and the billing outbox (migration 0004).

Exactly once, by construction:

- a delivery is stored under its delivery key (primary key): concurrent duplicates insert
  one row, the others find it and are answered 2xx like the first;
- a worker claims a queued delivery inside an exclusive write transaction, so two workers
  never process the same one; a claim older than the lease (a worker killed mid-way) is
  handed out again, and the processing itself is idempotent (the order is keyed by its id);
- every billing event gets one outbox row (keyed by the event id, with an idempotency key
  the receiver deduplicates on).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.shop import Delivery
from ..errors import NotFoundError
from .backend import IntegrityViolation
from .models import JsonRecord
from .store import Inventory, _dt, _pid_alive, _req_dt, _ts

LEASE = timedelta(minutes=10)
MAX_BILLING_ATTEMPTS = 8


@dataclass(frozen=True)
class QueuedDelivery(JsonRecord):
    json_omit = ("fields",)  # to_dict() lists the delivery without the delivered form fields

    key: str
    event: str
    action: str
    order_id: str
    fields: dict[str, str]
    state: str
    attempts: int
    result: str
    received_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True)
class Order(JsonRecord):
    order_id: str
    product_id: str
    package: str
    contact_email: str
    state: str
    attention: str
    praxisname: str | None
    suspended: bool
    template_sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OutboxEntry(JsonRecord):
    event_id: int
    idempotency_key: str
    kind: str
    praxisname: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str


def _delivery(row: dict[str, Any]) -> QueuedDelivery:
    return QueuedDelivery(
        key=row["delivery_key"], event=row["event"], action=row["action"],
        order_id=row["order_id"], fields=json.loads(row["fields"]), state=row["state"],
        attempts=int(row["attempts"]), result=row["result"],
        received_at=_req_dt(row["received_at"]), processed_at=_dt(row["processed_at"]),
    )


def _order(row: dict[str, Any]) -> Order:
    return Order(
        order_id=row["order_id"], product_id=row["product_id"], package=row["package"],
        contact_email=row["contact_email"], state=row["state"], attention=row["attention"],
        praxisname=row["praxisname"], suspended=bool(row["suspended"]),
        template_sent_at=_dt(row["template_sent_at"]), created_at=_req_dt(row["created_at"]),
        updated_at=_req_dt(row["updated_at"]),
    )


class OrderBook:
    """Orders, deliveries and billing outbox on an open :class:`Inventory`."""

    def __init__(self, inventory: Inventory) -> None:
        self.inv = inventory

    # --- deliveries (the durable queue) ------------------------------------------------
    def enqueue(self, delivery: Delivery) -> bool:
        """Store a delivery; False if it was stored before (a duplicate or a retry)."""
        now = self.inv._now()
        with self.inv._tx(write=True) as tx:
            if tx.query("SELECT 1 FROM deliveries WHERE delivery_key = ?", (delivery.key,)):
                return False
            try:
                tx.execute(
                    "INSERT INTO deliveries (delivery_key, event, action, order_id, fields,"
                    " state, received_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                    (delivery.key, delivery.event, delivery.action.value, delivery.order_id,
                     json.dumps(dict(delivery.fields), sort_keys=True), now),
                )
            except IntegrityViolation:
                return False
        return True

    def claim(self) -> QueuedDelivery | None:
        """The oldest queued delivery, now processing by this process.

        A delivery left 'processing' by a worker that died (its pid is gone on this machine,
        or its lease ran out elsewhere) is handed out again.
        """
        now = self.inv.clock()
        me = f"{self.inv.hostname}:{os.getpid()}"
        with self.inv._tx(write=True) as tx:
            rows = tx.query(
                "SELECT * FROM deliveries WHERE state IN ('queued', 'processing')"
                " ORDER BY received_at, delivery_key LIMIT 200")
            pick = next((r for r in rows if r["state"] == "queued"
                         or self._claim_is_dead(r, now)), None)
            if pick is None:
                return None
            tx.execute(
                "UPDATE deliveries SET state = 'processing', claimed_at = ?, claimed_by = ?,"
                " attempts = attempts + 1 WHERE delivery_key = ?",
                (_ts(now), me, pick["delivery_key"]),
            )
            row = tx.query("SELECT * FROM deliveries WHERE delivery_key = ?",
                           (pick["delivery_key"],))[0]
        return _delivery(row)

    def _claim_is_dead(self, row: dict[str, Any], now: datetime) -> bool:
        host, _, pid = str(row["claimed_by"] or "").rpartition(":")
        if host == self.inv.hostname and pid.isdigit():
            return not _pid_alive(int(pid))
        claimed = _dt(row["claimed_at"])
        return claimed is None or claimed < now - LEASE

    def finish(self, key: str, *, ok: bool, result: str) -> None:
        with self.inv._tx(write=True) as tx:
            tx.execute(
                "UPDATE deliveries SET state = ?, result = ?, processed_at = ?"
                " WHERE delivery_key = ?",
                ("done" if ok else "failed", result[:500], self.inv._now(), key),
            )

    def requeue(self, key: str) -> None:
        with self.inv._tx(write=True) as tx:
            changed = tx.execute(
                "UPDATE deliveries SET state = 'queued', claimed_at = NULL, claimed_by = NULL"
                " WHERE delivery_key = ?", (key,))
        if not changed:
            raise NotFoundError(f"delivery {key} is not in the inventory", obj=key,
                                hint="smartpraxx-provision orders deliveries")

    def deliveries(self, order_id: str | None = None) -> list[QueuedDelivery]:
        sql = "SELECT * FROM deliveries"
        params: tuple[str, ...] = ()
        if order_id is not None:
            sql, params = sql + " WHERE order_id = ?", (order_id,)
        with self.inv._tx(write=False) as tx:
            rows = tx.query(sql + " ORDER BY received_at, delivery_key", params)
        return [_delivery(r) for r in rows]

    # --- orders --------------------------------------------------------------------------
    def create_order(self, order_id: str, product_id: str, package: str,
                     contact_email: str) -> tuple[Order, bool]:
        """The order (created once); True if this call created it."""
        now = self.inv._now()
        with self.inv._tx(write=True) as tx:
            rows = tx.query("SELECT * FROM orders WHERE order_id = ?", (order_id,))
            if rows:
                return _order(rows[0]), False
            tx.execute(
                "INSERT INTO orders (order_id, product_id, package, contact_email, state,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 'paid', ?, ?)",
                (order_id, product_id, package, contact_email, now, now),
            )
            return _order(tx.query("SELECT * FROM orders WHERE order_id = ?",
                                   (order_id,))[0]), True

    def get_order(self, order_id: str) -> Order | None:
        with self.inv._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM orders WHERE order_id = ?", (order_id,))
        return _order(rows[0]) if rows else None

    def require_order(self, order_id: str) -> Order:
        order = self.get_order(order_id)
        if order is None:
            raise NotFoundError(f"order {order_id} is not in the inventory", obj=order_id,
                                hint="smartpraxx-provision orders list")
        return order

    def list_orders(self) -> list[Order]:
        with self.inv._tx(write=False) as tx:
            rows = tx.query("SELECT * FROM orders ORDER BY created_at, order_id")
        return [_order(r) for r in rows]

    def update_order(self, order_id: str, **fields: Any) -> Order:
        allowed = {"state", "attention", "praxisname", "suspended", "template_sent_at"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"not order fields: {sorted(bad)}")
        values = {k: (_ts(v) if isinstance(v, datetime) else int(v) if isinstance(v, bool)
                      else v) for k, v in fields.items()}
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.inv._tx(write=True) as tx:
            changed = tx.execute(
                f"UPDATE orders SET {sets}, updated_at = ? WHERE order_id = ?",  # noqa: S608
                (*values.values(), self.inv._now(), order_id),
            )
            if not changed:
                raise NotFoundError(f"order {order_id} is not in the inventory",
                                    obj=order_id, hint="smartpraxx-provision orders list")
            return _order(tx.query("SELECT * FROM orders WHERE order_id = ?", (order_id,))[0])

    def claim_order_state(self, order_id: str, expected: tuple[str, ...], new: str) -> bool:
        """Move the order to ``new`` only from one of ``expected`` (one winner)."""
        marks = ", ".join("?" for _ in expected)
        with self.inv._tx(write=True) as tx:
            changed = tx.execute(
                f"UPDATE orders SET state = ?, updated_at = ? WHERE order_id = ?"  # noqa: S608
                f" AND state IN ({marks})",
                (new, self.inv._now(), order_id, *expected),
            )
        return bool(changed)

    # --- billing outbox ------------------------------------------------------------------
    def sync_outbox(self) -> int:
        """Give every billing event without an outbox row one; return how many were added."""
        now = self.inv._now()
        with self.inv._tx(write=True) as tx:
            rows = tx.query(
                "SELECT e.id FROM events e LEFT JOIN billing_outbox b ON b.event_id = e.id"
                " WHERE b.event_id IS NULL ORDER BY e.id")
            for row in rows:
                tx.execute(
                    "INSERT INTO billing_outbox (event_id, idempotency_key, state,"
                    " next_attempt_at) VALUES (?, ?, 'pending', ?)",
                    (int(row["id"]), f"{self.installation_key()}-evt-{int(row['id'])}", now),
                )
        return len(rows)

    def installation_key(self) -> str:
        """A prefix that keeps idempotency keys of two inventories apart."""
        return hashlib.sha256(self.inv.backend.describe().encode()).hexdigest()[:12]

    _OUTBOX_SELECT = (
        "SELECT b.*, e.kind, e.praxisname, e.payload FROM billing_outbox b"
        " JOIN events e ON e.id = b.event_id"
    )

    @staticmethod
    def _outbox(row: dict[str, Any]) -> OutboxEntry:
        return OutboxEntry(
            event_id=int(row["event_id"]), idempotency_key=row["idempotency_key"],
            kind=row["kind"], praxisname=row["praxisname"], payload=json.loads(row["payload"]),
            state=row["state"], attempts=int(row["attempts"]),
            next_attempt_at=_req_dt(row["next_attempt_at"]), last_error=row["last_error"],
        )

    def due_billing(self, limit: int = 50) -> list[OutboxEntry]:
        with self.inv._tx(write=False) as tx:
            rows = tx.query(self._OUTBOX_SELECT + " WHERE b.state = 'pending'"
                            " AND b.next_attempt_at <= ? ORDER BY b.event_id LIMIT ?",
                            (self.inv._now(), limit))
        return [self._outbox(r) for r in rows]

    def outbox(self, states: tuple[str, ...] = ("pending", "dead")) -> list[OutboxEntry]:
        marks = ", ".join("?" for _ in states)
        with self.inv._tx(write=False) as tx:
            rows = tx.query(self._OUTBOX_SELECT + f" WHERE b.state IN ({marks})"
                            " ORDER BY b.event_id", states)
        return [self._outbox(r) for r in rows]

    def billing_delivered(self, event_id: int) -> None:
        now = self.inv._now()
        with self.inv._tx(write=True) as tx:
            tx.execute("UPDATE billing_outbox SET state = 'delivered', delivered_at = ?,"
                       " attempts = attempts + 1, last_error = '' WHERE event_id = ?",
                       (now, event_id))

    def billing_failed(self, event_id: int, error: str, backoff: timedelta) -> str:
        """Record a failed attempt; after the last attempt the entry is dead (dead letter)."""
        with self.inv._tx(write=True) as tx:
            row = tx.query("SELECT attempts FROM billing_outbox WHERE event_id = ?",
                           (event_id,))[0]
            attempts = int(row["attempts"]) + 1
            state = "dead" if attempts >= MAX_BILLING_ATTEMPTS else "pending"
            tx.execute(
                "UPDATE billing_outbox SET attempts = ?, state = ?, last_error = ?,"
                " next_attempt_at = ? WHERE event_id = ?",
                (attempts, state, error[:300], _ts(self.inv.clock() + backoff), event_id),
            )
        return state

    def billing_replay(self, event_id: int) -> OutboxEntry:
        with self.inv._tx(write=True) as tx:
            changed = tx.execute(
                "UPDATE billing_outbox SET state = 'pending', attempts = 0,"
                " next_attempt_at = ? WHERE event_id = ? AND state <> 'delivered'",
                (self.inv._now(), event_id))
            if not changed:
                raise NotFoundError(
                    f"billing event {event_id} is not pending or dead", obj=f"event {event_id}",
                    hint="smartpraxx-provision billing pending")
            row = tx.query(self._OUTBOX_SELECT + " WHERE b.event_id = ?", (event_id,))[0]
        return self._outbox(row)
