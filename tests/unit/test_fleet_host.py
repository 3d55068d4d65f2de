"""The test fleet hosts' pure parts: the TLS material and the container's spec."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack import fleet_host


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, overrides={"state_dir": str(tmp_path / "state")})


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_tls_material_is_made_once_with_private_keys(settings: Settings) -> None:
    server_dir, client = fleet_host.ensure_tls(settings, "cloud950")
    again = fleet_host.ensure_tls(settings, "cloud950")
    assert again == (server_dir, client)
    assert _cert(Path(client["cert"])).serial_number == _cert(Path(again[1]["cert"])).serial_number
    for key in (Path(client["key"]), server_dir / "server-key.pem"):
        assert key.stat().st_mode & 0o777 == 0o600
    # the CA's key stays outside what the container mounts
    assert not any(p.name == "ca-key.pem" for p in server_dir.iterdir())
    assert (server_dir.parent / "ca-key.pem").is_file()


def test_the_server_certificate_is_for_loopback_and_the_client_one_for_clients(
    settings: Settings,
) -> None:
    server_dir, client = fleet_host.ensure_tls(settings, "cloud950")
    server = _cert(server_dir / "server-cert.pem")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client_usage = _cert(Path(client["cert"])).extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    assert list(client_usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_mutual_tls_handshake_succeeds_with_the_files(settings: Settings) -> None:
    """Python's ssl (what the docker SDK uses) accepts the chain both ways on 127.0.0.1."""
    server_dir, client = fleet_host.ensure_tls(settings, "cloud950")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_dir / "server-cert.pem", server_dir / "server-key.pem")
    server_ctx.load_verify_locations(server_dir / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            peer = tls.getpeercert() or {}
            seen.append(str(dict(x[0] for x in peer.get("subject", ()))["commonName"]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=client["ca"])
    client_ctx.load_cert_chain(client["cert"], client["key"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    thread.join(timeout=5)
    listener.close()
    assert seen == ["smartpraxx-provision (cloud950)"]


def test_the_container_spec_pins_engine_and_slot_ports(settings: Settings) -> None:
    server_dir, _ = fleet_host.ensure_tls(settings, "cloud950")
    spec = fleet_host._spec(settings, "cloud950", server_dir, 21000, "smartpraxx/fleet-host:dev")
    assert spec.ports[fleet_host.ENGINE_PORT] == 21000
    block = sorted(p for p in spec.ports if p != fleet_host.ENGINE_PORT)
    assert block == list(range(21001, 21001 + fleet_host.SLOT_PORTS))
    assert all(spec.ports[p] == p for p in block)  # same numbers outside and inside
    assert spec.extra["sysctls"] == {"net.ipv4.ip_local_port_range": f"{block[0]} {block[-1]}"}
    assert "privileged" not in spec.extra
    assert spec.extra["cap_add"] == ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]
    assert spec.volumes[str(server_dir.resolve())] == "/etc/docker/tls"
    assert spec.labels == fleet_host.fleet_labels(settings, "cloud950")


def test_labels_differ_per_state_dir(tmp_path: Path) -> None:
    a = load_settings(env={}, overrides={"state_dir": str(tmp_path / "a")})
    b = load_settings(env={}, overrides={"state_dir": str(tmp_path / "b")})
    assert fleet_host.fleet_labels(a, "cloud950") != fleet_host.fleet_labels(b, "cloud950")


def test_hosts_add_args_register_tls_and_the_port_plan(settings: Settings) -> None:
    _, client = fleet_host.ensure_tls(settings, "cloud950")
    host = fleet_host.FleetHost("cloud950", "c", "tcp://127.0.0.1:21000", client, (21001, 21024))
    args = host.hosts_add_args()
    assert args[:5] == ["hosts", "add", "cloud950", "--endpoint", "tcp://127.0.0.1:21000"]
    pairs = dict(zip(args[5::2], args[6::2], strict=True))
    assert pairs["--tls-ca"] == client["ca"] and pairs["--publish-address"] == "0.0.0.0"
    assert pairs["--slot-port-base"] == "21001"


def test_a_free_port_block_is_free(settings: Settings) -> None:
    first = fleet_host.free_port_block(size=5, search=(23000, 23100))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", first))  # free indeed
    taken = socket.socket()
    taken.bind(("127.0.0.1", 23200))
    try:
        assert fleet_host.free_port_block(size=5, search=(23200, 23215)) == 23205
    finally:
        taken.close()
