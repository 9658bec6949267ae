-- Written once for SQLite and PostgreSQL (the store renders `{id_pk}` for each: src/store/sql.rs).
-- Times are milliseconds since the Unix epoch, UTC, in both databases.
CREATE TABLE businesses (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- the shared user-license subscription item
    seat_quantity BIGINT NOT NULL,
    renewal_date BIGINT NOT NULL,
    billing_status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    business_id TEXT NOT NULL REFERENCES businesses(id),
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    role TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    created_at BIGINT NOT NULL,
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
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    sent_at BIGINT,
    resent_at BIGINT,
    accepted_at BIGINT,
    revoked_at BIGINT,
    send_failure_reason TEXT,
    license_billing_status TEXT,
    license_quantity BIGINT,
    license_renewal_date BIGINT,
    license_activated_at BIGINT,
    license_released_at BIGINT
);
CREATE INDEX invitations_by_business ON invitations (business_id, created_at DESC, id DESC);
CREATE INDEX invitations_by_email ON invitations (business_id, email_normalized);
CREATE INDEX invitations_holding_seats ON invitations (expires_at)
    WHERE license_activated_at IS NOT NULL AND license_released_at IS NULL;

-- Every change of a business's seat quantity, so that the history explains every
-- licenseQuantity ever returned.
CREATE TABLE seat_ledger (
    id {id_pk},
    business_id TEXT NOT NULL REFERENCES businesses(id),
    invitation_id TEXT,
    delta BIGINT NOT NULL,
    quantity_after BIGINT NOT NULL,
    reason TEXT NOT NULL,
    proration_date BIGINT NOT NULL,
    renewal_date BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Invitation emails to send; written in the same transaction as the change that asks for them.
CREATE TABLE outbox (
    id {id_pk},
    business_id TEXT NOT NULL REFERENCES businesses(id),
    invitation_id TEXT NOT NULL REFERENCES invitations(id),
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_by_business_day ON outbox (business_id, created_at);

CREATE TABLE idempotency_keys (
    business_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (business_id, idempotency_key)
);
