"""The Nextcloud stand-in image (a TEST DOUBLE of the official nextcloud image) on the real
Docker engine, against real MariaDB and Redis containers of the locally built images.

Proves: it installs into its own database (rows checked with the mariadb client in the DB
container), refuses to install with a wrong DB or Redis password (logs, exit 1), ``occ``
rejects an unknown command and an unknown option exactly like occ and accepts a
representative set of real invocations, occ refuses root, ``/status.php`` and the OCS
capabilities answer on the published port, and the state survives re-creating the container
on the same volume. Everything is removed afterwards (unique prefix and labels).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from smartpraxx_provision.adapters.docker_engine import ContainerSpec, DockerEngine, ExecResult
from smartpraxx_provision.errors import ExternalServiceError
from smartpraxx_provision.secrets.base import generate_token
from tests.fixtures.docker_wait import wait_healthy
from tests.fixtures.stack import DockerScratch, new_scratch

pytestmark = pytest.mark.integration

HEALTH_TIMEOUT = 120.0
EXIT_TIMEOUT = 60.0


def _password() -> str:
    # the product's generator: a value starting with "-" is an unknown option to occ
    # (``--admin-pass -x...``), for the stand-in as for real Symfony Console
    return generate_token(16) + "'\"$x"


@dataclass
class Stack:
    scratch: DockerScratch
    images: dict[str, str]
    net: str
    db: str
    redis: str
    app: str
    data: str
    db_password: str
    redis_password: str
    admin_password: str

    @property
    def engine(self) -> DockerEngine:
        return self.scratch.engine

    def app_env(self, **override: str) -> dict[str, str]:
        env = {
            "NEXTCLOUD_ADMIN_USER": "admin",
            "NEXTCLOUD_ADMIN_PASSWORD": self.admin_password,
            "MYSQL_HOST": "db",
            "MYSQL_DATABASE": "nextcloud",
            "MYSQL_USER": "nextcloud",
            "MYSQL_PASSWORD": self.db_password,
            "REDIS_HOST": "redis",
            "REDIS_HOST_PASSWORD": self.redis_password,
            "NEXTCLOUD_TRUSTED_DOMAINS": "nc07.cloud023.smartpraxx.de",
            "OVERWRITEPROTOCOL": "https",
            "OVERWRITECLIURL": "https://nc07.cloud023.smartpraxx.de",
        }
        env.update(override)
        return env

    def start_app(self, name: str, volume: str, env: dict[str, str]) -> None:
        self.engine.ensure_container(
            ContainerSpec(
                name=name,
                image=self.images["nextcloud-standin"],
                env=env,
                labels=dict(self.scratch.labels),
                network=self.net,
                volumes={volume: "/var/www/html"},
                ports={80: 0},
                restart_policy="no",
            )
        )

    def occ(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
            user: str | None = "www-data") -> ExecResult:
        return self.engine.exec(self.app, ["php", "occ", *args], user=user, env=env,
                                workdir="/var/www/html", stdin=stdin, timeout=60)

    def sql(self, query: str) -> ExecResult:
        return self.engine.exec(
            self.db, ["mariadb", "--connect-timeout=5", "-u", "nextcloud", "-N", "nextcloud",
                      "-e", query],
            env={"MYSQL_PWD": self.db_password}, timeout=30,
        )


def _exit_code(engine: DockerEngine, name: str) -> int:
    deadline = time.monotonic() + EXIT_TIMEOUT
    for _ in range(int(EXIT_TIMEOUT / 0.5) + 1):
        state = engine.client.containers.get(name).attrs["State"]
        if state["Status"] in ("exited", "dead"):
            return int(state["ExitCode"])
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    raise AssertionError(f"{name} still running after {EXIT_TIMEOUT:g}s:\n"
                         + engine.logs(name, tail=40))


@pytest.fixture(scope="module")
def stack(docker_engine: DockerEngine, local_images: dict[str, str]) -> Iterator[Stack]:
    if "nextcloud-standin" not in local_images:
        pytest.fail("the Nextcloud stand-in image was not built (sources missing?)")
    scratch = new_scratch(docker_engine)
    try:
        s = Stack(scratch, local_images, scratch.name("net"), scratch.name("db"),
                  scratch.name("redis"), scratch.name("app"), scratch.name("appdata"),
                  _password(), _password(), _password())
        docker_engine.ensure_network(s.net, scratch.labels)
        common: dict[str, Any] = {"labels": dict(scratch.labels), "restart_policy": "no",
                                  "network": s.net}
        docker_engine.ensure_container(ContainerSpec(
            name=s.db, image=local_images["mariadb"], aliases=("db",),
            env={"MARIADB_RANDOM_ROOT_PASSWORD": "1", "MARIADB_DATABASE": "nextcloud",
                 "MARIADB_USER": "nextcloud", "MARIADB_PASSWORD": s.db_password},
            volumes={scratch.name("dbdata"): "/var/lib/mysql"}, **common))
        docker_engine.ensure_container(ContainerSpec(
            name=s.redis, image=local_images["redis"], aliases=("redis",),
            env={"REDIS_PASSWORD": s.redis_password}, **common))
        wait_healthy(docker_engine, s.db, HEALTH_TIMEOUT)
        wait_healthy(docker_engine, s.redis, HEALTH_TIMEOUT)
        s.start_app(s.app, s.data, s.app_env())
        wait_healthy(docker_engine, s.app, HEALTH_TIMEOUT)
        yield s
    finally:
        scratch.cleanup()


def _http(port: int, path: str, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


# --- install -------------------------------------------------------------------------------


def test_installs_into_its_own_database(stack: Stack) -> None:
    users = stack.sql("SELECT uid FROM oc_users")
    assert users.exit_code == 0, users.stderr
    assert users.stdout.split() == ["admin"]
    apps = stack.sql("SELECT appid FROM oc_appconfig WHERE configkey = 'enabled' "
                     "AND configvalue = 'yes' ORDER BY appid")
    assert {"user_oidc", "deck", "forms", "theming"} <= set(apps.stdout.split())
    logs = stack.engine.logs(stack.app, tail=50)
    assert "NEXTCLOUD STAND-IN" in logs and "Nextcloud was successfully installed" in logs
    assert "Installing with MySQL database" in logs
    # every value is Nextcloud's view: install-time config plus the environment overlay
    res = stack.occ("config:list", "system", "--private", "--output=json")
    system = json.loads(res.stdout)["system"]
    assert system["dbhost"] == "db" and system["dbpassword"] == stack.db_password
    assert system["trusted_domains"] == ["localhost", "nc07.cloud023.smartpraxx.de"]
    assert system["redis"] == {"host": "redis", "password": stack.redis_password, "port": 6379}
    assert system["overwriteprotocol"] == "https"
    assert system["overwrite.cli.url"] == "https://nc07.cloud023.smartpraxx.de"
    assert system["memcache.locking"] == "\\OC\\Memcache\\Redis"


def test_image_is_labelled_as_a_test_double(stack: Stack) -> None:
    image = stack.engine.client.images.get(stack.images["nextcloud-standin"])
    assert image.labels["de.smartpraxx.test-double"] == "nextcloud"


def test_status_php_and_capabilities_on_the_published_port(stack: Stack) -> None:
    port = stack.engine.published_port(stack.app, 80)
    code, headers, body = _http(port, "/status.php")
    assert code == 200 and headers["X-Smartpraxx-Standin"] == "nextcloud"
    status = json.loads(body)
    assert status["installed"] is True and status["maintenance"] is False
    code, _, body = _http(port, "/status.php", {"Host": "attacker.example"})
    assert code == 400 and json.loads(body)["code"] == 15
    url = "/ocs/v2.php/cloud/capabilities?format=json"
    assert _http(port, url)[0] == 412
    code, _, body = _http(port, url, {"OCS-APIRequest": "true"})
    assert code == 200
    caps = json.loads(body)["ocs"]["data"]["capabilities"]
    assert {"core", "theming", "deck", "forms"} <= set(caps)
    # no provider configured yet: the login page itself (real user_oidc redirects only when
    # exactly one provider exists)
    assert _http(port, "/index.php/login")[0] == 200


@pytest.mark.parametrize("broken", ["db", "redis"])
def test_refuses_to_install_with_a_wrong_password(stack: Stack, broken: str) -> None:
    name = stack.scratch.name(f"bad-{broken}")
    wrong = {"MYSQL_PASSWORD": "wrong-password"} if broken == "db" else {
        "REDIS_HOST_PASSWORD": "wrong-password"}
    env = stack.app_env(NEXTCLOUD_STANDIN_INSTALL_RETRIES="1",
                        NEXTCLOUD_STANDIN_INSTALL_DELAY="0.5", **wrong)
    stack.start_app(name, stack.scratch.name(f"bad-{broken}-data"), env)
    with pytest.raises(ExternalServiceError) as err:
        wait_healthy(stack.engine, name, HEALTH_TIMEOUT)
    assert "Installing of nextcloud failed!" in err.value.details["logs"]
    assert _exit_code(stack.engine, name) == 1
    logs = stack.engine.logs(name, tail=40)
    expected = ("MySQL username and/or password not valid" if broken == "db"
                else "RedisException: WRONGPASS")
    assert expected in logs
    assert logs.count("Starting nextcloud installation") == 1
    assert logs.count("Retrying install...") == 1
    assert "wrong-password" not in logs
    # the slot's own install is untouched
    assert stack.sql("SELECT COUNT(*) FROM oc_users").stdout.split() == ["1"]


# --- occ -----------------------------------------------------------------------------------


def test_occ_rejects_an_unknown_command_like_occ(stack: Stack) -> None:
    res = stack.occ("frobnicate")
    assert (res.exit_code, res.stdout) == (1, "")
    assert res.stderr == (
        "\n" + " " * 40 + '\n  Command "frobnicate" is not defined.  \n' + " " * 40 + "\n\n"
    )
    res = stack.occ("talk:signaling:list")  # Talk's commands are not in the captured surface
    assert res.exit_code == 1
    assert 'There are no commands defined in the "talk:signaling" namespace.' in res.stderr


def test_occ_rejects_an_unknown_option_like_occ(stack: Stack) -> None:
    res = stack.occ("config:system:get", "trusted_domains", "--frobnicate")
    assert (res.exit_code, res.stdout) == (1, "")
    lines = res.stderr.split("\n")
    assert lines[2] == '  The "--frobnicate" option does not exist.  '
    assert lines[5].startswith("config:system:get [--output [OUTPUT]] [--default-value")
    res = stack.occ("user_oidc:provider", "keycloak", "--client-secret=x")
    assert res.exit_code == 1
    assert 'The "--client-secret" option does not exist.' in res.stderr


def test_occ_refuses_other_users(stack: Stack) -> None:
    res = stack.occ("status", user="root")
    assert res.exit_code == 1
    assert res.stdout.startswith(
        "Console has to be executed with the user that owns the file config/config.php")
    res = stack.engine.exec(stack.app, ["php", "index.php"], user="www-data",
                            workdir="/var/www/html")
    assert res.exit_code == 1 and "Could not open input file: index.php" in res.stderr


REPRESENTATIVE = [
    ("status", "--output=json"),
    ("check",),
    ("config:system:set", "default_phone_region", "--value=DE"),
    ("config:system:set", "trusted_domains", "2", "--value=nc07.internal"),
    ("config:system:set", "maintenance_window_start", "--value=1", "--type=integer"),
    ("config:system:get", "trusted_domains", "--output=json"),
    ("config:app:set", "user_oidc", "allow_multiple_user_backends", "--value=0"),
    ("config:app:get", "user_oidc", "allow_multiple_user_backends"),
    ("app:enable", "user_oidc", "spreed", "deck", "forms", "passwords"),
    ("app:disable", "firstrunwizard", "survey_client"),
    ("app:list", "--output=json"),
    ("theming:config", "name", "Hausarztpraxis Müller"),
    ("background:cron",),
    ("user:add", "--password-from-env", "--display-name=Probe", "--group=praxis", "probe"),
    ("group:list", "--output=json"),
    ("user:list", "--output=json"),
    ("db:add-missing-indices",),
    ("maintenance:repair", "--include-expensive"),
    ("files:scan", "--all"),
    ("-n", "config:list", "--private"),
]


def test_occ_accepts_a_representative_set_from_the_reference(stack: Stack) -> None:
    for args in REPRESENTATIVE:
        res = stack.occ(*args, env={"OC_PASS": stack.admin_password})
        assert res.exit_code == 0, (args, res.stdout, res.stderr)
    assert stack.occ("config:app:get", "user_oidc", "allow_multiple_user_backends").stdout == (
        "0\n")
    apps = json.loads(stack.occ("app:list", "--output=json").stdout)
    assert {"spreed", "passwords", "deck"} <= set(apps["enabled"])
    assert "firstrunwizard" in apps["disabled"]
    res = stack.occ("app:enable", "nosuchapp")
    assert (res.exit_code, res.stdout) == (
        1, "Could not download app nosuchapp, it was not found on the appstore\n")
    payload = json.dumps({"system": {"default_language": "de"},
                          "apps": {"theming": {"slogan": "Ihre Praxis"}}}).encode()
    assert stack.occ("config:import", stdin=payload).exit_code == 0
    assert stack.occ("config:system:get", "default_language").stdout == "de\n"


def test_user_oidc_provider_with_secret_from_env(stack: Stack) -> None:
    disc = "http://keycloak:8080/realms/nc07-cloud023/.well-known/openid-configuration"
    res = stack.occ("user_oidc:provider", "keycloak", "--clientid=nextcloud",
                    f"--discoveryuri={disc}")
    assert (res.exit_code, res.stdout) == (
        255, "Provider must be created. All provider parameters required.\n")
    secret = secrets.token_urlsafe(24)
    res = stack.occ("user_oidc:provider", "keycloak", "--clientid=nextcloud",
                    "--clientsecret-env=OIDC_SECRET", f"--discoveryuri={disc}",
                    "--unique-uid=0", "--mapping-uid=preferred_username",
                    env={"OIDC_SECRET": secret})
    assert (res.exit_code, res.stdout, res.stderr) == (
        0, 'Client secret loaded from environment variable "OIDC_SECRET"\n', "")
    shown = stack.occ("user_oidc:providers", "--output=json").stdout
    (line,) = shown.splitlines()  # real occ: one JSON object per line
    provider = json.loads(line)
    assert provider["identifier"] == "keycloak" and provider["settings"]["uniqueUid"] is False
    assert secret not in shown
    stored = stack.sql("SELECT client_secret FROM oc_user_oidc_providers "
                       "WHERE identifier = 'keycloak'")
    assert stored.stdout.strip() == secret


def test_state_survives_recreating_the_container(stack: Stack) -> None:
    assert stack.occ("config:system:set", "default_locale", "--value=de_DE").exit_code == 0
    assert stack.occ("group:add", "persist").exit_code == 0
    before = json.loads(stack.occ("config:list", "--private", "--output=json").stdout)
    stack.engine.remove_container(stack.app)
    stack.start_app(stack.app, stack.data, stack.app_env())
    wait_healthy(stack.engine, stack.app, HEALTH_TIMEOUT)
    logs = stack.engine.logs(stack.app, tail=40)
    assert "New nextcloud instance" not in logs and "NEXTCLOUD STAND-IN" in logs
    after = json.loads(stack.occ("config:list", "--private", "--output=json").stdout)
    assert after == before
    assert stack.occ("config:system:get", "default_locale").stdout == "de_DE\n"
    assert "persist" in json.loads(stack.occ("group:list", "--output=json").stdout)
