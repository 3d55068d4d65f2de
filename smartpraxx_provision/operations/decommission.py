"""``decommission``: quiesce, export afresh, verify, then delete; slot and name are tombstoned.

The export is one tar in ``--export-to DIR``: ``db.sql`` (MariaDB dump of the slot's
database), ``data.tar`` (only what is the practice's in the Nextcloud volume: ``data/``,
``config/``, ``custom_apps/``, ``themes/`` — not the Nextcloud code), ``realm.json`` (realm
export without credentials or client secrets) and ``manifest.json`` with the SHA-256 of each
member and the id of the run that made it.

Fresh for every run that will delete: until the deletion has begun, every run stops the
practice's app and cron containers (nothing can change any more; the database keeps running
for the dump) and writes a new export over any older file, then verifies *that* export
(``verify_export``: checksums, a complete dump, the practice's realm, non-empty data, made by
this run). Only then does the practice become ``decommissioning``, recording the export's
SHA-256. A run resumed after that point (containers may already be gone) continues only with
exactly that export file; a missing or altered one is refused. If export or verification
fails, nothing is deleted and the stopped containers are started again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..domain.lifecycle import check_operation
from ..domain.model import Slot
from ..errors import NotFoundError, SafetyRefusal, SmartpraxxError, UsageError
from ..inventory.models import PracticeRecord
from ..render.bundle import DATA_MOUNT, DB_NAME
from ..secrets import practice_prefix
from .context import OpContext, OperationResult, practice_not_in_inventory
from .runner import JournaledOperation

FORMAT = 2
MEMBERS = ("db.sql", "data.tar", "realm.json")
DUMP_DONE_MARK = "-- Dump completed"
# What in the Nextcloud volume is the practice's (the rest is Nextcloud's code).
PRACTICE_DIRS = ("config", "data", "custom_apps", "themes")
REQUIRED_DIRS = ("config", "data")


def export_path(directory: Path, record: PracticeRecord) -> Path:
    return directory / f"{record.slot.id}-{record.praxisname}-export.tar"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stream_sha(member: IO[bytes]) -> tuple[str, bytes]:
    """SHA-256 of a stream and its last 4 KiB."""
    h = hashlib.sha256()
    tail = b""
    for chunk in iter(lambda: member.read(1 << 20), b""):
        h.update(chunk)
        tail = (tail + chunk)[-4096:]
    return h.hexdigest(), tail


def _check_data(member: IO[bytes]) -> list[str]:
    """data.tar: a tar with the practice's config and data dirs, and no Nextcloud code."""
    tops: set[str] = set()
    config_files = 0
    entries = 0
    try:
        with tarfile.open(fileobj=member, mode="r|") as inner:
            for item in inner:
                entries += 1
                top = item.name.lstrip("./").split("/", 1)[0]
                tops.add(top)
                if top == "config" and item.isfile():
                    config_files += 1
    except tarfile.TarError:
        return ["data.tar is not a tar archive"]
    if not entries:
        return ["data.tar is empty"]
    problems = [f"data.tar has no {d}/" for d in REQUIRED_DIRS if d not in tops]
    if "config" in tops and not config_files:
        problems.append("data.tar has an empty config/ (no Nextcloud configuration)")
    foreign = sorted(tops - set(PRACTICE_DIRS))
    if foreign:
        problems.append(f"data.tar holds more than the practice's dirs: {', '.join(foreign)}")
    return problems


def _check_member(
    tar: tarfile.TarFile, name: str, manifest: dict[str, Any], record: PracticeRecord
) -> tuple[list[str], str]:
    """The problems of one member, and its SHA-256 as read back ("" when it is missing)."""
    try:
        member = tar.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        return [f"{name} missing"], ""
    digest, tail = _stream_sha(member)
    problems = []
    if digest != (manifest.get("files") or {}).get(name):
        problems.append(f"{name} checksum differs from the manifest")
    if name == "db.sql" and DUMP_DONE_MARK.encode() not in tail:
        problems.append("db.sql is not a complete dump (truncated)")
    if name == "realm.json":
        again = tar.extractfile(name)
        try:
            realm = json.loads(again.read()) if again else {}
        except ValueError:
            realm = {}
        if (realm.get("realm") or {}).get("realm") != record.realm:
            problems.append(f"realm.json is not the practice's realm {record.realm}")
    if name == "data.tar":
        again = tar.extractfile(name)
        problems += _check_data(again) if again else ["data.tar missing"]
    return problems, digest


