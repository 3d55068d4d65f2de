"""A practice's Nextcloud stack: launch, configure (occ), status, removal.

Steps are idempotent: each re-reads live state and changes only what differs, reporting
"changed"/"up to date" lines through the Reporter. Every Docker object carries the slot's
labels and a slot-scoped name (``slot_names``), so nothing here can touch another slot.

* ``ensure_stack_images`` — the images of the slot's containers on its engine: a remote
  engine lacking one gets it copied from the local engine (``docker save | docker load``,
  streamed, verified by image ID); run first by ``launch_stack``.
* ``launch_stack`` — the slot's container plan (render/stack.py ``slot_stack``: network,
  volumes, MariaDB, Redis, the idp gateway in the local TLS mode, Nextcloud, optional cron)
  applied in its order through the Docker API (not compose), with secrets drawn from the
  secret store (generated once) and bounded readiness waits for what a container depends on.
  The secret-free bundle rendered from the same plan (compose.yaml, env/, nextcloud/) is
  written to ``<state_dir>/slots/<slot id>/`` first. A DB password that the database refuses
  stops the launch with an error naming the slot and the container, its logs attached.
* ``configure_nextcloud`` — read state (``config:list``, ``app:list``,
  ``user_oidc:providers``: 3 occ runs), diff against the desired state, write the
  differences (apps in one call each, config in one ``config:import``, the login provider in
  one call). An ordered app the image does not contain (absent from ``app:list``'s enabled
  and disabled lists) stops the converge before any change (OperationFailed, exit 1); the
  apps the image has are enabled in one call. A converge with nothing to do issues no
  mutating occ command.
* ``remove_stack`` — containers, volumes, network (idempotent). It deletes data: callers
  (decommission) must export and verify first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..adapters.docker_engine import (
    LOCAL_HINT,
    ContainerSpec,
    DockerEngine,
    SecretFile,
    healthcheck,
)
from ..adapters.nextcloud import NextcloudAdapter, provider_differences
from ..config import Settings
from ..domain.model import PracticeSpec, Slot
from ..domain.ownership import LABEL_SLOT
from ..errors import (
    ExternalServiceError,
    OperationFailed,
    ServiceUnavailableError,
    SmartpraxxError,
)
from ..output import Reporter
from ..render.bundle import (
    APP_PORT,
    DB_NAME,
    DB_USER,
    OIDC_PROVIDER_ID,
    SlotNames,
    desired_apps,
    desired_config,
    oidc_provider_options,
    render_slot_bundle,
    secret_file,
    slot_names,
    slot_secret_refs,
)
from ..render.stack import (
    HEALTH_RETRIES,
    HEALTH_TIMEOUT,
    AbsentContainer,
    ContainerPlan,
    HealthCheck,
    StackPlan,
    slot_stack,
)
from ..secrets import SecretStore
from ..secrets.filestore import atomic_write

__all__ = [
    "OIDC_FINGERPRINT_KEY",
    "ConvergeResult",
    "SlotNames",
    "bundle_dir",
    "configure_nextcloud",
    "container_spec",
    "ensure_stack_images",
    "launch_stack",
    "remove_stack",
    "slot_names",
    "slot_status",
    "write_bundle",
]

# System config key holding the SHA-256 of the OIDC client secret last given to user_oidc
# (occ never shows the secret; the fingerprint lets a converge notice a rotated secret).
OIDC_FINGERPRINT_KEY = "smartpraxx.oidc_client_secret_sha256"

_LOG_TAIL = 40
# What the official image's entrypoint (and the stand-in) logs when `occ maintenance:install`
# failed; it does not retry, so waiting longer is pointless.
INSTALL_FAILED_MARK = "Installing of nextcloud failed!"
_POLL = 1.0


@dataclass
class ConvergeResult:
    changes: list[str] = field(default_factory=list)
    occ_calls: int = 0
    mutating_calls: int = 0


# --- launch --------------------------------------------------------------------------------


def _slot_error(
    engine: DockerEngine,
    slot: Slot,
    container: str,
    message: str,
    hint: str | None = None,
) -> ExternalServiceError:
    """A failure of a slot's container, its last log lines attached (hint: docker logs)."""
    logs = engine.logs(container, tail=_LOG_TAIL)
    last = "\n".join(logs.strip().splitlines()[-10:])
    return ExternalServiceError(
        f"slot {slot.id}: {message}"
        + (f"\n--- last log lines of {container} ---\n{last}" if last else ""),
        obj=container,
        hint=hint or f"docker logs {container}",
        details={"slot": slot.id, "container": container, "logs": logs},
    )


