"""What each package (Basis, Premium) includes: the one place that says it (pure).

Product decision (2026-12-02): both packages carry the same apps (Talk, Deck, Passwords,
Forms, as ordered in the Starter Excel); they differ in the storage each staff member gets.
The per-user quota is Nextcloud's ``files`` app setting ``default_quota`` (the value the
admin UI writes, e.g. ``"10 GB"``). The package a practice has is recorded in the inventory
at its first provision; after that it changes only with ``change-package`` (journaled,
billed once), never silently through a re-provision with another Starter Excel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Package


@dataclass(frozen=True)
class PackageContents:
    package: Package
    label: str  # as the Starter Excel and the shop write it
    default_quota: str  # Nextcloud ``files`` → ``default_quota`` for each staff member


CONTENTS: dict[Package, PackageContents] = {
    Package.BASIS: PackageContents(Package.BASIS, "Basis", "10 GB"),
    Package.PREMIUM: PackageContents(Package.PREMIUM, "Premium", "50 GB"),
}


def contents(package: Package) -> PackageContents:
    return CONTENTS[package]


def parse_package(text: str) -> Package | None:
    """``Basis`` / ``premium`` / … → the package; None when it names none."""
    wanted = text.strip().casefold()
    return next((p for p, c in CONTENTS.items() if wanted in (p.value, c.label.casefold())),
                None)


def package_config(package: Package) -> dict[str, Any]:
    """The Nextcloud app config the package decides (``occ config:import`` form)."""
    return {"apps": {"files": {"default_quota": contents(package).default_quota}}}
