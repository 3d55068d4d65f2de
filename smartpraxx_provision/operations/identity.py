"""Identity steps: each practice's own Keycloak realm, converged from its PracticeSpec.

Every step re-reads live state, changes only what differs and reports through the Reporter
("realm nc07-cloud023 exists, up to date"). Staff data never reaches a report line or an
error message: users are reported as counts, attributes by name only.

Realm
    The technical name is the slot id (``nc07-cloud023``), fixed at creation and never
    recreated: renaming a Keycloak realm would change the issuer, the discovery URL and leave
    every redirect URI stale. The realm attribute ``smartpraxx.slot`` marks it as ours; a realm
    without it is refused unless ``adopt=True``. ``praxisname`` is only an alias: the realm's
    ``displayName`` and the attribute ``smartpraxx.praxisname`` (``set_alias`` moves it).

Start page: ``mein.smartpraxx.de/<praxisname>``
    The start page is Keycloak's own account console of the practice's realm, whose
    *Applications* view lists every client with ``alwaysDisplayInConsole`` and a ``baseUrl``:
    the practice's Nextcloud and each third-party app from the Starter Excel's Apps sheet, each
    a link to its base URL. The identity host's reverse proxy (rendered by
    ``render/proxy.py`` from ``templates/proxy/start_page.caddy.j2``) answers
    ``/<praxisname>`` with a 302 to ``/realms/<realm>/account/`` (former names redirect to the
    new path during the rename grace period) and proxies ``/realms/*`` and ``/resources/*`` to
    Keycloak. ``start_page_url`` is the public address, ``account_console_url`` the target.

Users
    Created with UPDATE_PASSWORD (and CONFIGURE_TOTP for admins when ``admin_totp``) as
    required actions; no password is ever set. The invitation mail is ``invitations.py``'s
    (following its link also verifies the e-mail address, so VERIFY_EMAIL is not needed). Required actions are set at
    creation only (a user who completed them must not get them back on the next converge).
    Each created or updated user is read back and the managed attributes compared (Keycloak
    >= 24 drops attributes that the user profile does not declare, and still answers 201).
    Persons missing from a newer spec are disabled, deleted only with ``prune=True``.

The payload builders and the comparison with live state are pure, in ``render/realm.py`` (the
one-call representation of a new realm and its read-back check in ``render/realm_import.py``);
this module holds the steps that talk to Keycloak through ``adapters/keycloak.py``. The
decommission export is ``identity_export.py``'s, the smoke check's throwaway users
``identity_smoke.py``'s, the browser-style login ``adapters/keycloak_login.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..adapters.keycloak import KeycloakAdapter
from ..config import Settings
from ..domain.model import PracticeSpec, Slot
from ..errors import ConflictError, ExternalServiceError, NotFoundError, UsageError
from ..output import Reporter
from ..render.realm import (
    AUDIENCE_KEY,
    MANAGED_ATTR,
    PRAXISNAME_ATTR,
    READER_CLIENT,
    REALM_ROLES,
    SLOT_ATTR,
    SMOKE_PREFIX,
    SMTP_PASSWORD_SECRET,
    START_PAGE_CLIENT,
    app_secret_path,
    audience_group_payloads,
    client_safety_problems,
    comparable_realm,
    desired_groups,
    differences,
    group_payloads,
    nextcloud_client_payload,
    nextcloud_secret_path,
    person_group_keys,
    person_roles,
    reader_secret_path,
    realm_payload,
    required_actions,
    role_payloads,
    start_page_client_payload,
    third_party_client_payload,
    user_differences,
    user_fields,
    user_profile_attributes,
)
from ..render.realm_import import (
    ImportUser,
    ReadBack,
    RealmParts,
    import_differences,
    realm_representation,
)
from ..secrets import SecretStore


@dataclass
class IdentityResult:
    changes: int = 0  # mutating admin calls made
    created_users: int = 0
    updated_users: int = 0
    disabled_users: int = 0
    deleted_users: int = 0
    clients: list[str] = field(default_factory=list)


# --- steps ------------------------------------------------------------------------------


def _is_ours(realm: dict[str, Any], slot: Slot) -> bool:
    return (realm.get("attributes") or {}).get(SLOT_ATTR) == slot.id


@dataclass(frozen=True)
class _Target:
    """What one converge works with: the door, the practice's spec and slot, the settings,
    the secret store and where the steps report."""

    kc: KeycloakAdapter
    spec: PracticeSpec
    slot: Slot
    settings: Settings
    secrets: SecretStore
    reporter: Reporter


def _smtp_password(settings: Settings, secrets: SecretStore) -> str | None:
    return secrets.get(SMTP_PASSWORD_SECRET) if settings.smtp_user else None


def _require_unique_usernames(spec: PracticeSpec) -> None:
    usernames = [p.username.lower() for p in spec.persons]
    if len(set(usernames)) != len(usernames):
        raise UsageError(
            "two persons share a username",
            obj=f"practice {spec.praxisname}",
            hint="fix the Starter Excel (usernames must be unique)",
        )


def converge_realm(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
    *,
    prune: bool = False,
    adopt: bool = False,
    one_call: bool = True,
) -> IdentityResult:
    """Create the practice's realm or bring it up to date (never recreates it).

    A realm that does not exist yet is created from one complete representation and read
    back (``_create_in_one_call``); ``one_call=False`` builds it call by call instead.
    An existing realm is always converged call by call."""
    target = _Target(kc, spec, slot, settings, secrets, reporter)
    if one_call and kc.get_realm(slot.realm) is None:
        return _create_in_one_call(target)
    start = kc.mutations
    result = IdentityResult()
    realm = slot.realm
    _converge_realm_settings(target, adopt=adopt)
    _converge_user_profile(kc, realm, reporter)
    roles = _converge_roles(kc, realm, reporter)
    groups = _converge_groups(kc, realm, reporter, spec)
    result.clients = _converge_clients(target, prune=prune)
    user_ids = _converge_users(target, result, prune=prune)
    _converge_memberships(kc, spec, realm, roles, groups, user_ids, reporter)
    result.changes = kc.mutations - start
    if result.changes == 0:
        reporter.skip(f"identity of {slot.realm}: up to date, nothing changed")
    else:
        reporter.info(f"identity of {slot.realm}: {result.changes} change(s) applied")
    return result


# --- a new realm in one call ----------------------------------------------------------------


def desired_clients(
    spec: PracticeSpec, slot: Slot, settings: Settings, secrets: SecretStore
) -> list[dict[str, Any]]:
    """The practice's OIDC clients (Nextcloud first, then the Apps sheet), secrets ensured."""
    wanted = [
        nextcloud_client_payload(settings, slot, spec, secrets.ensure(nextcloud_secret_path(slot)))
    ]
    for app in spec.third_party_apps:
        wanted.append(third_party_client_payload(app, secrets.ensure(app_secret_path(slot, app))))
    wanted.append(start_page_client_payload(settings, spec.praxisname))
    ids = [w["clientId"] for w in wanted]
    if len(set(ids)) != len(ids):
        raise UsageError(
            "two third-party apps map to the same client id",
            obj=f"practice {spec.praxisname}",
            hint="give the apps in the Starter Excel's Apps sheet distinct names",
        )
    for want in wanted:
        problems = client_safety_problems(want)
        if problems:
            raise UsageError(
                f"client {want['clientId']} would be unsafe: {'; '.join(problems)}",
                obj=f"practice {spec.praxisname}",
                hint="fix the app's Redirect-URI in the Starter Excel's Apps sheet",
            )
    return wanted


