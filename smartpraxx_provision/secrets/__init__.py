"""Secret store: encrypted local files (embedded default) or HashiCorp Vault KV v2."""

from __future__ import annotations

from ..config import Settings
from .base import SecretStore, generate_token, practice_prefix
from .filestore import FileSecretStore

__all__ = [
    "FileSecretStore",
    "SecretStore",
    "generate_token",
    "open_secret_store",
    "practice_prefix",
]


def open_secret_store(settings: Settings) -> SecretStore:
    """The configured secret store (the one door every step draws credentials from)."""
    if settings.secrets_backend == "vault":
        from .vault import VaultSecretStore

        return VaultSecretStore.from_settings(settings)
    return FileSecretStore(settings.secrets_dir)
