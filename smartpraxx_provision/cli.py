"""The command line: parse, build the context, call an operation, format errors. Nothing else.

Sub-command groups live in ``smartpraxx_provision/commands/`` (one module per area) and are
registered here. Every error of the tool's hierarchy is formatted once, in ``main``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .config import Settings, load_settings
from .errors import EXIT_FAILED, EXIT_USAGE, SmartpraxxError, UsageError
from .output import Reporter, emit_json

PROG = "smartpraxx-provision"
GLOBAL_OPTIONS = ("--config", "--state-dir", "--profile", "--set", "--version")
GLOBAL_VALUE_OPTIONS = ("--config", "--state-dir", "--profile", "--set")
HELP_OPTIONS = ("--help",)


def _exception_classes() -> tuple[type[Exception], type[Exception]]:
    """(ClickException, UsageError) of the click that typer actually runs on.

    typer < 0.29 runs on the ``click`` package, typer >= 0.29 on its vendored copy
    (``typer._click``); both export ``BadParameter``, a subclass of the two. Found through the
    MRO so neither an undeclared ``click`` nor a private module is imported.
    """
    by_name = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    return by_name["ClickException"], by_name["UsageError"]


ClickException, ClickUsageError = _exception_classes()

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
    command: str = ""  # the sub-command words ("hosts add"), named in every --json document
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
    invocation = ctx.obj if isinstance(ctx.obj, _Invocation) else _Invocation()
    ctx.obj = AppContext(config_file=config, overrides=overrides, command=invocation.command)
    if not invocation.help_requested and not ctx.resilient_parsing:
        _ = ctx.obj.settings  # validate every setting before any command does anything
        if ctx.invoked_subcommand not in NO_SUPPORT_SWEEP:
            _support_sweep(ctx.obj.settings)


# Commands before which the support-expiry sweep does not run: the local stack, settings and
# Starter Excel checks touch no practice; ``support`` sweeps itself.
NO_SUPPORT_SWEEP = frozenset({"dev-stack", "config", "starter", "support"})


def _support_sweep(settings: Settings) -> None:
    """End every support consent whose time is up, before the command runs (issue: expiry
    is enforced, not hoped for). Skipped while no inventory exists yet."""
    if not settings.inventory_url and not settings.inventory_path.exists():
        return
    from .operations.context import OpContext
    from .operations.support import now_from_env, sweep_if_due

    # its lines go to stderr: a --json document on stdout stays whole
    sweep_if_due(OpContext(settings=settings, reporter=Reporter()), now=now_from_env())


@dataclass(frozen=True)
class _Invocation:
    """What ``main`` knows about the command line before click parses it."""

    help_requested: bool = False
    command: str = ""


def _register() -> None:
    """Attach the command groups (once). Each module exposes ``register(app)``."""
    from .commands import REGISTRY

    if app.registered_groups:
        return
    for register in REGISTRY:
        register(app)


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def command_name(args: list[str]) -> str:
    """The sub-command words of a command line (``"hosts add"``), found in the command tree;
    global options and their values are skipped, the first word that is no sub-command ends it."""
    _register()
    group: Any = typer.main.get_command(app)
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg in GLOBAL_VALUE_OPTIONS:
            next(rest, None)
            continue
        if arg.startswith("-"):
            continue
        group = getattr(group, "commands", {}).get(arg)
        if group is None:
            break
        words.append(arg)
    return " ".join(words)


def format_error(err: SmartpraxxError) -> str:
    lines = [f"error: {err.message}"]
    if err.obj:
        lines.append(f"  object: {err.obj}")
    if err.hint:
        lines.append(f"  next:   {err.hint}")
    return "\n".join(lines)


def _usage_error(exc: Exception) -> SmartpraxxError:
    """A click usage error as the tool's one-line error plus the ``--help`` hint."""
    fmt = getattr(exc, "format_message", None)
    message = str(fmt() if callable(fmt) else exc).strip().splitlines()
    text = (message[0] if message else "invalid usage").rstrip(".")
    text = text[:1].lower() + text[1:]
    sub_ctx = getattr(exc, "ctx", None)
    command = getattr(sub_ctx, "command_path", None) or PROG
    option = getattr(exc, "option_name", None)
    if option in GLOBAL_OPTIONS and command != PROG:
        sub = command.removeprefix(PROG).strip()
        return UsageError(
            f"{option} is a global option and goes before the command: {PROG} {option} ... {sub}",
            hint=f"{PROG} --help",
        )
    return UsageError(text, hint=f"{command} --help")


def _report(err: SmartpraxxError, args: list[str]) -> int:
    if _wants_json(args):
        emit_json(command_name(args), {"error": err.to_dict()}, ok=False)
    print(format_error(err), file=sys.stderr)
    return err.exit_code


def _interrupted(args: list[str]) -> int:
    message = "interrupted; re-run the same command to resume"
    if _wants_json(args):
        emit_json(command_name(args), {"error": {"kind": "interrupted", "message": message}},
                  ok=False)
    print(message, file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. Returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register()
    invocation = _Invocation(
        help_requested=any(a in HELP_OPTIONS for a in args),
        command=command_name(args) if _wants_json(args) else "",
    )
    try:
        rv = app(args=args, prog_name=PROG, standalone_mode=False, obj=invocation)
        # click returns the code of a typer.Exit(code) instead of raising it here
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except SmartpraxxError as err:
        code = _report(err, args)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        code = EXIT_FAILED
    except ClickUsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called without a command
            print(str(getattr(exc, "message", exc)), file=sys.stderr)
            code = EXIT_USAGE
        else:
            code = _report(_usage_error(exc), args)
    except ClickException as exc:  # e.g. a file option that cannot be opened
        message = str(getattr(exc, "message", exc))
        code = _report(SmartpraxxError(message, hint=f"{PROG} --help"), args)
    except KeyboardInterrupt:
        code = _interrupted(args)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
