"""The rendered proxy configuration, served by the REAL Caddy on 127.0.0.1.

Stand-ins (named as such): the slots' app containers and Keycloak are tiny HTTP servers on
127.0.0.1 that answer with their own name and the path they received. Caddy listens on free
ports (http, embedded profile); requests carry the public host name in the Host header.
What cannot run here: ACME certificates (no public DNS/CA; the production render is checked
with ``caddy adapt/validate`` in tests/unit/test_render_proxy.py).
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.domain.startpage import StartPageView, start_page_tiles
from smartpraxx_provision.render.proxy import (
    START_PAGE_ASSETS_DIR,
    render_host_routes,
    render_start_page_routes,
)
from smartpraxx_provision.render.startpage import render_start_page, start_page_assets

pytestmark = pytest.mark.integration

CADDY = shutil.which("caddy")
SLOW_SECONDS = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandIn:
    """An app-container (or Keycloak) stand-in: answers ``<name> <path>``; ``/slow`` waits."""

    def __init__(self, name: str) -> None:
        self.name = name
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow":
                    time.sleep(SLOW_SECONDS)
                body = f"{owner.name} {self.path} host={self.headers.get('Host')}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("X-Frame-Options", "DENY")  # replaced by the proxy's value
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.upstream = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Caddy:
    """The real caddy binary with a main Caddyfile that imports one rendered routing file."""

    def __init__(self, workdir: Path, routes: str) -> None:
        assert CADDY is not None
        self.workdir = workdir
        self.port = _free_port()
        self.admin = _free_port()
        self.routes = workdir / "routes.caddy"
        self.routes.write_text(routes, encoding="utf-8")
        self.main = workdir / "Caddyfile"
        self.main.write_text(
            "{\n"
            f"\thttp_port {self.port}\n"
            "\tdefault_bind 127.0.0.1\n"
            f"\tadmin 127.0.0.1:{self.admin}\n"
            "}\n\n"
            f"import {self.routes}\n",
            encoding="utf-8",
        )
        home = workdir / "home"
        home.mkdir()
        self.env = {"HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
        self.log = (workdir / "caddy.log").open("w")
        self.proc = subprocess.Popen(
            [CADDY, "run", "--config", str(self.main), "--adapter", "caddyfile"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        for _ in range(150):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"caddy did not come up: {(self.workdir / 'caddy.log').read_text()}")

    def reload(self, routes: str) -> None:
        """Graceful reload through the admin API, as `systemctl reload caddy` does."""
        self.routes.write_text(routes, encoding="utf-8")
        done = subprocess.run(
            [CADDY, "reload", "--config", str(self.main), "--adapter", "caddyfile",
             "--address", f"127.0.0.1:{self.admin}"],
            env=self.env, capture_output=True, text=True, timeout=30, check=False,
        )
        assert done.returncode == 0, done.stderr

    def get(self, host: str, path: str) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            body = resp.read().decode()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return load_settings(env={}, overrides={"state_dir": str(tmp_path / "state")})


@pytest.fixture
def stand_ins() -> Iterator[dict[str, StandIn]]:
    servers = {
        name: StandIn(name)
        for name in ("nc07-cloud023-app stand-in", "nc02-cloud023-app stand-in",
                     "keycloak stand-in")
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            server.close()


@pytest.fixture
def caddy_factory(tmp_path: Path) -> Iterator[Any]:
    if CADDY is None:
        pytest.skip("caddy binary not installed (apt-get install caddy)")
    started: list[Caddy] = []

    def start(routes: str, name: str) -> Caddy:
        workdir = tmp_path / name
        workdir.mkdir()
        caddy = Caddy(workdir, routes)
        started.append(caddy)
        return caddy

    yield start
    for caddy in started:
        caddy.stop()


def test_each_slot_host_name_reaches_its_own_app(
    embedded: Settings, stand_ins: dict[str, StandIn], caddy_factory: Any
) -> None:
    a, b = stand_ins["nc07-cloud023-app stand-in"], stand_ins["nc02-cloud023-app stand-in"]
    routes = render_host_routes(
        embedded, [(Slot("cloud023", 7), a.upstream), (Slot("cloud023", 2), b.upstream)]
    )
    caddy = caddy_factory(routes, "slots")

    status, headers, body = caddy.get("nc07.cloud023.smartpraxx.de", "/status.php")
    assert status == 200
    assert body.startswith("nc07-cloud023-app stand-in /status.php")
    assert "host=nc07.cloud023.smartpraxx.de" in body  # the app sees its public host name
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"  # replaced, not duplicated
    assert "server" not in headers

    status, _, body = caddy.get("nc02.cloud023.smartpraxx.de", "/index.php")
    assert status == 200 and body.startswith("nc02-cloud023-app stand-in /index.php")

    status, headers, _ = caddy.get("nc02.cloud023.smartpraxx.de", "/.well-known/caldav")
    assert status == 301 and headers["location"] == "/remote.php/dav/"

    # a host name with no slot reaches neither app
    status, _, body = caddy.get("nc09.cloud023.smartpraxx.de", "/")
    assert "stand-in" not in body


def test_reload_adds_a_slot_without_dropping_a_running_request(
    embedded: Settings, stand_ins: dict[str, StandIn], caddy_factory: Any
) -> None:
    a, b = stand_ins["nc07-cloud023-app stand-in"], stand_ins["nc02-cloud023-app stand-in"]
    caddy = caddy_factory(render_host_routes(embedded, [(Slot("cloud023", 7), a.upstream)]),
                          "reload")
    assert "stand-in" not in caddy.get("nc02.cloud023.smartpraxx.de", "/")[2]

    slow: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: slow.update(r=caddy.get("nc07.cloud023.smartpraxx.de", "/slow"))
    )
    thread.start()
    time.sleep(SLOW_SECONDS / 4)
    caddy.reload(render_host_routes(
        embedded, [(Slot("cloud023", 7), a.upstream), (Slot("cloud023", 2), b.upstream)]
    ))
    thread.join(timeout=SLOW_SECONDS + 10)
    assert slow["r"][0] == 200 and slow["r"][2].startswith("nc07-cloud023-app stand-in /slow")
    status, _, body = caddy.get("nc02.cloud023.smartpraxx.de", "/")
    assert status == 200 and body.startswith("nc02-cloud023-app stand-in /")


def test_start_pages_are_served_and_former_names_redirect(
    embedded: Settings, stand_ins: dict[str, StandIn], caddy_factory: Any, tmp_path: Path
) -> None:
    keycloak = stand_ins["keycloak stand-in"]
    pages = tmp_path / "startseiten"
    for name, view in (("praxis-mueller", "Praxis Müller"), ("dr-schmidt", "Dr. Schmidt")):
        html = render_start_page(StartPageView(
            name, view, f"http://{embedded.identity_host}/{name}/",
            f"http://{embedded.identity_host}/realms/x", "startseite",
            start_page_tiles(["deck"], "http://nc.example", [])))
        (pages / name).mkdir(parents=True)
        (pages / name / "index.html").write_text(html, encoding="utf-8")
    (pages / START_PAGE_ASSETS_DIR).mkdir()
    for asset, data in start_page_assets().items():
        (pages / START_PAGE_ASSETS_DIR / asset).write_bytes(data)
    routes = render_start_page_routes(
        embedded,
        [("praxis-mueller", "nc07-cloud023", ["praxis-mueller-alt"]),
         ("dr-schmidt", "nc02-cloud023", [])],
        keycloak_upstream=keycloak.upstream, pages_root=str(pages),
    )
    caddy = caddy_factory(routes, "identity")
    host = embedded.identity_host

    status, headers, _ = caddy.get(host, "/praxis-mueller")
    assert status == 302 and headers["location"] == "/praxis-mueller/"
    status, headers, body = caddy.get(host, "/praxis-mueller/?code=abc&state=xyz")
    assert status == 200 and "<h1>Praxis Müller</h1>" in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["content-type"].startswith("text/html")

    status, _, body = caddy.get(host, "/dr-schmidt/")
    assert status == 200 and "<h1>Dr. Schmidt</h1>" in body

    status, headers, body = caddy.get(host, "/_startseite/startseite.js")
    assert status == 200 and body == start_page_assets()["startseite.js"].decode()
    assert "javascript" in headers["content-type"]

    status, headers, _ = caddy.get(host, "/praxis-mueller-alt")
    assert status == 302 and headers["location"] == "/praxis-mueller/"

    status, _, body = caddy.get(host, "/realms/nc07-cloud023/protocol/openid-connect/auth")
    assert status == 200 and body.startswith("keycloak stand-in /realms/nc07-cloud023/")

    status, _, body = caddy.get(host, "/resources/x/login/style.css")
    assert status == 200 and body.startswith("keycloak stand-in /resources/")

    status, _, body = caddy.get(host, "/admin/master/console/")
    assert status == 404 and "stand-in" not in body  # the admin console is not published
    status, _, body = caddy.get(host, "/unbekannt")
    assert status == 404 and "stand-in" not in body
