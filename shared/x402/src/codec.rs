//! Header values are standard base64 (with `+/=`) of UTF-8 JSON.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("the header is not valid base64")]
    Base64,
    #[error("the header is not the expected JSON: {0}")]
    Json(String),
}

pub fn encode_header<T: Serialize>(value: &T) -> String {
    STANDARD.encode(serde_json::to_vec(value).expect("protocol types always serialize"))
}

pub fn decode_header<T: DeserializeOwned>(header: &str) -> Result<T, HeaderError> {
    let bytes = STANDARD
        .decode(header.trim())
        .map_err(|_| HeaderError::Base64)?;
    serde_json::from_slice(&bytes).map_err(|e| HeaderError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let value = serde_json::json!({"x402Version": 2, "a": "é+/"});
        let header = encode_header(&value);
        assert!(header
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
        assert_eq!(decode_header::<serde_json::Value>(&header).unwrap(), value);
        assert_eq!(
            decode_header::<serde_json::Value>("%%%").unwrap_err(),
            HeaderError::Base64
        );
        assert!(matches!(
            decode_header::<serde_json::Value>(&STANDARD.encode("{")),
            Err(HeaderError::Json(_))
        ));
    }
}
