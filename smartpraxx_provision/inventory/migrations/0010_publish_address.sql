-- smartpraxx inventory, schema version 10: the publish address of a fleet host, the IP
-- address on the host's engine that the slots' containers publish their ports on.
-- Shared by SQLite and PostgreSQL. NULL: the default 127.0.0.1 (every host registered
-- before this version, and production hosts, whose Caddy runs on the host). The
-- docker-in-docker test hosts publish on 0.0.0.0 inside their own network namespace.
ALTER TABLE hosts ADD COLUMN publish_address TEXT;
