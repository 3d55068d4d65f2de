"""``dev-stack up|down|status|mail``: the local stack (Docker engine, images, Keycloak, mail)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ..output import Reporter
from .common import MachineJsonOpt, emit, group

RebuildOpt = Annotated[bool, typer.Option("--rebuild", help="Rebuild the service images (no cache).")]
RebuildBaseOpt = Annotated[
    bool, typer.Option("--rebuild-base", help="Also re-run debootstrap for the base image.")
]


def _summary(result: dict[str, Any]) -> Iterator[str]:
    timings = result.get("timings") or {}
    parts = [f"{name} {secs:.1f}s" for name, secs in timings.items()]
    if parts:
        yield "timings: " + ", ".join(parts)


def _status_lines(result: dict[str, Any]) -> Iterator[str]:
    eng = result["engine"]
    yield (
        f"docker engine: {'answers' if eng['answers'] else 'DOWN'} at {eng['url']}"
        + (f" ({eng['version']})" if eng.get("version") else "")
        + (
            f", started by dev-stack (pid {eng['started_by_devstack_pid']})"
            if eng.get("started_by_devstack_pid")
            else ""
        )
    )
    images = result["images"]
    if "error" in images:
        yield f"images: unknown ({images['error']})"
    else:
        for key, info in images.items():
            state = "present" if info["present"] else "MISSING"
            yield f"image {key}: {info['tag']} {state}"
    kc = result["keycloak"]
    kc_state = "answers" if kc.get("answers") else kc.get("status", "DOWN")
    yield f"keycloak: {kc_state}" + (f" at {kc['url']}" if kc.get("url") else "")
    mail = result.get("mail") or {}
    yield (
        f"mail sink: {'answers' if mail.get('answers') else 'DOWN'} at {mail.get('url')}"
        f" ({mail.get('messages', 0)} messages in {mail.get('mailbox')})"
    )
    px = result.get("proxy") or {}
    yield (
        f"tls proxy: {'answers' if px.get('answers') else 'DOWN'} at https://"
        f"{px.get('https')} (CA {px.get('ca_certificate')})"
    )


def _message_lines(message: dict[str, Any]) -> Iterator[str]:
    for key in ("id", "date", "from", "subject"):
        yield f"{key}: {message[key]}"
    yield f"to: {', '.join(message['to'])}"
    yield ""
    yield message["text"]


def up(
    ctx: typer.Context,
    rebuild: RebuildOpt = False,
    rebuild_base: RebuildBaseOpt = False,
    json_out: MachineJsonOpt = False,
) -> None:
    """Bring the local stack up; a second run only reports what already runs."""
    from ..devstack import stack

    result = stack.up(ctx.obj.settings, Reporter(), rebuild, rebuild_base=rebuild_base)
    emit(ctx, json_out, result, _summary(result), err=True)

def down(ctx: typer.Context, json_out: MachineJsonOpt = False) -> None:
    """Stop Keycloak, the mail sink and dockerd if dev-stack started them; images stay."""
    from ..devstack import stack

    emit(ctx, json_out, stack.down(ctx.obj.settings, Reporter()))

def status(ctx: typer.Context, json_out: MachineJsonOpt = False) -> None:
    """Show what runs and which images are cached (changes nothing). Exit 1 if incomplete."""
    from ..devstack import stack

    result = stack.status(ctx.obj.settings)
    emit(ctx, json_out, result, _status_lines(result), code=0 if result["ok"] else 1)

def mail_list(ctx: typer.Context, json_out: MachineJsonOpt = False) -> None:
    """List the captured mails, oldest first."""
    from ..devstack import mailsink

    messages = mailsink.list_messages(ctx.obj.settings)
    empty = [f"no mails in {mailsink.mailbox_dir(ctx.obj.settings)}"] if not messages else []
    emit(ctx, json_out, {"ok": True, "messages": messages},
         [*empty, *(f"{m['id']}  {', '.join(m['to'])}  {m['subject']}" for m in messages)])

def mail_show(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(help="The id from 'dev-stack mail list'.")],
    json_out: MachineJsonOpt = False,
) -> None:
    """Show one captured mail: headers, text and its links."""
    from ..devstack import mailsink

    message = mailsink.show_message(ctx.obj.settings, message_id)
    emit(ctx, json_out, {"ok": True, "message": message}, _message_lines(message))


FleetHostArg = Annotated[str, typer.Argument(help="The test fleet host's name, e.g. cloud002.")]


def fleet_host_up(ctx: typer.Context, name: FleetHostArg, json_out: MachineJsonOpt = False) -> None:
    """Start a test fleet host (docker-in-docker engine, mutual TLS on 127.0.0.1).

    Prints the hosts add command that registers it."""
    from ..devstack import fleet_host

    host = fleet_host.ensure_fleet_host(ctx.obj.settings, Reporter(), name)
    add = "smartpraxx-provision " + " ".join(host.hosts_add_args())
    emit(ctx, json_out, {"ok": True, "host": name, "endpoint": host.endpoint, "tls": host.tls,
                         "slot_ports": list(host.ports), "hosts_add": add},
         [f"test fleet host {name}: engine {host.endpoint} (mutual TLS), slot ports "
          f"{host.ports[0]}-{host.ports[1]} on 127.0.0.1", f"register it: {add}"])


def fleet_host_stop(ctx: typer.Context, name: FleetHostArg, json_out: MachineJsonOpt = False) -> None:
    """Stop a test fleet host (its engine and every slot on it): an honest "host down"."""
    from ..devstack import fleet_host

    stopped = fleet_host.stop_fleet_host(ctx.obj.settings, name)
    emit(ctx, json_out, {"ok": True, "host": name, "stopped": stopped},
         [f"test fleet host {name} {'stopped' if stopped else 'was not running'}"])


def fleet_host_down(ctx: typer.Context, name: FleetHostArg, json_out: MachineJsonOpt = False) -> None:
    """Remove a test fleet host and its engine volume (everything on it is gone)."""
    from ..devstack import fleet_host

    removed = fleet_host.remove_fleet_host(ctx.obj.settings, name)
    emit(ctx, json_out, {"ok": True, "host": name, "removed": removed},
         [f"test fleet host {name} {'removed' if removed else 'did not exist'}"])


def register(app: typer.Typer) -> None:
    stack_app = group(
        app, "dev-stack", "The local stack: Docker engine, local images, Keycloak, mail sink.",
        {"up": up, "down": down, "status": status},
    )
    group(stack_app, "mail", "The local mail sink's mailbox: what the realms sent.",
          {"list": mail_list, "show": mail_show})
    group(stack_app, "fleet-host",
          "Test fleet hosts: docker-in-docker engines over mutual TLS (not for production).",
          {"up": fleet_host_up, "stop": fleet_host_stop, "down": fleet_host_down})
