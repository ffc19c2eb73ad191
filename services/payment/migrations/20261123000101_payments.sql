-- The payments ledger. One row per EIP-3009 authorization presented to us:
-- the unique (network, asset, payer, nonce) is the reservation that makes a
-- payment serve at most one call, whatever the replicas and retries.
-- status: reserved -> verified -> settling -> settled | pending | failed;
-- rejected (facilitator said invalid) and cancelled (the call failed, not
-- charged) free the authorization for another attempt.
CREATE TABLE IF NOT EXISTS payments (
    id            TEXT PRIMARY KEY,
    network       TEXT NOT NULL,
    asset         TEXT NOT NULL,
    payer         TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    route         TEXT NOT NULL,
    resource      TEXT NOT NULL,
    amount        TEXT NOT NULL,
    pay_to        TEXT NOT NULL,
    x402_version  INTEGER NOT NULL,
    payload       JSONB NOT NULL,
    requirements  JSONB NOT NULL,
    status        TEXT NOT NULL,
    transaction   TEXT,
    error_reason  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (network, asset, payer, nonce)
);

CREATE INDEX IF NOT EXISTS payments_to_retry ON payments (updated_at)
    WHERE status IN ('pending', 'settling');
