"""The dev stack's background-service handling (devstack/service.py) on real, harmless
processes: pid file and log, the command-line markers that guard against pid reuse, stop by
process group, and the logged foreground run with its timeout."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from smartpraxx_provision.devstack.service import (
    Service,
    exited_during_start,
    run_logged,
    wait_until,
)
from smartpraxx_provision.errors import ServiceUnavailableError
from smartpraxx_provision.output import Reporter


def _service(home: Path, marker: str) -> Service:
    return Service("sleeper", home=home, stem="sleeper", markers=(marker,), stop_timeout=5.0,
                   poll=0.05, kill_timeout=2.0, article="the ")


def _sleeper(marker: str) -> list[str]:
    # the marker is an argument, so it shows in /proc/<pid>/cmdline
    return [sys.executable, "-c", "import sys, time; print(sys.argv[1], flush=True); "
            "time.sleep(60)", marker]


def test_start_records_the_pid_and_stop_ends_the_process(tmp_path: Path) -> None:
    marker = f"marker-{tmp_path.name}"
    service = _service(tmp_path, marker)
    proc = service.start(_sleeper(marker))
    try:
        assert service.pid_file == tmp_path / "sleeper.pid"
        assert service.read_pid() == proc.pid
        assert wait_until(lambda: marker in service.log_file.read_text(), 10.0, 0.05)
        assert service.running_pid() == proc.pid
        assert not _service(tmp_path, "another-state-dir").is_ours(proc.pid)  # pid reuse guard
        reporter = Reporter(quiet=True)
        assert service.stop(reporter) is True
        assert proc.wait(timeout=5) is not None
        assert not service.pid_file.exists()
        assert service.running_pid() is None
        assert service.stop(reporter) is False
        assert [line.split(" ", 1)[1] for line in reporter.lines] == [
            f"stopped the sleeper (pid {proc.pid})",
            "sleeper is not running (no live process from this state dir)",
        ]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_stale_pid_file_is_not_ours(tmp_path: Path) -> None:
    service = _service(tmp_path, "nothing-runs-with-this")
    service.pid_file.write_text("999999999\n", encoding="utf-8")
    assert service.read_pid() == 999999999
    assert service.running_pid() is None
    service.pid_file.write_text("garbage\n", encoding="utf-8")
    assert service.read_pid() is None


def test_run_logged_returns_the_exit_code_and_none_on_timeout(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    assert run_logged([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], log,
                      30.0) == 3
    assert run_logged([sys.executable, "-c", "print('again')"], log, 30.0) == 0
    assert log.read_text().splitlines() == ["hello", "again"]  # appended
    started = time.monotonic()
    assert run_logged([sys.executable, "-c", "import time; time.sleep(30)"], log, 0.3) is None
    assert time.monotonic() - started < 10


def test_wait_until_gives_up_after_the_timeout_and_a_check_may_raise(tmp_path: Path) -> None:
    assert wait_until(lambda: False, 0.2, 0.05) is False
    calls: list[int] = []
    assert wait_until(lambda: calls.append(1) is None and len(calls) == 3, 5.0, 0.01) is True
    proc = _service(tmp_path, "x").start([sys.executable, "-c", "raise SystemExit(7)"])
    proc.wait(timeout=10)
    with pytest.raises(ServiceUnavailableError) as err:
        exited_during_start(proc, "the sleeper", "sleeper", tmp_path / "sleeper.log")
    assert err.value.message == "the sleeper exited during start-up (exit code 7)"
    exited_during_start(None, "the sleeper", "sleeper", tmp_path / "sleeper.log")
