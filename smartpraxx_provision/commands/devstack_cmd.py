"""``dev-stack up|down|status|mail``: the local stack (Docker engine, images, Keycloak, mail)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..output import Reporter, print_json


def _print_summary(result: dict[str, Any]) -> None:
    timings = result.get("timings") or {}
    parts = [f"{name} {secs:.1f}s" for name, secs in timings.items()]
    if parts:
        typer.echo("timings: " + ", ".join(parts), err=True)


def register(app: typer.Typer) -> None:
    stack_app = typer.Typer(
        help="The local stack: Docker engine, local images, Keycloak, mail sink.", no_args_is_help=True
    )

    @stack_app.command("up")
    def up(
        ctx: typer.Context,
        rebuild: Annotated[
            bool, typer.Option("--rebuild", help="Rebuild the service images (no cache).")
        ] = False,
        rebuild_base: Annotated[
            bool,
            typer.Option("--rebuild-base", help="Also re-run debootstrap for the base image."),
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Bring the local stack up; a second run only reports what already runs."""
        from ..devstack import stack

        result = stack.up(ctx.obj.settings, Reporter(), rebuild, rebuild_base=rebuild_base)
        if json_out:
            print_json(result)
        else:
            _print_summary(result)

    @stack_app.command("down")
    def down(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Stop Keycloak, the mail sink and dockerd if dev-stack started them; images stay."""
        from ..devstack import stack

        result = stack.down(ctx.obj.settings, Reporter())
        if json_out:
            print_json(result)

    @stack_app.command("status")
    def status(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Show what runs and which images are cached (changes nothing). Exit 1 if incomplete."""
        from ..devstack import stack

        result = stack.status(ctx.obj.settings)
        if json_out:
            print_json(result)
        else:
            eng = result["engine"]
            typer.echo(
                f"docker engine: {'answers' if eng['answers'] else 'DOWN'} at {eng['url']}"
                + (f" ({eng['version']})" if eng.get("version") else "")
                + (
                    f", started by dev-stack (pid {eng['started_by_devstack_pid']})"
                    if eng.get("started_by_devstack_pid")
                    else ""
                )
            )
            images = result["images"]
            if "error" in images:
                typer.echo(f"images: unknown ({images['error']})")
            else:
                for key, info in images.items():
                    state = "present" if info["present"] else "MISSING"
                    typer.echo(f"image {key}: {info['tag']} {state}")
            kc = result["keycloak"]
            kc_state = "answers" if kc.get("answers") else kc.get("status", "DOWN")
            typer.echo(f"keycloak: {kc_state}" + (f" at {kc['url']}" if kc.get("url") else ""))
            mail = result.get("mail") or {}
            typer.echo(
                f"mail sink: {'answers' if mail.get('answers') else 'DOWN'} at {mail.get('url')}"
                f" ({mail.get('messages', 0)} messages in {mail.get('mailbox')})"
            )
            px = result.get("proxy") or {}
            typer.echo(
                f"tls proxy: {'answers' if px.get('answers') else 'DOWN'} at https://"
                f"{px.get('https')} (CA {px.get('ca_certificate')})"
            )
        if not result["ok"]:
            raise typer.Exit(1)

    mail_app = typer.Typer(
        help="The local mail sink's mailbox: what the realms sent.", no_args_is_help=True
    )

    @mail_app.command("list")
    def mail_list(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """List the captured mails, oldest first."""
        from ..devstack import mailsink

        messages = mailsink.list_messages(ctx.obj.settings)
        if json_out:
            print_json({"ok": True, "messages": messages})
            return
        if not messages:
            typer.echo(f"no mails in {mailsink.mailbox_dir(ctx.obj.settings)}")
        for m in messages:
            typer.echo(f"{m['id']}  {', '.join(m['to'])}  {m['subject']}")

    @mail_app.command("show")
    def mail_show(
        ctx: typer.Context,
        message_id: Annotated[str, typer.Argument(help="The id from 'dev-stack mail list'.")],
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Show one captured mail: headers, text and its links."""
        from ..devstack import mailsink

        message = mailsink.show_message(ctx.obj.settings, message_id)
        if json_out:
            print_json({"ok": True, "message": message})
            return
        for key in ("id", "date", "from", "subject"):
            typer.echo(f"{key}: {message[key]}")
        typer.echo(f"to: {', '.join(message['to'])}")
        typer.echo("")
        typer.echo(message["text"])

    stack_app.add_typer(mail_app, name="mail")
    app.add_typer(stack_app, name="dev-stack")
