//! Metadata a gRPC response sends after its messages (`payment-response`
//! once the call is settled), added to a response whose body has not been
//! sent yet.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Adds `name: value` to `response`'s trailing metadata: into its headers
/// when it is trailers-only (a status with no message), else into the
/// trailers its body ends with.
pub(crate) fn add_trailer(response: &mut Response, name: HeaderName, value: HeaderValue) {
    if response.headers().contains_key("grpc-status") {
        response.headers_mut().insert(name, value);
        return;
    }
    let mut extra = HeaderMap::new();
    extra.insert(name, value);
    let body = std::mem::take(response.body_mut());
    *response.body_mut() = Body::new(WithTrailers {
        inner: body,
        extra: Some(extra),
    });
}

struct WithTrailers {
    inner: Body,
    /// Sent with (or as) the trailers; `None` once sent.
    extra: Option<HeaderMap>,
}

impl http_body::Body for WithTrailers {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    if let Some(extra) = self.extra.take() {
                        trailers.extend(extra);
                    }
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Ready(None) => {
                Poll::Ready(self.extra.take().map(|extra| Ok(Frame::trailers(extra))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.extra.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_trailer_joins_the_trailers_a_body_ends_with() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"message"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )));
        let mut response = Response::new(body);
        add_trailer(
            &mut response,
            HeaderName::from_static("payment-response"),
            HeaderValue::from_static("settled"),
        );
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["payment-response"], "settled");
        assert_eq!(collected.to_bytes(), "message");
    }

    #[tokio::test]
    async fn a_body_without_trailers_gets_them_and_a_status_only_reply_gets_headers() {
        let mut response = Response::new(Body::from("message"));
        add_trailer(
            &mut response,
            HeaderName::from_static("payment-response"),
            HeaderValue::from_static("settled"),
        );
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["payment-response"], "settled");

        let mut refused = super::super::status_response(&tessera_error::Error::not_found("gone"));
        add_trailer(
            &mut refused,
            HeaderName::from_static("payment-response"),
            HeaderValue::from_static("settled"),
        );
        assert_eq!(refused.headers()["payment-response"], "settled");
    }
}
