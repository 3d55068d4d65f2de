"""Targeted news to every platform, evaluated on each platform (no central recipient list).

``send`` records the message and its target (``domain/audience.py``) and delivers the SAME
payload to every active practice's Nextcloud, ``concurrency`` at a time. On each platform
``templates/nextcloud/broadcast.sh`` (POSIX sh + awk + ``php occ``; written into the app
container with the Docker API's put_archive and run as www-data) reads the platform's own
``group:list``, puts the matching users into the local group ``news-<id>`` and posts one
announcement (announcementcenter, with notifications) to that group only. The script prints
one line with a COUNT; user ids never leave the container, so neither the inventory nor any
log line can hold one.

Delivery state per practice (inventory, migration 0007): ``pending`` → ``delivered`` (with
the count and the platform's announcement id) or ``failed`` (``retry`` delivers again;
the script is idempotent). ``retract`` deletes the announcement and the group everywhere.
A practice provisioned later gets every still-valid broadcast in its converge
(``deliver_pending_for``).

A platform's users exist in its Nextcloud only after their first login (user_oidc creates
them and their groups then); a delivery counts the users known to the platform at that time,
and every later run of the script (``retry``, a re-provision) adds new matching users to the
group, which makes the announcement visible to them.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..domain.audience import Target
from ..errors import ExternalServiceError, SmartpraxxError, UsageError
from ..inventory import broadcasts as store
from ..inventory.models import PracticeRecord, record_dict
from ..render.templates import template_bytes
from .context import OpContext

SCRIPT_NAME = "smartpraxx-broadcast.sh"
SCRIPT_DIR = "/tmp"  # noqa: S108 (inside the practice's app container, mode 0755, root's)
AUTHOR = "admin"  # the local break-glass admin of every slot (render/bundle.ADMIN_USER)
EXEC_TIMEOUT = 300.0
MAX_SUBJECT = 512
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Outcome:
    praxisname: str
    practice_id: str
    state: str
    recipients: int | None = None
    announcement_id: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Its fields; the seconds rounded to milliseconds."""
        return {**record_dict(self), "seconds": round(self.seconds, 3)}


# --- pure -----------------------------------------------------------------------------------


def script_bytes() -> bytes:
    data = template_bytes("nextcloud/broadcast.sh")
    if data is None:
        raise FileNotFoundError("nextcloud/broadcast.sh is missing from the package")
    return data


def script_archive() -> bytes:
    """A tar with the script (mode 0755), for put_archive into the app container."""
    data = script_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(SCRIPT_NAME)
        info.size = len(data)
        info.mode = 0o755
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def message_text(message: str, link: str | None) -> str:
    """The announcement body (Markdown): the German text, then the link if any."""
    text = message.strip()
    if link:
        text += f"\n\n[Mehr erfahren]({link})"
    return text


def parse_script_output(text: str) -> tuple[int, str | None]:
    """``delivered <count> <aid|->`` → (count, announcement id)."""
    for line in reversed(text.strip().splitlines()):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "delivered" and parts[1].isdigit():
            return int(parts[1]), (None if parts[2] == "-" else parts[2])
    raise ValueError("no 'delivered' line")


def validate_message(
    subject: str, message: str, link: str | None, valid_until: datetime, now: datetime
) -> None:
    problems = []
    if not subject.strip() or len(subject.strip()) > MAX_SUBJECT:
        problems.append(f"the subject must have 1-{MAX_SUBJECT} characters")
    if not message.strip():
        problems.append("the message is empty")
    if link and not link.startswith("https://"):
        problems.append("the link must start with https://")
    if valid_until.tzinfo is None:
        problems.append("valid-until needs a time zone")
    elif valid_until <= now:
        problems.append("valid-until is in the past")
    if problems:
        raise UsageError(
            "; ".join(problems), obj="broadcast", hint="smartpraxx-provision broadcast send --help"
        )


# --- one platform ---------------------------------------------------------------------------


def _run_script(
    ctx: OpContext, record: PracticeRecord, args: list[str], env: dict[str, str] | None = None
) -> str:
    from .nextcloud_stack import slot_names

    container = slot_names(record.slot).app
    engine = ctx.practice_engine(record)
    engine.put_archive(container, SCRIPT_DIR, script_archive())
    result = engine.exec(
        container,
        ["sh", f"{SCRIPT_DIR}/{SCRIPT_NAME}", *args],
        user="www-data",
        env=env,
        workdir="/var/www/html",
        timeout=EXEC_TIMEOUT,
    )
    if result.exit_code != 0:
        # stderr is not passed on: it could name a user of the platform
        raise ExternalServiceError(
            f"broadcast script exited {result.exit_code} in container {container}",
            obj=container,
            hint=f"docker logs {container}; smartpraxx-provision broadcast retry",
        )
    return result.stdout


