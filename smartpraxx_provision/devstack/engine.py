"""The local Docker engine for the embedded stack.

``ensure_engine`` makes the local engine answer: installs Debian's ``docker.io`` with apt-get
when ``dockerd`` is missing, starts ``dockerd`` in the background (own session, log under
``cache_dir/devstack/dockerd.log``) when the socket does not answer, and waits for it,
bounded. A dockerd started here is recorded (pid + process start time) in
``state_dir/devstack/engine.json`` so that ``stop_engine`` (``dev-stack down``) stops only
what this tool started. ``ensure_packages`` is the apt-get door (also used for debootstrap).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..adapters.docker_engine import DockerEngine
from ..config import Settings
from ..errors import ServiceUnavailableError
from ..output import Reporter
from .service import run_logged, spawn, wait_until

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
APT_TIMEOUT = 1200.0
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# Every slot has a network of its own: the engine's default pools hold ~30, so the dockerd
# started here gets the pool the host_base role writes into a fleet host's daemon.json
# (ansible/roles/host_base/defaults/main.yml: 256 networks of /24).
DOCKERD_ARGS = ("--default-address-pool", "base=172.30.0.0/16,size=24")


@dataclass
class EngineResult:
    url: str
    version: str
    started_pid: int | None = None  # set when this call started dockerd
    installed: list[str] = field(default_factory=list)  # packages installed by this call

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def devstack_dir(settings: Settings) -> Path:
    return settings.state_dir / "devstack"


def log_dir(settings: Settings) -> Path:
    d = settings.cache_dir / "devstack"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _state_file(settings: Settings) -> Path:
    return devstack_dir(settings) / "engine.json"


def which(program: str) -> str | None:
    """``shutil.which`` that also looks in the sbin directories (non-root PATHs lack them)."""
    found = shutil.which(program)
    if found:
        return found
    for d in _SBIN:
        candidate = Path(d) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- packages ------------------------------------------------------------------------------


def ensure_packages(settings: Settings, reporter: Reporter, packages: dict[str, str]) -> list[str]:
    """Install the Debian packages whose program is missing. ``packages``: program → package.

    Returns the packages installed. Needs root (apt-get); the error names what is missing.
    """
    missing = sorted({pkg for prog, pkg in packages.items() if which(prog) is None})
    if not missing:
        return []
    names = ", ".join(missing)
    if os.geteuid() != 0:
        raise ServiceUnavailableError(
            f"{names} not installed and installing needs root",
            obj=names,
            hint=f"sudo apt-get install {' '.join(missing)}",
        )
    if which("apt-get") is None:
        raise ServiceUnavailableError(
            f"{names} not installed and apt-get is not available on this machine",
            obj=names,
            hint=f"install {names} with the system's package manager",
        )
    log = log_dir(settings) / "apt.log"
    reporter.change(f"installing {names} with apt-get (log {log})")
    _apt_get_install(missing, log)
    still = [pkg for prog, pkg in packages.items() if which(prog) is None]
    if still:
        raise ServiceUnavailableError(
            f"{', '.join(sorted(set(still)))} installed but its program is still missing",
            obj=", ".join(sorted(set(still))),
            hint=f"see {log}",
        )
    return missing


def _apt_get_install(packages: list[str], log: Path) -> None:
    """``apt-get update`` and ``apt-get install -y`` (keeping changed config files), logged."""
    names = ", ".join(packages)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        ["apt-get", "update"],
        [
            "apt-get",
            "install",
            "-y",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            *packages,
        ],
    ]
    for cmd in steps:
        code = run_logged(cmd, log, APT_TIMEOUT, env=env)
        if code is None:
            raise ServiceUnavailableError(
                f"{' '.join(cmd[:2])} did not finish within {APT_TIMEOUT:g}s",
                obj=names,
                hint=f"see {log}",
            )
        if code != 0:
            raise ServiceUnavailableError(
                f"{' '.join(cmd[:2])} failed (exit {code}) installing {names}",
                obj=names,
                hint=f"see {log}",
                details={"log": _tail(log)},
            )


def ensure_debootstrap(settings: Settings, reporter: Reporter) -> list[str]:
    return ensure_packages(settings, reporter, {"debootstrap": "debootstrap"})


# --- dockerd -------------------------------------------------------------------------------


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in ticks): tells pid reuse apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_is(pid: int, program: str) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(argv0.decode(errors="replace")) == program


def _clear_stale_pidfile() -> None:
    """dockerd refuses to start over a pid file of a dead daemon (left by a SIGKILL)."""
    pidfile = Path("/var/run/docker.pid")
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if not _proc_is(pid, "dockerd"):
        with contextlib.suppress(OSError):
            pidfile.unlink()


def read_state(settings: Settings) -> dict[str, Any]:
    try:
        data = json.loads(_state_file(settings).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(settings: Settings, data: dict[str, Any]) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def started_dockerd_pid(settings: Settings) -> int | None:
    """The pid of a dockerd this tool started and that still runs, else None."""
    state = read_state(settings)
    pid = state.get("dockerd_pid")
    if not isinstance(pid, int):
        return None
    if not _proc_is(pid, "dockerd") or _proc_start_time(pid) != state.get("dockerd_start_time"):
        return None
    return pid


def _start_dockerd(settings: Settings, reporter: Reporter, engine: DockerEngine) -> int:
    dockerd = which("dockerd")
    assert dockerd is not None
    log = log_dir(settings) / "dockerd.log"
    _clear_stale_pidfile()
    reporter.change(f"starting dockerd in the background (log {log})")
    env = dict(os.environ)
    env["PATH"] = ":".join([env.get("PATH", "/usr/bin:/bin"), *_SBIN])
    proc = spawn([dockerd, *DOCKERD_ARGS], log, env=env)
    _write_state(
        settings,
        {
            "dockerd_pid": proc.pid,
            "dockerd_start_time": _proc_start_time(proc.pid),
            "dockerd_log": str(log),
        },
    )

    def answers() -> bool:
        if proc.poll() is not None:
            raise ServiceUnavailableError(
                f"dockerd exited with code {proc.returncode} while starting",
                obj="dockerd",
                hint=f"see {log}",
                details={"log": _tail(log)},
            )
        return engine.answers()

    if wait_until(answers, START_TIMEOUT, 0.5):
        return proc.pid
    raise ServiceUnavailableError(
        f"dockerd (pid {proc.pid}) did not answer on {engine.url} within {START_TIMEOUT:g}s",
        obj="dockerd",
        hint=f"see {log}",
        details={"log": _tail(log)},
    )


def ensure_engine(settings: Settings, reporter: Reporter) -> EngineResult:
    """Make the local Docker engine answer; install and start it when needed."""
    engine = DockerEngine()
    try:
        facts = engine.ping()
    except ServiceUnavailableError:
        facts = None
    if facts is not None:
        mine = started_dockerd_pid(settings)
        who = f", started by dev-stack, pid {mine}" if mine else ""
        reporter.skip(f"docker engine answers at {facts['url']} ({facts['version']}{who})")
        return EngineResult(url=facts["url"], version=facts["version"])
    if not engine.is_local:
        raise ServiceUnavailableError(
            f"Docker engine at {engine.url} (DOCKER_HOST) does not answer; "
            "dev-stack starts only a local engine",
            obj=engine.url,
            hint="start that engine, or unset DOCKER_HOST to use the local one",
        )
    installed = ensure_packages(settings, reporter, {"dockerd": "docker.io"})
    if os.geteuid() != 0:
        raise ServiceUnavailableError(
            f"Docker engine at {engine.url} does not answer and starting dockerd needs root",
            obj="dockerd",
            hint="sudo smartpraxx-provision dev-stack up (or start the docker service)",
        )
    pid = _start_dockerd(settings, reporter, engine)
    facts = engine.ping()
    reporter.change(f"docker engine {facts['version']} answers at {facts['url']} (pid {pid})")
    return EngineResult(
        url=facts["url"], version=facts["version"], started_pid=pid, installed=installed
    )


def stop_engine(settings: Settings, reporter: Reporter) -> bool:
    """Stop dockerd if (and only if) this tool started it. True when it was stopped."""
    pid = started_dockerd_pid(settings)
    if pid is None:
        reporter.skip("no dockerd started by dev-stack is running; the engine is left as it is")
        return False
    os.kill(pid, signal.SIGTERM)
    interval = 0.5
    for _ in range(int(STOP_TIMEOUT / interval)):
        if not _proc_is(pid, "dockerd"):
            break
        time.sleep(interval)
    else:
        reporter.warn(f"dockerd (pid {pid}) did not stop within {STOP_TIMEOUT:g}s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        _state_file(settings).unlink()
    reporter.change(f"stopped dockerd (pid {pid})")
    return True


def engine_status(settings: Settings) -> dict[str, Any]:
    engine = DockerEngine()
    try:
        facts: dict[str, Any] = dict(engine.ping())
        facts["answers"] = True
    except ServiceUnavailableError as err:
        facts = {"url": engine.url, "answers": False, "error": err.message}
    facts["started_by_devstack_pid"] = started_dockerd_pid(settings)
    facts["dockerd_installed"] = which("dockerd") is not None
    return facts
