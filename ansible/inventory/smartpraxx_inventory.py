#!/usr/bin/env python3
"""Ansible script inventory: the orchestrator's hosts ARE Ansible's hosts.

Reads the same inventory store as ``smartpraxx-provision hosts list`` (settings from
smartpraxx.yaml / SMARTPRAXX_* as the CLI; ``hosts bootstrap`` exports its effective settings
to this script). Groups: ``practice_hosts`` (every host added with ``hosts add``),
``identity_hosts`` (the ``identity_host`` setting), ``hosts_<state>``. Host variables come
from the host record (``ansible_host``/``ansible_user``/``ansible_port`` from an ``ssh://``
endpoint); never secrets.

    ./smartpraxx_inventory.py --list
    ./smartpraxx_inventory.py --host cloud023
"""

from __future__ import annotations

import sys

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.operations.fleet import inventory_script_main

if __name__ == "__main__":
    sys.exit(inventory_script_main(sys.argv[1:], load_settings))
