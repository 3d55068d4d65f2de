"""``hosts add|set|list|drain|activate`` (and ``hosts bootstrap`` from fleet_cmd): the fleet
hosts ``cloudYYY`` in the inventory, their Docker engine endpoints and capacity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..output import Reporter, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")]
HostArg = Annotated[str, typer.Argument(help="Host name, e.g. cloud023.")]


def _tls(ca: Path | None, cert: Path | None, key: Path | None) -> dict[str, str] | None:
    given = {"ca": ca, "cert": cert, "key": key}
    if not any(given.values()):
        return None
    missing = [f"--tls-{k}" for k, v in given.items() if v is None]
    if missing:
        raise UsageError(
            f"TLS needs all of --tls-ca, --tls-cert, --tls-key (missing {', '.join(missing)})",
            obj="--tls-*",
            hint="pass the CA, client certificate and client key of the Docker engine",
        )
    out: dict[str, str] = {}
    for k, v in given.items():
        assert v is not None
        if not v.is_file():
            raise UsageError(f"TLS file {v} does not exist", obj=str(v), hint=f"fix --tls-{k}")
        out[k] = str(v.resolve())
    return out


def register(app: typer.Typer) -> None:
    hosts_app = typer.Typer(
        help="Fleet hosts (cloudYYY) and their Docker engines.", no_args_is_help=True
    )

    @hosts_app.command("add")
    def add(
        ctx: typer.Context,
        name: HostArg,
        endpoint: Annotated[
            str,
            typer.Option(
                "--endpoint",
                help="unix:///var/run/docker.sock | ssh://user@host | "
                "tcp://host:2376 (with --tls-*).",
            ),
        ],
        capacity: Annotated[int, typer.Option("--capacity", min=0, help="Max. slots.")] = 50,
        bootstrapping: Annotated[
            bool, typer.Option("--bootstrapping", help="Register it as not yet ready.")
        ] = False,
        tls_ca: Annotated[Path | None, typer.Option("--tls-ca", help="CA certificate.")] = None,
        tls_cert: Annotated[
            Path | None, typer.Option("--tls-cert", help="Client certificate.")
        ] = None,
        tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Client key.")] = None,
        dry_run: DryRunOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Register a host after checking its engine answers (exit 1 and nothing registered
        when it does not; --bootstrapping registers it unchecked, taking no practices)."""
        from ..inventory.store import validate_endpoint
        from ..operations.context import OpContext
        from ..operations.hosts import add_host

        tls = _tls(tls_ca, tls_cert, tls_key)
        state = "bootstrapping" if bootstrapping else "active"
        reporter = Reporter(quiet=json_out)
        op = OpContext(settings=ctx.obj.settings, reporter=reporter)
        if dry_run:
            validate_endpoint(endpoint, tls)
            existing = op.inventory.get_host(name)
            plan = {
                "host": name,
                "endpoint": endpoint,
                "capacity": capacity,
                "state": state,
                "exists": existing is not None,
                "probe": "no (bootstrapping)" if bootstrapping else "the engine must answer",
            }
            if json_out:
                print_json({"ok": True, "dry_run": True, "plan": plan})
            else:
                typer.echo(
                    f"would add host {name} ({endpoint}, capacity {capacity}, {state})"
                    if existing is None
                    else f"host {name} exists; nothing to add"
                )
            return
        result = add_host(
            op, name, endpoint, capacity=capacity, tls=tls, bootstrapping=bootstrapping
        )
        engine = result.engine
        seen = f"; engine {engine['id']} (Docker {engine['version']})" if engine else ""
        if result.changed:
            reporter.change(f"host {name} added ({endpoint}, capacity {capacity}, {state}){seen}")
        else:
            reporter.skip(f"host {name} exists, up to date{seen}")
        if json_out:
            print_json(result.to_dict())

    @hosts_app.command("set")
    def set_(
        ctx: typer.Context,
        name: HostArg,
        endpoint: Annotated[
            str | None, typer.Option("--endpoint", help="New Docker engine endpoint.")
        ] = None,
        capacity: Annotated[
            int | None, typer.Option("--capacity", min=0, help="New max. slots.")
        ] = None,
        tls_ca: Annotated[Path | None, typer.Option("--tls-ca", help="CA certificate.")] = None,
        tls_cert: Annotated[
            Path | None, typer.Option("--tls-cert", help="Client certificate.")
        ] = None,
        tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Client key.")] = None,
        no_tls: Annotated[bool, typer.Option("--no-tls", help="Drop the TLS files.")] = False,
        dry_run: DryRunOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Change a host's endpoint, TLS files or capacity (a new endpoint must answer)."""
        from ..operations.context import OpContext
        from ..operations.hosts import set_host

        tls: dict[str, str] | bool | None = False
        given = _tls(tls_ca, tls_cert, tls_key)
        if given is not None and no_tls:
            raise UsageError("--no-tls and --tls-* exclude each other", obj="--no-tls")
        if given is not None:
            tls = given
        elif no_tls:
            tls = None
        if endpoint is None and capacity is None and tls is False:
            raise UsageError(
                "nothing to change", obj=name, hint=f"smartpraxx-provision hosts set {name} --help"
            )
        reporter = Reporter(quiet=json_out)
        op = OpContext(settings=ctx.obj.settings, reporter=reporter)
        result = set_host(op, name, endpoint=endpoint, capacity=capacity, tls=tls, dry_run=dry_run)
        if json_out:
            print_json({**result.to_dict(), "dry_run": dry_run})
            return
        if dry_run:
            typer.echo(
                f"would change host {name}" if result.changed else f"host {name}: nothing to change"
            )
        elif result.changed:
            reporter.change(
                f"host {name}: endpoint {result.host.endpoint}, capacity {result.host.capacity}"
            )
        else:
            reporter.skip(f"host {name} is up to date")

    @hosts_app.command("list")
    def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Hosts with state, used/capacity and the next slot number."""
        from ..inventory import open_inventory

        with open_inventory(ctx.obj.settings) as inv:
            hosts = inv.list_hosts()
        if json_out:
            print_json({"ok": True, "hosts": [h.to_dict() for h in hosts]})
            return
        if not hosts:
            typer.echo("no hosts (smartpraxx-provision hosts add cloud001 --endpoint ...)")
            return
        typer.echo(f"{'HOST':<10} {'STATE':<14} {'USED':>9} {'NEXT':<6} {'TLS':<4} ENDPOINT")
        for h in hosts:
            used = f"{h.used}/{h.capacity}"
            typer.echo(
                f"{h.name:<10} {h.state:<14} {used:>9} nc{h.next_number:02d}   "
                f"{'yes' if h.tls else 'no':<4} {h.endpoint}"
            )

    def _set_state(
        ctx: typer.Context, name: str, state: str, dry_run: bool, json_out: bool
    ) -> None:
        from ..operations.context import OpContext
        from ..operations.hosts import set_host_state

        reporter = Reporter(quiet=json_out)
        op = OpContext(settings=ctx.obj.settings, reporter=reporter)
        before = op.inventory.get_host(name)
        result = set_host_state(op, name, state, dry_run=dry_run)
        source = before.state if before else "?"
        if dry_run:
            if json_out:
                print_json(
                    {
                        "ok": True,
                        "dry_run": True,
                        "plan": {"host": name, "from": source, "to": state},
                    }
                )
            else:
                typer.echo(
                    f"would set host {name} {source} -> {state}"
                    if result.changed
                    else f"host {name} is {state}; nothing to do"
                )
            return
        if result.changed:
            reporter.change(f"host {name}: {source} -> {state}")
        else:
            reporter.skip(f"host {name} is {state}, up to date")
        if json_out:
            print_json(result.to_dict())

    @hosts_app.command("drain")
    def drain(
        ctx: typer.Context, name: HostArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False
    ) -> None:
        """Stop placing new practices on the host (existing ones stay)."""
        _set_state(ctx, name, "draining", dry_run, json_out)

    @hosts_app.command("activate")
    def activate(
        ctx: typer.Context, name: HostArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False
    ) -> None:
        """Let the host take new practices again."""
        _set_state(ctx, name, "active", dry_run, json_out)

    @hosts_app.command("scan")
    def scan(ctx: typer.Context, name: HostArg, json_out: JsonOpt = False) -> None:
        """What lives on the host (slot objects, realms) and whose it is: ours / orphan
        (this installation's, unknown to this inventory) / foreign / unlabelled."""
        from ..operations.context import OpContext
        from ..operations.ownership import scan_host

        result = scan_host(OpContext(settings=ctx.obj.settings), name)
        if json_out:
            print_json({"ok": True, **result})
            return
        typer.echo(f"host {name} (this inventory is installation {result['installation']})")
        if not result["objects"]:
            typer.echo("no slot objects")
            return
        typer.echo(f"{'SLOT':<16} {'KIND':<10} {'NAME':<26} {'VERDICT':<11} OWNER")
        for o in result["objects"]:
            owner = (
                f"installation {o['installation']} practice {o['practice']}"
                if o["installation"]
                else "-"
            )
            extra = f" ({o['praxisname']})" if o["praxisname"] else ""
            typer.echo(
                f"{o['slot']:<16} {o['kind']:<10} {o['name']:<26} {o['verdict']:<11} {owner}{extra}"
            )

    try:
        from .fleet_cmd import add_bootstrap_command
    except ImportError:  # pragma: no cover - fleet commands not installed
        pass
    else:
        add_bootstrap_command(hosts_app)

    app.add_typer(hosts_app, name="hosts")
