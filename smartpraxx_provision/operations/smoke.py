"""``smoke``: the CI smoke test of a spun-up practice stack.

Checks, each recorded with its result: Nextcloud installed and not in maintenance; the OIDC
discovery document that Nextcloud's provider points at answers with the issuer of the
practice's realm; the Nextcloud client is registered in the realm; the ordered apps are
enabled; a real authorization-code login on the realm works for a test user created for the
check (and removed afterwards, also on failure). The result is stored in the inventory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from ..domain.lifecycle import check_operation
from ..errors import NotFoundError, OperationFailed
from ..inventory.models import PracticeRecord
from .context import OpContext

NEXTCLOUD_CLIENT_ID = "nextcloud"


def _practice(ctx: OpContext, praxisname: str) -> PracticeRecord:
    record = ctx.inventory.get_practice(praxisname)
    if record is None or record.tombstoned:
        raise NotFoundError(
            f"practice {praxisname} is not provisioned",
            obj=praxisname,
            hint="smartpraxx-provision practices list",
        )
    check_operation("smoke", record.state, praxisname)
    return record


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(getattr(exc, 'message', exc))[:200]}"


def run_smoke(ctx: OpContext, praxisname: str, *, raise_on_failure: bool = True) -> dict[str, Any]:
    """Run every check; one that raises (an occ exception, Keycloak down) is recorded as
    failed and the others still run; the result is always stored before anything is raised."""
    from ..adapters.nextcloud import NextcloudAdapter
    from . import identity, nextcloud_stack

    record = _practice(ctx, praxisname)
    slot = record.slot
    engine = ctx.practice_engine(record)  # owner-checked doors: never a foreign object
    kc = ctx.practice_keycloak(record)
    names = nextcloud_stack.slot_names(slot)
    nc = NextcloudAdapter(engine, names.app)
    issuer = identity.realm_issuer(ctx.settings, slot)
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})
        (ctx.reporter.info if ok else ctx.reporter.warn)(
            f"smoke {name}: {'ok' if ok else 'FAILED'} - {detail}"
        )

    def guarded(name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception as exc:  # recorded as the check's failure, never unrecorded
            check(name, False, _error_text(exc))

    # 0. smoke users left by a killed run (found by their marker attribute)
    def leftovers() -> None:
        identity.remove_leftover_test_users(kc, slot, ctx.reporter)

    try:
        leftovers()
    except Exception as exc:
        ctx.reporter.warn(f"smoke: leftover smoke users not checked: {_error_text(exc)}")

    # 1. Nextcloud installed, not in maintenance (HTTP through the 127.0.0.1 port)
    def nextcloud_status() -> None:
        port = engine.published_port(names.app, 80)
        try:
            status = requests.get(f"http://127.0.0.1:{port}/status.php", timeout=10).json()
        except (requests.RequestException, ValueError) as exc:
            check("nextcloud-status", False, f"status.php did not answer: {type(exc).__name__}")
            return
        check(
            "nextcloud-status",
            bool(status.get("installed")) and not status.get("maintenance"),
            f"installed={status.get('installed')} maintenance={status.get('maintenance')} "
            f"version={status.get('versionstring')}",
        )

    # 2. OIDC discovery reachable, with the issuer Nextcloud is configured for
    def discovery() -> None:
        providers = nc.oidc_providers()
        url = next((p.get("discoveryEndpoint") for p in providers), None)
        if not url:
            check("oidc-discovery", False, "no user_oidc provider configured in Nextcloud")
            return
        try:
            doc = requests.get(str(url), timeout=10).json()
        except (requests.RequestException, ValueError) as exc:
            check("oidc-discovery", False, f"{url} did not answer: {type(exc).__name__}")
            return
        check(
            "oidc-discovery",
            doc.get("issuer") == issuer,
            f"issuer {doc.get('issuer')} (expected {issuer})",
        )

    # 3. the Nextcloud client is registered in the realm
    def client() -> None:
        client_ids = {c.get("clientId") for c in kc.clients(slot.realm)}
        check(
            "oidc-client",
            NEXTCLOUD_CLIENT_ID in client_ids,
            f"client {NEXTCLOUD_CLIENT_ID} in realm {slot.realm}",
        )

    # 4. apps enabled as ordered
    def apps() -> None:
        expected = {"user_oidc", *record.apps}
        enabled = set(nc.app_list().get("enabled", {}))
        missing = sorted(expected - enabled)
        check(
            "apps",
            not missing,
            f"missing: {', '.join(missing)}"
            if missing
            else f"enabled: {', '.join(sorted(expected))}",
        )

    # 5. a real login on the realm with a throwaway test user (removed in a finally)
    def login() -> None:
        secret = ctx.secrets.require(identity.nextcloud_secret_path(slot))
        claims = identity.smoke_login(
            kc, ctx.settings, slot, NEXTCLOUD_CLIENT_ID, secret
        )
        check("login", claims.get("iss") == issuer, f"ID token issued by {claims.get('iss')}")

    for name, body in (
        ("nextcloud-status", nextcloud_status),
        ("oidc-discovery", discovery),
        ("oidc-client", client),
        ("apps", apps),
        ("login", login),
    ):
        guarded(name, body)

    ok = all(c["ok"] for c in checks)
    result = {
        "ok": ok,
        "praxisname": praxisname,
        "slot": slot.id,
        "checks": checks,
        "at": int(time.time()),
    }
    ctx.inventory.update_practice(praxisname, last_smoke=json.dumps(result, sort_keys=True))
    if not ok and raise_on_failure:
        failed = ", ".join(c["check"] for c in checks if not c["ok"])
        raise OperationFailed(
            f"smoke check of {praxisname} failed: {failed}",
            obj=f"{praxisname} ({slot.id})",
            hint=f"smartpraxx-provision status {praxisname}; fix, then smartpraxx-provision smoke {praxisname}",
            details={"smoke": result},
        )
    return result
