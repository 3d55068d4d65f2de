"""``invite resend``: another invitation mail for one staff member (provision sends one once)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer

from .common import JsonOpt, PracticeArg, emit, group, op_context


def _lines(result: dict[str, Any], praxisname: str, dry_run: bool) -> Iterator[str]:
    info = result.get("plan", result)
    if dry_run:
        yield f"invite resend {praxisname} (dry run, nothing sent):"
    else:
        yield f"invitation sent: {praxisname} (realm {info['realm']})"
    yield f"  {'actions':<20} {', '.join(info['actions'])}"
    yield f"  {'link valid':<20} {info['lifespan_days']} days"
    yield f"  {'sent before':<20} {info['previously_invited_at'] or 'never'}"
    yield f"  {'via':<20} {info['smtp']}"


def resend(
    ctx: typer.Context,
    praxisname: PracticeArg,
    username: Annotated[str, typer.Argument(help="The staff member's Benutzername.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Send a staff member a new invitation (set-password link); the old link stays valid
    until it expires."""
    from ..operations.invitations import resend_invitation

    result = resend_invitation(op_context(ctx, json_out), praxisname, username,
                               dry_run=dry_run)
    emit(ctx, json_out, result, _lines(result, praxisname, dry_run))


def register(app: typer.Typer) -> None:
    group(app, "invite", "Staff invitations (Keycloak's mail with the first-login link).",
          {"resend": resend})
