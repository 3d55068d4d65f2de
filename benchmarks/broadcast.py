"""Broadcast fan-out benchmark (measured, not asserted) against the running local stack.

Needs `smartpraxx-provision dev-stack up` first. Provisions N copies of the GP sample
(stand-in Nextcloud + real MariaDB/Redis/Keycloak each; no smoke) on a throwaway state dir and
fleet host, then sends one broadcast per concurrency level (default 1, 4, 8) to all of them
and reports the wall time and the per-platform cost (put_archive + exec of broadcast.sh, which
runs 5-6 occ commands on the platform). Everything created is removed afterwards.

    python benchmarks/broadcast.py [--platforms 50] [--levels 1,4,8] [--out FILE.md]

Run with SMARTPRAXX_LOCAL_IMAGE_TAG set like the tests if the stand-in image is your own.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.domain.audience import build_target
from smartpraxx_provision.domain.model import PracticeSpec
from smartpraxx_provision.operations import broadcast, identity, nextcloud_stack
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.operations.provision import provision
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter import load_practice_spec

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
ADMIN_SECRET = "platform/keycloak-admin"


def bench_settings(state_dir: Path) -> Settings:
    stack = load_settings()
    admin = FileSecretStore(stack.secrets_dir).require(ADMIN_SECRET)
    settings = dataclasses.replace(stack, state_dir=state_dir)
    FileSecretStore(settings.secrets_dir).put(ADMIN_SECRET, admin)
    return settings


def variant(spec: PracticeSpec, i: int) -> PracticeSpec:
    return dataclasses.replace(spec, praxisname=f"bcast-{i:02d}", order_id=f"BC-{i:02d}")


def cleanup(settings: Settings, host: str) -> None:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    for record in ctx.inventory.list_practices(include_tombstoned=True):
        if record.slot.host != host:
            continue
        nextcloud_stack.remove_stack(ctx.engine(host), record.slot, ctx.reporter)
        if ctx.keycloak.get_realm(record.realm) is not None:
            identity.delete_realm(ctx.keycloak, record.slot, ctx.reporter)


def one_send(settings: Settings, concurrency: int) -> dict[str, Any]:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    target = build_target({"kv": ["KV Rheinland-Pfalz"]}, ["fach=Urologie,bereich=Abrechnung"])
    t0 = time.monotonic()
    result = broadcast.send(
        ctx, subject=f"Benchmark c={concurrency}", message="Messung der Verteilung.",
        link=None, valid_until=datetime.now(UTC) + timedelta(hours=1), target=target,
        concurrency=concurrency,
    )
    result["wall"] = time.monotonic() - t0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", type=int, default=50)
    parser.add_argument("--levels", default="1,4,8")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    spec = load_practice_spec(SAMPLE)
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="spx-bcast-") as tmp:
        settings = bench_settings(Path(tmp))
        host = f"cloud{600 + secrets.randbelow(99)}"
        OpContext(settings=settings).inventory.add_host(
            host, "unix:///var/run/docker.sock", capacity=200
        )
        try:
            t0 = time.monotonic()
            for i in range(args.platforms):
                ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
                provision(ctx, variant(spec, i), host=host, smoke=False)
            say(f"provisioned {args.platforms} platforms in {time.monotonic() - t0:.0f} s "
                "(set-up, not part of the figures)")
            say("")
            say("| concurrency | platforms | wall (s) | per platform median (s) | p90 (s) | "
                "max (s) | platforms/min |")
            say("|---|---|---|---|---|---|---|")
            for c in levels:
                r = one_send(settings, c)
                assert r["ok"] and r["delivered"] == args.platforms, r
                per = sorted(x["seconds"] for x in r["results"])
                p90 = per[min(len(per) - 1, int(0.9 * len(per)))]
                say(f"| {c} | {args.platforms} | {r['wall']:.1f} | {statistics.median(per):.2f} "
                    f"| {p90:.2f} | {max(per):.2f} | {60 * args.platforms / r['wall']:.0f} |")
        finally:
            cleanup(settings, host)
    if args.out:
        meta = (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
                f"({os.cpu_count()} cores, shared with other jobs), stand-in Nextcloud image "
                f"tag {os.environ.get('SMARTPRAXX_LOCAL_IMAGE_TAG', 'dev')}.\n\n")
        args.out.write_text("# Broadcast fan-out\n\n" + meta + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
