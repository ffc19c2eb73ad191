//! What names an idempotent request (its [`CacheKey`]) and what it carried
//! (its [`Fingerprint`]). Both are sha256 digests over length-prefixed
//! fields: each field is preceded by its byte length as a big-endian `u32`,
//! so moving a boundary between two fields (`"/a" + "bc"` versus
//! `"/ab" + "c"`) always changes the digest.

use sha2::{Digest, Sha256};

/// sha256 over the fields, each prefixed by its byte length (u32
/// big-endian). A field can only exceed 4 GiB in theory (the gateway bounds
/// headers and bodies far below); its prefix then saturates.
fn length_prefixed_sha256(fields: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for field in fields {
        let length = u32::try_from(field.len()).unwrap_or(u32::MAX);
        hasher.update(length.to_be_bytes());
        hasher.update(field);
    }
    hasher.finalize().into()
}

/// Names one idempotent request: sha256 over METHOD, path, the
/// `Idempotency-Key` header and the caller's credential. The credential is
/// part of it so two callers that pick the same key never see each other's
/// responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn new(method: &str, path: &str, idempotency_key: &str, credential: &str) -> Self {
        CacheKey(length_prefixed_sha256(&[
            method.as_bytes(),
            path.as_bytes(),
            idempotency_key.as_bytes(),
            credential.as_bytes(),
        ]))
    }

    /// The digest in lower-case hex (64 characters): the store's key.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What a request carried: sha256 over its query string and body. A reuse
/// of an `Idempotency-Key` with a different fingerprint is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(query: &str, body: &[u8]) -> Self {
        Fingerprint(length_prefixed_sha256(&[query.as_bytes(), body]))
    }

    /// The digest in lower-case hex (64 characters).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a digest back from the store; `None` unless exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_a_boundary_changes_the_cache_key() {
        assert_ne!(
            CacheKey::new("GET", "/a", "bc", ""),
            CacheKey::new("GET", "/ab", "c", "")
        );
        assert_ne!(
            CacheKey::new("POST", "/v1/x", "k", "cred"),
            CacheKey::new("POST", "/v1/x", "kc", "red")
        );
        assert_ne!(
            CacheKey::new("GE", "T/a", "k", "c"),
            CacheKey::new("GET", "/a", "k", "c")
        );
    }

    #[test]
    fn moving_a_boundary_changes_the_fingerprint() {
        assert_ne!(Fingerprint::of("a=1", b"x"), Fingerprint::of("a=1x", b""));
        assert_eq!(Fingerprint::of("a=1", b"x"), Fingerprint::of("a=1", b"x"));
    }

    /// Independent vector (Python hashlib over the same length-prefixed
    /// fields): a change of the scheme would orphan every stored entry.
    #[test]
    fn cache_key_matches_a_known_vector() {
        let key = CacheKey::new("POST", "/v1/tools/echo", "order-42", "tsr_test_credential");
        assert_eq!(key.hex(), KNOWN_CACHE_KEY_HEX);
        assert_eq!(key.hex().len(), 64);
    }

    #[test]
    fn fingerprint_matches_a_known_vector() {
        let fingerprint = Fingerprint::of("a=1&b=2", b"{\"x\":1}\x00\xff");
        assert_eq!(fingerprint.hex(), KNOWN_FINGERPRINT_HEX);
    }

    const KNOWN_CACHE_KEY_HEX: &str =
        "d4d8742e0bbb900a4186d15057cd4455a8d3a971ef8536ae9d4afa8748a8025e";
    const KNOWN_FINGERPRINT_HEX: &str =
        "718b94130b1bf675641a3b120357e25bdd3063d136c4668fdfda214741bc658d";
}
