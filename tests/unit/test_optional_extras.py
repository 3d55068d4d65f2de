"""The team backends' packages are optional extras (pyproject: ``postgres``, ``vault``):
without them the tool works with its embedded defaults, and choosing the backend gives a clear
error naming the extra (config.py checks it when the settings are read)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.errors import ConfigError
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.secrets import open_secret_store

ROOT = Path(__file__).resolve().parents[2]


def _hide(monkeypatch: pytest.MonkeyPatch, package: str, door: str) -> None:
    """Make ``import package`` fail as if it were not installed, and drop the door's module
    so it is imported afresh."""
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, door, raising=False)


def test_vault_without_hvac_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _hide(monkeypatch, "hvac", "smartpraxx_provision.secrets.vault")
    with pytest.raises(ConfigError) as err:  # when the settings are read, before any step
        open_secret_store(load_settings(env={}, overrides={
            "state_dir": str(tmp_path), "secrets_backend": "vault",
            "vault_url": "http://127.0.0.1:8200"}))
    assert "hvac" in err.value.message and "secrets_backend is vault" in err.value.message
    assert err.value.exit_code == 2
    assert "smartpraxx-provision[vault]" in str(err.value.hint)


def test_postgres_without_psycopg_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _hide(monkeypatch, "psycopg", "smartpraxx_provision.inventory.postgres")
    with pytest.raises(ConfigError) as err:
        open_inventory(load_settings(env={}, overrides={
            "state_dir": str(tmp_path), "inventory_url": "postgresql://x@127.0.0.1:1/x"}))
    assert "psycopg" in err.value.message
    assert "smartpraxx-provision[postgres]" in str(err.value.hint)


def test_the_embedded_tool_imports_neither_package(tmp_path: Path) -> None:
    """A provision-free CLI run with the embedded defaults never loads hvac or psycopg."""
    code = (
        "import sys\n"
        "from smartpraxx_provision.config import load_settings\n"
        "from smartpraxx_provision.inventory import open_inventory\n"
        "from smartpraxx_provision.secrets import open_secret_store\n"
        "import smartpraxx_provision.cli\n"
        f"s = load_settings(env={{}}, overrides={{'state_dir': {str(tmp_path)!r}}})\n"
        "open_inventory(s).close(); open_secret_store(s)\n"
        "print(sorted(m for m in ('hvac', 'psycopg') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True, env={"PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stderr
