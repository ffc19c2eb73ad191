//! The response a replay answers, and its binary form in the store.
//!
//! Layout (all integers big-endian): a version byte (1), the status (u16),
//! the number of headers (u32), then per header its name length (u32), the
//! name (UTF-8), its value length (u32) and the raw value bytes; the body is
//! everything after the last header. Any bytes round-trip exactly.

use tessera_error::Error;

const FORMAT_VERSION: u8 = 1;
/// Version byte, status, header count.
const PREAMBLE_LEN: usize = 1 + 2 + 4;
/// The two length prefixes of one header.
const HEADER_PREFIXES_LEN: usize = 4 + 4;

/// What a replay answers: status, headers (name, raw value bytes, in order,
/// repeated names allowed) and body.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// The bytes this response takes in the store (the gateway bounds it).
    pub fn encoded_len(&self) -> usize {
        PREAMBLE_LEN
            + self
                .headers
                .iter()
                .map(|(name, value)| HEADER_PREFIXES_LEN + name.len() + value.len())
                .sum::<usize>()
            + self.body.len()
    }

    /// The stored form; refused only when a header count or length does
    /// not fit its u32 prefix (never for a response the gateway accepts).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&length_prefix(self.headers.len())?);
        for (name, value) in &self.headers {
            out.extend_from_slice(&length_prefix(name.len())?);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&length_prefix(value.len())?);
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    /// Reads a stored form back; a corrupt one is an internal error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader { rest: bytes };
        let version = reader.take(1)?[0];
        if version != FORMAT_VERSION {
            return Err(corrupt(format!("unknown format version {version}")));
        }
        let status = u16::from_be_bytes(reader.array()?);
        let count = reader.u32_len()?;
        // Each header takes at least its two prefixes: a corrupt count
        // cannot make us reserve more than the input could hold.
        let mut headers = Vec::with_capacity(count.min(reader.rest.len() / HEADER_PREFIXES_LEN));
        for _ in 0..count {
            let name_len = reader.u32_len()?;
            let name = std::str::from_utf8(reader.take(name_len)?)
                .map_err(|_| corrupt("a header name is not UTF-8"))?
                .to_string();
            let value_len = reader.u32_len()?;
            let value = reader.take(value_len)?.to_vec();
            headers.push((name, value));
        }
        Ok(StoredResponse {
            status,
            headers,
            body: reader.rest.to_vec(),
        })
    }
}

fn length_prefix(length: usize) -> Result<[u8; 4], Error> {
    u32::try_from(length).map(u32::to_be_bytes).map_err(|_| {
        Error::invalid(
            "IDEMPOTENCY_RESPONSE_TOO_LARGE",
            "the response is too large to keep for idempotent replay",
        )
    })
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    tracing::warn!(%what, "idempotency store: corrupt stored response");
    Error::internal(format!("a stored idempotent response is corrupt ({what})"))
}

/// Reads fields off the front of a byte slice, failing on truncation.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < length {
            return Err(corrupt("truncated"));
        }
        let (field, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(field)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32_len(&mut self) -> Result<usize, Error> {
        let length = u32::from_be_bytes(self.array()?);
        usize::try_from(length).map_err(|_| corrupt("a length does not fit in memory"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_error::ErrorKind;

    fn sample() -> StoredResponse {
        StoredResponse {
            status: 201,
            headers: vec![
                ("content-type".into(), b"application/octet-stream".to_vec()),
                ("set-cookie".into(), b"a=1".to_vec()),
                ("set-cookie".into(), b"b=\xff\x00\x80".to_vec()),
                ("x-empty".into(), Vec::new()),
            ],
            body: (0..=255u8).chain([0, 0, 255]).collect(),
        }
    }

    #[test]
    fn round_trips_every_byte() {
        let response = sample();
        let encoded = response.encode().unwrap();
        assert_eq!(encoded.len(), response.encoded_len());
        assert_eq!(StoredResponse::decode(&encoded).unwrap(), response);
    }

    #[test]
    fn round_trips_an_empty_response() {
        let response = StoredResponse {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let encoded = response.encode().unwrap();
        assert_eq!(encoded.len(), PREAMBLE_LEN);
        assert_eq!(encoded.len(), response.encoded_len());
        assert_eq!(StoredResponse::decode(&encoded).unwrap(), response);
    }

    #[test]
    fn encoded_len_counts_headers_and_body() {
        let response = StoredResponse {
            status: 200,
            headers: vec![("ab".into(), b"cde".to_vec())],
            body: b"0123456789".to_vec(),
        };
        assert_eq!(response.encoded_len(), 7 + (8 + 2 + 3) + 10);
    }

    #[test]
    fn truncated_input_is_an_internal_error() {
        let encoded = sample().encode().unwrap();
        // Cut inside the preamble and inside the headers; past the last
        // header a cut only shortens the body, which has no length.
        let headers_end = encoded.len() - sample().body.len();
        for cut in 0..headers_end {
            let error = StoredResponse::decode(&encoded[..cut]).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Internal, "cut at {cut}");
        }
    }

    #[test]
    fn unknown_version_and_bad_name_are_internal_errors() {
        let mut encoded = sample().encode().unwrap();
        encoded[0] = 9;
        assert_eq!(
            StoredResponse::decode(&encoded).unwrap_err().kind,
            ErrorKind::Internal
        );

        let mut encoded = sample().encode().unwrap();
        // The first header name starts after the preamble and its prefix.
        encoded[PREAMBLE_LEN + 4] = 0xff;
        assert_eq!(
            StoredResponse::decode(&encoded).unwrap_err().kind,
            ErrorKind::Internal
        );
    }

    #[test]
    fn a_huge_header_count_fails_without_reserving_memory() {
        let mut encoded = vec![FORMAT_VERSION, 0, 200];
        encoded.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            StoredResponse::decode(&encoded).unwrap_err().kind,
            ErrorKind::Internal
        );
    }
}
