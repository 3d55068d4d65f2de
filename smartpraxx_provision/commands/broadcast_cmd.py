"""``broadcast send|list|retry|retract``: targeted news, evaluated on each platform."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from ..errors import UsageError
from .common import DryRunOpt, JsonOpt, NoPromptOpt, emit, group, op_context

ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", min=1, max=64, help="Platforms worked on at a time.")
]


def _valid_until(text: str | None, days: int) -> datetime:
    if not text:
        return datetime.now(UTC) + timedelta(days=days)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--valid-until {text!r} is not an ISO date/time (e.g. 2026-12-31 or "
            "2026-12-31T18:00+01:00)", obj="broadcast", hint="broadcast send --help",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
        if len(text) <= 10:  # a date: valid through that day
            value += timedelta(days=1)
    return value


def _lines(result: dict[str, Any]) -> Iterator[str]:
    if result.get("dry_run"):
        for line in result.get("plan", []):
            yield f"would {line}"
    elif "broadcasts" in result:
        for b in result["broadcasts"]:
            states = [d["state"] for d in b["deliveries"]]
            seen = sum(d["recipients"] or 0 for d in b["deliveries"])
            flag = " (retracted)" if b["retracted_at"] else ""
            yield (
                f"{b['id']}  {b['subject']!r}  target {b['target']}  until {b['valid_until']}"
                f"{flag}: {states.count('delivered')} delivered, {states.count('failed')} "
                f"failed, {states.count('pending')} pending, {seen} recipient(s)"
            )
    else:
        yield (
            f"broadcast {result['broadcast']}: {result['delivered']} of {result['platforms']} "
            f"platform(s) delivered, {result['failed']} failed, {result['recipients']} "
            "recipient(s) in total"
        )
        if result["failed"]:
            yield f"next: smartpraxx-provision broadcast retry {result['broadcast']}"


def _finish(ctx: typer.Context, result: dict[str, Any], json_out: bool) -> None:
    emit(ctx, json_out, result, _lines(result), code=0 if result.get("ok", True) else 1)


def send(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option("--subject", help="Betreff (German).")],
    message: Annotated[str, typer.Option("--message", help="Text (German, Markdown).")],
    link: Annotated[str | None, typer.Option("--link", help="Optional https:// link.")] = None,
    valid_until: Annotated[
        str | None,
        typer.Option("--valid-until", help="ISO date/time; default: --valid-days from now."),
    ] = None,
    valid_days: Annotated[int, typer.Option("--valid-days", min=1, max=365)] = 30,
    kv: Annotated[list[str] | None, typer.Option("--kv", help="KV/KZV (OR within).")] = None,
    fach: Annotated[list[str] | None, typer.Option("--fach", help="Fachrichtung.")] = None,
    rolle: Annotated[list[str] | None, typer.Option("--rolle", help="Rolle.")] = None,
    bereich: Annotated[
        list[str] | None, typer.Option("--bereich", help="Arbeitsbereich.")
    ] = None,
    any_of: Annotated[
        list[str] | None,
        typer.Option("--any", help="One OR clause across dimensions, e.g. "
                     "'fach=Urologie,bereich=Abrechnung'."),
    ] = None,
    concurrency: ConcurrencyOpt = 4,
    dry_run: DryRunOpt = False,
    yes: NoPromptOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Send one message to every active platform. Dimensions are ANDed, values of one
    dimension ORed; each platform evaluates the target against its own users."""
    from ..domain.audience import build_target
    from ..operations import broadcast

    try:
        target = build_target(
            {"kv": kv or [], "fach": fach or [], "rolle": rolle or [],
             "bereich": bereich or []},
            any_of or [],
        )
    except ValueError as exc:
        raise UsageError(str(exc), obj="broadcast target",
                         hint="broadcast send --kv ... --fach ... (see --help)") from None
    del yes
    op = op_context(ctx, json_out)
    result = broadcast.send(
        op, subject=subject, message=message, link=link,
        valid_until=_valid_until(valid_until, valid_days), target=target,
        concurrency=concurrency, dry_run=dry_run,
    )
    _finish(ctx, result, json_out)

def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Broadcasts with their per-platform delivery state (counts only)."""
    from ..operations import broadcast

    op = op_context(ctx, json_out)
    _finish(ctx, broadcast.list_all(op), json_out)

def retry(
    ctx: typer.Context,
    broadcast_id: Annotated[str, typer.Argument(help="The broadcast id (bXXXXXXXXXXXX).")],
    concurrency: ConcurrencyOpt = 4,
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="Also re-evaluate where delivered (users who logged in since)."
    )] = False,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Deliver to the platforms where it is pending or failed."""
    from ..operations import broadcast

    op = op_context(ctx, json_out)
    result = broadcast.retry(op, broadcast_id, concurrency=concurrency, dry_run=dry_run,
                             refresh=refresh)
    _finish(ctx, result, json_out)

def retract(
    ctx: typer.Context,
    broadcast_id: Annotated[str, typer.Argument(help="The broadcast id.")],
    concurrency: ConcurrencyOpt = 4,
    dry_run: DryRunOpt = False,
    yes: NoPromptOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove it from every platform (announcement, notifications, group)."""
    from ..operations import broadcast

    del yes
    op = op_context(ctx, json_out)
    result = broadcast.retract(op, broadcast_id, concurrency=concurrency, dry_run=dry_run)
    _finish(ctx, result, json_out)


def register(app: typer.Typer) -> None:
    group(app, "broadcast",
          "Targeted news to every platform; each platform picks its own recipients.",
          {"send": send, "list": list_, "retry": retry, "retract": retract})
