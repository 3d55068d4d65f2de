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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..domain.lifecycle import check_operation
from ..domain.model import PracticeSpec, Slot, app_host_port
from ..domain.seats import billable_seats
from ..errors import ConflictError, SmartpraxxError, UsageError
from ..inventory.models import PracticeRecord
from ..output import Reporter
from ..render.bundle import backchannel_issuer_url
from ..render.stack import container_roles
from ..secrets import practice_prefix
from .context import OpContext, OperationResult, provisioned_practice
from .packages import require_package_unchanged
from .runner import JournaledOperation

if TYPE_CHECKING:
    from ..adapters.docker_engine import DockerEngine
    from ..adapters.keycloak import KeycloakAdapter
    from .identity import IdentityResult
    from .nextcloud_stack import ConvergeResult


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
        "containers": [f"{slot_id}-{role}" for role in container_roles(ctx.settings)],
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
        shards=[s.name for s in ctx.settings.identity_shard_list],
        realms_per_shard=ctx.settings.realms_per_shard if ctx.settings.identity_shards else 0,
    )
    if existing is None:
        ctx.reporter.change(f"slot {record.slot.id} allocated to {spec.praxisname}"
                            f" (realm on identity shard {record.identity_shard})")
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


@dataclass(frozen=True)
class ProvisionOptions:
    """How ``provision`` runs (its command-line flags)."""

    host: str | None = None  # pin a new slot to this host
    reuse_name: bool = False  # release a tombstoned praxisname
    prune: bool = False  # delete users (and clients) missing from the Excel, not disable them
    adopt: bool = False  # take over an existing realm without owner marks
    smoke: bool = True  # run the smoke check before recording the practice active


@dataclass
class _Outcome:
    """What the steps of one provision run found, for the result document."""

    changes: int = 0
    skipped_hosts: list[str] = field(default_factory=list)  # engines silent at placement
    images_copied: list[str] = field(default_factory=list)  # images the host lacked
    branch_seconds: dict[str, float] = field(default_factory=dict)
    app_port: Any = None
    occ_calls: int = 0
    smoke: dict[str, Any] | None = None
    invitations: dict[str, Any] = field(default_factory=dict)


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
    """Provision (or converge) the practice of ``spec``; returns the result document."""
    from . import invitations

    invitations.require_mail_settings(ctx.settings, ctx.secrets)
    require_package_unchanged(ctx, spec)
    started = time.monotonic()
    notice = standin_notice(ctx)
    if notice:
        ctx.reporter.warn(notice)
    options = ProvisionOptions(
        host=host, reuse_name=reuse_name, prune=prune, adopt=adopt, smoke=smoke
    )
    return _provision(ctx, spec, options, started)


def _provision(
    ctx: OpContext, spec: PracticeSpec, options: ProvisionOptions, started: float
) -> dict[str, Any]:
    """The journaled steps; each converges live state and counts the changes it made."""
    from .smoke import last_smoke_ok, run_smoke

    out = _Outcome()
    with JournaledOperation(
        ctx, "provision", spec.praxisname, on_failure=lambda: _mark_failed(ctx, spec.praxisname)
    ) as op:
        with op.step("allocate", "allocate slot"):
            record, out.skipped_hosts = _allocate_owned(ctx, spec, options)
        slot = record.slot
        engine = ctx.practice_engine(record)  # refuses objects of another owner
        kc = ctx.practice_keycloak(record, adopt=options.adopt)

        with op.step("secrets", "ensure secrets"):
            out.changes += ensure_slot_secrets(ctx, spec, slot)

        with op.step("realm+stack", "realm (users, clients) ∥ stack (db, redis, app)"):
            branch_changes = _realm_and_stack(ctx, spec, slot, engine, kc, options, out)
            out.changes += branch_changes

        with op.step("nextcloud", "Nextcloud config, apps, OIDC"):
            converge = _configure_nextcloud(ctx, spec, slot, engine)
            out.occ_calls = converge.occ_calls
            out.changes += len(converge.changes)

        with op.step("routes", "proxy routes"):
            out.changes += _write_routes(ctx, spec, slot)

        if options.smoke:
            with op.step("smoke", "smoke check"):
                # a run that changed nothing on a practice whose last smoke passed proves the
                # desired state by the converge's reads alone; it re-checks the read-only
                # checks, not the logins (they create and delete a user; `smoke` runs them)
                logins = out.changes > 0 or not last_smoke_ok(record)
                if not logins:
                    ctx.reporter.skip("smoke logins: nothing changed and the last smoke "
                                      f"passed (smartpraxx-provision smoke {record.praxisname})")
                out.smoke = run_smoke(ctx, record.praxisname, logins=logins)

        with op.step("record", "record seats and billing event"):
            out.changes += _record_active(ctx, spec, slot)

        with op.step("broadcasts", "still-valid broadcasts"):
            _deliver_broadcasts(ctx, spec, record)

        with op.step("invite", "invitation mails to new staff"):
            sent = _invite(ctx, kc, spec, slot, out)
            out.changes += sent

    return _result(ctx, spec, slot, op.op_id, out, started).to_json()


