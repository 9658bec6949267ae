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
-- The count was this index's only reader.
DROP INDEX outbox_by_business_day;
-- An invitation's emails: the ones a resend supersedes, and its newest (a failure is reported
-- on the invitation only when it is its newest email's). Without it both read every waiting
-- row of every business, or the whole outbox.
CREATE INDEX outbox_by_invitation ON outbox (invitation_id, id);
