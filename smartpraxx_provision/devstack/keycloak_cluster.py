"""Keycloak as a cluster on loopback: production mode, PostgreSQL, jdbc-ping discovery.

The same server as the identity host runs (``kc.sh start``, not ``start-dev``), from the
unpacked ``keycloak-quarkus-dist`` that :mod:`devstack.keycloak` caches:

* :func:`ensure_build` runs ``kc.sh build`` once with the build-time options
  (:data:`BUILD_OPTIONS`: PostgreSQL, health endpoints, embedded Infinispan) into
  ``<cache_dir>/keycloak-<version>-build-<digest>/`` (outside the repository; the 160 MB
  ``lib/lib`` stays a symlink into the distribution). Nodes then start ``--optimized``, so no
  node re-augments.
* :func:`prepare_node` gives each node a home of its own (copied small parts, symlinked jars)
  so that the nodes' ``data/`` directories (transaction logs, tmp) never meet.
* :func:`start_node` starts one node with the environment the caller gives — the tests render
  it from the Ansible identity role's ``keycloak.env.j2``, so the role and the tests share one
  configuration — plus its JDK and a bounded heap. Secrets (the database and bootstrap admin
  passwords) travel only in that environment, never in argv or a log.

Each node needs distinct loopback ports: HTTP, management (``/health/ready``) and the
JGroups bind port; JGroups' failure detection (FD_SOCK2) also listens on bind port + 50000,
so :func:`cluster_ports` picks bind ports whose partner port is free too.

Discovery is Keycloak 26's default ``jdbc-ping`` stack: every node writes its address into
the ``JGROUPS_PING`` table of the shared database and reads the others from there; the view the nodes agree on shows in their logs
(:func:`cluster_views`, Infinispan's ``ISPN000094``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from ..config import Settings
from ..errors import ServiceUnavailableError
from ..output import Reporter
from . import keycloak as devkc

# build-time options of `kc.sh build` (runtime options stay in the node's environment)
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--cache=ispn")
HEAP_OPTS = "-Xms64m -Xmx640m"
BUILD_TIMEOUT = 600.0
START_TIMEOUT = 240.0
STOP_TIMEOUT = 30.0
FD_SOCK_OFFSET = 50000  # JGroups FD_SOCK2 listens on bind_port + offset
_BUILD_MARKER = ".smartpraxx-build"
_VIEW_RE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}).*?ISPN000094: Received new cluster view for "
    r"channel \S+: \[(\S+)\|(\d+)\] \((\d+)\) \[([^\]]*)\]",
    re.MULTILINE,
)


@dataclass(frozen=True)
class NodeSpec:
    """Where one node listens (all on 127.0.0.1 here; a fleet uses each host's address)."""

    name: str
    http_port: int
    management_port: int
    cluster_port: int
    address: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def ready_url(self) -> str:
        return f"http://{self.address}:{self.management_port}/health/ready"


@dataclass
class RunningNode:
    spec: NodeSpec
    home: Path
    log: Path
    proc: subprocess.Popen[bytes]
    spawned_at: float = 0.0  # wall clock (time.time()) when kc.sh was spawned
    started_seconds: float = 0.0  # from spawn until /health/ready answered UP


# --- ports ------------------------------------------------------------------------------


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cluster_ports(count: int, *, start: int = 7800, stop: int = 15000) -> list[int]:
    """``count`` JGroups bind ports p (step 10) with p and p + FD_SOCK_OFFSET free."""
    found: list[int] = []
    for port in range(start, stop, 10):
        if _free(port) and _free(port + FD_SOCK_OFFSET):
            found.append(port)
            if len(found) == count:
                return found
    raise ServiceUnavailableError(
        f"no {count} free JGroups port pairs in 127.0.0.1:{start}-{stop} (+{FD_SOCK_OFFSET})",
        obj="127.0.0.1",
        hint="stop what listens there, then retry",
    )


def node_specs(count: int, prefix: str = "kc-node") -> list[NodeSpec]:
    """Specs with free, distinct HTTP, management and JGroups ports for ``count`` nodes."""
    taken: set[int] = set()

    def fresh() -> int:
        for _ in range(50):
            port = _free_port()
            if port not in taken:
                taken.add(port)
                return port
        raise ServiceUnavailableError("no free port on 127.0.0.1", obj="127.0.0.1")

    jgroups = cluster_ports(count)
    return [
        NodeSpec(f"{prefix}{i + 1}", http_port=fresh(), management_port=fresh(),
                 cluster_port=jgroups[i])
        for i in range(count)
    ]


# --- build ------------------------------------------------------------------------------


def build_dir(settings: Settings) -> Path:
    digest = hashlib.sha256(" ".join(BUILD_OPTIONS).encode()).hexdigest()[:10]
    return settings.cache_dir / f"keycloak-{settings.keycloak_version}-build-{digest}"


def _copy_server(src: Path, dest: Path, dist: Path) -> None:
    dest.mkdir(parents=True)
    devkc.copy_server(src, dest, dist)


def _java_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KC_", "KEYCLOAK_"))}
    env.pop("JAVA_OPTS", None)  # kc.sh would then ignore the heap bound
    env.update({
        "JAVA_HOME": str(devkc.find_java_home(settings)),
        "JAVA_OPTS_KC_HEAP": HEAP_OPTS,
        "JAVA_OPTS_APPEND": "--add-opens=java.base/java.lang=ALL-UNNAMED",
    })
    return env


def ensure_build(settings: Settings, reporter: Reporter) -> Path:
    """The distribution augmented once for production mode (cached; ~30-60 s when cold)."""
    target = build_dir(settings)
    marker = target / _BUILD_MARKER
    want = " ".join(BUILD_OPTIONS)
    if marker.is_file() and marker.read_text(encoding="utf-8") == want:
        reporter.skip(f"Keycloak production build cached at {target}")
        return target
    dist = devkc.ensure_distribution(settings, reporter)
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    _copy_server(dist, staging, dist)
    reporter.change(f"kc.sh build {want} (once, into {target})")
    started = time.monotonic()
    proc = subprocess.run(
        [str(staging / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
        cwd=staging, env=_java_env(settings), capture_output=True, text=True,
        timeout=BUILD_TIMEOUT, check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceUnavailableError(
            f"kc.sh build failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-800:]}",
            obj=str(target),
            hint="see the output above; the distribution is "
            f"{devkc.dist_dir(settings)}",
        )
    (staging / _BUILD_MARKER).write_text(want, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not marker.is_file():  # not a concurrent build that won
            raise
    reporter.change(f"Keycloak production build done in {time.monotonic() - started:.1f}s")
    return target


def prepare_node(build: Path, home: Path) -> Path:
    """A node's own server home from the build (fresh ``data/``, mode 0700)."""
    dist = (build / "lib" / "lib").resolve().parent.parent
    if home.exists():
        shutil.rmtree(home)
    _copy_server(build, home, dist)
    (home / "data").mkdir(mode=0o700)
    return home


# --- processes --------------------------------------------------------------------------


def start_node(
    settings: Settings, spec: NodeSpec, home: Path, kc_env: Mapping[str, str], log: Path
) -> RunningNode:
    """Spawn ``kc.sh start --optimized`` for one node (returns at once; see wait_ready)."""
    env = _java_env(settings)
    env.update(kc_env)
    argv = [
        str(home / "bin" / "kc.sh"), "start", "--optimized",
        # failed logins' usernames stay in the realm's event store, not in this log
        "--log-level=info,org.keycloak.events:error",
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    spawned_at = time.time()
    proc = devkc.spawn_server(argv, home, env, log)
    return RunningNode(spec=spec, home=home, log=log, proc=proc, spawned_at=spawned_at)


def _ready(spec: NodeSpec) -> bool:
    try:
        resp = requests.get(spec.ready_url, timeout=3)
    except requests.RequestException:
        return False
    return resp.status_code == 200 and '"UP"' in resp.text.replace(" ", "")


def wait_ready(node: RunningNode, timeout: float = START_TIMEOUT) -> float:
    """Wait (bounded) until the node's /health/ready says UP; seconds since it was spawned."""
    spawned = time.monotonic()
    deadline = spawned + timeout
    for _ in range(int(timeout) + 2):
        if node.proc.poll() is not None:
            raise ServiceUnavailableError(
                f"Keycloak node {node.spec.name} exited during start-up "
                f"(exit {node.proc.returncode})",
                obj=node.spec.name, hint=f"see {node.log}",
            )
        if _ready(node.spec):
            return time.monotonic() - spawned
        if time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    raise ServiceUnavailableError(
        f"Keycloak node {node.spec.name} was not ready at {node.spec.ready_url} "
        f"within {timeout:.0f}s",
        obj=node.spec.name, hint=f"see {node.log}",
    )


def start_and_wait(
    settings: Settings, spec: NodeSpec, home: Path, kc_env: Mapping[str, str], log: Path,
    timeout: float = START_TIMEOUT,
) -> RunningNode:
    started = time.monotonic()
    node = start_node(settings, spec, home, kc_env, log)
    try:
        wait_ready(node, timeout)
    except BaseException:
        stop_node(node)
        raise
    node.started_seconds = time.monotonic() - started
    return node


def stop_node(node: RunningNode, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the node's process group (it leaves the cluster cleanly), SIGKILL if stuck."""
    if node.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(node.proc.pid, signal.SIGTERM)
    try:
        node.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=10)


# --- cluster state ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterView:
    at: float  # wall clock of the log line (local time of this machine)
    view_id: int
    coordinator: str
    members: tuple[str, ...]


def cluster_views(log: Path) -> list[ClusterView]:
    """The cluster views a node's log reports (Infinispan's ISPN000094 lines), in order."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    views = []
    for m in _VIEW_RE.finditer(text):
        stamp = time.mktime(time.strptime(m.group(1).split(",")[0], "%Y-%m-%d %H:%M:%S"))
        views.append(ClusterView(
            at=stamp + int(m.group(1).split(",")[1]) / 1000,
            view_id=int(m.group(3)),
            coordinator=m.group(2),
            members=tuple(n.strip() for n in m.group(5).split(",") if n.strip()),
        ))
    return views


def wait_for_view(nodes: list[RunningNode], size: int, timeout: float = 60.0) -> float:
    """Wait (bounded) until every node's latest view has ``size`` members; seconds waited."""
    started = time.monotonic()
    for _ in range(int(timeout * 2) + 1):
        latest = [cluster_views(n.log)[-1:] for n in nodes]
        if all(v and len(v[0].members) == size for v in latest):
            return time.monotonic() - started
        if time.monotonic() - started >= timeout:
            break
        time.sleep(0.5)
    raise ServiceUnavailableError(
        f"the Keycloak nodes did not agree on a cluster of {size} within {timeout:.0f}s",
        obj=", ".join(n.spec.name for n in nodes),
        hint="see " + ", ".join(str(n.log) for n in nodes),
    )
