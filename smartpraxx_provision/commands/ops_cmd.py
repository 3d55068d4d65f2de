"""The operations ops run: provision, rename, decommission, status, smoke."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from ..output import Reporter, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _context(ctx: typer.Context, json_out: bool) -> Any:
    from ..operations.context import OpContext

    return OpContext(settings=ctx.obj.settings, reporter=Reporter(quiet=json_out))


def _confirm(question: str, yes: bool, json_out: bool) -> None:
    if yes:
        return
    if json_out or not typer.get_text_stream("stdin").isatty():
        raise UsageError(
            f"{question} needs confirmation",
            obj="--yes",
            hint="re-run with --yes (non-interactive)",
        )
    if not typer.confirm(question, default=False):
        raise typer.Abort()


def _emit_plan(title: str, plan: dict[str, Any], json_out: bool, notice: str | None = None) -> None:
    if json_out:
        print_json({"ok": True, "dry_run": True, "plan": plan, "notice": notice})
        return
    typer.echo(f"{title} (dry run, nothing changed):")
    for key, value in plan.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        typer.echo(f"  {key:<20} {value}")
    if notice:
        typer.echo(f"  note: {notice}")


def register(app: typer.Typer) -> None:
    @app.command()
    def provision(
        ctx: typer.Context,
        starter: Annotated[Path, typer.Argument(help="The practice's Starter Excel (.xlsx).")],
        host: Annotated[
            str | None, typer.Option("--host", help="Pin the slot to cloudYYY.")
        ] = None,
        reuse_name: Annotated[
            bool, typer.Option("--reuse-name", help="Release a tombstoned praxisname (ops only).")
        ] = False,
        prune: Annotated[
            bool,
            typer.Option("--prune", help="Delete users missing from the Excel (default: disable)."),
        ] = False,
        adopt: Annotated[
            bool,
            typer.Option("--adopt", help="Take over an existing realm not created by this tool."),
        ] = False,
        no_smoke: Annotated[bool, typer.Option("--no-smoke", help="Skip the smoke check.")] = False,
        dry_run: DryRunOpt = False,
        yes: YesOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Provision (or converge) a practice from its Starter Excel."""
        from ..operations.provision import plan, provision, standin_notice
        from ..starter import load_practice_spec

        spec = load_practice_spec(starter)
        op = _context(ctx, json_out)
        if dry_run:
            _emit_plan(
                f"provision {spec.praxisname}", plan(op, spec, host), json_out, standin_notice(op)
            )
            return
        _confirm(f"Provision {spec.praxisname}?", yes, json_out)
        result = provision(
            op, spec, host=host, reuse_name=reuse_name, prune=prune, adopt=adopt, smoke=not no_smoke
        )
        if json_out:
            print_json(result)
            return
        typer.echo(
            f"{'no changes' if result['no_changes'] else 'provisioned'}: {spec.praxisname} on {result['slot']}"
        )
        for name, url in result["urls"].items():
            typer.echo(f"  {name:<12} {url}")
        if result.get("local_nextcloud_url"):
            typer.echo(f"  {'local':<12} {result['local_nextcloud_url']}  (published on 127.0.0.1)")
        smoke = result.get("smoke")
        if smoke is not None:
            typer.echo(
                f"  {'smoke':<12} {'passed' if smoke['ok'] else 'FAILED'} ({len(smoke['checks'])} checks)"
            )
        typer.echo(f"  {'seats':<12} {result['billable_seats']} billable")
        if result["nextcloud_standin"]:
            typer.echo(f"  note: {standin_notice(op)}")

    @app.command()
    def rename(
        ctx: typer.Context,
        old: Annotated[str, typer.Argument(help="Current praxisname.")],
        new: Annotated[str, typer.Argument(help="New praxisname.")],
        confirm_fee: Annotated[
            bool, typer.Option("--confirm-fee", help="Confirm the paid change of the praxisname.")
        ] = False,
        dry_run: DryRunOpt = False,
        yes: YesOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Change a practice's praxisname (paid); slot, realm, users and data stay."""
        from ..operations.rename import check_new_name, rename, rename_plan

        check_new_name(old, new)
        op = _context(ctx, json_out)
        if dry_run:
            _emit_plan(f"rename {old}", rename_plan(op, old, new), json_out)
            return
        if not confirm_fee:
            raise UsageError(
                "renaming a practice is a paid change",
                obj=old,
                hint=f"smartpraxx-provision rename {old} {new} --confirm-fee",
            )
        _confirm(f"Rename {old} to {new}?", yes, json_out)
        result = rename(op, old, new)
        if json_out:
            print_json(result)
        else:
            typer.echo(
                f"renamed {old} → {new} (slot {result['slot']} kept); start page {result['start_page']}"
            )

    @app.command()
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

        op = _context(ctx, json_out)
        if dry_run:
            _emit_plan(
                f"decommission {praxisname}", decommission_plan(op, praxisname, export_to), json_out
            )
            return
        _confirm(f"Export and then DELETE {praxisname}?", yes, json_out)
        result = decommission(op, praxisname, export_to)
        if json_out:
            print_json(result)
        else:
            typer.echo(
                f"decommissioned {praxisname} ({result['slot']}); export {result['export']['path']}"
            )

    @app.command()
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

        op = _context(ctx, json_out)
        result = status(op, praxisname)
        code = VERDICT_EXIT.get(result["verdict"], 0)
        if json_out:
            print_json(result)
            if code:
                raise typer.Exit(code)
            return
        if not result["practices"]:
            typer.echo("no practices")
        for item in result["practices"]:
            v = item.get("verdict") or {}
            reasons = "; ".join(v.get("reasons") or [])
            typer.echo(
                f"{item['praxisname']}  {item['slot']}  {item['state']}  "
                f"seats={item['billable_seats']}  {str(v.get('verdict', '')).upper()}"
                + (f": {reasons}" if reasons else "")
            )
            live = item.get("live", {})
            for name, state in (live.get("containers") or {}).items():
                typer.echo(f"    {name}: {state}")
            if "realm" in live:
                typer.echo(f"    realm {item['realm']}: {live['realm']}")
            smoke = item.get("last_smoke")
            if smoke:
                typer.echo(f"    last smoke: {'passed' if smoke['ok'] else 'FAILED'}")
            last = item.get("last_operation")
            if last:
                typer.echo(f"    last operation: {last['kind']} {last['state']} ({last['id']})")
        if code:
            raise typer.Exit(code)

    @app.command()
    def smoke(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice to check.")],
        json_out: JsonOpt = False,
    ) -> None:
        """Smoke-test a practice's stack: status, OIDC discovery, client, apps, a real login."""
        from ..operations.smoke import run_smoke

        op = _context(ctx, json_out)
        result = run_smoke(op, praxisname, raise_on_failure=False)
        if json_out:
            print_json(result)
        else:
            for c in result["checks"]:
                typer.echo(f"  {'ok ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
            typer.echo("smoke passed" if result["ok"] else "smoke FAILED")
        if not result["ok"]:
            raise typer.Exit(1)
