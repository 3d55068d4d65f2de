"""Fleet hosts in the inventory: add, change, activate, drain — each checked against the
engine itself.

``hosts add`` and ``hosts set --endpoint`` probe the endpoint first (the Docker API answers,
and which engine it is: its ID and version). An endpoint that does not answer is refused
with exit 1 and nothing is registered or changed. ``--bootstrapping`` registers a host whose
engine is not up yet without a probe (it takes no practices); ``hosts activate`` probes it.
When practices live on a host, moving its endpoint to a different engine (another engine
ID) is refused: their containers are on the old one.

A host's *publish address* (``--publish-address``, default 127.0.0.1) is the IP address on
its engine that the slots' containers publish their ports on: a host whose front proxy
reaches the slots from outside the engine's loopback (the docker-in-docker test hosts)
publishes on 0.0.0.0. Changing it needs no probe; the next converge of a slot recreates its
containers that publish ports.

A host's *slot port base* (``--slot-port-base N``, default none) fixes the host port of each
slot's Nextcloud app: ``ncXX`` publishes on ``N + XX - 1``, so the host's routes still fit
after its engine restarts. Without it the engine picks random ports, anew at each start.
Changing it needs no probe; the next converge of a slot recreates its app container.

Placement (``provision`` of a new practice) probes the candidate hosts and skips any whose
engine does not answer, so an unreachable host gets no new practices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, NotFoundError, ServiceUnavailableError
from ..inventory import HostRecord, Inventory
from ..inventory.models import DEFAULT_PUBLISH_ADDRESS
from ..inventory.store import (
    validate_endpoint,
    validate_publish_address,
    validate_slot_port_base,
)
from .context import OpContext

PROBE_TIMEOUT = 10  # seconds for one engine probe


def probe_engine(endpoint: str, tls: dict[str, str] | None, host: str) -> dict[str, str]:
    """``{"id", "version", ...}`` of the Docker engine at ``endpoint``; raises
    ServiceUnavailableError naming the host when it does not answer."""
    from ..adapters.docker_engine import DockerEngine

    engine = DockerEngine(endpoint, tls=tls, timeout=PROBE_TIMEOUT)
    try:
        facts = engine.ping()
    except ServiceUnavailableError as err:
        raise ServiceUnavailableError(
            f"host {host}: the Docker engine at {endpoint} does not answer; nothing was changed",
            obj=host,
            hint=f"check the engine and the endpoint, then re-run (or hosts add {host} "
            "--bootstrapping to register it before its engine is up)",
            details={"endpoint": endpoint, "cause": err.message},
        ) from err
    finally:
        engine.close()
    if not facts.get("id"):
        raise ServiceUnavailableError(
            f"host {host}: {endpoint} answered but reported no engine ID",
            obj=host,
            hint="is this a Docker engine?",
        )
    return facts


def engine_answers(record: HostRecord) -> bool:
    try:
        probe_engine(record.endpoint, record.tls, record.name)
    except ServiceUnavailableError:
        return False
    return True


@dataclass
class HostChange:
    host: HostRecord
    changed: bool
    engine: dict[str, str] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "changed": self.changed,
            "host": self.host.to_dict(),
            "engine": self.engine,
        }


def unknown_host(name: str) -> NotFoundError:
    return NotFoundError(f"host {name} is not in the inventory", obj=name,
                         hint=f"smartpraxx-provision hosts add {name} --endpoint ...")


def _require(inv: Inventory, name: str) -> HostRecord:
    record = inv.get_host(name)
    if record is None:
        raise unknown_host(name)
    return record


def _engine_facts(engine: dict[str, str] | None) -> dict[str, str] | None:
    """The probed facts the inventory keeps of an engine."""
    return {"id": engine["id"], "version": engine["version"]} if engine else None


def list_hosts(ctx: OpContext) -> list[HostRecord]:
    """Every host with state, used/capacity and the next slot number."""
    return ctx.inventory.list_hosts()


def add_host_plan(
    ctx: OpContext, name: str, endpoint: str, *, capacity: int, tls: dict[str, str] | None,
    bootstrapping: bool, publish_address: str = DEFAULT_PUBLISH_ADDRESS,
    slot_port_base: int | None = None,
) -> dict[str, Any]:
    """What ``hosts add --dry-run`` shows (the endpoint is checked, the engine not probed)."""
    validate_endpoint(endpoint, tls)
    return {
        "host": name,
        "endpoint": endpoint,
        "capacity": capacity,
        "publish_address": validate_publish_address(publish_address, name),
        "slot_port_base": validate_slot_port_base(slot_port_base, capacity, name),
        "state": "bootstrapping" if bootstrapping else "active",
        "exists": ctx.inventory.get_host(name) is not None,
        "probe": "no (bootstrapping)" if bootstrapping else "the engine must answer",
    }


def add_host(
    ctx: OpContext,
    name: str,
    endpoint: str,
    *,
    capacity: int,
    tls: dict[str, str] | None,
    bootstrapping: bool,
    publish_address: str = DEFAULT_PUBLISH_ADDRESS,
    slot_port_base: int | None = None,
) -> HostChange:
    """Register a host after probing its engine (unprobed with ``bootstrapping``); a host
    registered with the same settings is left as it is, with other settings refused."""
    validate_endpoint(endpoint, tls)
    address = validate_publish_address(publish_address, name)
    validate_slot_port_base(slot_port_base, capacity, name)
    existing = ctx.inventory.get_host(name)
    if existing is not None and existing.registration() != (
        endpoint, capacity, tls or {}, address, slot_port_base
    ):
        raise ConflictError(
            f"host {name} exists with other settings; nothing was changed",
            obj=name,
            hint=f"smartpraxx-provision hosts set {name} "
            "--endpoint/--capacity/--tls-*/--publish-address/--slot-port-base ...",
        )
    if existing is not None:
        ctx.reporter.skip(f"host {name} exists, up to date")
        return HostChange(existing, False, None)
    engine = None if bootstrapping else probe_engine(endpoint, tls, name)
    state = "bootstrapping" if bootstrapping else "active"
    record = ctx.inventory.add_host(
        name, endpoint, capacity=capacity, state=state, tls=tls, engine=_engine_facts(engine),
        publish_address=address, slot_port_base=slot_port_base,
    )
    seen = f"; engine {engine['id']} (Docker {engine['version']})" if engine else ""
    where = f", publish address {address}" if address != DEFAULT_PUBLISH_ADDRESS else ""
    where += f", slot ports from {slot_port_base}" if slot_port_base is not None else ""
    ctx.reporter.change(
        f"host {name} added ({endpoint}, capacity {capacity}, {state}{where}){seen}"
    )
    return HostChange(record, True, engine)


def _probe_moved_endpoint(
    current: HostRecord, endpoint: str, tls: dict[str, str] | None
) -> dict[str, str]:
    """Probe a host's new endpoint/TLS; refuse another engine than its practices live on."""
    name = current.name
    engine = probe_engine(endpoint, tls, name)
    if current.used and current.engine_id and engine["id"] != current.engine_id:
        raise ConflictError(
            f"host {name}: {endpoint} is another Docker engine (ID {engine['id']}) than "
            f"the one its {current.used} practice(s) live on (ID {current.engine_id}); "
            "nothing was changed",
            obj=name,
            hint="point the endpoint at the host's own engine",
        )
    return engine


