"""Fleet hosts with Ansible: the dynamic inventory and ``hosts bootstrap``.

The orchestrator's inventory is Ansible's inventory: ``ansible/inventory/smartpraxx_inventory.py``
prints :func:`ansible_inventory` (groups ``practice_hosts`` from ``hosts add`` and
``identity_hosts`` from the ``identity_host`` setting), so a host added with ``hosts add``
is targetable without a second list.

``bootstrap_host`` renders the host's routing file, runs ``ansible-playbook`` for that one
host as a subprocess (output streamed), and marks the host active when the play succeeds.
Secrets (backup and Keycloak passwords) travel in a 0600 extra-vars file in a private
temporary directory, never in argv; the playbook runs with ``no_log`` on the tasks that
write them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import SECRET_ENV_ONLY, Settings
from ..domain.model import HOST_RE
from ..errors import (
    ConfigError,
    OperationFailed,
    ServiceUnavailableError,
    UsageError,
)
from ..inventory import HostRecord, Inventory
from .context import OpContext, host_not_in_inventory

PRACTICE_GROUP = "practice_hosts"
IDENTITY_GROUP = "identity_hosts"
PRACTICE_PLAYBOOK = "playbooks/practice_host.yml"
IDENTITY_PLAYBOOK = "playbooks/identity_host.yml"

# Secret store paths of the fleet (generated once with ensure()).
STORE_PATH_RESTIC = "platform/restic-password"
STORE_PATH_KEYCLOAK_ADMIN = "platform/keycloak-admin"
STORE_PATH_KEYCLOAK_DB = "platform/keycloak-db-password"

PLAYBOOK_TIMEOUT = 3600.0  # seconds; a bootstrap that takes longer is killed
ENV_ANSIBLE_DIR = "SMARTPRAXX_ANSIBLE_DIR"  # read from the environment only (tests, packaging)

_RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)


# --- the dynamic inventory ------------------------------------------------------------


def ssh_target(endpoint: str) -> dict[str, Any] | None:
    """``ansible_host``/``ansible_user``/``ansible_port`` from an ``ssh://`` engine endpoint."""
    if not endpoint.startswith("ssh://"):
        return None
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return None
    out: dict[str, Any] = {"ansible_host": parts.hostname}
    if parts.username:
        out["ansible_user"] = parts.username
    if parts.port:
        out["ansible_port"] = parts.port
    return out


def host_vars(record: HostRecord) -> dict[str, Any]:
    """Ansible host variables of a fleet host: facts from its record, never secrets."""
    out: dict[str, Any] = {
        "smartpraxx_host_number": record.number,
        "smartpraxx_host_state": record.state,
        "smartpraxx_capacity": record.capacity,
        "smartpraxx_used": record.used,
        "smartpraxx_endpoint": record.endpoint,
    }
    out.update(ssh_target(record.endpoint) or {})
    return out


def ansible_inventory(settings: Settings, inventory: Inventory) -> dict[str, Any]:
    """The ``--list`` document of Ansible's script inventory protocol."""
    hostvars: dict[str, dict[str, Any]] = {}
    practice_hosts: list[str] = []
    by_state: dict[str, list[str]] = {}
    for record in inventory.list_hosts():
        practice_hosts.append(record.name)
        hostvars[record.name] = host_vars(record)
        by_state.setdefault(f"hosts_{record.state}", []).append(record.name)
    identity = settings.identity_host
    hostvars[identity] = {"ansible_host": identity, "identity_host_public_name": identity}
    doc: dict[str, Any] = {
        "_meta": {"hostvars": hostvars},
        "all": {"children": sorted([PRACTICE_GROUP, IDENTITY_GROUP, *by_state])},
        PRACTICE_GROUP: {"hosts": practice_hosts},
        IDENTITY_GROUP: {"hosts": [identity]},
    }
    for group, hosts in sorted(by_state.items()):
        doc[group] = {"hosts": hosts}
    return doc


def inventory_script_main(argv: Sequence[str], settings_loader: Callable[[], Settings]) -> int:
    """Entry point of ``ansible/inventory/smartpraxx_inventory.py`` (``--list``/``--host``)."""
    from ..errors import SmartpraxxError
    from ..inventory import open_inventory

    args = list(argv)
    if args not in (["--list"],) and not (len(args) == 2 and args[0] == "--host"):
        print("usage: smartpraxx_inventory.py --list | --host NAME", file=sys.stderr)
        return 2
    try:
        settings = settings_loader()
        with open_inventory(settings) as inventory:
            doc = ansible_inventory(settings, inventory)
    except SmartpraxxError as err:
        print(f"smartpraxx inventory: {err.message}", file=sys.stderr)
        return 1
    if args[0] == "--list":
        out: Any = doc
    else:
        out = doc["_meta"]["hostvars"].get(args[1], {})
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


# --- running ansible-playbook ---------------------------------------------------------


