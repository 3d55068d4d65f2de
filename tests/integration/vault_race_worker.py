"""The operator process of the Vault generate-once race (test_vault_store.py): a module of its
own, so a spawned child imports only the store, not the whole test module."""

from __future__ import annotations

from typing import Any

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.secrets import open_secret_store

RACE_PATH = "practices/nc09-cloud023/db-password"


def race_ensure(url: str, token: str, state: str, barrier: Any, queue: Any, n: int) -> None:
    """Open the store from settings like a CLI run would, then race on ``ensure``: the
    generator waits until every process has seen the secret missing."""
    store = open_secret_store(
        load_settings(
            env={"SMARTPRAXX_VAULT_TOKEN": token},
            overrides={"state_dir": state, "secrets_backend": "vault", "vault_url": url},
        )
    )

    def generator() -> str:
        barrier.wait(30)
        return f"value-from-process-{n}"

    queue.put((n, store.ensure(RACE_PATH, generator)))
