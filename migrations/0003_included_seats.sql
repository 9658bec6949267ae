-- Seats the subscription includes; a seat beyond them is billed, prorated to the renewal date.
ALTER TABLE businesses ADD COLUMN included_seats BIGINT NOT NULL DEFAULT 0;
