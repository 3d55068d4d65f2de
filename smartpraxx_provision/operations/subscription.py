"""Suspend and resume a practice (the subscription lifecycle of the shop).

``suspend``: the practice's Nextcloud goes into maintenance mode and its realm's logins are
switched off (the realm is disabled: users, passwords and data stay untouched). ``resume``
undoes both. Each is a journaled, idempotent operation that re-reads the live state, with a
billing event once per transition: the last of the practice's ``suspended``/``resumed``
events is the truth of whether it is suspended, so a re-run or a crash-resume never records
a transition twice. Termination stays ``decommission`` by ops, never a webhook.
"""

from __future__ import annotations

from typing import Any

from ..domain.lifecycle import check_operation
from ..errors import NotFoundError
from ..inventory.models import PracticeRecord
from .context import OpContext
from .runner import JournaledOperation

TRANSITIONS = ("suspended", "resumed")


def is_suspended(ctx: OpContext, praxisname: str) -> bool:
    events = [e for e in ctx.inventory.list_events(praxisname) if e.kind in TRANSITIONS]
    return bool(events) and events[-1].kind == "suspended"


def _active(ctx: OpContext, praxisname: str) -> PracticeRecord:
    record = ctx.inventory.resolve_name(praxisname)
    if record is None or record.tombstoned:
        raise NotFoundError(f"practice {praxisname} is not provisioned", obj=praxisname,
                            hint="smartpraxx-provision practices list")
    check_operation("suspend", record.state, record.praxisname)  # the same for resume
    return record


def plan(ctx: OpContext, praxisname: str, *, suspend_it: bool) -> dict[str, Any]:
    record = _active(ctx, praxisname)
    verb = "suspend" if suspend_it else "resume"
    return {
        "ok": True, "dry_run": True, "operation": verb, "praxisname": record.praxisname,
        "plan": [
            f"Nextcloud {record.slot.id}: maintenance mode {'on' if suspend_it else 'off'}",
            f"realm {record.slot.realm}: logins {'off' if suspend_it else 'on'}",
            f"billing event {'suspended' if suspend_it else 'resumed'} (once per transition)",
            f"start page /{record.praxisname}/: "
            + ("German notice instead of the login" if suspend_it else "login and tiles again"),
        ],
    }


def _apply(ctx: OpContext, praxisname: str, *, suspend_it: bool, reason: str) -> dict[str, Any]:
    from ..adapters.nextcloud import NextcloudAdapter
    from . import nextcloud_stack

    record = _active(ctx, praxisname)
    slot = record.slot
    verb = "suspend" if suspend_it else "resume"
    changes = 0
    with JournaledOperation(ctx, verb, record.praxisname) as op:
        with op.step("nextcloud", f"Nextcloud maintenance mode {'on' if suspend_it else 'off'}"):
            nc = NextcloudAdapter(ctx.practice_engine(record), nextcloud_stack.slot_names(slot).app)
            out = nc.occ("maintenance:mode", "--on" if suspend_it else "--off")
            if "already" in out:
                ctx.reporter.skip(out.strip())
            else:
                ctx.reporter.change(out.strip())
                changes += 1
        with op.step("realm", f"realm logins {'off' if suspend_it else 'on'}"):
            kc = ctx.practice_keycloak(record)  # refuses a realm of another owner
            realm = kc.get_realm(slot.realm)
            if realm is None:
                raise NotFoundError(f"realm {slot.realm} does not exist", obj=slot.realm,
                                    hint=f"smartpraxx-provision status {record.praxisname}")
            if bool(realm.get("enabled", True)) == suspend_it:
                kc.update_realm(slot.realm, {"realm": slot.realm, "enabled": not suspend_it})
                ctx.reporter.change(f"realm {slot.realm} logins {'off' if suspend_it else 'on'}")
                changes += 1
            else:
                ctx.reporter.skip(f"realm {slot.realm} already {'off' if suspend_it else 'on'}")
        with op.step("record", "billing event"):
            if is_suspended(ctx, record.praxisname) != suspend_it:
                ctx.inventory.record_event(
                    "suspended" if suspend_it else "resumed", record.praxisname,
                    {"slot": slot.id, "reason": reason})
                changes += 1
        with op.step("start-page", "start page notice"):
            from .routes import reload_local_proxy, write_start_page_routes, write_start_pages

            changes += int(write_start_pages(ctx, record))
            write_start_page_routes(ctx)
            reload_local_proxy(ctx)  # always: a crash may have come between write and reload
    return {"ok": True, "operation": verb, "praxisname": record.praxisname,
            "slot": slot.id, "changes": changes, "no_changes": changes == 0}


def suspend(ctx: OpContext, praxisname: str, *, reason: str = "ops") -> dict[str, Any]:
    return _apply(ctx, praxisname, suspend_it=True, reason=reason)


def resume(ctx: OpContext, praxisname: str, *, reason: str = "ops") -> dict[str, Any]:
    return _apply(ctx, praxisname, suspend_it=False, reason=reason)
