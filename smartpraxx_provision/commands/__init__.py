"""CLI command groups, one module per area; each exposes ``register(app)``.

Commands stay thin: parse options, call one operation (``operations``/``starter``/
``devstack``), print the result through ``common.emit`` (the one --json envelope). The command
functions live at module level; ``register`` attaches them (``common.group``/``add_commands``).
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from . import (
    broadcast_cmd,
    config_cmd,
    devstack_cmd,
    hosts_cmd,
    invite_cmd,
    operations_cmd,
    ops_cmd,
    orders_cmd,
    practices_cmd,
    starter_cmd,
    support_cmd,
)

REGISTRY: list[Callable[[typer.Typer], None]] = [
    config_cmd.register,
    starter_cmd.register,
    ops_cmd.register,
    invite_cmd.register,
    devstack_cmd.register,
    hosts_cmd.register,
    practices_cmd.register,
    orders_cmd.register,
    operations_cmd.register,
    broadcast_cmd.register,
    support_cmd.register,
]
