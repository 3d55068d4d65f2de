"""The local stack's apt-get door: what ``dev-stack up`` installs itself on a fresh machine.

The install itself (apt-get as root) runs for real in CI on a fresh machine (``make test``
brings the stack up first); here: the decisions before it, without installing anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.devstack import proxy
from smartpraxx_provision.devstack.engine import ensure_packages
from smartpraxx_provision.errors import ServiceUnavailableError
from smartpraxx_provision.output import Reporter


def _empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))


def test_present_programs_install_nothing(tmp_path: Path) -> None:
    settings = load_settings(overrides={"state_dir": str(tmp_path)})
    reporter = Reporter(quiet=True)
    assert ensure_packages(settings, reporter, {"sh": "dash"}) == []
    assert reporter.lines == []


def test_a_missing_program_without_root_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _empty_path(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    settings = load_settings(overrides={"state_dir": str(tmp_path / "state")})
    with pytest.raises(ServiceUnavailableError) as e:
        ensure_packages(settings, Reporter(quiet=True),
                        {"caddy": "caddy", "spx-no-such-tool": "spx-tools"})
    assert e.value.obj == "caddy, spx-tools"
    assert e.value.hint == "sudo apt-get install caddy spx-tools"


def test_the_tls_proxy_installs_caddy_itself_before_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fresh machine has no caddy: `make demo` must not stop at "caddy is not installed"
    _empty_path(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    settings = load_settings(overrides={"state_dir": str(tmp_path / "state")})
    with pytest.raises(ServiceUnavailableError) as e:
        proxy.ensure_proxy(settings, Reporter(quiet=True))
    assert "caddy not installed and installing needs root" in str(e.value)
    assert e.value.hint == "sudo apt-get install caddy"
    assert not proxy.caddyfile(settings).exists()
