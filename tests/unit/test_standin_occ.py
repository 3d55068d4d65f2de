"""Unit tests of the Nextcloud stand-in's occ emulator (a test double; no Docker needed).

The emulator is imported directly from the image folder. Parsing and lookup are checked
against the vendored reference (the real command surface of Nextcloud 34.0.1); the
implemented commands run end to end against SQLite (a database type real Nextcloud supports
too) in a temporary server root.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IMAGE_DIR = (
    Path(__file__).resolve().parents[2]
    / "smartpraxx_provision" / "devstack" / "images" / "nextcloud-standin"
)
sys.path.insert(0, str(IMAGE_DIR))

from nc_standin import console, occ, output, server, state  # noqa: E402
from nc_standin.commands import HANDLERS  # noqa: E402

REF = json.loads((IMAGE_DIR / "reference" / "nextcloud-occ-commands.json").read_text())
REF_STATUS = json.loads((IMAGE_DIR / "reference" / "nextcloud-occ-status.json").read_text())
COMMANDS = occ.REFERENCE
ADMIN_PW = "admin-pass-123"


def run(root: Path, *args: str, env: dict[str, str] | None = None,
        stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = occ.main(list(args), root, env or {}, io.StringIO(stdin), out, err)
    return code, out.getvalue(), err.getvalue()


def parse(name: str, *tokens: str) -> console.ParsedInput:
    return console.parse(COMMANDS[name], [name, *tokens])


def parse_error(name: str, *tokens: str) -> str:
    with pytest.raises(console.ConsoleError) as e:
        parse(name, *tokens)
    return str(e.value)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "occ").touch()
    return tmp_path


@pytest.fixture
def nc(root: Path) -> Path:
    """An installed stand-in on SQLite."""
    code, out, err = run(root, "maintenance:install", "--database", "sqlite",
                         "--admin-user", "admin", "--admin-pass", ADMIN_PW, "-n")
    assert (code, out, err) == (0, "Nextcloud was successfully installed\n", "")
    return root


# --- vendored reference ----------------------------------------------------------------------


def test_vendored_reference_matches_the_hashes_in_the_readme() -> None:
    readme = (IMAGE_DIR / "README.md").read_text()
    for name in ("nextcloud-occ-commands.json", "nextcloud-occ-app-list.json",
                 "nextcloud-occ-status.json"):
        digest = hashlib.sha256((IMAGE_DIR / "reference" / name).read_bytes()).hexdigest()
        assert f"`reference/{name}`" in readme
        assert digest in readme, name
    assert len(REF["commands"]) == 263
    assert REF["application"] == {"name": "Nextcloud", "version": "34.0.1"}


def test_readme_lists_exactly_the_commands_accepted_without_effect() -> None:
    readme = (IMAGE_DIR / "README.md").read_text()
    block = readme.split("<!-- BEGIN no-effect")[1].split("<!-- END no-effect -->")[0]
    listed = re.findall(r"`([^`]+)`", block)
    assert listed == [n for n in COMMANDS if n not in HANDLERS]
    assert set(HANDLERS) - set(COMMANDS) == {"maintenance:install"}


# --- command lookup ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [c["name"] for c in REF["commands"]])
def test_every_reference_command_parses_with_its_required_arguments(name: str) -> None:
    cmd = COMMANDS[name]
    tokens = [name] + ["x" for a in cmd.arguments if a.required]
    parsed = console.parse(console.find_command(COMMANDS, name), tokens)
    assert parsed.command is cmd


@pytest.mark.parametrize("name", [c["name"] for c in REF["commands"]])
def test_every_option_of_every_reference_command_is_accepted(name: str) -> None:
    cmd = COMMANDS[name]
    tokens = [name] + ["x" for a in cmd.arguments if a.required]
    for opt in cmd.options.values():
        tokens.append(f"--{opt.name}=v" if opt.accept_value else f"--{opt.name}")
        if opt.negatable:
            tokens.append(f"--no-{opt.name}")
        for short in filter(None, opt.shortcut.split("|")):
            tokens += [f"-{short}", "v"] if opt.accept_value else [f"-{short}"]
    parsed = console.parse(cmd, tokens)
    assert set(parsed.given) == set(cmd.options)


REAL_INVOCATIONS = [
    "status --output=json",
    "config:system:set trusted_domains 1 --value=127.0.0.1:8089",
    "config:system:set overwrite.cli.url --value=http://127.0.0.1:8089",
    "config:system:set allow_local_remote_servers --value=true --type=boolean",
    "config:system:get trusted_domains --output=json",
    "config:system:delete trusted_domains 2 --error-if-not-exists",
    "config:app:set user_oidc allow_insecure_http --value=1 --type=boolean --lazy",
    "config:app:get user_oidc allow_multiple_user_backends --default-value=1",
    "config:app:delete theming slogan",
    "config:list --private --output=json",
    "config:list system",
    "config:import /tmp/config.json",
    "app:enable user_oidc spreed deck forms passwords",
    "app:enable -f -g praxis deck",
    "app:disable deck",
    "app:install --keep-disabled forms",
    "app:list --output=json --shipped=false",
    "user_oidc:provider keycloak --clientid=nextcloud --clientsecret=s "
    "--discoveryuri=http://kc/.well-known/openid-configuration --unique-uid=0 "
    "--mapping-uid=preferred_username",
    "user_oidc:provider keycloak --mapping-groups=groups --group-provisioning=1 --check-bearer=1",
    "user_oidc:provider keycloak -c nextcloud --clientsecret-file /run/secrets/oidc -d http://x",
    "user_oidc:provider keycloak --output=json_pretty",
    "user_oidc:providers -s",
    "user_oidc:provider:delete keycloak --force",
    "user:add --password-from-env --display-name=Probe --group=praxis probeuser",
    "user:add -g a -g b --email p@example.org probeuser",
    "user:list --output=json --limit=10 -i",
    "user:info probeuser --output=json",
    "user:delete probeuser",
    "group:add --display-name=Praxis praxis",
    "group:list --output=json",
    "group:adduser praxis probeuser otheruser",
    "maintenance:mode --on",
    "theming:config name Praxis",
    "theming:config --reset slogan",
    "background:cron",
    "db:add-missing-indices --dry-run",
    "maintenance:repair --include-expensive",
    "files:scan --all",
    "-n -q status",
    "status -vvv --no-ansi",
    "twofactorauth:enforce --on --group=admin",
]


@pytest.mark.parametrize("line", REAL_INVOCATIONS)
def test_real_invocations_are_accepted(line: str) -> None:
    tokens = line.split()
    cmd = console.find_command(COMMANDS, console.first_argument(tokens) or "list")
    console.parse(cmd, tokens)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("frobnicate", 'Command "frobnicate" is not defined.'),
        ("config:system:frobnicate", 'Command "config:system:frobnicate" is not defined.'),
        ("talk:signaling:list", 'There are no commands defined in the "talk:signaling" namespace.'),
        ("passwords:backup:create", 'There are no commands defined in the "passwords:backup" '
                                    "namespace."),
        ("user_oidc:prov", 'Command "user_oidc:prov" is ambiguous.'),
        ("maintenance:install", 'Command "maintenance:install" is not defined.'),
        ("app", 'Command "app" is not defined.'),
    ],
)
def test_made_up_commands_are_rejected_like_symfony(name: str, message: str) -> None:
    with pytest.raises(console.ConsoleError) as e:
        console.find_command(COMMANDS, name)
    assert str(e.value).split("\n")[0] == message


def test_did_you_mean_alternatives() -> None:
    with pytest.raises(console.ConsoleError) as e:
        console.find_command(COMMANDS, "stauts")
    assert str(e.value) == 'Command "stauts" is not defined.\n\nDid you mean this?\n    status'
    with pytest.raises(console.ConsoleError) as e:
        console.find_command(COMMANDS, "user_oidc:provder")
    assert str(e.value) == (
        'Command "user_oidc:provder" is not defined.\n\nDid you mean one of these?\n'
        "    user_oidc:provider\n    user_oidc:provider:delete\n    user_oidc:providers"
    )
    with pytest.raises(console.ConsoleError) as e:
        console.find_command(COMMANDS, "config:sytem:get")
    assert str(e.value).startswith(
        'There are no commands defined in the "config:sytem" namespace.\n\n'
        "Did you mean one of these?\n    config\n    config:app\n    config:system"
    )


def test_abbreviations_resolve_like_symfony() -> None:
    assert console.find_command(COMMANDS, "stat").name == "status"
    assert console.find_command(COMMANDS, "conf:sys:get").name == "config:system:get"
    assert console.find_command(COMMANDS, "user_oidc:provider").name == "user_oidc:provider"
    assert console.find_command(COMMANDS, "STATUS").name == "status"


# --- ArgvInput parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (("app:list", "--foo"), 'The "--foo" option does not exist.'),
        (("app:list", "--foo=1"), 'The "--foo" option does not exist.'),
        (("app:list", "-x"), 'The "-x" option does not exist.'),
        (("app:list", "-nx"), 'The "-x" option does not exist.'),
        (("config:system:get", "a", "--force"), 'The "--force" option does not exist.'),
        (("user_oidc:provider", "k", "--client-id=x"), 'The "--client-id" option does not exist.'),
        (("config:system:set", "a", "--value"), 'The "--value" option requires a value.'),
        (("config:system:set", "a", "--value", "-n"), 'The "--value" option requires a value.'),
        (("app:enable", "--force=yes", "a"), 'The "--force" option does not accept a value.'),
        (("status", "--no-ansi=1"), 'The "--no-ansi" option does not accept a value.'),
        (("config:app:get", "core"), 'Not enough arguments (missing: "name").'),
        (("config:app:set",), 'Not enough arguments (missing: "app, name").'),
        (("user:add",), 'Not enough arguments (missing: "uid").'),
        (("user:info", "a", "b"), 'Too many arguments to "user:info" command, expected '
                                  'arguments "user".'),
        (("status", "extra"), 'No arguments expected for "status" command, got "extra".'),
        (("config:system:set", "a", "-1"), 'The "-1" option does not exist.'),
    ],
)
def test_option_and_argument_errors_have_symfony_texts(tokens: tuple[str, ...],
                                                       message: str) -> None:
    assert parse_error(*tokens) == message


def test_option_value_forms() -> None:
    assert parse("config:system:set", "a", "--value=x=y").opt("value") == "x=y"
    assert parse("config:system:set", "a", "--value", "x").opt("value") == "x"
    assert parse("config:system:set", "a", "--value=").opt("value") == ""
    assert parse("config:system:set", "a", "--value=-1").opt("value") == "-1"
    p = parse("user_oidc:provider", "k", "-cnextcloud", "-d", "http://x", "-s", "sec")
    assert (p.opt("clientid"), p.opt("discoveryuri"), p.opt("clientsecret")) == (
        "nextcloud", "http://x", "sec")
    p = parse("user:add", "-g", "a", "--group=b", "-gc", "u")
    assert p.opt("group") == ["a", "b", "c"]
    assert p.arg("uid") == "u"
    p = parse("status", "--output")
    assert p.opt("output") is None and p.has("output")
    assert parse("status").opt("output") == "plain"


def test_double_dash_ends_options() -> None:
    p = parse("config:system:set", "--value=v", "--", "--not-an-option", "-1")
    assert p.arg("name") == ["--not-an-option", "-1"]
    assert p.opt("value") == "v"


def test_flag_sets_negations_and_arrays() -> None:
    p = parse("status", "-nq", "-vvv")
    assert p.opt("no-interaction") is True and p.opt("quiet") is True and p.opt("verbose")
    p = parse("config:app:set", "a", "b", "--no-lazy", "--sensitive")
    assert p.opt("lazy") is False and p.opt("sensitive") is True
    assert parse("config:app:set", "a", "b").opt("lazy") is None
    p = parse("app:enable", "deck", "forms", "spreed")
    assert p.arg("app-id") == ["deck", "forms", "spreed"]
    assert parse("config:system:get", "trusted_domains", "0").arg("name") == [
        "trusted_domains", "0"]


def test_synopsis_matches_symfony_format() -> None:
    assert COMMANDS["config:system:get"].synopsis() == (
        "config:system:get [--output [OUTPUT]] [--default-value [DEFAULT-VALUE]] [-h|--help] "
        "[-q|--quiet] [-v|vv|vvv|--verbose] [-V|--version] [--ansi|--no-ansi] "
        "[-n|--no-interaction] [--no-warnings] [--] <command> <name>..."
    )
    assert COMMANDS["user_oidc:provider"].synopsis().endswith("[--] <command> [<identifier>]")
    assert "[--lazy|--no-lazy]" in COMMANDS["config:app:set"].synopsis()


def test_render_error_block() -> None:
    assert console.render_error('Command "x" is not defined.') == (
        "\n" + " " * 31 + "\n" + '  Command "x" is not defined.  \n' + " " * 31 + "\n\n"
    )
    long = console.render_error("a" * 100, "syn")
    lines = long.split("\n")
    assert lines[2] == "  " + "a" * 75 + "  "
    assert lines[3].startswith("  " + "a" * 25)
    assert lines[-3:] == ["syn", "", ""]


def test_php_json_output() -> None:
    assert output.php_json({"u": "http://x/ä"}) == '{"u":"http:\\/\\/x\\/\\u00e4"}'
    assert output.php_json({"a": [1, {}]}, pretty=True) == (
        '{\n    "a": [\n        1,\n        {}\n    ]\n}')


# --- occ runs (SQLite) ---------------------------------------------------------------------


def test_before_install_only_a_few_commands_exist(root: Path) -> None:
    code, out, err = run(root, "status", "--output=json")
    assert code == 0
    assert json.loads(out) == {**REF_STATUS, "installed": False}
    assert err.startswith("Nextcloud is not installed")
    code, _, err = run(root, "config:system:get", "version")
    assert code == 1
    assert 'There are no commands defined in the "config:system" namespace.' in err


def test_install_then_status_equals_the_captured_status(nc: Path) -> None:
    code, out, err = run(nc, "status", "--output=json")
    assert (code, err) == (0, "")
    assert json.loads(out) == REF_STATUS
    assert list(json.loads(out)) == list(REF_STATUS)
    code, _, err = run(nc, "maintenance:install", "--admin-pass", "x")
    assert code == 1 and 'Command "maintenance:install" is not defined.' in err


def test_install_refuses_a_password_value_that_starts_with_a_dash(root: Path) -> None:
    # why generated secrets never start with "-": the official entrypoint passes each one as
    # a separate argument, and Symfony Console takes "-Xq3" for an option, not a value
    code, out, err = run(root, "maintenance:install", "--database", "sqlite",
                         "--admin-user", "admin", "--admin-pass", "-Xq3", "-n")
    assert (code, out) == (1, "")
    assert 'The "--admin-pass" option requires a value.' in err
    assert not (root / "config" / "config.php").exists()


def test_unknown_command_and_option_through_main(nc: Path) -> None:
    code, out, err = run(nc, "frobnicate")
    assert (code, out) == (1, "")
    assert 'Command "frobnicate" is not defined.' in err
    code, out, err = run(nc, "app:list", "--frob")
    assert (code, out) == (1, "")
    assert '  The "--frob" option does not exist.  ' in err
    assert "app:list [--output [OUTPUT]]" in err
    code, out, err = run(nc, "db:add-missing-indices")
    assert (code, out) == (0, "")
    assert 'accepted, no effect' in err


def test_owner_check(nc: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand config.json to another uid")
    cfg = nc / "config" / "config.json"
    os.chown(cfg, 33, 33)
    code, out, _ = run(nc, "status")
    assert code == 1
    assert out.startswith(
        "Console has to be executed with the user that owns the file config/config.php\n"
        "Current user id: 0\nOwner id of config.php: 33\n")


def test_system_config_arrays_like_php(nc: Path) -> None:
    code, out, _ = run(nc, "config:system:set", "trusted_domains", "1", "--value=a.example")
    assert (code, out) == (0, "System config value trusted_domains => 1 set to string a.example\n")
    run(nc, "config:system:set", "trusted_domains", "2", "--value=b.example")
    code, out, _ = run(nc, "config:system:get", "trusted_domains", "--output=json")
    assert json.loads(out) == ["localhost", "a.example", "b.example"]
    assert run(nc, "config:system:get", "trusted_domains")[1] == "localhost\na.example\nb.example\n"
    assert run(nc, "config:system:get", "trusted_domains", "1")[1] == "a.example\n"
    assert run(nc, "config:system:delete", "trusted_domains", "1")[1] == (
        "System config value trusted_domains => 1 deleted\n")
    out = run(nc, "config:system:get", "trusted_domains", "--output=json")[1]
    assert json.loads(out) == {"0": "localhost", "2": "b.example"}  # PHP keeps the keys
    code, out, _ = run(nc, "config:system:delete", "nope", "--error-if-not-exists")
    assert (code, out) == (1, "System config nope could not be deleted because it did not exist\n")


def test_system_config_types_and_errors(nc: Path) -> None:
    cases = [
        (["--value=true", "--type=boolean"], "boolean true", True),
        (["--value=5", "--type=integer"], "integer 5", 5),
        (["--value=1.5", "--type=double"], "double 1.5", 1.5),
        (['--value={"a": [1]}', "--type=json"], 'json {"a":[1]}', {"a": [1]}),
        (["--value="], "empty string", ""),
    ]
    for opts, readable, value in cases:
        code, out, _ = run(nc, "config:system:set", "k", *opts)
        assert (code, out) == (0, f"System config value k set to {readable}\n")
        assert json.loads(run(nc, "config:system:get", "k", "--output=json")[1]) == value
    code, out, err = run(nc, "config:system:set", "k", "--value=x", "--type=integer")
    assert (code, out) == (1, "") and "Non-numeric value specified" in err
    code, _, err = run(nc, "config:system:set", "new", "--value=x", "--update-only")
    assert code == 1 and "Config parameter does not exist" in err
    assert run(nc, "config:system:get", "missing") == (1, "", "")
    assert run(nc, "config:system:get", "missing", "--default-value=d") == (0, "d\n", "")


def test_environment_overlay_wins_over_stored_values(nc: Path) -> None:
    env = {"OVERWRITEPROTOCOL": "https", "REDIS_HOST": "/nonexistent.sock"}
    sc = state.SystemConfig(nc, env)
    assert sc.get("overwriteprotocol") == "https"
    assert sc.get("redis") == {"host": "/nonexistent.sock", "password": ""}
    run(nc, "config:system:set", "overwriteprotocol", "--value=http")
    assert state.SystemConfig(nc, env).get("overwriteprotocol") == "https"
    assert state.SystemConfig(nc, {}).get("overwriteprotocol") == "http"


def test_redis_failure_breaks_occ_like_a_boot_exception(nc: Path) -> None:
    code, out, _ = run(nc, "status", env={"REDIS_HOST": "/nonexistent.sock"})
    assert code == 1
    assert out.startswith("An unhandled exception has been thrown:\nRedisException:")


def test_app_config(nc: Path) -> None:
    code, out, _ = run(nc, "config:app:set", "user_oidc", "allow_multiple_user_backends",
                       "--value=0")
    assert code == 0 and "is now set to '0'" in out
    assert run(nc, "config:app:get", "user_oidc", "allow_multiple_user_backends") == (0, "0\n", "")
    run(nc, "config:app:set", "user_oidc", "allow_insecure_http", "--value=true",
        "--type=boolean", "--lazy")
    assert run(nc, "config:app:get", "user_oidc", "allow_insecure_http")[1] == "1\n"
    listed = json.loads(run(nc, "config:list", "user_oidc")[1])
    assert listed == {"apps": {"user_oidc": {"allow_insecure_http": True,
                                             "allow_multiple_user_backends": "0",
                                             "enabled": "yes", "installed_version": "8.10.1"}}}
    run(nc, "config:app:set", "core", "token", "--value=t0p", "--sensitive")
    assert json.loads(run(nc, "config:list", "core")[1])["apps"]["core"]["token"] == (
        "***REMOVED SENSITIVE VALUE***")
    assert json.loads(run(nc, "config:list", "core", "--private")[1])["apps"]["core"]["token"] == (
        "t0p")
    assert run(nc, "config:app:get", "core", "nope") == (1, "", "")
    assert run(nc, "config:app:delete", "core", "nope", "--error-if-not-exists")[0] == 1
    code, out, _ = run(nc, "config:app:set", "core", "x", "--value=1", "--update-only")
    assert code == 1 and "not updated" in out


def test_config_list_and_import(nc: Path) -> None:
    data = {"system": {"default_language": "de", "maintenance_window_start": 1,
                       "trusted_domains": ["localhost", "nc07.example"]},
            "apps": {"core": {"backgroundjobs_mode": "cron"}, "theming": {"name": "Praxis"}}}
    (nc / "import.json").write_text(json.dumps(data))
    code, out, _ = run(nc, "config:import", str(nc / "import.json"))
    assert (code, out) == (0, f"Config successfully imported from: {nc / 'import.json'}\n")
    listed = json.loads(run(nc, "config:list", "--private")[1])
    assert set(listed) == {"system", "apps"}
    for k, v in data["system"].items():
        assert listed["system"][k] == v
    assert listed["apps"]["theming"]["name"] == "Praxis"
    assert listed["apps"]["core"]["backgroundjobs_mode"] == "cron"
    public = json.loads(run(nc, "config:list")[1])
    assert public["system"]["passwordsalt"] == "***REMOVED SENSITIVE VALUE***"
    code, out, _ = run(nc, "config:import", stdin='{"apps": {"x": {"y": true}}}')
    assert code == 1 and 'Invalid app config value for "x":"y"' in out
    code, out, _ = run(nc, "config:import", stdin='{"system": {"default_language": null}}')
    assert code == 0
    assert run(nc, "config:system:get", "default_language")[0] == 1
    assert run(nc, "config:import", stdin='{"other": 1}')[1] == (
        "Found invalid entries in root: other\n")


def test_apps(nc: Path) -> None:
    """Stand-in: apps of the image only (default image: with spreed and passwords baked in)."""
    code, out, _ = run(nc, "app:enable", "user_oidc", "spreed", "nosuchapp", "passwords")
    assert code == 1
    assert out == ("user_oidc already enabled\nspreed 24.0.0 enabled\n"
                   "Could not download app nosuchapp, it was not found on the appstore\n"
                   "passwords 2026.2.0 enabled\n")
    assert run(nc, "app:disable", "deck") == (0, "deck 1.18.3 disabled\n", "")
    assert run(nc, "app:disable", "files") == (2, "files can't be disabled.\n", "")
    apps = json.loads(run(nc, "app:list", "--output=json")[1])
    assert "deck" in apps["disabled"] and "spreed" in apps["enabled"]
    assert "user_ldap" in apps["disabled"]
    code, _, err = run(nc, "deck:export", "admin")
    assert code == 1 and 'There are no commands defined in the "deck" namespace.' in err
    assert run(nc, "app:enable", "deck") == (0, "deck 1.18.3 enabled\n", "")
    assert run(nc, "app:install", "deck") == (1, "deck already installed\n", "")
    assert run(nc, "app:install", "nope")[1] == (
        "Error: Could not download app nope, it was not found on the appstore\n")
    plain = run(nc, "app:list", "--enabled")[1]
    assert plain.startswith("Enabled:\n  - activity: 7.0.0\n") and "Disabled:" not in plain


def test_user_oidc_provider_lifecycle(nc: Path) -> None:
    """Stand-in: user_oidc:provider create/update/show/list/delete beyond the capture."""
    disc = "http://kc:8080/realms/nc07/.well-known/openid-configuration"
    code, out, _ = run(nc, "user_oidc:provider", "keycloak", "--clientid=nextcloud",
                       f"--discoveryuri={disc}")
    assert (code, out) == (255, "Provider must be created. All provider parameters required.\n")
    (nc / "secret").write_text("client-secret-value\n")
    assert run(nc, "user_oidc:provider", "keycloak", "-c", "nextcloud",
               "--clientsecret-file", str(nc / "secret"), "-d", disc,
               "--unique-uid=0", "--mapping-uid=preferred_username", "--output=json") == (0, "", "")
    assert run(nc, "user_oidc:provider", "keycloak", "--mapping-groups=groups",
               "--group-provisioning=1") == (0, "", "")
    code, out, _ = run(nc, "user_oidc:provider", "keycloak", "--output=json_pretty")
    p = json.loads(out)
    assert list(p) == ["id", "identifier", "clientId", "discoveryEndpoint",
                       "endSessionEndpoint", "postLogoutUri", "scope", "settings"]
    assert (p["clientId"], p["discoveryEndpoint"], p["scope"]) == (
        "nextcloud", disc, "openid email profile")
    s = p["settings"]
    assert (s["uniqueUid"], s["mappingUid"], s["mappingGroups"], s["groupProvisioning"],
            s["checkBearer"]) == (False, "preferred_username", "groups", True, False)
    assert "client-secret-value" not in out + run(nc, "config:list", "--private")[1]
    listed = run(nc, "user_oidc:providers", "--output=json")[1]
    assert listed.count("\n") == 1 and json.loads(listed)["id"] == p["id"]
    assert json.loads(listed)["clientSecret"] == "********"
    assert run(nc, "user_oidc:provider:delete", "keycloak") == (0, "", "")  # no --force: kept
    assert run(nc, "user_oidc:providers")[1] != ""
    assert run(nc, "user_oidc:provider:delete", "keycloak", "--force") == (
        0, '"keycloak" has been deleted.\n', "")
    assert run(nc, "user_oidc:providers") == (0, "", "")
    assert run(nc, "user_oidc:provider:delete", "keycloak", "--force") == (
        255, "Provider not found.\n", "")
    assert "provider-" not in run(nc, "config:list", "user_oidc")[1]


REAL_OUTPUTS = IMAGE_DIR / "reference" / "nextcloud-occ-real-outputs.txt"


def _captured_runs() -> list[tuple[list[str], int, str, str]]:
    """(argv, exit, stdout, stderr) of each run in the verbatim capture."""
    runs: list[tuple[list[str], int, str, str]] = []
    blocks = re.split(r"^\$ occ ", REAL_OUTPUTS.read_text(encoding="utf-8"), flags=re.M)[1:]
    for block in blocks:
        head, rest = block.split("\n", 1)
        m = re.match(r"exit: (\d+)\n--- stdout\n(.*?)--- stderr\n(.*)", rest, re.S)
        assert m, head
        runs.append((head.split(" "), int(m.group(1)), m.group(2), m.group(3).rstrip("\n")))
    return runs


def test_standin_replays_the_real_capture_verbatim(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-in vs. a real Nextcloud 34.0.1: every captured occ run, in order, on an image
    with the captured server's apps (no spreed, no passwords) gives the same exit code and
    stdout; user:info's machine-dependent values (storage, login times, data path) are
    compared by shape."""
    from nc_standin import catalog
    monkeypatch.setattr(catalog, "KNOWN_APPS",
                        {**catalog.INITIALLY_ENABLED, **catalog.INITIALLY_DISABLED})
    code, _, _ = run(root, "maintenance:install", "--database", "sqlite",
                     "--admin-user", "admin", "--admin-pass", ADMIN_PW, "-n")
    assert code == 0
    # the captured server had them installed but not yet enabled
    assert run(root, "app:disable", "user_oidc", "deck", "forms")[0] == 0
    env = {"OIDC_SECRET": "captured-run-secret"}
    runs = _captured_runs()
    assert len(runs) >= 18
    for argv, want_code, want_out, _ in runs:
        args = argv
        if args[:2] == ["notification:generate", "admin"]:
            args = ["notification:generate", "admin", "Test subject", "-l", "Long message"]
        code, out, _err = run(root, *args, env=env)
        assert code == want_code, (argv, out)
        if args[0] == "user:info":
            got, want = json.loads(out), json.loads(want_out)
            assert list(got) == list(want) and list(got["storage"]) == list(want["storage"])
            for key in ("storage", "first_seen", "last_seen", "user_directory"):
                got.pop(key), want.pop(key)
            assert got == want
        else:
            assert out == want_out, argv


