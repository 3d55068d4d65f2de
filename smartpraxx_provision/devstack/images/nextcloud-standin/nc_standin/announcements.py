"""announcementcenter + notifications STAND-IN (test double), re-implemented after reading
announcementcenter 7.5.0 (``Manager``, ``APIController``, ``Command/*``,
``NotificationQueueJob``, ``Notifier``) and Nextcloud's notifications OCS API; no code copied.

What it keeps from the real apps (the parts smartpraxx relies on):

* ``occ announcementcenter:announce <user> <subject> <message> [-g group]... [--notifications]
  [--delete-time=T]``: the author must exist ("User <x> in unknown.", exit 1); groups that do
  not exist are dropped and, when none is left, the announcement goes to ``everyone``
  (``Manager::publishAnnouncement``); prints ``Created announcement #<id>: <subject>``.
  With ``--notifications`` every member of its groups except the author gets a notification
  (real: ``NotificationQueueJob``, a queued background job run by cron; here at once).
* ``occ announcementcenter:delete <id>``: ``Successfully deleted #<id>`` / ``Announcement with
  #<id> does not exist!`` (exit 1); its notifications go with it.
* ``occ announcementcenter:list [limit]``: the ``ID|Subject|Message`` table (80 columns).
* OCS ``GET /ocs/v2.php/apps/announcementcenter/api/v1/announcements``: the caller's
  announcements, newest first, at most 7 (``getAnnouncements`` default) — those linked to
  ANY of the caller's groups or ``everyone``; members of an admin group (app config
  ``admin_groups``, default ``["admin"]``) see all, with ``groups``. ``DELETE …/{id}``: admins only.
* OCS ``GET /ocs/v2.php/apps/notifications/api/v2/notifications``: the caller's
  notifications (announcementcenter's "{user} announced “{subject}”").
* ``delete-time``: real: ``AnnouncementSchedulerJob`` (cron) deletes the announcement once
  the time has passed; here it is deleted at the next read or occ run after that time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .state import Store

ADMIN_GROUPS_DEFAULT = ["admin"]
OCS_LIMIT = 7

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS oc_announcements (announcement_id INT NOT NULL PRIMARY KEY, "
    "announcement_time INT NOT NULL, announcement_user VARCHAR(64) NOT NULL, "
    "announcement_subject VARCHAR(512) NOT NULL, announcement_message LONGTEXT, "
    "announcement_plain_message LONGTEXT, allow_comments SMALLINT NOT NULL DEFAULT 0, "
    "announcement_groups LONGTEXT, announcement_not_types INT NOT NULL DEFAULT 0, "
    "announcement_schedule_time INT, announcement_delete_time INT)",
    "CREATE TABLE IF NOT EXISTS oc_announcements_map (announcement_id INT NOT NULL, "
    "gid VARCHAR(64) NOT NULL, PRIMARY KEY (announcement_id, gid))",
    "CREATE TABLE IF NOT EXISTS oc_notifications (notification_id INT NOT NULL PRIMARY KEY, "
    "app VARCHAR(32) NOT NULL, uid VARCHAR(64) NOT NULL, ts INT NOT NULL, "
    "object_type VARCHAR(64) NOT NULL, object_id VARCHAR(64) NOT NULL, "
    "subject VARCHAR(64) NOT NULL, subject_parameters LONGTEXT, message LONGTEXT)",
]


def ensure_schema(store: Store) -> None:
    """The apps' tables (created on enable in a real server; here on first use)."""
    for stmt in SCHEMA:
        store.run(stmt)


def _next_id(store: Store, table: str, column: str) -> int:
    rows = store.rows(f"SELECT MAX({column}) FROM {table}")  # noqa: S608 (constants)
    return int(rows[0][0] or 0) + 1


def expire(store: Store, now: float | None = None) -> None:
    """``AnnouncementSchedulerJob``: delete announcements whose delete time has passed."""
    ensure_schema(store)
    now = time.time() if now is None else now
    for (aid,) in store.rows(
        "SELECT announcement_id FROM oc_announcements WHERE announcement_delete_time IS NOT NULL "
        "AND announcement_delete_time > 0 AND announcement_delete_time <= ?", int(now)):
        delete(store, int(aid))


def announce(store: Store, author: str, subject: str, message: str, groups: list[str],
             notifications: bool, delete_time: int | None) -> int:
    ensure_schema(store)
    aid = _next_id(store, "oc_announcements", "announcement_id")
    store.run(
        "INSERT INTO oc_announcements (announcement_id, announcement_time, announcement_user, "
        "announcement_subject, announcement_message, announcement_plain_message, "
        "announcement_groups, announcement_not_types, announcement_delete_time) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        aid, int(time.time()), author, subject.strip(), message.strip(), message.strip(),
        json.dumps(groups), 2 if notifications else 0, delete_time)
    linked = [g for g in dict.fromkeys(groups) if store.group(g) is not None]
    for gid in linked or ["everyone"]:
        store.run("INSERT INTO oc_announcements_map (announcement_id, gid) VALUES (?, ?)",
                  aid, gid)
    if notifications:
        if linked:
            users = sorted({u for g in linked for u in store.group_users(g)})
        else:
            users = sorted(u["uid"] for u in store.users())
        for uid in users:
            if uid != author:
                _notify(store, uid, aid, author)
    return aid


