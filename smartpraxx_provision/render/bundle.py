"""The slot bundle: everything one practice's Nextcloud stack is made of, rendered purely.

``render_slot_bundle(spec, slot, settings, secret_refs)`` returns ``{relative path: bytes}``,
the secret-free plan an operator can inspect: ``launch_stack`` (operations/nextcloud_stack.py)
writes it to ``<state_dir>/slots/<slot id>/`` before it converges the stack.

* ``compose.yaml`` — rendered from the slot's container plan (render/stack.py ``slot_stack``),
  the very plan ``launch_stack`` applies through the Docker API: the same containers, images,
  env files, mounts, limits, hardening, health checks and secrets;
* ``env/db.env``, ``env/redis.env``, ``env/app.env``, ``env/cron.env`` — the containers'
  environment (the plan reads it from these files), without any secret: secrets are named by
  the images' ``*_FILE`` variables;
* ``secrets/<name>`` — one file per container secret holding only a *reference*
  ``<secret:PATH>``; launch resolves it from the secret store and writes the value into the
  container as a 0400 file owned by the reading user, never here;
* ``nextcloud/config.json`` — the desired system + app config (``occ config:import`` format),
  ``nextcloud/apps.json`` and ``nextcloud/oidc-provider.json`` — the app and login plan that
  ``configure_nextcloud`` converges (the same ``desired_*`` helpers);
* ``README.txt`` for ops.

The proxy routes are not part of the bundle: render/proxy.py renders the live ones
(operations/routes.py). Pure and deterministic: no I/O besides reading the packaged templates,
no timestamps, JSON with sorted keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..domain.model import PracticeSpec, Slot
from ..domain.ownership import LABEL_MANAGED, LABEL_ROLE, LABEL_SLOT
from ..domain.packages import package_config
from ..errors import UsageError
from .templates import render

if TYPE_CHECKING:
    from .stack import ContainerPlan

# Label keys; the same strings as adapters/docker_engine.py LABEL_* (checked by a unit test).

DB_NAME = "nextcloud"
DB_USER = "nextcloud"
ADMIN_USER = "admin"  # the local break-glass admin
APP_PORT = 80
RESTART_POLICY = "unless-stopped"
DATA_MOUNT = "/var/www/html"
DB_MOUNT = "/var/lib/mysql"
CRON_MEM_LIMIT = "256m"

# Container commands and health checks (Docker API form; compose.yaml gets the same lists).
DB_HEALTH = ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
# Secrets reach the containers as files under SECRETS_DIR (mode 0400, owned by the user that
# reads them), named by the images' *_FILE variables; never as environment or arguments.
SECRETS_DIR = "/run/secrets"
REDIS_SECRET_FILE = f"{SECRETS_DIR}/redis-password"
REDIS_HEALTH = [
    "CMD-SHELL",
    f'REDISCLI_AUTH="$(cat {REDIS_SECRET_FILE})" redis-cli ping | grep -q PONG',
]
# The password reaches redis-server on stdin (config from "-"), read from its secret file by
# the shell; never in an argument list or the environment. Works with the official image too
# (its entrypoint execs a command that is not redis-server as given).
REDIS_COMMAND = [
    "sh",
    "-c",
    f'exec redis-server - <<EOF\nrequirepass "$(cat {REDIS_SECRET_FILE})"\nEOF\n',
]
REDIS_USER = "redis"
# MariaDB runs as its own user from the start (the official image supports a non-root start),
# so it needs no capability at all and reads its 0400 secret files as their owner.
DB_RUN_USER = "mysql"
CRON_COMMAND = ["/cron.sh"]

# The login provider's identifier in user_oidc (shown on the login button).
OIDC_PROVIDER_ID = "Praxis-Login"
OIDC_SCOPE = "openid email profile"

# Nextcloud's log level (0 debug .. 4 fatal): warnings and worse in every profile.
NEXTCLOUD_LOGLEVEL = 2
# Start hour (UTC) of the nightly 4-hour window for heavy background jobs.
MAINTENANCE_WINDOW_START = 1

# Secret names under practices/<slot id>/ (logical key -> path segment).
SECRET_NAMES: dict[str, str] = {
    "db_password": "db-password",
    "db_root_password": "db-root-password",
    "redis_password": "redis-password",
    "nc_admin": "nc-admin",
    "oidc_client_secret": "oidc-nextcloud",  # = realm.nextcloud_secret_path
}

# Apps the Starter Excel can order (Talk = spreed) and apps every slot has.
OPTIONAL_APPS = ("spreed", "deck", "passwords", "forms")
REQUIRED_APPS = ("announcementcenter", "theming", "user_oidc")
# Apps a practice does not need, disabled on every slot (documented in README.txt/apps.json).
# (lookup_server_connector is always enabled in Nextcloud; publishing profile data to the
# global lookup server is switched off in config.json instead.)
DISABLED_APPS: dict[str, str] = {
    "app_api": "external apps need a Docker daemon inside the slot; not part of the platform",
    "firstrunwizard": "first-run wizard; staff are onboarded by the practice",
    "nextcloud_announcements": "fetches news from nextcloud.com",
    "support": "subscription advertisements",
    "survey_client": "sends usage statistics to Nextcloud GmbH (telemetry)",
    "updatenotification": "checks nextcloud.com for updates; images are upgraded by ops",
    "weather_status": "sends the user's location to an external weather service",
}

# Which secret files each container gets (only what it reads) and which user of the image owns
# them. cron runs background jobs against the installed instance: it needs Redis, not the DB
# password (config.php holds it) and never the admin password.
CONTAINER_SECRETS: dict[str, tuple[str, ...]] = {
    "db": ("db_password", "db_root_password"),
    "redis": ("redis_password",),
    "app": ("nc_admin", "db_password", "redis_password"),
    "cron": ("redis_password",),
}
SECRET_OWNERS: dict[str, str] = {
    "db": "mysql",
    "redis": "redis",
    "app": "www-data",
    "cron": "www-data",
}

# Tenant isolation: every container starts with no capability and no-new-privileges; these are
# the capabilities each image really needs: the official Nextcloud entrypoint runs as root,
# rsyncs the code with --chown and reads the www-data-owned secret files (DAC_OVERRIDE),
# Apache binds :80, drops to www-data and signals its workers; busybox crond (cron) switches to
# www-data. db and redis run as their own users and need none.
CAP_ADD: dict[str, tuple[str, ...]] = {
    "db": (),
    "redis": (),
    "app": ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID"),
    "cron": ("SETGID", "SETUID"),
}
SECURITY_OPT = ("no-new-privileges:true",)


def secret_file(key: str) -> str:
    """The path in the container of the secret with logical name ``key``."""
    return f"{SECRETS_DIR}/{SECRET_NAMES[key]}"


def hardening(role: str, settings: Settings) -> dict[str, Any]:
    """Docker SDK ``containers.create`` options confining one container of a slot."""
    return {
        "cap_drop": ["ALL"],
        "cap_add": list(CAP_ADD[role]),
        "security_opt": list(SECURITY_OPT),
        "pids_limit": settings.slot_pids_limit,
        "nano_cpus": round(settings.slot_cpus * 1e9),
    }


@dataclass(frozen=True)
class SlotNames:
    """Docker object names of one slot (all derived from the slot id)."""

    network: str
    data_volume: str
    db_volume: str
    db: str
    redis: str
    app: str
    cron: str
    idp: str  # the idp gateway (embedded TLS proxy mode only)


def slot_names(slot: Slot) -> SlotNames:
    sid = slot.id
    return SlotNames(
        network=f"{sid}-net",
        data_volume=f"{sid}-data",
        db_volume=f"{sid}-db",
        db=f"{sid}-db",
        redis=f"{sid}-redis",
        app=f"{sid}-app",
        cron=f"{sid}-cron",
        idp=f"{sid}-idp",
    )


def slot_labels(slot: Slot, role: str) -> dict[str, str]:
    """Labels of every Docker object of a slot: the slot, managed-by, the object's role."""
    return {LABEL_SLOT: slot.id, LABEL_MANAGED: "true", LABEL_ROLE: role}