def _check_manifest(
    manifest: dict[str, Any], record: PracticeRecord, operation: str | None
) -> list[str]:
    problems = []
    if manifest.get("slot") != record.slot.id:
        problems.append(f"manifest names slot {manifest.get('slot')}, not {record.slot.id}")
    if manifest.get("realm") != record.realm:
        problems.append(f"manifest names realm {manifest.get('realm')}, not {record.realm}")
    if operation is not None and manifest.get("operation") != operation:
        problems.append("the export was made by an earlier run (stale); this run exports afresh")
    return problems


def verify_export(
    path: Path,
    record: PracticeRecord,
    *,
    operation: str | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """Read the export back; raise SafetyRefusal naming every problem.

    Checks: the manifest names this slot and realm; every member is present and matches its
    checksum; the dump is complete; the realm is the practice's; the data holds the practice's
    config and data dirs. ``operation``: the export must be made by that run (fresh);
    ``sha256``: the file must be exactly that export (a resumed, half-done run)."""
    problems: list[str] = []
    digest = ""
    manifest_read = False
    read_back: dict[str, str] = {}  # member -> SHA-256 read back, equal to the manifest's
    try:
        digest = _sha256(path)
        if sha256 is not None and digest != sha256:
            problems.append(
                f"the file is not the export the deletion began with (sha256 {digest[:12]}…, "
                f"expected {sha256[:12]}…)"
            )
        with tarfile.open(path, "r") as tar:
            manifest_member = tar.extractfile("manifest.json")
            if manifest_member is None:
                raise KeyError("manifest.json")
            manifest = json.loads(manifest_member.read())
            problems += _check_manifest(manifest, record, operation)
            manifest_read = True
            for name in MEMBERS:
                member_problems, member_sha = _check_member(tar, name, manifest, record)
                problems += member_problems
                if member_sha and member_sha == (manifest.get("files") or {}).get(name):
                    read_back[name] = member_sha
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        problems.append(f"cannot read the export: {type(exc).__name__}: {exc}")
    # computed from what was read back: the manifest parsed, every member hashed equal to it
    verified = not problems and manifest_read and sorted(read_back) == sorted(MEMBERS)
    if not verified:
        problems = problems or ["not every member could be read back"]
        raise SafetyRefusal(
            f"export {path} failed verification: {'; '.join(problems)}; nothing was deleted",
            obj=str(path),
            hint=f"smartpraxx-provision decommission {record.praxisname} --export-to {path.parent}"
            " (a run before the deletion began exports afresh)",
            details={"problems": problems},
        )
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": digest,
        "verified": verified,
        "members": read_back,
        "checks": ["manifest", "checksums", "complete dump", "realm", "data",
                   "fresh" if operation else "same file"],
    }


def _write_data_tar(engine: Any, container: str, out: Path, work: Path) -> None:
    """The practice's dirs of the Nextcloud volume as one tar (``config/…``, ``data/…``)."""
    from ..errors import ExternalServiceError

    with tarfile.open(out, "w") as outer:
        for sub in PRACTICE_DIRS:
            part = work / f"part-{sub}.tar"
            try:
                with part.open("wb") as fh:
                    for chunk in engine.get_archive(container, f"{DATA_MOUNT}/{sub}"):
                        fh.write(chunk)
            except ExternalServiceError:
                if sub in REQUIRED_DIRS:
                    raise
                continue  # an optional dir the instance does not have
            with tarfile.open(part, "r|") as inner:
                for item in inner:
                    outer.addfile(item, inner.extractfile(item) if item.isfile() else None)
            part.unlink()


