"""``support request|status|revoke|expire|export``: support access with the practice's consent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..output import Reporter, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")]
TicketOpt = Annotated[str, typer.Option("--ticket", help="The support ticket id.")]


def _op(ctx: typer.Context, quiet: bool) -> Any:
    from ..operations.context import OpContext

    return OpContext(settings=ctx.obj.settings, reporter=Reporter(quiet=quiet))


def _show(result: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(result)
        return
    for key, value in result.items():
        if key != "ok":
            typer.echo(f"  {key:<16} {value}")


def register(app: typer.Typer) -> None:
    support_app = typer.Typer(
        help="Support access: only with the practice's consent, expiring, logged.",
        no_args_is_help=True,
    )

    @support_app.command("request")
    def request(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice.")],
        ticket: TicketOpt,
        duration: Annotated[str, typer.Option("--duration", help="e.g. 4h (m, h, d; max 7d).")],
        reason: Annotated[str, typer.Option("--reason", help="Why (the practice reads it).")],
        dry_run: DryOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Ask the practice's admins for consent (German mail with the consent link)."""
        from ..operations import support

        result = support.request(_op(ctx, json_out), praxisname, ticket, duration, reason,
                                 dry_run=dry_run, now=support.now_from_env())
        _show(result, json_out)

    @support_app.command("status")
    def status(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice.")],
        json_out: JsonOpt = False,
    ) -> None:
        """The practice's support requests and their consent (from its realm)."""
        from ..operations import support

        result = support.status(_op(ctx, json_out), praxisname, now=support.now_from_env())
        if json_out:
            print_json(result)
            return
        typer.echo(f"support requests of {praxisname} ({len(result['requests'])}):")
        for r in result["requests"]:
            typer.echo(f"  {r['ticket']:<20} {r['state']:<9} until {r['expires_at'] or '-'}")

    @support_app.command("login")
    def login(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice.")],
        ticket: TicketOpt,
        resend: Annotated[bool, typer.Option(
            "--resend", help="Mail the set-password link to support_ops_email again.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """How ops log in for an approved ticket; refused (exit 2) without consent."""
        from ..operations import support

        _show(support.login(_op(ctx, json_out), praxisname, ticket, resend=resend,
                            now=support.now_from_env()), json_out)

    @support_app.command("revoke")
    def revoke(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice.")],
        ticket: TicketOpt,
        dry_run: DryOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """End a consent now: support user disabled, its sessions ended."""
        from ..operations import support

        _show(support.revoke(_op(ctx, json_out), praxisname, ticket, dry_run=dry_run,
                             now=support.now_from_env()), json_out)

    @support_app.command("expire")
    def expire(ctx: typer.Context, dry_run: DryOpt = False, json_out: JsonOpt = False) -> None:
        """The sweep: end every consent whose time is up (run by a timer)."""
        from ..operations import support

        result = support.expire(_op(ctx, json_out), now=support.now_from_env(),
                                dry_run=dry_run)
        if json_out:
            print_json(result)
            return
        typer.echo(f"support expire at {result['now']}: {len(result['ended'])} ended")
        for e in result["ended"]:
            typer.echo(f"  {e['praxisname']:<24} {e['ticket']}")

    @support_app.command("export")
    def export(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice.")],
        ticket: TicketOpt,
        out: Annotated[Path, typer.Option("--out", help="Directory for the files.")] = Path("."),
        json_out: JsonOpt = False,
    ) -> None:
        """Everything the support user did: German HTML report, raw JSON, SHA-256."""
        from ..operations import support

        _show(support.export(_op(ctx, json_out), praxisname, ticket, out,
                             now=support.now_from_env()), json_out)

    app.add_typer(support_app, name="support")
