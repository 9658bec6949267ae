-- An email cancelled before it was sent because a resend queued a newer one. A row ends in exactly
-- one of delivered_at, failed_at and superseded_at.
ALTER TABLE outbox ADD COLUMN superseded_at BIGINT;
