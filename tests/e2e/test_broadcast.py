"""Targeted news (issue 16) end to end, through the CLI, on the embedded stack.

Three practices of different KV and specialties (Starter Excel samples): praxis-mueller
(KV Rheinland-Pfalz, GP), zahnarzt-sonnenschein (KZV Bayern), mvz-rheinaue (KV Nordrhein,
urology among others). Target: KV ∈ {RLP, Nordrhein} and (Fachrichtung Urologie or
Arbeitsbereich Abrechnung).

Staff "log in" to their Nextcloud: a real authorization-code login at the practice's realm
(the real Keycloak) gives the ID token; its claims are handed to the stand-in's user_oidc
provisioning inside the container (the same code its /apps/user_oidc/code runs: uid, groups
with the whitelist). Only the signature check is skipped, because in the plain embedded
profile the container cannot reach the 127.0.0.1 issuer (the TLS profile can; see
test_tls_issuer.py). Each user is then checked through their own Nextcloud's OCS API
(announcements + notifications) with an app password of their own.

Also: a platform stopped during ``send`` is ``failed`` and gets it on ``retry``; the practice
provisioned after the send gets it in its provision; the inventory and every log line hold no
recipient id; ``retract`` removes it everywhere.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest
import requests

from smartpraxx_provision.adapters import keycloak_login
from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.adapters.keycloak_login import jwt_claims
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain import audience
from smartpraxx_provision.domain.model import PracticeSpec, Slot
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter import load_practice_spec
from tests.fixtures.docker_wait import wait_healthy

from .conftest import SAMPLES, Cli

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "Broadcast-Test-2026!"
SAMPLE_FILES = {
    "praxis-mueller": SAMPLES / "hausarztpraxis-mueller.xlsx",
    "zahnarzt-sonnenschein": SAMPLES / "zahnarztpraxis-sonnenschein.xlsx",
    "mvz-rheinaue": SAMPLES / "mvz-rheinaue.xlsx",
}
TARGET_ARGS = ["--kv", "KV Rheinland-Pfalz", "--kv", "KVNO",
               "--any", "fach=Urologie,bereich=Abrechnung"]
TARGET = audience.build_target({"kv": ["KV Rheinland-Pfalz", "KVNO"]},
                               ["fach=Urologie,bereich=Abrechnung"])
SUBJECT = "Neue Abrechnungsziffer Urologie"
REPLAY = r"""
import json, os
from pathlib import Path
from nc_standin import oidc
from nc_standin.state import Store, SystemConfig
payload = json.loads(os.environ["CLAIMS"])
system = SystemConfig(Path("/var/www/html"), os.environ)
store = Store.connect(system.values)
provider = store.providers()[0]
oidc.provision(store, provider, payload)
store.commit()
"""


def _spec(name: str) -> PracticeSpec:
    return load_practice_spec(SAMPLE_FILES[name])


def _provision(e2e: Cli, name: str) -> dict[str, Any]:
    code, doc = e2e.json("provision", str(SAMPLE_FILES[name]), "--host", e2e.host, "--yes",
                         timeout=900)
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    return doc


def _login(e2e: Cli, keycloak: Settings, docker_engine: DockerEngine, doc: dict[str, Any],
           usernames: list[str]) -> None:
    """Real Keycloak login per user, then user_oidc's provisioning in the stand-in."""
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    slot = Slot.parse(doc["slot"])
    secret = FileSecretStore(e2e.state_dir / "secrets").require(realm_render.nextcloud_secret_path(slot))
    container = docker_engine.client.containers.get(f"{slot.id}-app")
    for username in usernames:
        user_id = kc.find_user_id(slot.realm, username)
        assert user_id, username
        kc.set_password(slot.realm, user_id, PASSWORD, temporary=False)
        user = kc.get_user(slot.realm, user_id)
        user["requiredActions"] = []
        kc.update_user(slot.realm, user_id, user)
        tokens = keycloak_login.password_login(keycloak, slot, "nextcloud", secret, username, PASSWORD)
        claims = jwt_claims(tokens["id_token"])
        assert "groups" in claims, sorted(claims)
        result = container.exec_run(
            ["python3", "-c", REPLAY], user="www-data", workdir="/var/www/html",
            environment={"PYTHONPATH": "/usr/src/nextcloud-standin",
                         "CLAIMS": json.dumps(claims)})
        assert result.exit_code == 0, result.output.decode()[-1000:]


def _occ(docker_engine: DockerEngine, slot_id: str, *args: str) -> str:
    result = docker_engine.client.containers.get(f"{slot_id}-app").exec_run(
        ["php", "occ", "--no-interaction", *args], user="www-data", workdir="/var/www/html")
    assert result.exit_code == 0, result.output.decode()[-500:]
    return str(result.output.decode())


