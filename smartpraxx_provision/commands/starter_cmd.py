"""``starter check FILE`` and ``starter template OUT.xlsx``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_USAGE, UsageError
from ..output import print_json
from ..starter import read_starter_excel
from ..starter.report import format_summary, people_rows
from ..starter.template import write_template


def register(app: typer.Typer) -> None:
    starter_app = typer.Typer(
        help="Check a practice's Starter Excel or write an empty one.", no_args_is_help=True
    )

    @starter_app.command("check")
    def check(
        file: Annotated[Path, typer.Argument(help="The Starter Excel (.xlsx).")],
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
        show_people: Annotated[
            bool,
            typer.Option("--show-people", help="Also show staff names, e-mails and LANRs."),
        ] = False,
    ) -> None:
        """Validate FILE: every error and warning at once; exit 2 when there are errors."""
        result = read_starter_excel(file)
        if json_out:
            print_json(result.to_dict(show_people=show_people))
        else:
            typer.echo(f"Starter Excel {file}")
            if result.spec is not None:
                for line in format_summary(result.spec):
                    typer.echo(f"  {line}")
                if show_people:
                    typer.echo("  people:")
                    for person in people_rows(result.spec):
                        typer.echo(
                            "    {vorname} {nachname} <{email}> {benutzername}: {rolle}"
                            "{admin}".format(**{**person, "admin": " (admin)"
                                                if person["admin"] else ""})
                        )
            for title, problems in (("errors", result.errors), ("warnings", result.warnings)):
                if problems:
                    typer.echo(f"{title} ({len(problems)}):")
                    for problem in problems:
                        typer.echo(f"  - {problem.format(show_people)}")
            n_err, n_warn = len(result.errors), len(result.warnings)
            if n_err:
                typer.echo(f"FAILED: {n_err} error(s), {n_warn} warning(s); nothing can be "
                           "provisioned from this file until the errors are fixed")
            else:
                typer.echo(f"OK: {n_warn} warning(s)")
        if not result.ok:
            raise typer.Exit(code=EXIT_USAGE)

    @starter_app.command("template")
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

    from .orders_cmd import register_submit

    register_submit(starter_app)
    app.add_typer(starter_app, name="starter")
