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
import difflib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        "support_ops_email": "support@smartpraxx.localhost",
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


# The issuer base inside a slot's network (its <slot>-idp gateway) behind the local proxy.
INTERNAL_IDP_HOST = "idp-internal"
INTERNAL_IDP_PORT = 8080
INTERNAL_IDP_URL = f"http://{INTERNAL_IDP_HOST}:{INTERNAL_IDP_PORT}"

# Identity shards (issue 18): the Keycloak cluster of keycloak_url (+ keycloak_failover_urls)
# is the shard named PRIMARY_SHARD; identity_shards names the further ones.
PRIMARY_SHARD = "primary"
_SHARD_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


@dataclass(frozen=True)
class IdentityShard:
    """One Keycloak cluster that holds practice realms: its name and admin API bases (the
    first one first, the others tried in order when it fails)."""

    name: str
    urls: tuple[str, ...]

    @property
    def upstream(self) -> str:
        """``host:port`` of the first node: where the identity host's routes send its realms."""
        parts = urlsplit(self.urls[0])
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def parse_identity_shards(value: str) -> tuple[IdentityShard, ...]:
    """``name=url[|url ...], ...`` as shards (no check; see the rule ``shard_list``)."""
    shards = []
    for entry in (e.strip() for e in value.split(",")):
        if entry:
            name, _, urls = entry.partition("=")
            shards.append(IdentityShard(name.strip(),
                                        tuple(u.strip() for u in urls.split("|") if u.strip())))
    return tuple(shards)


# Keys that may only come from the environment (they are secrets).
SECRET_ENV_ONLY = ("vault_token", "vault_secret_id")

