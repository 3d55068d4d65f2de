"""``admin_audit`` of the stand-in (test double): while the app is enabled, audit lines go as
Nextcloud's JSON log lines (one object per line: reqId, level, time, remoteAddr, user, app,
method, url, message, userAgent, version) to ``logfile_audit`` (default
``<datadirectory>/audit.log``), like the real app with ``log_type_audit`` ``file``. Messages
follow the real app's wording for what the stand-in does: logins (``Login attempt``,
``Login successful``) and file access over WebDAV (``File with id "N" written to: "/p"``,
``... created: ...``, ``... accessed: ...``). Not the real app: no other events."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import VERSION_STRING
from .commands import enabled_apps
from .state import Store, SystemConfig


def log_file(system: SystemConfig) -> Path | None:
    """Where the lines go, None when admin_audit writes none (log_type_audit not file)."""
    if str(system.get("log_type_audit", "file")) != "file":
        return None
    configured = system.get("logfile_audit")
    if configured:
        return Path(str(configured))
    return Path(str(system.get("datadirectory") or "/var/www/html/data")) / "audit.log"


def write(store: Store, system: SystemConfig, uid: str, message: str,
          request: dict[str, str] | None = None) -> None:
    if "admin_audit" not in enabled_apps(store):
        return
    path = log_file(system)
    if path is None:
        return
    req = request or {}
    line: dict[str, Any] = {
        "reqId": secrets.token_urlsafe(15),
        "level": 1,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "remoteAddr": req.get("remoteAddr", ""),
        "user": uid,
        "app": "admin_audit",
        "method": req.get("method", ""),
        "url": req.get("url", ""),
        "message": message,
        "userAgent": req.get("userAgent", "--"),
        "version": VERSION_STRING,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
