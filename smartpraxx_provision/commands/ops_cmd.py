"""The operations ops run: provision, rename, decommission, status, smoke."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config import PRIMARY_SHARD
from ..errors import UsageError
from .common import DryRunOpt, JsonOpt, YesOpt, add_commands, emit, op_context, plan_or_change

if TYPE_CHECKING:
    from ..operations.context import OpContext

# the options whose declaration does not fit on their parameter's line
# provision's
ReuseNameOpt = Annotated[
    bool, typer.Option("--reuse-name", help="Release a tombstoned praxisname (ops only).")
]
PruneOpt = Annotated[
    bool, typer.Option("--prune", help="Delete users missing from the Excel (default: disable).")
]
AdoptOpt = Annotated[
    bool, typer.Option("--adopt", help="Take over an existing realm not created by this tool.")
]
# rename's
ConfirmFeeOpt = Annotated[
    bool, typer.Option("--confirm-fee", help="Confirm the paid change of the praxisname.")
]


def _provision_lines(result: dict[str, Any], praxisname: str, op: OpContext) -> Iterator[str]:
    yield f"{'no changes' if result['no_changes'] else 'provisioned'}: {praxisname} on {result['slot']}"
    for name, url in result["urls"].items():
        yield f"  {name:<12} {url}"
    if result.get("local_nextcloud_url"):
        yield f"  {'local':<12} {result['local_nextcloud_url']}  (published on 127.0.0.1)"
    smoke = result.get("smoke")
    if smoke is not None:
        skipped = (f"; not re-run, nothing changed: {', '.join(smoke['skipped'])} "
                   f"(smartpraxx-provision smoke {praxisname})" if smoke.get("skipped") else "")
        yield (f"  {'smoke':<12} {'passed' if smoke['ok'] else 'FAILED'} "
               f"({len(smoke['checks'])} checks{skipped})")
    if result["identity_shard"] != PRIMARY_SHARD:
        yield f"  {'identity':<12} realm on identity shard {result['identity_shard']}"
    yield f"  {'seats':<12} {result['billable_seats']} billable"
    if result["nextcloud_standin"]:
        from ..operations.provision import standin_notice

        yield f"  note: {standin_notice(op)}"


def _status_lines(result: dict[str, Any]) -> Iterator[str]:
    if not result["practices"]:
        yield "no practices"
    for item in result["practices"]:
        v = item.get("verdict") or {}
        reasons = "; ".join(v.get("reasons") or [])
        yield (
            f"{item['praxisname']}  {item['slot']}  {item['state']}  "
            f"seats={item['billable_seats']}  {str(v.get('verdict', '')).upper()}"
            + (f": {reasons}" if reasons else "")
        )
        live = item.get("live", {})
        for name, state in (live.get("containers") or {}).items():
            yield f"    {name}: {state}"
        if "realm" in live:
            yield f"    realm {item['realm']}: {live['realm']}"
        smoke = item.get("last_smoke")
        if smoke:
            yield f"    last smoke: {'passed' if smoke['ok'] else 'FAILED'}"
        last = item.get("last_operation")
        if last:
            yield f"    last operation: {last['kind']} {last['state']} ({last['id']})"


def _smoke_lines(result: dict[str, Any]) -> Iterator[str]:
    for c in result["checks"]:
        yield f"  {'ok ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}"
    yield "smoke passed" if result["ok"] else "smoke FAILED"


def provision(
    ctx: typer.Context,
    starter: Annotated[Path, typer.Argument(help="The practice's Starter Excel (.xlsx).")],
    host: Annotated[str | None, typer.Option("--host", help="Pin the slot to cloudYYY.")] = None,
    reuse_name: ReuseNameOpt = False,
    prune: PruneOpt = False,
    adopt: AdoptOpt = False,
    no_smoke: Annotated[bool, typer.Option("--no-smoke", help="Skip the smoke check.")] = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Provision (or converge) a practice from its Starter Excel."""
    from ..operations.provision import plan, provision, standin_notice
    from ..starter import load_practice_spec

    spec = load_practice_spec(starter)
    op = op_context(ctx, json_out)
    plan_or_change(
        ctx, json_out, dry_run=dry_run, yes=yes,
        title=f"provision {spec.praxisname}", question=f"Provision {spec.praxisname}?",
        plan=lambda op: plan(op, spec, host),
        change=lambda op: provision(op, spec, host=host, reuse_name=reuse_name, prune=prune,
                                    adopt=adopt, smoke=not no_smoke),
        lines=lambda result: _provision_lines(result, spec.praxisname, op),
        notice=standin_notice, op=op,
    )

def rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="Current praxisname.")],
    new: Annotated[str, typer.Argument(help="New praxisname.")],
    confirm_fee: ConfirmFeeOpt = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Change a practice's praxisname (paid); slot, realm, users and data stay."""
    from ..operations.rename import check_new_name, rename, rename_plan

    check_new_name(old, new)
    if not dry_run and not confirm_fee:
        raise UsageError(
            "renaming a practice is a paid change",
            obj=old,
            hint=f"smartpraxx-provision rename {old} {new} --confirm-fee",
        )
    plan_or_change(
        ctx, json_out, dry_run=dry_run, yes=yes,
        title=f"rename {old}", question=f"Rename {old} to {new}?",
        plan=lambda op: rename_plan(op, old, new), change=lambda op: rename(op, old, new),
        lines=lambda result: [f"renamed {old} → {new} (slot {result['slot']} kept); "
                              f"start page {result['start_page']}"],
    )

def decommission(
    ctx: typer.Context,
    praxisname: Annotated[str, typer.Argument(help="The practice to remove.")],
    export_to: Annotated[
        Path, typer.Option("--export-to", help="Directory for the verified export (required).")
    ],
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Export, verify, then delete a practice; slot and name are never reused."""
    from ..operations.decommission import decommission, decommission_plan

    plan_or_change(
        ctx, json_out, dry_run=dry_run, yes=yes,
        title=f"decommission {praxisname}", question=f"Export and then DELETE {praxisname}?",
        plan=lambda op: decommission_plan(op, praxisname, export_to),
        change=lambda op: decommission(op, praxisname, export_to),
        lines=lambda result: [f"decommissioned {praxisname} ({result['slot']}); "
                              f"export {result['export']['path']}"],
    )

def status(
    ctx: typer.Context,
    praxisname: Annotated[
        str | None, typer.Argument(help="One practice (default: all).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Inventory facts, live state and one verdict per practice (ok/degraded/down).

    Exit 0 when every practice is ok, 3 when the worst is degraded, 4 when any is down."""
    from ..domain.lifecycle import VERDICT_EXIT
    from ..operations.status import status

    result = status(op_context(ctx, json_out), praxisname)
    code = VERDICT_EXIT.get(result["verdict"], 0)
    emit(ctx, json_out, result, _status_lines(result), code=code)

def smoke(
    ctx: typer.Context,
    praxisname: Annotated[str, typer.Argument(help="The practice to check.")],
    json_out: JsonOpt = False,
) -> None:
    """Smoke-test a practice's stack: status, OIDC discovery, client, apps, a real login."""
    from ..operations.smoke import run_smoke

    result = run_smoke(op_context(ctx, json_out), praxisname, raise_on_failure=False)
    emit(ctx, json_out, result, _smoke_lines(result), code=0 if result["ok"] else 1)


def register(app: typer.Typer) -> None:
    add_commands(app, {"provision": provision, "rename": rename, "decommission": decommission,
                       "status": status, "smoke": smoke})
