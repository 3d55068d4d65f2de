"""Records the inventory hands out (plain frozen dataclasses, no I/O).

Do-not-track: nothing here carries staff personal data. A practice is described by
practice-level facts and counts only (praxisname, slot, KV, specialties, billable seats).
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import PRIMARY_SHARD
from ..domain.model import Slot

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

HOST_STATES = ("active", "draining", "bootstrapping")
# where a host's containers publish their ports unless its record says otherwise
DEFAULT_PUBLISH_ADDRESS = "127.0.0.1"
PRACTICE_STATES = (
    "allocated",
    "provisioning",
    "active",
    "failed",
    "decommissioning",
    "tombstoned",
)
OPERATION_STATES = ("running", "done", "failed", "abandoned")
STEP_STATES = ("started", "done", "failed")  # a step that finds nothing to do is "done"


def record_dict(record: DataclassInstance, *, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record's fields by name, in declaration order, for JSON: datetimes as ISO 8601 text,
    a tuple as a list (of the same dicts, for records). ``omit``: fields left out."""
    return {f.name: _json_value(getattr(record, f.name)) for f in fields(record)
            if f.name not in omit}


class JsonRecord:
    """Base of the record dataclasses: ``to_dict()`` is their :func:`record_dict`
    (``json_omit``: fields it leaves out)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    json_omit: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self, omit=self.json_omit)


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return record_dict(value)
    return value


@dataclass(frozen=True)
class HostRecord:
    """A fleet host ``cloudYYY`` and its Docker engine endpoint."""

    name: str
    number: int
    endpoint: str
    capacity: int
    state: str
    tls: dict[str, str] | None
    used: int  # live (not tombstoned) slots on this host
    next_number: int  # the ncXX number the next allocation on this host gets
    created_at: datetime
    updated_at: datetime
    engine_id: str | None = None  # the Docker engine's ID as last probed
    engine_version: str | None = None
    # the IP address on the engine that the slots' containers publish their ports on
    publish_address: str = DEFAULT_PUBLISH_ADDRESS
    # the host port of slot nc01's app (ncXX: base + XX - 1); None: random free ports
    slot_port_base: int | None = None

    def registration(self) -> tuple[str, int, dict[str, str], str, int | None]:
        """What ``hosts add`` registered: adding the host again must name the same."""
        return (self.endpoint, self.capacity, dict(self.tls or {}), self.publish_address,
                self.slot_port_base)

    @property
    def free(self) -> int:
        return max(self.capacity - self.used, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "capacity": self.capacity,
            "used": self.used,
            "free": self.free,
            "state": self.state,
            "tls": dict(self.tls) if self.tls else None,
            "next_slot": f"nc{self.next_number:02d}",
            "engine_id": self.engine_id,
            "engine_version": self.engine_version,
            "publish_address": self.publish_address,
            "slot_port_base": self.slot_port_base,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class PracticeRecord:
    """One practice: its immutable slot and practice-level facts (no staff data)."""

    praxisname: str
    slot: Slot
    realm: str
    order_id: str
    display_name: str
    kv: str
    specialties: tuple[str, ...]
    billable_seats: int
    state: str
    created_at: datetime
    updated_at: datetime
    former_names: tuple[str, ...] = ()
    # former names still in their rename grace period: the start page redirects them
    redirecting_names: tuple[str, ...] = ()
    last_smoke: str | None = None  # JSON text written by the smoke check
    apps: tuple[str, ...] = ()  # Nextcloud app ids as ordered (spreed, deck, ...)
    practice_id: str = ""  # UUID4, never changes (the owner label of the practice's objects)
    # the installation id its objects carry when it is not this inventory's (explicit adopt)
    owner_installation: str | None = None
    # decommission: SHA-256 of the export of the run that began deleting (else None)
    export_sha256: str | None = None
    # "basis" / "premium" (domain.packages); None: provisioned before the inventory kept it
    package: str | None = None
    # the identity shard (settings: identity_shards) that holds its realm; never changes
    identity_shard: str = PRIMARY_SHARD

    @property
    def slot_id(self) -> str:
        return self.slot.id

    @property
    def host(self) -> str:
        return self.slot.host

    @property
    def tombstoned(self) -> bool:
        return self.state == "tombstoned"

    def to_dict(self) -> dict[str, Any]:
        return {
            "praxisname": self.praxisname,
            "practice_id": self.practice_id,
            "slot": self.slot.id,
            "host": self.slot.host,
            "realm": self.realm,
            "identity_shard": self.identity_shard,
            "order_id": self.order_id,
            "display_name": self.display_name,
            "kv": self.kv,
            "specialties": list(self.specialties),
            "billable_seats": self.billable_seats,
            "apps": list(self.apps),
            "package": self.package,
            "state": self.state,
            "former_names": list(self.former_names),
            "redirecting_names": list(self.redirecting_names),
            "last_smoke": self.last_smoke,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class _Run:
    """What an operation and each of its steps have: the operation, a state and a time span."""

    op_id: str
    state: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class OperationRecord(_Run):
    """One run of an operation (provision, rename, decommission ...) on a praxisname.
    ``state`` is one of ``OPERATION_STATES``; one operation per praxisname is ``running``."""

    kind: str
    praxisname: str
    hostname: str
    pid: int
    """Host and process of the run: a ``running`` one whose process is gone was interrupted."""


@dataclass(frozen=True, kw_only=True)
class JournalEntry(_Run):
    """One step of an operation; one row per (op_id, step), updated in place. ``state`` is
    one of ``STEP_STATES``; ``started`` and never ended: the run stopped inside the step."""

    step: str
    seq: int
    """The step's place in its operation (1, 2, ...), in the order the steps ran."""
    detail: str
    updated_at: datetime


@dataclass(frozen=True)
class Event(JsonRecord):
    """A business event (billing hook): provisioned with seats, renamed, decommissioned."""

    id: int
    kind: str
    praxisname: str
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