# The ONE list of SMARTPRAXX_* environment variables that are not settings but are read on
# purpose (by the tool, its tests or the Makefile). Any other SMARTPRAXX_* variable that is
# not a setting is an error naming the nearest valid one (a mistyped SMARTPRAXX_STATEDIR must
# never fall back to another inventory's default state dir). tests/unit/test_config.py greps
# the repository and fails for a SMARTPRAXX_* name that is neither a setting nor listed here.
ENV_ONLY_VARIABLES: dict[str, str] = {
    "SMARTPRAXX_CONFIG": "the YAML settings file (config.py)",
    "SMARTPRAXX_CRASH_AT": "fault injection of the crash tests (operations/runner.py)",
    "SMARTPRAXX_SUPPORT_NOW": "tests: the injected clock of `support` (operations/support.py)",
    "SMARTPRAXX_ANSIBLE_DIR": "the ansible/ tree (operations/fleet.py)",
    "SMARTPRAXX_REQUIRE_STACK": "tests: a skip is a failure (tests/conftest.py, Makefile)",
    "SMARTPRAXX_UPDATE_GOLDEN": "tests: rewrite the golden files (tests/unit/test_render.py)",
}
# Prefixes of further accepted variables (the test suite's own knobs).
ENV_ONLY_PREFIXES = ("SMARTPRAXX_TEST_",)
# Names used inside containers only (never read from the host environment).
CONTAINER_ENV_NAMES = ("SMARTPRAXX_OIDC_CLIENT_SECRET",)


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
    # further nodes of a Keycloak cluster (comma-separated admin API bases), tried in order when
    # keycloak_url does not connect or answers 5xx; empty = keycloak_url alone
    keycloak_failover_urls: str = ""
    keycloak_public_url: str = (
        ""  # issuer base as browsers/Nextcloud see it; default = keycloak_url
    )
    keycloak_admin_user: str = "admin"
    keycloak_version: str = "26.5.6"
    keycloak_port: int = 8180
    keycloak_timeout: float = 30.0
    java_home: str = ""  # empty: auto-detect a JDK >= 21
    keycloak_login_theme: str = ""  # realm loginTheme hook; empty = Keycloak's default theme
    # embedded TLS proxy (devstack/proxy.py): with profile embedded and public_scheme https,
    # the local Caddy serves mein.<domain> and the slots on https://127.0.0.1:<proxy_port>
    # (`tls internal`); keycloak_public_url then defaults to https://<identity_host>:<proxy_port>
    # and keycloak_internal_url (the issuer base the slots' containers use through their
    # <slot>-idp gateway) to http://idp-internal:8080; otherwise it defaults to
    # keycloak_public_url. When keycloak_public_url differs from the local Keycloak's URL,
    # dev-stack starts Keycloak with --hostname=<public> --hostname-backchannel-dynamic=true.
    proxy_port: int = 8443
    keycloak_internal_url: str = ""
    # identity shards (issue 18): further Keycloak clusters, ``name=url[|failover-url...]``
    # comma-separated. A new practice's realm goes to the first shard (primary first) holding
    # fewer than realms_per_shard live practices; the inventory records it. All shards sit
    # behind one front (the identity host, which routes /realms/<realm> to the realm's shard),
    # so issuer URLs never depend on the shard: shards need keycloak_public_url to differ from
    # keycloak_url (embedded: public_scheme https). Shard X's admin password lives at
    # platform/keycloak-admin-X in the secret store.
    identity_shards: str = ""
    realms_per_shard: int = 500

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
    # tenant isolation: CPU share (in CPUs) and process/thread cap of EACH container of a
    # slot, so one runaway or compromised practice cannot starve or fork-bomb its neighbours
    slot_cpus: float = 1.0
    slot_pids_limit: int = 512
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
    # support access (issue 15): where Keycloak mails a support account's set-password link
    support_ops_email: str = ""  # profile default: support@smartpraxx.localhost (embedded)

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
        _check("profile", self.profile, "settings")
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
            public = (
                self.public_origin(self.identity_host) if self.local_tls_proxy
                else self.keycloak_url
            )
            object.__setattr__(self, "keycloak_public_url", public)
        if not self.keycloak_internal_url:
            internal = INTERNAL_IDP_URL if self.local_tls_proxy else self.keycloak_public_url
            object.__setattr__(self, "keycloak_internal_url", internal)
        for f in fields(self):
            _check(f.name, getattr(self, f.name), "settings")
        _check_shards(self)
        _check_extras(self)

    # --- derived URLs ----------------------------------------------------------------
    @property
    def keycloak_failover_url_list(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.keycloak_failover_urls.split(",") if u.strip())

    @property
    def identity_shard_list(self) -> tuple[IdentityShard, ...]:
        """All identity shards, the primary (keycloak_url + failovers) first."""
        primary = IdentityShard(PRIMARY_SHARD, (self.keycloak_url, *self.keycloak_failover_url_list))
        return (primary, *parse_identity_shards(self.identity_shards))

    def identity_shard(self, name: str) -> IdentityShard:
        """The shard ``name``; one the settings do not name is an error."""
        for shard in self.identity_shard_list:
            if shard.name == name:
                return shard
        raise ConfigError(
            f"identity shard {name} is not in the settings (identity_shards: "
            f"{self.identity_shards or 'none'})",
            obj=f"identity shard {name}",
            hint=f"add {name}=<url> to the setting identity_shards (smartpraxx-provision config show)",
        )

    @property
    def local_tls_proxy(self) -> bool:
        """Embedded stack behind the local Caddy: https on 127.0.0.1:<proxy_port>."""
        return self.profile == "embedded" and self.public_scheme == "https"

    def public_origin(self, host: str) -> str:
        """``<scheme>://<host>[:port]`` as a browser opens it (the proxy port when local)."""
        port = f":{self.proxy_port}" if self.local_tls_proxy and self.proxy_port != 443 else ""
        return f"{self.public_scheme}://{host}{port}"

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


# --- validation: one rule per setting ------------------------------------------------
#
# A rule takes the (already type-coerced) value and returns None when it is fine, else what
# was expected ("a port 1-65535"). RULES has one line per setting; a new setting adds one
# line there (tests/unit/test_config.py fails for a setting without a rule).

Rule = Callable[[Any], str | None]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)([bkmg]?)b?$", re.IGNORECASE)
_MEM_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_MEM_MIN = 6 * 1024**2  # Docker refuses a memory limit below 6 MiB
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_IMAGE_RE = re.compile(
    rf"^(?:[a-z0-9.-]+(?::\d{{1,5}})?/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
    rf"(?::{_TAG})?(?:@sha256:[0-9a-f]{{64}})?$"
)
_TAG_RE = re.compile(rf"^{_TAG}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
_VAULT_PATH_RE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
_VERSION_RE = re.compile(r"^\d+(?:\.\d+){1,3}$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(.+)$")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def memory_bytes(text: str) -> int:
    """Bytes of a Docker memory size (``512m``, ``1g``, ``1.5g``, ``64mb``, plain bytes)."""
    m = _MEM_RE.match(text.strip())
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * _MEM_UNITS[m.group(2).lower()])


