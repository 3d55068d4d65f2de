"""occ commands the Nextcloud stand-in (test double) implements with state and real outputs.

Every other command of ``reference/nextcloud-occ-commands.json`` is accepted syntactically,
prints a stand-in notice on stderr and exits 0 (listed in ../README.md). Texts follow the
real commands (core ``OC\\Core\\Command\\*``, user_oidc 8.10, theming) and the captured notes;
texts marked "approximation" in the README were not captured from a live server.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import PRODUCT, VERSION, VERSION_STRING, catalog
from .console import Argument, CommandDef, Option, ParsedInput
from .output import Out, php_json, php_string, table, write_array, write_mixed
from .state import (
    ARRAY,
    BOOL,
    FLOAT,
    INT,
    MIXED,
    SENSITIVE,
    SENSITIVE_FLAG,
    SENSITIVE_SYSTEM,
    STRING,
    TYPE_NAMES,
    DbError,
    StandinError,
    Store,
    SystemConfig,
    filter_sensitive,
    path_delete,
    path_get,
    path_set,
    redis_check,
)


class CommandFailed(Exception):
    """The command prints ``line`` (stdout) and exits 1; what it changed before stays."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


@dataclass
class Ctx:
    inp: ParsedInput
    out: Out
    root: Path
    env: Mapping[str, str]
    stdin: TextIO
    system: SystemConfig
    store: Store | None

    @property
    def db(self) -> Store:
        if self.store is None:  # only commands available after the install use the DB
            raise StandinError("Nextcloud is not installed")
        return self.store

    @property
    def fmt(self) -> str | None:
        return self.inp.opt("output") if "output" in self.inp.command.options else None

    def arg(self, name: str) -> Any:
        return self.inp.arg(name)

    def user(self, uid: str, missing: str) -> dict[str, Any]:
        """The account ``uid``; without one the command fails, printing ``missing``."""
        user = self.db.user(uid)
        if not user:
            raise CommandFailed(missing)
        return user

    def group(self, gid: str, missing: str) -> dict[str, Any]:
        """The group ``gid``; without one the command fails, printing ``missing``."""
        group = self.db.group(gid)
        if not group:
            raise CommandFailed(missing)
        return group

    def opt(self, name: str) -> Any:
        return self.inp.opt(name)


Handler = Callable[[Ctx], int]
HANDLERS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for n in names:
            HANDLERS[n] = fn
        return fn
    return register


def status_values(system: SystemConfig) -> dict[str, Any]:
    """Key order of ``occ status --output=json``."""
    return {
        "installed": system.installed,
        "version": VERSION,
        "versionstring": VERSION_STRING,
        "edition": "",
        "maintenance": system.get("maintenance") is True,
        "needsDbUpgrade": False,
        "productname": PRODUCT,
        "extendedSupport": False,
    }


@command("status")
def status(ctx: Ctx) -> int:
    values = status_values(ctx.system)
    if ctx.opt("verbose") or not ctx.opt("exit-code"):
        write_array(ctx.out, ctx.fmt, values)
    return 1 if ctx.opt("exit-code") and values["maintenance"] else 0


# --- maintenance ---------------------------------------------------------------------------


def install_definition(template: CommandDef) -> CommandDef:
    """``maintenance:install`` is registered only before the install, so it is missing from
    the captured list; its options are taken from the notes (nextcloud-occ-notes.md)."""
    def opt(name: str, default: Any = None, flag: bool = False) -> Option:
        return Option(name, "", not flag, not flag, False, False if flag else default)
    from .console import with_global_options
    options = [
        opt("database", "sqlite"), opt("database-name"), opt("database-host", "localhost"),
        opt("database-port"), opt("database-user"),
        Option("database-pass", "", True, False, False, None),
        opt("admin-user", "admin"), opt("admin-pass"), opt("admin-email"),
        opt("disable-admin-user", flag=True), opt("data-dir"), opt("password-salt"),
        opt("server-secret"),
    ]
    return with_global_options("maintenance:install", [], options, template)


def _random(n: int, alphabet: str = string.ascii_letters + string.digits + "+/") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _install_config(ctx: Ctx, dbtype: str, datadir: Path) -> dict[str, Any]:
    """The config.php values ``maintenance:install`` sets (merged over the system config)."""
    new: dict[str, Any] = {
        "passwordsalt": ctx.opt("password-salt") or _random(30),
        "secret": ctx.opt("server-secret") or _random(48),
        "trusted_domains": ["localhost"],
        "datadirectory": str(datadir),
        "dbtype": dbtype,
        "version": VERSION,
        "overwrite.cli.url": "http://localhost",
        "instanceid": "oc" + _random(10, string.ascii_lowercase + string.digits),
    }
    if dbtype == "mysql":
        host = ctx.opt("database-host")
        if ctx.opt("database-port"):
            host = f"{host}:{ctx.opt('database-port')}"
        new.update({"dbname": ctx.opt("database-name"), "dbhost": host, "dbport": "",
                    "dbtableprefix": "oc_", "mysql.utf8mb4": True,
                    "dbuser": ctx.opt("database-user"),
                    "dbpassword": ctx.opt("database-pass") or ""})
        if not new["dbname"] or not new["dbuser"]:
            raise CommandFailed("Database account and database name must be set.")
    else:
        new.update({"dbname": ctx.opt("database-name") or "owncloud", "dbtableprefix": "oc_"})
    return new


def _install_connect(config: dict[str, Any], datadir: Path) -> Store:
    """The data directory made and the database reached, or the installer's failure text."""
    try:
        datadir.mkdir(parents=True, exist_ok=True)
        (datadir / ".ocdata").touch()
        return Store.connect(config)
    except DbError as e:
        if e.code in (1044, 1045):
            raise CommandFailed("MySQL username and/or password not valid\n"
                                "-> You need to enter details of an existing account.") from None
        raise CommandFailed(f"Error while trying to connect to the database: {e}") from None
    except OSError as e:
        raise CommandFailed(f"Cannot create or write into the data directory {datadir}: "
                            f"{e.strerror}") from None


