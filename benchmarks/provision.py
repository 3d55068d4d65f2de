"""Provision benchmark (measured, not asserted) against the running local stack.

Needs `smartpraxx-provision dev-stack up` first (Docker engine, images, Keycloak). Uses a
throwaway state dir and fleet host name on the local engine, and removes what it created.

Reports:
  * the wall time of one provision split by step, the critical path of the service
    operations (allocate + secrets + max(realm, stack) + nextcloud + routes + smoke + record)
    and their ratio (goal <= 1.15: the orchestration adds little beyond the services);
  * the no-op re-run time (goal < 2 s);
  * N practices provisioned with concurrency 1 vs 4.

    python benchmarks/provision.py [--practices 10] [--skip-batch]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.model import PracticeSpec
from smartpraxx_provision.operations import identity, nextcloud_stack
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.provision import provision
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter import load_practice_spec

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
ADMIN_SECRET = "platform/keycloak-admin"


def bench_settings(state_dir: Path) -> Settings:
    """The dev stack's settings with a throwaway state dir (Keycloak admin secret copied)."""
    stack = load_settings()
    admin = FileSecretStore(stack.secrets_dir).require(ADMIN_SECRET)
    settings = dataclasses.replace(stack, state_dir=state_dir)
    FileSecretStore(settings.secrets_dir).put(ADMIN_SECRET, admin)
    return settings


def variant(spec: PracticeSpec, i: int) -> PracticeSpec:
    return dataclasses.replace(
        spec, praxisname=f"bench-{i:02d}-{spec.praxisname}", order_id=f"{spec.order_id}-B{i:02d}"
    )


def run_one(settings: Settings, spec: PracticeSpec, host: str) -> dict[str, Any]:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    return provision(ctx, spec, host=host)


def critical_path(result: dict[str, Any]) -> float:
    steps = {s["name"].split(" ")[0]: s["seconds"] for s in result["steps"] if s["status"] == "ok"}
    branches = result["parallel_branches"]
    serial = sum(v for k, v in steps.items() if not k.startswith("realm"))
    return serial + max(branches.values())


def cleanup(settings: Settings, host: str) -> None:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    for record in ctx.inventory.list_practices(include_tombstoned=True):
        if record.slot.host != host:
            continue
        nextcloud_stack.remove_stack(ctx.engine(host), record.slot, ctx.reporter)
        if ctx.keycloak.get_realm(record.realm) is not None:
            identity.delete_realm(ctx.keycloak, record.slot, ctx.reporter)


def cli_noop(settings: Settings, spec: PracticeSpec) -> float:
    """Seconds of ``smartpraxx-provision provision <excel> --yes`` in a new process (the
    benchmark's Excel variant: the sample with the variant's praxisname and order number)."""
    import openpyxl

    with tempfile.TemporaryDirectory(prefix="spx-bench-xlsx-") as tmp:
        book = openpyxl.load_workbook(SAMPLE)
        book["Praxis"]["B2"] = spec.praxisname
        book["Praxis"]["B8"] = spec.order_id
        excel = Path(tmp) / "praxis.xlsx"
        book.save(excel)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPRAXX_")}
        env["SMARTPRAXX_STATE_DIR"] = str(settings.state_dir)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "smartpraxx_provision.cli", "provision", str(excel), "--yes"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practices", type=int, default=10)
    parser.add_argument("--skip-batch", action="store_true", help="only the single provision")
    args = parser.parse_args()
    spec = load_practice_spec(SAMPLE)

    with tempfile.TemporaryDirectory(prefix="spx-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        host = f"cloud{700 + secrets.randbelow(99)}"
        OpContext(settings=settings).inventory.add_host(
            host, "unix:///var/run/docker.sock", capacity=100
        )
        try:
            first = run_one(settings, variant(spec, 0), host)
            crit = critical_path(first)
            print("one provision (stand-in Nextcloud, real MariaDB/Redis/Keycloak):")
            for s in first["steps"]:
                print(f"  {s['name']:<55} {s['seconds']:7.2f} s")
            branches = first["parallel_branches"]
            serial = crit - max(branches.values()) + sum(branches.values())
            print(f"  parallel branches: {branches} (run one after the other: {serial:.2f} s)")
            print(
                f"  wall {first['seconds']:.2f} s, critical path {crit:.2f} s, "
                f"ratio {first['seconds'] / crit:.3f} (goal <= 1.15)"
            )
            reruns = []
            for _ in range(3):
                t0 = time.monotonic()
                again = run_one(settings, variant(spec, 0), host)
                reruns.append(time.monotonic() - t0)
                assert again["no_changes"], "a re-run changed something"
            print(
                f"no-op re-run: median {statistics.median(reruns):.2f} s "
                f"(min {min(reruns):.2f}, max {max(reruns):.2f}; goal < 2 s); smoke skipped "
                f"{again['smoke']['skipped']}"
            )
            for s in again["steps"]:
                print(f"  {s['name']:<55} {s['seconds']:7.2f} s")
            cli = [cli_noop(settings, variant(spec, 0)) for _ in range(3)]
            print(f"no-op re-run as an operator types it (a fresh CLI process, imports "
                  f"included): median {statistics.median(cli):.2f} s "
                  f"(min {min(cli):.2f}, max {max(cli):.2f})")
            if not args.skip_batch:
                n = args.practices
                for concurrency, offset in ((1, 100), (4, 200)):
                    specs = [variant(spec, offset + i) for i in range(n)]
                    t0 = time.monotonic()
                    with ThreadPoolExecutor(max_workers=concurrency) as pool:
                        list(pool.map(lambda s: run_one(settings, s, host), specs))
                    wall = time.monotonic() - t0
                    print(
                        f"{n} practices, concurrency {concurrency}: {wall:.1f} s "
                        f"({wall / n:.1f} s per practice)"
                    )
        finally:
            cleanup(settings, host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
