"""The one door to Keycloak: admin REST through python-keycloak, plus a browser-style login.

``KeycloakAdapter`` holds one ``KeycloakAdmin`` authenticated as the master realm's admin
(``admin-cli``, password from the secret store's ``platform/keycloak-admin``). Every call goes
through ``_guard`` so that failures become the tool's errors:

* Keycloak unreachable → ``ServiceUnavailableError`` (hint: ``smartpraxx-provision dev-stack up``);
* admin credential refused → ``ExternalServiceError`` naming the admin user and the secret path;
* any other refusal → ``ExternalServiceError`` with Keycloak's HTTP status and error text.

Several nodes of a Keycloak cluster (``keycloak_url`` + ``keycloak_failover_urls``): a request
or token fetch that cannot connect or gets a 5xx goes to the next node, each node at most once
per request; the answering node stays active. Each failover is logged (logger
``smartpraxx.keycloak``, WARNING) with the failed node, the reason and the node that answered.

``mutations`` counts POST/PUT/DELETE requests sent to the admin API (read-only POSTs such as
the partial export are not counted), so tests can prove that a no-op converge changes nothing.

Ownership (DESIGN invariant 8): a view bound to one realm's owner (:meth:`KeycloakAdapter.
owned_by`) writes the owner attributes into the realm it creates and, before it reads into,
changes or deletes that realm, checks the realm's owner attributes: a realm of another
installation or practice, or one without owner attributes, is refused (SafetyRefusal, exit 1).

Messages never carry passwords, client secrets or staff data (usernames, names, e-mails).
An adapter is not thread-safe (it switches python-keycloak's current realm per call): give
each thread its own.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import requests
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import (
    KeycloakAuthenticationError,
    KeycloakConnectionError,
    KeycloakError,
)

from ..config import PRIMARY_SHARD, Settings
from ..domain.ownership import Owner, describe_owner, owner_from_realm, scan_hint, verdict
from ..errors import ExternalServiceError, SafetyRefusal, ServiceUnavailableError
from ..secrets import SecretStore, open_secret_store

ADMIN_SECRET = "platform/keycloak-admin"  # noqa: S105 - a path, not a secret
UP_HINT = "smartpraxx-provision dev-stack up"
# A realm DELETE through the master admin grows with the realm count (benchmarks/
# RESULTS-realms.md: 0.3 s at 0 realms, 20-42 s at 300), past the door's 30 s: its own bound.
REALM_DELETE_TIMEOUT = 300.0


def admin_secret(shard: str = PRIMARY_SHARD) -> str:
    """The secret store path of identity shard ``shard``'s admin password."""
    return ADMIN_SECRET if shard == PRIMARY_SHARD else f"{ADMIN_SECRET}-{shard}"


# answers that send a request to the next node of a cluster (besides connection errors)
FAILOVER_STATUS = frozenset({500, 502, 503, 504})
log = logging.getLogger("smartpraxx.keycloak")
_T = TypeVar("_T")


