"""``change-package``: Basis ↔ Premium (WHMCS's ChangePackage), and the guard that keeps the
inventory the one truth of a practice's package.

What a package includes is ``domain.packages``. The change converges the practice's
Nextcloud to the new package's config (re-read live first, so a re-run changes nothing),
then records the package with a ``package-changed`` billing event in the same transaction
(once per change: a re-run, a crash-resume or a second call with the same package records
nothing).
"""

from __future__ import annotations

from typing import Any

from ..domain.lifecycle import check_operation
from ..domain.model import Package, PracticeSpec
from ..domain.packages import contents, package_config, parse_package
from ..errors import NotFoundError, UsageError
from ..inventory.models import PracticeRecord
from .context import OpContext
from .runner import JournaledOperation


def require_package(text: str) -> Package:
    package = parse_package(text)
    if package is None:
        raise UsageError(f"unknown package {text!r}", obj=text, hint="Basis or Premium")
    return package


def require_package_unchanged(ctx: OpContext, spec: PracticeSpec) -> None:
    """A re-provision must not change the package behind ops' back (exit 2, nothing done)."""
    record = ctx.inventory.get_practice(spec.praxisname)
    if record is None or record.tombstoned or record.package in (None, spec.package.value):
        return
    have = contents(Package(record.package)).label
    want = contents(spec.package).label
    raise UsageError(
        f"the Starter Excel of {spec.praxisname} says Paket {want}, the practice has {have}",
        obj=spec.praxisname,
        hint=f"smartpraxx-provision change-package {spec.praxisname} {want} "
        "(billed), or correct the Paket in the Starter Excel",
    )


def _record(ctx: OpContext, praxisname: str) -> PracticeRecord:
    record = ctx.inventory.resolve_name(praxisname)
    if record is None or record.tombstoned:
        raise NotFoundError(f"practice {praxisname} is not provisioned", obj=praxisname,
                            hint="smartpraxx-provision practices list")
    from .subscription import is_suspended

    check_operation("change-package", record.state, record.praxisname,
                    suspended=is_suspended(ctx, record.praxisname))
    return record


def plan(ctx: OpContext, praxisname: str, package: Package) -> dict[str, Any]:
    record = _record(ctx, praxisname)
    quota = contents(package).default_quota
    return {
        "ok": True, "dry_run": True, "operation": "change-package",
        "praxisname": record.praxisname, "from": record.package, "to": package.value,
        "plan": [
            f"Nextcloud {record.slot.id}: default quota per staff member {quota}",
            f"billing event package-changed ({record.package or 'unknown'} → {package.value}),"
            " once per change",
        ],
    }


def change_package(ctx: OpContext, praxisname: str, package: Package) -> dict[str, Any]:
    from ..adapters.nextcloud import NextcloudAdapter
    from . import nextcloud_stack

    record = _record(ctx, praxisname)
    slot = record.slot
    changes = 0
    with JournaledOperation(ctx, "change-package", record.praxisname) as op:
        with op.step("nextcloud", f"Nextcloud config of the {contents(package).label} package"):
            nc = NextcloudAdapter(ctx.practice_engine(record), nextcloud_stack.slot_names(slot).app)
            diff, keys = nextcloud_stack.config_diff(nc.config_list(), package_config(package))
            if diff:
                nc.config_import(diff)
                for key in keys:
                    ctx.reporter.change(f"config {key} set")
                changes += len(keys)
            else:
                ctx.reporter.skip(f"Nextcloud config of {slot.id} already {package.value}")
        with op.step("record", "package and billing event"):
            _, events = ctx.inventory.transition_practice(
                record.praxisname, record.state,
                payload={"slot": slot.id, "from": record.package, "to": package.value},
                fields={"package": package.value},
                change_event=("package-changed", "package"),
            )
            if events:
                ctx.reporter.change(f"billing event recorded: package {package.value}")
                changes += 1
    return {"ok": True, "operation": "change-package", "praxisname": record.praxisname,
            "slot": slot.id, "package": package.value, "changes": changes,
            "no_changes": changes == 0}
