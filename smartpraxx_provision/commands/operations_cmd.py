"""``operations abandon``: the journal's stale locks (thin: parse, call, print)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DryRunOpt, JsonOpt, YesOpt, group, plan_or_change


def abandon_cmd(
    ctx: typer.Context,
    op_id: Annotated[str, typer.Argument(help="The operation id a refusal named.")],
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Mark a running operation abandoned (its process died on another machine)."""
    from ..operations.abandon import abandon, abandon_plan

    plan_or_change(
        ctx, json_out, dry_run=dry_run, yes=yes, title=f"abandon operation {op_id}",
        question=f"Abandon operation {op_id}? Only if its process is really gone",
        plan=lambda op: abandon_plan(op, op_id), change=lambda op: abandon(op, op_id),
        lines=lambda result: [f"operation {op_id}: {result['state']}"
                              + ("" if result["changed"] else " (unchanged)")],
    )


def register(app: typer.Typer) -> None:
    group(app, "operations", "The operation journal: release a lock whose process is gone.",
          {"abandon": abandon_cmd})
