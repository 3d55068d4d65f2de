"""The slot bundle: deterministic, secret-free, golden-file tested (GP and dental sample).

Update the golden files after an intended change with
``SMARTPRAXX_UPDATE_GOLDEN=1 pytest tests/unit/test_render.py`` and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import AppChoice, PracticeSpec, PracticeType, Slot
from smartpraxx_provision.domain.ownership import LABEL_SLOT
from smartpraxx_provision.errors import UsageError
from smartpraxx_provision.operations.nextcloud_stack import write_bundle
from smartpraxx_provision.render import bundle as b
from smartpraxx_provision.secrets import FileSecretStore
from tests.fixtures.ci_policy import golden_update_requested

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

GP = PracticeSpec(
    praxisname="praxis-mueller",
    display_name="Hausarztpraxis Dr. Müller & Kollegen",
    practice_type=PracticeType.ARZTPRAXIS,
    kv="KV Nordrhein",
    specialties=("allgemeinmedizin",),
    order_id="SP-2026-0001",
    contact_email="praxis@example.org",
)
DENTAL = PracticeSpec(
    praxisname="zahnarzt-schulz",
    display_name="Zahnarztpraxis Schulz",
    practice_type=PracticeType.ZAHNARZTPRAXIS,
    kv="KZV Bayern",
    specialties=("zahnmedizin",),
    order_id="SP-2026-0002",
    contact_email="info@example.org",
    apps=AppChoice(talk=False, deck=True, passwords=False, forms=True),
)
SAMPLES = {
    "gp": (GP, Slot("cloud023", 7), "embedded"),
    "dental": (DENTAL, Slot("cloud104", 12), "production"),
}


def _settings(tmp_path: Path, profile: str) -> Settings:
    return load_settings(env={}, overrides={"profile": profile, "state_dir": str(tmp_path)})


def _render(name: str, tmp_path: Path) -> dict[str, bytes]:
    spec, slot, profile = SAMPLES[name]
    return b.render_slot_bundle(spec, slot, _settings(tmp_path, profile), b.slot_secret_refs(slot))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_bundle_matches_golden_files(name: str, tmp_path: Path) -> None:
    bundle = _render(name, tmp_path)
    folder = GOLDEN / f"bundle-{name}"
    if golden_update_requested():
        for old in sorted(folder.rglob("*"), reverse=True):
            if old.is_file():
                old.unlink()
        for rel, data in bundle.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
    on_disk = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    assert sorted(on_disk) == sorted(bundle), "set of files differs from the golden bundle"
    for rel, data in bundle.items():
        assert data == on_disk[rel], f"{rel} differs from {folder / rel}"


def test_render_is_byte_identical_twice_and_across_hash_seeds(tmp_path: Path) -> None:
    first = _render("gp", tmp_path)
    assert first == _render("gp", tmp_path / "other-state")  # state dir does not leak in
    assert list(first) == sorted(first)

    code = (
        "import hashlib,sys;from pathlib import Path;"
        "from tests.unit.test_render import _render;"
        "bd=_render('gp', Path(sys.argv[1]));"
        "print(hashlib.sha256(b''.join(k.encode()+v for k,v in bd.items())).hexdigest())"
    )
    digests = set()
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        digests.add(out.stdout.strip())
    expected = hashlib.sha256(b"".join(k.encode() + v for k, v in first.items())).hexdigest()
    assert digests == {expected}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_no_secret_values_only_references(name: str, tmp_path: Path) -> None:
    spec, slot, profile = SAMPLES[name]
    store = FileSecretStore(tmp_path / "secrets")
    refs = b.slot_secret_refs(slot)
    values = {path: store.ensure(path) for path in refs.values()}
    bundle = b.render_slot_bundle(spec, slot, _settings(tmp_path, profile), refs)
    blob = b"".join(bundle.values())
    for value in values.values():
        assert value.encode() not in blob
    referenced = set()
    for data in bundle.values():
        referenced |= set(b.secret_refs_in(data.decode()))
    assert referenced == set(refs.values())
    # neither the compose file nor any env file holds a secret reference: containers get
    # secrets as files (secrets/<name>), named by the images' *_FILE variables
    assert b.secret_refs_in(bundle["compose.yaml"].decode()) == []
    env_files = [p for p in bundle if p.startswith("env/")]
    assert env_files == ["env/app.env", "env/cron.env", "env/db.env", "env/redis.env"]
    for env_file in env_files:
        assert b.secret_refs_in(bundle[env_file].decode()) == [], env_file
        assert "PASSWORD=" not in bundle[env_file].decode().replace("PASSWORD_FILE=", "")
    app_env = b.parse_env(bundle["env/app.env"].decode())
    assert app_env["MYSQL_PASSWORD_FILE"] == "/run/secrets/db-password"
    assert app_env["NEXTCLOUD_ADMIN_PASSWORD_FILE"] == "/run/secrets/nc-admin"
    assert app_env["REDIS_HOST_PASSWORD_FILE"] == "/run/secrets/redis-password"
    db_env = b.parse_env(bundle["env/db.env"].decode())
    assert db_env["MARIADB_PASSWORD_FILE"] == "/run/secrets/db-password"
    assert db_env["MARIADB_ROOT_PASSWORD_FILE"] == "/run/secrets/db-root-password"
    # cron gets no admin and no DB password
    assert set(b.parse_env(bundle["env/cron.env"].decode())) & {
        "NEXTCLOUD_ADMIN_PASSWORD_FILE",
        "MYSQL_PASSWORD_FILE",
    } == set()

    # on disk (the operator's copy below the state dir): still references only, env and
    # secrets files 0600, the folder 0700, every file byte-identical to the render
    out = tmp_path / "out"
    write_bundle(bundle, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for key in ("db_password", "db_root_password", "redis_password", "nc_admin"):
        target = out / "secrets" / b.SECRET_NAMES[key]
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert target.read_text().strip() == f"<secret:{refs[key]}>"
        assert values[refs[key]] not in target.read_text()
    for rel, data in bundle.items():
        assert (out / rel).read_bytes() == data, rel
        if rel.startswith("env/"):
            assert stat.S_IMODE((out / rel).stat().st_mode) == 0o600


def test_secret_refs_must_be_paths_not_values(tmp_path: Path) -> None:
    spec, slot, profile = SAMPLES["gp"]
    refs = b.slot_secret_refs(slot)
    with pytest.raises(UsageError, match="db_password"):
        b.render_slot_bundle(
            spec, slot, _settings(tmp_path, profile), {**refs, "db_password": "Hunter 2!"}
        )
    del refs["redis_password"]
    with pytest.raises(UsageError, match="redis_password"):
        b.render_slot_bundle(spec, slot, _settings(tmp_path, profile), refs)


def test_compose_file_structure(tmp_path: Path) -> None:
    bundle = _render("gp", tmp_path)
    doc = yaml.safe_load(bundle["compose.yaml"])
    slot = SAMPLES["gp"][1]
    names = b.slot_names(slot)
    assert set(doc["services"]) == {"db", "redis", "app", "cron"}
    assert doc["networks"]["slot"]["name"] == names.network
    assert set(doc["volumes"]) == {names.db_volume, names.data_volume}
    for svc in doc["services"].values():
        assert "environment" not in svc  # secrets only through env_file
        assert svc["env_file"][0].startswith("env/")
        assert svc["labels"][LABEL_SLOT] == slot.id
        assert svc["mem_limit"]
        assert svc["restart"] == "unless-stopped"
        assert svc["networks"] == ["slot"]
    assert doc["services"]["app"]["ports"] == ["127.0.0.1::80"]
    assert doc["services"]["db"]["container_name"] == names.db
    assert "$$(cat /run/secrets/redis-password)" in doc["services"]["redis"]["command"][2]
    # every service: only its own secrets, no capability beyond the image's need, confined
    assert doc["secrets"] == {
        n: {"file": f"secrets/{n}"}
        for n in ("db-password", "db-root-password", "nc-admin", "redis-password")
    }
    assert doc["services"]["cron"]["secrets"] == ["redis-password"]
    assert doc["services"]["db"]["secrets"] == ["db-password", "db-root-password"]
    assert doc["services"]["db"]["user"] == "mysql"
    for role, svc in doc["services"].items():
        assert svc["cap_drop"] == ["ALL"] and svc["cap_add"] == list(b.CAP_ADD[role])
        assert svc["security_opt"] == ["no-new-privileges:true"]
        assert svc["pids_limit"] == 512 and svc["cpus"] == 1.0
    # the env files define what the containers get at launch
    app_env = b.parse_env(bundle["env/app.env"].decode())
    assert app_env["MYSQL_HOST"] == names.db
    assert app_env["REDIS_HOST"] == names.redis


def test_production_profile_without_local_idp_settings(tmp_path: Path) -> None:
    bundle = _render("dental", tmp_path)
    config = json.loads(bundle["nextcloud/config.json"])
    assert config["system"]["overwriteprotocol"] == "https"
    assert config["system"]["overwrite.cli.url"] == "https://nc12.cloud104.smartpraxx.de"
    assert "allow_local_remote_servers" not in config["system"]
    assert "allow_insecure_http" not in config["apps"]["user_oidc"]
    assert config["apps"]["user_oidc"]["allow_multiple_user_backends"] == "0"
    assert config["apps"]["theming"]["name"] == "Zahnarztpraxis Schulz"
    # the live proxy routes come from render/proxy.py (operations/routes.py), not the bundle
    assert not [path for path in bundle if path.startswith("proxy/")]


def test_apps_follow_the_order(tmp_path: Path) -> None:
    gp = b.desired_apps(GP)
    assert set(gp.enable) == {"spreed", "deck", "passwords", "forms", "user_oidc", "theming",
                              "announcementcenter"}
    assert "survey_client" in gp.disable and "firstrunwizard" in gp.disable
    dental = b.desired_apps(DENTAL)
    assert "spreed" in dental.disable and "passwords" in dental.disable
    assert "user_oidc" in dental.enable and "spreed" not in dental.enable
    assert not set(gp.enable) & set(gp.disable)


def test_oidc_options_use_stable_uid_and_discovery_url() -> None:
    opts = b.oidc_provider_options("http://127.0.0.1:8180/realms/nc07-cloud023/", "nextcloud")
    assert opts["--discoveryuri"] == (
        "http://127.0.0.1:8180/realms/nc07-cloud023/.well-known/openid-configuration"
    )
    assert opts["--unique-uid"] == "0"
    assert opts["--mapping-uid"] == "preferred_username"
    assert opts["--group-provisioning"] == "1"
    # only the realm's groups are managed at login; admin and news-* survive
    assert opts["--group-whitelist-regex"].startswith("/^(?:(?:kv|kzv|fach|rolle|bereich)-")
    assert not any("secret" in key for key in opts)


def test_secret_references_and_env_parsing() -> None:
    text = "A=<secret:practices/nc01-cloud001/x>\nB=plain\n# comment\n\n"
    assert b.secret_refs_in(text) == ["practices/nc01-cloud001/x"]
    assert b.parse_env(text) == {"A": "<secret:practices/nc01-cloud001/x>", "B": "plain"}
    with pytest.raises(ValueError, match="without '='"):
        b.parse_env("JUSTAKEY\n")