def slot_secret_refs(slot: Slot) -> dict[str, str]:
    """The secret store paths of a slot's stack secrets (references, never values)."""
    return {key: f"practices/{slot.id}/{name}" for key, name in SECRET_NAMES.items()}


def nextcloud_base_url(settings: Settings, slot: Slot) -> str:
    return settings.public_origin(slot.fqdn(settings.domain))


def backchannel_issuer_url(settings: Settings, slot: Slot) -> str:
    """The same issuer's base as the slot's containers reach it (discovery, token, JWKS):
    ``keycloak_internal_url`` (behind the local proxy: ``http://idp-internal:8080``)."""
    return f"{settings.keycloak_internal_url.rstrip('/')}/realms/{slot.realm}"


def realm_issuer(settings: Settings, slot: Slot) -> str:
    """The issuer of the practice's realm as browsers and Nextcloud reach it."""
    return f"{settings.keycloak_public_url.rstrip('/')}/realms/{slot.realm}"


# --- templates ---------------------------------------------------------------------------


def _render(template: str, context: Mapping[str, Any]) -> str:
    return render(template, **context)


def env_file_text(spec: PracticeSpec, slot: Slot, settings: Settings, role: str) -> str:
    """The env file ``env/<role>.env`` of a slot's container (no secret, only *_FILE names)."""
    return _render(f"stack/{role}.env.j2", _context(spec, slot, settings))


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


