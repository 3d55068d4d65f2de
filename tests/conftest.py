"""Shared fixtures. Tier fixtures live in tests/fixtures/ (one module per component)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartpraxx_provision.config import Settings, load_settings

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.postgres",
    "tests.fixtures.keycloak",
    "tests.fixtures.keycloak_cluster",
    "tests.fixtures.mail",
    "tests.fixtures.browser",
    "tests.fixtures.openbao",
    "tests.fixtures.ci_policy",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "starter_excel_samples"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def settings(state_dir: Path) -> Settings:
    """Embedded settings with a throwaway state dir, unaffected by the caller's environment."""
    return load_settings(env={}, overrides={"state_dir": str(state_dir)})
