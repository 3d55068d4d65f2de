"""Apps the Nextcloud stand-in (test double) knows.

Installed apps and versions come from the vendored ``reference/nextcloud-occ-app-list.json``
(``occ app:list --output=json`` of the real Nextcloud 34.0.1 capture). ``APPSTORE_ONLY`` are
apps the real app store has but the capture could not enable (see the notes: spreed/Talk,
passwords); the stand-in "downloads" them on ``app:enable``/``app:install``. Their versions
are NOT captured from a live server (plausible values for NC 34: Talk follows NC major - 10,
Passwords' first NC 33/34 release per the notes).
"""

from __future__ import annotations

import json
from typing import Any

from . import REFERENCE_DIR

APP_LIST = json.loads((REFERENCE_DIR / "nextcloud-occ-app-list.json").read_text("utf-8"))
INITIALLY_ENABLED: dict[str, str] = APP_LIST["enabled"]
INITIALLY_DISABLED: dict[str, str] = APP_LIST["disabled"]
APPSTORE_ONLY = {"spreed": "24.0.0", "passwords": "2026.2.0"}  # unverified versions
KNOWN_APPS: dict[str, str] = {**INITIALLY_ENABLED, **INITIALLY_DISABLED, **APPSTORE_ONLY}
NOT_SHIPPED = {"deck", "forms", "user_oidc", "spreed", "passwords"}
# shipped.json "alwaysEnabled" of Nextcloud server (app:disable refuses them)
ALWAYS_ENABLED = {
    "cloud_federation_api", "dav", "federatedfilesharing", "files", "lookup_server_connector",
    "oauth2", "provisioning_api", "settings", "theming", "twofactor_backupcodes", "viewer",
    "workflowengine",
}
# occ namespaces registered by an app: unavailable while the app is disabled or while
# Nextcloud is in maintenance mode ("Commands provided by apps are unavailable.").
NAMESPACE_APP = {
    "activity": "activity", "app_api": "app_api", "circles": "circles", "dav": "dav",
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
