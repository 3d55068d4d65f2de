-- Shop orders, their webhook deliveries (the durable queue) and the billing outbox.
-- Independent of migrations 0002/0003. CRM data only: the orderer's contact address may be
-- central; nothing about staff.

CREATE TABLE deliveries (
    delivery_key TEXT PRIMARY KEY,
    event        TEXT NOT NULL,
    action       TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    fields       TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'processing', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    claimed_at   TEXT,
    claimed_by   TEXT,
    result       TEXT NOT NULL DEFAULT '',
    received_at  TEXT NOT NULL,
    processed_at TEXT
);

CREATE INDEX deliveries_queue ON deliveries (state, received_at);

CREATE TABLE orders (
    order_id         TEXT PRIMARY KEY,
    product_id       TEXT NOT NULL,
    package          TEXT NOT NULL,
    contact_email    TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('paid', 'template-sent', 'provisioning',
                                                    'provisioned', 'rejected')),
    attention        TEXT NOT NULL DEFAULT '',
    praxisname       TEXT,
    suspended        INTEGER NOT NULL DEFAULT 0,
    template_sent_at TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE billing_outbox (
    event_id        INTEGER PRIMARY KEY REFERENCES events (id),
    idempotency_key TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    TEXT
);

CREATE INDEX billing_outbox_due ON billing_outbox (state, next_attempt_at);
