-- The emails of an invitation still waiting to be sent, which a resend supersedes: with the
-- index on every row of the invitation, a resend read all its earlier emails, sent or not, and
-- an invitation resent often (one hot business's, in the benchmark) had hundreds of them.
CREATE INDEX outbox_waiting_by_invitation ON outbox (invitation_id)
    WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL;