# --- desired state (shared with the apply steps) ------------------------------------------


def _context(spec: PracticeSpec, slot: Slot, settings: Settings) -> dict[str, Any]:
    if settings.public_scheme not in ("http", "https"):
        raise UsageError(
            f"public_scheme must be http or https, not {settings.public_scheme!r}",
            obj="setting public_scheme",
            hint="smartpraxx-provision --set public_scheme=https ...",
        )
    names = slot_names(slot)
    return {
        "slot_id": slot.id,
        "fqdn": slot.fqdn(settings.domain),
        "scheme": settings.public_scheme,
        "base_url": nextcloud_base_url(settings, slot),
        # host[:port] as the browser sends it (the local proxy's port in the embedded TLS mode)
        "public_host": nextcloud_base_url(settings, slot).split("://", 1)[1],
        "display_name": spec.display_name,
        "praxisname": spec.praxisname,
        "practice_type": spec.practice_type.label,
        "names": asdict(names),
        "admin_user": ADMIN_USER,
        "db": {"name": DB_NAME, "user": DB_USER},
        "cron": settings.nextcloud_cron,
        # embedded profile: the IdP is on a local address and reached over plain http
        "local_idp": settings.public_scheme == "http" or settings.local_tls_proxy,
        "loglevel": NEXTCLOUD_LOGLEVEL,
        "maintenance_window_start": MAINTENANCE_WINDOW_START,
        "oidc_identifier": OIDC_PROVIDER_ID,
        "secret_files": {key: secret_file(key) for key in SECRET_NAMES},
    }


def desired_config(spec: PracticeSpec, slot: Slot, settings: Settings) -> dict[str, Any]:
    """The managed system + app config, as ``occ config:import`` reads it."""
    text = _render("nextcloud/config.json.j2", _context(spec, slot, settings))
    document: dict[str, Any] = json.loads(text)
    for app, values in package_config(spec.package)["apps"].items():
        document["apps"].setdefault(app, {}).update(values)
    return document


@dataclass(frozen=True)
class AppPlan:
    enable: tuple[str, ...]
    disable: tuple[str, ...]


def desired_apps(spec: PracticeSpec) -> AppPlan:
    """Apps to have enabled (ordered + required) and disabled (not ordered + not needed)."""
    chosen = set(spec.apps.app_ids())
    enable = sorted(chosen | set(REQUIRED_APPS))
    disable = sorted((set(OPTIONAL_APPS) - chosen) | set(DISABLED_APPS))
    return AppPlan(enable=tuple(enable), disable=tuple(disable))


def oidc_provider_options(issuer: str, client_id: str) -> dict[str, str]:
    """``occ user_oidc:provider`` options (without the secret) for the practice's realm.

    Claims as the realm's ``nextcloud`` client puts them into the token: the uid is the
    stable ``preferred_username`` (``--unique-uid=0``: no hashed ids, so group and admin
    mapping keep working), groups come from the ``groups`` claim and are provisioned.
    ``--check-bearer=1``: API clients of the practice (its third-party tools) may call the
    Nextcloud with an access token of the practice's realm; user_oidc validates it against
    the realm (signature, issuer, expiry), so a token of another realm is refused.
    ``--group-whitelist-regex`` (user_oidc >= 6.2): only the realm's groups are managed at
    login, local groups (``admin``, broadcasts' ``news-*``) are left alone.
    """
    from .realm import group_whitelist_regex  # avoids an import cycle

    return {
        "--clientid": client_id,
        "--discoveryuri": f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        "--scope": OIDC_SCOPE,
        "--unique-uid": "0",
        "--mapping-uid": "preferred_username",
        "--mapping-display-name": "name",
        "--mapping-email": "email",
        "--mapping-groups": "groups",
        "--group-provisioning": "1",
        "--group-whitelist-regex": group_whitelist_regex(),
        "--send-id-token-hint": "1",
        "--check-bearer": "1",
    }


