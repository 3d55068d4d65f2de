"""Measure one slot's Nextcloud stack: launch time, first and no-op converge (occ runs, time).

    python benchmarks/nextcloud_stack.py            # embedded profile, local images

Uses a throwaway state dir and slot nc01-cloud97N; removes everything afterwards.

Measured 2026-11-29 on the dev machine (2 shared cores, local MariaDB/Redis images, the
Nextcloud stand-in):

    launch (cold, new volumes): 9.1s      (integration test runs: 7.0-9.6 s per slot)
    launch (no-op re-run):      0.2s
    first converge: 7 occ runs (4 mutating), 1.59s
    no-op converge: 3 occ runs (0 mutating), 0.75s

A real Nextcloud costs ~0.5 s of PHP start-up per occ run (issue 6), i.e. about 3.5 s for a
first converge and 1.5 s for a no-op one; its first-start install takes longer than the
stand-in's.
"""

from __future__ import annotations

import os
import tempfile
import time

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.adapters.nextcloud import NextcloudAdapter
from smartpraxx_provision.config import load_settings
from smartpraxx_provision.domain.model import PracticeSpec, PracticeType, Slot
from smartpraxx_provision.operations.nextcloud_stack import (
    configure_nextcloud,
    launch_stack,
    remove_stack,
    slot_names,
)
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.render.bundle import realm_issuer
from smartpraxx_provision.secrets import FileSecretStore


def main() -> None:
    state = tempfile.mkdtemp(prefix="spx-bench-nc-")
    settings = load_settings(env={}, overrides={"state_dir": state})
    engine = DockerEngine()
    store = FileSecretStore(settings.secrets_dir)
    reporter = Reporter(quiet=True)
    slot = Slot(f"cloud97{os.getpid() % 10}", 1)
    spec = PracticeSpec(
        praxisname="praxis-benchmark",
        display_name="Praxis Benchmark",
        practice_type=PracticeType.ARZTPRAXIS,
        kv="KV Nordrhein",
        specialties=(),
        order_id="BENCH",
        contact_email="bench@example.org",
    )
    try:
        start = time.monotonic()
        launched = launch_stack(engine, spec, slot, settings, store, reporter)
        print(f"launch (cold, new volumes): {time.monotonic() - start:.1f}s")
        start = time.monotonic()
        launch_stack(engine, spec, slot, settings, store, reporter)
        print(f"launch (no-op re-run):      {time.monotonic() - start:.1f}s")
        nc = NextcloudAdapter(engine, slot_names(slot).app)
        issuer = realm_issuer(settings, slot)
        for label in ("first converge", "no-op converge"):
            start = time.monotonic()
            res = configure_nextcloud(nc, spec, slot, settings, store, reporter, issuer=issuer)
            print(
                f"{label}: {res.occ_calls} occ runs ({res.mutating_calls} mutating), "
                f"{time.monotonic() - start:.2f}s"
            )
        print(f"app published on 127.0.0.1:{launched['app_port']}")
    finally:
        remove_stack(engine, slot, reporter)


if __name__ == "__main__":
    main()
