"""What ops do with the order book by hand (``orders list|work|webhook-url``, ``billing
pending|replay``): the inventory side of those commands, for the CLI to print."""

from __future__ import annotations

from typing import Any

from ..inventory.orders import Order, OrderBook, OutboxEntry
from .context import OpContext
from .orders import SHOP_TOKEN_SECRET, billing_replay, deliver_billing, work_once

MAX_WORK_DELIVERIES = 10_000  # bound of one ``orders work`` run


def list_orders(ctx: OpContext) -> list[Order]:
    return OrderBook(ctx.inventory).list_orders()


def work_queue(ctx: OpContext) -> dict[str, Any]:
    """Process every queued delivery now, then deliver due billing events (no service)."""
    book = OrderBook(ctx.inventory)
    done = []
    for _ in range(MAX_WORK_DELIVERIES):
        d = work_once(ctx, book)
        if d is None:
            break
        done.append(d.key)
    return {"ok": True, "processed": done, "billing": deliver_billing(ctx, book)}


def webhook_url(ctx: OpContext, *, reveal: bool) -> str:
    """The URL to enter in the shop's webhook settings (its token only with ``reveal``)."""
    token = ctx.secrets.ensure(SHOP_TOKEN_SECRET)
    base = ctx.settings.service_public_url.rstrip("/")
    return f"{base}/hooks/shop/{token if reveal else '<token: --reveal>'}"


def pending_billing(ctx: OpContext) -> list[OutboxEntry]:
    """Billing events not yet delivered, and the dead letters."""
    book = OrderBook(ctx.inventory)
    book.sync_outbox()
    return book.outbox()


def replay_billing(ctx: OpContext, event_id: int) -> dict[str, Any]:
    """Send a pending or dead billing event again now."""
    billing_replay(ctx, event_id)
    counts = deliver_billing(ctx, OrderBook(ctx.inventory))
    return {"ok": True, "event_id": event_id, "billing": counts}
