"""``smoke``: the CI smoke test of a spun-up practice stack.

Checks, each recorded with its result: Nextcloud installed and not in maintenance; the OIDC
discovery document that Nextcloud's provider points at answers with the issuer of the
practice's realm; the Nextcloud client is registered in the realm; the ordered apps are
enabled; a real authorization-code login on the realm works for a test user created for the
check (and removed afterwards, also on failure). The result is stored in the inventory.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from ..adapters.keycloak import discovery_document, discovery_object
from ..domain.lifecycle import check_operation
from ..errors import OperationFailed, SmartpraxxError
from ..inventory.models import PracticeRecord
from ..render.bundle import OIDC_PROVIDER_ID, nextcloud_base_url, realm_issuer
from ..render.realm import nextcloud_secret_path
from .context import OpContext, provisioned_practice

if TYPE_CHECKING:
    from ..adapters.keycloak import KeycloakAdapter
    from ..adapters.nextcloud import NextcloudAdapter
    from ..domain.model import Slot

NEXTCLOUD_CLIENT_ID = "nextcloud"


def _practice(ctx: OpContext, praxisname: str) -> PracticeRecord:
    record = provisioned_practice(ctx, praxisname)
    check_operation("smoke", record.state, praxisname)
    return record


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(getattr(exc, 'message', exc))[:200]}"


LOGIN_CHECKS = ("login", "nextcloud-login")


def run_smoke(
    ctx: OpContext, praxisname: str, *, raise_on_failure: bool = True, logins: bool = True
) -> dict[str, Any]:
    """Run every check; one that raises (an occ exception, Keycloak down) is recorded as
    failed and the others still run; the result is always stored before anything is raised.

    ``logins=False`` leaves out the two login checks (they create and delete a throwaway
    user, so they are not read-only): the result lists them under ``skipped``."""
    smoke = _Smoke.open(ctx, _practice(ctx, praxisname))
    smoke.remove_leftovers()
    smoke.nextcloud_status()
    smoke.discovery()
    smoke.client()
    smoke.apps()
    if logins:
        smoke.login()
        smoke.nextcloud_login()
    else:
        smoke.skipped = LOGIN_CHECKS
    return _store_result(ctx, praxisname, smoke, raise_on_failure).to_json()


def last_smoke_ok(record: PracticeRecord) -> bool:
    """The practice's stored smoke result passed."""
    try:
        return bool(json.loads(record.last_smoke or "{}").get("ok"))
    except ValueError:
        return False


@dataclass(frozen=True)
class SmokeCheck:
    """One check of a smoke run and its result."""

    check: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SmokeResult:
    """A smoke run: every check's result; ``ok`` when all passed."""

    ok: bool
    praxisname: str
    slot: str
    checks: tuple[SmokeCheck, ...]
    at: int  # Unix time of the run
    skipped: tuple[str, ...] = ()  # checks not run (a no-op provision's login checks)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["checks"] = [asdict(c) for c in self.checks]  # a JSON list, as before
        return doc


_Check = Callable[["_Smoke"], None]


def _guarded(name: str) -> Callable[[_Check], _Check]:
    """The check ``name``: an exception it raises (an occ exception, Keycloak down) is
    recorded as its failure, never unrecorded, and the checks after it still run."""

    def wrap(body: _Check) -> _Check:
        @functools.wraps(body)
        def run(smoke: _Smoke) -> None:
            try:
                body(smoke)
            except Exception as exc:  # recorded as the check's failure, never unrecorded
                smoke.check(name, False, _error_text(exc))

        return run

    return wrap


