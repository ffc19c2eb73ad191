//! What a tool call answers: a result (its JSON as `structuredContent` when
//! it is an object, and as text either way), or a tool error (`isError`)
//! whose JSON says what went wrong: `{"error": message, "status": the HTTP
//! status the REST route answers for it, "reason"?, "details"?,
//! "retryAfterSeconds"?}`. A tool that fails is a result, never a JSON-RPC
//! error: the model reads it and can correct the call.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{json, Map, Value};
use tessera_error::Error;

/// A tool's answer.
pub(crate) fn answer(value: Value) -> CallToolResult {
    // MCP's structuredContent is an object: anything else is text only.
    if value.is_object() {
        CallToolResult::structured(value)
    } else {
        CallToolResult::success(vec![ContentBlock::text(value.to_string())])
    }
}

/// A tool error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub message: String,
    pub status: u16,
    /// The machine-readable reason (`INVALID_INPUT`), where one is known.
    pub reason: Option<String>,
    pub details: Map<String, Value>,
    pub retry_after_seconds: Option<u64>,
}

impl Failure {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status,
            reason: None,
            details: Map::new(),
            retry_after_seconds: None,
        }
    }

    pub fn into_result(self) -> CallToolResult {
        let mut body = json!({ "error": self.message, "status": self.status });
        if let Some(reason) = self.reason {
            body["reason"] = Value::from(reason);
        }
        if !self.details.is_empty() {
            body["details"] = Value::Object(self.details);
        }
        if let Some(seconds) = self.retry_after_seconds {
            body["retryAfterSeconds"] = Value::from(seconds);
        }
        CallToolResult::structured_error(body)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            status: error.http_status(),
            reason: Some(error.reason),
            details: error
                .details
                .into_iter()
                .map(|(key, value)| (key, Value::from(value)))
                .collect(),
            message: error.message,
            retry_after_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_structured_and_other_values_text() {
        let result = answer(json!({ "a": 1 }));
        assert_eq!(result.structured_content, Some(json!({ "a": 1 })));
        assert_eq!(result.is_error, Some(false));
        let result = answer(json!(["a"]));
        assert_eq!(result.structured_content, None);
        assert_eq!(result.content[0].as_text().unwrap().text, r#"["a"]"#);
    }

    #[test]
    fn a_failure_keeps_reason_details_and_retry_time() {
        let error = Error::invalid("INVALID_INPUT", "invalid input `text`: too long")
            .with_detail("field", "text");
        let result = Failure::from(error).into_result();
        assert_eq!(result.is_error, Some(true));
        assert_eq!(
            result.structured_content,
            Some(json!({
                "error": "invalid input `text`: too long", "status": 400,
                "reason": "INVALID_INPUT", "details": { "field": "text" },
            }))
        );
        let limited = Failure {
            retry_after_seconds: Some(7),
            ..Failure::new(429, "slow down")
        };
        let body = limited.into_result().structured_content.unwrap();
        assert_eq!(
            body,
            json!({ "error": "slow down", "status": 429, "retryAfterSeconds": 7 })
        );
    }
}
