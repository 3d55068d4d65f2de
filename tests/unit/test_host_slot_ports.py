"""A fleet host's slot port base: slot ncXX's Nextcloud app publishes on base + XX - 1, so
the host's routes still fit after its engine restarts (no base: random ports, as before).
Embedded SQLite inventory and a recording FAKE engine; no engine probed or reached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from smartpraxx_provision.adapters.docker_engine import ContainerSpec
from smartpraxx_provision.cli import main
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.model import Slot, app_host_port
from smartpraxx_provision.errors import ConflictError, UsageError
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.operations import nextcloud_stack
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.provision import slot_app_port
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render import bundle as b
from smartpraxx_provision.render.bundle import APP_PORT
from smartpraxx_provision.render.stack import slot_stack
from smartpraxx_provision.secrets import FileSecretStore
from tests.unit.test_render import SAMPLES
from tests.unit.test_stack_plan import FakeEngine, _Reporter

ENGINE = "unix:///nowhere.sock"
ADD = ("hosts", "add", "cloud007", "--endpoint", ENGINE, "--bootstrapping", "--capacity", "10")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    for key in ("SMARTPRAXX_INVENTORY_URL", "SMARTPRAXX_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SMARTPRAXX_STATE_DIR", str(tmp_path))

    def cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return cli


def test_app_host_port() -> None:
    assert app_host_port(1, None) == 0
    assert app_host_port(12, None) == 0
    assert app_host_port(1, 21000) == 21000
    assert app_host_port(7, 21000) == 21006
    assert app_host_port(1, 65535) == 65535
    with pytest.raises(ValueError, match="nc02: port 65536"):
        app_host_port(2, 65535)  # a slot number past the capacity (numbers are never reused)


def test_slot_stack_publishes_the_fixed_port_or_a_random_one(settings: Settings) -> None:
    spec, slot, _ = SAMPLES["gp"]
    assert slot_stack(spec, slot, settings).container("app").ports == {APP_PORT: 0}
    fixed = slot_stack(spec, slot, settings, app_port=21004)
    assert fixed.container("app").ports == {APP_PORT: 21004}
    assert all(not c.ports for c in fixed.containers if c.role != "app")
    refs = b.slot_secret_refs(slot)
    default = b.render_slot_bundle(spec, slot, settings, refs)
    assert default == b.render_slot_bundle(spec, slot, settings, refs, app_port=0)
    compose = yaml.safe_load(b.render_slot_bundle(spec, slot, settings, refs, app_port=21004)[
        "compose.yaml"])
    assert compose["services"]["app"]["ports"] == ["127.0.0.1:21004:80"]
    assert yaml.safe_load(default["compose.yaml"])["services"]["app"]["ports"] == ["127.0.0.1::80"]


def test_launch_stack_passes_the_port_to_the_engine_and_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr(
        nextcloud_stack.NextcloudAdapter,
        "status_http",
        lambda self: {"installed": True, "maintenance": False, "versionstring": "30.0.0"},
    )
    spec, slot, _ = SAMPLES["gp"]
    engine = FakeEngine()
    nextcloud_stack.launch_stack(engine, spec, slot, settings,  # type: ignore[arg-type]
                                 FileSecretStore(tmp_path / "secrets"), _Reporter(),  # type: ignore[arg-type]
                                 app_port=21002)
    assert engine.specs[f"{slot.id}-app"].ports == {APP_PORT: 21002}
    written = yaml.safe_load((settings.state_dir / "slots" / slot.id / "compose.yaml").read_text())
    assert written["services"]["app"]["ports"] == ["127.0.0.1:21002:80"]


def test_provision_takes_the_port_from_the_host_record(settings: Settings) -> None:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    ctx.inventory.add_host("cloud001", ENGINE)
    ctx.inventory.add_host("cloud002", ENGINE, capacity=10, slot_port_base=21001)
    assert slot_app_port(ctx, Slot("cloud001", 3)) == 0
    assert slot_app_port(ctx, Slot("cloud002", 3)) == 21003
    ctx.inventory.update_host("cloud002", capacity=6, slot_port_base=65530)  # nc01..nc06 fit
    with pytest.raises(UsageError, match="port 65536") as err:
        slot_app_port(ctx, Slot("cloud002", 7))
    assert "hosts set cloud002 --slot-port-base" in (err.value.hint or "")
    ctx.inventory.close()


def test_store_round_trip_and_default(settings: Settings) -> None:
    with open_inventory(settings) as inv:
        assert inv.add_host("cloud001", ENGINE).slot_port_base is None
        fixed = inv.add_host("cloud002", ENGINE, capacity=20, slot_port_base=21000)
        assert fixed.slot_port_base == 21000 and fixed.to_dict()["slot_port_base"] == 21000
    with open_inventory(settings) as inv:  # read back from the file
        assert [h.slot_port_base for h in inv.list_hosts()] == [None, 21000]
        assert inv.add_host("cloud002", ENGINE, capacity=20, slot_port_base=21000).name == (
            "cloud002"
        )
        with pytest.raises(ConflictError, match="other settings"):
            inv.add_host("cloud002", ENGINE, capacity=20)
        with pytest.raises(ConflictError, match="other settings"):
            inv.add_host("cloud001", ENGINE, slot_port_base=30000)


@pytest.mark.parametrize(("base", "capacity"), [(1023, 5), (0, 5), (65531, 6), (65535, 2)])
def test_a_base_that_does_not_fit_is_refused(settings: Settings, base: int, capacity: int) -> None:
    with open_inventory(settings) as inv:
        with pytest.raises(UsageError, match=r"host cloud003: --slot-port-base"):
            inv.add_host("cloud003", ENGINE, capacity=capacity, slot_port_base=base)
        assert inv.get_host("cloud003") is None
    with open_inventory(settings) as inv:
        assert inv.add_host("cloud003", ENGINE, capacity=5, slot_port_base=65531).name


def test_update_host_changes_keeps_and_clears_the_base(settings: Settings) -> None:
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE, capacity=10)
        assert inv.update_host("cloud001", slot_port_base=60000).slot_port_base == 60000
        assert inv.update_host("cloud001", publish_address="0.0.0.0").slot_port_base == 60000
        assert inv.update_host("cloud001", capacity=5536).slot_port_base == 60000  # 65535 fits
        with pytest.raises(UsageError, match="--slot-port-base 60000 does not fit capacity 5537"):
            inv.update_host("cloud001", capacity=5537)  # a capacity change is re-checked
        with pytest.raises(UsageError, match="--slot-port-base 80"):
            inv.update_host("cloud001", slot_port_base=80)
        host = inv.get_host("cloud001")
        assert host is not None and (host.capacity, host.slot_port_base) == (5536, 60000)
        assert inv.update_host("cloud001", slot_port_base=None).slot_port_base is None


def test_cli_add_set_list(run: Any) -> None:
    code, out, _ = run(*ADD, "--slot-port-base", "65530", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["error"]["kind"] == "usage"
    assert "--slot-port-base" in doc["error"]["message"] and "cloud007" in doc["error"]["message"]
    code, out, _ = run(*ADD, "--slot-port-base", "21000", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["plan"]["slot_port_base"] == 21000
    assert json.loads(run("hosts", "list", "--json")[1])["hosts"] == []  # nothing registered
    code, _, err = run(*ADD, "--slot-port-base", "21000")
    assert code == 0 and "slot ports from 21000" in err
    assert run("hosts", "list")[1].splitlines()[1].endswith(f"{ENGINE} (slot ports 21000+)")
    code, _, err = run(*ADD)  # no base is another setting
    assert code == 1 and "exists with other settings" in err and "--slot-port-base" in err
    code, _, err = run("hosts", "set", "cloud007", "--slot-port-base", "21000")
    assert code == 0 and "up to date" in err
    code, out, _ = run("hosts", "set", "cloud007", "--slot-port-base", "22000", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["changed"] is True and doc["host"]["slot_port_base"] == 22000
    code, out, _ = run("hosts", "set", "cloud007", "--capacity", "60000", "--json")
    assert code == 2 and "--slot-port-base 22000" in json.loads(out)["error"]["message"]
    code, _, err = run("hosts", "set", "cloud007", "--slot-port-base", "0")  # random again
    assert code == 0 and "random slot ports" in err
    assert run("hosts", "list")[1].splitlines()[1].endswith(ENGINE)
    assert json.loads(run("hosts", "list", "--json")[1])["hosts"][0]["slot_port_base"] is None


def test_a_new_base_changes_the_app_containers_spec_hash() -> None:
    """So the next converge recreates the app container on its new port."""
    random_port = ContainerSpec(name="nc01-cloud002-app", image="i", ports={APP_PORT: 0})
    fixed = ContainerSpec(name="nc01-cloud002-app", image="i", ports={APP_PORT: 21000})
    assert random_port.spec_hash("id") != fixed.spec_hash("id")
