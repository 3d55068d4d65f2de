"""Realm converge time for a 20-person practice with 0, 100 and 300 existing realms.

Runs against a real local Keycloak started through ``devstack.keycloak.ensure_keycloak`` in
its own temporary state dir and port (stopped at the end), or against an already running one
with ``--state-dir DIR --port N`` (left running; filler realms are removed afterwards).

    python benchmarks/realms.py [--counts 0,100,300] [--repeat 3]

For each count of existing realms: create filler realms up to that count, then time
(a) the first converge of a new 20-person practice realm (create everything),
(b) a second converge (no-op, 0 mutating calls), then delete the practice realm.
Reports the median of ``--repeat`` runs and the ratio against the first count.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from smartpraxx_provision.adapters.keycloak import KeycloakAdapter
from smartpraxx_provision.config import load_settings
from smartpraxx_provision.devstack import keycloak as devkc
from smartpraxx_provision.domain.model import (
    Person,
    PracticeSpec,
    PracticeType,
    Role,
    Slot,
    ThirdPartyApp,
    WorkArea,
)
from smartpraxx_provision.operations import identity
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.secrets import FileSecretStore

FILLER_PREFIX = "bench-filler-"
ROLES = [Role.PRAXISINHABER, Role.ARZT, Role.ARZT, Role.MFA, Role.MFA, Role.AZUBI]
AREAS = list(WorkArea)


def practice(n_persons: int = 20) -> PracticeSpec:
    persons = tuple(
        Person(
            first_name=f"Vorname{i}",
            last_name=f"Nachname{i}",
            email=f"person{i}@bench.example.org",
            username=f"person{i:02d}",
            role=ROLES[i % len(ROLES)],
            work_areas=(AREAS[i % len(AREAS)], AREAS[(i + 3) % len(AREAS)]),
            lanr="123456699" if ROLES[i % len(ROLES)].is_doctor else None,
            specialty="urologie" if ROLES[i % len(ROLES)].is_doctor else None,
            admin=i == 0,
        )
        for i in range(n_persons)
    )
    return PracticeSpec(
        praxisname="praxis-bench",
        display_name="Praxis Benchmark",
        practice_type=PracticeType.ARZTPRAXIS,
        kv="KV Rheinland-Pfalz",
        specialties=("urologie",),
        order_id="BENCH",
        contact_email="bench@example.org",
        persons=persons,
        third_party_apps=(
            ThirdPartyApp("Dienstplanung", "https://dp.example.org", "https://dp.example.org/cb"),
        ),
    )


def fill_to(kc: KeycloakAdapter, count: int) -> float:
    existing = [r for r in kc.realm_names() if r.startswith(FILLER_PREFIX)]
    t0 = time.monotonic()
    for i in range(len(existing), count):
        kc.create_realm({"realm": f"{FILLER_PREFIX}{i:04d}", "enabled": True})
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="0,100,300")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--persons", type=int, default=20)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--port", type=int, default=18380)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]

    own = args.state_dir is None
    state = Path(tempfile.mkdtemp(prefix="smartpraxx-bench-")) if own else args.state_dir
    settings = load_settings(
        env={},
        overrides={
            "state_dir": str(state),
            "keycloak_port": args.port,
            "keycloak_url": f"http://127.0.0.1:{args.port}",
        },
    )
    quiet = Reporter(quiet=True)
    t0 = time.monotonic()
    info = devkc.ensure_keycloak(settings, quiet)
    print(f"Keycloak {settings.keycloak_version} at {info.url} "
          f"({'started' if info.started else 'reused'} in {time.monotonic() - t0:.1f}s)")
    store = FileSecretStore(settings.secrets_dir)
    kc = KeycloakAdapter.from_settings(settings, store)
    spec = practice(args.persons)
    rows: list[tuple[int, float, float, float]] = []
    try:
        for count in counts:
            fill_seconds = fill_to(kc, count)
            firsts: list[float] = []
            seconds: list[float] = []
            for run in range(args.repeat):
                slot = Slot(host="cloud999", number=90 + run)
                if kc.get_realm(slot.realm) is not None:
                    kc.delete_realm(slot.realm)
                t = time.monotonic()
                identity.converge_realm(kc, spec, slot, settings, store, quiet)
                firsts.append(time.monotonic() - t)
                before = kc.mutations
                t = time.monotonic()
                identity.converge_realm(kc, spec, slot, settings, store, quiet)
                seconds.append(time.monotonic() - t)
                assert kc.mutations == before, "no-op converge made changes"
                kc.delete_realm(slot.realm)
            first, second = statistics.median(firsts), statistics.median(seconds)
            rows.append((count, first, second, fill_seconds))
            print(f"{count:4d} existing realms: create+converge {first:6.2f}s  "
                  f"no-op converge {second:6.2f}s  (filling took {fill_seconds:.0f}s)",
                  flush=True)
    finally:
        if own:  # the whole throwaway server goes: no need to delete realms one by one
            devkc.stop_keycloak(settings, quiet)
            shutil.rmtree(state, ignore_errors=True)
        else:
            for name in kc.realm_names():
                if name.startswith(FILLER_PREFIX):
                    kc.delete_realm(name)

    base_first, base_second = rows[0][1], rows[0][2]
    print("\nexisting realms | first converge | ratio | no-op converge | ratio")
    for count, first, second, _ in rows:
        print(f"{count:15d} | {first:13.2f}s | {first / base_first:5.2f} | "
              f"{second:13.2f}s | {second / base_second:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
