"""Ownership checks and recovery (DESIGN invariant 8, issue 11).

* ``live_slot_numbers`` — slot numbers live on a host (any ``ncXX-cloudYYY…`` Docker object or
  realm, of any owner), so the allocation moves past them (a restored older inventory);
* ``require_alias_free`` — a praxisname that is the public alias of a realm this inventory does
  not own is refused before anything is allocated;
* ``require_slot_ours`` — every existing object of a practice's slot belongs to it (decommission
  checks this before its plan, its export and any deletion);
* ``scan`` (``scan_host``: its JSON) — what lives on a host and whose it is (``hosts scan``);
* ``adopt_practice`` — the deliberate recovery after restoring an inventory backup: take over
  the owner marks a slot's objects carry (``practices adopt --yes``), never implicit.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from ..domain.model import Slot
from ..domain.ownership import (
    LABEL_INSTALLATION,
    LABEL_PRACTICE,
    LABEL_SLOT,
    Owner,
    describe_owner,
    owner_from_labels,
    owner_from_realm,
    scan_hint,
    slot_of_name,
)
from ..errors import SafetyRefusal, SmartpraxxError, UsageError
from ..inventory.models import PracticeRecord
from ..render.realm import PRAXISNAME_ATTR, SLOT_ATTR
from .context import OpContext

if TYPE_CHECKING:
    from ..adapters.keycloak import KeycloakAdapter


def _realms(ctx: OpContext) -> list[dict[str, Any]]:
    """Every realm of every identity shard with its attributes (one admin call each)."""
    return [realm for kc in ctx.identity_shards() for realm in kc.realms()]


def find_realm(ctx: OpContext, name: str) -> tuple[KeycloakAdapter, dict[str, Any]] | None:
    """The identity shard that holds realm ``name``, and the realm (first shard first)."""
    for kc in ctx.identity_shards():
        realm = kc.get_realm(name)
        if realm is not None:
            return kc, realm
    return None


def live_slot_numbers(ctx: OpContext, pinned: str | None = None) -> dict[str, set[int]]:
    """Per host: the slot numbers some Docker object or realm of any owner uses."""
    hosts = [h for h in ctx.inventory.list_hosts() if pinned is None or h.name == pinned]
    live: dict[str, set[int]] = {h.name: set() for h in hosts}
    for host in hosts:
        if pinned is None and host.state != "active":
            continue
        try:
            objects = ctx.engine(host.name).all_objects()
        except SmartpraxxError as err:
            ctx.reporter.warn(f"host {host.name}: live slots not checked ({err.message})")
            continue
        for _kind, name, _labels in objects:
            found = slot_of_name(name)
            if found and found[0] == host.name:
                live[host.name].add(found[1])
    for name in (n for kc in ctx.identity_shards() for n in kc.realm_names()):
        found = slot_of_name(name)
        if found and found[0] in live:
            live[found[0]].add(found[1])
    return live


def require_alias_free(ctx: OpContext, praxisname: str, existing: PracticeRecord | None) -> None:
    """Refuse a praxisname that is the alias of a realm other than this practice's own,
    among the slot realms of the hosts this inventory manages (realms of other hosts belong
    to other fleets sharing the Keycloak, e.g. test or staging inventories).

    The realms of this inventory's live practices carry the inventory's names as their alias
    (the allocation checks those); only the others are read in full, so a placement costs one
    brief listing per identity shard (0.55 s at 300 realms; the full listing 8.2 s)."""
    hosts = {h.name for h in ctx.inventory.list_hosts()}
    ours = {p.realm for p in ctx.inventory.list_practices()}
    for kc in ctx.identity_shards():
        for name in kc.realm_names():
            host = slot_of_name(name)
            if host is None or host[0] not in hosts or name in ours:
                continue
            if existing is not None and name == existing.realm:
                continue  # its own realm: the door checks its owner
            attrs = (kc.get_realm(name) or {}).get("attributes") or {}
            if attrs.get(PRAXISNAME_ATTR) == praxisname:
                _alias_taken(praxisname, name, host[0], attrs)


def _alias_taken(praxisname: str, name: str, host: str, attrs: dict[str, Any]) -> NoReturn:
    found = owner_from_realm(attrs)
    raise SafetyRefusal(
        f"praxisname {praxisname} is the alias of realm {name} ({describe_owner(found)}), "
        "which this inventory does not own; nothing was changed",
        obj=f"realm {name}",
        hint=(
            f"see whose it is: {scan_hint(host)}; "
            "if it is this installation's practice from after a restored backup: "
            f"smartpraxx-provision practices adopt {praxisname} --slot {name} "
            "--order-id <Bestellnummer> --yes"
        ),
        details={"object": name, "owner": None if found is None else found.labels()},
    )


def _slot_objects(slot: Slot) -> list[tuple[str, str]]:
    from ..render.bundle import slot_names

    n = slot_names(slot)
    return [
        ("container", n.app),
        ("container", n.cron),
        ("container", n.redis),
        ("container", n.db),
        ("volume", n.data_volume),
        ("volume", n.db_volume),
        ("network", n.network),
    ]


def require_slot_ours(ctx: OpContext, record: PracticeRecord, *, adopt_realm: bool = False) -> None:
    """Every existing Docker object of the slot and its realm belong to this practice
    (``adopt_realm``: provision --adopt may take over a realm without any owner marks)."""
    engine = ctx.practice_engine(record)
    for kind, name in _slot_objects(record.slot):
        engine.require_owned(kind, name)
    if not adopt_realm:
        ctx.practice_keycloak(record).get_realm(record.realm)  # refuses a foreign realm


@dataclass(frozen=True)
class ScannedObject:
    """One slot object found on a host (a Docker object or a realm) and whose it is."""

    slot: str
    kind: str  # container, volume, network, realm
    name: str
    installation: str  # the owner marks it carries ("" when none)
    practice: str
    verdict: str  # ours, unlabelled, orphan, foreign
    praxisname: str


@dataclass(frozen=True)
class HostScan:
    """What ``hosts scan`` found on a host, sorted by slot, kind and name."""

    host: str
    installation: str  # this inventory's installation id
    objects: tuple[ScannedObject, ...]

    def counts(self) -> dict[str, int]:
        """How many objects have each verdict (in the order the verdicts first occur)."""
        counts: dict[str, int] = {}
        for o in self.objects:
            counts[o.verdict] = counts.get(o.verdict, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "installation": self.installation,
            "objects": [asdict(o) for o in self.objects],
            "counts": self.counts(),
        }


@dataclass(frozen=True)
class _Verdicts:
    """Whose a slot object on a host is, judged against this inventory (``scan_host``)."""

    installation: str
    known: dict[str, PracticeRecord]  # practice id -> practice
    adopted: dict[tuple[str, str], str]  # (kind, name) accepted unlabelled -> praxisname

    @classmethod
    def of(cls, ctx: OpContext, host: str) -> _Verdicts:
        inv = ctx.inventory
        installation = inv.installation_id
        practices = inv.list_practices(include_tombstoned=True)
        known = {p.practice_id: p for p in practices}
        adopted = {
            obj: p.praxisname
            for p in practices
            if p.slot.host == host
            for obj in inv.accepted_unlabelled(p.slot.id)
        }
        return cls(installation, known, adopted)

    def classify(self, slot_id: str, owner: Owner | None, obj: tuple[str, str]) -> tuple[str, str]:
        """The verdict (ours, unlabelled, orphan, foreign) and the praxisname if ours."""
        if owner is None:
            if obj in self.adopted:
                return "ours", self.adopted[obj]  # adopted explicitly (made before owner marks)
            return "unlabelled", ""
        practice = self.known.get(owner.practice)
        mine = practice is not None and (practice.owner_installation or self.installation) == (
            owner.installation
        )
        if mine and practice is not None and practice.slot.id == slot_id:
            return "ours", practice.praxisname
        if owner.installation == self.installation:
            return "orphan", ""  # this installation's, unknown to this inventory (backup)
        return "foreign", ""


def _docker_rows(ctx: OpContext, host: str, verdicts: _Verdicts) -> list[ScannedObject]:
    """The slot objects of the host's Docker engine, each with its verdict."""
    rows: list[ScannedObject] = []
    engine = ctx.engine(host)
    for kind, name, labels in engine.all_objects():
        found = slot_of_name(name)
        if not found or found[0] != host:
            continue
        slot_id = f"nc{found[1]:02d}-{host}"
        owner = owner_from_labels(labels)
        verdict, praxisname = verdicts.classify(slot_id, owner, (kind, name))
        rows.append(
            ScannedObject(
                slot=slot_id,
                kind=kind,
                name=name,
                installation=labels.get(LABEL_INSTALLATION, ""),
                practice=labels.get(LABEL_PRACTICE, ""),
                verdict=verdict,
                praxisname=praxisname,
            )
        )
    return rows


