//! How many blocks the next `eth_getLogs` asks for.
//!
//! Nodes cap `eth_getLogs` by blocks (QuickNode, many public nodes), by
//! results (geth and Infura: 10,000 logs) or by response size (Alchemy),
//! and say so in an error. Such a refusal asks again for half the span
//! that was refused (not half the configured width: the last range before
//! the head is often shorter), down to one block; each range read doubles
//! the width again, up to `STATS_BLOCK_RANGE`, so one dense stretch of the
//! chain does not slow the rest. A node with a fixed cap below
//! `STATS_BLOCK_RANGE` refuses every other request: set the variable to
//! the cap.
//!
//! Any other failure (a rate limit, a timeout, no connection, a 5xx) is no
//! reason to narrow: the pass ends where it is and the next one retries.

use alloy::transports::{RpcError, TransportError};

/// The width of the next range: 1 to the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeWidth {
    blocks: u64,
    max: u64,
}

impl RangeWidth {
    /// At most `max` blocks (at least 1), starting there.
    pub fn new(max: u64) -> Self {
        let max = max.max(1);
        RangeWidth { blocks: max, max }
    }

    /// Blocks the next range asks for at most.
    pub fn blocks(self) -> u64 {
        self.blocks
    }

    /// A range was read: twice as wide next time, up to the maximum.
    pub fn widen(&mut self) {
        self.blocks = self.blocks.saturating_mul(2).min(self.max);
    }

    /// The node refused `from..=to` as too large: half that span next time.
    /// False when it was a single block, which cannot be split.
    pub fn narrow(&mut self, from: u64, to: u64) -> bool {
        let span = to.saturating_sub(from) + 1;
        if span <= 1 {
            return false;
        }
        self.blocks = span / 2;
        true
    }
}

/// Whether `error` is the node refusing a range as too large (too many
/// blocks, logs or bytes), as opposed to not answering or rate limiting.
pub fn is_range_refusal(error: &TransportError) -> bool {
    node_words(error).is_some_and(|words| says_too_large(&words))
}

/// What the node said when it answered with an error: a JSON-RPC error's
/// message and data, or the body of an HTTP error that is not a rate limit
/// (429), a timeout (408) or a server failure (5xx). None when it did not
/// answer (connection, timeout, malformed reply).
fn node_words(error: &TransportError) -> Option<String> {
    match error {
        RpcError::ErrorResp(payload) if payload.code != 429 => Some(match &payload.data {
            Some(data) => format!("{} {}", payload.message, data.get()),
            None => payload.message.to_string(),
        }),
        RpcError::Transport(kind) => kind
            .as_http_error()
            .filter(|http| !matches!(http.status, 408 | 429 | 500..))
            .map(|http| http.body.clone()),
        _ => None,
    }
}

/// Words that only a range refusal uses.
const TOO_LARGE: &[&str] = &[
    "range",
    "results",
    "response size",
    "too large",
    "too big",
    "too wide",
    "too many logs",
    "more than",
];

/// Words of rate limits and quotas ("request rate exceeded", "Too Many
/// Requests", "compute units per second capacity").
const RATE_LIMITED: &[&str] = &[
    "rate",
    "too many requests",
    "capacity",
    "quota",
    "credits",
    "compute units",
    "daily",
];

/// Words a refusal may use, but only when the rate limit's do not show.
const LIMITED: &[&str] = &["limit", "exceed", "too many"];

/// Whether a node's error text says the range asked too much, loosely and
/// case-insensitively: the wording differs from node to node.
pub fn says_too_large(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|word| text.contains(word));
    says(TOO_LARGE) || (!says(RATE_LIMITED) && says(LIMITED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::transports::TransportErrorKind;
    use serde_json::json;

    #[test]
    fn a_refusal_halves_the_span_asked_not_the_width() {
        let mut width = RangeWidth::new(2000);
        assert_eq!(width.blocks(), 2000);
        // The last range before the head: three blocks, refused.
        assert!(width.narrow(101, 103));
        assert_eq!(width.blocks(), 1);
        let mut width = RangeWidth::new(2000);
        assert!(width.narrow(1, 2000));
        assert_eq!(width.blocks(), 1000);
        assert!(width.narrow(1, 1000));
        assert!(width.narrow(1, 500));
        assert_eq!(width.blocks(), 250);
    }

    #[test]
    fn a_single_block_cannot_be_narrowed() {
        let mut width = RangeWidth::new(2000);
        assert!(width.narrow(7, 8));
        assert_eq!(width.blocks(), 1);
        assert!(!width.narrow(9, 9));
        assert_eq!(width.blocks(), 1);
    }

    #[test]
    fn reads_double_the_width_back_up_to_the_maximum() {
        let mut width = RangeWidth::new(1000);
        assert!(width.narrow(1, 1000));
        assert!(width.narrow(1, 500));
        assert!(width.narrow(1, 250));
        assert_eq!(width.blocks(), 125);
        let grown: Vec<u64> = (0..5)
            .map(|_| {
                width.widen();
                width.blocks()
            })
            .collect();
        assert_eq!(grown, [250, 500, 1000, 1000, 1000]);
        assert_eq!(RangeWidth::new(0).blocks(), 1, "at least one block");
    }

    #[test]
    fn nodes_refusing_a_range_say_so_in_their_words() {
        for refusal in [
            "query returned more than 10000 results",
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size",
            "block range is too wide",
            "exceed maximum block range: 5000",
            "eth_getLogs is limited to a 10,000 range",
            "query exceeds max results 20000, retry with the range 6000-6100",
            "Block range limit exceeded.",
            "Query timeout exceeded. Consider reducing your block range",
            "response is too big",
            "Limit exceeded",
            "too many logs",
        ] {
            assert!(says_too_large(refusal), "{refusal}");
        }
        for other in [
            "Too Many Requests",
            "rate limit exceeded",
            "project ID request rate exceeded",
            "daily request count exceeded, request rate limited",
            "Your app has exceeded its compute units per second capacity",
            "header not found",
            "internal error",
            "method not found",
        ] {
            assert!(!says_too_large(other), "{other}");
        }
    }

    fn node_error(code: i64, message: &str) -> TransportError {
        RpcError::ErrorResp(
            serde_json::from_value(json!({ "code": code, "message": message })).unwrap(),
        )
    }

    #[test]
    fn only_an_answering_node_refuses_a_range() {
        assert!(is_range_refusal(&node_error(
            -32005,
            "query returned more than 10000 results"
        )));
        assert!(is_range_refusal(&TransportErrorKind::http_error(
            400,
            "block range too large".into()
        )));
        // A rate limit in the node's words or in HTTP's.
        assert!(!is_range_refusal(&node_error(429, "limit exceeded")));
        assert!(!is_range_refusal(&node_error(
            -32005,
            "project ID request rate exceeded"
        )));
        assert!(!is_range_refusal(&TransportErrorKind::http_error(
            429,
            "too many results, slow down".into()
        )));
        assert!(!is_range_refusal(&TransportErrorKind::http_error(
            503,
            "limit exceeded".into()
        )));
        // No answer at all.
        assert!(!is_range_refusal(&TransportErrorKind::custom_str(
            "error sending request for url (http://node.example/range): operation timed out"
        )));
        assert!(!is_range_refusal(&TransportErrorKind::backend_gone()));
    }
}
