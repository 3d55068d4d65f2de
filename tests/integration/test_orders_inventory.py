"""Orders, the delivery queue and the billing outbox on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import Package
from smartpraxx_provision.domain.shop import parse_delivery
from smartpraxx_provision.inventory import Inventory, open_inventory
from smartpraxx_provision.inventory.orders import LEASE, MAX_BILLING_ATTEMPTS, OrderBook
from smartpraxx_provision.starter import load_practice_spec

GP_SAMPLE = Path(__file__).parents[2] / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"

pytestmark = pytest.mark.integration
FORM = "application/x-www-form-urlencoded"


def delivery(event: str = "payment.successful", order: str = "4711", pid: str = "1"):  # type: ignore[no-untyped-def]
    return parse_delivery(urlencode({"event": event, "order_id": order, "id": pid,
                                     "payment_state": "paid"}).encode(), FORM)


def test_concurrent_duplicates_are_stored_once(
        inventory_settings_factory: Callable[[], Settings]) -> None:
    settings = inventory_settings_factory()
    results: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        with open_inventory(settings) as inv:  # one connection per thread, like processes
            new = OrderBook(inv).enqueue(delivery())
        with lock:
            results.append(new)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [False] * 15 + [True]
    with open_inventory(settings) as inv:
        assert len(OrderBook(inv).deliveries()) == 1


def test_claim_once_and_reclaim_after_lease(inventory: Inventory) -> None:
    now = [datetime(2026, 12, 2, 10, 0, tzinfo=UTC)]
    inventory.clock = lambda: now[0]
    book = OrderBook(inventory)
    book.enqueue(delivery())
    first = book.claim()
    assert first is not None and first.attempts == 1
    # claimed by this (live) process: not handed out again, even after the lease
    assert book.claim() is None
    with inventory._tx(write=True) as tx:  # a claim by a worker on another machine
        tx.execute("UPDATE deliveries SET claimed_by = 'elsewhere:1'")
    assert book.claim() is None
    now[0] += LEASE + timedelta(seconds=1)
    again = book.claim()
    assert again is not None and again.key == first.key and again.attempts == 2
    book.finish(again.key, ok=True, result="done")
    assert book.claim() is None


def test_order_is_created_once_and_state_claimed_by_one(inventory: Inventory) -> None:
    book = OrderBook(inventory)
    _order, created = book.create_order("4711", "77", "Basis", "o@x.test")
    again, created2 = book.create_order("4711", "77", "Premium", "other@x.test")
    assert created and not created2 and again.contact_email == "o@x.test"
    assert book.claim_order_state("4711", ("paid",), "provisioning")
    assert not book.claim_order_state("4711", ("paid",), "provisioning")
    assert book.require_order("4711").state == "provisioning"


def test_billing_outbox_retries_dead_letter_and_replay(inventory: Inventory) -> None:
    book = OrderBook(inventory)
    event = inventory.record_event("provisioned", "praxis-a", {"billable_seats": 2})
    assert book.sync_outbox() == 1 and book.sync_outbox() == 0
    (entry,) = book.due_billing()
    assert entry.event_id == event.id and entry.idempotency_key.endswith(f"-evt-{event.id}")
    for i in range(MAX_BILLING_ATTEMPTS - 1):
        assert book.billing_failed(entry.event_id, "HTTP 503", timedelta(0)) == "pending", i
    assert book.billing_failed(entry.event_id, "HTTP 503", timedelta(0)) == "dead"
    assert book.due_billing() == []
    assert [e.state for e in book.outbox()] == ["dead"]
    replayed = book.billing_replay(entry.event_id)
    assert replayed.state == "pending" and replayed.attempts == 0
    book.billing_delivered(entry.event_id)
    assert book.outbox() == []
    with pytest.raises(Exception, match="not pending or dead"):
        book.billing_replay(entry.event_id)


@pytest.mark.parametrize(("product", "want"), [
    ("smartpraxx Premium", Package.PREMIUM), ("smartpraxx Basis", Package.BASIS)])
def test_the_paid_order_decides_the_package_not_the_starter_excel(
        tmp_path: Path, product: str, want: Package) -> None:
    from smartpraxx_provision.operations.context import OpContext
    from smartpraxx_provision.operations.orders import check_submission, package_of
    from smartpraxx_provision.output import Reporter

    settings = load_settings(env={}, overrides={"state_dir": str(tmp_path)})
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    spec = load_practice_spec(GP_SAMPLE)  # its Paket cell: Basis (empty)
    book = OrderBook(ctx.inventory)
    book.create_order(spec.order_id, "77", package_of(product), "o@x.test")
    submission, checked = check_submission(ctx, book, spec.order_id, GP_SAMPLE.read_bytes())
    assert submission.ok and checked is not None
    assert checked.package is want
    assert checked.persons == spec.persons  # nothing else of the Excel is changed
