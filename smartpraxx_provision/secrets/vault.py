"""HashiCorp Vault KV v2 backend (via hvac) for a team of operators.

Each secret path is one KV v2 entry ``<vault_prefix>/<path>`` on the mount ``vault_mount``
holding ``{"value": "<secret>"}``. Authentication: a token (``SMARTPRAXX_VAULT_TOKEN``) or
AppRole (``vault_role_id`` + ``SMARTPRAXX_VAULT_SECRET_ID``); both secrets come from the
environment only.

``ensure`` is generate-once even with concurrent writers on several machines: the first
write uses check-and-set ``cas=0`` ("only if the key does not exist"); the loser of a race
gets Vault's check-and-set error and reads the winner's value. ``delete(prefix)`` walks the
metadata tree with LIST and deletes metadata and all versions of every key below it.

Token lifetime: before every request the store checks the remaining TTL of its token (learnt
from the AppRole login, a renewal, or one ``lookup-self`` for a given token). When it falls
under the threshold (a third of the TTL granted at login, or ``renew_below`` seconds) it calls
``auth/token/renew-self``; when the token is not renewable, or the renewal is capped by the
token's max TTL so that it would still expire soon, it logs in again with AppRole. A given
token (``vault_auth: token``) that cannot be renewed is used until it expires; Vault's refusal
then names SMARTPRAXX_VAULT_TOKEN. A token without TTL (root, TTL 0) is never renewed. An
AppRole token refused while ``lookup-self`` says it is dead (revoked early, or the host
slept past its TTL) gets one new login and one retry; a policy refusal is never retried.

Tested against a real OpenBao server (Vault's API; ``tests/integration/test_vault_store.py``),
with the least-privilege policy of ``deploy/vault/smartpraxx-policy.hcl``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from ..config import Settings
from ..errors import ConfigError, ExternalServiceError, SecretStoreError, ServiceUnavailableError
from .base import SecretStore, check_path, generate_token

TIMEOUT_SECONDS = 30
MAX_LIST_DEPTH = 16  # secret paths are shallow (practices/<slot>/<name>); bound the walk
_T = TypeVar("_T")
RENEW_FRACTION = 1 / 3  # renew when less than this share of the granted TTL is left


class VaultSecretStore(SecretStore):
    backend = "vault"

    def __init__(
        self,
        client: Any,
        *,
        mount: str,
        prefix: str,
        url: str = "",
        approle: tuple[str, str] | None = None,
        renew_below: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/")
        self.url = url
        self._approle = approle  # (role_id, secret_id) for re-login; never logged
        self._renew_below = renew_below
        self._clock = clock
        self._lock = threading.RLock()
        self._known = False  # token lifetime learnt (login, renewal or lookup-self)
        self._expires_at: float | None = None  # None: the token does not expire
        self._granted_ttl = 0.0
        self._renewable = False
        self.renewals = 0  # counters for logs and tests: renew-self calls, AppRole logins
        self.logins = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultSecretStore:
        """A logged-in store from the settings (token or AppRole auth)."""
        if settings.vault_auth == "token":
            if not settings.vault_token:
                raise ConfigError(
                    "secrets_backend is vault with token auth, but no token is set",
                    obj="SMARTPRAXX_VAULT_TOKEN",
                    hint="export SMARTPRAXX_VAULT_TOKEN=... (or set vault_auth: approle)",
                )
            client = hvac.Client(
                url=settings.vault_url, token=settings.vault_token, timeout=TIMEOUT_SECONDS
            )
        elif settings.vault_auth == "approle":
            if not settings.vault_role_id or not settings.vault_secret_id:
                raise ConfigError(
                    "vault_auth is approle, but the role id or the secret id is missing",
                    obj="vault_role_id / SMARTPRAXX_VAULT_SECRET_ID",
                    hint="set vault_role_id in smartpraxx.yaml and export SMARTPRAXX_VAULT_SECRET_ID",
                )
            client = hvac.Client(url=settings.vault_url, timeout=TIMEOUT_SECONDS)
            store = cls(
                client,
                mount=settings.vault_mount,
                prefix=settings.vault_prefix,
                url=settings.vault_url,
                approle=(settings.vault_role_id, settings.vault_secret_id),
            )
            store.login()
            return store
        else:
            raise ConfigError(
                f"unknown vault_auth {settings.vault_auth!r}",
                obj="setting vault_auth",
                hint="use 'token' or 'approle'",
            )
        return cls(
            client,
            mount=settings.vault_mount,
            prefix=settings.vault_prefix,
            url=settings.vault_url,
        )

    # --- token lifetime ----------------------------------------------------------------
    def _track(self, auth: Any) -> None:
        """Remember the lifetime of the token an auth response (login/renewal) describes."""
        ttl = float((auth or {}).get("lease_duration") or 0)
        self._renewable = bool((auth or {}).get("renewable"))
        self._expires_at = None if ttl <= 0 else self._clock() + ttl
        self._known = True

    def _threshold(self) -> float:
        if self._renew_below is not None:
            return self._renew_below
        return self._granted_ttl * RENEW_FRACTION

    def login(self) -> None:
        """AppRole login (also the re-login when the token cannot be renewed any further)."""
        if self._approle is None:
            raise SecretStoreError(
                "no AppRole credentials to log in to Vault with",
                obj=f"vault {self.url}",
                hint="set vault_auth: approle with vault_role_id and SMARTPRAXX_VAULT_SECRET_ID",
            )
        role_id, secret_id = self._approle
        with self._lock, self._errors("auth/approle/login"):
            resp = self.client.auth.approle.login(role_id=role_id, secret_id=secret_id)
            auth = (resp or {}).get("auth") or {}
            self._track(auth)
            self._granted_ttl = float(auth.get("lease_duration") or 0)
            self.logins += 1

    def _lookup(self) -> None:
        """Learn a given token's lifetime once (``lookup-self``); unknown counts as lasting."""
        with self._errors("auth/token/lookup-self"):
            try:
                data = (self.client.auth.token.lookup_self() or {}).get("data") or {}
            except hvac.exceptions.Forbidden:
                data = {}  # no lookup-self capability: leave the token as it is
        ttl = float(data.get("ttl") or 0)
        self._renewable = bool(data.get("renewable"))
        self._expires_at = None if ttl <= 0 else self._clock() + ttl
        self._granted_ttl = float(data.get("creation_ttl") or ttl)
        self._known = True

    def fresh_token(self) -> None:
        """Renew the token (or log in again) when its remaining TTL falls under the threshold."""
        with self._lock:
            if not self._known:
                self._lookup()
            if self._expires_at is None:
                return
            remaining = self._expires_at - self._clock()
            if remaining > self._threshold():
                return
            if self._renewable and remaining > 0:
                with self._errors("auth/token/renew-self"):
                    try:
                        resp = self.client.auth.token.renew_self()
                    except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
                        resp = None  # not renewable after all (or no renew-self capability)
                if resp is not None:
                    self.renewals += 1
                    self._track((resp or {}).get("auth"))
                    if self._expires_at is None or (
                        self._expires_at - self._clock() > self._threshold()
                    ):
                        return
                    # the renewal was capped by the token's max TTL: it expires soon anyway
                else:
                    self._renewable = False
            if self._approle is not None:
                self.login()

    # --- helpers -----------------------------------------------------------------------
    def _full(self, path: str) -> str:
        return "/".join(part for part in (self.prefix, path.strip("/")) if part)

    @property
    def _kv(self) -> Any:
        return self.client.secrets.kv.v2

    @contextlib.contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        """Map hvac/requests failures to the tool's errors (never with a token or value)."""
        if path.startswith("auth/"):
            where = f"vault {self.url or ''}/v1/{path}"
        elif path:
            where = f"vault {self.mount}/{self._full(path)}"
        else:
            where = f"vault {self.url}"
        try:
            yield
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            raise SecretStoreError(
                f"Vault refused access to {where} ({type(exc).__name__})",
                obj=where,
                hint="check SMARTPRAXX_VAULT_TOKEN (or the AppRole) and its policy "
                f"on {self.mount}/data/{self.prefix}/*",
            ) from exc
        except hvac.exceptions.InvalidRequest as exc:
            raise SecretStoreError(
                f"Vault rejected the request for {where}",
                obj=where,
                hint="check the AppRole credentials, the mount (vault_mount) and that it is KV v2",
            ) from exc
        except (
            hvac.exceptions.VaultDown,
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
        ) as exc:
            raise ServiceUnavailableError(
                f"Vault at {self.url} cannot be reached or is sealed",
                obj=self.url or where,
                hint="check vault_url and that Vault is unsealed",
            ) from exc
        except hvac.exceptions.VaultError as exc:
            raise ExternalServiceError(
                f"Vault failed the request for {where} ({type(exc).__name__})", obj=where
            ) from exc

    def _token_alive(self) -> bool:
        try:
            self.client.auth.token.lookup_self()
        except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
            return False
        return True

    def _call(self, path: str, request: Callable[[], _T]) -> _T:
        """One KV request: a fresh token first, then the error mapping. A refusal because the
        AppRole token died before its time (revoked, or the host slept past its TTL) is
        answered by one new login and one retry; a refusal by the policy is reported."""
        self.fresh_token()
        with self._errors(path):
            try:
                return request()
            except hvac.exceptions.Forbidden:
                if self._approle is None or self._token_alive():
                    raise
            self.login()
            return request()

    def _read(self, path: str) -> str | None:
        def read() -> Any:
            try:
                return self._kv.read_secret_version(
                    path=self._full(path), mount_point=self.mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return None

        resp = self._call(path, read)
        value = ((resp or {}).get("data") or {}).get("data", {}).get("value")
        if value is None:
            return None
        if not isinstance(value, str):
            raise SecretStoreError(f"Vault entry {path} is not a smartpraxx secret", obj=path)
        return value

    def _keys(self, folder: str) -> list[str]:
        def keys() -> Any:
            try:
                return self._kv.list_secrets(path=self._full(folder), mount_point=self.mount)
            except hvac.exceptions.InvalidPath:
                return None

        resp = self._call(folder, keys)
        return [str(k) for k in ((resp or {}).get("data") or {}).get("keys", [])]

    # --- SecretStore -------------------------------------------------------------------
    def get(self, path: str) -> str | None:
        return self._read(check_path(path))

    def put(self, path: str, value: str) -> None:
        check_path(path)
        self._call(
            path,
            lambda: self._kv.create_or_update_secret(
                path=self._full(path), secret={"value": value}, mount_point=self.mount
            ),
        )

    def ensure(self, path: str, generator: Callable[[], str] = generate_token) -> str:
        check_path(path)
        existing = self._read(path)
        if existing is not None:
            return existing
        value = generator()

        def create() -> bool:
            try:
                self._kv.create_or_update_secret(
                    path=self._full(path),
                    secret={"value": value},
                    cas=0,
                    mount_point=self.mount,
                )
            except hvac.exceptions.InvalidRequest:
                return False  # check-and-set lost: another writer created it first
            return True

        if self._call(path, create):
            return value
        stored = self._read(path)  # the other writer's value
        if stored is not None:
            return stored
        raise SecretStoreError(  # the path holds only deleted versions: check-and-set refuses
            f"secret {path} exists in Vault only as deleted versions",
            obj=path,
            hint=f"vault kv metadata delete -mount={self.mount} {self._full(path)}, re-run",
        )

    def list(self, prefix: str) -> list[str]:
        prefix = prefix.strip("/")
        out: list[str] = []
        if prefix:
            parent, _, leaf = prefix.rpartition("/")
            if leaf in self._keys(parent):
                out.append(prefix)  # the prefix is itself a secret
        pending: list[tuple[str, int]] = [(prefix, 0)]
        while pending:
            folder, depth = pending.pop()
            for key in self._keys(folder):
                child = f"{folder}/{key}" if folder else key
                if key.endswith("/"):
                    if depth + 1 >= MAX_LIST_DEPTH:
                        raise SecretStoreError(f"Vault tree below {prefix} is too deep", obj=child)
                    pending.append((child.rstrip("/"), depth + 1))
                else:
                    out.append(child)
        return sorted(out)

    def _delete_all_versions(self, path: str) -> None:
        self._kv.delete_metadata_and_all_versions(path=self._full(path), mount_point=self.mount)

    def delete(self, prefix: str) -> int:
        prefix = prefix.strip("/")
        if not prefix:
            raise SecretStoreError(
                "refusing to delete every secret of the store",
                obj=f"vault {self.mount}",
                hint="name a prefix such as practices/nc07-cloud023",
            )
        paths = self.list(prefix)
        for path in paths:
            self._call(path, functools.partial(self._delete_all_versions, path))
        return len(paths)
