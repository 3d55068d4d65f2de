"""Measure `dev-stack up` phases and the building blocks of the local stack.

    python benchmarks/devstack_up.py              # warm: up twice (2nd must be a no-op < 5 s)
    python benchmarks/devstack_up.py --cold-base  # also debootstrap+import a throwaway base tag
    python benchmarks/devstack_up.py --cold-images  # also rebuild the service images, no cache

Uses the environment's settings (images cached in the user's cache dir). --cold-base writes
its root file system tarball to a temporary cache dir and removes its image afterwards.

Measured on the dev machine (2 shared cores, Debian docker.io 20.10, deb.debian.org mirror):

    base: debootstrap --variant=minbase bookworm + tar   51.1 s  (tarball 121 MB)
          docker import of the cached tarball              1.3 s
    smartpraxx/mariadb:dev, cold (no cache)               22-52 s (varies with the shared load)
    smartpraxx/redis:dev, cold (no cache)                 14.9 s
    smartpraxx/nextcloud-standin:dev, cold (no cache)     22.6 s
    Keycloak 26.5.6 first start (start-dev, cached zip)   93.4 s  (restart, realm DB kept: 21 s)
    dev-stack up, warm no-op: phases 0.3-0.5 s, whole CLI process 2.1 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import docker.errors

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.config import load_settings, replace
from smartpraxx_provision.devstack import images, stack
from smartpraxx_provision.output import Reporter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-base", action="store_true")
    parser.add_argument("--cold-images", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    figures: dict[str, object] = {}

    if args.cold_base:
        with tempfile.TemporaryDirectory(prefix="sx-bench-") as tmp:
            cold = replace(settings, cache_dir=Path(tmp))
            engine = DockerEngine()
            saved = images.BASE_TAG
            images.BASE_TAG = "smartpraxx/debian-base:bench"
            try:
                figures["cold_base"] = images.ensure_base_image(
                    cold, Reporter(), engine, rebuild=True
                )
            finally:
                with contextlib.suppress(docker.errors.ImageNotFound):
                    engine.client.images.remove(images.BASE_TAG)
                images.BASE_TAG = saved

    start = time.monotonic()
    first = stack.up(settings, Reporter(), rebuild=args.cold_images)
    figures["first_up"] = {"wall": round(time.monotonic() - start, 2), **first["timings"]}
    figures["images"] = first["images"]
    start = time.monotonic()
    second = stack.up(settings, Reporter(quiet=True))
    figures["warm_up"] = {"wall": round(time.monotonic() - start, 2), **second["timings"]}
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
