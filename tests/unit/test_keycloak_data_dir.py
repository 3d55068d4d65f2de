"""The local Keycloak's data dir (H2 database with the realms' plaintext client secrets) is
private: 0700, nothing in it group/world readable, also when it was created world-readable
by an older version (the state the issue found: 0644 files in 0755 directories)."""

from __future__ import annotations

import stat
from pathlib import Path

from smartpraxx_provision.config import load_settings
from smartpraxx_provision.devstack import keycloak


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_secure_data_dir_fixes_a_world_readable_h2_tree(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"state_dir": str(tmp_path / "state")})
    data = keycloak.data_dir(settings)
    h2 = data / "h2"
    h2.mkdir(parents=True)
    db = h2 / "keycloakdb.mv.db"
    db.write_bytes(b"client secret in plain text")
    trace = h2 / "keycloakdb.trace.db"
    trace.write_bytes(b"")
    for d in (data, h2):
        d.chmod(0o755)
    db.chmod(0o644)
    trace.chmod(0o664)
    outside = tmp_path / "outside.txt"
    outside.write_text("not Keycloak's")
    outside.chmod(0o644)
    (h2 / "link").symlink_to(outside)

    assert keycloak.secure_data_dir(settings) == data
    assert _mode(data) == 0o700 and _mode(h2) == 0o700
    assert _mode(db) == 0o600 and _mode(trace) == 0o600
    assert _mode(outside) == 0o644  # a symlink's target is not touched
    # idempotent, and a fresh state dir gets a 0700 data dir before Keycloak's first start
    keycloak.secure_data_dir(settings)
    assert _mode(db) == 0o600
    fresh = load_settings(env={}, overrides={"state_dir": str(tmp_path / "fresh")})
    assert _mode(keycloak.secure_data_dir(fresh)) == 0o700


def test_server_process_creates_private_files(tmp_path: Path) -> None:
    """What the Keycloak process creates later (new H2 files) is not group/world readable:
    the same spawn the start uses, running a real process that creates a file and a dir."""
    script = "mkdir h2dir && echo secret > h2dir/new.mv.db"
    proc = keycloak.spawn_server(["sh", "-c", script], tmp_path, {"PATH": "/usr/bin:/bin"},
                                 tmp_path / "kc.log")
    assert proc.wait(timeout=30) == 0
    assert _mode(tmp_path / "h2dir") == 0o700
    assert _mode(tmp_path / "h2dir" / "new.mv.db") == 0o600
