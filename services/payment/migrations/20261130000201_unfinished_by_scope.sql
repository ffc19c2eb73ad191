-- Every search for unfinished payments (the settler's claims, the queue
-- count, the retry and orphan passes) names its scope (network, asset,
-- payTo) and then wants the oldest first. Index them that way, so the rows
-- of other scopes sharing the ledger (other payTo addresses or assets, or
-- a stopped deployment's leftovers) are not scanned by every claim.
DROP INDEX IF EXISTS payments_unfinished;
CREATE INDEX IF NOT EXISTS payments_unfinished_by_scope
    ON payments (network, asset, lower(pay_to), status, updated_at)
    WHERE status IN ('reserved', 'verified', 'queued', 'settling', 'pending');
