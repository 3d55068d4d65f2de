"""``starter check FILE`` and ``starter template OUT.xlsx``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_USAGE, UsageError
from ..starter import StarterResult, read_starter_excel
from ..starter.report import format_summary, people_rows
from ..starter.template import write_template
from .common import emit, group


def _report_lines(file: Path, result: StarterResult, show_people: bool) -> Iterator[str]:
    yield f"Starter Excel {file}"
    if result.spec is not None:
        for line in format_summary(result.spec):
            yield f"  {line}"
        if show_people:
            yield "  people:"
            for person in people_rows(result.spec):
                admin = " (admin)" if person["admin"] else ""
                yield "    {vorname} {nachname} <{email}> {benutzername}: {rolle}{admin}".format(
                    **{**person, "admin": admin}
                )
    for title, problems in (("errors", result.errors), ("warnings", result.warnings)):
        if problems:
            yield f"{title} ({len(problems)}):"
            for problem in problems:
                yield f"  - {problem.format(show_people)}"
    n_err, n_warn = len(result.errors), len(result.warnings)
    if n_err:
        yield (f"FAILED: {n_err} error(s), {n_warn} warning(s); nothing can be "
               "provisioned from this file until the errors are fixed")
    else:
        yield f"OK: {n_warn} warning(s)"


def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The Starter Excel (.xlsx).")],
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    show_people: Annotated[
        bool,
        typer.Option("--show-people", help="Also show staff names, e-mails and LANRs."),
    ] = False,
) -> None:
    """Validate FILE: every error and warning at once; exit 2 when there are errors."""
    result = read_starter_excel(file)
    code = 0 if result.ok else EXIT_USAGE
    emit(ctx, json_out, result.to_dict(show_people=show_people),
         _report_lines(file, result, show_people), code=code)

def template(
    out: Annotated[Path, typer.Argument(help="Where to write the empty Starter Excel.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT.")] = False,
) -> None:
    """Write the empty Starter Excel with dropdowns and help texts."""
    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"{out} must end in .xlsx", obj=str(out),
                         hint=f"use a name like {out.with_suffix('.xlsx')}")
    if out.exists() and not force:
        raise UsageError(f"{out} exists", obj=str(out), hint="pass --force to overwrite it")
    if not out.parent.is_dir():
        raise UsageError(f"directory {out.parent} does not exist", obj=str(out),
                         hint=f"mkdir -p {out.parent}")
    write_template(out)
    typer.echo(f"wrote {out}: fill in the sheets Praxis, Mitarbeitende and Apps, then run "
               f"`smartpraxx-provision starter check {out}`")


def register(app: typer.Typer) -> None:
    from .orders_cmd import submit

    group(app, "starter", "Check a practice's Starter Excel or write an empty one.",
          {"check": check, "template": template, "submit": submit})
