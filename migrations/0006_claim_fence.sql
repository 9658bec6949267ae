-- The delivery lease is fenced: each claim of a row counts one more here, the worker keeps the
-- count it claimed with, and records the row's outcome (or gives the claim back) only while the
-- count is still its own. A worker that stalled past its lease, while another claimed and sent
-- the row, can then no longer overwrite that newer attempt's outcome.
ALTER TABLE outbox ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
