"""The one door to the Docker API (docker SDK 7.x).

Everything the tool does with a Docker engine goes through :class:`DockerEngine`: networks,
volumes, containers (labelled with the slot they belong to), ``exec``
with exit code and separated output, logs, removal, image build/import/copy and archive
export/import. The same code path serves the local socket (``base_url=None``: ``DOCKER_HOST``
or the default socket), ``tcp://host:port`` (optionally TLS via ``tls_cert_dir`` or the
``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` variables) and ``ssh://user@host`` (through the
``ssh`` binary; the docker SDK needs ``paramiko`` importable for that, see the ``fleet``
extra).

Rules kept here:

* published ports are bound to the engine's *publish address*, ``127.0.0.1`` unless the
  host record says otherwise (a docker-in-docker test host publishes on ``0.0.0.0`` inside
  its own network namespace); nothing addresses a container IP;
* ``ensure_container`` is idempotent: a SHA-256 of the spec (and the image id) is stored in
  the ``de.smartpraxx.spec-hash`` label, never the spec itself; secrets are never in a
  container's env: ``secret_files`` are written into the created container (0400, owned by
  the image's reading user) before it starts, and enter the hash only, so a rotated secret
  recreates the container;
* exec environment goes through the exec API's environment, never into argv;
* every wait is bounded in time and count;
* errors leave as :mod:`smartpraxx_provision.errors` subclasses naming the object;
* ownership (DESIGN invariant 8): an engine bound to an owner (:meth:`DockerEngine.owned_by`)
  labels everything it creates with the owner and, before it reuses, replaces, deletes or
  execs into a network, volume or container, checks that object's owner labels: a foreign or
  unlabelled object is refused (SafetyRefusal, exit 1) and nothing is changed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
import os
import secrets
import socket
import tarfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests.exceptions
from docker.tls import TLSConfig
from docker.types import EndpointConfig
from docker.utils.socket import consume_socket_output, demux_adaptor, frames_iter

from ..domain.ownership import (
    LABEL_MANAGED,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    Owner,
    describe_owner,
    owner_from_labels,
    scan_hint,
    slot_of_name,
    verdict,
)
from ..errors import (
    ConfigError,
    ExternalServiceError,
    SafetyRefusal,
    ServiceUnavailableError,
    SmartpraxxError,
)

if TYPE_CHECKING:
    from ..output import Reporter


LOCAL_HINT = "smartpraxx-provision dev-stack up"
LOOPBACK = "127.0.0.1"  # the default publish address
DEFAULT_EXEC_TIMEOUT = 300.0
PROBE_API_VERSION = "1.24"  # the oldest the SDK speaks: asks a TLS engine for its own


# --- value types -------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretFile:
    """A secret a container reads from a file: written by the door into the created (not yet
    started) container with ``put_archive``, mode 0400 and owned by ``owner`` (a user name of
    the image's /etc/passwd, resolved to its uid/gid there). Its parent directory is created
    0500 for the same user. The value never appears in env, argv, labels or repr."""

    path: str
    owner: str
    content: str = field(repr=False)
    mode: int = 0o400


@dataclass(frozen=True)
class ContainerSpec:
    """What a container should look like. Hashed as a whole for idempotent re-runs.

    ``volumes`` maps a named volume (created with the spec's labels if missing) to its mount
    path; a key starting with ``/`` is a host bind mount instead (e.g. ``/sys/fs/cgroup`` for a
    fleet engine). ``ports`` maps container port to host port (0 = random), on the engine's
    publish address, 127.0.0.1 unless the host record says otherwise. ``healthcheck`` is the
    Docker API form (see :func:`healthcheck`). ``extra`` is passed to the SDK's
    ``containers.create`` as is (``cap_add``, ``security_opt``, ``device_cgroup_rules``,
    ``cgroupns``, ``tmpfs``...) for the few containers that need it.
    """

    name: str
    image: str
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    aliases: tuple[str, ...] = ()
    volumes: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    mem_limit: str | None = None
    restart_policy: str = "unless-stopped"
    command: list[str] | None = None
    healthcheck: dict[str, Any] | None = None
    user: str | None = None
    secret_files: tuple[SecretFile, ...] = field(default=(), repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def spec_hash(self, image_id: str = "", publish_address: str = LOOPBACK) -> str:
        """SHA-256 over the canonical JSON of the spec plus the image id (and the publish
        address of published ports when it is not 127.0.0.1, so a change recreates them)."""
        data = dataclasses.asdict(self)
        data["image_id"] = image_id
        if self.ports and publish_address != LOOPBACK:
            data["publish_address"] = publish_address
        canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    id: str
    image: str
    status: str  # created | running | exited | paused | restarting | dead
    health: str | None  # starting | healthy | unhealthy | None (no healthcheck)
    labels: dict[str, str]


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    id: str
    internal: bool
    labels: dict[str, str]


def healthcheck(
    test: list[str],
    *,
    interval: float = 2.0,
    timeout: float = 5.0,
    retries: int = 30,
    start_period: float = 0.0,
) -> dict[str, Any]:
    """A healthcheck dict in the Docker API form; ``test`` like ``["CMD", "prog", "arg"]``."""
    ns = 1_000_000_000
    return {
        "test": list(test),
        "interval": int(interval * ns),
        "timeout": int(timeout * ns),
        "retries": int(retries),
        "start_period": int(start_period * ns),
    }


# --- the adapter -------------------------------------------------------------------------


class DockerEngine:
    """A Docker engine reached through the docker SDK. Connects lazily on first use."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        tls_cert_dir: Path | None = None,
        tls: dict[str, str] | None = None,
        timeout: int = 120,
        publish_address: str = LOOPBACK,
    ) -> None:
        self.base_url = base_url
        self.publish_address = publish_address  # where published ports are bound
        self._tls_cert_dir = tls_cert_dir
        self._tls_files = tls  # {"ca", "cert", "key"} paths of a host record
        self._timeout = timeout
        self._client: Any = None
        self.owner: Owner | None = None
        self._accepted: set[tuple[str, str]] = set()
        self._checked: set[str] = set()

    def owned_by(
        self, owner: Owner, accepted: set[tuple[str, str]] | None = None
    ) -> DockerEngine:
        """A view of this engine (same connection) that acts for ``owner`` only.

        ``accepted``: (kind, name) of objects WITHOUT owner marks that ops adopted explicitly
        for this owner (recorded in the inventory); a foreign owner is never accepted."""
        view = copy.copy(self)
        view.owner = owner
        view._accepted = set(accepted or ())
        view._checked = set()
        if self._client is None:
            self._client = view.client  # connect once, share the connection
            view._client = self._client
        return view

    def _require_owner(self, kind: str, name: str, labels: dict[str, str] | None) -> None:
        """Refuse a foreign or unlabelled object (only on an owner-bound view)."""
        if self.owner is None:
            return
        found = owner_from_labels(labels)
        v = verdict(found, self.owner)
        slot = slot_of_name(name)
        adopted = (
            v == "unlabelled"
            and (kind, name) in self._accepted
            and slot is not None
            and (labels or {}).get(LABEL_SLOT) == f"nc{slot[1]:02d}-{slot[0]}"
        )
        if v == "ours" or adopted:
            self._checked.add(f"{kind}:{name}")
            return
        host = slot[0] if slot else self.url
        raise SafetyRefusal(
            f"{kind} {name} on {self.url} is {v} ({describe_owner(found)}), not this "
            f"practice's ({self.owner.describe()}); nothing was changed",
            obj=f"{kind} {name}",
            hint=f"see whose it is: {scan_hint(host)}; after restoring an inventory backup, "
            "adopt deliberately with: smartpraxx-provision practices adopt <praxisname> --yes",
            details={
                "object": name,
                "kind": kind,
                "verdict": v,
                "owner": None if found is None else found.labels(),
            },
        )

    def _owned_labels(self, labels: dict[str, str]) -> dict[str, str]:
        return {**labels, **self.owner.labels()} if self.owner is not None else labels

    # -- connection ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The engine address as shown to operators."""
        if self.base_url:
            return self.base_url
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @property
    def is_local(self) -> bool:
        return self.url.startswith(("unix://", "npipe://"))

    def _unavailable(self, exc: BaseException) -> ServiceUnavailableError:
        hint = (
            LOCAL_HINT
            if self.is_local
            else f"check that the Docker engine at {self.url} runs and is reachable"
        )
        return ServiceUnavailableError(
            f"Docker engine at {self.url} does not answer ({type(exc).__name__})",
            obj=self.url,
            hint=hint,
        )

    @property
    def client(self) -> Any:
        """The docker SDK client (``docker.DockerClient``)."""
        if self._client is None:
            kwargs: dict[str, Any] = {"version": "auto", "timeout": self._timeout}
            if self.base_url is None:
                kwargs.update(docker.utils.kwargs_from_env())
            else:
                kwargs["base_url"] = self.base_url
                if self.base_url.startswith("ssh://"):
                    kwargs["use_ssh_client"] = True
                if self._tls_cert_dir is not None:
                    d = self._tls_cert_dir
                    kwargs["tls"] = TLSConfig(
                        client_cert=(str(d / "cert.pem"), str(d / "key.pem")),
                        ca_cert=str(d / "ca.pem"),
                        verify=True,
                    )
                elif self._tls_files is not None:
                    f = self._tls_files
                    kwargs["tls"] = TLSConfig(
                        client_cert=(f["cert"], f["key"]), ca_cert=f["ca"], verify=True
                    )
            try:
                self._client = (
                    _tls_client(kwargs) if "tls" in kwargs else docker.DockerClient(**kwargs)
                )
            except docker.errors.DockerException as exc:
                if "paramiko" in str(exc):
                    raise ConfigError(
                        f"ssh:// Docker engines need the paramiko package ({self.url})",
                        obj=self.url,
                        hint="pip install 'smartpraxx-provision[fleet]'",
                    ) from exc
                raise self._unavailable(exc) from exc
            except (requests.exceptions.RequestException, OSError) as exc:
                raise self._unavailable(exc) from exc
        return self._client

    @property
    def api(self) -> Any:
        """The low-level ``docker.APIClient``."""
        return self.client.api

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    @contextlib.contextmanager
    def _call(self, what: str, obj: str) -> Iterator[None]:
        """Map transport and API errors to the tool's errors, naming ``obj``."""
        try:
            yield
        except SmartpraxxError:
            raise
        except docker.errors.APIError as exc:
            raise ExternalServiceError(
                f"Docker engine refused to {what} {obj}: {exc.explanation or exc}",
                obj=obj,
                hint=f"inspect it with: docker inspect {obj}",
            ) from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            self.close()
            raise self._unavailable(exc) from exc
        except docker.errors.DockerException as exc:
            raise ExternalServiceError(
                f"Docker engine failed to {what} {obj}: {exc}", obj=obj
            ) from exc

    def ping(self) -> dict[str, str]:
        """Engine version facts; raises ServiceUnavailableError when it does not answer."""
        with self._call("answer", self.url):
            v = self.client.version()
            info = self.client.info()
        return {
            "url": self.url,
            "id": str(info.get("ID", "")),
            "name": str(info.get("Name", "")),
            "version": str(v.get("Version", "")),
            "api_version": str(v.get("ApiVersion", "")),
            "os": str(v.get("Os", "")),
        }

    def answers(self) -> bool:
        try:
            self.ping()
        except SmartpraxxError:
            return False
        return True

    # -- networks and volumes --------------------------------------------------------------

    def _find(self, kind: str, name: str) -> Any | None:
        """The volume or network ``name`` (its owner checked), or None when it is missing."""
        try:
            found = getattr(self.client, f"{kind}s").get(name)
        except docker.errors.NotFound:
            return None
        self._require_owner(kind, name, found.attrs.get("Labels"))
        return found

    def _remove(self, kind: str, name: str) -> bool:
        """Remove the volume or network ``name`` (its owner checked). Missing = False."""
        with self._call(f"remove {kind}", name):
            found = self._find(kind, name)
            if found is None:
                return False
            try:
                found.remove()
            except docker.errors.NotFound:
                return False
            return True

    def ensure_network(self, name: str, labels: dict[str, str], internal: bool = False) -> bool:
        """Create the bridge network when missing. True if it was created."""
        with self._call("create network", name):
            if self._find("network", name) is not None:
                return False
            self.client.networks.create(
                name,
                driver="bridge",
                internal=internal,
                labels={LABEL_MANAGED: "true", **self._owned_labels(labels)},
                check_duplicate=True,
            )
            return True

    def ensure_volume(self, name: str, labels: dict[str, str]) -> bool:
        """Create the named volume when missing. True if it was created."""
        with self._call("create volume", name):
            if self._find("volume", name) is not None:
                return False
            self.client.volumes.create(
                name=name, labels={LABEL_MANAGED: "true", **self._owned_labels(labels)}
            )
            return True

    # -- containers -----------------------------------------------------------------------

    def _get(self, name: str) -> Any | None:
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    @staticmethod
    def _info(c: Any) -> ContainerInfo:
        state = c.attrs.get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        tags = c.attrs.get("Config", {}).get("Image", "")
        return ContainerInfo(
            name=c.name,
            id=c.id,
            image=str(tags),
            status=str(state.get("Status", c.status)),
            health=health,
            labels=dict(c.labels or {}),
        )

    def object_labels(self, kind: str, name: str) -> dict[str, str] | None:
        """Labels of the container, volume or network ``name`` (None when it is missing)."""
        with self._call(f"inspect {kind}", name):
            try:
                if kind == "container":
                    return dict(self.client.containers.get(name).labels or {})
                if kind == "volume":
                    return dict(self.client.volumes.get(name).attrs.get("Labels") or {})
                if kind == "network":
                    return dict(self.client.networks.get(name).attrs.get("Labels") or {})
            except docker.errors.NotFound:
                return None
        raise ValueError(kind)

    def require_owned(self, kind: str, name: str) -> bool:
        """On an owner-bound view: refuse when ``name`` exists with another owner.
        True when it exists (and is ours), False when it is missing."""
        labels = self.object_labels(kind, name)
        if labels is None:
            return False
        self._require_owner(kind, name, labels)
        return True

    def all_objects(self) -> list[tuple[str, str, dict[str, str]]]:
        """(kind, name, labels) of every container, volume and network on the engine."""
        # the low-level list calls: one request each, no per-object inspect that would
        # fail on an object removed meanwhile
        with self._call("list objects on", self.url):
            out = [
                ("container", str(c["Names"][0]).lstrip("/"), dict(c.get("Labels") or {}))
                for c in self.api.containers(all=True)
                if c.get("Names")
            ]
            out += [
                ("volume", str(v["Name"]), dict(v.get("Labels") or {}))
                for v in (self.api.volumes() or {}).get("Volumes") or []
            ]
            out += [
                ("network", str(n["Name"]), dict(n.get("Labels") or {}))
                for n in self.api.networks()
            ]
        return sorted(out, key=lambda o: (o[1], o[0]))

    def _check_container_once(self, name: str) -> None:
        """On an owner-bound view: the owner of a container we exec into or copy from/to."""
        if self.owner is None or f"container:{name}" in self._checked:
            return
        with self._call("inspect container", name):
            c = self._get(name)
            if c is not None:
                self._require_owner("container", name, c.labels)

    def inspect_container(self, name: str) -> ContainerInfo | None:
        with self._call("inspect container", name):
            c = self._get(name)
            return None if c is None else self._info(c)

    def _image_id(self, tag: str) -> str:
        try:
            return str(self.client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            raise ExternalServiceError(
                f"image {tag} is not present on the Docker engine at {self.url}",
                obj=tag,
                hint=LOCAL_HINT if self.is_local else f"copy the image to {self.url} first",
            ) from None

    def _create(self, spec: ContainerSpec, spec_hash: str) -> Any:
        for vol in spec.volumes:
            if not vol.startswith("/"):
                self.ensure_volume(vol, spec.labels)
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "environment": dict(spec.env),
            "labels": {LABEL_MANAGED: "true", **spec.labels, LABEL_SPEC_HASH: spec_hash},
            "volumes": {k: {"bind": v, "mode": "rw"} for k, v in spec.volumes.items()},
            "ports": {
                f"{cport}/tcp": (self.publish_address, hport or None)
                for cport, hport in spec.ports.items()
            },
            "restart_policy": {"Name": spec.restart_policy},
            "detach": True,
        }
        if spec.network:
            kwargs["network"] = spec.network
            if spec.aliases:
                kwargs["networking_config"] = {
                    spec.network: EndpointConfig(
                        version=self.api.api_version, aliases=list(spec.aliases)
                    )
                }
        if spec.mem_limit:
            kwargs["mem_limit"] = spec.mem_limit
        if spec.command is not None:
            kwargs["command"] = list(spec.command)
        if spec.healthcheck is not None:
            kwargs["healthcheck"] = dict(spec.healthcheck)
        if spec.user:
            kwargs["user"] = spec.user
        kwargs.update(spec.extra)
        container = self.client.containers.create(spec.image, **kwargs)
        if spec.secret_files:
            try:
                self._put_secret_files(container, spec)
            except BaseException:
                container.remove(force=True, v=True)
                raise
        return container

    def _image_user(self, container: Any, owner: str) -> tuple[int, int]:
        """uid and gid of ``owner`` in the (created) container's /etc/passwd."""
        stream, _stat = self.api.get_archive(container.id, "/etc/passwd")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile("passwd")
            text = member.read().decode("utf-8", "replace") if member else ""
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) >= 4 and parts[0] == owner:
                return int(parts[2]), int(parts[3])
        raise ExternalServiceError(
            f"image {container.attrs.get('Config', {}).get('Image', '?')} has no user {owner} "
            f"to own the secret files of {container.name}",
            obj=container.name,
            hint="use an image with that user (the official images have it)",
        )

    def _put_secret_files(self, container: Any, spec: ContainerSpec) -> None:
        by_dir: dict[str, list[SecretFile]] = {}
        for sf in spec.secret_files:
            parent, _, name = sf.path.rpartition("/")
            if not parent.startswith("/") or parent == "/" or not name:
                raise ExternalServiceError(
                    f"secret file path {sf.path!r} of {spec.name} is not /<dir>/<name>",
                    obj=spec.name,
                )
            by_dir.setdefault(parent, []).append(sf)
        owners = {sf.owner: self._image_user(container, sf.owner) for sf in spec.secret_files}
        for parent, files in sorted(by_dir.items()):
            base, _, dirname = parent.rpartition("/")
            uid, gid = owners[files[0].owner]
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                info = tarfile.TarInfo(dirname)
                info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o500, uid, gid
                tar.addfile(info)
                for sf in files:
                    data = sf.content.encode()
                    f_uid, f_gid = owners[sf.owner]
                    info = tarfile.TarInfo(f"{dirname}/{sf.path.rpartition('/')[2]}")
                    info.size, info.mode, info.uid, info.gid = len(data), sf.mode, f_uid, f_gid
                    tar.addfile(info, io.BytesIO(data))
            if not self.api.put_archive(container.id, base or "/", buf.getvalue()):
                raise ExternalServiceError(
                    f"writing the secret files of {spec.name} failed", obj=spec.name
                )

    def ensure_container(self, spec: ContainerSpec) -> str:
        """Converge a container to ``spec``: 'created' | 'started' | 'running' | 'recreated'.

        Recreates only when the stored spec hash (spec + image id) differs; starts a stopped
        container; leaves a running, matching one alone.
        """
        if self.owner is not None:
            spec = dataclasses.replace(spec, labels=self._owned_labels(spec.labels))
        with self._call("create container", spec.name):
            wanted = spec.spec_hash(self._image_id(spec.image), self.publish_address)
            current = self._get(spec.name)
            outcome = "created"
            if current is not None:
                self._require_owner("container", spec.name, current.labels)
                if (current.labels or {}).get(LABEL_SPEC_HASH) == wanted:
                    current.reload()
                    if current.status == "running":
                        return "running"
                    current.start()
                    return "started"
                current.remove(force=True, v=True)
                outcome = "recreated"
            container = self._create(spec, wanted)
            container.start()
            return outcome

    def start_container(self, name: str) -> bool:
        """Start a stopped container. True if it was started, False if already running."""
        with self._call("start container", name):
            c = self.client.containers.get(name)
            self._require_owner("container", name, c.labels)
            if c.status == "running":
                return False
            c.start()
            return True

    def stop_container(self, name: str, timeout: int = 10) -> bool:
        """Stop a container. True if it was running; missing or stopped = False."""
        with self._call("stop container", name):
            c = self._get(name)
            if c is None or c.status != "running":
                return False
            c.stop(timeout=timeout)
            return True

    def logs(self, name: str, tail: int = 40) -> str:
        """The last ``tail`` lines of stdout+stderr ('' when the container is missing)."""
        with self._call("read logs of", name):
            c = self._get(name)
            if c is None:
                return ""
            raw = c.logs(stdout=True, stderr=True, tail=tail)
            return bytes(raw).decode("utf-8", errors="replace")

    def published_port(self, name: str, container_port: int) -> int:
        """The host port (on the publish address) that ``container_port`` is published on."""
        with self._call("inspect ports of", name):
            c = self.client.containers.get(name)
            ports = (c.attrs.get("NetworkSettings") or {}).get("Ports") or {}
            for binding in ports.get(f"{container_port}/tcp") or []:
                if binding.get("HostPort"):
                    return int(binding["HostPort"])
        raise ExternalServiceError(
            f"container {name} does not publish port {container_port}",
            obj=name,
            hint=f"docker port {name}",
        )

    def container_ports(self, name: str) -> dict[int, int]:
        """container port → host port of every published TCP port (missing container: {})."""
        with self._call("inspect ports of", name):
            c = self._get(name)
            if c is None:
                return {}
            bindings = (c.attrs.get("HostConfig") or {}).get("PortBindings") or {}
            return {
                int(cport.split("/")[0]): int(b[0]["HostPort"])
                for cport, b in bindings.items()
                if cport.endswith("/tcp") and b and b[0].get("HostPort")
            }

    def remove_container(self, name: str) -> bool:
        """Force-remove a container and its anonymous volumes (named volumes stay).

        Missing = False.
        """
        with self._call("remove container", name):
            c = self._get(name)
            if c is None:
                return False
            self._require_owner("container", name, c.labels)
            try:
                c.remove(force=True, v=True)
            except docker.errors.NotFound:
                return False
            return True

    def remove_volume(self, name: str) -> bool:
        return self._remove("volume", name)

    def remove_network(self, name: str) -> bool:
        return self._remove("network", name)

    @staticmethod
    def _label_filter(labels: dict[str, str]) -> list[str]:
        return [f"{k}={v}" if v else k for k, v in labels.items()]

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """All containers (running or not) carrying every label (value '' = any value)."""
        with self._call("list containers", self.url):
            found = self.client.containers.list(
                all=True, filters={"label": self._label_filter(labels)}
            )
            return sorted((self._info(c) for c in found), key=lambda i: i.name)

    def list_volumes(self, labels: dict[str, str]) -> list[VolumeInfo]:
        with self._call("list volumes", self.url):
            found = self.client.volumes.list(filters={"label": self._label_filter(labels)})
            return sorted(
                (VolumeInfo(v.name, dict(v.attrs.get("Labels") or {})) for v in found),
                key=lambda i: i.name,
            )

    def list_networks(self, labels: dict[str, str]) -> list[NetworkInfo]:
        with self._call("list networks", self.url):
            found = self.client.networks.list(filters={"label": self._label_filter(labels)})
            return sorted(
                (
                    NetworkInfo(
                        n.name,
                        n.id,
                        bool(n.attrs.get("Internal")),
                        dict(n.attrs.get("Labels") or {}),
                    )
                    for n in found
                ),
                key=lambda i: i.name,
            )

    # -- exec ------------------------------------------------------------------------------

    def exec(
        self,
        name: str,
        cmd: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_EXEC_TIMEOUT,
    ) -> ExecResult:
        """Run ``cmd`` in the running container; stdout and stderr separated.

        ``env`` travels in the exec API's environment (never argv). ``stdin`` is written and
        then half-closed so the command sees EOF (local socket, plain tcp:// and ssh://). A TLS
        connection cannot be half-closed: there ``stdin`` goes into a private file in the
        container (mode 0600, owned by ``user``), the command reads it as its stdin through
        ``sh`` and the file is removed again (:meth:`_exec_stdin_file`). The wait is bounded by
        ``timeout``: on expiry the connection is dropped and ExternalServiceError raised (the
        process in the container may still run).
        """
        what = f"{name} ({cmd[0] if cmd else '?'})"
        self._check_container_once(name)
        if stdin is not None and self.uses_tls:
            return self._exec_stdin_file(name, cmd, user, env, workdir, stdin, timeout)
        with self._call("exec in", name):
            created = self.api.exec_create(
                name,
                cmd,
                stdout=True,
                stderr=True,
                stdin=stdin is not None,
                user=user or "",
                environment=env or None,
                workdir=workdir,
            )
            exec_id = created["Id"]
            sock = self.api.exec_start(exec_id, socket=True)
            try:
                out, err = _read_demuxed(sock, timeout, what, stdin)
            finally:
                _close_quietly(sock)
            exit_code: int | None = None
            for _ in range(100):  # bounded: ~5 s for the exec to be reported finished
                info = self.api.exec_inspect(exec_id)
                if not info.get("Running") and info.get("ExitCode") is not None:
                    exit_code = int(info["ExitCode"])
                    break
                time.sleep(0.05)
            if exit_code is None:
                raise ExternalServiceError(
                    f"exec in {what} reported no exit code", obj=name, hint=f"docker logs {name}"
                )
        return ExecResult(
            exit_code,
            out.decode("utf-8", errors="replace"),
            err.decode("utf-8", errors="replace"),
        )

    @property
    def uses_tls(self) -> bool:
        return self.base_url is not None and (
            self._tls_files is not None or self._tls_cert_dir is not None
        )

    def _exec_stdin_file(
        self, name: str, cmd: list[str], user: str | None, env: dict[str, str] | None,
        workdir: str | None, stdin: bytes, timeout: float,
    ) -> ExecResult:
        """``exec`` with ``stdin`` on a TLS engine: the data in ``/tmp/.smartpraxx-stdin-*``
        (0600, the exec user's), ``sh -c '"$@" < file'``, the file removed in any case."""
        path = f"/tmp/.smartpraxx-stdin-{secrets.token_hex(8)}"  # noqa: S108 (in the container)
        with self._call("write stdin file to", name):
            container = self.client.containers.get(name)
            uid, gid = self._image_user(container, user) if user else (0, 0)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(path.rpartition("/")[2])
            info.size, info.mode, info.uid, info.gid = len(stdin), 0o600, uid, gid
            tar.addfile(info, io.BytesIO(stdin))
        self.put_archive(name, "/tmp", buf.getvalue())  # noqa: S108 (in the container)
        try:
            return self.exec(
                name, ["sh", "-c", 'f="$1"; shift; exec "$@" < "$f"', "sh", path, *cmd],
                user=user, env=env, workdir=workdir, timeout=timeout,
            )
        finally:
            self.exec(name, ["rm", "-f", path], user=user, timeout=30)

    # -- images ----------------------------------------------------------------------------

    def image_exists(self, tag: str) -> bool:
        with self._call("inspect image", tag):
            try:
                self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                return False
            return True

    def image_labels(self, tag: str) -> dict[str, str] | None:
        """The image's labels, or None when the image is missing."""
        with self._call("inspect image", tag):
            try:
                img = self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                return None
            return dict(img.labels or {})

    def image_id(self, tag: str) -> str:
        with self._call("inspect image", tag):
            return self._image_id(tag)

    def build_image(
        self,
        context_dir: Path,
        tag: str,
        buildargs: dict[str, str] | None = None,
        *,
        labels: dict[str, str] | None = None,
        reporter: Reporter | None = None,
        nocache: bool = False,
    ) -> None:
        """Build ``context_dir`` (classic builder) as ``tag``; progress goes to ``reporter``.

        On failure raises ExternalServiceError with the last 40 build log lines in details.
        """
        tail: deque[str] = deque(maxlen=40)
        error: str | None = None
        with self._call("build image", tag):
            stream = self.api.build(
                path=str(context_dir),
                tag=tag,
                buildargs=buildargs or None,
                labels=labels or None,
                rm=True,
                forcerm=True,
                pull=False,
                nocache=nocache,
                decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in str(chunk["stream"]).splitlines():
                        if line.strip():
                            tail.append(line)
                            if reporter is not None and line.startswith("Step "):
                                reporter.info(f"{tag}: {line}")
                if "error" in chunk:
                    error = str(chunk.get("error") or chunk.get("errorDetail"))
                    tail.append(error)
        if error is not None:
            raise ExternalServiceError(
                f"building image {tag} failed: {error.strip().splitlines()[-1][:300]}",
                obj=tag,
                hint=f"fix {context_dir} and run: {LOCAL_HINT} --rebuild",
                details={"image": tag, "context": str(context_dir), "log": "\n".join(tail)},
            )

    def import_image(self, tarball: Path, tag: str, changes: list[str] | None = None) -> str:
        """``docker import`` of a root file system tarball; returns the image id."""
        repository, _, version = tag.rpartition(":")
        if not repository:
            repository, version = tag, "latest"
        with self._call("import image", tag):
            self.api.import_image_from_file(
                str(tarball), repository=repository, tag=version, changes=changes
            )
            return self._image_id(tag)

    def copy_image_to(self, tag: str, target: DockerEngine) -> int:
        """``docker save`` of ``tag`` here streamed into ``docker load`` on ``target``; returns
        the bytes sent.

        The saved tar travels chunk by chunk (``get_image`` yields them, ``load_image`` sends
        the generator as a chunked request body), never whole in memory or on disk. Errors of
        either side leave through that side's ``_call`` (naming its engine); an ``error`` entry
        of the load's progress stream and a loaded image whose ID differs from this engine's
        are ExternalServiceError. One attempt, no retries; loading again is harmless.
        """
        wanted = self.image_id(tag)  # missing here: the usual error naming this engine
        sent = 0

        def saved() -> Iterator[bytes]:
            nonlocal sent
            with self._call("save image", tag):
                for chunk in self.api.get_image(tag):
                    sent += len(chunk)
                    yield chunk

        with target._call("load image", tag):
            for entry in target.api.load_image(saved()) or ():
                if isinstance(entry, dict) and entry.get("error"):
                    raise ExternalServiceError(
                        f"Docker engine at {target.url} failed to load image {tag} "
                        f"({sent} bytes sent): {str(entry['error']).strip()[:300]}",
                        obj=tag,
                        hint=f"check the disk space and the log of the engine at {target.url}",
                        details={"image": tag, "engine": target.url, "bytes": sent},
                    )
        loaded = target.image_id(tag) if target.image_exists(tag) else None
        if loaded != wanted:
            raise ExternalServiceError(
                f"image {tag} loaded into the Docker engine at {target.url} is "
                f"{loaded or 'missing'}, not {wanted} as on {self.url}",
                obj=tag,
                hint=f"compare: docker image inspect {tag} on both engines",
                details={"image": tag, "engine": target.url, "source": self.url,
                         "wanted": wanted, "loaded": loaded, "bytes": sent},
            )
        return sent

    # -- archives --------------------------------------------------------------------------

    def get_archive(self, name: str, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` in the container (chunks of bytes)."""
        self._check_container_once(name)
        with self._call("read archive from", name):
            stream, _stat = self.api.get_archive(name, path)
        return _guarded_iter(self, stream, name)

    def put_archive(self, name: str, path: str, data: bytes | Iterable[bytes]) -> None:
        """Unpack a tar archive (bytes or a stream of chunks) at ``path`` in the container."""
        self._check_container_once(name)
        with self._call("write archive to", name):
            ok = self.api.put_archive(name, path, data)
        if not ok:
            raise ExternalServiceError(
                f"writing an archive to {name}:{path} failed", obj=name, hint=f"docker logs {name}"
            )


# --- exec stream helpers ---------------------------------------------------------------------


def _tls_client(kwargs: dict[str, Any]) -> Any:
    """A TLS engine's client that trusts only the host record's CA: requests would let
    REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace it (and use the environment's proxies), also for
    the API version query of ``version="auto"``, so that query runs with ``trust_env`` off."""

    def client(version: str) -> Any:
        made = docker.DockerClient(**{**kwargs, "version": version})
        made.api.trust_env = False
        return made

    probe = client(PROBE_API_VERSION)  # no request yet: the version is given
    try:
        version = str(probe.api.version(api_version=False)["ApiVersion"])
    finally:
        probe.close()
    return client(version)


def _guarded_iter(engine: DockerEngine, stream: Iterable[bytes], name: str) -> Iterator[bytes]:
    with engine._call("read archive from", name):
        yield from stream


def _raw_socket(sock: Any) -> Any:
    """The socket under the SDK's hijacked-connection wrapper (SocketIO → socket)."""
    if isinstance(sock, socket.SocketIO):
        return sock._sock  # type: ignore[attr-defined]
    return sock


def _send_and_half_close(sock: Any, data: bytes, what: str) -> None:
    raw = _raw_socket(sock)
    if hasattr(raw, "shutdown_write"):  # paramiko channel
        raw.sendall(data)
        raw.shutdown_write()
        return
    proc = getattr(raw, "proc", None)  # docker SDK's SSHSocket (through the ssh binary)
    if proc is not None:
        raw.sendall(data)
        proc.stdin.close()
        return
    import ssl

    if isinstance(raw, ssl.SSLSocket):
        raise ExternalServiceError(
            f"exec in {what}: stdin cannot be half-closed over a TLS engine connection",
            obj=what,
            hint="pass the data with put_archive instead of stdin",
        )
    raw.sendall(data)
    raw.shutdown(socket.SHUT_WR)


def _read_demuxed(sock: Any, timeout: float, what: str, stdin: bytes | None) -> tuple[bytes, bytes]:
    """Read the multiplexed exec stream in a helper thread, bounded by ``timeout``.

    The reader runs before ``stdin`` is sent, so a command echoing large input cannot
    deadlock against a full pipe.
    """
    result: dict[str, Any] = {}

    def reader() -> None:
        try:
            frames = (demux_adaptor(*frame) for frame in frames_iter(sock, tty=False))
            result["out"] = consume_socket_output(frames, demux=True)
        except BaseException as exc:  # reported to the caller below
            result["exc"] = exc

    thread = threading.Thread(target=reader, name=f"exec-read {what}", daemon=True)
    thread.start()
    if stdin is not None:
        _send_and_half_close(sock, stdin, what)
    thread.join(timeout)
    if thread.is_alive():
        _close_quietly(sock)
        thread.join(2.0)
        raise ExternalServiceError(
            f"exec in {what} did not finish within {timeout:g}s",
            obj=what,
            hint="the command may still run in the container; check its logs",
        )
    if "exc" in result:
        raise result["exc"]
    out, err = result.get("out") or (None, None)
    return out or b"", err or b""


def _close_quietly(sock: Any) -> None:
    raw = _raw_socket(sock)
    with contextlib.suppress(Exception):
        raw.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        sock.close()
