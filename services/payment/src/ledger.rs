//! The payments ledger in PostgreSQL, shared by every payment replica.
//!
//! - **One authorization, one row.** A payment is reserved by an INSERT
//!   guarded by the unique (network, asset, payer, nonce), all in canonical
//!   spelling ([`tessera_x402::AuthorizationKey`]): of any number of
//!   presentations of one authorization, in any spelling, concurrent or
//!   later, exactly one ever gets a row. The row binds what was paid for:
//!   route, resource, version, amount and the canonical payload. It is never
//!   rebound: a presentation of an authorization that already has a row,
//!   whatever its state (even cancelled or rejected), is refused.
//! - **Exposure.** Each (network, asset, payer) has an account. A payment
//!   holds its amount in the account's `outstanding` from reservation until
//!   it is settled, cancelled or rejected; the reservation succeeds only if
//!   the payer's on-chain balance covers `outstanding` plus this amount, in
//!   the same transaction as the INSERT. See [`Ledger::reserve`] for why a
//!   balance read before the transaction is still safe to judge by.
//! - **Debts.** A settlement of a served call that definitively fails moves
//!   the amount to the account's `debt`: the payer is a debtor from then on.
//! - **Queue.** A served call whose settlement is deferred (the gateway's
//!   `PAYMENT_SETTLE_MODE=async`) moves its payment from `verified` to
//!   `queued`, marked served, still holding its amount in `outstanding`.
//!   Settlers claim queued rows in bounded batches with `FOR UPDATE SKIP
//!   LOCKED` ([`Ledger::claim_queued`]): of any number of replicas claiming
//!   at once, exactly one takes each row, which then goes the way of any
//!   settlement.
//!
//! status: reserved → verified → [queued →] settling → settled | pending |
//! failed; rejected (the facilitator said invalid) and cancelled (the call
//! failed or never ran) are final and charge nothing.

use alloy::primitives::U256;
use serde_json::Value;
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use tessera_error::{Error, Result};
use tessera_runtime::dependency::{self, Dependency};
use tessera_x402::AuthorizationKey;

/// A payment's id: this, then 32 lower-case hex digits (128 random bits).
/// Unguessable, so knowing an id is what lets one look its payment up.
pub const PAYMENT_ID_PREFIX: &str = "pay_";

/// Whether `text` is spelled as a payment id.
pub fn is_payment_id(text: &str) -> bool {
    text.strip_prefix(PAYMENT_ID_PREFIX).is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The ledger's migrations. Other services' migrations may share the
/// database (and sqlx's one history table): those are not ours to judge.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Runs `statement`, timed as the PostgreSQL operation `operation`.
async fn timed<T>(
    operation: &'static str,
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T> {
    dependency::call(Dependency::Postgres, operation, statement)
        .await
        .map_err(db_error)
}

fn db_error(error: sqlx::Error) -> Error {
    tracing::warn!(%error, "payments ledger call failed");
    Error::unavailable(
        "LEDGER_UNAVAILABLE",
        "the payments ledger is unavailable; retry",
    )
}

/// The account a payment is held against: its payer in one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// CAIP-2.
    pub network: String,
    /// Lower-case 0x.
    pub asset: String,
    /// Lower-case 0x.
    pub payer: String,
}

impl Account {
    pub fn of(key: &AuthorizationKey) -> Self {
        Account {
            network: format!("eip155:{}", key.chain_id),
            asset: key.asset_hex(),
            payer: key.from_hex(),
        }
    }
}

pub struct NewPayment<'a> {
    pub key: &'a AuthorizationKey,
    pub route: &'a str,
    pub resource: &'a str,
    pub amount: U256,
    pub pay_to: &'a str,
    pub x402_version: u32,
    pub payload: &'a Value,
    pub requirements: &'a Value,
    /// Reserve it as `verified` straight away when its payer is not a
    /// debtor (nothing is left to check before serving it).
    pub verified: bool,
}

/// What became of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved under `id`; `debtor`: the payer owes for a served call.
    Reserved { id: String, debtor: bool },
    /// This authorization already has a row.
    AlreadyPresented,
    /// The balance does not cover what is outstanding plus this amount.
    NotCovered { balance: U256 },
}

