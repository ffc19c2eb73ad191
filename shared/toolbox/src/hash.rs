//! Hashes and MACs: SHA-2, SHA-3, Keccak-256, BLAKE3, MD5, CRC-32, HMAC.

use crate::{tool, Bytes, Encoding, Tool, ToolError, MAX_TEXT};
use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "hash", name: "Hash", category: "hash",
        tags: ["sha256", "sha512", "sha3", "keccak256", "blake3", "md5", "digest", "checksum"],
        method: Post, path: "/api/hash",
        description: "Digest of a text or bytes with the algorithm you name (default SHA-256), in hex.",
        run: hash, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "sha256", name: "SHA-256", category: "hash", tags: ["sha2", "digest"],
        method: Post, path: "/api/sha256",
        description: "SHA-256 digest of a text or bytes, in hex.",
        run: sha256, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "sha512", name: "SHA-512", category: "hash", tags: ["sha2", "digest"],
        method: Post, path: "/api/sha512",
        description: "SHA-512 digest of a text or bytes, in hex.",
        run: sha512, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "sha3-256", name: "SHA3-256", category: "hash", tags: ["sha3", "fips202", "digest"],
        method: Post, path: "/api/sha3-256",
        description: "SHA3-256 (FIPS 202) digest of a text or bytes, in hex.",
        run: sha3_256, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "keccak256", name: "Keccak-256", category: "hash",
        tags: ["ethereum", "evm", "keccak", "digest"],
        method: Post, path: "/api/keccak256",
        description: "Keccak-256 (Ethereum's hash) of a text or bytes, in hex.",
        run: keccak256, example: { "text": "0x", "encoding": "hex" },
        cost: Light,
    },
    tool! {
        slug: "blake3", name: "BLAKE3", category: "hash", tags: ["digest"],
        method: Post, path: "/api/blake3",
        description: "BLAKE3 digest (32 bytes) of a text or bytes, in hex.",
        run: blake3, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "md5", name: "MD5", category: "hash", tags: ["digest", "legacy", "checksum"],
        method: Post, path: "/api/md5",
        description: "MD5 digest of a text or bytes, in hex (for checksums only: MD5 is broken for security).",
        run: md5, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "crc32", name: "CRC-32", category: "hash", tags: ["checksum", "zip", "ieee"],
        method: Post, path: "/api/crc32",
        description: "CRC-32 (IEEE, as zip and PNG use) of a text or bytes, in hex and as a number.",
        run: crc32, example: { "text": "123456789" },
        cost: Light,
    },
    tool! {
        slug: "hmac", name: "HMAC", category: "hash", tags: ["mac", "sha256", "sha512", "signature"],
        method: Post, path: "/api/hmac",
        description: "HMAC-SHA256 or HMAC-SHA512 of a message under a key, in hex.",
        run: hmac, example: { "key": "Jefe", "message": "what do ya want for nothing?" },
        cost: Light,
    },
];

/// A digest algorithm.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
    #[serde(rename = "sha3-256")]
    Sha3_256,
    Keccak256,
    Blake3,
    Md5,
}

