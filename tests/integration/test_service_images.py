"""The locally built MariaDB and Redis images: real servers, configured like the official
images, accept the credentials they were given and refuse wrong ones.

Clients: the MariaDB client runs through ``docker exec`` in a client container on the
slot's network (password via ``MYSQL_PWD`` in the exec environment, never argv); Redis is
spoken to from the host over its RESP protocol on the port published on 127.0.0.1 (no
extra Python package needed). Every object is removed afterwards.
"""

from __future__ import annotations

import socket
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


def _password() -> str:
    # quote and backslash characters prove the entrypoints escape what they write
    return generate_token(18) + "'\"\\x"


@dataclass
class Slot:
    scratch: DockerScratch
    db: str
    redis: str
    client: str
    outsider: str
    root_password: str
    user_password: str
    redis_password: str

    @property
    def engine(self) -> DockerEngine:
        return self.scratch.engine

    def sql(
        self, container: str, user: str, password: str, query: str, host: str = "db"
    ) -> ExecResult:
        return self.engine.exec(
            container,
            ["mariadb", "--connect-timeout=5", "-h", host, "-u", user, "-e", query],
            env={"MYSQL_PWD": password},
            timeout=30,
        )


@pytest.fixture(scope="module")
def slot(docker_engine: DockerEngine, local_images: dict[str, str]) -> Iterator[Slot]:
    scratch = new_scratch(docker_engine)
    try:
        net, other_net = scratch.name("net"), scratch.name("other")
        docker_engine.ensure_network(net, scratch.labels)
        docker_engine.ensure_network(other_net, scratch.labels)
        s = Slot(
            scratch,
            db=scratch.name("db"),
            redis=scratch.name("redis"),
            client=scratch.name("client"),
            outsider=scratch.name("outsider"),
            root_password=_password(),
            user_password=_password(),
            redis_password=_password(),
        )
        common: dict[str, Any] = {"labels": dict(scratch.labels), "restart_policy": "no"}
        docker_engine.ensure_container(
            ContainerSpec(
                name=s.db,
                image=local_images["mariadb"],
                env={
                    "MARIADB_ROOT_PASSWORD": s.root_password,
                    "MYSQL_DATABASE": "nextcloud",  # the MYSQL_* alias, as official
                    "MARIADB_USER": "nc",
                    "MARIADB_PASSWORD": s.user_password,
                },
                network=net,
                aliases=("db",),
                volumes={scratch.name("dbdata"): "/var/lib/mysql"},
                ports={3306: 0},
                mem_limit="512m",
                command=["--transaction-isolation=READ-COMMITTED", "--binlog-format=ROW"],
                **common,
            )
        )
        docker_engine.ensure_container(
            ContainerSpec(
                name=s.redis,
                image=local_images["redis"],
                env={"REDIS_PASSWORD": s.redis_password},
                network=net,
                aliases=("redis",),
                ports={6379: 0},
                **common,
            )
        )
        for name, network in ((s.client, net), (s.outsider, other_net)):
            docker_engine.ensure_container(
                ContainerSpec(
                    name=name,
                    image=local_images["mariadb"],
                    network=network,
                    command=["sleep", "3600"],
                    **common,
                )
            )
        wait_healthy(docker_engine, s.db, HEALTH_TIMEOUT)
        wait_healthy(docker_engine, s.redis, HEALTH_TIMEOUT)
        yield s
    finally:
        scratch.cleanup()


# --- MariaDB ------------------------------------------------------------------------------


def test_mariadb_accepts_the_given_user_on_its_database(slot: Slot) -> None:
    res = slot.sql(
        slot.client, "nc", slot.user_password, "SELECT CURRENT_USER(); USE nextcloud; SELECT 41+1"
    )
    assert res.exit_code == 0, res.stderr
    assert "nc@%" in res.stdout and "42" in res.stdout


def test_mariadb_refuses_a_wrong_password(slot: Slot) -> None:
    res = slot.sql(slot.client, "nc", slot.user_password + "x", "SELECT 1")
    assert res.exit_code != 0
    assert "Access denied" in res.stderr


def test_mariadb_root_password_and_user_scope(slot: Slot) -> None:
    root = slot.sql(slot.client, "root", slot.root_password, "SELECT COUNT(*) FROM mysql.user")
    assert root.exit_code == 0, root.stderr
    wrong_root = slot.sql(slot.client, "root", slot.user_password, "SELECT 1")
    assert wrong_root.exit_code != 0 and "Access denied" in wrong_root.stderr
    # the slot user has rights on its own database only
    other = slot.sql(slot.client, "nc", slot.user_password, "CREATE DATABASE someone_else")
    assert other.exit_code != 0 and "denied" in other.stderr


