-- Ownership (issue 11, DESIGN invariant 8). Shared by SQLite and PostgreSQL.
-- installation: one row, the stable id of this inventory (created by the code on first open;
--   every Docker object and realm the tool creates carries it).
-- practices.practice_id: a UUID that never changes (unlike the praxisname); backfilled for
--   existing rows by the code right after this migration, in the same transaction.
-- practices.owner_installation: NULL = this inventory's installation; set only by an explicit
--   `practices adopt` of objects created by another installation (a lost inventory).
-- adopted_objects: objects without owner marks (made before this migration) that ops adopted
--   explicitly (`practices adopt --yes`) for the practice of slot_id; Docker labels of volumes
--   and networks cannot be changed, so the acceptance is recorded here.
-- operations.lock_key: the operation lock is keyed by the practice id ('name:<praxisname>'
--   only while a new practice has no row yet), so a rename mid-operation cannot break it.

CREATE TABLE installation (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

ALTER TABLE practices ADD COLUMN practice_id TEXT;
ALTER TABLE practices ADD COLUMN owner_installation TEXT;
CREATE UNIQUE INDEX practices_practice_id ON practices (practice_id);

CREATE TABLE adopted_objects (
    kind       TEXT NOT NULL CHECK (kind IN ('container', 'volume', 'network')),
    name       TEXT NOT NULL,
    slot_id    TEXT NOT NULL REFERENCES practices (slot_id),
    adopted_at TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);

ALTER TABLE operations ADD COLUMN lock_key TEXT;
UPDATE operations SET lock_key = 'name:' || praxisname;
DROP INDEX operations_running;
CREATE UNIQUE INDEX operations_running_key ON operations (lock_key) WHERE state = 'running';
