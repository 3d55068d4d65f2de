"""Reverse-proxy (Caddy) configuration: pure, deterministic renders.

Three renders, all Caddyfile text:

* ``render_slot_site`` — the site block of one slot ``ncXX.cloudYYY.<domain>``: automatic
  ACME TLS (production, ``public_scheme == "https"``; Caddy also redirects HTTP to HTTPS) or a
  plain ``http://`` site (embedded profile), HSTS and security headers, Nextcloud's
  ``/.well-known/carddav|caldav`` redirects, ``reverse_proxy`` to the slot's app container.
* ``render_host_routes`` — the whole routing file of one ``cloudYYY`` host (sites sorted).
  The practice_host Ansible role copies it to ``/etc/caddy/routes/`` and reloads Caddy.
* ``render_start_page_routes`` — the identity host (``mein.smartpraxx.de``): ``/<praxisname>/``
  serves the practice's start page (static files under ``pages_root``, rendered by
  ``render/startpage.py``, with a strict Content-Security-Policy), former names (rename
  grace period) redirect to the new path, Keycloak's ``/realms/`` and ``/resources/`` are
  proxied.

Every value that ends up in the file is checked against a strict pattern first, so nothing
from a practice's data can inject Caddyfile syntax. No I/O besides reading the templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..domain.model import Slot
from ..errors import UsageError
from .startpage import ASSETS_PATH
from .templates import render

TEMPLATE_DIR = "proxy"

# Keycloak on the identity host listens here (http, behind Caddy); see ansible identity_host.
KEYCLOAK_UPSTREAM = "127.0.0.1:8080"

# The file (next to the routing files) of the realms on further identity shards that the
# local proxy's idp socket site imports; not a *.caddy file, so the route glob skips it.
IDP_REALMS_PART = "idp-realms.caddy-part"

# Where the identity host keeps the rendered start pages (the identity_host role copies
# <state_dir>/proxy/startseiten/ there); the embedded profile serves the state dir itself.
START_PAGES_ROOT = "/srv/smartpraxx/startseiten"
START_PAGE_ASSETS_DIR = "_assets"

# Paths on the identity host that are not practice start pages.
RESERVED_PATHS = frozenset(
    {"realms", "resources", "admin", "js", "health", "metrics", "robots.txt", "favicon.ico"}
)

_UPSTREAM_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?:[0-9]{1,5}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_PATH_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_REALM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_ROOT_RE = re.compile(r"^(?:/[A-Za-z0-9._+-]+)+$")
_ORIGIN_RE = re.compile(r"^https?://[a-z0-9.-]+(?::[0-9]{1,5})?$")


@dataclass(frozen=True)
class _StartPage:
    name: str
    realm: str
    former_names: tuple[str, ...]


def _render(template: str, **context: Any) -> str:
    return render(f"{TEMPLATE_DIR}/{template}", **context)


def _require(ok: bool, problem: str, *, obj: str, hint: str) -> None:
    """A UsageError ``problem`` (naming ``obj``, with ``hint``) unless ``ok``."""
    if not ok:
        raise UsageError(problem, obj=obj, hint=hint)


def _https(settings: Settings) -> bool:
    scheme = settings.public_scheme
    _require(scheme in ("http", "https"), f"public_scheme must be http or https, not {scheme!r}",
             obj="setting public_scheme", hint="smartpraxx-provision --set public_scheme=https ...")
    return scheme == "https"


def _check_hostname(name: str, what: str) -> str:
    _require(bool(_HOSTNAME_RE.match(name)), f"{what} {name!r} is not a valid lower-case host name",
             obj=what, hint="fix the setting (domain / identity_host)")
    return name


def _check_upstream(upstream: str, obj: str) -> str:
    _require(bool(_UPSTREAM_RE.match(upstream)), f"proxy upstream {upstream!r} must be <host>:<port>",
             obj=obj, hint="pass the app container as name:port, e.g. nc07-cloud023-app:80")
    return upstream


def _check_path_name(name: str, obj: str) -> str:
    _require(bool(_PATH_NAME_RE.match(name)) and name not in RESERVED_PATHS,
             f"praxisname {name!r} cannot be a start-page path "
             "(lower-case letters, digits and '-' only; not a reserved path)",
             obj=obj, hint="choose another praxisname with smartpraxx-provision rename")
    return name


def _address(settings: Settings, hostname: str) -> str:
    # No scheme = Caddy's automatic HTTPS (ACME certificate + HTTP->HTTPS redirect).
    # The embedded stack's local Caddy: https on its https_port, `tls internal`, 127.0.0.1.
    if settings.local_tls_proxy:
        return f"https://{hostname}"
    return hostname if _https(settings) else f"http://{hostname}"


def render_slot_site(settings: Settings, slot: Slot, upstream: str) -> str:
    """The Caddy site block of one slot, proxied to ``upstream`` (``name:port``)."""
    fqdn = _check_hostname(slot.fqdn(settings.domain), "slot host name")
    return _render(
        "slot_site.caddy.j2",
        slot_id=slot.id,
        address=_address(settings, fqdn),
        https=_https(settings),
        local_tls=settings.local_tls_proxy,
        upstream=_check_upstream(upstream, f"slot {slot.id}"),
    )


def render_host_routes(settings: Settings, sites: Sequence[tuple[Slot, str]]) -> str:
    """The routing file of one ``cloudYYY`` host: a site per slot, sorted by slot.

    All slots must live on the same host, each once. An empty list renders a valid file
    without sites; the host is taken from the slots, so pass at least one to name it.
    """
    ordered = sorted(sites, key=lambda item: item[0])
    hosts = {slot.host for slot, _ in ordered}
    _require(len(hosts) <= 1, f"one routing file per host, got slots of {', '.join(sorted(hosts))}",
             obj="routing file", hint="render one file per cloudYYY host")
    ids = [slot.id for slot, _ in ordered]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    _require(not duplicates, f"slot(s) {', '.join(duplicates)} listed twice",
             obj="routing file", hint="pass each slot once")
    host = next(iter(hosts)) if hosts else "(no slots)"
    blocks = [render_slot_site(settings, slot, upstream) for slot, upstream in ordered]
    return _render("host_routes.caddy.j2", host=host, sites=blocks)


def _realm_upstreams(realms: Mapping[str, str]) -> list[tuple[str, str]]:
    """The checked (realm, shard upstream) pairs, sorted by realm."""
    for realm, upstream in realms.items():
        _require(bool(_REALM_RE.match(realm)), f"realm name {realm!r} is invalid",
                 obj=f"realm {realm}", hint="check the inventory")
        _check_upstream(upstream, f"identity shard of realm {realm}")
    return sorted(realms.items())


def render_realm_routes(realms: Mapping[str, str]) -> str:
    """The route blocks (``/realms/<realm>`` and below) of the realms on further identity
    shards, for the local proxy's idp socket site to import (:data:`IDP_REALMS_PART`)."""
    return _render("realm_routes.caddy.j2", standalone=True, realms=_realm_upstreams(realms))


