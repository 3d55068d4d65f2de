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
from ..errors import NotFoundError, OperationFailed, SmartpraxxError
from ..inventory.models import PracticeRecord
from ..render.bundle import OIDC_PROVIDER_ID, nextcloud_base_url, realm_issuer
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
    from ..render.realm import nextcloud_secret_path
    from . import identity_smoke, nextcloud_stack

    record = _practice(ctx, praxisname)
    slot = record.slot
    engine = ctx.practice_engine(record)  # owner-checked doors: never a foreign object
    kc = ctx.practice_keycloak(record)
    names = nextcloud_stack.slot_names(slot)
    nc = NextcloudAdapter(engine, names.app)
    issuer = realm_issuer(ctx.settings, slot)
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
        identity_smoke.remove_leftover_test_users(kc, slot, ctx.reporter)

    try:
        leftovers()
    except Exception as exc:
        ctx.reporter.warn(f"smoke: leftover smoke users not checked: {_error_text(exc)}")

    # 1. Nextcloud installed, not in maintenance (HTTP through the 127.0.0.1 port)
    def nextcloud_status() -> None:
        try:
            status = nc.status_http()  # the published 127.0.0.1 port, through the door
        except SmartpraxxError as exc:
            check("nextcloud-status", False, f"status.php did not answer: {exc.message[:200]}")
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
        ours = next((p for p in providers if p.get("identifier") == OIDC_PROVIDER_ID), None)
        url = (ours or {}).get("discoveryEndpoint")
        if not url:
            others = ", ".join(str(p.get("identifier")) for p in providers) or "none"
            check(
                "oidc-discovery",
                False,
                f"no user_oidc provider {OIDC_PROVIDER_ID} with a discovery URI in Nextcloud "
                f"(providers: {others})",
            )
            return
        try:
            doc = _discovery_as_nextcloud(ctx, str(url))
        except (OSError, requests.RequestException, ValueError) as exc:
            check("oidc-discovery", False, f"{url} did not answer: {type(exc).__name__}")
            return
        internal = ctx.settings.keycloak_internal_url.rstrip("/")
        backchannel = [doc.get("token_endpoint"), doc.get("jwks_uri")]
        ok = doc.get("issuer") == issuer and all(
            str(u).startswith(f"{internal}/") for u in backchannel
        )
        check(
            "oidc-discovery",
            ok,
            f"issuer {doc.get('issuer')} (expected {issuer}); token/JWKS "
            f"{', '.join(str(u) for u in backchannel)} (expected on {internal})",
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
        secret = ctx.secrets.require(nextcloud_secret_path(slot))
        claims = identity_smoke.smoke_login(
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

    # 6. a staff member's path: the code flow through the practice's Nextcloud, its groups
    if nextcloud_login_possible(ctx.settings):
        try:
            detail, passed = nextcloud_login_check(ctx, record)
            check("nextcloud-login", passed, detail)
        except Exception as exc:  # recorded; the test user is removed by the check
            message = getattr(exc, "message", str(exc))
            check("nextcloud-login", False, f"{type(exc).__name__}: {message[:300]}")
    else:
        ctx.reporter.warn(
            "smoke nextcloud-login: not run - without the local TLS proxy (public_scheme "
            "https) the embedded Nextcloud cannot reach the issuer"
        )

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


def _discovery_as_nextcloud(ctx: OpContext, url: str) -> dict[str, Any]:
    """The discovery document as the slot's Nextcloud fetches it (behind the local TLS
    proxy: through the socket its idp gateway forwards to, with the internal host name)."""
    if ctx.settings.local_tls_proxy:
        from ..devstack.proxy import get_as_slot

        status, body = get_as_slot(ctx.settings, url)
        if status != 200:
            raise ValueError(f"HTTP {status}")
        doc = json.loads(body)
    else:
        doc = requests.get(url, timeout=10).json()
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def nextcloud_login_possible(settings: Any) -> bool:
    """The Nextcloud reaches the issuer the browser uses: production, or the local proxy."""
    return bool(settings.profile == "production" or settings.local_tls_proxy)


SMOKE_GROUP = "Mitarbeitende"


def nextcloud_login_check(ctx: OpContext, record: PracticeRecord) -> tuple[str, bool]:
    """Log a throwaway staff member in through the Nextcloud's code flow (as a browser
    does: /login → Keycloak's form → /apps/user_oidc/code) and read the Nextcloud user back
    over OCS: uid, e-mail and the group given in the realm. Both users are removed again."""
    from ..adapters.keycloak_login import browser_login, tls_verify
    from ..adapters.nextcloud import NextcloudAdapter
    from . import identity_smoke, nextcloud_stack

    slot = record.slot
    kc = ctx.practice_keycloak(record)  # refuses a realm of another owner
    base = nextcloud_base_url(ctx.settings, slot)
    # marked like smoke_login's user: a killed run's leftover is removed by the next smoke
    username, password = identity_smoke.create_test_user(kc, slot, identity_smoke.smoke_marker())
    nc = NextcloudAdapter(ctx.practice_engine(record), nextcloud_stack.slot_names(slot).app)
    try:
        user_id = kc.find_user_id(slot.realm, username)
        group = next((g for g in kc.groups(slot.realm) if g.get("name") == SMOKE_GROUP), None)
        if user_id is None or group is None:
            return f"realm {slot.realm} lacks the test user or group {SMOKE_GROUP}", False
        kc.add_to_group(slot.realm, user_id, str(group["id"]))
        verify = tls_verify(ctx.settings)
        with requests.Session() as session:
            landed = browser_login(
                session,
                f"{base}/login",
                username,
                password,
                timeout=ctx.settings.keycloak_timeout,
                verify=verify,
            )
            if landed.status_code >= 400:
                return (
                    f"the Nextcloud answered HTTP {landed.status_code} at "
                    f"{landed.url.split('?', 1)[0]}: {landed.text.strip()[:200]}",
                    False,
                )
            try:
                data = nc.ocs_current_user(session, base, verify=verify)
            except SmartpraxxError as exc:
                return exc.message, False
        problems = []
        if data.get("id") != username:
            problems.append(f"uid {data.get('id')!r}")
        if data.get("email") != f"{username}@smoke.invalid":
            problems.append("e-mail")
        if SMOKE_GROUP not in (data.get("groups") or []):
            problems.append(f"groups {data.get('groups')}")
        if problems:
            return f"logged in via {landed.url.split('?', 1)[0]}, wrong: {', '.join(problems)}", False
        return f"code flow via {base}/login: Nextcloud user with group {SMOKE_GROUP}", True
    finally:
        identity_smoke.delete_test_user(kc, slot, username)
        nc.delete_user(username)