def _wait(
    engine: DockerEngine, slot: Slot, container: str, probe: list[str], timeout: float
) -> None:
    """Readiness during a launch: run the container's health command itself until it passes
    (bounded in count and time). Docker's own healthcheck only runs every
    ``render.stack.HEALTH_INTERVAL`` seconds, which is right for monitoring many slots on one host but
    would make every launch wait for it."""
    cmd = list(probe[1:]) if probe[0] == "CMD" else ["sh", "-c", probe[1]]
    deadline = time.monotonic() + timeout
    last = "not started"
    for _ in range(int(timeout / _POLL) + 2):
        info = engine.inspect_container(container)
        if info is None or info.status in ("exited", "dead"):
            last = f"container {info.status if info else 'missing'}"
            break
        if info.status == "running":
            result = engine.exec(container, cmd, timeout=30)
            if result.ok:
                return
            last = (result.stderr or result.stdout).strip()[-200:] or f"exit {result.exit_code}"
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL)
    raise _slot_error(
        engine, slot, container, f"{container} is not ready within {timeout:g}s ({last})"
    )


def _check_db_login(engine: DockerEngine, slot: Slot, names: SlotNames, ref: str) -> None:
    """Log in as the app's DB user over TCP with the password from the DB container's secret
    file (the store's value): the shell reads it into MYSQL_PWD inside the container, so it is
    in no argument list and no exec environment."""
    pw_file = secret_file("db_password")
    result = engine.exec(
        names.db,
        [
            "sh",
            "-c",
            f'MYSQL_PWD="$(cat {pw_file})" exec mariadb --no-defaults --protocol=tcp '
            f"--host=127.0.0.1 --user={DB_USER} --connect-timeout=5 --execute='SELECT 1' {DB_NAME}",
        ],
    )
    if result.exit_code != 0:
        reason = result.stderr.strip() or result.stdout.strip()
        raise _slot_error(
            engine,
            slot,
            names.db,
            f"database container {names.db} refuses the password from the secret store "
            f"({ref}): {reason[-300:]}",
            f"check the secret {ref} against the database of {slot.id} "
            f"(the DB keeps the password it was initialised with); docker logs {names.db}",
        )


def _wait_installed(
    engine: DockerEngine, slot: Slot, nc: NextcloudAdapter, timeout: float
) -> dict[str, Any]:
    """Poll status.php through the published port until Nextcloud reports installed."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    for _ in range(int(timeout / _POLL) + 2):
        info = engine.inspect_container(nc.container)
        if info is None or info.status in ("exited", "dead"):
            last = f"container {info.status if info else 'missing'}"
            break
        try:
            status = nc.status_http()
            if status.get("installed") and not status.get("maintenance"):
                return status
            last = f"installed={status.get('installed')} maintenance={status.get('maintenance')}"
        except (SmartpraxxError, requests.RequestException) as exc:
            last = type(exc).__name__
        if INSTALL_FAILED_MARK in engine.logs(nc.container, tail=_LOG_TAIL):
            last = "the image's install failed, see the log lines below"
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL)
    message = f"Nextcloud in {nc.container} is not installed and ready within {timeout:g}s"
    raise _slot_error(engine, slot, nc.container, f"{message} ({last})")


def _secret_files(
    plan: ContainerPlan, refs: dict[str, str], secrets: SecretStore
) -> tuple[SecretFile, ...]:
    """The secret files one container gets (only its own), resolved from the store."""
    return tuple(
        SecretFile(path=secret_file(key), owner=plan.secret_owner or "",
                   content=secrets.ensure(refs[key]).strip())
        for key in plan.secrets
    )


def _docker_healthcheck(check: HealthCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    if check.disabled:
        return {"test": ["NONE"]}
    return healthcheck(
        list(check.test),
        interval=check.interval,
        timeout=HEALTH_TIMEOUT,
        retries=HEALTH_RETRIES,
        start_period=check.start_period,
    )


def container_spec(
    plan: ContainerPlan, refs: dict[str, str], secrets: SecretStore
) -> ContainerSpec:
    """The Docker door's spec of one planned container (secret values resolved now)."""
    return ContainerSpec(
        name=plan.name,
        image=plan.image,
        env=dict(plan.env),
        labels=dict(plan.labels),
        network=plan.network,
        aliases=plan.aliases,
        volumes=dict(plan.volumes),
        ports=dict(plan.ports),
        mem_limit=plan.mem_limit,
        restart_policy=plan.restart_policy,
        command=None if plan.command is None else list(plan.command),
        healthcheck=_docker_healthcheck(plan.healthcheck),
        user=plan.user,
        secret_files=_secret_files(plan, refs, secrets),
        extra=dict(plan.hardening),
    )