def _install_seed(ctx: Ctx, store: Store, admin: tuple[str, str] | None) -> None:
    """The initially enabled apps, the install dates and the admin account (with group)."""
    now = str(int(time.time()))
    for app, version in catalog.INITIALLY_ENABLED.items():
        if app not in catalog.KNOWN_APPS:  # not in this image
            continue
        store.set_app_value(app, "installed_version", version)
        store.set_app_value(app, "enabled", "yes")
    for key, value in (("installedat", now), ("lastupdatedat", now), ("vendor", "nextcloud")):
        store.set_app_value("core", key, value)
    if admin is not None:
        admin_user, admin_pass = admin
        store.add_user(admin_user, admin_pass)
        if not store.group("admin"):
            store.add_group("admin")
        store.add_member("admin", admin_user)
        if ctx.opt("admin-email"):
            store.set_pref(admin_user, "settings", "email", ctx.opt("admin-email"))


@command("maintenance:install")
def maintenance_install(ctx: Ctx) -> int:
    out = ctx.out
    database = ctx.opt("database")
    types = {"sqlite": "sqlite3", "sqlite3": "sqlite3", "mysql": "mysql"}
    if database not in types:
        out.line(f"Database {database} is not supported by the Nextcloud stand-in (test double).")
        return 1
    admin_user, admin_pass = ctx.opt("admin-user"), ctx.opt("admin-pass")
    with_admin = not ctx.opt("disable-admin-user")
    if with_admin and not admin_pass:
        out.line("Set an admin password.")
        return 1
    datadir = Path(ctx.opt("data-dir") or ctx.root / "data")
    merged = {**ctx.system.values, **_install_config(ctx, types[database], datadir)}
    store = _install_connect(merged, datadir)
    try:
        if isinstance(merged.get("redis"), dict):
            redis_check(merged["redis"])
        store.create_schema()
        if with_admin and store.user(admin_user):
            out.line("Error while trying to create admin account: "
                     "The username is already being used")
            return 1
        _install_seed(ctx, store, (admin_user, admin_pass) if with_admin else None)
        store.commit()
    except StandinError as e:
        out.line(f"An unhandled exception has been thrown:\n{e}")
        return 1
    finally:
        store.close()
    ctx.system.values = {**merged, "installed": True}
    ctx.system.write()
    out.line("Nextcloud was successfully installed")
    return 0


@command("maintenance:mode")
def maintenance_mode(ctx: Ctx) -> int:
    on = ctx.system.get("maintenance") is True
    if ctx.opt("on"):
        if on:
            ctx.out.line("Maintenance mode already enabled")
        else:
            ctx.system.set("maintenance", True)
            ctx.out.line("Maintenance mode enabled")
    elif ctx.opt("off"):
        if on:
            ctx.system.set("maintenance", False)
            ctx.out.line("Maintenance mode disabled")
        else:
            ctx.out.line("Maintenance mode already disabled")
    else:
        ctx.out.line(f"Maintenance mode is currently {'enabled' if on else 'disabled'}")
    return 0


@command("background:cron")
def background_cron(ctx: Ctx) -> int:
    ctx.db.set_app_value("core", "backgroundjobs_mode", "cron")
    ctx.out.line("Set mode for background jobs to 'cron'")
    return 0


# --- system config -------------------------------------------------------------------------


def _is_numeric(v: str) -> bool:
    return re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", v) is not None


def cast_system_value(value: str | None, type_: str) -> tuple[Any, str]:
    """``OC\\Core\\Command\\Config\\System\\CastHelper::castValue``."""
    v = "" if value is None else value
    if type_ in ("integer", "int"):
        if not _is_numeric(v):
            raise StandinError("Non-numeric value specified")
        n = int(v) if v.strip().lstrip("+-").isdigit() else int(float(v))
        return n, f"integer {n}"
    if type_ in ("double", "float"):
        if not _is_numeric(v):
            raise StandinError("Non-numeric value specified")
        return float(v), f"double {php_string(float(v))}"
    if type_ in ("boolean", "bool"):
        low = v.lower()
        if low not in ("true", "false"):
            raise StandinError("Unable to parse value as boolean")
        return low == "true", f"boolean {low}"
    if type_ == "null":
        return None, "null"
    if type_ == "string":
        return v, "empty string" if v == "" else f"string {v}"
    if type_ == "json":
        try:
            decoded = json.loads(v)
        except ValueError:
            decoded = None
        return decoded, f"json {php_json(decoded)}"
    raise StandinError("Invalid type")


@command("config:system:get")
def system_get(ctx: Ctx) -> int:
    names: list[str] = ctx.arg("name")
    has_default = ctx.inp.has("default-value")
    if names[0] not in ctx.system.values:
        if not has_default:
            return 1
        value = ctx.opt("default-value")
    else:
        found, value = path_get(ctx.system.values[names[0]], names[1:])
        if not found:
            if not has_default:
                return 1
            value = ctx.opt("default-value")
    write_mixed(ctx.out, ctx.fmt, value)
    return 0


@command("config:system:set")
def system_set(ctx: Ctx) -> int:
    names: list[str] = ctx.arg("name")
    value, readable = cast_system_value(ctx.opt("value"), ctx.opt("type"))
    update_only = bool(ctx.opt("update-only"))
    if len(names) > 1:
        new = path_set(ctx.system.get(names[0]), names[1:], value, update_only)
    else:
        if update_only and names[0] not in ctx.system.values:
            raise StandinError("Config parameter does not exist")
        new = value
    ctx.system.set(names[0], new)
    ctx.out.line(f"System config value {' => '.join(names)} set to {readable}")
    return 0


@command("config:system:delete")
def system_delete(ctx: Ctx) -> int:
    names: list[str] = ctx.arg("name")
    strict = ctx.inp.has("error-if-not-exists")
    joined = " => ".join(names)
    missing = f"System config {joined} could not be deleted because it did not exist"
    if strict and names[0] not in ctx.system.values:
        ctx.out.line(missing)
        return 1
    if len(names) > 1:
        try:
            new = path_delete(ctx.system.get(names[0]), names[1:], strict)
        except StandinError:
            ctx.out.line(missing)
            return 1
        ctx.system.set(names[0], new)
    else:
        ctx.system.delete(names[0])
    ctx.out.line(f"System config value {joined} deleted")
    return 0


