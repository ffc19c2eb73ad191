-- The change log watches read: one row per acknowledged write, written in
-- the write's own transaction. seq orders the writes as they took effect.
-- Each namespace keeps its last changes; memory_change_floors holds the
-- highest seq trimmed from it (a cursor below it has lost its history).
CREATE TABLE IF NOT EXISTS memory_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    value      TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER
);

CREATE INDEX IF NOT EXISTS memory_changes_by_namespace
    ON memory_changes (namespace, seq);

CREATE INDEX IF NOT EXISTS memory_changes_by_key
    ON memory_changes (namespace, key, revision);

CREATE TABLE IF NOT EXISTS memory_change_floors (
    namespace TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL
) WITHOUT ROWID;
