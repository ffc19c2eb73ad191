//! A client of any x402 facilitator's HTTP API.

use std::time::Duration;
use tessera_error::{Error, ErrorKind};
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse, VerifyResponse};

#[derive(Clone)]
pub struct FacilitatorClient {
    base_url: String,
    http: reqwest::Client,
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
    pub fn new(base_url: &str) -> Self {
        FacilitatorClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .build()
                .expect("http client"),
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

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        request: &FacilitatorRequest,
        timeout: Duration,
    ) -> Result<T, Unreachable> {
        let url = format!("{}/{path}", self.base_url);
        let response = self
            .http
            .post(&url)
            .timeout(timeout)
            .json(request)
            .send()
            .await
            .map_err(|e| Unreachable(format!("{url}: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Unreachable(format!("{url}: {e}")))?;
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
