"""Identity shards (issue 18): the settings that name them, the routes that send each realm to
its shard, and the local Keycloaks `dev-stack up` runs for them. Placement is tested on both
inventory backends in tests/integration/test_inventory.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartpraxx_provision.adapters.keycloak import ADMIN_SECRET, admin_secret
from smartpraxx_provision.config import PRIMARY_SHARD, IdentityShard, load_settings
from smartpraxx_provision.devstack import keycloak as devkc
from smartpraxx_provision.devstack.proxy import render_main_caddyfile
from smartpraxx_provision.errors import ConfigError, UsageError
from smartpraxx_provision.render.proxy import render_realm_routes, render_start_page_routes

TLS = {"public_scheme": "https", "identity_host": "mein.smartpraxx.localhost",
       "domain": "smartpraxx.localhost"}


def _settings(tmp_path: Path, **overrides: str) -> object:
    return load_settings(overrides={"state_dir": str(tmp_path), **TLS, **overrides})


def test_the_primary_shard_comes_first_then_the_named_ones(tmp_path: Path) -> None:
    s = load_settings(overrides={
        "state_dir": str(tmp_path), **TLS, "keycloak_failover_urls": "http://127.0.0.1:8181",
        "identity_shards": "kc2=http://127.0.0.1:8280|http://127.0.0.1:8281, kc3=https://kc3.internal",
    })
    assert s.identity_shard_list == (
        IdentityShard(PRIMARY_SHARD, ("http://127.0.0.1:8180", "http://127.0.0.1:8181")),
        IdentityShard("kc2", ("http://127.0.0.1:8280", "http://127.0.0.1:8281")),
        IdentityShard("kc3", ("https://kc3.internal",)),
    )
    assert s.identity_shard("kc2").upstream == "127.0.0.1:8280"
    assert s.identity_shard("kc3").upstream == "kc3.internal:443"
    with pytest.raises(ConfigError, match="identity shard kc9 is not in the settings") as err:
        s.identity_shard("kc9")
    assert "identity_shards" in err.value.hint


@pytest.mark.parametrize("value", [
    "kc2", "kc2=", "KC2=http://127.0.0.1:8280", "primary=http://127.0.0.1:8280",
    "kc2=http://127.0.0.1:8280,kc2=http://127.0.0.1:8281", "kc2=ftp://x", "=http://127.0.0.1:1",
])
def test_bad_shard_lists_are_refused_naming_the_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, identity_shards=value)
    assert err.value.obj == "setting identity_shards"


def test_shards_need_a_front_that_routes_each_realm(tmp_path: Path) -> None:
    """Without a front the issuer would be each shard's own URL: refused, with the fix."""
    with pytest.raises(ConfigError, match="needs a front") as err:
        load_settings(overrides={"state_dir": str(tmp_path),
                                 "identity_shards": "kc2=http://127.0.0.1:8280"})
    assert "public_scheme=https" in err.value.hint
    assert _settings(tmp_path, identity_shards="kc2=http://127.0.0.1:8280").identity_shards


def test_each_shard_has_its_own_admin_secret() -> None:
    assert admin_secret() == admin_secret(PRIMARY_SHARD) == ADMIN_SECRET
    assert admin_secret("kc2") == f"{ADMIN_SECRET}-kc2"


def test_the_identity_host_routes_realms_of_further_shards_to_them(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    practices = [("praxis-a", "nc01-cloud001", []), ("praxis-b", "nc02-cloud001", [])]
    text = render_start_page_routes(s, practices, keycloak_upstream="127.0.0.1:8180",
                                    realm_upstreams={"nc02-cloud001": "127.0.0.1:8280"})
    block = "\t@realm_nc02-cloud001 path /realms/nc02-cloud001 /realms/nc02-cloud001/*\n" \
        "\thandle @realm_nc02-cloud001 {\n\t\treverse_proxy 127.0.0.1:8280\n\t}\n"
    assert block in text
    # before the primary's catch-all, and nothing for the primary's realms
    assert text.index(block) < text.index("handle /realms/* {")
    assert "@realm_nc01-cloud001" not in text
    assert render_realm_routes({"nc02-cloud001": "127.0.0.1:8280"}).endswith(block)
    assert "handle" not in render_realm_routes({})


@pytest.mark.parametrize(("realm", "upstream"), [
    ("nc02-cloud001", "127.0.0.1:8280 { }"), ("nc02 cloud001", "127.0.0.1:8280"),
    ("nc02-cloud001", "http://127.0.0.1:8280"),
])
def test_shard_routes_refuse_what_would_inject_caddyfile(realm: str, upstream: str) -> None:
    with pytest.raises(UsageError):
        render_realm_routes({realm: upstream})


def test_the_idp_socket_site_imports_the_shard_routes_before_its_default(tmp_path: Path) -> None:
    text = render_main_caddyfile(_settings(tmp_path))
    site = text.split("http:// {", 1)[1].split("\n}\n", 1)[0]
    imported = f"\timport {tmp_path / 'proxy'}/idp-realms.caddy-part*\n"
    assert imported in site and site.index(imported) < site.index("\thandle {")


def test_dev_stack_runs_a_keycloak_per_local_shard(tmp_path: Path) -> None:
    s = _settings(tmp_path, identity_shards="kc2=http://127.0.0.1:8280,kc3=https://kc3.internal")
    [(name, shard)] = devkc.local_shards(s)  # kc3 is not on this machine
    assert name == "kc2"
    assert (shard.keycloak_port, shard.keycloak_url) == (8280, "http://127.0.0.1:8280")
    assert shard.state_dir == tmp_path / "identity-shards" / "kc2"
    # the same browser-facing hostname as the primary: one issuer front for every shard
    assert devkc.hostname_args(shard) == devkc.hostname_args(s) != []