def _seen_by(docker_engine: DockerEngine, doc: dict[str, Any], uid: str) -> tuple[list[str], int]:
    """(announcement subjects, announcementcenter notifications) as ``uid`` sees them through
    the practice's Nextcloud OCS API, logged in with an app password of that user."""
    out = _occ(docker_engine, doc["slot"], "user:auth-tokens:add", uid).splitlines()
    token = out[out.index("app password:") + 1].strip()
    # the published port changes when a container restarts: ask the engine
    base = f"http://127.0.0.1:{docker_engine.published_port(doc['slot'] + '-app', 80)}"
    headers = {"OCS-APIRequest": "true", "Accept": "application/json"}
    ann = requests.get(f"{base}/ocs/v2.php/apps/announcementcenter/api/v1/announcements",
                       auth=(uid, token), headers=headers, timeout=20)
    assert ann.status_code == 200, ann.text[:300]
    notes = requests.get(f"{base}/ocs/v2.php/apps/notifications/api/v2/notifications",
                         auth=(uid, token), headers=headers, timeout=20)
    assert notes.status_code == 200, notes.text[:300]
    subjects = [a["subject"] for a in ann.json()["ocs"]["data"]]
    mine = [n for n in notes.json()["ocs"]["data"] if n["app"] == "announcementcenter"]
    return subjects, len(mine)


def _expected(name: str, usernames: list[str]) -> set[str]:
    spec = _spec(name)
    return {p.username for p in spec.persons
            if p.username in usernames and TARGET.matches(audience.person_groups(p, spec))}


def _check_users(docker_engine: DockerEngine, doc: dict[str, Any], name: str,
                 usernames: list[str], *, shown: bool = True) -> int:
    want = _expected(name, usernames) if shown else set()
    for uid in usernames:
        subjects, notes = _seen_by(docker_engine, doc, uid)
        if uid in want:
            assert subjects.count(SUBJECT) == 1 and notes == 1, (name, uid, subjects, notes)
        else:
            assert SUBJECT not in subjects and notes == 0, (name, uid, subjects, notes)
    return len(want)


@pytest.fixture(scope="module")
def world(e2e: Cli, keycloak: Settings, docker_engine: DockerEngine) -> dict[str, Any]:
    docs = {n: _provision(e2e, n) for n in ("praxis-mueller", "zahnarzt-sonnenschein")}
    logins = {n: [p.username for p in _spec(n).persons] for n in docs}
    for name, doc in docs.items():
        _login(e2e, keycloak, docker_engine, doc, logins[name])
    return {"docs": docs, "logins": logins}


def test_groups_claim_reaches_the_platform_and_local_groups_survive(
    world: dict[str, Any], docker_engine: DockerEngine
) -> None:
    doc = world["docs"]["praxis-mueller"]
    groups = json.loads(_occ(docker_engine, doc["slot"], "group:list", "--output=json"))
    assert groups["admin"] == ["admin"]  # local group, untouched by the logins
    assert set(groups["kv-rlp"]) == set(world["logins"]["praxis-mueller"])
    assert set(groups["bereich-abrechnung"]) == {"anna.mueller", "sabine.hoffmann"}
    assert "fach-allgemeinmedizin" in groups and "rolle-mfa" in groups
    dental = world["docs"]["zahnarzt-sonnenschein"]
    assert "kzv-by" in json.loads(_occ(docker_engine, dental["slot"], "group:list",
                                       "--output=json"))