def _no_copy_reason(engine: DockerEngine, source: DockerEngine, tag: str) -> str | None:
    """Why ``tag`` cannot be copied from ``source`` to ``engine`` (None: it can)."""
    if engine.is_local:
        return f"{engine.url} is the local engine; images are built or loaded there, not copied"
    if source.url == engine.url:
        return f"the source engine is {engine.url} itself"
    try:
        if source.image_exists(tag):
            return None
    except (ServiceUnavailableError, ExternalServiceError) as exc:
        return f"the local engine at {source.url} cannot be asked: {exc.message}"
    return f"the local engine at {source.url} does not have it either"


def _copy_image(engine: DockerEngine, source: DockerEngine, tag: str, reporter: Reporter) -> None:
    """Copy one image the engine lacks from ``source``, or refuse naming image and engine."""
    reason = _no_copy_reason(engine, source, tag)
    if reason is not None:
        hint = (
            f"{LOCAL_HINT} builds the local images"
            if engine.is_local
            else f"{LOCAL_HINT} builds the local images (then they are copied), "
            f"or load the image on {engine.url} yourself"
        )
        raise ExternalServiceError(
            f"image {tag} is not present on the Docker engine at {engine.url} and cannot "
            f"be copied there: {reason}",
            obj=tag,
            hint=hint,
            details={"image": tag, "engine": engine.url, "source": source.url, "reason": reason},
        )
    t0 = time.monotonic()
    size = source.copy_image_to(tag, engine)
    reporter.change(
        f"image {tag} copied to {engine.url} "
        f"({size / 1_000_000:.1f} MB, {time.monotonic() - t0:.1f} s)"
    )


def ensure_stack_images(
    engine: DockerEngine,
    stack: StackPlan,
    reporter: Reporter,
    source: DockerEngine | None = None,
) -> list[str]:
    """Make every image of the stack's containers present on ``engine``; the tags copied.

    Present: skipped. Missing on a remote engine: copied from ``source`` (default: the local
    engine, ``DockerEngine()``, connected only when something is missing) when it has the
    image. Missing otherwise (a local engine, or no source has it or answers): refused with
    ExternalServiceError naming image and engine, nothing else done. Idempotent. Two
    provisions to the same host at once may both copy the same image; ``docker load`` of
    identical content is harmless, so nothing serialises that.
    """
    missing = []
    for tag in stack.images():
        if engine.image_exists(tag):
            reporter.skip(f"image {tag} present on {engine.url}")
        else:
            missing.append(tag)
    if not missing:
        return []
    src = source if source is not None else DockerEngine()
    try:
        for tag in missing:
            _copy_image(engine, src, tag, reporter)
    finally:
        if source is None:
            src.close()
    return missing


def _ensure_network_and_volumes(engine: DockerEngine, stack: StackPlan, reporter: Reporter) -> None:
    if engine.ensure_network(stack.network, stack.network_labels):
        reporter.change(f"network {stack.network} created")
    else:
        reporter.skip(f"network {stack.network} exists")
    for volume in stack.volumes:
        if engine.ensure_volume(volume, stack.volume_labels):
            reporter.change(f"volume {volume} created")
        else:
            reporter.skip(f"volume {volume} exists")