@dataclass
class _Smoke:
    """One smoke run: the practice's owner-checked doors and the checks recorded so far."""

    ctx: OpContext
    record: PracticeRecord
    kc: KeycloakAdapter
    nc: NextcloudAdapter
    issuer: str
    checks: list[SmokeCheck] = field(default_factory=list)
    skipped: tuple[str, ...] = ()

    @classmethod
    def open(cls, ctx: OpContext, record: PracticeRecord) -> _Smoke:
        from ..adapters.nextcloud import NextcloudAdapter
        from . import nextcloud_stack

        slot = record.slot
        engine = ctx.practice_engine(record)  # owner-checked doors: never a foreign object
        kc = ctx.practice_keycloak(record)
        names = nextcloud_stack.slot_names(slot)
        nc = NextcloudAdapter(engine, names.app)
        return cls(ctx, record, kc, nc, realm_issuer(ctx.settings, slot))

    @property
    def slot(self) -> Slot:
        return self.record.slot

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record one check's result and report it."""
        self.checks.append(SmokeCheck(check=name, ok=ok, detail=detail))
        (self.ctx.reporter.info if ok else self.ctx.reporter.warn)(
            f"smoke {name}: {'ok' if ok else 'FAILED'} - {detail}"
        )

    def remove_leftovers(self) -> None:
        """0. smoke users left by a killed run (found by their marker attribute)."""
        from . import identity_smoke

        try:
            identity_smoke.remove_leftover_test_users(self.kc, self.slot, self.ctx.reporter)
        except Exception as exc:
            self.ctx.reporter.warn(
                f"smoke: leftover smoke users not checked: {_error_text(exc)}"
            )

    @_guarded("nextcloud-status")
    def nextcloud_status(self) -> None:
        """1. Nextcloud installed, not in maintenance (HTTP through the 127.0.0.1 port)."""
        try:
            status = self.nc.status_http()  # the published 127.0.0.1 port, through the door
        except SmartpraxxError as exc:
            self.check("nextcloud-status", False, f"status.php did not answer: {exc.message[:200]}")
            return
        self.check(
            "nextcloud-status",
            bool(status.get("installed")) and not status.get("maintenance"),
            f"installed={status.get('installed')} maintenance={status.get('maintenance')} "
            f"version={status.get('versionstring')}",
        )

    @_guarded("oidc-discovery")
    def discovery(self) -> None:
        """2. OIDC discovery reachable, with the issuer Nextcloud is configured for (the
        tool's own user_oidc provider, by its identifier)."""
        providers = self.nc.oidc_providers()
        ours = next((p for p in providers if p.get("identifier") == OIDC_PROVIDER_ID), None)
        url = (ours or {}).get("discoveryEndpoint")
        if not url:
            others = ", ".join(str(p.get("identifier")) for p in providers) or "none"
            self.check(
                "oidc-discovery",
                False,
                f"no user_oidc provider {OIDC_PROVIDER_ID} with a discovery URI in Nextcloud "
                f"(providers: {others})",
            )
            return
        try:
            doc = _discovery_as_nextcloud(self.ctx, str(url))
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            self.check("oidc-discovery", False, f"{url} did not answer: {type(exc).__name__}")
            return
        internal = self.ctx.settings.keycloak_internal_url.rstrip("/")
        backchannel = [doc.get("token_endpoint"), doc.get("jwks_uri")]
        ok = doc.get("issuer") == self.issuer and all(
            str(u).startswith(f"{internal}/") for u in backchannel
        )
        self.check(
            "oidc-discovery",
            ok,
            f"issuer {doc.get('issuer')} (expected {self.issuer}); token/JWKS "
            f"{', '.join(str(u) for u in backchannel)} (expected on {internal})",
        )

    @_guarded("oidc-client")
    def client(self) -> None:
        """3. the Nextcloud client is registered in the realm."""
        client_ids = {c.get("clientId") for c in self.kc.clients(self.slot.realm)}
        self.check(
            "oidc-client",
            NEXTCLOUD_CLIENT_ID in client_ids,
            f"client {NEXTCLOUD_CLIENT_ID} in realm {self.slot.realm}",
        )

    @_guarded("apps")
    def apps(self) -> None:
        """4. apps enabled as ordered."""
        expected = {"user_oidc", *self.record.apps}
        enabled = set(self.nc.app_list().get("enabled", {}))
        missing = sorted(expected - enabled)
        self.check(
            "apps",
            not missing,
            f"missing: {', '.join(missing)}"
            if missing
            else f"enabled: {', '.join(sorted(expected))}",
        )

    @_guarded("login")
    def login(self) -> None:
        """5. a real login on the realm with a throwaway test user (removed in a finally)."""
        from . import identity_smoke

        secret = self.ctx.secrets.require(nextcloud_secret_path(self.slot))
        claims = identity_smoke.smoke_login(
            self.kc, self.ctx.settings, self.slot, NEXTCLOUD_CLIENT_ID, secret
        )
        self.check(
            "login", claims.get("iss") == self.issuer, f"ID token issued by {claims.get('iss')}"
        )

    def nextcloud_login(self) -> None:
        """6. a staff member's path: the code flow through the practice's Nextcloud, its groups."""
        if not nextcloud_login_possible(self.ctx.settings):
            self.ctx.reporter.warn(
                "smoke nextcloud-login: not run - without the local TLS proxy (public_scheme "
                "https) the embedded Nextcloud cannot reach the issuer"
            )
            return
        try:
            detail, passed = nextcloud_login_check(self.ctx, self.record)
            self.check("nextcloud-login", passed, detail)
        except Exception as exc:  # recorded; the test user is removed by the check
            message = getattr(exc, "message", str(exc))
            self.check("nextcloud-login", False, f"{type(exc).__name__}: {message[:300]}")


def _store_result(
    ctx: OpContext, praxisname: str, smoke: _Smoke, raise_on_failure: bool
) -> SmokeResult:
    """Store the smoke result in the inventory; then raise if a check failed (when asked)."""
    checks = tuple(smoke.checks)
    slot = smoke.slot
    ok = all(c.ok for c in checks)
    result = SmokeResult(ok=ok, praxisname=praxisname, slot=slot.id, checks=checks,
                         at=int(time.time()), skipped=smoke.skipped)
    doc = result.to_json()
    ctx.inventory.update_practice(praxisname, last_smoke=json.dumps(doc, sort_keys=True))
    if not ok and raise_on_failure:
        failed = ", ".join(c.check for c in checks if not c.ok)
        raise OperationFailed(
            f"smoke check of {praxisname} failed: {failed}",
            obj=f"{praxisname} ({slot.id})",
            hint=f"smartpraxx-provision status {praxisname}; fix, then smartpraxx-provision smoke {praxisname}",
            details={"smoke": doc},
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
        return discovery_object(json.loads(body))
    return discovery_document(url, timeout=10)


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
