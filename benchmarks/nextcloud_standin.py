"""Measure the Nextcloud stand-in image (a test double): build time, first-start install
time against real MariaDB + Redis, and the time of one ``docker exec ... php occ`` run.

    python benchmarks/nextcloud_standin.py              # build with the layer cache
    python benchmarks/nextcloud_standin.py --no-cache   # full build (apt-get included)

Builds a throwaway tag ``smartpraxx-bench/nextcloud-standin:<pid>`` FROM the local base
image, runs it against the local MariaDB/Redis images on a private network, removes
everything afterwards (containers, volumes, network, tag).

Measured on the dev machine (2 shared cores, Docker 20.10, overlay2), 2026-11-29:
    build --no-cache 15.4 s (14.2-34.1 s over runs; almost all apt-get of python3 +
    python3-pymysql, depends on the mirror), cached 0.2 s;
    container start to healthy (install into MariaDB + Redis check) 2.8 s (HEALTHCHECK
    interval 2 s; the install itself takes < 1 s);
    one `php occ status` through the engine's exec API: median 0.26 s (min 0.19 s) of 10;
    `config:list --private --output=json` median 0.29 s; via the docker CLI ~0.4 s.
    (A real Nextcloud: 0.5-0.8 s per occ run, see the occ notes.)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smartpraxx_provision.adapters.docker_engine import ContainerSpec, DockerEngine
from smartpraxx_provision.devstack.images import MARIADB_TAG, REDIS_TAG, from_tag
from smartpraxx_provision.secrets.base import generate_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' wait helper

from tests.fixtures.docker_wait import wait_healthy

CONTEXT = (
    Path(__file__).resolve().parents[1]
    / "smartpraxx_provision" / "devstack" / "images" / "nextcloud-standin"
)


def main() -> None:
    no_cache = "--no-cache" in sys.argv[1:]
    engine = DockerEngine()
    tag = f"smartpraxx-bench/nextcloud-standin:{os.getpid()}"
    prefix = f"spx-bench-ncsi-{os.getpid()}"
    labels = {"de.smartpraxx.managed": "benchmark"}
    pw_db, pw_redis = generate_token(16), generate_token(16)
    net = f"{prefix}-net"
    names = [f"{prefix}-{n}" for n in ("db", "redis", "app")]
    volumes = [f"{prefix}-dbdata", f"{prefix}-appdata"]
    try:
        start = time.monotonic()
        cmd = ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={from_tag('nextcloud-standin')}", "-t", tag]
        subprocess.run([*cmd, *(["--no-cache"] if no_cache else []), str(CONTEXT)],
                       check=True, stdout=subprocess.DEVNULL, timeout=1800)
        print(f"build ({'no cache' if no_cache else 'layer cache'}): "
              f"{time.monotonic() - start:.1f}s")
        engine.ensure_network(net, labels)
        common: dict[str, Any] = {"labels": labels, "network": net, "restart_policy": "no"}
        engine.ensure_container(ContainerSpec(
            name=names[0], image=MARIADB_TAG, aliases=("db",),
            env={"MARIADB_RANDOM_ROOT_PASSWORD": "1", "MARIADB_DATABASE": "nextcloud",
                 "MARIADB_USER": "nextcloud", "MARIADB_PASSWORD": pw_db},
            volumes={volumes[0]: "/var/lib/mysql"}, **common))
        engine.ensure_container(ContainerSpec(
            name=names[1], image=REDIS_TAG, aliases=("redis",),
            env={"REDIS_PASSWORD": pw_redis}, **common))
        wait_healthy(engine, names[0], 120)
        wait_healthy(engine, names[1], 120)
        start = time.monotonic()
        engine.ensure_container(ContainerSpec(
            name=names[2], image=tag, volumes={volumes[1]: "/var/www/html"},
            env={"NEXTCLOUD_ADMIN_USER": "admin", "NEXTCLOUD_ADMIN_PASSWORD": pw_db + "-admin",
                 "MYSQL_HOST": "db", "MYSQL_DATABASE": "nextcloud", "MYSQL_USER": "nextcloud",
                 "MYSQL_PASSWORD": pw_db, "REDIS_HOST": "redis",
                 "REDIS_HOST_PASSWORD": pw_redis}, **common))
        wait_healthy(engine, names[2], 180, interval=0.2)
        print(f"start to healthy (install into MariaDB): {time.monotonic() - start:.1f}s")
        for args in (["status"], ["config:list", "--private", "--output=json"]):
            times = []
            for _ in range(10):
                t = time.monotonic()
                res = engine.exec(names[2], ["php", "occ", *args], user="www-data",
                                  workdir="/var/www/html")
                times.append(time.monotonic() - t)
                assert res.ok, res.stderr
            print(f"occ {' '.join(args)}: median {statistics.median(times):.2f}s, "
                  f"min {min(times):.2f}s (10 docker exec runs)")
    finally:
        for n in reversed(names):
            engine.remove_container(n)
        for v in volumes:
            engine.remove_volume(v)
        engine.remove_network(net)
        subprocess.run(["docker", "rmi", "-f", tag], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
