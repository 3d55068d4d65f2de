"""What an operation needs, built lazily from the settings: one door per external system;
the base of the operations' result documents."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import PRIMARY_SHARD, Settings
from ..errors import NotFoundError
from ..output import Reporter
from ..secrets import SecretStore, open_secret_store

if TYPE_CHECKING:
    from ..adapters.docker_engine import DockerEngine
    from ..adapters.keycloak import KeycloakAdapter
    from ..domain.ownership import Owner
    from ..inventory import Inventory
    from ..inventory.models import PracticeRecord

LOCAL_ENGINE = "unix:///var/run/docker.sock"
EMBEDDED_HOST = "cloud001"


@dataclass
class OpContext:
    """Settings, reporter and lazily opened clients for one command run."""

    settings: Settings
    reporter: Reporter = field(default_factory=Reporter)
    _secrets: SecretStore | None = None
    _inventory: Inventory | None = None
    _keycloaks: dict[str, KeycloakAdapter] = field(default_factory=dict)
    _engines: dict[str, DockerEngine] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            self._secrets = open_secret_store(self.settings)
        return self._secrets

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            from ..inventory import open_inventory

            self._inventory = open_inventory(self.settings)
        return self._inventory

    @property
    def keycloak(self) -> KeycloakAdapter:
        """The primary identity shard (keycloak_url)."""
        return self.identity_shard(PRIMARY_SHARD)

    def identity_shard(self, name: str) -> KeycloakAdapter:
        """The admin door of identity shard ``name`` (settings: identity_shards)."""
        with self._lock:
            if name not in self._keycloaks:
                from ..adapters.keycloak import KeycloakAdapter

                self._keycloaks[name] = KeycloakAdapter.from_settings(
                    self.settings, self.secrets, name)
            return self._keycloaks[name]

    def identity_shards(self) -> list[KeycloakAdapter]:
        """The doors of all identity shards, the primary first."""
        return [self.identity_shard(s.name) for s in self.settings.identity_shard_list]

    def engine(self, host: str) -> DockerEngine:
        """The Docker engine of fleet host ``host`` (from the inventory's host record)."""
        with self._lock:
            if host not in self._engines:
                from ..adapters.docker_engine import DockerEngine

                record = self.inventory.get_host(host)
                if record is None:
                    raise host_not_in_inventory(host)
                self._engines[host] = DockerEngine(
                    record.endpoint, tls=record.tls, publish_address=record.publish_address
                )
            return self._engines[host]

    # --- ownership (DESIGN invariant 8) -------------------------------------------------

    def owner(self, record: PracticeRecord) -> Owner:
        """The owner marks of a practice's objects (installation id + practice id)."""
        from ..domain.ownership import Owner

        return Owner(record.owner_installation or self.inventory.installation_id, record.practice_id)

    def practice_engine(self, record: PracticeRecord) -> DockerEngine:
        """The practice's host engine, acting for the practice only (refuses foreign objects)."""
        accepted = self.inventory.accepted_unlabelled(record.slot.id)
        return self.engine(record.slot.host).owned_by(self.owner(record), accepted)

    def practice_keycloak(self, record: PracticeRecord, *, adopt: bool = False) -> KeycloakAdapter:
        """The door of the practice's identity shard, acting on its realm only as its owner."""
        return self.identity_shard(record.identity_shard).owned_by(
            record.realm, self.owner(record), host=record.slot.host, adopt_unlabelled=adopt
        )

    def engines_reset(self, host: str) -> None:
        """Forget the cached engine of ``host`` (its endpoint changed)."""
        with self._lock:
            engine = self._engines.pop(host, None)
        if engine is not None:
            engine.close()

    def ensure_embedded_host(self) -> None:
        """Embedded profile: register the local Docker engine as cloud001 when no host exists."""
        if self.settings.profile != "embedded" or self.inventory.list_hosts():
            return
        self.inventory.add_host(EMBEDDED_HOST, LOCAL_ENGINE)
        self.reporter.change(
            f"host {EMBEDDED_HOST} registered (local Docker engine, embedded profile)"
        )


# --- the errors for what the inventory does not hold ----------------------------------------


def host_not_in_inventory(host: str, endpoint: str = "...") -> NotFoundError:
    """The error for a fleet host the inventory does not know (``endpoint``: the hint's)."""
    return NotFoundError(
        f"host {host} is not in the inventory",
        obj=host,
        hint=f"smartpraxx-provision hosts add {host} --endpoint {endpoint}",
    )


def practice_not_in_inventory(praxisname: str) -> NotFoundError:
    """The error for a praxisname the inventory does not know (not even tombstoned)."""
    return NotFoundError(
        f"practice {praxisname} is not in the inventory",
        obj=praxisname,
        hint="smartpraxx-provision practices list --all",
    )


def provisioned_practice(ctx: OpContext, praxisname: str) -> PracticeRecord:
    """The practice ``praxisname``; a missing or tombstoned one is an error."""
    record = ctx.inventory.get_practice(praxisname)
    if record is None or record.tombstoned:
        raise NotFoundError(
            f"practice {praxisname} is not provisioned",
            obj=praxisname,
            hint="smartpraxx-provision practices list",
        )
    return record


@dataclass(frozen=True, kw_only=True)
class OperationResult:
    """The result of a finished journaled operation; subclasses add their fields after
    these. ``to_json`` is the document the CLI prints (fields in declaration order)."""

    ok: bool = True
    operation: str  # the journal's operation id
    praxisname: str
    slot: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
