"""Human progress on stderr, machine results on stdout.

Operations and steps report through a ``Reporter``: what they do, what they skip and why
("realm nc07-cloud023 exists, up to date"), and step timings. In ``--json`` mode nothing
human goes to stdout; the command prints exactly one JSON document there at the end.
Never pass secrets or staff personal data to a Reporter.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console


@dataclass
class StepTiming:
    name: str
    seconds: float
    status: str  # "ok" | "failed"


@dataclass
class Reporter:
    """Progress and log lines for one command run."""

    quiet: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    timings: list[StepTiming] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def _emit(self, prefix: str, message: str, style: str = "") -> None:
        self.lines.append(f"{prefix} {message}".strip())
        if not self.quiet:
            self._console.print(f"{prefix} {message}".strip(), style=style or None, markup=False)

    def info(self, message: str) -> None:
        self._emit("  ", message)

    def change(self, message: str) -> None:
        self._emit("  +", message, "green")

    def skip(self, message: str) -> None:
        self._emit("  =", message, "dim")

    def warn(self, message: str) -> None:
        self._emit("  !", message, "yellow")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A named step with a spinner (interactive) and its duration."""
        start = time.monotonic()
        status = "ok"
        ctx: contextlib.AbstractContextManager[Any]
        if not self.quiet and self._console.is_terminal:
            ctx = self._console.status(name)
        else:
            ctx = contextlib.nullcontext()
        try:
            with ctx:
                yield
        except BaseException:
            status = "failed"
            raise
        finally:
            seconds = time.monotonic() - start
            self.timings.append(StepTiming(name, seconds, status))
            mark = "✓" if status == "ok" else "✗"
            self._emit(mark, f"{name} ({seconds:.1f}s)", "bold" if status == "ok" else "red")


def json_document(command: str, body: Mapping[str, Any], *, ok: bool = True) -> dict[str, Any]:
    """The one envelope of every ``--json`` document: the result's own keys plus ``ok`` and
    ``command`` (the sub-command, e.g. ``"hosts add"``). A result that states ``ok`` itself
    keeps it (a failed smoke, a broadcast with failures); otherwise ``ok`` is the caller's
    (false for an error or a non-zero exit code). An error document is
    ``{"ok": false, "command": ..., "error": {"kind", "message", "object", "next", ...}}``."""
    return {**body, "ok": bool(body.get("ok", ok)), "command": command}


def emit_json(
    command: str, body: Mapping[str, Any], *, ok: bool = True, stream: TextIO | None = None
) -> None:
    """Write the one JSON document of a command run (see :func:`json_document`)."""
    out = stream or sys.stdout
    document = json_document(command, body, ok=ok)
    out.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str))
    out.write("\n")
    out.flush()
