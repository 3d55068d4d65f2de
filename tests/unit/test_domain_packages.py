"""What the packages include, and how a package name is read (pure)."""

from __future__ import annotations

import pytest

from smartpraxx_provision.domain.model import Package
from smartpraxx_provision.domain.packages import CONTENTS, package_config, parse_package


def test_every_package_has_contents_and_its_own_quota() -> None:
    assert set(CONTENTS) == set(Package)
    assert len({c.default_quota for c in CONTENTS.values()}) == len(Package)


@pytest.mark.parametrize(("text", "want"), [
    ("Basis", Package.BASIS), ("premium", Package.PREMIUM), (" PREMIUM ", Package.PREMIUM),
    ("Gold", None), ("", None),
])
def test_parse_package(text: str, want: Package | None) -> None:
    assert parse_package(text) is want


def test_package_config_is_the_files_default_quota() -> None:
    assert package_config(Package.PREMIUM) == {"apps": {"files": {"default_quota": "50 GB"}}}
    assert package_config(Package.BASIS)["apps"]["files"]["default_quota"] == "10 GB"
