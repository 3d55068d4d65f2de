"""Load benchmark of the order service's webhook: accepted deliveries per second and the
latency of the 2xx, measured with wrk (a real HTTP load tool) against 127.0.0.1.

Starts `smartpraxx-provision serve` on a throwaway state dir (SQLite inventory, file secret
store), then runs wrk twice: every request a NEW delivery (unique id: one durable insert each),
and every request the SAME delivery (duplicates: one lookup each). The deliveries are
``payment.pending`` events, which the worker stores and ignores, so the figures are those of
the accepting path alone. Needs `wrk` (Debian package).

    PYTHONPATH=. python3 benchmarks/webhook_load.py [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

LUA_NEW = """
counter = 0
request = function()
  counter = counter + 1
  local body = "event=payment.pending&payment_state=pending&order_id=B" .. counter ..
               "&id=" .. counter .. "&payer%5Bemail%5D=o%40x.test"
  return wrk.format("POST", nil, {["Content-Type"]="application/x-www-form-urlencoded"}, body)
end
"""
LUA_DUP = """
wrk.method = "POST"
wrk.body = "event=payment.pending&payment_state=pending&order_id=DUP&id=1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrk(url: str, lua: str, seconds: int, connections: int, tmp: Path) -> dict[str, str]:
    script = tmp / "load.lua"
    script.write_text(lua)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    figures = {"requests/s": re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+\w+)", out)
        figures[f"p{pct}"] = m.group(1) if m else "?"
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non-2xx"] = non2xx.group(1) if non2xx else "0"
    return figures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPRAXX_")}
    env.update({"SMARTPRAXX_STATE_DIR": str(tmp / "state"), "SMARTPRAXX_SERVICE_PORT": str(port)})
    cli = [sys.executable, "-m", "smartpraxx_provision.cli"]
    url = subprocess.run([*cli, "orders", "webhook-url", "--reveal"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    with (tmp / "service.log").open("wb") as log:
        proc = subprocess.Popen([*cli, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        load = os.getloadavg()[0]
        new = _wrk(url, LUA_NEW, args.seconds, args.connections, tmp)
        dup = _wrk(url, LUA_DUP, args.seconds, args.connections, tmp)
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"webhook load, {args.connections} connections, {args.seconds}s each, "
          f"load average {load:.1f}, {os.cpu_count()} cores")
    print(f"{'deliveries':<12} {'req/s':>8} {'p50':>9} {'p90':>9} {'p99':>9} {'non-2xx':>8}")
    for name, f in (("new", new), ("duplicate", dup)):
        print(f"{name:<12} {f['requests/s']:>8} {f['p50']:>9} {f['p90']:>9} {f['p99']:>9} "
              f"{f['non-2xx']:>8}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