/// The unique key on (network, asset, payer, nonce): one row per
/// authorization.
const PAYMENT_KEY_CONSTRAINT: &str = "payments_network_asset_payer_nonce_key";

/// What the reserve statement did.
enum Taken {
    Yes { debtor: bool },
    AlreadyPresented,
    NotCovered,
}

/// What [`Ledger::prior`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    pub presented: bool,
    pub settled_total: U256,
}

/// What the facilitator needs to settle a payment.
pub struct Settleable {
    pub x402_version: u32,
    pub payload: Value,
    pub requirements: Value,
    pub network: String,
    pub payer: String,
    pub amount: String,
}

/// How a payment ends, and what that does to its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Paid on chain: no longer outstanding, counted as settled.
    Settled,
    /// Not paid, and nothing was served for it (rejected, cancelled, or a
    /// settlement before execution that failed): released.
    Released,
    /// Not paid, but the call was served: the amount becomes debt.
    Debt,
}

/// A payment's row, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub route: String,
    pub status: String,
    pub x402_version: i32,
    pub amount: String,
    pub transaction: Option<String>,
    pub error_reason: Option<String>,
    pub served: bool,
}

/// A payment's state, as its lookup (`GetPayment`) shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentState {
    pub id: String,
    pub status: String,
    /// Catalog route id the payment bought.
    pub route: String,
    /// Lower-case 0x.
    pub payer: String,
    /// Atomic units, decimal.
    pub amount: String,
    /// CAIP-2.
    pub network: String,
    /// Lower-case 0x.
    pub asset: String,
    pub transaction: Option<String>,
    pub error_reason: Option<String>,
    pub served: bool,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The payments one payment service settles: those of its own terms (its
/// facilitator settles on its network, in its asset, to its payTo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// CAIP-2.
    pub network: String,
    /// Lower-case 0x.
    pub asset: String,
    /// 0x, any case.
    pub pay_to: String,
}

/// How a settlement ended, for [`Ledger::end_settlements`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub id: String,
    /// Settled ends it `settled`; any other outcome ends it `failed`.
    pub outcome: Outcome,
    pub transaction: Option<String>,
    pub reason: Option<String>,
    /// The payment's call was served.
    pub served: bool,
}

/// A payment just queued: what its pending answer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub payer: String,
    pub network: String,
    pub amount: String,
}

/// An account's state, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    pub outstanding: U256,
    pub settled_total: U256,
    pub debt: U256,
}

#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
}

/// The settleable part of a claimed row.
/// A queued payment a settler took.
pub struct Claimed {
    pub id: String,
    pub settleable: Settleable,
    /// How long it was queued.
    pub waited_seconds: f64,
}

fn settleable(row: &sqlx::postgres::PgRow) -> Settleable {
    Settleable {
        x402_version: row.get::<i32, _>("x402_version") as u32,
        payload: row.get("payload"),
        requirements: row.get("requirements"),
        network: row.get("network"),
        payer: row.get("payer"),
        amount: row.get("amount"),
    }
}

fn numeric(text: &str) -> U256 {
    U256::from_str_radix(text, 10).unwrap_or(U256::MAX)
}

impl Ledger {
    pub fn new(pool: PgPool) -> Self {
        Ledger { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// An account's totals (zero for a payer never seen).
    pub async fn account(&self, account: &Account) -> Result<AccountState> {
        let statement = sqlx::query(
            "SELECT outstanding::text, settled_total::text, debt::text FROM payer_accounts
              WHERE network = $1 AND asset = $2 AND payer = $3",
        )
        .bind(&account.network)
        .bind(&account.asset)
        .bind(&account.payer)
        .fetch_optional(&self.pool);
        let row = timed("ledger_account", statement).await?;
        Ok(row.map_or_else(AccountState::default, |row| AccountState {
            outstanding: numeric(row.get(0)),
            settled_total: numeric(row.get(1)),
            debt: numeric(row.get(2)),
        }))
    }

    /// Before reserving, in one read: whether this authorization already has
    /// a row (a replay is answered without any chain call; [`Ledger::reserve`]
    /// decides for good), and its account's `settled_total` now (to judge a
    /// balance read after it).
    pub async fn prior(&self, key: &AuthorizationKey) -> Result<Prior> {
        let account = Account::of(key);
        let statement = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM payments
                             WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4),
                    COALESCE((SELECT settled_total::text FROM payer_accounts
                               WHERE network = $1 AND asset = $2 AND payer = $3), '0')",
        )
        .bind(&account.network)
        .bind(&account.asset)
        .bind(&account.payer)
        .bind(key.nonce_hex())
        .fetch_one(&self.pool);
        let row = timed("ledger_prior", statement).await?;
        Ok(Prior {
            presented: row.get(0),
            settled_total: numeric(row.get(1)),
        })
    }

