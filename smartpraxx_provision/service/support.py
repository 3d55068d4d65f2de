"""The consent pages of support access (issue 15), mounted into the order service.

- ``GET /support/consent/{realm}/{ticket}?t=TOKEN``: the link of the admins' mail; a valid,
  pending request starts the code flow of the practice's realm (confidential client
  ``smartpraxx-support-consent``, PKCE, state bound to a cookie);
- ``GET /support/callback``: the code is exchanged on the back channel; the logged-in user
  (their realm user id, ``sub``) sees the request and a form (approve / decline);
- ``POST /support/decide``: the answer, bound to that login by a one-time form token that is
  both in the form and in a cookie. ``operations.support.decide`` checks the user is a
  ``praxis-admin`` of the realm at that moment.

Pending logins and forms live in memory only (bounded, 10 minutes): a restart of the service
means the admin clicks the link again. Log lines name realm and ticket, never a person.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..adapters.keycloak_login import (
    LoginRefused,
    OidcClient,
    exchange_code,
    jwt_claims,
    pkce_pair,
    tls_verify,
)
from ..errors import SmartpraxxError, UsageError
from ..operations import support as ops
from ..operations.context import OpContext
from ..render import support as render

log = logging.getLogger("smartpraxx.service.support")
TTL = 600.0
MAX_PENDING = 1000
STATE_COOKIE = "sp_support_state"
FORM_COOKIE = "sp_support_form"


@dataclass(frozen=True)
class _Pending:
    realm: str
    ticket: str
    token: str
    verifier: str = ""
    nonce: str = ""
    approver: str = ""
    created: float = 0.0


class _Store:
    def __init__(self) -> None:
        self._items: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def put(self, item: _Pending) -> str:
        key = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for k in [k for k, v in self._items.items() if now - v.created > TTL]:
                del self._items[k]
            if len(self._items) >= MAX_PENDING:
                self._items.pop(next(iter(self._items)))
            self._items[key] = item
        return key

    def pop(self, key: str) -> _Pending | None:
        with self._lock:
            item = self._items.pop(key, None)
        if item is None or time.monotonic() - item.created > TTL:
            return None
        return item


def _page(status: int, title: str, text: str) -> HTMLResponse:
    return HTMLResponse(render.message_page(title, text), status_code=status)


def _invalid() -> HTMLResponse:
    return _page(404, "Link ungültig",
                 "Dieser Link ist nicht (mehr) gültig: die Anfrage wurde bereits beantwortet "
                 "oder ist abgelaufen.")


_REOPEN = "Bitte öffnen Sie den Link aus der E-Mail erneut."


def _take_bound(
    store: _Store, token: str, cookie: str | None, *, valid: bool, refused: str, expired: str
) -> _Pending | HTMLResponse:
    """The pending item ``token`` names, when the request is ``valid``, the token is the one
    in this browser's cookie and it has not expired; else the page to answer with."""
    if not valid or not token or token != cookie:
        return _page(400, refused, _REOPEN)
    pending = store.pop(token)
    if pending is None:
        return _page(400, expired, _REOPEN)
    return pending