# --- app config ----------------------------------------------------------------------------

APP_TYPES = {"mixed": MIXED, "string": STRING, "int": INT, "integer": INT, "float": FLOAT,
             "bool": BOOL, "boolean": BOOL, "array": ARRAY}


def _app_string(value: str, type_: int) -> str:
    """Validate and normalise a value for ``IAppConfig::setValue<Type>``."""
    if type_ == INT:
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            raise StandinError(f"Value is not an integer: {value}")
        return str(int(value))
    if type_ == FLOAT:
        if not _is_numeric(value):
            raise StandinError(f"Value is not a float: {value}")
        return php_string(float(value))
    if type_ == BOOL:
        return "1" if value.lower() in ("1", "true", "yes", "on") else "0"
    if type_ == ARRAY:
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if not isinstance(decoded, (list, dict)):
            raise StandinError("Value is not a valid json array")
        return json.dumps(decoded, separators=(",", ":"))
    return value


@command("config:app:set")
def app_set(ctx: Ctx) -> int:
    app, key = ctx.arg("app"), ctx.arg("name")
    current = ctx.db.app_value(app, key)
    if ctx.inp.has("update-only") and current is None:
        ctx.out.line(f"Config value {key} for app {app} not updated, "
                     "as it has not been set before.")
        return 1
    if ctx.inp.has("type"):
        name = str(ctx.opt("type")).lower()
        if name not in APP_TYPES:
            raise StandinError(f"Unknown type name {ctx.opt('type')}")
        type_ = APP_TYPES[name]
    else:
        type_ = current.base_type if current else MIXED
    if not ctx.inp.has("value"):
        if current is None:  # approximation: real occ asks or refuses
            ctx.out.line(f"Config value {key} for app {app} not set: --value is needed")
            return 1
        value = current.value
    else:
        value = _app_string(str(ctx.opt("value")), type_)
    lazy = ctx.opt("lazy") if ctx.inp.has("lazy") else (current.lazy if current else False)
    sensitive = (ctx.opt("sensitive") if ctx.inp.has("sensitive")
                 else (current.sensitive if current else False))
    ctx.db.set_app_value(app, key, value, type_ | (SENSITIVE_FLAG if sensitive else 0),
                         bool(lazy))
    shown = "<sensitive>" if sensitive else value
    ctx.out.line(f"Config value '{key}' for app '{app}' is now set to '{shown}', stored as "
                 f"{TYPE_NAMES[type_]} in {'lazy' if lazy else 'fast'} cache")
    return 0


@command("config:app:get")
def app_get(ctx: Ctx) -> int:
    app, key = ctx.arg("app"), ctx.arg("name")
    current = ctx.db.app_value(app, key)
    if current is not None and (ctx.opt("details") or ctx.opt("key-details")):
        write_array(ctx.out, ctx.fmt, {
            "app": app, "key": key, "value": current.value,
            "type": TYPE_NAMES.get(current.base_type, "mixed"),
            "lazy": current.lazy, "sensitive": current.sensitive,
        })
        return 0
    if current is None:
        if not ctx.inp.has("default-value"):
            return 1
        value = ctx.opt("default-value")
    else:
        value = current.value
    write_mixed(ctx.out, ctx.fmt, value)
    return 0


@command("config:app:delete")
def app_delete(ctx: Ctx) -> int:
    app, key = ctx.arg("app"), ctx.arg("name")
    if ctx.opt("error-if-not-exists") and ctx.db.app_value(app, key) is None:
        ctx.out.line(f"Config {key} of app {app} could not be deleted because it did not exist")
        return 1
    ctx.db.delete_app_value(app, key)
    ctx.out.line(f"Config value {key} of app {app} deleted")
    return 0


def _system_configs(system: SystemConfig, private: bool) -> dict[str, Any]:
    if private:
        return dict(system.values)
    return {k: filter_sensitive(v, SENSITIVE_SYSTEM.get(k)) for k, v in system.values.items()}


def _app_configs(store: Store, app: str, private: bool) -> dict[str, Any]:
    values = store.app_values(app).get(app, {})
    return {k: (SENSITIVE if v.sensitive and not private else v.typed())
            for k, v in values.items()}


@command("config:list")
def config_list(ctx: Ctx) -> int:
    app, private = ctx.arg("app"), bool(ctx.opt("private"))
    configs: dict[str, Any]
    if app == "system":
        configs = {"system": _system_configs(ctx.system, private)}
    elif app == "all":
        apps = {a: _app_configs(ctx.db, a, private) for a in ctx.db.app_values()}
        configs = {"system": _system_configs(ctx.system, private), "apps": apps or []}
    else:
        configs = {"apps": {app: _app_configs(ctx.db, app, private) or []}}
    write_array(ctx.out, ctx.fmt, configs)
    return 0


def _validate_import(content: Any) -> dict[str, Any]:
    """``ImportConfig::validateFileContent``."""
    if not isinstance(content, dict) or not content:
        raise StandinError("The file must contain a valid json array")
    extra = [k for k in content if k not in ("system", "apps")]
    if extra:
        raise StandinError("Found invalid entries in root: " + ", ".join(extra))
    system, apps = content.get("system"), content.get("apps")
    if system is not None:
        if not isinstance(system, dict):
            raise StandinError("The system config array is not an array")
        for name, value in system.items():
            _check_system_type(value, name)
    if apps is not None:
        if not isinstance(apps, dict):
            raise StandinError("The apps config array is not an array")
        for app, values in apps.items():
            for name, value in (values or {}).items():
                if value is not None and (isinstance(value, bool)
                                          or not isinstance(value, (int, str))):
                    raise StandinError(f'Invalid app config value for "{app}":"{name}". '
                                       "Only integers, strings and null (delete) are allowed.")
    return content


def _check_system_type(value: Any, name: str) -> None:
    if isinstance(value, (list, dict)):
        for v in value.values() if isinstance(value, dict) else value:
            _check_system_type(v, name)
    elif not isinstance(value, (bool, int, float, str, type(None))):
        raise StandinError(f'Invalid system config value for "{name}". Only arrays, bools, '
                           "integers, floats, strings and null (delete) are allowed.")


