//! x402 over MCP (the x402 v2 MCP transport, `specs/transports-v2/mcp.md`),
//! mapped onto the REST route's HTTP payment headers:
//!
//! - a tool call pays with a `PaymentPayload` in `_meta["x402/payment"]`,
//!   which the route receives as `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT`
//!   (v1), base64 JSON, in place of any payment header of the MCP request;
//! - a 402 becomes a tool error whose `structuredContent` is the route's
//!   `PaymentRequired` and whose `content[0].text` is the same JSON as text,
//!   so a client can pay it and call again;
//! - a settled call's `PAYMENT-RESPONSE` header becomes
//!   `_meta["x402/payment-response"]`, the decoded `SettlementResponse`.

use super::results::Failure;
use http::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{CallToolResult, MetaObject};
use serde_json::{Map, Value};

pub(crate) const PAYMENT_META: &str = "x402/payment";
pub(crate) const PAYMENT_RESPONSE_META: &str = "x402/payment-response";

/// The payment header `_meta` asks for; `None` when it carries no payment.
pub(crate) fn header_of(
    meta: &Map<String, Value>,
) -> Result<Option<(HeaderName, HeaderValue)>, Failure> {
    let Some(payload) = meta.get(PAYMENT_META) else {
        return Ok(None);
    };
    if !payload.is_object() {
        return Err(Failure {
            reason: Some("INVALID_PAYMENT".into()),
            ..Failure::new(
                400,
                format!("_meta[\"{PAYMENT_META}\"] must be an x402 PaymentPayload object"),
            )
        });
    }
    let name = match payload["x402Version"].as_u64() {
        Some(1) => "x-payment",
        _ => "payment-signature",
    };
    let value = HeaderValue::from_str(&tessera_x402::encode_header(payload))
        .map_err(|_| Failure::new(400, "the payment cannot be sent as a header"))?;
    Ok(Some((HeaderName::from_static(name), value)))
}

/// Puts `payment` in `headers` in place of any payment they carried.
pub(crate) fn replace_payment(headers: &mut HeaderMap, payment: (HeaderName, HeaderValue)) {
    headers.remove("payment-signature");
    headers.remove("x-payment");
    headers.insert(payment.0, payment.1);
}

/// A route's 402 as the transport's payment-required tool error.
pub(crate) fn payment_required(payment_required: Value) -> CallToolResult {
    CallToolResult::structured_error(payment_required)
}

/// The settlement a route's answer reports, as result `_meta`; `None` when
/// the call was not paid (FREE_MODE) or the header does not decode.
pub(crate) fn settlement(headers: &HeaderMap) -> Option<MetaObject> {
    let header = headers
        .get("payment-response")
        .or_else(|| headers.get("x-payment-response"))?
        .to_str()
        .ok()?;
    let settled: Value = tessera_x402::decode_header(header).ok()?;
    let mut meta = Map::new();
    meta.insert(PAYMENT_RESPONSE_META.into(), settled);
    Some(MetaObject(meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_in_meta_is_the_header_of_its_version() {
        let v2 = json!({ "x402Version": 2, "accepted": {}, "payload": { "signature": "0x01" } });
        let meta = Map::from_iter([(PAYMENT_META.to_string(), v2.clone())]);
        let (name, value) = header_of(&meta).unwrap().unwrap();
        assert_eq!(name, "payment-signature");
        let decoded: Value = tessera_x402::decode_header(value.to_str().unwrap()).unwrap();
        assert_eq!(decoded, v2);

        let v1 = json!({ "x402Version": 1, "scheme": "exact", "payload": {} });
        let meta = Map::from_iter([(PAYMENT_META.to_string(), v1)]);
        assert_eq!(header_of(&meta).unwrap().unwrap().0, "x-payment");

        assert_eq!(header_of(&Map::new()).unwrap(), None);
        let junk = Map::from_iter([(PAYMENT_META.to_string(), json!("0xabc"))]);
        assert_eq!(header_of(&junk).unwrap_err().status, 400);
    }

    #[test]
    fn the_meta_payment_replaces_the_request_header() {
        let mut headers = HeaderMap::new();
        headers.insert("x-payment", HeaderValue::from_static("old-v1"));
        headers.insert("payment-signature", HeaderValue::from_static("old-v2"));
        replace_payment(
            &mut headers,
            (
                HeaderName::from_static("payment-signature"),
                HeaderValue::from_static("new"),
            ),
        );
        assert_eq!(headers["payment-signature"], "new");
        assert!(!headers.contains_key("x-payment"));
    }

    #[test]
    fn the_quote_is_structured_content_and_its_text() {
        let quote =
            json!({ "x402Version": 2, "accepts": [{ "scheme": "exact", "amount": "2000" }] });
        let result = payment_required(quote.clone());
        assert_eq!(result.is_error, Some(true));
        assert_eq!(result.structured_content, Some(quote.clone()));
        let text = &result.content[0].as_text().unwrap().text;
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), quote);
    }

    #[test]
    fn the_settlement_header_is_decoded_into_meta() {
        let settled = json!({ "success": true, "transaction": "0x12", "network": "eip155:31337", "payer": "0xab" });
        let mut headers = HeaderMap::new();
        let encoded = tessera_x402::encode_header(&settled);
        headers.insert("payment-response", HeaderValue::from_str(&encoded).unwrap());
        let meta = settlement(&headers).unwrap();
        assert_eq!(meta.0[PAYMENT_RESPONSE_META], settled);
        assert!(settlement(&HeaderMap::new()).is_none());
    }
}