def _deliver_one(
    ctx: OpContext, broadcast: store.Broadcast, record: PracticeRecord
) -> Outcome:
    start = time.monotonic()
    args = ["deliver", broadcast.id, broadcast.target, AUTHOR,
            str(int(broadcast.valid_until.timestamp()))]
    env = {
        "BROADCAST_SUBJECT": broadcast.subject,
        "BROADCAST_MESSAGE": message_text(broadcast.message, broadcast.link),
    }
    try:
        count, aid = parse_script_output(_run_script(ctx, record, args, env))
    except (SmartpraxxError, ValueError, OSError) as exc:
        error = str(exc) if isinstance(exc, SmartpraxxError) else type(exc).__name__
        store.set_delivery(ctx.inventory, broadcast.id, record.practice_id, "failed",
                           error=error[:300])
        return Outcome(record.praxisname, record.practice_id, "failed", error=error[:300],
                       seconds=time.monotonic() - start)
    store.set_delivery(ctx.inventory, broadcast.id, record.practice_id, "delivered",
                       recipients=count, announcement_id=aid)
    return Outcome(record.praxisname, record.practice_id, "delivered", count, aid,
                   seconds=time.monotonic() - start)


def _retract_one(ctx: OpContext, broadcast: store.Broadcast, record: PracticeRecord) -> Outcome:
    start = time.monotonic()
    try:
        out = _run_script(ctx, record, ["retract", broadcast.id])
        if "retracted" not in out:
            raise ExternalServiceError("broadcast script did not confirm the retraction",
                                       obj=record.slot_id)
    except SmartpraxxError as exc:
        return Outcome(record.praxisname, record.practice_id, "failed", error=str(exc)[:300],
                       seconds=time.monotonic() - start)
    store.set_delivery(ctx.inventory, broadcast.id, record.practice_id, "retracted")
    return Outcome(record.praxisname, record.practice_id, "retracted",
                   seconds=time.monotonic() - start)


# --- fan-out --------------------------------------------------------------------------------


def _fan_out(
    ctx: OpContext,
    records: list[PracticeRecord],
    work: Callable[[PracticeRecord], Outcome],
    concurrency: int,
    verb: str,
) -> list[Outcome]:
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1", obj="broadcast")
    outcomes: list[Outcome] = []
    total = len(records)
    with ThreadPoolExecutor(max_workers=min(concurrency, max(total, 1))) as pool:
        futures = {pool.submit(work, r): r for r in records}
        for done, future in enumerate(as_completed(futures), 1):
            outcome = future.result()
            outcomes.append(outcome)
            failed = sum(1 for o in outcomes if o.state == "failed")
            line = f"[{done}/{total}] {verb} {outcome.praxisname}: {outcome.state}"
            if outcome.recipients is not None:
                line += f" ({outcome.recipients} recipient(s))"
            line += f"; {failed} failed so far" if failed else ""
            if outcome.state == "failed":
                ctx.reporter.warn(line)
            else:
                ctx.reporter.info(line)
    return sorted(outcomes, key=lambda o: o.praxisname)


def _active(ctx: OpContext) -> list[PracticeRecord]:
    return [p for p in ctx.inventory.list_practices() if p.state == "active"]


def _summary(broadcast: store.Broadcast, outcomes: list[Outcome], **extra: Any) -> dict[str, Any]:
    return {
        "ok": not any(o.state == "failed" for o in outcomes),
        "broadcast": broadcast.id,
        "target": broadcast.target,
        "valid_until": broadcast.valid_until.isoformat(),
        "platforms": len(outcomes),
        "delivered": sum(1 for o in outcomes if o.state == "delivered"),
        "failed": sum(1 for o in outcomes if o.state == "failed"),
        "recipients": sum(o.recipients or 0 for o in outcomes),
        "results": [o.to_dict() for o in outcomes],
        **extra,
    }


