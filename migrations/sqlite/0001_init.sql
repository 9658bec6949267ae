-- Times are milliseconds since the Unix epoch, UTC, in both databases.
CREATE TABLE businesses (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- the shared user-license subscription item
    seat_quantity INTEGER NOT NULL,
    renewal_date INTEGER NOT NULL,
    billing_status TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE members (
    business_id TEXT NOT NULL REFERENCES businesses(id),
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    role TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, user_id),
    UNIQUE (business_id, email_normalized)
);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    token_nonce TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    sent_at INTEGER,
    resent_at INTEGER,
    accepted_at INTEGER,
    revoked_at INTEGER,
    send_failure_reason TEXT,
    license_billing_status TEXT,
    license_quantity INTEGER,
    license_renewal_date INTEGER,
    license_activated_at INTEGER,
    license_released_at INTEGER
);
CREATE INDEX invitations_by_business ON invitations (business_id, created_at DESC, id DESC);
CREATE INDEX invitations_by_email ON invitations (business_id, email_normalized);
CREATE INDEX invitations_holding_seats ON invitations (expires_at)
    WHERE license_activated_at IS NOT NULL AND license_released_at IS NULL;

-- Every change of a business's seat quantity, so that the history explains every
-- licenseQuantity ever returned.
CREATE TABLE seat_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    invitation_id TEXT,
    delta INTEGER NOT NULL,
    quantity_after INTEGER NOT NULL,
    reason TEXT NOT NULL,
    proration_date INTEGER NOT NULL,
    renewal_date INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Invitation emails to send; written in the same transaction as the change that asks for them.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    invitation_id TEXT NOT NULL REFERENCES invitations(id),
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER,
    failed_at INTEGER,
    last_error TEXT
);
CREATE INDEX outbox_by_business_day ON outbox (business_id, created_at);

CREATE TABLE idempotency_keys (
    business_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, idempotency_key)
);