def write_export(ctx: OpContext, record: PracticeRecord, target: Path, operation: str) -> None:
    """Dump DB, the practice's volume dirs and the realm into ``target`` (temp + rename)."""
    from . import identity_export, nextcloud_stack

    slot = record.slot
    engine = ctx.practice_engine(record)
    names = nextcloud_stack.slot_names(slot)
    root_pw = ctx.secrets.require(f"{practice_prefix(slot.id)}/db-root-password")
    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as tmp:
        work = Path(tmp)
        # the password travels in the exec environment, never in argv
        dump = engine.exec(
            names.db,
            [
                "mariadb-dump",
                "-uroot",
                "--single-transaction",
                "--routines",
                "--databases",
                DB_NAME,
            ],
            env={"MYSQL_PWD": root_pw},
        )
        if not dump.ok or DUMP_DONE_MARK not in dump.stdout[-4096:]:
            raise SafetyRefusal(
                f"database dump of {names.db} failed (exit {dump.exit_code}): {dump.stderr.strip()[:300]}; nothing was deleted",
                obj=names.db,
                hint=f"smartpraxx-provision status {record.praxisname}",
            )
        (work / "db.sql").write_text(dump.stdout, encoding="utf-8")
        _write_data_tar(engine, names.app, work / "data.tar", work)
        realm = identity_export.export_realm(ctx.practice_keycloak(record), slot)
        (work / "realm.json").write_text(
            json.dumps(realm, sort_keys=True, indent=1), encoding="utf-8"
        )
        manifest = {
            "format": FORMAT,
            "praxisname": record.praxisname,
            "slot": slot.id,
            "realm": record.realm,
            "operation": operation,
            "exported_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "volume_dirs": list(PRACTICE_DIRS),
            "files": {name: _sha256(work / name) for name in MEMBERS},
        }
        (work / "manifest.json").write_text(
            json.dumps(manifest, sort_keys=True, indent=1), encoding="utf-8"
        )
        partial = work / "export.tar.partial"
        with tarfile.open(partial, "w") as tar:
            for name in ("manifest.json", *MEMBERS):
                tar.add(work / name, arcname=name)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(partial, 0o600)
        os.replace(partial, target)


def _quiesce(ctx: OpContext, record: PracticeRecord) -> list[str]:
    """Stop the app and cron containers (no change after the export); returns those stopped."""
    from .nextcloud_stack import slot_names

    engine = ctx.practice_engine(record)
    names = slot_names(record.slot)
    stopped = [n for n in (names.app, names.cron) if engine.stop_container(n)]
    if stopped:
        ctx.reporter.change(f"stopped {', '.join(stopped)} (no changes after the export)")
    return stopped


def _restart(ctx: OpContext, record: PracticeRecord, stopped: list[str]) -> None:
    engine = ctx.practice_engine(record)
    for name in stopped:
        try:
            engine.start_container(name)
            ctx.reporter.change(f"started {name} again (nothing was deleted)")
        except SmartpraxxError as err:
            ctx.reporter.warn(f"could not start {name} again: {err.message}")


def _fresh_export(ctx: OpContext, record: PracticeRecord, target: Path, operation: str) -> None:
    stopped = _quiesce(ctx, record)
    try:
        write_export(ctx, record, target, operation)
    except SmartpraxxError as err:
        _restart(ctx, record, stopped)
        if isinstance(err, SafetyRefusal):
            raise
        raise SafetyRefusal(
            f"export of {record.praxisname} failed: {err.message}; nothing was deleted",
            obj=err.obj or record.praxisname,
            hint=f"{err.hint or 'fix the cause'}, then re-run the decommission",
        ) from err
    ctx.reporter.change(f"export written: {target}")


