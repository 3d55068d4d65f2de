"""HTTP side of the Nextcloud stand-in (test double): port 80, ``/status.php``,
``/ocs/v{1,2}.php/cloud/capabilities`` and ``cloud/user``, the login (``/login``, user_oidc's
``/apps/user_oidc/login/<id>`` and ``/apps/user_oidc/code``, see ``oidc.py``) and a landing
page for a logged-in user; everything else answers 404. Every response carries the header
``X-Smartpraxx-Standin: nextcloud``.

``/status.php`` has the keys of the real one (web order); with an untrusted Host it answers
400 ``{"error": "Trusted domain error.", "code": 15}`` like Nextcloud's base.php. OCS needs
the header ``OCS-APIRequest: true``; JSON with ``?format=json`` or ``Accept:
application/json``, XML otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

from . import PRODUCT, STANDIN_HEADER, VERSION, VERSION_STRING, catalog, oidc
from .commands import enabled_apps
from .output import php_json
from .state import StandinError, Store, SystemConfig

PORT = 80
LOCALHOST = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\])$")


def status_web(system: SystemConfig) -> dict[str, Any]:
    """Key order of the web ``/status.php``."""
    return {
        "installed": system.installed,
        "maintenance": system.get("maintenance") is True,
        "needsDbUpgrade": False,
        "version": VERSION,
        "versionstring": VERSION_STRING,
        "edition": "",
        "productname": PRODUCT,
        "extendedSupport": False,
    }


def is_trusted_domain(system: SystemConfig, host_with_port: str) -> bool:
    """``OC\\Security\\TrustedDomainHelper::isTrustedDomain``."""
    if system.get("overwritehost", "") != "":
        return True
    host = host_with_port
    if not host.endswith("]"):
        host = re.sub(r":\d+$", "", host)
    trusted = system.get("trusted_domains", [])
    if not isinstance(trusted, list):
        return False
    if LOCALHOST.match(host):
        return True
    if host.startswith("-") or ".." in host:
        return False
    for entry in trusted:
        if not isinstance(entry, str):
            break
        regex = "^" + "[-\\.a-zA-Z0-9]*".join(re.escape(p) for p in entry.split("*")) + "$"
        if re.match(regex, host, re.I) or re.match(regex, host_with_port, re.I):
            return True
    return False


def to_xml(value: Any, indent: str = " ") -> str:
    if isinstance(value, dict):
        return "".join(f"{indent}<{k}>" + (f"\n{to_xml(v, indent + ' ')}{indent}"
                                             if isinstance(v, (dict, list)) and v
                                             else to_xml(v, indent)) + f"</{k}>\n"
                       for k, v in value.items())
    if isinstance(value, list):
        return to_xml({"element": value[0]}, indent) if len(value) == 1 else "".join(
            to_xml({"element": v}, indent) for v in value)
    if isinstance(value, bool):
        return "1" if value else ""
    return escape("" if value is None else str(value))


class Handler(BaseHTTPRequestHandler):
    server_version = "Nextcloud-standin"
    root = Path("/var/www/html")

    def do_GET(self) -> None:
        self._handle(body=True)

    def do_HEAD(self) -> None:
        self._handle(body=False)

    def do_DELETE(self) -> None:
        self._handle(body=True)

    def do_PUT(self) -> None:
        self._handle(body=True)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.path.startswith("/status.php"):
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _send(self, code: int, payload: str, ctype: str, body: bool,
              headers: dict[str, str] | None = None) -> None:
        data = payload.encode()
        self.send_response(code)
        self.send_header(*STANDIN_HEADER)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if self.path.startswith("/status.php"):
            self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _handle(self, body: bool) -> None:
        url = urlsplit(self.path)
        system = SystemConfig(self.root, os.environ)
        host = self.headers.get("Host", "")
        trusted = not system.installed or is_trusted_domain(system, host)
        if url.path == "/status.php":
            if not trusted:
                self._send(400, '{"error": "Trusted domain error.", "code": 15}',
                           "application/json", body)
            else:
                self._send(200, php_json(status_web(system)), "application/json", body)
        elif re.fullmatch(r"/ocs/v[12]\.php/cloud/(capabilities|user)/?", url.path) or (
                APP_OCS.fullmatch(url.path)):
            self._ocs(url.path, parse_qs(url.query), system, trusted, body)
        elif not trusted and system.installed:
            self._send(400, "Access through untrusted domain (Nextcloud stand-in)\n",
                       "text/plain", body)
        elif self.command == "PUT" and not DAV_FILES.match(url.path):
            self._send(405, "Method Not Allowed (Nextcloud stand-in)\n", "text/plain", body)
        elif DAV_FILES.match(url.path) or url.path == "/index.php/csrftoken":
            self._files(url.path, system, body)
        elif WEB_ROUTES.fullmatch(url.path):
            self._web(url.path, parse_qs(url.query), system, body)
        else:
            self._send(404, "Not Found (Nextcloud stand-in, test double)\n", "text/plain", body)

    def _ocs(self, path: str, query: dict[str, list[str]], system: SystemConfig,
             trusted: bool, body: bool) -> None:
        v1 = "/v1.php/" in path
        as_json = query.get("format", [""])[0] == "json" or (
            "application/json" in self.headers.get("Accept", ""))

        def reply(http: int, status: str, code: int, message: str, data: Any) -> None:
            meta: dict[str, Any] = {"status": status, "statuscode": code, "message": message}
            if v1:
                meta.update(totalitems="", itemsperpage="")
            doc = {"ocs": {"meta": meta, "data": data}}
            if as_json:
                self._send(http, php_json(doc), "application/json; charset=utf-8", body)
            else:
                xml = '<?xml version="1.0"?>\n<ocs>\n' + to_xml(doc["ocs"]) + "</ocs>\n"
                self._send(http, xml, "text/xml; charset=UTF-8", body)

        if not trusted:
            self._send(400, "Access through untrusted domain (Nextcloud stand-in)\n",
                       "text/plain", body)
            return
        if not system.installed or system.get("maintenance") is True:
            reply(503, "failure", 503 if not v1 else 996, "Service unavailable", [])
            return
        if self.headers.get("OCS-APIRequest", "").lower() != "true":
            reply(412 if not v1 else 200, "failure", 412 if not v1 else 997,
                  "CSRF check failed", [])
            return
        if path.rstrip("/").endswith("/cloud/user"):
            self._ocs_user(system, reply)
            return
        if APP_OCS.fullmatch(path):
            self._ocs_app(path, system, reply)
            return
        try:
            store = Store.connect(system.values)
            try:
                enabled = enabled_apps(store)
                theming = {k: v.value for k, v in
                           store.app_values("theming").get("theming", {}).items()}
            finally:
                store.close()
        except StandinError as e:
            sys.stderr.write(f"capabilities: {e}\n")
            self._send(500, "Internal Server Error\n", "text/plain", body)
            return
        major, minor, micro = (int(x) for x in VERSION_STRING.split("."))
        data = {"version": {"major": major, "minor": minor, "micro": micro,
                            "string": VERSION_STRING, "edition": "", "extendedSupport": False},
                "capabilities": catalog.capabilities(enabled, theming)}
        reply(200, "ok", 100 if v1 else 200, "OK", data)

    # --- session, login, cloud/user ------------------------------------------------------

    def _session(self, system: SystemConfig) -> oidc.Session | None:
        cookies = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookies.get(oidc.cookie_name(system))
        return oidc.SESSIONS.get(morsel.value if morsel else None)

    def _caller(self, store: Store, system: SystemConfig) -> str | None:
        """The logged-in user: session cookie, bearer token (user_oidc) or Basic auth with an
        app password (``user:auth-tokens:add``)."""
        import base64

        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return oidc.bearer_user(store, auth[7:].strip())
        if auth.lower().startswith("basic "):
            try:
                login, _, token = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                return None
            return store.app_password_user(login, token)
        session = self._session(system)
        return session.uid if session else None

    def _open_store(self, system: SystemConfig, what: str, body: bool,
                    html: bool = False) -> Store | None:
        """The database; None when it cannot be opened (logged as ``what``, 500 answered)."""
        try:
            return Store.connect(system.values)
        except StandinError as e:
            sys.stderr.write(f"{what}: {e}\n")
        if html:
            self._page(500, "Internal Server Error", body)
        else:
            self._send(500, "Internal Server Error\n", "text/plain", body)
        return None

    def _ocs_app(self, path: str, system: SystemConfig, reply: Any) -> None:
        """announcementcenter's and notifications' OCS routes (see announcements.py)."""
        from . import announcements

        store = self._open_store(system, "ocs", True)
        if store is None:
            return
        try:
            uid = self._caller(store, system)
            if uid is None or store.user(uid) is None:
                reply(401, "failure", 997, "Current user is not logged in", [])
                return
            app = path.split("/apps/", 1)[1].split("/", 1)[0]
            enabled = enabled_apps(store)
            if app not in enabled:
                self._send(404, "Not Found (Nextcloud stand-in, test double)\n", "text/plain",
                           True)
                return
            m = re.search(r"/announcements/(\d+)/?$", path)
            if app == "notifications" and self.command == "GET":
                reply(200, "ok", 200, "OK", announcements.notifications_of(store, uid))
            elif app == "announcementcenter" and self.command == "GET" and m is None:
                reply(200, "ok", 200, "OK", announcements.visible(store, uid))
            elif app == "announcementcenter" and self.command == "DELETE" and m is not None:
                if not announcements.is_admin(store, uid):
                    reply(403, "failure", 403, "", {"message": "Logged in user must be an admin"})
                else:
                    announcements.delete(store, int(m.group(1)))
                    reply(200, "ok", 200, "OK", [])
            else:
                reply(405, "failure", 405, "Method not allowed", [])
            store.commit()
        finally:
            store.close()

    def _ocs_user(self, system: SystemConfig, reply: Any) -> None:
        store = self._open_store(system, "cloud/user", True)
        if store is None:
            return
        try:
            uid: str | None = None
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                uid = oidc.bearer_user(store, auth[7:].strip())
            else:
                session = self._session(system)
                uid = session.uid if session else None
            if uid is None or not oidc.user_enabled(store, uid):
                reply(401, "failure", 997, "Current user is not logged in", [])
                return
            reply(200, "ok", 200, "OK", oidc.ocs_user(store, system, uid))
        finally:
            store.close()

    def _page(self, code: int, text: str, body: bool,
              headers: dict[str, str] | None = None) -> None:
        html = (f"<!DOCTYPE html>\n<html><head><title>Nextcloud stand-in</title></head><body>"
                f"<p>{escape(text)}</p><p>{escape(oidc.STANDIN_NOTE)}</p></body></html>\n")
        self._send(code, html, "text/html; charset=utf-8", body, headers)

    def _redirect(self, location: str, body: bool, cookie: str | None = None) -> None:
        headers = {"Location": location}
        if cookie:
            headers["Set-Cookie"] = cookie
        self._send(303, "", "text/html; charset=utf-8", body, headers)

    def _login(self, store: Store, session: oidc.Session, query: dict[str, list[str]],
               base: str, body: bool, set_cookie: str | None) -> None:
        """``/login``: the dashboard when logged in, else the auto-redirect provider's login
        (unless ``direct=1``), else the login page naming the providers."""
        provider = oidc.auto_redirect_provider(store)
        if session.uid:
            self._redirect(f"{base}/index.php/apps/dashboard/", body, set_cookie)
        elif provider is not None and query.get("direct", [""])[0] != "1":
            target = f"{base}/index.php/apps/user_oidc/login/{provider['id']}"
            redirect_url = query.get("redirect_url", [""])[0]
            if redirect_url:
                target += "?" + urlencode({"redirectUrl": redirect_url})
            self._redirect(target, body, set_cookie)
        else:
            names = ", ".join(p["identifier"] for p in store.providers()) or "none"
            self._page(200, f"Login (local accounts; providers: {names})", body,
                       {"Set-Cookie": set_cookie} if set_cookie else None)

    def _web(self, path: str, query: dict[str, list[str]], system: SystemConfig,
             body: bool) -> None:
        if not system.installed:
            self._page(503, "Nextcloud is not installed", body)
            return
        host = self.headers.get("Host", "")
        base = oidc.base_url(system, host)
        session = self._session(system)
        set_cookie = None
        if session is None:
            session = oidc.SESSIONS.new()
            set_cookie = (f"{oidc.cookie_name(system)}={session.sid}; path=/; HttpOnly; "
                          "SameSite=Lax")
        route = re.sub(r"^/index\.php", "", path) or "/"
        store = self._open_store(system, "web", body, html=True)
        if store is None:
            return
        try:
            if session.uid and not oidc.user_enabled(store, session.uid):
                session.uid = None  # a disabled (or deleted) user's session ends: logged out
            if route in ("/", "/apps/dashboard/", "/apps/dashboard"):
                user = store.user(str(session.uid)) if session.uid else None
                if user is None:
                    self._redirect(f"{base}/index.php/login", body, set_cookie)
                elif route == "/":
                    self._redirect(f"{base}/index.php/apps/dashboard/", body, set_cookie)
                else:
                    self._page(200, f"Dashboard of {user['displayname']} ({user['uid']})", body)
            elif route == "/login":
                self._login(store, session, query, base, body, set_cookie)
            elif route.startswith("/apps/user_oidc/login/"):
                provider_id = int(route.rsplit("/", 1)[1])
                target = oidc.start_login(store, system, session, provider_id, host,
                                          query.get("redirectUrl", [None])[0])
                self._redirect(target, body, set_cookie)
            else:  # /apps/user_oidc/code
                if query.get("error"):
                    raise oidc.OidcError(
                        "The identity provider failed to authenticate the user.", 400)
                _, after = oidc.finish_login(store, system, session,
                                             query.get("state", [""])[0],
                                             query.get("code", [""])[0], host)
                # user_oidc's getRedirectResponse: only a local path is followed
                path_only = re.sub(r"^https?://[^/]+", "", after or "")
                self._redirect(path_only if re.match(r"^/[^/]", path_only) else f"{base}/",
                               body, set_cookie)
        except oidc.OidcError as e:
            sys.stderr.write(f"user_oidc stand-in: {e.message}\n")
            self._page(e.status, e.message, body,
                       {"Set-Cookie": set_cookie} if set_cookie else None)
        finally:
            store.close()


    # --- files over WebDAV (the part the support test uses) -------------------------------

    def _dav_user(self, store: Store, session: oidc.Session | None, auth: str) -> str | None:
        """Who a WebDAV request comes from: the bearer token's user, else the session's."""
        if auth.lower().startswith("bearer "):
            return oidc.bearer_user(store, auth[7:].strip())
        return session.uid if session is not None else None

    def _dav_put(self, store: Store, system: SystemConfig, uid: str, target: Path, shown: str,
                 req: dict[str, str], body: bool) -> None:
        """Write the request body (at most 10 MiB) to ``target``; audited like Nextcloud."""
        from . import audit

        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(min(length, 10 * 1024 * 1024))
        created = not target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        fileid = target.stat().st_ino
        if created:
            audit.write(store, system, uid, f'File with id "{fileid}" created: "{shown}"', req)
        audit.write(store, system, uid, f'File with id "{fileid}" written to: "{shown}"', req)
        self._send(201 if created else 204, "", "text/plain", body)

    def _files(self, path: str, system: SystemConfig, body: bool) -> None:
        """``GET /index.php/csrftoken`` and ``GET``/``PUT /remote.php/dav/files/<uid>/<p>``
        of the logged-in (enabled) user, with the session cookie (a PUT also needs the
        ``requesttoken`` header, Nextcloud's CSRF check) or a bearer token of the provider.
        Writes under ``<datadirectory>/<uid>/files/``; audited by ``audit.py``."""
        from . import audit

        if not system.installed or system.get("maintenance") is True:
            self._send(503, "Service unavailable\n", "text/plain", body)
            return
        store = self._open_store(system, "dav", body)
        if store is None:
            return
        try:
            session = self._session(system)
            auth = self.headers.get("Authorization", "")
            uid = self._dav_user(store, session, auth)
            if not oidc.user_enabled(store, uid):
                self._send(401, "Unauthorized\n", "text/plain", body)
                return
            if path == "/index.php/csrftoken":
                token = session.requesttoken if session else ""
                self._send(200, php_json({"token": token}), "application/json", body)
                return
            match = DAV_FILES.match(path)
            assert match is not None
            owner, rel = unquote(match.group(1)), unquote(match.group(2))
            parts = [p for p in rel.split("/") if p]
            if owner != uid or not parts or any(p in (".", "..") for p in parts):
                self._send(403 if owner != uid else 400, "Forbidden\n", "text/plain", body)
                return
            if (self.command == "PUT" and not auth.lower().startswith("bearer ")
                    and self.headers.get("requesttoken") != (session.requesttoken
                                                             if session else None)):
                self._send(412, "CSRF check not passed.\n", "text/plain", body)
                return
            datadir = Path(str(system.get("datadirectory") or self.root / "data"))
            target = datadir / str(uid) / "files" / "/".join(parts)
            shown = "/" + "/".join(parts)
            req = {"remoteAddr": self.client_address[0], "method": self.command,
                   "url": path, "userAgent": self.headers.get("User-Agent", "--")}
            if self.command == "PUT":
                self._dav_put(store, system, str(uid), target, shown, req, body)
                return
            if not target.is_file():
                self._send(404, "Not Found\n", "text/plain", body)
                return
            audit.write(store, system, str(uid),
                        f'File with id "{target.stat().st_ino}" accessed: "{shown}"', req)
            self._send(200, target.read_text(errors="replace"), "application/octet-stream",
                       body)
        finally:
            store.close()


DAV_FILES = re.compile(r"^/remote\.php/dav/files/([^/]+)/(.+)$")

APP_OCS = re.compile(r"/ocs/v[12]\.php/apps/(announcementcenter/api/v1/announcements(/\d+)?"
                     r"|notifications/api/v2/notifications)/?")
WEB_ROUTES = re.compile(r"(/index\.php)?(/|/login|/apps/dashboard/?|/apps/user_oidc/login/\d+"
                        r"|/apps/user_oidc/code)")

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (inside the container; published on 127.0.0.1)


def make_server(root: Path, port: int = PORT, host: str = ALL_INTERFACES) -> ThreadingHTTPServer:
    """Bound (as root if need be) but not listening yet: clients are refused until serve()."""
    Handler.root = root
    httpd = ThreadingHTTPServer((host, port), Handler, bind_and_activate=False)
    httpd.daemon_threads = True
    httpd.server_bind()
    return httpd


def serve(httpd: ThreadingHTTPServer) -> None:
    httpd.server_activate()
    print(f"Nextcloud stand-in (test double): HTTP on port {httpd.server_address[1]}",
          flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