def _realm_rows(ctx: OpContext, host: str, verdicts: _Verdicts) -> list[ScannedObject]:
    """The slot realms of the host, each with its verdict."""
    rows: list[ScannedObject] = []
    for realm in _realms(ctx):
        name = str(realm.get("realm", ""))
        found = slot_of_name(name)
        if not found or found[0] != host:
            continue
        owner = owner_from_realm(realm.get("attributes"))
        verdict, praxisname = verdicts.classify(name, owner, ("realm", name))
        rows.append(
            ScannedObject(
                slot=name,
                kind="realm",
                name=name,
                installation=owner.installation if owner else "",
                practice=owner.practice if owner else "",
                verdict=verdict,
                praxisname=praxisname
                or str((realm.get("attributes") or {}).get(PRAXISNAME_ATTR, "")),
            )
        )
    return rows


def scan(ctx: OpContext, host: str) -> HostScan:
    """Every slot object on ``host`` (Docker objects and realms) and whose it is."""
    verdicts = _Verdicts.of(ctx, host)
    rows = _docker_rows(ctx, host, verdicts) + _realm_rows(ctx, host, verdicts)
    rows.sort(key=lambda r: (r.slot, r.kind, r.name))
    return HostScan(host=host, installation=verdicts.installation, objects=tuple(rows))


