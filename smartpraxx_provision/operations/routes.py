"""Proxy routing files and start pages rendered from the inventory into ``<state_dir>/proxy/``.

``identity-routes.caddy`` serves ``mein.smartpraxx.de/<praxisname>/`` (former names in
their grace period redirect there) from ``startseiten/<praxisname>/index.html``, rendered
from the practice's record and the third-party clients of its realm (``write_start_page``); ``<host>.caddy`` routes each slot's host name
to its app container through the port the container publishes on the host's 127.0.0.1 (the
host's Caddy runs outside Docker and cannot resolve container names). Ansible copies them to
the hosts and reloads Caddy gracefully.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

from ..config import PRIMARY_SHARD
from ..domain.startpage import ExternalApp, StartPageView, start_page_tiles
from ..inventory.models import PracticeRecord
from ..render.bundle import nextcloud_base_url, realm_issuer
from ..render.proxy import (
    IDP_REALMS_PART,
    KEYCLOAK_UPSTREAM,
    START_PAGE_ASSETS_DIR,
    render_host_routes,
    render_realm_routes,
    render_start_page_routes,
)
from ..render.startpage import render_start_page, start_page_assets
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


def start_pages_dir(ctx: OpContext) -> Path:
    return proxy_dir(ctx) / "startseiten"


def write_start_page_routes(ctx: OpContext) -> bool:
    """``identity-routes.caddy`` (the identity host's site) and ``idp-realms.caddy-part``
    (the realms of further identity shards, which the local proxy's idp socket site also
    imports); true when one changed."""
    records = ctx.inventory.list_practices()
    practices = [(p.praxisname, p.realm, list(p.redirecting_names)) for p in records]
    issuer = urlparse(ctx.settings.keycloak_public_url)
    # the local Caddy (embedded TLS mode) proxies to the local Keycloak
    upstream = (f"127.0.0.1:{ctx.settings.keycloak_port}" if ctx.settings.local_tls_proxy
                else KEYCLOAK_UPSTREAM)
    realm_upstreams = {p.realm: ctx.settings.identity_shard(p.identity_shard).upstream
                       for p in records if p.identity_shard != PRIMARY_SHARD}
    text = render_start_page_routes(
        ctx.settings, practices, keycloak_upstream=upstream,
        pages_root=str(start_pages_dir(ctx).resolve()),
        issuer_origin=f"{issuer.scheme}://{issuer.netloc}",
        realm_upstreams=realm_upstreams,
    )
    changed = _write_if_changed(ctx, proxy_dir(ctx) / "identity-routes.caddy", text)
    part = render_realm_routes(realm_upstreams)
    return _write_if_changed(ctx, proxy_dir(ctx) / IDP_REALMS_PART, part) or changed


def start_page_view(ctx: OpContext, record: PracticeRecord) -> StartPageView:
    """What the practice's start page shows: its ordered apps (inventory) and the
    third-party apps its realm has as enabled, managed clients (``app-*``)."""
    from ..render import realm
    from .subscription import is_suspended

    external = []
    for client in ctx.identity_shard(record.identity_shard).clients(record.realm):
        attrs = client.get("attributes") or {}
        client_id = str(client.get("clientId", ""))
        if (client_id.startswith("app-") and attrs.get(realm.MANAGED_ATTR) == client_id
                and client.get("enabled", True) and client.get("baseUrl")):
            roles = tuple(str(attrs.get(realm.ROLES_ATTR, "")).split())
            external.append(ExternalApp(client_id, str(client.get("name") or client_id),
                                        str(client["baseUrl"]), roles))
    return StartPageView(
        praxisname=record.praxisname,
        display_name=record.display_name,
        page_url=realm.start_page_url(ctx.settings, record.praxisname) + "/",
        issuer=realm_issuer(ctx.settings, record.slot),
        client_id=realm.START_PAGE_CLIENT,
        tiles=start_page_tiles(
            record.apps, nextcloud_base_url(ctx.settings, record.slot), external),
        suspended=is_suspended(ctx, record.praxisname),
    )


def write_start_pages(ctx: OpContext, record: PracticeRecord | None = None) -> bool:
    """Render the shared assets and ``record``'s start page; drop pages of names that are
    no longer live (renamed or decommissioned practices). True when a file changed."""
    root = start_pages_dir(ctx)
    changed = False
    for name, data in start_page_assets().items():
        changed |= _write_if_changed(ctx, root / START_PAGE_ASSETS_DIR / name, data.decode())
    if record is not None:
        page = render_start_page(start_page_view(ctx, record))
        changed |= _write_if_changed(ctx, root / record.praxisname / "index.html", page)
    live = {p.praxisname for p in ctx.inventory.list_practices()}
    for entry in sorted(root.iterdir()):
        # only directories this module writes: a page dir holds exactly index.html
        if (entry.is_dir() and entry.name != START_PAGE_ASSETS_DIR and entry.name not in live
                and [f.name for f in entry.iterdir()] == ["index.html"]):
            shutil.rmtree(entry)
            ctx.reporter.change(f"start page /{entry.name}/ removed (no such practice now)")
            changed = True
    return changed


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
