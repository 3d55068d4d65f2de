"""The containers of one slot, described once (pure).

``slot_stack(spec, slot, settings, app_port=...)`` returns a :class:`StackPlan`: the slot's
network, its volumes and, in launch order, every container with everything it is made of (image,
environment, labels, mounts, ports, limits, user, command, health check, hardening, the
secrets it reads, what it waits for) and the containers that must be absent (the idp gateway
without the local TLS proxy, cron with ``nextcloud_cron`` off). It is the single source for:

* ``operations/nextcloud_stack.launch_stack``, which converges exactly these containers in
  this order through the Docker API (secret values resolved from the store at apply time);
* the bundle's ``compose.yaml`` (render/bundle.py), rendered from the same plan;
* ``provision --dry-run``, which lists the containers' names (``container_roles``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..config import Settings
from ..domain.model import PracticeSpec, Slot
from ..errors import SmartpraxxError
from .bundle import (
    APP_PORT,
    CONTAINER_SECRETS,
    CRON_COMMAND,
    CRON_MEM_LIMIT,
    DATA_MOUNT,
    DB_HEALTH,
    DB_MOUNT,
    DB_RUN_USER,
    REDIS_COMMAND,
    REDIS_HEALTH,
    REDIS_USER,
    RESTART_POLICY,
    SECRET_OWNERS,
    env_file_text,
    hardening,
    parse_env,
    secret_refs_in,
    slot_labels,
    slot_names,
)

# Docker's healthchecks of a slot's db and redis run this often (seconds): 50 slots on one
# host at a 2 s interval would be 50 client processes a second.
HEALTH_INTERVAL = 30.0
# Every check of a slot: one probe may take this long, this many failures mark it unhealthy.
HEALTH_TIMEOUT = 5.0
HEALTH_RETRIES = 30
IDP_GATEWAY_SOCKET = "/run/smartpraxx-idp/idp.sock"
IDP_GATEWAY_MEM_LIMIT = "32m"
# Every container a slot can have, in launch order.
ROLES = ("db", "redis", "idp", "app", "cron")


@dataclass(frozen=True)
class HealthCheck:
    """A container health check (timeout ``HEALTH_TIMEOUT``, ``HEALTH_RETRIES`` retries);
    ``test`` ``("NONE",)`` switches the image's check off."""

    test: tuple[str, ...]
    interval: float = HEALTH_INTERVAL
    start_period: float = 60.0  # failures in the first minute do not count

    @property
    def disabled(self) -> bool:
        return self.test == ("NONE",)


DISABLED_HEALTHCHECK = HealthCheck(("NONE",))


@dataclass(frozen=True, kw_only=True)
class ContainerPlan:
    """One container of a slot, as launched (secrets named by key, never by value)."""

    # what it is
    role: str
    name: str
    image: str
    labels: dict[str, str]
    # where it is reached: the slot's network, host ports on 127.0.0.1 (0 = any free one)
    network: str
    aliases: tuple[str, ...] = ()
    ports: dict[int, int] = field(default_factory=dict)
    # what it runs with
    env: dict[str, str]
    env_file: str | None = None  # the bundle file ``env`` was read from
    volumes: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    command: tuple[str, ...] | None = None
    secrets: tuple[str, ...] = ()  # logical secret keys (bundle.SECRET_NAMES)
    secret_owner: str | None = None  # the image's user that reads the secret files
    # how it is confined, checked and kept up
    mem_limit: str | None = None
    hardening: dict[str, Any] = field(default_factory=dict)
    healthcheck: HealthCheck | None = None  # None: the image's own
    depends_on: tuple[str, ...] = ()  # roles that must be ready before this one starts
    restart_policy: str = RESTART_POLICY


@dataclass(frozen=True, kw_only=True)
class AbsentContainer:
    """A container the slot must not have under the current settings."""

    role: str
    name: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class StackPlan:
    network: str
    network_labels: dict[str, str]
    volumes: tuple[str, ...]
    volume_labels: dict[str, str]
    steps: tuple[ContainerPlan | AbsentContainer, ...]  # launch order (ROLES)

    @property
    def containers(self) -> tuple[ContainerPlan, ...]:
        return tuple(s for s in self.steps if isinstance(s, ContainerPlan))

    def container(self, role: str) -> ContainerPlan:
        return next(c for c in self.containers if c.role == role)

    def images(self) -> tuple[str, ...]:
        """The distinct images the slot's containers run (launch order; absent ones none)."""
        return tuple(dict.fromkeys(c.image for c in self.containers))


def container_roles(settings: Settings) -> tuple[str, ...]:
    """The roles of the containers a slot runs under ``settings`` (launch order)."""
    off = {"idp": not settings.local_tls_proxy, "cron": not settings.nextcloud_cron}
    return tuple(role for role in ROLES if not off.get(role, False))