class _ConsentPages:
    """The three handlers, sharing the context and the in-memory logins and forms."""

    def __init__(self, ctx: OpContext) -> None:
        self.ctx = ctx
        self.logins = _Store()
        self.forms = _Store()
        self.secure = ctx.settings.service_public_url.startswith("https://")

    def _cookie(self, resp: Response, name: str, value: str) -> None:
        resp.set_cookie(name, value, max_age=int(TTL), path="/support", httponly=True,
                        samesite="lax", secure=self.secure)

    async def consent_link(self, request: Request) -> Response:
        ctx = self.ctx
        realm = str(request.path_params["realm"])
        ticket = str(request.path_params["ticket"])
        token = request.query_params.get("t", "")
        found = await run_in_threadpool(ops.pending_for_link, ctx, realm, ticket, token)
        if found is None:
            return _invalid()
        verifier, challenge = pkce_pair()
        nonce = secrets.token_urlsafe(16)
        state = self.logins.put(_Pending(realm, found[1].ticket, token, verifier, nonce,
                                         created=time.monotonic()))
        query = urlencode({
            "client_id": ops.CONSENT_CLIENT, "redirect_uri": ops.callback_url(ctx),
            "response_type": "code", "scope": "openid", "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        })
        auth = (f"{ctx.settings.keycloak_public_url.rstrip('/')}/realms/{realm}"
                f"/protocol/openid-connect/auth?{query}")
        resp = RedirectResponse(auth, status_code=302)
        self._cookie(resp, STATE_COOKIE, state)
        log.info("consent link of realm %s ticket %s: login started", realm, ticket)
        return resp

    def _exchange(self, pending: _Pending, code: str) -> str:
        ctx = self.ctx
        shard_url, secret = ops.consent_client(ctx, pending.realm)
        client = OidcClient(shard_url, pending.realm, ops.CONSENT_CLIENT,
                            secret, ops.callback_url(ctx),
                            timeout=ctx.settings.keycloak_timeout,
                            verify=tls_verify(ctx.settings))
        tokens = exchange_code(client, code, pending.verifier)
        claims = jwt_claims(str(tokens["id_token"]))  # straight from the token endpoint
        if claims.get("nonce") != pending.nonce or claims.get("azp") != ops.CONSENT_CLIENT:
            raise LoginRefused("the ID token does not belong to this login",
                               obj=f"realm {pending.realm}")
        return str(claims["sub"])

    async def callback(self, request: Request) -> Response:
        code = request.query_params.get("code", "")
        pending = _take_bound(self.logins, request.query_params.get("state", ""),
                              request.cookies.get(STATE_COOKIE), valid=bool(code),
                              refused="Anmeldung abgebrochen", expired="Anmeldung abgelaufen")
        if isinstance(pending, HTMLResponse):
            return pending
        try:
            sub = await run_in_threadpool(self._exchange, pending, code)
        except SmartpraxxError as err:
            log.warning("consent login of realm %s failed: %s", pending.realm, err.message)
            return _page(403, "Anmeldung fehlgeschlagen",
                         "Die Anmeldung konnte nicht bestätigt werden.")
        found = await run_in_threadpool(ops.pending_for_link, self.ctx, pending.realm,
                                        pending.ticket, pending.token)
        if found is None:
            return _invalid()
        record, consent = found
        form_token = self.forms.put(_Pending(pending.realm, pending.ticket, pending.token,
                                             approver=sub, created=time.monotonic()))
        body = render.consent_page(consent, record.display_name or record.praxisname,
                                   form_token, "/support/decide")
        resp = HTMLResponse(body)
        self._cookie(resp, FORM_COOKIE, form_token)
        resp.delete_cookie(STATE_COOKIE, path="/support")
        return resp

    async def decide(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=4)
        decision = str(form.get("decision") or "")
        pending = _take_bound(self.forms, str(form.get("form_token") or ""),
                              request.cookies.get(FORM_COOKIE),
                              valid=decision in ("approve", "decline"),
                              refused="Ungültige Eingabe", expired="Sitzung abgelaufen")
        if isinstance(pending, HTMLResponse):
            return pending
        try:
            consent = await run_in_threadpool(
                ops.decide, self.ctx, pending.realm, pending.ticket, pending.token,
                pending.approver, decision == "approve")
        except SmartpraxxError as err:
            refused = isinstance(err, UsageError)  # not an admin, or the request is closed
            log.log(logging.INFO if refused else logging.WARNING,
                    "consent of realm %s ticket %s %s: %s", pending.realm, pending.ticket,
                    "refused" if refused else "failed", err.message)
            if refused:
                return _page(403, "Nicht möglich",
                             "Nur eine Administratorin oder ein Administrator der Praxis kann "
                             "diese Anfrage beantworten, und nur solange sie offen ist.")
            return _page(503, "Vorübergehend nicht möglich",
                         "Ihre Antwort konnte nicht gespeichert werden. Bitte versuchen Sie es "
                         "über den Link aus der E-Mail später erneut.")
        log.info("consent of realm %s ticket %s: %s", pending.realm, pending.ticket,
                 consent.state)
        if consent.state == "approved":
            resp = _page(200, "Zustimmung erteilt",
                         f"Der Support-Zugang für Ticket {consent.ticket} ist bis "
                         f"{consent.expires_at} (UTC) freigegeben und wird danach gesperrt.")
        else:
            resp = _page(200, "Abgelehnt",
                         f"Sie haben den Support-Zugriff für Ticket {consent.ticket} "
                         "abgelehnt. Es wird kein Zugang angelegt.")
        resp.delete_cookie(FORM_COOKIE, path="/support")
        return resp


def routes(ctx: OpContext) -> list[Route]:
    pages = _ConsentPages(ctx)
    return [
        Route("/support/consent/{realm}/{ticket}", pages.consent_link, methods=["GET"]),
        Route("/support/callback", pages.callback, methods=["GET"]),
        Route("/support/decide", pages.decide, methods=["POST"]),
    ]