# --- env files and secret references -----------------------------------------------------


SECRET_REF_RE = re.compile(r"<secret:([a-z0-9][a-z0-9._/-]*)>")


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            raise ValueError(f"env line without '=': {key!r}")
        env[key] = value
    return env


def secret_refs_in(text: str) -> list[str]:
    """The secret store paths referenced in ``text`` (sorted, unique)."""
    return sorted(set(SECRET_REF_RE.findall(text)))


# --- the bundle ---------------------------------------------------------------------------


def _check_refs(secret_refs: Mapping[str, str]) -> dict[str, str]:
    missing = sorted(set(SECRET_NAMES) - set(secret_refs))
    if missing:
        raise UsageError(
            f"secret references missing for {', '.join(missing)}",
            obj="render secret_refs",
            hint="pass slot_secret_refs(slot)",
        )
    bad = sorted(k for k, v in secret_refs.items() if not SECRET_REF_RE.fullmatch(f"<secret:{v}>"))
    if bad:
        raise UsageError(
            f"secret references for {', '.join(bad)} are not secret store paths",
            obj="render secret_refs",
            hint="pass paths like practices/<slot id>/<name>, never values",
        )
    return dict(secret_refs)


def _compose_service(c: ContainerPlan) -> dict[str, Any]:
    """One container of the plan as a Compose service (values for the template)."""
    h = c.hardening
    return {
        "role": c.role,
        "plan": c,
        "cpus": h["nano_cpus"] / 1e9 if "nano_cpus" in h else None,
        "secrets": [SECRET_NAMES[k] for k in c.secrets],
        "volumes": [f"{src}:{dst}" for src, dst in c.volumes.items()],
        "ports": [f"127.0.0.1:{host or ''}:{port}" for port, host in c.ports.items()],
    }


def render_slot_bundle(
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secret_refs: Mapping[str, str],
    *,
    app_port: int = 0,
) -> dict[str, bytes]:
    """Render the slot's bundle ``{relative path: bytes}`` (sorted by path); ``app_port``:
    the app's host port as ``slot_stack`` takes it (0: a random one, ``127.0.0.1::80``)."""
    from .stack import HEALTH_RETRIES, HEALTH_TIMEOUT, slot_stack  # stack.py imports bundle.py

    refs = _check_refs(secret_refs)
    ctx = _context(spec, slot, settings)
    stack = slot_stack(spec, slot, settings, app_port=app_port)
    ctx.update(
        refs=refs,
        stack=stack,
        services=[_compose_service(c) for c in stack.containers],
        health_timeout=HEALTH_TIMEOUT,
        health_retries=HEALTH_RETRIES,
        secret_file_names=sorted(
            {SECRET_NAMES[k] for c in stack.containers for k in c.secrets}
        ),
    )
    plan = desired_apps(spec)
    apps_doc = {
        "enable": list(plan.enable),
        "disable": {
            app: DISABLED_APPS.get(app, "not ordered in the Starter Excel") for app in plan.disable
        },
    }
    oidc_doc = {
        "identifier": OIDC_PROVIDER_ID,
        "options": oidc_provider_options(realm_issuer(settings, slot), "nextcloud"),
        "client_secret": f"<secret:{refs['oidc_client_secret']}>",
    }
    files: dict[str, bytes] = {
        "compose.yaml": _render("stack/compose.yaml.j2", ctx).encode(),
        "nextcloud/config.json": _json_bytes(desired_config(spec, slot, settings)),
        "nextcloud/apps.json": _json_bytes(apps_doc),
        "nextcloud/oidc-provider.json": _json_bytes(oidc_doc),
        "README.txt": _render("stack/README.txt.j2", ctx).encode(),
    }
    for role in CONTAINER_SECRETS:
        files[f"env/{role}.env"] = _render(f"stack/{role}.env.j2", ctx).encode()
    for key in sorted({k for keys in CONTAINER_SECRETS.values() for k in keys}):
        files[f"secrets/{SECRET_NAMES[key]}"] = f"<secret:{refs[key]}>\n".encode()
    return dict(sorted(files.items()))
