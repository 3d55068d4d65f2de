"""One description of a slot's containers (render/stack.py) drives the launch, the bundle's
compose.yaml and the dry-run's container list.

The launch order is checked against a recording FAKE engine (no Docker engine here); the real
launch runs in tests/integration/test_nextcloud_stack.py and the e2e tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smartpraxx_provision.adapters.docker_engine import ContainerInfo, ContainerSpec, ExecResult
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.operations import nextcloud_stack
from smartpraxx_provision.render import bundle as b
from smartpraxx_provision.render.stack import container_roles, slot_stack
from smartpraxx_provision.secrets import FileSecretStore
from tests.unit.test_render import SAMPLES


class FakeEngine:
    """A FAKE Docker engine: records the calls launch_stack makes, everything answers ok."""

    url = "unix:///var/run/docker.sock"
    is_local = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.specs: dict[str, ContainerSpec] = {}

    def image_exists(self, tag: str) -> bool:
        self.calls.append(("image", tag))
        return True

    def ensure_network(self, name: str, labels: dict[str, str]) -> bool:
        self.calls.append(("network", name))
        return True

    def ensure_volume(self, name: str, labels: dict[str, str]) -> bool:
        self.calls.append(("volume", name))
        return True

    def ensure_container(self, spec: ContainerSpec) -> str:
        self.calls.append(("container", spec.name))
        self.specs[spec.name] = spec
        return "created"

    def remove_container(self, name: str) -> bool:
        self.calls.append(("remove", name))
        return True

    def inspect_container(self, name: str) -> ContainerInfo:
        return ContainerInfo(name, "id", "image", "running", None, {})

    def exec(self, name: str, cmd: list[str], **_: Any) -> ExecResult:
        self.calls.append(("exec", name))
        return ExecResult(0, "", "")

    def logs(self, name: str, tail: int = 40) -> str:
        return ""

    def published_port(self, name: str, port: int) -> int:
        return 32768


class _Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def change(self, line: str) -> None:
        self.lines.append(line)

    skip = info = change


def _settings(tmp_path: Path, profile: str, **overrides: Any) -> Settings:
    return load_settings(
        env={}, overrides={"profile": profile, "state_dir": str(tmp_path), **overrides}
    )


def _launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> tuple[FakeEngine, Settings]:
    monkeypatch.setattr(
        nextcloud_stack.NextcloudAdapter,
        "status_http",
        lambda self: {"installed": True, "maintenance": False, "versionstring": "30.0.0"},
    )
    spec, slot, profile = SAMPLES["gp"]
    settings = _settings(tmp_path, profile, **overrides)
    engine = FakeEngine()
    store = FileSecretStore(tmp_path / "secrets")
    nextcloud_stack.launch_stack(engine, spec, slot, settings, store, _Reporter())  # type: ignore[arg-type]
    return engine, settings


@pytest.mark.parametrize(
    ("overrides", "idp", "cron"),
    [
        ({}, ("remove", "nc07-cloud023-idp"), ("container", "nc07-cloud023-cron")),
        (
            {"public_scheme": "https", "nextcloud_cron": False},
            ("container", "nc07-cloud023-idp"),
            ("remove", "nc07-cloud023-cron"),
        ),
    ],
)
def test_launch_follows_the_plan_in_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any],
    idp: tuple[str, str],
    cron: tuple[str, str],
) -> None:
    engine, settings = _launch(tmp_path, monkeypatch, **overrides)
    s = "nc07-cloud023"
    images = [settings.mariadb_image, settings.redis_image]
    if idp[0] == "container":
        images.append(f"smartpraxx/idp-gateway:{settings.local_image_tag}")
    assert engine.calls == [
        *(("image", tag) for tag in [*images, settings.nextcloud_image]),  # first, once each
        ("network", f"{s}-net"),
        ("volume", f"{s}-db"),
        ("volume", f"{s}-data"),
        ("container", f"{s}-db"),
        ("container", f"{s}-redis"),
        idp,
        ("exec", f"{s}-db"),  # wait db
        ("exec", f"{s}-redis"),  # wait redis
        ("exec", f"{s}-db"),  # the app's DB login
        ("container", f"{s}-app"),
        cron,
    ]


def test_launched_specs_are_the_plan_and_the_compose_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, settings = _launch(tmp_path, monkeypatch)
    spec, slot, _ = SAMPLES["gp"]
    stack = slot_stack(spec, slot, settings)
    assert list(engine.specs) == [c.name for c in stack.containers]
    written = tmp_path / "slots" / slot.id
    bundle = b.render_slot_bundle(spec, slot, settings, b.slot_secret_refs(slot))
    assert {p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file()} == set(
        bundle
    )
    assert (written / "compose.yaml").read_bytes() == bundle["compose.yaml"]
    compose = yaml.safe_load(bundle["compose.yaml"])
    assert list(compose["services"]) == [c.role for c in stack.containers]
    store = FileSecretStore(tmp_path / "secrets")
    for plan in stack.containers:
        launched = engine.specs[plan.name]
        service = compose["services"][plan.role]
        assert service["container_name"] == launched.name
        assert service["image"] == launched.image
        assert service.get("mem_limit") == launched.mem_limit
        assert service.get("user") == launched.user
        assert b.parse_env(bundle[service["env_file"][0]].decode()) == launched.env
        assert service["labels"] == launched.labels
        assert service.get("volumes", []) == [f"{k}:{v}" for k, v in launched.volumes.items()]
        assert service["cap_drop"] == launched.extra["cap_drop"] == ["ALL"]
        assert service["cap_add"] == launched.extra["cap_add"]
        assert [compose_arg.replace("$$", "$") for compose_arg in service.get("command", [])] == (
            launched.command or []
        )
        assert service.get("secrets", []) == [b.SECRET_NAMES[k] for k in plan.secrets]
        assert [f.path for f in launched.secret_files] == [b.secret_file(k) for k in plan.secrets]
        refs = b.slot_secret_refs(slot)
        assert [f.content for f in launched.secret_files] == [
            store.require(refs[k]) for k in plan.secrets
        ]
        check = launched.healthcheck
        if check is None:
            assert "healthcheck" not in service
        elif check["test"] == ["NONE"]:
            assert service["healthcheck"] == {"disable": True}
        else:
            assert [t.replace("$$", "$") for t in service["healthcheck"]["test"]] == check["test"]
            assert service["healthcheck"]["interval"] == f"{check['interval'] // 10**9}s"
    assert engine.specs[f"{slot.id}-app"].ports == {80: 0}
    assert compose["services"]["app"]["ports"] == ["127.0.0.1::80"]


def test_plan_and_dry_run_roles_follow_the_settings(tmp_path: Path) -> None:
    assert container_roles(_settings(tmp_path, "embedded")) == ("db", "redis", "app", "cron")
    https = _settings(tmp_path, "embedded", public_scheme="https", nextcloud_cron=False)
    assert container_roles(https) == ("db", "redis", "idp", "app")
    spec, slot, _ = SAMPLES["gp"]
    stack = slot_stack(spec, slot, https)
    assert [c.role for c in stack.containers] == list(container_roles(https))
    compose = yaml.safe_load(
        b.render_slot_bundle(spec, slot, https, b.slot_secret_refs(slot))["compose.yaml"]
    )
    idp = compose["services"]["idp"]
    assert idp["networks"] == {"slot": {"aliases": ["idp-internal"]}}
    assert idp["environment"]["IDP_SOCKET"] == "/run/smartpraxx-idp/idp.sock"
    assert "cron" not in compose["services"]
