"""Every occ command and option the tool can issue exists in the real Nextcloud.

The reference is ``php occ list --format=json`` captured from a real Nextcloud 34
(``nextcloud-occ-commands.json``): the copy vendored with the stand-in image, else the one in
``../shared/reference`` beside the clone. Two checks: the adapter's whole table
(``OCC_COMMANDS``), and the argv of a full first converge captured by a recording double of
the Docker engine (``RecordingEngine``: it only records exec calls; the real behaviour is
covered by tests/integration/test_nextcloud_stack.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import smartpraxx_provision
from smartpraxx_provision.adapters import nextcloud as ncmod
from smartpraxx_provision.adapters.docker_engine import DockerEngine, ExecResult
from smartpraxx_provision.adapters.nextcloud import (
    OCC_COMMANDS,
    OIDC_PROVIDER_FIELDS,
    OIDC_PROVIDER_OPTIONS,
    SECRET_ENV,
    NextcloudAdapter,
    check_occ_args,
)
from smartpraxx_provision.config import load_settings
from smartpraxx_provision.domain.model import PracticeSpec, PracticeType, Slot
from smartpraxx_provision.errors import ExternalServiceError
from smartpraxx_provision.operations.nextcloud_stack import configure_nextcloud
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.bundle import oidc_provider_options
from smartpraxx_provision.secrets import FileSecretStore

PACKAGE = Path(smartpraxx_provision.__file__).resolve().parent
REPO = PACKAGE.parent
NAME = "nextcloud-occ-commands.json"


def _reference_file(name: str) -> Path:
    vendored = sorted((PACKAGE / "devstack" / "images" / "nextcloud-standin").rglob(name))
    if vendored:
        return vendored[0]
    shared = REPO.parent / "shared" / "reference" / name
    if shared.is_file():
        return shared
    pytest.fail(f"{name} is neither vendored with the stand-in image nor in {shared.parent}")


@pytest.fixture(scope="module")
def surface() -> dict[str, dict[str, Any]]:
    doc = json.loads(_reference_file(NAME).read_text(encoding="utf-8"))
    return {c["name"]: c for c in doc["commands"]}


def _options(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in entry["options"].values()}


def check_argv(surface: dict[str, dict[str, Any]], argv: list[str]) -> None:
    """``argv`` = ``php occ ...``: command, options (value or flag) and positionals exist."""
    assert argv[:2] == ["php", "occ"], argv
    rest = argv[2:]
    positionals: list[str] = []
    command: str | None = None
    for arg in rest:
        if arg.startswith("--"):
            continue
        if command is None:
            command = arg
        else:
            positionals.append(arg)
    assert command in surface, f"occ {command} does not exist in the real Nextcloud"
    entry = surface[command]
    opts = _options(entry)
    for arg in rest:
        if not arg.startswith("--"):
            continue
        name, has_value, _ = arg.partition("=")
        assert name in opts, f"occ {command} has no option {name}"
        if has_value:
            assert opts[name]["accept_value"], f"occ {command} {name} takes no value"
        else:
            assert not opts[name]["is_value_required"], f"occ {command} {name} needs a value"
    args = list(entry["arguments"].values())
    if args and args[-1].get("is_array"):
        assert positionals, f"occ {command} needs {args[-1]['name']}"
    else:
        assert len(positionals) <= len(args), f"occ {command}: too many arguments {positionals}"


def test_table_commands_and_options_exist(surface: dict[str, dict[str, Any]]) -> None:
    for command, entry in OCC_COMMANDS.items():
        assert command in surface, f"occ {command} does not exist in the real Nextcloud"
        opts = _options(surface[command])
        assert "--no-interaction" in opts  # passed on every call
        for option in entry.options:
            assert option in opts, f"occ {command} has no option {option}"


def test_secret_never_as_option_value() -> None:
    assert "--clientsecret" not in OIDC_PROVIDER_OPTIONS
    assert "--clientsecret-env" in OIDC_PROVIDER_OPTIONS
    with pytest.raises(ValueError, match="clientsecret"):
        check_occ_args(("user_oidc:provider", "x", "--clientsecret=abc"))
    with pytest.raises(ValueError, match="not in OCC_COMMANDS"):
        check_occ_args(("user:resetpassword", "admin"))


def test_operations_options_are_in_the_table() -> None:
    opts = oidc_provider_options("https://id.example/realms/r", "nextcloud")
    assert set(opts) <= OIDC_PROVIDER_OPTIONS
    assert set(opts) == set(OIDC_PROVIDER_FIELDS)


def test_provider_fields_name_user_oidc_json_paths() -> None:
    """Top-level names as user_oidc spells them, the rest camelCase under ``settings``."""
    assert OIDC_PROVIDER_FIELDS["--clientid"] == ("clientId", False)
    assert OIDC_PROVIDER_FIELDS["--discoveryuri"] == ("discoveryEndpoint", False)
    assert OIDC_PROVIDER_FIELDS["--scope"] == ("scope", False)
    assert OIDC_PROVIDER_FIELDS["--mapping-display-name"] == ("settings.mappingDisplayName", False)
    regex = OIDC_PROVIDER_FIELDS["--group-whitelist-regex"]
    assert regex == ("settings.groupWhitelistRegex", False)
    assert OIDC_PROVIDER_FIELDS["--send-id-token-hint"] == ("settings.sendIdTokenHint", True)
    assert len(OIDC_PROVIDER_FIELDS) == 12
    flags = {option for option, (_, is_flag) in OIDC_PROVIDER_FIELDS.items() if is_flag}
    assert flags == {
        "--unique-uid", "--group-provisioning", "--send-id-token-hint", "--check-bearer"
    }


# --- the argv of a real converge -------------------------------------------------------------


class RecordingEngine(DockerEngine):
    """Test double of the Docker engine: records exec calls, answers like a fresh Nextcloud."""

    def __init__(self, app_list: dict[str, Any], fail: str | None = None) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.app_list = app_list
        self.fail = fail

    def exec(  # type: ignore[override]
        self,
        name: str,
        cmd: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        stdin: bytes | None = None,
        timeout: float = 0.0,
    ) -> ExecResult:
        self.calls.append(
            {"name": name, "cmd": cmd, "user": user, "env": env, "workdir": workdir, "stdin": stdin}
        )
        command = cmd[3]
        if command == self.fail:
            secret = (env or {}).get(SECRET_ENV, "")
            return ExecResult(255, "", f"Provider must be created. ({secret})")
        if command == "config:list":
            return ExecResult(0, json.dumps({"system": {}, "apps": {}}), "")
        if command == "app:list":
            return ExecResult(0, json.dumps(self.app_list), "")
        return ExecResult(0, "", "")


SPEC = PracticeSpec(
    praxisname="praxis-test",
    display_name="Praxis Test",
    practice_type=PracticeType.ARZTPRAXIS,
    kv="KV Nordrhein",
    specialties=(),
    order_id="T-1",
    contact_email="t@example.org",
)


def _image_app_list() -> dict[str, Any]:
    """``app:list`` of an image with Talk, Passwords and announcementcenter baked in (not
    enabled yet): the captured server's list plus those as disabled. The converge refuses an ordered app
    the image lacks (tests/integration/test_nextcloud_apps.py)."""
    app_list = json.loads(_reference_file("nextcloud-occ-app-list.json").read_text())
    app_list["disabled"] = {**app_list["disabled"], "spreed": "24.0.0", "passwords": "2026.2.0",
                            "announcementcenter": "7.5.0"}
    return dict(app_list)


def _converge(tmp_path: Path, engine: RecordingEngine) -> tuple[NextcloudAdapter, str]:
    settings = load_settings(env={}, overrides={"state_dir": str(tmp_path)})
    store = FileSecretStore(tmp_path / "secrets")
    slot = Slot("cloud901", 1)
    secret = store.ensure(f"practices/{slot.id}/oidc-nextcloud")
    nc = NextcloudAdapter(engine, "nc01-cloud901-app")
    configure_nextcloud(
        nc, SPEC, slot, settings, store, Reporter(quiet=True), issuer="http://idp/realms/x"
    )
    return nc, secret


def test_first_converge_argv_exists_and_holds_no_secret(
    surface: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    engine = RecordingEngine(_image_app_list())
    nc, secret = _converge(tmp_path, engine)
    issued = {c["cmd"][3] for c in engine.calls}
    assert {"config:list", "app:list", "user_oidc:providers", "user_oidc:provider"} <= issued
    assert {"app:enable", "app:disable", "config:import"} <= issued
    for call in engine.calls:
        argv = [a for a in call["cmd"] if a != "--no-interaction"]
        check_argv(surface, argv)
        assert call["user"] == "www-data" and call["workdir"] == "/var/www/html"
        assert not any(secret in a for a in call["cmd"])
    imported = next(c for c in engine.calls if c["cmd"][3] == "config:import")
    doc = json.loads(imported["stdin"])
    assert doc["system"]["default_language"] == "de"
    provider = next(c for c in engine.calls if c["cmd"][3] == "user_oidc:provider")
    assert provider["env"] == {SECRET_ENV: secret}
    assert f"--clientsecret-env={SECRET_ENV}" in provider["cmd"]
    assert nc.calls == len(engine.calls)
    assert nc.mutating_calls == sum(OCC_COMMANDS[c["cmd"][3]].mutating for c in engine.calls)


def test_occ_failure_names_container_and_command_without_secret(tmp_path: Path) -> None:
    engine = RecordingEngine(_image_app_list(), fail="user_oidc:provider")
    with pytest.raises(ExternalServiceError) as err:
        _converge(tmp_path, engine)
    text = str(err.value)
    secret = FileSecretStore(tmp_path / "secrets").require(
        "practices/nc01-cloud901/oidc-nextcloud"
    )
    assert "nc01-cloud901-app" in text and "occ user_oidc:provider" in text
    assert "--clientsecret-env" in text and "exit 255" in text
    assert secret not in text and secret not in json.dumps(err.value.to_dict())
    assert "***" in text  # stderr echoing the secret is masked


def test_adapter_module_never_builds_clientsecret_value_option() -> None:
    source = Path(ncmod.__file__).read_text()
    assert '"--clientsecret="' not in source and "--clientsecret={" not in source
