"""The embedded stack's real Caddy (Debian's ``caddy``): TLS for browsers, a socket for slots.

Two jobs, one background process started/stopped by ``dev-stack up/down``:

* **https on 127.0.0.1:<proxy_port>** with Caddy's local CA (``tls internal``): the identity
  host ``mein.<domain>`` and the slots ``ncXX.cloudYYY.<domain>`` (routing files rendered into
  ``<state_dir>/proxy/*.caddy`` are imported). Browsers resolve ``*.localhost`` to 127.0.0.1
  themselves. The root certificate to trust is :func:`ca_certificate`.
* **the identity provider for the slots' containers**: an http site bound to the Unix socket
  ``<state_dir>/proxy/run/idp.sock`` that proxies to the local Keycloak (Host passed through,
  so Keycloak's ``hostname-backchannel-dynamic`` answers token/JWKS URLs on the internal
  name). Each slot's ``<slot>-idp`` gateway container (image ``idp-gateway``) mounts that
  directory and forwards ``idp-internal:8080`` on the slot's own network to it: no IP route
  from a container to the host, no network shared by two slots.

Nothing listens on another address: the https sites bind 127.0.0.1, the redirect listener on
:80 is off, the admin API is a Unix socket in the state dir, HTTP/3 (UDP) is off, and the CA
is never installed into the system trust store. Waits are bounded.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import ConflictError, ServiceUnavailableError
from ..output import Reporter
from ..render.proxy import IDP_REALMS_PART
from .engine import ensure_packages
from .service import Service, exited_during_start, port_open, wait_until

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL = 0.25


def proxy_home(settings: Settings) -> Path:
    return settings.state_dir / "proxy"


def run_dir(settings: Settings) -> Path:
    """Directory of the Unix sockets (mounted into the slots' idp gateways)."""
    return proxy_home(settings) / "run"


def idp_socket(settings: Settings) -> Path:
    return run_dir(settings) / "idp.sock"


def admin_socket(settings: Settings) -> Path:
    return run_dir(settings) / "admin.sock"


def caddyfile(settings: Settings) -> Path:
    return proxy_home(settings) / "caddy" / "Caddyfile"


def _data_home(settings: Settings) -> Path:
    return proxy_home(settings) / "caddy" / "data"


def ca_certificate(settings: Settings) -> Path:
    """Caddy's local root CA (``tls internal``): what browsers and clients must trust."""
    return _data_home(settings) / "caddy" / "pki" / "authorities" / "local" / "root.crt"


def keycloak_upstream(settings: Settings) -> str:
    return f"127.0.0.1:{settings.keycloak_port}"


def render_main_caddyfile(settings: Settings) -> str:
    """The main Caddyfile: global options, the slots' idp socket site, the route imports.

    Pure (paths come from the settings). The routing files (``identity-routes.caddy``,
    ``<host>.caddy``) sit next to ``caddy/`` and are imported by glob.
    """
    routes = proxy_home(settings)
    return (
        "# The embedded stack's Caddy; rendered by smartpraxx-provision dev-stack up.\n"
        "{\n"
        f"\tadmin unix/{admin_socket(settings)}\n"
        "\tskip_install_trust\n"
        "\tlocal_certs\n"
        "\tauto_https disable_redirects\n"
        f"\thttps_port {settings.proxy_port}\n"
        "\tservers {\n"
        "\t\tprotocols h1 h2\n"
        "\t}\n"
        "}\n"
        "\n"
        "# The identity provider for the slots' idp gateways (http, Host passed through); the\n"
        "# realms on further identity shards are routed by the imported part (a glob: the\n"
        "# part may not exist yet).\n"
        "http:// {\n"
        f"\tbind unix/{idp_socket(settings)}\n"
        f"\timport {routes}/{IDP_REALMS_PART}*\n"
        "\thandle {\n"
        f"\t\treverse_proxy {keycloak_upstream(settings)}\n"
        "\t}\n"
        "}\n"
        "\n"
        f"import {routes}/*.caddy\n"
    )


# --- process --------------------------------------------------------------------------------


def _caddy_binary() -> str:
    path = shutil.which("caddy")
    if path is None:
        raise ServiceUnavailableError(
            "caddy is not installed",
            obj="caddy",
            hint="apt-get install caddy, then 'smartpraxx-provision dev-stack up'",
        )
    return path


def _service(settings: Settings) -> Service:
    """The Caddy of this state dir (its command line names the main Caddyfile)."""
    return Service(
        "Caddy",
        home=proxy_home(settings) / "caddy",
        stem="caddy",
        markers=(str(caddyfile(settings)),),
        stop_timeout=STOP_TIMEOUT,
        poll=POLL,
        kill_timeout=0.0,
    )


def _our_pid(settings: Settings) -> int | None:
    return _service(settings).running_pid()


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "XDG_DATA_HOME": str(_data_home(settings)),
            "XDG_CONFIG_HOME": str(proxy_home(settings) / "caddy" / "config"),
            "HOME": str(proxy_home(settings) / "caddy"),
        }
    )
    return env


