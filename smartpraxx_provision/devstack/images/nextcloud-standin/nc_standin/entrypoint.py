"""Entrypoint of the Nextcloud stand-in image (test double), after the official image's
``entrypoint.sh``.

For ``apache2-foreground`` (the default command) or ``php-fpm``: prepare the data volume
``/var/www/html``, drop to www-data, and on a new instance (no ``version.php`` in the volume)
install from the environment: ``NEXTCLOUD_ADMIN_USER``/``_PASSWORD``, ``MYSQL_HOST``/
``_DATABASE``/``_USER``/``_PASSWORD`` (or ``SQLITE_DATABASE``), ``NEXTCLOUD_DATA_DIR``,
``NEXTCLOUD_TRUSTED_DOMAINS``; every ``X`` also as ``X_FILE``. The install runs
``occ maintenance:install`` with bounded retries; when it keeps failing the container logs
"Installing of nextcloud failed!" and exits 1. As in the official image, ``version.php`` is
written before the install, so a failed install is NOT retried on the next start with the
same volume. Then the HTTP server runs in the foreground. Any other command is exec'd.

Stand-in knobs (not in the official image): ``NEXTCLOUD_STANDIN_INSTALL_RETRIES`` (default
10, like the official image) and ``NEXTCLOUD_STANDIN_INSTALL_DELAY`` seconds (default 3; the
official image sleeps 10 s).
"""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import time
from pathlib import Path

from . import BANNER, VERSION, occ, server

ROOT = Path("/var/www/html")
FILE_ENV = ["NEXTCLOUD_ADMIN_USER", "NEXTCLOUD_ADMIN_PASSWORD", "MYSQL_DATABASE", "MYSQL_USER",
            "MYSQL_PASSWORD", "REDIS_HOST_PASSWORD"]
WWW_DATA = 33


def log(line: str) -> None:
    print(line, flush=True)


def _sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def installed_version(root: Path) -> str | None:
    f = root / "version.php"
    if not f.is_file():
        return None
    m = re.search(r"\$OC_Version\s*=\s*array\(([\d,\s]+)\)", f.read_text(encoding="utf-8"))
    unknown = "0.0.0.0"  # noqa: S104 (a version number, not an address)
    return ".".join(p.strip() for p in m.group(1).split(",")) if m else unknown


def prepare_volume(root: Path) -> None:
    """What the official image's rsync puts into a new volume (here: stand-in markers)."""
    for sub in ("config", "data", "custom_apps", "themes"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "occ").write_text(
        "#!/usr/bin/env php\n<?php\n// Nextcloud STAND-IN (test double): run `php occ ...`; "
        "the stand-in's php only runs this file.\n", encoding="utf-8")
    parts = ", ".join(VERSION.split("."))
    (root / "version.php").write_text(
        f"<?php\n// Nextcloud STAND-IN (test double)\n$OC_Version = array({parts});\n"
        f"$OC_VersionString = '{VERSION.rsplit('.', 1)[0]}';\n", encoding="utf-8")
    if os.geteuid() == 0:
        for path in [root, *root.rglob("*")]:
            os.chown(path, WWW_DATA, WWW_DATA, follow_symlinks=False)


def install_options(env: dict[str, str]) -> list[str] | None:
    """``maintenance:install`` options from the environment, or None (no install)."""
    opts = ["-n", "--admin-user", env["NEXTCLOUD_ADMIN_USER"],
            "--admin-pass", env["NEXTCLOUD_ADMIN_PASSWORD"]]
    if env.get("NEXTCLOUD_DATA_DIR"):
        opts += ["--data-dir", env["NEXTCLOUD_DATA_DIR"]]
    if "SQLITE_DATABASE" in env:
        log("Installing with SQLite database")
        return [*opts, "--database", "sqlite", "--database-name", env["SQLITE_DATABASE"]]
    mysql = ("MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_HOST")
    if all(k in env for k in mysql):
        log("Installing with MySQL database")
        return [*opts, "--database", "mysql", "--database-name", env["MYSQL_DATABASE"],
                "--database-user", env["MYSQL_USER"], "--database-pass", env["MYSQL_PASSWORD"],
                "--database-host", env["MYSQL_HOST"]]
    if "POSTGRES_DB" in env:
        log("Installing with PostgreSQL database")
        log("The Nextcloud stand-in (test double) supports MySQL/MariaDB and SQLite only.")
    return None


def resolve_file_env(env: dict[str, str]) -> dict[str, str]:
    """``file_env`` of the official entrypoint for every ``X``/``X_FILE`` pair."""
    for name in FILE_ENV:
        if env.get(name) and env.get(name + "_FILE"):
            raise ValueError(f"both {name} and {name}_FILE are set (but are exclusive)")
        if env.get(name + "_FILE"):
            env[name] = Path(env[name + "_FILE"]).read_text(encoding="utf-8").strip()
    return env


def run_occ(args: list[str], env: dict[str, str], root: Path) -> int:
    return occ.main(args, root, env, io.StringIO(), sys.stdout, sys.stderr)


def first_start(root: Path, env: dict[str, str]) -> int:
    """The install part of the official entrypoint. Returns non-zero when it failed."""
    log(f"Initializing nextcloud {VERSION} ...")
    prepare_volume(root)
    log("New nextcloud instance")
    if not (env.get("NEXTCLOUD_ADMIN_USER") and "NEXTCLOUD_ADMIN_PASSWORD" in env):
        log("Please run the web-based installer on first connect!")
        return 0
    opts = install_options(env)
    if opts is None:
        log("Please run the web-based installer on first connect!")
        return 0
    log("Starting nextcloud installation")
    retries = int(env.get("NEXTCLOUD_STANDIN_INSTALL_RETRIES", "10"))
    delay = float(env.get("NEXTCLOUD_STANDIN_INSTALL_DELAY", "3"))
    attempt = 0
    while run_occ(["maintenance:install", *opts], env, root) != 0:
        attempt += 1
        if attempt > retries:
            log("Installing of nextcloud failed!")
            return 1
        log("Retrying install...")
        time.sleep(delay)
    domains = env.get("NEXTCLOUD_TRUSTED_DOMAINS")
    if domains is not None:
        log("Setting trusted domains…")
        for i, domain in enumerate(domains.split(), 1):
            run_occ(["config:system:set", "trusted_domains", str(i), f"--value={domain}"],
                    env, root)
    return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    cmd = argv or ["apache2-foreground"]
    if not (cmd[0].startswith("apache") or cmd[0] == "php-fpm"
            or os.environ.get("NEXTCLOUD_UPDATE") == "1"):
        os.execvp(cmd[0], cmd)  # noqa: S606 (exec the requested command, like exec "$@")
    log(BANNER)
    try:
        env = resolve_file_env(dict(os.environ))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    httpd = server.make_server(ROOT)  # bound as root, listening only once initialised
    if os.geteuid() == 0:
        ROOT.mkdir(parents=True, exist_ok=True)
        os.chown(ROOT, WWW_DATA, WWW_DATA)
        os.setgroups([])
        os.setgid(WWW_DATA)
        os.setuid(WWW_DATA)
    if installed_version(ROOT) is None:
        if first_start(ROOT, env) != 0:
            return 1
        log("Initializing finished")
    server.serve(httpd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