def _notify(store: Store, uid: str, aid: int, author: str) -> None:
    nid = _next_id(store, "oc_notifications", "notification_id")
    store.run("INSERT INTO oc_notifications (notification_id, app, uid, ts, object_type, "
              "object_id, subject, subject_parameters) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              nid, "announcementcenter", uid, int(time.time()), "announcement", str(aid),
              "announced", json.dumps([author]))


def get(store: Store, aid: int) -> dict[str, Any] | None:
    ensure_schema(store)
    rows = store.rows(
        "SELECT announcement_id, announcement_time, announcement_user, announcement_subject, "
        "announcement_message, announcement_schedule_time, announcement_delete_time "
        "FROM oc_announcements WHERE announcement_id = ?", aid)
    if not rows:
        return None
    r = rows[0]
    return {"id": int(r[0]), "time": int(r[1]), "author_id": r[2], "subject": r[3],
            "message": r[4] or "", "schedule_time": r[5], "delete_time": r[6]}


def groups_of(store: Store, aid: int) -> list[str]:
    return sorted(g for (g,) in store.rows(
        "SELECT gid FROM oc_announcements_map WHERE announcement_id = ?", aid))


def delete(store: Store, aid: int) -> bool:
    ensure_schema(store)
    if get(store, aid) is None:
        return False
    store.run("DELETE FROM oc_notifications WHERE app = ? AND object_type = ? AND object_id = ?",
              "announcementcenter", "announcement", str(aid))
    store.run("DELETE FROM oc_announcements WHERE announcement_id = ?", aid)
    store.run("DELETE FROM oc_announcements_map WHERE announcement_id = ?", aid)
    return True


def admin_groups(store: Store) -> list[str]:
    row = store.app_value("announcementcenter", "admin_groups")
    try:
        value = json.loads(row.value) if row is not None and row.value else None
    except ValueError:
        value = None
    return [str(g) for g in value] if isinstance(value, list) else ADMIN_GROUPS_DEFAULT


def is_admin(store: Store, uid: str) -> bool:
    return bool(set(admin_groups(store)) & set(store.user_groups(uid)))


def visible(store: Store, uid: str, limit: int = OCS_LIMIT) -> list[dict[str, Any]]:
    """``APIController::get`` for ``uid``: ANY of the user's groups, or everyone."""
    expire(store)
    admin = is_admin(store, uid)
    if admin:
        ids = [int(a) for (a,) in store.rows("SELECT announcement_id FROM oc_announcements")]
    else:
        wanted = [*store.user_groups(uid), "everyone"]
        marks = ", ".join("?" for _ in wanted)
        ids = [int(a) for (a,) in store.rows(
            "SELECT DISTINCT announcement_id FROM oc_announcements_map "  # noqa: S608
            f"WHERE gid IN ({marks})", *wanted)]
    items = [a for a in (get(store, i) for i in ids) if a is not None]
    items.sort(key=lambda a: (a["time"], a["id"]), reverse=True)
    out = []
    for a in items[:limit]:
        author = store.user(a["author_id"])
        doc = {"id": a["id"], "author_id": a["author_id"],
               "author": author["displayname"] if author else a["author_id"],
               "time": a["time"], "subject": a["subject"], "message": a["message"],
               "groups": None, "comments": False, "schedule_time": a["schedule_time"],
               "delete_time": a["delete_time"]}
        if admin:
            doc["groups"] = [{"id": g, "name": (store.group(g) or {}).get("displayname", g)}
                             for g in groups_of(store, a["id"])]
            doc["notifications"] = bool(store.rows(
                "SELECT 1 FROM oc_notifications WHERE object_id = ? AND app = ?",
                str(a["id"]), "announcementcenter"))
        out.append(doc)
    return out


def notifications_of(store: Store, uid: str) -> list[dict[str, Any]]:
    """notifications' OCS v2 list for ``uid`` (announcementcenter's notifications only)."""
    expire(store)
    out = []
    for nid, app, ts, otype, oid, _subject, params in store.rows(
            "SELECT notification_id, app, ts, object_type, object_id, subject, "
            "subject_parameters FROM oc_notifications WHERE uid = ? ORDER BY notification_id "
            "DESC", uid):
        a = get(store, int(oid))
        if a is None:
            continue
        author = (json.loads(params or "[]") or [""])[0]
        user = store.user(author)
        name = user["displayname"] if user else author
        out.append({
            "notification_id": int(nid), "app": app, "user": uid,
            "datetime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(int(ts))),
            "object_type": otype, "object_id": oid,
            "subject": f"{name} announced “{a['subject']}”", "message": a["message"],
            "link": f"/index.php/apps/announcementcenter/?announcement={oid}",
            "subjectRich": "{user} announced {announcement}", "actions": [],
        })
    return out
