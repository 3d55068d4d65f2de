"""The Chromium harness of the browser tests (tests/fixtures/browser.py), against a real Caddy.

Caddy (Debian's) serves ``https://harness.smartpraxx.localhost:<port>`` on 127.0.0.1 with
``tls internal`` (its own local CA in a temp dir, never installed into the system). Chromium
resolves ``*.localhost`` to 127.0.0.1 itself. With the CA in the browser's fresh NSS database
the page loads; without it Chromium shows its certificate error page (the harness never
ignores certificate errors). The browser's command line carries the required flags.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.browser import CHROMIUM_FLAGS, BrowserFactory, trusted_cas

pytestmark = pytest.mark.integration

CADDY = shutil.which("caddy")
HOST = "harness.smartpraxx.localhost"
BODY = "smartpraxx harness: TLS ok"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TlsCaddy:
    """Real caddy with ``tls internal`` for one site; its data (CA) under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        assert CADDY is not None
        self.workdir = workdir
        self.port = _free_port()
        home = workdir / "home"
        home.mkdir()
        config = workdir / "Caddyfile"
        config.write_text(
            "{\n"
            "\tadmin off\n"
            "\tskip_install_trust\n"
            f"\thttp_port {_free_port()}\n"
            f"\thttps_port {self.port}\n"
            "\tdefault_bind 127.0.0.1\n"
            "}\n\n"
            f"{HOST}:{self.port} {{\n"
            "\ttls internal\n"
            f'\trespond "{BODY}" 200\n'
            "}\n",
            encoding="utf-8",
        )
        env = {"HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home),
               "PATH": "/usr/bin:/bin"}
        self.ca = home / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        self.log_path = workdir / "caddy.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        for _ in range(200):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            if self.ca.is_file():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"caddy did not come up: {self.log_path.read_text()}")

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def caddy(tmp_path: Path) -> Iterator[TlsCaddy]:
    if CADDY is None:
        pytest.skip("caddy binary not installed (make test-deps)")
    server = TlsCaddy(tmp_path)
    yield server
    server.stop()


def test_trusted_local_ca_loads_the_https_page(
    caddy: TlsCaddy, browser_factory: BrowserFactory
) -> None:
    browser = browser_factory("trusted", ca_certs=[caddy.ca])
    assert trusted_cas(browser.home) == ["smartpraxx-test-ca-0"]
    browser.get(caddy.url)
    shot = browser.step("https page with the local CA trusted")
    assert browser.text().strip() == BODY
    assert shot.is_file() and shot.stat().st_size > 1000
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_untrusted_certificate_is_refused(
    caddy: TlsCaddy, browser_factory: BrowserFactory
) -> None:
    browser = browser_factory("untrusted")  # a fresh NSS database without Caddy's CA
    assert trusted_cas(browser.home) == []
    browser.get(caddy.url)
    browser.step("certificate error page")
    assert BODY not in browser.driver.page_source
    assert "ERR_CERT_AUTHORITY_INVALID" in browser.driver.page_source


def test_command_line_has_the_flags_and_a_fresh_profile(
    browser_factory: BrowserFactory,
) -> None:
    first = browser_factory("one")
    second = browser_factory("two")
    assert first.profile != second.profile
    first.get("chrome://version")
    first.step("chrome version page")
    command_line = first.text()
    for flag in CHROMIUM_FLAGS:
        assert flag in command_line, flag
    assert f"--user-data-dir={first.profile}" in command_line
    assert "ignore-certificate-errors" not in command_line
    assert "Chromium" in command_line
