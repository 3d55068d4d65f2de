"""First-day benchmark (measured, not asserted): a staff member's whole first day, wall time.

Each run brings up its own embedded stack in the TLS mode, as the browser tests do
(`dev-stack up` in a throwaway state dir: its own Keycloak started with the browser hostname,
its own mail sink, the local Caddy with `tls internal` on a free 127.0.0.1 port), then removes
what it created (containers, volumes, network of its fleet host; its Keycloak, mail sink and
Caddy by pid). Needs the Docker engine and the local images (`make stack`) and Debian's
chromium + chromium-driver + libnss3-tools (`make test-deps`). The stack's start is reported
(`stack up`) but not part of the total: a practice's first day does not start Keycloak.

Phases of one run, each timed on its own:
  provision      `smartpraxx-provision provision SAMPLE --yes --json` as a child process
                 (its steps are listed as well)
  mail           the invitation read from the sink with `dev-stack mail list|show --json`
  browser        headless Chromium started (fresh profile and NSS HOME)
  set password   invitation link → Keycloak's pages → password set
  start page     the practice's start page → the realm's login → greeted by name (SSO
                 session)
  nextcloud      Nextcloud /login → user_oidc → realm (single sign-on: no second password
                 form) → dashboard → OCS cloud/user as that user
  total          provision start → the staff member is in her Nextcloud

    python benchmarks/first_day.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from smartpraxx_provision.config import Settings, load_settings
from smartpraxx_provision.devstack import keycloak, mailsink, proxy
from smartpraxx_provision.operations import identity, nextcloud_stack
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.starter import load_practice_spec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the browser harness and flow steps of the tests

from tests.e2e.first_day import (  # noqa: E402
    browser_reaches,
    invitation,
    new_password,
    nextcloud_landing,
    set_password_from_invitation,
    start_page_login,
)
from tests.fixtures.browser import Browser  # noqa: E402

SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
STAFF = "sabine.hoffmann"
PHASES = ("provision", "mail", "browser", "set password", "start page", "nextcloud", "total")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(state_dir: Path) -> dict[str, str]:
    """The CLI environment of a TLS-mode embedded stack in ``state_dir`` (as the tests')."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SMARTPRAXX_") or k == "SMARTPRAXX_LOCAL_IMAGE_TAG"}
    kc_port = _free_port()
    env.update({
        "PYTHONPATH": str(REPO),
        "SMARTPRAXX_STATE_DIR": str(state_dir),
        "SMARTPRAXX_KEYCLOAK_PORT": str(kc_port),
        "SMARTPRAXX_KEYCLOAK_URL": f"http://127.0.0.1:{kc_port}",
        "SMARTPRAXX_PROXY_PORT": str(_free_port()),
        "SMARTPRAXX_SMTP_PORT": str(_free_port()),
        "SMARTPRAXX_DOMAIN": "smartpraxx.localhost",
        "SMARTPRAXX_IDENTITY_HOST": "mein.smartpraxx.localhost",
        "SMARTPRAXX_PUBLIC_SCHEME": "https",
    })
    return env


def _cli(env: dict[str, str], *args: str, json_out: bool = True) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "smartpraxx_provision.cli", *args, *(["--json"] * json_out)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout)) if json_out else {}


def _cleanup(settings: Settings, host: str) -> None:
    """What the run created: the fleet host's slots and realms, then its own services."""
    quiet = Reporter(quiet=True)
    ctx = OpContext(settings=settings, reporter=quiet)
    for record in ctx.inventory.list_practices(include_tombstoned=True):
        if record.slot.host != host:
            continue
        nextcloud_stack.remove_stack(ctx.engine(host), record.slot, quiet)
        if ctx.keycloak.get_realm(record.realm) is not None:
            identity.delete_realm(ctx.keycloak, record.slot, quiet)
    for stop in (keycloak.stop_keycloak, mailsink.stop_mailsink, proxy.stop_proxy):
        stop(settings, quiet)


def one_run(shots: Path) -> dict[str, Any]:
    person = next(p for p in load_practice_spec(SAMPLE).persons if p.username == STAFF)
    out: dict[str, Any] = {"seconds": {}, "provision_steps": {}}
    sec = out["seconds"]
    with tempfile.TemporaryDirectory(prefix="spx-firstday-") as tmp:
        state = Path(tmp) / "state"
        env = _env(state)
        settings = load_settings(env={k: v for k, v in env.items() if k.startswith("SMARTPRAXX_")})
        host = f"cloud{600 + secrets.randbelow(99)}"
        browser: Browser | None = None
        try:
            t = time.monotonic()
            _cli(env, "dev-stack", "up", json_out=False)
            out["stack_up"] = time.monotonic() - t
            _cli(env, "hosts", "add", host, "--endpoint", "unix:///var/run/docker.sock",
                 "--capacity", "5")
            t0 = time.monotonic()
            doc = _cli(env, "provision", str(SAMPLE), "--host", host, "--yes")
            sec["provision"] = time.monotonic() - t0
            out["provision_steps"] = {s["name"]: s["seconds"] for s in doc.get("steps", [])}
            nextcloud_url = doc["urls"]["nextcloud"]
            if not browser_reaches(nextcloud_url):
                raise SystemExit(f"{nextcloud_url} is not browser-reachable: not the TLS mode?")
            t = time.monotonic()
            mail = invitation(env, state, person.email)
            sec["mail"] = time.monotonic() - t
            t = time.monotonic()
            browser = Browser(Path(tmp) / "chromium", shots, [Path(proxy.ca_certificate(settings))])
            sec["browser"] = time.monotonic() - t
            password = new_password()
            t = time.monotonic()
            set_password_from_invitation(browser, mail["link"], password)
            sec["set password"] = time.monotonic() - t
            t = time.monotonic()
            start_page_login(browser, doc["urls"]["start_page"], STAFF, password)
            sec["start page"] = time.monotonic() - t
            t = time.monotonic()
            data = nextcloud_landing(browser, nextcloud_url, STAFF, password)
            if data["id"] != STAFF:
                raise SystemExit(f"landed in Nextcloud as {data['id']!r}, not {STAFF}")
            sec["nextcloud"] = time.monotonic() - t
            sec["total"] = time.monotonic() - t0
        finally:
            if browser is not None:
                browser.quit()
            _cleanup(settings, host)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", dest="json_out", help="write the figures to this file")
    args = parser.parse_args()
    shots = REPO / "test-artifacts" / "first-day-benchmark"
    runs = []
    for i in range(args.runs):
        run = one_run(shots / f"run-{i + 1}")
        runs.append(run)
        line = ", ".join(f"{k} {v:.1f}s" for k, v in run["seconds"].items())
        print(f"run {i + 1}: {line} (stack up {run['stack_up']:.1f}s, not counted)")
    print(f"\nfirst day, {len(runs)} run(s), load average {os.getloadavg()[0]:.1f}:")
    for phase in PHASES:
        values = [r["seconds"][phase] for r in runs if phase in r["seconds"]]
        print(f"  {phase:<15} median {statistics.median(values):6.1f} s "
              f"(min {min(values):.1f}, max {max(values):.1f})")
    print("  provision steps (run 1):")
    for name, seconds in runs[0]["provision_steps"].items():
        print(f"    {name:<55} {seconds:6.2f} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
