"""Nextcloud STAND-IN: a test double of the official ``nextcloud:*-apache`` image interface.

This is NOT Nextcloud. It exists because no real Nextcloud can be installed on the machines
that run smartpraxx-provision's tests. It mimics what the provisioning code touches: the
env-driven first-start install against a real MariaDB and Redis, ``php occ ...`` run as
www-data through ``docker exec`` (every command and option checked against the vendored
``reference/nextcloud-occ-commands.json`` captured from a real Nextcloud 34.0.1), and the
HTTP endpoints ``/status.php`` and ``/ocs/v2.php/cloud/capabilities``. See ../README.md.
"""

from __future__ import annotations

from pathlib import Path

STANDIN_HEADER = ("X-Smartpraxx-Standin", "nextcloud")
BANNER = (
    "*** NEXTCLOUD STAND-IN: test double of the official nextcloud image for "
    "smartpraxx-provision tests. This is NOT Nextcloud. ***"
)
VERSION = "34.0.1.2"
VERSION_STRING = "34.0.1"
PRODUCT = "Nextcloud"
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"
