"""Keycloak as a browser meets it: the login form, the authorization-code flow, tokens.

No admin session here (that is ``adapters/keycloak.py``'s door): ``authorization_code_login``
drives the realm's login form like a browser and redeems the code (tests and the smoke check,
through ``password_login``); ``browser_login`` logs in through an OIDC client such as
Nextcloud's user_oidc; ``exchange_code`` redeems a code a browser brought back (both code
flows take the realm's client as one ``OidcClient``); ``jwt_claims`` reads a token's payload.
Refusals are ``LoginRefused``, an unreachable server is ``ServiceUnavailableError``.
Messages never carry passwords, secrets or codes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlparse

import requests

from ..config import Settings
from ..domain.model import Slot
from ..errors import ExternalServiceError, ServiceUnavailableError
from ..render.realm import nextcloud_redirect_uris
from .keycloak import UP_HINT


class LoginRefused(ExternalServiceError):
    """Keycloak's login form did not accept the credentials (or asked for more steps)."""

    kind = "login-refused"


class _LoginFormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.action: str | None = None
        self.error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and a.get("id") == "kc-form-login":
            self.action = a.get("action")
        if a.get("id") in ("input-error", "kc-error-message") or (
            "alert-error" in (a.get("class") or "")
        ):
            self.error = True


def _loopback_cookies(session: requests.Session, base_url: str) -> None:
    """Browsers treat http://127.0.0.1 and localhost as secure contexts and send ``Secure``
    cookies there (Keycloak marks its session cookies Secure + SameSite=None); requests does
    not, so do what a browser does, for loopback hosts only."""
    host = urlparse(base_url).hostname or ""
    if urlparse(base_url).scheme == "http" and host in ("127.0.0.1", "localhost", "::1"):
        for cookie in session.cookies:
            cookie.secure = False


def _form_action(html: str) -> str | None:
    """The action of Keycloak's login form in ``html``, None when the page shows none."""
    parser = _LoginFormParser()
    parser.feed(html)
    return parser.action


def _credentials(username: str, password: str) -> dict[str, str]:
    return {"username": username, "password": password, "credentialId": ""}


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) for a code flow."""
    verifier = _secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def _unreachable(message: str, obj: str) -> ServiceUnavailableError:
    """The error of a login step whose server did not answer (the hint: how to start it)."""
    return ServiceUnavailableError(message, obj=obj, hint=UP_HINT)


def _login_request(
    base_url: str, obj: str, send: Callable[..., requests.Response], url: str, **kwargs: Any
) -> requests.Response:
    """``send(url, **kwargs)``, one request of a login; a server that does not answer is
    ServiceUnavailableError."""
    try:
        return send(url, **kwargs)
    except requests.RequestException as exc:
        raise _unreachable(f"Keycloak at {base_url} cannot be reached for a login", obj) from exc


def _auth_query(client_id: str, redirect_uri: str, state: str, nonce: str, challenge: str) -> str:
    return urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )


def _login_form(page: requests.Response, client_id: str, obj: str) -> str:
    """The login form's absolute action on the auth endpoint's answer ``page``."""
    if page.status_code != 200:
        raise LoginRefused(
            f"Keycloak did not show the login form of {obj} for client {client_id} "
            f"(HTTP {page.status_code})",
            obj=obj,
            hint="check the realm, the client and its redirect URIs",
        )
    action = _form_action(page.text)
    if not action:
        raise LoginRefused(f"no login form in Keycloak's answer for {obj}", obj=obj)
    return urljoin(page.url, action)


def _authorization_code(answer: requests.Response, redirect_uri: str, state: str, obj: str) -> str:
    """The code from the form's redirect to ``redirect_uri`` (checked against ``state``)."""
    location = answer.headers.get("Location", "")
    if answer.status_code not in (302, 303) or not location.startswith(redirect_uri):
        step = (
            "the credentials were refused"
            if answer.status_code == 200
            else (f"HTTP {answer.status_code}")
        )
        raise LoginRefused(f"login to {obj} did not complete: {step}", obj=obj)
    params = parse_qs(urlparse(location).query)
    if params.get("state", [""])[0] != state or "code" not in params:
        raise LoginRefused(f"login to {obj} returned no valid code", obj=obj)
    return params["code"][0]