@command("config:import")
def config_import(ctx: Ctx) -> int:
    file = ctx.arg("file")
    try:
        text = Path(file).read_text(encoding="utf-8") if file is not None else ctx.stdin.read()
        configs = _validate_import(json.loads(text))
    except (OSError, ValueError):
        ctx.out.line("The file must contain a valid json array")
        return 1
    except StandinError as e:
        ctx.out.line(str(e))
        return 1
    system = configs.get("system") or {}
    if system:
        for key, value in system.items():
            if value is None:
                ctx.system.values.pop(key, None)
            else:
                ctx.system.values[key] = value
        ctx.system.write()
    for app, values in (configs.get("apps") or {}).items():
        for key, value in (values or {}).items():
            if value is None:
                ctx.db.delete_app_value(app, key)
            else:
                current = ctx.db.app_value(app, key)
                type_ = current.type if current else MIXED
                lazy = current.lazy if current else False
                ctx.db.set_app_value(app, key, str(value), type_, lazy)
    ctx.out.line(f"Config successfully imported from: {file or ''}")
    return 0


# --- apps ----------------------------------------------------------------------------------


def enabled_apps(store: Store) -> dict[str, str]:
    out = {}
    for app, values in store.app_values().items():
        if "enabled" in values and values["enabled"].value != "no":
            row = values.get("installed_version")
            out[app] = row.value if row else catalog.KNOWN_APPS.get(app, "")
    return out


def _installed(store: Store, app: str) -> bool:
    """In the image's apps directories (app:list shows it, enabled or disabled)."""
    return app in catalog.KNOWN_APPS


@command("app:list")
def app_list(ctx: Ctx) -> int:
    enabled = enabled_apps(ctx.db)
    installed = {a: v for a, v in catalog.KNOWN_APPS.items() if _installed(ctx.db, a)}
    shipped = ctx.opt("shipped")

    def keep(app: str) -> bool:
        return shipped is None or (shipped == "true") == (app not in catalog.NOT_SHIPPED)

    items: dict[str, Any] = {
        "enabled": {a: enabled[a] for a in sorted(enabled) if keep(a)},
        "disabled": {a: v for a, v in sorted(installed.items()) if a not in enabled and keep(a)},
    }
    if ctx.opt("enabled"):
        del items["disabled"]
    elif ctx.opt("disabled"):
        del items["enabled"]
    items = {k: (v or []) for k, v in items.items()}
    if ctx.fmt in ("json", "json_pretty"):
        write_array(ctx.out, ctx.fmt, items)
        return 0
    for title, key in (("Enabled:", "enabled"), ("Disabled:", "disabled")):
        if items.get(key):
            ctx.out.line(title)
            write_array(ctx.out, ctx.fmt, items[key])
    return 0


def _download(store: Store, app: str) -> str:
    """An app of the image; any other id would need the app store, which is not reachable
    (the real server's message of the captured run)."""
    if app not in catalog.KNOWN_APPS:
        raise StandinError(f"Could not download app {app}, it was not found on the appstore")
    if store.app_value(app, "installed_version") is None:
        store.set_app_value(app, "installed_version", catalog.KNOWN_APPS[app])
    return catalog.KNOWN_APPS[app]


@command("app:enable")
def app_enable(ctx: Ctx) -> int:
    groups: list[str] = ctx.opt("groups") or []
    code = 0
    for app in ctx.arg("app-id"):
        if app in enabled_apps(ctx.db) and not groups:
            ctx.out.line(f"{app} already enabled")
            continue
        try:
            version = _download(ctx.db, app)
        except StandinError as e:
            ctx.out.line(str(e))
            code = 1
            continue
        if groups:
            ctx.db.set_app_value(app, "enabled", json.dumps(groups))
            ctx.out.line(f"{app} {version} enabled for groups: {', '.join(groups)}")
        else:
            ctx.db.set_app_value(app, "enabled", "yes")
            ctx.out.line(f"{app} {version} enabled")
    return code


@command("app:disable")
def app_disable(ctx: Ctx) -> int:
    code = 0
    for app in ctx.arg("app-id"):
        if not _installed(ctx.db, app):
            ctx.out.line(f"No such app enabled: {app}")
            continue
        if app in catalog.ALWAYS_ENABLED:
            ctx.out.line(f"{app} can't be disabled.")
            code = 2
            continue
        ctx.db.set_app_value(app, "enabled", "no")
        ctx.out.line(f"{app} {catalog.KNOWN_APPS[app]} disabled")
    return code


@command("app:install")
def app_install(ctx: Ctx) -> int:
    app = ctx.arg("app-id")
    if _installed(ctx.db, app):
        ctx.out.line(f"{app} already installed")
        return 1
    try:
        version = _download(ctx.db, app)
    except StandinError as e:
        ctx.out.line(f"Error: {e}")
        return 1
    ctx.out.line(f"{app} {version} installed")
    if not ctx.opt("keep-disabled"):
        ctx.db.set_app_value(app, "enabled", "yes")
        ctx.out.line(f"{app} enabled")
    return 0


# --- theming -------------------------------------------------------------------------------

THEMING_KEYS = ["name", "url", "imprintUrl", "privacyUrl", "slogan", "color", "primary_color",
                "background_color", "disable-user-theming"]
THEMING_IMAGE_KEYS = ["background", "logo", "favicon", "logoheader"]


def _theming_set(store: Store, key: str, value: str | None) -> None:
    if value is None:
        store.delete_app_value("theming", key)
    else:
        store.set_app_value("theming", key, value)
    buster = store.app_value("theming", "cachebuster")
    store.set_app_value("theming", "cachebuster", str(int(buster.value if buster else "0") + 1))


