"""The online shop's order webhook, pure: authentication, payload parsing, delivery identity.

The shop (elopage, also branded "ablefy") posts ``application/x-www-form-urlencoded`` bodies
with bracketed keys (``product[id]``, ``payer[email]``) and sends only parameters with data.
One order produces several deliveries with different events, so a delivery's identity is the
event plus the ids the shop gives it (or, without ids, a digest of the whole body): a repeated
delivery of the same event maps to the same key and is stored once.

The shop documents no signature scheme; integrations protect the endpoint with a secret path
segment (compared in constant time). Shops that sign are supported with the Stripe-style
``t=…,v1=HMAC-SHA256("{t}.{body}")`` header or the Standard Webhooks headers
(``webhook-id``/``webhook-timestamp``/``webhook-signature: v1,<base64 HMAC("{id}.{t}.{body}")>``),
both with a replay window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

MAX_BODY_BYTES = 64 * 1024
REPLAY_WINDOW_SECONDS = 300
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_KEY_RE = re.compile(r"^(?P<head>[A-Za-z0-9_.-]{1,64})(?P<tail>(\[[A-Za-z0-9_.-]{0,64}\]){0,4})$")
_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ShopAction(StrEnum):
    """What the orchestrator does with a delivery's event."""

    ORDER_PAID = "order-paid"  # create the order, send the Starter Excel template
    ATTENTION = "attention"  # chargeback/refund/cancellation: mark the order for ops
    SUSPEND = "suspend"  # subscription paused / payment overdue
    RESUME = "resume"  # subscription paying again
    IGNORE = "ignore"  # known but nothing to do (e.g. payment.pending)


# event name → action; anything else is an unknown event (refused with 422, not stored)
EVENT_ACTIONS: dict[str, ShopAction] = {
    "payment.successful": ShopAction.ORDER_PAID,
    "payment.pending": ShopAction.IGNORE,
    "payment.error": ShopAction.IGNORE,
    "payment.refunded": ShopAction.ATTENTION,
    "chargeback.successful": ShopAction.ATTENTION,
    "order.subscription.cancelled": ShopAction.ATTENTION,
    "order.subscription.canceled": ShopAction.ATTENTION,
    "order.subscription.paused": ShopAction.SUSPEND,
    "order.subscription.payment_overdue": ShopAction.SUSPEND,
    "order.subscription.paying": ShopAction.RESUME,
}


class WebhookRejected(Exception):
    """A delivery refused before anything is stored. ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One authenticated, parsed delivery. ``fields`` keep the shop's flat bracketed keys."""

    key: str
    event: str
    action: ShopAction
    order_id: str
    fields: Mapping[str, str]

    @property
    def product_id(self) -> str:
        return self.fields.get("product[id]") or self.fields.get("product_id", "")

    @property
    def product_name(self) -> str:
        return self.fields.get("product[name]", "")

    @property
    def payer_email(self) -> str:
        return self.fields.get("payer[email]", "")

    @property
    def payment_state(self) -> str:
        return self.fields.get("payment_state", "")


def parse_form(body: bytes) -> dict[str, str]:
    """A form body → {bracketed key: value}. Refuses what the shop never sends."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected(400, "body is not UTF-8") from exc
    try:
        pairs = parse_qsl(text, keep_blank_values=False, strict_parsing=bool(text),
                          max_num_fields=200)
    except ValueError as exc:
        raise WebhookRejected(400, "body is not a form") from exc
    out: dict[str, str] = {}
    for key, value in pairs:
        if not _KEY_RE.match(key):
            raise WebhookRejected(400, "malformed field name")
        if key in out and out[key] != value:
            raise WebhookRejected(400, "a field is repeated with different values")
        out[key] = value
    return out


def delivery_key(event: str, fields: Mapping[str, str], body: bytes) -> str:
    """The delivery's identity: the event and the shop's ids, else a digest of the body."""
    ids = [fields.get(k, "") for k in ("order_id", "id", "invoice_number", "payment_state")]
    if fields.get("order_id") and fields.get("id"):
        material = "\x1f".join([event, *ids])
    else:
        material = "\x1f".join([event, hashlib.sha256(body).hexdigest()])
    return "shop-" + hashlib.sha256(material.encode()).hexdigest()[:32]


def parse_delivery(body: bytes, content_type: str) -> Delivery:
    """Parse an authenticated delivery; :class:`WebhookRejected` for anything malformed."""
    if content_type.split(";", 1)[0].strip().lower() != FORM_CONTENT_TYPE:
        raise WebhookRejected(415, f"content type must be {FORM_CONTENT_TYPE}")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body too large")
    fields = parse_form(body)
    event = fields.get("event", "")
    if not event:
        raise WebhookRejected(422, "field event is missing")
    action = EVENT_ACTIONS.get(event)
    if action is None:
        raise WebhookRejected(422, "unknown event")
    order_id = fields.get("order_id", "")
    if not _ORDER_ID_RE.match(order_id):
        raise WebhookRejected(422, "field order_id is missing or malformed")
    if action is ShopAction.ORDER_PAID and fields.get("payment_state", "paid") != "paid":
        action = ShopAction.IGNORE
    return Delivery(delivery_key(event, fields, body), event, action, order_id, fields)


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of the secret path segment."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _fresh(timestamp: str, now: float, window: int) -> bool:
    try:
        t = int(timestamp)
    except ValueError:
        return False
    return abs(now - t) <= window


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: float,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    """Check a signed delivery (Stripe-style or Standard Webhooks); raise 401 if not valid.

    ``headers`` must be keyed in lower case.
    """
    key = secret.encode()
    stripe = headers.get("stripe-signature") or headers.get("x-signature")
    if stripe:
        parts: dict[str, list[str]] = {}
        for item in stripe.split(","):
            name, _, value = item.strip().partition("=")
            parts.setdefault(name, []).append(value)
        t = (parts.get("t") or [""])[0]
        if not _fresh(t, now, window):
            raise WebhookRejected(401, "signature timestamp outside the replay window")
        expected = hmac.new(key, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
            raise WebhookRejected(401, "signature does not match")
        return
    wid, wts, wsig = (headers.get(h, "") for h in
                      ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if wid or wts or wsig:
        if not _fresh(wts, now, window):
            raise WebhookRejected(401, "signature timestamp outside the replay window")
        raw_key = secret.removeprefix("whsec_")
        try:
            std_key = base64.b64decode(raw_key, validate=True) if secret.startswith("whsec_") \
                else key
        except ValueError as exc:
            raise WebhookRejected(401, "signing secret is not base64") from exc
        digest = hmac.new(std_key, f"{wid}.{wts}.".encode() + body, hashlib.sha256).digest()
        expected_b64 = base64.b64encode(digest).decode()
        given = [s.partition(",")[2] for s in wsig.split() if s.startswith("v1,")]
        if not any(hmac.compare_digest(expected_b64, g) for g in given):
            raise WebhookRejected(401, "signature does not match")
        return
    raise WebhookRejected(401, "signature header missing")


def sign_stripe_style(secret: str, body: bytes, t: int) -> str:
    """The header value a signing shop (or our own billing sender) puts on ``body``."""
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def upload_token(secret: str, order_id: str) -> str:
    """The per-order token of the Starter Excel upload link (HMAC of the order id)."""
    return hmac.new(secret.encode(), b"starter-upload\x1f" + order_id.encode(),
                    hashlib.sha256).hexdigest()[:40]