def test_send_reaches_exactly_the_matching_users_and_retry_the_stopped_platform(
    e2e: Cli, world: dict[str, Any], docker_engine: DockerEngine, keycloak: Settings
) -> None:
    docs, logins = world["docs"], world["logins"]
    code, plan = e2e.json("broadcast", "send", "--subject", SUBJECT, "--message",
                          "Ab 1. Januar gilt eine neue Ziffer.", *TARGET_ARGS, "--dry-run")
    assert code == 0 and plan["dry_run"] and sorted(plan["platforms"]) == sorted(docs)

    # the dental platform is down during the send
    dental = docker_engine.client.containers.get(f"{docs['zahnarzt-sonnenschein']['slot']}-app")
    dental.stop(timeout=10)
    started = time.monotonic()
    code, sent = e2e.json("broadcast", "send", "--subject", SUBJECT, "--message",
                          "Ab 1. Januar gilt eine neue Ziffer.", "--link",
                          "https://www.kbv.de/html/ebm.php", "--valid-days", "7",
                          *TARGET_ARGS, "--concurrency", "2")
    print(f"\nsend to 2 platforms (1 down): {time.monotonic() - started:.1f}s")
    assert code == 1, sent  # a platform failed
    by_name = {r["praxisname"]: r for r in sent["results"]}
    assert by_name["praxis-mueller"]["state"] == "delivered"
    assert by_name["praxis-mueller"]["recipients"] == 2  # anna.mueller, sabine.hoffmann
    assert by_name["zahnarzt-sonnenschein"]["state"] == "failed"
    world["broadcast"] = sent["broadcast"]
    assert _check_users(docker_engine, docs["praxis-mueller"], "praxis-mueller",
                        logins["praxis-mueller"]) == 2

    dental.start()
    wait_healthy(docker_engine, dental.name, timeout=240)
    retry = e2e("broadcast", "retry", sent["broadcast"])  # plain: with its progress line
    assert retry.returncode == 0, retry.stderr[-2000:]
    assert "[1/1] delivered to zahnarzt-sonnenschein: delivered (0 recipient(s))" in (
        retry.stderr), retry.stderr
    assert "1 of 1 platform(s) delivered" in retry.stdout
    code, listed = e2e.json("broadcast", "list")
    entry = next(b for b in listed["broadcasts"] if b["id"] == sent["broadcast"])
    states = {d["praxisname"]: (d["state"], d["recipients"]) for d in entry["deliveries"]}
    # KZV Bayern: nobody matches
    assert states == {"praxis-mueller": ("delivered", 2), "zahnarzt-sonnenschein": ("delivered", 0)}
    assert _check_users(docker_engine, docs["zahnarzt-sonnenschein"], "zahnarzt-sonnenschein",
                        logins["zahnarzt-sonnenschein"]) == 0
    # the platform evaluated, not the centre: two ZFAs work in Abrechnung, but in Bayern
    spec = _spec("zahnarzt-sonnenschein")
    assert any("bereich-abrechnung" in audience.person_groups(p, spec) for p in spec.persons)


def test_a_practice_provisioned_later_gets_it(
    e2e: Cli, world: dict[str, Any], docker_engine: DockerEngine, keycloak: Settings
) -> None:
    doc = _provision(e2e, "mvz-rheinaue")
    assert any("broadcasts" in s["name"] for s in doc["steps"]), doc["steps"]
    world["docs"]["mvz-rheinaue"] = doc
    spec = _spec("mvz-rheinaue")
    matching = sorted(_expected("mvz-rheinaue", [p.username for p in spec.persons]))
    assert len(matching) == 6, matching  # 2 urologists + 4 MFAs in Abrechnung
    others = [p.username for p in spec.persons if p.username not in matching][:8]
    users = matching + others
    world["logins"]["mvz-rheinaue"] = users
    _login(e2e, keycloak, docker_engine, doc, users)  # their first login, after delivery
    code, listed = e2e.json("broadcast", "list")
    entry = next(b for b in listed["broadcasts"] if b["id"] == world["broadcast"])
    mvz = next(d for d in entry["deliveries"] if d["praxisname"] == "mvz-rheinaue")
    assert mvz["state"] == "delivered" and mvz["recipients"] == 0  # nobody had logged in
    code, refreshed = e2e.json("broadcast", "retry", world["broadcast"], "--refresh")
    assert code == 0, refreshed
    counts = {r["praxisname"]: r["recipients"] for r in refreshed["results"]}
    assert counts == {"mvz-rheinaue": 6, "praxis-mueller": 2, "zahnarzt-sonnenschein": 0}
    assert _check_users(docker_engine, doc, "mvz-rheinaue", users) == 6
    # no second announcement or notification on the platforms already delivered
    assert _check_users(docker_engine, world["docs"]["praxis-mueller"], "praxis-mueller",
                        world["logins"]["praxis-mueller"]) == 2


def test_inventory_and_logs_hold_no_recipient_id(e2e: Cli, world: dict[str, Any]) -> None:
    usernames = {u for users in world["logins"].values() for u in users}
    assert len(usernames) > 20
    db = sqlite3.connect(e2e.state_dir / "inventory.sqlite3")
    dump = "\n".join(db.iterdump())
    db.close()
    assert world["broadcast"] in dump and SUBJECT in dump
    output = e2e.all_output()
    assert world["broadcast"] in output
    for uid in usernames:
        assert uid not in dump, uid
        assert uid not in output, uid


def test_retract_removes_it_everywhere(
    e2e: Cli, world: dict[str, Any], docker_engine: DockerEngine
) -> None:
    code, gone = e2e.json("broadcast", "retract", world["broadcast"], "--yes")
    assert code == 0, gone
    assert {r["state"] for r in gone["results"]} == {"retracted"} and len(gone["results"]) == 3
    for name, doc in world["docs"].items():
        _check_users(docker_engine, doc, name, world["logins"][name], shown=False)
        groups = json.loads(_occ(docker_engine, doc["slot"], "group:list", "--output=json"))
        assert f"news-{world['broadcast']}" not in groups
    code, _ = e2e.json("broadcast", "retry", world["broadcast"])
    assert code == 2 and "retracted" in e2e.runs[-1].stderr