impl Algorithm {
    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            Algorithm::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
            Algorithm::Sha3_256 => sha3::Sha3_256::digest(bytes).to_vec(),
            Algorithm::Keccak256 => sha3::Keccak256::digest(bytes).to_vec(),
            Algorithm::Blake3 => ::blake3::hash(bytes).as_bytes().to_vec(),
            Algorithm::Md5 => md5::Md5::digest(bytes).to_vec(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HashInput {
    /// The input.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// How `text` is written (default `utf8`).
    #[serde(default)]
    pub encoding: Encoding,
    /// The digest (default `sha256`).
    #[serde(default)]
    pub algorithm: Algorithm,
}

#[derive(Debug, Serialize)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

fn digest(algorithm: Algorithm, input: Bytes) -> Result<Digest, ToolError> {
    Ok(Digest {
        algorithm,
        hex: hex::encode(algorithm.digest(&input.decode()?)),
    })
}

fn hash(input: HashInput) -> Result<Digest, ToolError> {
    let bytes = input.encoding.decode("text", &input.text)?;
    Ok(Digest {
        algorithm: input.algorithm,
        hex: hex::encode(input.algorithm.digest(&bytes)),
    })
}

fn sha256(input: Bytes) -> Result<Digest, ToolError> {
    digest(Algorithm::Sha256, input)
}

fn sha512(input: Bytes) -> Result<Digest, ToolError> {
    digest(Algorithm::Sha512, input)
}

fn sha3_256(input: Bytes) -> Result<Digest, ToolError> {
    digest(Algorithm::Sha3_256, input)
}

fn keccak256(input: Bytes) -> Result<Digest, ToolError> {
    digest(Algorithm::Keccak256, input)
}

fn blake3(input: Bytes) -> Result<Digest, ToolError> {
    digest(Algorithm::Blake3, input)
}

fn md5(input: Bytes) -> Result<Digest, ToolError> {
    digest(Algorithm::Md5, input)
}

#[derive(Debug, Serialize)]
pub struct Crc32 {
    pub algorithm: &'static str,
    pub hex: String,
    pub value: u32,
}

fn crc32(input: Bytes) -> Result<Crc32, ToolError> {
    let value = crc32fast::hash(&input.decode()?);
    Ok(Crc32 {
        algorithm: "crc32",
        hex: format!("{value:08x}"),
        value,
    })
}

/// The hash under an HMAC.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MacAlgorithm {
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacInput {
    /// The secret key.
    #[schemars(length(max = 1024))]
    pub key: String,
    /// How `key` is written (default `utf8`).
    #[serde(default, rename = "keyEncoding")]
    pub key_encoding: Encoding,
    /// The message.
    #[schemars(length(max = MAX_TEXT))]
    pub message: String,
    /// How `message` is written (default `utf8`).
    #[serde(default, rename = "messageEncoding")]
    pub message_encoding: Encoding,
    /// The hash (default `sha256`).
    #[serde(default)]
    pub algorithm: MacAlgorithm,
}

#[derive(Debug, Serialize)]
pub struct MacOutput {
    pub algorithm: String,
    pub hex: String,
}

fn hmac(input: HmacInput) -> Result<MacOutput, ToolError> {
    let key = input.key_encoding.decode("key", &input.key)?;
    let message = input.message_encoding.decode("message", &input.message)?;
    let tag = match input.algorithm {
        MacAlgorithm::Sha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key");
            mac.update(&message);
            mac.finalize().into_bytes().to_vec()
        }
        MacAlgorithm::Sha512 => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(&key).expect("HMAC takes any key");
            mac.update(&message);
            mac.finalize().into_bytes().to_vec()
        }
    };
    let name = match input.algorithm {
        MacAlgorithm::Sha256 => "hmac-sha256",
        MacAlgorithm::Sha512 => "hmac-sha512",
    };
    Ok(MacOutput {
        algorithm: name.to_string(),
        hex: hex::encode(tag),
    })
}

#[cfg(test)]
mod tests {
    use crate::find;
    use serde_json::{json, Value};

    fn hex_of(slug: &str, input: Value) -> String {
        let output = find(slug).unwrap().run(input).unwrap();
        output["hex"].as_str().unwrap().to_string()
    }

    #[test]
    fn digests_match_published_vectors() {
        let text = |t: &str| json!({ "text": t });
        // FIPS 180-2 / 202, the BLAKE3 and Keccak reference outputs, RFC 1321.
        assert_eq!(
            hex_of("sha256", text("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex_of("sha512", text("abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex_of("sha3-256", text("")),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
        assert_eq!(
            hex_of("keccak256", json!({ "text": "0x", "encoding": "hex" })),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            hex_of("blake3", text("")),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(hex_of("md5", text("")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex_of("md5", text("The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        let crc = find("crc32").unwrap().run(text("123456789")).unwrap();
        assert_eq!(
            crc,
            json!({"algorithm": "crc32", "hex": "cbf43926", "value": 3421780262u32})
        );
    }

    #[test]
    fn the_hash_tool_takes_the_algorithm_and_encoding_named() {
        assert_eq!(
            hex_of("hash", json!({ "text": "hello world" })),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        let keccak = json!({ "text": "0X", "encoding": "hex", "algorithm": "keccak256" });
        assert_eq!(
            hex_of("hash", keccak),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        // "abc" as base64 and hex is the same input.
        let b64 = hex_of("hash", json!({ "text": "YWJj", "encoding": "base64" }));
        let hex = hex_of("hash", json!({ "text": "616263", "encoding": "hex" }));
        assert_eq!(b64, hex);
        let error = find("hash")
            .unwrap()
            .run(json!({ "text": "x", "algorithm": "sha1" }))
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("algorithm"));
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 (both hashes) and test case 1 (a hex key).
        let case2 = json!({ "key": "Jefe", "message": "what do ya want for nothing?" });
        assert_eq!(
            hex_of("hmac", case2.clone()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut sha512 = case2;
        sha512["algorithm"] = json!("sha512");
        assert_eq!(
            hex_of("hmac", sha512),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        let case1 = json!({
            "key": "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "keyEncoding": "hex",
            "message": "Hi There",
        });
        assert_eq!(
            hex_of("hmac", case1),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