@command("theming:config")
def theming_config(ctx: Ctx) -> int:
    key, value = ctx.arg("key"), ctx.arg("value")

    def get(k: str) -> str:
        v = ctx.db.app_value("theming", k)
        return v.value if v else ""

    if key is None:
        ctx.out.line("Current theming config:")
        for k in THEMING_KEYS:
            ctx.out.line(f"- {k}: {get(k)}")
        for k in THEMING_IMAGE_KEYS:
            ctx.out.line(f"- {k}: {get(k + 'Mime')}")
        return 0
    if key not in THEMING_KEYS and key not in THEMING_IMAGE_KEYS:
        ctx.out.line("Invalid config key provided")
        return 1
    if ctx.opt("reset"):
        _theming_set(ctx.db, key, None)
        ctx.out.line(f"Reset {key} to {catalog.THEMING_DEFAULTS.get(key, '')}")
        return 0
    if value is None:
        current = get(key)
        ctx.out.line(f"{key} is currently set to {current}" if current
                     else f"{key} is currently not set")
        return 0
    if key in THEMING_IMAGE_KEYS:
        if not value.startswith("/"):
            ctx.out.line(f"The image file needs to be provided as an absolute path: {value}.")
            return 1
        if not Path(value).is_file():
            ctx.out.line(f"The image file needs to be provided as an absolute path: {value}.")
            return 1
        _theming_set(ctx.db, key + "Mime", "image/" + Path(value).suffix.lstrip(".").lower())
        ctx.out.line(f"Updated {key} to {value}")
        return 0
    if key == "color":
        ctx.out.line('Using "color" is deprecated, use "primary_color" instead')
        key = "primary_color"
    if key == "primary_color" and not re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value):
        ctx.out.line(f"The given color is invalid: {value}")
        return 1
    _theming_set(ctx.db, key, value)
    ctx.out.line(f"Updated {key} to {value}")
    return 0


# --- users and groups ----------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 10  # password_policy's default minimum length


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StandinError(
            f"Password needs to be at least {MIN_PASSWORD_LENGTH} characters long.")


def _env_password(ctx: Ctx) -> str | None:
    return ctx.env.get("NC_PASS") or ctx.env.get("OC_PASS") or None


def _login_date(value: str | None) -> str:
    """``user:info``'s formatting of first/last login (0 = never)."""
    if not value or value == "0":
        return "never"
    stamp = time.gmtime(int(value))
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", stamp)


def _user_data(ctx: Ctx, user: dict[str, Any]) -> dict[str, Any]:
    """Key order of the captured ``user:info --output=json``."""
    uid = user["uid"]
    base = str(ctx.system.get("overwrite.cli.url") or "http://localhost").rstrip("/")
    datadir = str(ctx.system.get("datadirectory") or ctx.root / "data")
    try:
        usage = shutil.disk_usage(datadir)
        free, total = usage.free, usage.free
    except OSError:
        free = total = 0
    return {
        "user_id": uid,
        "display_name": user["displayname"],
        "email": ctx.db.pref(uid, "settings", "email") or "",
        "cloud_id": f"{uid}@{base}",
        "enabled": ctx.db.pref(uid, "core", "enabled") != "false",
        "groups": ctx.db.user_groups(uid),
        "quota": "none",
        "storage": {"free": free, "used": 0, "total": total, "relative": 0, "quota": -3},
        "first_seen": _login_date(ctx.db.pref(uid, "login", "firstLogin")),
        "last_seen": _login_date(ctx.db.pref(uid, "login", "lastLogin")),
        "user_directory": f"{datadir}/{uid}",
        "backend": user.get("backend", "Database"),
    }


@command("user:add")
def user_add(ctx: Ctx) -> int:
    uid = ctx.arg("uid")
    if ctx.db.user(uid):
        raise CommandFailed(f'The account "{uid}" already exists.')
    if ctx.opt("password-from-env"):
        password = _env_password(ctx)
        if not password:
            ctx.out.line("--password-from-env given, but NC_PASS/OC_PASS is empty!")
            return 1
    elif ctx.opt("generate-password"):
        password = _random(20)
    else:
        ctx.out.line("Interactive input or --password-from-env or --generate-password is needed "
                     "for setting a password!")
        return 1
    try:
        _check_password(password)
    except StandinError as e:
        ctx.out.line(str(e))
        return 1
    ctx.db.add_user(uid, password)
    ctx.out.line(f'The account "{uid}" was created successfully')
    if ctx.opt("display-name"):
        ctx.db.set_display_name(uid, ctx.opt("display-name"))
        ctx.out.line(f'Display name set to "{ctx.opt("display-name")}"')
    for gid in ctx.opt("group") or []:
        if not ctx.db.group(gid):
            ctx.db.add_group(gid)
            ctx.out.line(f'Created group "{gid}"')
        ctx.db.add_member(gid, uid)
        ctx.out.line(f'Account "{uid}" added to group "{gid}"')
    email = ctx.opt("email")
    if email:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            ctx.out.line(f'The given email address "{email}" is invalid. '
                         "Email not set for the user.")
            return 1
        ctx.db.set_pref(uid, "settings", "email", email)
        ctx.out.line(f'Email address set to "{email}"')
    return 0


@command("user:list")
def user_list(ctx: Ctx) -> int:
    users = ctx.db.users()
    if ctx.opt("disabled"):
        users = [u for u in users if ctx.db.pref(u["uid"], "core", "enabled") == "false"]
    offset, limit = int(ctx.opt("offset") or 0), int(ctx.opt("limit") or 500)
    users = users[offset:offset + limit]
    if ctx.opt("info"):
        data: dict[str, Any] = {u["uid"]: _user_data(ctx, u) for u in users}
    else:
        data = {u["uid"]: u["displayname"] for u in users}
    write_array(ctx.out, ctx.fmt, data or [])
    return 0


@command("user:info")
def user_info(ctx: Ctx) -> int:
    user = ctx.user(ctx.arg("user"), "user not found")
    write_array(ctx.out, ctx.fmt, _user_data(ctx, user))
    return 0


@command("user:delete")
def user_delete(ctx: Ctx) -> int:
    user = ctx.user(ctx.arg("uid"), "User does not exist")
    ctx.db.delete_user(user["uid"])
    ctx.out.line("The specified user was deleted")
    return 0


@command("user:disable", "user:enable")
def user_enable(ctx: Ctx) -> int:
    user = ctx.user(ctx.arg("uid"), "User does not exist")
    enable = ctx.inp.command.name == "user:enable"
    ctx.db.set_pref(user["uid"], "core", "enabled", "true" if enable else "false")
    ctx.out.line(f"The specified user is {'enabled' if enable else 'disabled'}")
    return 0


