-- One row per key ever written. A deleted key keeps its row (value NULL) so
-- its revision keeps growing when it is written again.
-- gen is the load generation: a Redis state may be persisted only while its
-- generation is current. prior_gen/prior_rev record the generation and
-- revision the last load fenced off, so a fenced writer can tell whether its
-- write made it in before the fence.
CREATE TABLE IF NOT EXISTS memory_entries (
    namespace  TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT,
    revision   BIGINT NOT NULL,
    gen        BIGINT NOT NULL DEFAULT 1,
    prior_gen  BIGINT NOT NULL DEFAULT 0,
    prior_rev  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (namespace, key)
);

CREATE INDEX IF NOT EXISTS memory_entries_newest
    ON memory_entries (namespace, updated_at DESC, key DESC)
    WHERE value IS NOT NULL;