def realm_parts(
    spec: PracticeSpec, slot: Slot, settings: Settings, secrets: SecretStore
) -> RealmParts:
    """The whole desired state of a new realm, composed from render/realm.py's builders."""
    _require_unique_usernames(spec)
    smtp_password = _smtp_password(settings, secrets)
    groups = desired_groups(spec)
    return RealmParts(
        realm=realm_payload(spec, slot, settings, smtp_password),
        user_profile_attributes=user_profile_attributes(),
        roles=role_payloads(),
        groups=group_payloads() + audience_group_payloads(spec),
        clients=desired_clients(spec, slot, settings, secrets),
        users=[
            ImportUser(
                fields=user_fields(person, spec),
                required_actions=required_actions(person, settings),
                realm_roles=sorted(person_roles(person)),
                groups=sorted(groups[key] for key in person_group_keys(person, spec)),
            )
            for person in spec.persons
        ],
        reader_secret=secrets.ensure(reader_secret_path(slot)),
    )


def read_back(kc: KeycloakAdapter, parts: RealmParts, *, group_members: bool = False) -> ReadBack:
    """Everything ``import_differences`` compares, read from Keycloak (GETs only).

    Group memberships are read only with ``group_members=True``: Keycloak refuses a whole
    import whose user names a group path it cannot resolve (HTTP 500, no realm), so they
    cannot be dropped silently; an unknown realm role, by contrast, is accepted silently, so
    role memberships are always read back. The next converge re-checks both."""
    realm = parts.name
    clients = [c for w in parts.clients if (c := kc.find_client(realm, w["clientId"]))]
    groups = kc.groups(realm)
    wanted_groups = {g["name"] for g in parts.groups}
    return ReadBack(
        realm=kc.get_realm(realm) or {},
        user_profile=kc.get_user_profile(realm),
        roles=kc.realm_roles(realm),
        groups=groups,
        clients=clients,
        client_secrets={c["clientId"]: kc.client_secret(realm, str(c["id"])) for c in clients},
        users=[u for u in kc.users(realm) if not u["username"].startswith(SMOKE_PREFIX)],
        role_members={r["name"]: kc.role_member_ids(realm, r["name"]) for r in parts.roles},
        group_members=(
            {
                g["name"]: kc.group_member_ids(realm, str(g["id"]))
                for g in groups
                if g["name"] in wanted_groups
            }
            if group_members
            else None
        ),
    )


