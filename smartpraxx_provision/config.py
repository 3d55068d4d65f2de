"""Settings.

Precedence, lowest to highest (documented in the README, tested in tests/unit/test_config.py):

1. built-in defaults (the *embedded* profile: everything on this machine);
2. the YAML file: ``--config FILE``, else ``$SMARTPRAXX_CONFIG``, else ``./smartpraxx.yaml``,
   else ``~/.config/smartpraxx/smartpraxx.yaml`` (first that exists; an explicitly named
   file that does not exist is an error);
3. environment variables ``SMARTPRAXX_<FIELD>`` (upper case, e.g. ``SMARTPRAXX_STATE_DIR``);
4. CLI flags (``--state-dir``, ``--profile``, ``--set key=value``).

The profile decides defaults that differ between the local embedded stack and the fleet:
``embedded`` uses the locally built images and the local Keycloak, ``production`` the official
images. A key set explicitly at any level wins over the profile default.

Secrets are never settings: tokens and passwords come from the secret store; the only
exception is the Vault token/AppRole secret id, which is read from the environment only
(``SMARTPRAXX_VAULT_TOKEN`` / ``SMARTPRAXX_VAULT_SECRET_ID``) and never from a file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

ENV_PREFIX = "SMARTPRAXX_"
PROFILES = ("embedded", "production")

# Image defaults per profile. The embedded ones are built locally by `dev-stack up`.
_PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "embedded": {
        "nextcloud_image": "smartpraxx/nextcloud-standin:{local_image_tag}",
        "mariadb_image": "smartpraxx/mariadb:{local_image_tag}",
        "redis_image": "smartpraxx/redis:{local_image_tag}",
        "public_scheme": "http",
        "smtp_host": "127.0.0.1",
        "smtp_port": 2525,
        "smtp_from": "noreply@smartpraxx.localhost",
    },
    "production": {
        "nextcloud_image": "nextcloud:34.0.1-apache",
        "mariadb_image": "mariadb:11.4.8",
        "redis_image": "redis:7.4.6-alpine",
        "public_scheme": "https",
        "smtp_port": 587,
    },
}

def _profile_defaults(profile: str, local_image_tag: str) -> dict[str, Any]:
    return {
        key: value.format(local_image_tag=local_image_tag) if isinstance(value, str) else value
        for key, value in _PROFILE_DEFAULTS[profile].items()
    }


# The official image's tags: the platform needs Nextcloud >= 34 (Passwords' releases for
# NC 33/34 need PHP >= 8.4, which the official image has from 34 on).
MIN_NEXTCLOUD_MAJOR = 34
_OFFICIAL_NEXTCLOUD = re.compile(r"^(?:docker\.io/)?(?:library/)?nextcloud:(\d+)(?:[.-].*)?$")


def _check_nextcloud_image(image: str) -> None:
    """An official ``nextcloud:<major>…`` tag below 34 is refused; other (derived) images
    are the operator's choice and checked live by the converge (apps in the image)."""
    m = _OFFICIAL_NEXTCLOUD.match(image)
    if m and int(m.group(1)) < MIN_NEXTCLOUD_MAJOR:
        raise ConfigError(
            f"nextcloud_image {image!r} is Nextcloud {m.group(1)}; the platform needs "
            f"Nextcloud {MIN_NEXTCLOUD_MAJOR} or newer (Passwords needs PHP 8.4)",
            obj="setting nextcloud_image",
            hint="set nextcloud_image to a Nextcloud 34 image with Talk and Passwords baked in "
            "(README 'Nextcloud image'), e.g. --set nextcloud_image=<registry>/nextcloud:34-smartpraxx",
        )


# Keys that may only come from the environment (they are secrets).
SECRET_ENV_ONLY = ("vault_token", "vault_secret_id")


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smartpraxx"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smartpraxx"


