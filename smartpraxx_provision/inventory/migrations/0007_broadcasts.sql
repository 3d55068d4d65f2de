-- smartpraxx inventory, schema version 7: targeted broadcasts (applies on top of 6).
-- Shared by SQLite and PostgreSQL.
--
-- The central record of a broadcast is the message and its target only: each practice's
-- Nextcloud evaluates the target against its own users' groups, so no recipient (user id,
-- name, address) is ever known here. Per practice: the delivery state and a COUNT.

CREATE TABLE broadcasts (
    id TEXT PRIMARY KEY,                 -- 'b' + 12 hex, also the platform group news-<id>
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    link TEXT,
    valid_until TEXT NOT NULL,           -- ISO 8601 UTC; the announcement's delete time
    target TEXT NOT NULL,                -- kv-rlp;fach-urologie,bereich-abrechnung (AND ; OR ,)
    created_at TEXT NOT NULL,
    retracted_at TEXT
);

CREATE TABLE broadcast_deliveries (
    broadcast_id TEXT NOT NULL REFERENCES broadcasts (id),
    practice_id TEXT NOT NULL,           -- the practice's UUID (survives renames)
    state TEXT NOT NULL,                 -- pending | delivered | failed | retracted
    recipients INTEGER,                  -- how many users of that platform see it (a count)
    announcement_id TEXT,                -- the platform's announcementcenter id
    error TEXT,                          -- operator text of the last failure (no user data)
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (broadcast_id, practice_id)
);
