//! `Idempotency-Key` on the paid routes: a retried request is answered from
//! the first one's stored response, with `X-Idempotent-Replay: true`, and is
//! not charged again.
//!
//! - **Key.** sha256 over the method, the path, the key and the caller's
//!   gate credential ([`Credential`]): a payer proven by its signature (x402),
//!   the proof-of-work token, or the `X-Agent-Id` namespace in FREE_MODE. A
//!   request without a credential (an unpaid call, answered 402) is not
//!   keyed: there is nothing to replay it to.
//! - **Fingerprint.** The query and the body. The same key with another
//!   request is 422 (IETF draft-ietf-httpapi-idempotency-key-header).
//! - **Duplicates in flight** wait for the first (polling the store, at most
//!   `IDEMPOTENCY_WAIT_SECONDS`), then get its answer; past the wait, 409
//!   with `Retry-After`.
//! - **What is kept.** Only a response whose call was paid for: in FREE_MODE
//!   a 2xx; with x402, one whose payment settled (and, for a payment settled
//!   before the call, not a 5xx); with proof of work, a served call (2xx). A
//!   call that failed, was refused, or whose settlement did not finish is
//!   not kept: a retry runs again. Responses larger than
//!   `IDEMPOTENCY_MAX_RESPONSE_BYTES` are not kept either.
//! - **Where.** [`IdempotencyStore`]: Redis (shared by every replica) or
//!   SQLite (the embedded default), entries living `IDEMPOTENCY_TTL_SECONDS`.
//!   A store that cannot be reached makes a keyed request 503: it asked for
//!   exactly-once and must not silently get at-least-once.

use crate::errors::Family;
use crate::extract::MAX_BODY_BYTES;
use crate::identity::AGENT_ID_HEADER;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use std::future::Future;
use std::time::Duration;
use tessera_catalog::Route;
use tessera_error::{Error, ErrorKind};
use tessera_idempotency::{Begin, CacheKey, Fingerprint, IdempotencyStore, StoredResponse};

pub const KEY_HEADER: &str = "idempotency-key";
pub const REPLAY_HEADER: &str = "x-idempotent-replay";
/// The longest Idempotency-Key accepted (a UUID is 36).
pub const MAX_KEY_LEN: usize = 255;

/// Response headers that describe one exchange, not the stored answer.
const NOT_REPLAYED: &[&str] = &[
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
];

/// The store and how long a duplicate waits for the first.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub store: IdempotencyStore,
    pub wait: Duration,
    pub max_response_bytes: usize,
}

/// Who the request proves it is, as the payment gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential(pub String);

/// Marks a response whose call was paid for (settled, or proof of work
/// spent): only such a response may be replayed.
#[derive(Debug, Clone, Copy)]
pub struct PaidFor;

/// The request's Idempotency-Key, if any: 1 to 255 visible ASCII
/// characters, bare or as a structured-field string (`"…"`), the two
/// spellings being the same key.
pub fn requested_key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(KEY_HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        Error::invalid(
            "INVALID_IDEMPOTENCY_KEY",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let key = text
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text);
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(invalid());
    }
    Ok(Some(key.to_string()))
}

