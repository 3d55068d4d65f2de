"""Fleet plumbing: the dynamic inventory script (run as Ansible runs it) and
``run_playbook`` (secrets only in a 0600 file, never in argv; output streamed; recap parsed)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.operations.fleet import (
    ENV_ANSIBLE_DIR,
    parse_recap,
    run_playbook,
    settings_env,
    ssh_target,
    write_private_json,
)

SCRIPT = Path(__file__).resolve().parents[2] / "ansible" / "inventory" / "smartpraxx_inventory.py"
needs_ansible = pytest.mark.skipif(
    shutil.which("ansible-playbook") is None, reason="pip install -e '.[fleet]'"
)


@pytest.fixture
def with_hosts(settings: Settings) -> Settings:
    with open_inventory(settings) as inv:
        inv.add_host("cloud023", "ssh://root@203.0.113.23:2222", capacity=40)
        inv.add_host("cloud024", "tcp://127.0.0.1:2376", state="bootstrapping")
    return settings


def _script(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )


def test_ssh_target() -> None:
    assert ssh_target("ssh://root@cloud023.example:2222") == {
        "ansible_host": "cloud023.example", "ansible_user": "root", "ansible_port": 2222,
    }
    assert ssh_target("ssh://cloud023.example") == {"ansible_host": "cloud023.example"}
    assert ssh_target("tcp://127.0.0.1:2376") is None
    assert ssh_target("unix:///var/run/docker.sock") is None


def test_settings_env_rebuilds_the_same_settings(settings: Settings) -> None:
    assert load_settings(env=settings_env(settings)) == settings


def test_inventory_script_lists_the_orchestrators_hosts(with_hosts: Settings) -> None:
    done = _script(with_hosts, "--list")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["practice_hosts"]["hosts"] == ["cloud023", "cloud024"]
    assert doc["identity_hosts"]["hosts"] == ["mein.smartpraxx.de"]
    assert doc["hosts_bootstrapping"]["hosts"] == ["cloud024"]
    cloud023 = doc["_meta"]["hostvars"]["cloud023"]
    assert cloud023["ansible_host"] == "203.0.113.23"
    assert cloud023["ansible_user"] == "root" and cloud023["ansible_port"] == 2222
    assert cloud023["smartpraxx_capacity"] == 40
    assert "ansible_host" not in doc["_meta"]["hostvars"]["cloud024"]  # no ssh endpoint

    host = _script(with_hosts, "--host", "cloud023")
    assert host.returncode == 0 and json.loads(host.stdout) == cloud023


def test_inventory_script_refuses_other_arguments(with_hosts: Settings) -> None:
    assert _script(with_hosts, "--everything").returncode == 2


@needs_ansible
def test_ansible_reads_the_inventory_script(with_hosts: Settings) -> None:
    env = {**os.environ, **settings_env(with_hosts)}
    done = subprocess.run(
        ["ansible-inventory", "-i", str(SCRIPT), "--list"], env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert sorted(doc["practice_hosts"]["hosts"]) == ["cloud023", "cloud024"]
    assert doc["_meta"]["hostvars"]["cloud023"]["ansible_port"] == 2222


def test_private_json_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    write_private_json(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"a": 1}


def test_parse_recap() -> None:
    lines = [
        "PLAY RECAP ****",
        "cloud023                   : ok=31   changed=0    unreachable=0    failed=0    "
        "skipped=8    rescued=0    ignored=0",
    ]
    assert parse_recap(lines, "cloud023") == {"ok": 31, "changed": 0, "unreachable": 0,
                                               "failed": 0}
    assert parse_recap(lines, "cloud024") == {}


@needs_ansible
def test_run_playbook_keeps_secrets_out_of_argv(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real ansible-playbook run (local connection) whose play checks the process table."""
    tree = tmp_path / "ansible"
    (tree / "playbooks").mkdir(parents=True)
    (tree / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    (tree / "playbooks" / "probe.yml").write_text(
        """---
- name: Probe
  hosts: probe
  gather_facts: false
  tasks:
    - name: Read every process's command line
      ansible.builtin.command: ps -eo args
      register: procs
      changed_when: false
    - name: The secret arrived, and no command line holds it
      ansible.builtin.assert:
        that:
          - probe_secret == 'not-in-argv-4711'
          - "'not-in-argv-4711' not in procs.stdout"
          - "'@' in procs.stdout"
      no_log: true
"""
    )
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"[probe]\nprobe1 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    monkeypatch.setenv(ENV_ANSIBLE_DIR, str(tree))
    lines: list[str] = []
    result = run_playbook(
        "playbooks/probe.yml", limit="probe1", extra_vars={"probe_secret": "not-in-argv-4711"},
        settings=settings, inventory=str(inventory), output=lines.append,
    )
    assert result.returncode == 0, "\n".join(lines)
    assert result.recap == {"ok": 2, "changed": 0, "unreachable": 0, "failed": 0}
    assert any("TASK [Read every process's command line]" in line for line in lines)
    assert not any("not-in-argv-4711" in line for line in lines)