def _checked_tokens(tokens: requests.Response, nonce: str, obj: str) -> dict[str, Any]:
    if tokens.status_code != 200:
        raise LoginRefused(
            f"the token endpoint of {obj} refused the code (HTTP {tokens.status_code})", obj=obj
        )
    result: dict[str, Any] = tokens.json()
    claims = jwt_claims(str(result.get("id_token", "")))
    if claims.get("nonce") != nonce:
        raise LoginRefused(f"the ID token of {obj} carries the wrong nonce", obj=obj)
    return result


@dataclass(frozen=True)
class OidcClient:
    """A realm's OpenID Connect client as a login uses it: where Keycloak is, the client and
    its secret ("" for a public client), the redirect URI (never contacted) and how to call."""

    base_url: str
    realm: str
    client_id: str
    client_secret: str
    redirect_uri: str
    timeout: float = 30.0
    verify: str | bool = True  # the local proxy's CA when Keycloak is behind it

    def endpoint(self, name: str) -> str:
        """The URL of the realm's OpenID Connect endpoint ``name`` (``auth``, ``token``)."""
        realm_base = f"{self.base_url.rstrip('/')}/realms/{quote(self.realm)}"
        return f"{realm_base}/protocol/openid-connect/{name}"


def authorization_code_login(client: OidcClient, username: str, password: str) -> dict[str, Any]:
    """A real OpenID Connect authorization-code login, driving Keycloak's login form.

    GET the auth endpoint (a browser session with cookies), parse the form's action, POST the
    credentials, take the ``code`` from the redirect to ``client.redirect_uri`` (which is never
    contacted) and exchange it at the token endpoint. Returns the token response.
    Raises ``LoginRefused`` when Keycloak shows the form again or asks for another step.
    """
    base_url, client_id, redirect_uri = client.base_url, client.client_id, client.redirect_uri
    state = _secrets.token_urlsafe(16)
    nonce = _secrets.token_urlsafe(16)
    verifier, challenge = pkce_pair()
    query = _auth_query(client_id, redirect_uri, state, nonce, challenge)
    obj = f"realm {client.realm}"
    with requests.Session() as session:
        # per request: REQUESTS_CA_BUNDLE would override a session-level verify
        session.verify = client.verify  # the local proxy's CA when the login form is behind it
        each: dict[str, Any] = {"timeout": client.timeout, "verify": client.verify}
        auth_url = f"{client.endpoint('auth')}?{query}"
        page = _login_request(base_url, obj, session.get, auth_url, **each)
        action = _login_form(page, client_id, obj)
        _loopback_cookies(session, base_url)
        credentials = _credentials(username, password)
        answer = _login_request(
            base_url, obj, session.post, action, data=credentials, allow_redirects=False, **each
        )
        code = _authorization_code(answer, redirect_uri, state, obj)
        token_request = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": client.client_secret,
            "code_verifier": verifier,
        }
        tokens = _login_request(
            base_url, obj, session.post, client.endpoint("token"), data=token_request, **each
        )
    return _checked_tokens(tokens, nonce, obj)


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified (callers verify via JWKS when it matters)."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError) as exc:
        raise ExternalServiceError("Keycloak returned a malformed token", obj="token") from exc
    if not isinstance(data, dict):
        raise ExternalServiceError("Keycloak returned a malformed token", obj="token")
    return data