def scan_host(ctx: OpContext, host: str) -> dict[str, Any]:
    """``hosts scan``: :func:`scan` as its JSON document."""
    return scan(ctx, host).to_json()


@dataclass
class SlotOwners:
    """The owner marks found on a slot's objects."""

    owner: Owner | None = None  # the one owner the labelled objects carry
    labelled: list[str] = field(default_factory=list)
    unlabelled: list[tuple[str, str]] = field(default_factory=list)  # Docker (kind, name)
    realm_unlabelled: bool = False


def slot_owners(ctx: OpContext, slot: Slot) -> SlotOwners:
    """Read the owner marks of every object of ``slot``. Refuses objects of two owners and
    unlabelled objects that do not even carry the slot's own mark (not the tool's)."""
    engine = ctx.engine(slot.host)
    found = SlotOwners()
    owners: dict[Owner, list[str]] = {}
    strangers: list[str] = []
    for kind, name in _slot_objects(slot):
        labels = engine.object_labels(kind, name)
        if labels is None:
            continue
        owner = owner_from_labels(labels)
        if owner is not None:
            owners.setdefault(owner, []).append(f"{kind} {name}")
        elif labels.get(LABEL_SLOT) == slot.id:
            found.unlabelled.append((kind, name))
        else:
            strangers.append(f"{kind} {name}")
    held = find_realm(ctx, slot.realm)
    if held is not None:
        attrs = held[1].get("attributes") or {}
        owner = owner_from_realm(attrs)
        if owner is not None:
            owners.setdefault(owner, []).append(f"realm {slot.realm}")
        elif attrs.get(SLOT_ATTR) == slot.id:
            found.realm_unlabelled = True
        else:
            strangers.append(f"realm {slot.realm}")
    if not owners and not found.unlabelled and not found.realm_unlabelled and not strangers:
        raise UsageError(
            f"slot {slot.id} has no objects on {slot.host} or in Keycloak",
            obj=slot.id,
            hint=scan_hint(slot.host),
        )
    if strangers or len(owners) > 1:
        what = "; ".join(f"{o.describe()}: {', '.join(n)}" for o, n in owners.items())
        if strangers:
            what += ("; " if what else "") + "not made by this tool: " + ", ".join(strangers)
        raise SafetyRefusal(
            f"the objects of slot {slot.id} do not belong to one practice ({what}); "
            "nothing was changed",
            obj=slot.id,
            hint=f"{scan_hint(slot.host)}; remove or fix the odd objects by hand first",
        )
    if owners:
        ((found.owner, found.labelled),) = owners.items()
    return found


