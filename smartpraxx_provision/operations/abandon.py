"""``operations abandon OP_ID``: release the lock of an operation whose process is gone on
another machine.

A run killed on this machine is taken over by the next run automatically (its pid is gone);
one that died on another operator's machine (a team inventory on PostgreSQL) cannot be
checked from here, so it keeps its practice locked until an operator decides. Abandoning
only ends the journal entry: the practice's objects stay as they are, and the next run of the
same command re-checks every step and converges.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError, NotFoundError
from ..inventory.models import OperationRecord
from .context import OpContext


def _running(ctx: OpContext, op_id: str) -> OperationRecord:
    op = ctx.inventory.get_operation(op_id)
    if op is None:
        raise NotFoundError(
            f"operation {op_id} is not in the journal",
            obj=op_id,
            hint="the refusal that named the operation gives its id; "
            "smartpraxx-provision status <praxisname>",
        )
    here = op.state == "running" and op.hostname == ctx.inventory.hostname
    if here and not ctx.inventory.is_interrupted(op):
        raise ConflictError(
            f"operation {op_id} ({op.kind} of {op.praxisname}) is still running on this "
            f"machine (pid {op.pid}); nothing was changed",
            obj=op_id,
            hint="wait for it to finish; a killed run is taken over by the next run",
        )
    return op


def _describe(op: OperationRecord) -> dict[str, Any]:
    return {
        "operation": op.op_id,
        "kind": op.kind,
        "praxisname": op.praxisname,
        "state": op.state,
        "hostname": op.hostname,
        "pid": op.pid,
        "started_at": f"{op.started_at:%Y-%m-%d %H:%M:%S} UTC",
    }


def abandon_plan(ctx: OpContext, op_id: str) -> dict[str, Any]:
    op = _running(ctx, op_id)
    action = "mark abandoned (releases the lock)" if op.state == "running" else "nothing"
    return {**_describe(op), "then": action}


def abandon(ctx: OpContext, op_id: str) -> dict[str, Any]:
    """Mark a running operation abandoned; an operation that already ended is left as it is."""
    op = _running(ctx, op_id)
    changed = op.state == "running" and ctx.inventory.abandon_operation(op_id)
    if changed:
        ctx.reporter.change(
            f"operation {op_id} ({op.kind} of {op.praxisname}, pid {op.pid} on {op.hostname}) "
            f"abandoned; re-run {op.kind} to converge"
        )
    else:
        ended = ctx.inventory.get_operation(op_id)
        ctx.reporter.skip(f"operation {op_id} already ended ({ended.state if ended else '?'})")
    after = ctx.inventory.get_operation(op_id)
    return {
        "ok": True,
        "changed": changed,
        **_describe(after or op),
        "next": f"smartpraxx-provision {op.kind} ... (re-run it; every step re-checks live state)",
    }
