"""``decommission``: export first, verify, then delete; the slot and the name are tombstoned.

The export is one tar in ``--export-to DIR``: ``db.sql`` (MariaDB dump of the slot's
database), ``data.tar`` (the Nextcloud volume), ``realm.json`` (realm export without
credentials or client secrets) and ``manifest.json`` with the SHA-256 of each member. It is
verified by reading it back before anything is deleted; if export or verification fails,
nothing is deleted and the error says why. A re-run after a crash reuses a verified export
and continues the deletion; the slot number is never handed out again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, SafetyRefusal, SmartpraxxError, UsageError
from ..inventory.models import PracticeRecord
from ..render.bundle import DB_NAME
from ..secrets import practice_prefix
from .context import OpContext
from .runner import JournaledOperation

MEMBERS = ("db.sql", "data.tar", "realm.json")
DUMP_DONE_MARK = "-- Dump completed"


def export_path(directory: Path, record: PracticeRecord) -> Path:
    return directory / f"{record.slot.id}-{record.praxisname}-export.tar"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_export(path: Path, record: PracticeRecord) -> dict[str, Any]:
    """Read the export back: every member present, hashes match, contents plausible."""
    problems: list[str] = []
    try:
        with tarfile.open(path, "r") as tar:
            manifest_member = tar.extractfile("manifest.json")
            if manifest_member is None:
                raise KeyError("manifest.json")
            manifest = json.loads(manifest_member.read())
            for name in MEMBERS:
                member = tar.extractfile(name)
                if member is None:
                    problems.append(f"{name} missing")
                    continue
                h = hashlib.sha256()
                head = b""
                tail = b""
                for chunk in iter(lambda m=member: m.read(1 << 20), b""):  # type: ignore[misc]
                    h.update(chunk)
                    head = head or chunk[:4096]
                    tail = (tail + chunk)[-4096:]
                if h.hexdigest() != manifest.get("files", {}).get(name):
                    problems.append(f"{name} checksum differs from the manifest")
                if name == "db.sql" and DUMP_DONE_MARK.encode() not in tail:
                    problems.append("db.sql is not a complete dump")
                if name == "realm.json":
                    member2 = tar.extractfile(name)
                    realm = json.loads(member2.read()) if member2 else {}
                    if (realm.get("realm") or {}).get("realm") != record.realm:
                        problems.append("realm.json is not the practice's realm")
                if name == "data.tar":
                    member3 = tar.extractfile(name)
                    try:
                        with tarfile.open(fileobj=member3, mode="r|") as inner:
                            if next(iter(inner), None) is None:
                                problems.append("data.tar is empty")
                    except tarfile.TarError:
                        problems.append("data.tar is not a tar archive")
            if manifest.get("slot") != record.slot.id:
                problems.append("manifest names another slot")
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        problems.append(f"cannot read the export: {type(exc).__name__}: {exc}")
    if problems:
        raise SafetyRefusal(
            f"export {path} failed verification: {'; '.join(problems)}; nothing was deleted",
            obj=str(path),
            hint=f"remove the file and re-run smartpraxx-provision decommission {record.praxisname} --export-to {path.parent}",
        )
    return {"path": str(path), "bytes": path.stat().st_size, "verified": True}


def write_export(ctx: OpContext, record: PracticeRecord, target: Path) -> None:
    """Dump DB, data volume and realm into ``target`` (atomically: temp file + rename)."""
    from . import identity, nextcloud_stack

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
        with (work / "data.tar").open("wb") as fh:
            for chunk in engine.get_archive(names.app, "/var/www/html"):
                fh.write(chunk)
        realm = identity.export_realm(ctx.practice_keycloak(record), slot)
        (work / "realm.json").write_text(
            json.dumps(realm, sort_keys=True, indent=1), encoding="utf-8"
        )
        manifest = {
            "format": 1,
            "praxisname": record.praxisname,
            "slot": slot.id,
            "realm": record.realm,
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


def decommission_plan(ctx: OpContext, praxisname: str, export_to: Path) -> dict[str, Any]:
    """What ``decommission`` would do; reads the inventory, changes nothing."""
    from .nextcloud_stack import slot_names

    record = ctx.inventory.get_practice(praxisname)
    if record is None or record.tombstoned:
        raise NotFoundError(
            f"practice {praxisname} is not active",
            obj=praxisname,
            hint="smartpraxx-provision practices list --all",
        )
    from .ownership import require_slot_ours

    require_slot_ours(ctx, record)  # a plan never offers to delete another owner's objects
    names = slot_names(record.slot)
    return {
        "export": str(export_path(export_to, record)),
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
    from . import identity, nextcloud_stack
    from .routes import write_host_routes, write_start_page_routes, write_start_pages

    inv = ctx.inventory
    record = inv.get_practice(praxisname)
    last = inv.last_operation(praxisname, "decommission")
    resuming = (
        record is not None and record.tombstoned and last is not None and last.state != "done"
    )
    if record is None or (record.tombstoned and not resuming):
        raise NotFoundError(
            f"practice {praxisname} is not active (unknown or already decommissioned)",
            obj=praxisname,
            hint="smartpraxx-provision practices list --all",
        )
    if not export_to.is_dir():
        raise UsageError(
            f"export directory {export_to} does not exist",
            obj=str(export_to),
            hint=f"mkdir -p {export_to} and re-run",
        )
    from .ownership import require_slot_ours

    slot = record.slot
    target = export_path(export_to, record)
    require_slot_ours(ctx, record)  # before the export reads or anything is deleted
    with JournaledOperation(ctx, "decommission", praxisname) as op:
        with op.step("export", f"export to {target.name}"):
            reused = False
            if target.exists():
                with contextlib.suppress(SafetyRefusal):
                    verify_export(target, record)
                    reused = True
            if reused:
                ctx.reporter.skip(f"verified export {target.name} exists")
            elif record.state == "decommissioning":
                raise SafetyRefusal(
                    f"{praxisname} is half decommissioned and its export {target} is missing or broken",
                    obj=praxisname,
                    hint="restore the export file from where it was moved, then re-run",
                )
            else:
                try:
                    write_export(ctx, record, target)
                except SafetyRefusal:
                    raise
                except SmartpraxxError as err:
                    raise SafetyRefusal(
                        f"export of {praxisname} failed: {err.message}; nothing was deleted",
                        obj=err.obj or praxisname,
                        hint=f"{err.hint or 'fix the cause'}, then re-run the decommission",
                    ) from err
                ctx.reporter.change(f"export written: {target}")
        with op.step("verify", "verify the export"):
            verified = verify_export(target, record)
            if record.state != "tombstoned":
                record = inv.update_practice(praxisname, state="decommissioning")
        with op.step("stack", "remove containers, volumes, network"):
            nextcloud_stack.remove_stack(ctx.practice_engine(record), slot, ctx.reporter)
        with op.step("realm", "delete the realm"):
            identity.delete_realm(ctx.practice_keycloak(record), slot, ctx.reporter)
        with op.step("secrets", "delete the practice's secrets"):
            removed = ctx.secrets.delete(practice_prefix(slot.id))
            (ctx.reporter.change if removed else ctx.reporter.skip)(f"{removed} secrets removed")
        with op.step("tombstone", "tombstone slot and name"):
            if not record.tombstoned:
                record = inv.tombstone_practice(praxisname)
                inv.record_event("decommissioned", praxisname, {"slot": slot.id})
                ctx.reporter.change(
                    f"slot {slot.id} and name {praxisname} tombstoned (never reused)"
                )
            else:
                ctx.reporter.skip(f"slot {slot.id} already tombstoned")
        with op.step("routes", "proxy routes"):
            write_start_pages(ctx)
            write_start_page_routes(ctx)
            write_host_routes(ctx, slot.host)
    return {
        "ok": True,
        "operation": op.op_id,
        "praxisname": praxisname,
        "slot": slot.id,
        "export": verified,
    }
