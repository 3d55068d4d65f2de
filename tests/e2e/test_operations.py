"""Whole operations through the CLI against the real local stack (Docker engine, MariaDB,
Redis, Keycloak; the Nextcloud stand-in in place of a real Nextcloud).

The tests of this module build on each other in file order (one practice's life:
provision → converge → concurrency → rename → decommission), because a provision costs a
minute of real container start-up; each asserts its own outcome.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from smartpraxx_provision.adapters import keycloak_login
from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.adapters.keycloak_login import LoginRefused, jwt_claims
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack import mailsink
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.domain.ownership import LABEL_SLOT
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.render import realm as realm_render
from smartpraxx_provision.render.bundle import realm_issuer
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter import load_practice_spec

from .conftest import GP_SAMPLE, SAMPLES, Cli, slot_objects

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DENTAL_SAMPLE = SAMPLES / "zahnarztpraxis-sonnenschein.xlsx"
PROVISION_STEPS = (
    "allocate", "secrets", "realm+stack", "nextcloud", "routes", "smoke", "record",
    "broadcasts", "invite",
)
RENAME_STEPS = ("inventory", "realm-alias", "routes", "billing")
DECOMMISSION_STEPS = ("export", "verify", "stack", "realm", "secrets", "tombstone", "routes")


def _all_secrets(cli: Cli) -> list[str]:
    store = FileSecretStore(cli.state_dir / "secrets")
    return [v for p in store.list("") if (v := store.get(p))]


def _staff_data(sample: Path) -> list[str]:
    spec = load_practice_spec(sample)
    out: list[str] = []
    for p in spec.persons:
        # the surname alone is not checked: it may be part of the practice's public name
        out += [p.email, p.first_name + " " + p.last_name, p.username]
        out += [x for x in (p.lanr, *p.lanrs) if x]
    return [x for x in out if len(x) >= 4]


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_dry_run_changes_nothing(e2e: Cli, docker_engine: DockerEngine) -> None:
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--host", e2e.host, "--dry-run")
    assert code == 0, e2e.runs[-1].stderr
    plan = doc["plan"]
    assert plan["praxisname"] == "praxis-mueller"
    assert plan["state"] == "new"
    assert "user_oidc" in plan["apps"] and "spreed" in plan["apps"]
    assert sum(plan["persons_by_role"].values()) == 8
    code, listing = e2e.json("practices", "list", "--all")
    assert code == 0
    assert listing["practices"] == [] if isinstance(listing, dict) else listing == []
    assert not [c for c in docker_engine.client.containers.list(all=True) if e2e.host in c.name]


def test_provision_end_to_end(e2e: Cli, docker_engine: DockerEngine, keycloak: Settings) -> None:
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--host", e2e.host, "--yes")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    assert doc["ok"] is True
    assert re.fullmatch(rf"nc\d\d-{e2e.host}", doc["slot"])
    assert doc["nextcloud_standin"] is True
    assert doc["smoke"]["ok"] is True, doc["smoke"]
    assert {c["check"] for c in doc["smoke"]["checks"]} == {
        "nextcloud-status",
        "oidc-discovery",
        "oidc-client",
        "apps",
        "login",
    }
    assert [s["name"] for s in doc["steps"]][-3:] == [
        "record seats and billing event", "still-valid broadcasts",
        "invitation mails to new staff"]
    assert doc["invitations"] == {"sent": 8, "already_invited": 0, "set_up": 0, "failed": 0,
                                  "errors": []}
    assert doc["billable_seats"] == 3
    assert doc["urls"]["start_page"].endswith("/praxis-mueller")
    objects = slot_objects(docker_engine, doc["slot"])
    assert objects["containers"] == sorted(
        f"{doc['slot']}-{r}" for r in ("app", "cron", "db", "redis")
    )
    assert len(objects["volumes"]) == 2 and len(objects["networks"]) == 1
    # the human output says the stand-in is used
    human = e2e("status", "praxis-mueller")
    assert human.returncode == 0, human.stdout + human.stderr
    assert "running" in human.stdout
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    users = [u for u in kc.users(doc["realm"]) if not u["username"].startswith("smartpraxx-smoke")]
    assert len(users) == 8


def _live_state(
    cli: Cli, engine: DockerEngine, kc: KeycloakAdapter, slot: str
) -> dict[str, object]:
    """What a no-op must leave as it was, read from the live systems: the slot's containers
    (id and start time: a re-created or restarted one differs), volumes, network, the realm's
    representation, its users (smoke users come and go) and clients (secrets left out of any
    assertion message), and each secret file of the store (content hash and mtime: a rewrite
    re-encrypts with a fresh nonce)."""
    labels = {LABEL_SLOT: slot}
    containers = {
        c.name: (c.id, engine.client.containers.get(c.id).attrs["State"]["StartedAt"])
        for c in engine.list_containers(labels)
    }
    users = sorted(
        (u for u in kc.users(slot) if not str(u["username"]).startswith("smartpraxx-smoke")),
        key=lambda u: str(u["username"]),
    )
    clients = sorted(
        ({k: v for k, v in c.items() if k != "secret"} for c in kc.clients(slot)),
        key=lambda c: str(c.get("clientId")),
    )
    secret_files = {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted((cli.state_dir / "secrets").glob("*.enc"))
    }
    return {
        "containers": containers,
        "volumes": [v.name for v in engine.list_volumes(labels)],
        "networks": [(n.name, n.id) for n in engine.list_networks(labels)],
        "realm": kc.get_realm(slot),
        "users": users,
        "clients": clients,
        "secrets": secret_files,
    }


def _assert_unchanged(before: dict[str, object], after: dict[str, object]) -> None:
    for key in before:
        assert after[key] == before[key], f"{key} changed"


def test_second_run_changes_nothing(
    e2e: Cli, docker_engine: DockerEngine, keycloak: Settings
) -> None:
    code, listing = e2e.json("status", "praxis-mueller")
    assert code == 0, e2e.runs[-1].stderr
    slot = listing["practices"][0]["slot"]
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    before = _live_state(e2e, docker_engine, kc, slot)
    assert len(before["containers"]) == 4 and before["realm"]  # type: ignore[arg-type]
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--yes")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    _assert_unchanged(before, _live_state(e2e, docker_engine, kc, slot))
    assert doc["no_changes"] is True, doc
    assert doc["occ_calls"] <= 3
    # nothing changed and the last smoke passed: the read-only checks ran, the logins
    # (which create and delete a throwaway user) did not
    assert doc["smoke"]["ok"] and doc["smoke"]["skipped"] == ["login", "nextcloud-login"]
    assert {c["check"] for c in doc["smoke"]["checks"]} == {
        "nextcloud-status", "oidc-discovery", "oidc-client", "apps"}
    # the dry run lists the occ changes a different setting would make, and makes none
    code, doc = e2e.json("--set", "domain=example.net", "provision", str(GP_SAMPLE), "--dry-run")
    assert code == 0, e2e.runs[-1].stderr
    assert "config system.trusted_domains set" in doc["plan"]["occ_changes"]
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--dry-run")
    assert doc["plan"]["occ_changes"] == "none"


def _occ(engine: DockerEngine, slot: str, *args: str) -> str:
    """``php occ`` in the slot's app container as www-data (test set-up, not the door)."""
    result = engine.exec(f"{slot}-app", ["php", "occ", "--no-interaction", *args],
                         user="www-data", workdir="/var/www/html")
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.stdout