def _allocate_owned(
    ctx: OpContext, spec: PracticeSpec, options: ProvisionOptions
) -> tuple[PracticeRecord, list[str]]:
    """Step ``allocate``: the slot, and proof that every live object of it is ours."""
    from .ownership import require_slot_ours

    record, skipped_hosts = _allocate(ctx, spec, options.host, options.reuse_name)
    # before any secret, realm or container: every live object of the slot is ours
    require_slot_ours(ctx, record, adopt_realm=options.adopt)
    return record, skipped_hosts


def slot_app_port(ctx: OpContext, slot: Slot) -> int:
    """The host port the slot's app publishes on: fixed by its host's slot port base
    (``hosts add|set --slot-port-base``), else 0 (random)."""
    host = ctx.inventory.get_host(slot.host)
    base = host.slot_port_base if host is not None else None
    try:
        return app_host_port(slot.number, base)
    except ValueError as err:
        raise UsageError(
            str(err), obj=slot.id, hint=f"smartpraxx-provision hosts set {slot.host} "
            "--slot-port-base with a lower base (or 0 for random ports)",
        ) from None


def _realm_and_stack(
    ctx: OpContext,
    spec: PracticeSpec,
    slot: Slot,
    engine: DockerEngine,
    kc: KeycloakAdapter,
    options: ProvisionOptions,
    out: _Outcome,
) -> int:
    """Step ``realm+stack``: the realm does not wait for the containers, both run at once.
    Records each branch's seconds and the app port in ``out``; returns the changes."""
    from . import identity, nextcloud_stack

    branch_seconds = out.branch_seconds
    port = slot_app_port(ctx, slot)

    def do_realm() -> IdentityResult:
        t0 = time.monotonic()
        try:
            return identity.converge_realm(
                kc,
                spec,
                slot,
                ctx.settings,
                ctx.secrets,
                ctx.reporter,
                prune=options.prune,
                adopt=options.adopt,
            )
        finally:
            branch_seconds["realm"] = time.monotonic() - t0

    def do_stack() -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            return nextcloud_stack.launch_stack(
                engine, spec, slot, ctx.settings, ctx.secrets, ctx.reporter, app_port=port
            )
        finally:
            branch_seconds["stack"] = time.monotonic() - t0

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
    out.app_port = stack_result["app_port"]
    out.images_copied = list(stack_result["images_copied"])
    changed_containers: int = sum(o != "running" for o in stack_result["containers"].values())
    return identity_result.changes + changed_containers


def _configure_nextcloud(
    ctx: OpContext, spec: PracticeSpec, slot: Slot, engine: DockerEngine
) -> ConvergeResult:
    """Step ``nextcloud``: config, apps and the OIDC provider of the slot's Nextcloud."""
    from ..adapters.nextcloud import NextcloudAdapter
    from . import nextcloud_stack

    nc = NextcloudAdapter(engine, nextcloud_stack.slot_names(slot).app)
    return nextcloud_stack.configure_nextcloud(
        nc,
        spec,
        slot,
        ctx.settings,
        ctx.secrets,
        ctx.reporter,
        issuer=backchannel_issuer_url(ctx.settings, slot),
    )


