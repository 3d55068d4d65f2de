"""The order service and what ops do with orders and billing: ``serve``, ``orders …``,
``billing …``, ``starter submit``, ``suspend``/``resume``, ``change-package``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..output import print_json
from .ops_cmd import DryRunOpt, JsonOpt, _context


def _emit(doc: dict[str, Any], json_out: bool, lines: list[str]) -> None:
    if json_out:
        print_json(doc)
    else:
        for line in lines:
            typer.echo(line)


def register(app: typer.Typer) -> None:
    orders_app = typer.Typer(help="Shop orders and their webhook deliveries.",
                             no_args_is_help=True)
    billing_app = typer.Typer(help="Billing events on their way to the billing endpoint.",
                              no_args_is_help=True)

    @app.command()
    def serve(
        ctx: typer.Context,
        host: Annotated[str | None, typer.Option("--host", help="Bind address.")] = None,
        port: Annotated[int | None, typer.Option("--port", help="Port.")] = None,
    ) -> None:
        """Run the order service (shop webhook, Starter Excel upload) and its worker."""
        import logging

        from ..service.app import serve as run

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        op = _context(ctx, False)
        run(op, host=host or op.settings.service_host, port=port or op.settings.service_port)

    @orders_app.command("list")
    def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Every order with its state."""
        from ..inventory.orders import OrderBook

        found = OrderBook(_context(ctx, json_out).inventory).list_orders()
        _emit({"ok": True, "orders": [o.to_dict() for o in found]}, json_out,
              [f"{o.order_id:<16} {o.state:<14} {o.package:<8} {o.praxisname or '-':<24} "
               f"{'suspended ' if o.suspended else ''}{o.attention}" for o in found]
              or ["no orders"])

    @orders_app.command("show")
    def show(ctx: typer.Context, order_id: str, json_out: JsonOpt = False) -> None:
        """One order with its deliveries."""
        from ..operations.orders import order_details

        doc = order_details(_context(ctx, json_out), order_id)
        _emit({"ok": True, "order": doc}, json_out,
              [f"{k}: {v}" for k, v in doc.items() if k != "deliveries"]
              + [f"  delivery {d['key']} {d['event']} {d['state']}: {d['result']}"
                 for d in doc["deliveries"]])

    @orders_app.command("work")
    def work(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Process every queued delivery now and deliver due billing events (no service)."""
        from ..inventory.orders import OrderBook
        from ..operations.orders import deliver_billing, work_once

        op = _context(ctx, json_out)
        book = OrderBook(op.inventory)
        done = []
        for _ in range(10_000):
            d = work_once(op, book)
            if d is None:
                break
            done.append(d.key)
        billing = deliver_billing(op, book)
        _emit({"ok": True, "processed": done, "billing": billing}, json_out,
              [f"processed {len(done)} deliveries; billing {billing}"])

    @orders_app.command("webhook-url")
    def webhook_url(
        ctx: typer.Context,
        reveal: Annotated[bool, typer.Option("--reveal", help="Print the URL with its secret "
                                             "token (to paste into the shop).")] = False,
    ) -> None:
        """The URL to enter in the shop's webhook settings."""
        from ..operations.orders import SHOP_TOKEN_SECRET

        op = _context(ctx, False)
        token = op.secrets.ensure(SHOP_TOKEN_SECRET)
        base = op.settings.service_public_url.rstrip("/")
        typer.echo(f"{base}/hooks/shop/{token if reveal else '<token: --reveal>'}")

    @app.command("suspend")
    def suspend(ctx: typer.Context, praxisname: str, dry_run: DryRunOpt = False,
                json_out: JsonOpt = False) -> None:
        """Suspend a practice: Nextcloud in maintenance, realm logins off, data untouched."""
        from ..operations import subscription

        op = _context(ctx, json_out)
        doc = (subscription.plan(op, praxisname, suspend_it=True) if dry_run
               else subscription.suspend(op, praxisname))
        _emit(doc, json_out, [*doc.get("plan", []), f"suspend {praxisname}: done"
                              if not dry_run else "(dry run, nothing changed)"])

    @app.command("resume")
    def resume(ctx: typer.Context, praxisname: str, dry_run: DryRunOpt = False,
               json_out: JsonOpt = False) -> None:
        """Resume a suspended practice."""
        from ..operations import subscription

        op = _context(ctx, json_out)
        doc = (subscription.plan(op, praxisname, suspend_it=False) if dry_run
               else subscription.resume(op, praxisname))
        _emit(doc, json_out, [*doc.get("plan", []), f"resume {praxisname}: done"
                              if not dry_run else "(dry run, nothing changed)"])

    @app.command("change-package")
    def change_package(ctx: typer.Context, praxisname: str,
                       package: Annotated[str, typer.Argument(help="Basis or Premium.")],
                       dry_run: DryRunOpt = False, json_out: JsonOpt = False) -> None:
        """Change a practice's package (Basis ↔ Premium): Nextcloud converged, billed once."""
        from ..operations import packages

        op = _context(ctx, json_out)
        wanted = packages.require_package(package)
        doc = (packages.plan(op, praxisname, wanted) if dry_run
               else packages.change_package(op, praxisname, wanted))
        _emit(doc, json_out, [*doc.get("plan", []), f"change-package {praxisname}: done"
                              if not dry_run else "(dry run, nothing changed)"])

    @billing_app.command("pending")
    def pending(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Billing events not yet delivered, and the dead letters."""
        from ..inventory.orders import OrderBook

        book = OrderBook(_context(ctx, json_out).inventory)
        book.sync_outbox()
        rows = book.outbox()
        _emit({"ok": True, "pending": [r.to_dict() for r in rows]}, json_out,
              [f"{r.event_id:>6} {r.state:<8} {r.kind:<16} {r.praxisname:<24} "
               f"attempts={r.attempts} {r.last_error}" for r in rows] or ["nothing pending"])

    @billing_app.command("replay")
    def replay(ctx: typer.Context, event_id: int, json_out: JsonOpt = False) -> None:
        """Send a pending or dead billing event again now."""
        from ..inventory.orders import OrderBook
        from ..operations.orders import billing_replay, deliver_billing

        op = _context(ctx, json_out)
        billing_replay(op, event_id)
        counts = deliver_billing(op, OrderBook(op.inventory))
        _emit({"ok": True, "event_id": event_id, "billing": counts}, json_out,
              [f"billing event {event_id} replayed: {counts}"])

    app.add_typer(orders_app, name="orders")
    app.add_typer(billing_app, name="billing")


def register_submit(starter_app: typer.Typer) -> None:
    @starter_app.command("submit")
    def submit(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="The returned Starter Excel (.xlsx).")],
        json_out: JsonOpt = False,
    ) -> None:
        """Check a returned Starter Excel for its order (Bestellnummer) and provision it."""
        from ..operations.orders import order_of_file, submit_file

        op = _context(ctx, json_out)
        doc = submit_file(op, order_of_file(file), file)
        _emit(doc, json_out, [f"order {doc['order_id']}: {doc['praxisname']} provisioned"])
