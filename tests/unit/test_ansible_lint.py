"""The fleet's Ansible tree: `ansible-lint --profile production` and `--syntax-check` clean."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
PLAYBOOKS = ["playbooks/site.yml", "playbooks/practice_host.yml", "playbooks/identity_host.yml"]

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "NO_COLOR": "1"}


@pytest.mark.skipif(shutil.which("ansible-lint") is None, reason="pip install -e '.[dev]'")
def test_ansible_lint_production_profile() -> None:
    done = subprocess.run(
        ["ansible-lint", "--profile", "production", "--offline", "--nocolor",
         "playbooks", "roles"],
        cwd=ANSIBLE_DIR, env=_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="pip install -e '.[fleet]'")
@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_syntax(playbook: str, tmp_path: Path) -> None:
    # a static inventory with both groups, so the syntax check needs no inventory store
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[practice_hosts]\ncloud001\n[identity_hosts]\nmein.example\n")
    done = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", str(inventory), playbook],
        cwd=ANSIBLE_DIR, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"playbook: {playbook}" in done.stdout
