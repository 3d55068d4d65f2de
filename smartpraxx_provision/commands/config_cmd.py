"""``config show``: the effective settings (env-only secrets masked)."""

from __future__ import annotations

import typer

from .common import MachineJsonOpt, emit, group


def show(ctx: typer.Context, json_out: MachineJsonOpt = False) -> None:
    """Print the effective settings after defaults, file, environment and flags."""
    data = ctx.obj.settings.redacted()
    emit(ctx, json_out, data, (f"{key}: {data[key]}" for key in sorted(data)))


def register(app: typer.Typer) -> None:
    group(app, "config", "Show the effective settings.", {"show": show})