@command("user:resetpassword")
def user_resetpassword(ctx: Ctx) -> int:
    user = ctx.user(ctx.arg("user"), "User does not exist")
    if not ctx.opt("password-from-env"):
        ctx.out.line("Interactive input or --password-from-env is needed for entering "
                     "a new password!")
        return 1
    password = _env_password(ctx)
    if not password:
        ctx.out.line("--password-from-env given, but NC_PASS/OC_PASS is empty!")
        return 1
    try:
        _check_password(password)
    except StandinError as e:
        ctx.out.line(f"Error while resetting password! {e}")
        return 1
    ctx.db.set_password(user["uid"], password)
    ctx.out.line(f"Successfully reset password for {user['uid']}")
    return 0


@command("group:add")
def group_add(ctx: Ctx) -> int:
    gid = ctx.arg("groupid")
    if ctx.db.group(gid):
        raise CommandFailed(f'Group "{gid}" already exists.')
    ctx.db.add_group(gid, (ctx.opt("display-name") or "").strip() or None)
    ctx.out.line(f'Created group "{gid}"')
    return 0


@command("group:list")
def group_list(ctx: Ctx) -> int:
    search = (ctx.arg("searchstring") or "").lower()
    groups = [g for g in ctx.db.groups() if search in g["gid"].lower()]
    offset, limit = int(ctx.opt("offset") or 0), int(ctx.opt("limit") or 500)
    data: dict[str, Any] = {}
    for g in groups[offset:offset + limit]:
        users = ctx.db.group_users(g["gid"])
        data[g["gid"]] = ({"displayName": g["displayname"], "backends": ["Database"],
                           "users": users} if ctx.opt("info") else users)
    write_array(ctx.out, ctx.fmt, data or [])
    return 0


@command("group:adduser", "group:removeuser")
def group_member(ctx: Ctx) -> int:
    group = ctx.group(ctx.arg("group"), "group not found")
    for uid in ctx.arg("user"):
        user = ctx.user(uid, "user not found")
        if ctx.inp.command.name == "group:adduser":
            ctx.db.add_member(group["gid"], user["uid"])
        else:
            ctx.db.run("DELETE FROM oc_group_user WHERE gid = ? AND uid = ?",
                       group["gid"], user["uid"])
    return 0


@command("group:delete")
def group_delete(ctx: Ctx) -> int:
    gid = ctx.arg("groupid")
    if gid == "admin":
        ctx.out.line("Group \"admin\" could not be deleted.")
        return 1
    if not ctx.db.group(gid):
        ctx.out.line(f'Group "{gid}" does not exist.')
        return 1
    ctx.db.run("DELETE FROM oc_groups WHERE gid = ?", gid)
    ctx.db.run("DELETE FROM oc_group_user WHERE gid = ?", gid)
    ctx.out.line(f'Group "{gid}" was removed')
    return 0


# --- notifications -------------------------------------------------------------------------


@command("notification:generate")
def notification_generate(ctx: Ctx) -> int:
    """Stores nothing but a counter: the stand-in has no notification UI."""
    uid = ctx.arg("user-id")
    if not ctx.db.user(uid):
        ctx.out.line("Unknown user")
        return 1
    last = ctx.db.app_value("notifications", "standin_last_id")
    new_id = int(last.value if last else "0") + 1
    ctx.db.set_app_value("notifications", "standin_last_id", str(new_id))
    ctx.out.line(str(new_id) if ctx.opt("output-id-only") else f"Notification with ID {new_id}")
    return 0


# --- announcementcenter (commands from its source, not captured; see announcements.py) ------


