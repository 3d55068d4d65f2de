-- smartpraxx inventory, schema version 6: practice life cycle (applies on top of 5).
-- Shared by SQLite and PostgreSQL.

-- A billing event emitted by a state transition carries the key '<slot>:<event>'; the
-- unique index makes a second emission of the same transition impossible, also across
-- re-runs and crash-resumes (the state change and the event are one transaction).
ALTER TABLE events ADD COLUMN transition_key TEXT;
CREATE UNIQUE INDEX events_transition ON events (transition_key) WHERE transition_key IS NOT NULL;

-- decommission: the SHA-256 of the export made by the run that started deleting; a resumed
-- run after the deletion began continues only with exactly that export.
ALTER TABLE practices ADD COLUMN export_sha256 TEXT;

-- hosts: which Docker engine answered at the endpoint when it was added or last changed
-- (``hosts add`` / ``hosts set`` probe it); an endpoint change to another engine while
-- practices live on the host is refused.
ALTER TABLE hosts ADD COLUMN engine_id TEXT;
ALTER TABLE hosts ADD COLUMN engine_version TEXT;
