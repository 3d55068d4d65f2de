"""``status``: inventory facts plus live state (containers, realm, last smoke, the last
unfinished operation; objects with another owner's marks count as down) and one verdict per
practice (``ok`` / ``degraded`` / ``down`` with
the reasons; the rules are pure: ``domain/lifecycle.verdict``)."""

from __future__ import annotations

import json
from typing import Any

from ..domain.lifecycle import HealthFacts, verdict, worst
from ..errors import SmartpraxxError
from ..inventory.models import OperationRecord, PracticeRecord
from .context import OpContext, practice_not_in_inventory

ROLES = ("db", "redis", "app", "cron")


def _live(ctx: OpContext, record: PracticeRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the live state shown, the facts for the verdict)."""
    from ..domain.ownership import LABEL_SLOT

    live: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    try:
        engine = ctx.practice_engine(record)
        containers = engine.list_containers({LABEL_SLOT: record.slot.id})
        for c in containers:  # a slot's name on another inventory's object: not ours, down
            engine.require_owned("container", c.name)
        live["containers"] = {
            c.name: c.status + (f" ({c.health})" if c.health else "") for c in containers
        }
        by_role: dict[str, tuple[str, str | None]] = {}
        for c in containers:
            role = c.name.rsplit("-", 1)[-1]
            if role in ROLES:
                by_role[role] = (c.status, c.health)
        facts["containers"] = by_role
    except SmartpraxxError as err:
        live["containers"] = {"error": err.message}
        facts["engine_error"] = err.message
    try:
        realm = ctx.practice_keycloak(record).get_realm(record.realm)  # refuses a foreign one
        if realm is None:
            live["realm"] = facts["realm"] = "missing"
        else:
            live["realm"] = "present"
            facts["realm"] = "enabled" if realm.get("enabled", True) else "disabled"
    except SmartpraxxError as err:
        live["realm"] = {"error": err.message}
        facts["realm_error"] = err.message
    return live, facts


def _operation_view(ctx: OpContext, op: OperationRecord) -> dict[str, Any]:
    inv = ctx.inventory
    steps = inv.journal(op.op_id)
    state = "interrupted" if inv.is_interrupted(op) else op.state
    return {
        "id": op.op_id,
        "kind": op.kind,
        "state": state,
        "pid": op.pid,
        "hostname": op.hostname,
        "steps": [{"step": j.step, "state": j.state} for j in steps],
    }


def _unfinished_text(view: dict[str, Any]) -> str | None:
    if view["state"] in ("done", "running"):
        return None
    where = next((s["step"] for s in reversed(view["steps"]) if s["state"] != "done"), None)
    at = f" in step {where}" if where else ""
    return f"{view['kind']} {view['state']}{at} (re-run the same command; it resumes)"


def status(ctx: OpContext, praxisname: str | None = None, *, live: bool = True) -> dict[str, Any]:
    from .subscription import is_suspended

    inv = ctx.inventory
    if praxisname:
        record = inv.resolve_name(praxisname)
        if record is None:
            raise practice_not_in_inventory(praxisname)
        records = [record]
    else:
        records = inv.list_practices()
    out: list[dict[str, Any]] = []
    verdicts: list[str] = []
    for record in records:
        item = record.to_dict()
        smoke = json.loads(record.last_smoke) if record.last_smoke else None
        item["last_smoke"] = smoke
        last = inv.last_operation(record.praxisname)
        if last is not None:
            item["last_operation"] = _operation_view(ctx, last)
        if record.tombstoned:
            item["verdict"] = {"verdict": "decommissioned", "reasons": []}
            out.append(item)
            continue
        unfinished = inv.unfinished_operation(record.praxisname)
        unfinished_text = _unfinished_text(_operation_view(ctx, unfinished)) if unfinished else None
        suspended = is_suspended(ctx, record.praxisname)
        item["suspended"] = suspended
        facts: dict[str, Any] = {}
        if live:
            item["live"], facts = _live(ctx, record)
        failed_checks = (
            tuple(c["check"] for c in smoke.get("checks", []) if not c.get("ok"))
            if smoke and not smoke.get("ok")
            else None
        )
        if smoke and not smoke.get("ok") and not failed_checks:
            failed_checks = ("unknown",)
        health = HealthFacts(
            state=record.state,
            suspended=suspended,
            smoke_failed=failed_checks,
            last_operation=unfinished_text,
            **facts,
        )
        v, reasons = verdict(health)
        item["verdict"] = {"verdict": v, "reasons": reasons}
        verdicts.append(v)
        out.append(item)
    return {"practices": out, "verdict": worst(verdicts)}
