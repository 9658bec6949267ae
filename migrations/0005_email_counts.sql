-- Emails queued per business per UTC day, for the daily cap: one row read per create or resend
-- instead of counting the day's outbox rows (which grew with every email of the day).
-- `day` is the day's start, in milliseconds like every time.
CREATE TABLE email_counts (
    business_id TEXT NOT NULL REFERENCES businesses(id),
    day BIGINT NOT NULL,
    emails BIGINT NOT NULL,
    PRIMARY KEY (business_id, day)
);
INSERT INTO email_counts (business_id, day, emails)
    SELECT business_id, created_at / 86400000 * 86400000, COUNT(*) FROM outbox
    GROUP BY business_id, created_at / 86400000 * 86400000;
