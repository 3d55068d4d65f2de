"""``provision``: Starter Excel → slot → secrets → realm ∥ stack → Nextcloud → smoke → invite.

Validate → allocate the slot (atomic, once) → ensure secrets → (realm with users and clients)
in parallel with (network, volumes, db, redis, app) → Nextcloud config/apps/OIDC → smoke →
record billable seats and the billing event → invitation mails to staff members never invited
(``invitations.py``; a mail that cannot be sent fails this last step, after everything else is
done, and a re-run sends only the missing ones). Every step re-reads live state; re-running with
the same file converges and reports "no changes" when nothing differs.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..domain.lifecycle import check_operation
from ..domain.model import PracticeSpec, Slot
from ..domain.seats import billable_seats
from ..errors import ConflictError, SmartpraxxError
from ..inventory.models import PracticeRecord
from ..output import Reporter
from ..render.bundle import backchannel_issuer_url
from ..secrets import practice_prefix
from .context import OpContext
from .packages import require_package_unchanged
from .runner import JournaledOperation


def uses_standin(ctx: OpContext) -> bool:
    return "standin" in ctx.settings.nextcloud_image


def standin_notice(ctx: OpContext) -> str | None:
    if not uses_standin(ctx):
        return None
    return (
        f"Nextcloud is the STAND-IN image {ctx.settings.nextcloud_image} (a test double that "
        "speaks the real occ surface), not a real Nextcloud"
    )


def urls(ctx: OpContext, praxisname: str, slot: Slot) -> dict[str, str]:
    from ..render.bundle import nextcloud_base_url, realm_issuer
    from ..render.realm import start_page_url

    s = ctx.settings
    return {
        "nextcloud": nextcloud_base_url(s, slot),
        "start_page": start_page_url(s, praxisname),
        "issuer": realm_issuer(s, slot),
    }


def ensure_slot_secrets(ctx: OpContext, spec: PracticeSpec, slot: Slot) -> int:
    """Generate every secret the slot needs once; returns how many were created now."""
    from ..render.bundle import slot_secret_refs
    from ..render.realm import app_secret_path

    paths = sorted(slot_secret_refs(slot).values())
    paths += [app_secret_path(slot, app) for app in spec.third_party_apps]
    before = set(ctx.secrets.list(practice_prefix(slot.id)))
    for path in paths:
        ctx.secrets.ensure(path)
    created = len(set(paths) - before)
    if created:
        ctx.reporter.change(f"{created} secrets generated for {slot.id}")
    else:
        ctx.reporter.skip(f"secrets of {slot.id} exist")
    return created


def plan(ctx: OpContext, spec: PracticeSpec, host: str | None = None) -> dict[str, Any]:
    """What a provision would do; reads state, changes nothing."""
    from .invitations import require_mail_settings
    from .ownership import require_alias_free, require_slot_ours

    require_mail_settings(ctx.settings, ctx.secrets)
    existing = ctx.inventory.get_practice(spec.praxisname)
    if existing is None or not existing.tombstoned:
        require_alias_free(ctx, spec.praxisname, existing)  # the plan names a foreign alias
    if existing is not None and not existing.tombstoned:
        require_slot_ours(ctx, existing)  # ... and never reads into another owner's objects
    if existing is not None and existing.tombstoned:
        raise ConflictError(
            f"praxisname {spec.praxisname} belonged to a decommissioned practice ({existing.slot.id})",
            obj=spec.praxisname,
            hint="choose another Praxisname, or let ops release it with provision --reuse-name",
        )
    if existing is not None:
        from .subscription import is_suspended

        check_operation(
            "provision", existing.state, spec.praxisname, suspended=is_suspended(ctx, spec.praxisname)
        )
    if existing is not None and existing.order_id != spec.order_id:
        raise ConflictError(
            f"praxisname {spec.praxisname} belongs to order {existing.order_id}, not {spec.order_id}",
            obj=spec.praxisname,
            hint="check the Bestellnummer in the Starter Excel, or choose another Praxisname",
        )
    if existing is not None:
        slot_text = f"{existing.slot.id} (allocated {existing.created_at:%Y-%m-%d}, kept)"
    else:
        slot_text = (
            f"next free ncXX on {host or 'the least loaded active host'} (allocated at run time)"
        )
    roles = Counter(p.role.label for p in spec.persons)
    slot_id = existing.slot.id if existing else "<slot>"
    occ_changes: list[str] | str = "all (new stack)"
    if existing is not None:
        occ_changes = _planned_occ_changes(ctx, spec, existing)
    return {
        "praxisname": spec.praxisname,
        "slot": slot_text,
        "realm": slot_id,
        "persons_by_role": dict(sorted(roles.items())),
        "billable_seats": billable_seats(spec.persons),
        "containers": [f"{slot_id}-{c}" for c in ("db", "redis", "app", "cron")],
        "apps": ["user_oidc", *spec.apps.app_ids()],
        "third_party_clients": [a.client_id for a in spec.third_party_apps],
        "occ_changes": occ_changes or "none",
        "nextcloud_image": ctx.settings.nextcloud_image,
        "invitations": (
            f"{len(spec.persons)} (one mail per staff member)"
            if existing is None
            else "only staff members never invited (never a second one)"
        ),
        "state": existing.state if existing else "new",
    }


def _planned_occ_changes(
    ctx: OpContext, spec: PracticeSpec, record: PracticeRecord
) -> list[str] | str:
    """What the Nextcloud step would change on a running slot (three occ reads, no writes)."""
    from ..adapters.nextcloud import NextcloudAdapter
    from . import nextcloud_stack

    slot = record.slot
    engine = ctx.practice_engine(record)
    app = nextcloud_stack.slot_names(slot).app
    info = engine.inspect_container(app)
    if info is None or info.status != "running":
        return f"all ({app} is not running)"
    result = nextcloud_stack.configure_nextcloud(
        NextcloudAdapter(engine, app),
        spec,
        slot,
        ctx.settings,
        ctx.secrets,
        Reporter(quiet=True),
        issuer=backchannel_issuer_url(ctx.settings, slot),
        dry_run=True,
    )
    return result.changes


def _allocate(
    ctx: OpContext, spec: PracticeSpec, host: str | None, reuse_name: bool
) -> tuple[PracticeRecord, list[str]]:
    """The practice's slot (allocated now or kept) and the hosts skipped as not answering."""
    from .hosts import require_reachable, unreachable_candidates
    from .ownership import live_slot_numbers, require_alias_free
    from .subscription import is_suspended

    ctx.ensure_embedded_host()
    existing = ctx.inventory.get_practice(spec.praxisname)
    require_alias_free(ctx, spec.praxisname, existing)
    live = live_slot_numbers(ctx, host) if existing is None else {}
    if existing is not None and not existing.tombstoned:  # checked again under the lock
        check_operation(
            "provision", existing.state, spec.praxisname, suspended=is_suspended(ctx, spec.praxisname)
        )
    skip: list[str] = []
    if existing is None or existing.tombstoned:  # a new slot: place it on an engine that answers
        if host is not None:
            require_reachable(ctx, host)
        else:
            skip = unreachable_candidates(ctx)
    record = ctx.inventory.allocate_practice(
        spec.praxisname,
        order_id=spec.order_id,
        display_name=spec.display_name,
        kv=spec.kv,
        specialties=spec.specialties,
        billable_seats=billable_seats(spec.persons),
        host=host,
        reuse_name=reuse_name,
        apps=spec.apps.app_ids(),
        live_numbers=live,
        skip_hosts=skip,
    )
    if existing is None:
        ctx.reporter.change(f"slot {record.slot.id} allocated to {spec.praxisname}")
    else:
        ctx.reporter.skip(f"slot {record.slot.id} already belongs to {spec.praxisname}")
    if record.state in ("allocated", "failed"):
        record, _ = ctx.inventory.transition_practice(spec.praxisname, "provisioning")
    return record, skip


