"""The command line: parse, build the context, call an operation, format errors. Nothing else.

Sub-command groups live in ``smartpraxx_provision/commands/`` (one module per area) and are
registered here. Every error of the tool's hierarchy is formatted once, in ``main``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import click
import typer

from . import __version__
from .config import Settings, load_settings
from .errors import EXIT_FAILED, EXIT_USAGE, SmartpraxxError, UsageError
from .output import print_json

app = typer.Typer(
    name="smartpraxx-provision",
    help="Provision smartpraxx practice platforms: a Nextcloud slot and a Keycloak realm per practice.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    pretty_exceptions_enable=False,
    add_completion=False,
)


@dataclass
class AppContext:
    """What every command receives through ``ctx.obj``."""

    config_file: Path | None
    overrides: dict[str, str]
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(config_file=self.config_file, overrides=self.overrides)
        return self._settings


def _parse_sets(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--set expects KEY=VALUE, got {item!r}",
                obj="--set",
                hint="e.g. --set domain=smartpraxx.de",
            )
        out[key.strip().replace("-", "_")] = value
    return out


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smartpraxx-provision {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML settings file (see README).")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="State directory (inventory, secrets).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="embedded (default) or production.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any setting: --set key=value (repeatable)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    overrides = _parse_sets(set_ or [])
    if state_dir is not None:
        overrides["state_dir"] = str(state_dir)
    if profile is not None:
        overrides["profile"] = profile
    ctx.obj = AppContext(config_file=config, overrides=overrides)


def _register() -> None:
    """Attach the command groups. Each module exposes ``register(app)``."""
    from .commands import REGISTRY

    for register in REGISTRY:
        register(app)


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def format_error(err: SmartpraxxError) -> str:
    lines = [f"error: {err.message}"]
    if err.obj:
        lines.append(f"  object: {err.obj}")
    if err.hint:
        lines.append(f"  next:   {err.hint}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. Returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register()
    try:
        rv = app(args=args, prog_name="smartpraxx-provision", standalone_mode=False)
        # click returns the code of a typer.Exit(code) instead of raising it here
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except SmartpraxxError as err:
        if _wants_json(args):
            print_json({"ok": False, "error": err.to_dict()})
        print(format_error(err), file=sys.stderr)
        code = err.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        code = EXIT_FAILED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        code = 130
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
