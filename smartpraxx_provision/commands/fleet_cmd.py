"""``hosts bootstrap HOST [--check]``: make a server a ready fleet host with Ansible.

The ``hosts`` group itself (add/list/drain) lives in ``hosts_cmd.py``, which calls
:func:`add_bootstrap_command` on it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .common import emit, op_context


def add_bootstrap_command(hosts_app: typer.Typer) -> None:
    @hosts_app.command("bootstrap")
    def bootstrap(
        ctx: typer.Context,
        host: Annotated[
            str, typer.Argument(help="cloudYYY, or the identity host (e.g. mein.smartpraxx.de).")
        ],
        check: Annotated[
            bool,
            typer.Option(
                "--check", "--dry-run", help="Ansible check mode: show what would change."
            ),
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
    ) -> None:
        """Run the host's playbook (Docker, LUKS check, firewall, SSH, Caddy + routes, backups;
        Keycloak + PostgreSQL on the identity host) and mark a cloudYYY host active.

        Ansible's output streams to stderr. Re-running is safe: a converged host reports
        changed=0.
        """
        from ..operations.fleet import bootstrap_host

        result = bootstrap_host(op_context(ctx, json_out), host, check=check)
        emit(ctx, json_out, result.to_dict())
