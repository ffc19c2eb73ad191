//! Challenges and their tokens. A token carries the challenge, the tool, the
//! difficulty and the expiry, signed with HMAC-SHA256 under `POW_SECRET`, so
//! any replica holding the secret checks it without shared state; only the
//! single use needs a store ([`crate::claims`]).
//!
//! Token: `base64url(json) "." base64url(hmac)`, no padding; it never
//! contains `:`, so a solution `token:nonce` splits at its first `:`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tessera_error::Error;

/// What the MAC covers is prefixed with this, so a token can never be
/// mistaken for another use of the same secret.
const DOMAIN: &[u8] = b"tessera-pow-v1.";
/// A nonce is 1 to this many visible ASCII characters.
pub const MAX_NONCE: usize = 64;
/// The longest solution header accepted.
pub const MAX_SOLUTION: usize = 512;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The challenge: 32 lower-case hex digits.
    #[serde(rename = "c")]
    pub challenge: String,
    /// The tool it pays for.
    #[serde(rename = "s")]
    pub slug: String,
    #[serde(rename = "d")]
    pub difficulty: u32,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct Signer {
    /// The keyed HMAC state with the domain absorbed, cloned for each token
    /// (the key schedule is paid once).
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        let mut keyed = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        keyed.update(DOMAIN);
        Signer { keyed }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(payload.as_bytes());
        mac
    }

    /// A new challenge for `slug`, as its token.
    pub fn mint(&self, slug: &str, difficulty: u32, expires_at: i64) -> (Claims, String) {
        let claims = Claims {
            challenge: hex::encode(rand::random::<[u8; 16]>()),
            slug: slug.to_string(),
            difficulty,
            expires_at,
        };
        let json = serde_json::to_vec(&claims).expect("claims serialize");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        (claims, format!("{payload}.{tag}"))
    }

    /// The claims of a token this secret signed.
    pub fn open(&self, token: &str) -> Result<Claims, Error> {
        let (payload, tag) = token
            .split_once('.')
            .ok_or_else(|| malformed("the token is not payload.signature"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| malformed("the token's signature is not base64url"))?;
        self.mac(payload).verify_slice(&tag).map_err(|_| {
            refused(
                "POW_FORGED",
                "the token was not issued here (bad signature)",
            )
        })?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| malformed("the token's payload is not base64url"))?;
        serde_json::from_slice(&json).map_err(|_| malformed("the token's payload is unreadable"))
    }
}

/// `token` and `nonce` of an `X-Pow-Solution` value.
pub fn parse_solution(solution: &str) -> Result<(&str, &str), Error> {
    if solution.len() > MAX_SOLUTION {
        return Err(malformed(format!(
            "the solution is longer than {MAX_SOLUTION} characters"
        )));
    }
    let (token, nonce) = solution
        .trim()
        .split_once(':')
        .ok_or_else(|| malformed("the solution is not token:nonce"))?;
    if nonce.is_empty() || nonce.len() > MAX_NONCE || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(format!(
            "the nonce must be 1 to {MAX_NONCE} visible ASCII characters"
        )));
    }
    Ok((token, nonce))
}

/// Leading zero bits of `digest`.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Whether `nonce` solves `challenge` at `difficulty`.
pub fn solves(challenge: &str, nonce: &str, difficulty: u32) -> bool {
    let digest = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":")
        .chain_update(nonce.as_bytes())
        .finalize();
    leading_zero_bits(&digest) >= difficulty
}

/// The first decimal nonce solving `challenge` (for tests and the bench).
pub fn solve(challenge: &str, difficulty: u32) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| solves(challenge, nonce, difficulty))
        .expect("some nonce solves it")
}

pub(crate) fn refused(reason: &str, message: impl Into<String>) -> Error {
    Error::invalid(reason, message)
}

fn malformed(message: impl Into<String>) -> Error {
    refused("POW_MALFORMED", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_under_its_secret_and_unaltered() {
        let signer = Signer::new(b"a secret of thirty-two bytes....");
        let (claims, token) = signer.mint("hash", 16, 1_900_000_000);
        assert_eq!(claims.challenge.len(), 32);
        assert!(!token.contains(':'));
        assert_eq!(signer.open(&token).unwrap(), claims);

        let other = Signer::new(b"another secret of 32 bytes......");
        assert_eq!(other.open(&token).unwrap_err().reason, "POW_FORGED");
        // A payload edited to lower the difficulty keeps the old signature.
        let (payload, tag) = token.split_once('.').unwrap();
        let mut edited: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        edited["d"] = 0.into();
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edited).unwrap())
        );
        assert_eq!(signer.open(&forged).unwrap_err().reason, "POW_FORGED");
        for junk in ["", "abc", "a.b", "a.!!!", &format!("{payload}.")] {
            let reason = signer.open(junk).unwrap_err().reason;
            assert!(
                ["POW_MALFORMED", "POW_FORGED"].contains(&reason.as_str()),
                "{junk}"
            );
        }
    }

    #[test]
    fn solutions_parse_strictly() {
        assert_eq!(parse_solution("tok.en:123").unwrap(), ("tok.en", "123"));
        assert_eq!(parse_solution(" tok.en:123 ").unwrap(), ("tok.en", "123"));
        for bad in [
            "no-colon",
            "tok:",
            "tok:a b",
            &format!("t:{}", "9".repeat(65)),
            &"x".repeat(513),
        ] {
            assert_eq!(
                parse_solution(bad).unwrap_err().reason,
                "POW_MALFORMED",
                "{bad}"
            );
        }
    }

    #[test]
    fn work_is_counted_in_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x0f]), 20);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0x01]), 15);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
        // sha256("abc:0") and friends, computed by hand elsewhere, are not
        // needed: solve() and solves() agree, and a wrong nonce fails.
        let challenge = "00112233445566778899aabbccddeeff";
        let nonce = solve(challenge, 12);
        assert!(solves(challenge, &nonce, 12));
        let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
        assert!(leading_zero_bits(&digest) >= 12);
        let wrong = (0u64..)
            .map(|n| n.to_string())
            .find(|n| !solves(challenge, n, 12))
            .unwrap();
        assert!(!solves(challenge, &wrong, 12));
    }
}
