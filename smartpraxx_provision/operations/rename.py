"""``rename``: the paid change of a practice's praxisname.

The slot, the realm's technical name, the users, their passwords and all data stay. What
moves: the inventory name (the old one is kept as a former name and answers with a redirect
for ``rename_grace_days``), the realm's public alias (display name attribute), the start-page
route ``mein.smartpraxx.de/<praxisname>`` and the billing event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..domain.lifecycle import check_operation
from ..domain.names import praxisname_problem
from ..errors import NotFoundError, UsageError
from .context import OpContext
from .runner import JournaledOperation


def check_new_name(old: str, new: str) -> None:
    problem = praxisname_problem(new)
    if problem:
        raise UsageError(
            f"{new!r} is not a valid praxisname: {problem}",
            obj=new,
            hint=f"smartpraxx-provision rename {old} <valid-name> --confirm-fee",
        )
    if new == old:
        raise UsageError(
            f"{old} already has that name", obj=old, hint="nothing to do; pick a different name"
        )


def rename_plan(ctx: OpContext, old: str, new: str) -> dict[str, Any]:
    """What ``rename`` would do; reads the inventory, changes nothing."""
    record = ctx.inventory.get_practice(old)
    if record is None or record.tombstoned:
        raise NotFoundError(
            f"practice {old} does not exist", obj=old, hint="smartpraxx-provision practices list"
        )
    days = ctx.settings.rename_grace_days
    return {
        "from": old,
        "to": new,
        "slot (kept)": record.slot.id,
        "realm (kept)": record.realm,
        "start page": f"/{old} → /{new} (the old path redirects for {days} days)",
        "billing event": "renamed",
    }


def rename(ctx: OpContext, old: str, new: str) -> dict[str, Any]:
    from ..render.realm import start_page_url
    from . import identity
    from .routes import reload_local_proxy, write_start_page_routes, write_start_pages

    inv = ctx.inventory
    current = inv.get_practice(old)
    if current is None:
        already = inv.get_practice(new)
        if already is not None and old in already.former_names:
            # a re-run after the inventory step: resume with the remaining steps
            current = already
        else:
            raise NotFoundError(
                f"practice {old} does not exist",
                obj=old,
                hint="smartpraxx-provision practices list",
            )
    else:
        check_new_name(old, new)
    if not current.tombstoned:
        check_operation("rename", current.state, current.praxisname)
    slot = current.slot
    grace_until = datetime.now(UTC) + timedelta(days=ctx.settings.rename_grace_days)

    with JournaledOperation(ctx, "rename", current.praxisname) as op:
        with op.step("inventory", f"rename {old} → {new} in the inventory"):
            if current.praxisname == old:
                current = inv.rename_practice(old, new, grace_until=grace_until)
                ctx.reporter.change(f"{old} is now {new} (slot {slot.id} kept)")
            else:
                ctx.reporter.skip(f"inventory already says {new}")
        with op.step("realm-alias", "move the realm's public alias"):
            kc = ctx.practice_keycloak(current)  # refuses a realm of another owner
            identity.set_alias(kc, slot, new, current.display_name, ctx.reporter)
            identity.move_start_page_client(kc, slot, ctx.settings, new, ctx.reporter)
        with op.step("routes", "start page and its routes"):
            write_start_pages(ctx, current)
            write_start_page_routes(ctx)
            reload_local_proxy(ctx)  # always: a crash may have come between write and reload
        with op.step("billing", "billing event"):
            events = inv.list_events(new, kind="renamed")
            if not any(e.payload.get("from") == old for e in events):
                inv.record_event("renamed", new, {"from": old, "to": new, "slot": slot.id})
                ctx.reporter.change("billing event 'renamed' recorded")
            else:
                ctx.reporter.skip("billing event already recorded")
    return {
        "ok": True,
        "operation": op.op_id,
        "from": old,
        "to": new,
        "slot": slot.id,
        "realm": slot.realm,
        "old_path_redirects_until": grace_until.date().isoformat(),
        "start_page": start_page_url(ctx.settings, new),
    }
