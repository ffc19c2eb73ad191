//! Header values are standard base64 (with `+/=`) of UTF-8 JSON. We send
//! exactly that; we read any base64 a client may produce (standard or
//! URL-safe alphabet, padded or not, surrounding whitespace), since what the
//! header says, not how it is spelled, is what counts.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest payment header accepted: a payload is well under 2 KiB, so
/// anything near this is not a payment.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("the header is not valid base64")]
    Base64,
    #[error("the header is not the expected JSON: {0}")]
    Json(String),
    #[error("the header is {0} bytes; at most {MAX_HEADER_BYTES} are accepted")]
    TooLarge(usize),
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

pub fn encode_header<T: Serialize>(value: &T) -> String {
    STANDARD.encode(serde_json::to_vec(value).expect("protocol types always serialize"))
}

pub fn decode_header<T: DeserializeOwned>(header: &str) -> Result<T, HeaderError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(HeaderError::TooLarge(header.len()));
    }
    let text = header.trim();
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE_ANY_PADDING
    } else {
        &STANDARD_ANY_PADDING
    };
    let bytes = engine.decode(text).map_err(|_| HeaderError::Base64)?;
    serde_json::from_slice(&bytes).map_err(|e| HeaderError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

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

    #[test]
    fn every_base64_spelling_reads_the_same() {
        // Bytes chosen so the encodings need `+`/`/` (or `-`/`_`) and padding.
        let value = serde_json::json!({"x402Version": 2, "k": "ÿÿ>>??~~", "n": 1});
        let json = serde_json::to_vec(&value).unwrap();
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let text = engine.encode(&json);
            assert_eq!(
                decode_header::<serde_json::Value>(&text).unwrap(),
                value,
                "{text}"
            );
            let padded = format!("  {text}\n");
            assert_eq!(decode_header::<serde_json::Value>(&padded).unwrap(), value);
        }
    }

    #[test]
    fn oversized_headers_are_refused_before_decoding() {
        let huge = "A".repeat(MAX_HEADER_BYTES + 1);
        assert_eq!(
            decode_header::<serde_json::Value>(&huge).unwrap_err(),
            HeaderError::TooLarge(MAX_HEADER_BYTES + 1)
        );
    }
}
