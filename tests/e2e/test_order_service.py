"""The order service over real HTTP on 127.0.0.1: shop webhook → template mail → Starter
Excel upload → provision → billing event at a local receiver; duplicates, bad input, a
SIGKILL between accept and processing, suspend/resume through the shop's events.

Real parts: the service (uvicorn + Starlette in a child process), a real SMTP server
(aiosmtpd) and a real HTTP billing receiver (uvicorn) in this process, the local Docker
engine and Keycloak for the provision.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.adapters.keycloak_login import password_login
from smartpraxx_provision.adapters.nextcloud import NextcloudAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.render.bundle import slot_names
from smartpraxx_provision.secrets import FileSecretStore

from .conftest import GP_SAMPLE, Cli

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ORDER = "SPX-2026-000123"  # the Bestellnummer of the GP sample


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, check: Any, timeout: float = 120.0, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content,
                                                       policy=email.policy.default))
        return "250 OK"


@dataclass
class BillingReceiver:
    """A billing endpoint that checks the signature and remembers idempotency keys."""

    secret: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            sig = dict(p.split("=", 1) for p in request.headers["x-smartpraxx-signature"]
                       .split(","))
            mac = hmac.new(self.secret.encode(), sig["t"].encode() + b"." + body,
                           hashlib.sha256).hexdigest()
            if not hmac.compare_digest(mac, sig["v1"]):
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "try later"}, status_code=503)
            self.seen.append({"key": request.headers["idempotency-key"], **json.loads(body)})
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/billing", receive, methods=["POST"])])


@dataclass
class Service:
    cli: Cli
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smartpraxx_provision.cli", "serve"],
            env={**self.env, **(extra_env or {})}, stdout=fh, stderr=subprocess.STDOUT)
        _until("the service to answer", self._healthy, timeout=60)

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"service exited: {self.log.read_text()[-3000:]}")
        try:
            return requests.get(self.base + "/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None


@pytest.fixture(scope="module")
def stack(e2e: Cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn
    from aiosmtpd.controller import Controller

    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    receiver = BillingReceiver()
    bport = _free_port()
    server = uvicorn.Server(uvicorn.Config(receiver.app(), host="127.0.0.1", port=bport,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _until("the billing receiver", lambda: server.started, timeout=20)
    port = _free_port()
    env = {**e2e.env,
           "SMARTPRAXX_SMTP_HOST": "127.0.0.1", "SMARTPRAXX_SMTP_PORT": str(smtp.port),
           "SMARTPRAXX_SMTP_FROM": "bestellung@smartpraxx.test",
           "SMARTPRAXX_SMTP_STARTTLS": "false",
           "SMARTPRAXX_SERVICE_PORT": str(port),
           "SMARTPRAXX_BILLING_URL": f"http://127.0.0.1:{bport}/billing"}
    e2e.env.update(env)
    service = Service(e2e, env, port, tmp_path_factory.mktemp("service") / "service.log")
    service.start()
    store = FileSecretStore(e2e.state_dir / "secrets")
    receiver.secret = store.ensure("platform/billing-signing-secret")
    url = e2e("orders", "webhook-url", "--reveal").stdout.strip()
    try:
        yield {"service": service, "mail": box, "billing": receiver, "hook": url,
               "store": store}
    finally:
        service.stop()
        smtp.stop()
        server.should_exit = True
        thread.join(10)


def _paid(order: str = ORDER, pid: str = "1", **extra: str) -> bytes:
    return urlencode({"event": "payment.successful", "order_id": order, "id": pid,
                      "payment_state": "paid", "product[id]": "77",
                      "product[name]": "smartpraxx Basis", "payer[email]": "inhaber@praxis.test",
                      "payer[first_name]": "Anna", **extra}).encode()


def test_bad_deliveries_get_4xx_and_change_nothing(stack: dict[str, Any], e2e: Cli) -> None:
    hook: str = stack["hook"]
    base = hook.rsplit("/", 1)[0]
    cases = [
        (base + "/wrong-token", _paid(), FORM, 404),
        (hook, _paid(), {"Content-Type": "application/json"}, 415),
        (hook, b"event=payment.successful", FORM, 422),
        (hook, b"event=no.such.event&order_id=1", FORM, 422),
        (hook, b"\xff\xfe\xfd", FORM, 400),
        (hook, b"x=" + b"a" * 70_000, FORM, 413),
    ]
    for url, body, headers, status in cases:
        resp = requests.post(url, data=body, headers=headers, timeout=10)
        assert resp.status_code == status, (url[-12:], resp.status_code, resp.text)
    code, listing = e2e.json("orders", "list")
    assert code == 0 and listing["orders"] == []
    log = stack["service"].log.read_text()
    assert "inhaber@praxis.test" not in log and "Anna" not in log
    assert stack["hook"].rsplit("/", 1)[1] not in log, "the path token reached the log"
    assert requests.get(stack["service"].base + "/healthz", timeout=5).ok


def test_duplicates_one_order_one_mail(stack: dict[str, Any], e2e: Cli) -> None:
    hook: str = stack["hook"]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(
            lambda _: requests.post(hook, data=_paid(), headers=FORM, timeout=30), range(50)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(202) == 1 and codes.count(200) == 49, codes
    assert len({a.json()["delivery"] for a in answers}) == 1
    _until("the template mail", lambda: len(stack["mail"].messages) >= 1)
    time.sleep(1.0)  # would a duplicate send a second mail?
    assert len(stack["mail"].messages) == 1
    mail = stack["mail"].messages[0]
    assert mail["To"] == "inhaber@praxis.test" and ORDER in mail["Subject"]
    parts = {p.get_content_type() for p in mail.walk()}
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in parts
    code, listing = e2e.json("orders", "list")
    assert code == 0 and [o["order_id"] for o in listing["orders"]] == [ORDER]
    assert listing["orders"][0]["state"] == "template-sent"
    print(f"50 concurrent duplicates answered in {time.monotonic() - started:.2f}s")


def _upload_url(stack: dict[str, Any]) -> str:
    text = stack["mail"].messages[0].get_body(("plain",)).get_content()
    match = re.search(r"(http://127\.0\.0\.1:\d+/starter/\S+)", text)
    assert match, text
    return match.group(1)


def test_upload_checks_provisions_and_bills_once(stack: dict[str, Any], e2e: Cli,
                                                 tmp_path: Path) -> None:
    url = _upload_url(stack)
    assert requests.post(url[:-4] + "0000", data=b"x", timeout=10).status_code == 404
    page = requests.get(url, timeout=10)
    assert page.ok and "Starter-Excel" in page.text
    bad = requests.post(url, files={"file": ("x.xlsx", b"not a workbook")}, timeout=30)
    assert bad.status_code == 422 and not bad.json()["ok"]
    _until("the German report", lambda: len(stack["mail"].messages) >= 2)
    assert "korrigieren" in stack["mail"].messages[1]["Subject"]
    ok = requests.post(url, files={"file": ("praxis.xlsx", GP_SAMPLE.read_bytes())}, timeout=60)
    assert ok.status_code == 202, ok.text
    def provisioned() -> Any:
        order = e2e.json("orders", "show", ORDER)[1]["order"]
        assert "provision failed" not in order["attention"], stack["service"].log.read_text()
        return order if order["state"] == "provisioned" else None

    order = _until("the order to be provisioned", provisioned, timeout=600, every=2)
    assert order["praxisname"] == "praxis-mueller"
    code, status = e2e.json("status", "praxis-mueller")
    assert code == 0 and status["practices"][0]["state"] == "active"
    seen = _until("the billing event", lambda: [
        e for e in stack["billing"].seen if e["event"] == "provisioned"], timeout=60)
    assert len(seen) == 1 and seen[0]["payload"]["billable_seats"] >= 1
    # a repeated upload provisions nothing new and bills nothing new
    again = requests.post(url, files={"file": ("praxis.xlsx", GP_SAMPLE.read_bytes())},
                          timeout=60)
    assert again.status_code == 202
    time.sleep(5)
    assert len([e for e in stack["billing"].seen if e["event"] == "provisioned"]) == 1
    assert len({e["key"] for e in stack["billing"].seen}) == len(stack["billing"].seen)


def _login(keycloak: Settings, e2e: Cli, username: str, password: str) -> bool:
    from smartpraxx_provision.adapters.keycloak_login import LoginRefused
    from smartpraxx_provision.errors import SmartpraxxError

    settings = load_settings(env={}, overrides={"state_dir": str(e2e.state_dir),
                                                "keycloak_url": keycloak.keycloak_url})
    from smartpraxx_provision.inventory import open_inventory

    with open_inventory(settings) as inv:
        record = inv.get_practice("praxis-mueller")
    assert record is not None
    from smartpraxx_provision.render.bundle import slot_secret_refs

    secret = FileSecretStore(e2e.state_dir / "secrets").require(
        slot_secret_refs(record.slot)["oidc_client_secret"])
    try:
        password_login(settings, record.slot, "nextcloud", secret, username, password)
    except (LoginRefused, SmartpraxxError, requests.RequestException, KeyError, ValueError):
        return False
    return True


def test_pause_suspends_and_paying_resumes(stack: dict[str, Any], e2e: Cli,
                                           keycloak: Settings) -> None:
    _code, status = e2e.json("status", "praxis-mueller")
    slot = status["practices"][0]["slot"]
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    user = kc.users(slot)[0]
    kc.set_password(slot, user["id"], "Sehr-geheimes-Passwort-1", temporary=False)
    kc.update_user(slot, user["id"], {**user, "requiredActions": []})
    assert _login(keycloak, e2e, user["username"], "Sehr-geheimes-Passwort-1")
    hook: str = stack["hook"]
    paused = urlencode({"event": "order.subscription.paused", "order_id": ORDER, "id": "2"})
    assert requests.post(hook, data=paused, headers=FORM, timeout=10).status_code == 202
    _until("the suspension", lambda: e2e.json("orders", "show", ORDER)[1]["order"]["suspended"])
    assert not _login(keycloak, e2e, user["username"], "Sehr-geheimes-Passwort-1")
    page = e2e.state_dir / "proxy" / "startseiten" / "praxis-mueller" / "index.html"
    assert "derzeit gesperrt" in page.read_text()  # the start page tells the staff why
    assert e2e("provision", str(GP_SAMPLE), "--yes").returncode == 1  # suspended: refused
    paying = urlencode({"event": "order.subscription.paying", "order_id": ORDER, "id": "3"})
    assert requests.post(hook, data=paying, headers=FORM, timeout=10).status_code == 202
    _until("the resume",
           lambda: not e2e.json("orders", "show", ORDER)[1]["order"]["suspended"])
    assert _login(keycloak, e2e, user["username"], "Sehr-geheimes-Passwort-1")
    assert "derzeit gesperrt" not in page.read_text() and "kachel-" in page.read_text()
    kinds = [e["event"] for e in _until("billing of both transitions", lambda: (
        lambda s: s if {"suspended", "resumed"} <= {e["event"] for e in s} else None)(
            stack["billing"].seen), timeout=60)]
    assert kinds.count("suspended") == 1 and kinds.count("resumed") == 1


def _default_quota(docker_engine: DockerEngine, slot: str) -> str:
    nc = NextcloudAdapter(docker_engine, slot_names(Slot.parse(slot)).app)
    return str(nc.config_list()["apps"]["files"]["default_quota"])


def test_change_package_converges_and_bills_once(stack: dict[str, Any], e2e: Cli,
                                                  docker_engine: DockerEngine) -> None:
    slot = e2e.json("status", "praxis-mueller")[1]["practices"][0]["slot"]
    assert _default_quota(docker_engine, slot) == "10 GB"  # the sample orders Basis
    code, plan = e2e.json("change-package", "praxis-mueller", "Premium", "--dry-run")
    assert code == 0 and plan["to"] == "premium" and plan["from"] == "basis", plan
    assert _default_quota(docker_engine, slot) == "10 GB"  # a dry run changes nothing
    bad = e2e("change-package", "praxis-mueller", "Gold")
    assert bad.returncode == 2 and "Basis or Premium" in bad.stderr
    code, doc = e2e.json("change-package", "praxis-mueller", "premium")
    assert code == 0 and doc["changes"] == 2, doc  # the quota, the billing event
    assert _default_quota(docker_engine, slot) == "50 GB"
    code, doc = e2e.json("change-package", "praxis-mueller", "Premium")
    assert code == 0 and doc["no_changes"], doc  # re-run: live state re-read, nothing to do
    # a re-provision with the Basis Starter Excel does not undo the paid change silently
    refused = e2e("provision", str(GP_SAMPLE), "--yes")
    assert refused.returncode == 2, refused.stderr
    assert "change-package praxis-mueller Basis" in refused.stderr
    assert _default_quota(docker_engine, slot) == "50 GB"
    assert e2e.json("change-package", "praxis-mueller", "Basis")[0] == 0
    assert _default_quota(docker_engine, slot) == "10 GB"
    changed = _until("billing of both changes", lambda: (lambda s: s if len(s) >= 2 else None)(
        [e for e in stack["billing"].seen if e["event"] == "package-changed"]), timeout=60)
    assert [(e["payload"]["from"], e["payload"]["to"]) for e in changed] == [
        ("basis", "premium"), ("premium", "basis")]
    listing = e2e.json("practices", "list")[1]
    rows = listing["practices"] if isinstance(listing, dict) else listing
    assert [p["package"] for p in rows if p["praxisname"] == "praxis-mueller"] == ["basis"]


def test_kill_between_accept_and_processing(stack: dict[str, Any], e2e: Cli) -> None:
    service: Service = stack["service"]
    service.stop()
    service.start({"SMARTPRAXX_CRASH_AT": "orders:process:before"})
    body = urlencode({"event": "chargeback.successful", "order_id": ORDER, "id": "4"})
    resp = requests.post(stack["hook"], data=body, headers=FORM, timeout=10)
    assert resp.status_code == 202
    assert service.proc is not None
    service.proc.wait(30)
    assert service.proc.returncode == -signal.SIGKILL
    service.proc = None
    _code, order = e2e.json("orders", "show", ORDER)
    assert "chargeback.successful" not in order["order"]["attention"]
    service.start()
    _until("the delivery after restart", lambda: "chargeback.successful" in e2e.json(
        "orders", "show", ORDER)[1]["order"]["attention"])
    _code, status = e2e.json("status", "praxis-mueller")
    assert status["practices"][0]["state"] == "active", "a chargeback never deletes"