/// The FREE_MODE credential: the namespace the caller names (none is a
/// credential of its own: anonymous).
pub fn free_mode_credential(headers: &HeaderMap) -> Credential {
    let namespace = headers
        .get(AGENT_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    Credential(format!("agent:{namespace}"))
}

/// Serves `request` at most once per key: replays a kept answer, waits for
/// a duplicate in flight, or claims the key and runs `call`, keeping its
/// response when it was paid for.
pub async fn serve<F, Fut>(
    idempotency: Idempotency,
    route: &'static Route,
    key: String,
    credential: Credential,
    free: bool,
    request: Request,
    call: F,
) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let family = Family::from(route.face);
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let error = Error::new(
                ErrorKind::QuotaExceeded,
                "BODY_TOO_LARGE",
                format!("request body is larger than {MAX_BODY_BYTES} bytes, or was cut short"),
            );
            return family.response(&error);
        }
    };
    let cache_key = CacheKey::new(parts.method.as_str(), parts.uri.path(), &key, &credential.0);
    let fingerprint = Fingerprint::of(parts.uri.query().unwrap_or(""), &body);

    let claim = match begin(&idempotency, &cache_key, &fingerprint).await {
        Ok(Begun::Claimed(claim)) => claim,
        Ok(Begun::Replay(stored)) => return replay(stored),
        Err(error) => {
            let mut response = family.response(&error);
            if error.kind == ErrorKind::Conflict {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return response;
        }
    };
    let response = call(Request::from_parts(parts, Body::from(body))).await;
    let keep = match response.extensions().get::<PaidFor>() {
        Some(PaidFor) => response.status().as_u16() < 500,
        None => free && response.status().is_success(),
    };
    if !keep {
        release(&idempotency, claim).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "a response body could not be read to keep it");
            release(&idempotency, claim).await;
            let error = Error::internal("the response could not be read");
            return family.response(&error);
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !NOT_REPLAYED.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    };
    if stored.encoded_len() > idempotency.max_response_bytes {
        tracing::warn!(
            route = route.id,
            bytes = stored.encoded_len(),
            "a response is larger than IDEMPOTENCY_MAX_RESPONSE_BYTES: not kept, a retry runs again"
        );
        release(&idempotency, claim).await;
    } else {
        match idempotency.store.complete(claim, &stored).await {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                route = route.id,
                "an idempotent call outlived its lease: a duplicate may have run it again"
            ),
            Err(error) => {
                tracing::warn!(%error, route = route.id, "an idempotent response could not be kept")
            }
        }
    }
    Response::from_parts(parts, Body::from(body))
}

enum Begun {
    Claimed(tessera_idempotency::Claim),
    Replay(StoredResponse),
}

/// Claims the key, or finds its answer, waiting (bounded) while a duplicate
/// runs.
async fn begin(
    idempotency: &Idempotency,
    key: &CacheKey,
    fingerprint: &Fingerprint,
) -> Result<Begun, Error> {
    let deadline = tokio::time::Instant::now() + idempotency.wait;
    let mut pause = Duration::from_millis(5);
    loop {
        match idempotency.store.begin(key, fingerprint).await? {
            Begin::Claimed(claim) => return Ok(Begun::Claimed(claim)),
            Begin::Replay(stored) => return Ok(Begun::Replay(stored)),
            Begin::Mismatch => {
                return Err(Error::new(
                    ErrorKind::Unprocessable,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used for another request (other query or body): use a new key",
                ))
            }
            Begin::InFlight => {}
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::new(
                ErrorKind::Conflict,
                "IDEMPOTENCY_KEY_IN_FLIGHT",
                format!(
                    "a request with this Idempotency-Key is still running after {} s; retry to get its answer",
                    idempotency.wait.as_secs()
                ),
            ));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

async fn release(idempotency: &Idempotency, claim: tessera_idempotency::Claim) {
    if let Err(error) = idempotency.store.release(claim).await {
        // The entry stays in flight until its lease ends; duplicates wait, then run again.
        tracing::warn!(%error, "an idempotency claim could not be released");
    }
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body.clone()));
    *response.status_mut() =
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(REPLAY_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &[u8]) -> Result<Option<String>, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(KEY_HEADER, HeaderValue::from_bytes(value).unwrap());
        requested_key(&headers)
    }

    #[test]
    fn a_key_is_the_same_bare_or_quoted_and_bounded() {
        assert_eq!(requested_key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(key(b"abc-123").unwrap(), Some("abc-123".into()));
        assert_eq!(key(b"\"abc-123\"").unwrap(), Some("abc-123".into()));
        assert_eq!(key(b"  abc-123 ").unwrap(), Some("abc-123".into()));
        assert_eq!(
            key(&[b'k'; MAX_KEY_LEN]).unwrap().unwrap().len(),
            MAX_KEY_LEN
        );
        for bad in [&b""[..], b"\"\"", b"\xffkey", &[b'k'; MAX_KEY_LEN + 1]] {
            let error = key(bad).unwrap_err();
            assert_eq!(error.reason, "INVALID_IDEMPOTENCY_KEY", "{bad:?}");
            assert_eq!(error.http_status(), 400);
        }
    }

    #[test]
    fn free_mode_callers_are_told_apart_by_namespace() {
        let mut headers = HeaderMap::new();
        assert_eq!(free_mode_credential(&headers).0, "agent:");
        headers.insert(AGENT_ID_HEADER, HeaderValue::from_static(" a1 "));
        assert_eq!(free_mode_credential(&headers).0, "agent:a1");
    }
}
