"""VaultSecretStore against a Vault API double.

No Vault server can run here, so ``VaultApiDouble`` — a local HTTP server on 127.0.0.1 —
answers the documented routes of Vault's KV v2 secrets engine and AppRole login with the
documented response shapes (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2):

- ``GET  /v1/<mount>/data/<path>``      read the latest version: ``{"data": {"data", "metadata"}}``
- ``POST /v1/<mount>/data/<path>``      create/update with ``options.cas`` (check-and-set);
  a mismatch answers 400 "check-and-set parameter did not match the current version"
- ``LIST /v1/<mount>/metadata/<path>``  key names, folders with a trailing ``/``; 404 if none
- ``DELETE /v1/<mount>/metadata/<path>`` metadata and all versions, 204
- ``POST /v1/auth/approle/login``       ``{"auth": {"client_token": ...}}``

Every route but the login checks the ``X-Vault-Token`` header (403 "permission denied").
hvac, the real client library, does the talking.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.errors import ConfigError, SecretStoreError, ServiceUnavailableError
from smartpraxx_provision.secrets import open_secret_store
from smartpraxx_provision.secrets.vault import VaultSecretStore

ROOT_TOKEN = "hvs.test-root-token-0123456789"
ROLE_ID = "4c7bd2a3-role"
SECRET_ID = "b1f0e7d9-secret-id-value"
MOUNT = "kv-spx"


class VaultApiDouble:
    """A Vault API double (not Vault): the KV v2 + AppRole routes the adapter uses."""

    def __init__(self, mount: str = MOUNT) -> None:
        self.mount = mount
        self.tokens = {ROOT_TOKEN}
        self.versions: dict[str, list[dict[str, Any]]] = {}  # path -> versions (1-based)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.cas_failures = 0
        self.lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}") if length else {}

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                body = self._body()
                if method == "GET" and "list=true" in (url.query or ""):
                    method = "LIST"
                double.requests.append((method, url.path, body))
                if url.path == "/v1/auth/approle/login" and method in ("POST", "PUT"):
                    return self._login(body)
                if self.headers.get("X-Vault-Token") not in double.tokens:
                    return self._send(403, {"errors": ["permission denied"]})
                prefix = f"/v1/{double.mount}/"
                if not url.path.startswith(prefix):
                    return self._send(404, {"errors": [f"no handler for route {url.path!r}"]})
                area, _, path = url.path[len(prefix) :].partition("/")
                with double.lock:
                    status, answer = double.route(method, area, path.strip("/"), body)
                self._send(status, answer)

            def _login(self, body: dict[str, Any]) -> None:
                if body.get("role_id") != ROLE_ID or body.get("secret_id") != SECRET_ID:
                    return self._send(400, {"errors": ["invalid role or secret ID"]})
                token = f"hvs.approle-{len(double.tokens)}"
                double.tokens.add(token)
                self._send(
                    200,
                    {
                        "request_id": "r",
                        "lease_id": "",
                        "renewable": False,
                        "lease_duration": 0,
                        "data": None,
                        "wrap_info": None,
                        "warnings": None,
                        "auth": {
                            "client_token": token,
                            "accessor": "acc",
                            "policies": ["default", "spx"],
                            "token_policies": ["default", "spx"],
                            "metadata": {"role_name": "smartpraxx"},
                            "lease_duration": 1200,
                            "renewable": True,
                            "entity_id": "",
                            "token_type": "service",
                            "orphan": True,
                        },
                    },
                )

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_LIST(self) -> None:
                self._handle("LIST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def _envelope(data: Any) -> dict[str, Any]:
        return {
            "request_id": "r",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }

    def route(self, method: str, area: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        now = datetime.now(UTC).isoformat()
        if area == "data" and method == "GET":
            versions = self.versions.get(path)
            if not versions:
                return 404, {"errors": []}
            latest = versions[-1]
            return 200, self._envelope({"data": latest["data"], "metadata": latest["metadata"]})
        if area == "data" and method in ("POST", "PUT"):
            current = len(self.versions.get(path, []))
            cas = (body.get("options") or {}).get("cas")
            if cas is not None and int(cas) != current:
                self.cas_failures += 1
                return 400, {
                    "errors": ["check-and-set parameter did not match the current version"]
                }
            meta = {
                "created_time": now,
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": current + 1,
            }
            self.versions.setdefault(path, []).append({"data": body["data"], "metadata": meta})
            return 200, self._envelope(meta)
        if area == "metadata" and method == "LIST":
            base = f"{path}/" if path else ""
            keys = sorted(
                {
                    k[len(base) :].split("/", 1)[0] + ("/" if "/" in k[len(base) :] else "")
                    for k in self.versions
                    if k.startswith(base)
                }
            )
            if not keys:
                return 404, {"errors": []}
            return 200, self._envelope({"keys": keys})
        if area == "metadata" and method == "DELETE":
            self.versions.pop(path, None)
            return 204, None
        return 405, {"errors": [f"unsupported {method} on {area}"]}

    def __enter__(self) -> VaultApiDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vault() -> Iterator[VaultApiDouble]:
    with VaultApiDouble() as double:
        yield double


def vault_settings(vault: VaultApiDouble, tmp_path: Any, **env: str) -> Settings:
    return load_settings(
        env={"SMARTPRAXX_VAULT_TOKEN": ROOT_TOKEN, **env},
        overrides={
            "state_dir": str(tmp_path),
            "secrets_backend": "vault",
            "vault_url": vault.url,
            "vault_mount": MOUNT,
            "vault_prefix": "smartpraxx",
        },
    )


@pytest.fixture
def store(vault: VaultApiDouble, tmp_path: Any) -> VaultSecretStore:
    s = open_secret_store(vault_settings(vault, tmp_path))
    assert isinstance(s, VaultSecretStore)
    return s


def test_put_get_roundtrip_under_mount_and_prefix(
    store: VaultSecretStore, vault: VaultApiDouble
) -> None:
    assert store.get("practices/nc07-cloud023/db-password") is None
    store.put("practices/nc07-cloud023/db-password", "s3cr3t-value")
    assert store.get("practices/nc07-cloud023/db-password") == "s3cr3t-value"
    assert vault.versions["smartpraxx/practices/nc07-cloud023/db-password"][-1]["data"] == {
        "value": "s3cr3t-value"
    }
    store.put("practices/nc07-cloud023/db-password", "second")
    assert store.get("practices/nc07-cloud023/db-password") == "second"
    # values travel in bodies only, never in a URL
    assert not [p for _, p, _ in vault.requests if "s3cr3t" in p]


def test_ensure_generates_once_with_cas_zero(
    store: VaultSecretStore, vault: VaultApiDouble
) -> None:
    first = store.ensure("platform/keycloak-admin")
    assert len(first) >= 40
    assert store.ensure("platform/keycloak-admin", lambda: "other") == first
    writes = [b for m, p, b in vault.requests if m in ("POST", "PUT") and "/data/" in p]
    assert writes == [{"data": {"value": first}, "options": {"cas": 0}}]


def test_ensure_two_concurrent_writers_agree(
    store: VaultSecretStore, vault: VaultApiDouble
) -> None:
    """Both writers see "missing", both generate; cas=0 lets exactly one write win."""
    barrier = threading.Barrier(2, timeout=30)
    other = VaultSecretStore(
        store.client.__class__(url=vault.url, token=ROOT_TOKEN),
        mount=MOUNT,
        prefix="smartpraxx",
        url=vault.url,
    )
    results: dict[str, str] = {}

    def run(name: str, s: VaultSecretStore) -> None:
        def generator() -> str:
            barrier.wait()  # both have read "missing" before either writes
            return f"value-from-{name}"

        results[name] = s.ensure("practices/nc07-cloud023/oidc-client-secret", generator)

    threads = [
        threading.Thread(target=run, args=("a", store)),
        threading.Thread(target=run, args=("b", other)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["a"] == results["b"] in ("value-from-a", "value-from-b")
    assert len(vault.versions["smartpraxx/practices/nc07-cloud023/oidc-client-secret"]) == 1
    assert vault.cas_failures == 1


def test_list_and_delete_prefix_removes_all_versions(
    store: VaultSecretStore, vault: VaultApiDouble
) -> None:
    for path in (
        "practices/nc07-cloud023/db-password",
        "practices/nc07-cloud023/admin/password",
        "practices/nc08-cloud023/db-password",
        "practices/nc07-cloud0234/x",
        "platform/keycloak-admin",
    ):
        store.put(path, "v1")
        store.put(path, "v2")
    assert store.list("practices/nc07-cloud023") == [
        "practices/nc07-cloud023/admin/password",
        "practices/nc07-cloud023/db-password",
    ]
    assert store.delete("practices/nc07-cloud023") == 2
    assert sorted(vault.versions) == [
        "smartpraxx/platform/keycloak-admin",
        "smartpraxx/practices/nc07-cloud0234/x",
        "smartpraxx/practices/nc08-cloud023/db-password",
    ]
    deletes = sorted(p for m, p, _ in vault.requests if m == "DELETE")
    assert deletes == [
        f"/v1/{MOUNT}/metadata/smartpraxx/practices/nc07-cloud023/admin/password",
        f"/v1/{MOUNT}/metadata/smartpraxx/practices/nc07-cloud023/db-password",
    ]
    assert store.get("practices/nc07-cloud023/db-password") is None
    assert store.delete("practices/nc07-cloud023") == 0
    assert store.delete("platform/keycloak-admin") == 1  # a single secret as prefix
    assert store.list("practices") == [
        "practices/nc07-cloud0234/x",
        "practices/nc08-cloud023/db-password",
    ]
    with pytest.raises(SecretStoreError):
        store.delete("")


def test_approle_login(vault: VaultApiDouble, tmp_path: Any) -> None:
    settings = load_settings(
        env={"SMARTPRAXX_VAULT_SECRET_ID": SECRET_ID},
        overrides={
            "state_dir": str(tmp_path),
            "secrets_backend": "vault",
            "vault_url": vault.url,
            "vault_mount": MOUNT,
            "vault_auth": "approle",
            "vault_role_id": ROLE_ID,
        },
    )
    s = open_secret_store(settings)
    s.put("platform/x", "y")
    assert s.get("platform/x") == "y"
    used = {t for t in vault.tokens if t.startswith("hvs.approle-")}
    assert len(used) == 1
    bad = load_settings(
        env={"SMARTPRAXX_VAULT_SECRET_ID": "wrong-secret-id-123"},
        overrides={
            "state_dir": str(tmp_path),
            "secrets_backend": "vault",
            "vault_url": vault.url,
            "vault_auth": "approle",
            "vault_role_id": ROLE_ID,
        },
    )
    with pytest.raises(SecretStoreError) as err:
        open_secret_store(bad)
    assert "wrong-secret-id-123" not in str(err.value) + str(err.value.hint)


def test_bad_token_is_refused_without_leaking_it(vault: VaultApiDouble, tmp_path: Any) -> None:
    s = open_secret_store(vault_settings(vault, tmp_path, SMARTPRAXX_VAULT_TOKEN="hvs.wrong-tok"))
    with pytest.raises(SecretStoreError, match="refused") as err:
        s.get("platform/x")
    assert "hvs.wrong-tok" not in str(err.value) + str(err.value.hint) + str(err.value.obj)


def test_missing_credentials_are_config_errors(vault: VaultApiDouble, tmp_path: Any) -> None:
    base = {"state_dir": str(tmp_path), "secrets_backend": "vault", "vault_url": vault.url}
    with pytest.raises(ConfigError, match="token"):
        open_secret_store(load_settings(env={}, overrides=base))
    with pytest.raises(ConfigError, match="approle"):
        open_secret_store(load_settings(env={}, overrides={**base, "vault_auth": "approle"}))
    with pytest.raises(ConfigError):
        open_secret_store(
            load_settings(
                env={"SMARTPRAXX_VAULT_TOKEN": "t"}, overrides={**base, "vault_auth": "ldap"}
            )
        )


def test_vault_down_is_service_unavailable(tmp_path: Any) -> None:
    double = VaultApiDouble()  # never started: the port is bound but nobody answers
    double.server.server_close()
    s = open_secret_store(vault_settings(double, tmp_path))
    with pytest.raises(ServiceUnavailableError):
        s.get("platform/x")
