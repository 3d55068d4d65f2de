"""Test fleet hosts: Docker engines of their own, in docker-in-docker containers on this
machine, each reached over mutual TLS on 127.0.0.1 (``tcp://127.0.0.1:<port>``).

A fleet host ``cloudYYY`` here is the container ``smartpraxx-fleet-<name>`` (image
``smartpraxx/fleet-host:<tag>``, ``images/fleet-host``: Debian's ``docker.io``), started with
what works on these machines (DESIGN.md "Fleet hosts": SYS_ADMIN + NET_ADMIN, seccomp and
apparmor unconfined, ``a *:* rwm`` device rule, ``/sys/fs/cgroup`` rw, the host cgroup
namespace; ``--privileged`` fails here), plus SYS_PTRACE: without it ``docker exec`` into an
inner container whose process runs as another user (MariaDB as ``mysql``) fails in runc's
setns (measured). Its inner engine keeps its images and containers in the volume
``smartpraxx-fleet-<name>-docker``, with the overlay2 driver (a volume is no overlay, so
overlay2 works there: the stand-in image loads in 9 s instead of 32 s with vfs); stopping
and starting the container is an honest "host down" and "host back".

* TLS: :func:`ensure_tls` writes a CA, a server certificate for ``127.0.0.1``/``localhost``
  and a client certificate into ``<state_dir>/fleet-hosts/<name>/`` (the CA key never enters
  the container; the server files are bind-mounted read-only). ``hosts add`` gets the client
  files: ``--tls-ca/--tls-cert/--tls-key``.
* Ports: the slots' containers publish on the inner engine's publish address ``0.0.0.0``
  (inside the fleet host's own network namespace); the container sets its
  ``net.ipv4.ip_local_port_range`` to a block of :data:`SLOT_PORTS` ports, so the inner
  engine's random host ports fall into the block, and publishes the block on this machine's
  127.0.0.1 under the same numbers. ``127.0.0.1:<port>`` of a slot then answers here as on a
  production host, where the host's Caddy reaches it on the host's loopback.
* The local TLS proxy: its socket directory is bind-mounted at the same path, so a slot's
  idp gateway on the fleet host reaches the identity provider as on the local engine.

Everything is labelled (:func:`fleet_labels`) with the host name and this state dir's mark;
a container or volume of the same name without those labels is refused, never reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..adapters.docker_engine import ContainerSpec, DockerEngine
from ..config import Settings
from ..domain.ownership import LABEL_MANAGED, LABEL_ROLE
from ..errors import SafetyRefusal, ServiceUnavailableError
from ..output import Reporter
from ..secrets.filestore import atomic_write
from . import images

FLEET_HOST_TAG = "smartpraxx/fleet-host:dev"
LABEL_FLEET_HOST = "de.smartpraxx.fleet-host"
LABEL_DEVSTACK = "de.smartpraxx.devstack"  # the mark of the state dir that made it
ENGINE_PORT = 2376
SLOT_PORTS = 24  # the block of host ports the slots' containers publish on
# on 127.0.0.1 a host takes 1 + SLOT_PORTS fixed ports: its engine's, then the slots' block
# (fixed, so that a restarted host keeps its endpoint and its slots their ports)
PORT_SEARCH = (21000, 32000)  # where on 127.0.0.1 a free block is looked for
PUBLISH_ADDRESS = "0.0.0.0"  # noqa: S104 (inside the fleet host: hosts add --publish-address)
READY_TIMEOUT = 90.0
CERT_DAYS = 30


@dataclass(frozen=True)
class FleetHost:
    """A running test fleet host: what ``hosts add`` needs to register it."""

    name: str
    container: str
    endpoint: str
    tls: dict[str, str]  # the client's files: ca, cert, key
    ports: tuple[int, int]  # the first and last host port of the slots' block

    def hosts_add_args(self) -> list[str]:
        """``smartpraxx-provision hosts add`` arguments registering this host."""
        return [
            "hosts", "add", self.name, "--endpoint", self.endpoint,
            "--tls-ca", self.tls["ca"], "--tls-cert", self.tls["cert"],
            "--tls-key", self.tls["key"], "--publish-address", PUBLISH_ADDRESS,
            "--slot-port-base", str(self.ports[0]),
        ]


def fleet_image(local_tag: str) -> images.ServiceImage:
    tag = f"{FLEET_HOST_TAG.rsplit(':', 1)[0]}:{local_tag}"
    return images.ServiceImage("fleet-host", tag, images.IMAGES_DIR / "fleet-host")


def host_dir(settings: Settings, name: str) -> Path:
    return settings.state_dir / "fleet-hosts" / name


def container_name(name: str) -> str:
    return f"smartpraxx-fleet-{name}"


def fleet_labels(settings: Settings, name: str) -> dict[str, str]:
    mark = hashlib.sha256(str(settings.state_dir.resolve()).encode()).hexdigest()[:16]
    return {LABEL_MANAGED: "true", LABEL_ROLE: "fleet-host", LABEL_FLEET_HOST: name,
            LABEL_DEVSTACK: mark}


# --- TLS -------------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *, server: bool = False,
) -> x509.Certificate:
    """A certificate for ``subject``: the CA (``issuer`` None, self-signed), a server
    certificate for 127.0.0.1/localhost or a client certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = issuer if issuer else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def ensure_tls(settings: Settings, name: str) -> tuple[Path, dict[str, str]]:
    """The host's TLS files (made once): (the server directory to mount, the client files)."""
    base = host_dir(settings, name)
    server_dir, client_dir = base / "server", base / "client"
    client = {"ca": str(client_dir / "ca.pem"), "cert": str(client_dir / "cert.pem"),
              "key": str(client_dir / "key.pem")}
    if all(Path(p).is_file() for p in client.values()) and (server_dir / "server-key.pem").is_file():
        return server_dir, client
    ca_key = _key()
    ca = _certificate(f"smartpraxx test fleet CA {name}", ca_key, None)
    issuer = (ca.subject, ca_key)
    server_key, client_key = _key(), _key()
    server = _certificate("127.0.0.1", server_key, issuer, server=True)
    client_cert = _certificate(f"smartpraxx-provision ({name})", client_key, issuer)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    files = {
        base / "ca-key.pem": (_pem_key(ca_key), 0o600),
        server_dir / "ca.pem": (ca_pem, 0o644),
        server_dir / "server-cert.pem": (server.public_bytes(serialization.Encoding.PEM), 0o644),
        server_dir / "server-key.pem": (_pem_key(server_key), 0o600),
        client_dir / "ca.pem": (ca_pem, 0o644),
        client_dir / "cert.pem": (client_cert.public_bytes(serialization.Encoding.PEM), 0o644),
        client_dir / "key.pem": (_pem_key(client_key), 0o600),
    }
    for path, (data, mode) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, data, mode=mode)
    return server_dir, client


