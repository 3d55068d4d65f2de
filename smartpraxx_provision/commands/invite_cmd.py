"""``invite resend``: another invitation mail for one staff member (provision sends one once)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..output import Reporter, print_json


def register(app: typer.Typer) -> None:
    invite_app = typer.Typer(
        help="Staff invitations (Keycloak's mail with the first-login link).",
        no_args_is_help=True,
    )

    @invite_app.command("resend")
    def resend(
        ctx: typer.Context,
        praxisname: Annotated[str, typer.Argument(help="The practice.")],
        username: Annotated[str, typer.Argument(help="The staff member's Benutzername.")],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
        ] = False,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print one JSON document on stdout.")
        ] = False,
    ) -> None:
        """Send a staff member a new invitation (set-password link); the old link stays valid
        until it expires."""
        from ..operations.context import OpContext
        from ..operations.invitations import resend_invitation

        op = OpContext(settings=ctx.obj.settings, reporter=Reporter(quiet=json_out))
        result = resend_invitation(op, praxisname, username, dry_run=dry_run)
        if json_out:
            print_json(result)
            return
        info = result.get("plan", result)
        if dry_run:
            typer.echo(f"invite resend {praxisname} (dry run, nothing sent):")
        else:
            typer.echo(f"invitation sent: {praxisname} (realm {info['realm']})")
        typer.echo(f"  {'actions':<20} {', '.join(info['actions'])}")
        typer.echo(f"  {'link valid':<20} {info['lifespan_days']} days")
        typer.echo(f"  {'sent before':<20} {info['previously_invited_at'] or 'never'}")
        typer.echo(f"  {'via':<20} {info['smtp']}")

    app.add_typer(invite_app, name="invite")
