"""Pure parts of the local stack: apt sources → debootstrap mirror, image/spec hashes."""

from __future__ import annotations

from pathlib import Path

from smartpraxx_provision.adapters.docker_engine import ContainerSpec, healthcheck
from smartpraxx_provision.devstack.images import (
    FALLBACK_MIRROR,
    AptSource,
    context_hash,
    debian_mirror,
    debian_sources,
    read_apt_sources,
    render_deb822,
)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no
"""


def _apt_root(tmp_path: Path) -> Path:
    d = tmp_path / "apt" / "sources.list.d"
    d.mkdir(parents=True)
    (d / "debian.sources").write_text(DEB822)
    (d / "node.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.example/node_20.x\nSuites: nodistro\n"
        "Components: main\n"
    )
    (d / "other.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] https://cloud.example/apt cloud-sdk main\n"
    )
    (d / "ignored.list.disabled-by-farm").write_text(
        "deb http://nope.example/debian bookworm main\n"
    )
    return tmp_path / "apt"


def test_deb822_sources_give_the_bookworm_mirror(tmp_path: Path) -> None:
    sources = read_apt_sources(_apt_root(tmp_path))
    uris = [s.uris[0] for s in sources]
    assert "http://disabled.example/debian" not in uris
    assert "http://nope.example/debian" not in uris
    assert "https://cloud.example/apt" in uris
    assert debian_mirror(sources) == "http://mirror.example/debian"
    picked = debian_sources(sources)
    assert [(s.uris[0], s.suites) for s in picked] == [
        ("http://mirror.example/debian", ["bookworm", "bookworm-updates"]),
        ("http://mirror.example/debian-security", ["bookworm-security"]),
    ]


def test_one_line_sources_and_fallback(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "deb http://ftp.example/debian/ bookworm main contrib\n"
        "deb-src http://ftp.example/debian/ bookworm main\n"
    )
    sources = read_apt_sources(tmp_path)
    assert debian_mirror(sources) == "http://ftp.example/debian/"
    assert debian_mirror([]) == FALLBACK_MIRROR
    assert debian_mirror([AptSource(["http://x.example/ubuntu"], ["jammy"], ["main"])]) == (
        FALLBACK_MIRROR
    )


def test_rendered_sources_keep_signed_by_only_when_key_is_in_the_image(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    key = rootfs / "usr/share/keyrings/debian-archive-keyring.gpg"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"k")
    text = render_deb822(
        [
            AptSource(
                ["http://m/debian"], ["bookworm"], ["main"], str(key).replace(str(rootfs), "")
            ),
            AptSource(["http://m/debian-security"], ["bookworm-security"], ["main"], "/absent.gpg"),
        ],
        rootfs,
    )
    assert text.count("Signed-By:") == 1
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text
    assert "Suites: bookworm-security" in text


def test_context_hash_follows_files_and_base(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "entry.sh").write_text("#!/bin/sh\n")
    first = context_hash(tmp_path, "sha256:base1")
    assert context_hash(tmp_path, "sha256:base1") == first
    assert context_hash(tmp_path, "sha256:base2") != first
    (tmp_path / "entry.sh").chmod(0o755)
    assert context_hash(tmp_path, "sha256:base1") != first
    (tmp_path / "entry.sh").write_text("#!/bin/sh\necho changed\n")
    assert context_hash(tmp_path, "sha256:base1") != first


def test_spec_hash_changes_with_every_field_and_hides_values() -> None:
    spec = ContainerSpec(name="c", image="i", env={"PW": "secret"}, ports={80: 0})
    h = spec.spec_hash("sha256:1")
    assert len(h) == 64 and "secret" not in h
    assert spec.spec_hash("sha256:1") == h
    assert spec.spec_hash("sha256:2") != h
    assert (
        ContainerSpec(name="c", image="i", env={"PW": "other"}, ports={80: 0}).spec_hash("sha256:1")
        != h
    )
    assert (
        ContainerSpec(name="c", image="i", env={"PW": "secret"}, ports={80: 8080}).spec_hash(
            "sha256:1"
        )
        != h
    )


def test_healthcheck_is_in_nanoseconds() -> None:
    hc = healthcheck(["CMD", "true"], interval=0.5, timeout=2, retries=3, start_period=1)
    assert hc == {
        "test": ["CMD", "true"],
        "interval": 500_000_000,
        "timeout": 2_000_000_000,
        "retries": 3,
        "start_period": 1_000_000_000,
    }


def test_every_service_image_is_built_from_the_apt_image_which_is_built_from_the_base() -> None:
    from smartpraxx_provision.devstack.images import BASE_TAG, from_tag, service_images

    keys = [img.key for img in service_images("t1")]
    assert keys[0] == "apt" and from_tag("apt", "t1") == BASE_TAG
    for key in keys[1:]:  # built after the apt image, FROM it (in the local tag)
        assert from_tag(key, "t1") == "smartpraxx/debian-apt:t1", key
    dockerfiles = [img.context / "Dockerfile" for img in service_images()]
    for dockerfile in dockerfiles[1:]:
        text = dockerfile.read_text(encoding="utf-8")
        assert "apt-get" not in text and "install-packages" in text, dockerfile
