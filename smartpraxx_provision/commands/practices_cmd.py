"""``practices list|adopt``: the practices in the inventory (practice-level facts only), and
the deliberate recovery of a practice's objects after restoring an inventory backup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from .common import emit, group, op_context, table

if TYPE_CHECKING:
    from ..inventory.models import PracticeRecord

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _rows(practices: list[PracticeRecord]) -> Iterator[str]:
    return table(
        f"{'PRAXISNAME':<28} {'SLOT':<16} {'STATE':<16} {'SEATS':>5}  {'IDENTITY':<10} ORDER",
        (f"{p.praxisname:<28} {p.slot.id:<16} {p.state:<16} {p.billable_seats:>5}  "
         f"{p.identity_shard:<10} {p.order_id}"
         + (f"  (formerly {', '.join(p.former_names)})" if p.former_names else "")
         for p in practices),
        "no practices",
    )


def list_(
    ctx: typer.Context,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include decommissioned (tombstoned) practices.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Practices with slot, state and billable seats (by host and slot number)."""
    from ..operations.practices import list_practices

    practices = list_practices(op_context(ctx, json_out), include_tombstoned=include_all)
    doc = {"ok": True, "practices": [p.to_dict() for p in practices]}
    emit(ctx, json_out, doc, _rows(practices))

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
    json_out: JsonOpt = False,
) -> None:
    """Take over the owner marks a slot's objects carry (after restoring an inventory
    backup or losing it). Never implicit: needs --yes."""
    from ..operations.ownership import adopt_plan, adopt_practice

    op = op_context(ctx, json_out)
    if dry_run:
        plan = adopt_plan(op, praxisname, slot)
        emit(ctx, json_out, {"ok": True, "dry_run": True, "plan": plan},
             (f"{key}: {value}" for key, value in plan.items()))
        return
    if not yes:
        raise UsageError(
            f"adopting the objects of {praxisname} needs --yes",
            obj="--yes",
            hint=f"check first: smartpraxx-provision practices adopt {praxisname} --dry-run",
        )
    emit(ctx, json_out, adopt_practice(op, praxisname, slot, order_id, from_installation))


def register(app: typer.Typer) -> None:
    group(app, "practices", "Practices in the inventory.", {"list": list_, "adopt": adopt})