def write_config(settings: Settings) -> bool:
    """Write the main Caddyfile when it differs. True when it changed."""
    path = caddyfile(settings)
    text = render_main_caddyfile(settings)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True


def _ready(settings: Settings) -> bool:
    # the https port opens only once a routing file defines a site; the socket always
    return idp_socket(settings).is_socket()


def ensure_proxy(settings: Settings, reporter: Reporter) -> dict[str, Any]:
    """Start the embedded Caddy (idempotent); reload it when its config changed. Installs
    Debian's ``caddy`` first when it is missing (like the Docker engine)."""
    ensure_packages(settings, reporter, {"caddy": "caddy"})
    binary = _caddy_binary()
    changed = write_config(settings)
    pid = _our_pid(settings)
    if pid is not None:
        if changed:
            reload_proxy(settings, reporter)
        else:
            reporter.skip(f"Caddy running (pid {pid}) on 127.0.0.1:{settings.proxy_port}")
        return status(settings)
    if port_open(settings.proxy_port):
        raise ConflictError(
            f"port {settings.proxy_port} on 127.0.0.1 is taken by a process that is not this "
            "state dir's Caddy",
            obj=f"127.0.0.1:{settings.proxy_port}",
            hint="stop that process or choose another port (SMARTPRAXX_PROXY_PORT)",
        )
    for stale in (idp_socket(settings), admin_socket(settings)):
        stale.unlink(missing_ok=True)
    log = _service(settings).log_file
    reporter.change(f"starting Caddy on 127.0.0.1:{settings.proxy_port} (log {log})")
    proc = _service(settings).start(
        [binary, "run", "--config", str(caddyfile(settings)), "--adapter", "caddyfile"],
        cwd=proxy_home(settings),
        env=_env(settings),
    )

    def up() -> bool:
        exited_during_start(proc, "Caddy", "caddy", log)
        return _ready(settings)

    if wait_until(up, START_TIMEOUT, POLL):
        reporter.change(f"Caddy is up (pid {proc.pid}); CA {ca_certificate(settings)}")
        return status(settings)
    _terminate(settings, proc.pid)
    raise ServiceUnavailableError(
        f"Caddy did not come up within {START_TIMEOUT:.0f}s", obj="caddy", hint=f"see {log}"
    )


def reload_proxy(settings: Settings, reporter: Reporter) -> bool:
    """Graceful reload through the admin socket (after routing files changed)."""
    if _our_pid(settings) is None:
        return False
    proc = subprocess.run(
        [
            _caddy_binary(),
            "reload",
            "--config",
            str(caddyfile(settings)),
            "--adapter",
            "caddyfile",
            "--address",
            f"unix/{admin_socket(settings)}",
        ],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise ServiceUnavailableError(
            f"caddy reload failed: {(proc.stderr or proc.stdout).strip()[-400:]}",
            obj=str(caddyfile(settings)),
            hint=f"check the routing files in {proxy_home(settings)}; "
            f"see {_service(settings).log_file}",
        )
    reporter.change("Caddy reloaded")
    return True


def _terminate(settings: Settings, pid: int) -> None:
    _service(settings).terminate(pid)


def stop_proxy(settings: Settings, reporter: Reporter) -> bool:
    return _service(settings).stop(reporter)


def status(settings: Settings) -> dict[str, Any]:
    pid = _our_pid(settings)
    return {
        "running": pid is not None,
        "pid": pid,
        "https": f"127.0.0.1:{settings.proxy_port}",
        "answers": pid is not None and _ready(settings),
        "idp_socket": str(idp_socket(settings)),
        "ca_certificate": str(ca_certificate(settings)),
        "config": str(caddyfile(settings)),
        "log": str(_service(settings).log_file),
    }


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, host: str, timeout: float) -> None:
        super().__init__(host, timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def get_as_slot(settings: Settings, url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET an ``http://idp-internal:8080/...`` URL the way a slot's idp gateway does: through
    the Caddy socket the gateways forward to, with the internal Host header. (status, body)"""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.netloc:
        raise ValueError(f"not an internal http URL: {url}")
    conn = _UnixHTTPConnection(idp_socket(settings), parts.netloc, timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path or "/", headers={"Host": parts.netloc})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
