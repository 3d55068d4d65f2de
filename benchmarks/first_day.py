"""First-day benchmark (measured, not asserted): a staff member's whole first day, wall time.

Needs `smartpraxx-provision dev-stack up` first (Docker engine, images, Keycloak) and Debian's
chromium + chromium-driver + libnss3-tools (`make test-deps`). Each run uses a throwaway
state dir, fleet host name and its own mail sink on a free 127.0.0.1 port (the shared
mailbox is not touched), and removes what it created (containers, volumes, network, realm).

Phases of one run, each timed on its own:
  provision      `smartpraxx-provision provision SAMPLE --yes --json` as a child process
                 (its steps are listed as well)
  mail           the invitation read from the sink with `dev-stack mail list|show --json`
  browser        headless Chromium started (fresh profile and NSS HOME)
  set password   invitation link → Keycloak's pages → password set
  keycloak login login at the realm's account console
  nextcloud      Nextcloud /login → user_oidc → realm → dashboard → OCS cloud/user; only
                 when the practice's Nextcloud URL is browser-reachable (https *.localhost via
                 the local Caddy), else reported as not measured with the reason
  total          provision start → the staff member is in (Nextcloud, else Keycloak)

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
from smartpraxx_provision.devstack import mailsink
from smartpraxx_provision.operations import identity, nextcloud_stack
from smartpraxx_provision.operations.context import OpContext
from smartpraxx_provision.output import Reporter
from smartpraxx_provision.secrets import FileSecretStore
from smartpraxx_provision.starter import load_practice_spec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the browser harness and flow steps of the tests

from tests.e2e.first_day import (  # noqa: E402
    account_url,
    browser_reaches,
    ca_certificates,
    invitation,
    keycloak_login,
    new_password,
    nextcloud_landing,
    origin,
    set_password_from_invitation,
)
from tests.fixtures.browser import Browser  # noqa: E402

SAMPLE = REPO / "starter_excel_samples" / "hausarztpraxis-mueller.xlsx"
STAFF = "sabine.hoffmann"
ADMIN_SECRET = "platform/keycloak-admin"
PHASES = ("provision", "mail", "browser", "set password", "keycloak login", "nextcloud", "total")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(stack: Settings, state_dir: Path, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SMARTPRAXX_") or k == "SMARTPRAXX_LOCAL_IMAGE_TAG"}
    env.update({
        "SMARTPRAXX_STATE_DIR": str(state_dir),
        "SMARTPRAXX_KEYCLOAK_URL": stack.keycloak_url,
        "SMARTPRAXX_KEYCLOAK_PORT": str(stack.keycloak_port),
        "SMARTPRAXX_SMTP_PORT": str(smtp_port),
        "PYTHONPATH": str(REPO),
    })
    return env


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "smartpraxx_provision.cli", *args, "--json"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout))


def _cleanup(settings: Settings, host: str) -> None:
    ctx = OpContext(settings=settings, reporter=Reporter(quiet=True))
    for record in ctx.inventory.list_practices(include_tombstoned=True):
        if record.slot.host != host:
            continue
        nextcloud_stack.remove_stack(ctx.engine(host), record.slot, ctx.reporter)
        if ctx.keycloak.get_realm(record.realm) is not None:
            identity.delete_realm(ctx.keycloak, record.slot, ctx.reporter)


def one_run(stack: Settings, shots: Path) -> dict[str, Any]:
    person = next(p for p in load_practice_spec(SAMPLE).persons if p.username == STAFF)
    out: dict[str, Any] = {"seconds": {}, "provision_steps": {}, "notes": []}
    sec = out["seconds"]
    with tempfile.TemporaryDirectory(prefix="spx-firstday-") as tmp:
        root = Path(tmp)
        state = root / "state"
        settings = load_settings(env={}, overrides={
            "state_dir": str(state), "keycloak_url": stack.keycloak_url,
            "keycloak_port": str(stack.keycloak_port)})
        admin = FileSecretStore(stack.secrets_dir).require(ADMIN_SECRET)
        FileSecretStore(settings.secrets_dir).put(ADMIN_SECRET, admin)
        sink = load_settings(env={}, overrides={"state_dir": str(root / "mail"),
                                                "smtp_port": str(_free_port())})
        mailsink.ensure_mailsink(sink, Reporter(quiet=True))
        env = _env(stack, state, sink.smtp_port)
        host = f"cloud{600 + secrets.randbelow(99)}"
        _cli(env, "hosts", "add", host, "--endpoint", "unix:///var/run/docker.sock",
             "--capacity", "5")
        browser: Browser | None = None
        try:
            t0 = time.monotonic()
            doc = _cli(env, "provision", str(SAMPLE), "--host", host, "--yes")
            sec["provision"] = time.monotonic() - t0
            out["provision_steps"] = {s["name"]: s["seconds"] for s in doc.get("steps", [])}
            t = time.monotonic()
            mail = invitation(env, sink.state_dir, person.email)
            sec["mail"] = time.monotonic() - t
            t = time.monotonic()
            browser = Browser(root / "chromium", shots, ca_certificates(stack))
            sec["browser"] = time.monotonic() - t
            password = new_password()
            t = time.monotonic()
            set_password_from_invitation(browser, mail["link"], password)
            sec["set password"] = time.monotonic() - t
            t = time.monotonic()
            keycloak_login(browser, account_url(origin(mail["link"]), doc["realm"]), STAFF,
                           password)
            sec["keycloak login"] = time.monotonic() - t
            nextcloud_url = doc["urls"]["nextcloud"]
            if browser_reaches(nextcloud_url):
                t = time.monotonic()
                data = nextcloud_landing(browser, nextcloud_url, STAFF, password)
                assert data["id"] == STAFF, data
                sec["nextcloud"] = time.monotonic() - t
            else:
                out["notes"].append(f"nextcloud not measured: {nextcloud_url} is not browser-"
                                    "reachable (issuer wiring: https *.localhost via Caddy)")
            sec["total"] = time.monotonic() - t0
        finally:
            if browser is not None:
                browser.quit()
            _cleanup(settings, host)
            mailsink.stop_mailsink(sink, Reporter(quiet=True))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", dest="json_out", help="write the figures to this file")
    args = parser.parse_args()
    stack = load_settings()
    shots = REPO / "test-artifacts" / "first-day-benchmark"
    runs = []
    for i in range(args.runs):
        run = one_run(stack, shots / f"run-{i + 1}")
        runs.append(run)
        line = ", ".join(f"{k} {v:.1f}s" for k, v in run["seconds"].items())
        print(f"run {i + 1}: {line}")
        for note in run["notes"]:
            print(f"  {note}")
    print(f"\nfirst day, {len(runs)} run(s), load average {os.getloadavg()[0]:.1f}:")
    for phase in PHASES:
        values = [r["seconds"][phase] for r in runs if phase in r["seconds"]]
        if values:
            print(f"  {phase:<15} median {statistics.median(values):6.1f} s "
                  f"(min {min(values):.1f}, max {max(values):.1f})")
        else:
            print(f"  {phase:<15} not measured")
    print("  provision steps (run 1):")
    for name, seconds in runs[0]["provision_steps"].items():
        print(f"    {name:<55} {seconds:6.2f} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
