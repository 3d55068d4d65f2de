"""The local, real Keycloak server of the embedded stack (``dev-stack up``) and the test tier.

Layout (everything outside the repository):

* ``<cache_dir>/keycloak-<version>/`` — the unpacked ``org.keycloak:keycloak-quarkus-dist`` zip,
  shared and never written to. The zip comes from ``~/.m2`` (``mvn dependency:get`` fetches it
  on a fresh machine).
* ``<state_dir>/keycloak/server/`` — a per-state-dir server directory: ``bin``, ``conf``,
  ``themes``, ``providers`` and the small ``lib/quarkus`` parts are copied (Keycloak's dev mode
  re-augments ``lib/quarkus`` on start), the 160 MB ``lib/lib`` is a symlink into the cache.
  Its ``data/`` holds the dev-file H2 database, so the database lives next to the secret store
  that holds the bootstrap admin's password (``platform/keycloak-admin``): wiping one without
  the other is detected and reported.
* ``<state_dir>/keycloak/keycloak.log`` and ``keycloak.pid``.

The server runs ``kc.sh start-dev`` on ``127.0.0.1:<keycloak_port>`` in its own session,
with a JDK >= 21 and a bounded heap. The admin password travels only through the environment
(``KC_BOOTSTRAP_ADMIN_PASSWORD``), never argv or a log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from ..adapters.keycloak import ADMIN_SECRET, admin_login_ok, admin_secret
from ..config import Settings, replace
from ..errors import ConflictError, ServiceUnavailableError
from ..output import Reporter
from ..secrets import SecretStore, open_secret_store
from .service import Service, exited_during_start, port_open, spawn, wait_until

UP = "smartpraxx-provision dev-stack up"
HEAP_OPTS = "-Xms64m -Xmx768m"
STARTUP_TIMEOUT = 300.0  # seconds; a cold first start (augmentation + schema) takes ~30-60 s
POLL_INTERVAL = 1.0
STOP_TIMEOUT = 30.0
MIN_JAVA = 21
_COPIED = ("bin", "conf", "themes", "providers", "version.txt")
_COPIED_LIB = ("app", "quarkus", "quarkus-run.jar")


@dataclass(frozen=True)
class KeycloakInfo:
    url: str
    admin_user: str
    pid: int | None
    started: bool  # True when this call started the server


# --- paths ----------------------------------------------------------------------------


def keycloak_home(settings: Settings) -> Path:
    """The local Keycloak of this state dir: its server folder, pid file and log."""
    return settings.state_dir / "keycloak"


def server_dir(settings: Settings) -> Path:
    """The server this state dir runs: small parts copied from the cached distribution, the
    jars symlinked to it (``prepare_server_dir``), and its own ``data/``."""
    return keycloak_home(settings) / "server"


def data_dir(settings: Settings) -> Path:
    """The server's H2 database (mode 0700): realms, users, the admin's password hash."""
    return server_dir(settings) / "data"


def local_url(settings: Settings) -> str:
    """Where the tool reaches this Keycloak: loopback only."""
    return f"http://127.0.0.1:{settings.keycloak_port}"


def dist_dir(settings: Settings) -> Path:
    """The unpacked distribution from Maven Central, one per version, shared by state dirs."""
    return settings.cache_dir / f"keycloak-{settings.keycloak_version}"


def _m2_zip(version: str) -> Path:
    return (
        Path.home()
        / ".m2/repository/org/keycloak/keycloak-quarkus-dist"
        / version
        / f"keycloak-quarkus-dist-{version}.zip"
    )


def _database_exists(settings: Settings) -> bool:
    h2 = data_dir(settings) / "h2"
    return h2.is_dir() and any(h2.glob("keycloakdb*"))


# --- Java -----------------------------------------------------------------------------


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    if not release.is_file() or not (java_home / "bin" / "java").exists():
        return None
    for line in release.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("JAVA_VERSION="):
            version = line.split("=", 1)[1].strip().strip('"')
            head = version.split(".")[0]
            if head == "1":  # 1.8-style
                head = version.split(".")[1]
            try:
                return int(head)
            except ValueError:
                return None
    return None


def find_java_home(settings: Settings) -> Path:
    """settings.java_home when set (must be >= 21), else the newest JDK >= 21 in /usr/lib/jvm."""
    if settings.java_home:
        home = Path(settings.java_home)
        major = _java_major(home)
        if major is None or major < MIN_JAVA:
            raise ServiceUnavailableError(
                f"java_home {home} is not a JDK >= {MIN_JAVA} (found {major or 'none'})",
                obj="setting java_home",
                hint=f"point java_home at a JDK {MIN_JAVA}+ or leave it empty to auto-detect",
            )
        return home
    candidates: list[tuple[int, str, Path]] = []
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        for entry in jvm.iterdir():
            if entry.is_symlink():
                continue
            major = _java_major(entry)
            if major is not None and major >= MIN_JAVA:
                candidates.append((major, entry.name, entry))
    if not candidates:
        raise ServiceUnavailableError(
            f"no JDK >= {MIN_JAVA} found in /usr/lib/jvm (Keycloak 26 needs Java {MIN_JAVA}+)",
            obj="java",
            hint="install one (e.g. 'apt-get install openjdk-21-jre-headless') "
            "or set java_home / SMARTPRAXX_JAVA_HOME",
        )
    return max(candidates)[2]


# --- distribution and server dir ------------------------------------------------------------


def ensure_distribution(settings: Settings, reporter: Reporter) -> Path:
    """The unpacked Keycloak distribution in the cache (unpacked once)."""
    target = dist_dir(settings)
    if (target / "bin" / "kc.sh").is_file():
        reporter.skip(f"Keycloak {settings.keycloak_version} distribution cached at {target}")
        return target
    archive = _m2_zip(settings.keycloak_version)
    if not archive.is_file():
        if shutil.which("mvn") is None:
            raise ServiceUnavailableError(
                f"Keycloak {settings.keycloak_version} is not in ~/.m2 and Maven is missing",
                obj=str(archive),
                hint=f"install Maven ('apt-get install maven'), then '{UP}'",
            )
        reporter.change(f"fetching org.keycloak:keycloak-quarkus-dist:{settings.keycloak_version}")
        artifact = f"org.keycloak:keycloak-quarkus-dist:{settings.keycloak_version}:zip"
        proc = subprocess.run(
            ["mvn", "-q", "dependency:get", f"-Dartifact={artifact}", "-Dtransitive=false"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0 or not archive.is_file():
            raise ServiceUnavailableError(
                f"mvn dependency:get {artifact} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-500:]}",
                obj=artifact,
                hint=f"check Maven's access to Maven Central, then '{UP}'",
            )
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    staging = settings.cache_dir / f".keycloak-{settings.keycloak_version}.unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    reporter.change(f"unpacking Keycloak {settings.keycloak_version} into {target}")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(staging)
        for info in zf.infolist():  # zipfile drops the exec bits
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                with contextlib.suppress(FileNotFoundError):
                    (staging / info.filename).chmod(mode)
    roots = [p for p in staging.iterdir() if p.is_dir()]
    if len(roots) != 1 or not (roots[0] / "bin" / "kc.sh").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceUnavailableError(
            f"{archive} does not look like a Keycloak distribution",
            obj=str(archive),
            hint=f"delete {archive} and re-run 'smartpraxx-provision dev-stack up'",
        )
    try:
        roots[0].rename(target)
    except OSError:
        if not (target / "bin" / "kc.sh").is_file():  # not a concurrent unpack that won
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def prepare_server_dir(settings: Settings, dist: Path, reporter: Reporter) -> Path:
    """Per-state-dir server directory (copied small parts + symlinked jars); keeps data/."""
    server = server_dir(settings)
    want = (dist / "version.txt").read_text(encoding="utf-8")
    marker = server / "version.txt"
    lib_link = server / "lib" / "lib"
    if (
        marker.is_file()
        and marker.read_text(encoding="utf-8") == want
        and lib_link.is_symlink()
        and lib_link.resolve() == (dist / "lib" / "lib").resolve()
    ):
        return server
    reporter.change(f"preparing Keycloak server dir {server}")
    server.mkdir(parents=True, exist_ok=True)
    for name in (*_COPIED, "lib"):
        path = server / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    copy_server(dist, server, dist)
    return server


def copy_server(src: Path, dest: Path, dist: Path) -> None:
    """Copy a server's small parts (:data:`_COPIED`, ``lib/`` but ``lib/lib``) from ``src``
    into the existing ``dest``; ``lib/lib`` (160 MB of jars) becomes a symlink into ``dist``."""
    for name in _COPIED:
        path = src / name
        if path.is_dir():
            shutil.copytree(path, dest / name, symlinks=True)
        elif path.is_file():
            shutil.copy2(path, dest / name)
    (dest / "lib").mkdir()
    for name in _COPIED_LIB:
        path = src / "lib" / name
        if path.is_dir():
            shutil.copytree(path, dest / "lib" / name, symlinks=True)
        else:
            shutil.copy2(path, dest / "lib" / name)
    (dest / "lib" / "lib").symlink_to(dist / "lib" / "lib", target_is_directory=True)


def secure_data_dir(settings: Settings) -> Path:
    """Keycloak's data dir holds the H2 database with the realms' plaintext client secrets:
    make it 0700 and nothing in it group/world accessible (existing files included; new ones
    are created under umask 077, see start)."""
    data = data_dir(settings)
    data.mkdir(parents=True, exist_ok=True)
    for root, _dirs, files in os.walk(data):
        os.chmod(root, 0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & 0o700)
    os.chmod(data, 0o700)
    return data


# --- process handling -------------------------------------------------------------------


def spawn_server(
    argv: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start the server detached, output appended to ``log_path``, with umask 077: the H2
    files Keycloak creates (client secrets in plain text) stay private to this user."""
    return spawn(argv, log_path, cwd=cwd, env=env, umask=0o077)