def ansible_dir() -> Path:
    """The ``ansible/`` tree: ``$SMARTPRAXX_ANSIBLE_DIR`` or the checkout's ``ansible/``."""
    configured = os.environ.get(ENV_ANSIBLE_DIR)
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "ansible"
    if not (path / "ansible.cfg").is_file():
        raise ConfigError(
            f"the Ansible tree is not at {path}",
            obj=str(path),
            hint=f"run from a checkout of smartpraxx-provision or export {ENV_ANSIBLE_DIR}",
        )
    return path


def settings_env(settings: Settings) -> dict[str, str]:
    """``SMARTPRAXX_*`` variables that rebuild these settings in a child process (the
    inventory script), so CLI flags like ``--state-dir`` reach it. Env-only secrets are
    not copied (a child inherits them from this process's environment if set)."""
    env: dict[str, str] = {}
    for f in fields(settings):
        if f.name in SECRET_ENV_ONLY:
            continue
        value = getattr(settings, f.name)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        env[f"SMARTPRAXX_{f.name.upper()}"] = text
    return env


@dataclass
class PlayResult:
    """Outcome of one ansible-playbook run (counts from the PLAY RECAP of the host)."""

    host: str
    check: bool
    returncode: int
    seconds: float
    recap: dict[str, int] = field(default_factory=dict)
    state: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "check": self.check,
            "ok": self.returncode == 0,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 1),
            "recap": self.recap,
            "state": self.state,
        }


def parse_recap(lines: Sequence[str], host: str) -> dict[str, int]:
    for line in reversed(lines):
        m = _RECAP_RE.match(line.strip())
        if m and m.group("host") == host:
            return {k: int(v) for k, v in m.groupdict().items() if k != "host"}
    return {}


def write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to a new file created with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(dict(data), fh, indent=2, sort_keys=True)


def _ansible_playbook_exe() -> str:
    """The ``ansible-playbook`` executable (on PATH or next to this interpreter)."""
    exe = shutil.which("ansible-playbook") or str(Path(sys.executable).with_name("ansible-playbook"))
    if not Path(exe).is_file():
        raise ServiceUnavailableError(
            "ansible-playbook is not installed",
            obj="ansible-playbook",
            hint="pip install 'smartpraxx-provision[fleet]'",
        )
    return exe


def _ansible_env(settings: Settings, base: Path) -> dict[str, str]:
    """The environment of an ``ansible-playbook`` run (no colour, unbuffered, our PATH)."""
    env = dict(os.environ)
    env.update(settings_env(settings))
    env["ANSIBLE_CONFIG"] = str(base / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    # the inventory script imports this package: put this interpreter first on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _stream_process(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    emit: Callable[[str], None],
    timeout: float,
) -> tuple[int, list[str], bool]:
    """Run ``argv``, streaming its output lines to ``emit``; kill it after ``timeout``.

    Returns the exit code, the output lines and whether the timeout killed it."""
    lines: list[str] = []
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    killer = threading.Timer(timeout, kill)
    killer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            emit(line)
        returncode = proc.wait()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return returncode, lines, timed_out.is_set()


def run_playbook(
    playbook: str,
    *,
    limit: str,
    extra_vars: Mapping[str, Any],
    settings: Settings,
    check: bool = False,
    inventory: str | None = None,
    output: Callable[[str], None] | None = None,
    timeout: float = PLAYBOOK_TIMEOUT,
) -> PlayResult:
    """Run ``ansible-playbook`` on one host; stream its output line by line to ``output``.

    ``extra_vars`` (may hold secrets) go into a 0600 file in a private temp dir that is
    removed afterwards; argv carries only the playbook, the limit and ``@file``.
    ``inventory`` overrides the dynamic inventory (tests point it at a container).
    """
    exe = _ansible_playbook_exe()
    base = ansible_dir()
    emit = output or (lambda line: print(line, file=sys.stderr, flush=True))
    env = _ansible_env(settings, base)
    with tempfile.TemporaryDirectory(prefix="smartpraxx-ansible-") as tmp:
        vars_file = Path(tmp) / "extra-vars.json"
        write_private_json(vars_file, extra_vars)
        argv = [exe, str(base / playbook), "--limit", limit, "--extra-vars", f"@{vars_file}"]
        if inventory is not None:
            argv += ["--inventory", inventory]
        if check:
            argv.append("--check")
        start = time.monotonic()
        returncode, lines, timed_out = _stream_process(
            argv, cwd=base, env=env, emit=emit, timeout=timeout
        )
        seconds = time.monotonic() - start
    if timed_out:
        raise OperationFailed(
            f"ansible-playbook for {limit} did not finish within {timeout:.0f}s",
            obj=limit,
            hint=f"check the host and re-run smartpraxx-provision hosts bootstrap {limit}",
        )
    return PlayResult(
        host=limit, check=check, returncode=returncode, seconds=seconds,
        recap=parse_recap(lines, limit),
    )


# --- hosts bootstrap ------------------------------------------------------------------


