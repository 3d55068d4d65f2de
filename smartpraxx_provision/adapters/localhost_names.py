"""``*.localhost`` resolves to loopback, in this process, as Chromium and curl do it.

RFC 6761 reserves ``localhost`` and every name below it for the loopback interface;
Chromium and curl (>= 7.78) answer them with 127.0.0.1 themselves, glibc's resolver does not
(``getaddrinfo("mein.smartpraxx.localhost")`` fails without an /etc/hosts entry). The
embedded stack's browser-facing names (``mein.smartpraxx.localhost``,
``ncXX.cloudYYY.smartpraxx.localhost``) are such names, so the tool's own https clients (the
smoke check's code flow, logins in tests) resolve them the browser's way: only names ending
in ``.localhost`` are touched, always to 127.0.0.1, never anything else.
"""

from __future__ import annotations

import socket
from typing import Any

_original = socket.getaddrinfo


def is_localhost_name(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if is_localhost_name(host):
        return _original("127.0.0.1", *args, **kwargs)
    return _original(host, *args, **kwargs)


def enable() -> None:
    """Install the resolution (idempotent)."""
    if socket.getaddrinfo is not _getaddrinfo:
        socket.getaddrinfo = _getaddrinfo
