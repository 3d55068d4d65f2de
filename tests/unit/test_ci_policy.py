"""The test-run policy plugin (tests/fixtures/ci_policy.py) in pytest runs of its own.

Each case runs ``python -m pytest -p tests.fixtures.ci_policy`` on a throwaway test folder
with a chosen environment and checks the exit code and the output: a skip at run time or at
collection time fails where the stack is required (``CI`` true in any spelling), golden files
are not rewritten under CI, and the summary line counts stand-in tests apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ci_policy import REPO_ROOT, ci_truthy

RUN_SKIP = "import pytest\n\ndef test_a():\n    pytest.skip('no engine')\n"
MODULE_SKIP = (
    "import pytest\n\npytest.skip('no stack', allow_module_level=True)\n\n"
    "def test_never():\n    pass\n"
)
GOLDEN = (
    "from pathlib import Path\n"
    "from tests.fixtures.ci_policy import golden_update_requested\n\n"
    "def test_golden(tmp_path):\n"
    "    if golden_update_requested():\n"
    "        Path(__file__).with_name('golden.txt').write_text('new')\n"
)


def _run(tmp_path: Path, source: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_case.py").write_text(source, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CI", "SMARTPRAXX_REQUIRE_STACK", "SMARTPRAXX_UPDATE_GOLDEN")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.fixtures.ci_policy",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        env={**clean, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("1", True), ("yes", True), ("Yes", True),
     (" true ", True), ("", False), ("0", False), ("false", False), ("no", False)],
)
def test_ci_truthiness_ignores_case(value: str, expected: bool) -> None:
    assert ci_truthy({"CI": value}) is expected


@pytest.mark.parametrize("ci", ["True", "1", "YES"])
def test_a_run_time_skip_fails_under_ci(tmp_path: Path, ci: str) -> None:
    r = _run(tmp_path, RUN_SKIP, {"CI": ci})
    assert r.returncode == 1, r.stdout
    assert "skipped where the stack is required" in r.stdout
    assert "no engine" in r.stdout


def test_a_run_time_skip_stays_a_skip_outside_ci(tmp_path: Path) -> None:
    r = _run(tmp_path, RUN_SKIP, {})
    assert r.returncode == 0, r.stdout
    assert "1 skipped" in r.stdout


def test_a_module_level_skip_fails_where_the_stack_is_required(tmp_path: Path) -> None:
    r = _run(tmp_path, MODULE_SKIP, {"SMARTPRAXX_REQUIRE_STACK": "1"})
    assert r.returncode != 0, r.stdout
    assert "skipped where the stack is required" in r.stdout
    assert "no stack" in r.stdout
    plain = _run(tmp_path, MODULE_SKIP, {})
    assert plain.returncode == 5, plain.stdout  # pytest's "no tests ran": still only a skip
    assert "1 skipped" in plain.stdout


def test_golden_update_is_refused_under_ci(tmp_path: Path) -> None:
    r = _run(tmp_path, GOLDEN, {"SMARTPRAXX_UPDATE_GOLDEN": "1", "CI": "true"})
    assert r.returncode == 1, r.stdout
    assert "SMARTPRAXX_UPDATE_GOLDEN=1 is refused under CI" in r.stdout
    assert not (tmp_path / "golden.txt").exists()
    local = _run(tmp_path, GOLDEN, {"SMARTPRAXX_UPDATE_GOLDEN": "1"})
    assert local.returncode == 0, local.stdout
    assert (tmp_path / "golden.txt").read_text() == "new"


def test_summary_counts_product_and_stand_in_tests_apart() -> None:
    """On the repository's own files: one stand-in module and one product module."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/unit/test_standin_occ.py::test_vendored_reference_matches_the_hashes_in_the_readme",
         "tests/unit/test_domain_seats.py::test_roles_that_count",
         "tests/unit/test_domain_seats.py::test_distinct_lanr_digits_1_to_7"],
        env={k: v for k, v in os.environ.items() if k != "CI"}, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert r.returncode == 0, r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("product tests:"))
    assert "stand-in tests (the Nextcloud test double itself): 1 passed" in line, line
    assert "product tests: 2 passed" in line, line
