//! A client of any x402 facilitator's HTTP API. With an API key
//! (`FACILITATOR_API_KEY`), every `/verify` and `/settle` carries
//! `Authorization: Bearer <key>`, as a facilitator with
//! `FACILITATOR_API_KEYS` requires; a facilitator that refuses the key (401)
//! counts as unreachable (the call is answered 503 and nothing is charged).

use reqwest::header::HeaderValue;
use std::time::Duration;
use tessera_error::{Error, ErrorKind};
use tessera_runtime::config::Secret;
use tessera_runtime::dependency::{self, Dependency};
use tessera_x402::facilitator::{
    FacilitatorRequest, SettleResponse, Urgency, VerifyResponse, URGENCY_HEADER,
};
use tracing::Instrument;

#[derive(Clone)]
pub struct FacilitatorClient {
    base_url: String,
    http: reqwest::Client,
    /// `Bearer <key>`, none without a key; an error when the key cannot be
    /// a header value (every call then fails, saying so).
    authorization: Result<Option<HeaderValue>, &'static str>,
}

/// The facilitator could not be asked, or did not answer in time: the
/// outcome is unknown (for a settle, it may still land). What happened,
/// and its [`Unreachable::kind`].
#[derive(Debug)]
pub struct Unreachable(pub String, pub &'static str);

/// [`Unreachable::kind`] of a facilitator that did not answer in time.
pub const TIMEOUT: &str = "timeout";
/// [`Unreachable::kind`] of a facilitator that could not be asked, or
/// answered something that is not the document asked for.
pub const UNREACHABLE: &str = "unreachable";

impl Unreachable {
    fn new(message: String) -> Self {
        Unreachable(message, UNREACHABLE)
    }

    fn of(url: &str, error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            TIMEOUT
        } else {
            UNREACHABLE
        };
        Unreachable(format!("{url}: {error}"), kind)
    }

    /// [`TIMEOUT`] (no answer in time) or [`UNREACHABLE`] (no usable
    /// answer).
    pub fn kind(&self) -> &'static str {
        self.1
    }
}

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
        self.post("verify", request, timeout, None).await
    }

    /// `POST /settle`, saying whether its caller waits for it (a
    /// facilitator without our [`URGENCY_HEADER`] settles it all the same).
    pub async fn settle(
        &self,
        request: &FacilitatorRequest,
        timeout: Duration,
        urgency: Urgency,
    ) -> Result<SettleResponse, Unreachable> {
        self.post("settle", request, timeout, Some(urgency)).await
    }

    /// Whether the facilitator answers `GET /supported` with its kinds.
    pub async fn supported(&self, timeout: Duration) -> Result<(), Unreachable> {
        let url = format!("{}/supported", self.base_url);
        let (status, body) = self
            .send(&url, self.http.get(&url).timeout(timeout))
            .await?;
        match serde_json::from_slice::<tessera_x402::facilitator::SupportedResponse>(&body) {
            Ok(_) if status.is_success() => Ok(()),
            _ => Err(Unreachable::new(format!("{url} answered {status}"))),
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
            Err(problem) => return Err(Unreachable::new(format!("{url}: {problem}"))),
        }
        let response = request.send().await.map_err(|e| Unreachable::of(url, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Unreachable::of(url, e))?;
        Ok((status, body.to_vec()))
    }

    /// `POST /<path>`, timed as the facilitator dependency's operation
    /// `path`.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        request: &FacilitatorRequest,
        timeout: Duration,
        urgency: Option<Urgency>,
    ) -> Result<T, Unreachable> {
        let call = dependency::start(Dependency::Facilitator, path);
        let url = format!("{}/{path}", self.base_url);
        let mut trace_context = reqwest::header::HeaderMap::new();
        tessera_runtime::trace::inject(call.span(), &mut trace_context);
        if let Some(urgency) = urgency {
            trace_context.insert(
                URGENCY_HEADER,
                HeaderValue::from_static(urgency.header_value()),
            );
        }
        let post = self
            .http
            .post(&url)
            .timeout(timeout)
            .headers(trace_context)
            .json(request);
        let answer = async {
            let (status, body) = self.send(&url, post).await?;
            call.span()
                .record("http.response.status_code", status.as_u16());
            // Some facilitators answer an invalid payment with 400 and the
            // same JSON; accept any status whose body is the expected
            // document.
            serde_json::from_slice(&body).map_err(|_| {
                Unreachable::new(format!(
                    "{url} answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            })
        }
        .instrument(call.span().clone())
        .await;
        match &answer {
            Ok(_) => call.succeeded(),
            Err(unreachable) => call.failed(unreachable.kind()),
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A facilitator on a loopback port that answers every request with
    /// `answer`, or never when `None`.
    async fn facilitator(answer: Option<&'static str>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    match answer {
                        Some(answer) => {
                            let _ = socket.write_all(answer.as_bytes()).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        url
    }

    /// A settle says whether its caller waits, so that the facilitator
    /// puts the settler's background settles behind callers' ones.
    #[tokio::test]
    async fn a_settle_names_its_urgency() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (heads, mut seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let heads = heads.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let read = socket.read(&mut request).await.unwrap_or(0);
                    let _ = heads.send(String::from_utf8_lossy(&request[..read]).to_lowercase());
                    let _ = socket
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        let client = FacilitatorClient::new(&url, None);
        let request = FacilitatorRequest {
            x402_version: 2,
            payment_payload: serde_json::json!({}),
            payment_requirements: serde_json::json!({}),
        };
        for (urgency, header) in [
            (Urgency::Background, "x-settle-urgency: background"),
            (Urgency::Now, "x-settle-urgency: now"),
        ] {
            let _ = client
                .settle(&request, Duration::from_secs(5), urgency)
                .await;
            let head = seen.recv().await.unwrap();
            assert!(head.contains(header), "{head}");
        }
    }

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[tokio::test]
    async fn verify_and_settle_are_timed_and_failures_sorted() {
        let request = FacilitatorRequest {
            x402_version: 2,
            payment_payload: serde_json::json!({}),
            payment_requirements: serde_json::json!({}),
        };
        let silent = FacilitatorClient::new(&facilitator(None).await, None);
        let timed_out = silent
            .verify(&request, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(timed_out.kind(), TIMEOUT, "{}", timed_out.0);
        let broken = FacilitatorClient::new(
            &facilitator(Some(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops",
            ))
            .await,
            None,
        );
        let refused = broken
            .settle(&request, Duration::from_secs(5), Urgency::Now)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), UNREACHABLE, "{}", refused.0);

        let text = tessera_runtime::metrics::render();
        for operation in ["verify", "settle"] {
            let labels = format!("{{dependency=\"facilitator\",operation=\"{operation}\"}}");
            assert_eq!(
                sample(
                    &text,
                    &format!("tessera_dependency_call_duration_seconds_count{labels}")
                ),
                Some(1.0),
                "{text}"
            );
            assert_eq!(
                sample(
                    &text,
                    &format!("tessera_dependency_call_errors_total{labels}")
                ),
                Some(1.0),
                "{text}"
            );
        }
    }
}
