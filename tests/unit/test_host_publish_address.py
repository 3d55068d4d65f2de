"""A fleet host's publish address: the IP address on its engine that the slots' containers
publish their ports on (127.0.0.1 unless the host record says otherwise; the docker-in-docker
test hosts publish on 0.0.0.0). Embedded SQLite inventory, no engine probed or reached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from smartpraxx_provision.adapters.docker_engine import ContainerSpec, DockerEngine
from smartpraxx_provision.cli import main
from smartpraxx_provision.config import Settings
from smartpraxx_provision.domain.ownership import Owner
from smartpraxx_provision.errors import ConflictError, UsageError
from smartpraxx_provision.inventory import open_inventory
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.output import Reporter

ENGINE = "unix:///nowhere.sock"
ADD = ("hosts", "add", "cloud007", "--endpoint", ENGINE, "--bootstrapping")


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


def test_default_and_round_trip(settings: Settings) -> None:
    with open_inventory(settings) as inv:
        plain = inv.add_host("cloud001", ENGINE)
        dind = inv.add_host("cloud002", ENGINE, publish_address="0.0.0.0")
        assert plain.publish_address == "127.0.0.1"
        assert dind.publish_address == "0.0.0.0"
        assert dind.to_dict()["publish_address"] == "0.0.0.0"
    with open_inventory(settings) as inv:  # read back from the file
        assert [h.publish_address for h in inv.list_hosts()] == ["127.0.0.1", "0.0.0.0"]
        assert inv.schema_version() >= 10


def test_a_host_row_without_an_address_publishes_on_loopback(settings: Settings) -> None:
    """Hosts registered before migration 0010 have NULL: 127.0.0.1."""
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE, publish_address="0.0.0.0")
        with inv.backend.transaction(write=True) as tx:
            tx.execute("UPDATE hosts SET publish_address = NULL")
        host = inv.get_host("cloud001")
        assert host is not None and host.publish_address == "127.0.0.1"


def test_a_bad_address_is_refused_and_nothing_registered(settings: Settings) -> None:
    with open_inventory(settings) as inv:
        for bad in ("localhost", "0.0.0.0:80", "[::1]", "256.1.1.1", ""):
            with pytest.raises(UsageError, match=r"host cloud003: --publish-address"):
                inv.add_host("cloud003", ENGINE, publish_address=bad)
        assert inv.get_host("cloud003") is None
        assert inv.add_host("cloud003", ENGINE, publish_address="::").publish_address == "::"


def test_readding_with_another_address_is_a_conflict(settings: Settings) -> None:
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE)
        assert inv.add_host("cloud001", ENGINE, publish_address="127.0.0.1").name == "cloud001"
        with pytest.raises(ConflictError, match="other settings"):
            inv.add_host("cloud001", ENGINE, publish_address="0.0.0.0")
        host = inv.get_host("cloud001")
        assert host is not None and host.publish_address == "127.0.0.1"


def test_update_host_changes_the_address_and_keeps_it(settings: Settings) -> None:
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", ENGINE)
        assert inv.update_host("cloud001", publish_address="0.0.0.0").publish_address == "0.0.0.0"
        assert inv.update_host("cloud001", capacity=3).publish_address == "0.0.0.0"
        with pytest.raises(UsageError, match="--publish-address"):
            inv.update_host("cloud001", publish_address="nowhere")


def test_cli_add_set_list(run: Any) -> None:
    code, out, err = run(*ADD, "--publish-address", "not-an-ip", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["error"]["kind"] == "usage"
    assert "--publish-address" in doc["error"]["message"] and "cloud007" in doc["error"]["message"]
    code, out, _ = run("hosts", "list", "--json")
    assert json.loads(out)["hosts"] == []  # nothing registered
    code, out, err = run(*ADD, "--publish-address", "0.0.0.0")
    assert code == 0 and "publish address 0.0.0.0" in err
    code, out, _ = run("hosts", "list")
    assert out.splitlines()[1].endswith(f"{ENGINE} (publish 0.0.0.0)")
    code, out, err = run(*ADD)  # the default 127.0.0.1 is another setting
    assert code == 1 and "exists with other settings" in err and "--publish-address" in err
    code, out, err = run("hosts", "set", "cloud007", "--publish-address", "127.0.0.1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["changed"] is True and doc["host"]["publish_address"] == "127.0.0.1"
    code, out, err = run("hosts", "set", "cloud007", "--publish-address", "127.0.0.1")
    assert code == 0 and "up to date" in err
    code, out, _ = run("hosts", "list")
    assert out.splitlines()[1].endswith(ENGINE)
    code, out, err = run("hosts", "set", "cloud007", "--publish-address", "x", "--json")
    assert code == 2 and "--publish-address" in json.loads(out)["error"]["message"]


def test_the_host_engine_publishes_on_the_records_address(settings: Settings) -> None:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    ctx.inventory.add_host("cloud002", ENGINE, publish_address="0.0.0.0")
    engine = ctx.engine("cloud002")
    assert engine.publish_address == "0.0.0.0"
    engine._client = mock.MagicMock()  # no connection
    view = engine.owned_by(Owner("installation", "practice"))
    assert view.publish_address == "0.0.0.0"
    ctx.inventory.close()


def test_create_binds_the_ports_on_the_publish_address() -> None:
    spec = ContainerSpec(name="nc01-cloud002-app", image="img", ports={80: 0, 443: 8443})
    for address in ("127.0.0.1", "0.0.0.0"):
        engine = DockerEngine(ENGINE, publish_address=address)
        engine._client = mock.MagicMock()
        engine._create(spec, "hash")
        _, kwargs = engine._client.containers.create.call_args
        assert kwargs["ports"] == {"80/tcp": (address, None), "443/tcp": (address, 8443)}
    assert DockerEngine(ENGINE).publish_address == "127.0.0.1"


def test_the_spec_hash_follows_the_address_of_published_ports() -> None:
    published = ContainerSpec(name="c", image="i", ports={80: 0})
    unpublished = ContainerSpec(name="c", image="i")
    assert published.spec_hash("id") == published.spec_hash("id", "127.0.0.1")  # unchanged
    assert published.spec_hash("id", "0.0.0.0") != published.spec_hash("id")
    assert unpublished.spec_hash("id", "0.0.0.0") == unpublished.spec_hash("id")
