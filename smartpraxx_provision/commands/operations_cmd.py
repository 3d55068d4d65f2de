"""``operations abandon``: the journal's stale locks (thin: parse, call, print)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DryRunOpt, JsonOpt, YesOpt, confirm, emit, emit_plan, group, op_context


def register(app: typer.Typer) -> None:
    operations_app = group(
        app, "operations", "The operation journal: release a lock whose process is gone."
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

        op = op_context(ctx, json_out)
        if dry_run:
            emit_plan(ctx, json_out, f"abandon operation {op_id}", abandon_plan(op, op_id))
            return
        confirm(f"Abandon operation {op_id}? Only if its process is really gone", yes, json_out)
        result = abandon(op, op_id)
        unchanged = "" if result["changed"] else " (unchanged)"
        emit(ctx, json_out, result, [f"operation {op_id}: {result['state']}{unchanged}"])
