"""``php occ`` of the Nextcloud stand-in (test double; the image's ``php`` runs only this).

Flow of a real ``occ`` run, re-enacted: owner check of config/config.php, boot (database and
Redis connection), the commands registered for the current state (before the install only a
few; commands of disabled apps, and of all apps in maintenance mode, are missing), Symfony
lookup and parsing against the vendored reference, then the command. Commands without an
implementation in ``commands.py`` are accepted with a notice on stderr and exit 0.

Run as ``python3 -m nc_standin <path to occ> <args...>``; ``main()`` is importable for
tests.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from . import PRODUCT, VERSION_STRING, catalog
from .commands import HANDLERS, CommandFailed, Ctx, enabled_apps, help_text, install_definition
from .console import (
    COMMANDS_JSON,
    CommandDef,
    ConsoleError,
    command_from_json,
    find_command,
    first_argument,
    has_parameter_option,
    parse,
    render_error,
)
from .output import Out
from .state import DbError, StandinError, Store, SystemConfig, redis_check

REFERENCE_RAW: dict[str, Any] = json.loads(COMMANDS_JSON.read_text(encoding="utf-8"))
# Commands of apps outside the capture (announcementcenter), written from the apps' sources
# in the same format and marked NOT CAPTURED in the file (see ../README.md).
SUPPLEMENT_DIR = COMMANDS_JSON.parent.parent / "supplement"
for _extra in sorted(SUPPLEMENT_DIR.glob("*-commands.json")):
    REFERENCE_RAW["commands"] += json.loads(_extra.read_text(encoding="utf-8"))["commands"]
REFERENCE: dict[str, CommandDef] = {
    c["name"]: command_from_json(c) for c in REFERENCE_RAW["commands"]
}
INSTALL = install_definition(REFERENCE["status"])
PRE_INSTALL = {"_complete", "_completion", "completion", "help", "list", "check", "status"}
NOTICE = 'Nextcloud stand-in (test double): "{}" accepted, no effect.\n'


def available_commands(system: SystemConfig, store: Store | None) -> dict[str, CommandDef]:
    """The commands a real occ would register in this state."""
    if not system.installed:
        cmds = {n: c for n, c in REFERENCE.items() if n in PRE_INSTALL}
        cmds[INSTALL.name] = INSTALL
        return cmds
    maintenance = system.get("maintenance") is True
    enabled = enabled_apps(store) if store is not None and not maintenance else {}
    out: dict[str, CommandDef] = {}
    for name, cmd in REFERENCE.items():
        app = catalog.NAMESPACE_APP.get(name.split(":")[0]) if ":" in name else None
        if app and (maintenance or app not in enabled):
            continue
        out[name] = cmd
    return out


def _owner_error(root: Path) -> str | None:
    """console.php: occ must run as the owner of config/config.php."""
    target = root / "config" / "config.json"
    if not target.exists():
        target = target.parent if target.parent.exists() else root
    owner, user = target.stat().st_uid, os.geteuid()
    if owner == user:
        return None
    return (
        "Console has to be executed with the user that owns the file config/config.php\n"
        f"Current user id: {user}\n"
        f"Owner id of config.php: {owner}\n"
        f"Try adding 'sudo -u #{owner}' to the beginning of the command (without the single "
        "quotes)\n"
        f"If running with 'docker exec' try adding the option '-u {owner}' to the docker "
        "command (without the single quotes)\n"
    )


def _boot_failure(e: StandinError) -> str:
    if isinstance(e, DbError):
        return ("Doctrine\\DBAL\\Exception: Failed to connect to the database: "
                f"An exception occurred in the driver: {e}")
    return str(e)


def main(
    argv: list[str],
    root: Path,
    env: Mapping[str, str],
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """One ``occ`` run: ``argv`` is everything after ``occ``. Returns the exit code."""
    tokens = list(argv)
    owner_error = _owner_error(root)
    if owner_error:
        stdout.write(owner_error)
        return 1
    system = SystemConfig(root, env)
    out = Out(stdout, quiet=has_parameter_option(tokens, ("--quiet", "-q")))
    store: Store | None = None
    try:
        if system.installed:
            store = Store.connect(system.values)
            if isinstance(system.get("redis"), dict):
                redis_check(system.get("redis"))
    except StandinError as e:
        stdout.write(f"An unhandled exception has been thrown:\n{_boot_failure(e)}\n")
        return 1
    try:
        return _run(tokens, root, env, stdin, out, stderr, system, store)
    finally:
        if store is not None:
            store.close()


def _run(
    tokens: list[str],
    root: Path,
    env: Mapping[str, str],
    stdin: TextIO,
    out: Out,
    stderr: TextIO,
    system: SystemConfig,
    store: Store | None,
) -> int:
    first = first_argument(tokens)
    if not system.installed and first not in ("_completion", "maintenance:install"):
        stderr.write("Nextcloud is not installed - only a limited number of commands are "
                     "available\n")
    elif system.get("maintenance") is True and first not in ("_completion", "maintenance:mode",
                                                             "status"):
        stderr.write("Nextcloud is in maintenance mode, hence the database isn't accessible.\n"
                     "Cannot perform any command except 'maintenance:mode --off'\n\n")
    if has_parameter_option(tokens, ("--version", "-V")):
        out.line(f"{PRODUCT} {VERSION_STRING}")
        return 0
    name = first
    if name is None:
        name, tokens = "list", ["list", *tokens]
    try:
        cmd = find_command(available_commands(system, store), name)
    except ConsoleError as e:
        stderr.write(render_error(str(e)))
        return 1
    if has_parameter_option(tokens, ("--help", "-h")):
        out.line(help_text(cmd))
        return 0
    try:
        inp = parse(cmd, tokens)
        handler = HANDLERS.get(cmd.name)
        if handler is None:
            stderr.write(NOTICE.format(cmd.name))
            return 0
        try:
            code = handler(Ctx(inp, out, root, env, stdin, system, store))
        except CommandFailed as failed:
            out.line(failed.line)
            code = 1
        if store is not None:
            store.commit()
        return code & 0xFF
    except (ConsoleError, StandinError) as e:
        stderr.write(render_error(str(e), cmd.synopsis()))
        return 1


def cli() -> int:
    args = sys.argv[1:]
    if not args:
        sys.stderr.write("usage: python3 -m nc_standin <path/to/occ> [command] ...\n")
        return 1
    root = Path(args[0]).resolve().parent
    return main(args[1:], root, os.environ, sys.stdin, sys.stdout, sys.stderr)