def test_mariadb_takes_server_options_as_command(slot: Slot) -> None:
    res = slot.sql(slot.client, "nc", slot.user_password, "SELECT @@tx_isolation")
    assert "READ-COMMITTED" in res.stdout


def test_mariadb_unreachable_from_another_network(slot: Slot) -> None:
    res = slot.sql(slot.outsider, "nc", slot.user_password, "SELECT 1", host=slot.db)
    assert res.exit_code != 0
    assert "Unknown server host" in res.stderr or "Can't connect" in res.stderr


def test_mariadb_published_on_loopback_only(slot: Slot) -> None:
    port = slot.engine.published_port(slot.db, 3306)
    attrs = slot.engine.client.containers.get(slot.db).attrs
    bindings = attrs["NetworkSettings"]["Ports"]["3306/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        greeting = conn.recv(256)
    assert b"MariaDB" in greeting  # the server's handshake packet


def test_mariadb_without_root_password_refuses_to_initialise(
    docker_engine: DockerEngine, local_images: dict[str, str]
) -> None:
    scratch = new_scratch(docker_engine)
    try:
        spec = ContainerSpec(
            name=scratch.name("noroot"),
            image=local_images["mariadb"],
            env={"MARIADB_DATABASE": "x"},
            labels=dict(scratch.labels),
            restart_policy="no",
        )
        docker_engine.ensure_container(spec)
        with pytest.raises(ExternalServiceError) as exc:
            wait_healthy(docker_engine, spec.name, 60.0, interval=0.5)
        assert exc.value.obj == spec.name
        assert "password option is not specified" in exc.value.details["logs"]
    finally:
        scratch.cleanup()


# --- Redis ----------------------------------------------------------------------------------


def _resp(port: int, *commands: list[str]) -> list[bytes]:
    """Send RESP commands to 127.0.0.1:port, one reply line per command."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        f = conn.makefile("rb")
        for cmd in commands:
            wire = f"*{len(cmd)}\r\n".encode()
            for arg in cmd:
                data = arg.encode()
                wire += b"$%d\r\n%s\r\n" % (len(data), data)
            conn.sendall(wire)
            line = f.readline().rstrip(b"\r\n")
            if line.startswith(b"$") and line != b"$-1":
                line = f.readline().rstrip(b"\r\n")
            replies.append(line)
    return replies


def test_redis_accepts_the_given_password(slot: Slot) -> None:
    port = slot.engine.published_port(slot.redis, 6379)
    replies = _resp(
        port,
        ["AUTH", slot.redis_password],
        ["SET", "greeting", "moin"],
        ["GET", "greeting"],
    )
    assert replies == [b"+OK", b"+OK", b"moin"]


def test_redis_refuses_wrong_or_missing_password(slot: Slot) -> None:
    port = slot.engine.published_port(slot.redis, 6379)
    wrong, after = _resp(port, ["AUTH", "not-the-password"], ["GET", "greeting"])
    assert wrong.startswith(b"-WRONGPASS")
    assert after.startswith(b"-NOAUTH")


def test_redis_reachable_by_name_from_the_slot_network(slot: Slot) -> None:
    # RESP arrays (not the inline protocol): the password contains quotes and backslashes
    script = (
        "exec 3<>/dev/tcp/redis/6379; "
        "printf '*2\\r\\n$4\\r\\nAUTH\\r\\n$%d\\r\\n%s\\r\\n*1\\r\\n$4\\r\\nPING\\r\\n' "
        '"${#REDIS_PW}" "$REDIS_PW" >&3; timeout 5 head -c 12 <&3'
    )
    res = slot.engine.exec(
        slot.client, ["bash", "-c", script], env={"REDIS_PW": slot.redis_password}
    )
    assert res.stdout.replace("\r\n", " ").strip() == "+OK +PONG"


def test_redis_password_is_on_no_command_line(slot: Slot) -> None:
    res = slot.engine.exec(slot.redis, ["bash", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"])
    assert "redis-server" in res.stdout
    assert slot.redis_password not in res.stdout


def test_redis_requirepass_command_like_the_official_image(
    docker_engine: DockerEngine, local_images: dict[str, str]
) -> None:
    scratch = new_scratch(docker_engine)
    try:
        spec = ContainerSpec(
            name=scratch.name("redis-cmd"),
            image=local_images["redis"],
            labels=dict(scratch.labels),
            command=["redis-server", "--requirepass", "official-style"],
            ports={6379: 0},
            restart_policy="no",
        )
        docker_engine.ensure_container(spec)
        wait_healthy(docker_engine, spec.name, HEALTH_TIMEOUT, interval=0.5)
        port = docker_engine.published_port(spec.name, 6379)
        assert _resp(port, ["AUTH", "official-style"], ["PING"]) == [b"+OK", b"+PONG"]
        assert _resp(port, ["PING"])[0].startswith(b"-NOAUTH")
    finally:
        scratch.cleanup()