def _start_pages(practices: Iterable[tuple[str, str, Sequence[str]]]) -> list[_StartPage]:
    """The checked start pages, sorted by name, each with the former names that redirect."""
    pages: list[_StartPage] = []
    for name, realm, former in practices:
        obj = f"practice {name}"
        _require(bool(_REALM_RE.match(realm)), f"realm name {realm!r} is invalid", obj=obj,
                 hint="check the inventory")
        pages.append(
            _StartPage(
                name=_check_path_name(name, obj),
                realm=realm,
                former_names=tuple(sorted({_check_path_name(f, obj) for f in former} - {name})),
            )
        )
    pages.sort(key=lambda p: p.name)
    live: dict[str, int] = {}
    claims: dict[str, int] = {}
    for page in pages:
        live[page.name] = live.get(page.name, 0) + 1
        for former in page.former_names:
            claims[former] = claims.get(former, 0) + 1
    twice = sorted(name for name, count in live.items() if count > 1)
    if twice:
        raise UsageError(
            f"start-page path /{twice[0]} is claimed by two practices",
            obj=f"practice {twice[0]}",
            hint="every praxisname must be unique",
        )
    # A live name always wins over a former one (its grace period is over once the name is
    # taken again); a former name of two practices is ambiguous and gets no redirect.
    return [
        _StartPage(
            p.name,
            p.realm,
            tuple(f for f in p.former_names if f not in live and claims[f] == 1),
        )
        for p in pages
    ]


def _start_page_csp(issuer_origin: str | None) -> str:
    """The start pages' Content-Security-Policy: only the page's own origin and the issuer."""
    connect = "'self'"
    if issuer_origin is not None:
        _require(bool(_ORIGIN_RE.match(issuer_origin)),
                 f"issuer origin {issuer_origin!r} is not scheme://host[:port]",
                 obj="setting keycloak_public_url", hint="smartpraxx-provision config show")
        connect += f" {issuer_origin}"
    return (f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            f"connect-src {connect}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def render_start_page_routes(
    settings: Settings,
    practices: Iterable[tuple[str, str, Sequence[str]]],
    *,
    keycloak_upstream: str = KEYCLOAK_UPSTREAM,
    pages_root: str = START_PAGES_ROOT,
    issuer_origin: str | None = None,
    realm_upstreams: Mapping[str, str] | None = None,
) -> str:
    """The identity host's site: ``/<praxisname>/`` serves ``<pages_root>/<praxisname>/``.

    ``realm_upstreams`` maps the realms of further identity shards to their shard's
    ``host:port``; every other realm goes to ``keycloak_upstream`` (the primary shard).

    ``issuer_origin`` is where the pages' script talks to Keycloak (default: the identity
    host itself); it is the only origin besides the page's own in the Content-Security-Policy.

    ``practices`` holds ``(praxisname, realm, former_names)``; former names (still in the
    rename grace period) redirect to ``/<praxisname>``; a former name that is some practice's
    live name, or a former name of two practices, gets no redirect. Redirects are 302, never
    301: a browser must not cache a path that may change again. Sorted by praxisname.
    """
    identity = _check_hostname(settings.identity_host, "identity host name")
    pages = _start_pages(practices)
    _require(bool(_ROOT_RE.match(pages_root)),
             f"start pages root {pages_root!r} must be an absolute path",
             obj="start pages root", hint="check the state_dir setting")
    csp = _start_page_csp(issuer_origin)
    return _render(
        "start_page.caddy.j2",
        identity_host=identity,
        address=_address(settings, identity),
        https=_https(settings),
        local_tls=settings.local_tls_proxy,
        practices=pages,
        keycloak_upstream=_check_upstream(keycloak_upstream, "keycloak upstream"),
        realms=_realm_upstreams(realm_upstreams or {}),
        pages_root=pages_root,
        assets_dir=START_PAGE_ASSETS_DIR,
        assets_path=ASSETS_PATH,
        csp=csp,
    )