def _mark_failed(ctx: OpContext, praxisname: str) -> None:
    """A provision that failed before the practice was ever active leaves it ``failed``."""
    record = ctx.inventory.get_practice(praxisname)
    if record is None or record.state not in ("allocated", "provisioning"):
        return
    try:
        ctx.inventory.transition_practice(praxisname, "failed")
    except SmartpraxxError as err:  # the original error matters more
        ctx.reporter.warn(f"could not mark {praxisname} failed: {err.message}")
    else:
        ctx.reporter.warn(f"{praxisname} is marked failed; re-run provision to converge it")


def provision(
    ctx: OpContext,
    spec: PracticeSpec,
    *,
    host: str | None = None,
    reuse_name: bool = False,
    prune: bool = False,
    adopt: bool = False,
    smoke: bool = True,
) -> dict[str, Any]:
    from . import invitations

    invitations.require_mail_settings(ctx.settings, ctx.secrets)
    require_package_unchanged(ctx, spec)
    started = time.monotonic()
    rep = ctx.reporter
    notice = standin_notice(ctx)
    if notice:
        rep.warn(notice)
    return _provision(ctx, spec, host, reuse_name, prune, adopt, smoke, started)


def _provision(
    ctx: OpContext,
    spec: PracticeSpec,
    host: str | None,
    reuse_name: bool,
    prune: bool,
    adopt: bool,
    smoke: bool,
    started: float,
) -> dict[str, Any]:
    from ..adapters.nextcloud import NextcloudAdapter
    from . import identity, invitations, nextcloud_stack
    from .ownership import require_slot_ours
    from .smoke import run_smoke

    rep = ctx.reporter
    changes = 0
    with JournaledOperation(
        ctx, "provision", spec.praxisname, on_failure=lambda: _mark_failed(ctx, spec.praxisname)
    ) as op:
        with op.step("allocate", "allocate slot"):
            record, skipped_hosts = _allocate(ctx, spec, host, reuse_name)
            # before any secret, realm or container: every live object of the slot is ours
            require_slot_ours(ctx, record, adopt_realm=adopt)
        slot = record.slot
        engine = ctx.practice_engine(record)  # refuses objects of another owner
        kc = ctx.practice_keycloak(record, adopt=adopt)

        with op.step("secrets", "ensure secrets"):
            changes += ensure_slot_secrets(ctx, spec, slot)

        # The realm does not wait for the containers: both run at once.
        branch_seconds: dict[str, float] = {}

        def do_realm() -> Any:
            t0 = time.monotonic()
            try:
                return identity.converge_realm(
                    kc,
                    spec,
                    slot,
                    ctx.settings,
                    ctx.secrets,
                    rep,
                    prune=prune,
                    adopt=adopt,
                )
            finally:
                branch_seconds["realm"] = time.monotonic() - t0

        def do_stack() -> Any:
            t0 = time.monotonic()
            try:
                return nextcloud_stack.launch_stack(
                    engine, spec, slot, ctx.settings, ctx.secrets, rep
                )
            finally:
                branch_seconds["stack"] = time.monotonic() - t0

        with op.step("realm+stack", "realm (users, clients) ∥ stack (db, redis, app)"):
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="provision") as pool:
                realm_future = pool.submit(do_realm)
                stack_future = pool.submit(do_stack)
                # result() re-raises; wait for both so neither is left half-way unseen
                errors = [f.exception() for f in (realm_future, stack_future)]
                for err in errors:
                    if err is not None:
                        raise err
                identity_result = realm_future.result()
                stack_result = stack_future.result()
            changes += identity_result.changes
            changes += sum(o != "running" for o in stack_result["containers"].values())

        with op.step("nextcloud", "Nextcloud config, apps, OIDC"):
            nc = NextcloudAdapter(engine, nextcloud_stack.slot_names(slot).app)
            converge = nextcloud_stack.configure_nextcloud(
                nc,
                spec,
                slot,
                ctx.settings,
                ctx.secrets,
                rep,
                issuer=backchannel_issuer_url(ctx.settings, slot),
            )
            changes += len(converge.changes)

        with op.step("routes", "proxy routes"):
            from .routes import (
                reload_local_proxy,
                write_host_routes,
                write_start_page_routes,
                write_start_pages,
            )

            routed = int(write_host_routes(ctx, slot.host))
            current = ctx.inventory.get_practice(spec.praxisname)
            routed += int(write_start_pages(ctx, current))
            routed += int(write_start_page_routes(ctx))
            if routed:
                reload_local_proxy(ctx)
            changes += routed

        smoke_result: dict[str, Any] | None = None
        if smoke:
            with op.step("smoke", "smoke check"):
                smoke_result = run_smoke(ctx, record.praxisname)

        with op.step("record", "record seats and billing event"):
            # state, facts and the billing event in one transaction: exactly once per change
            seats = billable_seats(spec.persons)
            _, events = ctx.inventory.transition_practice(
                spec.praxisname,
                "active",
                payload={"slot": slot.id, "order_id": spec.order_id, "billable_seats": seats,
                         "package": spec.package.value},
                fields={
                    "billable_seats": seats,
                    "display_name": spec.display_name,
                    "kv": spec.kv,
                    "specialties": spec.specialties,
                    "apps": spec.apps.app_ids(),
                    "package": spec.package.value,
                },
                change_event=("seats-changed", "billable_seats"),
            )
            if any(e.kind in ("provisioned", "seats-changed") for e in events):
                rep.change(f"billing event recorded: {seats} billable seats")
                changes += 1
            else:
                rep.skip(f"billable seats unchanged ({seats})")

        with op.step("broadcasts", "still-valid broadcasts"):
            from . import broadcast

            current = ctx.inventory.get_practice(spec.praxisname) or record
            for outcome in broadcast.deliver_pending_for(ctx, current):
                if outcome.state == "failed":
                    rep.warn(f"broadcast to {spec.praxisname} failed: {outcome.error} "
                             "(next: smartpraxx-provision broadcast retry <id>)")

        with op.step("invite", "invitation mails to new staff"):
            invites = invitations.send_invitations(kc, spec, slot, ctx.settings, rep)
            changes += invites.sent
            if invites.failed:
                raise invitations.failure(spec.praxisname, slot.realm, invites, ctx.settings)

    result: dict[str, Any] = {
        "ok": True,
        "operation": op.op_id,
        "praxisname": spec.praxisname,
        "slot": slot.id,
        "fqdn": slot.fqdn(ctx.settings.domain),
        "realm": slot.realm,
        "urls": urls(ctx, spec.praxisname, slot),
        "local_nextcloud_url": f"http://127.0.0.1:{stack_result['app_port']}",
        "changes": changes,
        "no_changes": changes == 0,
        "billable_seats": billable_seats(spec.persons),
        "occ_calls": converge.occ_calls,
        "smoke": smoke_result,
        "invitations": invites.to_dict(),
        "nextcloud_standin": uses_standin(ctx),
        "skipped_hosts": skipped_hosts,  # engines that did not answer at placement
        "steps": [
            {"name": t.name, "seconds": round(t.seconds, 3), "status": t.status}
            for t in rep.timings
        ],
        "parallel_branches": {k: round(v, 3) for k, v in sorted(branch_seconds.items())},
        "seconds": round(time.monotonic() - started, 3),
    }
    return result
