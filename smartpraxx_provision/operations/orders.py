"""The shop's orders: accept webhook deliveries, process them from the durable queue, take
back the Starter Excel, provision, and deliver billing events.

Flow: ``payment.successful`` (paid) → an order record (order id, package, the orderer's
contact address: CRM data, nothing about staff) → a German mail with the empty Starter Excel
and where to return it → the returned file is checked (errors go back to the orderer as a
German report) → a valid one is provisioned → the billing events of the provision are
delivered to the billing endpoint. Chargebacks and cancellations only mark the order for ops;
nothing is ever deleted by a webhook. Paused/overdue subscriptions suspend the practice,
paying again resumes it (operations/subscription.py).

The Starter Excel itself is never stored (STARTER_EXCEL.md: no copy is kept): an upload is
checked at once and its spec handed to the worker in memory; the order's state records the
progress. An upload whose provision was cut short by a restart is marked for ops and the
orderer uploads again (the provision itself resumes where it stopped).
"""

from __future__ import annotations

import io
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ..adapters import billing as billing_door
from ..adapters.smtp import send_mail
from ..domain.model import Package, PracticeSpec
from ..domain.packages import contents, parse_package
from ..domain.shop import (
    ShopAction,
    WebhookRejected,
    parse_delivery,
    token_matches,
    upload_token,
    verify_signature,
)
from ..errors import ConflictError, SmartpraxxError, StarterExcelError
from ..inventory.orders import OrderBook, QueuedDelivery
from .context import OpContext
from .runner import crash_point

log = logging.getLogger("smartpraxx.orders")

SHOP_TOKEN_SECRET = "platform/shop-webhook-token"  # noqa: S105 (secret paths)
SHOP_SIGNING_SECRET = "platform/shop-signing-secret"  # noqa: S105
UPLOAD_SECRET = "platform/starter-upload-key"  # noqa: S105
MAX_DELIVERY_ATTEMPTS = 5
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Accepted:
    """The answer to an accepted delivery (202 for new, 200 for a duplicate)."""

    key: str
    duplicate: bool


def accept_delivery(
    ctx: OpContext,
    book: OrderBook,
    path_token: str,
    headers: Mapping[str, str],
    body: bytes,
    content_type: str,
) -> Accepted:
    """Authenticate, parse and durably store one delivery. Raises :class:`WebhookRejected`."""
    if not token_matches(path_token, ctx.secrets.ensure(SHOP_TOKEN_SECRET)):
        raise WebhookRejected(404, "unknown endpoint")
    signing = ctx.secrets.get(SHOP_SIGNING_SECRET)
    if signing:
        verify_signature(headers, body, signing, now=time.time())
    delivery = parse_delivery(body, content_type)
    new = book.enqueue(delivery)
    return Accepted(delivery.key, duplicate=not new)


def package_of(product_name: str) -> str:
    """The package label of a shop product ("smartpraxx Premium" → Premium)."""
    package = Package.PREMIUM if "premium" in product_name.casefold() else Package.BASIS
    return contents(package).label


# --- mails (German: they go to the orderer) ---------------------------------------------
def upload_url(ctx: OpContext, order_id: str) -> str:
    token = upload_token(ctx.secrets.ensure(UPLOAD_SECRET), order_id)
    return f"{ctx.settings.service_public_url.rstrip('/')}/starter/{order_id}/{token}"


