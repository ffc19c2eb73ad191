-- One row per key ever written; a deleted or expired key keeps its row
-- (value NULL) so its revision keeps growing.
CREATE TABLE IF NOT EXISTS memory_entries (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS memory_entries_newest
    ON memory_entries (namespace, updated_at DESC, key DESC)
    WHERE value IS NOT NULL;

CREATE INDEX IF NOT EXISTS memory_entries_expiring
    ON memory_entries (namespace, expires_at)
    WHERE value IS NOT NULL AND expires_at IS NOT NULL;

-- Running totals per namespace, updated in the same transaction as the entry.
CREATE TABLE IF NOT EXISTS namespace_usage (
    namespace TEXT PRIMARY KEY,
    keys      INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;
