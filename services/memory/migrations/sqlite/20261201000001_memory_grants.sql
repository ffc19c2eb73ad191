-- A namespace (the owner) lets a grantee read ('read') or read and write
-- ('readwrite') its memory. expires_at is unix milliseconds, NULL = until
-- revoked; an expired row is the same as no row.
CREATE TABLE IF NOT EXISTS memory_grants (
    namespace  TEXT NOT NULL,
    grantee    TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('read', 'readwrite')),
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, grantee)
) WITHOUT ROWID;