def _service(settings: Settings) -> Service:
    """The Keycloak of this state dir (its command line names the server dir)."""
    return Service(
        "Keycloak",
        home=keycloak_home(settings),
        stem="keycloak",
        markers=(str(server_dir(settings)),),
        stop_timeout=STOP_TIMEOUT,
        poll=0.25,
        kill_timeout=10.0,
    )


def _is_our_process(settings: Settings, pid: int) -> bool:
    """The pid is alive and is the Keycloak of this state dir (guards against pid reuse)."""
    return _service(settings).is_ours(pid)


def _our_pid(settings: Settings) -> int | None:
    return _service(settings).running_pid()


def _discovery_ok(url: str, timeout: float = 5.0) -> bool:
    try:
        resp = requests.get(
            f"{url}/realms/master/.well-known/openid-configuration", timeout=timeout
        )
    except requests.RequestException:
        return False
    return resp.status_code == 200 and "issuer" in resp.text


def _mismatch_error(settings: Settings, secret: str = ADMIN_SECRET) -> ConflictError:
    return ConflictError(
        f"the Keycloak database in {data_dir(settings)} does not accept the admin password "
        f"stored at secret {secret} (the secret store was replaced or wiped while the "
        "Keycloak data stayed)",
        obj=str(data_dir(settings)),
        hint=f"restore the secret store of {settings.state_dir}, or discard the local Keycloak "
        f"data: 'smartpraxx-provision dev-stack down' then remove {keycloak_home(settings)} "
        "and run 'smartpraxx-provision dev-stack up'",
    )