def test_users_and_groups(nc: Path) -> None:
    env = {"OC_PASS": "long-enough-password"}
    code, out, _ = run(nc, "user:add", "--password-from-env", "--display-name=Probe User",
                       "--group=praxis", "probeuser", env=env)
    assert (code, out) == (0, 'The account "probeuser" was created successfully\n'
                              'Display name set to "Probe User"\nCreated group "praxis"\n'
                              'Account "probeuser" added to group "praxis"\n')
    assert run(nc, "user:add", "--password-from-env", "probeuser", env=env)[1] == (
        'The account "probeuser" already exists.\n')
    assert run(nc, "user:add", "--password-from-env", "x", env={"NC_PASS": "short"})[0] == 1
    assert run(nc, "user:add", "y")[0] == 1
    assert json.loads(run(nc, "user:list", "--output=json")[1]) == {
        "admin": "admin", "probeuser": "Probe User"}
    assert json.loads(run(nc, "group:list", "--output=json")[1]) == {
        "admin": ["admin"], "praxis": ["probeuser"]}
    info = json.loads(run(nc, "user:info", "probeuser", "--output=json")[1])
    assert (info["display_name"], info["groups"], info["enabled"]) == (
        "Probe User", ["praxis"], True)
    assert run(nc, "group:add", "praxis") == (1, 'Group "praxis" already exists.\n', "")
    assert run(nc, "group:add", "empty")[0] == 0
    assert json.loads(run(nc, "group:list", "--output=json")[1])["empty"] == []
    assert run(nc, "group:adduser", "empty", "admin") == (0, "", "")
    assert run(nc, "group:adduser", "nope", "admin") == (1, "group not found\n", "")
    assert run(nc, "user:delete", "probeuser") == (0, "The specified user was deleted\n", "")
    assert run(nc, "user:info", "probeuser") == (1, "user not found\n", "")


