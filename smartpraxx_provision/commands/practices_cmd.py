"""``practices list|adopt``: the practices in the inventory (practice-level facts only), and
the deliberate recovery of a practice's objects after restoring an inventory backup."""

from __future__ import annotations

from typing import Annotated

import typer

from ..output import print_json


def register(app: typer.Typer) -> None:
    practices_app = typer.Typer(help="Practices in the inventory.", no_args_is_help=True)

    @practices_app.command("list")
    def list_(
        ctx: typer.Context,
        include_all: Annotated[
            bool, typer.Option("--all", help="Include decommissioned (tombstoned) practices.")
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """Practices with slot, state and billable seats (by host and slot number)."""
        from ..inventory import open_inventory

        with open_inventory(ctx.obj.settings) as inv:
            practices = inv.list_practices(include_tombstoned=include_all)
        if json_out:
            print_json({"ok": True, "practices": [p.to_dict() for p in practices]})
            return
        if not practices:
            typer.echo("no practices")
            return
        typer.echo(f"{'PRAXISNAME':<28} {'SLOT':<16} {'STATE':<16} {'SEATS':>5}  ORDER")
        for p in practices:
            former = f"  (formerly {', '.join(p.former_names)})" if p.former_names else ""
            typer.echo(
                f"{p.praxisname:<28} {p.slot.id:<16} {p.state:<16} "
                f"{p.billable_seats:>5}  {p.order_id}{former}"
            )

    @practices_app.command("adopt")
    def adopt(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice's praxisname.")],
        slot: Annotated[
            str | None,
            typer.Option("--slot", help="Its slot ncXX-cloudYYY (needed when not in the inventory)."),
        ] = None,
        order_id: Annotated[
            str, typer.Option("--order-id", help="Its order id (needed when not in the inventory).")
        ] = "",
        from_installation: Annotated[
            str | None,
            typer.Option(
                "--from-installation",
                help="Accept objects of this other installation (only for a lost inventory).",
            ),
        ] = None,
        yes: Annotated[bool, typer.Option("--yes", help="Really adopt (required).")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan only.")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """Take over the owner marks a slot's objects carry (after restoring an inventory
        backup or losing it). Never implicit: needs --yes."""
        from ..errors import UsageError
        from ..operations.context import OpContext
        from ..operations.ownership import adopt_plan, adopt_practice
        from ..output import Reporter

        op = OpContext(settings=ctx.obj.settings, reporter=Reporter(quiet=json_out))
        if dry_run:
            plan = adopt_plan(op, praxisname, slot)
            if json_out:
                print_json({"ok": True, "dry_run": True, "plan": plan})
            else:
                for key, value in plan.items():
                    typer.echo(f"{key}: {value}")
            return
        if not yes:
            raise UsageError(
                f"adopting the objects of {praxisname} needs --yes",
                obj="--yes",
                hint=f"check first: smartpraxx-provision practices adopt {praxisname} --dry-run",
            )
        result = adopt_practice(op, praxisname, slot, order_id, from_installation)
        if json_out:
            print_json({"ok": True, **result})

    app.add_typer(practices_app, name="practices")
