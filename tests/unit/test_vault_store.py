"""VaultSecretStore checks that need no server (the store against a real OpenBao server is
tests/integration/test_vault_store.py): credential errors, an unreachable Vault, and that the
README shows exactly the policy file the integration test applies."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.errors import ConfigError, ServiceUnavailableError
from smartpraxx_provision.secrets import open_secret_store

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO_ROOT / "deploy" / "vault" / "smartpraxx-policy.hcl"


def test_missing_credentials_are_config_errors(tmp_path: Path) -> None:
    base = {
        "state_dir": str(tmp_path),
        "secrets_backend": "vault",
        "vault_url": "http://127.0.0.1:9",
    }
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


def test_vault_down_is_service_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(
        env={"SMARTPRAXX_VAULT_TOKEN": "hvs.some-token-value"},
        overrides={
            "state_dir": str(tmp_path),
            "secrets_backend": "vault",
            "vault_url": f"http://127.0.0.1:{port}",
        },
    )
    store = open_secret_store(settings)  # token auth: opening sends nothing yet
    with pytest.raises(ServiceUnavailableError) as err:
        store.get("platform/x")
    assert "hvs.some-token-value" not in str(err.value) + str(err.value.hint)


def test_readme_shows_exactly_the_policy_file() -> None:
    """The README's Vault section quotes deploy/vault/smartpraxx-policy.hcl verbatim (the file
    the integration test applies to a real OpenBao server)."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert "deploy/vault/smartpraxx-policy.hcl" in readme
    blocks = re.findall(r"```hcl\n(.*?)```", readme, flags=re.S)
    assert blocks == [POLICY_FILE.read_text()]