def browser_login(
    session: requests.Session,
    start_url: str,
    username: str,
    password: str,
    *,
    timeout: float = 30.0,
    max_redirects: int = 10,
    verify: str | bool = True,
) -> requests.Response:
    """What a browser does to log in through an OIDC client (e.g. Nextcloud's user_oidc).

    GET ``start_url`` following redirects until Keycloak's login form shows, submit the
    credentials and follow the redirects back (the client exchanges the code itself).
    Returns the final response; the client's session cookie stays in ``session``.
    Raises ``LoginRefused`` when no login form appears or Keycloak shows it again.
    """
    session.max_redirects = max_redirects
    obj = start_url
    try:
        page = session.get(start_url, timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        raise _unreachable(
            f"{start_url} cannot be reached for a login ({type(exc).__name__}: {exc})", obj
        ) from exc
    form = _form_action(page.text)
    if page.status_code != 200 or not form:
        raise LoginRefused(
            f"no Keycloak login form after {start_url} (HTTP {page.status_code} at "
            f"{page.url.split('?', 1)[0]}): {page.text.strip()[:200]}",
            obj=obj,
            hint="check the client's login provider (discovery, redirect URIs)",
        )
    action = urljoin(page.url, form)
    try:
        answer = session.post(
            action, data=_credentials(username, password), timeout=timeout, verify=verify
        )
    except requests.RequestException as exc:
        raise _unreachable(
            f"the login at {action.split('?', 1)[0]} did not complete ({type(exc).__name__})", obj
        ) from exc
    if _form_action(answer.text):
        raise LoginRefused(f"Keycloak refused the credentials for {start_url}", obj=obj)
    return answer


def exchange_code(client: OidcClient, code: str, verifier: str) -> dict[str, Any]:
    """Exchange an authorization code a browser brought back at the realm's token endpoint
    (confidential client, PKCE). Raises LoginRefused when Keycloak refuses the code."""
    url = client.endpoint("token")
    realm = client.realm
    try:
        resp = requests.post(
            url,
            data={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": client.redirect_uri, "code_verifier": verifier},
            auth=(client.client_id, client.client_secret),
            timeout=client.timeout,
            verify=client.verify,
        )
    except requests.RequestException as exc:
        raise _unreachable(
            f"the token endpoint of realm {realm} did not answer ({type(exc).__name__})", url
        ) from exc
    if resp.status_code != 200:
        raise LoginRefused(f"Keycloak refused the code of realm {realm} "
                           f"(HTTP {resp.status_code})", obj=f"realm {realm}")
    data = resp.json()
    if not isinstance(data, dict) or "id_token" not in data:
        raise LoginRefused(f"realm {realm} returned no ID token", obj=f"realm {realm}")
    return data


def password_login(
    settings: Settings,
    slot: Slot,
    client_id: str,
    client_secret: str,
    username: str,
    password: str,
    *,
    redirect_uri: str | None = None,
) -> dict[str, Any]:
    """A real authorization-code login at the practice's realm (tests and the smoke check).

    ``redirect_uri`` defaults to Nextcloud's user_oidc callback of the slot; it is never
    contacted. Raises ``LoginRefused`` when Keycloak refuses."""
    # the login form lives on the browser-facing host (its cookies too; behind the local TLS
    # proxy, or a cluster's front): start there, as a browser does (default: keycloak_url)
    client = OidcClient(
        settings.keycloak_public_url,
        slot.realm,
        client_id,
        client_secret,
        redirect_uri or nextcloud_redirect_uris(settings, slot)[0],
        timeout=settings.keycloak_timeout,
        verify=tls_verify(settings),
    )
    return authorization_code_login(client, username, password)


def tls_verify(settings: Settings) -> str | bool:
    """What an https client trusts: the local proxy's CA (embedded TLS mode) or the system's."""
    if settings.local_tls_proxy:
        from ..devstack.proxy import ca_certificate
        from . import localhost_names

        localhost_names.enable()  # the browser-facing *.localhost names, as browsers do
        return str(ca_certificate(settings))
    return True
