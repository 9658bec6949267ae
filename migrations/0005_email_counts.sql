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
-- The claim takes the earliest due rows in (due_at, id) order: with the index on due_at alone,
-- PostgreSQL sorted every waiting row to find the first few (40 ms, on disk, for a backlog of
-- 100,000; 0.4 ms with this one). Superseded rows are never claimed, so they leave it too.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (due_at, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL;
