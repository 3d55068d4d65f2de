"""Measure slot allocation on the inventory (not asserted; figures go into the README).

    python benchmarks/inventory_allocate.py                      # SQLite in a temp dir
    python benchmarks/inventory_allocate.py postgresql://u@127.0.0.1:5432/db   # empty database

Sequential: N allocations + journal steps in one process. Concurrent: P processes
allocating N/P each on one host (all must get distinct slots).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import time

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.inventory import open_inventory

N = 200
PROCS = 8


def _settings(url: str) -> Settings:
    overrides = {"state_dir": tempfile.mkdtemp(prefix="spx-bench-")}
    if url:
        overrides["inventory_url"] = url
    return load_settings(env={}, overrides=overrides)


def _worker(settings: Settings, start: int, count: int) -> None:
    with open_inventory(settings) as inv:
        for i in range(start, start + count):
            inv.allocate_practice(
                f"c{i}",
                order_id=f"o{i}",
                display_name="x",
                kv="KV",
                specialties=[],
                billable_seats=1,
                host="cloud002",
            )


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else ""
    settings = _settings(url)
    with open_inventory(settings) as inv:
        inv.add_host("cloud001", "unix:///var/run/docker.sock", capacity=N)
        inv.add_host("cloud002", "unix:///var/run/docker.sock", capacity=N, state="draining")
        t0 = time.perf_counter()
        for i in range(N):
            p = inv.allocate_practice(
                f"s{i}",
                order_id=f"o{i}",
                display_name="x",
                kv="KV",
                specialties=[],
                billable_seats=1,
                host="cloud001",
            )
            op = inv.begin_operation("provision", p.praxisname)
            inv.journal_step(op, "allocate", "done")
            inv.end_operation(op, "done")
        seq = time.perf_counter() - t0
        inv.set_host_state("cloud002", "active")
    ctx = mp.get_context("fork")
    per = N // PROCS
    procs = [ctx.Process(target=_worker, args=(settings, k * per, per)) for k in range(PROCS)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    conc = time.perf_counter() - t0
    with open_inventory(settings) as inv:
        slots = [p.slot.id for p in inv.list_practices() if p.slot.host == "cloud002"]
        backend = inv.backend.name
    assert len(set(slots)) == per * PROCS
    print(
        f"{backend}: sequential {N} x (allocate + op + journal): {seq:.2f}s "
        f"({seq / N * 1000:.1f} ms each)"
    )
    print(
        f"{backend}: {PROCS} processes, {per * PROCS} allocations on one host: {conc:.2f}s "
        f"({per * PROCS / conc:.0f}/s, all distinct)"
    )


if __name__ == "__main__":
    main()
