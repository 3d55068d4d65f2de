"""``hosts add|set|list|drain|activate`` (and ``hosts bootstrap`` from fleet_cmd): the fleet
hosts ``cloudYYY`` in the inventory, their Docker engine endpoints and capacity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from .common import DryRunOpt, JsonOpt, emit, group, op_context, table

if TYPE_CHECKING:
    from ..inventory import HostRecord

HostArg = Annotated[str, typer.Argument(help="Host name, e.g. cloud023.")]
TlsCaOpt = Annotated[Path | None, typer.Option("--tls-ca", help="CA certificate.")]
TlsCertOpt = Annotated[Path | None, typer.Option("--tls-cert", help="Client certificate.")]
TlsKeyOpt = Annotated[Path | None, typer.Option("--tls-key", help="Client key.")]
# add's (declarations too long for their parameter's line)
EndpointOpt = Annotated[
    str,
    typer.Option(
        "--endpoint",
        help="unix:///var/run/docker.sock | ssh://user@host | tcp://host:2376 (with --tls-*).",
    ),
]
BootstrappingOpt = Annotated[
    bool, typer.Option("--bootstrapping", help="Register it as not yet ready.")
]
_PUBLISH_HELP = (
    "IP address on the engine the slots' containers publish their ports on (0.0.0.0 for a "
    "docker-in-docker test host)."
)
PublishOpt = Annotated[str, typer.Option("--publish-address", help=_PUBLISH_HELP)]
SetPublishOpt = Annotated[str | None, typer.Option("--publish-address", help=_PUBLISH_HELP)]
PortBaseOpt = Annotated[
    int | None,
    typer.Option(
        "--slot-port-base",
        help="Fixed app ports: slot ncXX publishes on N+XX-1, so routes survive an engine "
        "restart (0: random ports, the default).",
    ),
]


def _tls(ca: Path | None, cert: Path | None, key: Path | None) -> dict[str, str] | None:
    given = {"ca": ca, "cert": cert, "key": key}
    if not any(given.values()):
        return None
    missing = [f"--tls-{k}" for k, v in given.items() if v is None]
    if missing:
        raise UsageError(
            f"TLS needs all of --tls-ca, --tls-cert, --tls-key (missing {', '.join(missing)})",
            obj="--tls-*",
            hint="pass the CA, client certificate and client key of the Docker engine",
        )
    out: dict[str, str] = {}
    for k, v in given.items():
        assert v is not None
        if not v.is_file():
            raise UsageError(f"TLS file {v} does not exist", obj=str(v), hint=f"fix --tls-{k}")
        out[k] = str(v.resolve())
    return out


def _set_tls(
    tls_ca: Path | None, tls_cert: Path | None, tls_key: Path | None, no_tls: bool
) -> dict[str, str] | bool | None:
    """``hosts set``'s TLS change: the files, ``None`` (drop them) or ``False`` (unchanged)."""
    given = _tls(tls_ca, tls_cert, tls_key)
    if given is not None and no_tls:
        raise UsageError("--no-tls and --tls-* exclude each other", obj="--no-tls")
    if given is not None:
        return given
    return None if no_tls else False


def _publish(h: HostRecord) -> str:
    """The endpoint column's note of a publish address other than the default and of a
    slot port base."""
    notes = [f"publish {h.publish_address}"] if h.publish_address != "127.0.0.1" else []
    if h.slot_port_base is not None:
        notes.append(f"slot ports {h.slot_port_base}+")
    return f" ({', '.join(notes)})" if notes else ""


def _port_base(given: int | None) -> int | None:
    """``--slot-port-base`` as the operations take it: 0 for random ports is ``None``."""
    return None if given == 0 else given


def _host_rows(hosts: list[HostRecord]) -> Iterator[str]:
    return table(
        f"{'HOST':<10} {'STATE':<14} {'USED':>9} {'NEXT':<6} {'TLS':<4} ENDPOINT",
        (f"{h.name:<10} {h.state:<14} {f'{h.used}/{h.capacity}':>9} nc{h.next_number:02d}   "
         f"{'yes' if h.tls else 'no':<4} {h.endpoint}{_publish(h)}" for h in hosts),
        "no hosts (smartpraxx-provision hosts add cloud001 --endpoint ...)",
    )


def _owner(o: dict[str, Any]) -> str:
    owner = f"installation {o['installation']} practice {o['practice']}" if o["installation"] else "-"
    return owner + (f" ({o['praxisname']})" if o["praxisname"] else "")


def _scan_rows(name: str, result: dict[str, Any]) -> Iterator[str]:
    yield f"host {name} (this inventory is installation {result['installation']})"
    yield from table(
        f"{'SLOT':<16} {'KIND':<10} {'NAME':<26} {'VERDICT':<11} OWNER",
        (f"{o['slot']:<16} {o['kind']:<10} {o['name']:<26} {o['verdict']:<11} {_owner(o)}"
         for o in result["objects"]),
        "no slot objects",
    )


