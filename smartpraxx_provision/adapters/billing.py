"""The one door to the billing endpoint: signed JSON POSTs with an idempotency key.

Each billing event is sent as ``POST <billing_url>`` with the JSON body, the headers
``Idempotency-Key`` (the receiver deduplicates on it) and ``X-Smartpraxx-Signature:
t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` (the secret is
``platform/billing-signing-secret`` in the secret store, shared with the receiver).
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from ..domain.shop import sign_stripe_style

SIGNING_SECRET = "platform/billing-signing-secret"  # noqa: S105 (a secret's path)
TIMEOUT = 10.0


class DeliveryFailed(Exception):
    """The endpoint did not answer 2xx (the message never holds the body)."""


def post_event(url: str, secret: str, idempotency_key: str, event: dict[str, Any]) -> None:
    body = json.dumps(event, sort_keys=True, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "X-Smartpraxx-Signature": sign_stripe_style(secret, body, int(time.time())),
    }
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__} from {url}") from exc
    if not 200 <= resp.status_code < 300:
        raise DeliveryFailed(f"HTTP {resp.status_code} from {url}")