def _one_line(value: Any) -> str | None:
    text = str(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "a single line without control characters"
    return None


def choice(*options: str) -> Rule:
    def rule(value: Any) -> str | None:
        return None if value in options else f"one of: {', '.join(options)}"

    rule.choices = options  # type: ignore[attr-defined]
    return rule


def int_range(low: int, high: int) -> Rule:
    def rule(value: Any) -> str | None:
        return None if low <= value <= high else f"a whole number {low}-{high}"

    return rule


PORT = int_range(1, 65535)


def duration(value: Any) -> str | None:
    ok = math.isfinite(value) and 0 < value <= 86400
    return None if ok else "a number of seconds > 0 (at most 86400)"


def cpus(value: Any) -> str | None:
    ok = math.isfinite(value) and 0.1 <= value <= 256
    return None if ok else "a number of CPUs from 0.1 to 256 (e.g. 1.5)"


def memory(value: Any) -> str | None:
    try:
        size = memory_bytes(value)
    except ValueError:
        return "a Docker memory size like 512m or 1g (units b, k, m, g)"
    return None if size >= _MEM_MIN else "a Docker memory size of at least 6m"


def hostname(value: Any) -> str | None:
    """RFC 1123 host name, lower case (labels of a-z, 0-9 and inner hyphens, dot-separated)."""
    ok = bool(_HOSTNAME_RE.match(value))
    return None if ok else "a lower-case host name (RFC 1123 labels a-z 0-9 -, separated by dots)"


def url(*schemes: str) -> Rule:
    def rule(value: Any) -> str | None:
        expected = f"a URL {'|'.join(schemes)}://host[:port][/path]"
        if _one_line(value) or " " in value:
            return expected
        try:
            parts = urlsplit(value)
            port = parts.port  # raises ValueError when out of range
        except ValueError:
            return expected
        if parts.scheme not in schemes or not parts.hostname or hostname(parts.hostname):
            return expected
        return None if port is None or port >= 1 else expected

    return rule


def url_list(*schemes: str) -> Rule:
    """Comma-separated URLs (or empty)."""
    one = url(*schemes)

    def rule(value: Any) -> str | None:
        items = [v.strip() for v in str(value).split(",")] if str(value).strip() else []
        bad = next((p for v in items if (p := one(v))), None)
        return f"empty or comma-separated URLs, each {bad}" if bad else None

    return rule


def shard_list(value: Any) -> str | None:
    """``name=url[|url ...]`` comma-separated (or empty); names unique and not the primary's."""
    expected = "empty or name=url[|url ...] comma-separated (name: a-z, 0-9, -)"
    one = url("http", "https")
    names: list[str] = []
    for shard in parse_identity_shards(str(value)):
        if (not _SHARD_NAME_RE.match(shard.name) or shard.name in (PRIMARY_SHARD, *names)
                or not shard.urls or any(one(u) for u in shard.urls)):
            return f"{expected}; {shard.name or '(no name)'} is not (unique names, not {PRIMARY_SHARD})"
        names.append(shard.name)
    return None


def pattern(regex: re.Pattern[str], expected: str) -> Rule:
    def rule(value: Any) -> str | None:
        return None if regex.match(value) else expected

    return rule


def email(value: Any) -> str | None:
    m = _EMAIL_RE.match(value)
    return None if m and not hostname(m.group(1)) else "an e-mail address like noreply@example.org"


def path(value: Any) -> str | None:
    return "a path" if not str(value).strip() or _one_line(value) else None


def text(value: Any) -> str | None:
    return _one_line(value)


def nonempty(value: Any) -> str | None:
    return "a non-empty value" if not str(value).strip() else _one_line(value)


def optional(rule: Rule) -> Rule:
    """The rule, or empty (= off / default)."""

    def wrapped(value: Any) -> str | None:
        problem = rule(value) if value != "" else None
        return f"empty or {problem}" if problem else None

    return wrapped


def anything(value: Any) -> str | None:  # booleans: the type check is all
    return None


RULES: dict[str, Rule] = {
    "profile": choice(*PROFILES),
    "state_dir": path,
    "cache_dir": path,
    "domain": hostname,
    "identity_host": hostname,
    "public_scheme": choice("http", "https"),
    "inventory_url": optional(url("postgresql", "postgres")),
    "secrets_backend": choice("file", "vault"),
    "vault_url": url("http", "https"),
    "vault_mount": pattern(_VAULT_PATH_RE, "a Vault mount path like secret"),
    "vault_prefix": pattern(_VAULT_PATH_RE, "a Vault path prefix like smartpraxx"),
    "vault_auth": choice("token", "approle"),
    "vault_role_id": text,
    "vault_token": text,
    "vault_secret_id": text,
    "keycloak_url": url("http", "https"),
    "keycloak_public_url": url("http", "https"),
    "keycloak_failover_urls": url_list("http", "https"),
    "keycloak_admin_user": pattern(_NAME_RE, "a user name (letters, digits, . _ @ -)"),
    "keycloak_version": pattern(_VERSION_RE, "a version like 26.5.6"),
    "keycloak_port": PORT,
    "proxy_port": PORT,
    "keycloak_internal_url": url("http", "https"),
    "identity_shards": shard_list,
    "realms_per_shard": int_range(1, 100000),
    "keycloak_timeout": duration,
    "java_home": optional(path),
    "keycloak_login_theme": optional(pattern(_NAME_RE, "a theme name")),
    "local_image_tag": pattern(_TAG_RE, "a Docker tag (letters, digits, _ . -; max. 128)"),
    "nextcloud_image": pattern(_IMAGE_RE, "a Docker image reference like nextcloud:34.0.1-apache"),
    "mariadb_image": pattern(_IMAGE_RE, "a Docker image reference like mariadb:11.4"),
    "redis_image": pattern(_IMAGE_RE, "a Docker image reference like redis:7.4-alpine"),
    "app_mem_limit": memory,
    "db_mem_limit": memory,
    "redis_mem_limit": memory,
    "slot_cpus": cpus,
    "slot_pids_limit": int_range(64, 32768),
    "health_timeout": duration,
    "nextcloud_cron": anything,
    "smtp_host": optional(hostname),
    "smtp_port": PORT,
    "smtp_from": optional(email),
    "smtp_user": text,
    "smtp_starttls": anything,
    "invitation_lifespan_days": int_range(1, 30),
    "support_ops_email": optional(email),
    "service_host": hostname,
    "service_port": PORT,
    "service_public_url": url("http", "https"),
    "billing_url": optional(url("http", "https")),
    "backup_repository": text,
    "admin_totp": anything,
    "rename_grace_days": int_range(0, 3650),
    "log_level": choice(*LOG_LEVELS),
}


def _shown(name: str, value: Any) -> str:
    """The value as an error message may show it: never a secret, never a URL password."""
    if name in SECRET_ENV_ONLY:
        return "(the value is not shown)"
    if isinstance(value, str) and "://" in value and "@" in value:
        try:
            parts = urlsplit(value)
            if parts.password:
                value = value.replace(f":{parts.password}@", ":***@")
        except ValueError:
            pass
    return repr(str(value) if isinstance(value, Path) else value)


def _check(name: str, value: Any, source: str) -> None:
    rule = RULES.get(name, text if isinstance(value, str) else anything)
    problem = rule(str(value) if isinstance(value, Path) else value)
    if problem is None:
        return
    choices = getattr(rule, "choices", None)
    what = f"unknown {name}" if choices else f"setting {name} has an invalid value"
    raise ConfigError(
        f"{what} {_shown(name, value)} (from {source}); expected {problem}",
        obj=f"setting {name}",
        hint=f"fix {source}" if source != "settings" else f"set {name} to {problem}",
    )


# Settings whose value needs an optional extra of the package: (setting test, module, extra).
_EXTRAS: tuple[tuple[Callable[[Settings], bool], str, str, str], ...] = (
    (lambda s: bool(s.inventory_url), "psycopg", "postgres", "inventory_url is a PostgreSQL URL"),
    (lambda s: s.secrets_backend == "vault", "hvac", "vault", "secrets_backend is vault"),
)


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _check_shards(settings: Settings) -> None:
    """Shards need a front that routes each realm to its shard (issuers are the front's)."""
    if settings.identity_shards and (
        settings.keycloak_public_url.rstrip("/") == settings.keycloak_url.rstrip("/")
    ):
        raise ConfigError(
            "identity_shards needs a front for all shards: keycloak_public_url must be the "
            "identity host that routes /realms/<realm> to the realm's shard, not keycloak_url",
            obj="setting identity_shards",
            hint="set keycloak_public_url (production) or public_scheme=https (embedded)",
        )


def _check_extras(settings: Settings) -> None:
    for needs, module, extra, why in _EXTRAS:
        if needs(settings) and not _importable(module):
            raise ConfigError(
                f"{why}, but the Python package {module} is not installed",
                obj=f"extra [{extra}]",
                hint=f"pip install 'smartpraxx-provision[{extra}]'",
            )


def _nearest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else "see README 'Configuration'"


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, raw: Any, source: str) -> Any:
    f = _FIELDS[name]
    ftype = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    ftype = ftype.removesuffix(" | None")
    try:
        if ftype == "Path":
            return Path(os.path.expanduser(str(raw)))
        if ftype == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if ftype == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
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
            f"setting {name} has an invalid value {_shown(name, raw)} (from {source}); "
            f"expected {_TYPE_NAMES.get(ftype, ftype)}",
            obj=f"setting {name}",
            hint=f"fix {source}",
        ) from exc