@dataclass(frozen=True)
class Settings:
    """All settings of the tool. Field names are the YAML keys and env suffixes."""

    profile: str = "embedded"
    state_dir: Path = field(default_factory=_default_state_dir)
    cache_dir: Path = field(default_factory=_default_cache_dir)

    # naming
    domain: str = "smartpraxx.de"
    identity_host: str = "mein.smartpraxx.de"
    public_scheme: str = ""  # profile default: http (embedded) / https (production)

    # inventory: empty = SQLite file under state_dir; or postgresql://user@host:port/db
    inventory_url: str = ""

    # secret store: "file" (encrypted files under state_dir) or "vault"
    secrets_backend: str = "file"
    vault_url: str = "http://127.0.0.1:8200"
    vault_mount: str = "secret"
    vault_prefix: str = "smartpraxx"
    vault_auth: str = "token"  # token | approle
    vault_role_id: str = ""
    vault_token: str = ""  # env only
    vault_secret_id: str = ""  # env only

    # Keycloak (identity). admin password lives in the secret store (platform/keycloak-admin)
    keycloak_url: str = "http://127.0.0.1:8180"  # admin API base, as this tool reaches it
    keycloak_public_url: str = (
        ""  # issuer base as browsers/Nextcloud see it; default = keycloak_url
    )
    keycloak_admin_user: str = "admin"
    keycloak_version: str = "26.5.6"
    keycloak_port: int = 8180
    keycloak_timeout: float = 30.0
    java_home: str = ""  # empty: auto-detect a JDK >= 21
    keycloak_login_theme: str = ""  # realm loginTheme hook; empty = Keycloak's default theme

    # Docker images (profile defaults). local_image_tag is the tag of the images `dev-stack up`
    # builds; a second checkout on the same engine sets its own so the two never share images.
    local_image_tag: str = "dev"
    nextcloud_image: str = ""
    mariadb_image: str = ""
    redis_image: str = ""

    # per-slot resources
    app_mem_limit: str = "1g"
    db_mem_limit: str = "512m"
    redis_mem_limit: str = "128m"
    health_timeout: float = 180.0
    nextcloud_cron: bool = True  # a <slot>-cron container runs Nextcloud's background jobs

    # e-mail: the realms' SMTP relay for Keycloak's invitation and password-reset mails.
    # embedded: the local mail sink of `dev-stack up` (127.0.0.1:2525, plain SMTP on loopback);
    # production: smtp_host and smtp_from are required (provision refuses without them), the
    # password of smtp_user lives in the secret store (platform/smtp-password).
    smtp_host: str = ""  # profile default: 127.0.0.1 (embedded) / none (production)
    smtp_port: int = 0  # profile default: 2525 (embedded) / 587 (production)
    smtp_from: str = ""  # profile default: noreply@smartpraxx.localhost (embedded)
    smtp_user: str = ""
    smtp_starttls: bool | None = None  # profile default: off (embedded) / on (production)
    invitation_lifespan_days: int = 7  # validity of the link in a staff member's invitation

    # fleet hosts (ansible/): restic repository of the slot backups, e.g. sftp:backup@store:/fleet
    # (its password is generated into the secret store: platform/restic-password)
    backup_repository: str = ""

    # the order service (`serve`: shop webhook, Starter Excel upload) and billing delivery.
    # The webhook's secret path token and the signing secrets live in the secret store.
    service_host: str = "127.0.0.1"
    service_port: int = 8088
    service_public_url: str = ""  # base URL of the service as orderers reach it; default local
    billing_url: str = ""  # where billing events are POSTed (empty: they wait, pending)

    # policies
    admin_totp: bool = False
    rename_grace_days: int = 90
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(
                f"unknown profile {self.profile!r}",
                obj="setting profile",
                hint=f"use one of: {', '.join(PROFILES)}",
            )
        for key, value in _profile_defaults(self.profile, self.local_image_tag).items():
            if not getattr(self, key):
                object.__setattr__(self, key, value)
        _check_nextcloud_image(self.nextcloud_image)
        if self.smtp_starttls is None:
            object.__setattr__(self, "smtp_starttls", self.profile == "production")
        if not self.service_public_url:
            object.__setattr__(
                self, "service_public_url", f"http://{self.service_host}:{self.service_port}"
            )
        if not self.keycloak_public_url:
            object.__setattr__(self, "keycloak_public_url", self.keycloak_url)
        if self.secrets_backend not in ("file", "vault"):
            raise ConfigError(
                f"unknown secrets_backend {self.secrets_backend!r}",
                obj="setting secrets_backend",
                hint="use 'file' or 'vault'",
            )

    # --- derived paths ---------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory.sqlite3"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict for display; env-only secrets are masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_ENV_ONLY:
                value = "***" if value else ""
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, raw: Any, source: str) -> Any:
    f = _FIELDS[name]
    ftype = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    ftype = ftype.removesuffix(" | None")
    try:
        if ftype == "Path":
            return Path(os.path.expanduser(str(raw)))
        if ftype == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if ftype == "float":
            return float(raw)
        if ftype == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on", "ja"):
                return True
            if text in ("0", "false", "no", "off", "nein", ""):
                return False
            raise ValueError(raw)
        if isinstance(raw, (dict, list)):
            raise ValueError(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name} from {source} has an invalid value {raw!r} (expected {ftype})",
            obj=f"setting {name}",
            hint=f"fix {source}",
        ) from exc


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist",
                obj=str(explicit),
                hint="pass an existing file to --config or drop the flag",
            )
        return explicit
    from_env = env.get(ENV_PREFIX + "CONFIG")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} (from {ENV_PREFIX}CONFIG) does not exist",
                obj=str(path),
                hint=f"unset {ENV_PREFIX}CONFIG or create the file",
            )
        return path
    for candidate in (Path("smartpraxx.yaml"), Path.home() / ".config/smartpraxx/smartpraxx.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"config file {path} cannot be read: {exc}", obj=str(path), hint="fix the YAML"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must be a mapping of settings", obj=str(path), hint="fix the YAML"
        )
    return data