# --- ports -------------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_block(size: int = SLOT_PORTS + 1, search: tuple[int, int] = PORT_SEARCH) -> int:
    """The first port of ``size`` consecutive free ports on 127.0.0.1 (bounded search)."""
    for first in range(search[0], search[1] - size, size):
        if all(_port_free(p) for p in range(first, first + size)):
            return first
    raise ServiceUnavailableError(
        f"no {size} consecutive free ports on 127.0.0.1 between {search[0]} and {search[1]}",
        obj="127.0.0.1", hint="stop other test fleet hosts: dev-stack fleet-host down NAME",
    )


# --- the container ------------------------------------------------------------------------------


def _require_ours(engine: DockerEngine, settings: Settings, kind: str, obj: str, name: str) -> bool:
    """True if ``obj`` exists with this host's labels; False if absent; refuses another's."""
    labels = engine.object_labels(kind, obj)
    if labels is None:
        return False
    wanted = fleet_labels(settings, name)
    if any(labels.get(k) != v for k, v in wanted.items()):
        raise SafetyRefusal(
            f"{kind} {obj} exists but is not this state dir's test fleet host {name}; "
            "nothing was changed",
            obj=f"{kind} {obj}", hint=f"docker inspect {obj}; pick another host name",
        )
    return True


def _spec(settings: Settings, name: str, server_dir: Path, first: int, image: str) -> ContainerSpec:
    from .proxy import run_dir

    block = range(first + 1, first + 1 + SLOT_PORTS)
    socket_dir = run_dir(settings)
    socket_dir.mkdir(parents=True, exist_ok=True)
    return ContainerSpec(
        name=container_name(name),
        image=image,
        labels=fleet_labels(settings, name),
        volumes={
            f"{container_name(name)}-docker": "/var/lib/docker",
            str(server_dir.resolve()): "/etc/docker/tls",
            "/sys/fs/cgroup": "/sys/fs/cgroup",
            str(socket_dir.resolve()): str(socket_dir.resolve()),
        },
        ports={ENGINE_PORT: first, **{p: p for p in block}},
        restart_policy="no",
        extra={
            "cap_add": ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"],
            "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
            "device_cgroup_rules": ["a *:* rwm"],
            "cgroupns": "host",
            "sysctls": {"net.ipv4.ip_local_port_range": f"{block[0]} {block[-1]}"},
            "hostname": name,
        },
    )