def template_mail(ctx: OpContext, order_id: str, to: str) -> EmailMessage:
    from ..starter.template import new_template

    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = f"Ihre smartpraxx-Bestellung {order_id}: bitte Starter-Excel ausfüllen"
    msg.set_content(
        "Guten Tag,\n\n"
        f"vielen Dank für Ihre Bestellung {order_id} bei smartpraxx.\n\n"
        "Im Anhang finden Sie die Starter-Excel. Bitte tragen Sie Ihre Praxis und Ihre "
        "Mitarbeitenden ein (Bestellnummer: " + order_id + ") und laden Sie die Datei hier "
        "hoch:\n\n"
        f"  {upload_url(ctx, order_id)}\n\n"
        "Wir prüfen die Datei sofort. Fehler schicken wir Ihnen mit genauer Zellangabe "
        "zurück; ist alles richtig, richten wir Ihre Plattform ein und Ihre Mitarbeitenden "
        "erhalten ihre Einladung per E-Mail.\n\n"
        "Ihr smartpraxx-Team\n"
    )
    buf = io.BytesIO()
    new_template().save(buf)
    msg.add_attachment(
        buf.getvalue(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=f"smartpraxx-starter-{order_id}.xlsx",
    )
    return msg


def report_mail(order_id: str, to: str, problems: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = f"Ihre Starter-Excel zur Bestellung {order_id}: bitte korrigieren"
    lines = "\n".join(f"  - {p}" for p in problems)
    msg.set_content(
        "Guten Tag,\n\n"
        f"Ihre Starter-Excel zur Bestellung {order_id} enthält {len(problems)} Fehler. "
        "Noch wurde nichts eingerichtet. Bitte korrigieren Sie diese Stellen und laden Sie "
        "die Datei erneut hoch (derselbe Link wie zuvor):\n\n"
        f"{lines}\n\n"
        "Ihr smartpraxx-Team\n"
    )
    return msg


# --- the worker --------------------------------------------------------------------------
def _order_paid(ctx: OpContext, book: OrderBook, d: QueuedDelivery) -> str:
    fields = d.fields
    order, created = book.create_order(
        d.order_id,
        fields.get("product[id]") or fields.get("product_id", ""),
        package_of(fields.get("product[name]", "")),
        fields.get("payer[email]", ""),
    )
    if order.state != "paid":
        return f"order {order.order_id} exists ({order.state})"
    if not order.contact_email:
        book.update_order(order.order_id, attention="no payer e-mail in the delivery")
        return "order created; no contact address: marked for ops"
    send_mail(ctx.settings, ctx.secrets, template_mail(ctx, order.order_id, order.contact_email))
    book.update_order(order.order_id, state="template-sent", template_sent_at=ctx.inventory.clock())
    return ("order created" if created else "order resumed") + "; Starter Excel template sent"


def _attention(book: OrderBook, d: QueuedDelivery) -> str:
    order = book.get_order(d.order_id)
    if order is None:
        return f"{d.event} for an unknown order: nothing to mark"
    marks = [m for m in order.attention.split(",") if m]
    if d.event not in marks:
        book.update_order(d.order_id, attention=",".join([*marks, d.event]))
    return f"order marked for ops: {d.event} (nothing deleted)"


def _subscription(ctx: OpContext, book: OrderBook, d: QueuedDelivery) -> str:
    from . import subscription

    order = book.get_order(d.order_id)
    if order is None or not order.praxisname or order.state != "provisioned":
        return f"{d.event}: order {d.order_id} has no provisioned practice; nothing to do"
    if d.action == ShopAction.SUSPEND.value:
        subscription.suspend(ctx, order.praxisname, reason=d.event)
        book.update_order(d.order_id, suspended=True)
        return f"practice {order.praxisname} suspended"
    subscription.resume(ctx, order.praxisname)
    book.update_order(d.order_id, suspended=False)
    return f"practice {order.praxisname} resumed"


def process_delivery(ctx: OpContext, book: OrderBook, d: QueuedDelivery) -> str:
    action = d.action
    if action == ShopAction.ORDER_PAID.value:
        return _order_paid(ctx, book, d)
    if action == ShopAction.ATTENTION.value:
        return _attention(book, d)
    if action in (ShopAction.SUSPEND.value, ShopAction.RESUME.value):
        return _subscription(ctx, book, d)
    return f"{d.event}: nothing to do"


def work_once(ctx: OpContext, book: OrderBook) -> QueuedDelivery | None:
    """Process the next queued delivery; None when the queue is empty."""
    d = book.claim()
    if d is None:
        return None
    crash_point("orders", "process", "before")
    try:
        result = process_delivery(ctx, book, d)
    except SmartpraxxError as err:
        log.warning("delivery %s (%s) failed: %s", d.key, d.event, err.message)
        if d.attempts >= MAX_DELIVERY_ATTEMPTS:
            book.finish(d.key, ok=False, result=err.message)
        else:
            book.requeue(d.key)
        return d
    book.finish(d.key, ok=True, result=result)
    log.info("delivery %s (%s) done: %s", d.key, d.event, result)
    return d


# --- the Starter Excel comes back ---------------------------------------------------------
@dataclass(frozen=True)
class Submission:
    order_id: str
    ok: bool
    praxisname: str | None
    errors: list[str]
    provisioned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "order_id": self.order_id, "praxisname": self.praxisname,
                "errors": self.errors, "provisioned": self.provisioned}


def check_submission(ctx: OpContext, book: OrderBook, order_id: str,
                     content: bytes) -> tuple[Submission, PracticeSpec | None]:
    """Check an uploaded Starter Excel for ``order_id``; errors are mailed to the orderer."""
    from ..starter import read_starter_excel

    order = book.require_order(order_id)
    if len(content) > MAX_UPLOAD_BYTES:
        raise StarterExcelError(f"the upload is larger than {MAX_UPLOAD_BYTES} bytes",
                                obj=f"order {order_id}", hint="upload the .xlsx itself")
    # the reader wants a path: a private temp file, removed before anything else happens
    with tempfile.TemporaryDirectory(prefix="starter-") as tmp:
        path = Path(tmp) / "upload.xlsx"
        path.write_bytes(content)
        path.chmod(0o600)
        try:
            result = read_starter_excel(path)
        except StarterExcelError as err:
            problems = [err.message]
            result = None
    if result is not None:
        problems = [p.format(False) for p in result.errors]
        if result.spec is not None and result.spec.order_id != order_id:
            problems.append(f"Praxis: Bestellnummer {result.spec.order_id!r} gehört nicht zu "
                            f"dieser Bestellung ({order_id})")
    if problems or result is None or result.spec is None:
        if order.contact_email:
            send_mail(ctx.settings, ctx.secrets, report_mail(order_id, order.contact_email,
                                                             problems))
        return Submission(order_id, False, None, problems), None
    # the paid order says which package the practice has; the Starter Excel's Paket does not
    paid = parse_package(order.package)
    spec = result.spec if paid is None else replace(result.spec, package=paid)
    return Submission(order_id, True, spec.praxisname, []), spec


def provision_order(ctx: OpContext, book: OrderBook, order_id: str,
                    spec: PracticeSpec) -> dict[str, Any]:
    """Provision ``spec`` for ``order_id`` exactly once (one winner across processes)."""
    from .provision import provision

    if not book.claim_order_state(order_id, ("paid", "template-sent", "rejected"), "provisioning"):
        order = book.require_order(order_id)
        if order.state == "provisioned":
            return {"ok": True, "order_id": order_id, "praxisname": order.praxisname,
                    "already": True}
        raise ConflictError(f"order {order_id} is {order.state}", obj=f"order {order_id}",
                            hint="smartpraxx-provision orders show " + order_id)
    try:
        result = provision(ctx, spec)
    except BaseException:
        book.update_order(order_id, state="template-sent",
                          attention="provision failed: see smartpraxx-provision status")
        raise
    book.update_order(order_id, state="provisioned", praxisname=spec.praxisname)
    return result


def submit_file(ctx: OpContext, order_id: str, path: Path) -> dict[str, Any]:
    """``starter submit FILE``: check and, when valid, provision for the file's order."""
    book = OrderBook(ctx.inventory)
    submission, spec = check_submission(ctx, book, order_id, path.read_bytes())
    if spec is None:
        raise StarterExcelError(
            f"the Starter Excel for order {order_id} has {len(submission.errors)} error(s); "
            "the orderer got the German report",
            obj=str(path), hint=f"smartpraxx-provision starter check {path}")
    result = provision_order(ctx, book, order_id, spec)
    return {**submission.to_dict(), "provisioned": True, "provision": result}


def order_of_file(path: Path) -> str:
    from ..starter import read_starter_excel

    result = read_starter_excel(path)
    if result.spec is None:
        raise StarterExcelError(f"{path} has errors", obj=str(path),
                                hint=f"smartpraxx-provision starter check {path}")
    return result.spec.order_id


def check_upload_token(ctx: OpContext, order_id: str, token: str) -> bool:
    return token_matches(token, upload_token(ctx.secrets.ensure(UPLOAD_SECRET), order_id))


def recover_interrupted(book: OrderBook) -> int:
    """At service start: orders left 'provisioning' by a killed service go back for ops."""
    n = 0
    for order in book.list_orders():
        if order.state == "provisioning":
            book.update_order(order.order_id, state="template-sent",
                              attention="provision interrupted: the orderer uploads again")
            n += 1
    return n


# --- billing out ---------------------------------------------------------------------------
def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts, 0), 3600))


