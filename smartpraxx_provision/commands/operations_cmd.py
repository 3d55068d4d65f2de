"""``operations abandon``: the journal's stale locks (thin: parse, call, print)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..output import print_json
from .ops_cmd import DryRunOpt, JsonOpt, YesOpt, _confirm, _context, _emit_plan


def register(app: typer.Typer) -> None:
    operations_app = typer.Typer(
        help="The operation journal: release a lock whose process is gone.",
        no_args_is_help=True,
    )

    @operations_app.command("abandon")
    def abandon_cmd(
        ctx: typer.Context,
        op_id: Annotated[str, typer.Argument(help="The operation id a refusal named.")],
        dry_run: DryRunOpt = False,
        yes: YesOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Mark a running operation abandoned (its process died on another machine)."""
        from ..operations.abandon import abandon, abandon_plan

        op = _context(ctx, json_out)
        if dry_run:
            _emit_plan(f"abandon operation {op_id}", abandon_plan(op, op_id), json_out)
            return
        _confirm(
            f"Abandon operation {op_id}? Only if its process is really gone", yes, json_out
        )
        result = abandon(op, op_id)
        if json_out:
            print_json(result)
        else:
            typer.echo(
                f"operation {op_id}: {result['state']}"
                + ("" if result["changed"] else " (unchanged)")
            )

    app.add_typer(operations_app, name="operations")
