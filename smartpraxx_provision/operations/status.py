"""``status``: inventory facts plus live state (containers, realm, last smoke) per practice."""

from __future__ import annotations

import json
from typing import Any

from ..errors import NotFoundError, SmartpraxxError
from ..inventory.models import PracticeRecord
from .context import OpContext


def _live(ctx: OpContext, record: PracticeRecord) -> dict[str, Any]:
    from ..adapters.docker_engine import LABEL_SLOT

    live: dict[str, Any] = {}
    try:
        containers = ctx.engine(record.slot.host).list_containers({LABEL_SLOT: record.slot.id})
        live["containers"] = {
            c.name: c.status + (f" ({c.health})" if c.health else "") for c in containers
        }
    except SmartpraxxError as err:
        live["containers"] = {"error": err.message}
    try:
        live["realm"] = "present" if ctx.keycloak.get_realm(record.realm) else "missing"
    except SmartpraxxError as err:
        live["realm"] = {"error": err.message}
    return live


def status(ctx: OpContext, praxisname: str | None = None, *, live: bool = True) -> dict[str, Any]:
    inv = ctx.inventory
    if praxisname:
        record = inv.resolve_name(praxisname)
        if record is None:
            raise NotFoundError(
                f"practice {praxisname} is not in the inventory",
                obj=praxisname,
                hint="smartpraxx-provision practices list --all",
            )
        records = [record]
    else:
        records = inv.list_practices()
    out: list[dict[str, Any]] = []
    for record in records:
        item = record.to_dict()
        item["last_smoke"] = json.loads(record.last_smoke) if record.last_smoke else None
        last = inv.last_operation(record.praxisname)
        if last is not None:
            item["last_operation"] = {
                "id": last.op_id,
                "kind": last.kind,
                "state": last.state,
                "steps": [{"step": j.step, "state": j.state} for j in inv.journal(last.op_id)],
            }
        if live and not record.tombstoned:
            item["live"] = _live(ctx, record)
        out.append(item)
    return {"practices": out}
