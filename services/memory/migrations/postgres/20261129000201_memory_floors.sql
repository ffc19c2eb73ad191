-- Deleted and expired keys are reclaimed after a grace period. A key created
-- again must not reuse a revision (a fencing token) or a load generation its
-- reclaimed row had, so each namespace keeps the highest of both it ever
-- reclaimed, and a new row starts above them. A floor row exists before any
-- row of its namespace is reclaimed (see `reclaim` in durable/pg.rs).
CREATE TABLE IF NOT EXISTS memory_floors (
    namespace  TEXT COLLATE "C" PRIMARY KEY,
    revision   BIGINT NOT NULL,
    gen        BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS memory_entries_reclaimable
    ON memory_entries (updated_at)
    WHERE value IS NULL;

CREATE INDEX IF NOT EXISTS memory_entries_expiring
    ON memory_entries (expires_at)
    WHERE value IS NOT NULL AND expires_at IS NOT NULL;
