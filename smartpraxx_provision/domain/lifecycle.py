"""The practice life cycle: states, the transition table and what each operation may do.

Pure (no I/O). The inventory applies a transition atomically together with its billing
event (``Inventory.transition_practice``), and a transition's event carries a key unique per
slot (``<slot>:provisioned``, ``<slot>:decommissioned``), so each is recorded exactly once,
also across re-runs, crash-resumes and a failed-then-converged practice.

Stored states (``tombstoned`` is the decommissioned state: slot number and name stay reserved
for life; ``allocated`` is the first moment of provisioning: a slot exists, nothing else)::

    allocated ─▶ provisioning ─▶ active ─▶ decommissioning ─▶ tombstoned
        │            │  ▲          │              ▲
        └────────────┴──┼─▶ failed ┴──────────────┘
                        └──────┘

``failed`` is written when a provision of a practice that was never active fails (the
practice does not serve anyone yet); a failed re-provision of an active practice leaves it
``active`` (it keeps serving; the failed operation is in the journal and ``status`` reports
it). A failed decommission stays ``decommissioning`` once the deletion has begun.

Suspension (subscription paused/overdue, ``operations/subscription.py``) is orthogonal: an
``active`` practice is suspended or not (its last ``suspended``/``resumed`` event says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import ConflictError


class PracticeState(StrEnum):
    ALLOCATED = "allocated"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    FAILED = "failed"
    DECOMMISSIONING = "decommissioning"
    DECOMMISSIONED = "tombstoned"

    @property
    def label(self) -> str:
        """The life-cycle name shown to operators (``decommissioned`` for ``tombstoned``)."""
        return "decommissioned" if self is PracticeState.DECOMMISSIONED else self.value


S = PracticeState


@dataclass(frozen=True)
class Transition:
    source: PracticeState
    target: PracticeState
    event: str | None  # the billing event this transition emits (once per slot), if any


# Every allowed change of state. A transition not in this table is refused.
TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.ALLOCATED, S.PROVISIONING, None),
    Transition(S.ALLOCATED, S.FAILED, None),
    Transition(S.PROVISIONING, S.ACTIVE, "provisioned"),
    Transition(S.PROVISIONING, S.FAILED, None),
    Transition(S.FAILED, S.PROVISIONING, None),
    Transition(S.ACTIVE, S.DECOMMISSIONING, None),
    Transition(S.FAILED, S.DECOMMISSIONING, None),
    Transition(S.PROVISIONING, S.DECOMMISSIONING, None),
    Transition(S.DECOMMISSIONING, S.DECOMMISSIONED, "decommissioned"),
)
_TABLE = {(t.source, t.target): t for t in TRANSITIONS}

# Events of a transition that happen at most once in a slot's life.
ONCE_PER_SLOT = frozenset(t.event for t in TRANSITIONS if t.event)

# What each operation may start from.
OPERATIONS: dict[str, frozenset[PracticeState]] = {
    "provision": frozenset({S.ALLOCATED, S.PROVISIONING, S.ACTIVE, S.FAILED}),
    "rename": frozenset({S.ACTIVE}),
    "smoke": frozenset({S.PROVISIONING, S.ACTIVE, S.FAILED}),
    "decommission": frozenset({S.PROVISIONING, S.ACTIVE, S.FAILED, S.DECOMMISSIONING}),
    "suspend": frozenset({S.ACTIVE}),
    "resume": frozenset({S.ACTIVE}),
    "change-package": frozenset({S.ACTIVE}),
}
# Operations a suspended practice refuses (until ``resume``).
REFUSED_WHILE_SUSPENDED = frozenset({"provision", "change-package"})


def state_of(value: str) -> PracticeState:
    try:
        return PracticeState(value)
    except ValueError:
        raise ConflictError(
            f"unknown practice state {value!r}",
            obj=value,
            hint="upgrade smartpraxx-provision (the inventory is newer)",
        ) from None


def transition(source: str, target: str) -> Transition | None:
    """The transition ``source`` → ``target``; ``None`` when already there (no-op).

    Raises ConflictError for a change the table does not allow."""
    src, dst = state_of(source), state_of(target)
    if src is dst:
        return None
    found = _TABLE.get((src, dst))
    if found is None:
        raise ConflictError(
            f"a practice cannot go from {src.label} to {dst.label}",
            obj=f"state {src.label}",
            hint="smartpraxx-provision status <praxisname>",
        )
    return found


def next_command(state: PracticeState, praxisname: str, *, suspended: bool = False) -> str:
    """The command that moves a practice in ``state`` on."""
    if suspended and state is S.ACTIVE:
        return f"smartpraxx-provision resume {praxisname}, then run the command again"
    return {
        S.DECOMMISSIONING: f"smartpraxx-provision decommission {praxisname} --export-to DIR "
        "(finish the decommission that was started)",
        S.DECOMMISSIONED: "smartpraxx-provision practices list --all "
        "(choose another praxisname, or provision --reuse-name)",
        S.FAILED: f"smartpraxx-provision provision <starter.xlsx> (re-run converges {praxisname})",
        S.ALLOCATED: f"smartpraxx-provision provision <starter.xlsx> (finish {praxisname})",
        S.PROVISIONING: f"smartpraxx-provision provision <starter.xlsx> (finish {praxisname})",
        S.ACTIVE: f"smartpraxx-provision status {praxisname}",
    }[state]


def check_operation(
    operation: str, state: str, praxisname: str, *, suspended: bool = False
) -> None:
    """Refuse ``operation`` on a practice in ``state`` (ConflictError, exit 1, naming the
    practice, its state and the next command)."""
    current = state_of(state)
    if current not in OPERATIONS[operation]:
        raise ConflictError(
            f"{operation} of {praxisname} refused: the practice is {current.label}",
            obj=f"{praxisname} (state {current.label})",
            hint=next_command(current, praxisname),
            details={"state": current.label},
        )
    if suspended and operation in REFUSED_WHILE_SUSPENDED:
        raise ConflictError(
            f"{operation} of {praxisname} refused: the practice is suspended "
            "(subscription paused or overdue)",
            obj=f"{praxisname} (suspended)",
            hint=next_command(current, praxisname, suspended=True),
            details={"state": current.label, "suspended": True},
        )


# --- health: one verdict per practice (``status``) ---------------------------------------

OK, DEGRADED, DOWN = "ok", "degraded", "down"
VERDICT_ORDER = (OK, DEGRADED, DOWN)
# ``status`` exit codes by the worst verdict (README): 0 ok, 3 degraded, 4 down.
VERDICT_EXIT = {OK: 0, DEGRADED: 3, DOWN: 4}
# containers without which the practice does not serve (cron only degrades it)
ESSENTIAL_ROLES = ("db", "redis", "app")


@dataclass(frozen=True)
class HealthFacts:
    """What ``status`` saw of one live practice (gathered by operations/status.py)."""

    state: str
    suspended: bool = False
    # role (db, redis, app, cron) -> (container status, health or None); missing = absent
    containers: dict[str, tuple[str, str | None]] | None = None
    engine_error: str | None = None
    realm: str | None = None  # "enabled" | "disabled" | "missing"; None = not checked
    realm_error: str | None = None
    smoke_failed: tuple[str, ...] | None = None  # failed checks of the last smoke
    last_operation: str | None = None  # "provision failed in step nextcloud", "... interrupted"


def verdict(facts: HealthFacts) -> tuple[str, list[str]]:
    """``(ok|degraded|down, reasons)`` for one live practice: down = it does not serve its
    staff (not provisioned, being deleted, an essential container or the realm missing or
    down); degraded = it serves, but something needs ops (cron down, last smoke failed, an
    operation failed or was interrupted). A suspended practice is ok (off on purpose)."""
    down: list[str] = []
    degraded: list[str] = []
    state = state_of(facts.state)
    if state in (S.ALLOCATED, S.PROVISIONING, S.FAILED):
        down.append(f"practice is {state.label} (provision not finished)")
    elif state is S.DECOMMISSIONING:
        down.append("practice is being decommissioned")
    if facts.engine_error:
        down.append(f"Docker engine: {facts.engine_error}")
    elif facts.containers is not None and state not in (S.ALLOCATED, S.DECOMMISSIONED):
        for role in (*ESSENTIAL_ROLES, "cron"):
            seen = facts.containers.get(role)
            problem = None
            if seen is None:
                problem = f"{role} container missing"
            elif seen[0] != "running":
                problem = f"{role} container {seen[0]}"
            elif seen[1] == "unhealthy":  # "starting" is not a problem: it may serve already
                problem = f"{role} container unhealthy"
            if problem:
                (down if role in ESSENTIAL_ROLES else degraded).append(problem)
    if facts.realm_error:
        down.append(f"Keycloak: {facts.realm_error}")
    elif facts.realm == "missing":
        down.append("realm missing")
    elif facts.realm == "disabled" and not facts.suspended:
        down.append("realm disabled (logins off) but the practice is not suspended")
    if facts.smoke_failed:
        degraded.append(f"last smoke failed: {', '.join(facts.smoke_failed)}")
    if facts.last_operation:
        degraded.append(f"last operation {facts.last_operation}")
    notes = ["suspended (subscription paused; off on purpose)"] if facts.suspended else []
    if down:
        return DOWN, down + degraded
    if degraded:
        return DEGRADED, degraded
    return OK, notes


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=VERDICT_ORDER.index, default=OK)