def _env(spec: PracticeSpec, slot: Slot, settings: Settings, role: str) -> dict[str, str]:
    """A container's environment from its env file; it must not reference any secret."""
    path = f"env/{role}.env"
    text = env_file_text(spec, slot, settings, role)
    if secret_refs_in(text):
        raise SmartpraxxError(
            f"{path} of the slot bundle references a secret; secrets go into files",
            obj=path,
            hint="render secrets as secrets/<name> and *_FILE variables",
        )
    return parse_env(text)


def _service(
    spec: PracticeSpec, slot: Slot, settings: Settings, role: str, **fields: Any
) -> ContainerPlan:
    """A db/redis/app/cron container: env file, labels, network, hardening, secrets."""
    return ContainerPlan(
        role=role,
        name=getattr(slot_names(slot), role),
        env=_env(spec, slot, settings, role),
        env_file=f"env/{role}.env",
        labels=slot_labels(slot, role),
        network=slot_names(slot).network,
        hardening=hardening(role, settings),
        secrets=CONTAINER_SECRETS[role],
        secret_owner=SECRET_OWNERS[role],
        **fields,
    )


def idp_gateway(settings: Settings, slot: Slot) -> ContainerPlan:
    """The slot's way to the identity provider behind the local TLS proxy (embedded only).

    ``<slot>-idp`` (image ``idp-gateway``) sits on the slot's network alone, under the alias
    ``idp-internal``, and forwards to the host Caddy's Unix socket (directory bind-mounted),
    which proxies to the local Keycloak only: no IP route to the host, no shared network.
    """
    from ..config import INTERNAL_IDP_HOST, INTERNAL_IDP_PORT
    from ..devstack.images import IDP_GATEWAY_TAG
    from ..devstack.proxy import run_dir

    names = slot_names(slot)
    return ContainerPlan(
        role="idp",
        name=names.idp,
        image=IDP_GATEWAY_TAG.rsplit(":", 1)[0] + f":{settings.local_image_tag}",
        env={"IDP_PORT": str(INTERNAL_IDP_PORT), "IDP_SOCKET": IDP_GATEWAY_SOCKET},
        labels=slot_labels(slot, "idp"),
        network=names.network,
        aliases=(INTERNAL_IDP_HOST,),
        volumes={str(run_dir(settings)): IDP_GATEWAY_SOCKET.rsplit("/", 1)[0]},
        mem_limit=IDP_GATEWAY_MEM_LIMIT,
        hardening={"cap_drop": ["ALL"]},
    )


def slot_stack(
    spec: PracticeSpec, slot: Slot, settings: Settings, *, app_port: int = 0
) -> StackPlan:
    """Everything Docker runs for the slot (see the module doc); the app publishes on host
    port ``app_port`` (0: a random free one; see domain/model.py ``app_host_port``)."""
    names = slot_names(slot)
    service = partial(_service, spec, slot, settings)
    built: dict[str, ContainerPlan] = {
        "db": service(
            "db",
            image=settings.mariadb_image,
            volumes={names.db_volume: DB_MOUNT},
            mem_limit=settings.db_mem_limit,
            user=DB_RUN_USER,
            healthcheck=HealthCheck(tuple(DB_HEALTH)),
        ),
        "redis": service(
            "redis",
            image=settings.redis_image,
            mem_limit=settings.redis_mem_limit,
            command=tuple(REDIS_COMMAND),
            user=REDIS_USER,
            healthcheck=HealthCheck(tuple(REDIS_HEALTH)),
        ),
        "app": service(
            "app",
            image=settings.nextcloud_image,
            volumes={names.data_volume: DATA_MOUNT},
            ports={APP_PORT: app_port},
            mem_limit=settings.app_mem_limit,
            depends_on=("db", "redis"),
        ),
        "cron": service(
            "cron",
            image=settings.nextcloud_image,
            volumes={names.data_volume: DATA_MOUNT},
            mem_limit=CRON_MEM_LIMIT,
            command=tuple(CRON_COMMAND),
            healthcheck=DISABLED_HEALTHCHECK,  # the image's web check does not apply
            depends_on=("app",),
        ),
    }
    absent = {
        "idp": "no local TLS proxy",
        "cron": "setting nextcloud_cron is off",
    }
    running = container_roles(settings)
    if "idp" in running:  # only then: it reads the local proxy's (devstack) settings
        built["idp"] = idp_gateway(settings, slot)
    return StackPlan(
        network=names.network,
        network_labels=slot_labels(slot, "network"),
        volumes=(names.db_volume, names.data_volume),
        volume_labels=slot_labels(slot, "volume"),
        steps=tuple(
            built[role] if role in running
            else AbsentContainer(role=role, name=getattr(names, role), reason=absent[role])
            for role in ROLES
        ),
    )
