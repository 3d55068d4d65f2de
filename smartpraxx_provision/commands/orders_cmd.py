"""The order service and what ops do with orders and billing: ``serve``, ``orders …``,
``billing …``, ``starter submit``, ``suspend``/``resume``, ``change-package``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import DryRunOpt, JsonOpt, add_commands, emit, group, op_context

if TYPE_CHECKING:
    from ..operations.context import OpContext

def _done(doc: dict[str, Any], what: str, dry_run: bool) -> list[str]:
    """The human lines of a suspend/resume/change-package: its plan, then the outcome."""
    return [*doc.get("plan", []), "(dry run, nothing changed)" if dry_run else f"{what}: done"]


def _subscription(
    ctx: typer.Context, praxisname: str, *, suspend_it: bool, dry_run: bool, json_out: bool
) -> None:
    from ..operations import subscription

    op = op_context(ctx, json_out)
    if dry_run:
        doc = subscription.plan(op, praxisname, suspend_it=suspend_it)
    elif suspend_it:
        doc = subscription.suspend(op, praxisname)
    else:
        doc = subscription.resume(op, praxisname)
    verb = "suspend" if suspend_it else "resume"
    emit(ctx, json_out, doc, _done(doc, f"{verb} {praxisname}", dry_run))


def _serve(op: OpContext, host: str | None, port: int | None) -> None:
    import logging

    from ..service.app import serve as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(op, host=host or op.settings.service_host, port=port or op.settings.service_port)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port.")] = None,
) -> None:
    """Run the order service (shop webhook, Starter Excel upload) and its worker."""
    _serve(op_context(ctx, False), host, port)

def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Every order with its state."""
    from ..operations.orders_admin import list_orders

    found = list_orders(op_context(ctx, json_out))
    emit(ctx, json_out, {"ok": True, "orders": [o.to_dict() for o in found]},
         [f"{o.order_id:<16} {o.state:<14} {o.package:<8} {o.praxisname or '-':<24} "
          f"{'suspended ' if o.suspended else ''}{o.attention}" for o in found]
         or ["no orders"])

def show(ctx: typer.Context, order_id: str, json_out: JsonOpt = False) -> None:
    """One order with its deliveries."""
    from ..operations.orders import order_details

    doc = order_details(op_context(ctx, json_out), order_id)
    emit(ctx, json_out, {"ok": True, "order": doc},
         [f"{k}: {v}" for k, v in doc.items() if k != "deliveries"]
         + [f"  delivery {d['key']} {d['event']} {d['state']}: {d['result']}"
            for d in doc["deliveries"]])

def work(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Process every queued delivery now and deliver due billing events (no service)."""
    from ..operations.orders_admin import work_queue

    doc = work_queue(op_context(ctx, json_out))
    emit(ctx, json_out, doc,
         [f"processed {len(doc['processed'])} deliveries; billing {doc['billing']}"])

def webhook_url(
    ctx: typer.Context,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the URL with its secret "
                                         "token (to paste into the shop).")] = False,
) -> None:
    """The URL to enter in the shop's webhook settings."""
    from ..operations.orders_admin import webhook_url

    typer.echo(webhook_url(op_context(ctx, False), reveal=reveal))

def suspend(
    ctx: typer.Context, praxisname: str, dry_run: DryRunOpt = False, json_out: JsonOpt = False
) -> None:
    """Suspend a practice: Nextcloud in maintenance, realm logins off, data untouched."""
    _subscription(ctx, praxisname, suspend_it=True, dry_run=dry_run, json_out=json_out)

def resume(
    ctx: typer.Context, praxisname: str, dry_run: DryRunOpt = False, json_out: JsonOpt = False
) -> None:
    """Resume a suspended practice."""
    _subscription(ctx, praxisname, suspend_it=False, dry_run=dry_run, json_out=json_out)

def change_package(
    ctx: typer.Context,
    praxisname: str,
    package: Annotated[str, typer.Argument(help="Basis or Premium.")],
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Change a practice's package (Basis ↔ Premium): Nextcloud converged, billed once."""
    from ..operations import packages

    op = op_context(ctx, json_out)
    wanted = packages.require_package(package)
    doc = (packages.plan(op, praxisname, wanted) if dry_run
           else packages.change_package(op, praxisname, wanted))
    emit(ctx, json_out, doc, _done(doc, f"change-package {praxisname}", dry_run))

def pending(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Billing events not yet delivered, and the dead letters."""
    from ..operations.orders_admin import pending_billing

    rows = pending_billing(op_context(ctx, json_out))
    emit(ctx, json_out, {"ok": True, "pending": [r.to_dict() for r in rows]},
         [f"{r.event_id:>6} {r.state:<8} {r.kind:<16} {r.praxisname:<24} "
          f"attempts={r.attempts} {r.last_error}" for r in rows] or ["nothing pending"])

def replay(ctx: typer.Context, event_id: int, json_out: JsonOpt = False) -> None:
    """Send a pending or dead billing event again now."""
    from ..operations.orders_admin import replay_billing

    doc = replay_billing(op_context(ctx, json_out), event_id)
    emit(ctx, json_out, doc, [f"billing event {event_id} replayed: {doc['billing']}"])


def register(app: typer.Typer) -> None:
    add_commands(app, {"serve": serve, "suspend": suspend, "resume": resume,
                       "change-package": change_package})
    group(app, "orders", "Shop orders and their webhook deliveries.",
          {"list": list_, "show": show, "work": work, "webhook-url": webhook_url})
    group(app, "billing", "Billing events on their way to the billing endpoint.",
          {"pending": pending, "replay": replay})


def submit(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The returned Starter Excel (.xlsx).")],
    json_out: JsonOpt = False,
) -> None:
    """Check a returned Starter Excel for its order (Bestellnummer) and provision it."""
    from ..operations.orders import order_of_file, submit_file

    doc = submit_file(op_context(ctx, json_out), order_of_file(file), file)
    emit(ctx, json_out, doc, [f"order {doc['order_id']}: {doc['praxisname']} provisioned"])