def _practice_host_vars(ctx: OpContext, record: HostRecord) -> dict[str, Any]:
    from .routes import proxy_dir, write_host_routes

    settings = ctx.settings
    if not settings.backup_repository:
        raise ConfigError(
            "no backup repository is configured for the fleet",
            obj="setting backup_repository",
            hint="set backup_repository (e.g. sftp:backup@storage.example:/smartpraxx) "
            "in smartpraxx.yaml or SMARTPRAXX_BACKUP_REPOSITORY",
        )
    write_host_routes(ctx, record.name)
    return {
        "practice_host_routes_file": str(proxy_dir(ctx) / f"{record.name}.caddy"),
        "practice_host_backup_repository": settings.backup_repository,
        "practice_host_backup_password": ctx.secrets.ensure(STORE_PATH_RESTIC),
    }


def _identity_host_vars(ctx: OpContext) -> dict[str, Any]:
    from .routes import proxy_dir, write_start_page_routes

    settings = ctx.settings
    write_start_page_routes(ctx)
    out: dict[str, Any] = {
        "identity_host_public_name": settings.identity_host,
        "identity_host_routes_file": str(proxy_dir(ctx) / "identity-routes.caddy"),
        "identity_host_keycloak_admin_user": settings.keycloak_admin_user,
        "identity_host_keycloak_admin_password": ctx.secrets.ensure(STORE_PATH_KEYCLOAK_ADMIN),
        "identity_host_db_password": ctx.secrets.ensure(STORE_PATH_KEYCLOAK_DB),
    }
    if settings.backup_repository:
        out["identity_host_backup_repository"] = settings.backup_repository
        out["identity_host_backup_password"] = ctx.secrets.ensure(STORE_PATH_RESTIC)
    return out


def _host_play(
    ctx: OpContext, name: str, inventory: str | None
) -> tuple[str, dict[str, Any], HostRecord | None]:
    """The playbook and variables for host ``name``, and its inventory record (a practice host)."""
    settings = ctx.settings
    if name == settings.identity_host:
        return IDENTITY_PLAYBOOK, _identity_host_vars(ctx), None
    if not HOST_RE.match(name):
        raise UsageError(
            f"{name!r} is neither a cloudYYY host nor the identity host ({settings.identity_host})",
            obj=name,
            hint="smartpraxx-provision hosts list",
        )
    record = ctx.inventory.get_host(name)
    if record is None:
        raise host_not_in_inventory(name, "ssh://root@<address>")
    if inventory is None and ssh_target(record.endpoint) is None:
        raise UsageError(
            f"host {name} has the engine endpoint {record.endpoint}; Ansible needs ssh://",
            obj=name,
            hint=f"register the host with --endpoint ssh://root@<address> "
            f"(smartpraxx-provision hosts add {name} ...)",
        )
    return PRACTICE_PLAYBOOK, _practice_host_vars(ctx, record), record


def _settle_host_state(
    ctx: OpContext, name: str, record: HostRecord | None, result: PlayResult, check: bool
) -> None:
    """After a successful play: a practice host becomes ``active`` (not in check mode,
    not while draining); ``result.state`` tells the host's state."""
    if record is None:
        result.state = "n/a"
    elif check:
        result.state = record.state
        ctx.reporter.skip(f"host {name} state stays {record.state} (check mode)")
    elif record.state == "draining":
        result.state = record.state
        ctx.reporter.skip(f"host {name} is draining; state left as it is")
    elif record.state == "active":
        result.state = "active"
        ctx.reporter.skip(f"host {name} is active, up to date")
    else:
        result.state = ctx.inventory.set_host_state(name, "active").state
        ctx.reporter.change(f"host {name} marked active")


def bootstrap_host(
    ctx: OpContext,
    name: str,
    *,
    check: bool = False,
    inventory: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    output: Callable[[str], None] | None = None,
) -> PlayResult:
    """Run the host's playbook (``practice_host`` for cloudYYY, ``identity_host`` for the
    identity host); on success (not ``--check``) a practice host becomes ``active``.

    ``inventory``/``extra_vars`` are for tests that point the play at a container.
    """
    playbook, play_vars, record = _host_play(ctx, name, inventory)
    play_vars.update(extra_vars or {})

    mode = " (check mode, nothing changes)" if check else ""
    ctx.reporter.info(f"ansible-playbook {playbook} --limit {name}{mode}")
    result = run_playbook(
        playbook, limit=name, extra_vars=play_vars, settings=ctx.settings, check=check,
        inventory=inventory, output=output,
    )
    if result.returncode != 0:
        raise OperationFailed(
            f"bootstrap of {name} failed (ansible-playbook exit {result.returncode})",
            obj=name,
            hint=f"fix the failed task shown above, then re-run smartpraxx-provision hosts bootstrap {name}",
            details=result.to_dict(),
        )
    changed = result.recap.get("changed", 0)
    ctx.reporter.info(f"{name}: play ok, {changed} task(s) changed, {result.seconds:.0f}s")
    _settle_host_state(ctx, name, record, result, check)
    return result
