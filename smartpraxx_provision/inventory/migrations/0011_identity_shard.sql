-- smartpraxx inventory, schema version 11: the identity shard of each practice (issue 18).
-- Shared by SQLite and PostgreSQL.
-- identity_shard: the Keycloak cluster that holds the practice's realm, by its name in the
-- settings (identity_shards); 'primary' is keycloak_url, where every practice provisioned
-- before this version lives. Chosen once at allocation; it never changes.
ALTER TABLE practices ADD COLUMN identity_shard TEXT NOT NULL DEFAULT 'primary';