def set_host(
    ctx: OpContext,
    name: str,
    *,
    endpoint: str | None = None,
    capacity: int | None = None,
    tls: dict[str, str] | bool | None = False,
    publish_address: str | None = None,
    slot_port_base: int | bool | None = False,
    dry_run: bool = False,
) -> HostChange:
    """Change endpoint, TLS files, capacity, publish address or slot port base (``None``:
    random ports again, ``False``: unchanged); an endpoint/TLS change re-probes the engine."""
    inv = ctx.inventory
    current = _require(inv, name)
    new_endpoint = endpoint if endpoint is not None else current.endpoint
    new_tls = current.tls if tls is False else tls
    assert not isinstance(new_tls, bool)
    validate_endpoint(new_endpoint, new_tls)
    address = (
        current.publish_address
        if publish_address is None
        else validate_publish_address(publish_address, name)
    )
    base = current.slot_port_base if slot_port_base is False else slot_port_base
    assert not isinstance(base, bool)
    validate_slot_port_base(base, current.capacity if capacity is None else capacity, name)
    engine: dict[str, str] | None = None
    if (new_endpoint, new_tls) != (current.endpoint, current.tls):
        engine = _probe_moved_endpoint(current, new_endpoint, new_tls)
    changed = (new_endpoint, new_tls, address, base) != (
        current.endpoint, current.tls, current.publish_address, current.slot_port_base
    ) or (capacity is not None and capacity != current.capacity)
    if dry_run or not changed:
        if not dry_run:
            ctx.reporter.skip(f"host {name} is up to date")
        return HostChange(current, changed, engine)
    record = inv.update_host(
        name, endpoint=new_endpoint, capacity=capacity, tls=new_tls, engine=_engine_facts(engine),
        publish_address=address, slot_port_base=base,
    )
    ctx.engines_reset(name)
    where = (
        f", publish address {record.publish_address}"
        if address != current.publish_address
        else ""
    )
    if base != current.slot_port_base:
        where += f", slot ports from {base}" if base is not None else ", random slot ports"
    ctx.reporter.change(
        f"host {name}: endpoint {record.endpoint}, capacity {record.capacity}{where}"
    )
    return HostChange(record, True, engine)


def set_host_state(ctx: OpContext, name: str, state: str, *, dry_run: bool = False) -> HostChange:
    """``active`` probes the engine first (a host whose engine is down is not activated)."""
    inv = ctx.inventory
    current = _require(inv, name)
    changed = current.state != state
    engine = None
    if changed and state == "active":
        engine = probe_engine(current.endpoint, current.tls, name)
    if dry_run:
        return HostChange(current, changed, engine)
    if not changed:
        ctx.reporter.skip(f"host {name} is {state}, up to date")
        return HostChange(current, False, engine)
    if engine is not None:
        inv.update_host(name, engine=_engine_facts(engine))
    record = inv.set_host_state(name, state)
    ctx.reporter.change(f"host {name}: {current.state} -> {state}")
    return HostChange(record, True, engine)


def host_state_plan(ctx: OpContext, name: str, state: str) -> dict[str, Any]:
    """What ``hosts drain|activate --dry-run`` shows: the move, checked like the real run."""
    change = set_host_state(ctx, name, state, dry_run=True)
    return {"host": name, "from": change.host.state, "to": state, "changed": change.changed}


def unreachable_candidates(ctx: OpContext) -> list[str]:
    """Active hosts with room whose engine does not answer now (placement skips them)."""
    out = []
    for record in ctx.inventory.list_hosts():
        if record.state != "active" or record.free <= 0:
            continue
        if not engine_answers(record):
            ctx.reporter.warn(
                f"host {record.name}: engine at {record.endpoint} does not answer; "
                "it gets no new practice"
            )
            out.append(record.name)
    return out


def require_reachable(ctx: OpContext, host: str) -> None:
    """A pinned host must answer before a slot is allocated on it."""
    record = _require(ctx.inventory, host)
    probe_engine(record.endpoint, record.tls, host)
