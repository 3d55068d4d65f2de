"""``support request|status|revoke|expire|export``: support access with the practice's consent."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import DryRunOpt, JsonOpt, PracticeArg, emit, group, op_context

TicketOpt = Annotated[str, typer.Option("--ticket", help="The support ticket id.")]


def _fields(result: Mapping[str, Any]) -> Iterator[str]:
    """A result's keys and values as human lines (``ok`` left out)."""
    for key, value in result.items():
        if key != "ok":
            yield f"  {key:<16} {value}"


def _run(ctx: typer.Context, json_out: bool, action: Callable[..., dict[str, Any]],
         *args: Any, **kwargs: Any) -> None:
    """One support operation on this run's context and clock (``now``), its result printed
    field by field (or as the --json document)."""
    from ..operations.support import now_from_env

    result = action(op_context(ctx, json_out), *args, now=now_from_env(), **kwargs)
    emit(ctx, json_out, result, _fields(result))


def request(
    ctx: typer.Context,
    praxisname: PracticeArg,
    ticket: TicketOpt,
    duration: Annotated[str, typer.Option("--duration", help="e.g. 4h (m, h, d; max 7d).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (the practice reads it).")],
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Ask the practice's admins for consent (German mail with the consent link)."""
    from ..operations import support

    _run(ctx, json_out, support.request, praxisname, ticket, duration, reason,
         dry_run=dry_run)

def status(ctx: typer.Context, praxisname: PracticeArg, json_out: JsonOpt = False) -> None:
    """The practice's support requests and their consent (from its realm)."""
    from ..operations import support

    result = support.status(op_context(ctx, json_out), praxisname, now=support.now_from_env())
    requests = result["requests"]
    emit(ctx, json_out, result, [
        f"support requests of {praxisname} ({len(requests)}):",
        *(f"  {r['ticket']:<20} {r['state']:<9} until {r['expires_at'] or '-'}"
          for r in requests),
    ])

def login(
    ctx: typer.Context,
    praxisname: PracticeArg,
    ticket: TicketOpt,
    resend: Annotated[bool, typer.Option(
        "--resend", help="Mail the set-password link to support_ops_email again.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """How ops log in for an approved ticket; refused (exit 2) without consent."""
    from ..operations import support

    _run(ctx, json_out, support.login, praxisname, ticket, resend=resend)

def revoke(
    ctx: typer.Context,
    praxisname: PracticeArg,
    ticket: TicketOpt,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """End a consent now: support user disabled, its sessions ended."""
    from ..operations import support

    _run(ctx, json_out, support.revoke, praxisname, ticket, dry_run=dry_run)

def expire(ctx: typer.Context, dry_run: DryRunOpt = False, json_out: JsonOpt = False) -> None:
    """The sweep: end every consent whose time is up (run by a timer)."""
    from ..operations import support

    result = support.expire(op_context(ctx, json_out), now=support.now_from_env(),
                            dry_run=dry_run)
    ended = result["ended"]
    emit(ctx, json_out, result, [
        f"support expire at {result['now']}: {len(ended)} ended",
        *(f"  {e['praxisname']:<24} {e['ticket']}" for e in ended),
    ])

def export(
    ctx: typer.Context,
    praxisname: PracticeArg,
    ticket: TicketOpt,
    out: Annotated[Path, typer.Option("--out", help="Directory for the files.")] = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Everything the support user did: German HTML report, raw JSON, SHA-256."""
    from ..operations import support

    _run(ctx, json_out, support.export, praxisname, ticket, out)


def register(app: typer.Typer) -> None:
    group(app, "support", "Support access: only with the practice's consent, expiring, logged.",
          {"request": request, "status": status, "login": login, "revoke": revoke,
           "expire": expire, "export": export})
