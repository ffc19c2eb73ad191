//! The payments ledger in PostgreSQL. Reserving an authorization is one
//! INSERT guarded by the unique (network, asset, payer, nonce): of any number
//! of concurrent presentations of one payment, exactly one gets the row.

use serde_json::Value;
use sqlx::{PgPool, Row};
use tessera_error::{Error, ErrorKind, Result};

/// The ledger's migrations. Other services' migrations may share the
/// database (and sqlx's one history table): those are not ours to judge.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

fn db_error(error: sqlx::Error) -> Error {
    tracing::warn!(%error, "payments ledger call failed");
    Error::unavailable(
        "LEDGER_UNAVAILABLE",
        "the payments ledger is unavailable; retry",
    )
}

pub struct NewPayment<'a> {
    pub network: &'a str,
    pub asset: &'a str,
    pub payer: &'a str,
    pub nonce: &'a str,
    pub route: &'a str,
    pub resource: &'a str,
    pub amount: &'a str,
    pub pay_to: &'a str,
    pub x402_version: u32,
    pub payload: &'a Value,
    pub requirements: &'a Value,
}

/// What the facilitator needs to settle a payment.
pub struct Settleable {
    pub x402_version: u32,
    pub payload: Value,
    pub requirements: Value,
    pub network: String,
    pub payer: String,
}

#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
}

impl Ledger {
    pub fn new(pool: PgPool) -> Self {
        Ledger { pool }
    }

    /// Reserves the authorization under a new id. An authorization whose
    /// earlier attempt was rejected or cancelled (never charged) may be
    /// presented again; one in use or used is a conflict.
    pub async fn reserve(&self, payment: &NewPayment<'_>) -> Result<String> {
        let id = format!("pay_{:032x}", rand::random::<u128>());
        let row = sqlx::query(
            "INSERT INTO payments (id, network, asset, payer, nonce, route, resource, amount, pay_to,
                                   x402_version, payload, requirements, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'reserved')
             ON CONFLICT (network, asset, payer, nonce) DO UPDATE
                 SET id = EXCLUDED.id, route = EXCLUDED.route, resource = EXCLUDED.resource,
                     payload = EXCLUDED.payload, requirements = EXCLUDED.requirements,
                     status = 'reserved', error_reason = NULL, updated_at = now()
                 WHERE payments.status IN ('rejected', 'cancelled')
             RETURNING id",
        )
        .bind(&id)
        .bind(payment.network)
        .bind(payment.asset)
        .bind(payment.payer)
        .bind(payment.nonce)
        .bind(payment.route)
        .bind(payment.resource)
        .bind(payment.amount)
        .bind(payment.pay_to)
        .bind(payment.x402_version as i32)
        .bind(payment.payload)
        .bind(payment.requirements)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(|_| id).ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                "PAYMENT_ALREADY_USED",
                "this payment was already presented: sign a new one",
            )
        })
    }

    /// Moves a payment from one status to another; false if it was not in `from`.
    pub async fn transition(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        let done = sqlx::query(
            "UPDATE payments SET status = $3, error_reason = COALESCE($4, error_reason), updated_at = now()
             WHERE id = $1 AND status = ANY($2)",
        )
        .bind(id)
        .bind(&from)
        .bind(to)
        .bind(reason)
        .execute(&self.pool)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(done == 1)
    }

    /// Takes a verified payment for settling.
    pub async fn claim_for_settle(&self, id: &str) -> Result<Option<Settleable>> {
        self.claim(id, "status = 'verified'").await
    }

    /// Takes a pending payment, or one whose settler died mid-way, for a retry.
    pub async fn claim_for_retry(&self, id: &str) -> Result<Option<Settleable>> {
        self.claim(id, "(status = 'pending' OR (status = 'settling' AND updated_at < now() - interval '2 minutes'))")
            .await
    }

    async fn claim(&self, id: &str, condition: &str) -> Result<Option<Settleable>> {
        let sql = format!(
            "UPDATE payments SET status = 'settling', attempts = attempts + 1, updated_at = now()
             WHERE id = $1 AND {condition}
             RETURNING x402_version, payload, requirements, network, payer"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.map(|row| Settleable {
            x402_version: row.get::<i32, _>("x402_version") as u32,
            payload: row.get("payload"),
            requirements: row.get("requirements"),
            network: row.get("network"),
            payer: row.get("payer"),
        }))
    }

    pub async fn record_settlement(
        &self,
        id: &str,
        status: &str,
        transaction: Option<&str>,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE payments SET status = $2, transaction = COALESCE($3, transaction), error_reason = $4, updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(transaction.filter(|t| !t.is_empty()))
        .bind(reason)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn status(&self, id: &str) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT status, transaction FROM payments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.map(|row| (row.get("status"), row.get("transaction"))))
    }

    /// Statuses of a payer's payments, oldest first (for operators and tests).
    pub async fn statuses_of(&self, payer: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT status FROM payments WHERE payer = $1 ORDER BY created_at")
            .bind(payer.to_ascii_lowercase())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|row| row.get("status")).collect())
    }

    /// Payments whose settlement is pending, or whose settler died mid-way.
    pub async fn due_for_retry(&self, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM payments
             WHERE status = 'pending'
                OR (status = 'settling' AND updated_at < now() - interval '2 minutes')
             ORDER BY updated_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(rows.iter().map(|row| row.get("id")).collect())
    }
}
