//! The three REST faces over the memory service, and the tools. Each module
//! owns its routes, request and response shapes; errors render through its
//! [`Family`].
//!
//! [`Family`]: crate::errors::Family

pub mod agent402;
pub mod agents;
pub mod tools;
pub mod twos;

use serde_json::Value;
use tessera_error::Error;

/// A value to store: present and not null (null would be indistinguishable
/// from "absent" for compare-and-swap).
pub(crate) fn required_value(value: Option<Value>) -> Result<Value, Error> {
    match value {
        Some(value) if !value.is_null() => Ok(value),
        _ => Err(Error::invalid(
            "VALUE_REQUIRED",
            "value is required and must not be null",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_must_be_present_and_not_null() {
        assert_eq!(required_value(Some(json!(0))).unwrap(), json!(0));
        assert_eq!(required_value(Some(json!(false))).unwrap(), json!(false));
        assert!(required_value(Some(Value::Null)).is_err());
        assert!(required_value(None).is_err());
    }
}
