//! Arguments held to a tool's input schema before anything runs: a refusal
//! names the field, as the tools service's refusals do (`invalid input
//! `key`: …`, reason `INVALID_INPUT`, `details.field`).

use super::results::Failure;
use serde_json::Value;
use tessera_toolbox::{ToolError, Validator};

/// `Err` with the first violation of `schema` (compiled in `validator`).
pub(crate) fn check(validator: &Validator, arguments: &Value) -> Result<(), Failure> {
    let Some(error) = validator.iter_errors(arguments).next() else {
        return Ok(());
    };
    let field = error.instance_path().to_string();
    let field = field.trim_start_matches('/');
    let refused = if field.is_empty() {
        ToolError::input(error.to_string())
    } else {
        ToolError::field(field, error.to_string())
    };
    Err(tessera_error::Error::from(refused).into())
}

/// `schema`, compiled; a schema of ours that does not compile is a bug.
pub(crate) fn validator(name: &str, schema: &Value) -> Validator {
    Validator::new(schema).unwrap_or_else(|e| panic!("the input schema of {name} compiles: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_violation_names_its_field() {
        let schema = json!({
            "type": "object",
            "properties": { "key": { "type": "string" } },
            "required": ["key"],
        });
        let validator = validator("test", &schema);
        assert!(check(&validator, &json!({ "key": "k" })).is_ok());
        let refused = check(&validator, &json!({ "key": 5 })).unwrap_err();
        assert_eq!(refused.status, 400);
        assert_eq!(refused.reason.as_deref(), Some("INVALID_INPUT"));
        assert_eq!(refused.details["field"], "key");
        assert!(
            refused.message.starts_with("invalid input `key`"),
            "{}",
            refused.message
        );
        let missing = check(&validator, &json!({})).unwrap_err();
        assert!(missing.details.is_empty());
        assert!(
            missing.message.contains("\"key\" is a required property"),
            "{}",
            missing.message
        );
    }
}
