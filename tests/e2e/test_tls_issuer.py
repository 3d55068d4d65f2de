"""The embedded stack behind the local TLS proxy (issue 12): one issuer for browser and slots;
and two identity shards behind it (issue 18).

Real Caddy (`tls internal` on 127.0.0.1), real Keycloak started by `dev-stack up` with
``--hostname=<browser URL> --hostname-backchannel-dynamic=true``, the real Docker engine and
the Nextcloud stand-in doing user_oidc's code flow. A fresh state dir and Keycloak per module
(~90 s); export SMARTPRAXX_TEST_TLS_STATE=<dir> to reuse a running one while developing.

The module's stack has a second identity shard ``kc2`` (a second Keycloak process that
`dev-stack up` starts) and ``realms_per_shard=1``: the first practice's realm goes to the
primary Keycloak, the second practice's to kc2, and the proxy routes each realm to its shard.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from smartpraxx_provision.adapters import localhost_names
from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.config import PRIMARY_SHARD
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.output import Reporter

from .conftest import Tls, free_port

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
DENTAL_SAMPLE = REPO / "starter_excel_samples" / "zahnarztpraxis-sonnenschein.xlsx"
MVZ_SAMPLE = REPO / "starter_excel_samples" / "mvz-rheinaue.xlsx"


SHARD = "kc2"


@pytest.fixture(scope="module")
def tls_settings() -> dict[str, str]:
    return {"SMARTPRAXX_IDENTITY_SHARDS": f"{SHARD}=http://127.0.0.1:{free_port()}",
            "SMARTPRAXX_REALMS_PER_SHARD": "1"}


@pytest.fixture(scope="module")
def provisioned(tls: Tls) -> dict[str, object]:
    proc = tls.cli("provision", str(SAMPLE), "--yes", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def second(tls: Tls, provisioned: dict) -> dict[str, object]:
    """The dental practice, provisioned after the GP one: its realm goes to shard kc2."""
    code, doc = tls.json("provision", str(DENTAL_SAMPLE), "--yes")
    assert code == 0, doc
    return doc


def _shards(tls: Tls) -> OpContext:
    return OpContext(tls.settings, Reporter(quiet=True))


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
    provisioned: dict, second: dict, docker_engine: DockerEngine
) -> None:
    other = second
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


# --- identity shards (issue 18) -------------------------------------------------------------


def test_the_second_realm_lives_on_the_second_shard_only(
    tls: Tls, provisioned: dict, second: dict
) -> None:
    assert (provisioned["identity_shard"], second["identity_shard"]) == (PRIMARY_SHARD, SHARD)
    ctx = _shards(tls)
    primary, kc2 = ctx.identity_shard(PRIMARY_SHARD), ctx.identity_shard(SHARD)
    assert primary.url != kc2.url  # two Keycloak processes
    assert kc2.get_realm(second["realm"]) is not None
    assert primary.get_realm(second["realm"]) is None
    assert primary.get_realm(provisioned["realm"]) is not None
    assert kc2.get_realm(provisioned["realm"]) is None
    # one issuer front for both: the second practice's staff log in to its Nextcloud through
    # the proxy's route to kc2 (browser side) and its idp gateway (backchannel side)
    checks = {c["check"]: c for c in second["smoke"]["checks"]}
    assert checks["nextcloud-login"]["ok"] and checks["login"]["ok"], checks
    assert second["urls"]["issuer"].startswith(
        provisioned["urls"]["issuer"].rsplit("/realms/", 1)[0] + "/realms/")
    routes = (tls.state / "proxy" / "identity-routes.caddy").read_text()
    assert f"handle @realm_{second['realm']}" in routes
    assert f"@realm_{provisioned['realm']} " not in routes  # the primary's take the default
    doc = requests.get(f"{second['urls']['issuer']}/.well-known/openid-configuration",
                       verify=tls.ca, timeout=15).json()
    assert doc["issuer"] == second["urls"]["issuer"]


def test_a_full_shard_takes_no_more_realms(tls: Tls, second: dict) -> None:
    code, doc = tls.json("provision", str(MVZ_SAMPLE), "--yes")
    assert code == 1, doc
    assert "every identity shard holds 1 realms" in doc["error"]["message"], doc
    assert "identity_shards" in doc["error"]["next"]
    code, listing = tls.json("practices", "list", "--all")
    assert code == 0 and len(listing["practices"]) == 2, listing  # nothing allocated


def test_rename_and_decommission_find_the_realm_on_its_shard(
    tls: Tls, second: dict, tmp_path: Path
) -> None:
    old, new = str(second["praxisname"]), f"{second['praxisname']}-neu"
    code, doc = tls.json("rename", old, new, "--confirm-fee", "--yes")
    assert code == 0, doc
    kc2 = _shards(tls).identity_shard(SHARD)
    realm = kc2.get_realm(str(second["realm"]))
    assert realm is not None and realm["attributes"]["smartpraxx.praxisname"] == new
    code, smoke = tls.json("smoke", new)
    assert code == 0 and smoke["ok"], smoke
    code, gone = tls.json("decommission", new, "--export-to", str(tmp_path), "--yes")
    assert code == 0, gone
    assert kc2.get_realm(str(second["realm"])) is None
    assert list(tmp_path.glob("*.tar")), "the export came first"
