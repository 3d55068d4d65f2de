"""Proxy (Caddy) renders: determinism, profile differences, input checks, and the real
``caddy`` binary's verdict (adapt/validate/fmt) on every rendered file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import Slot
from smartpraxx_provision.errors import UsageError
from smartpraxx_provision.render.proxy import (
    render_host_routes,
    render_slot_site,
    render_start_page_routes,
)

CADDY = shutil.which("caddy")
needs_caddy = pytest.mark.skipif(CADDY is None, reason="caddy binary not installed (apt caddy)")

SITES = [
    (Slot("cloud023", 7), "nc07-cloud023-app:80"),
    (Slot("cloud023", 2), "nc02-cloud023-app:80"),
]
PRACTICES: list[tuple[str, str, list[str]]] = [
    ("praxis-mueller", "nc07-cloud023", ["praxis-mueller-alt"]),
    ("dr-schmidt", "nc02-cloud023", []),
]


def _settings(tmp_path: Path, profile: str) -> Settings:
    return load_settings(env={}, overrides={"profile": profile, "state_dir": str(tmp_path)})


@pytest.fixture(params=["embedded", "production"])
def any_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _settings(tmp_path, request.param)


# --- pure properties ------------------------------------------------------------------


def test_renders_are_deterministic_and_sorted(any_settings: Settings) -> None:
    first = render_host_routes(any_settings, SITES)
    again = render_host_routes(any_settings, list(reversed(SITES)))
    assert first == again
    assert first.index("nc02.cloud023") < first.index("nc07.cloud023")
    start = render_start_page_routes(any_settings, PRACTICES)
    assert start == render_start_page_routes(any_settings, list(reversed(PRACTICES)))
    assert start.index("/dr-schmidt") < start.index("/praxis-mueller")


def test_production_site_uses_automatic_https_and_hsts(tmp_path: Path) -> None:
    site = render_slot_site(_settings(tmp_path, "production"), SITES[0][0], SITES[0][1])
    assert site.splitlines()[1] == "nc07.cloud023.smartpraxx.de {"
    assert "Strict-Transport-Security" in site
    assert "reverse_proxy nc07-cloud023-app:80" in site
    assert "redir /.well-known/carddav /remote.php/dav/ 301" in site
    assert "redir /.well-known/caldav /remote.php/dav/ 301" in site


def test_embedded_site_is_plain_http_without_hsts(tmp_path: Path) -> None:
    site = render_slot_site(_settings(tmp_path, "embedded"), SITES[0][0], SITES[0][1])
    assert "http://nc07.cloud023.smartpraxx.de {" in site
    assert "Strict-Transport-Security" not in site
    assert 'X-Content-Type-Options "nosniff"' in site


def test_start_page_redirects_names_and_former_names(tmp_path: Path) -> None:
    text = render_start_page_routes(_settings(tmp_path, "production"), PRACTICES)
    assert "mein.smartpraxx.de {" in text
    assert "redir /praxis-mueller /praxis-mueller/ 302" in text
    assert "root * /srv/smartpraxx/startseiten/praxis-mueller" in text
    assert "redir @former_praxis-mueller-alt /praxis-mueller/ 302" in text
    assert "script-src 'self'" in text and "frame-ancestors 'none'" in text
    assert "handle /realms/* {" in text and "handle /resources/* {" in text
    assert "301" not in text  # never a cached permanent redirect for a practice path


@pytest.mark.parametrize(
    "upstream", ["nc07-cloud023-app", "app:80; respond 200", "a b:80", "app:80\n}", ""]
)
def test_bad_upstream_is_refused(any_settings: Settings, upstream: str) -> None:
    with pytest.raises(UsageError):
        render_slot_site(any_settings, SITES[0][0], upstream)


@pytest.mark.parametrize(
    "name", ["realms", "resources", "Praxis", "praxis mueller", "praxis/x", "-x", "x}", ""]
)
def test_bad_praxisname_is_refused(any_settings: Settings, name: str) -> None:
    with pytest.raises(UsageError):
        render_start_page_routes(any_settings, [(name, "nc07-cloud023", [])])
    with pytest.raises(UsageError):
        render_start_page_routes(any_settings, [("praxis-ok", "nc07-cloud023", [name])])


def test_live_name_claimed_twice_is_refused(any_settings: Settings) -> None:
    with pytest.raises(UsageError, match="claimed"):
        render_start_page_routes(
            any_settings, [("praxis-a", "nc01-cloud001", []), ("praxis-a", "nc02-cloud001", [])]
        )


def test_live_name_wins_over_former_names(any_settings: Settings) -> None:
    text = render_start_page_routes(
        any_settings,
        [
            ("praxis-a", "nc01-cloud001", ["praxis-b", "praxis-x"]),
            ("praxis-b", "nc02-cloud001", ["praxis-x", "praxis-y"]),
        ],
    )
    assert "handle /praxis-b/ {" in text
    assert "@former_praxis-b" not in text  # praxis-b is live again
    assert "praxis-x" not in text  # ambiguous former name: no redirect
    assert "redir @former_praxis-y /praxis-b/ 302" in text


def test_routing_file_is_per_host_and_each_slot_once(any_settings: Settings) -> None:
    with pytest.raises(UsageError, match="one routing file per host"):
        render_host_routes(any_settings, [*SITES, (Slot("cloud024", 1), "nc01-cloud024-app:80")])
    with pytest.raises(UsageError, match="twice"):
        render_host_routes(any_settings, [SITES[0], SITES[0]])


def test_bad_public_scheme_is_refused(tmp_path: Path) -> None:
    # refused when the settings are loaded, before anything renders (config.RULES)
    with pytest.raises(UsageError, match="public_scheme"):
        load_settings(env={}, overrides={"state_dir": str(tmp_path), "public_scheme": "ftp"})


# --- the real caddy binary ------------------------------------------------------------


def _caddy(args: list[str], config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    assert CADDY is not None
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    return subprocess.run(
        [CADDY, *args, "--config", str(config), "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )


def _adapt(text: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "Caddyfile"
    path.write_text(text, encoding="utf-8")
    done = _caddy(["adapt"], path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "not formatted" not in done.stderr, done.stderr
    valid = _caddy(["validate"], path, tmp_path)
    assert valid.returncode == 0, valid.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _hosts_and_dials(config: dict[str, Any]) -> tuple[set[str], set[str]]:
    hosts: set[str] = set()
    dials: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            hosts.update(node.get("host", []) if isinstance(node.get("host"), list) else [])
            if "dial" in node:
                dials.add(node["dial"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return hosts, dials


@needs_caddy
def test_caddy_accepts_host_routes(any_settings: Settings, tmp_path: Path) -> None:
    config = _adapt(render_host_routes(any_settings, SITES), tmp_path)
    hosts, dials = _hosts_and_dials(config)
    assert hosts == {"nc02.cloud023.smartpraxx.de", "nc07.cloud023.smartpraxx.de"}
    assert dials == {"nc02-cloud023-app:80", "nc07-cloud023-app:80"}
    listen = {a for s in config["apps"]["http"]["servers"].values() for a in s["listen"]}
    if any_settings.public_scheme == "https":
        assert ":443" in listen  # automatic HTTPS (ACME); Caddy adds the :80 redirect itself
    else:
        assert listen == {":80"}


@needs_caddy
def test_caddy_accepts_start_page_routes(any_settings: Settings, tmp_path: Path) -> None:
    config = _adapt(render_start_page_routes(any_settings, PRACTICES), tmp_path)
    hosts, dials = _hosts_and_dials(config)
    assert hosts == {"mein.smartpraxx.de"}
    assert dials == {"127.0.0.1:8080"}


@needs_caddy
def test_caddy_accepts_an_empty_routing_file(any_settings: Settings, tmp_path: Path) -> None:
    text = render_host_routes(any_settings, [])
    path = tmp_path / "Caddyfile"
    path.write_text(text, encoding="utf-8")
    assert _caddy(["adapt"], path, tmp_path).returncode == 0


@pytest.mark.parametrize("root", ["relative/dir", "/srv/x y", "/srv/x}\nrespond 1", ""])
def test_bad_start_pages_root_is_refused(any_settings: Settings, root: str) -> None:
    with pytest.raises(UsageError, match="absolute path"):
        render_start_page_routes(any_settings, PRACTICES, pages_root=root)


def test_issuer_origin_is_the_one_extra_connect_source(any_settings: Settings) -> None:
    text = render_start_page_routes(any_settings, PRACTICES,
                                    issuer_origin="http://127.0.0.1:8180")
    assert "connect-src 'self' http://127.0.0.1:8180;" in text
    with pytest.raises(UsageError, match="issuer origin"):
        render_start_page_routes(any_settings, PRACTICES, issuer_origin="http://x; script-src *")


def test_local_tls_proxy_sites_are_https_on_loopback_with_the_local_ca(settings) -> None:  # type: ignore[no-untyped-def]
    """Embedded + https: every site is https, bound to 127.0.0.1, certificates from Caddy's
    local CA; the start page proxies to the local Keycloak's port."""
    from smartpraxx_provision.config import replace as _replace
    from smartpraxx_provision.domain.model import Slot as _Slot
    from smartpraxx_provision.render.proxy import render_slot_site, render_start_page_routes

    s = _replace(settings, domain="smartpraxx.localhost", identity_host="mein.smartpraxx.localhost",
                 public_scheme="https")
    site = render_slot_site(s, _Slot(host="cloud023", number=7), "127.0.0.1:32768")
    assert site.splitlines()[1].startswith("https://nc07.cloud023.smartpraxx.localhost {")
    assert "\tbind 127.0.0.1\n\ttls internal\n" in site
    start = render_start_page_routes(s, [("praxis-mueller", "nc07-cloud023", [])],
                                     keycloak_upstream="127.0.0.1:8180")
    assert "https://mein.smartpraxx.localhost {\n\tbind 127.0.0.1\n\ttls internal\n" in start
    assert "reverse_proxy 127.0.0.1:8180" in start
    plain = render_slot_site(settings, _Slot(host="cloud023", number=7), "127.0.0.1:32768")
    assert "tls internal" not in plain and "bind" not in plain
