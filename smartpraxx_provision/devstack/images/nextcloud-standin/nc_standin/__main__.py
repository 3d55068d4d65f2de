"""``python3 -m nc_standin <path/to/occ> [args]``: what the stand-in's ``php occ`` runs."""

from __future__ import annotations

import sys

from .occ import cli

sys.exit(cli())
