"""user_oidc STAND-IN (test double): the login flow of Nextcloud's user_oidc app, for real.

Re-implemented after reading user_oidc 8.10 (``LoginController``, ``ProvisioningService``,
``LocalIdService``, ``SelfEncodedValidator``); no code copied. What it does, as user_oidc:

* ``/login`` redirects to ``/index.php/apps/user_oidc/login/<id>`` when exactly one provider
  exists and ``user_oidc.allow_multiple_user_backends`` is ``0`` (auto-redirect);
  ``/login?direct=1`` keeps the local login (break-glass admin).
* ``login/<id>`` fetches the provider's discovery document **from inside the container**,
  stores state, nonce and a PKCE verifier (when the provider announces S256) in the session
  and redirects to the authorization endpoint with ``client_id``, ``response_type=code``,
  ``scope``, ``redirect_uri`` (``<base>/index.php/apps/user_oidc/code``, base from
  ``overwriteprotocol``/``overwritehost``/``overwritewebroot`` or the request), ``claims``,
  ``state``, ``nonce``, ``code_challenge``.
* ``code`` checks the state (and its 300 s lifetime), exchanges the code at the discovered
  token endpoint (client_secret_post when announced, else basic), verifies the ID token's
  RS256 signature against the provider's JWKS (leeway 60 s), expiry, issuer (= discovery
  ``issuer``), audience, azp and nonce, then provisions the user: uid from the mapped claim
  (``uniqueUid`` → sha256 of ``<id>_0_<uid>``), display name, e-mail, and with group
  provisioning the groups claim with ``groupWhitelistRegex`` semantics (only matching groups
  are managed; other groups such as ``admin`` are left alone).
* Bearer tokens (``Authorization: Bearer``) of providers with ``checkBearer`` are validated
  like ``SelfEncodedValidator``: signature, expiry, issuer, audience.

Error texts and HTTP codes are user_oidc's; its HTML templates are replaced by a plain page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

# python3-jwt (Debian) in the image; imported where used so the occ side runs without it
from .state import Store, SystemConfig

LOGIN_FLOW_TIMEOUT = 300
LEEWAY = 60
HTTP_TIMEOUT = 10
STANDIN_NOTE = "(Nextcloud user_oidc stand-in, test double)"


class OidcError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Session:
    sid: str
    uid: str | None = None
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the CSRF token of the session (``/index.php/csrftoken``; header ``requesttoken``)
    requesttoken: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def user_enabled(store: Store, uid: str | None) -> bool:
    """Nextcloud's ``isLoggedIn``: a session counts only for an existing, enabled user."""
    return bool(uid) and store.user(str(uid)) is not None and (
        store.pref(str(uid), "core", "enabled") != "false")


