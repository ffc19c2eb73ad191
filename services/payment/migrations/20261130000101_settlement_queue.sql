-- Asynchronous settlement: a served call's payment may wait in `queued`
-- (served = true, its amount still outstanding) until a settler claims it
-- (status -> settling). Settlers find queued rows, oldest first, through the
-- unfinished-payments index, which now covers them too; a replica that
-- starts after a crash picks up the rows its predecessor left queued.
DROP INDEX IF EXISTS payments_unfinished;
CREATE INDEX IF NOT EXISTS payments_unfinished ON payments (updated_at)
    WHERE status IN ('reserved', 'verified', 'queued', 'settling', 'pending');