def test_smoke_checks_the_tools_own_login_provider(
    e2e: Cli, docker_engine: DockerEngine, keycloak: Settings
) -> None:
    """Another user_oidc provider listed before ours (pointing at nothing): the smoke still
    checks ours, Praxis-Login, by its identifier, not the first one in the list."""
    code, listing = e2e.json("status", "praxis-mueller")
    slot = listing["practices"][0]["slot"]
    _occ(docker_engine, slot, "user_oidc:provider", "Anderer-Login", "--clientid=anderer",
         "--clientsecret=nicht-benutzt",
         "--discoveryuri=http://127.0.0.1:9/.well-known/openid-configuration")
    _occ(docker_engine, slot, "user_oidc:provider:delete", "Praxis-Login", "--force")
    try:
        code, doc = e2e.json("provision", str(GP_SAMPLE), "--yes")  # re-creates ours, 2nd
        assert code == 0, e2e.runs[-1].stderr[-3000:]
        order = [json.loads(line)["identifier"] for line in
                 _occ(docker_engine, slot, "user_oidc:providers", "--output=json").splitlines()
                 if line.strip()]
        assert order == ["Anderer-Login", "Praxis-Login"], order
        checks = {c["check"]: c for c in doc["smoke"]["checks"]}
        assert checks["oidc-discovery"]["ok"], checks["oidc-discovery"]
        assert f"/realms/{slot}" in checks["oidc-discovery"]["detail"]
    finally:
        _occ(docker_engine, slot, "user_oidc:provider:delete", "Anderer-Login", "--force")
    code, smoke = e2e.json("smoke", "praxis-mueller")
    assert code == 0 and smoke["ok"], smoke


