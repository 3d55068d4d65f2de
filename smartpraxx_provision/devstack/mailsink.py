"""The local mail sink of the embedded stack: a real SMTP server on 127.0.0.1 (aiosmtpd).

``dev-stack up`` starts it as a background process (its own session, pid file), ``down``
stops it by that pid, ``status`` shows it. Everything it receives is stored, one ``.eml``
file per message, in the mailbox directory; nothing is relayed anywhere. Keycloak's
invitation and password-reset mails of every local realm land there (the realms' SMTP
settings point at ``smtp_host:smtp_port``), and ``dev-stack mail list|show`` reads them.

Layout (under the state dir):

* ``mail/`` (mode 0700) — ``mailsink.pid``, ``mailsink.log`` (connections and message ids,
  never addresses or content);
* ``mail/mailbox/`` (mode 0700) — ``<id>.eml`` files (mode 0600): they contain invitation
  links, i.e. credentials for a first login.

Each stored message starts with ``Return-Path`` and one ``Delivered-To`` header per envelope
recipient (as a delivering mail server adds them), followed by the message as received.
The server speaks plain SMTP on loopback only (no STARTTLS, no AUTH): it is the stand-in of
the production relay for this machine, not a relay itself.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import os
import re
import secrets
import signal
import socket
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConflictError, NotFoundError, ServiceUnavailableError
from ..output import Reporter
from .service import Service, exited_during_start, port_open, wait_until

START_TIMEOUT = 15.0  # seconds; the server answers in well under one
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MODULE = "smartpraxx_provision.devstack.mailsink"
UP = "smartpraxx-provision dev-stack up"
_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9]{6}-[0-9a-f]{6}$")


# --- paths ------------------------------------------------------------------------------


def mail_home(settings: Settings) -> Path:
    return settings.state_dir / "mail"


def mailbox_dir(settings: Settings) -> Path:
    return mail_home(settings) / "mailbox"


def pid_file(settings: Settings) -> Path:
    return _service(settings).pid_file


def log_file(settings: Settings) -> Path:
    return _service(settings).log_file


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


# --- the server (runs in the background process) -------------------------------------------


def new_message_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S-%f")
    return f"{stamp}-{secrets.token_hex(3)}"


def store_message(box: Path, mail_from: str, rcpts: list[str], content: bytes) -> str:
    """Write one received message atomically as ``<id>.eml`` (0600); return the id."""
    message_id = new_message_id()
    head = f"Return-Path: <{mail_from}>\r\n" + "".join(f"Delivered-To: {r}\r\n" for r in rcpts)
    tmp = box / f".{message_id}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(head.encode("utf-8") + content)  # SMTPUTF8: raw UTF-8 headers (RFC 6532)
    tmp.rename(box / f"{message_id}.eml")
    return message_id


def serve(box: Path, host: str, port: int) -> None:
    """Run the SMTP server until SIGTERM/SIGINT (the background process's main)."""
    import asyncio

    from aiosmtpd.smtp import SMTP, Envelope, Session

    class Handler:
        async def handle_DATA(  # aiosmtpd's hook name
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            data = envelope.original_content or b""
            message_id = store_message(
                box, str(envelope.mail_from or ""), list(envelope.rcpt_tos), data
            )
            print(f"stored {message_id} ({len(data)} bytes)", flush=True)
            return "250 Message accepted for delivery"

    _private_dir(box)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(
                Handler(),
                hostname="mailsink.localhost",
                data_size_limit=MAX_MESSAGE_BYTES,
                decode_data=False,
                enable_SMTPUTF8=True,  # internationalised addresses (RFC 6531)
            ),
            host=host,
            port=port,
        )
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print(f"mail sink listening on {host}:{port}, mailbox {box}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--mailbox", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)
    serve(args.mailbox, args.host, args.port)
    return 0


# --- process handling (dev-stack) ----------------------------------------------------------


def _service(settings: Settings) -> Service:
    """The mail sink of this state dir (its command line names the module and the mailbox)."""
    return Service(
        "mail sink",
        home=mail_home(settings),
        stem="mailsink",
        markers=(MODULE, str(mailbox_dir(settings))),
        stop_timeout=STOP_TIMEOUT,
        poll=POLL_INTERVAL,
        kill_timeout=STOP_TIMEOUT,
        article="the ",
    )


def _our_pid(settings: Settings) -> int | None:
    return _service(settings).running_pid()


def smtp_banner(host: str, port: int, timeout: float = 2.0) -> str | None:
    """The server's greeting line when something speaking SMTP listens there."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            line = sock.recv(512).decode("ascii", "replace").strip()
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
    except OSError:
        return None
    return line if line.startswith("220") else None


def _where(settings: Settings) -> tuple[str, int]:
    return "127.0.0.1", settings.smtp_port


def ensure_mailsink(settings: Settings, reporter: Reporter) -> dict[str, Any]:
    """Start the mail sink (idempotent); return where it listens and where it stores."""
    host, port = _where(settings)
    if settings.smtp_host not in ("127.0.0.1", "localhost"):
        reporter.warn(
            f"smtp_host is {settings.smtp_host!r}: the realms do not send to the local mail "
            f"sink on {host}:{port}"
        )
    box = mailbox_dir(settings)
    _private_dir(mail_home(settings))
    _private_dir(box)
    info = {"url": f"smtp://{host}:{port}", "mailbox": str(box), "started": False}
    pid = _our_pid(settings)
    if pid is not None and not smtp_banner(host, port):
        # ours, but not (or no longer) on this port: the setting changed or it hangs
        reporter.change(f"restarting the mail sink (pid {pid} does not answer on {host}:{port})")
        _terminate(settings, pid)
        pid = None
    if port_open(port, host):
        if pid is not None and smtp_banner(host, port):
            reporter.skip(f"mail sink on {host}:{port} is running (pid {pid})")
            return {**info, "pid": pid}
        raise ConflictError(
            f"port {port} on {host} is taken by a process that is not this state dir's mail sink",
            obj=f"{host}:{port}",
            hint="stop that process or choose another port (setting smtp_port, "
            "SMARTPRAXX_SMTP_PORT), then: " + UP,
        )
    argv = [sys.executable, "-m", MODULE, "--mailbox", str(box), "--host", host]
    argv += ["--port", str(port)]
    reporter.change(f"starting the mail sink on {host}:{port} (mailbox {box})")
    proc = _service(settings).start(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def answers() -> bool:
        if proc.poll() is not None:
            pid_file(settings).unlink(missing_ok=True)
        exited_during_start(proc, "the mail sink", f"{host}:{port}", log_file(settings))
        return smtp_banner(host, port, timeout=1.0) is not None

    if wait_until(answers, START_TIMEOUT, POLL_INTERVAL):
        reporter.change(f"mail sink is up on {host}:{port} (pid {proc.pid})")
        return {**info, "pid": proc.pid, "started": True}
    _terminate(settings, proc.pid)
    pid_file(settings).unlink(missing_ok=True)
    raise ServiceUnavailableError(
        f"the mail sink did not answer on {host}:{port} within {START_TIMEOUT:.0f}s",
        obj=f"{host}:{port}",
        hint=f"see {log_file(settings)}; then '{UP}'",
    )


def _terminate(settings: Settings, pid: int) -> None:
    """SIGTERM the process group we started (pgid == pid), then SIGKILL; bounded."""
    _service(settings).terminate(pid)


def stop_mailsink(settings: Settings, reporter: Reporter) -> bool:
    """Stop the mail sink this state dir started. The stored mails stay."""
    return _service(settings).stop(reporter)


def mailsink_status(settings: Settings) -> dict[str, Any]:
    host, port = _where(settings)
    pid = _our_pid(settings)
    box = mailbox_dir(settings)
    return {
        "url": f"smtp://{host}:{port}",
        "pid": pid,
        "running": pid is not None,
        "answers": pid is not None and smtp_banner(host, port) is not None,
        "mailbox": str(box),
        "messages": len(list(box.glob("*.eml"))) if box.is_dir() else 0,
    }


# --- reading the mailbox -------------------------------------------------------------------


def _parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage, subtype: str | None = None) -> str:
    """The text of the message's text/plain parts (else of all its text parts)."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_multipart():
            if subtype is not None and part.get_content_subtype() != subtype:
                continue
            with contextlib.suppress(LookupError, ValueError):
                parts.append(str(part.get_content()))
    text = "\n".join(parts)
    return text if text or subtype is None else _text(message)


def _summary(message_id: str, message: EmailMessage, size: int) -> dict[str, Any]:
    return {
        "id": message_id,
        "date": str(message.get("Date", "")),
        "from": str(message.get("From", "")),
        "to": [str(v) for v in message.get_all("Delivered-To", [])],
        "subject": str(message.get("Subject", "")),
        "size": size,
    }


def list_messages(settings: Settings) -> list[dict[str, Any]]:
    """The stored messages, oldest first (ids sort by arrival)."""
    box = mailbox_dir(settings)
    if not box.is_dir():
        return []
    out = []
    for path in sorted(box.glob("*.eml")):
        out.append(_summary(path.stem, _parse(path), path.stat().st_size))
    return out


def links(text: str) -> list[str]:
    found = re.findall(r"https?://[^\s\"'<>]+", text)
    return list(dict.fromkeys(u.rstrip(".,;)") for u in found))


def show_message(settings: Settings, message_id: str) -> dict[str, Any]:
    """One message: its summary, the text of its text parts and the links in them."""
    path = mailbox_dir(settings) / f"{message_id}.eml"
    if not _ID_RE.match(message_id) or not path.is_file():
        raise NotFoundError(
            f"no message {message_id!r} in the mailbox {mailbox_dir(settings)}",
            obj=message_id,
            hint="smartpraxx-provision dev-stack mail list",
        )
    message = _parse(path)
    text = _text(message, "plain")
    return {
        **_summary(message_id, message, path.stat().st_size),
        "text": text,
        "links": links(_text(message)),
        "path": str(path),
    }


if __name__ == "__main__":  # pragma: no cover - the background process
    sys.exit(main())
