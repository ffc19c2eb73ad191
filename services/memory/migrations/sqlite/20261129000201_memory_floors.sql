-- Deleted and expired keys are reclaimed after a grace period. A key created
-- again must not reuse a revision (a fencing token) its reclaimed row had,
-- so each namespace keeps the highest revision it ever reclaimed, and a new
-- key starts above it.
CREATE TABLE IF NOT EXISTS memory_floors (
    namespace TEXT PRIMARY KEY,
    revision  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS memory_entries_reclaimable
    ON memory_entries (updated_at)
    WHERE value IS NULL;