def _set_state(ctx: typer.Context, name: str, state: str, dry_run: bool, json_out: bool) -> None:
    """``hosts drain|activate``: the state move (its progress line from the operation)."""
    from ..operations.hosts import host_state_plan, set_host_state

    op = op_context(ctx, json_out)
    if dry_run:
        plan = host_state_plan(op, name, state)
        emit(ctx, json_out, {"ok": True, "dry_run": True, "plan": plan}, [
            f"would set host {name} {plan['from']} -> {state}"
            if plan["changed"]
            else f"host {name} is {state}; nothing to do"
        ])
        return
    emit(ctx, json_out, set_host_state(op, name, state).to_dict())


def add(
    ctx: typer.Context,
    name: HostArg,
    endpoint: EndpointOpt,
    capacity: Annotated[int, typer.Option("--capacity", min=0, help="Max. slots.")] = 50,
    bootstrapping: BootstrappingOpt = False,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    publish_address: PublishOpt = "127.0.0.1",
    slot_port_base: PortBaseOpt = None,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Register a host after checking its engine answers (exit 1 and nothing registered
    when it does not; --bootstrapping registers it unchecked, taking no practices)."""
    from ..operations.hosts import add_host, add_host_plan

    tls = _tls(tls_ca, tls_cert, tls_key)
    base = _port_base(slot_port_base)
    op = op_context(ctx, json_out)
    if dry_run:
        plan = add_host_plan(op, name, endpoint, capacity=capacity, tls=tls,
                             bootstrapping=bootstrapping, publish_address=publish_address,
                             slot_port_base=base)
        emit(ctx, json_out, {"ok": True, "dry_run": True, "plan": plan}, [
            f"would add host {name} ({endpoint}, capacity {capacity}, {plan['state']})"
            if not plan["exists"]
            else f"host {name} exists; nothing to add"
        ])
        return
    result = add_host(
        op, name, endpoint, capacity=capacity, tls=tls, bootstrapping=bootstrapping,
        publish_address=publish_address, slot_port_base=base,
    )
    emit(ctx, json_out, result.to_dict())

def set_(
    ctx: typer.Context,
    name: HostArg,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="New Docker engine endpoint.")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option("--capacity", min=0, help="New max. slots.")
    ] = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    no_tls: Annotated[bool, typer.Option("--no-tls", help="Drop the TLS files.")] = False,
    publish_address: SetPublishOpt = None,
    slot_port_base: PortBaseOpt = None,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Change a host's endpoint, TLS files, capacity, publish address or slot port base
    (a new endpoint must answer)."""
    from ..operations.hosts import set_host

    tls = _set_tls(tls_ca, tls_cert, tls_key, no_tls)
    if (endpoint, capacity, publish_address, slot_port_base) == (None,) * 4 and tls is False:
        raise UsageError(
            "nothing to change", obj=name, hint=f"smartpraxx-provision hosts set {name} --help"
        )
    op = op_context(ctx, json_out)
    base: int | bool | None = False if slot_port_base is None else _port_base(slot_port_base)
    result = set_host(op, name, endpoint=endpoint, capacity=capacity, tls=tls,
                      publish_address=publish_address, slot_port_base=base, dry_run=dry_run)
    would = f"would change host {name}" if result.changed else f"host {name}: nothing to change"
    emit(ctx, json_out, {**result.to_dict(), "dry_run": dry_run}, [would] if dry_run else [])

def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Hosts with state, used/capacity and the next slot number."""
    from ..operations.hosts import list_hosts

    hosts = list_hosts(op_context(ctx, json_out))
    emit(ctx, json_out, {"ok": True, "hosts": [h.to_dict() for h in hosts]}, _host_rows(hosts))

def drain(
    ctx: typer.Context, name: HostArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False
) -> None:
    """Stop placing new practices on the host (existing ones stay)."""
    _set_state(ctx, name, "draining", dry_run, json_out)

def activate(
    ctx: typer.Context, name: HostArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False
) -> None:
    """Let the host take new practices again."""
    _set_state(ctx, name, "active", dry_run, json_out)

def scan(ctx: typer.Context, name: HostArg, json_out: JsonOpt = False) -> None:
    """What lives on the host (slot objects, realms) and whose it is: ours / orphan
    (this installation's, unknown to this inventory) / foreign / unlabelled."""
    from ..operations.ownership import scan_host

    result = scan_host(op_context(ctx, json_out), name)
    emit(ctx, json_out, result, _scan_rows(name, result))


def register(app: typer.Typer) -> None:
    hosts_app = group(app, "hosts", "Fleet hosts (cloudYYY) and their Docker engines.", {
        "add": add, "set": set_, "list": list_, "drain": drain, "activate": activate,
        "scan": scan,
    })
    try:
        from .fleet_cmd import add_bootstrap_command
    except ImportError:  # pragma: no cover - fleet commands not installed
        pass
    else:
        add_bootstrap_command(hosts_app)