def adopt_plan(ctx: OpContext, praxisname: str, slot_id: str | None) -> dict[str, Any]:
    """What ``practices adopt`` would do (reads only)."""
    record = ctx.inventory.get_practice(praxisname)
    if record is not None and record.tombstoned:
        record = None
    if slot_id is None:
        if record is None:
            raise UsageError(
                f"practice {praxisname} is not in this inventory: name its slot",
                obj=praxisname,
                hint="pass --slot ncXX-cloudYYY (see: smartpraxx-provision hosts scan <host>)",
            )
        slot = record.slot
    else:
        try:
            slot = Slot.parse(slot_id)
        except ValueError as exc:
            raise UsageError(str(exc), obj=slot_id, hint="slots look like nc07-cloud023") from None
    found = slot_owners(ctx, slot)
    current = ctx.owner(record) if record is not None else None
    owner = found.owner or current or Owner(ctx.inventory.installation_id, str(uuid.uuid4()))
    accepted = ctx.inventory.accepted_unlabelled(slot.id) if record is not None else set()
    to_accept = [o for o in found.unlabelled if o not in accepted]
    return {
        "praxisname": praxisname,
        "slot": slot.id,
        "in_inventory": record is not None,
        "objects": found.labelled
        + [f"{k} {n} (no owner marks)" for k, n in found.unlabelled]
        + ([f"realm {slot.realm} (no owner marks)"] if found.realm_unlabelled else []),
        "objects_owner": owner.labels(),
        "inventory_owner": None if current is None else current.labels(),
        "adopt_unlabelled": [f"{k} {n}" for k, n in to_accept],
        "label_realm": found.realm_unlabelled,
        "up_to_date": current == owner and not to_accept and not found.realm_unlabelled,
        # another inventory's objects: adopted only with --from-installation (a lost inventory)
        "foreign_installation": (
            owner.installation
            if owner.installation
            not in (ctx.inventory.installation_id, record.owner_installation if record else None)
            else None
        ),
    }


def adopt_practice(
    ctx: OpContext,
    praxisname: str,
    slot_id: str | None,
    order_id: str,
    from_installation: str | None = None,
) -> dict[str, Any]:
    """Make the slot's objects this practice's (explicit recovery, ``practices adopt --yes``):
    take over the owner marks the labelled objects carry, record objects without marks (made
    before them) as adopted, and give an unmarked realm the owner attributes."""
    plan = adopt_plan(ctx, praxisname, slot_id)
    foreign = plan["foreign_installation"]
    if foreign is not None and foreign != from_installation:
        raise SafetyRefusal(
            f"the objects of slot {plan['slot']} belong to installation {foreign}, another "
            "inventory; nothing was changed",
            obj=plan["slot"],
            hint="leave them to that inventory; only if it is lost for good, adopt them with: "
            f"smartpraxx-provision practices adopt {praxisname} --slot {plan['slot']} "
            f"--from-installation {foreign} --yes",
        )
    if plan["up_to_date"]:
        ctx.reporter.skip(f"{praxisname} already owns the objects of {plan['slot']}")
        return {**plan, "changed": False}
    owner = owner_from_labels(plan["objects_owner"])
    assert owner is not None
    slot = Slot.parse(plan["slot"])
    held = find_realm(ctx, slot.realm)
    kc, realm = held if held is not None else (ctx.keycloak, {})
    record = ctx.inventory.adopt_practice(
        praxisname,
        slot=slot,
        practice_id=owner.practice,
        installation=owner.installation,
        order_id=order_id,
        display_name=str(realm.get("displayName") or ""),
        identity_shard=kc.shard,
    )
    unlabelled = [tuple(o.split(" ", 1)) for o in plan["adopt_unlabelled"]]
    ctx.inventory.accept_unlabelled(slot.id, [(k, n) for k, n in unlabelled])
    if plan["label_realm"]:
        attrs = {**(realm.get("attributes") or {}), **owner.realm_attributes()}
        kc.update_realm(slot.realm, {"attributes": attrs})
    ctx.reporter.change(
        f"{praxisname} ({record.slot.id}) adopted: its objects' owner is now this practice "
        f"({owner.describe()})"
    )
    return {**plan, "changed": True, "practice_id": record.practice_id}