def test_maintenance_mode_hides_app_commands(nc: Path) -> None:
    assert run(nc, "maintenance:mode", "--on") == (0, "Maintenance mode enabled\n", "")
    code, out, err = run(nc, "status", "--output=json")
    assert json.loads(out)["maintenance"] is True and err == ""
    code, _, err = run(nc, "user_oidc:providers")
    assert code == 1 and "maintenance mode" in err
    assert run(nc, "maintenance:mode", "--off")[1] == "Maintenance mode disabled\n"
    assert run(nc, "user_oidc:providers")[0] == 0


def test_theming_and_background_cron(nc: Path) -> None:
    assert run(nc, "theming:config", "name", "Praxis Müller") == (
        0, "Updated name to Praxis Müller\n", "")
    assert run(nc, "theming:config", "name")[1] == "name is currently set to Praxis Müller\n"
    assert run(nc, "theming:config", "primary_color", "red")[0] == 1
    assert run(nc, "theming:config", "nope", "x") == (1, "Invalid config key provided\n", "")
    assert run(nc, "config:app:get", "theming", "name")[1] == "Praxis Müller\n"
    assert run(nc, "background:cron")[1] == "Set mode for background jobs to 'cron'\n"
    assert run(nc, "config:app:get", "core", "backgroundjobs_mode")[1] == "cron\n"


