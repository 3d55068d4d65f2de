"""Settings precedence: defaults → smartpraxx.yaml → SMARTPRAXX_* env → CLI flags."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smartpraxx_provision.cli import main
from smartpraxx_provision.config import Settings, load_settings, replace
from smartpraxx_provision.errors import ConfigError


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No smartpraxx.yaml in the cwd or ~/.config, no SMARTPRAXX_* from the caller."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for key in list(os.environ):
        if key.startswith("SMARTPRAXX_"):
            monkeypatch.delenv(key)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(isolated: Path) -> None:
    s = load_settings(env={})
    assert s.profile == "embedded"
    assert s.domain == "smartpraxx.de"
    assert s.state_dir == isolated / "home/.local/share/smartpraxx"
    assert s.nextcloud_image == "smartpraxx/nextcloud-standin:dev"
    assert s.public_scheme == "http"
    assert s.keycloak_public_url == s.keycloak_url


# one key per level, and the same key at every level: the highest level wins
LEVELS = [
    # (yaml, env, overrides, expected domain, expected port)
    ({}, {}, {}, "smartpraxx.de", 2525),
    ({"domain": "yaml.example", "smtp_port": 25}, {}, {}, "yaml.example", 25),
    ({"domain": "yaml.example", "smtp_port": 25},
     {"SMARTPRAXX_DOMAIN": "env.example"}, {}, "env.example", 25),
    ({"domain": "yaml.example", "smtp_port": 25},
     {"SMARTPRAXX_DOMAIN": "env.example", "SMARTPRAXX_SMTP_PORT": "2525"},
     {"domain": "flag.example"}, "flag.example", 2525),
    ({}, {"SMARTPRAXX_DOMAIN": "env.example"}, {"smtp_port": "465"}, "env.example", 465),
]


@pytest.mark.parametrize(("yaml_values", "env", "overrides", "domain", "port"), LEVELS)
def test_precedence(isolated: Path, yaml_values: dict[str, object], env: dict[str, str],
                    overrides: dict[str, str], domain: str, port: int) -> None:
    cfg = write_yaml(isolated / "c.yaml", json.dumps(yaml_values))  # JSON is YAML
    s = load_settings(config_file=cfg, env=env, overrides=overrides)
    assert (s.domain, s.smtp_port) == (domain, port)


def test_yaml_search_order(isolated: Path) -> None:
    user = isolated / "home/.config/smartpraxx"
    user.mkdir(parents=True)
    write_yaml(user / "smartpraxx.yaml", "domain: user.example\n")
    assert load_settings(env={}).domain == "user.example"
    write_yaml(Path("smartpraxx.yaml"), "domain: cwd.example\n")
    assert load_settings(env={}).domain == "cwd.example"
    named = write_yaml(isolated / "named.yaml", "domain: env-named.example\n")
    assert load_settings(env={"SMARTPRAXX_CONFIG": str(named)}).domain == "env-named.example"
    flag = write_yaml(isolated / "flag.yaml", "domain: flag.example\n")
    assert load_settings(config_file=flag, env={"SMARTPRAXX_CONFIG": str(named)}).domain == \
        "flag.example"


def test_profile_defaults_and_explicit_keys(isolated: Path) -> None:
    cfg = write_yaml(isolated / "c.yaml", "profile: production\n")
    s = load_settings(config_file=cfg, env={})
    assert s.nextcloud_image.startswith("nextcloud:") and s.public_scheme == "https"
    s = load_settings(config_file=cfg, env={"SMARTPRAXX_NEXTCLOUD_IMAGE": "mine:1"})
    assert s.nextcloud_image == "mine:1" and s.mariadb_image.startswith("mariadb:")
    s = load_settings(config_file=cfg, env={}, overrides={"profile": "embedded"})
    assert s.nextcloud_image == "smartpraxx/nextcloud-standin:dev"


def test_types_are_coerced(isolated: Path) -> None:
    s = load_settings(env={"SMARTPRAXX_SMTP_STARTTLS": "nein", "SMARTPRAXX_HEALTH_TIMEOUT": "5",
                           "SMARTPRAXX_STATE_DIR": "~/state"})
    assert s.smtp_starttls is False and s.health_timeout == 5.0
    assert s.state_dir == isolated / "home/state"
    assert isinstance(s.state_dir, Path)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"env": {"SMARTPRAXX_SMTP_PORT": "abc"}}, "invalid value"),
    ({"env": {"SMARTPRAXX_SMTP_STARTTLS": "vielleicht"}}, "invalid value"),
    ({"env": {"SMARTPRAXX_PROFILE": "cloud"}}, "unknown profile"),
    ({"env": {}, "overrides": {"nope": "1"}}, "unknown setting"),
    ({"env": {}, "overrides": {"vault_token": "s3cret"}}, "may only come from"),
    ({"env": {}, "overrides": {"secrets_backend": "s3"}}, "unknown secrets_backend"),
    ({"env": {"SMARTPRAXX_CONFIG": "/nonexistent/x.yaml"}}, "does not exist"),
    ({"env": {}, "config_file": Path("/nonexistent/y.yaml")}, "does not exist"),
])
def test_invalid_settings(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    assert fragment in info.value.message
    assert info.value.hint
    assert "s3cret" not in info.value.message


@pytest.mark.parametrize(("text", "fragment"), [
    ("nope: 1\n", "unknown setting"),
    ("vault_token: s3cret\n", "may only come from"),
    ("- a\n- b\n", "must be a mapping"),
    ("domain: [unclosed\n", "cannot be read"),
    ("smtp_port: {a: 1}\n", "invalid value"),
])
def test_invalid_yaml(isolated: Path, text: str, fragment: str) -> None:
    cfg = write_yaml(isolated / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=cfg, env={})
    assert fragment in info.value.message
    assert "s3cret" not in info.value.message


def test_empty_yaml_is_defaults(isolated: Path) -> None:
    cfg = write_yaml(isolated / "empty.yaml", "")
    assert load_settings(config_file=cfg, env={}) == load_settings(env={})


def test_secret_only_from_env_and_redacted() -> None:
    s = load_settings(env={"SMARTPRAXX_VAULT_TOKEN": "s3cret"})
    assert s.vault_token == "s3cret"
    assert s.redacted()["vault_token"] == "***"


def test_replace_reapplies_profile_and_derived_defaults() -> None:
    s = load_settings(env={})
    prod = replace(s, profile="production")
    assert prod.nextcloud_image.startswith("nextcloud:") and prod.public_scheme == "https"
    mine = replace(load_settings(env={"SMARTPRAXX_NEXTCLOUD_IMAGE": "mine:1"}),
                   profile="production")
    assert mine.nextcloud_image == "mine:1"
    moved = replace(s, keycloak_url="http://127.0.0.1:9999")
    assert moved.keycloak_public_url == "http://127.0.0.1:9999"
    public = replace(load_settings(env={"SMARTPRAXX_KEYCLOAK_PUBLIC_URL": "https://id.example"}),
                     keycloak_url="http://127.0.0.1:9999")
    assert public.keycloak_public_url == "https://id.example"
    assert isinstance(prod, Settings)


def test_cli_flags_win(isolated: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_yaml(isolated / "c.yaml", "domain: yaml.example\nlog_level: debug\n")
    monkeypatch.setenv("SMARTPRAXX_DOMAIN", "env.example")
    monkeypatch.setenv("SMARTPRAXX_LOG_LEVEL", "warning")
    code = main(["--config", str(cfg), "--state-dir", str(isolated / "st"), "--set",
                 "domain=flag.example", "config", "show", "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["domain"] == "flag.example"
    assert shown["log_level"] == "warning"
    assert shown["state_dir"] == str(isolated / "st")


def test_cli_refuses_secret_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "vault_token=s3cret", "config", "show"]) == 2
    err = capsys.readouterr().err
    assert "SMARTPRAXX_VAULT_TOKEN" in err and "s3cret" not in err


def test_smtp_defaults_per_profile() -> None:
    embedded = load_settings(env={})
    assert (embedded.smtp_host, embedded.smtp_port, embedded.smtp_starttls) == (
        "127.0.0.1", 2525, False)
    assert embedded.smtp_from == "noreply@smartpraxx.localhost"
    assert embedded.invitation_lifespan_days == 7
    prod = load_settings(env={"SMARTPRAXX_PROFILE": "production"})
    assert (prod.smtp_host, prod.smtp_port, prod.smtp_starttls, prod.smtp_from) == (
        "", 587, True, "")
    # explicit values win over the profile, also a False STARTTLS in production
    mine = load_settings(env={"SMARTPRAXX_PROFILE": "production",
                              "SMARTPRAXX_SMTP_STARTTLS": "no", "SMARTPRAXX_SMTP_PORT": "25"})
    assert (mine.smtp_starttls, mine.smtp_port) == (False, 25)
    # switching the profile re-applies the defaults that were not set explicitly
    assert replace(embedded, profile="production").smtp_starttls is True
    assert replace(prod, profile="embedded").smtp_port == 2525


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("slot_cpus", "0", "number of CPUs"),
    ("slot_cpus", "-1", "number of CPUs"),
    ("slot_cpus", "nan", "a number"),
    ("slot_cpus", "lots", "a number"),
    ("slot_pids_limit", "10", "whole number 64-32768"),
    ("slot_pids_limit", "1.5", "whole number"),
])
def test_tenant_limits_are_validated(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={name: value})
    assert fragment in info.value.message and name in info.value.message
    env = {f"SMARTPRAXX_{name.upper()}": value}
    with pytest.raises(ConfigError):
        load_settings(env=env)


def test_tenant_limit_defaults_and_values() -> None:
    s = load_settings(env={})
    assert s.slot_cpus == 1.0 and s.slot_pids_limit == 512
    s = load_settings(env={"SMARTPRAXX_SLOT_CPUS": "0.5", "SMARTPRAXX_SLOT_PIDS_LIMIT": "256"})
    assert s.slot_cpus == 0.5 and s.slot_pids_limit == 256