def _remove_own_new_realm(kc: KeycloakAdapter, slot: Slot, reporter: Reporter) -> bool:
    """After a failed import: delete the realm only if it exists and carries our marker for
    this slot (it was just created by this call); never touch anything else."""
    try:
        live = kc.get_realm(slot.realm)
        if live is None or not _is_ours(live, slot):
            return False
        kc.delete_realm(slot.realm)
    except ExternalServiceError:
        reporter.warn(f"realm {slot.realm}: could not remove the incomplete import")
        return False
    reporter.change(f"realm {slot.realm} removed again (the import did not complete)")
    return True


def _create_in_one_call(target: _Target) -> IdentityResult:
    """Create a new practice realm with ONE ``POST /admin/realms`` carrying the complete
    representation (settings, user profile, roles, groups, users with attributes, required
    actions and memberships, clients with mappers), then read everything back.

    Keycloak imports a realm in one transaction: a refused import leaves no realm. When the
    read-back finds something not stored as sent (e.g. an attribute the user profile does not
    declare), the realm, created by this very call and carrying our marker, is deleted again,
    so the next run starts from scratch. The invitations go out later, in provision's
    ``invite`` step (operations/invitations.py)."""
    kc, slot, reporter = target.kc, target.slot, target.reporter
    start = kc.mutations
    realm = slot.realm
    parts = realm_parts(target.spec, slot, target.settings, target.secrets)
    try:
        kc.create_realm(realm_representation(parts))
    except ExternalServiceError as exc:
        if exc.details.get("status") == 409:
            raise ConflictError(
                f"realm {realm} appeared while this run was creating it",
                obj=f"realm {realm}",
                hint="check no other provision of this practice is running, then re-run it",
            ) from exc
        _remove_own_new_realm(kc, slot, reporter)
        raise
    reporter.change(
        f"realm {realm} created ({target.spec.praxisname}) from one representation: "
        f"{len(parts.users)} user(s), {len(parts.clients)} client(s)"
    )
    # through the realm's own read-only admin: the master admin's first touch of a new realm
    # costs seconds per hundred realms (render/realm.py READER_CLIENT)
    reader = kc.realm_reader(realm, READER_CLIENT, str(parts.reader_secret))
    diffs = import_differences(parts, read_back(reader, parts))
    if diffs:
        removed = _remove_own_new_realm(kc, slot, reporter)
        raise ExternalServiceError(
            f"Keycloak did not store {', '.join(diffs)} in realm {realm} "
            "(read back after the import)"
            + ("; the new realm was removed again" if removed else ""),
            obj=f"realm {realm}",
            hint="check the realm's user profile declares the attribute, then re-run the operation",
        )
    result = IdentityResult(
        created_users=len(parts.users), clients=[c["clientId"] for c in parts.clients]
    )
    result.changes = kc.mutations - start
    reporter.info(f"identity of {realm}: created in one call and verified by reading back")
    return result