def _timestamp(value: Any) -> int | None:
    """``Announce::parseTimestamp`` for numbers (strtotime forms are not supported here)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise StandinError(f"Could not interprete time '{text}' (stand-in: unix time only)")
    if int(text) < time.time():
        raise StandinError(f"Time '{text}' is not allowed, because it's in the past")
    return int(text)


@command("announcementcenter:announce")
def announcement_announce(ctx: Ctx) -> int:
    from . import announcements

    author = ctx.arg("user")
    if not ctx.db.user(author):
        ctx.out.line(f"User <{author}> in unknown.")
        return 1
    try:
        schedule = _timestamp(ctx.opt("schedule-time"))
        delete_time = _timestamp(ctx.opt("delete-time"))
    except StandinError as e:
        ctx.out.line(str(e))
        return 2
    if schedule is not None:
        raise StandinError("stand-in: --schedule-time is not implemented")
    subject = str(ctx.arg("subject")).strip()
    if not subject or len(subject) > 512:
        raise StandinError("Invalid subject")
    announcements.expire(ctx.db)
    aid = announcements.announce(ctx.db, author, subject, str(ctx.arg("message")),
                                 list(ctx.opt("group") or ["everyone"]),
                                 bool(ctx.opt("notifications")), delete_time)
    ctx.out.line(f"Created announcement #{aid}: {subject}")
    if delete_time:
        ctx.out.line("Scheduled deletion for '"
                     + time.strftime("%a %b %-d %-H:%M:%S UTC %Y", time.gmtime(delete_time)) + "'")
    return 0


@command("announcementcenter:delete")
def announcement_delete(ctx: Ctx) -> int:
    from . import announcements

    raw = str(ctx.arg("id"))
    if not raw.isdigit():
        ctx.out.line(f'Id "{raw}" is not an integer')
        return 1
    if not announcements.delete(ctx.db, int(raw)):
        ctx.out.line(f"Announcement with #{int(raw)} does not exist!")
        return 1
    ctx.out.line(f"Successfully deleted #{int(raw)}")
    return 0


@command("announcementcenter:remove-notifications")
def announcement_remove_notifications(ctx: Ctx) -> int:
    from . import announcements

    announcements.ensure_schema(ctx.db)
    ctx.db.run("DELETE FROM oc_notifications WHERE app = ? AND object_id = ?",
               "announcementcenter", str(ctx.arg("id")))
    return 0


@command("announcementcenter:list")
def announcement_list(ctx: Ctx) -> int:
    from . import announcements

    raw = str(ctx.arg("limit"))
    if not raw.lstrip("-").isdigit():
        ctx.out.line(f'"{raw}" is not numeric')
        return 1
    limit = int(raw)
    announcements.expire(ctx.db)
    ids = [int(a) for (a,) in ctx.db.rows(
        "SELECT announcement_id FROM oc_announcements ORDER BY announcement_time DESC, "
        "announcement_id DESC")]
    width = 80
    widths = [4, max(10, (width - 6) // 3), max(10, width - 6 - max(10, (width - 6) // 3))]

    def row(texts: list[str], sep: str = " ") -> str:
        cells = []
        for text, w in zip(texts, widths, strict=True):
            text = text.replace("\r", " ").replace("\n", " ").ljust(w, sep)
            cells.append(text[: w - 2] + " …" if len(text) > w else text)
        return "|".join(cells)

    ctx.out.line(row(["ID", "Subject", "Message"]))
    ctx.out.line(row(["", "", ""], "-"))
    for index, aid in enumerate(ids[: limit + 1]):
        if index == limit:
            ctx.out.line("And more ...")
            break
        a = announcements.get(ctx.db, aid) or {}
        ctx.out.line(row([str(aid), str(a.get("subject", "")), str(a.get("message", ""))]))
    return 0


# --- app passwords ---------------------------------------------------------------------------


@command("user:auth-tokens:add")
def auth_token_add(ctx: Ctx) -> int:
    """An app password for a user (core ``AuthTokens\\Add``; output approximated)."""
    user = ctx.user(ctx.arg("user"), "user not found")
    token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(72))
    ctx.db.add_app_password(user["uid"], token, str(ctx.opt("name") or "cli"))
    ctx.out.line("app password:")
    ctx.out.line(token)
    return 0


# --- user_oidc -----------------------------------------------------------------------------

# option name -> settings key (user_oidc 8.10 UpsertProvider::EXTRA_OPTIONS / ProviderService)
OIDC_SETTINGS = {
    "mapping-display-name": "mappingDisplayName", "mapping-email": "mappingEmail",
    "mapping-quota": "mappingQuota", "mapping-uid": "mappingUid",
    "mapping-groups": "mappingGroups", "mapping-address": "mappingAddress",
    "mapping-street_address": "mappingStreetaddress", "mapping-postal_code": "mappingPostalcode",
    "mapping-locality": "mappingLocality", "mapping-region": "mappingRegion",
    "mapping-country": "mappingCountry", "mapping-website": "mappingWebsite",
    "mapping-avatar": "mappingAvatar", "mapping-twitter": "mappingTwitter",
    "mapping-fediverse": "mappingFediverse", "mapping-organisation": "mappingOrganisation",
    "mapping-role": "mappingRole", "mapping-headline": "mappingHeadline",
    "mapping-biography": "mappingBiography", "mapping-phone": "mappingPhonenumber",
    "mapping-gender": "mappingGender", "mapping-pronouns": "mappingPronouns",
    "mapping-birthdate": "mappingBirthdate", "mapping-language": "mappingLanguage",
    "mapping-locale": "mappingLocale", "unique-uid": "uniqueUid",
    "check-bearer": "checkBearer", "send-id-token-hint": "sendIdTokenHint",
    "bearer-provisioning": "bearerProvisioning", "extra-claims": "extraClaims",
    "group-provisioning": "groupProvisioning", "group-whitelist-regex": "groupWhitelistRegex",
    "group-restrict-login-to-whitelist": "restrictLoginToGroups",
    "resolve-nested-claims": "nestedAndFallbackClaims", "entraid-group-names": "azureGroupNames",
}
OIDC_BOOL_DEFAULTS = {
    "uniqueUid": True, "checkBearer": False, "sendIdTokenHint": False,
    "bearerProvisioning": False, "providerBasedId": False, "groupProvisioning": False,
    "restrictLoginToGroups": False, "nestedAndFallbackClaims": False, "azureGroupNames": False,
}
# key order of the captured ``user_oidc:providers --output=json`` (user_oidc 8.10.1)
OIDC_SETTING_ORDER = [
    "mappingDisplayName", "mappingEmail", "mappingQuota", "mappingUid", "mappingGroups",
    "mappingLanguage", "mappingLocale", "mappingAddress", "mappingStreetaddress",
    "mappingPostalcode", "mappingLocality", "mappingRegion", "mappingCountry", "mappingWebsite",
    "mappingAvatar", "mappingTwitter", "mappingFediverse", "mappingOrganisation", "mappingRole",
    "mappingHeadline", "mappingBiography", "mappingPhonenumber", "mappingGender",
    "mappingPronouns", "mappingBirthdate", "uniqueUid", "checkBearer", "sendIdTokenHint",
    "bearerProvisioning", "extraClaims", "providerBasedId", "groupProvisioning",
    "groupWhitelistRegex", "restrictLoginToGroups", "azureGroupNames", "nestedAndFallbackClaims",
]
SECRET_MASK = "********"  # noqa: S105 (what the captured list shows)
PROVIDER_FIELDS = {"clientid": "client_id", "discoveryuri": "discovery_endpoint",
                   "endsessionendpointuri": "end_session_endpoint",
                   "postlogouturi": "post_logout_uri", "scope": "scope"}


def provider_settings(store: Store, provider_id: int) -> dict[str, Any]:
    """The provider's settings as ``user_oidc:providers`` shows them (booleans typed)."""
    values = store.app_values("user_oidc").get("user_oidc", {})
    settings: dict[str, Any] = {}
    for key in OIDC_SETTING_ORDER:
        row = values.get(f"provider-{provider_id}-{key}")
        raw = row.value if row else ""
        if key in OIDC_BOOL_DEFAULTS:
            settings[key] = raw in ("1", "true") if raw != "" else OIDC_BOOL_DEFAULTS[key]
        else:
            settings[key] = raw
    return settings


def _provider_json(store: Store, p: dict[str, Any], sensitive: bool = False,
                   with_secret: bool = True) -> dict[str, Any]:
    discovery = p["discovery_endpoint"]
    if sensitive:
        discovery = re.sub(r"^(\w+://)[^/]+", r"\1****", discovery or "")
    doc: dict[str, Any] = {
        "id": int(p["id"]), "identifier": p["identifier"],
        "clientId": "****" if sensitive else p["client_id"],
        "discoveryEndpoint": discovery, "endSessionEndpoint": p["end_session_endpoint"],
        "postLogoutUri": p["post_logout_uri"], "scope": p["scope"],
    }
    if with_secret:  # the list masks it; the show of one provider leaves it out
        doc["clientSecret"] = SECRET_MASK
    doc["settings"] = provider_settings(store, int(p["id"]))
    return doc


