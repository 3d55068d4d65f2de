"""``practices list``: the practices in the inventory (practice-level facts only)."""

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

    app.add_typer(practices_app, name="practices")
