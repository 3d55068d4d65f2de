"""Broadcasts and their per-practice delivery state (migration 0007).

Only the message, its target and per practice a state and a count: never a recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import NotFoundError
from .models import JsonRecord
from .store import Inventory, _dt, _req_dt, _ts

DELIVERY_STATES = ("pending", "delivered", "failed", "retracted")


@dataclass(frozen=True)
class Delivery(JsonRecord):
    practice_id: str
    state: str
    recipients: int | None
    announcement_id: str | None
    error: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True)
class Broadcast(JsonRecord):
    id: str
    subject: str
    message: str
    link: str | None
    valid_until: datetime
    target: str
    created_at: datetime
    retracted_at: datetime | None
    deliveries: tuple[Delivery, ...] = ()


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        practice_id=row["practice_id"],
        state=row["state"],
        recipients=None if row["recipients"] is None else int(row["recipients"]),
        announcement_id=row["announcement_id"],
        error=row["error"],
        attempts=int(row["attempts"] or 0),
        updated_at=_req_dt(row["updated_at"]),
    )


def create_broadcast(
    inv: Inventory, *, id: str, subject: str, message: str, link: str | None,
    valid_until: datetime, target: str, practice_ids: list[str],
) -> Broadcast:
    now = inv._now()
    with inv._tx(write=True) as tx:
        tx.execute(
            "INSERT INTO broadcasts (id, subject, message, link, valid_until, target, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (id, subject, message, link, _ts(valid_until), target, now),
        )
        for pid in practice_ids:
            tx.execute(
                "INSERT INTO broadcast_deliveries (broadcast_id, practice_id, state, updated_at)"
                " VALUES (?, ?, 'pending', ?)",
                (id, pid, now),
            )
    return get_broadcast(inv, id)


def get_broadcast(inv: Inventory, broadcast_id: str) -> Broadcast:
    with inv._tx(write=False) as tx:
        rows = tx.query("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
        if not rows:
            raise NotFoundError(
                f"broadcast {broadcast_id} is not in the inventory",
                obj=f"broadcast {broadcast_id}",
                hint="smartpraxx-provision broadcast list",
            )
        deliveries = tx.query(
            "SELECT * FROM broadcast_deliveries WHERE broadcast_id = ? ORDER BY practice_id",
            (broadcast_id,),
        )
    r = rows[0]
    return Broadcast(
        id=r["id"], subject=r["subject"], message=r["message"], link=r["link"],
        valid_until=_req_dt(r["valid_until"]), target=r["target"],
        created_at=_req_dt(r["created_at"]), retracted_at=_dt(r["retracted_at"]),
        deliveries=tuple(_delivery(d) for d in deliveries),
    )


def list_broadcasts(inv: Inventory) -> list[Broadcast]:
    with inv._tx(write=False) as tx:
        ids = [r["id"] for r in tx.query("SELECT id FROM broadcasts ORDER BY created_at, id")]
    return [get_broadcast(inv, i) for i in ids]


def ensure_delivery(inv: Inventory, broadcast_id: str, practice_id: str) -> None:
    """A pending row for a practice that has none yet (a practice provisioned later)."""
    with inv._tx(write=True) as tx:
        have = tx.query(
            "SELECT 1 AS x FROM broadcast_deliveries WHERE broadcast_id = ? AND practice_id = ?",
            (broadcast_id, practice_id),
        )
        if not have:
            tx.execute(
                "INSERT INTO broadcast_deliveries (broadcast_id, practice_id, state, updated_at)"
                " VALUES (?, ?, 'pending', ?)",
                (broadcast_id, practice_id, inv._now()),
            )


def set_delivery(
    inv: Inventory, broadcast_id: str, practice_id: str, state: str, *,
    recipients: int | None = None, announcement_id: str | None = None, error: str | None = None,
) -> None:
    if state not in DELIVERY_STATES:
        raise ValueError(f"invalid delivery state {state!r}")
    with inv._tx(write=True) as tx:
        tx.execute(
            "UPDATE broadcast_deliveries SET state = ?, recipients = COALESCE(?, recipients),"
            " announcement_id = COALESCE(?, announcement_id), error = ?,"
            " attempts = attempts + 1, updated_at = ?"
            " WHERE broadcast_id = ? AND practice_id = ?",
            (state, recipients, announcement_id, error, inv._now(), broadcast_id, practice_id),
        )


def mark_retracted(inv: Inventory, broadcast_id: str) -> None:
    with inv._tx(write=True) as tx:
        tx.execute(
            "UPDATE broadcasts SET retracted_at = COALESCE(retracted_at, ?) WHERE id = ?",
            (inv._now(), broadcast_id),
        )
