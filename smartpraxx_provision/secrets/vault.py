"""HashiCorp Vault KV v2 backend (via hvac) for a team of operators.

Each secret path is one KV v2 entry ``<vault_prefix>/<path>`` on the mount ``vault_mount``
holding ``{"value": "<secret>"}``. Authentication: a token (``SMARTPRAXX_VAULT_TOKEN``) or
AppRole (``vault_role_id`` + ``SMARTPRAXX_VAULT_SECRET_ID``); both secrets come from the
environment only.

``ensure`` is generate-once even with concurrent writers on several machines: the first
write uses check-and-set ``cas=0`` ("only if the key does not exist"); the loser of a race
gets Vault's check-and-set error and reads the winner's value. ``delete(prefix)`` walks the
metadata tree with LIST and deletes metadata and all versions of every key below it.

No Vault server can run on the machines this was built on: the adapter is tested at the
HTTP level against a Vault API double (``tests/unit/test_vault_store.py``) that answers
Vault's documented KV v2 and AppRole routes. Run it against a real Vault before relying on
it in production.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import hvac
import hvac.exceptions
import requests

from ..config import Settings
from ..errors import ConfigError, ExternalServiceError, SecretStoreError, ServiceUnavailableError
from .base import SecretStore, check_path, generate_token

TIMEOUT_SECONDS = 30
MAX_LIST_DEPTH = 16  # secret paths are shallow (practices/<slot>/<name>); bound the walk


class VaultSecretStore(SecretStore):
    backend = "vault"

    def __init__(self, client: Any, *, mount: str, prefix: str, url: str = "") -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/")
        self.url = url

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
            )
            with store._errors("auth/approle/login"):
                client.auth.approle.login(
                    role_id=settings.vault_role_id, secret_id=settings.vault_secret_id
                )
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

    # --- helpers -----------------------------------------------------------------------
    def _full(self, path: str) -> str:
        return "/".join(part for part in (self.prefix, path.strip("/")) if part)

    @property
    def _kv(self) -> Any:
        return self.client.secrets.kv.v2

    @contextlib.contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        """Map hvac/requests failures to the tool's errors (never with a token or value)."""
        where = f"vault {self.mount}/{self._full(path)}" if path else f"vault {self.url}"
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

    def _read(self, path: str) -> str | None:
        with self._errors(path):
            try:
                resp = self._kv.read_secret_version(
                    path=self._full(path), mount_point=self.mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return None
        value = ((resp or {}).get("data") or {}).get("data", {}).get("value")
        if value is None:
            return None
        if not isinstance(value, str):
            raise SecretStoreError(f"Vault entry {path} is not a smartpraxx secret", obj=path)
        return value

    def _keys(self, folder: str) -> list[str]:
        with self._errors(folder):
            try:
                resp = self._kv.list_secrets(path=self._full(folder), mount_point=self.mount)
            except hvac.exceptions.InvalidPath:
                return []
        return [str(k) for k in ((resp or {}).get("data") or {}).get("keys", [])]

    # --- SecretStore -------------------------------------------------------------------
    def get(self, path: str) -> str | None:
        return self._read(check_path(path))

    def put(self, path: str, value: str) -> None:
        check_path(path)
        with self._errors(path):
            self._kv.create_or_update_secret(
                path=self._full(path), secret={"value": value}, mount_point=self.mount
            )

    def ensure(self, path: str, generator: Callable[[], str] = generate_token) -> str:
        check_path(path)
        existing = self._read(path)
        if existing is not None:
            return existing
        value = generator()
        with self._errors(path):
            try:
                self._kv.create_or_update_secret(
                    path=self._full(path),
                    secret={"value": value},
                    cas=0,
                    mount_point=self.mount,
                )
                return value
            except hvac.exceptions.InvalidRequest:
                pass  # check-and-set lost: another writer created it first
        stored = self._read(path)
        if stored is None:
            raise SecretStoreError(
                f"secret {path} exists in Vault only as deleted versions",
                obj=path,
                hint=f"vault kv metadata delete -mount={self.mount} {self._full(path)}, re-run",
            )
        return stored

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
            with self._errors(path):
                self._kv.delete_metadata_and_all_versions(
                    path=self._full(path), mount_point=self.mount
                )
        return len(paths)
