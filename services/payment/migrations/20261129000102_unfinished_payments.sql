-- The background pass looks for payments nobody finished: pending or
-- stalled settlements, and reservations or verifications whose driver
-- stopped (see Ledger::orphans). One partial index serves both.
DROP INDEX IF EXISTS payments_to_retry;
CREATE INDEX IF NOT EXISTS payments_unfinished ON payments (updated_at)
    WHERE status IN ('reserved', 'verified', 'settling', 'pending');
