"""DockerEngine against the real local engine (and the same engine through tcp://).

Containers run the locally imported Debian base image; every object carries the test's
scratch labels and is removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import socket
import tarfile
import threading
import time
from collections.abc import Iterator

import pytest

from smartpraxx_provision.adapters.docker_engine import (
    ContainerSpec,
    DockerEngine,
    SecretFile,
    healthcheck,
)
from smartpraxx_provision.domain.ownership import LABEL_SPEC_HASH
from smartpraxx_provision.errors import ExternalServiceError, ServiceUnavailableError
from tests.fixtures.docker_wait import wait_healthy
from tests.fixtures.stack import DockerScratch

pytestmark = pytest.mark.integration

SLEEP = ["sleep", "600"]


def _spec(
    scratch: DockerScratch, local_images: dict[str, str], suffix: str, **kw: object
) -> ContainerSpec:
    base: dict[str, object] = {
        "name": scratch.name(suffix),
        "image": local_images["base"],
        "labels": dict(scratch.labels),
        "command": SLEEP,
        "restart_policy": "no",
    }
    base.update(kw)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def test_ensure_container_is_idempotent(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    spec = _spec(docker_scratch, local_images, "idem", env={"APP_SECRET": "s3cr3t-value"})

    assert eng.ensure_container(spec) == "created"
    assert eng.ensure_container(spec) == "running"

    info = eng.inspect_container(spec.name)
    assert info is not None and info.status == "running"
    # the spec is stored as a hash only: no env value in any label
    assert info.labels[LABEL_SPEC_HASH] == spec.spec_hash(eng.image_id(spec.image))
    assert all("s3cr3t-value" not in v for v in info.labels.values())

    assert eng.stop_container(spec.name, timeout=1) is True
    assert eng.ensure_container(spec) == "started"
    old_id = eng.inspect_container(spec.name).id  # type: ignore[union-attr]

    changed = _spec(docker_scratch, local_images, "idem", env={"APP_SECRET": "other"})
    assert eng.ensure_container(changed) == "recreated"
    new = eng.inspect_container(spec.name)
    assert new is not None and new.id != old_id and new.status == "running"
    assert eng.exec(spec.name, ["printenv", "APP_SECRET"]).stdout.strip() == "other"


def test_secret_files_are_written_before_start_owned_0400_and_not_inspectable(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    value = "file-secret-" + "z" * 24
    spec = _spec(
        docker_scratch,
        local_images,
        "secretfile",
        # the command reads the file at start: it must exist before the container starts
        command=["sh", "-c", "cat /run/secrets/token > /tmp/seen-at-start; sleep 600"],
        user="nobody",
        secret_files=(SecretFile("/run/secrets/token", "nobody", value),),
        extra={"cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"]},
    )
    assert eng.ensure_container(spec) == "created"
    assert eng.exec(spec.name, ["cat", "/tmp/seen-at-start"]).stdout == value
    listing = eng.exec(spec.name, ["stat", "-c", "%a %U", "/run/secrets", "/run/secrets/token"])
    assert listing.stdout.split("\n")[:2] == ["500 nobody", "400 nobody"]
    # root without capabilities (cap_drop ALL) cannot read another user's 0400 file
    assert not eng.exec(spec.name, ["cat", "/run/secrets/token"], user="root").ok
    doc = str(eng.client.api.inspect_container(spec.name))
    assert value not in doc
    # a rotated secret recreates the container with the new file
    rotated = dataclasses.replace(
        spec, secret_files=(SecretFile("/run/secrets/token", "nobody", value + "-2"),)
    )
    assert eng.ensure_container(rotated) == "recreated"
    assert eng.exec(spec.name, ["cat", "/run/secrets/token"]).stdout == value + "-2"


def test_secret_file_owner_missing_in_image_is_refused_without_leftover(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    spec = _spec(
        docker_scratch,
        local_images,
        "noowner",
        secret_files=(SecretFile("/run/secrets/token", "no-such-user", "x" * 20),),
    )
    with pytest.raises(ExternalServiceError) as exc:
        eng.ensure_container(spec)
    assert "no-such-user" in exc.value.message and spec.name in exc.value.message
    assert eng.inspect_container(spec.name) is None


def test_exec_exit_codes_streams_env_and_stdin(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    spec = _spec(docker_scratch, local_images, "exec")
    eng.ensure_container(spec)

    res = eng.exec(
        spec.name, ["sh", "-c", 'echo "out:$TOKEN"; echo err >&2; exit 3'], env={"TOKEN": "t0k"}
    )
    assert (res.exit_code, res.stdout, res.stderr) == (3, "out:t0k\n", "err\n")
    # env travels in the exec environment, not in the command line of the process
    argv = eng.exec(
        spec.name, ["sh", "-c", "tr '\\0' ' ' < /proc/$$/cmdline"], env={"TOKEN": "t0k"}
    )
    assert "t0k" not in argv.stdout

    ok = eng.exec(spec.name, ["true"])
    assert ok.ok and ok.exit_code == 0

    payload = b"line1\nline2\n" * 50_000  # > pipe buffers: must not deadlock
    echoed = eng.exec(spec.name, ["cat"], stdin=payload)
    assert echoed.exit_code == 0 and echoed.stdout.encode() == payload

    as_nobody = eng.exec(spec.name, ["id", "-un"], user="nobody")
    assert as_nobody.stdout.strip() == "nobody"
    in_dir = eng.exec(spec.name, ["pwd"], workdir="/tmp")
    assert in_dir.stdout.strip() == "/tmp"

    missing = eng.exec(spec.name, ["no-such-program"])
    assert missing.exit_code == 126 or missing.exit_code == 127


def test_exec_timeout_is_bounded(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    spec = _spec(docker_scratch, local_images, "slow")
    eng.ensure_container(spec)
    with pytest.raises(ExternalServiceError) as exc:
        eng.exec(spec.name, ["sleep", "30"], timeout=1.0)
    assert spec.name in exc.value.message


def test_wait_healthy_timeout_names_container_with_logs(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    spec = _spec(
        docker_scratch,
        local_images,
        "sick",
        command=["sh", "-c", "echo marker-before-health; sleep 600"],
        healthcheck=healthcheck(["CMD", "false"], interval=0.5, retries=100),
    )
    eng.ensure_container(spec)
    with pytest.raises(ExternalServiceError) as exc:
        wait_healthy(eng, spec.name, timeout=3.0, interval=0.5)
    err = exc.value
    assert err.obj == spec.name and spec.name in err.message
    assert "marker-before-health" in err.details["logs"]


def test_wait_healthy_fails_fast_on_exit_and_passes_when_healthy(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    dead = _spec(
        docker_scratch,
        local_images,
        "dead",
        command=["sh", "-c", "echo bye-bye; sleep 1; exit 4"],
        healthcheck=healthcheck(["CMD", "false"], interval=0.5, retries=100),
    )
    eng.ensure_container(dead)
    started = time.monotonic()
    with pytest.raises(ExternalServiceError) as exc:
        wait_healthy(eng, dead.name, timeout=60.0, interval=0.2)
    assert time.monotonic() - started < 20  # did not wait for the timeout
    assert "exited" in exc.value.message and "bye-bye" in exc.value.details["logs"]

    fine = _spec(
        docker_scratch,
        local_images,
        "fine",
        healthcheck=healthcheck(["CMD", "true"], interval=0.5),
    )
    eng.ensure_container(fine)
    assert wait_healthy(eng, fine.name, timeout=30.0, interval=0.25).health == "healthy"


def test_networks_isolate_by_name(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    net_a, net_b = docker_scratch.name("net-a"), docker_scratch.name("net-b")
    assert eng.ensure_network(net_a, docker_scratch.labels) is True
    assert eng.ensure_network(net_a, docker_scratch.labels) is False
    assert eng.ensure_network(net_b, docker_scratch.labels) is True
    # (an internal network works too; name lookups of strangers there wait for DNS timeouts)
    net_i = docker_scratch.name("net-internal")
    assert eng.ensure_network(net_i, docker_scratch.labels, internal=True) is True

    eng.ensure_container(
        _spec(docker_scratch, local_images, "svc", network=net_a, aliases=("svc",))
    )
    eng.ensure_container(_spec(docker_scratch, local_images, "peer", network=net_a))
    eng.ensure_container(_spec(docker_scratch, local_images, "stranger", network=net_b))

    assert eng.exec(docker_scratch.name("peer"), ["getent", "hosts", "svc"]).exit_code == 0
    assert eng.exec(docker_scratch.name("stranger"), ["getent", "hosts", "svc"]).exit_code != 0
    assert (
        eng.exec(
            docker_scratch.name("stranger"), ["getent", "hosts", docker_scratch.name("svc")]
        ).exit_code
        != 0
    )

    nets = {n.name: n for n in eng.list_networks(docker_scratch.labels)}
    assert set(nets) == {net_a, net_b, net_i}
    assert nets[net_i].internal and not nets[net_a].internal


def test_volumes_archives_and_idempotent_removal(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    eng = docker_scratch.engine
    vol = docker_scratch.name("data")
    spec = _spec(docker_scratch, local_images, "vol", volumes={vol: "/data"})
    eng.ensure_container(spec)
    assert [v.name for v in eng.list_volumes(docker_scratch.labels)] == [vol]
    assert eng.ensure_volume(vol, docker_scratch.labels) is False

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        content = b"exported payload\n"
        member = tarfile.TarInfo("in/file.txt")
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content))
    eng.put_archive(spec.name, "/data", buf.getvalue())
    assert eng.exec(spec.name, ["cat", "/data/in/file.txt"]).stdout == "exported payload\n"

    data = b"".join(eng.get_archive(spec.name, "/data/in"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile("in/file.txt")
        assert f is not None and f.read() == b"exported payload\n"

    assert [c.name for c in eng.list_containers(docker_scratch.labels)] == [spec.name]
    assert eng.remove_container(spec.name) is True
    assert eng.remove_container(spec.name) is False
    assert eng.remove_volume(vol) is True
    assert eng.remove_volume(vol) is False
    assert eng.remove_network(docker_scratch.name("never-made")) is False


def test_missing_image_names_it(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    spec = _spec(docker_scratch, local_images, "noimg", image="smartpraxx/does-not-exist:0")
    with pytest.raises(ExternalServiceError) as exc:
        docker_scratch.engine.ensure_container(spec)
    assert exc.value.obj == "smartpraxx/does-not-exist:0"


# --- the same code path over tcp:// ------------------------------------------------------------


@contextlib.contextmanager
def _tcp_to_local_socket(path: str = "/var/run/docker.sock") -> Iterator[int]:
    """A loopback TCP listener forwarding to the local engine's socket (with half-close)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(2)


