"""The local stack as one unit: ``up`` (engine → images → Keycloak), ``down``, ``status``.

The mail sink (``mailsink.py``) is the local SMTP server the realms send to.

``up`` is idempotent: each phase re-reads live state and only acts on what is missing, so a
second ``up`` reports what already runs and returns within seconds. ``down`` stops Keycloak,
the mail sink and dockerd only when this tool started them (pids recorded in the state dir)
and leaves the cached images. Phase timings are part of every result.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

from ..adapters.docker_engine import DockerEngine
from ..config import Settings
from ..errors import OperationFailed, ServiceUnavailableError, SmartpraxxError
from ..output import Reporter
from . import engine as engine_mod
from . import images as images_mod
from . import mailsink, proxy

KEYCLOAK_MODULE = "smartpraxx_provision.devstack.keycloak"


def _keycloak_module() -> ModuleType | None:
    """The Keycloak part of the stack, imported lazily; None when it is not there."""
    try:
        return importlib.import_module(KEYCLOAK_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != KEYCLOAK_MODULE:
            raise
        return None


def _as_dict(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _phase(
    name: str,
    reporter: Reporter,
    timings: dict[str, float],
    fn: Callable[[], Any],
) -> Any:
    start = time.monotonic()
    try:
        with reporter.step(name):
            return fn()
    finally:
        timings[name] = round(time.monotonic() - start, 2)


def _keycloak_phase(
    settings: Settings, reporter: Reporter, timings: dict[str, float], missing: list[str]
) -> Any:
    """Start the local Keycloak; without its module, say so and add it to ``missing``."""
    kc = _keycloak_module()
    if kc is None:
        reporter.warn(f"Keycloak support missing: module {KEYCLOAK_MODULE} is not installed")
        missing.append(f"Keycloak ({KEYCLOAK_MODULE} missing)")
        return {"status": "module-missing"}
    if not settings.identity_shards:
        return _as_dict(
            _phase("keycloak", reporter, timings, lambda: kc.ensure_keycloak(settings, reporter)))
    # the further shards' Keycloaks start beside the primary (each start is mostly waiting
    # for its own JVM)
    with ThreadPoolExecutor(max_workers=2) as pool:
        shards = pool.submit(_phase, "identity shards", reporter, timings,
                             lambda: kc.ensure_shards(settings, reporter))
        info = _as_dict(
            _phase("keycloak", reporter, timings, lambda: kc.ensure_keycloak(settings, reporter)))
        info["shards"] = {name: _as_dict(shard) for name, shard in shards.result().items()}
    return info


def up(
    settings: Settings,
    reporter: Reporter,
    rebuild: bool = False,
    *,
    rebuild_base: bool = False,
) -> dict[str, Any]:
    """Bring the local stack up (idempotent). Raises when a piece is missing or fails.

    The error of an incomplete stack carries the partial result in ``details``.
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    result: dict[str, Any] = {"timings": timings}

    eng = _phase(
        "docker engine", reporter, timings, lambda: engine_mod.ensure_engine(settings, reporter)
    )
    result["engine"] = eng.to_dict()

    docker = DockerEngine()
    result["images"] = _phase(
        "local images",
        reporter,
        timings,
        lambda: images_mod.ensure_images(
            settings, reporter, docker, rebuild=rebuild, rebuild_base=rebuild_base
        ),
    )

    missing: list[str] = [
        f"{key} image ({info['tag']}): sources missing"
        for key, info in result["images"].items()
        if info.get("status") == "sources-missing"
    ]

    result["mail"] = _phase(
        "mail sink", reporter, timings, lambda: mailsink.ensure_mailsink(settings, reporter)
    )
    result["proxy"] = _phase(
        "tls proxy", reporter, timings, lambda: proxy.ensure_proxy(settings, reporter)
    )

    result["keycloak"] = _keycloak_phase(settings, reporter, timings, missing)
    timings["total"] = round(time.monotonic() - started, 2)
    result["ok"] = not missing
    if missing:
        raise OperationFailed(
            "local stack incomplete: " + "; ".join(missing),
            obj="dev-stack",
            hint="add the missing piece, then: smartpraxx-provision dev-stack up",
            details={"missing": missing, "result": result},
        )
    return result


def down(settings: Settings, reporter: Reporter) -> dict[str, Any]:
    """Stop what ``up`` started (Keycloak, dockerd), by pid. Cached images stay."""
    timings: dict[str, float] = {}
    result: dict[str, Any] = {"timings": timings}
    kc = _keycloak_module()
    if kc is None:
        result["keycloak_stopped"] = False
    else:
        result["keycloak_stopped"] = bool(
            _phase("keycloak", reporter, timings, lambda: kc.stop_keycloak(settings, reporter))
        )
        result["identity_shards_stopped"] = kc.stop_shards(settings, reporter)
    result["mail_stopped"] = _phase(
        "mail sink", reporter, timings, lambda: mailsink.stop_mailsink(settings, reporter)
    )
    result["proxy_stopped"] = _phase(
        "tls proxy", reporter, timings, lambda: proxy.stop_proxy(settings, reporter)
    )
    result["engine_stopped"] = _phase(
        "docker engine", reporter, timings, lambda: engine_mod.stop_engine(settings, reporter)
    )
    result["ok"] = True
    return result


def status(settings: Settings) -> dict[str, Any]:
    """What runs and what is cached; never starts or changes anything."""
    result: dict[str, Any] = {"engine": engine_mod.engine_status(settings)}
    if result["engine"]["answers"]:
        try:
            result["images"] = images_mod.images_status(DockerEngine(), settings.local_image_tag)
        except ServiceUnavailableError as err:
            result["images"] = {"error": err.message}
    else:
        result["images"] = {"error": "docker engine does not answer"}
    kc = _keycloak_module()
    if kc is None:
        result["keycloak"] = {"status": "module-missing"}
    else:
        try:
            result["keycloak"] = _as_dict(kc.keycloak_status(settings))
        except SmartpraxxError as err:
            result["keycloak"] = {"status": "error", "error": err.message}
    result["mail"] = mailsink.mailsink_status(settings)
    result["proxy"] = proxy.status(settings)
    images = result["images"]
    images_ok = (
        all(isinstance(v, dict) and v.get("present") for v in images.values())
        and "error" not in images
    )
    kc_status = result["keycloak"]
    kc_ok = bool(kc_status.get("answers"))
    mail_ok = bool(result["mail"]["answers"])
    proxy_ok = bool(result["proxy"]["answers"])
    result["ok"] = bool(
        result["engine"]["answers"] and images_ok and kc_ok and mail_ok and proxy_ok
    )
    return result
