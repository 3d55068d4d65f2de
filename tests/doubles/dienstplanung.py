"""TEST DOUBLE: "Dienstplanung", a third-party duty-roster tool as a practice would connect it.

A small but real OpenID Connect relying party (Authlib's Starlette client) of one practice's
realm: confidential client, authorization code flow with PKCE S256, ID token checked by
Authlib (signature against the realm's JWKS, issuer, audience, expiry, nonce). It keeps no
session of its own: every visit to ``/`` goes through the realm, so the realm's single
sign-on session decides whether a password is asked, and a realm logout ends access.
``/oidc/callback`` shows who is signed in. Not part of the product; used by the tests only.
"""

from __future__ import annotations

import html
import secrets
import ssl
import threading
import time
from typing import Any

import uvicorn
from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

TITLE = "Dienstplanung (Testdouble)"


def create_app(
    *, issuer: str, client_id: str, client_secret: str, base_url: str,
    ca_file: str | None = None, backchannel_issuer: str | None = None,
) -> Starlette:
    """``issuer`` as the browser sees it; ``backchannel_issuer`` where this server fetches
    discovery/token/JWKS when it differs (the realm keeps one issuer for both)."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    oauth = OAuth()
    oauth.register(
        "praxis",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{backchannel_issuer or issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                       "verify": verify},
    )
    client: Any = oauth.create_client("praxis")
    redirect_uri = f"{base_url.rstrip('/')}/oidc/callback"

    async def home(request: Request) -> Response:
        return await client.authorize_redirect(request, redirect_uri)  # type: ignore[no-any-return]

    async def callback(request: Request) -> Response:
        try:
            token = await client.authorize_access_token(request)
        except OAuthError as err:
            return HTMLResponse(f"<h1>{TITLE}</h1><p id='fehler'>Anmeldung abgelehnt: "
                                f"{html.escape(err.error or '')}</p>", status_code=401)
        info = token.get("userinfo") or {}
        if info.get("iss") != issuer:
            return HTMLResponse(f"<h1>{TITLE}</h1><p id='fehler'>falscher Aussteller</p>",
                                status_code=401)
        name = html.escape(str(info.get("name", "")))
        user = html.escape(str(info.get("preferred_username", "")))
        return HTMLResponse(
            f"<!doctype html><html lang='de'><head><meta charset='utf-8'><title>{TITLE}</title>"
            f"</head><body><h1>{TITLE}</h1><p>Angemeldet als <strong id='name'>{name}</strong>"
            f" (<span id='benutzer'>{user}</span>)</p></body></html>")

    return _with_session(Starlette(routes=[Route("/", home), Route("/oidc/callback", callback)]))


def _with_session(app: Starlette) -> Starlette:
    # The state/nonce/PKCE verifier of one login round trip live in a signed cookie.
    app.add_middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32),
                       session_cookie="dienstplanung_login", max_age=600, same_site="lax")
    return app


class Server:
    """Runs the double on 127.0.0.1 in a thread (bounded start and stop)."""

    def __init__(self, app: Starlette, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the Dienstplanung test double did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
