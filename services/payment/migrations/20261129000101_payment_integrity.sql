-- Payment integrity: one canonical key per authorization, rows bound to
-- what they paid for, and per-payer accounts bounding what is served on
-- credit.

-- 1. The reservation key is canonical: lower-case 0x hex of payer and nonce
--    (network is CAIP-2 and asset lower-case already). Rows written before
--    could spell one authorization twice (with and without 0x); the later of
--    such a pair keeps its status and is renamed, so the key stays unique and
--    the duplicate stays visible to an operator.
WITH spelled AS (
    SELECT id,
           CASE WHEN lower(nonce) LIKE '0x%' THEN lower(nonce) ELSE '0x' || lower(nonce) END AS nonce_c,
           CASE WHEN lower(payer) LIKE '0x%' THEN lower(payer) ELSE '0x' || lower(payer) END AS payer_c,
           created_at
      FROM payments
), ranked AS (
    SELECT id, nonce_c, payer_c,
           row_number() OVER (PARTITION BY p.network, p.asset, payer_c, nonce_c
                              ORDER BY s.created_at, id) AS n
      FROM spelled s JOIN payments p USING (id)
)
UPDATE payments p
   SET nonce = r.nonce_c || '#duplicate-' || p.id, payer = r.payer_c
  FROM ranked r
 WHERE p.id = r.id AND r.n > 1;

UPDATE payments
   SET nonce = CASE WHEN lower(nonce) LIKE '0x%' THEN lower(nonce) ELSE '0x' || lower(nonce) END,
       payer = CASE WHEN lower(payer) LIKE '0x%' THEN lower(payer) ELSE '0x' || lower(payer) END
 WHERE nonce NOT LIKE '%#duplicate-%'
   AND (nonce <> lower(nonce) OR nonce NOT LIKE '0x%' OR payer <> lower(payer) OR payer NOT LIKE '0x%');

-- 2. What a row holds against its payer's account (its amount while the
--    payment is verified but not settled or released; 0 after), and whether
--    the call it paid for was served (a failed settlement of a served call is
--    a debt).
ALTER TABLE payments ADD COLUMN IF NOT EXISTS exposure NUMERIC(78, 0) NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS served BOOLEAN NOT NULL DEFAULT false;

-- 3. One account per (network, asset, payer), shared by every replica:
--    outstanding = the sum of `exposure` of its payments; settled_total only
--    grows (a balance read is judged against the settlements recorded since);
--    debt = what served calls failed to collect. A payer with debt > 0 is a
--    debtor: its calls are settled before they run.
CREATE TABLE IF NOT EXISTS payer_accounts (
    network       TEXT NOT NULL,
    asset         TEXT NOT NULL,
    payer         TEXT NOT NULL,
    outstanding   NUMERIC(78, 0) NOT NULL DEFAULT 0 CHECK (outstanding >= 0),
    settled_total NUMERIC(78, 0) NOT NULL DEFAULT 0,
    debt          NUMERIC(78, 0) NOT NULL DEFAULT 0,
    debtor_since  TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (network, asset, payer)
);

CREATE INDEX IF NOT EXISTS payer_accounts_debtors ON payer_accounts (debtor_since)
    WHERE debt > 0;
