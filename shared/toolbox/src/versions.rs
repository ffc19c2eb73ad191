//! Versions and tokens: SemVer 2.0 comparison and ranges (the `semver`
//! crate), JWT decoding and HMAC verification (`jsonwebtoken`).

use crate::{tool, Encoding, Tool, ToolError};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use chrono::{DateTime, SecondsFormat};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "semver-compare", name: "SemVer compare", category: "dev",
        tags: ["semver", "version", "compare", "precedence"],
        method: Get, path: "/api/semver-compare",
        description: "Compares two semantic versions by SemVer 2.0 precedence (pre-releases included, build metadata ignored): -1, 0 or 1, and which is greater.",
        run: semver_compare, example: { "a": "1.0.0-beta.2", "b": "1.0.0-beta.11" },
        cost: Light,
    },
    tool! {
        slug: "semver-satisfies", name: "SemVer satisfies", category: "dev",
        tags: ["semver", "version", "range", "requirement", "cargo", "npm"],
        method: Get, path: "/api/semver-satisfies",
        description: "Whether a semantic version satisfies a version range in Cargo's syntax (`^1.2`, `~1.2.3`, `>=1.0, <2.0`, `1.*`), as the semver crate reads it.",
        run: semver_satisfies, example: { "version": "1.4.2", "range": ">=1.2, <2.0" },
        cost: Light,
    },
    tool! {
        slug: "jwt-decode", name: "JWT decode", category: "auth",
        tags: ["jwt", "jws", "token", "decode", "claims"],
        method: Post, path: "/api/jwt-decode",
        description: "Decodes a JWT's header and payload WITHOUT verifying its signature (the answer says `verified: false`); exp, iat and nbf are also given as ISO 8601 dates.",
        run: jwt_decode,
        example: { "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c" },
        cost: Light,
    },
    tool! {
        slug: "jwt-verify", name: "JWT verify", category: "auth",
        tags: ["jwt", "jws", "token", "verify", "hmac", "hs256"],
        method: Post, path: "/api/jwt-verify",
        description: "Verifies an HS256/HS384/HS512 JWT under a shared secret and checks exp and nbf (with optional leeway): `valid` and, when not, why. Other algorithms, and `none`, are refused.",
        run: jwt_verify,
        example: {
            "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "secret": "your-256-bit-secret"
        },
        cost: Light,
    },
];

/// The longest version text taken.
const MAX_VERSION: u32 = 256;
/// The longest token taken: 8 KiB.
const MAX_TOKEN: u32 = 8 * 1024;

