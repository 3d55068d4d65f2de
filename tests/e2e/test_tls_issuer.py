"""The embedded stack behind the local TLS proxy (issue 12): one issuer for browser and slots.

Real Caddy (`tls internal` on 127.0.0.1), real Keycloak started by `dev-stack up` with
``--hostname=<browser URL> --hostname-backchannel-dynamic=true``, the real Docker engine and
the Nextcloud stand-in doing user_oidc's code flow. A fresh state dir and Keycloak per module
(~90 s); export SMARTPRAXX_TEST_TLS_STATE=<dir> to reuse a running one while developing.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from smartpraxx_provision.adapters import localhost_names
from smartpraxx_provision.adapters.docker_engine import LABEL_SLOT, DockerEngine

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tls:
    def __init__(self, state: Path, env: dict[str, str], host: str) -> None:
        self.state, self.env, self.host = state, env, host
        self.slots: list[str] = []

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smartpraxx_provision.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )

    @property
    def ca(self) -> str:
        return str(self.state / "proxy/caddy/data/caddy/pki/authorities/local/root.crt")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, docker_engine: DockerEngine) -> Iterator[Tls]:
    reuse = os.environ.get("SMARTPRAXX_TEST_TLS_STATE")
    state = Path(reuse) if reuse else tmp_path_factory.mktemp("tls-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPRAXX_")}
    if "SMARTPRAXX_LOCAL_IMAGE_TAG" in os.environ:
        env["SMARTPRAXX_LOCAL_IMAGE_TAG"] = os.environ["SMARTPRAXX_LOCAL_IMAGE_TAG"]
    kc_port = int(os.environ.get("SMARTPRAXX_TEST_TLS_KEYCLOAK_PORT") or _free_port())
    env.update({
        "PYTHONPATH": str(REPO),
        "SMARTPRAXX_STATE_DIR": str(state),
        "SMARTPRAXX_KEYCLOAK_PORT": str(kc_port),
        "SMARTPRAXX_KEYCLOAK_URL": f"http://127.0.0.1:{kc_port}",
        "SMARTPRAXX_PROXY_PORT": os.environ.get("SMARTPRAXX_TEST_TLS_PROXY_PORT") or str(_free_port()),
        "SMARTPRAXX_SMTP_PORT": os.environ.get("SMARTPRAXX_TEST_TLS_SMTP_PORT") or str(_free_port()),
        "SMARTPRAXX_DOMAIN": "smartpraxx.localhost",
        "SMARTPRAXX_IDENTITY_HOST": "mein.smartpraxx.localhost",
        "SMARTPRAXX_PUBLIC_SCHEME": "https",
        "SMARTPRAXX_HEALTH_TIMEOUT": "240",
    })
    t = Tls(state, env, f"cloud7{secrets.randbelow(100):02d}")
    up = t.cli("dev-stack", "up")
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    if not reuse:  # a reused state dir keeps its host (and its practice)
        add = t.cli("hosts", "add", t.host, "--endpoint", "unix:///var/run/docker.sock")
        assert add.returncode == 0, add.stderr
    yield t
    if reuse:
        return
    for c in docker_engine.client.containers.list(all=True, filters={"label": LABEL_SLOT}):
        if c.labels.get(LABEL_SLOT, "").endswith(f"-{t.host}"):
            c.remove(force=True, v=True)
    for v in docker_engine.client.volumes.list(filters={"label": LABEL_SLOT}):
        if (v.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{t.host}"):
            v.remove(force=True)
    for n in docker_engine.client.networks.list(filters={"label": LABEL_SLOT}):
        if (n.attrs.get("Labels") or {}).get(LABEL_SLOT, "").endswith(f"-{t.host}"):
            n.remove()
    # only what this module's state dir started (by pid): Keycloak, mail sink, Caddy
    from smartpraxx_provision.config import load_settings
    from smartpraxx_provision.devstack import keycloak, mailsink, proxy
    from smartpraxx_provision.output import Reporter

    s = load_settings(env={k: v for k, v in env.items() if k.startswith("SMARTPRAXX_")})
    for stop in (keycloak.stop_keycloak, mailsink.stop_mailsink, proxy.stop_proxy):
        stop(s, Reporter(quiet=True))


@pytest.fixture(scope="module")
def provisioned(tls: Tls) -> dict[str, object]:
    proc = tls.cli("provision", str(SAMPLE), "--yes", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def test_provision_smoke_logs_in_through_the_nextcloud_code_flow(provisioned: dict) -> None:
    checks = {c["check"]: c for c in provisioned["smoke"]["checks"]}
    assert checks["nextcloud-login"]["ok"], checks["nextcloud-login"]
    assert "Mitarbeitende" in checks["nextcloud-login"]["detail"]
    assert checks["oidc-discovery"]["ok"] and checks["login"]["ok"]
    urls = provisioned["urls"]
    port = tls_port = urls["issuer"].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    assert tls_port == port
    assert urls["nextcloud"] == f"https://{provisioned['slot'].replace('-', '.', 1)}.smartpraxx.localhost:{port}"
    assert urls["start_page"].startswith(f"https://mein.smartpraxx.localhost:{port}/")


def test_discovery_from_inside_the_slot_names_the_browser_issuer(
    tls: Tls, provisioned: dict, docker_engine: DockerEngine
) -> None:
    realm = provisioned["realm"]
    script = (
        "import json,requests\n"
        f"d=requests.get('http://idp-internal:8080/realms/{realm}/.well-known/openid-configuration',timeout=10).json()\n"
        "print(json.dumps(d))\n"
    )
    res = docker_engine.exec(f"{provisioned['slot']}-app", ["python3", "-c", script])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["issuer"] == provisioned["urls"]["issuer"]
    assert doc["authorization_endpoint"].startswith(provisioned["urls"]["issuer"] + "/")
    for key in ("token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert doc[key].startswith(f"http://idp-internal:8080/realms/{realm}/"), key


def test_browser_urls_answer_over_https_with_caddys_ca(tls: Tls, provisioned: dict) -> None:
    urls = provisioned["urls"]
    curl = ["curl", "-sS", "--max-time", "15", "--cacert", tls.ca, "-o", "/dev/null",
            "-w", "%{http_code} %{redirect_url}"]
    start = subprocess.run([*curl, urls["start_page"]], capture_output=True, text=True, check=False)
    assert start.stdout.startswith("302 ") and f"/realms/{provisioned['realm']}/account/" in start.stdout
    disc = subprocess.run([*curl, f"{urls['issuer']}/.well-known/openid-configuration"],
                          capture_output=True, text=True, check=False)
    assert disc.stdout.startswith("200"), disc.stdout + disc.stderr
    status = subprocess.run([*curl, f"{urls['nextcloud']}/status.php"], capture_output=True,
                            text=True, check=False)
    assert status.stdout.startswith("200"), status.stdout + status.stderr
    # without the CA the certificate is refused: it is Caddy's local CA, not a trusted one
    bare = subprocess.run(["curl", "-sS", "--max-time", "15", "-o", "/dev/null", urls["nextcloud"]],
                          capture_output=True, text=True, check=False)
    assert bare.returncode == 60, bare.stderr
    localhost_names.enable()
    assert requests.get(f"{urls['issuer']}/.well-known/openid-configuration", verify=tls.ca,
                        timeout=15).json()["issuer"] == urls["issuer"]


def test_the_idp_gateway_is_on_the_slot_network_only(
    provisioned: dict, docker_engine: DockerEngine
) -> None:
    gw = docker_engine.client.containers.get(f"{provisioned['slot']}-idp")
    networks = gw.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"{provisioned['slot']}-net"]
    assert "idp-internal" in networks[f"{provisioned['slot']}-net"]["Aliases"]
    # the gateway reaches Keycloak only: a Nextcloud Host header gets Keycloak's 404
    script = (
        "import requests\n"
        "r=requests.get('http://idp-internal:8080/status.php',headers={'Host':'x.localhost'},timeout=10)\n"
        "print(r.status_code)\n"
    )
    res = docker_engine.exec(f"{provisioned['slot']}-app", ["python3", "-c", script])
    assert res.stdout.strip() == "404", res.stdout + res.stderr