def test_quiet_and_version(nc: Path) -> None:
    assert run(nc, "-q", "config:system:set", "a", "--value=b") == (0, "", "")
    assert run(nc, "-V") == (0, "Nextcloud 34.0.1\n", "")


# --- HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def http(nc: Path) -> Iterator[str]:
    httpd = server.make_server(nc, port=0, host="127.0.0.1")
    httpd.server_activate()
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_status_php_and_capabilities(http: str, nc: Path) -> None:
    code, headers, body = fetch(f"{http}/status.php")
    assert code == 200 and headers["X-Smartpraxx-Standin"] == "nextcloud"
    assert json.loads(body) == REF_STATUS
    code, _, body = fetch(f"{http}/status.php", {"Host": "evil.example"})
    assert (code, json.loads(body)) == (400, {"error": "Trusted domain error.", "code": 15})
    run(nc, "config:system:set", "trusted_domains", "1", "--value=*.smartpraxx.de")
    assert fetch(f"{http}/status.php", {"Host": "nc07.cloud023.smartpraxx.de"})[0] == 200
    caps_url = f"{http}/ocs/v2.php/cloud/capabilities?format=json"
    assert fetch(caps_url)[0] == 412
    run(nc, "theming:config", "name", "Praxis Test")
    code, _, body = fetch(caps_url, {"OCS-APIRequest": "true"})
    doc = json.loads(body)["ocs"]
    assert code == 200 and doc["meta"]["statuscode"] == 200
    assert doc["data"]["capabilities"]["theming"]["name"] == "Praxis Test"
    assert "deck" in doc["data"]["capabilities"]
    code, _, body = fetch(f"{http}/ocs/v2.php/cloud/capabilities", {"OCS-APIRequest": "true"})
    assert body.startswith('<?xml version="1.0"?>\n<ocs>')
    assert fetch(f"{http}/index.php")[0] == 404


