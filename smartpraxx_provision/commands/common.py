"""What every command module shares: the common option declarations, the operation context,
the confirmation prompt, and the one way a result is printed (its ``--json`` document or its
human lines) and turned into the exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from ..output import Reporter, emit_json

if TYPE_CHECKING:
    from ..operations.context import OpContext

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
MachineJsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoPromptOpt = Annotated[bool, typer.Option("--yes", help="No prompt.")]
PracticeArg = Annotated[str, typer.Argument(help="The practice.")]


def add_commands(app: typer.Typer, commands: Mapping[str, Callable[..., None]]) -> None:
    """Register each function as the command of its name, in this order."""
    for name, function in commands.items():
        app.command(name)(function)


def group(
    app: typer.Typer, name: str, help_text: str, commands: Mapping[str, Callable[..., None]]
) -> typer.Typer:
    """A new command group ``name`` under ``app`` with ``commands`` (called without a command:
    its help)."""
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    add_commands(sub, commands)
    app.add_typer(sub, name=name)
    return sub


def op_context(ctx: typer.Context, json_out: bool) -> OpContext:
    """The operation context of one command run; ``--json`` keeps the progress lines quiet."""
    from ..operations.context import OpContext

    return OpContext(settings=ctx.obj.settings, reporter=Reporter(quiet=json_out))


def confirm(question: str, yes: bool, json_out: bool) -> None:
    """Ask before a change; without a terminal (or with ``--json``) ``--yes`` is required."""
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


def emit(
    ctx: typer.Context,
    json_out: bool,
    result: Mapping[str, Any],
    lines: Iterable[str] = (),
    *,
    code: int = 0,
    err: bool = False,
) -> None:
    """Print a command's result: with ``--json`` its one document (the envelope of
    :func:`..output.json_document`), else its human ``lines`` (on stderr with ``err``, iterated
    only then). A non-zero ``code`` is the exit code (and makes the document's ``ok`` false)."""
    if json_out:
        emit_json(ctx.obj.command, result, ok=code == 0)
    else:
        for line in lines:
            typer.echo(line, err=err)
    if code:
        raise typer.Exit(code)


def plan_lines(title: str, plan: Mapping[str, Any], notice: str | None = None) -> Iterable[str]:
    """A dry run's plan as human lines."""
    yield f"{title} (dry run, nothing changed):"
    for key, value in plan.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        yield f"  {key:<20} {value}"
    if notice:
        yield f"  note: {notice}"


def emit_plan(
    ctx: typer.Context,
    json_out: bool,
    title: str,
    plan: Mapping[str, Any],
    notice: str | None = None,
) -> None:
    """A dry run's result: ``{"dry_run": true, "plan": ..., "notice": ...}`` or its lines."""
    doc = {"ok": True, "dry_run": True, "plan": plan, "notice": notice}
    emit(ctx, json_out, doc, plan_lines(title, plan, notice))


def plan_or_change(
    ctx: typer.Context,
    json_out: bool,
    *,
    dry_run: bool,
    yes: bool,
    title: str,
    question: str,
    plan: Callable[[OpContext], Mapping[str, Any]],
    change: Callable[[OpContext], dict[str, Any]],
    lines: Callable[[dict[str, Any]], Iterable[str]],
    notice: Callable[[OpContext], str | None] = lambda op: None,
    op: OpContext | None = None,
) -> None:
    """A mutating command on this run's operation context (``op``, or a new one): with
    ``--dry-run`` its plan (``title``, nothing changes), else the confirmation (``question``,
    or ``--yes``), the change and its result (``lines``)."""
    op = op or op_context(ctx, json_out)
    if dry_run:
        emit_plan(ctx, json_out, title, plan(op), notice(op))
        return
    confirm(question, yes, json_out)
    result = change(op)
    emit(ctx, json_out, result, lines(result))


def table(header: str, rows: Iterable[str], empty: str) -> Iterator[str]:
    """A listing's lines: ``header`` and its rows, or the ``empty`` line when there are none."""
    rows = list(rows)
    if not rows:
        yield empty
        return
    yield header
    yield from rows