def _make_ready(
    engine: DockerEngine, slot: Slot, dependencies: list[ContainerPlan], timeout: float
) -> None:
    """Wait for the containers another one depends on, by their health checks; with the db
    among them, then check the app's DB login too."""
    for dependency in dependencies:
        assert dependency.healthcheck is not None, f"{dependency.name} has no readiness check"
        _wait(engine, slot, dependency.name, list(dependency.healthcheck.test), timeout)
    if any(d.role == "db" for d in dependencies):
        _check_db_login(engine, slot, slot_names(slot), slot_secret_refs(slot)["db_password"])


def launch_stack(
    engine: DockerEngine,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
    *,
    image_source: DockerEngine | None = None,
    app_port: int = 0,
) -> dict[str, Any]:
    """Converge the slot's images (``ensure_stack_images``, from ``image_source``), network,
    volumes and containers (``slot_stack``, in its order); wait until Nextcloud is ready.
    The app publishes on host port ``app_port`` (0: a random free one). The secret-free
    bundle is written to ``bundle_dir``."""
    start = time.monotonic()
    stack = slot_stack(spec, slot, settings, app_port=app_port)
    refs = slot_secret_refs(slot)
    bundle = render_slot_bundle(spec, slot, settings, refs, app_port=app_port)
    write_bundle(bundle, bundle_dir(settings, slot))
    result: dict[str, Any] = {"slot": slot.id, "containers": {}}
    result["images_copied"] = ensure_stack_images(engine, stack, reporter, image_source)
    _ensure_network_and_volumes(engine, stack, reporter)
    ready: set[str] = set()
    status: dict[str, Any] = {}
    for step in stack.steps:
        if isinstance(step, AbsentContainer):
            if engine.remove_container(step.name):
                reporter.change(f"container {step.name} removed ({step.reason})")
            continue
        waiting = [stack.container(role) for role in step.depends_on if role not in ready]
        _make_ready(engine, slot, waiting, settings.health_timeout)
        ready.update(step.depends_on)
        outcome = engine.ensure_container(container_spec(step, refs, secrets))
        result["containers"][step.role] = outcome
        if outcome == "running":
            reporter.skip(f"container {step.name} running, up to date")
        else:
            reporter.change(f"container {step.name} {outcome}")
        if step.role == "app":
            nc = NextcloudAdapter(engine, step.name)
            status = _wait_installed(engine, slot, nc, settings.health_timeout)
            ready.add("app")
    app = stack.container("app").name
    result["app_port"] = engine.published_port(app, APP_PORT)
    result["version"] = status.get("versionstring", "")
    result["seconds"] = round(time.monotonic() - start, 2)
    reporter.info(
        f"Nextcloud {result['version']} of slot {slot.id} ready on 127.0.0.1:{result['app_port']}"
    )
    return result


# --- configure -----------------------------------------------------------------------------


def _same(current: Any, desired: Any) -> bool:
    return json.dumps(current, sort_keys=True) == json.dumps(desired, sort_keys=True)


def _app_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else json.dumps(value)