def deliver_billing(ctx: OpContext, book: OrderBook) -> dict[str, int]:
    """Deliver every due billing event once (idempotency key per event); count the outcomes."""
    book.sync_outbox()
    counts = {"delivered": 0, "retry": 0, "dead": 0}
    url = ctx.settings.billing_url
    if not url:
        return counts
    secret = ctx.secrets.ensure(billing_door.SIGNING_SECRET)
    for entry in book.due_billing():
        try:
            billing_door.post_event(url, secret, entry.idempotency_key, {
                "idempotency_key": entry.idempotency_key, "event": entry.kind,
                "praxisname": entry.praxisname, "payload": entry.payload,
            })
        except billing_door.DeliveryFailed as exc:
            state = book.billing_failed(entry.event_id, str(exc), backoff(entry.attempts))
            counts["dead" if state == "dead" else "retry"] += 1
            continue
        book.billing_delivered(entry.event_id)
        counts["delivered"] += 1
    return counts


def billing_replay(ctx: OpContext, event_id: int) -> dict[str, Any]:
    return OrderBook(ctx.inventory).billing_replay(event_id).to_dict()


def order_details(ctx: OpContext, order_id: str) -> dict[str, Any]:
    book = OrderBook(ctx.inventory)
    order = book.require_order(order_id)
    return {**order.to_dict(),
            "deliveries": [d.to_dict() for d in book.deliveries(order_id)]}


