"""The shop webhook, pure: form parsing, delivery identity, tokens and signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from smartpraxx_provision.domain.shop import (
    MAX_BODY_BYTES,
    ShopAction,
    WebhookRejected,
    parse_delivery,
    sign_stripe_style,
    token_matches,
    upload_token,
    verify_signature,
)

FORM = "application/x-www-form-urlencoded"


def body(**fields: str) -> bytes:
    return urlencode(fields).encode()


PAID = {"event": "payment.successful", "order_id": "4711", "id": "99", "payment_state": "paid",
        "product[id]": "12", "product[name]": "smartpraxx Premium", "payer[email]": "o@x.test"}


def test_paid_order_is_parsed_with_bracketed_keys() -> None:
    d = parse_delivery(urlencode(PAID).encode(), FORM + "; charset=utf-8")
    assert d.action is ShopAction.ORDER_PAID and d.order_id == "4711"
    assert (d.product_id, d.product_name, d.payer_email) == ("12", "smartpraxx Premium",
                                                             "o@x.test")


def test_same_delivery_same_key_other_event_other_key() -> None:
    a = parse_delivery(urlencode(PAID).encode(), FORM)
    b = parse_delivery(urlencode(dict(reversed(list(PAID.items())))).encode(), FORM)
    c = parse_delivery(urlencode({**PAID, "event": "chargeback.successful"}).encode(), FORM)
    assert a.key == b.key != c.key


def test_pending_payment_is_ignored_not_an_order() -> None:
    d = parse_delivery(urlencode({**PAID, "payment_state": "pending"}).encode(), FORM)
    assert d.action is ShopAction.IGNORE


@pytest.mark.parametrize(("raw", "ctype", "status"), [
    (body(event="payment.successful", order_id="1"), "application/json", 415),
    (b"a" * (MAX_BODY_BYTES + 1), FORM, 413),
    (b"\xff\xfe", FORM, 400),
    (b"event=payment.successful&&&===", FORM, 400),
    (body(order_id="1"), FORM, 422),
    (body(event="order.exploded", order_id="1"), FORM, 422),
    (body(event="payment.successful"), FORM, 422),
    (body(event="payment.successful", order_id="1; DROP TABLE"), FORM, 422),
    (b"event=payment.successful&order_id=1&order_id=2", FORM, 400),
    (body(**{"event": "payment.successful", "order_id": "1", "a[b][c][d][e][f]": "x"}), FORM, 400),
])
def test_bad_bodies_are_refused(raw: bytes, ctype: str, status: int) -> None:
    with pytest.raises(WebhookRejected) as exc:
        parse_delivery(raw, ctype)
    assert exc.value.status == status


def test_token_is_compared_whole() -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc") and not token_matches("", "")
    assert not token_matches("ab", "abc")


def test_stripe_style_signature_and_replay_window() -> None:
    raw = urlencode(PAID).encode()
    header = sign_stripe_style("k", raw, 1000)
    verify_signature({"stripe-signature": header}, raw, "k", now=1100)
    for headers, now in (({"stripe-signature": header}, 1000 + 301),
                         ({"stripe-signature": header.replace("v1=", "v1=0")}, 1000),
                         ({"stripe-signature": sign_stripe_style("other", raw, 1000)}, 1000),
                         ({}, 1000)):
        with pytest.raises(WebhookRejected) as exc:
            verify_signature(headers, raw, "k", now=now)
        assert exc.value.status == 401
    with pytest.raises(WebhookRejected):
        verify_signature({"stripe-signature": header}, raw + b"x", "k", now=1000)


def test_standard_webhooks_signature() -> None:
    key = b"0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    raw = b"event=payment.successful&order_id=1"
    mac = base64.b64encode(hmac.new(key, b"msg_1.2000." + raw, hashlib.sha256).digest()).decode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "2000",
               "webhook-signature": f"v1,bogus v1,{mac}"}
    verify_signature(headers, raw, secret, now=2010)
    with pytest.raises(WebhookRejected):
        verify_signature({**headers, "webhook-id": "msg_2"}, raw, secret, now=2010)
    with pytest.raises(WebhookRejected):
        verify_signature(headers, raw, secret, now=5000)


def test_upload_token_is_per_order() -> None:
    assert upload_token("s", "1") == upload_token("s", "1") != upload_token("s", "2")
    assert upload_token("s", "1") != upload_token("t", "1")
