-- smartpraxx inventory, schema version 10: where a fleet host's slots publish their ports.
-- Shared by SQLite and PostgreSQL.
-- publish_address: the IP address on the host's engine that the slots' containers publish
-- their ports on. NULL: the default 127.0.0.1 (every host registered before this version,
-- and production hosts, whose Caddy runs on the host). The docker-in-docker test hosts
-- publish on 0.0.0.0 inside their own network namespace.
ALTER TABLE hosts ADD COLUMN publish_address TEXT;
-- slot_port_base: the host port of slot nc01's Nextcloud app (ncXX gets base + XX - 1), so
-- the ports and the host's routes survive a restart of its engine. NULL: random free ports.
ALTER TABLE hosts ADD COLUMN slot_port_base INTEGER;