def load_settings(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, the YAML file, the environment and CLI overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    path = find_config_file(config_file, env)
    if path is not None:
        for key, raw in _read_yaml(path).items():
            if key not in _FIELDS:
                raise ConfigError(
                    f"unknown setting {key!r} in {path}",
                    obj=str(path),
                    hint="see README 'Configuration' for the list of settings",
                )
            if key in SECRET_ENV_ONLY:
                raise ConfigError(
                    f"{key} is a secret and may only come from {ENV_PREFIX}{key.upper()}",
                    obj=str(path),
                    hint=f"remove {key} from the file and export {ENV_PREFIX}{key.upper()}",
                )
            values[key] = _coerce(key, raw, str(path))

    for name in _FIELDS:
        env_key = ENV_PREFIX + name.upper()
        if env_key in env:
            values[name] = _coerce(name, env[env_key], env_key)

    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(
                f"unknown setting {key!r}",
                obj=f"--set {key}",
                hint="see README 'Configuration' for the list of settings",
            )
        if key in SECRET_ENV_ONLY:  # a flag would put the secret into the process list
            raise ConfigError(
                f"{key} is a secret and may only come from {ENV_PREFIX}{key.upper()}",
                obj=f"--set {key}",
                hint=f"export {ENV_PREFIX}{key.upper()} instead",
            )
        values[key] = _coerce(
            key,
            raw,
            f"--set {key}" if key not in ("state_dir", "profile") else f"--{key.replace('_', '-')}",
        )

    return Settings(**values)


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields changed (profile defaults re-applied)."""
    if changes.get("profile", settings.profile) != settings.profile:
        # fields still at the old profile's default take the new profile's default
        for key, value in _profile_defaults(settings.profile, settings.local_image_tag).items():
            if key not in changes and getattr(settings, key) == value:
                changes[key] = ""
        if "smtp_starttls" not in changes and settings.smtp_starttls == (
            settings.profile == "production"
        ):
            changes["smtp_starttls"] = None
    if "keycloak_url" in changes and "keycloak_public_url" not in changes and (
        settings.keycloak_public_url == settings.keycloak_url
    ):
        changes["keycloak_public_url"] = ""  # derived default follows keycloak_url
    return dataclasses.replace(settings, **changes)