def _write_routes(ctx: OpContext, spec: PracticeSpec, slot: Slot) -> int:
    """Step ``routes``: the host's routes, the start pages and their routes; the proxy is
    reloaded when any changed. Returns how many changed."""
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
    return routed


def _record_active(ctx: OpContext, spec: PracticeSpec, slot: Slot) -> int:
    """Step ``record``: state, facts and the billing event in one transaction (exactly
    once per change). Returns 1 if a billing event was recorded, else 0."""
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
        ctx.reporter.change(f"billing event recorded: {seats} billable seats")
        return 1
    ctx.reporter.skip(f"billable seats unchanged ({seats})")
    return 0


def _deliver_broadcasts(ctx: OpContext, spec: PracticeSpec, record: PracticeRecord) -> None:
    """Step ``broadcasts``: every still-valid broadcast, delivered to the practice again."""
    from . import broadcast

    current = ctx.inventory.get_practice(spec.praxisname) or record
    for outcome in broadcast.deliver_pending_for(ctx, current):
        if outcome.state == "failed":
            ctx.reporter.warn(f"broadcast to {spec.praxisname} failed: {outcome.error} "
                              "(next: smartpraxx-provision broadcast retry <id>)")


def _invite(
    ctx: OpContext, kc: KeycloakAdapter, spec: PracticeSpec, slot: Slot, out: _Outcome
) -> int:
    """Step ``invite``: mails to staff never invited; returns how many were sent. A mail
    that could not be sent fails the step (after everything else is done)."""
    from . import invitations

    invites = invitations.send_invitations(kc, spec, slot, ctx.settings, ctx.reporter)
    out.invitations = invites.to_dict()
    if invites.failed:
        raise invitations.failure(spec.praxisname, slot.realm, invites, ctx.settings)
    return invites.sent


@dataclass(frozen=True, kw_only=True)
class ProvisionResult(OperationResult):
    """A finished provision."""

    fqdn: str
    realm: str
    identity_shard: str  # the Keycloak cluster that holds the realm (settings: identity_shards)
    urls: dict[str, str]
    local_nextcloud_url: str
    changes: int
    no_changes: bool
    billable_seats: int
    occ_calls: int
    smoke: dict[str, Any] | None
    invitations: dict[str, Any]
    nextcloud_standin: bool
    skipped_hosts: list[str]  # engines that did not answer at placement
    images_copied: list[str]  # images copied to the host's engine by this run
    steps: list[dict[str, Any]]
    parallel_branches: dict[str, float]
    seconds: float


def _result(
    ctx: OpContext, spec: PracticeSpec, slot: Slot, op_id: str, out: _Outcome, started: float
) -> ProvisionResult:
    """The result of a finished provision."""
    return ProvisionResult(
        operation=op_id,
        praxisname=spec.praxisname,
        slot=slot.id,
        fqdn=slot.fqdn(ctx.settings.domain),
        realm=slot.realm,
        identity_shard=provisioned_practice(ctx, spec.praxisname).identity_shard,
        urls=urls(ctx, spec.praxisname, slot),
        local_nextcloud_url=f"http://127.0.0.1:{out.app_port}",
        changes=out.changes,
        no_changes=out.changes == 0,
        billable_seats=billable_seats(spec.persons),
        occ_calls=out.occ_calls,
        smoke=out.smoke,
        invitations=out.invitations,
        nextcloud_standin=uses_standin(ctx),
        skipped_hosts=out.skipped_hosts,
        images_copied=out.images_copied,
        steps=[
            {"name": t.name, "seconds": round(t.seconds, 3), "status": t.status}
            for t in ctx.reporter.timings
        ],
        parallel_branches={k: round(v, 3) for k, v in sorted(out.branch_seconds.items())},
        seconds=round(time.monotonic() - started, 3),
    )