    /// Reserves the authorization and `payment.amount` of its payer's
    /// account, atomically: both or neither.
    ///
    /// `balance` is the payer's on-chain balance, read after
    /// `settled_before` (the account's `settled_total` then) was read. It is
    /// judged as `outstanding + (settled_total − settled_before) + amount ≤
    /// balance`. A settlement recorded since `settled_before` may or may not
    /// be in `balance` (it depends on when its transfer landed), so it is
    /// counted as spent once more: never less than the truth, and exact
    /// when nothing settled in between. Settlements not yet recorded are
    /// still in `outstanding`.
    ///
    /// The payment is `reserved`, or `verified` when `payment.verified` and
    /// its payer is not a debtor.
    pub async fn reserve(
        &self,
        payment: &NewPayment<'_>,
        balance: U256,
        settled_before: U256,
    ) -> Result<Reservation> {
        let account = Account::of(payment.key);
        let id = format!("{PAYMENT_ID_PREFIX}{:032x}", rand::random::<u128>());
        let amount = payment.amount.to_string();
        // One statement, so one round trip and one commit: the account is
        // taken only if the balance covers it (no row back = not covered,
        // nothing written), and the payment row is inserted only if it was
        // taken. A second presentation of the authorization violates the
        // unique key, which aborts the whole statement (the account too).
        let statement = sqlx::query_scalar::<_, bool>(
            "WITH taken AS (
                 INSERT INTO payer_accounts (network, asset, payer, outstanding)
                 SELECT $1, $2, $3, $4::numeric WHERE $4::numeric <= $5::numeric
                 ON CONFLICT (network, asset, payer) DO UPDATE
                    SET outstanding = payer_accounts.outstanding + EXCLUDED.outstanding,
                        updated_at = now()
                  WHERE payer_accounts.outstanding
                        + (payer_accounts.settled_total - $6::numeric)
                        + EXCLUDED.outstanding <= $5::numeric
                 RETURNING debt > 0 AS debtor
             ), inserted AS (
                 INSERT INTO payments (id, network, asset, payer, nonce, route, resource, amount,
                                       pay_to, x402_version, payload, requirements, status,
                                       exposure)
                 SELECT $7, $1, $2, $3, $8, $9, $10, $4, $11, $12, $13, $14,
                        CASE WHEN $15 AND NOT taken.debtor THEN 'verified' ELSE 'reserved' END,
                        $4::numeric
                   FROM taken
                 RETURNING id
             )
             SELECT taken.debtor FROM taken, inserted",
        )
        .bind(&account.network)
        .bind(&account.asset)
        .bind(&account.payer)
        .bind(&amount)
        .bind(balance.to_string())
        .bind(settled_before.to_string())
        .bind(&id)
        .bind(payment.key.nonce_hex())
        .bind(payment.route)
        .bind(payment.resource)
        .bind(payment.pay_to)
        .bind(payment.x402_version as i32)
        .bind(payment.payload)
        .bind(payment.requirements)
        .bind(payment.verified)
        .fetch_optional(&self.pool);
        let taken = async {
            match statement.await {
                Ok(Some(debtor)) => Ok(Taken::Yes { debtor }),
                Ok(None) => Ok(Taken::NotCovered),
                Err(sqlx::Error::Database(error))
                    if error.constraint() == Some(PAYMENT_KEY_CONSTRAINT) =>
                {
                    Ok(Taken::AlreadyPresented)
                }
                Err(error) => Err(error),
            }
        };
        Ok(match timed("ledger_reserve", taken).await? {
            Taken::Yes { debtor } => Reservation::Reserved { id, debtor },
            Taken::AlreadyPresented => Reservation::AlreadyPresented,
            // A replay by a payer who cannot pay is a replay all the same.
            Taken::NotCovered if self.prior(payment.key).await?.presented => {
                Reservation::AlreadyPresented
            }
            Taken::NotCovered => Reservation::NotCovered { balance },
        })
    }

    /// Moves a payment from one of `from` to `to` without ending it.
    pub async fn transition(&self, id: &str, from: &[&str], to: &str) -> Result<bool> {
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        let statement = sqlx::query(
            "UPDATE payments SET status = $3, updated_at = now() WHERE id = $1 AND status = ANY($2)",
        )
        .bind(id)
        .bind(&from)
        .bind(to)
        .execute(&self.pool);
        let done = timed("ledger_update", statement).await?.rows_affected();
        Ok(done == 1)
    }

    /// Ends a payment that is in one of `from`: its status becomes `status`
    /// and its account is updated for `outcome`, in one statement (the row
    /// is locked first, so a concurrent end of the same payment sees the new
    /// status and does nothing). False (and nothing changed) when the payment
    /// was not in `from`. `exposure` is what the payment held (0 for rows
    /// older than the accounts); `amount` is what it was for.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish(
        &self,
        id: &str,
        from: &[&str],
        status: &str,
        outcome: Outcome,
        transaction: Option<&str>,
        reason: Option<&str>,
        served: bool,
    ) -> Result<bool> {
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        let statement = sqlx::query_scalar(
            "WITH locked AS (
                 SELECT id, exposure, amount::numeric AS amount, network, asset, payer
                   FROM payments WHERE id = $1 AND status = ANY($2) FOR UPDATE
             ), ended AS (
                 UPDATE payments p
                    SET status = $3, exposure = 0, served = p.served OR $4,
                        transaction = COALESCE($5, p.transaction),
                        error_reason = COALESCE($6, p.error_reason), updated_at = now()
                   FROM locked WHERE p.id = locked.id
                 RETURNING locked.exposure, locked.amount, locked.network, locked.asset, locked.payer
             ), accounted AS (
                 UPDATE payer_accounts a
                    SET outstanding = a.outstanding - ended.exposure,
                        settled_total = a.settled_total + CASE WHEN $7 THEN ended.amount ELSE 0 END,
                        debt = a.debt + CASE WHEN $8 THEN ended.amount ELSE 0 END,
                        debtor_since = CASE WHEN $8 THEN COALESCE(a.debtor_since, now())
                                            ELSE a.debtor_since END,
                        updated_at = now()
                   FROM ended
                  WHERE a.network = ended.network AND a.asset = ended.asset AND a.payer = ended.payer
             )
             SELECT count(*) FROM ended",
        )
        .bind(id)
        .bind(&from)
        .bind(status)
        .bind(served)
        .bind(transaction.filter(|t| !t.is_empty()))
        .bind(reason)
        .bind(outcome == Outcome::Settled)
        .bind(outcome == Outcome::Debt)
        .fetch_one(&self.pool);
        let ended: i64 = timed("ledger_finish", statement).await?;
        Ok(ended == 1)
    }

    /// Ends settlements that came back, as [`Ledger::finish`] each from
    /// `settling`, in one statement: payments locked in id order, then
    /// their accounts in key order (two settlers ending at once cannot
    /// deadlock), each account updated once for all of its payments. The
    /// ids ended (one no longer settling is not).
    pub async fn end_settlements(&self, endings: &[Ending]) -> Result<HashSet<String>> {
        let mut ids = Vec::with_capacity(endings.len());
        let mut served = Vec::with_capacity(endings.len());
        let mut transactions = Vec::with_capacity(endings.len());
        let mut reasons = Vec::with_capacity(endings.len());
        let mut settled = Vec::with_capacity(endings.len());
        let mut debt = Vec::with_capacity(endings.len());
        for ending in endings {
            ids.push(ending.id.as_str());
            served.push(ending.served);
            transactions.push(ending.transaction.as_deref().filter(|t| !t.is_empty()));
            reasons.push(ending.reason.as_deref());
            settled.push(ending.outcome == Outcome::Settled);
            debt.push(ending.outcome == Outcome::Debt);
        }
        let statement = sqlx::query_scalar(
            "WITH input AS (
                 SELECT DISTINCT ON (id) *
                   FROM unnest($1::text[], $2::bool[], $3::text[], $4::text[], $5::bool[],
                               $6::bool[])
                        AS i(id, served, transaction, error_reason, settled, debt)
             ), locked AS (
                 SELECT p.id, p.exposure, p.amount::numeric AS amount, p.network, p.asset,
                        p.payer, input.served, input.transaction,
                        input.error_reason, input.settled, input.debt
                   FROM payments p JOIN input ON p.id = input.id
                  WHERE p.status = 'settling'
                  ORDER BY p.id
                    FOR UPDATE OF p
             ), ended AS (
                 UPDATE payments p
                    SET status = CASE WHEN locked.settled THEN 'settled' ELSE 'failed' END,
                        exposure = 0, served = p.served OR locked.served,
                        transaction = COALESCE(locked.transaction, p.transaction),
                        error_reason = COALESCE(locked.error_reason, p.error_reason),
                        updated_at = now()
                   FROM locked WHERE p.id = locked.id
                 RETURNING p.id, locked.exposure, locked.amount, locked.network, locked.asset,
                           locked.payer, locked.settled, locked.debt
             ), per_account AS (
                 SELECT network, asset, payer, sum(exposure) AS exposure,
                        sum(CASE WHEN settled THEN amount ELSE 0 END) AS settled,
                        sum(CASE WHEN debt THEN amount ELSE 0 END) AS debt, bool_or(debt) AS any_debt
                   FROM ended GROUP BY network, asset, payer
             ), accounts AS (
                 SELECT a.network, a.asset, a.payer
                   FROM payer_accounts a JOIN per_account e
                        ON a.network = e.network AND a.asset = e.asset AND a.payer = e.payer
                  ORDER BY a.network, a.asset, a.payer
                    FOR UPDATE OF a
             ), accounted AS (
                 UPDATE payer_accounts a
                    SET outstanding = a.outstanding - e.exposure,
                        settled_total = a.settled_total + e.settled,
                        debt = a.debt + e.debt,
                        debtor_since = CASE WHEN e.any_debt THEN COALESCE(a.debtor_since, now())
                                            ELSE a.debtor_since END,
                        updated_at = now()
                   FROM per_account e JOIN accounts l
                        ON l.network = e.network AND l.asset = e.asset AND l.payer = e.payer
                  WHERE a.network = e.network AND a.asset = e.asset AND a.payer = e.payer
             )
             SELECT id FROM ended",
        )
        .bind(&ids)
        .bind(&served)
        .bind(&transactions)
        .bind(&reasons)
        .bind(&settled)
        .bind(&debt)
        .fetch_all(&self.pool);
        let ended: Vec<String> = timed("ledger_end_settlements", statement).await?;
        Ok(ended.into_iter().collect())
    }

    /// Records a settlement still in flight: the payment stays outstanding.
    pub async fn record_pending(
        &self,
        id: &str,
        transaction: Option<&str>,
        served: bool,
    ) -> Result<()> {
        let statement = sqlx::query(
            "UPDATE payments SET status = 'pending', served = served OR $2,
                    transaction = COALESCE($3, transaction), error_reason = 'settlement_pending',
                    updated_at = now()
              WHERE id = $1 AND status = 'settling'",
        )
        .bind(id)
        .bind(served)
        .bind(transaction.filter(|t| !t.is_empty()))
        .execute(&self.pool);
        timed("ledger_pending", statement).await?;
        Ok(())
    }

    /// Takes a verified payment for settling.
    pub async fn claim_for_settle(&self, id: &str) -> Result<Option<Settleable>> {
        self.claim(id, "status = 'verified'").await
    }

    /// Queues verified payments whose calls were served, for a settler to
    /// settle later, in one statement; answers those queued (a payment not
    /// verified, already queued, settled or cancelled, is not). Their
    /// amounts stay outstanding.
    pub async fn queue(&self, ids: &[String]) -> Result<HashMap<String, Queued>> {
        let statement = sqlx::query(
            "UPDATE payments SET status = 'queued', served = true, updated_at = now()
              WHERE id = ANY($1) AND status = 'verified'
             RETURNING id, payer, network, amount",
        )
        .bind(ids)
        .fetch_all(&self.pool);
        let rows = timed("ledger_queue", statement).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let queued = Queued {
                    payer: row.get("payer"),
                    network: row.get("network"),
                    amount: row.get("amount"),
                };
                (row.get("id"), queued)
            })
            .collect())
    }

    /// Renews the lease of payments this process is settling (see
    /// [`crate::lease`]).
    pub async fn renew(&self, ids: &[String]) -> Result<()> {
        let statement = sqlx::query(
            "UPDATE payments SET updated_at = now() WHERE id = ANY($1) AND status = 'settling'",
        )
        .bind(ids)
        .execute(&self.pool);
        timed("ledger_renew", statement).await?;
        Ok(())
    }

    /// Takes up to `limit` queued payments of `scope` for settling, oldest
    /// first. Rows another settler is claiming right now are skipped, not
    /// waited for: concurrent claims never take one row twice.
    pub async fn claim_queued(&self, scope: &Scope, limit: usize) -> Result<Vec<Claimed>> {
        let statement = sqlx::query(
            "WITH picked AS (
                 SELECT id, updated_at AS queued_at FROM payments
                  WHERE status = 'queued' AND network = $1 AND asset = $2 AND lower(pay_to) = $3
                  ORDER BY updated_at LIMIT $4
                  FOR UPDATE SKIP LOCKED
             )
             UPDATE payments p
                SET status = 'settling', attempts = attempts + 1, updated_at = now()
               FROM picked WHERE p.id = picked.id
             RETURNING p.id, p.x402_version, p.payload, p.requirements, p.network, p.payer, p.amount,
                       extract(epoch FROM now() - picked.queued_at)::float8 AS waited",
        )
        .bind(&scope.network)
        .bind(scope.asset.to_ascii_lowercase())
        .bind(scope.pay_to.to_ascii_lowercase())
        .bind(limit as i64)
        .fetch_all(&self.pool);
        let rows = timed("ledger_claim_queued", statement).await?;
        Ok(rows
            .iter()
            .map(|row| Claimed {
                id: row.get("id"),
                settleable: settleable(row),
                waited_seconds: row.get("waited"),
            })
            .collect())
    }

    /// How many payments of `scope` wait in the queue.
    pub async fn queued(&self, scope: &Scope) -> Result<i64> {
        let statement = sqlx::query_scalar(
            "SELECT count(*) FROM payments
              WHERE status = 'queued' AND network = $1 AND asset = $2 AND lower(pay_to) = $3",
        )
        .bind(&scope.network)
        .bind(scope.asset.to_ascii_lowercase())
        .bind(scope.pay_to.to_ascii_lowercase())
        .fetch_one(&self.pool);
        timed("ledger_queued", statement).await
    }

    /// A payment's state; `None` for an id the ledger does not have.
    pub async fn get(&self, id: &str) -> Result<Option<PaymentState>> {
        let statement = sqlx::query_as(
            "SELECT id, status, route, payer, amount, network, asset, transaction, error_reason,
                    served,
                    (extract(epoch FROM created_at) * 1000)::bigint AS created_at_ms,
                    (extract(epoch FROM updated_at) * 1000)::bigint AS updated_at_ms
               FROM payments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool);
        timed("ledger_get", statement).await
    }

    /// Takes a pending payment, or one whose settler died mid-way (settling
    /// for more than `lease_seconds`: nothing renewed its lease), for a retry.
    pub async fn claim_for_retry(
        &self,
        id: &str,
        lease_seconds: u64,
    ) -> Result<Option<Settleable>> {
        let condition = format!(
            "(status = 'pending' OR (status = 'settling' AND updated_at < now() - make_interval(secs => {lease_seconds})))"
        );
        self.claim(id, &condition).await
    }

    async fn claim(&self, id: &str, condition: &str) -> Result<Option<Settleable>> {
        let sql = format!(
            "UPDATE payments SET status = 'settling', attempts = attempts + 1, updated_at = now()
             WHERE id = $1 AND {condition}
             RETURNING x402_version, payload, requirements, network, payer, amount"
        );
        let statement = sqlx::query(&sql).bind(id).fetch_optional(&self.pool);
        let row = timed("ledger_claim", statement).await?;
        Ok(row.as_ref().map(settleable))
    }

    pub async fn status(&self, id: &str) -> Result<Option<(String, Option<String>)>> {
        let statement = sqlx::query("SELECT status, transaction FROM payments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool);
        let row = timed("ledger_status", statement).await?;
        Ok(row.map(|row| (row.get("status"), row.get("transaction"))))
    }

    /// A payer's payments, oldest first (for operators and tests).
    pub async fn payments_of(&self, payer: &str) -> Result<Vec<PaymentRow>> {
        let statement = sqlx::query_as(
            "SELECT id, route, status, x402_version, amount, transaction, error_reason, served
               FROM payments WHERE payer = $1 ORDER BY created_at, id",
        )
        .bind(payer.to_ascii_lowercase())
        .fetch_all(&self.pool);
        timed("ledger_payments", statement).await
    }

    /// Statuses of a payer's payments, oldest first.
    pub async fn statuses_of(&self, payer: &str) -> Result<Vec<String>> {
        Ok(self
            .payments_of(payer)
            .await?
            .into_iter()
            .map(|row| row.status)
            .collect())
    }

    /// Payments of `scope` whose settlement is pending, or whose settler
    /// died mid-way (settling for more than `lease_seconds`: nothing renewed
    /// its lease).
    pub async fn due_for_retry(
        &self,
        scope: &Scope,
        limit: i64,
        lease_seconds: u64,
    ) -> Result<Vec<String>> {
        let statement = sqlx::query(
            "SELECT id FROM payments
             WHERE (status = 'pending'
                    OR (status = 'settling'
                        AND updated_at < now() - make_interval(secs => $2::float8)))
               AND network = $3 AND asset = $4 AND lower(pay_to) = $5
             ORDER BY updated_at LIMIT $1",
        )
        .bind(limit)
        .bind(lease_seconds as f64)
        .bind(&scope.network)
        .bind(scope.asset.to_ascii_lowercase())
        .bind(scope.pay_to.to_ascii_lowercase())
        .fetch_all(&self.pool);
        let rows = timed("ledger_due", statement).await?;
        Ok(rows.iter().map(|row| row.get("id")).collect())
    }

    /// Payments of `scope` left `reserved` or `verified` for longer than
    /// `older_than_secs`: whoever was driving them (the payment service
    /// between reserving and answering, the gateway between verifying and
    /// settling) stopped. Oldest first, at most 32.
    pub async fn orphans(
        &self,
        scope: &Scope,
        older_than_secs: u64,
    ) -> Result<Vec<(String, String)>> {
        let statement = sqlx::query(
            "SELECT id, status FROM payments
              WHERE status IN ('reserved', 'verified')
                AND updated_at < now() - make_interval(secs => $1)
                AND network = $2 AND asset = $3 AND lower(pay_to) = $4
              ORDER BY updated_at LIMIT 32",
        )
        .bind(older_than_secs as f64)
        .bind(&scope.network)
        .bind(scope.asset.to_ascii_lowercase())
        .bind(scope.pay_to.to_ascii_lowercase())
        .fetch_all(&self.pool);
        let rows = timed("ledger_orphans", statement).await?;
        Ok(rows
            .iter()
            .map(|row| (row.get("id"), row.get("status")))
            .collect())
    }

    /// Takes an orphaned verified payment (see [`Ledger::orphans`]) for
    /// settling; `None` if it has moved on meanwhile.
    pub async fn claim_orphan(&self, id: &str, older_than_secs: u64) -> Result<Option<Settleable>> {
        let condition = format!(
            "status = 'verified' AND updated_at < now() - interval '{older_than_secs} seconds'"
        );
        self.claim(id, &condition).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_ids_are_pay_and_32_lower_case_hex_digits() {
        assert!(is_payment_id("pay_0123456789abcdef0123456789abcdef"));
        for not_an_id in [
            "",
            "pay_",
            "pay_0123456789ABCDEF0123456789abcdef",
            "pay_0123456789abcdef0123456789abcde",
            "pay_0123456789abcdef0123456789abcdef0",
            "pay_0123456789abcdef0123456789abcdeg",
            "PAY_0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
            "pay_../../0123456789abcdef012345678",
        ] {
            assert!(!is_payment_id(not_an_id), "{not_an_id:?}");
        }
    }
}
