"""``config show``: the effective settings (env-only secrets masked)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..output import print_json


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)

    @config_app.command("show")
    def show(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Print the effective settings after defaults, file, environment and flags."""
        data = ctx.obj.settings.redacted()
        if json_out:
            print_json(data)
            return
        for key in sorted(data):
            typer.echo(f"{key}: {data[key]}")

    app.add_typer(config_app, name="config")