def hostname_args(settings: Settings) -> list[str]:
    """Keycloak's hostname options when browsers reach it elsewhere (the local TLS proxy).

    ``--hostname`` is the browser-facing URL, which stays the issuer; with
    ``--hostname-backchannel-dynamic`` token/JWKS/userinfo follow the host a backchannel
    request used (``idp-internal`` from a slot, ``127.0.0.1`` from this tool)."""
    public = settings.keycloak_public_url.rstrip("/")
    if public == local_url(settings):
        return []
    return [f"--hostname={public}", "--hostname-backchannel-dynamic=true"]


def _running_hostname_args(pid: int) -> list[str]:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
    return [a for a in argv if a.startswith("--hostname")]


def _restart_on_new_hostname(settings: Settings, reporter: Reporter) -> None:
    """Stop a running server of this state dir that was started with other hostname options."""
    running = _our_pid(settings)
    if running is not None and _running_hostname_args(running) != hostname_args(settings):
        reporter.change(
            f"restarting Keycloak (pid {running}): hostname options change to "
            f"{' '.join(hostname_args(settings)) or '(none)'}"
        )
        _terminate(settings, running)
        _service(settings).pid_file.unlink(missing_ok=True)


def _already_running(
    settings: Settings, reporter: Reporter, user: str, password: str, secret: str
) -> KeycloakInfo | None:
    """The server listening on the port when it is ours and takes the admin login; None when
    the port is free; raises when something else (or a server of another database) holds it."""
    url = local_url(settings)
    pid = _our_pid(settings)
    if not port_open(settings.keycloak_port):
        return None
    if _discovery_ok(url) and admin_login_ok(url, user, password):
        reporter.skip(f"Keycloak at {url} is running (pid {pid or 'unknown'}), admin login ok")
        return KeycloakInfo(url=url, admin_user=user, pid=pid, started=False)
    if pid is not None:
        if not _discovery_ok(url):
            # ours, but still starting: wait for it below
            _wait_until_up(settings, url, pid)
            if admin_login_ok(url, user, password):
                reporter.skip(f"Keycloak at {url} is running (pid {pid}), admin login ok")
                return KeycloakInfo(url=url, admin_user=user, pid=pid, started=False)
        raise _mismatch_error(settings, secret)
    raise ConflictError(
        f"port {settings.keycloak_port} on 127.0.0.1 is taken by a process that is not this "
        f"state dir's Keycloak (or one that refuses the admin user {user!r})",
        obj=f"127.0.0.1:{settings.keycloak_port}",
        hint="stop that process or choose another port (SMARTPRAXX_KEYCLOAK_PORT and "
        "SMARTPRAXX_KEYCLOAK_URL)",
    )