class _CountingConnection(KeycloakOpenIDConnection):
    """KeycloakOpenIDConnection that counts the mutating requests it sends and fails over
    between the nodes of a Keycloak cluster.

    ``nodes`` are the nodes' base URLs in order (the first is ``server_url``). A request (or a
    token fetch) that cannot connect or gets a 5xx goes to the next node, each node at most
    once per request; the node that answered stays the active one. Tokens stay valid across
    nodes (one realm key set in the shared database, one ``--hostname`` = one issuer)."""

    def __init__(self, *args: Any, nodes: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mutations = 0
        self.counting = True
        self.nodes = [n.rstrip("/") + "/" for n in nodes] or [str(self.server_url)]
        self.active = 0
        self.failovers: list[tuple[str, str, str]] = []  # (from node, to node, reason)
        self._in_failover = False

    @property
    def active_url(self) -> str:
        return self.nodes[self.active].rstrip("/")

    def _activate(self, index: int) -> None:
        self.active = index
        self.server_url = self.nodes[index]
        self._keycloak_openid = None  # the token endpoint follows the node

    def _failover(self, what: str, call: Callable[[], _T]) -> _T:
        if self._in_failover or len(self.nodes) == 1:
            return call()
        self._in_failover = True
        try:
            first = self.active
            for attempt in range(len(self.nodes)):
                if attempt:
                    self._activate((first + attempt) % len(self.nodes))
                last = attempt == len(self.nodes) - 1
                try:
                    result = call()
                except KeycloakConnectionError as exc:
                    if last:
                        raise
                    reason = f"no connection ({type(exc.__cause__ or exc).__name__})"
                except KeycloakError as exc:  # token endpoint errors arrive raised
                    code = getattr(exc, "response_code", None)
                    if last or code not in FAILOVER_STATUS:
                        raise
                    reason = f"HTTP {code}"
                else:
                    code = getattr(result, "status_code", None)
                    if last or code not in FAILOVER_STATUS:
                        if attempt:
                            log.warning("Keycloak node %s answered (%s)", self.active_url, what)
                        return result
                    reason = f"HTTP {code}"
                nxt = self.nodes[(first + attempt + 1) % len(self.nodes)].rstrip("/")
                self.failovers.append((self.active_url, nxt, reason))
                log.warning(
                    "Keycloak node %s failed (%s: %s); trying node %s",
                    self.active_url, what, reason, nxt,
                )
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._in_failover = False

    def _count(self) -> None:
        if self.counting:
            self.mutations += 1

    def get_token(self) -> None:
        self._failover("token", super().get_token)

    def refresh_token(self) -> None:
        self._failover("token refresh", super().refresh_token)

    def _mutation(
        self, method: str, call: Callable[..., requests.Response], *args: Any, **kwargs: Any
    ) -> requests.Response:
        """A counted mutating request ``call(*args, **kwargs)``, failed over like any other."""
        self._count()
        return self._failover(method, lambda: call(*args, **kwargs))

    def raw_get(self, *args: Any, **kwargs: Any) -> requests.Response:
        call = super().raw_get
        return self._failover("GET", lambda: call(*args, **kwargs))

    def raw_post(self, *args: Any, **kwargs: Any) -> requests.Response:
        return self._mutation("POST", super().raw_post, *args, **kwargs)

    def raw_put(self, *args: Any, **kwargs: Any) -> requests.Response:
        return self._mutation("PUT", super().raw_put, *args, **kwargs)

    def raw_delete(self, *args: Any, **kwargs: Any) -> requests.Response:
        return self._mutation("DELETE", super().raw_delete, *args, **kwargs)


def _node_list(url: str, failover_urls: Sequence[str]) -> list[str]:
    """``url`` first, then the other nodes in order, each once."""
    nodes = [url.rstrip("/")]
    for other in failover_urls:
        if other.strip() and other.rstrip("/") not in nodes:
            nodes.append(other.rstrip("/"))
    return nodes


def _keycloak_message(exc: KeycloakError) -> str:
    body = getattr(exc, "response_body", None) or b""
    text = ""
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            text = str(
                data.get("errorMessage") or data.get("error_description") or data.get("error") or ""
            )
            params = data.get("params")
            if isinstance(params, list) and params and text.startswith("error-"):
                # user-profile validation: params[0] is the attribute name (never a value)
                text = f"{text} ({params[0]})"
    except (ValueError, TypeError):
        text = ""
    if not text:
        text = str(getattr(exc, "error_message", "") or exc)
    return text[:200]


class ConnectOptions(TypedDict, total=False):
    """How the door reaches Keycloak, whoever logs in (the master admin, a service account)."""

    timeout: float  # seconds a request may take (default 30)
    failover_urls: Sequence[str]  # the other nodes of a cluster, tried in order (default none)


class KeycloakAdapter:
    """Admin access to one Keycloak (master realm admin)."""

    def __init__(
        self, url: str, admin_user: str, admin_password: str, **options: Unpack[ConnectOptions]
    ) -> None:
        self._connect(
            url,
            admin_user,
            options,
            username=admin_user,
            password=admin_password,
            realm_name="master",
            user_realm_name="master",
            client_id="admin-cli",
        )

    def _connect(self, url: str, admin_user: str, options: ConnectOptions, **login: str) -> None:
        """The admin client of ``url`` (and its failover nodes), acting as ``admin_user`` and
        logging in with ``login`` (KeycloakOpenIDConnection's realm and credential fields)."""
        self.url = url.rstrip("/")
        self.admin_user = admin_user
        self.urls = _node_list(self.url, options.get("failover_urls", ()))
        self._connection = _CountingConnection(
            server_url=self.url + "/",
            nodes=self.urls,
            timeout=max(1, int(options.get("timeout", 30.0))),
            max_retries=1,
            **login,
        )
        self.admin = KeycloakAdmin(connection=self._connection)

    shard: str = PRIMARY_SHARD  # the identity shard this door reaches (from_settings)
    # the realm owner of an owner-bound view (see owned_by); None on the plain adapter
    owner: Owner | None = None
    owner_realm: str | None = None
    owner_host: str = ""
    adopt_unlabelled: bool = False
    _owner_checked: bool = False

    def owned_by(
        self, realm: str, owner: Owner, *, host: str = "", adopt_unlabelled: bool = False
    ) -> KeycloakAdapter:
        """A view (same connection) that acts on ``realm`` only as ``owner``.

        ``adopt_unlabelled`` (provision --adopt) accepts a realm without any owner
        attributes once; the next write of its attributes gives it ours. A foreign owner is
        never accepted."""
        view = copy.copy(self)
        view.owner, view.owner_realm, view.owner_host = owner, realm, host
        view.adopt_unlabelled = adopt_unlabelled
        view._owner_checked = False
        return view

    def _check_realm_owner(self, realm: str, live: dict[str, Any]) -> None:
        if self.owner is None or realm != self.owner_realm:
            return
        found = owner_from_realm(live.get("attributes"))
        v = verdict(found, self.owner)
        if v == "ours":
            self._owner_checked = True
            return
        if v == "unlabelled" and self.adopt_unlabelled:
            attrs = {**(live.get("attributes") or {}), **self.owner.realm_attributes()}
            with self._guard(f"update realm {realm}"):
                self.admin.update_realm(realm, {"attributes": attrs})
            live["attributes"] = attrs
            self._owner_checked = True
            return
        raise SafetyRefusal(
            f"realm {realm} on {self.url} is {v} ({describe_owner(found)}), not this "
            f"practice's ({self.owner.describe()}); nothing was changed",
            obj=f"realm {realm}",
            hint=f"see whose it is: {scan_hint(self.owner_host or realm.split('-')[-1])}; "
            "after restoring an inventory backup, adopt deliberately with: "
            "smartpraxx-provision practices adopt <praxisname> --yes",
            details={
                "object": realm,
                "kind": "realm",
                "verdict": v,
                "owner": None if found is None else found.realm_attributes(),
            },
        )

    def _require_owner_once(self, realm: str) -> None:
        if self.owner is None or realm != self.owner_realm or self._owner_checked:
            return
        self.get_realm(realm)  # checks when the realm exists

    def _with_owner(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.owner is None or payload.get("realm", self.owner_realm) != self.owner_realm:
            return payload
        attrs = dict(payload.get("attributes") or {})
        attrs.update(self.owner.realm_attributes())
        return {**payload, "attributes": attrs}

    @classmethod
    def from_settings(
        cls, settings: Settings, secrets: SecretStore | None = None, shard: str = PRIMARY_SHARD
    ) -> KeycloakAdapter:
        """The admin door of identity shard ``shard`` (default: the primary, keycloak_url)."""
        store = secrets or open_secret_store(settings)
        nodes = settings.identity_shard(shard).urls
        password = store.require(admin_secret(shard))
        adapter = cls(
            nodes[0],
            settings.keycloak_admin_user,
            password,
            timeout=settings.keycloak_timeout,
            failover_urls=nodes[1:],
        )
        adapter.shard = shard
        adapter.connect()
        return adapter

    @classmethod
    def service_account(
        cls,
        url: str,
        realm: str,
        client_id: str,
        client_secret: str,
        **options: Unpack[ConnectOptions],
    ) -> KeycloakAdapter:
        """Admin access scoped to ONE realm: the service account of a confidential client in
        that realm (client-credentials grant) holding ``realm-management`` roles. Its token is
        issued by that realm and reaches only ``/admin/realms/<realm>/...``."""
        adapter = cls.__new__(cls)
        adapter._connect(
            url,
            f"service-account-{client_id}",
            options,
            realm_name=realm,
            user_realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
        )
        return adapter

    def realm_reader(self, realm: str, client_id: str, client_secret: str) -> KeycloakAdapter:
        """``service_account`` of ``realm`` on the same nodes with the same timeout."""
        return KeycloakAdapter.service_account(
            self.url, realm, client_id, client_secret,
            timeout=float(self._connection.timeout or 30), failover_urls=self.urls[1:],
        )

    # --- plumbing ------------------------------------------------------------------------

    @property
    def active_url(self) -> str:
        """The node the last request went to (the first that answered)."""
        return self._connection.active_url

    @property
    def failovers(self) -> list[tuple[str, str, str]]:
        """(failed node, next node, reason) of every failover so far."""
        return self._connection.failovers

    def _unreachable(self) -> str:
        if len(self.urls) == 1:
            return f"Keycloak at {self.url} cannot be reached"
        return f"Keycloak cannot be reached on any of its nodes {', '.join(self.urls)}"

    @property
    def mutations(self) -> int:
        """Mutating admin requests (POST/PUT/DELETE) sent so far."""
        return self._connection.mutations

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except KeycloakAuthenticationError as exc:
            raise ExternalServiceError(
                f"Keycloak at {self.url} refused the admin credential of user "
                f"{self.admin_user!r} (master realm) while trying to {what}",
                obj=self.url,
                hint=f"check the secret {admin_secret(self.shard)} and the setting "
                "keycloak_admin_user ('smartpraxx-provision dev-stack status' for the local stack)",
            ) from exc
        except KeycloakConnectionError as exc:
            raise ServiceUnavailableError(
                f"{self._unreachable()} (trying to {what})",
                obj=self.url,
                hint=UP_HINT,
            ) from exc
        except KeycloakError as exc:
            code = getattr(exc, "response_code", None)
            raise ExternalServiceError(
                f"Keycloak refused to {what}: HTTP {code} {_keycloak_message(exc)}",
                obj=self.url,
                details={"status": code},
            ) from exc
        except requests.RequestException as exc:
            raise ServiceUnavailableError(
                f"{self._unreachable()} (trying to {what}): "
                f"{type(exc).__name__}",
                obj=self.url,
                hint=UP_HINT,
            ) from exc

    def connect(self) -> None:
        """Fetch an admin token now (fails early on a wrong credential or a down server)."""
        with self._guard("log in as admin"):
            self._connection.get_token()

    def _use(self, realm: str) -> KeycloakAdmin:
        self._require_owner_once(realm)
        self.admin.change_current_realm(realm)
        return self.admin

    def _in_realm(self, realm: str, action: str, call: Callable[[KeycloakAdmin], _T]) -> _T:
        """``call`` on the admin client switched to ``realm`` (owner checked once), its
        failures turned into the tool's errors naming what was tried: "``action`` in realm
        ``realm``" (e.g. "create a group in realm r")."""
        return self._realm_call(realm, f"{action} in realm {realm}", call)

    def _of_realm(self, realm: str, action: str, call: Callable[[KeycloakAdmin], _T]) -> _T:
        """As ``_in_realm`` for what belongs to the realm itself: "``action`` of realm
        ``realm``" (e.g. "list clients of realm r")."""
        return self._realm_call(realm, f"{action} of realm {realm}", call)

    def _realm_call(self, realm: str, what: str, call: Callable[[KeycloakAdmin], _T]) -> _T:
        with self._guard(what):
            return call(self._use(realm))

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        params: dict[str, Any] | None = None,
        what: str,
        expected: tuple[int, ...] = (200, 201, 204),
        allow_404: bool = False,
        mutating: bool = True,
    ) -> Any:
        """Raw admin REST call (for what python-keycloak lacks). ``path`` is relative to the
        server, e.g. ``admin/realms/x/users/profile``. Returns parsed JSON, None for no body,
        or None on 404 when ``allow_404``."""
        if self.owner_realm is not None and path.startswith(
            f"admin/realms/{quote(self.owner_realm)}/"
        ):
            self._require_owner_once(self.owner_realm)
        conn = self._connection
        params = {k: v for k, v in (params or {}).items() if v is not None}
        conn.counting = mutating
        try:
            with self._guard(what):
                if method == "GET":
                    resp = conn.raw_get(path, **params)
                elif method == "POST":
                    resp = conn.raw_post(path, data=json.dumps(payload), **params)
                elif method == "PUT":
                    resp = conn.raw_put(path, data=json.dumps(payload), **params)
                elif method == "DELETE":
                    resp = conn.raw_delete(path, **params)
                else:  # pragma: no cover - programming error
                    raise ValueError(method)
        finally:
            conn.counting = True
        if allow_404 and resp.status_code == 404:
            return None
        if resp.status_code == 401:
            with self._guard(what):
                raise KeycloakAuthenticationError(
                    error_message="unauthorized", response_code=401, response_body=resp.content
                )
        if resp.status_code not in expected:
            raise ExternalServiceError(
                f"Keycloak refused to {what}: HTTP {resp.status_code} "
                f"{_keycloak_message(KeycloakError(response_body=resp.content))}",
                obj=self.url,
                details={"status": resp.status_code},
            )
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.content

    # --- realms --------------------------------------------------------------------------

    def realms(self) -> list[dict[str, Any]]:
        """Every realm's representation, with its attributes (one admin call)."""
        with self._guard("list realms"):
            return list(self.admin.get_realms())

    def realm_names(self) -> list[str]:
        """Every realm's name (the brief listing: 0.55 s at 300 realms, the full one 8.2 s)."""
        found: list[dict[str, Any]] = self.request(
            "GET", "admin/realms", params={"briefRepresentation": "true"}, what="list realms")
        return [str(r["realm"]) for r in found]

    def get_realm(self, realm: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.request(
            "GET", f"admin/realms/{quote(realm)}", what=f"read realm {realm}", allow_404=True
        )
        if found is not None:
            self._check_realm_owner(realm, found)
        return found

    def create_realm(self, payload: dict[str, Any]) -> None:
        with self._guard(f"create realm {payload.get('realm')}"):
            self.admin.create_realm(self._with_owner(payload), skip_exists=False)
        if payload.get("realm") == self.owner_realm:
            self._owner_checked = True

    def update_realm(self, realm: str, payload: dict[str, Any]) -> None:
        self._require_owner_once(realm)
        if realm == self.owner_realm and "attributes" in payload:
            payload = self._with_owner(payload)
        with self._guard(f"update realm {realm}"):
            self.admin.update_realm(realm, payload)

    def delete_realm(self, realm: str) -> None:
        if realm == self.owner_realm:
            self._owner_checked = False
            if self.get_realm(realm) is None:  # checks the owner right before deleting
                return
        with self._guard(f"delete realm {realm}"), self._timeout_at_least(REALM_DELETE_TIMEOUT):
            self.admin.delete_realm(realm)

    @contextlib.contextmanager
    def _timeout_at_least(self, seconds: float) -> Iterator[None]:
        """Requests inside wait up to ``seconds`` (never less than the door's own timeout)."""
        before = self._connection.timeout
        self._connection.timeout = max(int(seconds), int(before or 0))
        try:
            yield
        finally:
            self._connection.timeout = before

    def partial_export(self, realm: str) -> dict[str, Any]:
        """Realm, clients, groups and roles; Keycloak masks secrets in a partial export."""
        exported: dict[str, Any] = self.request(
            "POST",
            f"admin/realms/{quote(realm)}/partial-export",
            None,
            params={"exportClients": "true", "exportGroupsAndRoles": "true"},
            what=f"export realm {realm}",
            mutating=False,
        )
        return exported

    # --- user profile --------------------------------------------------------------------

    def get_user_profile(self, realm: str) -> dict[str, Any]:
        return self._of_realm(
            realm, "read the user profile", lambda admin: admin.get_realm_users_profile()
        )

    def update_user_profile(self, realm: str, config: dict[str, Any]) -> None:
        self._of_realm(
            realm, "update the user profile", lambda admin: admin.update_realm_users_profile(config)
        )

    # --- roles and groups ----------------------------------------------------------------

    def realm_roles(self, realm: str) -> list[dict[str, Any]]:
        return self._of_realm(
            realm, "list roles", lambda admin: admin.get_realm_roles(brief_representation=False)
        )

    def create_realm_role(self, realm: str, payload: dict[str, Any]) -> None:
        self._in_realm(realm, "create a role", lambda admin: admin.create_realm_role(payload))

    def update_realm_role(self, realm: str, name: str, payload: dict[str, Any]) -> None:
        self._in_realm(
            realm, f"update role {name}", lambda admin: admin.update_realm_role(name, payload)
        )

    def role_member_ids(self, realm: str, role: str) -> set[str]:
        members = self._in_realm(
            realm,
            f"list members of role {role}",
            lambda admin: admin.get_realm_role_members(role, query={"briefRepresentation": True}),
        )
        return {m["id"] for m in members}

    def assign_realm_roles(self, realm: str, user_id: str, roles: list[dict[str, Any]]) -> None:
        self._in_realm(
            realm, "assign roles", lambda admin: admin.assign_realm_roles(user_id, roles)
        )

    def remove_realm_roles(self, realm: str, user_id: str, roles: list[dict[str, Any]]) -> None:
        self._in_realm(
            realm, "remove roles", lambda admin: admin.delete_realm_roles_of_user(user_id, roles)
        )

    def groups(self, realm: str) -> list[dict[str, Any]]:
        """Top-level groups (briefRepresentation=false: with attributes)."""
        groups: list[dict[str, Any]] = self.request(
            "GET",
            f"admin/realms/{quote(realm)}/groups",
            params={"briefRepresentation": "false", "max": 1000},
            what=f"list groups of realm {realm}",
        )
        return groups

    def create_group(self, realm: str, payload: dict[str, Any]) -> None:
        self._in_realm(realm, "create a group", lambda admin: admin.create_group(payload))

    def update_group(self, realm: str, group_id: str, payload: dict[str, Any]) -> None:
        self._in_realm(realm, "update a group", lambda admin: admin.update_group(group_id, payload))

    def group_member_ids(self, realm: str, group_id: str) -> set[str]:
        members = self.request(
            "GET",
            f"admin/realms/{quote(realm)}/groups/{group_id}/members",
            params={"briefRepresentation": "true", "max": 10000},
            what=f"list group members in realm {realm}",
        )
        return {m["id"] for m in members}

    def add_to_group(self, realm: str, user_id: str, group_id: str) -> None:
        self._in_realm(
            realm, "add a user to a group", lambda admin: admin.group_user_add(user_id, group_id)
        )

    def remove_from_group(self, realm: str, user_id: str, group_id: str) -> None:
        self._in_realm(
            realm,
            "remove a user from a group",
            lambda admin: admin.group_user_remove(user_id, group_id),
        )

    # --- users ---------------------------------------------------------------------------

    def users(self, realm: str) -> list[dict[str, Any]]:
        """All users with attributes (service accounts are not listed by Keycloak)."""
        out: list[dict[str, Any]] = []
        page = 500
        for first in range(0, 1_000_000, page):  # bounded: at most 2000 pages
            batch = self.request(
                "GET",
                f"admin/realms/{quote(realm)}/users",
                params={"briefRepresentation": "false", "first": first, "max": page},
                what=f"list users of realm {realm}",
            )
            out.extend(batch)
            if len(batch) < page:
                break
        return out

    def get_user(self, realm: str, user_id: str) -> dict[str, Any]:
        return self._of_realm(realm, "read a user", lambda admin: admin.get_user(user_id))

    def find_user_id(self, realm: str, username: str) -> str | None:
        found = self.request(
            "GET",
            f"admin/realms/{quote(realm)}/users",
            params={"username": username, "exact": "true", "briefRepresentation": "true"},
            what=f"look up a user in realm {realm}",
        )
        return str(found[0]["id"]) if found else None

    def create_user(self, realm: str, payload: dict[str, Any]) -> str:
        return str(
            self._in_realm(
                realm, "create a user", lambda admin: admin.create_user(payload, exist_ok=False)
            )
        )

    def update_user(self, realm: str, user_id: str, payload: dict[str, Any]) -> None:
        self._in_realm(realm, "update a user", lambda admin: admin.update_user(user_id, payload))

    def delete_user(self, realm: str, user_id: str) -> None:
        self._in_realm(realm, "delete a user", lambda admin: admin.delete_user(user_id))

    def set_password(self, realm: str, user_id: str, password: str, *, temporary: bool) -> None:
        self._in_realm(
            realm,
            "set a user's password",
            lambda admin: admin.set_user_password(user_id, password, temporary=temporary),
        )

    def send_actions_email(
        self,
        realm: str,
        user_id: str,
        actions: list[str],
        *,
        client_id: str | None = None,
        redirect_uri: str | None = None,
        lifespan: int | None = None,
    ) -> None:
        """``PUT .../users/{id}/execute-actions-email``: Keycloak mails the user a link (an
        action token of the realm, valid ``lifespan`` seconds) that runs ``actions``. Keycloak
        answers 500 when its SMTP server refuses or cannot be reached."""
        self.request(
            "PUT",
            f"admin/realms/{quote(realm)}/users/{quote(user_id)}/execute-actions-email",
            actions,
            params={"client_id": client_id, "redirect_uri": redirect_uri, "lifespan": lifespan},
            what=f"send an execute-actions e-mail in realm {realm}",
        )

    # --- clients -------------------------------------------------------------------------

    def clients(self, realm: str) -> list[dict[str, Any]]:
        return self._of_realm(realm, "list clients", lambda admin: admin.get_clients())

    def find_client(self, realm: str, client_id: str) -> dict[str, Any] | None:
        """One client by its clientId (with protocol mappers), None when absent."""
        found = self.request(
            "GET",
            f"admin/realms/{quote(realm)}/clients",
            params={"clientId": client_id, "search": "false"},
            what=f"read client {client_id} of realm {realm}",
        )
        return dict(found[0]) if found else None

    def create_client(self, realm: str, payload: dict[str, Any]) -> str:
        return str(
            self._in_realm(
                realm,
                f"create client {payload.get('clientId')}",
                lambda admin: admin.create_client(payload),
            )
        )

    def update_client(self, realm: str, client_uuid: str, payload: dict[str, Any]) -> None:
        self._in_realm(
            realm,
            f"update client {payload.get('clientId')}",
            lambda admin: admin.update_client(client_uuid, payload),
        )

    def delete_client(self, realm: str, client_uuid: str) -> None:
        self._in_realm(realm, "delete a client", lambda admin: admin.delete_client(client_uuid))

    def client_secret(self, realm: str, client_uuid: str) -> str | None:
        data = self._in_realm(
            realm, "read a client secret", lambda admin: admin.get_client_secrets(client_uuid)
        )
        value = data.get("value") if isinstance(data, dict) else None
        return str(value) if value else None

    def add_client_mapper(self, realm: str, client_uuid: str, payload: dict[str, Any]) -> None:
        self._in_realm(
            realm,
            "add a protocol mapper",
            lambda admin: admin.add_mapper_to_client(client_uuid, payload),
        )

    def update_client_mapper(
        self, realm: str, client_uuid: str, mapper_id: str, payload: dict[str, Any]
    ) -> None:
        self._in_realm(
            realm,
            "update a protocol mapper",
            lambda admin: admin.update_client_mapper(client_uuid, mapper_id, payload),
        )


# --- without an admin session ------------------------------------------------------------


def admin_login_ok(url: str, user: str, password: str, *, timeout: float = 10.0) -> bool:
    """True when the master realm's ``admin-cli`` grants ``user`` a token with ``password``."""
    try:
        resp = requests.post(
            f"{url.rstrip('/')}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": user,
                "password": password,
            },
            timeout=timeout,
        )
    except requests.RequestException:
        return False
    return resp.status_code == 200 and "access_token" in resp.text


def discovery_object(doc: Any) -> dict[str, Any]:
    """A parsed OIDC discovery document; ValueError when it is not a JSON object."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def discovery_document(url: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """GET the OIDC discovery document at ``url`` (the smoke check reads the one a
    Nextcloud is configured with). Raises requests' errors (OSError family) or ValueError
    (not JSON, not a JSON object)."""
    return discovery_object(requests.get(url, timeout=timeout).json())
