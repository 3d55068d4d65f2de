"""Provisioning across several Docker engines (measured, not asserted; issue 17).

12 practices (variants of the GP sample) provisioned in-process at concurrency 1 and 4, once
on one engine (the local one) and once across three engines (the local one and two test
fleet hosts: docker-in-docker engines over mutual TLS, ``devstack/fleet_host.py``), with the
placement the tool does (fewest used slots first). Before the timed runs each fleet host
gets the slot images once (``docker save | load``, timed separately): that is a one-time
cost per host, not per practice. Everything is removed afterwards (stacks, realms, the fleet
hosts and their engine volumes).

Needs ``smartpraxx-provision dev-stack up`` first (Docker engine, images, Keycloak).

    python benchmarks/fleet_hosts.py [--practices 12] [--levels 1,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.provision import SAMPLE, bench_settings, run_one, variant  # noqa: E402
from smartpraxx_provision.config import Settings  # noqa: E402
from smartpraxx_provision.devstack import fleet_host  # noqa: E402
from smartpraxx_provision.domain.model import Slot  # noqa: E402
from smartpraxx_provision.operations import identity, nextcloud_stack  # noqa: E402
from smartpraxx_provision.operations.context import LOCAL_ENGINE, OpContext  # noqa: E402
from smartpraxx_provision.output import Reporter  # noqa: E402
from smartpraxx_provision.render.stack import slot_stack  # noqa: E402
from smartpraxx_provision.starter import load_practice_spec  # noqa: E402

LOCAL_HOST = "cloud610"
FLEET_HOSTS = ("cloud611", "cloud612")


def register(settings: Settings, engines: int) -> list[fleet_host.FleetHost]:
    """The local engine as cloud610, plus ``engines - 1`` test fleet hosts."""
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    ctx.inventory.add_host(LOCAL_HOST, LOCAL_ENGINE, capacity=100)
    hosts = []
    for name in FLEET_HOSTS[: engines - 1]:
        host = fleet_host.ensure_fleet_host(settings, Reporter(quiet=True), name)
        ctx.inventory.add_host(
            name, host.endpoint, capacity=fleet_host.SLOT_PORTS, tls=host.tls,
            publish_address=fleet_host.PUBLISH_ADDRESS, slot_port_base=host.ports[0],
        )
        hosts.append(host)
    return hosts


def copy_images(settings: Settings, hosts: list[fleet_host.FleetHost]) -> dict[str, float]:
    """The one-time image copy to each fleet host (seconds per host)."""
    spec = load_practice_spec(SAMPLE)
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    out = {}
    for host in hosts:
        stack = slot_stack(spec, Slot(host=host.name, number=1), settings)
        t0 = time.monotonic()
        nextcloud_stack.ensure_stack_images(ctx.engine(host.name), stack, ctx.reporter)
        out[host.name] = round(time.monotonic() - t0, 1)
    return out


def cleanup(settings: Settings) -> None:
    """Remove every practice's stack and realm of this state dir (all hosts)."""
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    for record in ctx.inventory.list_practices(include_tombstoned=True):
        try:
            nextcloud_stack.remove_stack(ctx.engine(record.slot.host), record.slot, ctx.reporter)
        finally:
            if ctx.keycloak.get_realm(record.realm) is not None:
                identity.delete_realm(ctx.keycloak, record.slot, ctx.reporter)


def batch(settings: Settings, count: int, concurrency: int, offset: int) -> dict[str, Any]:
    """Provision ``count`` practices with ``concurrency`` workers; wall and per-practice."""
    spec = load_practice_spec(SAMPLE)
    specs = [variant(spec, offset + i) for i in range(count)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda s: run_one(settings, s, None), specs))
    wall = time.monotonic() - t0
    per = [r["seconds"] for r in results]
    spread: dict[str, int] = {}
    for r in results:
        host = r["slot"].split("-", 1)[1]
        spread[host] = spread.get(host, 0) + 1
    return {
        "practices": count, "concurrency": concurrency, "wall_s": round(wall, 1),
        "practices_per_min": round(60 * count / wall, 2),
        "per_practice_median_s": round(statistics.median(per), 1),
        "per_practice_max_s": round(max(per), 1), "placement": spread,
        "load_after": os.getloadavg()[0],
    }


def topology(engines: int, count: int, levels: list[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="spx-fleet-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        hosts: list[fleet_host.FleetHost] = []
        out: dict[str, Any] = {"engines": engines, "runs": []}
        try:
            hosts = register(settings, engines)
            out["image_copy_s"] = copy_images(settings, hosts)
            for i, level in enumerate(levels):
                run = batch(settings, count, level, offset=100 * (i + 1))
                print(json.dumps({"engines": engines, **run}), flush=True)
                out["runs"].append(run)
                cleanup(settings)
        finally:
            cleanup(settings)
            for host in hosts:
                fleet_host.remove_fleet_host(settings, host.name)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practices", type=int, default=12)
    parser.add_argument("--levels", default="1,4")
    parser.add_argument("--engines", default="1,3", help="topologies to run, e.g. 1,3")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    results = {
        "cpus": os.cpu_count(),
        "topologies": [topology(int(e), args.practices, levels) for e in args.engines.split(",")],
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
