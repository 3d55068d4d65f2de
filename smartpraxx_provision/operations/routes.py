"""Proxy routing files rendered from the inventory into ``<state_dir>/proxy/``.

``identity-routes.caddy`` routes ``mein.smartpraxx.de/<praxisname>`` (and former names in
their grace period) to each realm's start page; ``<host>.caddy`` routes each slot's host name
to its app container through the port the container publishes on the host's 127.0.0.1 (the
host's Caddy runs outside Docker and cannot resolve container names). Ansible copies them to
the hosts and reloads Caddy gracefully.
"""

from __future__ import annotations

from pathlib import Path

from ..render.proxy import render_host_routes, render_start_page_routes
from ..secrets.filestore import atomic_write
from .context import OpContext


def _write_if_changed(ctx: OpContext, path: Path, text: str) -> bool:
    data = text.encode()
    if path.exists() and path.read_bytes() == data:
        ctx.reporter.skip(f"{path.name} up to date")
        return False
    atomic_write(path, data, mode=0o644)
    ctx.reporter.change(f"{path.name} written")
    return True


def proxy_dir(ctx: OpContext) -> Path:
    return ctx.settings.state_dir / "proxy"


def write_start_page_routes(ctx: OpContext) -> bool:
    practices = [
        (p.praxisname, p.realm, list(p.redirecting_names)) for p in ctx.inventory.list_practices()
    ]
    if ctx.settings.local_tls_proxy:  # the local Caddy proxies to the local Keycloak
        upstream = f"127.0.0.1:{ctx.settings.keycloak_port}"
        text = render_start_page_routes(ctx.settings, practices, keycloak_upstream=upstream)
    else:
        text = render_start_page_routes(ctx.settings, practices)
    return _write_if_changed(ctx, proxy_dir(ctx) / "identity-routes.caddy", text)


def write_host_routes(ctx: OpContext, host: str) -> bool:
    from ..errors import SmartpraxxError
    from .nextcloud_stack import slot_names

    engine = ctx.engine(host)
    sites = []
    for p in ctx.inventory.list_practices():
        if p.slot.host != host:
            continue
        try:
            port = engine.published_port(slot_names(p.slot).app, 80)
        except SmartpraxxError:
            ctx.reporter.warn(f"{p.slot.id}: app container not running, left out of the routes")
            continue
        sites.append((p.slot, f"127.0.0.1:{port}"))
    text = render_host_routes(ctx.settings, sites)
    return _write_if_changed(ctx, proxy_dir(ctx) / f"{host}.caddy", text)


def reload_local_proxy(ctx: OpContext) -> bool:
    """Embedded TLS mode: the local Caddy (``dev-stack up``) picks up the routing files."""
    if not ctx.settings.local_tls_proxy:
        return False
    from ..devstack.proxy import reload_proxy

    return reload_proxy(ctx.settings, ctx.reporter)
