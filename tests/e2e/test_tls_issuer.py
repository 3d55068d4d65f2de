"""The embedded stack behind the local TLS proxy (issue 12): one issuer for browser and slots.

Real Caddy (`tls internal` on 127.0.0.1), real Keycloak started by `dev-stack up` with
``--hostname=<browser URL> --hostname-backchannel-dynamic=true``, the real Docker engine and
the Nextcloud stand-in doing user_oidc's code flow. A fresh state dir and Keycloak per module
(~90 s); export SMARTPRAXX_TEST_TLS_STATE=<dir> to reuse a running one while developing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from smartpraxx_provision.adapters import localhost_names
from smartpraxx_provision.adapters.docker_engine import DockerEngine

from .conftest import Tls

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
DENTAL_SAMPLE = REPO / "starter_excel_samples" / "zahnarztpraxis-sonnenschein.xlsx"


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
    assert start.stdout == f"302 {urls['start_page']}/", start.stdout
    page = subprocess.run([*curl, urls["start_page"] + "/"], capture_output=True, text=True,
                          check=False)
    assert page.stdout.startswith("200"), page.stdout + page.stderr  # the practice's page
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


def test_a_slot_reaches_neither_another_slots_containers_nor_its_gateway(
    tls: Tls, provisioned: dict, docker_engine: DockerEngine
) -> None:
    code, other = tls.json("provision", str(DENTAL_SAMPLE), "--yes")
    assert code == 0, other
    mine, theirs = str(provisioned["slot"]), str(other["slot"])
    assert mine != theirs
    probe = (
        "import socket,sys\n"
        "for target in sys.argv[1:]:\n"
        "    host, port = target.rsplit(':', 1)\n"
        "    try:\n"
        "        socket.create_connection((host, int(port)), timeout=3).close()\n"
        "        print(target, 'open')\n"
        "    except OSError as err:\n"
        "        print(target, 'closed', type(err).__name__)\n"
    )

    def ip(container: str, network: str) -> str:
        attrs = docker_engine.client.containers.get(container).attrs
        return str(attrs["NetworkSettings"]["Networks"][network]["IPAddress"])

    their_net = f"{theirs}-net"
    targets = [
        f"{theirs}-app:80", f"{theirs}-idp:8080", f"{theirs}-db:3306",  # by name
        f"{ip(theirs + '-app', their_net)}:80", f"{ip(theirs + '-idp', their_net)}:8080",
    ]
    res = docker_engine.exec(f"{mine}-app", ["python3", "-c", probe, *targets])
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(targets), res.stdout + res.stderr
    assert not [line for line in lines if line.split()[1] == "open"], lines
    # positive control: the slot's own gateway, by its alias, is open, and it is the own one
    own = docker_engine.exec(f"{mine}-app", ["python3", "-c", probe, "idp-internal:8080"])
    assert own.stdout.split()[1] == "open", own.stdout + own.stderr
    resolved = docker_engine.exec(f"{mine}-app", [
        "python3", "-c", "import socket; print(socket.gethostbyname('idp-internal'))"])
    assert resolved.stdout.strip() == ip(f"{mine}-idp", f"{mine}-net")
