//! `GET /api/payments/{id}`: a payment's state, free. An asynchronous
//! settlement's `PAYMENT-RESPONSE` names its payment
//! (`extensions.settlement.id` and `.lookup`); its payer polls here until
//! the state is final and reads the transaction.
//!
//! The id is the capability: `pay_` and 32 hex digits, 128 random bits
//! that only the payer was ever answered, so no other credential is asked
//! for. An unknown id and text that is no id are both **404** `{"error":
//! "no such payment"}` (the same answer, so a probe learns nothing), and so
//! is every id in FREE_MODE, where nobody pays. The answer:
//!
//! ```json
//! {"id": "pay_…", "status": "settled", "final": true, "route": "memory.incr",
//!  "payer": "0x…", "amount": "1000", "network": "eip155:84532", "asset": "0x…",
//!  "transaction": "0x…", "errorReason": null, "served": true,
//!  "createdAt": "2026-…Z", "updatedAt": "2026-…Z"}
//! ```
//!
//! `status`: `reserved`, `verified` (the call is running), `queued` (served,
//! settlement not yet attempted), `settling`, `pending` (the settlement is
//! being retried), then one of the final ones: `settled` (`transaction` is
//! the transfer), `failed` (not paid; for a served call a debt),
//! `rejected` or `cancelled` (nothing charged).

use crate::errors::ApiError;
use crate::timestamps::rfc3339_millis;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tessera_error::{Error, ErrorKind};
use tessera_proto::payment::v1 as pb;

/// The statuses a payment does not leave.
const FINAL: [&str; 4] = ["settled", "failed", "rejected", "cancelled"];

/// `GET /api/payments/{id}`.
pub(crate) async fn lookup(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = match &state.payments {
        // The payment service tells an id from junk (NOT_FOUND for both).
        Some(payments) => payments.payment(&id).await?,
        None => None,
    };
    let payment = found.ok_or_else(no_such_payment)?;
    let mut response = Json(view(&payment)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn no_such_payment() -> Error {
    Error::new(ErrorKind::NotFound, "PAYMENT_NOT_FOUND", "no such payment")
}

fn view(payment: &pb::GetPaymentResponse) -> serde_json::Value {
    let text_or_null = |text: &str| (!text.is_empty()).then(|| text.to_string());
    json!({
        "id": payment.payment_id,
        "status": payment.status,
        "final": FINAL.contains(&payment.status.as_str()),
        "route": payment.route,
        "payer": payment.payer,
        "amount": payment.amount,
        "network": payment.network,
        "asset": payment.asset,
        "transaction": text_or_null(&payment.transaction),
        "errorReason": text_or_null(&payment.error_reason),
        "served": payment.served,
        "createdAt": rfc3339_millis(payment.created_at_ms),
        "updatedAt": rfc3339_millis(payment.updated_at_ms),
    })
}
