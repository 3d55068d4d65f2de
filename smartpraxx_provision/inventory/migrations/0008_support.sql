-- smartpraxx inventory, schema version 8: support access (applies on top of 7).
-- Shared by SQLite and PostgreSQL.

-- Only the fact "consented until T for ticket X" (and its state) per practice; the consent
-- record itself (who approved, when, scope) is the practice's evidence and lives in its realm.
-- No person: no approver, no e-mail, no name.
CREATE TABLE support_consents (
    practice_id TEXT NOT NULL,
    ticket TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (practice_id, ticket)
);
CREATE INDEX support_consents_state ON support_consents (state, expires_at);
