"""Fleet hosts in the inventory: add, change, activate, drain — each checked against the
engine itself.

``hosts add`` and ``hosts set --endpoint`` probe the endpoint first (the Docker API answers,
and which engine it is: its ID and version). An endpoint that does not answer is refused
with exit 1 and nothing is registered or changed. ``--bootstrapping`` registers a host whose
engine is not up yet without a probe (it takes no practices); ``hosts activate`` probes it.
When practices live on a host, moving its endpoint to a different engine (another engine
ID) is refused: their containers are on the old one.

Placement (``provision`` of a new practice) probes the candidate hosts and skips any whose
engine does not answer, so an unreachable host gets no new practices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, NotFoundError, ServiceUnavailableError
from ..inventory import HostRecord, Inventory
from ..inventory.store import validate_endpoint
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


def _require(inv: Inventory, name: str) -> HostRecord:
    record = inv.get_host(name)
    if record is None:
        raise NotFoundError(
            f"host {name} is not in the inventory",
            obj=name,
            hint=f"smartpraxx-provision hosts add {name} --endpoint ...",
        )
    return record


def add_host(
    ctx: OpContext,
    name: str,
    endpoint: str,
    *,
    capacity: int,
    tls: dict[str, str] | None,
    bootstrapping: bool,
) -> HostChange:
    validate_endpoint(endpoint, tls)
    existing = ctx.inventory.get_host(name)
    if existing is not None and (existing.endpoint, existing.capacity, existing.tls or {}) != (
        endpoint,
        capacity,
        tls or {},
    ):
        raise ConflictError(
            f"host {name} exists with other settings; nothing was changed",
            obj=name,
            hint=f"smartpraxx-provision hosts set {name} --endpoint/--capacity/--tls-* ...",
        )
    if existing is not None:
        return HostChange(existing, False, None)
    engine = None if bootstrapping else probe_engine(endpoint, tls, name)
    state = "bootstrapping" if bootstrapping else "active"
    if existing is not None:
        state = existing.state
    record = ctx.inventory.add_host(
        name,
        endpoint,
        capacity=capacity,
        state=state,
        tls=tls,
        engine={"id": engine["id"], "version": engine["version"]} if engine else None,
    )
    return HostChange(record, existing is None, engine)


def set_host(
    ctx: OpContext,
    name: str,
    *,
    endpoint: str | None = None,
    capacity: int | None = None,
    tls: dict[str, str] | bool | None = False,
    dry_run: bool = False,
) -> HostChange:
    """Change endpoint, TLS files or capacity; an endpoint/TLS change re-probes the engine."""
    inv = ctx.inventory
    current = _require(inv, name)
    new_endpoint = endpoint if endpoint is not None else current.endpoint
    new_tls = current.tls if tls is False else tls
    assert not isinstance(new_tls, bool)
    validate_endpoint(new_endpoint, new_tls)
    engine: dict[str, str] | None = None
    if (new_endpoint, new_tls) != (current.endpoint, current.tls):
        engine = probe_engine(new_endpoint, new_tls, name)
        if current.used and current.engine_id and engine["id"] != current.engine_id:
            raise ConflictError(
                f"host {name}: {new_endpoint} is another Docker engine (ID {engine['id']}) than "
                f"the one its {current.used} practice(s) live on (ID {current.engine_id}); "
                "nothing was changed",
                obj=name,
                hint="point the endpoint at the host's own engine",
            )
    changed = (new_endpoint, new_tls) != (current.endpoint, current.tls) or (
        capacity is not None and capacity != current.capacity
    )
    if dry_run or not changed:
        return HostChange(current, changed, engine)
    record = inv.update_host(
        name,
        endpoint=new_endpoint,
        capacity=capacity,
        tls=new_tls,
        engine={"id": engine["id"], "version": engine["version"]} if engine else None,
    )
    ctx.engines_reset(name)
    return HostChange(record, True, engine)


def set_host_state(ctx: OpContext, name: str, state: str, *, dry_run: bool = False) -> HostChange:
    """``active`` probes the engine first (a host whose engine is down is not activated)."""
    inv = ctx.inventory
    current = _require(inv, name)
    changed = current.state != state
    engine = None
    if changed and state == "active":
        engine = probe_engine(current.endpoint, current.tls, name)
    if dry_run or not changed:
        return HostChange(current, changed, engine)
    if engine is not None:
        inv.update_host(name, engine={"id": engine["id"], "version": engine["version"]})
    return HostChange(inv.set_host_state(name, state), True, engine)


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
