-- A claimed row is being sent by some worker until claimed_until; a worker that dies leaves it
-- claimable again when the lease runs out, so nothing accepted is lost.
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
CREATE INDEX outbox_due ON outbox (due_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
