//! An HTTP/1.1 request to a paid route is read whole before anything
//! answers it (within the gateway's concurrency limit, which bounds the
//! bodies held at once, and its request timeout). A refusal
//! decided from the headers alone (a 402 quote, a missing identity) would
//! otherwise go out while the client is still sending its body; hyper then
//! closes the connection, and a client writing its body after its headers
//! (grpc-web transports, streaming uploads) gets a broken pipe instead of
//! the answer. HTTP/2 streams end independently: no read is needed there.

use crate::errors::Family;
use crate::extract::MAX_BODY_BYTES;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::http::Version;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use std::time::Duration;
use tessera_error::Error;

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Middleware (state: how long a body may take to arrive).
pub(crate) async fn read_whole(
    State(within): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    // A client that asked to be told before sending its body (`Expect:
    // 100-continue`) hears a refusal first, as it wants.
    if request.version() >= Version::HTTP_2
        || request.headers().contains_key(EXPECT)
        || declared_length(&request).is_some_and(|length| length as usize > MAX_BODY_BYTES)
    {
        // An oversized body is refused (413, in its face's body) by
        // whatever reads it.
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(within, buffer(body)).await {
        Ok(Ok(body)) => next.run(Request::from_parts(parts, body)).await,
        Ok(Err(_)) => Family::Agent402.response(&Error::invalid(
            "BODY_UNREADABLE",
            "the request body could not be read",
        )),
        Err(_) => Family::Agent402.response(&Error::invalid(
            "BODY_TIMEOUT",
            format!(
                "the request body did not arrive within {} s",
                within.as_secs()
            ),
        )),
    }
}

/// The body read whole, or, past [`MAX_BODY_BYTES`], what was read followed
/// by the rest unread (its reader refuses it as too large).
async fn buffer(mut body: Body) -> Result<Body, axum::Error> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut length = 0;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue;
        };
        length += chunk.len();
        chunks.push(chunk);
        if length > MAX_BODY_BYTES {
            let read = futures::stream::iter(chunks.into_iter().map(Ok::<_, axum::Error>));
            return Ok(Body::from_stream(read.chain(body.into_data_stream())));
        }
    }
    Ok(Body::from(chunks.concat()))
}
