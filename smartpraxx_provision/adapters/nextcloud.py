"""The one door to a slot's Nextcloud: ``occ`` through ``docker exec`` and ``status.php``.

Every occ command this tool can issue is listed in ``OCC_COMMANDS`` with the options it may
pass; ``occ()`` refuses anything else, and tests/unit/test_occ_surface.py checks the table
against the command list captured from a real Nextcloud (``nextcloud-occ-commands.json``).

Secrets never enter argv: ``config:import`` reads its document from stdin, the OIDC client
secret travels in the exec environment (``--clientsecret-env``). Error messages name the slot
container and the occ command with its option *names* only, plus occ's stderr with any value
passed in the environment masked. ``config:list --private`` output is never put into an error.

Each occ run costs ~0.5 s of PHP start-up on a real server, so the adapter counts them
(``calls``, ``mutating_calls``) and the operations read state in one call and write in one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from ..errors import ExternalServiceError, ServiceUnavailableError
from .docker_engine import DockerEngine

WWW_USER = "www-data"
WORKDIR = "/var/www/html"
APP_PORT = 80
SECRET_ENV = "SMARTPRAXX_OIDC_CLIENT_SECRET"  # noqa: S105 (a variable name)
OCC_TIMEOUT = 300.0
_STDERR_TAIL = 800


@dataclass(frozen=True)
class OccCommand:
    """An occ command the tool may issue: the options it may pass, and whether it writes."""

    options: frozenset[str]
    mutating: bool


OIDC_PROVIDER_OPTIONS = frozenset(
    {
        "--clientid",
        "--clientsecret-env",
        "--discoveryuri",
        "--scope",
        "--unique-uid",
        "--mapping-uid",
        "--mapping-display-name",
        "--mapping-email",
        "--mapping-groups",
        "--group-provisioning",
        "--group-whitelist-regex",
        "--send-id-token-hint",
        "--check-bearer",
    }
)

# The whole occ surface of the tool. Checked against the real command list by a unit test.
OCC_COMMANDS: dict[str, OccCommand] = {
    "status": OccCommand(frozenset({"--output"}), mutating=False),
    "config:list": OccCommand(frozenset({"--private", "--output"}), mutating=False),
    "config:import": OccCommand(frozenset(), mutating=True),
    "app:list": OccCommand(frozenset({"--output"}), mutating=False),
    "app:enable": OccCommand(frozenset(), mutating=True),
    "app:disable": OccCommand(frozenset(), mutating=True),
    "user_oidc:providers": OccCommand(frozenset({"--output"}), mutating=False),
    "user_oidc:provider": OccCommand(OIDC_PROVIDER_OPTIONS, mutating=True),
    "maintenance:mode": OccCommand(frozenset({"--on", "--off"}), mutating=True),
    "user:info": OccCommand(frozenset({"--output"}), mutating=False),
    "user:delete": OccCommand(frozenset(), mutating=True),
    "user:disable": OccCommand(frozenset(), mutating=True),  # support access ends (issue 15)
}


def option_names(args: tuple[str, ...] | list[str]) -> list[str]:
    """The ``--name`` parts of ``--name=value`` / ``--flag`` arguments."""
    return [a.split("=", 1)[0] for a in args if a.startswith("-")]


def check_occ_args(args: tuple[str, ...] | list[str]) -> OccCommand:
    """The table entry for ``args`` (command first); ValueError when outside the surface."""
    if not args or args[0] not in OCC_COMMANDS:
        raise ValueError(f"occ command {args[0] if args else '(none)'!r} is not in OCC_COMMANDS")
    entry = OCC_COMMANDS[args[0]]
    unknown = sorted(set(option_names(args[1:])) - entry.options)
    if unknown:
        raise ValueError(f"occ {args[0]}: options {unknown} are not in OCC_COMMANDS")
    return entry


@dataclass
class NextcloudAdapter:
    """occ and HTTP checks of one slot's Nextcloud container."""

    engine: DockerEngine
    container: str
    calls: int = 0
    mutating_calls: int = 0
    history: list[str] = field(default_factory=list)  # occ command names, in order

    # -- occ -------------------------------------------------------------------------------

    def occ(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> str:
        """Run ``php occ ARGS`` as www-data; stdout on exit 0, ExternalServiceError otherwise."""
        entry = check_occ_args(args)
        command = args[0]
        self.calls += 1
        if entry.mutating:
            self.mutating_calls += 1
        self.history.append(command)
        result = self.engine.exec(
            self.container,
            ["php", "occ", "--no-interaction", *args],
            user=WWW_USER,
            env=env,
            workdir=WORKDIR,
            stdin=stdin,
            timeout=OCC_TIMEOUT,
        )
        if result.exit_code != 0:
            described = " ".join(["occ", command, *option_names(args[1:])])
            stderr = _mask(result.stderr.strip() or result.stdout.strip(), env)
            if command == "config:list":
                stderr = "(output withheld: it may hold private config values)"
            raise ExternalServiceError(
                f"{described} failed in container {self.container} "
                f"(exit {result.exit_code}): {stderr[-_STDERR_TAIL:]}",
                obj=self.container,
                hint=f"docker logs {self.container}; "
                f"docker exec -u {WWW_USER} {self.container} php occ {command} --help",
                details={
                    "container": self.container,
                    "command": described,
                    "exit_code": result.exit_code,
                },
            )
        return result.stdout

    def _json(self, command: str, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ExternalServiceError(
                f"occ {command} in container {self.container} did not answer with JSON",
                obj=self.container,
                hint=f"docker exec -u {WWW_USER} {self.container} php occ {command}",
            ) from None

    # -- config ----------------------------------------------------------------------------

    def config_list(self) -> dict[str, Any]:
        """All system and app config (``{"system": {...}, "apps": {...}}``), private values
        included: keep the result in memory, never log it."""
        doc = self._json("config:list", self.occ("config:list", "--private", "--output=json"))
        if not isinstance(doc, dict):
            doc = {}
        doc.setdefault("system", {})
        doc.setdefault("apps", {})
        return doc

    def config_import(self, doc: dict[str, Any]) -> None:
        """Set the system and app keys of ``doc`` in one call (the JSON goes in on stdin)."""
        payload = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
        self.occ("config:import", stdin=payload)

    # -- apps ------------------------------------------------------------------------------

    def app_list(self) -> dict[str, dict[str, str]]:
        """``{"enabled": {id: version}, "disabled": {id: version}}``."""
        doc = self._json("app:list", self.occ("app:list", "--output=json"))
        return {
            "enabled": dict((doc or {}).get("enabled") or {}),
            "disabled": dict((doc or {}).get("disabled") or {}),
        }

    def enable_apps(self, ids: list[str] | tuple[str, ...]) -> None:
        if ids:
            self.occ("app:enable", *ids)

    def disable_apps(self, ids: list[str] | tuple[str, ...]) -> None:
        if ids:
            self.occ("app:disable", *ids)

    # -- user_oidc -------------------------------------------------------------------------

    def oidc_providers(self) -> list[dict[str, Any]]:
        """The configured login providers (secrets are never shown by occ)."""
        return parse_providers(
            self.occ("user_oidc:providers", "--output=json"), self.container
        )

    def set_oidc_provider(
        self, identifier: str, options: dict[str, str], secret: str | None
    ) -> None:
        """Create or update the provider; the secret goes through the exec environment."""
        args = [f"{name}={value}" for name, value in sorted(options.items())]
        env: dict[str, str] | None = None
        if secret is not None:
            args.append(f"--clientsecret-env={SECRET_ENV}")
            env = {SECRET_ENV: secret}
        self.occ("user_oidc:provider", identifier, *args, env=env)

    def delete_user(self, uid: str) -> bool:
        """Remove a user (the smoke check's throwaway login); False when there is none."""
        try:
            self.occ("user:info", uid, "--output=json")
        except ExternalServiceError:
            return False
        self.occ("user:delete", uid)
        return True

    # -- HTTP ------------------------------------------------------------------------------

    def local_base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the app's published port 80."""
        return f"http://127.0.0.1:{self.engine.published_port(self.container, APP_PORT)}"

    def _failure(self, message: str) -> ExternalServiceError:
        return ExternalServiceError(
            message, obj=self.container, hint=f"docker logs {self.container}"
        )

    def _fetch(self, url: str, send: Callable[[], requests.Response]) -> requests.Response:
        """``send()`` the request for ``url``; no answer is ServiceUnavailableError."""
        try:
            return send()
        except requests.RequestException as exc:
            raise ServiceUnavailableError(
                f"Nextcloud in {self.container} does not answer at {url} ({type(exc).__name__})",
                obj=self.container,
                hint=f"docker logs {self.container}",
            ) from exc

    def status_http(self, base_url: str | None = None, host: str | None = None) -> dict[str, Any]:
        """``GET /status.php`` (default: through the published 127.0.0.1 port)."""
        url = f"{(base_url or self.local_base_url()).rstrip('/')}/status.php"
        headers = {"Host": host} if host else {}
        response = self._fetch(url, lambda: requests.get(url, headers=headers, timeout=10))
        if response.status_code != 200:
            raise self._failure(
                f"Nextcloud in {self.container} answered {response.status_code} at {url}"
            )
        try:
            doc: dict[str, Any] = response.json()
        except ValueError:
            raise self._failure(f"Nextcloud in {self.container} answered no JSON at {url}") from None
        return doc

    def ocs_current_user(
        self, session: requests.Session, base_url: str, *, verify: str | bool = True
    ) -> dict[str, Any]:
        """``GET /ocs/v2.php/cloud/user`` with a logged-in (browser-style) session: the OCS
        data of the user the session belongs to (id, email, groups, ...)."""
        url = f"{base_url.rstrip('/')}/ocs/v2.php/cloud/user"
        response = self._fetch(
            url,
            lambda: session.get(
                url,
                params={"format": "json"},
                headers={"OCS-APIRequest": "true", "Accept": "application/json"},
                timeout=10,
                verify=verify,
            ),
        )
        if response.status_code != 200:
            raise self._failure(
                f"OCS cloud/user answered HTTP {response.status_code} after the login"
            )
        try:
            data = (response.json().get("ocs") or {}).get("data") or {}
        except (ValueError, AttributeError):
            raise self._failure(
                f"Nextcloud in {self.container} answered no OCS JSON at {url}"
            ) from None
        return dict(data) if isinstance(data, dict) else {}


# Where user_oidc shows each option in ``user_oidc:providers`` JSON (names differ from the
# options, see the occ notes): three options at the top level, the others under ``settings``
# as the option's camelCase name (``--mapping-uid``: ``settings.mappingUid``).
_PROVIDER_TOP_FIELDS = {
    "--clientid": "clientId", "--discoveryuri": "discoveryEndpoint", "--scope": "scope"
}
_PROVIDER_SETTINGS = (
    "--unique-uid", "--mapping-uid", "--mapping-display-name", "--mapping-email",
    "--mapping-groups", "--group-provisioning", "--group-whitelist-regex",
    "--send-id-token-hint", "--check-bearer",
)
# the options user_oidc shows as a 0/1 flag
_PROVIDER_FLAGS = frozenset(
    {"--unique-uid", "--group-provisioning", "--send-id-token-hint", "--check-bearer"}
)


def _settings_field(option: str) -> str:
    """``--send-id-token-hint``: ``settings.sendIdTokenHint``."""
    first, *rest = option.removeprefix("--").split("-")
    return "settings." + first + "".join(word.capitalize() for word in rest)


# Each option's place in the providers JSON and whether it is a 0/1 flag there.
OIDC_PROVIDER_FIELDS: dict[str, tuple[str, bool]] = {
    option: (path, option in _PROVIDER_FLAGS)
    for option, path in (
        *_PROVIDER_TOP_FIELDS.items(),
        *((option, _settings_field(option)) for option in _PROVIDER_SETTINGS),
    )
}


def parse_providers(text: str, container: str = "nextcloud") -> list[dict[str, Any]]:
    """``user_oidc:providers --output=json``: one JSON object per line (user_oidc 8.10, as
    captured from a real Nextcloud 34), nothing when no provider exists."""
    providers: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            raise ExternalServiceError(
                f"occ user_oidc:providers in container {container} printed no JSON object "
                f"on line {number}",
                obj=container,
                hint=f"docker exec -u {WWW_USER} {container} php occ user_oidc:providers "
                "--output=json",
            ) from None
        if isinstance(doc, dict):
            providers.append(doc)
        elif isinstance(doc, list):  # older user_oidc printed one array
            providers += [p for p in doc if isinstance(p, dict)]
    return providers


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def provider_differences(provider: dict[str, Any], options: dict[str, str]) -> list[str]:
    """The option names whose value differs from what ``provider`` (providers JSON) shows."""
    differing: list[str] = []
    for name, wanted in sorted(options.items()):
        path, is_flag = OIDC_PROVIDER_FIELDS[name]
        value: Any = provider
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        same = _flag(value) == _flag(wanted) if is_flag else (value or "") == wanted
        if value is None or not same:
            differing.append(name)
    return differing


def _mask(text: str, env: dict[str, str] | None) -> str:
    for value in (env or {}).values():
        if value:
            text = text.replace(value, "***")
    return text
