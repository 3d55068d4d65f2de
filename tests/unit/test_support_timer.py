"""The identity_host role's support-expiry timer runs the sweep as the service user."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "identity_host"


def _render(name: str) -> str:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"),
                             undefined=jinja2.StrictUndefined, autoescape=False)
    return env.get_template(name).render(ansible_managed="managed", **defaults)


def test_the_timer_runs_support_expire_as_the_service_user() -> None:
    service = _render("smartpraxx-support-expire.service.j2")
    assert "ExecStart=/opt/smartpraxx/venv/bin/smartpraxx-provision support expire" in service
    assert "User=smartpraxx" in service and "Type=oneshot" in service
    assert "Environment=SMARTPRAXX_STATE_DIR=/var/lib/smartpraxx" in service
    timer = _render("smartpraxx-support-expire.timer.j2")
    assert "OnUnitActiveSec=5min" in timer and "Persistent=true" in timer
    tasks = yaml.safe_load((ROLE / "tasks" / "order_service.yml").read_text())
    enabled = [t for t in tasks if t.get("ansible.builtin.systemd_service", {}).get("name")
               == "smartpraxx-support-expire.timer"]
    assert enabled and enabled[0]["ansible.builtin.systemd_service"]["enabled"] is True