def send(
    ctx: OpContext,
    *,
    subject: str,
    message: str,
    link: str | None,
    valid_until: datetime,
    target: Target,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Record a broadcast and deliver it to every active practice."""
    validate_message(subject, message, link, valid_until, datetime.now(UTC))
    target.validate()
    records = _active(ctx)
    if dry_run:
        return {
            "ok": True,
            "dry_run": True,
            "target": target.encode(),
            "target_text": target.describe(),
            "valid_until": valid_until.isoformat(),
            "platforms": [r.praxisname for r in records],
            "plan": [f"deliver to {r.praxisname} ({r.slot_id})" for r in records],
        }
    broadcast = store.create_broadcast(
        ctx.inventory,
        id=f"b{secrets.token_hex(6)}",
        subject=subject.strip(),
        message=message.strip(),
        link=link or None,
        valid_until=valid_until.astimezone(UTC),
        target=target.encode(),
        practice_ids=[r.practice_id for r in records],
    )
    ctx.reporter.info(
        f"broadcast {broadcast.id} to {len(records)} platform(s), target {target.describe()}"
    )
    outcomes = _fan_out(ctx, records, lambda r: _deliver_one(ctx, broadcast, r), concurrency,
                        "delivered to")
    return _summary(broadcast, outcomes, concurrency=concurrency)


def _records_by_id(ctx: OpContext) -> dict[str, PracticeRecord]:
    return {p.practice_id: p for p in ctx.inventory.list_practices()}


def retry(
    ctx: OpContext, broadcast_id: str, *, concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False, refresh: bool = False,
) -> dict[str, Any]:
    """Deliver again where the delivery is pending or failed (and to active practices that
    have no delivery yet), while the broadcast is valid and not retracted. ``refresh``: also
    where it was delivered (idempotent; adds users who match since, e.g. after their first
    login)."""
    broadcast = store.get_broadcast(ctx.inventory, broadcast_id)
    if broadcast.retracted_at is not None:
        raise UsageError(f"broadcast {broadcast_id} was retracted", obj=f"broadcast {broadcast_id}",
                         hint="smartpraxx-provision broadcast send ... (a new broadcast)")
    if broadcast.valid_until <= datetime.now(UTC):
        raise UsageError(f"broadcast {broadcast_id} is no longer valid",
                         obj=f"broadcast {broadcast_id}", hint="smartpraxx-provision broadcast list")
    states = {d.practice_id: d.state for d in broadcast.deliveries}
    wanted = ("pending", "failed", "delivered") if refresh else ("pending", "failed")
    todo = [r for r in _active(ctx) if states.get(r.practice_id, "pending") in wanted]
    if dry_run:
        return {"ok": True, "dry_run": True, "broadcast": broadcast.id,
                "plan": [f"deliver to {r.praxisname} ({r.slot_id})" for r in todo]}
    for r in todo:
        store.ensure_delivery(ctx.inventory, broadcast.id, r.practice_id)
    outcomes = _fan_out(ctx, todo, lambda r: _deliver_one(ctx, broadcast, r), concurrency,
                        "delivered to")
    return _summary(broadcast, outcomes, concurrency=concurrency)


def retract(
    ctx: OpContext, broadcast_id: str, *, concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Remove the announcement and the group on every platform it reached (or may have)."""
    broadcast = store.get_broadcast(ctx.inventory, broadcast_id)
    by_id = _records_by_id(ctx)
    todo = [by_id[d.practice_id] for d in broadcast.deliveries
            if d.state != "retracted" and d.practice_id in by_id
            and by_id[d.practice_id].state not in ("tombstoned",)]
    if dry_run:
        return {"ok": True, "dry_run": True, "broadcast": broadcast.id,
                "plan": [f"retract from {r.praxisname} ({r.slot_id})" for r in todo]}
    store.mark_retracted(ctx.inventory, broadcast.id)
    outcomes = _fan_out(ctx, todo, lambda r: _retract_one(ctx, broadcast, r), concurrency,
                        "retracted from")
    broadcast = store.get_broadcast(ctx.inventory, broadcast_id)
    return _summary(broadcast, outcomes, concurrency=concurrency)


def list_all(ctx: OpContext) -> dict[str, Any]:
    names = {p.practice_id: p.praxisname for p in ctx.inventory.list_practices(True)}
    items = []
    for b in store.list_broadcasts(ctx.inventory):
        doc = b.to_dict()
        for d in doc["deliveries"]:
            d["praxisname"] = names.get(d["practice_id"])
        items.append(doc)
    return {"ok": True, "broadcasts": items}


def deliver_pending_for(ctx: OpContext, record: PracticeRecord) -> list[Outcome]:
    """Provision's step: every still-valid, not retracted broadcast, delivered again to this
    practice (a practice provisioned later, one that was down, or users who logged in for
    the first time since: the script adds them to the group). Idempotent: an unchanged
    platform gets no change."""
    now = datetime.now(UTC)
    outcomes = []
    for b in store.list_broadcasts(ctx.inventory):
        if b.retracted_at is not None or b.valid_until <= now:
            continue
        state = next((d.state for d in b.deliveries if d.practice_id == record.practice_id),
                     None)
        if state == "retracted":
            continue
        store.ensure_delivery(ctx.inventory, b.id, record.practice_id)
        outcomes.append(_deliver_one(ctx, b, record))
    return outcomes
