//! A client of any x402 facilitator's HTTP API. With an API key
//! (`FACILITATOR_API_KEY`), every `/verify` and `/settle` carries
//! `Authorization: Bearer <key>`, as a facilitator with
//! `FACILITATOR_API_KEYS` requires; a facilitator that refuses the key (401)
//! counts as unreachable (the call is answered 503 and nothing is charged).

use reqwest::header::HeaderValue;
use std::time::Duration;
use tessera_error::{Error, ErrorKind};
use tessera_runtime::config::Secret;
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse, VerifyResponse};

#[derive(Clone)]
pub struct FacilitatorClient {
    base_url: String,
    http: reqwest::Client,
    /// `Bearer <key>`, none without a key; an error when the key cannot be
    /// a header value (every call then fails, saying so).
    authorization: Result<Option<HeaderValue>, &'static str>,
}

/// The facilitator could not be asked, or did not answer in time: the
/// outcome is unknown (for a settle, it may still land).
#[derive(Debug)]
pub struct Unreachable(pub String);

impl From<Unreachable> for Error {
    fn from(error: Unreachable) -> Self {
        Error::new(
            ErrorKind::Unavailable,
            "FACILITATOR_UNAVAILABLE",
            format!("the payment facilitator is unavailable: {}", error.0),
        )
    }
}

impl FacilitatorClient {
    /// A client of the facilitator at `base_url`, sending `api_key` as a
    /// bearer token when given.
    pub fn new(base_url: &str, api_key: Option<Secret>) -> Self {
        let authorization = match api_key {
            None => Ok(None),
            Some(key) => HeaderValue::try_from(format!("Bearer {}", key.expose()))
                .map(|mut value| {
                    value.set_sensitive(true);
                    Some(value)
                })
                .map_err(|_| "FACILITATOR_API_KEY is not a valid header value"),
        };
        FacilitatorClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .build()
                .expect("http client"),
            authorization,
        }
    }

    pub async fn verify(
        &self,
        request: &FacilitatorRequest,
        timeout: Duration,
    ) -> Result<VerifyResponse, Unreachable> {
        self.post("verify", request, timeout).await
    }

    pub async fn settle(
        &self,
        request: &FacilitatorRequest,
        timeout: Duration,
    ) -> Result<SettleResponse, Unreachable> {
        self.post("settle", request, timeout).await
    }

    /// Whether the facilitator answers `GET /supported` with its kinds.
    pub async fn supported(&self, timeout: Duration) -> Result<(), Unreachable> {
        let url = format!("{}/supported", self.base_url);
        let (status, body) = self
            .send(&url, self.http.get(&url).timeout(timeout))
            .await?;
        match serde_json::from_slice::<tessera_x402::facilitator::SupportedResponse>(&body) {
            Ok(_) if status.is_success() => Ok(()),
            _ => Err(Unreachable(format!("{url} answered {status}"))),
        }
    }

    /// Sends `request` to `url` with the API key, if any: the answer's
    /// status and body.
    async fn send(
        &self,
        url: &str,
        mut request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), Unreachable> {
        match &self.authorization {
            Ok(Some(value)) => {
                request = request.header(reqwest::header::AUTHORIZATION, value.clone())
            }
            Ok(None) => {}
            Err(problem) => return Err(Unreachable(format!("{url}: {problem}"))),
        }
        let response = request
            .send()
            .await
            .map_err(|e| Unreachable(format!("{url}: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Unreachable(format!("{url}: {e}")))?;
        Ok((status, body.to_vec()))
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        request: &FacilitatorRequest,
        timeout: Duration,
    ) -> Result<T, Unreachable> {
        let url = format!("{}/{path}", self.base_url);
        let post = self.http.post(&url).timeout(timeout).json(request);
        let (status, body) = self.send(&url, post).await?;
        // Some facilitators answer an invalid payment with 400 and the same
        // JSON; accept any status whose body is the expected document.
        serde_json::from_slice(&body).map_err(|_| {
            Unreachable(format!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        })
    }
}