# --- the worker thread of the service ------------------------------------------------------
@dataclass
class Worker:
    """Processes the delivery queue, in-memory submissions and billing, until stopped."""

    ctx: OpContext
    poll: float = 0.2
    billing_every: float = 2.0

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.submissions: queue.Queue[tuple[str, PracticeSpec]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="orders-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        book = OrderBook(self.ctx.inventory)
        last_billing = 0.0
        while not self.stop.is_set():
            busy = False
            try:
                busy = work_once(self.ctx, book) is not None
                try:
                    order_id, spec = self.submissions.get_nowait()
                except queue.Empty:
                    pass
                else:
                    busy = True
                    self._provision(book, order_id, spec)
                if time.monotonic() - last_billing >= self.billing_every:
                    last_billing = time.monotonic()
                    deliver_billing(self.ctx, book)
            except SmartpraxxError as err:
                log.warning("worker: %s", err.message)
            except Exception:
                log.exception("worker: unexpected error")
            if not busy:
                self.stop.wait(self.poll)

    def _provision(self, book: OrderBook, order_id: str, spec: PracticeSpec) -> None:
        try:
            provision_order(self.ctx, book, order_id, spec)
            log.info("order %s provisioned as %s", order_id, spec.praxisname)
        except SmartpraxxError as err:
            log.warning("order %s: provision failed: %s", order_id, err.message)

