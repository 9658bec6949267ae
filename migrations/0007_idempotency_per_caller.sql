-- Idempotency keys belong to the caller who sent them (business and user), as Stripe scopes them
-- to the credential: a key is a client's own name for its own request, and another member of the
-- same business using the same key must neither replay that response nor be refused for it.
-- The records of the last day cannot be carried over (nothing says which user sent them), so a
-- retry of such a request after the upgrade is treated as new: a create is refused (409: the
-- invitation it made is outstanding), a resend within the cooldown too (429); a resend retried
-- later sends the invitation again, as any new resend would.
CREATE TABLE idempotency_records (
    business_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (business_id, user_id, idempotency_key)
);
DROP TABLE idempotency_keys;