def _client_secret(ctx: Ctx) -> str | None:
    if ctx.opt("clientsecret-file") is not None:
        try:
            return Path(ctx.opt("clientsecret-file")).read_text(encoding="utf-8").strip()
        except OSError:
            raise StandinError("Could not read the client secret file") from None
    if ctx.opt("clientsecret-env") is not None:
        value = ctx.env.get(ctx.opt("clientsecret-env"))
        if value is None:
            raise StandinError("The client secret environment variable is not set")
        return value
    secret = ctx.opt("clientsecret")
    return str(secret) if secret is not None else None


@command("user_oidc:provider")
def oidc_provider(ctx: Ctx) -> int:
    identifier = ctx.arg("identifier")
    fmt = ctx.fmt
    if identifier is None:
        providers = ctx.db.providers()
        if fmt in ("json", "json_pretty"):
            rows = [{k: v for k, v in _provider_json(ctx.db, p).items() if k != "settings"}
                    for p in providers]
            ctx.out.line(php_json(rows, pretty=fmt == "json_pretty"))
        elif not providers:
            ctx.out.line("No providers configured")
        else:
            table(ctx.out, ["ID", "Identifier", "Discovery endpoint", "Client ID"],
                  [[str(p["id"]), p["identifier"], p["discovery_endpoint"] or "",
                    p["client_id"] or ""] for p in providers])
        return 0
    updating = [o for o in ("clientid", "clientsecret", "clientsecret-file", "clientsecret-env",
                            "discoveryuri", "endsessionendpointuri", "postlogouturi", "scope",
                            *OIDC_SETTINGS) if ctx.opt(o) is not None]
    existing = ctx.db.provider(identifier)
    if not updating:
        if existing is None:
            ctx.out.line("Provider not found")
            return 255
        data = _provider_json(ctx.db, existing, with_secret=False)
        if fmt in ("json", "json_pretty"):
            ctx.out.line(php_json(data, pretty=fmt == "json_pretty"))
        else:
            data["settings"] = php_json(data["settings"])
            table(ctx.out, list(data), [[php_string(v) for v in data.values()]])
        return 0
    try:
        secret = _client_secret(ctx)
    except StandinError as e:
        ctx.out.line(str(e))
        return 255
    if existing is None:
        if ctx.opt("clientid") is None or secret is None or ctx.opt("discoveryuri") is None:
            ctx.out.line("Provider must be created. All provider parameters required.")
            return 255
        existing = {"id": None, "identifier": identifier, "scope": "openid email profile"}
    for option, column in PROVIDER_FIELDS.items():
        if ctx.opt(option) is not None:
            existing[column] = ctx.opt(option)
    if secret is not None:
        existing["client_secret"] = secret
    if ctx.opt("clientsecret-env") is not None:
        ctx.out.line(f'Client secret loaded from environment variable "{ctx.opt("clientsecret-env")}"')
    provider_id = ctx.db.save_provider(existing)
    for key in ("jwksCache", "jwksCacheTimestamp"):
        ctx.db.set_app_value("user_oidc", f"provider-{provider_id}-{key}", "", STRING, True)
    for option, key in OIDC_SETTINGS.items():
        if ctx.opt(option) is not None:
            ctx.db.set_app_value("user_oidc", f"provider-{provider_id}-{key}",
                                 str(ctx.opt(option)), STRING, True)
    return 0


@command("user_oidc:providers")
def oidc_providers(ctx: Ctx) -> int:
    providers = [_provider_json(ctx.db, p, bool(ctx.opt("sensitive")))
                 for p in ctx.db.providers()]
    # one JSON object per provider and line, as captured; pretty-printed without --output
    for p in providers:
        ctx.out.line(php_json(p, pretty=ctx.fmt != "json"))
    return 0


@command("user_oidc:provider:delete")
def oidc_provider_delete(ctx: Ctx) -> int:
    provider = ctx.db.provider(ctx.arg("identifier"))
    if provider is None:
        ctx.out.line("Provider not found.")
        return 255
    if ctx.opt("force"):  # without --force occ asks; with no terminal the answer is "no"
        ctx.db.delete_provider(int(provider["id"]))
        ctx.out.line(f'"{provider["identifier"]}" has been deleted.')
    return 0


# --- list / help ---------------------------------------------------------------------------


@command("list")
def list_commands(ctx: Ctx) -> int:
    from .occ import REFERENCE_RAW, available_commands

    names = [n for n in available_commands(ctx.system, ctx.store)
             if not n.startswith("_")]
    ns = ctx.arg("namespace")
    if ns:
        names = [n for n in names if n.startswith(ns + ":")]
    if ctx.opt("format") == "json":
        raw = [c for c in REFERENCE_RAW["commands"] if c["name"] in names]
        ctx.out.line(php_json({"application": REFERENCE_RAW["application"], "commands": raw}))
        return 0
    ctx.out.line(f"{PRODUCT} {VERSION_STRING}")
    ctx.out.line("")
    ctx.out.line("Available commands:")
    for n in sorted(names):
        ctx.out.line(f"  {n}")
    return 0


def help_text(cmd: CommandDef) -> str:
    args = "".join(f"\n  {a.name}" for a in cmd.arguments)
    return (f"Usage:\n  {cmd.synopsis().replace(' [--] <command>', ' [--]')}\n"
            + (f"\nArguments:{args}\n" if args else "")
            + "\n(Nextcloud stand-in, test double: help texts are not part of the reference)")


@command("help")
def help_command(ctx: Ctx) -> int:
    from .console import find_command
    from .occ import available_commands

    cmd = find_command(available_commands(ctx.system, ctx.store), ctx.arg("command_name"))
    ctx.out.line(help_text(cmd))
    return 0


__all__ = ["HANDLERS", "Argument", "Ctx", "install_definition", "status_values"]