class Sessions:
    """Server-side sessions (in the web process, like PHP's session store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Session] = {}

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            return self._items.get(sid or "")

    def new(self) -> Session:
        s = Session(secrets.token_urlsafe(24))
        with self._lock:
            self._items[s.sid] = s
        return s


SESSIONS = Sessions()


def cookie_name(system: SystemConfig) -> str:
    """Nextcloud names its session cookie after the instance id."""
    return str(system.get("instanceid") or "ocstandin")


def base_url(system: SystemConfig, host_header: str) -> str:
    """``IURLGenerator::getAbsoluteURL`` base: overwrite* settings win over the request."""
    proto = str(system.get("overwriteprotocol") or "http")
    host = str(system.get("overwritehost") or host_header or "localhost")
    webroot = str(system.get("overwritewebroot") or "").rstrip("/")
    return f"{proto}://{host}{webroot}"


def redirect_uri(system: SystemConfig, host_header: str) -> str:
    return f"{base_url(system, host_header)}/index.php/apps/user_oidc/code"


def setting(store: Store, provider_id: int, key: str, default: str = "") -> str:
    row = store.app_value("user_oidc", f"provider-{provider_id}-{key}")
    return row.value if row is not None and row.value != "" else default


def auto_redirect_provider(store: Store) -> dict[str, Any] | None:
    """The provider ``/login`` redirects to (user_oidc's single-provider auto-redirect)."""
    providers = store.providers()
    allow = store.app_value("user_oidc", "allow_multiple_user_backends")
    if len(providers) == 1 and allow is not None and allow.value == "0":
        return providers[0]
    return None


def is_secure(store: Store, system: SystemConfig) -> bool:
    row = store.app_value("user_oidc", "allow_insecure_http")
    return (system.get("debug") is True or (row is not None and row.value in ("1", "true"))
            or system.get("overwriteprotocol") == "https")


def _get_json(url: str) -> dict[str, Any]:
    response = requests.get(url, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    doc = response.json()
    if not isinstance(doc, dict):
        raise ValueError(f"{url}: not a JSON object")
    return doc


def discovery(provider: dict[str, Any]) -> dict[str, Any]:
    try:
        return _get_json(str(provider["discovery_endpoint"]))
    except (requests.RequestException, ValueError) as exc:
        raise OidcError("Could not reach the OpenID Connect provider.", 404) from exc


def _pkce(doc: dict[str, Any], system: SystemConfig) -> bool:
    cfg = system.get("user_oidc") or {}
    use = cfg.get("use_pkce", True) if isinstance(cfg, dict) else True
    return "S256" in (doc.get("code_challenge_methods_supported") or []) and bool(use)


def start_login(store: Store, system: SystemConfig, session: Session, provider_id: int,
                host_header: str, redirect_url: str | None) -> str:
    """The authorization URL the browser is sent to."""
    if not is_secure(store, system):
        raise OidcError("You must access Nextcloud with HTTPS to use OpenID Connect.", 404)
    provider = next((p for p in store.providers() if int(p["id"]) == provider_id), None)
    if provider is None:
        raise OidcError("There is no such OpenID Connect provider.", 404)
    doc = discovery(provider)
    state = secrets.token_hex(16).upper()
    nonce = secrets.token_hex(16).upper()
    flow: dict[str, Any] = {"provider_id": provider_id, "nonce": nonce, "ts": time.time(),
                            "redirect": redirect_url}
    uid_claim = setting(store, provider_id, "mappingUid", "sub")
    claims: dict[str, Any] = {"id_token": {}, "userinfo": {}}
    for key, default in (("mappingEmail", "email"), ("mappingDisplayName", "name"),
                         ("mappingQuota", "quota"), ("mappingGroups", "groups")):
        name = setting(store, provider_id, key, default)
        claims["id_token"][name] = None
        claims["userinfo"][name] = None
    claims["id_token"][uid_claim] = {"essential": True}
    claims["userinfo"][uid_claim] = {"essential": True}
    params = {
        "client_id": provider["client_id"], "response_type": "code",
        "scope": provider["scope"] or "openid email profile",
        "redirect_uri": redirect_uri(system, host_header),
        "claims": json.dumps(claims, separators=(",", ":")), "state": state, "nonce": nonce,
    }
    if _pkce(doc, system):
        verifier = secrets.token_urlsafe(48)
        flow["code_verifier"] = verifier
        digest = hashlib.sha256(verifier.encode()).digest()
        params["code_challenge"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        params["code_challenge_method"] = "S256"
    session.flows[state] = flow
    endpoint = str(doc["authorization_endpoint"])
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


def _decode(token: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Signature check against the provider's JWKS (RS256 family only); claims unchecked."""
    import jwt

    header = jwt.get_unverified_header(token)
    keys = _get_json(str(doc["jwks_uri"])).get("keys") or []
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    if not candidates:
        raise jwt.InvalidTokenError(f"no key {kid!r} in the provider's JWKS")
    key = jwt.PyJWK.from_dict(candidates[0])
    payload: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256", "RS384", "RS512"],
        options={"verify_aud": False, "verify_iss": False, "verify_exp": True,
                 "verify_nbf": True, "verify_iat": False}, leeway=LEEWAY)
    return payload


def _audience_ok(aud: Any, client_id: str) -> bool:
    return aud == client_id if isinstance(aud, str) else (
        isinstance(aud, list) and client_id in aud)


def _exchange_code(provider: dict[str, Any], doc: dict[str, Any], flow: dict[str, Any],
                   code: str, redirect: str) -> dict[str, Any]:
    """The token endpoint's answer to the authorization code (with an ``id_token``)."""
    body = {"code": code, "redirect_uri": redirect, "grant_type": "authorization_code"}
    if "code_verifier" in flow:
        body["code_verifier"] = flow["code_verifier"]
    client_id, secret = str(provider["client_id"]), str(provider["client_secret"] or "")
    auth: tuple[str, str] | None = (client_id, secret)
    if "client_secret_post" in (doc.get("token_endpoint_auth_methods_supported") or []):
        body.update(client_id=client_id, client_secret=secret)
        auth = None
    failed = "Failed to contact the OIDC provider token endpoint"
    try:
        response = requests.post(str(doc["token_endpoint"]), data=body, auth=auth,
                                 timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise OidcError(failed, 403) from exc
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 400:
        desc = data.get("error_description") if isinstance(data, dict) else None
        raise OidcError(f"{failed}: {desc}" if desc else failed, 403)
    if not isinstance(data, dict) or "id_token" not in data:
        raise OidcError(failed, 403)
    return data


def _verified_claims(id_token: str, doc: dict[str, Any], client_id: str,
                     flow: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims after user_oidc's checks (signature, expiry, iss, aud, azp, nonce)."""
    import jwt

    try:
        payload = _decode(id_token, doc)
    except jwt.ExpiredSignatureError:
        raise OidcError("The received token is expired.", 403) from None
    except (jwt.InvalidTokenError, requests.RequestException, ValueError) as exc:
        # user_oidc lets firebase/php-jwt's exception through: an internal server error
        raise OidcError(f"Internal Server Error: {type(exc).__name__}: {exc}", 500) from exc
    if payload.get("exp", 0) < time.time() - LEEWAY:
        raise OidcError("The received token is expired.", 403)
    if payload.get("iss") != doc.get("issuer"):
        raise OidcError("The issuer does not match the one from the discovery endpoint", 403)
    if not _audience_ok(payload.get("aud"), client_id):
        raise OidcError("The audience does not match ours", 403)
    if "azp" in payload and payload["azp"] != client_id:
        raise OidcError("The authorized party does not match ours", 403)
    if "nonce" in payload and payload["nonce"] != flow["nonce"]:
        raise OidcError("The nonce does not match", 403)
    return payload


def finish_login(store: Store, system: SystemConfig, session: Session, state: str, code: str,
                 host_header: str) -> tuple[str, str | None]:
    """Exchange the code, verify the ID token, provision; returns (uid, redirect url)."""
    flow = session.flows.pop(state, None)
    if flow is None:
        raise OidcError("The received state does not match the expected value.", 403)
    if time.time() - float(flow["ts"]) > LOGIN_FLOW_TIMEOUT:
        raise OidcError("The received state has expired.", 403)
    provider_id = int(flow["provider_id"])
    provider = next((p for p in store.providers() if int(p["id"]) == provider_id), None)
    if provider is None:
        raise OidcError("There is no such OpenID Connect provider.", 404)
    doc = discovery(provider)
    data = _exchange_code(provider, doc, flow, code, redirect_uri(system, host_header))
    payload = _verified_claims(str(data["id_token"]), doc, str(provider["client_id"]), flow)
    uid = provision(store, provider, payload)
    from . import audit

    audit.write(store, system, uid, f'Login attempt: "{uid}"')
    if store.pref(uid, "core", "enabled") == "false":
        store.commit()
        raise OidcError("User disabled", 403)  # the session's completeLogin refuses
    audit.write(store, system, uid, f'Login successful: "{uid}"')
    now = str(int(time.time()))
    if store.pref(uid, "login", "firstLogin") is None:
        store.set_pref(uid, "login", "firstLogin", now)
    store.set_pref(uid, "login", "lastLogin", now)
    store.commit()
    session.uid = uid
    return uid, flow.get("redirect")


def _claim(payload: dict[str, Any], name: str) -> Any:
    return payload.get(name)


def local_id(store: Store, provider: dict[str, Any], value: str) -> str:
    """``LocalIdService::getId``."""
    pid = int(provider["id"])
    if setting(store, pid, "uniqueUid", "1") in ("1", "true"):
        return hashlib.sha256(f"{pid}_0_{value}".encode()).hexdigest()
    if setting(store, pid, "providerBasedId", "0") in ("1", "true"):
        return f"{provider['identifier']}-{value}"
    return value


def _php_regex(regex: str) -> re.Pattern[str] | None:
    """A user_oidc group whitelist (PHP ``/…/flags``; bare patterns get delimiters)."""
    if not regex:
        return None
    if not regex.startswith("/"):
        regex = f"/{regex}/"
    end = regex.rfind("/")
    flags = re.I if "i" in regex[end + 1:] else 0
    return re.compile(regex[1:end], flags)


def provision(store: Store, provider: dict[str, Any], payload: dict[str, Any]) -> str:
    """Create/update the user and, with group provisioning, its groups."""
    pid = int(provider["id"])
    raw_uid = _claim(payload, setting(store, pid, "mappingUid", "sub"))
    if not isinstance(raw_uid, str) or not raw_uid:
        raise OidcError("Failed to provision the user", 400)
    uid = local_id(store, provider, raw_uid)
    display = _claim(payload, setting(store, pid, "mappingDisplayName", "name"))
    existing = store.user(uid)
    if existing is not None and existing["backend"] != "user_oidc":
        raise OidcError("Failed to provision the user", 400)
    store.save_oidc_user(uid, display if isinstance(display, str) and display else uid, pid)
    email = _claim(payload, setting(store, pid, "mappingEmail", "email"))
    if isinstance(email, str) and email:
        store.set_pref(uid, "settings", "email", email)
    if setting(store, pid, "groupProvisioning", "0") in ("1", "true"):
        _provision_groups(store, provider, uid, payload)
    return uid


def _provision_groups(store: Store, provider: dict[str, Any], uid: str,
                      payload: dict[str, Any]) -> None:
    pid = int(provider["id"])
    whitelist = _php_regex(setting(store, pid, "groupWhitelistRegex", ""))
    claim = _claim(payload, setting(store, pid, "mappingGroups", "groups"))
    if claim is None:
        return
    if isinstance(claim, str):
        claim = [g.strip() for g in claim.split(",") if g.strip()]
    wanted: dict[str, str] = {}
    for item in claim if isinstance(claim, list) else []:
        if isinstance(item, dict) and item.get("gid") not in (None, ""):
            gid, name = str(item["gid"]), str(item.get("displayName") or item["gid"])
        elif isinstance(item, str):
            gid, name = item, item
        else:
            continue
        if whitelist is not None and not whitelist.search(gid):
            continue
        wanted[local_id(store, provider, gid)] = name
    for gid in store.user_groups(uid):
        if gid not in wanted and (whitelist is None or whitelist.search(gid)):
            store.remove_member(gid, uid)
    for gid, name in wanted.items():
        if store.group(gid) is None:
            store.add_group(gid, name)
        store.add_member(gid, uid)


def bearer_user(store: Store, token: str) -> str | None:
    """``SelfEncodedValidator``: the uid of a valid bearer token of a checkBearer provider."""
    import jwt

    for provider in store.providers():
        pid = int(provider["id"])
        if setting(store, pid, "checkBearer", "0") not in ("1", "true"):
            continue
        try:
            doc = discovery(provider)
            payload = _decode(token, doc)
        except (OidcError, jwt.InvalidTokenError, requests.RequestException, ValueError):
            continue
        if payload.get("exp", 0) < time.time() - LEEWAY:
            continue
        if payload.get("iss") != doc.get("issuer"):
            continue
        if not _audience_ok(payload.get("aud"), str(provider["client_id"])):
            continue
        raw = payload.get(setting(store, pid, "mappingUid", "sub"))
        if not isinstance(raw, str) or not raw:
            continue
        uid = local_id(store, provider, raw)
        if store.user(uid) is None:
            if setting(store, pid, "bearerProvisioning", "0") not in ("1", "true"):
                continue
            uid = provision(store, provider, payload)
            store.commit()
        return uid
    return None


def ocs_user(store: Store, system: SystemConfig, uid: str) -> dict[str, Any]:
    """provisioning_api's ``cloud/user`` data (main keys; shape not captured live)."""
    user = store.user(uid) or {"uid": uid, "displayname": uid, "backend": "user_oidc"}
    last = store.pref(uid, "login", "lastLogin")
    datadir = str(system.get("datadirectory") or "/var/www/html/data")
    return {
        "enabled": store.pref(uid, "core", "enabled") != "false",
        "storageLocation": f"{datadir}/{uid}",
        "id": user["uid"],
        "lastLogin": int(last) * 1000 if last else 0,
        "backend": user["backend"],
        "subadmin": [],
        "quota": {"quota": -3, "used": 0, "relative": 0},
        "email": store.pref(uid, "settings", "email"),
        "additional_mail": [],
        "displayname": user["displayname"],
        "display-name": user["displayname"],
        "phone": "", "address": "", "website": "", "twitter": "", "fediverse": "",
        "organisation": "", "role": "", "headline": "", "biography": "",
        "profile_enabled": "1", "pronouns": "",
        "groups": store.user_groups(uid),
        "language": str(system.get("default_language") or "en"),
        "locale": str(system.get("default_locale") or ""),
        "notify_email": None,
        "backendCapabilities": {"setDisplayName": user["backend"] == "Database",
                                "setPassword": user["backend"] == "Database"},
    }