def _converge_realm_settings(target: _Target, *, adopt: bool) -> None:
    kc, spec, slot, reporter = target.kc, target.spec, target.slot, target.reporter
    smtp_password = _smtp_password(target.settings, target.secrets)
    want = realm_payload(spec, slot, target.settings, smtp_password)
    live = kc.get_realm(slot.realm)
    if live is None:
        kc.create_realm(want)
        reporter.change(f"realm {slot.realm} created ({spec.praxisname})")
        return
    if not _is_ours(live, slot):
        if not adopt:
            raise ConflictError(
                f"realm {slot.realm} exists but was not created by smartpraxx-provision "
                f"(no {SLOT_ATTR} attribute)",
                obj=f"realm {slot.realm}",
                hint="check it is the right realm, then re-run with --adopt to take it over",
            )
        reporter.warn(f"realm {slot.realm} exists without our marker: adopting it (--adopt)")
    diffs = differences(comparable_realm(want), live)
    if not diffs:
        reporter.skip(f"realm {slot.realm} exists, up to date")
        return
    update = {key: want[key] for key in {d.split(".")[0] for d in diffs}}
    if "attributes" in update:
        update["attributes"] = {**(live.get("attributes") or {}), **want["attributes"]}
    if "smtpServer" in diffs or any(d.startswith("smtpServer.") for d in diffs):
        update["smtpServer"] = want["smtpServer"]
    kc.update_realm(slot.realm, update)
    reporter.change(f"realm {slot.realm} updated: {', '.join(sorted(set(diffs)))}")


def _converge_user_profile(kc: KeycloakAdapter, realm: str, reporter: Reporter) -> None:
    config = kc.get_user_profile(realm)
    attributes: list[dict[str, Any]] = list(config.get("attributes") or [])
    by_name = {a.get("name"): i for i, a in enumerate(attributes)}
    changed: list[str] = []
    for want in user_profile_attributes():
        index = by_name.get(want["name"])
        if index is None:
            attributes.append(want)
            changed.append(want["name"])
        elif differences(want, attributes[index]):
            attributes[index] = {**attributes[index], **want}
            changed.append(want["name"])
    if not changed:
        reporter.skip(f"user profile of {realm}: attributes declared, up to date")
        return
    kc.update_user_profile(realm, {**config, "attributes": attributes})
    reporter.change(f"user profile of {realm}: declared {', '.join(changed)}")


