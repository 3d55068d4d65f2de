"""Side by side on ONE throwaway Keycloak in ONE run: the tool's first realm converge vs
Keycloak's own one-call import of the same representation, and the realm-count curve.

    python benchmarks/realm_import.py [--counts 0,300,1000] [--repeat 3] [--persons 20]
                                      [--heap-max 3g] [--stop-at 10:25] [--json out.json]

Starts its own Keycloak (``devstack.keycloak.ensure_keycloak``) in a temporary state dir on a
free port (never the shared one), with ``-Xmx`` from ``--heap-max``, and stops it at the end.
For each count of existing realms (filler realms with minimal representations, created by
``--fill-workers`` threads, bounded by the count and by ``--stop-at`` UTC):

* tool: ``identity.converge_realm`` of a new ``--persons`` practice (one-call path: one POST
  of the complete representation + read-back verification), then a second, no-op converge
  (asserted: 0 mutating calls); median of ``--repeat``;
* keycloak: the same representation (``render.realm_import.realm_representation``) POSTed to
  ``/admin/realms`` and nothing else; median of ``--repeat``; runs interleaved with the tool's;
* fine: the old call-by-call first converge (``one_call=False``), median of ``--fine-repeat``;
* ``--trace``: one more first converge with every admin HTTP call timed (method, path with
  the realm and ids generalised, seconds), then the same read-back once more: which call
  grows with the realm count, and whether it is the first touch of a new realm;
* probes (median of ``--probe-repeat``): master admin token grant (and the token's size),
  ``GET /admin/realms`` (full and brief listing), ``POST /admin/realms`` of a minimal realm
  and its ``DELETE``, a fixed set of per-realm reads with the master admin token, and the
  same reads plus a whole no-op converge through a *realm-scoped* admin (a service account
  in the practice realm holding ``realm-management``'s ``realm-admin``).

Measured, not asserted (except that no-op converges change nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from keycloak.connection import ConnectionManager

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realms import practice

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack import keycloak as devkc
from smartpraxx_provision.domain.model import PracticeSpec, Slot
from smartpraxx_provision.operations import identity
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.realm_import import realm_representation
from smartpraxx_provision.secrets import FileSecretStore

FILLER_PREFIX = "bench-filler-"
SCOPED_CLIENT = "smartpraxx-realm-admin"
QUIET = Reporter(quiet=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(fn: Callable[[], Any]) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def java_pid(settings: Settings) -> int | None:
    """The JVM under kc.sh (kc.sh execs java, but be safe: look for our server dir)."""
    marker = str(devkc.server_dir(settings)).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmd and b"java" in cmd.split(b"\0")[0]:
            return int(entry.name)
    return None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_stop_at(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    hour, minute = (int(x) for x in value.split(":"))
    now = utc_now()
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


# --- filling ---------------------------------------------------------------------------------


class Filler:
    """Creates filler realms up to a count with a few threads, each with its own adapter."""

    def __init__(self, settings: Settings, store: FileSecretStore, workers: int) -> None:
        self.settings = settings
        self.store = store
        self.workers = max(1, workers)
        self.created = 0
        self.samples: list[tuple[int, float]] = []  # (realms existing before, seconds)
        self._lock = threading.Lock()

    def fill_to(self, target: int, stop_at: dt.datetime | None, base: int) -> float:
        """Create fillers until ``self.created == target`` (or ``stop_at``). ``base`` = realms
        that exist besides the fillers (master). Returns the wall time."""
        todo = list(range(self.created, target))
        if not todo:
            return 0.0
        t0 = time.monotonic()
        next_index = iter(todo)
        last_print = [time.monotonic()]

        def work() -> None:
            kc = KeycloakAdapter.from_settings(self.settings, self.store)
            while True:
                if stop_at is not None and utc_now() >= stop_at:
                    return
                with self._lock:
                    i = next(next_index, None)
                    existing = base + self.created
                if i is None:
                    return
                name = f"{FILLER_PREFIX}{i:05d}"
                seconds = timed(lambda n=name: kc.create_realm({"realm": n, "enabled": True}))
                with self._lock:
                    self.created += 1
                    self.samples.append((existing, seconds))
                    if time.monotonic() - last_print[0] > 60:
                        last_print[0] = time.monotonic()
                        recent = [s for _, s in self.samples[-50:]]
                        print(f"    ... {self.created} filler realms, last 50: "
                              f"{median(recent):.2f}s median per realm", flush=True)

        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(work) for _ in range(self.workers)]
            for future in futures:
                future.result()
        return time.monotonic() - t0

    def per_realm_curve(self, bucket: int = 100) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        by: dict[int, list[float]] = {}
        for existing, seconds in self.samples:
            by.setdefault(existing // bucket * bucket, []).append(seconds)
        for start in sorted(by):
            out.append((start, median(by[start])))
        return out


# --- probes ----------------------------------------------------------------------------------


def master_token(settings: Settings, password: str) -> tuple[float, int]:
    t = time.monotonic()
    resp = requests.post(
        f"{settings.keycloak_url}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli",
              "username": settings.keycloak_admin_user, "password": password},
        timeout=120,
    )
    seconds = time.monotonic() - t
    resp.raise_for_status()
    return seconds, len(resp.json()["access_token"])


def scoped_token(settings: Settings, realm: str, secret: str) -> tuple[float, int]:
    t = time.monotonic()
    resp = requests.post(
        f"{settings.keycloak_url}/realms/{realm}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": SCOPED_CLIENT,
              "client_secret": secret},
        timeout=120,
    )
    seconds = time.monotonic() - t
    resp.raise_for_status()
    return seconds, len(resp.json()["access_token"])


def per_realm_reads(kc: KeycloakAdapter, realm: str) -> float:
    """The reads a no-op converge makes most (realm, users, clients, roles, groups)."""
    def run() -> None:
        kc.get_realm(realm)
        kc.users(realm)
        kc.clients(realm)
        kc.realm_roles(realm)
        kc.groups(realm)
    return timed(run)


def make_scoped_admin(kc: KeycloakAdapter, realm: str) -> str:
    """A confidential client with a service account holding realm-management/realm-admin in
    ``realm``; returns its secret."""
    secret = "bench-" + os.urandom(12).hex()
    kc.create_client(realm, {
        "clientId": SCOPED_CLIENT, "enabled": True, "publicClient": False,
        "serviceAccountsEnabled": True, "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False, "secret": secret,
    })
    clients = {c["clientId"]: c for c in kc.clients(realm)}
    uuid = clients[SCOPED_CLIENT]["id"]
    user = kc.request("GET", f"admin/realms/{realm}/clients/{uuid}/service-account-user",
                      what="read the service account")
    rm = clients["realm-management"]["id"]
    role = kc.request("GET", f"admin/realms/{realm}/clients/{rm}/roles/realm-admin",
                      what="read realm-admin")
    kc.request("POST", f"admin/realms/{realm}/users/{user['id']}/role-mappings/clients/{rm}",
               [role], what="grant realm-admin")
    return secret


# --- one count -------------------------------------------------------------------------------


_TRACE_METHODS = ("raw_get", "raw_post", "raw_put", "raw_delete")
_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@contextlib.contextmanager
def traced_calls(realm: str) -> Iterator[list[tuple[str, str, float]]]:
    """Every python-keycloak HTTP call (the door's and python-keycloak's own) timed."""
    calls: list[tuple[str, str, float]] = []
    originals = {name: getattr(ConnectionManager, name) for name in _TRACE_METHODS}

    def wrap(name: str) -> Callable[..., Any]:
        original = originals[name]

        def timed_call(self: ConnectionManager, path: str, *a: Any, **kw: Any) -> Any:
            t = time.monotonic()
            try:
                return original(self, path, *a, **kw)
            finally:
                shape = _ID_RE.sub("{id}", path.replace(realm, "{realm}"))
                calls.append((name[4:].upper(), shape, time.monotonic() - t))

        return timed_call

    for name in _TRACE_METHODS:
        setattr(ConnectionManager, name, wrap(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(ConnectionManager, name, original)


def trace_first_converge(kc: KeycloakAdapter, settings: Settings, store: FileSecretStore,
                         spec: PracticeSpec) -> dict[str, Any]:
    slot = Slot(host="cloud996", number=1)
    if kc.get_realm(slot.realm) is not None:
        kc.delete_realm(slot.realm)
    try:
        with traced_calls(slot.realm) as first:
            identity.converge_realm(kc, spec, slot, settings, store, QUIET)
        parts = identity.realm_parts(spec, slot, settings, store)
        with traced_calls(slot.realm) as again:
            identity.read_back(kc, parts)
    finally:
        kc.delete_realm(slot.realm)

    def summary(calls: list[tuple[str, str, float]]) -> dict[str, Any]:
        return {"calls": len(calls), "seconds": sum(s for _, _, s in calls),
                "slowest": [[m, p, round(s, 3)] for m, p, s in
                            sorted(calls, key=lambda c: -c[2])[:8]],
                "in_order": [[m, p, round(s, 3)] for m, p, s in calls]}

    return {"first": summary(first), "read_back_again": summary(again)}


def with_scoped_admin(rep: dict[str, Any], secret: str) -> dict[str, Any]:
    """``rep`` plus a confidential client whose service account holds realm-management's
    realm-admin, in the same import (Keycloak's export format)."""
    out = dict(rep)
    out["clients"] = [*rep.get("clients", []), {
        "clientId": SCOPED_CLIENT, "enabled": True, "publicClient": False,
        "serviceAccountsEnabled": True, "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False, "secret": secret}]
    out["users"] = [*rep.get("users", []), {
        "username": f"service-account-{SCOPED_CLIENT}", "enabled": True,
        "serviceAccountClientId": SCOPED_CLIENT,
        "clientRoles": {"realm-management": ["realm-admin"]}}]
    return out


def probe_first_touch(kc: KeycloakAdapter, settings: Settings, store: FileSecretStore,
                      spec: PracticeSpec) -> dict[str, Any]:
    """Who pays after a realm import: (a) Keycloak's own import, then the first admin reads
    through the master admin; (b) the same import carrying a realm-scoped admin, then the
    whole read-back through that admin, then one master read."""
    out: dict[str, Any] = {}
    a = Slot(host="cloud995", number=1)
    b = Slot(host="cloud995", number=2)
    for s in (a, b):
        if kc.get_realm(s.realm) is not None:
            kc.delete_realm(s.realm)
    try:
        rep = realm_representation(identity.realm_parts(spec, a, settings, store))
        out["a_post"] = timed(lambda: kc.create_realm(rep))
        out["a_master_reads"] = [timed(lambda: kc.find_client(a.realm, "nextcloud"))
                                 for _ in range(3)]
        secret = "bench-" + os.urandom(12).hex()
        parts = identity.realm_parts(spec, b, settings, store)
        rep_b = with_scoped_admin(realm_representation(parts), secret)
        out["b_post"] = timed(lambda: kc.create_realm(rep_b))
        out["b_scoped_token"] = scoped_token(settings, b.realm, secret)[0]
        scoped = KeycloakAdapter.service_account(settings.keycloak_url, b.realm,
                                                 SCOPED_CLIENT, secret)
        with traced_calls(b.realm) as calls:
            identity.read_back(scoped, parts)
        out["b_scoped_read_back"] = sum(s for _, _, s in calls)
        out["b_scoped_slowest"] = [[m, p, round(s, 3)] for m, p, s in
                                   sorted(calls, key=lambda c: -c[2])[:3]]
        out["b_then_master_reads"] = [timed(lambda: kc.find_client(b.realm, "nextcloud"))
                                      for _ in range(3)]
    finally:
        for s in (a, b):
            if kc.get_realm(s.realm) is not None:
                kc.delete_realm(s.realm)
    return out


def measure(
    kc: KeycloakAdapter, settings: Settings, store: FileSecretStore, spec: PracticeSpec,
    args: argparse.Namespace, admin_password: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    if args.trace:
        out["trace"] = trace_first_converge(kc, settings, store, spec)
        out["first_touch"] = probe_first_touch(kc, settings, store, spec)
        print(json.dumps({"first_touch": out["first_touch"]}), flush=True)
        print(json.dumps({"trace": {k: {"calls": v["calls"], "seconds": round(v["seconds"], 2),
                                        "slowest": v["slowest"]}
                                    for k, v in out["trace"].items()}}), flush=True)
    tool, noop, imp, fine = [], [], [], []
    tool_changes: list[int] = []
    for run in range(args.repeat):
        order = ("tool", "import") if run % 2 == 0 else ("import", "tool")
        for what in order:
            slot = Slot(host="cloud999", number=10 + run * 2 + (what == "import"))
            if kc.get_realm(slot.realm) is not None:
                kc.delete_realm(slot.realm)
            if what == "tool":
                box: dict[str, identity.IdentityResult] = {}

                def first(s: Slot = slot, b: dict[str, identity.IdentityResult] = box) -> None:
                    b["r"] = identity.converge_realm(kc, spec, s, settings, store, QUIET)

                tool.append(timed(first))
                tool_changes.append(box["r"].changes)
                before = kc.mutations
                noop.append(timed(lambda s=slot: identity.converge_realm(
                    kc, spec, s, settings, store, QUIET)))
                assert kc.mutations == before, "no-op converge made changes"
            else:
                rep = realm_representation(identity.realm_parts(spec, slot, settings, store))
                imp.append(timed(lambda r=rep: kc.create_realm(r)))
            kc.delete_realm(slot.realm)
    for run in range(args.fine_repeat):
        slot = Slot(host="cloud998", number=10 + run)
        fine.append(timed(lambda s=slot: identity.converge_realm(
            kc, spec, s, settings, store, QUIET, one_call=False)))
        kc.delete_realm(slot.realm)
    out.update(tool=median(tool), tool_all=tool, noop=median(noop), kc_import=median(imp),
               kc_import_all=imp, fine=median(fine), fine_all=fine,
               tool_mutations=tool_changes, ratio=median(tool) / median(imp))

    # probes
    n = args.probe_repeat
    tokens = [master_token(settings, admin_password) for _ in range(n)]
    out["master_token"] = median([t for t, _ in tokens])
    out["master_token_chars"] = tokens[-1][1]

    def listing(brief: bool) -> float:
        return timed(lambda: kc.request(
            "GET", "admin/realms", params={"briefRepresentation": str(brief).lower()},
            what="list realms"))

    out["list_realms_full"] = median([listing(False) for _ in range(n)])
    out["list_realms_brief"] = median([listing(True) for _ in range(n)])
    creates, deletes = [], []
    for i in range(n):
        name = f"bench-probe-{i}"
        creates.append(timed(lambda m=name: kc.create_realm({"realm": m, "enabled": True})))
        deletes.append(timed(lambda m=name: kc.delete_realm(m)))
    out["post_minimal_realm"] = median(creates)
    out["delete_minimal_realm"] = median(deletes)

    slot = Slot(host="cloud997", number=1)
    identity.converge_realm(kc, spec, slot, settings, store, QUIET)
    try:
        out["master_reads"] = median([per_realm_reads(kc, slot.realm) for _ in range(n)])
        out["master_noop"] = median([timed(lambda: identity.converge_realm(
            kc, spec, slot, settings, store, QUIET)) for _ in range(n)])
        secret = make_scoped_admin(kc, slot.realm)
        stoks = [scoped_token(settings, slot.realm, secret) for _ in range(n)]
        out["scoped_token"] = median([t for t, _ in stoks])
        out["scoped_token_chars"] = stoks[-1][1]
        scoped = KeycloakAdapter.service_account(settings.keycloak_url, slot.realm,
                                                 SCOPED_CLIENT, secret)
        out["scoped_reads"] = median([per_realm_reads(scoped, slot.realm) for _ in range(n)])
        before = scoped.mutations
        out["scoped_noop"] = median([timed(lambda: identity.converge_realm(
            scoped, spec, slot, settings, store, QUIET)) for _ in range(n)])
        assert scoped.mutations == before, "no-op converge (scoped) made changes"
    finally:
        kc.delete_realm(slot.realm)
    out["load_after"] = os.getloadavg()[0]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--counts", default="0,300,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fine-repeat", type=int, default=1)
    parser.add_argument("--probe-repeat", type=int, default=5)
    parser.add_argument("--persons", type=int, default=20)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--heap-max", default="3g")
    parser.add_argument("--fill-workers", type=int, default=2)
    parser.add_argument("--stop-at", help="UTC HH:MM: stop filling then, measure what was reached")
    parser.add_argument("--trace", action="store_true",
                        help="time every admin call of one more first converge")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--request-timeout", type=float, default=180.0,
                        help="seconds per admin request of the measured tool")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    stop_at = parse_stop_at(args.stop_at)

    port = args.port or free_port()
    state = Path(tempfile.mkdtemp(prefix="smartpraxx-realm-import-"))
    settings = load_settings(env={}, overrides={
        "state_dir": str(state), "keycloak_port": port,
        "keycloak_url": f"http://127.0.0.1:{port}",
        # measured, not bounded by the tool's 30 s default: at 300 realms on a loaded 2-core
        # machine one realm DELETE took longer than that (2026-12-03 run)
        "keycloak_timeout": args.request_timeout,
    })
    devkc.HEAP_OPTS = f"-Xms256m -Xmx{args.heap_max}"  # this throwaway server only
    started = utc_now()
    t0 = time.monotonic()
    info = devkc.ensure_keycloak(settings, QUIET)
    jpid = java_pid(settings) or info.pid
    print(f"Keycloak {settings.keycloak_version} at {info.url}, heap {devkc.HEAP_OPTS}, "
          f"started in {time.monotonic() - t0:.1f}s; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}; {started:%Y-%m-%d %H:%M} UTC", flush=True)
    store = FileSecretStore(settings.secrets_dir)
    admin_password = store.require(devkc.ADMIN_SECRET)
    kc = KeycloakAdapter.from_settings(settings, store)
    spec = practice(args.persons)
    filler = Filler(settings, store, args.fill_workers)
    rows: list[dict[str, Any]] = []
    try:
        for count in counts:
            fill_seconds = filler.fill_to(count, stop_at, base=1)
            reached = filler.created
            print(f"{reached} filler realms (+ master); filling took {fill_seconds:.0f}s; "
                  f"Keycloak RSS {rss_mb(jpid) or 0:.0f} MB", flush=True)
            row: dict[str, Any] = {"count": reached, "wanted": count, "fill_seconds": fill_seconds}
            try:
                row.update(measure(kc, settings, store, spec, args, admin_password))
            except Exception as exc:  # measured, not asserted: report and stop
                row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                print(f"  measurement failed at {reached} realms: {row['error']}", flush=True)
                break
            row["rss_mb"] = rss_mb(jpid)
            rows.append(row)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                              for k, v in row.items() if not k.endswith("_all")}), flush=True)
            if reached < count:
                print(f"stopped filling at {reached} (--stop-at {args.stop_at})", flush=True)
                break
    finally:
        curve = filler.per_realm_curve()
        devkc.stop_keycloak(settings, QUIET)
        shutil.rmtree(state, ignore_errors=True)

    print("\nexisting | tool first | KC import | ratio | fine-grained | no-op | POST min. realm"
          " | master token (chars) | GET /admin/realms | reads master | reads scoped"
          " | no-op scoped | RSS")
    for r in rows:
        if "error" in r:
            print(f"{r['count']:8d} | error: {r['error']}")
            continue
        print(f"{r['count']:8d} | {r['tool']:9.2f}s | {r['kc_import']:8.2f}s | {r['ratio']:5.2f} |"
              f" {r['fine']:11.2f}s | {r['noop']:4.2f}s | {r['post_minimal_realm']:13.2f}s |"
              f" {r['master_token']:.3f}s ({r['master_token_chars']}) |"
              f" {r['list_realms_full']:.2f}s / brief {r['list_realms_brief']:.2f}s |"
              f" {r['master_reads']:.3f}s | {r['scoped_reads']:.3f}s | {r['scoped_noop']:.2f}s |"
              f" {r['rss_mb'] or 0:.0f} MB")
    print("\nfiller creation, median seconds per realm by realms existing:")
    for start, seconds in curve:
        print(f"  {start:5d}+: {seconds:.2f}s")
    if args.json:
        args.json.write_text(json.dumps({
            "started": started.isoformat(), "finished": utc_now().isoformat(),
            "keycloak": settings.keycloak_version, "heap": devkc.HEAP_OPTS,
            "cpus": os.cpu_count(), "persons": args.persons, "repeat": args.repeat,
            "rows": rows, "filler_curve": curve,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