def config_diff(
    current: dict[str, Any], desired: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The part of ``desired`` that differs from ``current`` (config:import form) and the
    names of the differing keys (``system.<key>`` / ``apps.<app>.<key>``)."""
    out: dict[str, Any] = {}
    keys: list[str] = []
    cur_system = current.get("system") or {}
    for key, value in sorted((desired.get("system") or {}).items()):
        if key not in cur_system or not _same(cur_system[key], value):
            out.setdefault("system", {})[key] = value
            keys.append(f"system.{key}")
    cur_apps = current.get("apps") or {}
    for app, values in sorted((desired.get("apps") or {}).items()):
        have = cur_apps.get(app) or {}
        for key, value in sorted(values.items()):
            if key not in have or _app_value(have[key]) != _app_value(value):
                out.setdefault("apps", {}).setdefault(app, {})[key] = value
                keys.append(f"apps.{app}.{key}")
    return out, keys


def _converge_apps(
    nc: NextcloudAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    apps: dict[str, dict[str, str]],
    reporter: Reporter,
    dry_run: bool,
) -> list[str]:
    """Enable the ordered + required apps, disable the others (one call each way)."""
    plan = desired_apps(spec)
    to_enable = [a for a in plan.enable if a not in apps["enabled"]]
    to_disable = [a for a in plan.disable if a in apps["enabled"]]
    # An app the image does not contain shows neither as enabled nor as disabled; enabling
    # it would need the app store (occ exits 1 half-way). Stop before changing anything.
    missing = [a for a in to_enable if a not in apps["disabled"]]
    if missing:
        raise OperationFailed(
            f"slot {slot.id}: the Nextcloud image {settings.nextcloud_image} does not contain "
            f"the app(s) {', '.join(missing)} ordered for {spec.praxisname}; nothing was "
            "changed in its Nextcloud",
            obj=nc.container,
            hint="use an image with these apps baked in (setting nextcloud_image, see README "
            "'Nextcloud image'), or order the practice without them; then re-run provision",
            details={"slot": slot.id, "missing_apps": missing,
                     "image": settings.nextcloud_image},
        )
    changes: list[str] = []
    if to_enable:
        if not dry_run:
            nc.enable_apps(to_enable)
        changes += [f"app {a} enabled" for a in to_enable]
    if to_disable:
        if not dry_run:
            nc.disable_apps(to_disable)
        changes += [f"app {a} disabled" for a in to_disable]
    if not changes:
        reporter.skip(f"apps of {slot.id} up to date ({', '.join(plan.enable)})")
    return changes


def _converge_provider(
    nc: NextcloudAdapter,
    slot: Slot,
    options: dict[str, str],
    secret: str | None,
    secret_stale: bool,
    reporter: Reporter,
    dry_run: bool,
) -> list[str]:
    """Create the user_oidc login provider, or update what differs (the secret if stale)."""
    providers = nc.oidc_providers()
    provider = next((p for p in providers if p.get("identifier") == OIDC_PROVIDER_ID), None)
    if provider is None:
        if not dry_run:
            nc.set_oidc_provider(OIDC_PROVIDER_ID, options, secret)
        return [f"login provider {OIDC_PROVIDER_ID} created"]
    differing = provider_differences(provider, options)
    if not differing and not secret_stale:
        reporter.skip(f"login provider {OIDC_PROVIDER_ID} of {slot.id} up to date")
        return []
    if not dry_run:
        nc.set_oidc_provider(
            OIDC_PROVIDER_ID,
            {name: options[name] for name in differing},
            secret if secret_stale else None,
        )
    what = [*differing, *(["client secret"] if secret_stale else [])]
    return [f"login provider {OIDC_PROVIDER_ID} updated ({', '.join(what)})"]


def configure_nextcloud(
    nc: NextcloudAdapter,
    spec: PracticeSpec,
    slot: Slot,
    settings: Settings,
    secrets: SecretStore,
    reporter: Reporter,
    *,
    issuer: str,
    client_id: str = "nextcloud",
    dry_run: bool = False,
) -> ConvergeResult:
    """Converge system/app config, apps and the user_oidc login provider of the slot.

    With ``dry_run`` only the three reads run; ``changes`` lists what a real run would do.
    """
    calls0, mutating0 = nc.calls, nc.mutating_calls
    current = nc.config_list()
    apps = nc.app_list()
    ref = slot_secret_refs(slot)["oidc_client_secret"]
    secret = secrets.get(ref) if dry_run else secrets.ensure(ref)
    desired = desired_config(spec, slot, settings)
    desired["system"][OIDC_FINGERPRINT_KEY] = (
        hashlib.sha256(secret.encode()).hexdigest() if secret is not None else "(new secret)"
    )
    changes = _converge_apps(nc, spec, slot, settings, apps, reporter, dry_run)
    secret_stale = not _same(
        (current.get("system") or {}).get(OIDC_FINGERPRINT_KEY),
        desired["system"][OIDC_FINGERPRINT_KEY],
    )
    options = oidc_provider_options(issuer, client_id)
    changes += _converge_provider(nc, slot, options, secret, secret_stale, reporter, dry_run)

    # Config last: the secret fingerprint is recorded only after the provider holds the secret.
    diff, keys = config_diff(current, desired)
    if diff:
        if not dry_run:
            nc.config_import(diff)
        changes += [f"config {k} set" for k in keys]
    else:
        reporter.skip(f"Nextcloud config of {slot.id} up to date")

    result = ConvergeResult(changes, nc.calls - calls0, nc.mutating_calls - mutating0)
    if dry_run:
        return result
    for line in changes:
        reporter.change(line)
    reporter.info(f"occ runs for {slot.id}: {result.occ_calls} ({result.mutating_calls} changing)")
    return result


# --- bundle on disk, status, removal -------------------------------------------------------


def bundle_dir(settings: Settings, slot: Slot) -> Path:
    """Where the slot's secret-free bundle is written for operators to inspect."""
    return settings.state_dir / "slots" / slot.id


def write_bundle(bundle: dict[str, bytes], directory: Path) -> list[Path]:
    """Write a rendered (secret-free) bundle; ``env/*`` and ``secrets/*`` files are 0600."""
    written: list[Path] = []
    for rel, data in bundle.items():
        target = directory / rel
        atomic_write(target, data, 0o600 if rel.startswith(("env/", "secrets/")) else 0o644)
        written.append(target)
    os.chmod(directory, 0o700)
    return written


def remove_bundle(settings: Settings, slot: Slot, reporter: Reporter) -> bool:
    """Remove the slot's bundle folder (our own render: no data, no secret values)."""
    directory = bundle_dir(settings, slot)
    if not directory.is_dir():
        return False
    shutil.rmtree(directory)
    reporter.change(f"bundle folder {directory} removed")
    return True


def slot_status(engine: DockerEngine, slot: Slot) -> dict[str, Any]:
    """Containers, volumes, network and Nextcloud's status.php of one slot."""
    names = slot_names(slot)
    containers: dict[str, Any] = {}
    for role, name in (
        ("db", names.db),
        ("redis", names.redis),
        ("app", names.app),
        ("cron", names.cron),
        ("idp", names.idp),
    ):
        info = engine.inspect_container(name)
        containers[role] = (
            None
            if info is None
            else {
                "name": name,
                "status": info.status,
                "health": info.health,
                "slot_label": info.labels.get(LABEL_SLOT),
            }
        )
    volumes = {v.name for v in engine.list_volumes({LABEL_SLOT: slot.id})}
    networks = {n.name for n in engine.list_networks({LABEL_SLOT: slot.id})}
    status: dict[str, Any] = {
        "slot": slot.id,
        "containers": containers,
        "volumes": {v: v in volumes for v in (names.db_volume, names.data_volume)},
        "network": names.network in networks,
        "nextcloud": None,
    }
    app = containers["app"]
    if app is not None and app["status"] == "running":
        nc = NextcloudAdapter(engine, names.app)
        try:
            status["app_port"] = engine.published_port(names.app, APP_PORT)
            status["nextcloud"] = nc.status_http()
        except SmartpraxxError as exc:
            status["nextcloud"] = {"error": exc.message}
    return status


def remove_stack(engine: DockerEngine, slot: Slot, reporter: Reporter) -> dict[str, Any]:
    """Remove the slot's containers, volumes (its DATA) and network. Idempotent."""
    names = slot_names(slot)
    removed: list[str] = []
    for name in (names.cron, names.app, names.idp, names.redis, names.db):
        if engine.remove_container(name):
            removed.append(f"container {name}")
    for name in (names.data_volume, names.db_volume):
        if engine.remove_volume(name):
            removed.append(f"volume {name}")
    if engine.remove_network(names.network):
        removed.append(f"network {names.network}")
    for line in removed:
        reporter.change(f"{line} removed")
    if not removed:
        reporter.skip(f"stack of {slot.id} already removed")
    return {"slot": slot.id, "removed": removed}
