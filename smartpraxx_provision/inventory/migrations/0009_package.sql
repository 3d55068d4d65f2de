-- smartpraxx inventory, schema version 9: the package a practice has (Basis / Premium).
-- Shared by SQLite and PostgreSQL. NULL: provisioned before this version; the next
-- provision records the Starter Excel's Paket, after that only change-package changes it.
ALTER TABLE practices ADD COLUMN package TEXT;
