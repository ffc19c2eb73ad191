-- A namespace (the owner) lets a grantee read ('read') or read and write
-- ('readwrite') its memory. expires_at is unix milliseconds on PostgreSQL's
-- clock, NULL = until revoked; an expired row is the same as no row. The
-- primary key serves both the grant check (namespace, grantee) and the
-- owner's listing (namespace prefix).
CREATE TABLE IF NOT EXISTS memory_grants (
    namespace  TEXT COLLATE "C" NOT NULL,
    grantee    TEXT COLLATE "C" NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('read', 'readwrite')),
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, grantee)
);