def _server_env(java_home: Path, user: str, password: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JAVA_OPTS", None)  # kc.sh would then ignore our heap bound
    env.update(
        {
            "JAVA_HOME": str(java_home),
            "JAVA_OPTS_KC_HEAP": HEAP_OPTS,
            # jboss-threads' thread-local reset needs this on Java >= 24 (else executor
            # threads die with IllegalAccessError)
            "JAVA_OPTS_APPEND": "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "KC_BOOTSTRAP_ADMIN_USERNAME": user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": password,
        }
    )
    return env


def _server_argv(settings: Settings, server: Path) -> list[str]:
    return [
        str(server / "bin" / "kc.sh"),
        "start-dev",
        "--http-host=127.0.0.1",
        f"--http-port={settings.keycloak_port}",
        # the jboss-logging event listener writes usernames of failed logins at WARN: staff
        # data stays in the realm's event store, not in this log
        "--log-level=info,org.keycloak.events:error",
        *hostname_args(settings),
    ]


def ensure_keycloak(
    settings: Settings, reporter: Reporter, *, secret: str = ADMIN_SECRET,
    store: SecretStore | None = None,
) -> KeycloakInfo:
    """Start the local Keycloak (idempotent); return where it answers. Its admin password
    is ``secret`` in ``store`` (default: the settings' secret store).

    A running server of this state dir started with other hostname options is restarted."""
    url = local_url(settings)
    _restart_on_new_hostname(settings, reporter)
    if settings.keycloak_url.rstrip("/") != url:
        reporter.warn(
            f"keycloak_url is {settings.keycloak_url} but the local Keycloak listens on {url}: "
            "set both (SMARTPRAXX_KEYCLOAK_URL and SMARTPRAXX_KEYCLOAK_PORT)"
        )
    user = settings.keycloak_admin_user
    store = store or open_secret_store(settings)
    existing_password = store.get(secret)
    if existing_password is None and _database_exists(settings):
        raise _mismatch_error(settings, secret)
    password = store.ensure(secret)
    running = _already_running(settings, reporter, user, password, secret)
    if running is not None:
        return running

    java_home = find_java_home(settings)
    dist = ensure_distribution(settings, reporter)
    server = prepare_server_dir(settings, dist, reporter)
    had_database = _database_exists(settings)
    secure_data_dir(settings)
    env = _server_env(java_home, user, password)
    log_path = _service(settings).log_file
    log_path.parent.mkdir(parents=True, exist_ok=True)
    reporter.change(f"starting Keycloak {settings.keycloak_version} on {url} (log {log_path})")
    proc = _service(settings).start(
        _server_argv(settings, server), cwd=server, env=env, umask=0o077
    )
    try:
        _wait_until_up(settings, url, proc.pid, proc)
        if not admin_login_ok(url, user, password):
            if had_database:
                raise _mismatch_error(settings, secret)
            raise ServiceUnavailableError(
                f"Keycloak at {url} started but refuses the bootstrap admin {user!r}",
                obj=url,
                hint=f"see {log_path}",
            )
    except BaseException:
        _terminate(settings, proc.pid)
        raise
    reporter.change(f"Keycloak is up at {url} (pid {proc.pid})")
    return KeycloakInfo(url=url, admin_user=user, pid=proc.pid, started=True)


def _wait_until_up(
    settings: Settings, url: str, pid: int, proc: subprocess.Popen[bytes] | None = None
) -> None:
    log = _service(settings).log_file

    def answers() -> bool:
        exited_during_start(proc, "Keycloak", "keycloak", log)
        if proc is None and not _is_our_process(settings, pid):
            raise ServiceUnavailableError(
                "Keycloak exited during start-up", obj="keycloak", hint=f"see {log}"
            )
        return _discovery_ok(url, timeout=3.0)

    if wait_until(answers, STARTUP_TIMEOUT, POLL_INTERVAL):
        return
    raise ServiceUnavailableError(
        f"Keycloak did not answer {url}/realms/master/.well-known/openid-configuration "
        f"within {STARTUP_TIMEOUT:.0f}s",
        obj="keycloak",
        hint=f"see {log}; then 'smartpraxx-provision dev-stack down' and 'up'",
    )


def _terminate(settings: Settings, pid: int) -> bool:
    """SIGTERM the process group we started (start_new_session: pgid == pid), then SIGKILL."""
    return _service(settings).terminate(pid)


def stop_keycloak(settings: Settings, reporter: Reporter) -> bool:
    """Stop the Keycloak this state dir started (by its pid file). True when one was stopped."""
    return _service(settings).stop(reporter)


def keycloak_status(settings: Settings) -> dict[str, Any]:
    url = local_url(settings)
    pid = _our_pid(settings)
    return {
        "url": url,
        "version": settings.keycloak_version,
        "pid": pid,
        "running": pid is not None,
        "answers": _discovery_ok(url, timeout=3.0) if port_open(settings.keycloak_port) else False,
        "server_dir": str(server_dir(settings)),
        "data_dir": str(data_dir(settings)),
        "database": _database_exists(settings),
        "log": str(_service(settings).log_file),
    }


# --- further identity shards served from this machine (issue 18) ---------------------------


def local_shards(settings: Settings) -> list[tuple[str, Settings]]:
    """The further identity shards whose first node is on 127.0.0.1: each shard's name and
    the settings of its local Keycloak (own port; server, database and log under
    ``<state_dir>/identity-shards/<name>/``; same hostname options as the primary)."""
    out = []
    for shard in settings.identity_shard_list[1:]:
        parts = urlsplit(shard.urls[0])
        if parts.hostname == "127.0.0.1" and parts.port:
            out.append((shard.name, replace(
                settings, state_dir=settings.state_dir / "identity-shards" / shard.name,
                keycloak_port=parts.port, keycloak_url=shard.urls[0], keycloak_failover_urls="",
                identity_shards="")))
    return out


def ensure_shards(settings: Settings, reporter: Reporter) -> dict[str, KeycloakInfo]:
    """Start the Keycloak of every local further shard (idempotent); its admin password is
    the shard's secret (``platform/keycloak-admin-<name>``) in the settings' secret store."""
    store = open_secret_store(settings)
    return {name: ensure_keycloak(shard, reporter, secret=admin_secret(name), store=store)
            for name, shard in local_shards(settings)}


def stop_shards(settings: Settings, reporter: Reporter) -> list[str]:
    """Stop the local shards' Keycloaks this state dir started; the names of those stopped."""
    return [name for name, shard in local_shards(settings) if stop_keycloak(shard, reporter)]