def _mails_to(sink: Settings, address: str) -> int:
    return sum(address in m["to"] for m in mailsink.list_messages(sink))


def test_each_staff_member_invited_once_resend_sends_one_more(
    e2e: Cli, mail_sink: Settings
) -> None:
    spec = load_practice_spec(GP_SAMPLE)
    # provision and its no-op re-run (the tests above) sent exactly one invitation each
    assert {p.email: _mails_to(mail_sink, p.email) for p in spec.persons} == {
        p.email: 1 for p in spec.persons
    }
    code, doc = e2e.json("provision", str(GP_SAMPLE), "--yes")
    assert code == 0 and doc["invitations"]["sent"] == 0
    assert doc["invitations"]["already_invited"] == len(spec.persons)
    staff = spec.persons[2]
    code, plan = e2e.json("invite", "resend", "praxis-mueller", staff.username, "--dry-run")
    assert code == 0 and plan["dry_run"] is True and _mails_to(mail_sink, staff.email) == 1
    code, sent = e2e.json("invite", "resend", "praxis-mueller", staff.username)
    assert code == 0 and sent["sent"] is True, e2e.runs[-1].stderr
    assert _mails_to(mail_sink, staff.email) == 2
    assert sum(_mails_to(mail_sink, p.email) for p in spec.persons) == len(spec.persons) + 1
    proc = e2e("invite", "resend", "praxis-mueller", "niemand.hier")
    assert proc.returncode == 2 and "no user with that username" in proc.stderr
    for run in e2e.runs[-4:]:  # the operator's output names nobody
        for value in _staff_data(GP_SAMPLE):
            assert value not in run.stdout + run.stderr
    box = mailsink.mailbox_dir(mail_sink)
    assert box.stat().st_mode & 0o777 == 0o700


def test_no_staff_data_or_secret_outside_the_realm_and_store(e2e: Cli) -> None:
    secrets_ = _all_secrets(e2e)
    assert len(secrets_) >= 6
    staff = _staff_data(GP_SAMPLE)
    for path in _files_under(e2e.state_dir):
        if path.parent.name == "secrets" and path.suffix == ".enc":
            continue  # the encrypted store itself
        data = path.read_bytes()
        for value in secrets_:
            assert value.encode() not in data, f"a secret in plaintext in {path}"
        for value in staff:
            assert value.encode() not in data, f"staff data in {path}"
    output = e2e.all_output()
    for value in secrets_:
        assert value not in output, "a secret reached the command output"


def test_two_concurrent_runs_one_wins(e2e: Cli) -> None:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smartpraxx_provision.cli",
                "provision",
                str(GP_SAMPLE),
                "--yes",
            ],
            env=e2e.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "operation" in loser and "running" in loser, loser


