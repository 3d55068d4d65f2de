"""Shared fixtures. Tier fixtures live in tests/fixtures/ (one module per component)."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


def _stack_required() -> bool:
    return bool(os.environ.get("SMARTPRAXX_REQUIRE_STACK")) or os.environ.get("CI", "") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Where the whole stack is required (CI, `make test`), a skip is a failure: every
    component the tests need is installed and started there, so a skip would hide a gap."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and _stack_required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped where the stack is required (CI / SMARTPRAXX_REQUIRE_STACK): {reason}"