_TYPE_NAMES = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "a text value",
    "Path": "a path",
}


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

    _check_env_names(env)
    path = find_config_file(config_file, env)
    if path is not None:
        for key, raw in _read_yaml(path).items():
            if key not in _FIELDS:
                raise ConfigError(
                    f"unknown setting {key!r} in {path}; {_nearest(str(key), list(_FIELDS))}",
                    obj=str(path),
                    hint="fix the key; README 'Configuration' lists the settings",
                )
            if key in SECRET_ENV_ONLY:
                raise ConfigError(
                    f"{key} is a secret and may only come from {ENV_PREFIX}{key.upper()}",
                    obj=str(path),
                    hint=f"remove {key} from the file and export {ENV_PREFIX}{key.upper()}",
                )
            values[key] = _coerce(key, raw, str(path))
            _check(key, values[key], str(path))

    for name in _FIELDS:
        env_key = ENV_PREFIX + name.upper()
        if env_key in env:
            values[name] = _coerce(name, env[env_key], env_key)
            _check(name, values[name], env_key)

    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(
                f"unknown setting {key!r}; {_nearest(key, list(_FIELDS))}",
                obj=f"--set {key}",
                hint="fix the key; README 'Configuration' lists the settings",
            )
        if key in SECRET_ENV_ONLY:  # a flag would put the secret into the process list
            raise ConfigError(
                f"{key} is a secret and may only come from {ENV_PREFIX}{key.upper()}",
                obj=f"--set {key}",
                hint=f"export {ENV_PREFIX}{key.upper()} instead",
            )
        source = (
            f"--set {key}" if key not in ("state_dir", "profile") else f"--{key.replace('_', '-')}"
        )
        values[key] = _coerce(key, raw, source)
        _check(key, values[key], source)

    return Settings(**values)


def _check_env_names(env: Mapping[str, str]) -> None:
    """Every SMARTPRAXX_* variable is a setting or one of ENV_ONLY_VARIABLES."""
    known = [ENV_PREFIX + name.upper() for name in _FIELDS] + list(ENV_ONLY_VARIABLES)
    for key in sorted(env):
        if not key.startswith(ENV_PREFIX) or key in known or key.startswith(ENV_ONLY_PREFIXES):
            continue
        raise ConfigError(
            f"unknown environment variable {key}; {_nearest(key, known)}",
            obj=key,
            hint=f"unset {key} or fix its name; README 'Configuration' lists the settings",
        )


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
    # URLs still at their derived default follow the settings they derive from
    local = settings.local_tls_proxy
    public_default = settings.public_origin(settings.identity_host) if local else (
        settings.keycloak_url
    )
    if "keycloak_public_url" not in changes and settings.keycloak_public_url == public_default:
        changes["keycloak_public_url"] = ""
    internal_default = INTERNAL_IDP_URL if local else settings.keycloak_public_url
    if "keycloak_internal_url" not in changes and (
        settings.keycloak_internal_url == internal_default
    ):
        changes["keycloak_internal_url"] = ""
    return dataclasses.replace(settings, **changes)