def _reverify_after_tombstone(target: Path, record: PracticeRecord) -> dict[str, Any]:
    """A re-run after the tombstone deletes nothing more: read the export the deletion began
    with back again if it is still there; if it was moved away, say so (not verified now)."""
    if record.export_sha256 and target.is_file():
        try:
            return verify_export(target, record, sha256=record.export_sha256)
        except SafetyRefusal as exc:  # nothing is left to delete: report, do not block
            return {"path": str(target), "verified": False, "detail": exc.message}
    return {
        "path": str(target),
        "verified": False,
        "detail": "the export is no longer at this path; it was verified by the run that "
        "began deleting (sha256 " + (record.export_sha256 or "unknown")[:12] + "…)",
    }


def _stack_deletion_began(ctx: OpContext, record: PracticeRecord) -> bool:
    """Whether the app container is gone (``remove_stack`` removes cron, then app, then the
    rest): from then on nothing can change the practice's data, and its export cannot be
    made again. Before that every run exports afresh."""
    from .nextcloud_stack import slot_names

    app = slot_names(record.slot).app
    return ctx.engine(record.slot.host).inspect_container(app) is None


def _record(ctx: OpContext, praxisname: str) -> tuple[PracticeRecord, bool]:
    """The practice and whether its deletion has already begun (a resumed run)."""
    inv = ctx.inventory
    record = inv.get_practice(praxisname)
    if record is None:
        raise practice_not_in_inventory(praxisname)
    if record.tombstoned:
        last = inv.last_operation(praxisname, "decommission")
        if last is None or last.state == "done":
            raise NotFoundError(
                f"practice {praxisname} ({record.slot.id}) is already decommissioned",
                obj=praxisname,
                hint="smartpraxx-provision practices list --all",
            )
        return record, True
    check_operation("decommission", record.state, praxisname)
    return record, record.state == "decommissioning"


def decommission_plan(ctx: OpContext, praxisname: str, export_to: Path) -> dict[str, Any]:
    """What ``decommission`` would do; reads the inventory, changes nothing."""
    from .nextcloud_stack import slot_names

    record, begun = _record(ctx, praxisname)
    from .ownership import require_slot_ours

    require_slot_ours(ctx, record)  # a plan never offers to delete another owner's objects
    names = slot_names(record.slot)
    return {
        "state": record.state,
        "stop": "already stopped (deletion began)"
        if begun
        else [f"container {names.app}", f"container {names.cron}"],
        "export": str(export_path(export_to, record))
        + (
            " (the verified export of the run that began deleting)"
            if begun
            else " (written afresh)"
        ),
        "export contents": ["db.sql", *(f"{d}/" for d in PRACTICE_DIRS), "realm.json"],
        "then delete": [
            *(f"container {c}" for c in (names.app, names.cron, names.redis, names.db)),
            *(f"volume {v}" for v in (names.data_volume, names.db_volume)),
            f"network {names.network}",
            f"realm {record.realm}",
            f"secrets practices/{record.slot.id}",
        ],
        "tombstone": f"{record.slot.id} and {praxisname} (never reused)",
    }


def decommission(ctx: OpContext, praxisname: str, export_to: Path) -> dict[str, Any]:
    """Export and verify the practice's data, then delete its stack, realm and secrets;
    slot and name are tombstoned (journaled, resumable)."""
    from . import identity, nextcloud_stack
    from .ownership import require_slot_ours

    if not export_to.is_dir():
        raise UsageError(
            f"export directory {export_to} does not exist",
            obj=str(export_to),
            hint=f"mkdir -p {export_to} and re-run",
        )
    record, _ = _record(ctx, praxisname)
    slot = record.slot
    target = export_path(export_to, record)
    require_slot_ours(ctx, record)  # before the export reads or anything is deleted
    with JournaledOperation(ctx, "decommission", praxisname) as op:
        # re-read under the operation lock
        record, begun = _record(ctx, praxisname)
        with op.step("export", f"export to {target.name}"):
            fresh = _export_step(ctx, praxisname, record, begun, target, op.op_id)
        with op.step("verify", "verify the export"):
            record, verified = _verify_step(ctx, praxisname, record, target, fresh, op.op_id)
        with op.step("stack", "remove containers, volumes, network"):
            nextcloud_stack.remove_stack(ctx.practice_engine(record), slot, ctx.reporter)
            nextcloud_stack.remove_bundle(ctx.settings, slot, ctx.reporter)
        with op.step("realm", "delete the realm"):
            identity.delete_realm(ctx.practice_keycloak(record), slot, ctx.reporter)
        with op.step("secrets", "delete the practice's secrets"):
            removed = ctx.secrets.delete(practice_prefix(slot.id))
            (ctx.reporter.change if removed else ctx.reporter.skip)(f"{removed} secrets removed")
        with op.step("tombstone", "tombstone slot and name"):
            _tombstone_step(ctx, praxisname, record, slot)
        with op.step("routes", "proxy routes"):
            _routes_step(ctx, slot)
    return DecommissionResult(
        operation=op.op_id, praxisname=praxisname, slot=slot.id, export=verified
    ).to_json()