/// A version, a leading `v` (as in tags) allowed; `field` names it in an error.
fn parse_version(field: &str, text: &str) -> Result<semver::Version, ToolError> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix(['v', 'V'])
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(trimmed);
    semver::Version::parse(bare).map_err(|error| ToolError::field(field, error))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompareInput {
    /// The first version, e.g. `1.0.0-alpha.1` (a leading `v` is allowed).
    #[schemars(length(max = MAX_VERSION))]
    pub a: String,
    /// The second version.
    #[schemars(length(max = MAX_VERSION))]
    pub b: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareOutput {
    /// -1 if a < b, 0 if they have the same precedence, 1 if a > b.
    pub result: i8,
    /// `a` or `b`, whichever is greater; null when equal in precedence.
    pub greater: Option<&'static str>,
    /// `a` as parsed.
    pub a: String,
    /// `b` as parsed.
    pub b: String,
}

fn semver_compare(input: CompareInput) -> Result<CompareOutput, ToolError> {
    let a = parse_version("a", &input.a)?;
    let b = parse_version("b", &input.b)?;
    let (result, greater) = match a.cmp_precedence(&b) {
        Ordering::Less => (-1, Some("b")),
        Ordering::Equal => (0, None),
        Ordering::Greater => (1, Some("a")),
    };
    Ok(CompareOutput {
        result,
        greater,
        a: a.to_string(),
        b: b.to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SatisfiesInput {
    /// The version, e.g. `1.4.2` (a leading `v` is allowed).
    #[schemars(length(max = MAX_VERSION))]
    pub version: String,
    /// The range: comparators separated by commas, e.g. `^1.2`, `~1.2.3`, `>=1.0, <2.0`, `1.*`.
    #[schemars(length(max = 1024))]
    pub range: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SatisfiesOutput {
    pub satisfies: bool,
    /// The version as parsed.
    pub version: String,
    /// The range as parsed.
    pub range: String,
}

fn semver_satisfies(input: SatisfiesInput) -> Result<SatisfiesOutput, ToolError> {
    let version = parse_version("version", &input.version)?;
    let range = semver::VersionReq::parse(input.range.trim())
        .map_err(|error| ToolError::field("range", error))?;
    Ok(SatisfiesOutput {
        satisfies: range.matches(&version),
        version: version.to_string(),
        range: range.to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecodeInput {
    /// The JWT in compact form: `header.payload.signature`.
    #[schemars(length(max = MAX_TOKEN))]
    pub token: String,
}

/// A token's parts, decoded but not verified.
struct Parts {
    header: Map<String, Value>,
    payload: Value,
    signature: String,
}

/// Base64url as JWS writes it (no padding), padding tolerated.
fn base64url(field: &str, part: &str, what: &str) -> Result<Vec<u8>, ToolError> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::URL_SAFE, config)
        .decode(part)
        .map_err(|error| ToolError::field(field, format!("the {what} is not base64url: {error}")))
}

fn split_token(token: &str) -> Result<Parts, ToolError> {
    let token = token.trim();
    let pieces: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = pieces[..] else {
        let message = if pieces.len() == 5 {
            "a JWE (5 parts) is encrypted and cannot be decoded; expected a JWS `header.payload.signature`".to_string()
        } else {
            format!(
                "expected 3 dot-separated parts `header.payload.signature`, found {}",
                pieces.len()
            )
        };
        return Err(ToolError::field("token", message));
    };
    let header_bytes = base64url("token", header, "header")?;
    let header: Map<String, Value> = serde_json::from_slice(&header_bytes).map_err(|error| {
        ToolError::field("token", format!("the header is not a JSON object: {error}"))
    })?;
    let payload_bytes = base64url("token", payload, "payload")?;
    let payload: Value = serde_json::from_slice(&payload_bytes)
        .map_err(|error| ToolError::field("token", format!("the payload is not JSON: {error}")))?;
    base64url("token", signature, "signature")?;
    Ok(Parts {
        header,
        payload,
        signature: signature.to_string(),
    })
}

/// The registered time claims (RFC 7519 section 4.1) that are NumericDates,
/// as ISO 8601 UTC dates.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimDates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<String>,
}

fn claim_dates(payload: &Value) -> ClaimDates {
    let date = |name: &str| {
        let seconds = payload.get(name)?.as_f64()?;
        if !seconds.is_finite() || seconds.abs() > 1e14 {
            return None;
        }
        // A NumericDate may have a fraction; the date keeps whole seconds.
        DateTime::from_timestamp(seconds.floor() as i64, 0)
            .map(|date| date.to_rfc3339_opts(SecondsFormat::Secs, true))
    };
    ClaimDates {
        exp: date("exp"),
        iat: date("iat"),
        nbf: date("nbf"),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodeOutput {
    /// Always false: this tool does not check the signature.
    pub verified: bool,
    /// The header's `alg`, if it names one.
    pub algorithm: Option<String>,
    pub header: Map<String, Value>,
    pub payload: Value,
    /// exp, iat and nbf as ISO 8601 dates, where present and numeric.
    pub dates: ClaimDates,
    /// The signature part, base64url as given.
    pub signature: String,
}

fn jwt_decode(input: DecodeInput) -> Result<DecodeOutput, ToolError> {
    let parts = split_token(&input.token)?;
    Ok(DecodeOutput {
        verified: false,
        algorithm: parts
            .header
            .get("alg")
            .and_then(Value::as_str)
            .map(str::to_string),
        dates: claim_dates(&parts.payload),
        header: parts.header,
        payload: parts.payload,
        signature: parts.signature,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyInput {
    /// The JWT in compact form: `header.payload.signature`.
    #[schemars(length(max = MAX_TOKEN))]
    pub token: String,
    /// The shared HMAC secret.
    #[schemars(length(max = 1024))]
    pub secret: String,
    /// How `secret` is written (default `utf8`).
    #[serde(default)]
    pub secret_encoding: Encoding,
    /// Seconds of clock skew allowed when checking exp and nbf (default 0, at most a week).
    #[serde(default)]
    #[schemars(range(max = 604_800))]
    pub leeway: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyOutput {
    /// Whether the signature is right and the token is within exp and nbf.
    pub valid: bool,
    /// Why the token is not valid, when it is not.
    pub reason: Option<String>,
    /// Whether the signature alone is right.
    pub signature_valid: bool,
    pub algorithm: String,
    pub header: Map<String, Value>,
    pub payload: Value,
    /// exp, iat and nbf as ISO 8601 dates, where present and numeric.
    pub dates: ClaimDates,
}

fn jwt_verify(input: VerifyInput) -> Result<VerifyOutput, ToolError> {
    let parts = split_token(&input.token)?;
    let alg = match parts.header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => {
            return Err(ToolError::field(
                "token",
                "the header's `alg` is not a string",
            ))
        }
        None => return Err(ToolError::field("token", "the header names no `alg`")),
    };
    let algorithm = match alg {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        other => {
            return Err(ToolError::field(
                "token",
                format!(
                "alg `{other}` is not supported: only HS256, HS384 and HS512 tokens are verified"
            ),
            ))
        }
    };
    let secret = input.secret_encoding.decode("secret", &input.secret)?;
    let key = DecodingKey::from_secret(&secret)
        .map_err(|error| ToolError::field("secret", format!("the secret is empty ({error})")))?;
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.leeway = u64::from(input.leeway);

    let verdict = match jsonwebtoken::decode::<Value>(input.token.trim(), &key, &validation) {
        Ok(_) => Ok(None),
        Err(error) => match error.kind() {
            ErrorKind::InvalidSignature => Err("the signature does not match".to_string()),
            ErrorKind::ExpiredSignature => Ok(Some("expired: exp is in the past".to_string())),
            ErrorKind::ImmatureSignature => {
                Ok(Some("not yet valid: nbf is in the future".to_string()))
            }
            ErrorKind::InvalidClaimFormat(claim) => {
                Ok(Some(format!("the `{claim}` claim is not a NumericDate")))
            }
            _ => return Err(ToolError::field("token", error)),
        },
    };
    let (valid, reason, signature_valid) = match verdict {
        Ok(None) => (true, None, true),
        Ok(Some(reason)) => (false, Some(reason), true),
        Err(reason) => (false, Some(reason), false),
    };
    Ok(VerifyOutput {
        valid,
        reason,
        signature_valid,
        algorithm: alg.to_string(),
        dates: claim_dates(&parts.payload),
        header: parts.header,
        payload: parts.payload,
    })
}

#[cfg(test)]
mod tests {
    use crate::find;
    use crate::testing::{refused, run};
    use serde_json::{json, Value};

    #[test]
    fn semver_precedence_follows_the_spec() {
        // SemVer 2.0.0, section 11: the precedence example list.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in ordered.windows(2) {
            let out = run("semver-compare", json!({ "a": pair[0], "b": pair[1] }));
            assert_eq!(out["result"], -1, "{pair:?}");
            assert_eq!(out["greater"], "b", "{pair:?}");
            let out = run("semver-compare", json!({ "a": pair[1], "b": pair[0] }));
            assert_eq!(out["result"], 1, "{pair:?}");
            assert_eq!(out["greater"], "a");
        }
        // Section 11.2: 1.0.0 < 2.0.0 < 2.1.0 < 2.1.1, numerically.
        let out = run("semver-compare", json!({ "a": "2.1.1", "b": "2.10.0" }));
        assert_eq!(out["result"], -1);
        // Section 10: build metadata does not count.
        let out = run(
            "semver-compare",
            json!({ "a": "1.0.0+20130313144700", "b": "v1.0.0+exp.sha.5114f85" }),
        );
        assert_eq!(out["result"], 0);
        assert_eq!(out["greater"], Value::Null);
        assert_eq!(
            refused("semver-compare", json!({ "a": "1.0", "b": "1.0.0" })),
            "a"
        );
        assert_eq!(
            refused("semver-compare", json!({ "a": "1.0.0", "b": "01.0.0" })),
            "b"
        );
    }

    #[test]
    fn semver_ranges_read_as_cargo_does() {
        let satisfies = |version: &str, range: &str| {
            run(
                "semver-satisfies",
                json!({ "version": version, "range": range }),
            )["satisfies"]
                .as_bool()
                .unwrap()
        };
        // The Cargo book's "Specifying dependencies" examples.
        assert!(satisfies("1.2.3", "^1.2.3"));
        assert!(satisfies("1.9.0", "^1.2.3"));
        assert!(!satisfies("2.0.0", "^1.2.3"));
        assert!(satisfies("0.2.9", "^0.2.3"));
        assert!(!satisfies("0.3.0", "^0.2.3"));
        assert!(satisfies("1.2.9", "~1.2.3"));
        assert!(!satisfies("1.3.0", "~1.2.3"));
        assert!(satisfies("1.7.0", ">= 1.2.0, < 1.8.0"));
        assert!(satisfies("1.7.5", ">=1.2.0, <1.8.0"));
        assert!(!satisfies("1.8.0", ">=1.2.0, <1.8.0"));
        assert!(satisfies("1.5.1", "1.*"));
        assert!(satisfies("3.0.0", "*"));
        // A pre-release matches only a range naming the same major.minor.patch.
        assert!(!satisfies("1.3.0-beta.1", "^1.2"));
        assert!(satisfies("1.2.3-beta.2", ">=1.2.3-beta.1"));
        assert_eq!(
            refused(
                "semver-satisfies",
                json!({ "version": "1.2.3", "range": ">>1" })
            ),
            "range"
        );
        assert_eq!(
            refused(
                "semver-satisfies",
                json!({ "version": "one", "range": "*" })
            ),
            "version"
        );
    }

    // jwt.io's HS256 example, signed with "your-256-bit-secret".
    const JWT_IO: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    // RFC 7519 section 3.1 (the same as RFC 7515 appendix A.1), HS256 under
    // the key of RFC 7515 appendix A.1 (base64url).
    const RFC_7519: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_7515_KEY: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

    #[test]
    fn jwt_decode_reads_the_published_examples() {
        let out = run("jwt-decode", json!({ "token": JWT_IO }));
        assert_eq!(out["verified"], false);
        assert_eq!(out["algorithm"], "HS256");
        assert_eq!(out["header"], json!({ "alg": "HS256", "typ": "JWT" }));
        assert_eq!(
            out["payload"],
            json!({ "sub": "1234567890", "name": "John Doe", "iat": 1516239022 })
        );
        assert_eq!(out["dates"], json!({ "iat": "2018-01-18T01:30:22Z" }));

        let out = run("jwt-decode", json!({ "token": RFC_7519 }));
        assert_eq!(
            out["payload"],
            json!({ "iss": "joe", "exp": 1300819380, "http://example.com/is_root": true })
        );
        assert_eq!(out["dates"]["exp"], "2011-03-22T18:43:00Z");
        assert_eq!(out["header"]["typ"], "JWT");

        // An unsecured JWT (RFC 7519 section 6.1) decodes too: nothing is verified.
        let unsecured = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";
        let out = run("jwt-decode", json!({ "token": unsecured }));
        assert_eq!(out["algorithm"], "none");
        assert_eq!(out["verified"], false);

        assert_eq!(
            refused("jwt-decode", json!({ "token": "abc.def" })),
            "token"
        );
        assert_eq!(
            refused("jwt-decode", json!({ "token": "!!.e30.sig" })),
            "token"
        );
        let too_long = "a".repeat(9000);
        assert_eq!(refused("jwt-decode", json!({ "token": too_long })), "token");
    }

    #[test]
    fn jwt_verify_checks_signature_and_times() {
        let out = run(
            "jwt-verify",
            json!({ "token": JWT_IO, "secret": "your-256-bit-secret" }),
        );
        assert_eq!(out["valid"], true, "{out}");
        assert_eq!(out["reason"], Value::Null);
        assert_eq!(out["payload"]["name"], "John Doe");

        let out = run(
            "jwt-verify",
            json!({ "token": JWT_IO, "secret": "not-the-secret" }),
        );
        assert_eq!(out["valid"], false);
        assert_eq!(out["signatureValid"], false);
        assert!(out["reason"].as_str().unwrap().contains("signature"));

        // The RFC's token is signed right but expired in 2011.
        let out = run(
            "jwt-verify",
            json!({ "token": RFC_7519, "secret": RFC_7515_KEY, "secretEncoding": "base64" }),
        );
        assert_eq!(out["signatureValid"], true, "{out}");
        assert_eq!(out["valid"], false);
        assert!(out["reason"].as_str().unwrap().contains("expired"));

        // Tokens made here: a far exp is valid, a far nbf is not yet; a
        // recent exp passes only within the leeway.
        let sign = |claims: Value, alg: jsonwebtoken::Algorithm| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(b"k").unwrap(),
            )
            .unwrap()
        };
        let now = jsonwebtoken::get_current_timestamp();
        let hs512 = sign(
            json!({ "exp": 4102444800u64 }),
            jsonwebtoken::Algorithm::HS512,
        );
        let out = run("jwt-verify", json!({ "token": hs512, "secret": "k" }));
        assert_eq!(out["valid"], true, "{out}");
        assert_eq!(out["algorithm"], "HS512");
        assert_eq!(out["dates"]["exp"], "2100-01-01T00:00:00Z");
        let early = sign(
            json!({ "nbf": 4102444800u64 }),
            jsonwebtoken::Algorithm::HS256,
        );
        let out = run("jwt-verify", json!({ "token": early, "secret": "k" }));
        assert_eq!(out["valid"], false);
        assert!(out["reason"].as_str().unwrap().contains("nbf"));
        let recent = sign(json!({ "exp": now - 30 }), jsonwebtoken::Algorithm::HS384);
        let out = run("jwt-verify", json!({ "token": recent, "secret": "k" }));
        assert_eq!(out["valid"], false);
        let out = run(
            "jwt-verify",
            json!({ "token": recent, "secret": "k", "leeway": 300 }),
        );
        assert_eq!(out["valid"], true, "{out}");

        // alg none (RFC 7519 section 6.1) and RS256 are refused, never accepted.
        let unsecured = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";
        let error = find("jwt-verify")
            .unwrap()
            .run(json!({ "token": unsecured, "secret": "x" }))
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("token"));
        assert!(error.message.contains("none"));
        // {"alg":"RS256","typ":"JWT"} over jwt.io's payload.
        let rs256 = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(
            refused(
                "jwt-verify",
                json!({ "token": rs256, "secret": "your-256-bit-secret" })
            ),
            "token"
        );
        assert_eq!(
            refused("jwt-verify", json!({ "token": JWT_IO, "secret": "" })),
            "secret"
        );
        assert_eq!(
            refused(
                "jwt-verify",
                json!({ "token": JWT_IO, "secret": "zz", "secretEncoding": "hex" })
            ),
            "secret"
        );
        assert_eq!(
            refused(
                "jwt-verify",
                json!({ "token": JWT_IO, "secret": "s", "leeway": 10_000_000 })
            ),
            "leeway"
        );
    }
}
