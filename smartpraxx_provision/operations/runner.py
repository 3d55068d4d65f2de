"""Journaled operations: an operation lock per practice and one journal row per step.

Every step of an operation is idempotent and re-reads live state, so resuming after a crash
is simply running the operation again: the journal records where the last run stopped (for
ops and for ``status``), the steps converge whatever was left half-done.

Fault injection for the crash tests: ``SMARTPRAXX_CRASH_AT=<kind>:<step>:<before|after>``
makes the process SIGKILL itself at that step boundary (the real thing, no exception
handling runs). It is read from the environment only and documented in the README.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import OperationFailed, SmartpraxxError
from .context import OpContext

CRASH_ENV = "SMARTPRAXX_CRASH_AT"


def crash_point(kind: str, step: str, phase: str) -> None:
    """SIGKILL this process when the crash-test variable names this boundary."""
    target = os.environ.get(CRASH_ENV)
    if target and target == f"{kind}:{step}:{phase}":
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class JournaledOperation:
    """``with JournaledOperation(ctx, 'provision', name) as op: with op.step('realm'): ...``"""

    ctx: OpContext
    kind: str
    praxisname: str
    op_id: str = ""
    steps_done: list[str] = field(default_factory=list)
    # run when the operation fails, still under the lock (e.g. write the state ``failed``)
    on_failure: Callable[[], None] | None = None

    def __enter__(self) -> JournaledOperation:
        self.op_id = self.ctx.inventory.begin_operation(self.kind, self.praxisname)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.op_id:
            return
        state = "done" if exc_type is None else "failed"
        if exc_type is not None and self.on_failure is not None:
            with contextlib.suppress(SmartpraxxError):
                self.on_failure()
        with contextlib.suppress(SmartpraxxError):
            self.ctx.inventory.end_operation(self.op_id, state)

    @contextlib.contextmanager
    def step(self, name: str, title: str | None = None) -> Iterator[None]:
        inv = self.ctx.inventory
        crash_point(self.kind, name, "before")
        inv.journal_step(self.op_id, name, "started")
        try:
            with self.ctx.reporter.step(title or name):
                yield
        except SmartpraxxError as err:
            inv.journal_step(self.op_id, name, "failed", err.message[:500])
            raise
        except Exception as exc:
            # unexpected: journal it and wrap it so the CLI prints a clean error
            inv.journal_step(self.op_id, name, "failed", type(exc).__name__)
            raise OperationFailed(
                f"{self.kind} of {self.praxisname} failed in step {name!r}: {type(exc).__name__}: {exc}",
                obj=self.praxisname,
                hint=f"fix the cause and re-run the same command; it resumes (operation {self.op_id})",
            ) from exc
        inv.journal_step(self.op_id, name, "done")
        self.steps_done.append(name)
        crash_point(self.kind, name, "after")