def test_trusted_domain_rules() -> None:
    sc = state.SystemConfig(Path("/nonexistent"), {})
    sc.values = {"trusted_domains": ["a.example", "*.b.example", "c.example:8443"]}
    assert server.is_trusted_domain(sc, "a.example:8080")
    assert server.is_trusted_domain(sc, "x.b.example")
    assert server.is_trusted_domain(sc, "c.example:8443")
    assert server.is_trusted_domain(sc, "127.0.0.1:32768")
    assert not server.is_trusted_domain(sc, "evil.example")
    assert not server.is_trusted_domain(sc, "c.example")
    sc.values["overwritehost"] = "nc.example"
    assert server.is_trusted_domain(sc, "evil.example")


# --- entrypoint ----------------------------------------------------------------------------


def test_file_env_variants(tmp_path: Path) -> None:
    from nc_standin import entrypoint

    (tmp_path / "db").write_text("db-secret\n")
    (tmp_path / "redis").write_text("redis-secret\n")
    env = entrypoint.resolve_file_env({"MYSQL_PASSWORD_FILE": str(tmp_path / "db"),
                                       "NEXTCLOUD_ADMIN_USER": "admin"})
    assert env["MYSQL_PASSWORD"] == "db-secret" and env["NEXTCLOUD_ADMIN_USER"] == "admin"
    with pytest.raises(ValueError, match="both MYSQL_USER and MYSQL_USER_FILE are set"):
        entrypoint.resolve_file_env({"MYSQL_USER": "a", "MYSQL_USER_FILE": str(tmp_path / "db")})
    overlay = state.env_overlay({"REDIS_HOST": "redis", "REDIS_HOST_PORT": "6380",
                                 "REDIS_HOST_PASSWORD_FILE": str(tmp_path / "redis")})
    assert overlay["redis"] == {"host": "redis", "password": "redis-secret", "port": 6380}
    assert overlay["memcache.distributed"] == overlay["memcache.locking"] == (
        "\\OC\\Memcache\\Redis")


def test_install_options_from_the_environment(root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from nc_standin import entrypoint

    monkeypatch.setattr(entrypoint, "WWW_DATA", os.geteuid())  # the volume's owner here
    env = {"NEXTCLOUD_ADMIN_USER": "admin", "NEXTCLOUD_ADMIN_PASSWORD": ADMIN_PW,
           "SQLITE_DATABASE": "nc", "NEXTCLOUD_TRUSTED_DOMAINS": "a.example b.example",
           "NEXTCLOUD_STANDIN_INSTALL_RETRIES": "0"}
    assert entrypoint.installed_version(root) is None
    assert entrypoint.first_start(root, env) == 0
    assert entrypoint.installed_version(root) == "34.0.1.2"
    out = run(root, "config:system:get", "trusted_domains", "--output=json")[1]
    assert json.loads(out) == ["localhost", "a.example", "b.example"]
    assert entrypoint.install_options({"NEXTCLOUD_ADMIN_USER": "a",
                                       "NEXTCLOUD_ADMIN_PASSWORD": "b"}) is None