@dataclass(frozen=True, kw_only=True)
class DecommissionResult(OperationResult):
    """A finished decommission."""

    export: dict[str, Any]  # the verified export: path, sha256, checks ...


def _export_step(
    ctx: OpContext,
    praxisname: str,
    record: PracticeRecord,
    begun: bool,
    target: Path,
    operation: str,
) -> bool:
    """Step ``export``: every run exports afresh while the data can still change or be
    read; only a run resumed after the stack's deletion began continues with the recorded
    one. Returns whether this run made a fresh export."""
    fresh = not record.tombstoned and not (begun and _stack_deletion_began(ctx, record))
    if record.tombstoned:
        ctx.reporter.skip(f"{praxisname} is tombstoned; its data was deleted earlier")
    elif not fresh:
        if not record.export_sha256 or not target.is_file():
            raise SafetyRefusal(
                f"{praxisname} is half decommissioned (its stack is partly deleted) and "
                f"the export its deletion began with ({target}) is missing; nothing "
                "more was deleted",
                obj=praxisname,
                hint=f"put that export file back at {target}, then re-run",
            )
        ctx.reporter.skip(
            f"the stack's deletion began after export {target.name}; continuing with it"
        )
    if fresh:
        _fresh_export(ctx, record, target, operation)
    return fresh


def _verify_step(
    ctx: OpContext,
    praxisname: str,
    record: PracticeRecord,
    target: Path,
    fresh: bool,
    operation: str,
) -> tuple[PracticeRecord, dict[str, Any]]:
    """Step ``verify``: the export this run goes on with is verified; a fresh one makes
    the practice ``decommissioning`` with its SHA-256. Returns the practice and the result."""
    verified: dict[str, Any]
    if record.tombstoned:
        verified = _reverify_after_tombstone(target, record)
    elif not fresh:
        verified = verify_export(target, record, sha256=record.export_sha256)
    else:
        verified = verify_export(target, record, operation=operation)
        record, _ = ctx.inventory.transition_practice(
            praxisname, "decommissioning", fields={"export_sha256": verified["sha256"]}
        )
    if "checks" in verified:
        ctx.reporter.info(f"export verified: {', '.join(verified['checks'])}")
    return record, verified


def _tombstone_step(ctx: OpContext, praxisname: str, record: PracticeRecord, slot: Slot) -> None:
    """Step ``tombstone``: slot and name are never handed out again."""
    if not record.tombstoned:
        ctx.inventory.transition_practice(praxisname, "tombstoned", payload={"slot": slot.id})
        ctx.reporter.change(f"slot {slot.id} and name {praxisname} tombstoned (never reused)")
    else:
        ctx.reporter.skip(f"slot {slot.id} already tombstoned")


def _routes_step(ctx: OpContext, slot: Slot) -> None:
    """Step ``routes``: the start pages and routes without the practice; always reloaded
    (a crash may have come between write and reload)."""
    from .routes import (
        reload_local_proxy,
        write_host_routes,
        write_start_page_routes,
        write_start_pages,
    )

    write_start_pages(ctx)
    write_start_page_routes(ctx)
    write_host_routes(ctx, slot.host)
    reload_local_proxy(ctx)
