"""State of the Nextcloud stand-in (test double): system config, database, Redis check.

Like a real Nextcloud, the state lives in two places:

* the data volume ``/var/www/html``: ``config/config.json`` (the stand-in's ``config.php``)
  plus the read-only overlay the official image derives from the environment
  (``redis.config.php``, ``reverse-proxy.config.php``, ...; see ``env_overlay``). As in
  Nextcloud, the overlay wins over the stored values and every write stores the merged view.
* the database (MariaDB via PyMySQL, or SQLite like Nextcloud's ``sqlite3`` type): tables
  ``oc_appconfig`` (app config, enabled apps), ``oc_users``, ``oc_groups``,
  ``oc_group_user``, ``oc_preferences`` and ``oc_user_oidc_providers``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SENSITIVE = "***REMOVED SENSITIVE VALUE***"
# A subset of OC\SystemConfig::$sensitiveValues.
SENSITIVE_SYSTEM: dict[str, Any] = {
    "instanceid": True, "datadirectory": True, "dbname": True, "dbhost": True,
    "dbpassword": True, "dbuser": True, "mail_smtpname": True, "mail_smtppassword": True,
    "passwordsalt": True, "secret": True, "trusted_proxies": True, "updater.secret": True,
    "redis": {"host": True, "password": True},
}


class StandinError(Exception):
    """A failure the occ front end reports (message already in Nextcloud's words)."""


class DbError(StandinError):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


# --- environment overlay (the official image's *.config.php files) ------------------------


def read_env_or_file(env: Mapping[str, str], name: str) -> str | None:
    """``file_env`` of the official entrypoint: NAME or the contents of NAME_FILE."""
    if env.get(name + "_FILE"):
        return Path(env[name + "_FILE"]).read_text(encoding="utf-8").strip()
    return env.get(name)


def env_overlay(env: Mapping[str, str]) -> dict[str, Any]:
    """The values of apcu/apps/redis/reverse-proxy/upgrade-disable-web.config.php."""
    o: dict[str, Any] = {
        "memcache.local": "\\OC\\Memcache\\APCu",
        "apps_paths": [
            {"path": "/var/www/html/apps", "url": "/apps", "writable": False},
            {"path": "/var/www/html/custom_apps", "url": "/custom_apps", "writable": True},
        ],
    }
    host = env.get("REDIS_HOST")
    if host:
        o["memcache.distributed"] = "\\OC\\Memcache\\Redis"
        o["memcache.locking"] = "\\OC\\Memcache\\Redis"
        password = read_env_or_file(env, "REDIS_HOST_PASSWORD") or ""
        redis: dict[str, Any] = {"host": host, "password": password}
        if env.get("REDIS_HOST_PORT") is not None:
            redis["port"] = int(env["REDIS_HOST_PORT"] or 0)
        elif not host.startswith("/"):
            redis["port"] = 6379
        o["redis"] = redis
    for var, key in (("OVERWRITEHOST", "overwritehost"), ("OVERWRITEPROTOCOL", "overwriteprotocol"),
                     ("OVERWRITEWEBROOT", "overwritewebroot"),
                     ("OVERWRITECONDADDR", "overwritecondaddr"),
                     ("OVERWRITECLIURL", "overwrite.cli.url")):
        if env.get(var):
            o[key] = env[var]
    for var, key in (("TRUSTED_PROXIES", "trusted_proxies"),
                     ("FORWARDED_FOR_HEADERS", "forwarded_for_headers")):
        if env.get(var):
            o[key] = env[var].split()
    o["upgrade.disable-web"] = True
    return o


# --- PHP array semantics for nested system config values -----------------------------------


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return dict(value) if isinstance(value, dict) else {}


def _normalise(m: dict[str, Any]) -> Any:
    """A PHP array is a JSON list exactly when its keys are 0..n-1 in order."""
    return list(m.values()) if list(m) == [str(i) for i in range(len(m))] else m


def path_get(value: Any, keys: list[str]) -> tuple[bool, Any]:
    for key in keys:
        m = _as_map(value) if isinstance(value, (list, dict)) else {}
        if key not in m or m[key] is None:
            return False, None
        value = m[key]
    return True, value


def path_set(existing: Any, keys: list[str], value: Any, update_only: bool) -> Any:
    """``SetConfig::mergeArrayValue``."""
    m = _as_map(existing)
    key, rest = keys[0], keys[1:]
    if rest:
        m[key] = path_set(m.get(key, []), rest, value, update_only)
    else:
        if key not in m and update_only:
            raise StandinError("Config parameter does not exist")
        m[key] = value
    return _normalise(m)


def path_delete(existing: Any, keys: list[str], strict: bool) -> Any:
    """``DeleteConfig::removeSubValue``."""
    if not isinstance(existing, (list, dict)):
        if strict:
            raise StandinError("Config parameter does not exist")
        return existing
    m = _as_map(existing)
    key, rest = keys[0], keys[1:]
    if key in m and m[key] is not None:
        if rest:
            m[key] = path_delete(m[key], rest, strict)
        else:
            del m[key]
    elif strict:
        raise StandinError("Config parameter does not exist")
    return _normalise(m)


def filter_sensitive(value: Any, rule: Any) -> Any:
    if rule is True:
        return SENSITIVE
    if isinstance(rule, dict) and isinstance(value, dict):
        return {k: filter_sensitive(v, rule.get(k)) for k, v in value.items()}
    return value


class SystemConfig:
    """``config/config.json`` merged with the environment overlay."""

    def __init__(self, root: Path, env: Mapping[str, str]) -> None:
        self.path = root / "config" / "config.json"
        stored: dict[str, Any] = {}
        if self.path.is_file():
            stored = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        self.values: dict[str, Any] = {**stored, **env_overlay(env)}

    @property
    def installed(self) -> bool:
        return self.values.get("installed") is True

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.write()

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(".config.json.tmp")
        tmp.write_text(json.dumps(self.values, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o640)
        tmp.replace(self.path)


# --- database --------------------------------------------------------------------------------

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS oc_appconfig (appid VARCHAR(32) NOT NULL, "
    "configkey VARCHAR(64) NOT NULL, configvalue LONGTEXT, type INT NOT NULL DEFAULT 2, "
    "lazy SMALLINT NOT NULL DEFAULT 0, PRIMARY KEY (appid, configkey))",
    "CREATE TABLE IF NOT EXISTS oc_users (uid VARCHAR(64) NOT NULL PRIMARY KEY, "
    "displayname VARCHAR(64), password VARCHAR(255) NOT NULL, uid_lower VARCHAR(64))",
    "CREATE TABLE IF NOT EXISTS oc_groups (gid VARCHAR(64) NOT NULL PRIMARY KEY, "
    "displayname VARCHAR(255) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oc_group_user (gid VARCHAR(64) NOT NULL, "
    "uid VARCHAR(64) NOT NULL, PRIMARY KEY (gid, uid))",
    "CREATE TABLE IF NOT EXISTS oc_preferences (userid VARCHAR(64) NOT NULL, "
    "appid VARCHAR(32) NOT NULL, configkey VARCHAR(64) NOT NULL, configvalue LONGTEXT, "
    "PRIMARY KEY (userid, appid, configkey))",
    "CREATE TABLE IF NOT EXISTS oc_user_oidc_providers (id INT NOT NULL PRIMARY KEY, "
    "identifier VARCHAR(128) NOT NULL, client_id VARCHAR(255), client_secret TEXT, "
    "discovery_endpoint TEXT, end_session_endpoint TEXT, post_logout_uri TEXT, "
    "scope VARCHAR(255))",
    # user_oidc's own user backend table (its users are not in oc_users)
    "CREATE TABLE IF NOT EXISTS oc_user_oidc (user_id VARCHAR(64) NOT NULL PRIMARY KEY, "
    "display_name VARCHAR(255), provider_id INT)",
]

# IAppConfig value types (flags); VALUE_SENSITIVE is or-ed into the stored type.
SENSITIVE_FLAG, MIXED, STRING, INT, FLOAT, BOOL, ARRAY = 1, 2, 4, 8, 16, 32, 64
TYPE_NAMES = {MIXED: "mixed", STRING: "string", INT: "integer", FLOAT: "float",
              BOOL: "boolean", ARRAY: "array"}


@dataclass
class AppValue:
    app: str
    key: str
    value: str
    type: int
    lazy: bool

    @property
    def sensitive(self) -> bool:
        return bool(self.type & SENSITIVE_FLAG)

    @property
    def base_type(self) -> int:
        return self.type & ~SENSITIVE_FLAG

    def typed(self) -> Any:
        """The value as ``IAppConfig::getAllValues`` formats it."""
        t = self.base_type
        try:
            if t == INT:
                return int(self.value)
            if t == FLOAT:
                return float(self.value)
            if t == BOOL:
                return self.value.lower() in ("1", "true", "yes", "on")
            if t == ARRAY:
                return json.loads(self.value)
        except ValueError:
            return self.value
        return self.value


def _mysql_connect(system: Mapping[str, Any]) -> Any:
    import pymysql  # type: ignore[import-untyped,unused-ignore]  # in the image only

    host = str(system.get("dbhost") or "localhost")
    port = int(system.get("dbport") or 3306)
    sock = None
    if ":" in host:
        host, _, rest = host.partition(":")
        if rest.startswith("/"):
            sock = rest
        elif rest:
            port = int(rest)
    try:
        return pymysql.connect(
            host=host, port=port, unix_socket=sock, user=system.get("dbuser"),
            password=system.get("dbpassword") or "", database=system.get("dbname"),
            charset="utf8mb4", connect_timeout=5, read_timeout=30, write_timeout=30,
        )
    except pymysql.err.MySQLError as e:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        msg = e.args[1] if len(e.args) > 1 else str(e)
        raise DbError(f"SQLSTATE[HY000] [{code}] {msg}", code) from None


class Store:
    """All database access of the stand-in. SQL uses ``?``; converted for PyMySQL."""

    def __init__(self, conn: Any, mysql: bool) -> None:
        self.conn = conn
        self.mysql = mysql

    @classmethod
    def connect(cls, system: Mapping[str, Any]) -> Store:
        dbtype = system.get("dbtype")
        if dbtype == "mysql":
            return cls(_mysql_connect(system), True)
        if dbtype == "sqlite3":
            datadir = Path(str(system.get("datadirectory")))
            return cls(sqlite3.connect(datadir / f"{system.get('dbname') or 'owncloud'}.db"), False)
        raise DbError(f"Unsupported database type: {dbtype}")

    def _exec(self, sql: str, params: tuple[Any, ...]) -> Any:
        cur = self.conn.cursor()
        try:
            cur.execute(sql.replace("?", "%s") if self.mysql else sql, params)
        except Exception as e:  # driver errors: PyMySQL or sqlite3
            raise DbError(f"An exception occurred in the driver: {e}") from None
        return cur

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(self._exec(sql, params).fetchall())

    def run(self, sql: str, *params: Any) -> None:
        self._exec(sql, params)

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def create_schema(self) -> None:
        for stmt in SCHEMA:
            self.run(stmt)
        self.commit()

    # app config
    def app_values(self, app: str | None = None) -> dict[str, dict[str, AppValue]]:
        sql = "SELECT appid, configkey, configvalue, type, lazy FROM oc_appconfig"
        rows = self.rows(sql + " WHERE appid = ?", app) if app else self.rows(sql)
        out: dict[str, dict[str, AppValue]] = {}
        for a, k, v, t, lazy in sorted(rows, key=lambda r: (r[0], r[1])):
            out.setdefault(a, {})[k] = AppValue(a, k, v or "", int(t), bool(lazy))
        return out

    def app_value(self, app: str, key: str) -> AppValue | None:
        return self.app_values(app).get(app, {}).get(key)

    def set_app_value(self, app: str, key: str, value: str, type_: int = MIXED,
                      lazy: bool = False) -> None:
        self.run("DELETE FROM oc_appconfig WHERE appid = ? AND configkey = ?", app, key)
        self.run("INSERT INTO oc_appconfig (appid, configkey, configvalue, type, lazy) "
                 "VALUES (?, ?, ?, ?, ?)", app, key, value, type_, int(lazy))

    def delete_app_value(self, app: str, key: str) -> None:
        self.run("DELETE FROM oc_appconfig WHERE appid = ? AND configkey = ?", app, key)

    # users and groups
    def users(self) -> list[dict[str, Any]]:
        rows = self.rows("SELECT uid, displayname FROM oc_users")
        users = [{"uid": u, "displayname": d or u, "backend": "Database"} for u, d in rows]
        users += [{"uid": u, "displayname": d or u, "backend": "user_oidc"}
                  for u, d in self.rows("SELECT user_id, display_name FROM oc_user_oidc")]
        return sorted(users, key=lambda u: (u["displayname"].lower(), u["uid"].lower()))

    def user(self, uid: str) -> dict[str, Any] | None:
        rows = self.rows("SELECT uid, displayname FROM oc_users WHERE uid_lower = ?", uid.lower())
        if rows:
            return {"uid": rows[0][0], "displayname": rows[0][1] or rows[0][0],
                    "backend": "Database"}
        rows = self.rows("SELECT user_id, display_name FROM oc_user_oidc WHERE user_id = ?", uid)
        return ({"uid": rows[0][0], "displayname": rows[0][1] or rows[0][0],
                 "backend": "user_oidc"} if rows else None)

    def save_oidc_user(self, uid: str, display_name: str, provider_id: int) -> None:
        """user_oidc's backend: create the user or update the display name."""
        self.run("DELETE FROM oc_user_oidc WHERE user_id = ?", uid)
        self.run("INSERT INTO oc_user_oidc (user_id, display_name, provider_id) VALUES (?, ?, ?)",
                 uid, display_name, provider_id)

    def remove_member(self, gid: str, uid: str) -> None:
        self.run("DELETE FROM oc_group_user WHERE gid = ? AND uid = ?", gid, uid)

    def add_user(self, uid: str, password: str) -> None:
        self.run("INSERT INTO oc_users (uid, displayname, password, uid_lower) "
                 "VALUES (?, ?, ?, ?)", uid, uid, hash_password(password), uid.lower())

    def set_password(self, uid: str, password: str) -> None:
        self.run("UPDATE oc_users SET password = ? WHERE uid = ?", hash_password(password), uid)

    def set_display_name(self, uid: str, name: str) -> None:
        self.run("UPDATE oc_users SET displayname = ? WHERE uid = ?", name, uid)

    def delete_user(self, uid: str) -> None:
        for sql in ("DELETE FROM oc_users WHERE uid = ?", "DELETE FROM oc_group_user WHERE uid = ?",
                    "DELETE FROM oc_user_oidc WHERE user_id = ?",
                    "DELETE FROM oc_preferences WHERE userid = ?"):
            self.run(sql, uid)

    def pref(self, uid: str, app: str, key: str) -> str | None:
        rows = self.rows("SELECT configvalue FROM oc_preferences WHERE userid = ? AND appid = ? "
                         "AND configkey = ?", uid, app, key)
        return rows[0][0] if rows else None

    def set_pref(self, uid: str, app: str, key: str, value: str) -> None:
        self.run("DELETE FROM oc_preferences WHERE userid = ? AND appid = ? AND configkey = ?",
                 uid, app, key)
        self.run("INSERT INTO oc_preferences (userid, appid, configkey, configvalue) "
                 "VALUES (?, ?, ?, ?)", uid, app, key, value)

    def groups(self) -> list[dict[str, Any]]:
        rows = self.rows("SELECT gid, displayname FROM oc_groups")
        return [{"gid": g, "displayname": d} for g, d in sorted(rows, key=lambda r: r[0].lower())]

    def group(self, gid: str) -> dict[str, Any] | None:
        rows = self.rows("SELECT gid, displayname FROM oc_groups WHERE gid = ?", gid)
        return {"gid": rows[0][0], "displayname": rows[0][1]} if rows else None

    def add_group(self, gid: str, displayname: str | None = None) -> None:
        self.run("INSERT INTO oc_groups (gid, displayname) VALUES (?, ?)", gid, displayname or gid)

    def group_users(self, gid: str) -> list[str]:
        return sorted(r[0] for r in self.rows("SELECT uid FROM oc_group_user WHERE gid = ?", gid))

    def user_groups(self, uid: str) -> list[str]:
        return sorted(r[0] for r in self.rows("SELECT gid FROM oc_group_user WHERE uid = ?", uid))

    def add_member(self, gid: str, uid: str) -> None:
        if uid not in self.group_users(gid):
            self.run("INSERT INTO oc_group_user (gid, uid) VALUES (?, ?)", gid, uid)

    # app passwords (``oc_authtoken``: only a hash of the token is kept)
    def add_app_password(self, uid: str, token: str, name: str) -> None:
        self.run("CREATE TABLE IF NOT EXISTS oc_authtoken (token_hash VARCHAR(128) NOT NULL "
                 "PRIMARY KEY, uid VARCHAR(64) NOT NULL, name VARCHAR(255))")
        digest = hashlib.sha512(token.encode()).hexdigest()
        self.run("INSERT INTO oc_authtoken (token_hash, uid, name) VALUES (?, ?, ?)",
                 digest, uid, name)

    def app_password_user(self, login: str, token: str) -> str | None:
        """The uid whose app password ``token`` is, if ``login`` is that user."""
        self.run("CREATE TABLE IF NOT EXISTS oc_authtoken (token_hash VARCHAR(128) NOT NULL "
                 "PRIMARY KEY, uid VARCHAR(64) NOT NULL, name VARCHAR(255))")
        digest = hashlib.sha512(token.encode()).hexdigest()
        rows = self.rows("SELECT uid FROM oc_authtoken WHERE token_hash = ?", digest)
        return str(rows[0][0]) if rows and str(rows[0][0]).lower() == login.lower() else None

    # user_oidc providers (settings live in oc_appconfig as provider-<id>-<key>, lazy)
    PROVIDER_COLUMNS = ("id", "identifier", "client_id", "client_secret", "discovery_endpoint",
                        "end_session_endpoint", "post_logout_uri", "scope")

    def providers(self) -> list[dict[str, Any]]:
        rows = self.rows(f"SELECT {', '.join(self.PROVIDER_COLUMNS)} "  # noqa: S608 (constants)
                         "FROM oc_user_oidc_providers")
        return sorted((dict(zip(self.PROVIDER_COLUMNS, r, strict=True)) for r in rows),
                      key=lambda p: int(p["id"]))

    def provider(self, identifier: str) -> dict[str, Any] | None:
        return next((p for p in self.providers() if p["identifier"] == identifier), None)

    def save_provider(self, p: dict[str, Any]) -> int:
        if p.get("id") is None:
            p["id"] = max([int(x["id"]) for x in self.providers()] or [0]) + 1
        self.run("DELETE FROM oc_user_oidc_providers WHERE id = ?", p["id"])
        cols = self.PROVIDER_COLUMNS
        self.run(f"INSERT INTO oc_user_oidc_providers ({', '.join(cols)}) "  # noqa: S608
                 f"VALUES ({', '.join('?' for _ in cols)})", *(p.get(c) for c in cols))
        return int(p["id"])

    def delete_provider(self, provider_id: int) -> None:
        self.run("DELETE FROM oc_user_oidc_providers WHERE id = ?", provider_id)
        prefix = f"provider-{provider_id}-"
        for key in self.app_values("user_oidc").get("user_oidc", {}):
            if key.startswith(prefix):
                self.delete_app_value("user_oidc", key)


def hash_password(password: str) -> str:
    """Stand-in hash (real Nextcloud: argon2); never stores the clear password."""
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()
    return f"standin-pbkdf2${salt}${digest}"


# --- Redis -----------------------------------------------------------------------------------


def redis_check(cfg: Mapping[str, Any], timeout: float = 3.0) -> None:
    """AUTH (if a password is configured) and PING over RESP, like phpredis' connect."""
    host = str(cfg.get("host") or "")
    try:
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(host)
        else:
            sock = socket.create_connection((host, int(cfg.get("port") or 6379)), timeout)
    except OSError as e:
        raise StandinError(f"RedisException: Connection refused ({host}: {e})") from None
    commands: list[list[str]] = []
    if cfg.get("password"):
        user = cfg.get("user")
        commands.append(["AUTH", str(user), str(cfg["password"])] if user
                        else ["AUTH", str(cfg["password"])])
    commands.append(["PING"])
    with sock, sock.makefile("rb") as reader:
        for cmd in commands:
            payload = f"*{len(cmd)}\r\n" + "".join(
                f"${len(a.encode())}\r\n{a}\r\n" for a in cmd)
            sock.sendall(payload.encode())
            reply = reader.readline().decode(errors="replace").strip()
            if not reply or reply.startswith("-"):
                raise StandinError(f"RedisException: {reply[1:] or 'no reply'}")


def chown_www_data(path: Path) -> None:
    """When running as root (entrypoint), hand the path to www-data (uid/gid 33)."""
    if os.geteuid() == 0:
        os.chown(path, 33, 33)