def test_smtp_down_fails_only_the_invite_step(e2e: Cli, mail_sink: Settings) -> None:
    """Mails that cannot be sent: everything else is done, exit 1 names the next command;
    the re-runs below (SMTP back) send the missing invitations."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    spec = load_practice_spec(DENTAL_SAMPLE)
    code, doc = e2e.json("provision", str(DENTAL_SAMPLE), "--host", e2e.host, "--yes",
                         extra_env={"SMARTPRAXX_SMTP_PORT": str(closed)})
    assert code == 1, e2e.runs[-1].stderr[-2000:]
    err = doc["error"]
    assert err["details"]["invitations"]["failed"] == len(spec.persons)
    assert f"invite resend {spec.praxisname}" in err["next"]
    assert f"127.0.0.1:{closed}" in err["message"]
    code, status = e2e.json("status", spec.praxisname)
    # active (it serves), but degraded: the failed operation needs ops (exit 3)
    assert code == 3 and status["practices"][0]["state"] == "active"
    assert status["practices"][0]["last_operation"]["state"] == "failed"
    verdict = status["practices"][0]["verdict"]
    assert verdict["verdict"] == "degraded"
    assert any("provision failed in step invite" in r for r in verdict["reasons"]), verdict
    assert all(_mails_to(mail_sink, p.email) == 0 for p in spec.persons)


def test_crash_at_every_step_boundary_then_resume(
    e2e: Cli, docker_engine: DockerEngine, mail_sink: Settings
) -> None:
    """SIGKILL after each provision step in turn; every re-run resumes; one slot, no orphans."""
    slots: set[str] = set()
    for step in PROVISION_STEPS:
        proc = e2e(
            "provision",
            str(DENTAL_SAMPLE),
            "--host",
            e2e.host,
            "--yes",
            extra_env={"SMARTPRAXX_CRASH_AT": f"provision:{step}:after"},
        )
        assert proc.returncode == -9, (step, proc.returncode, proc.stderr[-2000:])
    code, doc = e2e.json("provision", str(DENTAL_SAMPLE), "--yes")
    assert code == 0, e2e.runs[-1].stderr[-3000:]
    assert doc["smoke"]["ok"] is True
    slots.add(doc["slot"])
    # the invitations the failed run above could not send went out exactly once
    spec = load_practice_spec(DENTAL_SAMPLE)
    assert all(_mails_to(mail_sink, p.email) == 1 for p in spec.persons)
    code, listing = e2e.json("practices", "list")
    names = [p["praxisname"] for p in listing["practices"]]
    assert names.count(doc["praxisname"]) == 1
    objects = slot_objects(docker_engine, doc["slot"])
    assert len(objects["containers"]) == 4 and len(objects["volumes"]) == 2
    # a crash before a step, then a converge that finds nothing to do
    proc = e2e(
        "provision",
        str(DENTAL_SAMPLE),
        "--yes",
        extra_env={"SMARTPRAXX_CRASH_AT": "provision:nextcloud:before"},
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    code, doc = e2e.json("provision", str(DENTAL_SAMPLE), "--yes")
    assert code == 0 and doc["no_changes"] is True, doc
    # a crash at every boundary (also right after the record step) billed exactly once
    settings = load_settings(env={}, overrides={"state_dir": str(e2e.state_dir)})
    with open_inventory(settings) as inv:
        assert [e.kind for e in inv.list_events(spec.praxisname, kind="provisioned")] == [
            "provisioned"
        ]


def _cli_settings(cli: Cli) -> Settings:
    """The settings the CLI children run with (same Keycloak, domain and state dir)."""
    return load_settings(env={k: v for k, v in cli.env.items() if k.startswith("SMARTPRAXX_")})


def _staff_login(cli: Cli, slot: str, username: str, password: str) -> dict[str, object]:
    """A real authorization-code login of a staff member through the practice's Nextcloud
    client (Keycloak's login form, the code exchanged at the token endpoint)."""
    settings = _cli_settings(cli)
    the_slot = Slot.parse(slot)
    secret = FileSecretStore(cli.state_dir / "secrets").require(
        realm_render.nextcloud_secret_path(the_slot)
    )
    return keycloak_login.password_login(
        settings, the_slot, realm_render.NEXTCLOUD_CLIENT, secret, username, password
    )


def _staff_view(kc: KeycloakAdapter, realm: str) -> dict[str, tuple[str, list[str]]]:
    """username -> (user id, ids+creation times of the password credentials)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for user in kc.users(realm):
        if str(user["username"]).startswith("smartpraxx-smoke"):
            continue
        creds = kc.request("GET", f"admin/realms/{realm}/users/{user['id']}/credentials",
                           what="read credentials")
        out[str(user["username"])] = (
            str(user["id"]),
            sorted(f"{c['id']}@{c.get('createdDate')}" for c in creds if c["type"] == "password"),
        )
    return out


def test_rename_keeps_slot_realm_and_users(e2e: Cli, keycloak: Settings) -> None:
    code, before = e2e.json("status", "praxis-mueller")
    assert code == 0
    slot = before["practices"][0]["slot"]
    # a staff member who set a password before the rename (as the invitation's form does:
    # a password of their own, no required action left)
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    staff = load_practice_spec(GP_SAMPLE).persons[0].username
    user_id = kc.find_user_id(slot, staff)
    assert user_id is not None
    password = f"Vor-Umbenennung-{secrets.token_urlsafe(12)}-7b"
    kc.set_password(slot, user_id, password, temporary=False)
    kc.update_user(slot, user_id, {"requiredActions": []})
    assert _staff_login(e2e, slot, staff, password).get("id_token")
    with pytest.raises(LoginRefused):
        _staff_login(e2e, slot, staff, password + "x")  # the control: a wrong one is refused
    staff_before = _staff_view(kc, slot)
    assert staff_before[staff][1], "the password credential is there"
    proc = e2e("rename", "praxis-mueller", "praxis-mueller-neu")
    assert proc.returncode == 2 and "--confirm-fee" in proc.stderr
    code, dry = e2e.json("rename", "praxis-mueller", "praxis-mueller-neu", "--dry-run")
    assert code == 0 and dry["plan"]["slot (kept)"] == slot
    code, still = e2e.json("status", "praxis-mueller")
    assert code == 0 and still["practices"][0]["praxisname"] == "praxis-mueller"
    # SIGKILL after each step in turn; the same command resumes every time
    for step in RENAME_STEPS:
        proc = e2e(
            "rename",
            "praxis-mueller",
            "praxis-mueller-neu",
            "--confirm-fee",
            "--yes",
            extra_env={"SMARTPRAXX_CRASH_AT": f"rename:{step}:after"},
        )
        assert proc.returncode == -9, (step, proc.stderr[-3000:])
    code, doc = e2e.json("rename", "praxis-mueller", "praxis-mueller-neu", "--confirm-fee", "--yes")
    assert code == 0, e2e.runs[-1].stderr
    assert doc["slot"] == slot and doc["realm"] == slot
    routes = (e2e.state_dir / "proxy" / "identity-routes.caddy").read_text()
    assert "/praxis-mueller-neu" in routes and "/praxis-mueller" in routes
    pages = e2e.state_dir / "proxy" / "startseiten"
    assert not (pages / "praxis-mueller").exists()  # the old path only redirects
    page = (pages / "praxis-mueller-neu" / "index.html").read_text()
    assert '"page_url": "' + doc["start_page"] + '/"' in page
    realm = kc.get_realm(slot)
    assert realm is not None
    assert realm["attributes"]["smartpraxx.praxisname"] == "praxis-mueller-neu"
    # the same users (ids), the same password credentials, and the password still works
    assert _staff_view(kc, slot) == staff_before
    claims = jwt_claims(str(_staff_login(e2e, slot, staff, password)["id_token"]))
    assert claims.get("preferred_username") == staff
    assert claims.get("iss") == realm_issuer(_cli_settings(e2e), Slot.parse(slot))
    code, smoke = e2e.json("smoke", "praxis-mueller-neu")
    assert code == 0 and smoke["ok"], smoke


def test_decommission_refuses_without_a_verified_export(
    e2e: Cli, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    code, listing = e2e.json("status", "zahnarzt-sonnenschein")
    assert code == 0, e2e.runs[-1].stderr
    slot = listing["practices"][0]["slot"]
    docker_engine.stop_container(f"{slot}-db")
    try:
        proc = e2e("decommission", "zahnarzt-sonnenschein", "--export-to", str(tmp_path), "--yes")
        assert proc.returncode == 1
        assert "nothing was deleted" in proc.stderr
        objects = slot_objects(docker_engine, slot)
        assert len(objects["containers"]) == 4 and len(objects["volumes"]) == 2
        assert not list(tmp_path.glob("*.tar"))
    finally:
        docker_engine.start_container(f"{slot}-db")


def test_decommission_exports_then_deletes_and_tombstones(
    e2e: Cli, docker_engine: DockerEngine, keycloak: Settings, tmp_path: Path
) -> None:
    code, listing = e2e.json("status", "praxis-mueller-neu")
    slot = listing["practices"][0]["slot"]
    kc = KeycloakAdapter.from_settings(keycloak, FileSecretStore(keycloak.secrets_dir))
    before = _live_state(e2e, docker_engine, kc, slot)
    code, dry = e2e.json(
        "decommission", "praxis-mueller-neu", "--export-to", str(tmp_path), "--dry-run"
    )
    assert code == 0 and f"container {slot}-db" in dry["plan"]["then delete"]
    bundle = e2e.state_dir / "slots" / slot
    assert (bundle / "compose.yaml").is_file(), "provision left the slot's bundle to inspect"
    # the dry run touched neither the stack, nor the realm (its users), nor the secret store
    _assert_unchanged(before, _live_state(e2e, docker_engine, kc, slot))
    assert (
        not list(tmp_path.iterdir()) and len(slot_objects(docker_engine, slot)["containers"]) == 4
    )
    for step in DECOMMISSION_STEPS:
        proc = e2e(
            "decommission",
            "praxis-mueller-neu",
            "--export-to",
            str(tmp_path),
            "--yes",
            extra_env={"SMARTPRAXX_CRASH_AT": f"decommission:{step}:after"},
        )
        assert proc.returncode == -9, (step, proc.stderr[-3000:])
    code, doc = e2e.json(
        "decommission", "praxis-mueller-neu", "--export-to", str(tmp_path), "--yes"
    )
    assert code == 0, e2e.runs[-1].stderr
    export = Path(doc["export"]["path"])
    assert export.is_file() and doc["export"]["verified"]
    with tarfile.open(export) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert set(manifest["files"]) == {"db.sql", "data.tar", "realm.json"}
    assert slot_objects(docker_engine, slot) == {"containers": [], "volumes": [], "networks": []}
    assert not bundle.exists(), "the slot's bundle folder went with its stack"
    assert kc.get_realm(slot) is None
    assert FileSecretStore(e2e.state_dir / "secrets").list(f"practices/{slot}") == []
    code, listing = e2e.json("practices", "list", "--all")
    states = {p["praxisname"]: p["state"] for p in listing["practices"]}
    assert states["praxis-mueller-neu"] == "tombstoned"
    # the name stays taken, the slot is never handed out again
    proc = e2e("provision", str(GP_SAMPLE), "--yes")
    assert proc.returncode == 1 and "praxis-mueller" in proc.stderr, proc.stderr
    inv = open_inventory(load_settings(env={}, overrides={"state_dir": str(e2e.state_dir)}))
    fresh = inv.allocate_practice(
        "praxis-danach",
        order_id="SP-TEST-1",
        display_name="Praxis danach",
        kv="KV Berlin",
        specialties=("allgemeinmedizin",),
        billable_seats=1,
        host=e2e.host,
    )
    used = {p["slot"] for p in listing["practices"]}
    assert fresh.slot.id not in used and fresh.slot.number > max(
        int(s[2:4]) for s in used if s.endswith(e2e.host)
    )