def _existing_first(engine: DockerEngine, cname: str) -> int | None:
    """The engine's (first) port of an existing host container."""
    return engine.container_ports(cname).get(ENGINE_PORT)


def ensure_fleet_host(
    settings: Settings, reporter: Reporter, name: str, engine: DockerEngine | None = None
) -> FleetHost:
    """Build the image if needed, create or start the host's container, wait for its engine."""
    engine = engine or DockerEngine()
    image = fleet_image(settings.local_image_tag)
    images.ensure_service_image(image, reporter, engine,
                                images.image_tags(settings.local_image_tag)["apt"])
    cname = container_name(name)
    server_dir, client = ensure_tls(settings, name)
    _require_ours(engine, settings, "volume", f"{cname}-docker", name)
    exists = _require_ours(engine, settings, "container", cname, name)
    first = (_existing_first(engine, cname) if exists else None) or free_port_block()
    outcome = engine.ensure_container(_spec(settings, name, server_dir, first, image.tag))
    if outcome == "running":
        reporter.skip(f"test fleet host {name} running")
    else:
        reporter.change(f"test fleet host {name}: container {cname} {outcome}")
    host = FleetHost(name=name, container=cname, endpoint=f"tcp://127.0.0.1:{first}",
                     tls=client, ports=(first + 1, first + SLOT_PORTS))
    wait_engine(host, engine)
    return host


def inner_engine(host: FleetHost, timeout: int = 30) -> DockerEngine:
    return DockerEngine(host.endpoint, tls=host.tls, timeout=timeout)


def wait_engine(
    host: FleetHost, outer: DockerEngine | None = None, timeout: float = READY_TIMEOUT
) -> float:
    """Wait (bounded) until the inner engine answers over TLS; the seconds it took. A host
    container that exited meanwhile fails at once, with the end of its log."""
    outer = outer or DockerEngine()
    start = time.monotonic()
    deadline = start + timeout
    for _ in range(int(timeout * 2) + 1):
        engine = inner_engine(host, timeout=5)
        try:
            if engine.answers():
                return round(time.monotonic() - start, 2)
        finally:
            engine.close()
        info = outer.inspect_container(host.container)
        if info is None or info.status == "exited" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    raise ServiceUnavailableError(
        f"the engine of test fleet host {host.name} did not answer on {host.endpoint} "
        f"within {time.monotonic() - start:.0f}s", obj=host.container,
        hint=f"docker logs {host.container}",
        details={"log": outer.logs(host.container, tail=15)},
    )


def stop_fleet_host(settings: Settings, name: str, engine: DockerEngine | None = None) -> bool:
    """Stop the host's container (its engine and every slot on it): "host down"."""
    engine = engine or DockerEngine()
    if not _require_ours(engine, settings, "container", container_name(name), name):
        return False
    return engine.stop_container(container_name(name), timeout=20)


def remove_fleet_host(settings: Settings, name: str, engine: DockerEngine | None = None) -> bool:
    """Remove the host's container and its engine volume (only this state dir's)."""
    engine = engine or DockerEngine()
    cname = container_name(name)
    removed = False
    if _require_ours(engine, settings, "container", cname, name):
        removed = engine.remove_container(cname)
    if _require_ours(engine, settings, "volume", f"{cname}-docker", name):
        removed = engine.remove_volume(f"{cname}-docker") or removed
    return removed
