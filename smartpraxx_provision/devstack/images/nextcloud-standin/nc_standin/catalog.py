"""Apps the Nextcloud stand-in (test double) knows, and which of them its image contains.

Installed apps and versions come from the vendored ``reference/nextcloud-occ-app-list.json``
(``occ app:list --output=json`` of the real Nextcloud 34.0.1 capture). Which apps an image
*contains* is explicit: the file ``image-apps`` next to the package (``<id> <version>`` per
line), written at build time from the reference list plus the build arg
``NEXTCLOUD_STANDIN_EXTRA_APPS`` minus ``NEXTCLOUD_STANDIN_WITHOUT_APPS`` (see the
Dockerfile). Like a real server without a reachable app store, the stand-in can enable only
apps its image contains; every other id fails with "Could not download app X, it was not
found on the appstore". The versions of spreed/passwords (default extras: a derived image with
Talk and Passwords baked in) are NOT captured from a live server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import REFERENCE_DIR

APP_LIST = json.loads((REFERENCE_DIR / "nextcloud-occ-app-list.json").read_text("utf-8"))
INITIALLY_ENABLED: dict[str, str] = APP_LIST["enabled"]
INITIALLY_DISABLED: dict[str, str] = APP_LIST["disabled"]
DEFAULT_EXTRA_APPS = {"spreed": "24.0.0", "passwords": "2026.2.0",  # unverified versions
                      "announcementcenter": "7.5.0"}  # info.xml of its source (NC 32-35)
IMAGE_APPS_FILE = REFERENCE_DIR.parent / "image-apps"


def image_apps_text(extra: str = "", without: str = "") -> str:
    """The ``image-apps`` file: reference apps + ``extra`` (``id=version ...``) - ``without``."""
    apps = {**INITIALLY_ENABLED, **INITIALLY_DISABLED}
    for item in extra.split():
        app, _, version = item.partition("=")
        apps[app] = version or "1.0.0"
    for app in without.split():
        apps.pop(app, None)
    return "".join(f"{a} {v}\n" for a, v in sorted(apps.items()))


def read_image_apps(path: Path = IMAGE_APPS_FILE) -> dict[str, str]:
    """The apps this image contains (id -> version)."""
    if not path.is_file():  # running from the source tree (unit tests): the default build
        text = image_apps_text(" ".join(f"{a}={v}" for a, v in DEFAULT_EXTRA_APPS.items()))
    else:
        text = path.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            out[parts[0]] = parts[1]
    return out


KNOWN_APPS: dict[str, str] = read_image_apps()
NOT_SHIPPED = {"deck", "forms", "user_oidc", "spreed", "passwords", "announcementcenter"}
# shipped.json "alwaysEnabled" of Nextcloud server (app:disable refuses them)
ALWAYS_ENABLED = {
    "cloud_federation_api", "dav", "federatedfilesharing", "files", "lookup_server_connector",
    "oauth2", "provisioning_api", "settings", "theming", "twofactor_backupcodes", "viewer",
    "workflowengine",
}
# occ namespaces registered by an app: unavailable while the app is disabled or while
# Nextcloud is in maintenance mode ("Commands provided by apps are unavailable.").
NAMESPACE_APP = {
    "activity": "activity", "announcementcenter": "announcementcenter", "app_api": "app_api", "circles": "circles", "dav": "dav",
    "deck": "deck", "federation": "federation", "files": "files", "notification": "notifications",
    "photos": "photos", "related": "related_resources", "serverinfo": "serverinfo",
    "sharing": "files_sharing", "support": "support", "text": "text", "theming": "theming",
    "trashbin": "files_trashbin", "twofactor_totp": "twofactor_totp", "user_oidc": "user_oidc",
    "versions": "files_versions", "webhook_listeners": "webhook_listeners",
    "workflows": "workflowengine",
}

THEMING_DEFAULTS = {
    "name": "Nextcloud", "url": "https://nextcloud.com", "slogan": "a safe home for all your data",
    "primary_color": "#00679e", "background_color": "#00679e",
}


def capabilities(enabled: dict[str, str], theming: dict[str, str]) -> dict[str, Any]:
    """Minimal capabilities of the enabled apps (shape only; not captured from a live server)."""
    caps: dict[str, Any] = {
        "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav",
                 "reference-api": True, "mod-rewrite-working": False},
        "files": {"bigfilechunking": True, "undelete": "files_trashbin" in enabled},
    }
    if "theming" in enabled:
        t = {**THEMING_DEFAULTS, **theming}
        caps["theming"] = {"name": t["name"], "url": t["url"], "slogan": t["slogan"],
                           "color": t["primary_color"], "background-default": True}
    if "deck" in enabled:
        caps["deck"] = {"version": enabled["deck"], "canCreateBoards": True,
                        "apiVersions": ["1.0", "1.1", "1.2", "1.3"]}
    if "forms" in enabled:
        caps["forms"] = {"version": enabled["forms"], "apiVersions": ["v3"]}
    if "spreed" in enabled:
        caps["spreed"] = {"features": ["audio", "video", "chat-v2", "conversation-v4"],
                          "config": {}, "version": enabled["spreed"]}
    if "user_status" in enabled:
        caps["user_status"] = {"enabled": True, "restore": True, "supports_emoji": True}
    return caps
