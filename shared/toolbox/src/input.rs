//! Inputs shared by many tools, and a GET tool's input from its query.

use crate::{ToolError, MAX_TEXT};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// How a field's bytes are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The text's own UTF-8 bytes.
    #[default]
    Utf8,
    /// Hexadecimal, either case, with or without `0x`.
    Hex,
    /// Base64, standard or URL-safe alphabet, padded or not.
    Base64,
}

impl Encoding {
    /// The bytes `text` stands for; `field` names it in an error.
    pub fn decode(self, field: &str, text: &str) -> Result<Vec<u8>, ToolError> {
        match self {
            Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
            Encoding::Hex => {
                let digits = text
                    .strip_prefix("0x")
                    .or_else(|| text.strip_prefix("0X"))
                    .unwrap_or(text);
                hex::decode(digits).map_err(|error| ToolError::field(field, error))
            }
            Encoding::Base64 => {
                let config = GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
                let alphabet = if text.contains(['-', '_']) {
                    &alphabet::URL_SAFE
                } else {
                    &alphabet::STANDARD
                };
                GeneralPurpose::new(alphabet, config)
                    .decode(text)
                    .map_err(|error| ToolError::field(field, error))
            }
        }
    }
}

/// Bytes, written as text in an [`Encoding`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bytes {
    /// The input.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// How `text` is written (default `utf8`).
    #[serde(default)]
    pub encoding: Encoding,
}

impl Bytes {
    pub fn decode(&self) -> Result<Vec<u8>, ToolError> {
        self.encoding.decode("text", &self.text)
    }
}

/// A GET tool's input object from its query parameters (and path
/// parameters), each value typed as the tool's schema types the field: a
/// number, integer or boolean field's text is parsed as one. A value that
/// does not parse stays text, so validation names the field. A parameter
/// given twice is refused.
pub fn query_input(schema: &Value, pairs: Vec<(String, String)>) -> Result<Value, ToolError> {
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut object = Map::new();
    for (name, text) in pairs {
        if object.contains_key(&name) {
            return Err(ToolError::field(name, "given more than once"));
        }
        let types = properties
            .and_then(|properties| properties.get(&name))
            .map(field_types)
            .unwrap_or_default();
        let value = typed(&types, text);
        object.insert(name, value);
    }
    Ok(Value::Object(object))
}

/// The JSON types a field's schema allows (`type` as a string or a list).
fn field_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn typed(types: &[&str], text: String) -> Value {
    if types.contains(&"string") {
        return Value::String(text);
    }
    for kind in types {
        let parsed = match *kind {
            "integer" => text.parse::<i64>().ok().map(Value::from),
            "number" => text
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .map(Value::from),
            "boolean" => text.parse::<bool>().ok().map(Value::from),
            _ => None,
        };
        if let Some(value) = parsed {
            return value;
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_values_take_their_fields_types() {
        let schema = json!({"properties": {
            "value": {"type": "number"},
            "count": {"type": ["integer", "null"]},
            "flag": {"type": "boolean"},
            "text": {"type": "string"},
        }});
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let input = query_input(
            &schema,
            pairs(&[
                ("value", "42.5"),
                ("count", "3"),
                ("flag", "true"),
                ("text", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(
            input,
            json!({"value": 42.5, "count": 3, "flag": true, "text": "7"})
        );
        // Unparseable stays text (validation then names the field); unknown
        // names pass through for validation to refuse.
        let input = query_input(&schema, pairs(&[("value", "lots"), ("other", "1")])).unwrap();
        assert_eq!(input, json!({"value": "lots", "other": "1"}));
        let input = query_input(&schema, pairs(&[("value", "NaN")])).unwrap();
        assert_eq!(input, json!({"value": "NaN"}));
        let twice = query_input(&schema, pairs(&[("value", "1"), ("value", "2")])).unwrap_err();
        assert_eq!(twice.field.as_deref(), Some("value"));
    }

    #[test]
    fn bytes_decode_every_spelling() {
        assert_eq!(
            Encoding::Hex.decode("t", "0xABcd").unwrap(),
            vec![0xab, 0xcd]
        );
        assert_eq!(Encoding::Hex.decode("t", "abcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(Encoding::Base64.decode("t", "aGk=").unwrap(), b"hi");
        assert_eq!(Encoding::Base64.decode("t", "aGk").unwrap(), b"hi");
        assert_eq!(
            Encoding::Base64.decode("t", "-_8").unwrap(),
            vec![0xfb, 0xff]
        );
        assert_eq!(
            Encoding::Base64.decode("t", "+/8=").unwrap(),
            vec![0xfb, 0xff]
        );
        let bad = Encoding::Hex.decode("key", "zz").unwrap_err();
        assert_eq!(bad.field.as_deref(), Some("key"));
    }
}