def test_tcp_engine_uses_the_same_code_path(
    docker_scratch: DockerScratch, local_images: dict[str, str]
) -> None:
    if not docker_scratch.engine.is_local:
        pytest.skip("the tcp:// forwarder needs the local engine socket")
    with _tcp_to_local_socket() as port:
        remote = DockerEngine(f"tcp://127.0.0.1:{port}")
        try:
            assert remote.ping()["api_version"]
            assert remote.is_local is False
            spec = _spec(docker_scratch, local_images, "via-tcp")
            assert remote.ensure_container(spec) == "created"
            assert docker_scratch.engine.ensure_container(spec) == "running"
            res = remote.exec(spec.name, ["sh", "-c", "cat; exit 5"], stdin=b"over tcp")
            assert (res.exit_code, res.stdout) == (5, "over tcp")
        finally:
            remote.close()


def test_unreachable_engines_raise_service_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    remote = DockerEngine(f"tcp://127.0.0.1:{port}", timeout=5)
    with pytest.raises(ServiceUnavailableError) as exc:
        remote.ping()
    assert exc.value.obj == f"tcp://127.0.0.1:{port}" and "dev-stack" not in (exc.value.hint or "")

    local = DockerEngine("unix:///nonexistent/docker.sock", timeout=5)
    with pytest.raises(ServiceUnavailableError) as exc2:
        local.list_containers({})
    assert exc2.value.hint == "smartpraxx-provision dev-stack up"
    assert local.answers() is False
