"""A local background service of the embedded stack: Keycloak, the mail sink, Caddy.

(Also the process helpers the stack's modules share: :func:`spawn`, :func:`run_logged`,
:func:`wait_until`, :func:`exited_during_start`, :func:`port_open`.)

Each runs as a process in its own session (process group id == pid), output appended to a
log file, known by a pid file in the state dir. A pid counts as the service's only while
``/proc/<pid>/cmdline`` still holds the service's markers (paths of this state dir), which
guards against pid reuse. Stopping signals the whole process group: SIGTERM, then SIGKILL
when it outlives a bounded wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServiceUnavailableError
from ..output import Reporter


def spawn(
    argv: list[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    umask: int = -1,
    detach: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (no stdin), stdout and stderr appended to the log; ``detach``: in a
    session of its own, so that it outlives this process and a terminal's Ctrl-C."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
            umask=umask,
        )


def run_logged(
    cmd: list[str], log_path: Path, timeout: float, *, env: Mapping[str, str] | None = None
) -> int | None:
    """Run ``cmd`` to its end (no stdin), output appended to the log: its exit code, or None
    when it did not finish within ``timeout`` seconds (it is killed then)."""
    with spawn(cmd, log_path, env=env, detach=False) as proc:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None


def exited_during_start(
    proc: subprocess.Popen[bytes] | None, what: str, obj: str, log_path: Path
) -> None:
    """Raise when the process being started (``what``: "Caddy", ...) has exited already."""
    if proc is not None and proc.poll() is not None:
        raise ServiceUnavailableError(
            f"{what} exited during start-up (exit code {proc.returncode})",
            obj=obj,
            hint=f"see {log_path}",
        )


def wait_until(ready: Callable[[], bool], timeout: float, poll: float) -> bool:
    """Ask ``ready()`` every ``poll`` seconds until it says yes (True) or ``timeout`` passed
    (False). ``ready`` raises to give up early (say, the process being waited for exited)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / poll) + 1):
        if ready():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on host:port (1 s timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass(frozen=True)
class Service:
    """One background service of a state dir: its pid and log file, its identity markers."""

    name: str  # in messages: "Keycloak", "mail sink", "Caddy"
    home: Path  # holds <stem>.pid and <stem>.log
    stem: str
    markers: tuple[str, ...]  # what the process's command line contains
    stop_timeout: float  # seconds between SIGTERM and SIGKILL
    poll: float  # seconds between two looks at the process
    kill_timeout: float  # seconds to wait for the process to go after SIGKILL
    article: str = ""  # "the " for "stopped the mail sink"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.stem}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.stem}.log"

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text(encoding="utf-8").split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def is_ours(self, pid: int) -> bool:
        """The pid is alive and is this service (its command line holds every marker)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return all(marker.encode() in cmdline for marker in self.markers)

    def running_pid(self) -> int | None:
        """The pid from the pid file when that process is still this service."""
        pid = self.read_pid()
        return pid if pid is not None and self.is_ours(pid) else None

    def start(
        self,
        argv: list[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        umask: int = -1,
    ) -> subprocess.Popen[bytes]:
        """:func:`spawn` the service into its log and record its pid."""
        proc = spawn(argv, self.log_file, cwd=cwd, env=env, umask=umask)
        self.pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
        return proc

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        """Reap and look until the process is no longer ours (bounded); True when it went."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / self.poll) + 1):
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            if not self.is_ours(pid):
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(self.poll)
        return not self.is_ours(pid)

    def terminate(self, pid: int) -> bool:
        """SIGTERM the process group we started, then SIGKILL; bounded. False when not ours."""
        if not self.is_ours(pid):
            return False
        _signal_group(pid, signal.SIGTERM)
        if not self._wait_gone(pid, self.stop_timeout):
            _signal_group(pid, signal.SIGKILL)
            self._wait_gone(pid, self.kill_timeout)
        return True

    def stop(self, reporter: Reporter) -> bool:
        """Stop the service this state dir started (by its pid file). True when one was stopped."""
        pid = self.running_pid()
        if pid is None:
            reporter.skip(f"{self.name} is not running (no live process from this state dir)")
            self.pid_file.unlink(missing_ok=True)
            return False
        self.terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        reporter.change(f"stopped {self.article}{self.name} (pid {pid})")
        return True