def _converge_roles(
    kc: KeycloakAdapter, realm: str, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    live = {r["name"]: r for r in kc.realm_roles(realm)}
    changed = 0
    for want in role_payloads():
        name = want["name"]
        if name not in live:
            kc.create_realm_role(realm, want)
            changed += 1
        elif differences(want, live[name]):
            kc.update_realm_role(realm, name, {**live[name], **want})
            changed += 1
    if changed:
        live = {r["name"]: r for r in kc.realm_roles(realm)}
        reporter.change(f"realm roles of {realm}: {changed} created or updated")
    else:
        reporter.skip(f"realm roles of {realm}: up to date")
    return {name: live[name] for name in REALM_ROLES}


def _converge_groups(
    kc: KeycloakAdapter, realm: str, reporter: Reporter, spec: PracticeSpec | None = None
) -> dict[str, str]:
    """Ensure our groups; return managed key -> group id (audience groups nobody is in any
    more included, so the membership step empties them)."""
    wanted = desired_groups(spec)

    def managed_key(group: dict[str, Any]) -> str | None:
        values = (group.get("attributes") or {}).get(MANAGED_ATTR) or []
        return str(values[0]) if values else None

    live = kc.groups(realm)
    by_key = {k: g for g in live if (k := managed_key(g))}
    by_name = {g["name"]: g for g in live}
    changed = 0
    for key, name in wanted.items():
        attrs = {MANAGED_ATTR: [key]}
        group = by_key.get(key)
        if group is None and name in by_name and managed_key(by_name[name]) is None:
            group = by_name[name]  # a same-named group made by hand: take it over
        if group is None:
            kc.create_group(realm, {"name": name, "attributes": attrs})
            changed += 1
        elif group["name"] != name or differences(attrs, group.get("attributes") or {}):
            kc.update_group(
                realm,
                group["id"],
                {**group, "name": name, "attributes": {**(group.get("attributes") or {}), **attrs}},
            )
            changed += 1
    if changed:
        live = kc.groups(realm)
        by_key = {k: g for g in live if (k := managed_key(g))}
        reporter.change(f"groups of {realm}: {changed} created or updated")
    else:
        reporter.skip(f"groups of {realm}: up to date")
    stale = [k for k in by_key if k.startswith(AUDIENCE_KEY) and k not in wanted]
    return {key: str(by_key[key]["id"]) for key in [*wanted, *stale]}


def _converge_client(
    kc: KeycloakAdapter,
    realm: str,
    want: dict[str, Any],
    live: dict[str, Any] | None,
    reporter: Reporter,
) -> None:
    client_id = want["clientId"]
    if live is None:
        kc.create_client(realm, want)
        reporter.change(f"client {client_id} created in {realm}")
        return
    uuid = str(live["id"])
    top = {k: v for k, v in want.items() if k not in ("protocolMappers", "secret")}
    diffs = differences(top, live)
    secret_differs = "secret" in want and kc.client_secret(realm, uuid) != want["secret"]
    if diffs or secret_differs:
        update = {k: v for k, v in live.items() if k != "protocolMappers"}
        update.update(top)
        update["attributes"] = {**(live.get("attributes") or {}), **want["attributes"]}
        if secret_differs:
            update["secret"] = want["secret"]
        kc.update_client(realm, uuid, update)
        what = sorted(set(diffs)) + (["secret"] if secret_differs else [])
        reporter.change(f"client {client_id} in {realm} updated: {', '.join(what)}")
    live_mappers = {m["name"]: m for m in live.get("protocolMappers") or []}
    mapper_changes = 0
    for mapper in want["protocolMappers"]:
        current = live_mappers.get(mapper["name"])
        if current is None:
            kc.add_client_mapper(realm, uuid, mapper)
            mapper_changes += 1
        elif differences(mapper, current):
            merged = {
                **current,
                **mapper,
                "config": {**current.get("config", {}), **mapper["config"]},
            }
            kc.update_client_mapper(realm, uuid, str(current["id"]), merged)
            mapper_changes += 1
    if mapper_changes:
        reporter.change(f"client {client_id} in {realm}: {mapper_changes} protocol mapper(s) set")
    if not diffs and not secret_differs and not mapper_changes:
        reporter.skip(f"client {client_id} in {realm} exists, up to date")


def _converge_clients(target: _Target, *, prune: bool) -> list[str]:
    kc, reporter = target.kc, target.reporter
    realm = target.slot.realm
    wanted = desired_clients(target.spec, target.slot, target.settings, target.secrets)
    ids = [w["clientId"] for w in wanted]
    live = {c["clientId"]: c for c in kc.clients(realm)}
    for want in wanted:
        _converge_client(kc, realm, want, live.get(want["clientId"]), reporter)
    for client_id, client in live.items():
        if client_id in ids or not (client.get("attributes") or {}).get(MANAGED_ATTR):
            continue
        if prune:
            kc.delete_client(realm, str(client["id"]))
            reporter.change(f"client {client_id} removed from {realm} (--prune)")
        elif client.get("enabled", True):
            kc.update_client(realm, str(client["id"]), {**client, "enabled": False})
            reporter.change(f"client {client_id} in {realm} disabled (no longer in the spec)")
    return ids


def _check_read_back(kc: KeycloakAdapter, realm: str, user_id: str, want: dict[str, Any]) -> None:
    stored = kc.get_user(realm, user_id)
    diffs = user_differences(want, stored)
    if diffs:
        raise ExternalServiceError(
            f"Keycloak did not store {', '.join(diffs)} of a user in realm {realm} "
            "(read back after writing)",
            obj=f"realm {realm}",
            hint="check the realm's user profile declares the attribute, then re-run the operation",
        )


def _create_user(
    kc: KeycloakAdapter, realm: str, want: dict[str, Any], actions: list[str]
) -> str:
    """Create a user (empty attributes left out, e-mail not verified) and read it back."""
    payload = {
        **want,
        "attributes": {k: v for k, v in want["attributes"].items() if v},
        "emailVerified": False,
        "requiredActions": actions,
    }
    user_id = kc.create_user(realm, payload)
    _check_read_back(kc, realm, user_id, want)
    return user_id


def _update_user(
    kc: KeycloakAdapter, realm: str, current: dict[str, Any], want: dict[str, Any]
) -> str:
    """Write the managed fields over the live user (other attributes kept) and read it back."""
    user_id = str(current["id"])
    update = {**current, **{k: v for k, v in want.items() if k != "attributes"}}
    update["attributes"] = {
        **(current.get("attributes") or {}),
        **{k: v for k, v in want["attributes"].items()},
    }
    kc.update_user(realm, user_id, update)
    _check_read_back(kc, realm, user_id, want)
    return user_id


def _retire_users(
    kc: KeycloakAdapter,
    realm: str,
    gone: list[dict[str, Any]],
    result: IdentityResult,
    *,
    prune: bool,
) -> None:
    """Users no longer in the spec: deleted with ``prune``, else disabled (once)."""
    for user in gone:
        if prune:
            kc.delete_user(realm, str(user["id"]))
            result.deleted_users += 1
        elif user.get("enabled", True):
            kc.update_user(realm, str(user["id"]), {**user, "enabled": False})
            result.disabled_users += 1


def _report_users(reporter: Reporter, realm: str, result: IdentityResult, unchanged: int) -> None:
    counts = (
        f"{result.created_users} created, {result.updated_users} updated, "
        f"{result.disabled_users} disabled, {result.deleted_users} deleted, {unchanged} up to date"
    )
    if (
        result.created_users
        or result.updated_users
        or result.disabled_users
        or result.deleted_users
    ):
        reporter.change(f"users of {realm}: {counts}")
    else:
        reporter.skip(f"users of {realm}: {counts}")


def _converge_users(target: _Target, result: IdentityResult, *, prune: bool) -> dict[str, str]:
    """Create/update/disable users; return username -> id for the spec's persons."""
    kc, spec = target.kc, target.spec
    realm = target.slot.realm
    _require_unique_usernames(spec)
    live = {u["username"]: u for u in kc.users(realm) if not u["username"].startswith(SMOKE_PREFIX)}
    ids: dict[str, str] = {}
    unchanged = 0
    for person in spec.persons:
        want = user_fields(person, spec)
        current = live.get(want["username"])
        if current is None:
            actions = required_actions(person, target.settings)
            ids[want["username"]] = _create_user(kc, realm, want, actions)
            result.created_users += 1
        elif user_differences(want, current):
            ids[want["username"]] = _update_user(kc, realm, current, want)
            result.updated_users += 1
        else:
            ids[want["username"]] = str(current["id"])
            unchanged += 1
    gone = [user for username, user in live.items() if username not in ids]
    _retire_users(kc, realm, gone, result, prune=prune)
    _report_users(target.reporter, realm, result, unchanged)
    return ids


def _sync_members(
    want: set[str], have: set[str], *, add: Callable[[str], None], remove: Callable[[str], None]
) -> int:
    """Add the missing members, then remove the extra ones (in id order, one call each);
    return how many calls were made."""
    missing, extra = sorted(want - have), sorted(have - want)
    for user_id in missing:
        add(user_id)
    for user_id in extra:
        remove(user_id)
    return len(missing) + len(extra)


def _converge_memberships(
    kc: KeycloakAdapter,
    spec: PracticeSpec,
    realm: str,
    roles: dict[str, dict[str, Any]],
    groups: dict[str, str],
    user_ids: dict[str, str],
    reporter: Reporter,
) -> None:
    persons = {p.username.lower(): p for p in spec.persons}
    changes = 0
    for role, rep in roles.items():
        want = {user_ids[u] for u, p in persons.items() if role in person_roles(p)}
        role_ref = [{"id": rep["id"], "name": rep["name"]}]
        changes += _sync_members(
            want,
            kc.role_member_ids(realm, role),
            add=partial(kc.assign_realm_roles, realm, roles=role_ref),
            remove=partial(kc.remove_realm_roles, realm, roles=role_ref),
        )
    for key, group_id in groups.items():
        want = {user_ids[u] for u, p in persons.items() if key in person_group_keys(p, spec)}
        changes += _sync_members(
            want,
            kc.group_member_ids(realm, group_id),
            add=partial(kc.add_to_group, realm, group_id=group_id),
            remove=partial(kc.remove_from_group, realm, group_id=group_id),
        )
    if changes:
        reporter.change(f"role and group memberships of {realm}: {changes} change(s)")
    else:
        reporter.skip(f"role and group memberships of {realm}: up to date")


# --- other operations ---------------------------------------------------------------------


def require_own_realm(kc: KeycloakAdapter, slot: Slot) -> dict[str, Any]:
    """The practice's realm as Keycloak has it; NotFoundError when it does not exist,
    ConflictError when it lacks our slot marker."""
    live = kc.get_realm(slot.realm)
    if live is None:
        raise NotFoundError(
            f"realm {slot.realm} does not exist",
            obj=f"realm {slot.realm}",
            hint="provision the practice first ('smartpraxx-provision provision ...')",
        )
    if not _is_ours(live, slot):
        raise ConflictError(
            f"realm {slot.realm} was not created by smartpraxx-provision",
            obj=f"realm {slot.realm}",
            hint="leave it alone or adopt it with 'provision --adopt'",
        )
    return live


def delete_realm(kc: KeycloakAdapter, slot: Slot, reporter: Reporter) -> bool:
    """Delete the practice's realm (decommission). False when it is already gone."""
    live = kc.get_realm(slot.realm)
    if live is None:
        reporter.skip(f"realm {slot.realm} does not exist, nothing to delete")
        return False
    require_own_realm(kc, slot)
    kc.delete_realm(slot.realm)
    reporter.change(f"realm {slot.realm} deleted")
    return True


def set_alias(
    kc: KeycloakAdapter, slot: Slot, praxisname: str, display_name: str, reporter: Reporter
) -> bool:
    """Move the public alias (rename): displayName and smartpraxx.praxisname, never the realm."""
    live = require_own_realm(kc, slot)
    attrs = live.get("attributes") or {}
    if live.get("displayName") == display_name and attrs.get(PRAXISNAME_ATTR) == praxisname:
        reporter.skip(f"realm {slot.realm} alias is {praxisname}, up to date")
        return False
    kc.update_realm(
        slot.realm,
        {"displayName": display_name, "attributes": {**attrs, PRAXISNAME_ATTR: praxisname}},
    )
    reporter.change(f"realm {slot.realm} alias set to {praxisname}")
    return True


def move_start_page_client(
    kc: KeycloakAdapter, slot: Slot, settings: Settings, praxisname: str, reporter: Reporter
) -> None:
    """Rename: the start page client's redirect and post-logout URIs follow the new path."""
    require_own_realm(kc, slot)
    want = start_page_client_payload(settings, praxisname)
    _converge_client(kc, slot.realm, want, kc.find_client(slot.realm, START_PAGE_CLIENT), reporter)


